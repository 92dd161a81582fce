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
