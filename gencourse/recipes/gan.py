"""The course's trained GANs (notebooks 02 and 03, ``benchmarks/gan.py``): 2D GANs on the ring8 and grid25
mixtures (a plain GAN, PacGAN and a large-batch GAN), and DCGAN-style GANs on MNIST (unconditional,
class-conditional, spectrally normalized with the hinge loss, and InfoGAN). Each is trained once per
profile with the settings its function builds, then loaded from the cache.

    from gencourse import recipes
    recipes.gan.dcgan_settings()                  # the settings of notebook 03's DCGAN, as a table
    model, history = recipes.gan.dcgan_mnist()
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from gencourse import gan
from gencourse.config import profile
from gencourse.data import from_symmetric, mnist, toy2d, toy2d_modes
from gencourse.metrics import evaluate_samples, mode_metrics
from gencourse.recipes import Settings, course_model, setting
from gencourse.train import load_or_train

# ---------------------------------------------------------------------------------------------
# 2D mixtures (notebook 02)
# ---------------------------------------------------------------------------------------------

TOY_DATASETS = ("ring8", "grid25")


class ToyVariant(NamedTuple):
    """A 2D GAN variant: how many samples the discriminator judges at once, the batch size, and its name
    in tables and plots."""

    pack: int
    batch_size: int
    label: str


TOY_VARIANTS = {
    "gan": ToyVariant(1, 256, "GAN"),
    "pacgan": ToyVariant(4, 256, "PacGAN4"),
    "largebatch": ToyVariant(1, 1024, "GAN, batch 1024"),
}

TOY_EVALUATIONS = 20  # mode metrics tracked this many times during training


@dataclasses.dataclass(frozen=True)
class ToyGANSettings(Settings):
    """A GAN on a 2D mixture: MLP generator and discriminator, trained with Adam on fresh samples."""

    dataset: str = setting("the 2D mixture: ring8 (8 Gaussians on a circle) or grid25 (5 x 5 Gaussians)")
    pack: int = setting("samples the discriminator judges at once (PacGAN when > 1)")
    kind: str = setting("the GAN loss (gencourse.gan.discriminator_loss / generator_loss)")
    steps: int = setting("training steps (one discriminator and one generator update each)")
    batch_size: int = setting("real and generated samples per step")
    hidden: tuple[int, ...] = setting("hidden layer widths of both networks")
    latent_dim: int = setting("dimension of the noise z ~ N(0, I)")
    batch_norm: bool = setting("batch normalization in the generator's hidden layers")
    lr: float = setting("Adam's peak learning rate, both players")
    betas: tuple[float, float] = setting("Adam's betas")
    lr_schedule: str = setting("the learning rate's shape over the steps (gencourse.train.lr_schedule)")
    n_eval: int = setting("samples scored by gencourse.metrics.mode_metrics during training")
    seed: int = setting("seed of the initialization and training")


def toy_gan_settings(dataset: str = "ring8", variant: str = "pacgan", seed: int = 0) -> ToyGANSettings:
    """The settings of :func:`toy_gan` in the active profile."""
    if dataset not in TOY_DATASETS or variant not in TOY_VARIANTS:
        raise ValueError(f"toy_gan knows datasets {TOY_DATASETS} and variants {tuple(TOY_VARIANTS)}")
    return ToyGANSettings(
        dataset=dataset,
        pack=TOY_VARIANTS[variant].pack,
        kind="nonsaturating",
        steps=profile().pick(smoke=60, lecture=6000, full=20000),
        batch_size=TOY_VARIANTS[variant].batch_size,
        hidden=(256, 256, 256),
        latent_dim=2,
        batch_norm=False,
        lr=1e-3,
        betas=(0.5, 0.999),
        lr_schedule="linear",
        n_eval=2500,
        seed=seed,
    )


def toy_gan(dataset: str = "ring8", variant: str = "pacgan", seed: int = 0):
    """A GAN trained on a 2D mixture (``ring8`` or ``grid25``): ``(GAN, History)``, cached.
    ``seed`` seeds the initialization and training (the notebooks use 0; the benchmark tries several).

    ``variant`` is ``gan`` (the plain non-saturating GAN), ``pacgan`` (the same, with a discriminator
    that judges packs of 4 samples) or ``largebatch`` (the plain GAN with batches of 1024 instead of 256);
    the rest is :func:`toy_gan_settings`: MLPs without batch norm (it ties each sample to the rest of its
    batch, which blurs the modes), Adam with the learning rates decayed linearly to 0 (which lets the
    samples settle on the modes instead of orbiting them). The history also tracks ``modes`` and
    ``high_quality`` (:func:`gencourse.metrics.mode_metrics`) during training.
    """
    settings = toy_gan_settings(dataset, variant, seed)

    def build():
        return gan.GAN(
            gan.MLPGenerator(settings.latent_dim, 2, settings.hidden, batch_norm=settings.batch_norm),
            gan.MLPDiscriminator(2, settings.hidden, pack=settings.pack),
        )

    def train(model):
        modes = toy2d_modes(dataset)

        def track(step, model, history):
            scores = mode_metrics(model.sample(settings.n_eval), modes)
            history.log(step, modes=scores["modes"], high_quality=scores["high_quality"])

        return gan.train_gan(
            model,
            lambda: toy2d(dataset, settings.batch_size),
            kind=settings.kind,
            steps=settings.steps,
            lr=settings.lr,
            betas=settings.betas,
            lr_schedule=settings.lr_schedule,
            callback=track,
            every=max(1, settings.steps // TOY_EVALUATIONS),
            desc=f"{variant} on {dataset}",
        )

    return load_or_train(f"gan_{dataset}_{variant}", build, train, settings, seed=seed)


def _register_toy(dataset: str, variant: str) -> None:
    course_model(f"gan_{dataset}_{variant}")(lambda: toy_gan(dataset, variant))


for _dataset in TOY_DATASETS:
    for _variant in TOY_VARIANTS:
        _register_toy(_dataset, _variant)


# ---------------------------------------------------------------------------------------------
# MNIST (notebook 03)
# ---------------------------------------------------------------------------------------------

MNIST_SCORES = ("fid", "inception_score", "precision", "recall", "confident")


@dataclasses.dataclass(frozen=True)
class MnistGANSettings(Settings):
    """A DCGAN-style GAN on MNIST (images in [-1, 1]), trained with Adam on the training set."""

    steps: int = setting("training steps (one discriminator and one generator update each)")
    batch_size: int = setting("real images per step")
    latent_dim: int = setting("dimension of the noise z ~ N(0, I)")
    codes: int = setting("InfoGAN's categorical code: how many values (0: none)")
    g_ch: int = setting("width of the generator's convolutions (the last has g_ch channels, the others 2 g_ch)")
    d_ch: int = setting("width of the discriminator's convolutions (the first has d_ch channels, the others 2 d_ch)")
    kind: str = setting("the GAN loss (gencourse.gan.discriminator_loss / generator_loss)")
    conditional: bool = setting("class-conditional: label embedding in G, projection discriminator")
    spectral_norm: bool = setting("spectral normalization in D (it replaces D's batch norm)")
    lr: float = setting("Adam's peak learning rate, both players")
    betas: tuple[float, float] = setting("Adam's betas")
    lr_schedule: str = setting("the learning rate's shape over the steps (gencourse.train.lr_schedule)")
    n_eval: int = setting("samples the judge scores at each evaluation during training")
    evaluations: int = setting("evaluations by the judge during training")


def mnist_gan_settings(
    *, kind: str = "nonsaturating", conditional: bool = False, spectral_norm: bool = False, codes: int = 0
) -> MnistGANSettings:
    """The settings of an MNIST GAN in the active profile: the DCGAN's, with the given loss, conditioning,
    spectral normalization and InfoGAN code. The lecture profile trains for minutes on a 2-core CPU, with ten
    times the DCGAN paper's learning rate of 2e-4; the full profile (a GPU) trains the same networks several
    times as long, at half the lecture's learning rate."""
    return MnistGANSettings(
        steps=profile().pick(smoke=20, lecture=2000, full=15000),
        batch_size=64,
        latent_dim=64,
        codes=codes,
        g_ch=32,
        d_ch=32,
        kind=kind,
        conditional=conditional,
        spectral_norm=spectral_norm,
        lr=profile().pick(smoke=2e-3, lecture=2e-3, full=1e-3),
        betas=(0.5, 0.999),
        lr_schedule="linear",
        n_eval=profile().pick(smoke=100, lecture=1000, full=2000),
        evaluations=profile().pick(smoke=2, lecture=10, full=20),
    )


