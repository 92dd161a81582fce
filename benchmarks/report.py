"""The results page ``docs/results.md`` and the README's generated blocks, rendered from the recorded figures.

    python -m benchmarks.report            # write docs/results.md and the README's generated blocks
    python -m benchmarks.report --check    # exit 1 if either differs from what the recorded figures give

Reads ``benchmarks/results-<profile>.json`` (the course's models, written by ``python -m benchmarks`` and
``python -m benchmarks.notebooks``), ``benchmarks/experiments/results/*.json`` (the experiments, written by
each ``benchmarks/experiments`` script), ``benchmarks/observations.json`` (figures recorded once, with where
they came from) and the hand-written targets of ``benchmarks/targets.py``. The page is never edited by hand:
every benchmark run re-renders it, and a test checks that the committed page is what this module renders.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

from benchmarks import results
from benchmarks.targets import OPEN_QUESTIONS, TARGETS, Criterion, Target

PROFILES = ("smoke", "lecture", "full")
COMMAND = "python -m benchmarks.report"

# The README's table of notebooks: number, title and what a student builds, written here by hand; the run-time
# columns come from the benchmark results.
NOTEBOOKS = {
    "01": (
        "Introduction",
        "discriminative vs generative models (naive Bayes vs logistic regression), maximum likelihood, forward "
        "vs reverse KL, a taxonomy with tiny autoregressive and energy-based models, the MNIST judge",
    ),
    "02": (
        "GAN basics",
        "the adversarial game in 2D: the optimal discriminator and the JS divergence, saturating vs "
        "non-saturating losses, mode collapse, packing (PacGAN) and larger batches as remedies",
    ),
    "03": (
        "GANs on images",
        "DCGAN on MNIST, a conditional GAN, InfoGAN (digit classes without labels), hinge loss + spectral "
        "normalization, WGAN-GP, latent interpolation",
    ),
    "04": (
        "VAE basics",
        "from the autoencoder to the VAE: the ELBO, the closed-form KL, the reparameterization trick vs "
        "REINFORCE, a 2D latent space, why samples are blurry",
    ),
    "05": (
        "VAEs on images",
        "a convolutional VAE, the importance-weighted bound, beta-VAE and rate-distortion, posterior collapse, "
        "a conditional VAE, semi-supervised learning, anomaly detection",
    ),
    "06": (
        "Normalizing flows",
        "change of variables, coupling layers (RealNVP), 2D densities, exact inversion, a multi-scale flow on "
        "MNIST in bits per dimension",
    ),
    "07": (
        "Diffusion",
        "the forward process and schedules, DDPM, DDIM, classifier-free guidance and autoguidance, score "
        "matching and Langevin, flow matching, latent diffusion",
    ),
}

# the per-model table: (column title, key, significant digits)
SUMMARY = [
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
FAMILY_ORDER = ("gan_", "vae_", "cvae_", "flow_", "ddpm_", "latent_")  # the course's order
# fields of an experiment record kept in its JSON but not shown in the page's tables
DETAIL_KEYS = {"label", "command", "source", "date", "machine", "evaluations", "trajectory", "draws", "note"}
TITLES = {
    "hq": "high-quality share",
    "fid": "FID",
    "n": "samples judged",
    "train_s": "training (s)",
    "classes_present": "digits",
    "secs": "training (s)",
}


# ---------------------------------------------------------------------------------------------- paths


def root() -> Path:
    return results.HERE.parent


def page_path() -> Path:
    return root() / "docs" / "results.md"


def readme_path() -> Path:
    return root() / "README.md"


def experiments_dir() -> Path:
    return results.HERE / "experiments"


def observations_path() -> Path:
    return results.HERE / "observations.json"


def cost_path() -> Path:
    return results.HERE / "cost.json"


def gpu_check_path() -> Path:
    return results.HERE / "gpu_check.json"


# ---------------------------------------------------------------------------------------------- figures


def load_results() -> dict[str, dict]:
    """Every profile's recorded results (an empty dict for a profile never measured)."""
    return {profile: results.load(profile) for profile in PROFILES}


