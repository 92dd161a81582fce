"""Time every notebook end to end in a profile and record the times in the benchmark results.

    python -m benchmarks.notebooks --profile smoke
    python -m benchmarks.notebooks --profile lecture [--cold] [--only 04 05] [--save build/executed]

Each notebook runs in a fresh kernel from the notebooks/ folder, exactly as a student would run it.
``--cold`` starts from an empty model cache (the first run of the course); by default the cache in
data/cache is used as it is, which is what a lecture with pretrained models sees. The two are recorded
apart (``notebooks_cold`` and ``notebooks`` in ``results-<profile>.json``); the README's table and each
notebook's title cell show them (``python -m benchmarks.report`` rewrites both).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from benchmarks import results

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(path: Path, timeout: int = 3600, save: Path | None = None) -> float:
    """Execute ``path`` in a fresh kernel (environment inherited) and return the wall time in seconds;
    with ``save``, also write the executed notebook (with its outputs) into that folder."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, save / path.name)
    return time.perf_counter() - start


def section(cold: bool) -> str:
    """Where a run's times go in the results: an empty cache (a first run) and a filled one are kept apart."""
    return "notebooks_cold" if cold else "notebooks"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["smoke", "lecture", "full"], required=True)
    parser.add_argument("--cold", action="store_true", help="start from an empty model cache")
    parser.add_argument("--only", nargs="*", default=None, help="notebook number prefixes, e.g. 01 04")
    parser.add_argument("--save", type=Path, default=None, help="also write the executed notebooks here")
    args = parser.parse_args(argv)
    os.environ["GENCOURSE_PROFILE"] = args.profile
    if args.cold:
        os.environ["GENCOURSE_CACHE"] = tempfile.mkdtemp(prefix="gencourse-cold-cache-")
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in args.only)]
    if not paths:
        raise SystemExit(f"no notebooks matched in {NOTEBOOKS}")
    times = {}
    for p in paths:
        print(f"running {p.name} in the {args.profile} profile ...", flush=True)
        seconds = run_notebook(p, save=args.save)
        times[p.stem] = {
            "seconds": round(seconds, 1),
            "cache": "cold" if args.cold else "as found",
            "threads": int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)),
        }
        print(f"  {seconds:.1f} s", flush=True)
        results.save(args.profile, section(args.cold), {p.stem: times[p.stem]})
    print(f"written to {results.path(args.profile)} and {results.HERE / 'results.md'}")


if __name__ == "__main__":
    main()
