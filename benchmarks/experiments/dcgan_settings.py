"""The MNIST DCGAN's settings compared at the lecture budget (the choice of lr 2e-3 in ``gan._mnist_gan``).

    python -m benchmarks.experiments.dcgan_settings NAME STEPS G_CH D_CH LR [EMA_DECAY] [BATCH] [BETA1]
    (environment: GNORM=none for a generator without batch norm, DNORM=none for such a discriminator)
    e.g. the learning rates: for lr in 2e-4 5e-4 1e-3 2e-3; do OMP_NUM_THREADS=1 \
        python -m benchmarks.experiments.dcgan_settings lr$lr 2200 32 32 $lr; done

Trains ``gan.GAN(DCGenerator(64, G_CH), DCDiscriminator(D_CH))`` with ``gan.train_gan`` (lr decayed
linearly to 0, seed 0) and prints the judge's scores of 2000 samples six times, for the raw generator and
an EMA of its weights, and at the end also with truncated latents (psi 0.8). Measured with STEPS 2200 and
channels 32/32 (the last line's EMA scores, FID / confident): lr 2e-4 92 / 52%, 5e-4 59 / 61%, 1e-3 40 /
67%, 2e-3 24 / 71%. The raw generator is within 2 points of its EMA; psi 0.8 never raised the confident
share (at most +0.5 points, FID always worse). D_CH 64 at 2e-4: 89 / 57%, 648 s of training against 353 s.
GNORM=none at 5e-4 collapsed (FID 486 at step 366, 973 at step 1098).
"""

import copy
import os
import sys
import time

import torch

from gencourse import gan
from gencourse.data import from_symmetric, mnist
from gencourse.metrics import evaluate_samples
from gencourse.nn import EMA, ConvDecoder


def main(argv):
    name, steps, gch, dch, lr = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), float(argv[4])
    ema_decay = float(argv[5]) if len(argv) > 5 else 0.999
    bs = int(argv[6]) if len(argv) > 6 else 64
    beta1 = float(argv[7]) if len(argv) > 7 else 0.5
    torch.manual_seed(0)
    model = gan.GAN(gan.DCGenerator(64, gch), gan.DCDiscriminator(dch, norm=os.environ.get("DNORM", "batch")))
    if os.environ.get("GNORM"):
        model.generator.net = ConvDecoder(64, 1, gch, norm=os.environ["GNORM"], out_act="tanh")
    ema = EMA(model.generator, ema_decay)
    loader = mnist(train=True).loader(bs, scale="symmetric")
    t_eval = 0.0

    def score(g, psi=1.0):
        with torch.no_grad():
            g.eval()
            x = torch.cat([g(psi * model.sample_latent(500)) for _ in range(4)])
        s = evaluate_samples(from_symmetric(x))
        return {k: round(float(s[k]), 3) for k in ("fid", "confident", "precision", "recall")}

    def callback(step, m, h):
        nonlocal t_eval
        ema.update(m.generator)
        if step % (steps // 6) == 0 or step == steps - 1:
            t0 = time.perf_counter()
            g2 = copy.deepcopy(m.generator)
            ema.copy_to(g2)
            r = {"step": step, "raw": score(m.generator), "ema": score(g2)}
            if step == steps - 1:
                r["ema_psi0.8"] = score(g2, 0.8)
            t_eval += time.perf_counter() - t0
            print(name, r, flush=True)

    t0 = time.perf_counter()
    gan.train_gan(
        model,
        loader,
        steps=steps,
        lr=lr,
        betas=(beta1, 0.999),
        lr_schedule=lambda s: 1 - s / steps,
        callback=callback,
        every=1,
        desc=name,
    )
    print(name, "train seconds", round(time.perf_counter() - t0 - t_eval, 1), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
