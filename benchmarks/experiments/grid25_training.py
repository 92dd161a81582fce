"""Training changes for the plain 2D GAN on grid25, on exactly ``gencourse.recipes.gan.toy_gan``'s training
path (same seeding, the same mode-tracking callback, 5 draws seeded 0-4), so seed 0 reproduces the notebooks'
model.

    python -m benchmarks.experiments.grid25_training DATASET SEED VARIANT [STEPS]   (STEPS: 6000, the course's)
    VARIANT: SCHEDULE[-nc2][-bs512|-bs1024]; SCHEDULE is linear (the course's: lr decayed to 0 from the
    start) or hold (constant for 70% of the steps, then decayed); nc2 = two D steps per G step;
    bs1024 = batches of 1024 instead of 256
    e.g. for seed in 0 1 2; do python -m benchmarks.experiments.grid25_training grid25 $seed linear-bs1024; done

Prints the mean modes and high-quality share over the 5 draws (and the trajectory during training) and
records them (label ``VARIANT, seed SEED``) in ``benchmarks/experiments/results/grid25_training.json``
(shown in ``docs/results.md``).
"""

import sys
import time

from benchmarks.experiments import record, report_draws
from gencourse import gan as G
from gencourse import seed_everything
from gencourse.data import toy2d, toy2d_modes
from gencourse.metrics import mode_metrics


def main(argv):
    dataset, seed, variant = argv[0], int(argv[1]), argv[2]
    steps = int(argv[3]) if len(argv) > 3 else 6000
    seed_everything(seed)
    model = G.GAN(G.MLPGenerator(2, 2, [256, 256, 256]), G.MLPDiscriminator(2, [256, 256, 256], pack=1))
    seed_everything(seed)
    modes = toy2d_modes(dataset)

    def track(step, gan, history):
        s = mode_metrics(gan.sample(2500), modes)
        history.log(step, modes=s["modes"], high_quality=s["high_quality"])

    schedule = {
        "linear": lambda s: 1 - s / steps,
        "hold": lambda s: 1.0 if s < 0.7 * steps else (steps - s) / (0.3 * steps),
    }[variant.split("-")[0]]
    n_critic = 2 if "nc2" in variant else 1
    t = time.time()
    bs = 1024 if "bs1024" in variant else (512 if "bs512" in variant else 256)
    h = G.train_gan(
        model,
        lambda: toy2d(dataset, bs),
        kind="nonsaturating",
        steps=steps,
        lr=1e-3,
        betas=(0.5, 0.999),
        lr_schedule=schedule,
        n_critic=n_critic,
        callback=track,
        every=steps // 20,
        desc=variant,
    )
    trajectory = list(zip(h["modes"], [round(q, 2) for q in h["high_quality"]]))
    row = report_draws(
        model, dataset, 0, seed=seed, variant=variant, secs=round(time.time() - t), trajectory=trajectory
    )
    label = f"{variant}, seed {seed}" + (f", {steps} steps" if steps != 6000 else "")
    record("grid25_training", {"label": label, "steps": steps, **row})


if __name__ == "__main__":
    main(sys.argv[1:])
