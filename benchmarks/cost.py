"""What training every course model costs, per profile: parameters, FLOPs per training step, training FLOPs,
and the estimated training time on a reference GPU and on this CPU.

    python -m benchmarks.cost                              # every model, every profile: print, write cost.json
    python -m benchmarks.cost --profile full               # one profile (the others are kept from cost.json)
    python -m benchmarks.cost --profile full --set ddpm_mnist.steps=8000 --set ddpm_mnist.batch_size=64
                                                           # what-if: print only, with some settings changed
    python -m benchmarks.cost --calibrate                  # also time a few real steps here (the CPU column)

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions, forward and
backward; elementwise work is not counted) on the model's real training code: the recipe of
``gencourse.recipes`` builds the model and its ``train`` runs through the very loop the notebooks use. One
step's count is the difference between a 2-step and a 1-step run (so building, data and evaluations cancel),
measured at batch 4 and 8 and extrapolated linearly to the profile's batch size (exact: every counted operation
is linear in the batch). Training FLOPs are that times the steps; evaluations during training (a GAN's scores
every few hundred steps) are not included.

The GPU estimate per step is FLOPs / ``SUSTAINED_TFLOPS`` plus ``OVERHEAD_US`` per operator launched (the
number of non-view operators of one step, counted the same way, with Adam's ``foreach`` update as on a GPU):
small models on a GPU are bound by the launch overhead of eager PyTorch, not by arithmetic; the training loop
reads the loss every step (the NaN check, the history), so launching and computing do not overlap. A model
its recipe trains on the CPU (the 2D flows) gets no GPU estimate and is left out of the notebook's GPU total.
Both constants are assumptions for a T4-class card (fp32, no tensor cores) until ``python -m benchmarks.gpu_check``
measures steps per second on a real one. The CPU
column needs ``--calibrate``: it times 3 real steps of each model at its real batch size on this machine (after
one warm-up step), which is only meaningful on an otherwise idle machine.

Writes ``benchmarks/cost.json``, which ``python -m benchmarks.report`` renders into ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

HERE = Path(__file__).resolve().parent
PROFILES = ("smoke", "lecture", "full")
REFERENCE_GPU = "T4-class GPU (NVIDIA T4: 8.1 TFLOP/s fp32 peak, no tensor cores in fp32)"
SUSTAINED_TFLOPS = 3.0  # fp32 small convnets and MLPs at batch 64-256: about 35-40% of a T4's peak
OVERHEAD_US = 20.0  # per operator launched by eager PyTorch on a Colab-class host CPU (launch + dispatch)
FULL_BUDGET_MINUTES = 10.0  # what a notebook's full training should fit on the reference GPU (DESIGN.md)
BATCHES = (4, 8)  # one step is measured at these batch sizes, then extrapolated to the real one
CALIBRATION_STEPS = 3


@dataclasses.dataclass(frozen=True)
class Model:
    """A course model to cost: its name in tables, the notebook that trains it, the registered call (a
    function of ``gencourse.recipes``) and how many trainings of it the notebook runs (variants)."""

    name: str
    notebook: str
    call: Callable
    trainings: Callable[[], int] = lambda: 1
    note: str = ""
    on_cpu: bool = False  # its recipe trains it on the CPU whatever the device: no GPU estimate


def _count_variants(prefix: str) -> Callable[[], int]:
    def count():
        from gencourse import recipes

        return sum(1 for label in recipes.course_model_calls() if label.split("(")[0] == prefix)

    return count


def course_models() -> list[Model]:
    """One entry per distinct training cost; a model trained several times with the same cost (the beta
    sweep, the same 2D GAN on ring8 and grid25) counts its trainings."""
    from gencourse import recipes

    R = recipes
    return [
        Model("gan_toy2d_gan", "02", lambda: R.gan.toy_gan("ring8", "gan"), lambda: 2, "x2: ring8 and grid25"),
        Model("gan_toy2d_pacgan", "02", lambda: R.gan.toy_gan("ring8", "pacgan"), lambda: 2, "x2: ring8, grid25"),
        Model("gan_toy2d_largebatch", "02", lambda: R.gan.toy_gan("ring8", "largebatch"), lambda: 2, "x2"),
        Model("gan_dcgan_mnist", "03", R.gan.dcgan_mnist),
        Model("gan_conditional_mnist", "03", R.gan.conditional_gan_mnist),
        Model("gan_sngan_mnist", "03", R.gan.sngan_mnist),
        Model("gan_infogan_mnist", "03", R.gan.infogan_mnist),
        Model("ae_mnist_2d", "04", R.vae.mnist_autoencoder_2d),
        Model("vae_mnist_2d", "04", R.vae.mnist_vae_2d),
        Model("vae_mnist", "05", R.vae.mnist_vae, note="also used by 07's latent diffusion"),
        Model(
            "vae_mnist_beta",
            "05",
            lambda: R.vae.mnist_beta_vae(1.0),
            _count_variants("vae_mnist_beta"),
            "the beta sweep and the collapse remedies",
        ),
        Model("cvae_mnist", "05", R.vae.mnist_cvae),
        Model(
            "flow_toy2d",
            "06",
            lambda: R.flows.toy2d_flow("moons"),
            _count_variants("flow_toy2d"),
            "moons, checkerboard; trained on the CPU by its recipe",
            on_cpu=True,
        ),
        Model("flow_mnist", "06", R.flows.mnist_flow),
        Model("ddpm_mnist", "07", R.diffusion.mnist_ddpm),
        Model("latent_diffusion_mnist", "07", R.diffusion.mnist_latent_diffusion, note="plus vae_mnist if uncached"),
    ]


# ---------------------------------------------------------------------------------------------
# Running a recipe's training with other settings, and counting what it does
# ---------------------------------------------------------------------------------------------


class OperatorCounter(TorchDispatchMode):
    """Counts the operators that launch work on a device (every aten operator that is not a view)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.count += 1
        return func(*args, **(kwargs or {}))


