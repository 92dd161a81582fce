"""Time every move of every slider in the notebooks, live, and record the times in the benchmark results.

    python -m benchmarks.sliders --profile lecture            # every notebook with a slider (models cached)
    python -m benchmarks.sliders --profile lecture --only 07

A slider is a ``gencourse.plot.explore`` call. Each notebook runs in a fresh kernel as a student runs it, with
the sliders live (ipywidgets, as in JupyterLab; needs the ``widgets`` extra) and one cell added after the setup
cell that replaces ``plot.explore`` by a version that builds the real widget and then moves every slider through
each of its values and back to the first, timing each move: its update draws the figure and renders the PNG
the browser would receive. Records, per slider, the moves, the median and the slowest move in milliseconds
(section ``sliders`` of ``results-<profile>.json``). Run it on an otherwise idle machine with the profile's models
cached (``python -m gencourse.pretrain``): a move should take well under a second.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from benchmarks import results

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MARK = "SLIDER "

TIMING_CELL = f"""\
import json as _json
import statistics as _statistics
import time as _time

from gencourse import plot as _plot


def _timed_explore(draw, values, **kwargs):  # benchmarks.sliders: every move of the slider, timed
    options = {{k: v for k, v in kwargs.items() if k in ("label", "fmt", "figsize", "title")}}
    box = _plot.explore_widget(draw, values, **options)
    seconds = []
    for slider in box.children[:-1]:
        for index in [*range(1, len(slider.options)), 0]:
            start = _time.perf_counter()
            slider.value = index  # runs the slider's update: draw, then the PNG the browser would get
            seconds.append(_time.perf_counter() - start)
    label = kwargs.get("label") if not isinstance(values, dict) else ", ".join(values)
    print("{MARK}" + _json.dumps(dict(
        label=label or "value",
        moves=len(seconds),
        median_ms=round(1000 * _statistics.median(seconds)),
        slowest_ms=round(1000 * max(seconds)),
    )))


_plot.explore = _timed_explore"""


def has_sliders(nb) -> bool:
    return any(c.cell_type == "code" and "plot.explore(" in c.source for c in nb.cells)


def time_notebook(path: Path, profile: str) -> dict:
    """``{"<stem> cell <i>": {label, moves, median_ms, slowest_ms}}`` for every slider of the notebook."""
    nb = nbformat.read(path, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first + 1, nbformat.v4.new_code_cell(TIMING_CELL))
    env = {k: v for k, v in os.environ.items() if k not in ("GENCOURSE_WIDGETS", "PYTEST_CURRENT_TEST")}
    env.update(GENCOURSE_PROFILE=profile, GENCOURSE_PROGRESS="0")
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute(
        env=env
    )
    rows = {}
    for i, cell in enumerate(nb.cells[first + 2 :], start=first + 1):  # numbered as in the notebook itself
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        for line in text.splitlines():
            if line.startswith(MARK):
                rows[f"{path.stem} cell {i}"] = json.loads(line[len(MARK) :])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["smoke", "lecture", "full"], required=True)
    parser.add_argument("--only", nargs="*", default=None, help="notebook number prefixes, e.g. 06 07")
    args = parser.parse_args(argv)
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        raise SystemExit("timing the live sliders needs ipywidgets: pip install -e '.[widgets]'") from None
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in args.only)]
    for path in paths:
        if not has_sliders(nbformat.read(path, as_version=4)):
            continue
        rows = time_notebook(path, args.profile)
        for name, row in rows.items():
            print(
                f"{name}: {row['label']}: {row['moves']} moves, median {row['median_ms']} ms, "
                f"slowest {row['slowest_ms']} ms",
                flush=True,
            )
        results.save(args.profile, "sliders", rows)
    print(f"written to {results.path(args.profile)}")


if __name__ == "__main__":
    main()
