"""Data: 2D toy distributions, MNIST and FashionMNIST as in-memory tensors, and the transforms that
image models need (scaling, dynamic binarization, uniform dequantization, the logit transform).

Images are kept as one ``uint8`` tensor per split and batched by indexing: decoding one PIL image per
item is what dominates CPU training time otherwise.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from gencourse.config import REPO_ROOT, data_dir

# ---------------------------------------------------------------------------------------------
# 2D toy distributions
# ---------------------------------------------------------------------------------------------

TOY2D = ("ring8", "grid25", "moons", "swissroll", "checkerboard", "circles")


@dataclass(frozen=True)
class Modes:
    """The mode centres ``[k, 2]`` of a Gaussian-mixture toy distribution and their common std."""

    centres: torch.Tensor
    std: float


def toy2d_modes(name: str) -> Modes:
    """Mode centres and std of the mixtures used to measure mode collapse (VEEGAN / PacGAN setup).

    - ``ring8``: 8 Gaussians of std 0.02 evenly spaced on a circle of radius 2.
    - ``grid25``: 25 Gaussians of std 0.05 on the grid {-4, -2, 0, 2, 4}^2.
    """
    if name == "ring8":
        angles = torch.arange(8) * (2 * math.pi / 8)
        return Modes(2.0 * torch.stack([angles.cos(), angles.sin()], dim=1), 0.02)
    if name == "grid25":
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return Modes(torch.cartesian_prod(axis, axis), 0.05)
    raise ValueError(f"toy2d {name!r} has no modes; only 'ring8' and 'grid25' are mixtures of Gaussians")


def toy2d(name: str, n: int, seed: int | None = None) -> torch.Tensor:
    """``n`` samples ``[n, 2]`` (float32) of a 2D toy distribution. Each lies roughly in [-4, 4]^2.

    - ``ring8``, ``grid25``: Gaussian mixtures, see :func:`toy2d_modes`.
    - ``moons``: two interleaving half circles (radius 1, noise std 0.05), scaled by 2 and centred.
    - ``swissroll``: the 2D spiral r = t, angle t, t ~ U(1.5 pi, 4.5 pi), scaled by 1/4, noise std 0.05.
    - ``checkerboard``: uniform on the 8 black squares of a 4x4 board covering [-4, 4]^2.
    - ``circles``: two concentric circles of radius 1 and 3 (half the points each), noise std 0.05.

    ``seed`` makes the draw reproducible without touching the global random state.
    """
    if name not in TOY2D:
        raise ValueError(f"unknown toy2d distribution {name!r}; choose one of: {', '.join(TOY2D)}")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    g = torch.Generator().manual_seed(seed) if seed is not None else None

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    def rand(*shape):
        return torch.rand(*shape, generator=g)

    if name in ("ring8", "grid25"):
        modes = toy2d_modes(name)
        idx = torch.randint(len(modes.centres), (n,), generator=g)
        return modes.centres[idx] + modes.std * randn(n, 2)
    if name == "moons":
        upper = torch.rand(n, generator=g) < 0.5
        t = math.pi * rand(n)
        x = torch.where(upper, t.cos(), 1 - t.cos())
        y = torch.where(upper, t.sin(), 0.5 - t.sin())
        pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 2
        return pts + 0.05 * 2 * randn(n, 2)
    if name == "swissroll":
        t = 1.5 * math.pi * (1 + 2 * rand(n))
        pts = torch.stack([t * t.cos(), t * t.sin()], dim=1) / 4
        return pts + 0.05 * randn(n, 2)
    if name == "checkerboard":
        x = 4 * rand(n) - 2
        y = rand(n) - 2 * torch.randint(0, 2, (n,), generator=g).float() + (x.floor() % 2)
        return torch.stack([x, y], dim=1) * 2
    # circles
    outer = rand(n) < 0.5
    radius = torch.where(outer, 3.0, 1.0)
    angle = 2 * math.pi * rand(n)
    pts = radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
    return pts + 0.05 * randn(n, 2)


# ---------------------------------------------------------------------------------------------
# Image datasets
# ---------------------------------------------------------------------------------------------

SCALES = ("unit", "symmetric", "uint8")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable; the message lists where we looked and the fixes."""


class TensorLoader:
    """Batches of tensors by indexing, re-iterable (one pass per epoch). ``len`` is batches per epoch."""

    def __init__(self, *tensors, batch_size=128, shuffle=True, drop_last=True, generator=None):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorLoader needs one or more tensors of the same length")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tensors, self.batch_size = tensors, batch_size
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator

    def __len__(self):
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            batch = tuple(t[idx] for t in self.tensors)
            yield batch if len(batch) > 1 else batch[0]


