"""Where benchmark figures are kept: one JSON file per profile (``results-<profile>.json``) that every
benchmark script merges its section into, and ``results.md``, every figure rendered from all of them. Each
save also re-renders the results page ``docs/results.md`` and the README's generated blocks
(:mod:`benchmarks.report`)."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    """The hardware and software a figure was measured on."""
    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "device": "cpu",
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from gencourse import device

    dev = device()
    info["device"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return info


def parse_args(parser, argv=None):
    """``parser``'s arguments plus the ones every model benchmark takes (``--profile``, ``--retrain``), parsed;
    the profile (and ``GENCOURSE_RETRAIN``) are set in the environment before any model is built."""
    parser.add_argument("--profile", choices=["smoke", "lecture", "full"], required=True)
    parser.add_argument("--retrain", action="store_true", help="ignore the model cache (measures training time)")
    args = parser.parse_args(argv)
    os.environ["GENCOURSE_PROFILE"] = args.profile
    if args.retrain:
        os.environ["GENCOURSE_RETRAIN"] = "1"
    return args


def path(profile: str) -> Path:
    return HERE / f"results-{profile}.json"


def load(profile: str) -> dict:
    p = path(profile)
    return json.loads(p.read_text()) if p.exists() else {}


def save(profile: str, section: str, data) -> Path:
    """Merge ``data`` into ``section`` of the profile's results, stamp machine and date, re-render."""
    results = load(profile)
    results.setdefault(section, {})
    if isinstance(data, dict):
        results[section].update(data)
    else:
        results[section] = data
    results["profile"] = profile
    results.setdefault("machine", {})[section] = machine()
    results.setdefault("date", {})[section] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path(profile).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    render()
    from benchmarks import report  # the results page and the README's generated blocks, from the JSON

    report.write()
    return path(profile)


def _fmt(value, digits=3):
    """A table cell: floats to ``digits`` significant figures, a record as ``key value`` pairs, a list of
    records one after another (a 2D GAN's per-seed figures)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v, digits)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_fmt(v, digits) for v in value)
    return str(value)


def render() -> Path:
    """Write results.md from every results-*.json present."""
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks` and `python -m benchmarks.notebooks`;",
        "do not edit by hand. Judge scores are computed in the course's MNIST judge feature space",
        "(not comparable with published Inception FIDs).",
        "",
    ]
    for p in sorted(HERE.glob("results-*.json")):
        results = json.loads(p.read_text())
        profile = results.get("profile", p.stem)
        lines += [f"## Profile `{profile}`", ""]
        for section in ("models", "toy2d", "notebooks", "sliders"):
            if section not in results:
                continue
            mach = results["machine"][section]
            lines += [
                f"### {section} ({mach['device']}, {mach['cpu']}, {mach['cores']} cores, torch {mach['torch']},"
                f" {results['date'][section][:10]})",
                "",
            ]
            rows = results[section]
            columns = sorted({k for row in rows.values() for k in row}, key=lambda k: (COLUMN_ORDER.get(k, 99), k))
            lines.append("| " + " | ".join(["name", *columns]) + " |")
            lines.append("|" + " --- |" * (len(columns) + 1))
            for name, row in rows.items():
                lines.append("| " + " | ".join([name, *(_fmt(row.get(c)) for c in columns)]) + " |")
            lines.append("")
    out = HERE / "results.md"
    out.write_text("\n".join(lines))
    return out


COLUMN_ORDER = {
    k: i
    for i, k in enumerate(
        [
            "train_s",
            "sample_s_per_1000",
            "n_samples",
            "fid",
            "inception_score",
            "precision",
            "recall",
            "confident",
            "classes_present",
            "nll_nats",
            "bits_per_dim",
            "modes",
            "high_quality",
            "seconds",
            "status",
        ]
    )
}
