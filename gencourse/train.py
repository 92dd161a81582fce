"""The one generic training loop, its history, the learning-rate schedules, and the cache of trained models.

``fit`` trains any model whose loss is ``loss_fn(model, batch)``: VAEs, flows and diffusion models use
it as is; the GAN loop in ``gencourse.gan`` is built from the same pieces (``training_steps``,
``History``, ``check_finite``, ``run_callback``, ``finish``). ``lr_schedule`` is the one schedule helper
every course model uses. ``load_or_train`` skips training when a matching model is cached, which is what
lets an instructor re-run any training cell in seconds. The course's own models (which settings, which
data) are in ``gencourse.recipes``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from gencourse.config import cache_dir, seed_everything
from gencourse.config import device as default_device
from gencourse.config import profile as active_profile
from gencourse.nn import EMA

CACHE_FORMAT = 1


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str | None = None, **kwargs):
    """A tqdm.auto progress bar, silenced in the smoke profile (or with ``GENCOURSE_PROGRESS=0``)."""
    from tqdm.auto import tqdm

    quiet = active_profile().is_smoke or os.environ.get("GENCOURSE_PROGRESS", "1") == "0"
    return tqdm(iterable, total=total, desc=desc, disable=quiet, **kwargs)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the likely causes."""


def check_finite(loss: torch.Tensor, step: int, what: str = "loss", lr: float | None = None) -> None:
    """Stop training with a useful message as soon as ``loss`` is NaN or infinite."""
    if torch.isfinite(loss).all():
        return
    lr_hint = f" (lr={lr:g})" if lr is not None else ""
    raise NonFiniteLossError(
        f"the {what} became {loss.detach().flatten()[0].item()} at step {step}. Likely causes:\n"
        f"  - the learning rate is too high{lr_hint}: try it 3-10x lower;\n"
        "  - exploding gradients: pass clip_grad=1.0 to clip the gradient norm;\n"
        "  - a log or division of zero in the loss: use log_softmax / logsigmoid / an epsilon;\n"
        "  - inputs outside the range the model expects (e.g. [0, 255] where [0, 1] is meant), or NaN inputs\n"
        "    (a NaN in the data, a 0 / 0 in preprocessing): torch.isnan(batch).any() finds them."
    )


