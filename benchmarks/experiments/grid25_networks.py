"""Other networks for the 2D GAN on grid25 (remedies tried beside PacGAN4, see ``gencourse.recipes.gan.toy_gan``).

    python -m benchmarks.experiments.grid25_networks DATASET VARIANT SEED [STEPS]
    VARIANT: gan, pack2, pack4, mbstd (a minibatch-standard-deviation feature before D's last layer, as in
    progressive GANs), lat8 (an 8-dimensional z)

The course's 2D setup otherwise (3 x 256 networks, batches of 256, Adam 1e-3 with betas (0.5, 0.999)
decayed linearly to 0 over 6000 steps), trained without the mode-tracking callback; prints the mean modes
and high-quality share over 5 draws of 2500 samples, and records them (label ``VARIANT, seed SEED``) in
``benchmarks/experiments/results/grid25_networks.json`` (shown in ``docs/results.md``).
"""

import sys
import time

import torch
from torch import nn

from benchmarks.experiments import record, report_draws
from gencourse import data, seed_everything
from gencourse import gan as G
from gencourse.nn import MLP

HIDDEN = [256, 256, 256]


class MinibatchStdDiscriminator(nn.Module):
    """D whose last layer also sees the batch's mean feature standard deviation."""

    num_classes = None

    def __init__(self):
        super().__init__()
        self.features = MLP(2, HIDDEN[-1], HIDDEN[:-1], "leaky_relu", out_act="leaky_relu")
        self.head = nn.Linear(HIDDEN[-1] + 1, 1)

    def forward(self, x, labels=None):
        h = self.features(x)
        s = h.std(0).mean().expand(len(h), 1)
        return self.head(torch.cat([h, s], 1)).squeeze(1)


def main(argv):
    dataset, variant, seed = argv[0], argv[1], int(argv[2])
    steps = int(argv[3]) if len(argv) > 3 else 6000
    seed_everything(seed)
    latent = 8 if variant == "lat8" else 2
    pack = {"pack2": 2, "pack4": 4}.get(variant, 1)
    D = MinibatchStdDiscriminator() if variant == "mbstd" else G.MLPDiscriminator(2, HIDDEN, pack=pack)
    model = G.GAN(G.MLPGenerator(latent, 2, HIDDEN), D)
    t = time.time()
    G.train_gan(
        model, lambda: data.toy2d(dataset, 256), steps=steps, lr=1e-3, lr_schedule=lambda s: 1 - s / steps, desc=variant
    )
    seconds = time.time() - t
    row = report_draws(model, dataset, 100, variant=variant, seed=seed, secs=round(seconds))
    label = f"{variant}, seed {seed}" + (f", {steps} steps" if steps != 6000 else "")
    record("grid25_networks", {"label": label, "steps": steps, **row})


if __name__ == "__main__":
    main(sys.argv[1:])
