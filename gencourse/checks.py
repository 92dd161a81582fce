"""Checks of the arguments that the models' public entry points take: counts, class labels, dtypes and
value ranges. Each refuses a bad input with an error that names the argument, what was expected, what was
found and, for images in a common wrong range, how to convert them, so that nothing returns NaN or a wrong
number silently. Every module may use them (they import nothing of the course).
"""

from __future__ import annotations

import math
import operator

import torch

NAN_CAUSES = (
    "NaN inputs: samples of a model whose training diverged, a 0 / 0 in preprocessing (e.g. dividing by a "
    "standard deviation of 0) or a NaN in the data; torch.isnan(t).nonzero() finds them"
)


def check_count(n, name: str = "n") -> int:
    """``n`` as an int if it is a whole number >= 1 (an int, a NumPy or a one-element torch integer), else a
    TypeError or ValueError that names ``name``. A float such as 3.0 is refused: sizes are counted in ints."""
    try:
        if isinstance(n, bool):
            raise TypeError
        n = operator.index(n)
    except TypeError:
        fix = f"; pass int({name})" if isinstance(n, float) and n.is_integer() else ""
        raise TypeError(f"{name} must be a whole number (an int), got {n!r} ({type(n).__name__}){fix}") from None
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n}")
    return n


def check_labels(labels, num_classes: int, n: int, name: str = "labels") -> torch.Tensor:
    """``labels``, if it is an integer tensor ``[n]`` of class indices in [0, num_classes) (one min/max pass),
    else an error that names ``name`` and says what was expected."""
    expected = f"an integer tensor [{n}] of class indices in [0, {num_classes})"
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
        what = f"a {labels.dtype} tensor" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise TypeError(f"{name} must be {expected}, got {what}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must be {expected}, got shape {tuple(labels.shape)}")
    lo, hi = torch.stack(torch.aminmax(labels)).tolist() if n else (0, 0)
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"{name} must be {expected}, got values in [{lo}, {hi}]")
    return labels


def check_float(x, name: str = "x", dtype: torch.dtype | None = None) -> None:
    """Refuse ``x`` unless it is a non-empty floating-point tensor (of ``dtype``, the model's, if given).
    Looks at no values: free."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        fix = ": convert raw pixels with x.float() / 255 (or dequantize them)" if x.dtype == torch.uint8 else ""
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}{fix}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} is {x.dtype} but the model's weights are {dtype}: pass {name}.to({dtype})")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): pass at least one example")


def value_range(x, name: str = "x", dtype: torch.dtype | None = None) -> tuple[float, float]:
    """``(min, max)`` of a tensor that :func:`check_float` accepts, or a ValueError if it holds NaN (that names
    the likely causes). One pass over the values: cheap enough for every training step."""
    check_float(x, name, dtype)
    lo, hi = torch.stack(torch.aminmax(x.detach())).tolist()  # NaN propagates through min and max
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"{name} holds NaN values. Likely causes: {NAN_CAUSES}")
    return lo, hi


def check_values(x, name: str = "x", low: float = -math.inf, high: float = math.inf, *, dtype=None) -> None:
    """Refuse ``x`` unless it is a non-empty floating-point tensor of finite values in [low, high], with an
    error that names ``name``, the expected range, the range found and, for images, how to convert them."""
    lo, hi = value_range(x, name, dtype)
    if low <= lo and hi <= high and math.isfinite(lo) and math.isfinite(hi):
        return
    expected = f"lie in [{low:g}, {high:g}]" if math.isfinite(low) or math.isfinite(high) else "be finite"
    raise ValueError(f"{name} must {expected}, got values in [{lo:.4g}, {hi:.4g}]{range_fix(lo, hi, low, high)}")


def range_fix(lo: float, hi: float, low: float, high: float) -> str:
    """How to bring images in a common wrong range into the expected [0, 1] or [-1, 1]."""
    if math.isinf(lo) or math.isinf(hi):
        return ": infinite values (an overflow, a division by zero?)"
    if (low, high) == (0, 1):
        if lo >= 0 and hi <= 255:
            return ": pixels in [0, 255]? Use x / 255"
        if lo >= -1 and hi <= 1:
            return ": images in [-1, 1]? Use gencourse.data.from_symmetric(x), i.e. (x + 1) / 2"
    if (low, high) == (-1, 1) and lo >= 0 and hi <= 255:
        return ": pixels in [0, 255]? Use x / 127.5 - 1 (ImageData.tensors('symmetric') gives [-1, 1])"
    return ""


def on_device_of(module: torch.nn.Module, *tensors):
    """``tensors`` moved to the device of ``module``'s weights (``None`` passes through; a module without
    weights leaves them where they are). The models' methods that take data call it, so that a model on a
    GPU accepts the CPU tensors a notebook holds; what they return lives on the model's device."""
    weight = next(module.parameters(), None)
    if weight is None:
        return tensors if len(tensors) != 1 else tensors[0]
    device = weight.device
    moved = tuple(t.to(device) if isinstance(t, torch.Tensor) and t.device != device else t for t in tensors)
    return moved if len(moved) != 1 else moved[0]