def lookup(data, key: tuple[str, ...], reduce: str | None = None):
    """The figure at ``key`` in ``data`` (``"*"`` takes every entry at that level, then ``reduce``), or None."""
    values = [data]
    for part in key:
        found = []
        for value in values:
            if part == "*":
                found += list(value.values()) if isinstance(value, dict) else list(value or [])
            elif isinstance(value, dict) and part in value:
                found.append(value[part])
        values = found
    values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values:
        return None
    if reduce is None:
        return values[0] if len(values) == 1 else None
    return {"min": min, "max": max}[reduce](values)


OPS = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "==": lambda a, b: a == b,
}


def measure(criterion: Criterion, recorded: dict[str, dict]):
    """``(value, met)``: the measured figure and whether it meets the threshold (both None: not measured)."""
    value = lookup(recorded.get(criterion.profile, {}), criterion.key, criterion.reduce)
    if value is None:
        return None, None
    return value, OPS[criterion.op](value, criterion.threshold)


def status(target: Target, recorded: dict[str, dict]) -> str:
    """``met``, ``not met`` (a measured criterion fails) or ``not measured``."""
    met = [measure(c, recorded)[1] for c in target.criteria]
    if False in met:
        return "not met"
    return "not measured" if None in met else "met"


def show(value, kind: str = "number") -> str:
    """A figure as the page shows it."""
    if value is None:
        return "not measured"
    if kind == "share":
        return f"{value:.1%}"
    if kind == "seconds":
        return duration(value)
    if kind == "count":
        return f"{value:g}"
    return results._fmt(float(value), 4)


def duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def threshold(criterion: Criterion) -> str:
    value = criterion.threshold
    if criterion.kind == "share" and float(100 * value).is_integer():
        return f"{criterion.op} {value:.0%}"
    if criterion.kind == "seconds":
        return (
            f"{criterion.op} {value / 60:g} min" if value >= 120 and value % 60 == 0 else f"{criterion.op} {value:g} s"
        )
    return f"{criterion.op} {show(value, criterion.kind)}"


def cell(value) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------------------------- experiments


def experiment_names() -> list[str]:
    """Every experiment script (``benchmarks/experiments/<name>.py``), in name order."""
    return sorted(p.stem for p in experiments_dir().glob("*.py") if not p.name.startswith("_"))


def experiment_summary(name: str) -> str:
    """The first paragraph of the experiment's docstring, on one line (read without importing the script)."""
    path = experiments_dir() / f"{name}.py"
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "`")


def experiment_results(name: str) -> dict:
    path = experiments_dir() / "results" / f"{name}.json"
    if not path.exists():
        return {"experiment": name, "records": [], "observations": []}
    return json.loads(path.read_text())


def source_label(record: dict) -> str:
    from benchmarks.experiments import RUN_SOURCE, TRANSCRIBED_SOURCE

    if record.get("source") == TRANSCRIBED_SOURCE:
        return "transcribed"
    if record.get("source") == RUN_SOURCE:
        return f"run {str(record.get('date', ''))[:10]}".strip()
    return str(record.get("source", "-"))


def experiment_section(name: str) -> list[str]:
    data = experiment_results(name)
    lines = [f"### {name}", "", experiment_summary(name), ""]
    records = data.get("records", [])
    if not records:
        return lines + [f"No results recorded yet: run `python -m benchmarks.experiments.{name}`.", ""]
    columns = []
    for r in records:
        columns += [k for k in r if k not in DETAIL_KEYS and k not in columns]
    has_note = any("note" in r for r in records)
    titles = ["run", *(TITLES.get(c, c) for c in columns), *(["note"] if has_note else []), "source", "command"]
    lines += ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(titles)]
    for r in records:
        cells = [r.get("label") or "-", *(results._fmt(r.get(c)) for c in columns)]
        cells += [r.get("note", "-")] if has_note else []
        cells += [source_label(r), f"`{r['command']}`"]
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    lines.append("")
    for o in data.get("observations", []):
        lines.append(f"- {o['text']} ({o['source']})")
    if data.get("observations"):
        lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------- tables


def _family_rank(name: str) -> int:
    return next((i for i, prefix in enumerate(FAMILY_ORDER) if name.startswith(prefix)), len(FAMILY_ORDER))


