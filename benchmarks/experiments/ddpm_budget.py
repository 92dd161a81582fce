"""The pixel DDPM's confidence gap: samplers on the lecture model, and the same model trained longer.

    python -m benchmarks.experiments.ddpm_budget samplers [N]   # the cached lecture DDPM, N samples (1000)
    GENCOURSE_CACHE=/tmp/ddpm python -m benchmarks.experiments.ddpm_budget steps STEPS
        # the lecture configuration trained for STEPS steps (cached under another name), 2000 samples

Judge scores of 50-step DDIM (eta 1) samples unless said. Measured (lecture profile) with the configuration
of the time (linear schedule, lr 2e-3; ``ddpm_settings.py`` led to the cosine schedule and 4e-3): samplers, 1000
samples on one core: DDIM eta 1 with 20 / 50 / 100 steps 64.3 / 65.5 / 67.7% confident, FID 43.3 / 38.8 /
37.8; 50 steps with eta 0.5: 63.0%, FID 48.3. ``steps 6000`` on both cores: 951 s of training, 73.8%
confident, FID 22.2, 10 digits (the lecture model, 3000 steps: 66%, FID 37).
"""

import sys
import time

import torch

from gencourse import diffusion as D
from gencourse.config import profile
from gencourse.data import from_symmetric
from gencourse.metrics import evaluate_samples

KEYS = ("fid", "confident", "precision", "recall", "classes_present")


def samplers(n: int) -> None:
    model, _ = D.mnist_ddpm()
    model.eval()
    for steps, eta in ((20, 1.0), (50, 1.0), (100, 1.0), (50, 0.5)):
        torch.manual_seed(0)
        t0 = time.time()
        xs = [model.sample(250, steps=steps, eta=eta) for _ in range(n // 250)]
        dt = time.time() - t0
        s = evaluate_samples(from_symmetric(torch.cat(xs)))
        print(steps, eta, f"{dt:.0f}s", {k: round(float(s[k]), 3) for k in KEYS}, flush=True)


def longer(steps: int) -> None:
    config = D._mnist_config(profile())
    config["steps"] = steps
    model, history = D.train_mnist_diffusion(f"ddpm_exp_{steps}", config)
    print("threads", torch.get_num_threads(), "train s", round(history.meta["train_seconds"]), flush=True)
    model.eval()
    torch.manual_seed(0)
    t1 = time.time()
    x = torch.cat([model.sample(500, steps=50, eta=1.0) for _ in range(4)])
    s = evaluate_samples(from_symmetric(x))
    print(steps, "sample s", round(time.time() - t1), {k: round(float(s[k]), 3) for k in KEYS}, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "samplers":
        samplers(int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
    else:
        longer(int(sys.argv[2]))
