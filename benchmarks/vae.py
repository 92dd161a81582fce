"""Measure the course's VAEs (notebooks 04 and 05) and record the figures in the benchmark results.

    python -m benchmarks.vae --profile lecture              # k = 500 on the whole test set
    python -m benchmarks.vae --profile full --k 5000
    python -m benchmarks.vae --profile lecture --n-test 2000 --k 500   # quicker

Uses the very models the notebooks use (the ``@course_model`` functions of ``gencourse.recipes.vae``), trained on
first use or loaded from the model cache (``--retrain`` trains afresh, which is what measures the training
time). Reports for the MNIST VAE of notebook 05:

- ``nll_nats``: test NLL = -mean IWAE_k over the first ``n_test`` binarized MNIST test digits (binarized
  once with seed 0), with its standard error; ``elbo_nats``: -mean ELBO on the same digits;
- the judge's scores of ``n_samples`` samples (FID in the judge's feature space, Inception Score,
  precision, recall, confident fraction, digits present) and the sampling time;
- ``train_s``: training time (from the cached model's history when it was loaded, see ``cached``);
- semi-supervised accuracy with 100 labels (latents vs pixels) and the gradient-variance ratio of
  REINFORCE vs the reparameterization trick (notebook 04's measurements), and the CVAE's accuracy at
  generating the requested digit.
"""

from __future__ import annotations

import argparse
import math
import time

from benchmarks import results


def gradient_variance(n: int = 20000, images: int = 10) -> dict:
    """Notebook 04 section 4: per-sample variance of grad_mu E_q[log p(x|z)] for the 2D VAE, summed over
    the latent dimensions and averaged over ``images`` test digits, for the three estimators."""
    import torch

    from gencourse import recipes, vae

    model, _ = recipes.vae.mnist_vae_2d()
    x, _ = vae.binarized_mnist_test(images)
    variances = {"reparam": [], "score": [], "score_baseline": []}
    for i in range(images):
        xi = x[i : i + 1]
        with torch.no_grad():
            mu, logvar = (t[0] for t in model.encode(xi))
        f = lambda z, xi=xi: model.log_px_given_z(xi.expand(len(z), -1, -1, -1), z)
        for name in variances:
            variances[name].append(vae.gradient_estimates(f, mu, logvar, n=n, estimator=name).var(0).sum().item())
    mean = {name: sum(v) / len(v) for name, v in variances.items()}
    return {
        "grad_var_reparam": mean["reparam"],
        "grad_var_score": mean["score"],
        "grad_var_score_baseline": mean["score_baseline"],
        "grad_var_ratio_score_over_reparam": mean["score"] / mean["reparam"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=None, help="importance samples (default: 500; 5000 in full)")
    parser.add_argument("--n-test", type=int, default=None, help="test digits for the NLL (default: all 10000)")
    parser.add_argument("--n-samples", type=int, default=None, help="samples for the judge (default 10000)")
    args = results.parse_args(parser, argv)

    import torch

    from gencourse import downstream, metrics, profile, recipes, seed_everything, vae

    p = profile()
    k = args.k or p.pick(smoke=20, lecture=500, full=5000)
    n_test = args.n_test or p.pick(smoke=200, lecture=10000, full=10000)
    n_samples = args.n_samples or p.pick(smoke=500, lecture=10000, full=10000)

    model, history = recipes.vae.mnist_vae()
    cached = "loaded_from" in history.meta
    print(
        f"vae_mnist: {history.meta['steps']} steps, {history.meta['train_seconds']:.0f} s of training"
        f"{' (when it was trained; loaded from the cache now)' if cached else ''}",
        flush=True,
    )

    x, _ = vae.binarized_mnist_test(n_test)
    seed_everything(0)
    with torch.no_grad():
        elbo = torch.cat([model.elbo(x[i : i + 1000]) for i in range(0, len(x), 1000)]).mean().item()
    start = time.perf_counter()
    nll, nll_se = vae.estimate_nll(model, x, k=k)
    nll_seconds = time.perf_counter() - start
    print(
        f"test NLL (IWAE k={k}, {n_test} test digits): {nll:.2f} ± {nll_se:.2f} nats "
        f"({nll_seconds:.0f} s); -ELBO {-elbo:.2f} nats",
        flush=True,
    )

    seed_everything(1)
    start = time.perf_counter()
    samples = model.sample(n_samples)
    sample_seconds = time.perf_counter() - start
    scores = metrics.evaluate_samples(samples)
    print(
        "judge scores of the samples: "
        + ", ".join(f"{key} {value:.3f}" for key, value in scores.items() if isinstance(value, float)),
        flush=True,
    )

    row = {
        "train_s": round(history.meta["train_seconds"], 1),
        "train_steps": history.meta["steps"],
        "cached": cached,
        "nll_nats": round(nll, 2),
        "nll_stderr": round(nll_se, 2),
        "nll_k": k,
        "nll_n_test": n_test,
        "nll_eval_s": round(nll_seconds, 1),
        "elbo_nats": round(-elbo, 2),
        "bits_per_dim": metrics.bits_per_dim(nll, 784),
        "n_samples": n_samples,
        "sample_s_per_1000": round(1000 * sample_seconds / n_samples, 3),
        **{
            key: scores[key]
            for key in ("fid", "inception_score", "precision", "recall", "confident", "classes_present")
        },
    }
    if not p.is_smoke:
        accuracy = downstream.semi_supervised_accuracy(model, per_class=10, draws=5)
        for name, key in (("raw pixels", "pixels"), ("VAE latents", "latents")):
            row[f"accuracy_100_labels_{key}"] = accuracy[name].mean().item()
            row[f"accuracy_100_labels_{key}_std"] = accuracy[name].std().item()
        row.update(gradient_variance())
        print(", ".join(f"{key} {row[key]:.4g}" for key in row if key.startswith(("accuracy", "grad_var"))))

    cvae, cvae_history = recipes.vae.mnist_cvae()
    requested = torch.arange(10).repeat_interleave(math.ceil(n_samples / 10))
    seed_everything(2)
    cvae_samples = cvae.sample(len(requested), requested)
    accuracy = (metrics.judge().predict(cvae_samples) == requested).float().mean().item()
    cvae_scores = metrics.evaluate_samples(cvae_samples)
    print(f"cvae_mnist: the judge recognises the requested digit in {accuracy:.1%} of samples", flush=True)
    cvae_row = {
        "train_s": round(cvae_history.meta["train_seconds"], 1),
        "requested_digit_accuracy": accuracy,
        "n_samples": len(requested),
        **{
            key: cvae_scores[key]
            for key in ("fid", "inception_score", "precision", "recall", "confident", "classes_present")
        },
    }
    results.save(args.profile, "models", {"vae_mnist": row, "cvae_mnist": cvae_row})
    print(f"written to {results.path(args.profile)}")


if __name__ == "__main__":
    main()
