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
