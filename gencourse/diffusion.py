"""Diffusion models and flow matching: noise schedules, the forward process, the epsilon-prediction
loss, DDPM and DDIM samplers, classifier-free guidance, and the flow-matching loss with ODE samplers.

Everything works on any data shape: ``[B, 2]`` toy points or ``[B, C, H, W]`` images. A denoiser is any
module called as ``net(x_t, t, y)`` with ``t`` a float tensor ``[B]`` in [0, 1] (DDPM step t of T is
passed as t / T) and ``y`` class labels or ``None``: :class:`gencourse.nn.TimeMLP` for vectors and
:class:`gencourse.nn.UNet` for images. Notation follows Ho et al. (2020): beta_t, alpha_t = 1 - beta_t,
abar_t = prod_{s<=t} alpha_s, and steps are indexed t = 0..T-1 (the paper's t = 1..T).

The models are :class:`Diffusion`, :class:`FlowMatching` and :class:`LatentDiffusion`;
:func:`gencourse.train.train_with_ema` trains them as diffusion models usually are. The course's trained
models (notebook 07) are built from these pieces in ``gencourse.recipes.diffusion``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from gencourse.checks import check_count, check_values, on_device_of

SCHEDULES = ("linear", "cosine")


class NoiseSchedule:
    """The variances beta_t of the forward process q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I).

    - ``linear`` (Ho et al. 2020): beta_t rises linearly from 1e-4 to 0.02 for T = 1000 (both scaled
      by 1000 / T for other T, so the chain destroys the data the same way for any T; for T < 50 that
      would pass 1, so the betas are clipped at 0.999 as for the cosine schedule).
    - ``cosine`` (Nichol & Dhariwal 2021): abar_t = f(t) / f(0) with f(t) = cos^2((t/T + s) / (1 + s) pi/2),
      s = 0.008, betas clipped at 0.999; it destroys information more evenly over the steps.

    ``betas``, ``alphas``, ``alphas_cumprod`` (abar_t) are float32 tensors ``[T]`` on the CPU.
    """

    def __init__(self, T: int = 1000, kind: str = "linear"):
        if int(T) != T or T < 2:
            raise ValueError(f"T (the number of diffusion steps) must be an integer >= 2, got {T!r}")
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; choose one of: {', '.join(SCHEDULES)}")
        self.T, self.kind = int(T), kind
        if kind == "linear":
            betas = torch.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T, dtype=torch.float64).clamp(max=0.999)
        else:
            s = 0.008
            steps = torch.arange(T + 1, dtype=torch.float64) / T
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)  # in float64: 1000 products lose no precision
        self.betas = betas.float()
        self.alphas = (1 - betas).float()
        self.alphas_cumprod = alphas_cumprod.float()

    def __len__(self) -> int:
        return self.T

    def __repr__(self) -> str:
        return f"NoiseSchedule(T={self.T}, kind={self.kind!r})"

    def snr(self) -> torch.Tensor:
        """The signal-to-noise ratio of x_t: SNR(t) = abar_t / (1 - abar_t), ``[T]``."""
        return self.alphas_cumprod / (1 - self.alphas_cumprod)

    def abar(self, t: torch.Tensor | int) -> torch.Tensor:
        """abar_t for step(s) ``t``; ``t = -1`` means "before the first step" (abar = 1)."""
        padded = torch.cat([torch.ones(1), self.alphas_cumprod])
        return padded[torch.as_tensor(t) + 1]


def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape ``values`` [B] (or a scalar) to broadcast over ``like`` [B, ...]."""
    values = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def _device(net: nn.Module, device: torch.device | None) -> torch.device:
    """Where to sample: ``device`` if given, else where the network's weights live (CPU if it has none)."""
    return device or next((p.device for p in net.parameters()), torch.device("cpu"))


def _check_data(model: nn.Module, x: torch.Tensor, name: str, bound: float | None = None) -> None:
    """A training batch of ``model`` (a :class:`Diffusion` or :class:`FlowMatching`): ``[B, *model.shape]``
    in the dtype of its weights, finite, and within [-bound, bound] if given; one min/max pass."""
    dtype = next((p.dtype for p in model.parameters()), None)
    check_values(x, name, *((-bound, bound) if bound is not None else ()), dtype=dtype)
    if tuple(x.shape[1:]) != model.shape:
        raise ValueError(f"{name} must have shape [B, {', '.join(map(str, model.shape))}], got {tuple(x.shape)}")