def mnist_gan(name: str, settings: MnistGANSettings):
    """A DCGAN-style GAN on MNIST trained with ``settings`` and cached as ``name``: ``(GAN, History)``. The
    judge's scores of ``settings.n_eval`` samples (``fid``, ``confident``, ``inception_score``,
    ``precision``, ``recall``) are tracked in the history during training."""
    num_classes = 10 if settings.conditional else None
    codes = settings.codes

    def build():
        # spectral normalization replaces batch norm in the discriminator: both rescale its layers
        return gan.GAN(
            gan.DCGenerator(settings.latent_dim, settings.g_ch, num_classes=num_classes or codes or None),
            gan.DCDiscriminator(
                settings.d_ch,
                norm="none" if settings.spectral_norm else "batch",
                num_classes=num_classes,
                spectral_norm=settings.spectral_norm,
                num_codes=codes or None,
            ),
            codes=codes,
        )

    def train(model):
        loader = mnist(train=True).loader(settings.batch_size, scale="symmetric")

        def track(step, model, history):
            scores = evaluate_samples(from_symmetric(model.sample(settings.n_eval)))
            history.log(step, **{k: scores[k] for k in MNIST_SCORES})

        return gan.train_gan(
            model,
            loader,
            kind=settings.kind,
            steps=settings.steps,
            lr=settings.lr,
            betas=settings.betas,
            lr_schedule=settings.lr_schedule,
            callback=track,
            every=max(1, settings.steps // settings.evaluations),
            desc=name,
        )

    return load_or_train(name, build, train, settings)


def dcgan_settings() -> MnistGANSettings:
    """Notebook 03's DCGAN: non-saturating loss, batch norm in both networks."""
    return mnist_gan_settings()


def conditional_gan_settings() -> MnistGANSettings:
    """Notebook 03's class-conditional DCGAN (label embedding in G, projection D)."""
    return mnist_gan_settings(conditional=True)


def sngan_settings() -> MnistGANSettings:
    """Notebook 03's stabilised GAN: hinge loss and a spectrally normalized discriminator."""
    return mnist_gan_settings(kind="hinge", spectral_norm=True)


def infogan_settings() -> MnistGANSettings:
    """Notebook 03's InfoGAN: the DCGAN with a 10-way categorical code."""
    return mnist_gan_settings(codes=10)


@course_model("gan_dcgan_mnist")
def dcgan_mnist():
    """Notebook 03's DCGAN: non-saturating loss, batch norm in both networks. ``(GAN, History)``."""
    return mnist_gan("gan_dcgan_mnist", dcgan_settings())


@course_model("gan_conditional_mnist")
def conditional_gan_mnist():
    """Notebook 03's class-conditional DCGAN (label embedding in G, projection D). ``(GAN, History)``."""
    return mnist_gan("gan_conditional_mnist", conditional_gan_settings())


@course_model("gan_sngan_mnist")
def sngan_mnist():
    """Notebook 03's stabilised GAN: hinge loss and a spectrally normalized discriminator. ``(GAN, History)``."""
    return mnist_gan("gan_sngan_mnist", sngan_settings())


@course_model("gan_infogan_mnist")
def infogan_mnist():
    """Notebook 03's InfoGAN: the DCGAN with a 10-way categorical code in its latent and an auxiliary
    head that recovers the code from the image; no labels are used. ``(GAN, History)``."""
    return mnist_gan("gan_infogan_mnist", infogan_settings())
