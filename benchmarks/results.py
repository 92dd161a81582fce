"""Where benchmark figures are kept: one JSON file per profile (``results-<profile>.json``) that every
benchmark script merges its section into, and ``results.md``, rendered from all of them."""

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
    if profile != "smoke":  # the README shows the lecture (CPU) and full (GPU) results
        render_readme()
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
        for section in ("models", "toy2d", "notebooks"):
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


README = HERE.parent / "README.md"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
SUMMARY = [  # (column title, key, digits) of the README's compact table
    ("training", "train_s", None),
    ("s per 1000 samples", "sample_s_per_1000", 3),
    ("samples judged", "n_samples", None),
    ("FID", "fid", 3),
    ("IS", "inception_score", 3),
    ("precision", "precision", 2),
    ("recall", "recall", 2),
    ("confident", "confident", 2),
    ("digits", "classes_present", None),
    ("test NLL (nats)", "nll_nats", 4),
    ("bits/dim", "bits_per_dim", 4),
]
FAMILY_ORDER = ("gan_", "vae_", "cvae_", "flow_", "ddpm_", "latent_")  # the README lists the models in course order


def _family_rank(name: str) -> int:
    return next((i for i, prefix in enumerate(FAMILY_ORDER) if name.startswith(prefix)), len(FAMILY_ORDER))


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def readme_block(profile: str) -> list[str]:
    """The compact results tables of one profile, as Markdown lines (empty when it has no results)."""
    results = load(profile)
    lines = []
    if "models" in results:
        mach = results["machine"]["models"]
        lines += [
            f"**Image models, `{profile}` profile** ({mach['device']}: {mach['cpu']}, {mach['cores']} cores, "
            f"torch {mach['torch']}, {results['date']['models'][:10]}):",
            "",
            "| model | " + " | ".join(title for title, _, _ in SUMMARY) + " |",
            "| --- |" + " ---: |" * len(SUMMARY),
        ]
        for name, row in sorted(results["models"].items(), key=lambda item: _family_rank(item[0])):
            cells = [
                _duration(row.get(key)) if key == "train_s" else _fmt(row.get(key), digits or 3)
                for _, key, digits in SUMMARY
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Test NLL and bits/dim are on each model's own data: binarized MNIST for the VAE (bits per binary",
            "pixel), dequantized 8-bit MNIST for the flow; the two are not comparable.",
            "",
        ]
    if "toy2d" in results:
        rows = {k: v for k, v in results["toy2d"].items() if "num_modes" in v}
        if rows:
            r0 = next(iter(rows.values()))
            lines += [
                f"**2D GANs, `{profile}` profile** (mean over {r0['seeds']} training seeds x {r0['draws']} "
                "draws of 2500 samples; the worst draw in brackets):",
                "",
                "| data, model | modes covered | high-quality samples | training |",
                "| --- | ---: | ---: | ---: |",
            ]
            for name, r in rows.items():
                lines.append(
                    f"| {name} | {r['modes']:.1f}/{r['num_modes']} ({r['modes_min']}) | "
                    f"{r['high_quality']:.1%} ({r['high_quality_min']:.1%}) | {_duration(r.get('train_s'))} |"
                )
            lines.append("")
    return lines


def render_readme() -> bool:
    """Replace the README's block between the results markers with the current tables; True if written."""
    if not README.exists():
        return False
    text = README.read_text()
    if README_START not in text or README_END not in text:
        return False
    block = [README_START, "", *[line for p in ("lecture", "full") for line in readme_block(p)], README_END]
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    README.write_text(head + "\n".join(block) + tail)
    return True
