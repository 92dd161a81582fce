"""Every model family of the course, measured in one run, and one table of the results.

    python -m benchmarks --profile lecture                # train (or load from the cache) and measure all
    python -m benchmarks --profile lecture --only gan vae # some families
    python -m benchmarks --profile lecture --figure-only  # just redraw the figure of samples
    python -m benchmarks.notebooks --profile lecture      # time every notebook end to end (separately)

Runs the family scripts in turn (``benchmarks.gan``, ``benchmarks.vae``, ``benchmarks.flows``,
``benchmarks.diffusion``; each can also be run alone, see its ``--help``). Each uses the very models the
notebooks build (the recipes of ``gencourse.recipes``), trained on first use or loaded from the model cache, and
merges its figures into ``benchmarks/results-<profile>.json`` (with the hardware, torch version and date)
and ``benchmarks/results.md``: training time, sampling time per 1000 samples, the judge's scores of 10,000
samples (FID in the judge's feature space, Inception Score, precision, recall, confident share, digits
present), the test log-likelihood where the model has one, and the 2D GANs' mode metrics. Then it draws
one grid of samples per family into ``benchmarks/samples-<profile>.png`` and re-renders the results page
``docs/results.md`` and the README's generated blocks (``python -m benchmarks.report``), also with
``--figure-only``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

from benchmarks import report, results

FAMILIES = ("gan", "vae", "flows", "diffusion")


def sample_figure(profile: str, n: int = 40):
    """One grid of ``n`` samples per image model (from the cache), side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # a script that only writes files: no window
    import matplotlib.pyplot as plt
    import torch

    from benchmarks.diffusion import AUTOGUIDANCE, STEPS
    from gencourse import data, plot, recipes, seed_everything

    def symmetric(x):
        return data.from_symmetric(x)

    families = [
        ("DCGAN", lambda: symmetric(recipes.gan.dcgan_mnist()[0].sample(n))),
        ("conditional GAN", lambda: symmetric(recipes.gan.conditional_gan_mnist()[0].sample(n))),
        ("VAE (mean of p(x|z))", lambda: recipes.vae.mnist_vae()[0].sample(n)),
        ("flow (temperature 0.7)", lambda: recipes.flows.mnist_flow()[0].sample(n, temperature=0.7).clamp(0, 1)),
        (
            f"DDPM ({STEPS}-step DDIM, autoguidance {AUTOGUIDANCE:g})",
            lambda: symmetric(
                recipes.diffusion.mnist_ddpm()[0].sample(n, steps=STEPS, eta=1.0, autoguidance=AUTOGUIDANCE)
            ),
        ),
        ("latent diffusion", lambda: recipes.diffusion.mnist_latent_diffusion()[0].sample(n, steps=50, eta=1.0)),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.4))
    for ax, (name, draw) in zip(axes.flat, families):
        seed_everything(0)
        with torch.no_grad():
            plot.image_grid(draw().cpu(), nrow=8, ax=ax, title=name)
    fig.suptitle(f"Samples of the course's models ({profile} profile; not cherry-picked: the first {n} drawn)")
    fig.tight_layout()
    out = results.HERE / f"samples-{profile}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=["smoke", "lecture", "full"], required=True)
    parser.add_argument("--only", nargs="+", choices=FAMILIES, default=None, help="these families only")
    parser.add_argument("--figure-only", action="store_true", help="only redraw the figure of samples")
    args = parser.parse_args(argv)
    os.environ["GENCOURSE_PROFILE"] = args.profile
    start = time.perf_counter()
    if not args.figure_only:
        for family in args.only or FAMILIES:
            print(f"\n=== {family} ({time.perf_counter() - start:.0f} s so far) ===", flush=True)
            importlib.import_module(f"benchmarks.{family}").main(["--profile", args.profile])
    print(f"\nsamples: {sample_figure(args.profile)}")
    for path in report.write():  # the results page and the README's generated blocks, from the JSON
        print(f"re-rendered {path}")
    print(f"all done in {time.perf_counter() - start:.0f} s; the table is in {results.HERE / 'results.md'}")


if __name__ == "__main__":
    main()