def _check_sampling(model: nn.Module, n, y: torch.Tensor | None) -> int:
    """``n`` as an int, and labels ``y`` only for a class-conditional model, one per sample (the network
    checks their values)."""
    n = check_count(n)
    if y is not None:
        if not model.num_classes:
            raise ValueError("this model is unconditional (its network has no num_classes): sample without y")
        if not isinstance(y, torch.Tensor) or y.shape != (n,):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"y must be an integer tensor [{n}] of class labels, one per sample, got {shape}")
    return n


def _check_steps(t: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    t = torch.as_tensor(t)
    if t.dtype.is_floating_point:
        raise TypeError(f"diffusion steps t must be integers in [0, {schedule.T - 1}], got a {t.dtype} tensor")
    if t.numel() and (t.min() < 0 or t.max() >= schedule.T):
        raise ValueError(f"diffusion steps t must lie in [0, {schedule.T - 1}], got [{int(t.min())}, {int(t.max())}]")
    return t.cpu()


# ---------------------------------------------------------------------------------------------
# The forward process and the training objective
# ---------------------------------------------------------------------------------------------


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None, schedule: NoiseSchedule) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0) in one go: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.

    ``x0`` [B, ...], ``t`` integer steps [B] (or one int for all), ``noise`` eps ~ N(0, I) of x0's shape
    (``None`` draws it). Returns x_t, shaped like ``x0``.
    """
    t = _check_steps(t, schedule)
    if noise is None:
        noise = torch.randn_like(x0)
    if noise.shape != x0.shape:
        raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}, got {tuple(noise.shape)}")
    abar = _per_example(schedule.alphas_cumprod[t], x0)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t, schedule: NoiseSchedule) -> torch.Tensor:
    """Invert q_sample given the noise: x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    abar = _per_example(schedule.alphas_cumprod[_check_steps(t, schedule)], x_t)
    return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()


def drop_labels(y: torch.Tensor | None, p_uncond: float, num_classes: int | None) -> torch.Tensor | None:
    """Replace each label by the "no label" token ``num_classes`` with probability ``p_uncond``, so one
    network learns both eps(x_t, t, y) and eps(x_t, t) (classifier-free guidance training)."""
    if y is None or p_uncond == 0:
        return y
    if num_classes is None:
        raise ValueError("label dropout needs a class-conditional network (num_classes set)")
    drop = torch.rand(y.shape, device=y.device) < p_uncond
    return torch.where(drop, torch.full_like(y, num_classes), y)


def ddpm_loss(
    net: nn.Module,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    y: torch.Tensor | None = None,
    p_uncond: float = 0.0,
    min_snr: float | None = None,
) -> torch.Tensor:
    """The simplified DDPM objective (Ho et al. 2020, Eq. 14):

        L_simple = E_{t ~ U{0..T-1}, eps ~ N(0, I)} || eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t) ||^2

    averaged over the batch and the data dimensions (a scalar). With labels ``y``, each is dropped with
    probability ``p_uncond`` (see :func:`drop_labels`). ``min_snr = gamma`` weights step t by
    min(SNR(t), gamma) / SNR(t) (Hang et al. 2023): the nearly noise-free steps, whose noise is hard to
    see and matters little for samples, stop dominating the loss, and training converges faster.
    """
    t = torch.randint(0, schedule.T, (len(x0),))
    noise = torch.randn_like(x0)
    x_t = q_sample(x0, t, noise, schedule)
    y = drop_labels(y, p_uncond, getattr(net, "num_classes", None))
    eps = net(x_t, (t.float() / schedule.T).to(x0.device), y)
    error = (eps - noise).pow(2)
    if min_snr is None:
        return error.mean()
    snr = schedule.snr()[t]
    return (_per_example(snr.clamp(max=min_snr) / snr, error) * error).mean()


# ---------------------------------------------------------------------------------------------
# Sampling: DDPM ancestral steps, DDIM steps, classifier-free guidance
# ---------------------------------------------------------------------------------------------


