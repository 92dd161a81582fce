"""Checkers for the notebooks' "Your turn" exercises.

Each ``check_<name>(student_fn)`` calls the student's function on cases with known answers and either
prints what was right or raises :class:`ExerciseError` saying what is wrong (a wrong shape, a wrong
sign, off by a constant...). A stub that still raises ``NotImplementedError`` gets a friendly
"not done yet" message instead of a traceback. Sections follow the notebooks.
"""

from __future__ import annotations

import functools
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


# ---- Notebook 05: VAEs on images, in depth ----


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


@checker
def check_ddpm_step(ddpm_step):
    """``ddpm_step(x_t, eps, t, schedule, z) -> x_{t-1}``: Algorithm 2 of Ho et al. with sigma_t^2 = beta_t."""
    from gencourse.diffusion import NoiseSchedule

    g = torch.Generator().manual_seed(11)
    schedule = NoiseSchedule(1000, "linear")
    for t in (999, 500, 37, 1, 0):
        x_t, eps, z = (torch.randn(4, 1, 5, 5, generator=g) for _ in range(3))
        got = ddpm_step(x_t.clone(), eps.clone(), t, schedule, z.clone())
        beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alphas_cumprod[t]
        noise = beta.sqrt() * z if t > 0 else torch.zeros_like(z)
        right_coef = beta / (1 - abar).sqrt()

        def mean(divide_by=alpha, eps_coef=right_coef, sign=-1, x_t=x_t, eps=eps):
            return (x_t + sign * eps_coef * eps) / divide_by.sqrt()

        mistakes = [
            ("no noise is added: x_{t-1} = mean + sigma_t z with sigma_t = sqrt(beta_t) (except at t = 0).", mean()),
            ("at t = 0 the last step returns the mean, without noise.", mean() + beta.sqrt() * z),
            ("sigma_t is a standard deviation: add sqrt(beta_t) * z, not beta_t * z.", mean() + noise * beta.sqrt()),
            ("the mean divides by sqrt(alpha_t) (this step), not sqrt(abar_t).", mean(divide_by=abar) + noise),
            (
                "the noise term in the mean is beta_t / sqrt(1 - abar_t) * eps, not sqrt(1 - abar_t) * eps.",
                mean(eps_coef=(1 - abar).sqrt()) + noise,
            ),
            ("the predicted noise is to be subtracted from x_t, not added.", mean(sign=1) + noise),
        ]
        hint = "x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sqrt(beta_t) z; no noise at t = 0."
        _diagnose(f"ddpm_step at t={t}", got, mean() + noise, mistakes, hint)
    return "one reverse step matches Algorithm 2 of Ho et al. (2020), including the noiseless last step."