def _machine(data: dict, section: str) -> str:
    m = data["machine"][section]
    return f"{m['device']}: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {data['date'][section][:10]}"


def models_tables(profile: str, data: dict) -> list[str]:
    """The image models' scores, the 2D GANs' and the 2D flows' figures of one profile."""
    lines = []
    if "models" in data:
        lines += [
            f"### Image models, `{profile}` profile ({_machine(data, 'models')})",
            "",
            "| model | " + " | ".join(title for title, _, _ in SUMMARY) + " |",
            "| --- |" + " ---: |" * len(SUMMARY),
        ]
        for name, row in sorted(data["models"].items(), key=lambda item: _family_rank(item[0])):
            cells = [
                duration(row.get(key)) if key == "train_s" else results._fmt(row.get(key), digits or 3)
                for _, key, digits in SUMMARY
            ]
            lines.append(f"| {cell(name)} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Judge scores are computed in the feature space of the course's MNIST classifier (notebook 01), so they",
            "compare the course's models with each other, not with published Inception FIDs. Test NLL and bits/dim",
            "are on each model's own data: binarized MNIST for the VAE (bits per binary pixel), dequantized 8-bit",
            "MNIST for the flow; the two are not comparable.",
            "",
        ]
    toy = data.get("toy2d", {})
    gans = {k: v for k, v in toy.items() if "num_modes" in v}
    if gans:
        r0 = next(iter(gans.values()))
        lines += [
            f"### 2D GANs, `{profile}` profile ({_machine(data, 'toy2d')})",
            "",
            f"Mean over {r0['seeds']} training seeds x {r0['draws']} draws of 2500 samples; the worst draw in "
            "brackets; then each training seed's mean (modes / high-quality share).",
            "",
            "| data, model | modes covered | high-quality samples | per training seed | training |",
            "| --- | ---: | ---: | --- | ---: |",
        ]
        for name, r in gans.items():
            seeds = "; ".join(f"{p['modes']:.1f} / {p['high_quality']:.1%}" for p in r.get("per_seed", []))
            lines.append(
                f"| {cell(name)} | {r['modes']:.1f}/{r['num_modes']} ({r['modes_min']}) | "
                f"{r['high_quality']:.1%} ({r['high_quality_min']:.1%}) | {seeds or '-'} | "
                f"{duration(r.get('train_s'))} |"
            )
        lines.append("")
    flows = {k: v for k, v in toy.items() if "gain_nats" in v}
    if flows:
        lines += [
            f"### 2D flows, `{profile}` profile",
            "",
            "| data | test log-likelihood (nats per point) | best Gaussian | gain | training |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, r in flows.items():
            lines.append(
                f"| {cell(name)} | {r['test_ll_nats']:.3f} | {r['best_gaussian_ll_nats']:.3f} | "
                f"{r['gain_nats']:.2f} | {duration(r.get('train_s'))} |"
            )
        lines.append("")
    return lines


def notebook_files() -> dict[str, str]:
    """Notebook number -> file name in ``notebooks/``."""
    return {p.name[:2]: p.name for p in sorted((root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


def notebook_seconds(data: dict, number: str, section: str = "notebooks") -> float | None:
    """The recorded wall time of notebook ``number`` in ``section`` (``notebooks``: models cached;
    ``notebooks_cold``: an empty model cache), or None."""
    times = data.get(section, {})
    key = next((k for k in times if k.startswith(number + "_")), None)
    return None if key is None else times[key]["seconds"]


def notebook_time(data: dict, number: str, section: str = "notebooks") -> str:
    seconds = notebook_seconds(data, number, section)
    return "not measured" if seconds is None else f"~{duration(seconds)}"


# The columns of the README's notebook table: profile, results section, heading, how it is measured.
TIMINGS = (
    (
        "smoke",
        "notebooks_cold",
        "smoke",
        "with an empty model cache (`python -m benchmarks.notebooks --profile smoke --cold`)",
    ),
    (
        "lecture",
        "notebooks_cold",
        "lecture, first run",
        "with an empty model cache, training included (`python -m benchmarks.notebooks --profile lecture --cold`)",
    ),
    (
        "lecture",
        "notebooks",
        "lecture, models cached",
        "with the models cached (`python -m benchmarks.notebooks --profile lecture`)",
    ),
    ("full", "notebooks", "full (GPU)", "(`python -m benchmarks.notebooks --profile full`)"),
)


def notebooks_block(recorded: dict[str, dict], to_root: str = "") -> list[str]:
    """The README's table of notebooks, with each notebook's recorded run time per profile (links relative to
    the repository root, or to a page ``to_root`` below it)."""
    files = notebook_files()
    lines = [
        "| # | notebook | what you build | " + " | ".join(heading for _, _, heading, _ in TIMINGS) + " |",
        "| --- | --- | --- |" + " ---: |" * len(TIMINGS),
    ]
    for number, (title, what) in NOTEBOOKS.items():
        link = f"[{title}]({to_root}notebooks/{files[number]})" if number in files else title
        times = [notebook_time(recorded[profile], number, section) for profile, section, _, _ in TIMINGS]
        lines.append(f"| {number} | {link} | {what} | " + " | ".join(times) + " |")
    lines.append("")
    notes, machines = [], {}
    for profile, section, _, how in TIMINGS:
        if section in recorded[profile]:
            machines[(profile, section)] = _machine(recorded[profile], section)
            notes.append(f"{profile} {how}")
    if not machines:
        lines.append("No notebook has been timed yet.")
    elif len(set(machines.values())) == 1:  # all measured on one machine: name it once
        lines.append(f"Wall time of the whole notebook on {next(iter(machines.values()))}: " + "; ".join(notes) + ".")
    else:
        lines.append(
            "Wall time of the whole notebook: "
            + "; ".join(f"{n} on {m}" for n, m in zip(notes, machines.values()))
            + "."
        )
    return lines


def targets_table(recorded: dict[str, dict]) -> list[str]:
    lines = [
        "| target | criterion | profile | threshold | measured | met? | what was tried |",
        "| --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    for target in TARGETS:
        tried = ", ".join(f"[{name}](#{name})" for name in target.tried) or "-"
        for i, c in enumerate(target.criteria):
            value, met = measure(c, recorded)
            mark = {True: "yes", False: "**no**", None: "not measured"}[met]
            first = i == 0
            lines.append(
                f"| {cell(target.name) if first else ''} | {c.what} | {c.profile} | {threshold(c)} | "
                f"{show(value, c.kind)} | {mark} | {tried if first else ''} |"
            )
    return lines


def summary_line(recorded: dict[str, dict]) -> str:
    counts = {s: sum(status(t, recorded) == s for t in TARGETS) for s in ("met", "not met", "not measured")}
    return (
        f"{counts['met']} of {len(TARGETS)} targets met, {counts['not met']} not met, "
        f"{counts['not measured']} not measured yet."
    )


def readme_results_block(recorded: dict[str, dict]) -> list[str]:
    """The README's short results table: each target, its measured figures (threshold in brackets), met or not."""
    lines = ["| target | measured (target) | met? |", "| --- | --- | --- |"]
    for target in TARGETS:
        figures = []
        for c in target.criteria:
            value = measure(c, recorded)[0]
            name = c.short or c.what
            shown = f"{name} not measured" if value is None else f"{show(value, c.kind)} {name}"
            figures.append(f"{shown} ({threshold(c)})")
        figures = ", ".join(figures)
        lines.append(f"| {cell(target.short or target.name)} | {cell(figures)} | {status(target, recorded)} |")
    return lines + ["", summary_line(recorded)]


# ---------------------------------------------------------------------------------------------- the page


def render_page(recorded: dict[str, dict] | None = None) -> str:
    recorded = load_results() if recorded is None else recorded
    lines = [
        f"<!-- Generated by `{COMMAND}` from the recorded figures; do not edit by hand. -->",
        "# Results",
        "",
        f"*Generated by `{COMMAND}` from `benchmarks/results-<profile>.json` (the course's models),",
        "`benchmarks/experiments/results/*.json` (the experiments), `benchmarks/observations.json` (figures",
        "recorded once) and the targets in `benchmarks/targets.py`. Do not edit it: rerun a benchmark or an",
        "experiment, then this command. Every recorded figure, key by key, is in",
        "[benchmarks/results.md](../benchmarks/results.md).*",
        "",
        "## Targets",
        "",
        summary_line(recorded),
        "",
        *targets_table(recorded),
        "",
        "## Gaps and open questions",
        "",
    ]
    for target in TARGETS:
        state = status(target, recorded)
        if state == "met":
            continue
        tried = ", ".join(f"[{name}](#{name})" for name in target.tried)
        lines.append(
            f"- **{target.name}** ({state}). {target.gap or 'Nothing tried yet.'}"
            + (f" Tried: {tried}." if tried else "")
        )
    lines += [f"- {question}" for question in OPEN_QUESTIONS]
    lines += ["", "## The course's models", ""]
    for profile in ("lecture", "full"):
        if recorded[profile].get("models") or recorded[profile].get("toy2d"):
            lines += models_tables(profile, recorded[profile])
        else:
            lines += [f"The `{profile}` profile has not been measured yet.", ""]
    lines += cost_section(_json(cost_path())) + gpu_check_section(_json(gpu_check_path()))
    lines += ["## Notebook run times", "", *notebooks_block(recorded, "../"), "", "## Experiments", ""]
    lines += [
        "Settings that were tried and compared (not the course's models). Each experiment's run records what",
        'it measured with its command; "transcribed" rows were measured before the experiments recorded their',
        "results and were copied from the script's documentation: rerun the command to regenerate them.",
        "",
    ]
    for name in experiment_names():
        lines += experiment_section(name)
    lines += ["## Recorded observations", ""]
    observations = json.loads(observations_path().read_text()) if observations_path().exists() else {}
    if observations.get("note"):
        lines += [observations["note"], ""]
    items = observations.get("observations", [])
    if items:
        lines += ["| topic | observation | source | command |", "| --- | --- | --- | --- |"]
        for o in items:
            command = f"`{o['command']}`" if o.get("command") else "-"
            lines.append(f"| {cell(o['topic'])} | {cell(o['text'])} | {cell(o['source'])} | {cell(command)} |")
    else:
        lines.append("None.")
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------- cost and GPU


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _flops(n) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for unit, size in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.3g}"


def _minutes(value) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.2f}" if value < 1 else f"{value:.1f}"


def cost_section(cost: dict | None) -> list[str]:
    """The training cost of every course model per profile (``benchmarks/cost.json``, ``python -m
    benchmarks.cost``): parameters, FLOPs, and the estimated minutes on the reference GPU and on the CPU."""
    lines = ["## Training cost", ""]
    if not cost:
        return lines + ["Not computed yet: `python -m benchmarks.cost`.", ""]
    a = cost["assumptions"]
    budget = a["full_budget_minutes"]
    calibrated = cost.get("calibrated")
    m = cost["machine"]
    lines += [
        f"*From `benchmarks/cost.json` (`python -m benchmarks.cost`, {cost['date'][:10]}).* FLOPs per step are counted",
        "on the models' real training steps (matrix products and convolutions, forward and backward). The GPU",
        f"minutes are an estimate for a {a['reference_gpu']}, assuming {a['sustained_tflops']:g} TFLOP/s sustained",
        f"plus {a['overhead_us_per_operator']:g} µs per operator launched; `python -m benchmarks.gpu_check` measures",
        "the real figure on a GPU. "
        + (
            f"The CPU minutes were timed on {m['cpu']} ({m['cores']} cores, torch {m['torch']})."
            if calibrated
            else "The CPU minutes need `python -m benchmarks.cost --calibrate` on an idle machine (not run yet)."
        ),
        "",
        f"| notebook | lecture: GPU min | full: GPU min | full fits {budget:g} min | lecture: CPU min |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for notebook, totals in cost["notebooks"].items():
        lecture, full = totals.get("lecture", {}), totals.get("full", {})
        fits = "-" if "gpu_minutes" not in full else "yes" if full["gpu_minutes"] <= budget else "**no**"
        lines.append(
            f"| {notebook} | {_minutes(lecture.get('gpu_minutes'))} | {_minutes(full.get('gpu_minutes'))} | {fits} | "
            f"{_minutes(lecture.get('cpu_minutes'))} |"
        )
    lines += [
        "",
        "| model | notebook | profile | parameters | batch | steps | FLOPs per step | training FLOPs | GPU min | "
        "CPU min |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in cost["models"].items():
        for profile in ("lecture", "full"):
            c = row["profiles"].get(profile)
            if c is None:
                continue
            times = f" (x{c['trainings']})" if c["trainings"] > 1 else ""
            lines.append(
                f"| {cell(name)}{times} | {row['notebook']} | {profile} | {_flops(c['parameters'])} | "
                f"{c['batch_size']} | {c['steps']} | {_flops(c['flops_per_step'])} | {_flops(c['train_flops'])} | "
                f"{'CPU' if c['gpu_minutes'] is None else _minutes(c['gpu_minutes'])} | {_minutes(c['cpu_minutes'])} |"
            )
    return lines + [
        "",
        "(xN): the notebook trains N models of that cost; the notebook totals count them all. CPU: the recipe trains",
        "that model on the CPU whatever the device (a 2D flow), so it has no GPU estimate and no share in the totals.",
        "",
    ]


def gpu_check_section(check: dict | None) -> list[str]:
    """What ``python -m benchmarks.gpu_check`` measured on a GPU (``benchmarks/gpu_check.json``)."""
    lines = ["## GPU check", ""]
    if not check:
        return lines + [
            "Not run on a GPU yet: `python -m benchmarks.gpu_check` on the first CUDA machine (under 10 minutes)",
            "measures steps per second of each notebook's main model in the lecture and full profiles, checks that",
            "a short run repeats exactly, and runs the smoke notebooks.",
            "",
        ]
    batch = f", every batch {check['batch_override']}" if check.get("batch_override") else ""
    lines += [
        f"*From `benchmarks/gpu_check.json` (`python -m benchmarks.gpu_check`): {check['device']}, torch "
        f"{check['torch']}, {check['date'][:10]}, {check['steps_timed']} timed steps{batch}.*",
        "",
        "| model | notebook | profile | batch | steps/s | full training (min) | peak memory (MB) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in check["models"].items():
        for profile in ("lecture", "full"):
            c = row.get(profile)
            if c:
                memory = c.get("peak_memory_mb")
                lines.append(
                    f"| {cell(name)} | {row['notebook']} | {profile} | {c['batch_size']} | {c['steps_per_second']:.1f} "
                    f"| {_minutes(c.get('estimated_train_minutes'))} | {'-' if memory is None else f'{memory:.0f}'} |"
                )
    for name, d in check.get("determinism", {}).items():
        same = "the same weights" if d["equal"] else f"**different weights** (max difference {d['max_abs_diff']:.2g})"
        lines += ["", f"Determinism: {name} trained twice for {d['steps']} steps with the same seed gave {same}."]
    notebooks = check.get("notebooks", {})
    if notebooks.get("ran"):
        failed = ", ".join(notebooks.get("failed_notebooks", []))
        state = "passed" if notebooks.get("passed") else f"**failed**: {failed}"
        lines += ["", f"Smoke notebooks under nbval: {state} ({notebooks.get('summary', notebooks.get('note', ''))})."]
    else:
        lines += ["", f"Smoke notebooks: {notebooks.get('note', 'not run')}."]
    return lines + [""]


# ---------------------------------------------------------------------------------------------- the README


def marker(name: str, end: bool = False) -> str:
    return f"<!-- {name}:{'end' if end else 'start'} -->"


def readme_blocks(recorded: dict[str, dict] | None = None) -> dict[str, list[str]]:
    recorded = load_results() if recorded is None else recorded
    return {"notebooks": notebooks_block(recorded), "results": readme_results_block(recorded)}


def render_readme(text: str, recorded: dict[str, dict] | None = None) -> str:
    """``text`` (the README) with each generated block between its markers replaced by what the figures give;
    a block whose markers are missing is left out."""
    for name, block in readme_blocks(recorded).items():
        start, end = marker(name), marker(name, end=True)
        if start not in text or end not in text:
            continue
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        text = head + "\n".join([start, "", *block, "", end]) + tail
    return text


def readme_block_text(text: str, name: str) -> str | None:
    """The README's current block ``name``, markers included (None when it has none)."""
    match = re.search(re.escape(marker(name)) + ".*?" + re.escape(marker(name, end=True)), text, re.S)
    return match.group(0) if match else None


# ---------------------------------------------------------------------------------------------- main


# Each notebook's title cell states its run time between these markers (HTML comments: invisible when rendered).
RUN_TIME_START, RUN_TIME_END = "<!-- run-time:start -->", "<!-- run-time:end -->"


def notebook_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def trains_course_models(path: Path) -> bool:
    """Whether a notebook loads the course's cached models (``gencourse.recipes``) rather than training
    everything inline."""
    return any("recipes." in "".join(c["source"]) for c in notebook_cells(path) if c["cell_type"] == "code")


def run_time_text(recorded: dict[str, dict], number: str, cached_models: bool) -> str:
    """The run-time sentence of notebook ``number``'s title cell, from the recorded timings."""

    def about(seconds) -> str:
        return f"about {duration(seconds)}"

    smoke = notebook_seconds(recorded["smoke"], number, "notebooks_cold")
    cached = notebook_seconds(recorded["lecture"], number, "notebooks")
    cold = notebook_seconds(recorded["lecture"], number, "notebooks_cold")
    full = notebook_seconds(recorded["full"], number, "notebooks")
    cpu = []
    if smoke is not None:
        cpu.append(f"smoke {about(smoke)}")
    if cached is not None:
        cpu.append(f"lecture {about(cached)}" + (" with the course's models cached" if cached_models else ""))
    if cached_models and cold is not None:
        cpu.append(f"{about(cold)} on a first run, which also trains them")
    text = "**Run time** of the whole notebook"
    text += f" on a 2-core CPU: {', '.join(cpu)}" if cpu else ": not timed yet"
    if cached_models and cold is None:
        text += "; a first run also trains the course's models (minutes each)"
    text += "; the full profile trains longer and is meant for a GPU" + (
        f" ({about(full)})." if full is not None else "."
    )
    if cached_models:
        text += " Train the models ahead of a lecture with `python -m gencourse.pretrain --profile lecture`."
    return text


def render_title_cell(source: str, text: str, name: str) -> str:
    """``source`` (a title cell) with its generated run-time block replaced by ``text``."""
    if source.count(RUN_TIME_START) != 1 or source.count(RUN_TIME_END) != 1:
        raise ValueError(f"the title cell of {name} needs one {RUN_TIME_START} ... {RUN_TIME_END} block")
    head, rest = source.split(RUN_TIME_START)
    tail = rest.split(RUN_TIME_END)[1]
    return f"{head}{RUN_TIME_START}\n{text}\n{RUN_TIME_END}{tail}"


def render_notebook_titles(recorded: dict[str, dict], check: bool = False) -> list[Path]:
    """Rewrite the run-time block of every notebook's title cell; return the notebooks that were out of date
    (written unless ``check``)."""
    stale = []
    for number, name in notebook_files().items():
        path = root() / "notebooks" / name
        nb = json.loads(path.read_text())
        title = nb["cells"][0]
        old = "".join(title["source"])
        new = render_title_cell(old, run_time_text(recorded, number, trains_course_models(path)), name)
        if new != old:
            stale.append(path)
            if not check:
                title["source"] = new.splitlines(keepends=True)
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return stale


def write(check: bool = False) -> list[Path]:
    """Render the page and the README's blocks; return the files that were out of date (written unless
    ``check``). Paths that do not exist (no ``docs/`` folder, no README) are skipped."""
    recorded = load_results()
    stale = []
    page = page_path()
    if page.parent.is_dir():
        text = render_page(recorded)
        if not page.exists() or page.read_text() != text:
            stale.append(page)
            if not check:
                page.write_text(text)
    if (root() / "notebooks").is_dir():
        stale += render_notebook_titles(recorded, check)
    readme = readme_path()
    if readme.exists():
        old = readme.read_text()
        new = render_readme(old, recorded)
        if new != old:
            stale.append(readme)
            if not check:
                readme.write_text(new)
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = write(check=args.check)
    for path in stale:
        print(f"{'out of date' if args.check else 'written'}: {path.relative_to(root())}")
    if args.check and stale:
        print(f"run `{COMMAND}` to regenerate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
