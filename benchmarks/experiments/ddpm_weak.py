"""Which weak model for the pixel DDPM's autoguidance: one training run of the lecture configuration
(seeded as ``gencourse.train.load_or_train`` seeds ``mnist_ddpm``), the averaged weights kept at several
points of it (``train_with_ema(snapshots=...)``), each judged as the weak model with autoguidance ``a``.

    python -m benchmarks.experiments.ddpm_weak [fractions=0.1,0.2,0.4] [a=2] [n=1000]

Prints one JSON line per judged sampler: the model alone (a = 1), then each snapshot; n samples of 50-step
DDIM, eta 1 (``judge_ddim``: seed 0, 250 at a time). Measured in the lecture profile on both cores (the
figures quoted in ``gencourse.diffusion.mnist_ddpm`` and notebook 07, with an uncommitted form of this
script making the same calls): 500 s of training with channels-last; a = 1: 73.0% confident / FID 25.5;
a = 2 with the snapshot 10% in (step 300): 83.1% / 10.6, 20%: 82.5% / 12.2, 40%: 81.0% / 17.0. Earlier
snapshots were not tried. ``mnist_ddpm`` keeps the 10% one.
"""

import json
import sys
import time

from benchmarks.experiments import judge_ddim
from gencourse import diffusion as D
from gencourse import seed_everything
from gencourse.config import profile
from gencourse.data import mnist


def main(argv):
    args = dict(a.split("=", 1) for a in argv)
    unknown = set(args) - {"fractions", "a", "n"}
    if unknown:
        raise SystemExit(f"unknown settings {sorted(unknown)}; the settings are fractions, a and n")
    fractions = [float(f) for f in args.get("fractions", "0.1,0.2,0.4").split(",")]
    a, n = float(args.get("a", 2)), int(args.get("n", 1000))
    config = D._mnist_config(profile())
    steps = {f: max(1, round(f * config["steps"])) for f in fractions}
    seed_everything(0)
    model = D.mnist_diffusion_model({**config, "weak_at": fractions[0]})  # net first, then a weak U-Net
    weak, model.weak = model.weak, None  # detached while training, as in train_mnist_diffusion
    seed_everything(0)
    data = mnist(train=True).loader(config["batch_size"], scale="symmetric", n=config["n_train"])
    snapshots = dict.fromkeys(steps.values())
    start = time.time()
    D.train_with_ema(model, lambda m, b: m.loss(*b), data, config, desc="ddpm", snapshots=snapshots)
    train_s = round(time.time() - start)
    model.eval()
    scores, sample_s = judge_ddim(model, n)
    print(json.dumps({"weak_at": None, "a": 1.0, "train_s": train_s, "sample_s": round(sample_s), **scores}))
    model.weak = weak.eval()
    for f, step in steps.items():
        weak.load_state_dict(D.net_weights(snapshots[step]))
        scores, sample_s = judge_ddim(model, n, autoguidance=a)
        print(json.dumps({"weak_at": f, "step": step, "a": a, "sample_s": round(sample_s), **scores}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
