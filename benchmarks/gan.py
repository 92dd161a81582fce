"""Measure the course's GANs (notebooks 02 and 03) and record the figures in the benchmark results.

    python -m benchmarks.gan --profile lecture              # the models as cached (trained if missing)
    python -m benchmarks.gan --profile lecture --retrain    # train afresh: measures the training time
    python -m benchmarks.gan --profile lecture --only toy2d # just the 2D mixtures (or: mnist)

Uses the very models the notebooks use (``gencourse.recipes.gan.toy_gan`` and the ``@course_model`` functions
``dcgan_mnist``, ``conditional_gan_mnist``, ``sngan_mnist``, ``infogan_mnist``). Reports:

- 2D mixtures (notebook 02, section 5): for ring8 and grid25, the plain GAN, PacGAN4 and the plain GAN
  with batches of 1024 (``recipes.gan.TOY_VARIANTS``), same networks and steps: modes covered and share of
  high-quality samples
  (``gencourse.metrics.mode_metrics``: 2500 samples, within 3 std of a mode centre, a mode covered when
  at least one high-quality sample is nearest to it), for ``--seeds`` training seeds (seed 0 is the
  notebooks' model) and ``--draws`` draws of 2500 samples each; and the training time.
- MNIST (notebook 03): the judge's scores of ``--n-samples`` samples (FID in the judge's feature space,
  Inception Score, precision, recall, confident share, digits present), the conditional GAN's accuracy
  at drawing the requested digit, for the InfoGAN how its unsupervised codes line up with digits (per
  code, the share of confident samples that are its most frequent digit, and how many different digits
  the ten codes pick), the training time without the judge's evaluations during training, and the
  sampling time.

Targets: ring8 with the remedy 8/8 modes and >= 90% high quality; grid25 >= 24/25 and >= 90% (checked for
each 2D model on every training seed, ``--seeds``, the mean of its draws: seeds matter far more than draws); the
unconditional GAN (no labels: the DCGAN, or the InfoGAN, whose codes are learnt) in the lecture profile
trained in <= 5 minutes with >= 80% confident samples and all 10 digits.
"""

from __future__ import annotations

import argparse
import time

from benchmarks import results


def toy2d(draws: int, seeds: int) -> dict:
    import torch

    from gencourse import data, metrics, recipes, seed_everything

    rows = {}
    for dataset in recipes.gan.TOY_DATASETS:
        for variant in recipes.gan.TOY_VARIANTS:
            per_seed, train_s = [], []
            for training_seed in range(seeds):
                model, history = recipes.gan.toy_gan(dataset, variant, seed=training_seed)
                scores = []
                for seed in range(draws):
                    seed_everything(seed)
                    scores.append(metrics.mode_metrics(model.sample(2500), data.toy2d_modes(dataset)))
                per_seed.append(
                    {
                        "seed": training_seed,
                        "modes": sum(s["modes"] for s in scores) / draws,
                        "modes_min": min(s["modes"] for s in scores),
                        "high_quality": sum(s["high_quality"] for s in scores) / draws,
                        "high_quality_min": min(s["high_quality"] for s in scores),
                        "kl_uniform": sum(s["kl_uniform"] for s in scores) / draws,
                    }
                )
                train_s.append(history.meta["train_seconds"] - history.meta.get("eval_seconds", 0.0))
            modes = torch.tensor([r["modes"] for r in per_seed])
            quality = torch.tensor([r["high_quality"] for r in per_seed])
            label = f"{dataset} {recipes.gan.TOY_VARIANTS[variant].label}"
            rows[label] = {
                "train_s": round(sum(train_s) / len(train_s), 1),
                "steps": history.meta["steps"],
                "seeds": seeds,
                "draws": draws,
                "modes": modes.mean().item(),
                "modes_min": min(r["modes_min"] for r in per_seed),
                "num_modes": scores[0]["num_modes"],
                "high_quality": quality.mean().item(),
                "high_quality_min": min(r["high_quality_min"] for r in per_seed),
                "kl_uniform": sum(r["kl_uniform"] for r in per_seed) / seeds,
                "per_seed": per_seed,
            }
            r = rows[label]
            print(
                f"{label:22} modes {r['modes']:.2f}/{r['num_modes']} (min {r['modes_min']}), high quality "
                f"{r['high_quality']:.1%} (min {r['high_quality_min']:.1%}) over {seeds} training seeds x {draws} "
                f"draws; per seed: "
                + ", ".join(f"{p['modes']:.1f} / {p['high_quality']:.1%}" for p in per_seed)
                + f"; {r['train_s']:.0f} s of training each",
                flush=True,
            )
    return rows


