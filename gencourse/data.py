"""Data: 2D toy distributions, MNIST and FashionMNIST as in-memory tensors, and the transforms that
image models need (scaling, dynamic binarization, uniform dequantization, the logit transform).

Images are kept as one ``uint8`` tensor per split and batched by indexing: decoding one PIL image per
item is what dominates CPU training time otherwise.
"""

from __future__ import annotations

import math
import operator
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from gencourse.checks import check_count, check_values, range_fix, value_range
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
    n = check_count(n)
    if seed is not None and (isinstance(seed, bool) or not hasattr(seed, "__index__")):
        raise TypeError(f"seed must be an int or None, got {seed!r} ({type(seed).__name__})")
    g = torch.Generator().manual_seed(operator.index(seed)) if seed is not None else None

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


class DatasetError(OSError):
    """A dataset cannot be loaded; the message says which file or setting is wrong and how to fix it."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset is neither on disk nor downloadable, or the root points inside a dataset's folder; the
    message lists where we looked and the fixes."""


class DatasetCorruptError(DatasetError):
    """A dataset file is on disk but is not what it should be (truncated, wrong header, bad labels); the
    message names the file, what was expected, what was found, and how to replace it."""


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
        n = None if n is None else check_count(n)  # a negative n would silently drop the last images
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


# The raw idx files of MNIST and FashionMNIST (same names, same shapes): name -> (magic, shape).
# idx header: a big-endian int32 magic number (0x0801 = uint8 vector, 0x0803 = uint8 3D array), then one
# big-endian int32 per dimension; the uint8 values follow.
IDX_FILES = {
    "train-images-idx3-ubyte": (0x0803, (60000, 28, 28)),
    "train-labels-idx1-ubyte": (0x0801, (60000,)),
    "t10k-images-idx3-ubyte": (0x0803, (10000, 28, 28)),
    "t10k-labels-idx1-ubyte": (0x0801, (10000,)),
}
LOADERS = {"MNIST": "mnist", "FashionMNIST": "fashion_mnist"}  # torchvision's folder under a root -> our function
DATASET_FOLDERS = tuple(LOADERS)


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


def _check_root_is_not_inside_a_dataset(path: Path, why: str, cls_name: str) -> None:
    """A root must be the folder that *contains* ``MNIST/``; one pointing at ``MNIST/`` or ``MNIST/raw/``
    would make torchvision look in (and download into) ``MNIST/raw/MNIST/raw`` inside the dataset tree."""
    loose = any((path / name).exists() or (path / f"{name}.gz").exists() for name in IDX_FILES)
    if path.name == "raw" and path.parent.name in DATASET_FOLDERS:
        should = path.parent.parent
    elif path.name in DATASET_FOLDERS and (path / "raw").is_dir():
        should = path.parent
    elif not loose:
        return
    else:
        should = None
    setting = "GENCOURSE_DATA" if why.startswith("$GENCOURSE_DATA") else "root"
    if should is None:
        what = "holds idx files directly"
        fix = f"move them into {path / cls_name / 'raw'}, or point it at the folder that contains {cls_name}/"
    else:
        example = f"export GENCOURSE_DATA={should}" if setting == "GENCOURSE_DATA" else f"root='{should}'"
        what = "points inside the dataset's folder"
        fix = f"point it at the folder that contains {cls_name}/: {should}, e.g. `{example}`"
    raise DatasetNotFoundError(
        f"{setting}={path} {what}: the dataset root must be the folder that contains {cls_name}/ "
        f"(the files are read from <root>/{cls_name}/raw/*-ubyte).\n"
        f"To fix it, {fix}. Nothing was read, downloaded or created."
    )


def _corrupt(path: Path, problem: str, cls_name: str) -> DatasetCorruptError:
    return DatasetCorruptError(
        f"{path} is corrupt: {problem}.\n"
        "It was probably cut short or damaged while being copied or downloaded. To fix it, copy it again "
        f"from where it came from (e.g. the course's dataset mirror), or delete it (or all of {path.parent}) "
        f"so that the next call of gencourse.data.{LOADERS[cls_name]}() with internet access downloads it again."
    )


def _check_idx_file(path: Path, cls_name: str) -> None:
    """Raise :class:`DatasetCorruptError` unless ``path`` has the size and idx header of its MNIST file
    (and, for labels, values 0-9). Costs a stat and a 16-byte read (a 60 kB read for labels)."""
    magic, shape = IDX_FILES[path.name]
    what = f"{shape[0]} images of {shape[1]}x{shape[2]}" if len(shape) == 3 else f"{shape[0]} labels"
    header_size = 4 * (1 + len(shape))
    expected = header_size + math.prod(shape)
    found = path.stat().st_size
    if found != expected:
        raise _corrupt(path, f"expected {expected} bytes ({what}), found {found} bytes", cls_name)
    with open(path, "rb") as f:
        header = f.read(header_size)
        values = f.read() if len(shape) == 1 else b""
    numbers = tuple(int.from_bytes(header[i : i + 4], "big") for i in range(0, header_size, 4))
    if numbers != (magic, *shape):
        raise _corrupt(
            path,
            f"its header reads magic number {numbers[0]:#010x} with dimensions {list(numbers[1:])}, expected "
            f"{magic:#010x} with {list(shape)} ({what}), so it is not this dataset's idx file",
            cls_name,
        )
    if values and max(values) > 9:
        bad = next(i for i, v in enumerate(values) if v > 9)
        raise _corrupt(path, f"label {values[bad]} at index {bad}; labels must lie in 0-9", cls_name)