def trained_parameters(model: torch.nn.Module) -> int:
    """The parameters the optimizer trains: a diffusion model's network (not its weak copy, not a latent
    diffusion model's frozen autoencoder), both players of a GAN, all of any other model."""
    from gencourse.diffusion import Diffusion, LatentDiffusion

    if isinstance(model, LatentDiffusion):
        model = model.diffusion
    if isinstance(model, Diffusion):
        model = model.net
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclasses.dataclass
class Run:
    settings: object  # the profile's settings of the model (before any override)
    parameters: int
    flops: int = 0
    operators: int = 0
    seconds: float = 0.0


@contextlib.contextmanager
def overridden_recipes(
    overrides: dict, what_if: dict | None = None, *, device: str = "cpu", load_or_train=None, replace=()
):
    """While this runs, every ``*_settings`` function of ``gencourse.recipes`` returns the active profile's
    settings with ``what_if``, then ``overrides``, on top (a field its settings lack is skipped); MNIST is read
    once; models are cached in a temporary folder and placed on ``device``; ``load_or_train``, if given,
    replaces the recipes' own, as each ``(module, name, value)`` of ``replace`` does. Yields ``asked``:
    ``asked[settings]`` is the settings a recipe got with ``what_if`` but without ``overrides`` (what the
    tables report)."""
    from gencourse import recipes

    what_if, asked, saved = what_if or {}, {}, []

    def settings_function(make):
        @functools.wraps(make)
        def settings(*args, **kwargs):
            made = make(*args, **kwargs)
            made = asked[id(made)][0] if id(made) in asked else made  # dcgan_settings calls mnist_gan_settings
            fields = {f.name for f in dataclasses.fields(made)}
            wanted = dataclasses.replace(made, **{k: v for k, v in what_if.items() if k in fields})
            replaced = dataclasses.replace(wanted, **{k: v for k, v in overrides.items() if k in fields})
            asked[id(replaced)] = (wanted, replaced)  # the pair keeps both alive, so the id stays theirs
            return replaced

        return settings

    for module in (recipes.gan, recipes.vae, recipes.flows, recipes.diffusion):
        for name in dir(module):
            value = getattr(module, name)
            if name.endswith("_settings") and callable(value):
                saved.append((module, name, value, settings_function(value)))
        if load_or_train is not None and hasattr(module, "load_or_train"):
            saved.append((module, "load_or_train", module.load_or_train, load_or_train))
        if hasattr(module, "mnist"):
            saved.append((module, "mnist", module.mnist, _cached_mnist))
    saved += [(module, name, getattr(module, name), value) for module, name, value in replace]
    with tempfile.TemporaryDirectory() as cache:
        env = {"GENCOURSE_CACHE": cache, "GENCOURSE_PROGRESS": "0", "GENCOURSE_DEVICE": device}
        old_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        for module, name, _, value in saved:
            setattr(module, name, value)
        try:
            yield _Asked(asked)
        finally:
            for module, name, value, _ in reversed(saved):
                setattr(module, name, value)
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


