"""The course's diffusion models (notebook 07): one class-conditional DDPM on MNIST, trained with label
dropout so that it is also an unconditional model, that keeps a weak copy of itself for autoguidance
(one model serves unconditional sampling, classifier-free guidance and autoguidance), and latent
diffusion in the latent space of the course's MNIST VAE (``gencourse.recipes.vae.mnist_vae``).

    from gencourse import recipes
    recipes.diffusion.mnist_ddpm_settings()      # the settings, as a table
    ddpm, history = recipes.diffusion.mnist_ddpm()
"""

from __future__ import annotations

import dataclasses
import hashlib

import torch
from torch import nn

from gencourse.config import profile
from gencourse.data import TensorLoader, mnist
from gencourse.diffusion import Diffusion, LatentDiffusion, NoiseSchedule, net_weights
from gencourse.nn import TimeMLP, UNet
from gencourse.recipes import Settings, course_model, setting
from gencourse.recipes import vae as vae_recipes
from gencourse.train import History, load_or_train, train_with_ema

# ---------------------------------------------------------------------------------------------
# Pixel-space DDPMs on MNIST
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class DDPMSettings(Settings):
    """A DDPM on MNIST scaled to [-1, 1]: its U-Net noise predictor, noise schedule and training."""

    T: int = setting("diffusion steps of the noise schedule")
    schedule: str = setting("the noise schedule's shape (linear, cosine)")
    patch: int = setting("pixels folded into channels per side before the U-Net (2: it runs on 14x14 maps)")
    ch: int = setting("U-Net channels at the first level")
    ch_mult: tuple[int, ...] = setting("channel multiplier of each U-Net level")
    blocks: int = setting("residual blocks per U-Net level")
    min_snr: float = setting("min-SNR loss weighting: step t counts min(SNR(t), min_snr) / SNR(t)")
    steps: int = setting("optimizer steps")
    batch_size: int = setting("images per step")
    lr: float = setting("peak learning rate (Adam)")
    lr_schedule: str = setting("the learning rate's shape over the steps (gencourse.train.lr_schedule)", "one_cycle")
    warmup: float = setting("share of the steps over which the learning rate rises to its peak", 0.05)
    ema: float = setting("decay of the average of the weights that the trained model holds")
    n_train: int | None = setting("training images (None: all 60,000)")
    num_classes: int | None = setting("classes the U-Net is told (classifier-free guidance; None: no labels)", None)
    p_uncond: float = setting("share of the labels dropped while training (classifier-free guidance)", 0.0)
    weak_at: float | None = setting(
        "share of the training after which the averaged weights are kept as the weak model (autoguidance)", None
    )

    def __post_init__(self):
        if self.weak_at is not None and not 0 < self.weak_at <= 1:
            raise ValueError(
                "weak_at is the fraction of the training after which the weak model is kept, in (0, 1]; "
                f"got {self.weak_at!r}"
            )

    @property
    def weak_step(self) -> int | None:
        """The optimizer step after which the weak model's weights are kept (None without one)."""
        return None if self.weak_at is None else max(1, round(self.weak_at * self.steps))


def ddpm_settings(**overrides) -> DDPMSettings:
    """The MNIST DDPM's settings for the active profile, with ``overrides`` (setting=value) on top.

    The U-Net works on 2x2 patches (14x14 and 7x7 maps, twice the channels for the cost of 28x28 ones), and
    the runs, short even on a GPU, use the cosine schedule and a high peak learning rate, which the one-cycle
    schedule keeps brief; the full profile (a GPU) trains a wider U-Net of the same shape for longer. The loss
    uses min-SNR weighting in every profile."""
    p = profile()
    settings = dict(
        T=p.pick(smoke=100, lecture=1000, full=1000),
        schedule=p.pick(smoke="cosine", lecture="cosine", full="cosine"),
        patch=p.pick(smoke=2, lecture=2, full=2),
        ch=p.pick(smoke=8, lecture=32, full=48),
        ch_mult=p.pick(smoke=(1, 2), lecture=(1, 2), full=(1, 2)),
        blocks=p.pick(smoke=1, lecture=1, full=1),
        min_snr=5.0,
        steps=p.pick(smoke=30, lecture=3000, full=10_000),
        batch_size=p.pick(smoke=32, lecture=64, full=64),
        lr=p.pick(smoke=8e-3, lecture=8e-3, full=8e-3),
        ema=p.pick(smoke=0.9, lecture=0.999, full=0.9999),
        n_train=p.pick(smoke=2048, lecture=None, full=None),
    )
    return DDPMSettings(**{**settings, **overrides})


