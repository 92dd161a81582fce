"""Autoencoders and variational autoencoders: the Gaussian KL, the reparameterization trick, the ELBO
and the importance-weighted bound, and the loss that trains them. The course's trained MNIST models are
in :mod:`gencourse.recipes.vae`; what their latent codes are good for, in :mod:`gencourse.downstream`.

Data ranges: every image model here takes ``x`` in [0, 1], shape ``[B, 1, 28, 28]``. The Bernoulli
decoder is meant for binary pixels (the MNIST models train on dynamically binarized MNIST, x in {0, 1},
and their likelihoods are only likelihoods for binary x); grey levels in [0, 1] still encode fine
(they are the mean of the binarized image). The Gaussian decoder models real-valued x. Inputs outside
these ranges (pixels in [0, 255], images in [-1, 1], NaN), of another dtype or shape, are refused with an
error that says what was expected: for a Bernoulli decoder they would give a number that is no likelihood.

    q(z|x) = N(mu(x), diag(exp(logvar(x))))        p(z) = N(0, I)        p(x|z) = Bernoulli or Gaussian
    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x)
    IWAE_k(x) = E[log 1/k sum_i p(x, z_i) / q(z_i|x)],  z_i ~ q(z|x)  (Burda et al., 2016)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gencourse.checks import check_count, check_labels, check_values, on_device_of
from gencourse.data import binarize, mnist
from gencourse.nn import MLP, ConvDecoder, ConvEncoder

LIKELIHOODS = ("bernoulli", "gaussian")
LOG_2PI = math.log(2 * math.pi)


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - log sigma^2 - 1), elementwise ``[B, d]``."""
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape")
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) = 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1).

    ``mu``, ``logvar``: ``[B, d]`` -> ``[B]`` (nats, summed over the latent dimensions).
    """
    return gaussian_kl_per_dim(mu, logvar).sum(-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2): a sample of N(mu, sigma^2)
    that is a differentiable function of (mu, logvar). Any shape; ``z`` has the shape of ``mu``."""
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape")
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def log_normal(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))) summed over all but the first dimension -> ``[B]``."""
    return (-0.5 * ((x - mean).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)).flatten(1).sum(1)


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x; sigmoid(logits)) = x log p + (1 - x) log(1 - p), summed per example -> ``[B]``."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log (1/k sum_i exp(log_w_i)) along ``dim``, computed stably with logsumexp."""
    return torch.logsumexp(log_w, dim) - math.log(log_w.shape[dim])