class _Asked:
    """``asked[settings]``: the settings a recipe got, without the overrides (see :func:`overridden_recipes`)."""

    def __init__(self, table: dict):
        self.table = table

    def __getitem__(self, settings):
        return self.table[id(settings)][0]


@contextlib.contextmanager
def recipe_run(model: Model, overrides: dict, what_if: dict, measure: Callable):
    """While this runs, ``model.call()`` builds its model with ``overrides`` (and ``what_if``) on top of the
    active profile's settings and hands its training to ``measure(train, model) -> Run`` on the CPU instead of
    ``load_or_train``; nested course models (latent diffusion's VAE) train as usual, in a temporary cache.
    Yields the list that receives the :class:`Run`."""
    from gencourse import config
    from gencourse.train import load_or_train

    runs: list[Run] = []
    target = _registered_name(model)

    def fake_load_or_train(name, build, train, settings, *, seed=0, **kwargs):
        if name != target:
            return load_or_train(name, build, train, settings, seed=seed, device=torch.device("cpu"))
        config.seed_everything(seed)
        built = build()
        run = measure(train, built)
        run.settings = asked[settings]
        runs.append(run)
        return built.eval(), None

    from gencourse.recipes import gan

    # the GANs' scores during training cost the same in every run (so they cancel) and are not counted: skip them
    no_scores = [
        (gan, "evaluate_samples", lambda images: dict.fromkeys(gan.MNIST_SCORES, 0.0)),
        (gan, "mode_metrics", lambda samples, modes: {"modes": 0, "high_quality": 0.0}),
    ]
    with overridden_recipes(overrides, what_if, load_or_train=fake_load_or_train, replace=no_scores) as asked:
        yield runs


@functools.lru_cache(maxsize=2)
def _cached_mnist(train: bool = True, root=None, download: bool = True):
    from gencourse.data import mnist

    return mnist(train=train, root=root, download=download)


def _registered_name(model: Model) -> str:
    """The name the recipe passes to ``load_or_train`` (the toy GANs are named after their dataset)."""
    if model.name.startswith("gan_toy2d_"):
        return "gan_ring8_" + model.name.removeprefix("gan_toy2d_")
    if model.name == "flow_toy2d":
        return "flow_toy2d_moons"
    return model.name


class _ForeachAdam(torch.optim.Adam):
    """Adam as it runs on a GPU, where it updates all the parameters with one ``_foreach`` operator per step
    of its update (on the CPU, the default is one operator per parameter tensor)."""

    def __init__(self, params, *args, **kwargs):
        kwargs.setdefault("foreach", True)
        super().__init__(params, *args, **kwargs)


def count(model: Model, steps: int, batch: int, what_if: dict) -> Run:
    """FLOPs and operators of ``model``'s training for ``steps`` steps at ``batch`` (CPU, temporary cache;
    the operators counted as a GPU launches them: Adam with ``foreach``)."""

    def measure(train, built):
        flops, operators = FlopCounterMode(display=False), OperatorCounter()
        parameters = trained_parameters(built)
        adam, torch.optim.Adam = torch.optim.Adam, _ForeachAdam
        try:
            with flops, operators:
                train(built)
        finally:
            torch.optim.Adam = adam
        return Run(None, parameters, flops.get_total_flops(), operators.count)

    overrides = {"steps": steps, "batch_size": batch, "n_train": 4 * batch, "n_eval": 16, "evaluations": 1}
    with recipe_run(model, overrides, what_if, measure) as runs:
        model.call()
    return runs[-1]


def timed(model: Model, steps: int, what_if: dict) -> Run:
    """Wall-clock seconds of ``model``'s training for ``steps`` steps at its real batch size (CPU)."""

    def measure(train, built):
        start = time.perf_counter()
        train(built)
        return Run(None, trained_parameters(built), seconds=time.perf_counter() - start)

    with recipe_run(model, {"steps": steps, "n_eval": 16, "evaluations": 1}, what_if, measure) as runs:
        model.call()
    return runs[-1]