def mnist_ddpm_settings() -> DDPMSettings:
    """The settings of :func:`mnist_ddpm`: told the digit, with 20% of the labels dropped (so it also
    learns the unconditional model that classifier-free guidance needs), and a weak model 10% into
    training for autoguidance."""
    return ddpm_settings(num_classes=10, p_uncond=0.2, weak_at=0.1)


def mnist_diffusion_model(settings: DDPMSettings) -> Diffusion:
    """An untrained DDPM for MNIST scaled to [-1, 1] with the :class:`~gencourse.nn.UNet` and schedule of
    ``settings`` (class-conditional if ``num_classes`` is set; with ``weak_at``, a second U-Net as the weak
    model of autoguidance, see :func:`train_mnist_diffusion`)."""

    def unet():  # channels-last memory: faster convolutions on a CPU
        return UNet(
            1,
            ch=settings.ch,
            ch_mult=settings.ch_mult,
            blocks=settings.blocks,
            num_classes=settings.num_classes,
            patch=settings.patch,
        ).to(memory_format=torch.channels_last)

    net = unet()
    weak = unet() if settings.weak_at is not None else None  # built after net, so net starts from the same weights
    return Diffusion(
        net,
        NoiseSchedule(settings.T, settings.schedule),
        (1, 28, 28),
        clip=1.0,
        p_uncond=settings.p_uncond,
        min_snr=settings.min_snr,
        weak=weak,
    )


def train_mnist_diffusion(name: str, settings: DDPMSettings) -> tuple[Diffusion, History]:
    """Build and train (or load from the cache) the MNIST DDPM ``name`` with ``settings``
    (:func:`~gencourse.diffusion.train_with_ema`). With ``weak_at``, the averaged weights of this same run
    after that share of the training become the weak model for autoguidance: it costs no extra training."""

    def train(model):
        data = mnist(train=True).loader(settings.batch_size, scale="symmetric", n=settings.n_train)
        weak, model.weak = model.weak, None  # detached while training, so that the EMA does not average it
        snapshots = {} if weak is None else {settings.weak_step: None}
        history = train_with_ema(
            model,
            lambda m, batch: m.loss(*batch),
            data,
            steps=settings.steps,
            lr=settings.lr,
            decay=settings.ema,
            schedule=settings.lr_schedule,
            warmup=settings.warmup,
            snapshots=snapshots,
            desc=name,
        )
        if weak is not None:
            weak.load_state_dict(net_weights(snapshots[settings.weak_step]))
            model.weak = weak
        return history

    return load_or_train(name, lambda: mnist_diffusion_model(settings), train, settings)


@course_model("ddpm_mnist")
def mnist_ddpm():
    """Notebook 07's DDPM on MNIST: a small U-Net noise predictor with a label embedding, images in
    [-1, 1] (``sample`` returns that range: ``gencourse.data.from_symmetric`` maps it to [0, 1]).
    Trained with 20% of the labels dropped, it is three models in one: ``sample(n)`` is unconditional,
    ``sample(n, y=labels)`` conditional, ``sample(n, y=labels, guidance=w)`` classifier-free guidance.
    Its ``weak`` model, for ``sample(n, autoguidance=a)``, is its own averaged weights 10% into training
    (:func:`mnist_ddpm_settings`)."""
    return train_mnist_diffusion("ddpm_mnist", mnist_ddpm_settings())