class ImageData(Dataset):
    """A whole image split in memory: ``images`` uint8 ``[N, C, H, W]``, ``labels`` int64 ``[N]``.

    ``dataset[i]`` gives ``(image in [0, 1] float32 [C, H, W], label)`` like torchvision;
    :meth:`tensors` and :meth:`loader` are the fast paths used for training.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, name: str = "images", classes=None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
        self.images, self.labels, self.name = images, labels.long(), name
        self.classes = list(classes) if classes is not None else [str(c) for c in range(int(labels.max()) + 1)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].float() / 255, self.labels[i]

    def __repr__(self):
        return f"ImageData({self.name}: {len(self)} images {tuple(self.images.shape[1:])}, {len(self.classes)} classes)"

    def tensors(self, scale: str = "unit", n: int | None = None):
        """``(x, y)`` for the first ``n`` images (all by default); ``scale`` is ``unit`` ([0, 1] float),
        ``symmetric`` ([-1, 1] float) or ``uint8`` (the raw pixel values)."""
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
        x, y = self.images[:n], self.labels[:n]
        if scale == "uint8":
            return x, y
        x = to_unit(x)
        return (to_symmetric(x) if scale == "symmetric" else x), y

    def loader(self, batch_size=128, scale="unit", n=None, shuffle=True, drop_last=True, generator=None):
        """A :class:`TensorLoader` over ``(x, y)`` batches of the first ``n`` images."""
        return TensorLoader(
            *self.tensors(scale, n), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator
        )


def _candidate_roots(root) -> list[tuple[Path, str]]:
    if root is not None:
        return [(Path(root).expanduser(), "the root argument")]
    out = []
    env = os.environ.get("GENCOURSE_DATA")
    if env:
        path = Path(env).expanduser()
        out.append((path, "$GENCOURSE_DATA"))
        if not path.is_absolute():  # a relative path is meant from the project root, wherever the kernel runs
            out.append((REPO_ROOT / path, "$GENCOURSE_DATA, relative to the project root"))
    out.append((data_dir(), "the repository's data/ folder"))
    return out


def _load_torchvision(cls_name: str, train: bool, root, download: bool):
    import torchvision.datasets

    cls = getattr(torchvision.datasets, cls_name)
    split = "train" if train else "test"
    candidates = _candidate_roots(root)
    for path, _ in candidates:
        try:
            return cls(str(path), train=train, download=False)
        except RuntimeError:
            continue
    reason = "downloading is switched off (download=False)"
    if download:
        target = candidates[0][0]
        try:
            return cls(str(target), train=train, download=True)
        except Exception as exc:  # offline: URLError, socket errors, HTTP errors... all mean the same here
            reason = f"downloading into {target} failed: {type(exc).__name__}: {exc}"
    looked = "\n".join(f"  {p / cls_name / 'raw'}   ({why})" for p, why in candidates)
    raise DatasetNotFoundError(
        f"{cls_name} ({split} split) was not found and {reason}.\n"
        f"Looked for the raw idx files in:\n{looked}\n"
        "To fix it, either:\n"
        f"  - set GENCOURSE_DATA to a folder laid out as torchvision expects ({cls_name}/raw/*-ubyte files),\n"
        "    e.g. `export GENCOURSE_DATA=/path/to/datasets` (or pass root=...), or\n"
        f"  - connect to the internet once and call gencourse.data.{cls_name.lower()}() to download it."
    ) from None


def mnist(train: bool = True, root=None, download: bool = True) -> ImageData:
    """The MNIST split as an in-memory :class:`ImageData` (60000 train / 10000 test, ``[N, 1, 28, 28]``).

    ``root`` is a dataset root laid out as torchvision expects (``<root>/MNIST/raw/...``); by default
    ``$GENCOURSE_DATA``, then the repository's ``data/``. Missing files are downloaded when ``download``
    is true and the machine is online; otherwise a :class:`DatasetNotFoundError` says where we looked.
    """
    ds = _load_torchvision("MNIST", train, root, download)
    return ImageData(ds.data.unsqueeze(1).contiguous(), ds.targets, name=f"MNIST-{'train' if train else 'test'}")


def fashion_mnist(train: bool = True, root=None, download: bool = True) -> ImageData:
    """FashionMNIST, exactly like :func:`mnist` (``<root>/FashionMNIST/raw/...``)."""
    ds = _load_torchvision("FashionMNIST", train, root, download)
    return ImageData(
        ds.data.unsqueeze(1).contiguous(),
        ds.targets,
        name=f"FashionMNIST-{'train' if train else 'test'}",
        classes=ds.classes,
    )


# ---------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [0, 1]."""
    return x.float() / 255 if x.dtype == torch.uint8 else x


def to_symmetric(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (the range of a tanh generator)."""
    return x * 2 - 1


def from_symmetric(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1) / 2).clamp(0, 1)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel ~ Bernoulli(intensity), drawn anew every call (Burda et al.)."""
    x = to_unit(x)
    return (torch.rand(x.shape, generator=generator, device=x.device) < x).float()


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantization: uint8 pixels k -> (k + u) / 256 with u ~ U[0, 1), so values lie in [0, 1).

    A density p on [0, 1)^D then lower-bounds the discrete likelihood:
    log P(k) >= E_u[log p((k + u) / 256)] - D log 256.
    """
    if x.dtype != torch.uint8:
        raise ValueError("dequantize expects raw uint8 pixels (ImageData.tensors(scale='uint8'))")
    return (x.float() + torch.rand(x.shape, generator=generator, device=x.device)) / 256


def logit_transform(x: torch.Tensor, alpha: float = 0.05):
    """y = logit(alpha + (1 - 2 alpha) x) for x in [0, 1]; returns ``(y, log_det)`` with
    log_det = sum over pixels of log|dy/dx| per example, so that log p(x) = log p(y) + log_det."""
    s = alpha + (1 - 2 * alpha) * x
    y = torch.log(s) - torch.log1p(-s)
    log_det = (math.log(1 - 2 * alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
    return y, log_det


def inverse_logit_transform(y: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    """The inverse of :func:`logit_transform`: x = (sigmoid(y) - alpha) / (1 - 2 alpha)."""
    return (torch.sigmoid(y) - alpha) / (1 - 2 * alpha)
