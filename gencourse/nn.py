"""Building blocks shared by several model families.

- :class:`MLP`: the workhorse for 2D toy data and small latent spaces.
- :class:`ConvEncoder` / :class:`ConvDecoder`: 28x28 images <-> a vector, used by GAN discriminators
  and generators and by VAE encoders and decoders.
"""

from __future__ import annotations

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
