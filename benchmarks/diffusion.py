"""Measure the course's diffusion models (notebook 07) and record the figures in the benchmark results.

    python -m benchmarks.diffusion --profile lecture                 # the models as cached (trained if missing)
    python -m benchmarks.diffusion --profile lecture --retrain       # also measures the training time
    python -m benchmarks.diffusion --profile lecture --n-ddpm 200    # quicker: fewer DDPM samples
    python -m benchmarks.diffusion --profile lecture --sections judged --steps 50   # one part, another sampler

Uses the very models the notebook uses (the recipes of ``gencourse.recipes.diffusion``),
trained on first use or loaded from the model cache. Reports, with the judge's scores (FID in the judge's
feature space, Inception Score, precision, recall, confident fraction, digits present):

- ``ddpm_mnist`` (class-conditional, trained with 20% of the labels dropped): ``--n-samples`` (10000)
  samples of ``--steps``-step (40) stochastic DDIM (eta = 1) with autoguidance ``--autoguidance`` (2; guided
  away from the model's own weights early in its training, 1 = off), twice: with labels drawn from p(y)
  (uniform; x ~ p(x | y) is then a sample of p(x), as the notebook draws them) and with no label (the
  unconditional branch that classifier-free guidance uses); their cost, and ``train_plus_sample_1000_s``:
  the training time plus the time to draw 1000 of them; then, without autoguidance, the full DDPM ancestral
  sampler (T steps) against 50-step DDIM with eta = 0 and eta = 1, on ``--n-ddpm`` (1000) samples each with
  labels from p(y) (FID depends on the number of samples): the speed-up and the ratio of the FIDs, and
  50-step DDIM at a few autoguidance weights on the same samples;
- ``ddpm_mnist`` with labels: classifier-free guidance at several scales on ``--n-ddpm`` samples: how often the judge
  sees the requested digit, and the within-class diversity (mean distance between judge features of
  samples of one class);
- ``latent_diffusion_mnist``: 50-step DDIM samples of the latent diffusion model and their cost.
"""

from __future__ import annotations

import argparse
import time

from benchmarks import results

SCORES = ("fid", "inception_score", "precision", "recall", "confident", "classes_present")
AUTOGUIDANCE, STEPS = 2.0, 40  # the notebook's sampler for the unconditional DDPM: its weight and DDIM steps
SECTIONS = ("judged", "ddim", "guided", "latent")


def timed_samples(model, n: int, batch: int, seed: int, symmetric: bool = True, **kwargs):
    """``n`` samples drawn ``batch`` at a time, mapped from [-1, 1] (``symmetric``) to [0, 1] for the judge,
    and the seconds it took."""
    import torch

    from gencourse import data

    generator = torch.Generator().manual_seed(seed)
    y = kwargs.pop("y", None)  # labels of all n samples: each batch takes its own
    if y is not None and len(y) != n:
        raise ValueError(f"y must hold one label per sample: {len(y)} labels for {n} samples")
    start = time.perf_counter()
    parts = [
        model.sample(min(batch, n - i), generator=generator, **kwargs, **({} if y is None else {"y": y[i : i + batch]}))
        for i in range(0, n, batch)
    ]
    seconds = time.perf_counter() - start
    x = torch.cat(parts)
    return (data.from_symmetric(x) if symmetric else x.clamp(0, 1)), seconds


def row(scores: dict, seconds: float, n: int, **extra) -> dict:
    return {
        "n_samples": n,
        "sample_s_per_1000": round(1000 * seconds / n, 2),
        **{k: scores[k] for k in SCORES},
        **extra,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-samples", type=int, default=None, help="DDIM samples to judge (default 10000)")
    parser.add_argument("--n-ddpm", type=int, default=None, help="samples for DDPM vs DDIM (default 1000)")
    parser.add_argument("--batch", type=int, default=500, help="samples drawn at once")
    parser.add_argument(
        "--autoguidance", type=float, default=AUTOGUIDANCE, help=f"for the judged samples (default {AUTOGUIDANCE})"
    )
    parser.add_argument("--steps", type=int, default=STEPS, help=f"DDIM steps of the judged samples (default {STEPS})")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="what to measure (default all): the judged samples, DDPM vs DDIM and the autoguidance weights, "
        "classifier-free guidance, latent diffusion",
    )
    args = results.parse_args(parser, argv)

    from gencourse import metrics, profile, recipes

    p = profile()
    n = args.n_samples or p.pick(smoke=64, lecture=10000, full=10000)
    n_ddpm = args.n_ddpm or p.pick(smoke=64, lecture=1000, full=10000)
    model, history = recipes.diffusion.mnist_ddpm()
    cached = "loaded_from" in history.meta
    train_s = history.meta["train_seconds"]
    print(
        f"ddpm_mnist: {history.meta['steps']} steps, {train_s:.0f} s of training"
        f"{' (when it was trained; loaded from the cache now)' if cached else ''}",
        flush=True,
    )
    common = {"train_s": round(train_s, 1), "train_steps": history.meta["steps"], "cached": cached}
    if "judged" in args.sections:  # stochastic DDIM (eta = 1) with autoguidance, the notebook's sampler
        a, k = args.autoguidance, args.steps
        for how, y in (("y ~ p(y)", prior_labels(model, n, seed=0)), ("no label", None)):
            x, seconds = timed_samples(model, n, args.batch, seed=0, steps=k, eta=1.0, autoguidance=a, y=y)
            scores = metrics.evaluate_samples(x)
            print(
                f"{how}, DDIM {k} steps, eta 1, autoguidance {a:g}: {n} samples in {seconds:.0f} s; "
                + ", ".join(f"{key} {scores[key]:.3f}" for key in SCORES),
                flush=True,
            )
            judged = row(scores, seconds, n, **common, train_plus_sample_1000_s=round(train_s + seconds * 1000 / n, 1))
            label = f"ddpm_mnist ({how}, DDIM {k} steps, eta=1, autoguidance={a:g})"
            results.save(args.profile, "models", {label: judged})
    if "ddim" in args.sections:  # each section is saved as it ends, kept even if a later one fails
        results.save(args.profile, "models", ddim_rows(model, n_ddpm, args.batch, common))
    if "guided" in args.sections:
        results.save(args.profile, "models", guided_rows(model, history, n_ddpm, args.batch))
    if "latent" in args.sections:
        latent, latent_history = recipes.diffusion.mnist_latent_diffusion()
        x, seconds = timed_samples(latent, n, args.batch, seed=2, symmetric=False, steps=50, eta=1.0)
        scores = metrics.evaluate_samples(x)
        print(f"latent diffusion (DDIM 50): {n} samples in {seconds:.1f} s; FID {scores['fid']:.2f}")
        latent_row = row(scores, seconds, n, train_s=round(latent_history.meta["train_seconds"], 1))
        results.save(args.profile, "models", {"latent_diffusion_mnist (DDIM 50)": latent_row})
    print(f"written to {results.path(args.profile)}")