def _raw_status(path: Path, cls_name: str, train: bool) -> tuple[list[str], list[Path]]:
    """The idx files missing under ``path/<cls_name>/raw`` (torchvision needs all four), and the files of
    the requested split that are there to check."""
    raw = path / cls_name / "raw"
    missing = [name for name in IDX_FILES if not (raw / name).is_file()]
    prefix = "train-" if train else "t10k-"
    present = [raw / name for name in IDX_FILES if name.startswith(prefix) and name not in missing]
    return missing, present


def _load_torchvision(cls_name: str, train: bool, root, download: bool):
    import torchvision.datasets

    cls = getattr(torchvision.datasets, cls_name)
    split = "train" if train else "test"
    candidates = _candidate_roots(root)
    notes = []
    for path, why in candidates:
        processed = path / cls_name / "processed"
        if (processed / "training.pt").is_file() and (processed / "test.pt").is_file():
            return cls(str(path), train=train, download=False)  # torchvision's legacy layout, read as it was
        missing, present = _raw_status(path, cls_name, train)
        for file in present:  # a corrupt file is reported, never skipped in favour of another root
            _check_idx_file(file, cls_name)
        if not missing:
            try:
                return cls(str(path), train=train, download=False)
            except Exception as exc:  # the files passed the checks above, so this should not happen
                raise DatasetCorruptError(
                    f"{cls_name} ({split} split) in {path / cls_name / 'raw'} could not be read "
                    f"({type(exc).__name__}: {exc}). Delete that folder so that it is downloaded again, "
                    "or copy the files again."
                ) from exc
        if path.is_dir():
            _check_root_is_not_inside_a_dataset(path, why, cls_name)
        gz = [name for name in missing if (path / cls_name / "raw" / f"{name}.gz").is_file()]
        note = f"missing: {', '.join(missing)}" if (path / cls_name / "raw").is_dir() else "no such folder"
        notes.append(note + (f"; decompress {', '.join(n + '.gz' for n in gz)} (gunzip -k)" if gz else ""))
    reason = "downloading is switched off (download=False)"
    if download:
        target = candidates[0][0]
        try:
            ds = cls(str(target), train=train, download=True)
        except Exception as exc:  # offline: URLError, socket errors, HTTP errors... all mean the same here
            reason = f"downloading into {target} failed: {type(exc).__name__}: {exc}"
        else:
            _, present = _raw_status(target, cls_name, train)
            for file in present:
                _check_idx_file(file, cls_name)
            return ds
    looked = "\n".join(f"  {p / cls_name / 'raw'}   ({why}; {note})" for (p, why), note in zip(candidates, notes))
    raise DatasetNotFoundError(
        f"{cls_name} ({split} split) was not found and {reason}.\n"
        f"Looked for the raw idx files in:\n{looked}\n"
        "To fix it, either:\n"
        f"  - set GENCOURSE_DATA to the folder that contains {cls_name}/raw/ (the four *-ubyte files),\n"
        "    e.g. `export GENCOURSE_DATA=/path/to/datasets` (or pass root=...), or\n"
        f"  - connect to the internet once and call gencourse.data.{LOADERS[cls_name]}() to download it."
    ) from None


def mnist(train: bool = True, root=None, download: bool = True) -> ImageData:
    """The MNIST split as an in-memory :class:`ImageData` (60000 train / 10000 test, ``[N, 1, 28, 28]``).

    ``root`` is a dataset root laid out as torchvision expects (``<root>/MNIST/raw/...``); by default
    ``$GENCOURSE_DATA``, then the repository's ``data/``. Missing files are downloaded when ``download``
    is true and the machine is online; otherwise a :class:`DatasetNotFoundError` says where we looked
    (it also says so when the root points at ``MNIST/`` or ``MNIST/raw/`` instead of the folder above them).
    The split's files are checked first (size, idx header, label range): a damaged one is a
    :class:`DatasetCorruptError` that names it, with the expected and found size, and is never used.
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
    """Dynamic binarization: each pixel ~ Bernoulli(intensity), drawn anew every call (Burda et al.).
    ``x``: intensities in [0, 1] (float) or uint8 pixels; other values are refused (x > 1 would always give 1)."""
    if not (isinstance(x, torch.Tensor) and x.dtype == torch.uint8):
        check_values(x, "x", 0, 1)
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
    log_det = sum over pixels of log|dy/dx| per example, so that log p(x) = log p(y) + log_det.

    ``x`` outside the transform's domain (just wider than [0, 1]: 0 < alpha + (1 - 2 alpha) x < 1), such as
    pixels in [0, 255] or images in [-1, 1], is refused: its logit would be NaN or infinite."""
    lo, hi = value_range(x, "x")
    if not (alpha + (1 - 2 * alpha) * lo > 0 and alpha + (1 - 2 * alpha) * hi < 1):
        raise ValueError(
            f"x must lie in [0, 1] (the logit transform, the first layer of an image flow, is defined only there), "
            f"got values in [{lo:.4g}, {hi:.4g}]{range_fix(lo, hi, 0, 1)}; uint8 pixels: gencourse.data.dequantize"
        )
    s = alpha + (1 - 2 * alpha) * x
    y = torch.log(s) - torch.log1p(-s)
    log_det = (math.log(1 - 2 * alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
    return y, log_det


def inverse_logit_transform(y: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    """The inverse of :func:`logit_transform`: x = (sigmoid(y) - alpha) / (1 - 2 alpha)."""
    return (torch.sigmoid(y) - alpha) / (1 - 2 * alpha)