class History:
    """Logged values per key as ``(step, value)`` pairs; ``history["loss"]`` gives the values."""

    def __init__(self, records: dict | None = None, meta: dict | None = None):
        self.records: dict[str, list[tuple[int, float]]] = {
            k: [tuple(p) for p in v] for k, v in (records or {}).items()
        }
        self.meta: dict = dict(meta or {})

    def log(self, step: int, **values: float) -> None:
        for key, value in values.items():
            value = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            self.records.setdefault(key, []).append((int(step), value))

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.records:
            raise KeyError(f"no {key!r} in this history; it has: {', '.join(self.records) or 'nothing yet'}")
        return [v for _, v in self.records[key]]

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def keys(self):
        return self.records.keys()

    def steps(self, key: str) -> list[int]:
        return [s for s, _ in self.records[key]]

    def last(self, key: str, n: int = 1) -> float:
        """Mean of the last ``n`` values of ``key``."""
        values = self[key][-n:]
        return sum(values) / len(values)

    def first(self, key: str, n: int = 1) -> float:
        """Mean of the first ``n`` values of ``key``."""
        values = self[key][:n]
        return sum(values) / len(values)

    def to_dict(self) -> dict:
        return {"records": {k: [list(p) for p in v] for k, v in self.records.items()}, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(d.get("records"), d.get("meta"))

    def plot(self, keys=None, ax=None, smooth: float = 0.0, title: str = "Training curves"):
        """Plot ``keys`` (all by default) against the step; see :func:`gencourse.plot.training_curves`."""
        from gencourse.plot import training_curves

        return training_curves(self, keys=keys, ax=ax, smooth=smooth, title=title)

    def __repr__(self):
        parts = ", ".join(f"{k}: {len(v)} values, last {v[-1][1]:.4g}" for k, v in self.records.items() if v)
        return f"History({parts})"


def to_device(batch, dev: torch.device):
    """Move a tensor, or a tuple/list/dict of tensors, to ``dev``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(dev, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, dev) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, dev) for k, v in batch.items()}
    return batch


def training_steps(
    data, *, epochs: int | None = None, steps: int | None = None, seconds: float | None = None, desc: str = "training"
) -> Iterator[tuple[int, object, object]]:
    """Yield ``(step, batch, bar)`` until the first of ``epochs``, ``steps`` or ``seconds`` is used up.

    ``data`` is an iterable of batches (iterated once per epoch) or a function that returns a fresh
    batch on each call (for samplers of toy data). ``bar`` is the progress bar (``bar.set_postfix``).
    """
    if epochs is None and steps is None and seconds is None:
        raise ValueError("say how long to train: give epochs=, steps= or seconds=")
    for name, value in (("epochs", epochs), ("steps", steps), ("seconds", seconds)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be > 0 (how long to train), got {value!r}")
    if callable(data) and epochs is not None:
        raise ValueError("data is a sampling function, which has no epochs: give steps= or seconds= instead")
    per_epoch = None if callable(data) else len(data) if hasattr(data, "__len__") else None
    if per_epoch == 0:
        raise ValueError("data yields no batches: the dataset is smaller than one batch (lower batch_size)")
    total = steps
    if epochs is not None and per_epoch is not None:
        total = epochs * per_epoch if total is None else min(total, epochs * per_epoch)
    start, step, epoch = time.perf_counter(), 0, 0
    with progress(total=total, desc=desc, leave=True) as bar:
        while True:
            batches = iter(lambda: data(), None) if callable(data) else iter(data)
            for batch in batches:
                if (steps is not None and step >= steps) or (
                    seconds is not None and time.perf_counter() - start >= seconds
                ):
                    return
                yield step, batch, bar
                step += 1
                bar.update(1)
            epoch += 1
            if step == 0:
                raise ValueError("data yielded no batches")
            if epochs is not None and epoch >= epochs:
                return


def fit(
    model: nn.Module,
    loss_fn: Callable,
    data,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    seconds: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    clip_grad: float | None = None,
    scheduler=None,
    history: History | None = None,
    callback: Callable | None = None,
    every: int = 100,
    desc: str = "training",
) -> History:
    """Train ``model`` by minimising ``loss_fn(model, batch)`` and return the :class:`History`.

    - ``loss_fn`` returns a scalar loss, or ``(loss, {"name": value, ...})`` to log more values.
    - ``data``: see :func:`training_steps`; batches are moved to the model's device.
    - Stops at the first of ``epochs`` / ``steps`` / ``seconds``; raises :class:`NonFiniteLossError`
      on a NaN or infinite loss. ``optimizer`` defaults to Adam(``lr``); ``scheduler`` is stepped
      once per step; ``clip_grad`` clips the gradient norm.
    - ``callback(step, model, history)`` runs every ``every`` steps and once after the last one (for
      sample snapshots or evaluations); its time is added up in ``history.meta["eval_seconds"]``.
      Something to do after every optimizer step (an EMA of the weights) is an optimizer hook instead
      (:meth:`gencourse.nn.EMA.attach`). The model is left in eval mode.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    dev = params[0].device
    optimizer = optimizer or torch.optim.Adam(params, lr=lr)
    history = history or History()
    offset = max((s for v in history.records.values() for s, _ in v), default=-1) + 1
    start = time.perf_counter()
    model.train()
    step, last_callback = -1, None
    for step, batch, bar in training_steps(data, epochs=epochs, steps=steps, seconds=seconds, desc=desc):
        out = loss_fn(model, to_device(batch, dev))
        loss, extra = out if isinstance(out, tuple) else (out, {})
        check_finite(loss, offset + step, lr=optimizer.param_groups[0]["lr"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            extra = {**extra, "grad_norm": nn.utils.clip_grad_norm_(params, clip_grad)}
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        history.log(offset + step, loss=loss, **extra)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4g}")
        if callback is not None and step % every == 0 and step > 0:
            last_callback = run_callback(callback, offset + step, model, history)
    return finish(model, history, callback, offset, step, start, last_callback)


def run_callback(callback: Callable, step: int, model: nn.Module, history: History) -> int:
    """Call ``callback(step, model, history)`` in eval mode (snapshots, evaluations), then resume training.

    Its time is added to ``history.meta["eval_seconds"]``, so that evaluations during training can be told
    apart from the training itself (``train_seconds`` counts both). Returns ``step``."""
    model.eval()
    begin = time.perf_counter()
    callback(step, model, history)
    history.meta["eval_seconds"] = history.meta.get("eval_seconds", 0.0) + time.perf_counter() - begin
    model.train()
    return step


def finish(
    model: nn.Module,
    history: History,
    callback: Callable | None,
    offset: int,
    step: int,
    start: float,
    last_callback: int | None = None,
) -> History:
    """End a training loop: eval mode, the final callback (unless it already ran at the last step, whose
    number ``last_callback`` is), and the time and step count in ``history.meta``."""
    if callback is not None and step >= 0 and last_callback != offset + step:
        run_callback(callback, offset + step, model, history)
    model.eval()
    history.meta["train_seconds"] = history.meta.get("train_seconds", 0.0) + time.perf_counter() - start
    history.meta["steps"] = offset + step + 1
    return history


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------------------------

SCHEDULES = ("constant", "linear", "cosine", "one_cycle")


def lr_factor(step: int, steps: int, shape: str = "cosine", warmup: int = 0) -> float:
    """The factor that multiplies the peak learning rate at ``step`` (0-based) of ``steps``:

    - ``constant``: 1;
    - ``linear``: 1 - step / steps, a straight decay to 0 (it lets GAN samples settle instead of
      orbiting the equilibrium);
    - ``cosine``: (1 + cos(pi step / steps)) / 2, a cosine decay to 0 (Loshchilov & Hutter 2017).

    ``warmup`` > 0 multiplies it by min(1, (step + 1) / warmup), a linear warm-up over the first steps
    (what a flow's fragile first updates after its data-dependent initialization need); a warm-up longer than
    the run (a short smoke run) simply never reaches the peak.
    """
    if shape not in SCHEDULES or shape == "one_cycle":
        raise ValueError(f"lr_factor knows {', '.join(SCHEDULES[:3])}; one_cycle is lr_schedule's alone")
    ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if shape == "linear":
        return ramp * (1 - step / steps)
    if shape == "cosine":
        return ramp * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
    return ramp


def lr_schedule(
    optimizer: torch.optim.Optimizer, steps: int, shape: str = "cosine", warmup: int | float = 0
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule of a ``steps``-step training, stepped once per step (``fit``'s
    ``scheduler=``). ``shape`` is one of ``SCHEDULES``:

    - ``constant``, ``linear``, ``cosine``: the peak rate times :func:`lr_factor` (with its linear warm-up
      over ``warmup`` steps);
    - ``one_cycle`` (Smith & Topin 2019, torch's ``OneCycleLR``): over the first ``warmup`` steps (a
      fraction of ``steps`` if below 1) the rate rises from lr / 10 to lr along a half cosine, then falls
      to lr / 1000 along another; with Adam it also moves beta1 the other way, 0.95 -> 0.85 -> 0.95.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive whole number, got {steps!r}")
    if shape not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {shape!r}; choose one of: {', '.join(SCHEDULES)}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0 steps, got {warmup!r}")
    if shape == "one_cycle":
        if not 0 < warmup < steps:
            raise ValueError(
                f"one_cycle's warmup must be a fraction in (0, 1) or a step count in [1, {steps}), got {warmup!r}"
            )
        pct = warmup if warmup < 1 else warmup / steps
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=steps,
            pct_start=pct,
            div_factor=10,
            final_div_factor=100,
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, steps, shape, int(warmup)))


# ---------------------------------------------------------------------------------------------
# Training with an average of the weights (diffusion models, flow matching)
# ---------------------------------------------------------------------------------------------


def train_with_ema(
    model: nn.Module,
    loss_fn: Callable,
    data,
    *,
    steps: int,
    lr: float,
    decay: float,
    schedule: str = "one_cycle",
    warmup: float = 0.05,
    snapshots: dict | None = None,
    desc: str = "training",
) -> History:
    """:func:`fit` for ``steps`` steps with Adam, its learning rate peaking at ``lr``
    (:func:`lr_schedule` of shape ``schedule`` with ``warmup``; the default one-cycle
    schedule warms up over the first 5% of the steps, then decays to lr / 1000), keeping an
    :class:`~gencourse.nn.EMA` with ``decay`` of the weights after every optimizer step. The model ends up
    holding the averaged weights: standard practice for diffusion models, whose samples are smoother with them.

    ``snapshots``: for each k among its keys (1 to ``steps``), ``snapshots[k]`` is set to a copy of the
    averaged weights after the k-th optimizer step (the weak model of autoguidance is such a snapshot).
    """
    ema = EMA(model, decay, snapshots=snapshots)
    late = [k for k in ema.snapshots if k > steps]
    if late:
        raise ValueError(f"snapshot steps must be whole numbers in [1, steps={steps}], got {late}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    hook = ema.attach(optimizer, model)
    try:
        history = fit(
            model,
            loss_fn,
            data,
            steps=steps,
            optimizer=optimizer,
            scheduler=lr_schedule(optimizer, steps, schedule, warmup=warmup),
            desc=desc,
        )
    finally:
        hook.remove()
    ema.copy_to(model)
    return history


# ---------------------------------------------------------------------------------------------
# The model cache
# ---------------------------------------------------------------------------------------------


class CacheWarning(UserWarning):
    """A cached model could not be used (corrupt or mismatched) and is being retrained."""


def config_dict(settings) -> dict:
    """The JSON-ready dict of a model's settings: a dataclass (``gencourse.recipes``' frozen settings) or a dict."""
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        return dataclasses.asdict(settings)
    if isinstance(settings, dict):
        return settings
    raise TypeError(f"settings must be a dataclass instance or a dict, got {type(settings).__name__}")


def config_hash(name: str, config) -> str:
    text = json.dumps({"name": name, "config": config_dict(config)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_path(name: str, config, profile: str | None = None, directory: Path | None = None) -> Path:
    """Where ``load_or_train`` keeps the model ``name`` trained with ``config`` in ``profile``."""
    profile = profile or active_profile().name
    return Path(directory or cache_dir()) / f"{name}-{profile}-{config_hash(name, config)}.pt"


def _load_cached(path: Path, model: nn.Module, name: str, config) -> History | None:
    """The cached history, with the cached weights loaded into ``model``; None (and a warning) if the file
    cannot be used, in which case ``model`` may hold part of it and must be thrown away."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != CACHE_FORMAT or payload.get("name") != name:
            raise ValueError(f"it holds {payload.get('name')!r} in format {payload.get('format')}")
        if payload.get("config_hash") != config_hash(name, config):
            raise ValueError("it was trained with another configuration")
        model.load_state_dict(payload["state_dict"])
        return History.from_dict(payload["history"])
    except Exception as exc:  # corrupt file, wrong keys or shapes: never use it, say so, retrain
        warnings.warn(
            f"cached model {path} cannot be used ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); "
            "retraining it",
            CacheWarning,
            stacklevel=3,
        )
        return None


def writable_folder(folder: Path) -> str | None:
    """None if files can be created in ``folder`` (made if missing), else the reason they cannot."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def save_atomic(payload, path: Path) -> None:
    """``torch.save`` to a temporary file with a unique name beside ``path``, then an atomic rename: an
    interrupted save never leaves a half-written file, and two processes saving the same file at once
    each rename their own complete copy (the later one wins)."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_or_train(
    name: str,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], History],
    config,
    *,
    seed: int = 0,
    retrain: bool | None = None,
    profile: str | None = None,
    directory: Path | None = None,
    device: torch.device | None = None,
):
    """Return ``(model, history)``: loaded from the cache when a model ``name`` with the same
    ``config`` was trained before in this profile, else built with ``build()``, trained with
    ``train(model) -> History`` (seeded with ``seed``) and saved.

    ``config`` (a settings dataclass or a JSON-serialisable dict) must hold everything that changes the
    result (sizes, steps, lr...); its hash is part of the file name, so changing it retrains. Files are
    read with ``torch.load(weights_only=True)``; a corrupt or mismatched one is reported (``CacheWarning``)
    and the model is retrained from a freshly built one. A cache folder that cannot be written is reported
    before training, and the trained model is returned uncached. ``retrain=True`` or
    ``GENCOURSE_RETRAIN=1`` ignores the cache.
    """
    dev = device or default_device()
    path = cache_path(name, config, profile, directory)
    retrain = os.environ.get("GENCOURSE_RETRAIN", "0") == "1" if retrain is None else retrain
    if path.exists() and not retrain:
        if path.is_dir():
            warnings.warn(f"the cache entry {path} is a folder, not a model file: retraining", CacheWarning, 2)
        else:
            seed_everything(seed)
            model = build()
            history = _load_cached(path, model, name, config)
            if history is not None:
                history.meta["loaded_from"] = str(path)
                return model.to(dev).eval(), history
    problem = writable_folder(path.parent)
    if problem is None and path.is_dir():
        problem = f"{path} is a folder"
    if problem is not None:
        warnings.warn(
            f"cannot write the model cache at {path.parent} ({problem}): {name} is trained but not cached, "
            "so the next run trains it again. Point GENCOURSE_CACHE at a writable folder to keep it.",
            CacheWarning,
            stacklevel=2,
        )
    seed_everything(seed)
    model = build().to(dev)  # a fresh model: nothing of a rejected cache file may seed the training
    seed_everything(seed)
    start = time.perf_counter()
    history = train(model)
    if not isinstance(history, History):
        raise TypeError(f"train() for {name!r} must return a History, got {type(history).__name__}")
    history.meta.setdefault("train_seconds", time.perf_counter() - start)
    history.meta.update(
        device=str(dev),
        torch=str(torch.__version__),
        machine=platform.machine(),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    if problem is None:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        payload = {
            "format": CACHE_FORMAT,
            "name": name,
            "config_hash": config_hash(name, config),
            "config": json.dumps(config_dict(config), sort_keys=True, default=str),
            "state_dict": state,
            "history": history.to_dict(),
        }
        try:
            save_atomic(payload, path)
        except (OSError, RuntimeError) as exc:  # full disk, a folder made read-only meanwhile: keep the model
            warnings.warn(
                f"could not save {name} to the model cache ({type(exc).__name__}: {exc}); "
                "the trained model is returned uncached",
                CacheWarning,
                stacklevel=2,
            )
    return model.eval(), history