class Conditional(nn.Module):
    """Runs ``net`` on its input joined with an optional condition ``c`` ``[B, m]`` (a one-hot label):
    appended to a vector input, or as ``m`` constant planes to an image input ``[B, C, H, W]``.
    ``flatten`` flattens an image input first (MLPs); ``out_shape`` reshapes the output."""

    def __init__(self, net: nn.Module, flatten: bool = False, out_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.net, self.flatten, self.out_shape = net, flatten, out_shape

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.flatten:
            x = x.flatten(1)
        if c is not None:
            c = c.to(x.dtype)
            planes = c[:, :, None, None].expand(-1, -1, *x.shape[2:]) if x.dim() == 4 else c
            x = torch.cat([x, planes], dim=1)
        out = self.net(x)
        return out.view(len(out), *self.out_shape) if self.out_shape else out


class Autoencoder(nn.Module):
    """A deterministic MLP autoencoder: x ``[B, *x_shape]`` in [0, 1] -> code ``[B, code_dim]`` -> x.

    The decoder outputs Bernoulli logits; :meth:`loss` is the binary cross-entropy summed over pixels.
    """

    def __init__(self, *, code_dim: int = 2, hidden=(512, 256), x_shape=(1, 28, 28), act: str = "silu"):
        super().__init__()
        self.code_dim, self.x_shape = code_dim, tuple(x_shape)
        dim = math.prod(self.x_shape)
        self.encoder = Conditional(MLP(dim, code_dim, hidden, act), flatten=True)
        self.decoder = Conditional(MLP(code_dim, dim, tuple(reversed(hidden)), act), out_shape=self.x_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``[B, code_dim]`` of ``x`` ``[B, *x_shape]`` in [0, 1] (on the model's device)."""
        _check_x(self, x)
        return self.encoder(on_device_of(self, x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``[B, *x_shape]`` in [0, 1] of ``code`` ``[B, code_dim]``."""
        return torch.sigmoid(self.decoder(on_device_of(self, code)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction loss per example ``[B]``: -sum_pixels [x log x_hat + (1 - x) log(1 - x_hat)]."""
        return -bernoulli_log_prob(on_device_of(self, x), self.decoder(self.encode(x)))


def _check_x(model: Autoencoder | VAE, x: torch.Tensor) -> None:
    """The entry check of every method that takes images: the dtype of the weights, the shape, and the
    range, in one min/max pass: [0, 1] for a Bernoulli decoder (outside it log p(x|z) is no likelihood at
    all), finite for a Gaussian one."""
    bernoulli = getattr(model, "likelihood", "bernoulli") == "bernoulli"
    check_values(x, "x", *((0, 1) if bernoulli else ()), dtype=next(model.parameters()).dtype)
    if tuple(x.shape[1:]) != model.x_shape:
        raise ValueError(
            f"expected inputs of shape [B, {', '.join(map(str, model.x_shape))}], got {tuple(x.shape)}; "
            "MNIST batches are [B, 1, 28, 28] (ImageData.tensors / .loader give that)"
        )


class VAE(nn.Module):
    """A variational autoencoder with a diagonal-Gaussian encoder q(z|x) and a prior p(z) = N(0, I).

    - ``encoder(x[, c])`` -> ``[B, 2 * latent_dim]`` (mu and logvar); ``decoder(z[, c])`` ->
      ``[B, *x_shape]``: Bernoulli logits (``likelihood="bernoulli"``, x in {0, 1}) or the Gaussian
      mean (``likelihood="gaussian"``, real x; std ``sigma`` if given, else one learned scalar).
    - ``num_classes > 0`` makes it a conditional VAE: q(z|x, y), p(x|z, y); every method then takes
      the labels ``y`` ``[B]`` (int64).
    - Build one with :meth:`mlp` or :meth:`conv`, or pass your own networks (as the tests do).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        *,
        x_shape=(1, 28, 28),
        likelihood: str = "bernoulli",
        sigma: float | None = None,
        num_classes: int = 0,
    ):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; choose one of: {', '.join(LIKELIHOODS)}")
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.x_shape = latent_dim, tuple(x_shape)
        self.likelihood, self.num_classes = likelihood, num_classes
        if likelihood == "gaussian":
            log_sigma = torch.tensor(math.log(sigma) if sigma is not None else 0.0)
            self.log_sigma = nn.Parameter(log_sigma, requires_grad=sigma is None)

    @classmethod
    def mlp(
        cls,
        *,
        latent_dim: int = 32,
        hidden=(512, 256),
        x_shape=(1, 28, 28),
        likelihood: str = "bernoulli",
        sigma: float | None = None,
        num_classes: int = 0,
        act: str = "silu",
    ) -> VAE:
        """MLP encoder ``D -> hidden -> 2 latent_dim`` and the mirrored decoder ``latent_dim -> D``."""
        dim = math.prod(x_shape)
        encoder = Conditional(MLP(dim + num_classes, 2 * latent_dim, hidden, act), flatten=True)
        decoder = Conditional(
            MLP(latent_dim + num_classes, dim, tuple(reversed(hidden)), act), out_shape=tuple(x_shape)
        )
        return cls(
            encoder, decoder, latent_dim, x_shape=x_shape, likelihood=likelihood, sigma=sigma, num_classes=num_classes
        )

    @classmethod
    def conv(
        cls,
        *,
        latent_dim: int = 32,
        ch: int = 32,
        decoder: str = "conv",
        dec_ch: int | None = None,
        dec_hidden=(256, 512),
        in_channels: int = 1,
        likelihood: str = "bernoulli",
        sigma: float | None = None,
        num_classes: int = 0,
    ) -> VAE:
        """A convolutional encoder (:class:`gencourse.nn.ConvEncoder`, width ``ch``) for
        ``[B, in_channels, 28, 28]`` images, and a ``decoder`` that is either convolutional
        (:class:`~gencourse.nn.ConvDecoder`, width ``dec_ch``, default ``ch``) or an MLP (``dec_hidden``).
        No normalisation layers, so each example's ELBO does not depend on the rest of the batch.

        Why offer an MLP decoder: the decoder does most of the work, and the importance-weighted bound
        runs it k times per image (k = 500 or more for a likelihood estimate), and on a CPU a convolutional
        decoder makes that evaluation many times slower than an MLP.
        """
        x_shape = (in_channels, 28, 28)
        enc = Conditional(ConvEncoder(2 * latent_dim, in_channels + num_classes, ch, norm="none"))
        if decoder == "conv":
            dec = Conditional(ConvDecoder(latent_dim + num_classes, in_channels, dec_ch or ch, norm="none"))
        elif decoder == "mlp":
            dec = Conditional(MLP(latent_dim + num_classes, math.prod(x_shape), tuple(dec_hidden)), out_shape=x_shape)
        else:
            raise ValueError(f"unknown decoder {decoder!r}; choose 'conv' or 'mlp'")
        return cls(enc, dec, latent_dim, x_shape=x_shape, likelihood=likelihood, sigma=sigma, num_classes=num_classes)

    def _condition(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.num_classes:
            if y is not None:
                raise ValueError("this VAE is not conditional (num_classes=0): call it without labels")
            return None
        if y is None:
            raise ValueError(f"this conditional VAE needs labels y [B] in 0..{self.num_classes - 1}")
        y = on_device_of(self, check_labels(y, self.num_classes, n, "y"))
        return F.one_hot(y.long(), self.num_classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): ``(mu, logvar)``, each ``[B, latent_dim]``, for ``x`` ``[B, *x_shape]`` (in [0, 1] for a
        Bernoulli decoder; anything else, NaN or a wrong dtype or shape, is refused with an error)."""
        _check_x(self, x)
        mu, logvar = self.encoder(on_device_of(self, x), self._condition(y, len(x))).chunk(2, dim=1)
        return mu, logvar

    def decoder_output(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's raw output ``[B, *x_shape]``: Bernoulli logits or the Gaussian mean."""
        return self.decoder(on_device_of(self, z), self._condition(y, len(z)))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E[x|z]: the mean of p(x|z) ``[B, *x_shape]`` (pixel probabilities in [0, 1] for Bernoulli)."""
        out = self.decoder_output(z, y)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x|z) ``[B]``, summed over pixels."""
        out = self.decoder_output(z, y)
        x = on_device_of(self, x)
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out)
        return log_normal(x, out, (2 * self.log_sigma).expand_as(out))

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One-sample ``(log p(x|z) [B], KL per latent dimension [B, latent_dim])`` with z ~ q(z|x)."""
        mu, logvar = self.encode(x, y)
        return self.log_px_given_z(x, reparameterize(mu, logvar), y), gaussian_kl_per_dim(mu, logvar)

    def elbo(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """ELBO(x) = log p(x|z) - KL(q(z|x) || p(z)), one z ~ q(z|x), per example ``[B]`` in nats."""
        rec, kl = self.elbo_terms(x, y)
        return rec - kl.sum(-1)

    forward = elbo

    def log_weights(self, x: torch.Tensor, k: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for k samples z_i ~ q(z|x): ``[k, B]``."""
        mu, logvar = self.encode(x, y)
        eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
        log_qz = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)
        x = on_device_of(self, x)
        xs = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:])
        ys = None if y is None else y.unsqueeze(0).expand(k, -1).reshape(-1)
        log_px = self.log_px_given_z(xs, z.reshape(-1, self.latent_dim), ys).view(k, -1)
        return log_px + log_pz - log_qz

    def iwae_bound(self, x: torch.Tensor, k: int, y: torch.Tensor | None = None, *, chunk: int = 100) -> torch.Tensor:
        """IWAE_k(x) = log 1/k sum_{i=1}^k p(x, z_i) / q(z_i|x), z_i ~ q(z|x): ``[B]`` nats.

        ELBO <= IWAE_k <= IWAE_{k+1} <= log p(x) in expectation, and IWAE_k -> log p(x) as k grows.
        The k samples are drawn ``chunk`` at a time so that memory stays bounded for k in the thousands.
        """
        k = check_count(k, "k")
        log_w = torch.cat([self.log_weights(x, min(chunk, k - i), y) for i in range(0, k, chunk)])
        return log_mean_exp(log_w, dim=0)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None, mean: bool = True) -> torch.Tensor:
        """``n`` samples ``[n, *x_shape]``: z ~ N(0, I), then E[x|z] (``mean=True``, the usual picture)
        or x ~ p(x|z). A conditional VAE needs ``y``: ``[n]`` labels, or one int for all."""
        n = check_count(n)
        device = next(self.parameters()).device
        if isinstance(y, int):
            y = torch.full((n,), y, dtype=torch.long)
        y = None if y is None else y.to(device)
        x = self.decode(torch.randn(n, self.latent_dim, device=device), y)
        if mean:
            return x
        if self.likelihood == "bernoulli":
            return torch.bernoulli(x)
        return x + self.log_sigma.exp() * torch.randn_like(x)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """decode(mu(x)): the mean reconstruction ``[B, *x_shape]``."""
        return self.decode(self.encode(x, y)[0], y)


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------


def elbo_loss(*, beta: float = 1.0, free_bits: float = 0.0, warmup_steps: int = 0, binarize_data: bool = True):
    """A :func:`gencourse.train.fit` loss for batches ``(x, y)``: the negative beta-ELBO averaged over
    the batch, -1/B sum_b [log p(x_b|z_b) - beta_t sum_j max(lambda, KL_j)].

    - ``beta``: the KL weight (beta-VAE, Higgins et al., 2017); 1 gives the ELBO.
    - ``free_bits`` lambda (nats per latent dimension, Kingma et al., 2016): KL_j is the batch mean of
      dimension j's KL, and below lambda it stops being penalised, so no dimension is pushed to collapse.
    - ``warmup_steps``: KL annealing, beta_t = beta * min(1, t / warmup_steps) (Bowman et al., 2016).
    - ``binarize_data``: dynamic binarization, a fresh x ~ Bernoulli(pixel intensity) at every step.
    A conditional VAE is given the labels. Logs ``rec`` (log p(x|z)), ``kl`` and ``elbo`` per example.
    """
    step = 0

    def loss_fn(model: VAE, batch):
        nonlocal step
        x, y = batch
        x = binarize(x) if binarize_data else x
        rec, kl = model.elbo_terms(x, y if model.num_classes else None)
        beta_t = beta * min(1.0, step / warmup_steps) if warmup_steps else beta
        step += 1
        kl_batch = kl.mean(0)
        penalty = kl_batch.clamp(min=free_bits).sum() if free_bits else kl_batch.sum()
        loss = -rec.mean() + beta_t * penalty
        return loss, {"rec": rec.mean(), "kl": kl_batch.sum(), "elbo": rec.mean() - kl_batch.sum()}

    return loss_fn


def binarized_mnist_test(n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` MNIST test images, binarized once with a fixed ``seed`` (x ``[n, 1, 28, 28]`` in
    {0, 1}, labels ``[n]``): the same evaluation set every time."""
    x, y = mnist(train=False).tensors("unit", n)
    return binarize(x, generator=torch.Generator().manual_seed(seed)), y


@torch.no_grad()
def estimate_nll(
    model: VAE, x: torch.Tensor, k: int = 500, *, y: torch.Tensor | None = None, batch_size: int = 50
) -> tuple[float, float]:
    """Test negative log-likelihood -1/N sum_n IWAE_k(x_n) in nats and its standard error over the N
    examples. With k in the hundreds or more the bound is within a fraction of a nat of -log p(x)."""
    model.eval()
    device = next(model.parameters()).device
    bounds = torch.cat(
        [
            model.iwae_bound(
                x[i : i + batch_size].to(device), k, None if y is None else y[i : i + batch_size].to(device)
            )
            for i in range(0, len(x), batch_size)
        ]
    ).cpu()
    return -bounds.mean().item(), bounds.std().item() / math.sqrt(len(bounds))


def gradient_estimates(
    f, mu: torch.Tensor, logvar: torch.Tensor, *, n: int, estimator: str = "reparam"
) -> torch.Tensor:
    """``n`` independent one-sample estimates ``[n, d]`` of grad_mu E_{z ~ N(mu, sigma^2)}[f(z)] for one
    Gaussian ``mu``, ``logvar`` ``[d]``; ``f`` maps ``[n, d]`` -> ``[n]`` (one value per sample).

    - ``reparam``: z = mu + sigma eps, so the gradient is grad_z f(z) (needs a differentiable f);
    - ``score`` (REINFORCE): f(z) grad_mu log q(z) = f(z) (z - mu) / sigma^2 = f(z) eps / sigma;
    - ``score_baseline``: (f(z) - b) eps / sigma with b the mean of f over the other n - 1 samples,
      a control variate that keeps the estimate unbiased because b does not depend on this z.
    All three are unbiased; their variances differ, which is the point of the reparameterization trick.
    """
    if estimator not in ("reparam", "score", "score_baseline"):
        raise ValueError(f"unknown estimator {estimator!r}; choose 'reparam', 'score' or 'score_baseline'")
    sigma = torch.exp(0.5 * logvar.detach())
    eps = torch.randn(n, *mu.shape, device=mu.device)
    z = mu.detach() + sigma * eps
    if estimator == "reparam":
        z.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(f(z).sum(), z)
        return grad
    with torch.no_grad():
        fz = f(z)
        if estimator == "score_baseline":
            fz = fz - (fz.sum() - fz) / (n - 1)
        return fz[:, None] * eps / sigma
