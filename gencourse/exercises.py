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


# ---- Notebook 01: Introduction to generative models ----


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