def cost(model: Model, profile: str, what_if: dict | None = None, calibrate: bool = False) -> dict:
    """One row of the cost table: ``model`` in ``profile`` (with the ``what_if`` settings changed)."""
    from gencourse import metrics

    what_if = what_if or {}
    os.environ["GENCOURSE_PROFILE"] = profile
    metrics.reference_features()  # computed once per process: never inside a counted run
    (b1, b2), flops_at, ops = BATCHES, {}, 0
    for batch in BATCHES:
        one, two = count(model, 1, batch, what_if), count(model, 2, batch, what_if)
        flops_at[batch], ops = two.flops - one.flops, two.operators - one.operators
    settings, parameters, f1, f2 = two.settings, two.parameters, flops_at[b1], flops_at[b2]
    batch, steps = settings.batch_size, settings.steps
    flops = round(f1 + (f2 - f1) / (b2 - b1) * (batch - b1))
    gpu_step = None if model.on_cpu else flops / (SUSTAINED_TFLOPS * 1e12) + ops * OVERHEAD_US * 1e-6
    row = {
        "notebook": model.notebook,
        "trainings": model.trainings(),
        "parameters": parameters,
        "batch_size": batch,
        "steps": steps,
        "flops_per_step": flops,
        "operators_per_step": ops,
        "train_flops": flops * steps,
        "gpu_seconds_per_step": gpu_step,
        "gpu_minutes": None if gpu_step is None else gpu_step * steps / 60,
        "cpu_seconds_per_step": None,
        "cpu_minutes": None,
    }
    if calibrate:
        warm, longer = timed(model, 1, what_if), timed(model, 1 + CALIBRATION_STEPS, what_if)
        row["cpu_seconds_per_step"] = max(longer.seconds - warm.seconds, 0.0) / CALIBRATION_STEPS
        row["cpu_minutes"] = row["cpu_seconds_per_step"] * steps / 60
    return row


# ---------------------------------------------------------------------------------------------
# The table, per model and per notebook
# ---------------------------------------------------------------------------------------------


def notebook_totals(models: dict[str, dict]) -> dict[str, dict]:
    """Per notebook and profile: the estimated minutes of all its trainings (a model's trainings times its
    minutes) on the reference GPU, and on this CPU once calibrated."""
    totals: dict[str, dict] = {}
    for row in models.values():
        for profile, cell in row["profiles"].items():
            total = totals.setdefault(row["notebook"], {}).setdefault(profile, {"gpu_minutes": 0.0, "cpu_minutes": 0.0})
            if cell["gpu_minutes"] is not None:  # a model its recipe trains on the CPU is left out
                total["gpu_minutes"] += cell["trainings"] * cell["gpu_minutes"]
            if cell["cpu_minutes"] is None or total["cpu_minutes"] is None:
                total["cpu_minutes"] = None
            else:
                total["cpu_minutes"] += cell["trainings"] * cell["cpu_minutes"]
    return dict(sorted(totals.items()))


def machine() -> dict:
    from benchmarks.results import machine as describe

    info = describe()
    info.pop("device", None)
    return info


def human(n: float) -> str:
    for unit, size in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.3g}"


def table(data: dict, profiles=PROFILES) -> str:
    lines = [
        f"{'model':24} {'nb':>2} {'profile':8} {'params':>8} {'batch':>5} {'steps':>7} {'FLOP/step':>10} "
        f"{'ops/step':>8} {'train FLOP':>10} {'GPU min':>8} {'CPU min':>8}"
    ]
    for name, row in data["models"].items():
        for profile in profiles:
            c = row["profiles"].get(profile)
            if c is None:
                continue
            cpu = "-" if c["cpu_minutes"] is None else f"{c['cpu_minutes']:.1f}"
            gpu = "CPU" if c["gpu_minutes"] is None else f"{c['gpu_minutes']:.2f}"
            times = f" x{c['trainings']}" if c["trainings"] > 1 else ""
            lines.append(
                f"{name:24} {row['notebook']:>2} {profile:8} {human(c['parameters']):>8} {c['batch_size']:>5} "
                f"{c['steps']:>7} {human(c['flops_per_step']):>10} {c['operators_per_step']:>8} "
                f"{human(c['train_flops']):>10} {gpu:>8} {cpu:>8}{times}"
            )
    lines += ["", "per notebook (every training it runs), estimated minutes on the reference GPU / this CPU:"]
    for notebook, per_profile in data["notebooks"].items():
        cells = []
        for profile in profiles:
            if profile in per_profile:
                t = per_profile[profile]
                cpu = "-" if t["cpu_minutes"] is None else f"{t['cpu_minutes']:.1f}"
                cells.append(f"{profile} {t['gpu_minutes']:.1f} / {cpu}")
        lines.append(f"  {notebook}: " + "; ".join(cells))
    return "\n".join(lines)


