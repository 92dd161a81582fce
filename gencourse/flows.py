"""Normalizing flows: invertible layers, the flow container, and their maximum-likelihood losses.

A flow is a chain of invertible maps x = h_0 -> h_1 -> ... -> h_K = z with a standard-normal z.
By the change of variables

    log p(x) = log N(z; 0, I) + sum_k log |det dh_k / dh_{k-1}|,

so every layer returns its output *and* the log-determinant of its Jacobian. The same layers serve
2D toy data ``[B, 2]`` and images ``[B, C, H, W]``: they act on dimension 1 (features or channels).

Layers (each ``forward(x) -> (y, log_det [B])`` and ``inverse(y) -> x``):
:class:`AffineCoupling` (RealNVP, with any 0/1 mask: half the features, half the channels, a
checkerboard), :class:`ActNorm`, :class:`InvConv1x1` (a learned linear mixing; a permutation is a
special case), :class:`Squeeze` / :class:`Unsqueeze`, :class:`Factor` (multi-scale: stop
transforming half the channels) and :class:`LogitTransform` (images in [0, 1] -> the real line).
The course's trained flows (which settings, which data) are in :mod:`gencourse.recipes.flows`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gencourse.checks import check_count, check_float, check_values, on_device_of
from gencourse.data import dequantize, inverse_logit_transform, logit_transform
from gencourse.nn import MLP

LOG_2PI = math.log(2 * math.pi)


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


def _per_feature(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Shape a ``[C]`` vector to broadcast over dimension 1 of ``x`` (``[B, C]`` or ``[B, C, H, W]``)."""
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def _positions(x: torch.Tensor) -> int:
    """How many positions share one per-channel parameter: H * W for images, 1 for vectors."""
    return math.prod(x.shape[2:])


# ---------------------------------------------------------------------------------------------
# Invertible layers
# ---------------------------------------------------------------------------------------------


class AffineCoupling(nn.Module):
    """RealNVP affine coupling (Dinh et al., 2017) with a 0/1 ``mask`` broadcastable to one example.

    The masked part passes through and conditions an affine map of the rest:

        y = m * x + (1 - m) * (x * exp(s(m * x)) + t(m * x))

    The Jacobian is triangular with diagonal 1 (where m = 1) or exp(s) (where m = 0), so
    log|det J| = sum over (1 - m) of s. ``net`` maps ``[B, C, ...] -> [B, 2C, ...]`` (s and t); its
    last layer should start at zero so the layer starts as the identity. ``s`` is soft-clamped to
    ``(-c, c)`` with a learned ``c`` per feature (starting at 1), which keeps early training stable.
    """

    def __init__(self, mask: torch.Tensor, net: nn.Module):
        super().__init__()
        self.register_buffer("mask", mask.float())
        self.net = net
        self.log_clamp = nn.Parameter(torch.zeros(mask.shape[0]))

    def scale_shift(self, x_masked: torch.Tensor):
        """``(s, t)`` for the conditioning input ``m * x``; both are zero where m = 1."""
        s, t = self.net(x_masked).chunk(2, dim=1)
        c = _per_feature(self.log_clamp.exp(), s)
        s = c * torch.tanh(s / c)
        keep = 1 - self.mask
        return s * keep, t * keep

    def forward(self, x):
        s, t = self.scale_shift(x * self.mask)
        return x * self.mask + (1 - self.mask) * (x * s.exp() + t), _sum_per_example(s)

    def inverse(self, y):
        s, t = self.scale_shift(y * self.mask)
        return y * self.mask + (1 - self.mask) * ((y - t) * (-s).exp())


