"""One-off experiments behind the course's settings (settings that were tried and compared, not the course's
models). Each module's docstring says what it compares and gives its command; each run records what it measured
in ``benchmarks/experiments/results/<module>.json`` (:func:`record`), which ``python -m benchmarks.report``
renders into ``docs/results.md``."""

import json
import os
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RUN_SOURCE = "measured by running the command"
TRANSCRIBED_SOURCE = "transcribed from the script's docstring; rerun the command to regenerate"
# environment variables that change what an experiment measures, written in front of its command
COMMAND_ENV = ("OMP_NUM_THREADS", "GENCOURSE_PROFILE", "GENCOURSE_CACHE", "GNORM", "DNORM")


def command_line(name: str, argv: list[str] | None = None) -> str:
    """The command that reruns experiment ``name`` as it is running now: the environment variables of
    :data:`COMMAND_ENV` that are set, then ``python -m benchmarks.experiments.<name>`` and its arguments."""
    env = [f"{key}={shlex.quote(os.environ[key])}" for key in COMMAND_ENV if os.environ.get(key)]
    args = sys.argv[1:] if argv is None else argv
    return " ".join([*env, "python -m", f"benchmarks.experiments.{name}", *map(shlex.quote, args)])


def load(name: str, folder: Path | None = None) -> dict:
    """The recorded results of experiment ``name`` (``{"experiment", "records", "observations"}``)."""
    path = (folder or RESULTS) / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    return {"experiment": name, "records": [], "observations": []}


def record(name: str, rows, command: str | None = None, folder: Path | None = None) -> Path:
    """Add what a run of experiment ``name`` measured to ``results/<name>.json``: ``rows`` is one record
    (a dict) or a list of them, each with a ``label`` saying which configuration it measured. Every record
    is stamped with its ``command`` (default: :func:`command_line`, the one running now), ``source``, date
    and machine; a record with the same command and label as an earlier one replaces it, so rerunning a
    command regenerates its records (transcribed ones included)."""
    from benchmarks.results import machine

    command = command or command_line(name)
    stamp = {
        "command": command,
        "source": RUN_SOURCE,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    data = load(name, folder)
    for row in [rows] if isinstance(rows, dict) else list(rows):
        new = {"label": str(row.get("label", "")), **row, **stamp}
        same = [i for i, r in enumerate(data["records"]) if (r["command"], r.get("label")) == (command, new["label"])]
        if same:
            data["records"][same[0]] = new
        else:
            data["records"].append(new)
    path = (folder or RESULTS) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def report_draws(model, dataset: str, first_seed: int, **fields) -> dict:
    """Print (and return) one JSON line: ``fields`` and the mean modes and high-quality share of 5 draws of
    2500 samples from a 2D GAN, the draws seeded ``first_seed``, ``first_seed + 1``, ..."""
    from gencourse import metrics, seed_everything
    from gencourse.data import toy2d_modes

    draws = []
    for s in range(5):
        seed_everything(first_seed + s)
        m = metrics.mode_metrics(model.sample(2500), toy2d_modes(dataset))
        draws.append((m["modes"], round(m["high_quality"], 3)))
    modes, hq = sum(r[0] for r in draws) / 5, round(sum(r[1] for r in draws) / 5, 3)
    row = dict(dataset=dataset, **fields, modes=modes, hq=hq, draws=draws)
    print(json.dumps(row), flush=True)
    return row


def judge_ddim(model, n: int, batch: int = 250, steps: int = 50, eta: float = 1.0, **kwargs) -> tuple[dict, float]:
    """Judge ``n`` samples of a pixel diffusion model (images in [-1, 1]) drawn ``batch`` at a time with
    DDIM (``steps``, ``eta``; ``kwargs`` such as ``autoguidance`` go to ``model.sample``) by
    ``benchmarks.diffusion.timed_samples`` (seed 0): the judge's fid, confident share, precision, recall and
    digits present (rounded), and the seconds the sampling took."""
    from benchmarks.diffusion import timed_samples
    from gencourse.metrics import evaluate_samples

    model.eval()
    x, seconds = timed_samples(model, n, batch, seed=0, steps=steps, eta=eta, **kwargs)
    scores = evaluate_samples(x)
    return {
        k: round(float(scores[k]), 3) for k in ("fid", "confident", "precision", "recall", "classes_present")
    }, seconds