def parse_what_if(items: list[str]) -> dict[str, dict]:
    """``["ddpm_mnist.steps=8000", ...]`` -> ``{"ddpm_mnist": {"steps": 8000}}`` (values as Python literals)."""
    import ast

    out: dict[str, dict] = {}
    for item in items:
        target, _, value = item.partition("=")
        name, _, field = target.partition(".")
        if not (name and field and value):
            raise SystemExit(f"--set takes MODEL.FIELD=VALUE, got {item!r}")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        out.setdefault(name, {})[field] = parsed
    return out


def path() -> Path:
    return HERE / "cost.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=PROFILES, action="append", help="these profiles only (default: all)")
    parser.add_argument("--only", nargs="+", help="these models only (names as in the table)")
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.FIELD=VALUE", help="what-if settings")
    parser.add_argument("--calibrate", action="store_true", help="also time real steps here (an idle machine!)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    profiles = args.profile or list(PROFILES)
    what_if = parse_what_if(args.set)
    models = [m for m in course_models() if not args.only or m.name in args.only]
    unknown = set(what_if) - {m.name for m in course_models()}
    if unknown:
        raise SystemExit(f"--set names unknown models: {sorted(unknown)}")
    saved_profile = os.environ.get("GENCOURSE_PROFILE")
    old = json.loads(path().read_text()) if path().exists() else {}
    data = {"models": dict(old.get("models", {})) if not what_if else {}}
    write = not (what_if or args.no_write)
    try:
        for model in models:
            row = {"notebook": model.notebook, "note": model.note, "profiles": {}}
            if old.get("models", {}).get(model.name) and not what_if:
                row["profiles"] = dict(old["models"][model.name]["profiles"])
            for profile in profiles:
                cell = cost(model, profile, what_if.get(model.name), calibrate=args.calibrate)
                if not args.calibrate and not what_if:  # keep an earlier calibration of the same settings
                    earlier = row["profiles"].get(profile) or {}
                    same = all(earlier.get(k) == cell[k] for k in ("batch_size", "steps", "flops_per_step"))
                    if same and earlier.get("cpu_seconds_per_step") is not None:
                        cell["cpu_seconds_per_step"] = earlier["cpu_seconds_per_step"]
                        cell["cpu_minutes"] = earlier["cpu_seconds_per_step"] * cell["steps"] / 60
                row["profiles"][profile] = cell
                print(f"{model.name} ({profile}): {human(cell['train_flops'])}FLOP", flush=True)
            data["models"][model.name] = row
            if write:  # after each model, so that an interrupted run keeps what it measured
                finish(data, calibrated=args.calibrate)
    finally:
        if saved_profile is None:
            os.environ.pop("GENCOURSE_PROFILE", None)
        else:
            os.environ["GENCOURSE_PROFILE"] = saved_profile
    finish(data, calibrated=args.calibrate, write=write)
    print(table(data, profiles))
    if write:
        print(f"wrote {path()}")
    return 0


def finish(data: dict, calibrated: bool, write: bool = True) -> None:
    """Order the models as the course does, add the per-notebook totals, the assumptions and the machine, and
    write ``cost.json`` (if ``write``)."""
    order = [m.name for m in course_models()]
    data["models"] = {name: data["models"][name] for name in order if name in data["models"]}
    data["notebooks"] = notebook_totals(data["models"])
    data["assumptions"] = {
        "reference_gpu": REFERENCE_GPU,
        "sustained_tflops": SUSTAINED_TFLOPS,
        "overhead_us_per_operator": OVERHEAD_US,
        "full_budget_minutes": FULL_BUDGET_MINUTES,
        "flops": "FlopCounterMode on real training steps (2-step minus 1-step runs at batch 4 and 8, extrapolated "
        "linearly to the profile's batch); matrix products and convolutions, forward and backward",
        "gpu_minutes": "steps x (FLOPs / sustained_tflops + operators x overhead_us_per_operator)",
        "cpu_minutes": f"steps x seconds per step timed here over {CALIBRATION_STEPS} steps (--calibrate)",
    }
    data["machine"] = machine()
    data["calibrated"] = calibrated or any(
        c.get("cpu_minutes") is not None for row in data["models"].values() for c in row["profiles"].values()
    )
    data["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if write:
        path().write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