class ActNorm(nn.Module):
    """Affine map y = (x + b) * exp(log_s) per channel (Glow, Kingma & Dhariwal, 2018).

    ``shape`` is the number of channels (one b, log_s per channel, shared by all positions), or a
    full example shape such as ``(1, 28, 28)`` for one per pixel. log|det J| = sum of log_s over all
    dimensions of an example. On its first training batch it sets b and log_s so that the output has
    zero mean and unit variance (data-dependent initialisation).
    """

    def __init__(self, shape: int | Sequence[int]):
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.bias = nn.Parameter(torch.zeros(shape))
        self.log_scale = nn.Parameter(torch.zeros(shape))
        self.register_buffer("initialized", torch.tensor(False))

    def _view(self, v, x):
        return _per_feature(v, x) if v.dim() == 1 else v.unsqueeze(0)

    @torch.no_grad()
    def _initialize(self, x):
        dims = [d for d in range(x.dim()) if d != 1] if self.bias.dim() == 1 else [0]
        self.bias.copy_(-x.mean(dims))
        self.log_scale.copy_(-torch.log(x.std(dims) + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x):
        if self.training and not self.initialized:
            self._initialize(x)
        y = (x + self._view(self.bias, x)) * self._view(self.log_scale, x).exp()
        log_det = self.log_scale.sum() * (x[0].numel() // self.log_scale.numel())
        return y, log_det.expand(len(x))

    def inverse(self, y):
        return y * self._view(-self.log_scale, y).exp() - self._view(self.bias, y)


class InvConv1x1(nn.Module):
    """A learned invertible linear map of the channels, y = W x at every position (Glow's 1x1 conv).

    log|det J| = (H * W) * log|det W|. W starts as a random orthogonal matrix; a fixed permutation of the
    channels (RealNVP) is the special case of a permutation matrix.
    """

    def __init__(self, channels: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels))
        self.weight = nn.Parameter(q)

    def _mix(self, x, w):
        return F.conv2d(x, w[:, :, None, None]) if x.dim() == 4 else x @ w.T

    def forward(self, x):
        log_det = torch.linalg.slogdet(self.weight)[1] * _positions(x)
        return self._mix(x, self.weight), log_det.expand(len(x))

    def inverse(self, y):
        return self._mix(y, torch.linalg.inv(self.weight))


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W] -> [B, 4C, H/2, W/2]``: each 2x2 block of pixels becomes 4 channels."""
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs an even height and width, got {h}x{w}")
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`squeeze`: ``[B, 4C, H, W] -> [B, C, 2H, 2W]``."""
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, 2 * h, 2 * w)


class Squeeze(nn.Module):
    """Trade resolution for channels (a permutation of the pixels, so log|det J| = 0)."""

    def forward(self, x):
        return squeeze(x), x.new_zeros(len(x))

    def inverse(self, y):
        return unsqueeze(y)


class Unsqueeze(nn.Module):
    """The inverse of :class:`Squeeze`, as a layer (log|det J| = 0)."""

    def forward(self, x):
        return unsqueeze(x), x.new_zeros(len(x))

    def inverse(self, y):
        return squeeze(y)


class Factor(nn.Module):
    """Multi-scale architecture (RealNVP): the first ``keep`` channels go on through ``inner``; the
    rest are final latent variables already (they leave the flow here, unchanged)."""

    def __init__(self, keep: int, inner: nn.Module):
        super().__init__()
        self.keep, self.inner = keep, inner

    def forward(self, x):
        z, log_det = self.inner(x[:, : self.keep])
        return torch.cat([z, x[:, self.keep :]], dim=1), log_det

    def inverse(self, y):
        return torch.cat([self.inner.inverse(y[:, : self.keep]), y[:, self.keep :]], dim=1)


class LogitTransform(nn.Module):
    """Images in [0, 1] -> the real line: y = logit(alpha + (1 - 2 alpha) x), see
    :func:`gencourse.data.logit_transform`. A flow then models y, which has no hard boundaries."""

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return logit_transform(x, self.alpha)

    def inverse(self, y):
        return inverse_logit_transform(y, self.alpha)


# ---------------------------------------------------------------------------------------------
# The flow
# ---------------------------------------------------------------------------------------------


