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


# ---- Notebook 06: Normalizing flows ----


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


def _coupling_case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 4, generator=g)
    mask = torch.tensor([1.0, 0.0, 0.0, 1.0])
    w_s, w_t = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)

    def net(x_masked):
        """The conditioner: (s, t), each [B, D]; only their values where mask == 0 are meant to be used."""
        return torch.tanh(x_masked @ w_s), x_masked @ w_t

    s, t = net(x * mask)
    y = x * mask + (1 - mask) * (x * s.exp() + t)
    return x, mask, net, y, ((1 - mask) * s).sum(1)


@checker
def check_affine_coupling(student_fn):
    """Exercise: ``student_fn(x, mask, net) -> (y, log_det)`` for an affine coupling layer,
    y = m * x + (1 - m) * (x * exp(s) + t) with (s, t) = net(m * x), and log_det = sum of s where m = 0."""
    x, mask, net, y_ref, log_det_ref = _coupling_case()
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
    ref = (-log_prob + num_dims * math.log(256)) / (num_dims * math.log(2))
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
    return "bits/dim = (negative log-likelihood + D log 256) / (D log 2); 8 bits/dim is a uniform guess."