def guided(
    net: nn.Module,
    x_t: torch.Tensor,
    t: float,
    *,
    y: torch.Tensor | None = None,
    guidance: float = 1.0,
    weak: nn.Module | None = None,
    autoguidance: float = 1.0,
) -> torch.Tensor:
    """The network's prediction (noise eps or velocity v) at time ``t`` in [0, 1] for the whole batch,
    with classifier-free guidance (Ho & Salimans 2022):

        eps_guided = eps(x_t, t) + w (eps(x_t, t, y) - eps(x_t, t))

    ``w = guidance``: 0 is the unconditional model, 1 the conditional one, w > 1 pushes samples towards
    what makes y likely (cleaner, less diverse). Without labels this is just eps(x_t, t).

    ``weak`` and ``autoguidance = a`` add autoguidance (Karras et al. 2024, "Guiding a diffusion model
    with a bad version of itself"): the same extrapolation, away from a weaker model of the same data
    (here: the same network earlier in its training) instead of away from the unconditional model,

        eps_auto = eps_weak(x_t, t) + a (eps(x_t, t) - eps_weak(x_t, t)),

    so it needs no labels. Where the weak model's errors point, the good model's point too, only less;
    a > 1 moves further from them. a = 1 (or no ``weak``) is the model alone.
    """
    if weak is not None and autoguidance != 1:
        strong = guided(net, x_t, t, y=y, guidance=guidance)
        weaker = guided(weak, x_t, t, y=y, guidance=guidance)
        return weaker + autoguidance * (strong - weaker)
    tt = torch.full((len(x_t),), float(t), device=x_t.device)
    if y is None or guidance == 1:
        return net(x_t, tt, y)
    if guidance == 0:
        return net(x_t, tt, None)
    null = torch.full_like(y, net.num_classes)
    cond, uncond = net(torch.cat([x_t, x_t]), torch.cat([tt, tt]), torch.cat([y, null])).chunk(2)
    return uncond + guidance * (cond - uncond)


def ddpm_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    schedule: NoiseSchedule,
    *,
    noise: torch.Tensor | None = None,
    clip: float | None = None,
    variance: str = "beta",
) -> torch.Tensor:
    """One ancestral step x_t -> x_{t-1} ~ p_theta(x_{t-1} | x_t) (Ho et al. 2020, Algorithm 2):

        x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z,   z ~ N(0, I),

    with sigma_t^2 = beta_t (``variance="beta"``) or the posterior variance
    beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t (``"posterior"``), and no noise at t = 0.
    ``clip`` (e.g. 1.0 for images in [-1, 1]) clips the implied x0_hat to [-clip, clip] and uses the
    equivalent posterior-mean form mu = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0_hat
    + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t.
    """
    beta, alpha = schedule.betas[t].item(), schedule.alphas[t].item()
    abar, abar_prev = schedule.abar(t).item(), schedule.abar(t - 1).item()
    if clip is None:
        mean = (x_t - beta / math.sqrt(1 - abar) * eps) / math.sqrt(alpha)
    else:
        x0 = ((x_t - math.sqrt(1 - abar) * eps) / math.sqrt(abar)).clamp(-clip, clip)
        if t == 0:  # the posterior mean is x0_hat itself; computed exactly, so samples stay in [-clip, clip]
            return x0
        mean = (math.sqrt(abar_prev) * beta * x0 + math.sqrt(alpha) * (1 - abar_prev) * x_t) / (1 - abar)
    if t == 0:
        return mean
    if variance not in ("beta", "posterior"):
        raise ValueError(f"variance must be 'beta' or 'posterior', got {variance!r}")
    var = beta if variance == "beta" else (1 - abar_prev) / (1 - abar) * beta
    return mean + math.sqrt(var) * (torch.randn_like(x_t) if noise is None else noise)