class Flow(nn.Module):
    """A chain of invertible layers with a standard-normal base distribution on ``z`` of ``shape``.

    - ``forward(x) -> (z, log_det)``: log_det = sum of the layers' log|det J| ``[B]``.
    - ``inverse(z) -> x``.
    - ``log_prob(x)`` = log N(z; 0, I) + log_det, in nats per example ``[B]``.
    - ``sample(n, temperature)``: x = f^{-1}(T * eps), eps ~ N(0, I); T < 1 trades diversity for quality.

    A flow is itself a layer, so flows nest (e.g. inside :class:`Factor`).
    """

    def __init__(self, layers: Sequence[nn.Module], shape: Sequence[int]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.shape = tuple(shape)

    def forward(self, x):
        x = on_device_of(self, x)  # data on the CPU meets a flow on a GPU: z and log_det live on the flow's device
        log_det = x.new_zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z):
        z = on_device_of(self, z)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def trajectory(self, x) -> list[torch.Tensor]:
        """``[x, h_1, ..., z]``: the input after each layer (to watch data turn into noise)."""
        out = [on_device_of(self, x)]
        for layer in self.layers:
            out.append(layer(out[-1])[0])
        return out

    def log_prob(self, x) -> torch.Tensor:
        """log p(x) ``[B]`` in nats. ``x`` must be a non-empty float batch of the flow's ``shape`` and dtype
        with finite values; an image flow's first layer (:class:`LogitTransform`) also checks that x lies
        in [0, 1], in the same single pass over the values."""
        dtype = next((p.dtype for p in self.parameters()), None)
        if self.layers and isinstance(self.layers[0], LogitTransform):
            check_float(x, "x", dtype)
        else:
            check_values(x, "x", dtype=dtype)
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"this flow models inputs of shape [B, {', '.join(map(str, self.shape))}], got {tuple(x.shape)}"
            )
        z, log_det = self(x)
        return standard_normal_log_prob(z) + log_det

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        n = check_count(n)
        if not 0 <= temperature < math.inf:
            raise ValueError(f"temperature must be a finite number >= 0 (1 samples the model), got {temperature}")
        param = next(self.parameters())
        z = temperature * torch.randn(n, *self.shape, device=param.device, dtype=param.dtype)
        return self.inverse(z)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) = -(D log 2 pi + |z|^2) / 2 per example ``[B]``."""
    return -0.5 * (_sum_per_example(z**2) + z[0].numel() * LOG_2PI)


# ---------------------------------------------------------------------------------------------
# Bits per dimension
# ---------------------------------------------------------------------------------------------


def dequantized_bits_per_dim(log_density: torch.Tensor, num_dims: int) -> torch.Tensor:
    """Bits per dimension ``[B]`` of 8-bit data from ``log_density`` (nats ``[B]``), the log-density of its
    dequantized version x = (k + u) / 256 in [0, 1)^D (what a flow's ``log_prob`` returns), not an NLL.

    Each integer pixel k owns a cell of volume 1/256, so log P(k) >= E_u[log p(x)] - D log 256 and

        bpd = (-log p(x) + D log 256) / (D log 2)

    (an upper bound on the true code length). Forgetting the D log 256 would report the density of a
    continuous image as if it were a probability: 8 bits/dim too few. Per example and differentiable
    (it is the training loss); its mean equals ``gencourse.metrics.bits_per_dim(-log_density + D log 256, D)``,
    which takes the discrete negative log-likelihood instead.

    Refused, as impossible for a density on dequantized data: an example below -64 / D bits/dim, i.e.
    log p(x) > D log 256 + 64 log 2. The density's average over a cell is 256^D P(k) <= 256^D, so by Markov's
    inequality one draw of u exceeds 2^64 times that with probability <= 2^-64. Such a value means the data
    was not dequantized (a density on the discrete points k / 255 grows without bound), ``num_dims`` is
    smaller than the dimensions of one example, or an NLL was passed where the log-density is meant (only an
    NLL above D log 256 + 64 log 2, worse than a uniform guess, can be told apart from a log-density).
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be a positive integer, got {num_dims}")
    log_density = torch.as_tensor(log_density)
    bpd = (-log_density + num_dims * math.log(256)) / (num_dims * math.log(2))
    if bpd.numel() and bpd.detach().min() < -64 / num_dims:
        raise ValueError(
            f"dequantized_bits_per_dim(log_density, num_dims={num_dims}) gave {bpd.detach().min().item():.4g} "
            f"bits/dim: a log-density more than 64 log 2 nats above D log 256 = {num_dims * math.log(256):.1f}, "
            "which no density on dequantized 8-bit data x = (k + u) / 256 reaches. Likely: a negative "
            "log-likelihood passed as the log-density (for an NLL in nats use "
            "gencourse.metrics.bits_per_dim(nll_nats, num_dims)); data that was not dequantized "
            "(gencourse.data.dequantize); or num_dims smaller than the number of dimensions of one example."
        )
    return bpd


# ---------------------------------------------------------------------------------------------
# Architectures
# ---------------------------------------------------------------------------------------------


def _zero_last(net: nn.Module) -> nn.Module:
    """Zero the last layer's weights and bias, so a coupling layer starts as the identity map."""
    last = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return net


def coupling_flow_2d(num_layers: int = 8, hidden: int = 64) -> Flow:
    """RealNVP for 2D points: ``num_layers`` x (ActNorm, AffineCoupling), the mask alternating
    between [1, 0] and [0, 1] so each coordinate is transformed in turn (the permutation)."""
    layers: list[nn.Module] = []
    for i in range(check_count(num_layers, "num_layers")):
        mask = torch.tensor([1.0, 0.0]) if i % 2 == 0 else torch.tensor([0.0, 1.0])
        layers += [ActNorm(2), AffineCoupling(mask, _zero_last(MLP(2, 4, (hidden, hidden))))]
    return Flow(layers, shape=(2,))


class CouplingResNet(nn.Module):
    """The conditioner of an image coupling layer: ``[B, C, H, W] -> [B, 2C, H, W]`` (s and t).

    A 3x3 convolution to ``hidden`` channels, ``blocks`` residual blocks (two 3x3 convolutions each),
    and a zero-initialised 3x3 convolution out.
    """

    def __init__(self, channels: int, *, hidden: int, blocks: int):
        super().__init__()
        self.inp = nn.Conv2d(channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1)
            )
            for _ in range(blocks)
        )
        self.out = _zero_last(nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, 2 * channels, 3, padding=1)))

    def forward(self, x):
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


