"""Checkers for the notebooks' "Your turn" exercises.

Each ``check_<name>(student_fn)`` calls the student's function on cases with known answers and either
prints what was right or raises :class:`ExerciseError` saying what is wrong (a wrong shape, a wrong
sign, off by a constant...). A stub that still raises ``NotImplementedError`` gets a friendly
"not done yet" message instead of a traceback. Sections follow the notebooks.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math

import torch


class ExerciseError(AssertionError):
    """The answer to an exercise is not right yet; the message says what is wrong."""


def checker(fn):
    """Wrap a ``check_*`` function: validate the argument, turn ``NotImplementedError`` into a
    "your turn" message, and print a success line when every case passes."""

    @functools.wraps(fn)
    def wrapper(student_fn, *args, **kwargs):
        if not callable(student_fn):
            raise ExerciseError(
                f"{fn.__name__} expects your function itself (no parentheses), got {type(student_fn).__name__}"
            )
        try:
            summary = fn(student_fn, *args, **kwargs)
        except NotImplementedError as exc:
            raise ExerciseError(
                f"`{getattr(student_fn, '__name__', 'your function')}` is not written yet: "
                f"replace the `raise NotImplementedError` line with your code ({exc})"
            ) from None
        print(f"Correct! {summary}" if summary else "Correct!")

    return wrapper


def expect_tensor(name: str, got, shape=None) -> torch.Tensor:
    """Check that ``got`` is a tensor (of ``shape`` if given) and return it."""
    if not isinstance(got, torch.Tensor):
        raise ExerciseError(f"{name} should return a torch.Tensor, got {type(got).__name__}")
    if shape is not None and tuple(got.shape) != tuple(shape):
        raise ExerciseError(f"{name} returned shape {tuple(got.shape)}, expected {tuple(shape)}")
    if not torch.isfinite(got).all():
        raise ExerciseError(f"{name} returned NaN or infinite values")
    return got


def expect_close(
    name: str, got: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4, hint: str = ""
) -> None:
    """Raise an :class:`ExerciseError` that says how ``got`` differs from ``expected``."""
    got = expect_tensor(name, got, expected.shape).to(expected.dtype)
    if torch.allclose(got, expected, atol=atol, rtol=rtol):
        return
    diff = got - expected
    if torch.allclose(got, -expected, atol=atol, rtol=rtol):
        why = "the sign is flipped"
    elif torch.allclose(diff, diff.flatten()[0].expand_as(diff), atol=atol, rtol=rtol):
        why = f"off by a constant {diff.flatten()[0].item():.4g}"
    elif (expected.abs() > atol).all() and torch.allclose(
        got / expected, (got / expected).flatten()[0].expand_as(got), rtol=rtol, atol=atol
    ):
        why = f"off by a factor {(got / expected).flatten()[0].item():.4g}"
    else:
        why = f"largest difference {diff.abs().max().item():.4g}"
    raise ExerciseError(
        f"{name} is not right yet: {why}. Expected e.g. {expected.flatten()[:3].tolist()}, "
        f"got {got.flatten()[:3].tolist()}." + (f" Hint: {hint}" if hint else "")
    )


def use(check, student_fn, fallback):
    """The function later cells should call: ``student_fn`` when ``check(student_fn)`` passes, else
    ``fallback`` (the package's version), saying which, so that a right answer draws the pictures that
    follow and a missing or wrong one never breaks them::

        my_kl = exercises.use(exercises.check_gaussian_kl, gaussian_kl, fallback=vae.gaussian_kl)
        # using your gaussian_kl  |  using gencourse.vae.gaussian_kl (your gaussian_kl did not pass: ...)
    """
    name = getattr(student_fn, "__name__", "function")
    package = f"{getattr(fallback, '__module__', '')}.{getattr(fallback, '__qualname__', repr(fallback))}".lstrip(".")
    if student_fn is fallback:  # this cell ran again after choosing the package's version
        print(f"using {package} (run the cell with your {name} again to use yours)")
        return fallback
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the check's own "Correct!" was printed already
            check(student_fn)
    except Exception as exc:  # a wrong answer, or one that crashes: either way the package's version draws
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, ExerciseError):
            reason = f"{type(exc).__name__}: {reason}"
        print(f"using {package} (your {name} did not pass: {reason})")
        return fallback
    print(f"using your {name}")
    return student_fn


# ---- Notebook 01: Introduction to generative models ----

# The reference answers that notebook 01 falls back on through `use` (its small models are written in the
# notebook itself, so no family module holds them); the KL's reference is gencourse.metrics.kl_divergence.


def sample_naive_bayes(theta, digit, n, generator=None):
    """``n`` binary images ``[n, D]`` of class ``digit`` from a naive Bayes model with pixel
    probabilities ``theta`` [10, D]: pixel j is 1 with probability theta[digit, j], independently."""
    return torch.bernoulli(theta[digit].expand(n, -1), generator=generator)


def langevin_step(x, grad_energy, step_size, noise):
    """One step of Langevin dynamics for p(x) = exp(-E(x)) / Z, with ``grad_energy`` = grad E(x) and
    ``noise`` z ~ N(0, I) shaped like ``x``: x + (step_size / 2) grad log p(x) + sqrt(step_size) z, where
    grad log p(x) = -grad E(x) (Z does not depend on x)."""
    return x - step_size / 2 * grad_energy + math.sqrt(step_size) * noise


@checker
def check_kl_divergence(student_fn):
    """``student_fn(p, q)``: KL(p || q) = sum_i p_i log(p_i / q_i) over the last dimension."""
    from gencourse.metrics import kl_divergence

    p, q = torch.tensor([0.1, 0.2, 0.7]), torch.tensor([0.3, 0.3, 0.4])
    expected = kl_divergence(p, q)
    got = expect_tensor("kl_divergence(p, q)", student_fn(p, q), ())
    if torch.allclose(got, kl_divergence(q, p), atol=1e-5):
        raise ExerciseError(
            "you computed KL(q || p): the weights of the average are p, so the sum is "
            "p * log(p / q), not q * log(q / p). KL is not symmetric!"
        )
    expect_close("kl_divergence(p, q)", got, expected, hint="sum over outcomes of p * (log p - log q)")
    same = expect_tensor("kl_divergence(p, p)", student_fn(p, p), ())
    if abs(same.item()) > 1e-6:
        raise ExerciseError(
            f"KL(p || p) should be 0 (a distribution does not diverge from itself), got {same.item():.4g}"
        )
    zero = torch.tensor([0.0, 0.5, 0.5])
    got = student_fn(zero, q)
    if isinstance(got, torch.Tensor) and torch.isnan(got).any():
        raise ExerciseError(
            "KL(p || q) is NaN when p has a zero: 0 * log 0 gives NaN in floating point, but the "
            "convention is 0 log 0 = 0 (an outcome that never happens costs nothing). "
            "Use torch.where(p > 0, ..., 0) to drop those terms"
        )
    expect_close("kl_divergence(p, q) with a zero in p", got, kl_divergence(zero, q))
    batch_p, batch_q = torch.stack([p, q, zero]), torch.stack([q, q, p])
    expect_close(
        "kl_divergence on a batch [3, 3]",
        student_fn(batch_p, batch_q),
        kl_divergence(batch_p, batch_q),
        hint="sum over the last dimension only (dim=-1), one KL per row",
    )
    return "KL(p || q) is right, 0 for equal distributions, and handles zeros and batches."


@checker
def check_naive_bayes_sample(student_fn):
    """``student_fn(theta, digit, n, generator)``: ``n`` binary images ``[n, D]`` of class ``digit``
    drawn from the naive Bayes model, each pixel x_j ~ Bernoulli(theta[digit, j]) independently."""
    g = torch.Generator().manual_seed(0)
    theta = torch.rand(10, 64, generator=g) * 0.9 + 0.05
    samples = student_fn(theta, 3, 4000, torch.Generator().manual_seed(1))
    samples = expect_tensor("the samples", samples, (4000, 64)).float()
    if not ((samples == 0) | (samples == 1)).all():
        raise ExerciseError(
            "binarized pixels must be exactly 0 or 1: draw them with torch.bernoulli (you returned "
            "probabilities or other values)"
        )
    if (samples == samples[0]).all():
        raise ExerciseError(
            "all samples are identical: you returned the most likely image (e.g. theta > 0.5) "
            "instead of sampling; draw each pixel with torch.bernoulli(theta[digit])"
        )
    mean = samples.mean(0)
    error = (mean - theta[3]).abs().max().item()
    if error > 0.05:
        wrong = (mean[None] - theta).abs().max(1).values.argmin().item()
        hint = f" (they match digit {wrong}'s row: use theta[digit])" if wrong != 3 else ""
        raise ExerciseError(
            f"the pixel frequencies of your samples do not match theta[digit] (largest gap "
            f"{error:.3f}){hint}; each pixel j must be 1 with probability theta[digit, j]"
        )
    again = student_fn(theta, 3, 4000, torch.Generator().manual_seed(1))
    if not torch.equal(expect_tensor("the samples", again, (4000, 64)).float(), samples):
        raise ExerciseError(
            "the same generator seed gave different samples: pass generator=generator to "
            "torch.bernoulli (or torch.rand) so results are reproducible"
        )
    return "every pixel is an independent coin flip with the class's probability."


@checker
def check_langevin_step(student_fn):
    """``student_fn(x, grad_energy, step_size, noise)``: one step of Langevin dynamics,
    x - (step_size / 2) grad E(x) + sqrt(step_size) noise."""
    x = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    grad = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    noise = torch.tensor([[0.3, -0.1], [-1.2, 0.8]])
    step = 0.04
    expected = langevin_step(x, grad, step, noise)
    got = expect_tensor("langevin_step(...)", student_fn(x, grad, step, noise), x.shape)
    if torch.allclose(got, x + step / 2 * grad + step**0.5 * noise, atol=1e-6):
        raise ExerciseError(
            "you moved *up* the energy: subtract the gradient (x - step/2 * grad), so samples "
            "slide towards low energy = high probability"
        )
    if torch.allclose(got, x - step / 2 * grad + step * noise, atol=1e-6):
        raise ExerciseError(
            "the noise is scaled by step_size; it must be scaled by sqrt(step_size): the noise "
            "variance, not its standard deviation, is proportional to the step"
        )
    if torch.allclose(got, x - step * grad + step**0.5 * noise, atol=1e-6):
        raise ExerciseError(
            "the gradient step should be step_size / 2 times the gradient (with noise of variance "
            "step_size, this is what makes exp(-E) the stationary distribution)"
        )
    if torch.allclose(got, x - step / 2 * grad, atol=1e-6):
        raise ExerciseError(
            "without the noise term this is gradient descent: every sample would end in a minimum "
            "of the energy instead of spreading out like exp(-E); add sqrt(step_size) * noise"
        )
    expect_close("langevin_step(...)", got, expected, hint="x - step_size / 2 * grad_energy + sqrt(step_size) * noise")
    return "x - (eps/2) grad E(x) + sqrt(eps) z: a gradient step on the energy plus just enough noise."


# ---- Notebook 02: The adversarial game ----


def _scalar(name: str, got) -> torch.Tensor:
    got = expect_tensor(name, got)
    if got.dim() != 0:
        raise ExerciseError(
            f"{name} returned shape {tuple(got.shape)}; return one number, the mean over the batch (.mean())"
        )
    return got


@checker
def check_discriminator_loss(discriminator_loss):
    """``discriminator_loss(real_logits, fake_logits)`` -> -E log D(x) - E log(1 - D(G(z))), a scalar."""
    import torch.nn.functional as F

    real, fake = torch.tensor([2.0, -1.0, 0.5, 3.0]), torch.tensor([-2.0, 0.0, 1.0, -0.5])
    expected = F.softplus(-real).mean() + F.softplus(fake).mean()
    got = _scalar("discriminator_loss", discriminator_loss(real, fake))
    if torch.isclose(got, F.softplus(real).mean() + F.softplus(-fake).mean(), atol=1e-5):
        raise ExerciseError("real and fake are swapped: D should output 1 (a large logit) on real data, 0 on fakes")
    if torch.isclose(got, expected * len(real), atol=1e-4):
        raise ExerciseError("you summed over the batch: take the mean (.mean()) so the loss does not grow with it")
    expect_close(
        "discriminator_loss",
        got,
        expected,
        hint="with D = sigmoid(logit): -log D = softplus(-logit) and -log(1 - D) = softplus(logit)",
    )
    big_real, big_fake = torch.tensor([120.0, -150.0]), torch.tensor([-130.0, 140.0])
    got = discriminator_loss(big_real, big_fake)
    if not isinstance(got, torch.Tensor) or not torch.isfinite(got).all():
        raise ExerciseError(
            "the loss is not finite for large logits (+-150): sigmoid rounds to exactly 0 or 1 and log gives -inf. "
            "Use F.logsigmoid(a) or -F.softplus(-a) for log sigmoid(a), and -F.softplus(a) for log(1 - sigmoid(a))"
        )
    expect_close(
        "discriminator_loss (large logits)",
        got,
        F.softplus(-big_real).mean() + F.softplus(big_fake).mean(),
        atol=1e-3,
        hint="clamped logs (like F.binary_cross_entropy on probabilities) are off for large logits; use softplus",
    )
    return "this is the binary cross-entropy of a real-vs-fake classifier, stable for any logit."


@checker
def check_optimal_discriminator(optimal_discriminator):
    """``optimal_discriminator(p_data, p_g)`` -> the y in (0, 1) that maximises p_data log y + p_g log(1 - y),
    elementwise over densities evaluated at the same points."""
    a = torch.tensor([0.4, 0.1, 0.25, 0.05, 0.3])
    b = torch.tensor([0.1, 0.1, 0.5, 0.2, 0.6])
    got = optimal_discriminator(a, b)
    if isinstance(got, torch.Tensor) and got.shape == a.shape:
        if torch.allclose(got, b / (a + b), atol=1e-5):
            raise ExerciseError(
                "you returned p_g / (p_data + p_g): D(x) is the probability that x is *real*, so it must grow "
                "with p_data(x), the weight of log y"
            )
        if torch.allclose(got, a / b, atol=1e-5):
            raise ExerciseError(
                "you returned the density ratio p_data / p_g, which can exceed 1: D(x) is a probability. Find the "
                "y in (0, 1) where the derivative of a log y + b log(1 - y) is zero"
            )
    expect_close(
        "optimal_discriminator(p_data, p_g)",
        expect_tensor("optimal_discriminator(p_data, p_g)", got, a.shape),
        a / (a + b),
        hint="differentiate a log y + b log(1 - y) with respect to y and solve for the y where it is zero",
    )
    grid = torch.tensor([[0.3, 0.0, 2.0], [1e-3, 0.7, 0.5]])
    expect_close(
        "optimal_discriminator on a [2, 3] grid, with zeros in p_data and p_g",
        optimal_discriminator(grid, grid.roll(1, dims=1)),
        grid / (grid + grid.roll(1, dims=1)),
        hint="work elementwise: every point x has its own D*(x)",
    )
    return "D*(x) = p_data(x) / (p_data(x) + p_g(x)): 1/2 where the two densities are equal."


@checker
def check_nonsaturating_loss(generator_loss):
    """``generator_loss(fake_logits)`` -> -E log D(G(z)), a scalar."""
    import torch.nn.functional as F

    fake = torch.tensor([-3.0, -1.0, 0.0, 2.0])
    expected = F.softplus(-fake).mean()
    got = _scalar("generator_loss", generator_loss(fake))
    if torch.isclose(got, -F.softplus(fake).mean(), atol=1e-5):
        raise ExerciseError(
            "this is the minimax loss E log(1 - D(G(z))), which saturates: its gradient vanishes when D rejects "
            "the fakes. The non-saturating loss is -E log D(G(z)) instead"
        )
    if torch.isclose(got, F.softplus(fake).mean(), atol=1e-5):
        raise ExerciseError(
            "this is -E log(1 - D(G(z))): minimising it pushes D(G(z)) towards 0, which is the discriminator's "
            "goal, not the generator's. The generator minimises -E log D(G(z))"
        )
    expect_close("generator_loss", got, expected, hint="-log D = -log sigmoid(logit) = softplus(-logit)")
    got = generator_loss(torch.tensor([-150.0, 0.0]))
    if not isinstance(got, torch.Tensor) or not torch.isfinite(got).all():
        raise ExerciseError(
            "the loss is infinite for a logit of -150 (sigmoid rounds to 0, log to -inf): use F.softplus(-logit) "
            "or -F.logsigmoid(logit)"
        )
    expect_close("generator_loss (large logits)", got, F.softplus(torch.tensor([150.0, 0.0])).mean(), atol=1e-3)
    return "the generator now gets a strong gradient exactly when the discriminator rejects its samples."


# ---- Notebook 03: GANs on images ----


class _LinearCritic(torch.nn.Module):
    """f(x) = w . flatten(x) + b, whose gradient is w everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.b = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


class _SquareCritic(torch.nn.Module):
    """f(x) = ||x||^2 / 2 per example, whose gradient at x is x itself."""

    def forward(self, x):
        return 0.5 * x.flatten(1).square().sum(1)


@checker
def check_gradient_penalty(gradient_penalty):
    """``gradient_penalty(critic, real, fake)`` -> E (||grad f(x^)|| - 1)^2 on x^ = eps x + (1 - eps) x~."""
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(8, 1, 2, 2, generator=g), torch.randn(8, 1, 2, 2, generator=g)
    direction = torch.randn(4, generator=g)
    for scale in (3.0, 1.0, 0.5):
        critic = _LinearCritic(scale * direction / direction.norm())
        got = _scalar("gradient_penalty", gradient_penalty(critic, real, fake))
        if scale == 3.0 and torch.isclose(got.detach(), torch.tensor(9.0), atol=1e-3):
            raise ExerciseError("for a critic with gradient norm 3 you returned 9 = 3^2: subtract 1 from the norm")
        if scale == 3.0 and torch.isclose(got.detach(), torch.tensor(2.0), atol=1e-3):
            raise ExerciseError("for a critic with gradient norm 3 you returned 2 = 3 - 1: square (norm - 1)")
        expect_close(
            f"gradient_penalty of a linear critic with gradient norm {scale:g}",
            got.detach(),
            torch.tensor((scale - 1) ** 2),
            atol=1e-4,
            hint="the norm is per example, over all its pixels: grad.flatten(1).norm(dim=1)",
        )
        if not got.requires_grad:
            raise ExerciseError(
                "the penalty cannot be backpropagated into the critic: pass create_graph=True to torch.autograd.grad"
            )
        (grad_w,) = torch.autograd.grad(got, critic.w)
        expect_close("d penalty / d w", grad_w, 2 * (scale - 1) * direction / direction.norm(), atol=1e-4)
    # f(x) = |x|^2 / 2 has gradient x: with real = 0 and |fake| = 4, |grad f(x^)| = 4 (1 - eps), and
    # E (4 u - 1)^2 = 7/3 for u ~ U[0, 1]: only random points on the segments give that average.
    n = 20000
    fake = torch.randn(n, 1, 2, 2, generator=g)
    fake = 4 * fake / fake.flatten(1).norm(dim=1).view(n, 1, 1, 1)
    torch.manual_seed(0)
    got = _scalar("gradient_penalty", gradient_penalty(_SquareCritic(), torch.zeros_like(fake), fake)).detach()
    if torch.isclose(got, torch.tensor(1.0), atol=1e-3):
        raise ExerciseError("the penalty is taken at the real points only: interpolate x^ = eps x + (1 - eps) x~")
    if torch.isclose(got, torch.tensor(9.0), atol=1e-3):
        raise ExerciseError("the penalty is taken at the fake points only: interpolate x^ = eps x + (1 - eps) x~")
    if abs(got.item() - 7 / 3) > 0.1:
        raise ExerciseError(
            f"on random segments between real and fake points the penalty should average 7/3 = 2.33 here, got "
            f"{got.item():.3g}: draw one eps ~ U[0, 1] per example (shape [B, 1, 1, 1]), not one for the whole batch"
        )
    return "the critic is pushed towards gradient norm 1 on the lines between real and fake samples."


@checker
def check_slerp(slerp):
    """``slerp(z0, z1, t)`` -> ``[T, D]`` points on the great circle from z0 to z1."""
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(16, generator=g), torch.randn(16, generator=g)
    t = torch.linspace(0, 1, 7)
    got = expect_tensor("slerp", slerp(z0, z1, t), (7, 16))
    omega = torch.arccos(z0 @ z1 / (z0.norm() * z1.norm()))
    expected = (torch.sin((1 - t)[:, None] * omega) * z0 + torch.sin(t[:, None] * omega) * z1) / torch.sin(omega)
    if torch.allclose(got, (1 - t)[:, None] * z0 + t[:, None] * z1, atol=1e-4):
        raise ExerciseError("this is the straight line (1 - t) z0 + t z1; slerp follows the arc between them")
    if not (torch.allclose(got[0], z0, atol=1e-4) and torch.allclose(got[-1], z1, atol=1e-4)):
        raise ExerciseError("slerp(z0, z1, t) must start at z0 (t = 0) and end at z1 (t = 1)")
    expect_close("slerp", got, expected, atol=1e-4, hint="the angle is W = arccos(z0 . z1 / (|z0| |z1|))")
    e1, e2 = torch.eye(16)[0], torch.eye(16)[1]
    expect_close(
        "slerp of two orthogonal unit vectors at t = 0.5",
        slerp(e1, e2, torch.tensor([0.5]))[0],
        (e1 + e2) / 2**0.5,
        atol=1e-5,
    )
    return "between two vectors of equal norm the path keeps that norm, unlike the straight line."


# ---- Notebook 04: from autoencoders to the VAE ----


def _kl_reference(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


@checker
def check_gaussian_kl(gaussian_kl):
    """``gaussian_kl(mu, logvar) -> [B]``: KL(N(mu, diag exp(logvar)) || N(0, I)) summed over dimensions."""
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    got = gaussian_kl(mu.clone(), logvar.clone())
    got = expect_tensor("gaussian_kl", got)
    if got.shape == mu.shape:
        raise ExerciseError(
            "gaussian_kl returned one KL per latent dimension [B, d]; sum over the latent "
            "dimensions (the last axis) to get one number per example [B]"
        )
    expected = _kl_reference(mu, logvar)
    variance_as_logvar = 0.5 * (mu.pow(2) + logvar - logvar.clamp(min=1e-6).log() - 1).sum(-1)
    if got.shape == expected.shape and torch.allclose(got, variance_as_logvar, atol=1e-4):
        raise ExerciseError("gaussian_kl treats logvar as the variance itself: sigma^2 = exp(logvar)")
    expect_close(
        "gaussian_kl",
        got,
        expected,
        atol=1e-4,
        hint="KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - logvar_j - 1); check the 1/2 and the -1",
    )
    zero = expect_tensor("gaussian_kl at the prior", gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)), (3,))
    if zero.abs().max() > 1e-6:
        raise ExerciseError(f"gaussian_kl(0, 0) should be exactly 0 (q is the prior), got {zero[0].item():.4g}")
    return "the KL is zero at the prior and matches the closed form on random Gaussians."


