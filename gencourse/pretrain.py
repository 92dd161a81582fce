"""Train every model of the course ahead of class, so each training cell loads from the cache in seconds.

    python -m gencourse.pretrain --profile lecture              # all of them
    python -m gencourse.pretrain --profile lecture --only vae_mnist flow_mnist
    python -m gencourse.pretrain --profile lecture --only "vae_mnist_beta(beta=4.0)"
    python -m gencourse.pretrain --list                         # what is registered

The models are the recipes registered with :func:`gencourse.recipes.course_model`: the very functions
the notebooks call, so the cache entries (``data/cache`` or ``$GENCOURSE_CACHE``, keyed by name, profile
and settings) are the ones the notebooks look for. A model already cached is loaded, not retrained
(``--retrain`` forces it). Each training shows its own progress bar; a table of name, seconds and
loaded/trained ends the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from gencourse.config import PROFILES


def select(calls: dict[str, Callable], names: dict[str, list[str]], only: list[str] | None) -> dict[str, Callable]:
    """``calls`` (by label) restricted to ``only``, whose entries are model names (all their variants) or
    labels as ``--list`` prints them (one variant); all of them when ``only`` is empty."""
    if not only:
        return dict(calls)
    unknown = [item for item in only if item not in names and item not in calls]
    if unknown:
        raise KeyError(
            f"no course model named {', '.join(map(repr, unknown))}; "
            f"registered: {', '.join(names) or 'none'} (see --list for the labels of their variants)"
        )
    wanted = [label for item in only for label in names.get(item, [item])]
    return {label: calls[label] for label in dict.fromkeys(wanted)}


def pretrain(models: dict[str, Callable], retrain: bool = False, out=None) -> list[tuple[str, float, str]]:
    """Call each course model function; return ``(name, seconds, "loaded" | "trained" | "failed: ...")``.

    A failure is reported and the next model still runs, so one bad model does not cost the others."""
    out = out or sys.stdout
    results = []
    previous = os.environ.get("GENCOURSE_RETRAIN")
    if retrain:
        os.environ["GENCOURSE_RETRAIN"] = "1"  # what load_or_train reads inside each model function
    try:
        for number, (name, build) in enumerate(models.items(), start=1):
            print(f"[{number}/{len(models)}] {name}", file=out, flush=True)
            start = time.perf_counter()
            try:
                _, history = build()
            except Exception as exc:  # report it in the table and go on with the other models
                status = f"failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"
            else:
                status = "loaded" if "loaded_from" in history.meta else "trained"
            seconds = time.perf_counter() - start
            print(f"    {status} in {seconds:.1f} s", file=out, flush=True)
            results.append((name, seconds, status))
    finally:
        if retrain and previous is None:
            os.environ.pop("GENCOURSE_RETRAIN", None)
        elif retrain:
            os.environ["GENCOURSE_RETRAIN"] = previous
    return results


def table(results: list[tuple[str, float, str]]) -> str:
    """The final summary: one row per model, then the total."""
    width = max([len("model")] + [len(name) for name, _, _ in results])
    lines = [f"{'model':<{width}}  {'seconds':>8}  status", f"{'-' * width}  {'-' * 8}  {'-' * 7}"]
    lines += [f"{name:<{width}}  {seconds:>8.1f}  {status}" for name, seconds, status in results]
    lines.append(f"{'total':<{width}}  {sum(s for _, s, _ in results):>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gencourse.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", choices=PROFILES, help="the profile to train for (default: as gencourse.profile())"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="train only these models: names, or labels as --list prints them"
    )
    parser.add_argument("--list", action="store_true", help="list the registered course models and exit")
    parser.add_argument("--retrain", action="store_true", help="train again even when a cached model exists")
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["GENCOURSE_PROFILE"] = args.profile  # before the models read it through profile()

    from gencourse.config import cache_dir, describe
    from gencourse.recipes import COURSE_MODELS, call_label, course_model_calls

    calls = course_model_calls()
    if args.list:
        for label, call in calls.items():
            print(f"{label}  ({call.func.__module__}.{call.func.__name__})")
        return 0
    names = {
        name: [call_label(name, kwargs) for kwargs in getattr(fn, "variants", [{}])]
        for name, fn in COURSE_MODELS.items()
    }
    try:
        models = select(calls, names, args.only)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1
    if not models:
        print("error: no course models are registered: nothing to pretrain", file=sys.stderr)
        return 1
    print(f"{describe()} | cache: {cache_dir()}")
    results = pretrain(models, retrain=args.retrain)
    print()
    print(table(results))
    return 1 if any(status.startswith("failed") for _, _, status in results) else 0


if __name__ == "__main__":
    sys.exit(main())
