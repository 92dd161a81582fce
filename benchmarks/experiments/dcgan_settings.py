"""The MNIST DCGAN's settings compared at the lecture budget (what chose the learning rate of
``gencourse.recipes.gan.mnist_gan``).

    python -m benchmarks.experiments.dcgan_settings NAME STEPS G_CH D_CH LR [EMA_DECAY] [BATCH] [BETA1]
    (environment: GNORM=none for a generator without batch norm, DNORM=none for such a discriminator)
    e.g. the learning rates: for lr in 2e-4 5e-4 1e-3 2e-3; do OMP_NUM_THREADS=1 \
        python -m benchmarks.experiments.dcgan_settings lr$lr 2200 32 32 $lr; done

Trains ``gan.GAN(DCGenerator(64, G_CH), DCDiscriminator(D_CH))`` with ``gan.train_gan`` (lr decayed
linearly to 0, seed 0) and judges 2000 samples six times, for the raw generator and an EMA of its weights,
and at the end also with truncated latents (psi 0.8). Prints each evaluation and records the run (label NAME)
in ``benchmarks/experiments/results/dcgan_settings.json``; ``docs/results.md`` shows the recorded runs.
"""

import copy
import os
import sys
import time

import torch

from benchmarks.experiments import record
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
    t_eval, evaluations = 0.0, []

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
            evaluations.append(r)
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
    train_s = round(time.perf_counter() - t0 - t_eval, 1)
    print(name, "train seconds", train_s, flush=True)
    final = evaluations[-1]["ema"]  # the scores docs/results.md shows: the EMA's at the last step
    settings = dict(steps=steps, g_ch=gch, d_ch=dch, lr=lr, ema_decay=ema_decay, batch=bs, beta1=beta1)
    norms = {k.lower(): os.environ[k] for k in ("GNORM", "DNORM") if os.environ.get(k)}
    record("dcgan_settings", dict(label=name, **settings, **norms, **final, train_s=train_s, evaluations=evaluations))


if __name__ == "__main__":
    main(sys.argv[1:])