@checker
def check_reparameterize(reparameterize):
    """``reparameterize(mu, logvar) -> z``: z = mu + exp(logvar / 2) * eps, differentiable in mu, logvar."""
    mu = torch.tensor([1.0, -2.0]).repeat(100_000, 1).requires_grad_(True)
    logvar = torch.tensor([math.log(4.0), math.log(0.25)]).repeat(100_000, 1).requires_grad_(True)
    torch.manual_seed(0)
    z = expect_tensor("reparameterize", reparameterize(mu, logvar), mu.shape)
    mean, var = z.detach().mean(0), z.detach().var(0)
    if var.max() < 1e-8:
        raise ExerciseError("reparameterize returned no noise: add sigma * eps with eps = torch.randn_like(mu)")
    if not torch.allclose(mean, torch.tensor([1.0, -2.0]), atol=0.03):
        raise ExerciseError(f"the samples should have mean mu = [1, -2], got {mean.tolist()}")
    if torch.allclose(var, torch.tensor([16.0, 0.0625]), rtol=0.05):
        raise ExerciseError(
            "the variance is exp(logvar)^2: you used exp(logvar) as the standard deviation; sigma = exp(logvar / 2)"
        )
    if torch.allclose(var, torch.tensor([math.log(4.0), math.log(0.25)]).abs(), rtol=0.05):
        raise ExerciseError("the variance should be exp(logvar), not logvar: sigma = exp(logvar / 2)")
    if not torch.allclose(var, torch.tensor([4.0, 0.25]), rtol=0.05):
        raise ExerciseError(f"the samples should have variance exp(logvar) = [4, 0.25], got {var.tolist()}")
    if not z.requires_grad:
        raise ExerciseError(
            "z carries no gradient: build it as mu + sigma * eps from the tensors mu and logvar "
            "(torch.normal(...) or .detach() cut the graph, which is what the trick avoids)"
        )
    z[:, 0].sum().backward()
    if mu.grad is None or logvar.grad is None or logvar.grad[:, 0].abs().sum() == 0:
        raise ExerciseError("the gradient does not reach both mu and logvar: z must be mu + exp(logvar / 2) * eps")
    return "z = mu + sigma * eps has the right mean and variance, and gradients flow to mu and logvar."