def channel_mask(channels: int, flip: bool = False) -> torch.Tensor:
    """``[C, 1, 1]``: 1 on the first half of the channels (the second half if ``flip``)."""
    mask = (torch.arange(channels) < channels // 2).float()
    return (1 - mask if flip else mask).view(channels, 1, 1)


def checkerboard_mask(height: int, width: int, flip: bool = False) -> torch.Tensor:
    """``[1, H, W]``: 1 on the white squares of a checkerboard (the black ones if ``flip``)."""
    mask = ((torch.arange(height)[:, None] + torch.arange(width)) % 2 == 0).float()
    return (1 - mask if flip else mask).unsqueeze(0)


def _flow_steps(channels: int, count: int, *, hidden: int, blocks: int) -> list[nn.Module]:
    """Glow's step of flow, ``count`` times: ActNorm, InvConv1x1, AffineCoupling on half the channels."""
    layers: list[nn.Module] = []
    for k in range(count):
        net = CouplingResNet(channels, hidden=hidden, blocks=blocks)
        layers += [ActNorm(channels), InvConv1x1(channels), AffineCoupling(channel_mask(channels, k % 2 == 1), net)]
    return layers


def multiscale_flow(
    shape: Sequence[int] = (1, 28, 28),
    *,
    steps: Sequence[int] = (4, 4),
    hidden: Sequence[int] = (32, 64),
    blocks: Sequence[int] = (1, 2),
    alpha: float = 1e-6,
) -> Flow:
    """A compact multi-scale RealNVP/Glow for images in [0, 1] ``[B, C, H, W]``.

    x -> logit -> per-pixel ActNorm -> squeeze (4C x H/2 x W/2) -> ``steps[0]`` steps of flow ->
    factor out half the channels -> squeeze -> ``steps[1]`` steps... -> unsqueeze back to the shape
    of x -> per-pixel ActNorm -> z. The factored-out half skips the deeper levels, which is what
    makes it cheaper than one deep stack at full resolution. The last per-pixel ActNorm amounts to a
    learned diagonal Gaussian prior (a mean and scale per pixel); the first one standardises each
    pixel, so training starts from the best diagonal Gaussian rather than from N(0, I).
    """
    c, h, w = shape
    if not len(steps) == len(hidden) == len(blocks) >= 1:
        raise ValueError(f"steps, hidden and blocks need one entry per level each, got {steps}, {hidden}, {blocks}")
    if h % 2 ** len(steps) or w % 2 ** len(steps):
        raise ValueError(
            f"shape {tuple(shape)}: each of the {len(steps)} levels halves the height and width, so they must be "
            f"multiples of {2 ** len(steps)}"
        )

    def level(i: int, channels: int, height: int, width: int) -> list[nn.Module]:
        layers = [Squeeze(), *_flow_steps(4 * channels, steps[i], hidden=hidden[i], blocks=blocks[i])]
        if i + 1 < len(steps):
            keep = 2 * channels
            inner = level(i + 1, keep, height // 2, width // 2)
            layers.append(Factor(keep, Flow(inner, shape=(keep, height // 2, width // 2))))
        return [*layers, Unsqueeze()]

    pixels = tuple(shape)
    return Flow([LogitTransform(alpha), ActNorm(pixels), *level(0, c, h, w), ActNorm(pixels)], shape=shape)


def fit_gaussian(x: torch.Tensor) -> torch.distributions.MultivariateNormal:
    """The best single Gaussian for ``x`` ``[N, D]`` (maximum likelihood: the sample mean and
    covariance), the baseline a flow has to beat."""
    check_values(x, "x")
    if x.dim() != 2 or len(x) <= x.shape[1]:
        raise ValueError(f"x must be [N, D] with N > D points (else the covariance is singular), got {tuple(x.shape)}")
    mean = x.mean(0)
    centred = x - mean
    return torch.distributions.MultivariateNormal(mean, centred.T @ centred / len(x))


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------


def nll_loss(model: Flow, x: torch.Tensor) -> torch.Tensor:
    """Maximum likelihood: minimise the mean negative log-likelihood -log p(x) (nats per example)."""
    return -model.log_prob(x).mean()


def dequantized_bpd_loss(model: Flow, batch) -> torch.Tensor:
    """The loss for 8-bit images: mean bits/dim of a fresh dequantization (k + u) / 256 of the batch."""
    k = batch[0] if isinstance(batch, (tuple, list)) else batch
    return dequantized_bits_per_dim(model.log_prob(dequantize(k)), k[0].numel()).mean()


@torch.no_grad()
def evaluate_bits_per_dim(model: Flow, images: torch.Tensor, *, batch_size: int = 500, seed: int = 0) -> float:
    """Mean bits/dim of uint8 ``images`` ``[N, C, H, W]`` under ``model`` (one dequantization draw,
    seeded, so the number is reproducible)."""
    if images.dtype != torch.uint8:
        raise ValueError("evaluate_bits_per_dim expects raw uint8 images (ImageData.tensors(scale='uint8'))")
    if not len(images):
        raise ValueError("images is empty: pass at least one image [N >= 1, C, H, W]")
    model.eval()
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = dequantize(images[i : i + batch_size], generator=g).to(dev)
        total += dequantized_bits_per_dim(model.log_prob(x), x[0].numel()).sum().item()
    return total / len(images)