def prior_labels(model, n: int, seed: int):
    """Labels drawn from p(y), uniform over the classes (as MNIST's nearly are), for a class-conditional
    ``model``: its samples x ~ p(x | y) are then samples of p(x) = sum_y p(y) p(x | y). None for an
    unconditional model."""
    import torch

    if not model.num_classes:
        return None
    return torch.randint(model.num_classes, (n,), generator=torch.Generator().manual_seed(seed))


def ddim_rows(model, n_ddpm: int, batch: int, common: dict) -> dict:
    """The full DDPM sampler against 50-step DDIM (eta 0 and 1), then 50-step DDIM at a few autoguidance
    weights, all on ``n_ddpm`` samples drawn from the same seed (with labels from p(y) for a conditional
    model, as the notebook draws its samples)."""
    from gencourse import metrics

    T, rows, y = model.schedule.T, {}, prior_labels(model, n_ddpm, seed=1)
    x_ddpm, ddpm_s = timed_samples(model, n_ddpm, batch, seed=1, y=y)
    ddpm = metrics.evaluate_samples(x_ddpm)
    print(f"DDPM {T} steps: {n_ddpm} samples in {ddpm_s:.0f} s; " + ", ".join(f"{k} {ddpm[k]:.3f}" for k in SCORES))
    rows[f"ddpm_mnist (DDPM {T} steps)"] = row(ddpm, ddpm_s, n_ddpm, **common)
    for eta in (0.0, 1.0):
        x_ddim, ddim_s = timed_samples(model, n_ddpm, batch, seed=1, steps=50, eta=eta, y=y)
        ddim = metrics.evaluate_samples(x_ddim)
        speedup, fid_ratio = ddpm_s / ddim_s, ddim["fid"] / ddpm["fid"]
        print(
            f"DDIM 50 steps, eta {eta:g}: {n_ddpm} samples in {ddim_s:.0f} s, {speedup:.1f}x faster than DDPM; "
            f"FID {ddim['fid']:.2f} = {fid_ratio:.3f} x DDPM's",
            flush=True,
        )
        rows[f"ddpm_mnist (DDIM 50 steps, eta={eta:g}, vs DDPM)"] = row(
            ddim, ddim_s, n_ddpm, **common, speedup_vs_ddpm=round(speedup, 1), fid_ratio_vs_ddpm=round(fid_ratio, 3)
        )
    if model.weak is not None:  # autoguidance weights, on the same samples as the eta = 1 row above (a = 1)
        for w in (1.5, 2.0, 3.0):
            x_auto, auto_s = timed_samples(model, n_ddpm, batch, seed=1, steps=50, eta=1.0, autoguidance=w, y=y)
            auto = metrics.evaluate_samples(x_auto)
            print(f"DDIM 50 steps, eta 1, autoguidance {w:g}: FID {auto['fid']:.2f}, confident {auto['confident']:.3f}")
            rows[f"ddpm_mnist (DDIM 50 steps, eta=1, autoguidance={w:g}, {n_ddpm} samples)"] = row(
                auto, auto_s, n_ddpm, **common
            )
    return rows


def guided_rows(guided, guided_history, n_ddpm: int, batch: int) -> dict:
    """The class-conditional DDPM ``guided`` (with its training ``guided_history``) at several classifier-free
    guidance scales: how often the judge sees the requested digit, and the diversity within each class."""
    import torch

    from gencourse import metrics

    judge, rows = metrics.judge(), {}
    per_class = max(1, n_ddpm // 10)
    wanted = torch.arange(10).repeat_interleave(per_class)
    for w in (0.0, 1.0, 2.0, 4.0):
        x, seconds = timed_samples(guided, len(wanted), batch, seed=1, steps=50, eta=1.0, y=wanted, guidance=w)
        features = judge.features(x)
        diversity = torch.stack([torch.pdist(features[wanted == c]).mean() for c in range(10)]).mean().item()
        accuracy = (judge.predict(x) == wanted).float().mean().item()
        scores = metrics.evaluate_samples(x)
        print(f"guidance w = {w}: requested digit {accuracy:.3f}, diversity {diversity:.2f}, FID {scores['fid']:.2f}")
        rows[f"ddpm_mnist (classifier-free guidance w={w:g}, DDIM 50)"] = row(
            scores,
            seconds,
            len(wanted),
            requested_digit_accuracy=round(accuracy, 4),
            diversity=round(diversity, 3),
            train_s=round(guided_history.meta["train_seconds"], 1),
        )
    return rows


if __name__ == "__main__":
    main()