def negative_elbo(model, x, reparameterize=None, gaussian_kl=None):
    """-ELBO(x) = KL(q(z|x) || p(z)) - log p(x|z) per image ``[B]``, one z ~ q(z|x) each, built from
    ``reparameterize`` and ``gaussian_kl`` (the package's by default): the reference answer of notebook 04's
    exercise, which its training loop falls back on."""
    from gencourse import vae

    reparameterize, gaussian_kl = reparameterize or vae.reparameterize, gaussian_kl or vae.gaussian_kl
    mu, logvar = model.encode(x)
    return gaussian_kl(mu, logvar) - model.log_px_given_z(x, reparameterize(mu, logvar))


def _tiny_vae():
    """A VAE of 4x4 binary images with linear encoder and decoder and fixed weights, chosen so that each
    term is large enough to tell the usual mistakes apart: a KL of 2 to 4 nats, and log p(x|z) that
    varies by several nats with z."""
    from gencourse.vae import VAE, Conditional

    g = torch.Generator().manual_seed(0)
    encoder = Conditional(torch.nn.Linear(16, 4), flatten=True)
    decoder = Conditional(torch.nn.Linear(2, 16), out_shape=(1, 4, 4))
    with torch.no_grad():
        encoder.net.weight.copy_(0.3 * torch.randn(4, 16, generator=g))
        encoder.net.bias.copy_(torch.tensor([2.0, -1.5, -0.7, 0.5]))
        decoder.net.weight.copy_(1.5 * torch.randn(16, 2, generator=g))
        decoder.net.bias.copy_(torch.randn(16, generator=g))
    return VAE(encoder, decoder, 2, x_shape=(1, 4, 4))


