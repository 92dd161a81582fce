"""Building blocks shared by several model families.

- :class:`MLP`: the workhorse for 2D toy data and small latent spaces.
- :class:`ConvEncoder` / :class:`ConvDecoder`: 28x28 images <-> a vector, used by GAN discriminators
  and generators and by VAE encoders and decoders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Sequential):
    """``in_dim -> hidden[0] -> ... -> hidden[-1] -> out_dim`` with ``act`` between linear layers.

    ``out_act`` (an activation name) is applied to the output if given.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (128, 128),
        act: str = "silu",
        out_act: str | None = None,
    ):
        dims = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(activation(act))
        if out_act is not None:
            layers.append(activation(out_act))
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose 'batch', 'group' or 'none'")


class ConvEncoder(nn.Module):
    """``[B, C, 28, 28] -> [B, out_dim]``: two stride-2 convolutions (28 -> 14 -> 7), then a linear layer.

    ``ch`` is the width of the first convolution (doubled in the second); ``norm`` is ``batch``,
    ``group`` or ``none`` (use ``none`` for critics with a gradient penalty or spectral norm).
    """

    def __init__(self, out_dim: int, in_channels: int = 1, ch: int = 32, norm: str = "batch", act: str = "leaky_relu"):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, ch, 4, stride=2, padding=1),
            activation(act),
            nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1),
            _norm(norm, 2 * ch),
            activation(act),
            nn.Conv2d(2 * ch, 2 * ch, 3, padding=1),
            _norm(norm, 2 * ch),
            activation(act),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * ch * 7 * 7, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """``[B, in_dim] -> [B, C, 28, 28]``: a linear layer to 7x7 maps, then two stride-2 transposed
    convolutions (7 -> 14 -> 28). The output is raw (logits or unbounded); ``out_act`` adds e.g. tanh.
    """

    def __init__(
        self,
        in_dim: int,
        out_channels: int = 1,
        ch: int = 32,
        norm: str = "batch",
        act: str = "relu",
        out_act: str | None = None,
    ):
        super().__init__()
        self.ch = ch
        self.fc = nn.Sequential(nn.Linear(in_dim, 2 * ch * 7 * 7), activation(act))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * ch, 2 * ch, 4, stride=2, padding=1),
            _norm(norm, 2 * ch),
            activation(act),
            nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1),
            _norm(norm, ch),
            activation(act),
            nn.Conv2d(ch, out_channels, 3, padding=1),
        )
        self.out_act = activation(out_act) if out_act else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(len(z), 2 * self.ch, 7, 7)
        return self.out_act(self.net(h))


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------
# Time embedding and a small U-Net (diffusion and flow-matching denoisers)
# ---------------------------------------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of times ``t`` [B] in [0, 1] (as in Transformers): ``[B, dim]``.

    emb = [cos(scale t w_k), sin(scale t w_k)] with w_k = max_period^(-k / (dim/2)), k = 0..dim/2-1.
    ``scale`` spreads [0, 1] over 1000 "positions" so that neighbouring DDPM steps t/T stay distinguishable.
    """
    if dim % 2:
        raise ValueError(f"the time embedding dimension must be even, got {dim}")
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = scale * t[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class TimeEmbedding(nn.Module):
    """``t`` [B] in [0, 1] (and optionally class labels ``y`` [B]) -> a conditioning vector ``[B, dim]``.

    The sinusoidal features go through a small MLP. With ``num_classes``, a learned label embedding is
    added; label ``num_classes`` (or ``y=None``) is the "no label" token that classifier-free guidance
    uses for the unconditional model.
    """

    def __init__(self, dim: int, num_classes: int | None = None):
        super().__init__()
        self.dim, self.num_classes = dim, num_classes
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.label = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32, device=self.mlp[0].weight.device)
        emb = self.mlp(timestep_embedding(t, self.dim))
        if self.label is None:
            if y is not None:
                raise ValueError("this model is unconditional (num_classes=None) but got labels y")
            return emb
        if y is None:
            y = torch.full((len(emb),), self.num_classes, dtype=torch.long, device=emb.device)
        if y.min() < 0 or y.max() > self.num_classes:
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}] ({self.num_classes} = no label), "
                f"got [{int(y.min())}, {int(y.max())}]"
            )
        return emb + self.label(y)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and SiLU, the time/label vector added in between, and a
    residual connection: out = x + conv(act(norm(conv(act(norm(x))) + W emb)))."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.block1 = nn.Sequential(_norm("group", in_ch), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, out_ch))
        self.block2 = nn.Sequential(
            _norm("group", out_ch), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        )
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.block2(h)


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm = _norm("group", ch)
        self.attn = nn.MultiheadAttention(ch, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)  # [B, H*W, C]
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """A small U-Net for 28x28 images (or any size divisible by patch * 2^(levels-1)): ``(x [B, C, H, W],
    t [B] in [0, 1], y [B] or None) -> [B, C, H, W]``.

    ``ch * ch_mult[i]`` channels at level i (resolution halved between levels), ``blocks`` residual
    blocks per level on the way down (one more on the way up, fed by the skip connections), and
    self-attention at the lowest resolution if ``attention``. ``num_classes`` adds label conditioning
    for classifier-free guidance. ``patch = p > 1`` first folds each p x p block of pixels into
    channels (pixel unshuffle) and unfolds the output at the end, so the network runs at 1/p of the
    resolution: on a CPU, ``patch=2`` buys twice the channels for the same cost. Used as the noise
    predictor eps_theta(x_t, t) of a diffusion model and as the velocity field v_theta(x_t, t) of flow matching.
    """

    def __init__(
        self,
        in_channels: int = 1,
        ch: int = 32,
        ch_mult: Sequence[int] = (1, 2, 2),
        blocks: int = 1,
        attention: bool = True,
        num_classes: int | None = None,
        dropout: float = 0.0,
        patch: int = 1,
    ):
        super().__init__()
        emb_dim = 4 * ch
        self.in_channels, self.num_classes, self.levels, self.patch = in_channels, num_classes, len(ch_mult), patch
        self.embed = TimeEmbedding(emb_dim, num_classes)
        self.stem = nn.Sequential(nn.PixelUnshuffle(patch), nn.Conv2d(in_channels * patch**2, ch, 3, padding=1))
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, cur = [ch], ch
        for i, mult in enumerate(ch_mult):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(cur, ch * mult, emb_dim, dropout))
                cur = ch * mult
                skips.append(cur)
            self.down.append(level)
            if i < len(ch_mult) - 1:
                self.downsample.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                skips.append(cur)
        self.mid = ResBlock(cur, cur, emb_dim, dropout)
        self.mid_attn = SelfAttention2d(cur) if attention else nn.Identity()
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, mult in reversed(list(enumerate(ch_mult))):
            level = nn.ModuleList()
            for _ in range(blocks + 1):
                level.append(ResBlock(cur + skips.pop(), ch * mult, emb_dim, dropout))
                cur = ch * mult
            self.up.append(level)
            if i > 0:  # nearest-neighbour upsampling; the next block's convolution smooths it (no extra conv)
                self.upsample.append(nn.Upsample(scale_factor=2, mode="nearest"))
        out = nn.Conv2d(cur, in_channels * patch**2, 3, padding=1)
        nn.init.zeros_(out.weight)  # start as the zero predictor: a calm first few steps
        nn.init.zeros_(out.bias)
        self.head = nn.Sequential(_norm("group", cur), nn.SiLU(), out, nn.PixelShuffle(patch))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet expects images [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        factor = self.patch * 2 ** (self.levels - 1)
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(
                f"image size {tuple(x.shape[-2:])} must be divisible by {factor} "
                f"for a U-Net with {self.levels} levels and patch {self.patch}"
            )
        emb = self.embed(t.expand(len(x)) if t.dim() == 0 else t, y)
        h = self.stem(x)
        hs = [h]
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid_attn(self.mid(h, emb))
        for i, level in enumerate(self.up):
            for block in level:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        return self.head(h)


class TimeMLP(nn.Module):
    """A denoiser / velocity field for vectors: ``(x [B, dim], t [B] in [0, 1], y [B] or None) -> [B, dim]``.

    h = W_in x, then ``depth`` residual layers h <- h + W_i silu(h + emb(t, y)), then W_out silu(h).
    Used on 2D toy data and in the latent space of an autoencoder (latent diffusion).
    """

    def __init__(self, dim: int, hidden: int = 256, depth: int = 3, num_classes: int | None = None):
        super().__init__()
        self.dim, self.num_classes = dim, num_classes
        self.embed = TimeEmbedding(hidden, num_classes)
        self.inp = nn.Linear(dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"TimeMLP expects vectors [B, {self.dim}], got shape {tuple(x.shape)}")
        emb = self.embed(t.expand(len(x)) if t.dim() == 0 else t, y)
        h = self.inp(x)
        for layer in self.layers:
            h = h + layer(nn.functional.silu(h + emb))
        return self.out(nn.functional.silu(h))


class EMA:
    """An exponential moving average of a model's weights (Polyak averaging), the usual way to get
    smoother, better samples from diffusion models: theta_ema <- d theta_ema + (1 - d) theta.

    The decay warms up as d_k = min(decay, (1 + k) / (10 + k)) so that short runs are not dominated by
    the random initial weights. :meth:`attach` makes every step of an optimizer update the average (or
    call :meth:`update` yourself after each step); :meth:`copy_to` puts the averaged weights into a model
    (buffers such as BatchNorm statistics are copied as they are).

    ``snapshots``: for each update count k among its keys, ``snapshots[k]`` is set to a copy of the
    averaged weights right after the k-th update (autoguidance's weak model is such a snapshot).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, snapshots: dict | None = None):
        if not 0 <= decay < 1:
            raise ValueError(f"the EMA decay must be in [0, 1), got {decay}")
        for k in snapshots or {}:
            if not isinstance(k, int) or k < 1:
                raise ValueError(f"snapshot steps must be whole numbers >= 1, got {k!r}")
        self.decay, self.updates = decay, 0
        self.snapshots = {} if snapshots is None else snapshots
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def attach(self, optimizer: torch.optim.Optimizer, model: nn.Module):
        """Update the average from ``model`` after every ``optimizer.step()``; returns the hook's handle
        (``handle.remove()`` detaches it)."""
        return optimizer.register_step_post_hook(lambda opt, args, kwargs: self.update(model))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach(), 1 - d)
            else:
                self.shadow[k].copy_(v)
        if self.updates in self.snapshots:
            self.snapshots[self.updates] = {k: v.clone() for k, v in self.shadow.items()}

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)