def ddim_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    t_prev: int,
    schedule: NoiseSchedule,
    *,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
    clip: float | None = None,
) -> torch.Tensor:
    """One DDIM step x_t -> x_{t_prev} for any earlier step ``t_prev`` (-1 = the end) (Song et al. 2021, Eq. 12):

        x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
        x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z
        sigma  = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)

    ``eta = 0`` is deterministic (an ODE solver); ``eta = 1`` with every step is DDPM with the posterior
    variance.
    """
    abar, abar_prev = schedule.abar(t).item(), schedule.abar(t_prev).item()
    x0 = (x_t - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
        eps = (x_t - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
    sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
    x_prev = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
    if sigma > 0:
        x_prev = x_prev + sigma * (torch.randn_like(x_t) if noise is None else noise)
    return x_prev


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` evenly spaced steps from T-1 down to 0 (the DDIM sub-sequence tau)."""
    if isinstance(steps, bool) or not hasattr(steps, "__index__"):
        raise TypeError(f"steps must be a whole number (an int) in [1, T={T}], got {steps!r}")
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in [1, T={T}], got {steps}")
    return torch.linspace(T - 1, 0, steps).round().long().unique_consecutive().tolist()


@torch.no_grad()
def sample(
    net: nn.Module,
    shape: tuple[int, ...],
    schedule: NoiseSchedule,
    *,
    steps: int | None = None,
    eta: float = 0.0,
    y: torch.Tensor | None = None,
    guidance: float = 1.0,
    weak: nn.Module | None = None,
    autoguidance: float = 1.0,
    clip: float | None = None,
    x_T: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    trajectory: Callable | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Generate ``shape`` samples from pure noise x_T ~ N(0, I).

    - ``steps=None``: DDPM ancestral sampling over all T steps (:func:`ddpm_step`, sigma_t^2 = beta_t).
    - ``steps=S``: DDIM over S evenly spaced steps with ``eta`` (:func:`ddim_step`; eta=0: deterministic).
    - ``y``, ``guidance``: class labels [B] and the classifier-free guidance weight (:func:`guided`).
    - ``weak``, ``autoguidance``: a weaker denoiser and the autoguidance weight (:func:`guided`).
    - ``clip``: clip the predicted x0 at each step (1.0 for images in [-1, 1]).
    - ``trajectory(t, x_t, x0_hat)`` is called at every step (to record the chain coarse to fine).
    ``generator`` makes the draw reproducible. Returns x_0 ``shape``.
    """
    dev = _device(net, device)
    x = torch.randn(shape, generator=generator).to(dev) if x_T is None else x_T.to(dev)
    y = None if y is None else y.to(dev)
    ts = list(range(schedule.T - 1, -1, -1)) if steps is None else ddim_timesteps(schedule.T, steps)
    for i, t in enumerate(ts):
        eps = guided(net, x, t / schedule.T, y=y, guidance=guidance, weak=weak, autoguidance=autoguidance)
        if trajectory is not None:
            trajectory(t, x, predict_x0(x, eps, t, schedule))
        z = torch.randn(shape, generator=generator).to(dev)
        if steps is None:
            x = ddpm_step(x, eps, t, schedule, noise=z, clip=clip)
        else:
            x = ddim_step(x, eps, t, ts[i + 1] if i + 1 < len(ts) else -1, schedule, eta=eta, noise=z, clip=clip)
    return x


@torch.no_grad()
def ddim_invert(
    net: nn.Module, x0: torch.Tensor, schedule: NoiseSchedule, *, steps: int = 50, y: torch.Tensor | None = None
) -> torch.Tensor:
    """Run the deterministic DDIM sampler (eta = 0) backwards: data x_0 -> its latent x_T, of the same
    shape. ``sample(..., steps=steps, x_T=latent)`` maps the latent back to (nearly) x_0."""
    ts = ddim_timesteps(schedule.T, steps)[::-1]
    dev = _device(net, None)  # the data may sit on the CPU while the network is on a GPU
    x, y = x0.to(dev), None if y is None else y.to(dev)
    for t_prev, t in zip([-1, *ts[:-1]], ts):
        eps = guided(net, x, t_prev / schedule.T if t_prev >= 0 else 0.0, y=y)
        x0_hat = (x - (1 - schedule.abar(t_prev)).sqrt() * eps) / schedule.abar(t_prev).sqrt()
        x = schedule.abar(t).sqrt() * x0_hat + (1 - schedule.abar(t)).sqrt() * eps
    return x


# ---------------------------------------------------------------------------------------------
# Scores and Langevin dynamics: the link to energy-based models
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def score(
    net: nn.Module, x_t: torch.Tensor, t: int, schedule: NoiseSchedule, *, y: torch.Tensor | None = None
) -> torch.Tensor:
    """The score of the noised data, grad_x log q_t(x) ~= -eps_theta(x_t, t) / sqrt(1 - abar_t): a noise
    predictor is a score model (Song & Ermon 2019; Vincent 2011), i.e. minus the gradient of an energy."""
    return -guided(net, x_t, t / schedule.T, y=y) / (1 - schedule.abar(t)).sqrt().item()


def langevin_dynamics(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    step_size: float,
    steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Unadjusted Langevin dynamics: x <- x + (delta / 2) grad log p(x) + sqrt(delta) z, z ~ N(0, I).

    For a small ``step_size`` delta and many ``steps`` the iterates are distributed as p, whatever the
    start ``x``: sampling needs only the score, never the normalising constant of p = exp(-E) / Z.
    """
    if step_size <= 0 or steps < 0:
        raise ValueError(f"need step_size > 0 and steps >= 0, got {step_size} and {steps}")
    for _ in range(steps):
        z = torch.randn(x.shape, generator=generator).to(x.device)
        x = x + step_size / 2 * score_fn(x) + math.sqrt(step_size) * z
    return x


# ---------------------------------------------------------------------------------------------
# Flow matching
# ---------------------------------------------------------------------------------------------


def flow_matching_loss(
    net: nn.Module, x1: torch.Tensor, y: torch.Tensor | None = None, *, p_uncond: float = 0.0
) -> torch.Tensor:
    """Conditional flow matching with straight paths (Lipman et al. 2023; Liu et al. 2023):

        x_t = (1 - t) x_0 + t x_1,  x_0 ~ N(0, I),  t ~ U[0, 1],
        L = E || v_theta(x_t, t) - (x_1 - x_0) ||^2

    ``x1`` is a data batch [B, ...]; time runs from noise (t = 0) to data (t = 1). The minimiser is the
    velocity field whose ODE dx/dt = v(x, t) carries N(0, I) to the data: a continuous normalizing flow
    trained without ever computing a log-determinant.
    """
    x0 = torch.randn_like(x1)
    t = torch.rand(len(x1), device=x1.device)
    x_t = _per_example(1 - t, x1) * x0 + _per_example(t, x1) * x1
    y = drop_labels(y, p_uncond, getattr(net, "num_classes", None))
    return (net(x_t, t, y) - (x1 - x0)).pow(2).mean()


@torch.no_grad()
def flow_sample(
    net: nn.Module,
    shape: tuple[int, ...],
    steps: int = 50,
    *,
    method: str = "heun",
    y: torch.Tensor | None = None,
    guidance: float = 1.0,
    x0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    trajectory: Callable | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Integrate dx/dt = v_theta(x, t) from noise x(0) ~ N(0, I) to data x(1) with ``steps`` steps of
    size h = 1 / steps: Euler x <- x + h v(x, t), or Heun (2nd order, two evaluations per step)
    x' = x + h v(x, t);  x <- x + h/2 (v(x, t) + v(x', t + h)). ``trajectory(t, x)`` sees every state."""
    if method not in ("euler", "heun"):
        raise ValueError(f"method must be 'euler' or 'heun', got {method!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    dev = _device(net, device)
    x = torch.randn(shape, generator=generator).to(dev) if x0 is None else x0.to(dev)
    y = None if y is None else y.to(dev)
    h = 1.0 / steps
    for i in range(steps):
        t = i * h
        if trajectory is not None:
            trajectory(t, x)
        v = guided(net, x, t, y=y, guidance=guidance)
        if method == "euler":
            x = x + h * v
        else:
            x_next = x + h * v
            x = x + h / 2 * (v + guided(net, x_next, t + h, y=y, guidance=guidance))
    if trajectory is not None:
        trajectory(1.0, x)
    return x


# ---------------------------------------------------------------------------------------------
# Models: a network with its process, trained with ``fit`` and sampled with ``sample(n)``
# ---------------------------------------------------------------------------------------------


class Diffusion(nn.Module):
    """A DDPM: the noise predictor ``net`` eps_theta(x_t, t, y), a :class:`NoiseSchedule` and the shape of
    one example (``(2,)`` for toy points, ``(1, 28, 28)`` for MNIST in [-1, 1]).

    ``loss(x0, y)`` is :func:`ddpm_loss` (labels dropped with probability ``p_uncond`` for guidance,
    ``min_snr`` weighting);
    ``sample(n, ...)`` is :func:`sample` (DDPM over all T steps, or DDIM with ``steps``). ``clip`` clips
    the predicted x0 while sampling (1.0 for images in [-1, 1]). ``weak``, an optional second denoiser of
    the same data, less trained (for example ``net`` earlier in its training), lets ``sample(n,
    autoguidance=a)`` guide ``net`` away from it (:func:`guided`); it is not trained by ``loss``.
    """

    def __init__(
        self,
        net: nn.Module,
        schedule: NoiseSchedule,
        shape: tuple[int, ...],
        *,
        clip: float | None = None,
        p_uncond: float = 0.0,
        min_snr: float | None = None,
        weak: nn.Module | None = None,
    ):
        super().__init__()
        self.net, self.schedule, self.shape = net, schedule, tuple(shape)
        self.clip, self.p_uncond, self.min_snr = clip, p_uncond, min_snr
        self.weak = weak

    @property
    def num_classes(self) -> int | None:
        return getattr(self.net, "num_classes", None)

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """:func:`ddpm_loss` of a batch ``x0`` ``[B, *shape]`` (finite; within [-clip, clip] when ``clip``
        is set, since the sampler can only produce such data; refused with an error otherwise)."""
        _check_data(self, x0, "x0", self.clip)
        x0, y = on_device_of(self, x0, y if self.num_classes else None)
        return ddpm_loss(self.net, x0, self.schedule, y=y, p_uncond=self.p_uncond, min_snr=self.min_snr)

    def sample(
        self,
        n: int,
        steps: int | None = None,
        *,
        eta: float = 0.0,
        y: torch.Tensor | None = None,
        guidance: float = 1.0,
        autoguidance: float = 1.0,
        **kwargs,
    ) -> torch.Tensor:
        n = _check_sampling(self, n, y)
        if autoguidance != 1 and self.weak is None:
            raise ValueError(
                f"autoguidance={autoguidance} needs a weak model to guide away from, and this one has none: "
                "build the Diffusion with weak= (the same network earlier in its training, for example a "
                "train_with_ema snapshot; the course's MNIST DDPM gets one from weak_at in its settings), "
                "or sample with autoguidance=1"
            )
        return sample(
            self.net,
            (n, *self.shape),
            self.schedule,
            steps=steps,
            eta=eta,
            y=y,
            guidance=guidance,
            weak=self.weak,
            autoguidance=autoguidance,
            clip=self.clip,
            **kwargs,
        )


class FlowMatching(nn.Module):
    """Flow matching: the velocity field ``net`` v_theta(x_t, t, y) and the shape of one example.
    ``loss(x1, y)`` is :func:`flow_matching_loss`, ``sample(n, steps, method=...)`` is :func:`flow_sample`."""

    def __init__(self, net: nn.Module, shape: tuple[int, ...], *, p_uncond: float = 0.0):
        super().__init__()
        self.net, self.shape, self.p_uncond = net, tuple(shape), p_uncond

    @property
    def num_classes(self) -> int | None:
        return getattr(self.net, "num_classes", None)

    def loss(self, x1: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_data(self, x1, "x1")
        x1, y = on_device_of(self, x1, y if self.num_classes else None)
        return flow_matching_loss(self.net, x1, y, p_uncond=self.p_uncond)

    def sample(
        self,
        n: int,
        steps: int = 50,
        *,
        method: str = "heun",
        y: torch.Tensor | None = None,
        guidance: float = 1.0,
        **kwargs,
    ) -> torch.Tensor:
        n = _check_sampling(self, n, y)
        return flow_sample(self.net, (n, *self.shape), steps, method=method, y=y, guidance=guidance, **kwargs)


class LatentDiffusion(nn.Module):
    """Diffusion in the latent space of a trained autoencoder (Rombach et al. 2022, "Stable Diffusion"):
    images x -> latents z = mu(x) / scale -> a DDPM on z (:class:`Diffusion` with a
    :class:`~gencourse.nn.TimeMLP`) -> decode(z * scale) -> images.

    ``autoencoder`` has ``encode(x) -> (mu, logvar)`` and ``decode(z)`` (a :class:`gencourse.vae.VAE`);
    it is frozen. ``scale`` (a buffer) makes the latents unit-variance, as the noise schedule assumes.
    """

    def __init__(self, autoencoder: nn.Module, diffusion: Diffusion, scale: float = 1.0):
        super().__init__()
        self.autoencoder, self.diffusion = autoencoder.requires_grad_(False).eval(), diffusion
        self.register_buffer("scale", torch.tensor(float(scale)))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``[B, latent_dim]`` of images ``x`` (in the autoencoder's range)."""
        return self.autoencoder.encode(x)[0] / self.scale

    def loss(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The DDPM loss on a batch of (already encoded, scaled) latents."""
        return self.diffusion.loss(z, y)

    @torch.no_grad()
    def sample(self, n: int, steps: int | None = None, *, eta: float = 0.0, **kwargs) -> torch.Tensor:
        """``n`` images: latents from the diffusion model (DDPM, or DDIM with ``steps``), then decoded."""
        return self.autoencoder.decode(self.diffusion.sample(n, steps, eta=eta, **kwargs) * self.scale)


def net_weights(state: dict) -> dict:
    """The ``net.`` entries of a :class:`Diffusion`'s state dict (a snapshot of
    :func:`gencourse.train.train_with_ema`, say), keyed as the network's own:
    ``weak.load_state_dict(net_weights(snapshot))``."""
    return {k[len("net.") :]: v for k, v in state.items() if k.startswith("net.")}
