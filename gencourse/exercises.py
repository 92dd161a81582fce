"""Checkers for the notebooks' "Your turn" exercises.

Each ``check_<name>(student_fn)`` calls the student's function on cases with known answers and either
prints what was right or raises :class:`ExerciseError` saying what is wrong (a wrong shape, a wrong
sign, off by a constant...). A stub that still raises ``NotImplementedError`` gets a friendly
"not done yet" message instead of a traceback. Sections follow the notebooks.
"""

from __future__ import annotations

import functools

import torch


class ExerciseError(AssertionError):
    """The answer to an exercise is not right yet; the message says what is wrong."""


def checker(fn):
    """Wrap a ``check_*`` function: validate the argument, turn ``NotImplementedError`` into a
    "your turn" message, and print a success line when every case passes."""

    @functools.wraps(fn)
    def wrapper(student_fn, *args, **kwargs):
        if not callable(student_fn):
            raise ExerciseError(f"{fn.__name__} expects your function itself (no parentheses), "
                                f"got {type(student_fn).__name__}")
        try:
            summary = fn(student_fn, *args, **kwargs)
        except NotImplementedError as exc:
            raise ExerciseError(f"`{getattr(student_fn, '__name__', 'your function')}` is not written yet: "
                                f"replace the `raise NotImplementedError` line with your code ({exc})") from None
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


def expect_close(name: str, got: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4,
                 hint: str = "") -> None:
    """Raise an :class:`ExerciseError` that says how ``got`` differs from ``expected``."""
    got = expect_tensor(name, got, expected.shape).to(expected.dtype)
    if torch.allclose(got, expected, atol=atol, rtol=rtol):
        return
    diff = got - expected
    if torch.allclose(got, -expected, atol=atol, rtol=rtol):
        why = "the sign is flipped"
    elif torch.allclose(diff, diff.flatten()[0].expand_as(diff), atol=atol, rtol=rtol):
        why = f"off by a constant {diff.flatten()[0].item():.4g}"
    elif (expected.abs() > atol).all() and torch.allclose(got / expected, (got / expected).flatten()[0].expand_as(got), rtol=rtol, atol=atol):
        why = f"off by a factor {(got / expected).flatten()[0].item():.4g}"
    else:
        why = f"largest difference {diff.abs().max().item():.4g}"
    raise ExerciseError(f"{name} is not right yet: {why}. Expected e.g. {expected.flatten()[:3].tolist()}, "
                        f"got {got.flatten()[:3].tolist()}." + (f" Hint: {hint}" if hint else ""))


# ---- Notebook 07: Diffusion models ----


def _diagnose(name: str, got: torch.Tensor, expected: torch.Tensor, wrong: dict[str, torch.Tensor], hint: str) -> None:
    """Compare ``got`` with the right answer; if it matches a known wrong answer, say which mistake it is."""
    got = expect_tensor(name, got, expected.shape)
    if torch.allclose(got.to(expected.dtype), expected, atol=1e-5, rtol=1e-4):
        return
    for why, value in wrong.items():
        if torch.allclose(got.to(value.dtype), value, atol=1e-5, rtol=1e-4):
            raise ExerciseError(f"{name} is not right yet: {why}")
    expect_close(name, got, expected, hint=hint)


@checker
def check_q_sample(student_fn):
    """``student_fn(x0, t, noise, schedule) -> x_t`` must be sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
    from gencourse.diffusion import NoiseSchedule, q_sample

    g = torch.Generator().manual_seed(7)
    for schedule in (NoiseSchedule(1000, "linear"), NoiseSchedule(200, "cosine")):
        x0 = torch.rand(6, 1, 5, 5, generator=g) * 2 - 1
        noise = torch.randn(6, 1, 5, 5, generator=g)
        t = torch.tensor([0, 1, schedule.T // 4, schedule.T // 2, schedule.T - 2, schedule.T - 1])
        got = student_fn(x0.clone(), t.clone(), noise.clone(), schedule)
        abar = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        alpha = schedule.alphas[t].view(-1, 1, 1, 1)
        abar_prev = schedule.alphas_cumprod[(t - 1).clamp(min=0)].view(-1, 1, 1, 1)
        wrong = {
            "it uses alpha_t (one step) where the closed form needs abar_t = prod_{s<=t} alpha_s "
            "(schedule.alphas_cumprod).": alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise,
            "the coefficients are variances, not standard deviations: take sqrt(abar_t) and "
            "sqrt(1 - abar_t).": abar * x0 + (1 - abar) * noise,
            "the noise is scaled by sqrt(1 - abar_t) but x0 is not scaled by sqrt(abar_t).":
                x0 + (1 - abar).sqrt() * noise,
            "x0 and the noise are swapped: the signal keeps sqrt(abar_t), the noise gets sqrt(1 - abar_t).":
                abar.sqrt() * noise + (1 - abar).sqrt() * x0,
            "off by one step: index alphas_cumprod with t itself (steps run 0..T-1).":
                abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * noise,
        }
        _diagnose("q_sample", got, q_sample(x0, t, noise, schedule), wrong,
                  hint="x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise, with abar_t reshaped to [B, 1, 1, 1].")
    return "x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps for every t and both schedules."


@checker
def check_ddpm_step(student_fn):
    """``student_fn(x_t, eps, t, schedule, z) -> x_{t-1}``: Algorithm 2 of Ho et al. with sigma_t^2 = beta_t."""
    from gencourse.diffusion import NoiseSchedule, ddpm_step

    g = torch.Generator().manual_seed(11)
    schedule = NoiseSchedule(1000, "linear")
    for t in (999, 500, 37, 1, 0):
        x_t, eps, z = (torch.randn(4, 1, 5, 5, generator=g) for _ in range(3))
        got = student_fn(x_t.clone(), eps.clone(), t, schedule, z.clone())
        beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alphas_cumprod[t]
        mean = (x_t - beta / (1 - abar).sqrt() * eps) / alpha.sqrt()
        expected = ddpm_step(x_t, eps, t, schedule, noise=z)
        wrong = {
            "no noise is added: x_{t-1} = mean + sigma_t z with sigma_t = sqrt(beta_t) (except at t = 0).": mean,
            "at t = 0 the last step returns the mean, without noise.": mean + beta.sqrt() * z,
            "sigma_t is a standard deviation: add sqrt(beta_t) * z, not beta_t * z.": mean + (beta * z if t else 0),
            "the mean divides by sqrt(alpha_t) (this step), not sqrt(abar_t).":
                (x_t - beta / (1 - abar).sqrt() * eps) / abar.sqrt() + (beta.sqrt() * z if t else 0),
            "the noise term in the mean is beta_t / sqrt(1 - abar_t) * eps (not sqrt(1 - abar_t) * eps).":
                (x_t - (1 - abar).sqrt() * eps) / alpha.sqrt() + (beta.sqrt() * z if t else 0),
            "the predicted noise is subtracted from x_t, not added.":
                (x_t + beta / (1 - abar).sqrt() * eps) / alpha.sqrt() + (beta.sqrt() * z if t else 0),
        }
        _diagnose(f"ddpm_step at t={t}", got, expected, wrong,
                  hint="x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(alpha_t) + sqrt(beta_t) * z, "
                       "and no noise at t = 0.")
    return "one reverse step matches Algorithm 2 of Ho et al. (2020), including the noiseless last step."