# ---------------------------------------------------------------------------------------------
# Latent diffusion: the course's VAE plus a DDPM on its latents
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class LatentDiffusionSettings(Settings):
    """A DDPM with a :class:`~gencourse.nn.TimeMLP` noise predictor on the latents of the course's MNIST VAE."""

    vae: str = setting("fingerprint of the VAE's weights: another VAE means another model")
    T: int = setting("diffusion steps of the noise schedule")
    schedule: str = setting("the noise schedule's shape (linear, cosine)")
    hidden: int = setting("width of the TimeMLP noise predictor")
    depth: int = setting("residual layers of the TimeMLP")
    steps: int = setting("optimizer steps")
    batch_size: int = setting("latents per step")
    lr: float = setting("peak learning rate (Adam)")
    lr_schedule: str = setting("the learning rate's shape over the steps (gencourse.train.lr_schedule)", "one_cycle")
    warmup: float = setting("share of the steps over which the learning rate rises to its peak", 0.05)
    ema: float = setting("decay of the average of the weights that the trained model holds")
    n_train: int | None = setting("training images, encoded once (None: all 60,000)")


def fingerprint(model: nn.Module) -> str:
    """A short hash of a model's weights: a cache key that changes whenever the model does."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def latent_diffusion_settings(vae: nn.Module | None = None) -> LatentDiffusionSettings:
    """The settings of :func:`mnist_latent_diffusion` for the active profile; ``vae`` is the autoencoder
    it works in (by default the course's, ``recipes.vae.mnist_vae()``, trained or loaded from the cache)."""
    if vae is None:
        vae, _ = vae_recipes.mnist_vae()
    p = profile()
    return LatentDiffusionSettings(
        vae=fingerprint(vae),
        T=1000,
        schedule="linear",
        hidden=p.pick(smoke=64, lecture=512, full=1024),
        depth=p.pick(smoke=2, lecture=4, full=6),
        steps=p.pick(smoke=30, lecture=4000, full=15_000),
        batch_size=p.pick(smoke=64, lecture=256, full=256),
        lr=p.pick(smoke=2e-3, lecture=2e-3, full=1e-3),
        ema=p.pick(smoke=0.9, lecture=0.999, full=0.9999),
        n_train=p.pick(smoke=2048, lecture=None, full=None),
    )


@course_model("latent_diffusion_mnist")
def mnist_latent_diffusion():
    """Notebook 07's latent diffusion: a DDPM on the 16-dimensional latents of the course's MNIST VAE
    (``recipes.vae.mnist_vae``), with a :class:`~gencourse.nn.TimeMLP` noise predictor. Its ``sample(n)``
    returns images in [0, 1] (the VAE decoder's pixel probabilities)."""
    vae, _ = vae_recipes.mnist_vae()
    settings = latent_diffusion_settings(vae)

    def build():
        net = TimeMLP(vae.latent_dim, hidden=settings.hidden, depth=settings.depth)
        diffusion = Diffusion(net, NoiseSchedule(settings.T, settings.schedule), (vae.latent_dim,))
        return LatentDiffusion(vae, diffusion)  # its scale is set by train, and saved with the model

    def train(model):
        # the training images are encoded once, here: a cached model loads its scale and needs none of this
        images = mnist(train=True).tensors("unit", n=settings.n_train)[0]
        with torch.no_grad():
            latents = torch.cat([vae.encode(images[i : i + 5000])[0] for i in range(0, len(images), 5000)])
        model.scale.fill_(latents.std().item())
        data = TensorLoader(latents / model.scale, batch_size=settings.batch_size)
        return train_with_ema(
            model.diffusion,
            lambda m, z: m.loss(z),
            data,
            steps=settings.steps,
            lr=settings.lr,
            decay=settings.ema,
            schedule=settings.lr_schedule,
            warmup=settings.warmup,
            desc="latent_diffusion_mnist",
        )

    return load_or_train("latent_diffusion_mnist", build, train, settings)
