"""One command for the first GPU: how fast the course trains there, whether runs repeat, whether the notebooks run.

    python -m benchmarks.gpu_check                  # on a CUDA machine: under 10 minutes
    python -m benchmarks.gpu_check --cpu --steps 2 --batch 4 --no-notebooks   # the same code on the CPU (tests)

Needs only torch, torchvision and the course package (no Jupyter). It writes ``benchmarks/gpu_check.json``,
rendered into ``docs/results.md`` by ``python -m benchmarks.report``, and prints a summary:

1. **Speed.** Each notebook's main model (the recipe the notebook trains, ``MAIN_MODELS``) trains through
   ``load_or_train``, placed by ``gencourse.device()``, in the ``lecture`` and ``full`` profiles: once for
   ``WARMUP`` steps and once for ``WARMUP + steps`` steps; the difference of the training times gives seconds per
   step (building, data and evaluations cancel), hence steps per second, the estimated minutes of the profile's
   whole training, and the peak GPU memory.
2. **Determinism.** A short training (``DETERMINISM_STEPS`` steps, lecture settings) runs twice with the same
   seed: the weights must be equal (DESIGN.md: the same seed gives the same numbers on the same machine).
3. **Notebooks.** The seven notebooks run through nbval in the smoke profile if pytest and nbval are
   installed (skipped, with the reason, if not).

Every number is for the device it ran on (``device`` in the JSON); compare it with ``benchmarks/cost.json``'s
estimates for the reference GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PROFILES = ("lecture", "full")
MAIN_MODELS = {  # notebook -> the course model it is built around
    "02": "gan_toy2d_pacgan",
    "03": "gan_dcgan_mnist",
    "04": "vae_mnist_2d",
    "05": "vae_mnist",
    "06": "flow_mnist",
    "07": "ddpm_mnist",
}
STEPS = 50  # timed steps per model and profile on the GPU
WARMUP = 5  # steps before the timed ones: cuDNN's autotuning, allocator growth, first kernels
DETERMINISM_STEPS = 5
NOTEBOOK_TIMEOUT = 240  # seconds for the seven smoke notebooks under nbval


def device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def train(model_name: str, profile: str, steps: int, batch: int | None):
    """Train course model ``model_name`` for ``steps`` steps in ``profile`` through its recipe and
    ``load_or_train`` (temporary cache, retrained). Returns ``(model, history, settings as the profile has them)``."""
    from benchmarks.cost import course_models, overridden_recipes
    from gencourse import device
    from gencourse.train import load_or_train

    model = next(m for m in course_models() if m.name == model_name)
    os.environ["GENCOURSE_PROFILE"] = profile
    overrides = {"steps": steps, "evaluations": 1, "n_eval": 16}  # a GAN's scores: not what is timed
    if batch is not None:
        overrides.update(batch_size=batch, n_train=16 * batch)
    seen = {}

    def recorded(name, build, train_fn, settings, **kwargs):
        seen["settings"] = asked[settings]
        return load_or_train(name, build, train_fn, settings, retrain=True, **kwargs)

    with overridden_recipes(overrides, device=device().type, load_or_train=recorded) as asked:
        trained, history = model.call()
    return trained, history, seen["settings"]


def speed(model_name: str, profile: str, steps: int, batch: int | None, warmup: int) -> dict:
    """Seconds per training step of ``model_name`` in ``profile`` on ``gencourse.device()``."""
    from gencourse import device

    dev = device()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    _, short, settings = train(model_name, profile, warmup, batch)
    _sync(dev)
    _, long, _ = train(model_name, profile, warmup + steps, batch)
    _sync(dev)
    seconds = max(long.meta["train_seconds"] - short.meta["train_seconds"], 1e-9) / steps
    row = {
        "batch_size": batch or settings.batch_size,
        "profile_steps": settings.steps,
        "steps_timed": steps,
        "seconds_per_step": seconds,
        "steps_per_second": 1 / seconds,
        "estimated_train_minutes": settings.steps * seconds / 60 if batch is None else None,
    }
    if dev.type == "cuda":
        row["peak_memory_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return row


def determinism(model_name: str, steps: int, batch: int | None) -> dict:
    """Train twice with the same seed (lecture settings): equal weights, or how far apart they are."""
    first, _, _ = train(model_name, "lecture", steps, batch)
    second, _, _ = train(model_name, "lecture", steps, batch)
    a, b = first.state_dict(), second.state_dict()
    diff = max(
        (
            (a[k].float() - b[k].float()).abs().max().item()
            if a[k].is_floating_point()
            else float(not torch.equal(a[k], b[k]))
        )
        for k in a
    )
    return {"steps": steps, "equal": all(torch.equal(a[k], b[k]) for k in a), "max_abs_diff": diff}


def notebooks(timeout: int) -> dict:
    """The smoke notebooks under nbval (``pytest notebooks/``), or why they were skipped."""
    missing = [name for name in ("pytest", "nbval", "ipykernel") if importlib.util.find_spec(name) is None]
    if missing:
        return {"ran": False, "note": f"skipped: {', '.join(missing)} not installed (pip install -e '.[test]')"}
    root = HERE.parent
    command = [sys.executable, "-m", "pytest", "notebooks", "-q", "-p", "no:cacheprovider", "-rA"]
    env = {**os.environ, "GENCOURSE_PROFILE": "smoke"}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ran": True, "passed": False, "note": f"stopped after {timeout} s"}
    report = [line for line in done.stdout.splitlines() if line.startswith(("PASSED", "FAILED", "ERROR"))]
    failed = sorted({line.split()[1].split("::")[0] for line in report if not line.startswith("PASSED")})
    return {
        "ran": True,
        "passed": done.returncode == 0,
        "failed_notebooks": failed,
        "cells_passed": sum(line.startswith("PASSED") for line in report),
        "seconds": round(time.perf_counter() - start, 1),
        "summary": done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (to test this script)")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"timed steps per model and profile ({STEPS})")
    parser.add_argument("--warmup", type=int, default=None, help=f"untimed steps first ({WARMUP}; 1 with --cpu)")
    parser.add_argument("--batch", type=int, default=None, help="a batch size for every model (default: theirs)")
    parser.add_argument("--only", nargs="+", choices=sorted(MAIN_MODELS), help="these notebooks' models only")
    parser.add_argument("--no-notebooks", action="store_true", help="skip the nbval run of the notebooks")
    parser.add_argument("--out", type=Path, default=HERE / "gpu_check.json", help="the JSON to write")
    args = parser.parse_args(argv)
    saved = {k: os.environ.get(k) for k in ("GENCOURSE_DEVICE", "GENCOURSE_PROFILE")}
    if args.cpu:
        os.environ["GENCOURSE_DEVICE"] = "cpu"
    elif not torch.cuda.is_available():
        print("no CUDA GPU here: this check is for a GPU machine (use --cpu to test the script)", file=sys.stderr)
        return 2
    from gencourse import device
    from gencourse.metrics import reference_features

    warmup = args.warmup if args.warmup is not None else (1 if args.cpu else WARMUP)
    dev = device()
    reference_features()  # the judge's reference, once, before any timing
    result = {
        "device": device_name(dev),
        "device_type": dev.type,
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "steps_timed": args.steps,
        "batch_override": args.batch,
        "models": {},
    }
    start = time.perf_counter()
    try:
        for notebook, name in MAIN_MODELS.items():
            if args.only and notebook not in args.only:
                continue
            row = {"notebook": notebook}
            for profile in PROFILES:
                row[profile] = speed(name, profile, args.steps, args.batch, warmup)
                print(f"{notebook} {name} {profile}: {row[profile]['steps_per_second']:.1f} steps/s", flush=True)
            result["models"][name] = row
        name = MAIN_MODELS["03"] if not args.only or "03" in args.only else MAIN_MODELS[args.only[0]]
        result["determinism"] = {name: determinism(name, 2 if args.cpu else DETERMINISM_STEPS, args.batch)}
        print(f"determinism ({name}): {result['determinism'][name]}", flush=True)
        result["notebooks"] = (
            {"ran": False, "note": "skipped: --no-notebooks"} if args.no_notebooks else notebooks(NOTEBOOK_TIMEOUT)
        )
        print(f"notebooks: {result['notebooks']}", flush=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    result["seconds"] = round(time.perf_counter() - start, 1)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
