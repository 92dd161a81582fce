"""The pixel DDPM's confidence gap: samplers on the lecture model, and the same model trained longer.

    python -m benchmarks.experiments.ddpm_budget samplers [N]   # the cached lecture DDPM, N samples (1000)
    GENCOURSE_CACHE=/tmp/ddpm python -m benchmarks.experiments.ddpm_budget steps STEPS
        # the lecture configuration trained for STEPS steps (cached under another name), 2000 samples

Judges DDIM samples (50 steps, eta 1, unless the label says otherwise) of the lecture DDPM with a few step
counts and eta, or of the lecture configuration trained for STEPS steps. Prints each judged sampler and
records it in ``benchmarks/experiments/results/ddpm_budget.json`` (shown in ``docs/results.md``).
"""

import sys

import torch

from benchmarks.experiments import judge_ddim, record
from gencourse.recipes import diffusion as R


def samplers(n: int) -> None:
    model, _ = R.mnist_ddpm()
    for steps, eta in ((20, 1.0), (50, 1.0), (100, 1.0), (50, 0.5)):
        scores, seconds = judge_ddim(model, n, steps=steps, eta=eta)
        print(steps, eta, f"{seconds:.0f}s", scores, flush=True)
        record("ddpm_budget", dict(label=f"DDIM {steps} steps, eta {eta:g}", n=n, sample_s=round(seconds), **scores))


def longer(steps: int) -> None:
    model, history = R.train_mnist_diffusion(f"ddpm_exp_{steps}", R.ddpm_settings(steps=steps))
    print("threads", torch.get_num_threads(), "train s", round(history.meta["train_seconds"]), flush=True)
    scores, seconds = judge_ddim(model, 2000, batch=500)
    print(steps, "sample s", round(seconds), scores, flush=True)
    train_s = round(history.meta["train_seconds"])
    row = dict(label=f"trained {steps} steps", n=2000, train_s=train_s, threads=torch.get_num_threads(), **scores)
    record("ddpm_budget", row)


if __name__ == "__main__":
    if sys.argv[1] == "samplers":
        samplers(int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
    else:
        longer(int(sys.argv[2]))
