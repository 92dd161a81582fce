"""Cheaper training for notebook 02's 2D GANs: do 3 x 256 hidden units and 6000 steps earn their cost on 2D
points?

    python -m benchmarks.experiments.toy_gan_width WIDTH [SEEDS] [--steps STEPS] [--variants gan pacgan largebatch]

Trains the 2D GANs of notebook 02 (ring8 and grid25; by default all three variants: GAN, PacGAN4 and the
batch-1024 GAN) exactly as ``gencourse.recipes.gan.toy_gan`` does in the active profile, except that both
networks have three hidden layers of WIDTH units (256 is the course's) and, with ``--steps``, another number
of training steps, for training seeds 0 .. SEEDS-1 (default 3), in a temporary model cache (the course's
cache is not touched). Scores them as ``python -m benchmarks.gan --only toy2d`` does (5 draws of 2500 samples
per training seed: modes covered and high-quality share, and the training time without evaluations) and
records one row per model in ``benchmarks/experiments/results/toy_gan_width.json``. The training times are
only comparable between runs made alone on the same machine with the same threads.
"""

import argparse
import dataclasses
import os
import tempfile

from benchmarks import gan as gan_benchmark
from benchmarks.experiments import record


def main() -> None:
    import torch

    from gencourse import recipes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("width", type=int)
    parser.add_argument("seeds", type=int, nargs="?", default=3)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--variants", nargs="+", choices=list(recipes.gan.TOY_VARIANTS), default=None)
    args = parser.parse_args()
    course_settings = recipes.gan.toy_gan_settings

    def cheaper(*a, **kw):
        settings = dataclasses.replace(course_settings(*a, **kw), hidden=(args.width,) * 3)
        return settings if args.steps is None else dataclasses.replace(settings, steps=args.steps)

    recipes.gan.toy_gan_settings = cheaper
    if args.variants:  # the benchmark measures every variant of TOY_VARIANTS: keep only those asked for
        recipes.gan.TOY_VARIANTS = {k: v for k, v in recipes.gan.TOY_VARIANTS.items() if k in args.variants}
    course_cache = os.environ.get("GENCOURSE_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["GENCOURSE_CACHE"] = cache
        rows = gan_benchmark.toy2d(draws=5, seeds=args.seeds)
    if course_cache is None:  # the recorded command names the course's cache, not the temporary one
        del os.environ["GENCOURSE_CACHE"]
    else:
        os.environ["GENCOURSE_CACHE"] = course_cache
    for label, row in rows.items():
        record(
            "toy_gan_width",
            {
                "label": f"{label}, width {args.width}, {row['steps']} steps",
                "width": args.width,
                "threads": torch.get_num_threads(),
                **{k: row[k] for k in ("train_s", "steps", "seeds", "modes", "modes_min", "high_quality")},
                "high_quality_min": row["high_quality_min"],
                "per_seed": [(p["modes"], round(p["high_quality"], 3)) for p in row["per_seed"]],
            },
        )


if __name__ == "__main__":
    main()
