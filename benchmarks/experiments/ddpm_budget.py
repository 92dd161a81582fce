"""The pixel DDPM's confidence gap: samplers on the lecture model, and the same model trained longer.

    python -m benchmarks.experiments.ddpm_budget samplers [N]   # the cached lecture DDPM, N samples (1000)
    GENCOURSE_CACHE=/tmp/ddpm python -m benchmarks.experiments.ddpm_budget steps STEPS
        # the lecture configuration trained for STEPS steps (cached under another name), 2000 samples

Judge scores of 50-step DDIM (eta 1) samples unless said. Measured (lecture profile) with the configuration
of the time (linear schedule, lr 2e-3; ``ddpm_settings.py`` led to the cosine schedule and, later, 8e-3):
samplers, 1000 samples on one core: DDIM eta 1 with 20 / 50 / 100 steps 64.3 / 65.5 / 67.7% confident, FID 43.3 / 38.8 /
37.8; 50 steps with eta 0.5: 63.0%, FID 48.3. ``steps 6000`` on both cores: 951 s of training, 73.8%
confident, FID 22.2, 10 digits (the lecture model, 3000 steps: 66%, FID 37).
"""

import sys

import torch

from benchmarks.experiments import judge_ddim
from gencourse import diffusion as D
from gencourse.config import profile


def samplers(n: int) -> None:
    model, _ = D.mnist_ddpm()
    for steps, eta in ((20, 1.0), (50, 1.0), (100, 1.0), (50, 0.5)):
        scores, seconds = judge_ddim(model, n, steps=steps, eta=eta)
        print(steps, eta, f"{seconds:.0f}s", scores, flush=True)


def longer(steps: int) -> None:
    config = D._mnist_config(profile())
    config["steps"] = steps
    model, history = D.train_mnist_diffusion(f"ddpm_exp_{steps}", config)
    print("threads", torch.get_num_threads(), "train s", round(history.meta["train_seconds"]), flush=True)
    scores, seconds = judge_ddim(model, 2000, batch=500)
    print(steps, "sample s", round(seconds), scores, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "samplers":
        samplers(int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
    else:
        longer(int(sys.argv[2]))