def mnist(n_samples: int) -> dict:
    import torch

    from gencourse import data, metrics, recipes, seed_everything

    rows = {}
    for fn in (
        recipes.gan.dcgan_mnist,
        recipes.gan.conditional_gan_mnist,
        recipes.gan.sngan_mnist,
        recipes.gan.infogan_mnist,
    ):
        model, history = fn()
        seed_everything(0)
        start = time.perf_counter()
        samples = data.from_symmetric(model.sample(n_samples))
        sample_s = time.perf_counter() - start
        scores = metrics.evaluate_samples(samples)
        row = {
            "train_s": round(history.meta["train_seconds"] - history.meta.get("eval_seconds", 0.0), 1),
            "steps": history.meta["steps"],
            "sample_s_per_1000": sample_s * 1000 / n_samples,
            "n_samples": n_samples,
            **{k: scores[k] for k in ("fid", "inception_score", "precision", "recall", "confident")},
            "classes_present": scores["classes_present"],
            "cached": "loaded_from" in history.meta,
        }
        if model.num_classes:
            asked = torch.arange(n_samples) % 10
            seed_everything(1)
            predicted = metrics.judge().predict(data.from_symmetric(model.sample(n_samples, labels=asked)))
            row["label_accuracy"] = (predicted == asked).float().mean().item()
        if model.codes:
            row.update(code_alignment(model, n_samples))
        rows[fn.course_model_name] = row
        print(
            f"{fn.course_model_name:22} FID {row['fid']:.2f}  IS {row['inception_score']:.2f}  precision "
            f"{row['precision']:.3f}  recall {row['recall']:.3f}  confident {row['confident']:.1%}  digits "
            f"{row['classes_present']}/10  train {row['train_s']:.0f} s ({row['steps']} steps)"
            + (f"  label accuracy {row['label_accuracy']:.1%}" if "label_accuracy" in row else "")
            + (
                f"  codes -> {row['code_digits']} different digits, purity {row['code_purity']:.1%}"
                if "code_purity" in row
                else ""
            ),
            flush=True,
        )
    return rows


def code_alignment(model, n_samples: int) -> dict:
    """How an InfoGAN's categorical codes line up with digits (``gencourse.gan.code_digits`` on
    ``n_samples / codes`` samples per code): ``code_purity`` is the mean over codes of the share of its
    confident samples that are its most frequent digit, ``code_digits`` the number of different digits."""
    from gencourse import gan, seed_everything

    seed_everything(2)
    purity, digit = gan.code_purity(gan.code_digits(model, n_samples // model.codes))
    majority = digit.tolist()
    return {"code_purity": purity.mean().item(), "code_digits": len(set(majority)), "code_majority": majority}


def targets(toy: dict, images: dict) -> list[str]:
    """One line per target: met or not, with the measured figure."""
    lines = []
    for label, r in toy.items():
        need = r["num_modes"] if r["num_modes"] == 8 else 24
        ok = [p["modes"] >= need and p["high_quality"] >= 0.9 for p in r["per_seed"]]
        worst = min(r["per_seed"], key=lambda p: (p["modes"], p["high_quality"]))
        lines.append(
            f"{label}: {sum(ok)}/{len(ok)} training seeds reach >= {need}/{r['num_modes']} modes and >= 90% high "
            f"quality (each the mean of {r['draws']} draws); worst seed {worst['modes']:.1f}/{r['num_modes']}, "
            f"{worst['high_quality']:.1%}: {'met' if all(ok) else 'NOT met'}"
        )
    if images:
        for name, label in (("gan_dcgan_mnist", "DCGAN"), ("gan_infogan_mnist", "InfoGAN")):
            d = images[name]
            met = d["train_s"] <= 300 and d["confident"] >= 0.8 and d["classes_present"] == 10
            lines.append(
                f"{label}: {d['train_s']:.0f} s of training (<= 300), {d['confident']:.1%} confident (>= 80%), "
                f"{d['classes_present']}/10 digits, judge FID {d['fid']:.2f}: {'met' if met else 'NOT met'}"
            )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["toy2d", "mnist"], default=None)
    parser.add_argument("--draws", type=int, default=5, help="draws of 2500 samples per 2D model (default 5)")
    parser.add_argument(
        "--seeds", type=int, default=3, help="training seeds per 2D model (default 3; seed 0 is the notebooks')"
    )
    parser.add_argument("--n-samples", type=int, default=None, help="MNIST samples for the judge (default 10000)")
    args = results.parse_args(parser, argv)

    from gencourse import profile

    n_samples = args.n_samples or profile().pick(smoke=500, lecture=10000, full=10000)
    toy, images = {}, {}
    if args.only in (None, "toy2d"):
        toy = toy2d(args.draws, args.seeds)
        results.save(args.profile, "toy2d", toy)
    if args.only in (None, "mnist"):
        images = mnist(n_samples)
        results.save(args.profile, "models", images)
    print("\n".join(["", "targets:", *targets(toy, images)]))
    print(f"written to {results.path(args.profile)} and {results.HERE / 'results.md'}")


if __name__ == "__main__":
    main()
