"""One-off experiments behind figures quoted in the docs, docstrings and README (settings that were tried
and compared, not the course's models). Each module's docstring gives its command and what it measured
on the 2-core CPU, one core per run (``OMP_NUM_THREADS=1``) unless it says otherwise."""


def report_draws(model, dataset: str, first_seed: int, **fields) -> None:
    """Print one JSON line: ``fields`` and the mean modes and high-quality share of 5 draws of 2500
    samples from a 2D GAN, the draws seeded ``first_seed``, ``first_seed + 1``, ..."""
    import json

    from gencourse import metrics, seed_everything
    from gencourse.data import toy2d_modes

    draws = []
    for s in range(5):
        seed_everything(first_seed + s)
        m = metrics.mode_metrics(model.sample(2500), toy2d_modes(dataset))
        draws.append((m["modes"], round(m["high_quality"], 3)))
    modes, hq = sum(r[0] for r in draws) / 5, round(sum(r[1] for r in draws) / 5, 3)
    print(json.dumps(dict(dataset=dataset, **fields, modes=modes, hq=hq, draws=draws)), flush=True)


def judge_ddim(model, n: int, batch: int = 250, steps: int = 50, eta: float = 1.0, **kwargs) -> tuple[dict, float]:
    """Judge ``n`` samples of a pixel diffusion model (images in [-1, 1]) drawn ``batch`` at a time with
    DDIM (``steps``, ``eta``; ``kwargs`` such as ``autoguidance`` go to ``model.sample``) by
    ``benchmarks.diffusion.timed_samples`` (seed 0): the judge's fid, confident share, precision, recall and
    digits present (rounded), and the seconds the sampling took."""
    from benchmarks.diffusion import timed_samples
    from gencourse.metrics import evaluate_samples

    model.eval()
    x, seconds = timed_samples(model, n, batch, seed=0, steps=steps, eta=eta, **kwargs)
    scores = evaluate_samples(x)
    return {
        k: round(float(scores[k]), 3) for k in ("fid", "confident", "precision", "recall", "classes_present")
    }, seconds
