"""Which weak model for the pixel DDPM's autoguidance: one training run of the lecture configuration
(seeded as ``gencourse.train.load_or_train`` seeds ``mnist_ddpm``), the averaged weights kept at several
points of it (``train_with_ema(snapshots=...)``), each judged as the weak model with autoguidance ``a``.

    python -m benchmarks.experiments.ddpm_weak [fractions=0.1,0.2,0.4] [a=2] [n=1000]

Prints one JSON line per judged sampler (the model alone, a = 1, then each snapshot as the weak model; n
samples of 50-step DDIM, eta 1, by ``judge_ddim``: seed 0, 250 at a time) and records it in
``benchmarks/experiments/results/ddpm_weak.json`` (shown in ``docs/results.md``).
"""

import json
import sys
import time

from benchmarks.experiments import judge_ddim, record
from gencourse import seed_everything
from gencourse.data import mnist
from gencourse.diffusion import net_weights
from gencourse.recipes import diffusion as R
from gencourse.train import train_with_ema


def main(argv):
    args = dict(a.split("=", 1) for a in argv)
    unknown = set(args) - {"fractions", "a", "n"}
    if unknown:
        raise SystemExit(f"unknown settings {sorted(unknown)}; the settings are fractions, a and n")
    fractions = [float(f) for f in args.get("fractions", "0.1,0.2,0.4").split(",")]
    a, n = float(args.get("a", 2)), int(args.get("n", 1000))
    settings = R.ddpm_settings(weak_at=fractions[0])
    steps = {f: max(1, round(f * settings.steps)) for f in fractions}
    seed_everything(0)
    model = R.mnist_diffusion_model(settings)  # net first, then a weak U-Net
    weak, model.weak = model.weak, None  # detached while training, as in train_mnist_diffusion
    seed_everything(0)
    data = mnist(train=True).loader(settings.batch_size, scale="symmetric", n=settings.n_train)
    snapshots = dict.fromkeys(steps.values())
    start = time.time()
    train_with_ema(
        model,
        lambda m, b: m.loss(*b),
        data,
        steps=settings.steps,
        lr=settings.lr,
        decay=settings.ema,
        schedule=settings.lr_schedule,
        warmup=settings.warmup,
        snapshots=snapshots,
        desc="ddpm",
    )
    train_s = round(time.time() - start)
    model.eval()
    scores, sample_s = judge_ddim(model, n)
    row = {"weak_at": None, "a": 1.0, "train_s": train_s, "sample_s": round(sample_s), **scores}
    print(json.dumps(row))
    record("ddpm_weak", {"label": "no autoguidance (a = 1)", "n": n, **row})
    model.weak = weak.eval()
    for f, step in steps.items():
        weak.load_state_dict(net_weights(snapshots[step]))
        scores, sample_s = judge_ddim(model, n, autoguidance=a)
        row = {"weak_at": f, "step": step, "a": a, "sample_s": round(sample_s), **scores}
        print(json.dumps(row), flush=True)
        record("ddpm_weak", {"label": f"a = {a:g}, weak model {f:.0%} into training", "n": n, **row})


if __name__ == "__main__":
    main(sys.argv[1:])