@checker
def check_negative_elbo(negative_elbo):
    """``negative_elbo(model, x) -> [B]``: -(log p(x|z) - KL(q(z|x) || p(z))) with one z ~ q(z|x) per image,
    drawn with the reparameterization trick. Compared with ``-VAE.elbo`` on a small VAE: on average over
    many draws (so any way of drawing the noise passes), and gradients must reach encoder and decoder."""
    from gencourse.vae import gaussian_kl

    model = _tiny_vae()
    x = (torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    got = expect_tensor("negative_elbo", negative_elbo(model, x))
    if got.numel() == 1:
        raise ExerciseError(
            "negative_elbo returned one number for the whole batch: return one value per image, shape [B] "
            "(the training loop takes the mean)"
        )
    expect_tensor("negative_elbo", got, (4,))
    if not got.requires_grad:
        raise ExerciseError(
            "negative_elbo carries no gradient, so training could not use it: compute it from the model's "
            "outputs without .detach(), .item() or torch.no_grad"
        )
    got.sum().backward()
    if model.encoder.net.weight.grad is None or model.encoder.net.weight.grad.abs().sum() == 0:
        raise ExerciseError(
            "no gradient reaches the encoder: draw z with your reparameterize(mu, logvar) from the encoder's "
            "mu and logvar (not detached, not under torch.no_grad), and use them in the KL"
        )
    if model.decoder.net.weight.grad is None or model.decoder.net.weight.grad.abs().sum() == 0:
        raise ExerciseError("no gradient reaches the decoder: score x with model.log_px_given_z(x, z)")

    n = 20_000
    xs = x.repeat(n, 1, 1, 1)  # row i * 4 + j is image j
    with torch.no_grad():
        torch.manual_seed(0)
        values = expect_tensor("negative_elbo", negative_elbo(model, xs), (4 * n,)).view(n, 4)
        torch.manual_seed(1)
        reference = (-model.elbo(xs)).view(n, 4)
        kl = gaussian_kl(*model.encode(x))
    if values.std(0).max() < 1e-6:
        raise ExerciseError(
            "negative_elbo gives the same value on every call: z must be a random draw from q(z|x) "
            "(your reparameterize(mu, logvar)), not mu itself"
        )
    mean, expected = values.mean(0), reference.mean(0)
    tolerance = 5 * ((values.var(0) + reference.var(0)) / n).sqrt() + 1e-3
    rec = kl - expected  # E_q[log p(x|z)], estimated

    def near(candidate):
        return bool(((mean - candidate).abs() <= tolerance).all())

    if near(expected):
        return "on average it matches -VAE.elbo, one value per image, and gradients reach encoder and decoder."
    for candidate, why in [
        (-expected, "it is the ELBO itself; the loss to minimise is its negative"),
        (-rec - kl, "the KL has the wrong sign: the ELBO subtracts it from log p(x|z), so the negative ELBO adds it"),
        (-rec, "the KL term is missing: add KL(q(z|x) || p(z)), your gaussian_kl of the encoder's mu and logvar"),
    ]:
        if near(candidate):
            raise ExerciseError(f"negative_elbo is not right yet: {why}")
    raise ExerciseError(
        f"negative_elbo is not right yet: over {n} draws per image it averages "
        f"{[round(v, 2) for v in mean.tolist()]} nats, -VAE.elbo averages {[round(v, 2) for v in expected.tolist()]}. "
        "It should be -(log p(x|z) - KL(q(z|x) || p(z))), with z drawn from q(z|x) by your reparameterize "
        "(sigma = exp(logvar / 2))"
    )


# ---- Notebook 05: VAEs on images, in depth ----

# The IWAE exercise falls back on gencourse.vae.log_mean_exp; the free-bits penalty lives inside
# gencourse.vae.elbo_loss, so its reference answer, the one notebook 05 falls back on through `use`, is here.


def free_bits_kl(kl: torch.Tensor, lam: float) -> torch.Tensor:
    """The free-bits KL penalty (Kingma et al., 2016), as in :func:`gencourse.vae.elbo_loss`:
    sum_j max(lam, KL_j) with KL_j the batch mean of dimension j's KL; ``kl`` ``[B, d]`` -> scalar."""
    return kl.mean(0).clamp(min=lam).sum()


@checker
def check_iwae_bound(iwae_bound):
    """``iwae_bound(log_w [k, B]) -> [B]``: log (1/k) sum_i exp(log_w_i), computed stably."""
    g = torch.Generator().manual_seed(0)
    log_w = torch.randn(50, 6, generator=g) * 3 - 100
    expected = torch.logsumexp(log_w, 0) - math.log(50)
    got = expect_tensor("iwae_bound", iwae_bound(log_w.clone()))
    if got.shape == (50,):
        raise ExerciseError(
            "iwae_bound reduced over the wrong axis: the k samples are along dim 0, the examples along dim 1"
        )
    if got.shape == expected.shape and torch.allclose(got, log_w.mean(0), atol=1e-4):
        raise ExerciseError(
            "that is the mean of the log weights, the ordinary ELBO: average the weights "
            "themselves (inside the log), log (1/k) sum_i w_i"
        )
    expect_close(
        "iwae_bound", got, expected, atol=1e-4, hint="log (1/k) sum_i exp(log_w_i) = logsumexp(log_w, dim=0) - log k"
    )
    large = -1000 + torch.randn(10, 3, generator=g)
    got = iwae_bound(large)
    if not isinstance(got, torch.Tensor) or not torch.isfinite(got).all():
        raise ExerciseError(
            "iwae_bound gives -inf when the log weights are around -1000 (realistic for images): "
            "exp underflows; use torch.logsumexp, which subtracts the maximum first"
        )
    expect_close("iwae_bound with log weights near -1000", got, torch.logsumexp(large, 0) - math.log(10), atol=1e-3)
    return "log-mean-exp of the weights, stable even for log weights of -1000."


@checker
def check_free_bits_kl(free_bits_kl):
    """``free_bits_kl(kl [B, d], lam) -> scalar``: sum_j max(lam, mean_b kl[b, j])."""
    g = torch.Generator().manual_seed(0)
    kl = torch.rand(16, 5, generator=g) * torch.tensor([0.05, 0.3, 1.0, 2.0, 0.0])
    lam = 0.25
    expected = kl.mean(0).clamp(min=lam).sum()
    got = expect_tensor("free_bits_kl", free_bits_kl(kl.clone(), lam))
    if got.numel() != 1:
        raise ExerciseError(f"free_bits_kl should return one number (a scalar), got shape {tuple(got.shape)}")
    got = got.reshape(())
    if torch.allclose(got, kl.clamp(min=lam).sum(1).mean(), atol=1e-5):
        raise ExerciseError(
            "you clamped each example's KL; free bits clamp the batch average of each "
            "dimension: kl.mean(0).clamp(min=lam).sum()"
        )
    if torch.allclose(got, kl.mean(0).clamp(max=lam).sum(), atol=1e-5):
        raise ExerciseError("max(lam, KL_j) keeps KL_j when it is above lam: use clamp(min=lam), not clamp(max=lam)")
    expect_close(
        "free_bits_kl", got, expected, atol=1e-5, hint="sum over dimensions j of max(lam, mean over the batch of KL_j)"
    )
    return "each dimension's batch-mean KL is floored at lambda, then summed."


# ---- Notebook 06: Normalizing flows ----

# The reference answers that notebook 06 falls back on through `use` (the package's own layer, AffineCoupling,
# is a module with a soft clamp, not this plain function); the bits/dim's reference is
# gencourse.flows.dequantized_bits_per_dim.


def lognormal_log_prob(x: torch.Tensor) -> torch.Tensor:
    """log p(x) ``[N]`` for x = exp(z), z ~ N(0, 1), by the change of variables with the inverse z = log x:
    log N(log x; 0, 1) + log|d(log x)/dx| = log N(log x; 0, 1) - log x."""
    return torch.distributions.Normal(0.0, 1.0).log_prob(x.log()) - x.log()


def affine_coupling(x: torch.Tensor, mask: torch.Tensor, net):
    """``(y, log_det)`` of an affine coupling layer on ``x`` ``[B, D]`` with a 0/1 ``mask`` ``[D]``:
    (s, t) = net(mask * x), y = mask * x + (1 - mask) * (x * exp(s) + t), and log_det ``[B]`` = the sum of s
    where mask == 0 (the Jacobian is triangular, with diagonal 1 where mask == 1 and exp(s) elsewhere)."""
    s, t = net(x * mask)
    y = x * mask + (1 - mask) * (x * torch.exp(s) + t)
    return y, ((1 - mask) * s).sum(dim=1)


@checker
def check_lognormal_log_prob(student_fn):
    """Exercise: x = exp(z), z ~ N(0, 1). ``student_fn(x)`` returns log p(x) ``[N]`` by the change of
    variables log p(x) = log N(log x; 0, 1) + log|d log x / dx| = log N(log x; 0, 1) - log x."""
    x = torch.linspace(0.05, 6.0, 50)
    got = expect_tensor("your function", student_fn(x.clone()), x.shape)
    log_base = torch.distributions.Normal(0.0, 1.0).log_prob(x.log())
    if torch.allclose(got, log_base, atol=1e-4):
        raise ExerciseError(
            "you returned log N(log x; 0, 1) only: the density of x also needs the "
            "log-derivative of the inverse map, log|d(log x)/dx| = -log x"
        )
    if torch.allclose(got, log_base + x.log(), atol=1e-4):
        raise ExerciseError(
            "the Jacobian term has the wrong sign: where exp stretches space (large x) the "
            "density must get smaller, so add log|d(log x)/dx| = -log x"
        )
    expect_close(
        "your log p(x)", got, log_base - x.log(), atol=1e-4, hint="log p(x) = log N(z; 0, 1) - log x with z = log x"
    )
    return "log p(x) = log N(log x) - log x: the log-normal density, Jacobian term included."


def coupling_case(seed: int = 0):
    """The affine-coupling exercise's case: ``(x, mask, net, y, log_det)``, the expected output being that of
    ``gencourse.flows.AffineCoupling`` on a small random input (seeded)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 4, generator=g)
    mask = torch.tensor([1.0, 0.0, 0.0, 1.0])
    w_s, w_t = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)

    def net(x_masked):
        """The conditioner: (s, t), each [B, D]; only their values where mask == 0 are meant to be used."""
        return torch.tanh(x_masked @ w_s), x_masked @ w_t

    # The reference is the package's own layer, so the exercise and gencourse.flows cannot drift apart;
    # its soft clamp c * tanh(s / c) is widened (c = e^20) until it is the identity on these s.
    from gencourse.flows import AffineCoupling

    class Conditioner(torch.nn.Module):
        def forward(self, x_masked):
            return torch.cat(net(x_masked), 1)

    layer = AffineCoupling(mask, Conditioner())
    with torch.no_grad():
        layer.log_clamp.fill_(20.0)
        y, log_det = layer(x)
    return x, mask, net, y, log_det


@checker
def check_affine_coupling(student_fn):
    """Exercise: ``student_fn(x, mask, net) -> (y, log_det)`` for an affine coupling layer,
    y = m * x + (1 - m) * (x * exp(s) + t) with (s, t) = net(m * x), and log_det = sum of s where m = 0."""
    x, mask, net, y_ref, log_det_ref = coupling_case()
    out = student_fn(x.clone(), mask, net)
    if not isinstance(out, tuple) or len(out) != 2:
        raise ExerciseError("return a pair (y, log_det)")
    y = expect_tensor("y", out[0], x.shape)
    log_det = expect_tensor("log_det", out[1])
    if log_det.shape != (len(x),):
        raise ExerciseError(
            f"log_det should hold one number per example, shape ({len(x)},); got "
            f"{tuple(log_det.shape)}. Sum over the feature dimension."
        )
    if not torch.allclose(y[:, mask == 1], x[:, mask == 1], atol=1e-5):
        raise ExerciseError("the masked part (mask == 1) must pass through unchanged: y = x there")
    expect_close("y", y, y_ref, hint="transform only where mask == 0: x * exp(s) + t, with (s, t) = net(mask * x)")
    s, _ = net(x * mask)
    if torch.allclose(log_det, s.sum(1), atol=1e-5):
        raise ExerciseError(
            "log_det sums s over every dimension; the masked ones are copied (derivative 1, "
            "log 1 = 0), so sum s only where mask == 0"
        )
    if torch.allclose(log_det, ((1 - mask) * s.exp()).sum(1), atol=1e-5):
        raise ExerciseError("log_det sums exp(s): the derivative of x * exp(s) + t is exp(s), whose log is s")
    expect_close("log_det", log_det, log_det_ref, hint="log|det J| = sum over mask == 0 of s")
    return "the Jacobian is triangular, so its log-determinant is just the sum of s on the transformed part."


@checker
def check_bits_per_dim(student_fn):
    """Exercise: ``student_fn(log_prob, num_dims)``: bits per dimension of 8-bit images from the density
    ``log_prob`` (nats ``[B]``) of their dequantized version in [0, 1)^D:
    bpd = (-log_prob + D log 256) / (D log 2)."""
    num_dims = 784
    log_prob = torch.tensor([3000.0, 2500.0, -100.0])
    got = expect_tensor("your bits per dim", student_fn(log_prob.clone(), num_dims), log_prob.shape)
    from gencourse.flows import dequantized_bits_per_dim  # the package's formula is the reference

    ref = dequantized_bits_per_dim(log_prob, num_dims)
    if torch.allclose(got, ref - 8, atol=1e-3):
        raise ExerciseError(
            "you are 8 bits per dimension too low: the density lives on [0, 1), where each "
            "pixel value owns a cell of width 1/256; add D log 256 nats before converting"
        )
    if torch.allclose(got, ref * num_dims, rtol=1e-4):
        raise ExerciseError("that is bits per image: divide by the number of dimensions D")
    if torch.allclose(got, ref * math.log(2), rtol=1e-4):
        raise ExerciseError("that is nats per dimension: divide by log 2 to get bits")
    expect_close("your bits per dim", got, ref, atol=1e-4, hint="bpd = (-log p(x) + D log 256) / (D log 2)")
    return (
        "bits/dim = (-log p(x) + D log 256) / (D log 2), p the density of the dequantized image; "
        "8 bits/dim is a uniform guess."
    )


# ---- Notebook 07: Diffusion models ----


def _diagnose(name: str, got, expected: torch.Tensor, mistakes: list[tuple[str, torch.Tensor]], hint: str) -> None:
    """Accept ``got`` if it matches ``expected``; if it matches a known mistake, say which one it is."""
    got = expect_tensor(name, got, expected.shape).to(expected.dtype)
    if torch.allclose(got, expected, atol=1e-5, rtol=1e-4):
        return
    for why, value in mistakes:
        if torch.allclose(got, value, atol=1e-5, rtol=1e-4):
            raise ExerciseError(f"{name} is not right yet: {why}")
    expect_close(name, got, expected, hint=hint)


@checker
def check_q_sample(q_sample):
    """``q_sample(x0, t, noise, schedule) -> x_t`` must be sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
    from gencourse.diffusion import NoiseSchedule

    g = torch.Generator().manual_seed(7)
    for schedule in (NoiseSchedule(1000, "linear"), NoiseSchedule(200, "cosine")):
        x0 = torch.rand(6, 1, 5, 5, generator=g) * 2 - 1
        noise = torch.randn(6, 1, 5, 5, generator=g)
        t = torch.tensor([0, 1, schedule.T // 4, schedule.T // 2, schedule.T - 2, schedule.T - 1])
        got = q_sample(x0.clone(), t.clone(), noise.clone(), schedule)

        def closed_form(signal, noise_std, x=x0, eps=noise):
            return signal * x + noise_std * eps

        abar = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        alpha = schedule.alphas[t].view(-1, 1, 1, 1)
        abar_prev = schedule.alphas_cumprod[(t - 1).clamp(min=0)].view(-1, 1, 1, 1)
        mistakes = [
            (
                "it uses alpha_t (one step) where the closed form needs abar_t = prod_{s<=t} alpha_s "
                "(schedule.alphas_cumprod).",
                closed_form(alpha.sqrt(), (1 - alpha).sqrt()),
            ),
            (
                "the coefficients are variances, not standard deviations: take sqrt(abar_t) and sqrt(1 - abar_t).",
                closed_form(abar, 1 - abar),
            ),
            (
                "the noise is scaled by sqrt(1 - abar_t) but x0 is not scaled by sqrt(abar_t).",
                closed_form(1.0, (1 - abar).sqrt()),
            ),
            (
                "x0 and the noise are swapped: the signal keeps sqrt(abar_t), the noise gets sqrt(1 - abar_t).",
                closed_form(abar.sqrt(), (1 - abar).sqrt(), x=noise, eps=x0),
            ),
            (
                "off by one step: index alphas_cumprod with t itself (steps run 0..T-1).",
                closed_form(abar_prev.sqrt(), (1 - abar_prev).sqrt()),
            ),
        ]
        hint = "x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise, with abar_t reshaped to [B, 1, 1, 1]."
        _diagnose("q_sample", got, closed_form(abar.sqrt(), (1 - abar).sqrt()), mistakes, hint)
    return "x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps for every t and both schedules."


def _float64_schedule(T: int, kind: str):
    """A :class:`~gencourse.diffusion.NoiseSchedule` whose tensors are float64 and consistent
    (alphas = 1 - betas, alphas_cumprod their product), so that every correct way of writing a step
    agrees to many digits: in float32, 1 - abar_t loses most of its digits near t = 0."""
    from gencourse.diffusion import NoiseSchedule

    schedule = NoiseSchedule(T, kind)
    schedule.betas = schedule.betas.cpu().double()
    schedule.alphas = 1 - schedule.betas
    schedule.alphas_cumprod = torch.cumprod(schedule.alphas, 0)
    return schedule


def ddpm_step(x_t, eps, t, schedule, z):
    """Notebook 07's reverse step in the exercise's signature (the reference the notebook falls back on):
    x_{t-1} = mu_theta(x_t, t) + sqrt(beta_t) z, no noise at t = 0 (:func:`gencourse.diffusion.ddpm_step`)."""
    from gencourse.diffusion import ddpm_step as package_step

    return package_step(x_t, eps, t, schedule, noise=z)


@checker
def check_ddpm_step(ddpm_step):
    """``ddpm_step(x_t, eps, t, schedule, z) -> x_{t-1}``: the posterior mean mu~_t(x_t, x0_hat) plus
    sqrt(beta_t) z (Algorithm 2 of Ho et al.), in either of its two algebraically equal forms."""
    g = torch.Generator().manual_seed(11)
    schedule = _float64_schedule(1000, "linear")
    for t in (999, 500, 37, 1, 0):
        x_t, eps, z = (torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64) for _ in range(3))
        got = ddpm_step(x_t.clone(), eps.clone(), t, schedule, z.clone())
        beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alphas_cumprod[t]
        abar_prev = schedule.alphas_cumprod[t - 1] if t > 0 else torch.ones((), dtype=torch.float64)
        noise = beta.sqrt() * z if t > 0 else torch.zeros_like(z)
        right_coef = beta / (1 - abar).sqrt()

        def mean(divide_by=alpha, eps_coef=right_coef, sign=-1, x_t=x_t, eps=eps):
            return (x_t + sign * eps_coef * eps) / divide_by.sqrt()

        def posterior_mean(prev=abar_prev, divide=True, swap=False, x_t=x_t, eps=eps, abar=abar, beta=beta):
            x0_hat = (x_t - (1 - abar).sqrt() * eps) / (abar.sqrt() if divide else 1)
            a, b = prev.sqrt() * beta / (1 - abar), (1 - beta).sqrt() * (1 - prev) / (1 - abar)
            return b * x0_hat + a * x_t if swap else a * x0_hat + b * x_t

        posterior_var = (1 - abar_prev) / (1 - abar) * beta
        mistakes = [
            ("no noise is added: x_{t-1} = mean + sigma_t z with sigma_t = sqrt(beta_t) (except at t = 0).", mean()),
            ("at t = 0 the last step returns the mean, without noise.", mean() + beta.sqrt() * z),
            ("sigma_t is a standard deviation: add sqrt(beta_t) * z, not beta_t * z.", mean() + noise * beta.sqrt()),
            (
                "sigma_t^2 is beta_t in this exercise (as in Ho et al.'s Algorithm 2), not the posterior's "
                "variance beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t.",
                mean() + posterior_var.sqrt() * z,
            ),
            (
                "at t = 0, abar_{t-1} is 1 (nothing is noised before the first step), but alphas_cumprod[t - 1] "
                "is alphas_cumprod[-1], the LAST step: use schedule.abar(t - 1).",
                posterior_mean(prev=schedule.alphas_cumprod[-1]),
            ),
            (
                "x0_hat divides by sqrt(abar_t): x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t).",
                posterior_mean(divide=False) + noise,
            ),
            ("the coefficients of x0_hat and x_t in mu~_t are swapped.", posterior_mean(swap=True) + noise),
            ("the mean divides by sqrt(alpha_t) (this step), not sqrt(abar_t).", mean(divide_by=abar) + noise),
            (
                "the noise term in the mean is beta_t / sqrt(1 - abar_t) * eps, not sqrt(1 - abar_t) * eps.",
                mean(eps_coef=(1 - abar).sqrt()) + noise,
            ),
            ("the predicted noise is to be subtracted from x_t, not added.", mean(sign=1) + noise),
        ]
        hint = (
            "x_{t-1} = mu~_t(x_t, x0_hat) + sqrt(beta_t) z with x0_hat = (x_t - sqrt(1 - abar_t) eps) / "
            "sqrt(abar_t); no noise at t = 0."
        )
        _diagnose(f"ddpm_step at t={t}", got, mean() + noise, mistakes, hint)
    return (
        "one reverse step matches Algorithm 2 of Ho et al. (2020): the posterior mean at the network's "
        "x0_hat, plus sqrt(beta_t) z, and no noise on the last step."
    )


def guided_eps(eps_cond, eps_uncond, w):
    """Notebook 07's classifier-free guidance combination (the reference the notebook falls back on):
    eps_uncond + w (eps_cond - eps_uncond), see :func:`gencourse.diffusion.guided`."""
    return eps_uncond + w * (eps_cond - eps_uncond)


@checker
def check_guided_eps(guided_eps):
    """``guided_eps(eps_cond, eps_uncond, w)``: the noise prediction whose score is
    grad log q_t(x_t) + w grad log q_t(y | x_t)."""
    g = torch.Generator().manual_seed(13)
    for w in (3.0, 0.0, 1.0, 0.5):
        cond, uncond = (torch.randn(4, 1, 5, 5, generator=g) for _ in range(2))
        got = guided_eps(cond.clone(), uncond.clone(), w)
        mistakes = [
            (
                "the two predictions have swapped roles: w = 0 must give the unconditional model and w = 1 the "
                "conditional one.",
                cond + w * (uncond - cond),
            ),
            (
                "that is (1 + w) eps_cond - w eps_uncond, Ho & Salimans's way of writing it, where w = 0 is "
                "the conditional model; here w = 1 must give the conditional model and w = 0 the unconditional one.",
                (1 + w) * cond - w * uncond,
            ),
            (
                "the classifier's score is a difference, grad log q_t(x_t | y) - grad log q_t(x_t): subtract the "
                "unconditional prediction inside the bracket.",
                uncond + w * cond,
            ),
            ("only the conditional prediction is scaled: where is the unconditional model's score?", w * cond),
        ]
        hint = (
            "the score of q_t(x_t) q_t(y | x_t)^w is grad log q_t(x_t) + w grad log q_t(y | x_t); write the "
            "classifier's score with Bayes' rule, then turn scores into noise predictions (a common factor "
            "-sqrt(1 - abar_t))."
        )
        _diagnose(f"guided_eps with w={w:g}", got, uncond + w * (cond - uncond), mistakes, hint)
    return "eps_uncond + w (eps_cond - eps_uncond): w = 0 is the unconditional model, w = 1 the conditional one."


class _RecordingVelocity(torch.nn.Module):
    """v(x, t) = a x + t (``a`` a learnable float64 scalar) that records the (x_t, t) it is called with."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
        self.calls = []

    def forward(self, x, t, y=None):
        t = torch.as_tensor(t)
        if t.shape != (len(x),):
            raise ExerciseError(
                f"call net(x_t, t) with one time per example, t of shape [{len(x)}], got shape {tuple(t.shape)} "
                "(reshape t to [B, 1] only to mix x0 and x1)"
            )
        self.calls.append((x.detach().cpu().double().clone(), t.detach().cpu().double().clone()))
        return self.a * x + t.to(x.dtype)[:, None]


@checker
def check_flow_matching_loss(flow_matching_loss):
    """``flow_matching_loss(net, x1) -> scalar``: E || net(x_t, t) - (x1 - x0) ||^2 with x0 ~ N(0, I),
    t ~ U[0, 1] and x_t = (1 - t) x0 + t x1. Checked exactly: from the x_t and t the network was called
    with, the noise x0 the function drew is recovered, and the loss recomputed."""
    x1 = 2 + torch.rand(4096, 2, generator=torch.Generator().manual_seed(17), dtype=torch.float64)  # data in [2, 3]^2
    net = _RecordingVelocity()
    with torch.random.fork_rng():  # the notebook's random numbers stay as they were
        torch.manual_seed(17)
        loss = flow_matching_loss(net, x1.clone())
    loss = expect_tensor("flow_matching_loss", loss)
    if loss.dim() != 0:
        raise ExerciseError(
            f"flow_matching_loss returned shape {tuple(loss.shape)}: return one number, the mean over the batch "
            "and the dimensions"
        )
    if not net.calls:
        raise ExerciseError("flow_matching_loss never calls net(x_t, t): the loss compares its output with a target")
    if not loss.requires_grad:
        raise ExerciseError("the loss carries no gradient: compute it with torch operations (no .item(), no detach)")
    x_t, t = net.calls[-1]
    if x_t.shape != x1.shape:
        raise ExerciseError(f"net got x_t of shape {tuple(x_t.shape)}; x_t has the shape of x1, {tuple(x1.shape)}")
    if t.min() < 0 or t.max() > 1 or t.std() < 0.2 or abs(t.mean() - 0.5) > 0.05 or abs(t.std() - 0.2887) > 0.03:
        raise ExerciseError(
            f"the times should be uniform on [0, 1], one per example (torch.rand); got values in "
            f"[{t.min():.3g}, {t.max():.3g}] with mean {t.mean():.3g} and std {t.std():.3g}"
        )
    s = t[:, None]
    inner = t < 0.95
    x0 = (x_t - s * x1) / (1 - s)  # the noise this x_t implies, if x_t = (1 - t) x0 + t x1

    def standard_normal(x):
        return abs(x.mean()) < 0.1 and abs(x.std() - 1) < 0.1

    if not standard_normal(x0[inner]):
        outer = t > 0.05
        swapped = (x_t - (1 - s) * x1) / s
        if standard_normal(swapped[outer]):
            raise ExerciseError(
                "time runs the other way in flow matching: x_t = (1 - t) x0 + t x1 is the noise x0 at t = 0 "
                "and the data x1 at t = 1."
            )
        raise ExerciseError(
            "x_t must lie on the straight line between a noise sample x0 ~ N(0, I) (torch.randn_like(x1)) and "
            "the data x1: x_t = (1 - t) x0 + t x1, with t reshaped to [B, 1]."
        )
    v = net.a.detach() * x_t + s
    target = x1 - x0
    mistakes = [
        ("the target is the wrong way round: the path moves from x0 to x1.", ((v - (x0 - x1)) ** 2).mean()),
        ("the target is the velocity of the path, dx_t/dt, not the data x1.", ((v - x1) ** 2).mean()),
        ("the target is dx_t/dt = x1 - x0, not x1 - x_t.", ((v - (x1 - x_t)) ** 2).mean()),
        ("average over every entry (.mean()), not a sum.", ((v - target) ** 2).sum()),
        ("average over the dimensions too: .mean() over every entry.", ((v - target) ** 2).sum(1).mean()),
        ("the error is squared, not its absolute value.", (v - target).abs().mean()),
    ]
    _diagnose(
        "flow_matching_loss",
        loss.detach().cpu().double(),
        ((v - target) ** 2).mean(),
        mistakes,
        "the mean over the batch and the dimensions of (net(x_t, t) - dx_t/dt)^2.",
    )
    return "x_t on the straight line from noise to data, the target dx_t/dt = x1 - x0, a mean squared error."
