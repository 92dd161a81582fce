"""How InfoGAN's code enters the generator: the course feeds it like a class label (a learned embedding
concatenated with z, ``DCGenerator(num_classes=10)``); the InfoGAN paper appends a one-hot vector to z.

    python -m benchmarks.experiments.infogan_code_input        # lecture profile, both cores

Trains the one-hot variant on exactly ``gencourse.recipes.gan.infogan_mnist``'s path (same settings, seeds,
judge tracking; cached as ``gan_infogan_onehot_mnist``) and scores it as ``benchmarks/gan.py`` scores the
course's model (10,000 samples; codes: 1000 samples each; the course's own embedding is measured by
``python -m benchmarks.gan --profile lecture --only mnist``). Prints the scores and records them in
``benchmarks/experiments/results/infogan_code_input.json`` (shown in ``docs/results.md``).
"""

import os

import torch
import torch.nn.functional as F
from torch import nn

os.environ.setdefault("GENCOURSE_PROFILE", "lecture")

from benchmarks.experiments import record  # noqa: E402
from gencourse import data, gan, metrics, recipes, seed_everything  # noqa: E402


class OneHotCodeGenerator(nn.Module):
    """A DCGAN generator whose input is [z, one-hot(c)]: the code as a fixed block of the latent."""

    def __init__(self, latent_dim: int, ch: int, num_classes: int):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.net = gan.DCGenerator(latent_dim + num_classes, ch)

    def forward(self, z, labels):
        return self.net(torch.cat([z, F.one_hot(labels, self.num_classes).float()], 1))


def main():
    course_generator = gan.DCGenerator
    # mnist_gan builds gan.DCGenerator(latent_dim, ch, num_classes=10) for the InfoGAN; swap in the one-hot one
    gan.DCGenerator = lambda latent_dim, ch, num_classes=None: (
        OneHotCodeGenerator(latent_dim, ch, num_classes) if num_classes else course_generator(latent_dim, ch)
    )
    try:
        model, history = recipes.gan.mnist_gan("gan_infogan_onehot_mnist", recipes.gan.infogan_settings())
    finally:
        gan.DCGenerator = course_generator
    seed_everything(0)
    scores = metrics.evaluate_samples(data.from_symmetric(model.sample(10_000)))
    seed_everything(2)
    purity, digit = gan.code_purity(gan.code_digits(model, 1000))
    train_s = history.meta["train_seconds"] - history.meta.get("eval_seconds", 0)
    row = {
        "label": "one-hot code",
        "n": 10_000,
        **{k: round(float(scores[k]), 3) for k in ("confident", "fid")},
        "classes_present": int(scores["classes_present"]),
        "code_digits": len(set(digit.tolist())),
        "code_purity": round(purity.mean().item(), 3),
        "train_s": round(train_s),
        "q_cross_entropy": round(sum(history["info"][-100:]) / 100, 3),
    }
    record("infogan_code_input", row)
    print(
        f"one-hot code: {scores['confident']:.1%} confident, FID {scores['fid']:.1f}, "
        f"{scores['classes_present']}/10 digits; codes -> {len(set(digit.tolist()))} different digits, purity "
        f"{purity.mean():.1%}; {history.meta['train_seconds'] - history.meta.get('eval_seconds', 0):.0f} s "
        f"of training, Q's final cross-entropy {sum(history['info'][-100:]) / 100:.3f}"
    )


if __name__ == "__main__":
    main()
