"""The course's autoencoder and VAEs on MNIST (notebooks 04 and 05, and the VAE whose latent space
notebook 07's latent diffusion works in): their settings per profile, and how they are built and trained.

Every one trains on dynamically binarized MNIST (a fresh x ~ Bernoulli(pixel intensity) at every step) with
Adam, its learning rate decayed to zero along a cosine. A settings class per kind of network lists the
network's fields first, then the loss's, then the training's:

    from gencourse import recipes
    recipes.vae.mnist_vae_settings()            # the settings of notebook 05's VAE, as a table
    model, history = recipes.vae.mnist_vae()    # model.encode / model.decode: images <-> [B, 16] latents
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from gencourse.config import profile
from gencourse.data import binarize, mnist
from gencourse.recipes import Settings, course_model, setting
from gencourse.train import History, fit, load_or_train, lr_schedule
from gencourse.vae import VAE, Autoencoder, elbo_loss

# ---------------------------------------------------------------------------------------------
# Settings. The field groups are mixed in last-first: a dataclass lists its bases' fields in reverse
# method-resolution order, so ``class S(_Training, _ELBO, _MLPNetwork)`` shows network, loss, training.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class _MLPNetwork(Settings):
    arch: str = dataclasses.field(
        default="mlp", init=False, metadata={"doc": "the network: an MLP encoder, and its mirror image as decoder"}
    )
    latent_dim: int = setting("latent (code) dimensions")
    hidden: tuple[int, ...] = setting("the encoder's hidden widths (the decoder's, reversed)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _ConvNetwork(Settings):
    arch: str = dataclasses.field(
        default="conv", init=False, metadata={"doc": "the network: a convolutional encoder (gencourse.nn.ConvEncoder)"}
    )
    latent_dim: int = setting("latent dimensions")
    ch: int = setting("the encoder's base width (channels of its first layer)")
    decoder: str = setting(
        "'conv' (gencourse.nn.ConvDecoder) or 'mlp' (cheaper on a CPU, where the IWAE bound runs it k times per image)"
    )
    dec_ch: int | None = setting("a convolutional decoder's base width (None: ch; unused by an MLP decoder)", None)
    dec_hidden: tuple[int, ...] = setting("an MLP decoder's hidden widths (unused by a convolutional decoder)", ())


@dataclasses.dataclass(frozen=True, kw_only=True)
class _ELBO(Settings):
    num_classes: int = setting("labels the VAE is conditioned on: q(z|x, y), p(x|z, y) (0: not conditional)", 0)
    beta: float = setting("weight of the KL term (1: the ELBO; a beta-VAE otherwise)", 1.0)
    free_bits: float = setting("nats of KL per latent dimension left unpenalised (0: off)", 0.0)
    warmup_steps: int = setting("KL annealing: the KL weight rises from 0 to beta over these steps (0: off)", 0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Training(Settings):
    steps: int = setting("optimizer steps (Adam)")
    batch_size: int = setting("images per step")
    lr: float = setting("peak learning rate")
    lr_schedule: str = setting(
        "the learning rate's shape over the steps (train.lr_schedule): cosine decays it to 0", "cosine"
    )
    n_train: int | None = setting("training images (None: all 60000)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AutoencoderSettings(_Training, _MLPNetwork):
    """A deterministic MLP autoencoder (:class:`gencourse.vae.Autoencoder`) trained with the binary
    cross-entropy."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class MLPVAESettings(_Training, _ELBO, _MLPNetwork):
    """A VAE with an MLP encoder and decoder (:meth:`gencourse.vae.VAE.mlp`) trained on the (beta-)ELBO."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvVAESettings(_Training, _ELBO, _ConvNetwork):
    """A VAE with a convolutional encoder (:meth:`gencourse.vae.VAE.conv`) trained on the (beta-)ELBO."""


VAESettings = MLPVAESettings | ConvVAESettings

BETAS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # notebook 05's rate-distortion sweep
COLLAPSE_BETA = 8.0  # the KL weight at which notebook 05 compares the remedies for posterior collapse
REMEDIES = ("none", "kl_annealing", "free_bits")


def mnist_vae_settings() -> ConvVAESettings:
    """Notebook 05's VAE: 16 latent dimensions, a convolutional encoder, and a decoder that is an MLP on a
    CPU (smoke, lecture) and convolutional on a GPU (full)."""
    p = profile()
    return ConvVAESettings(
        latent_dim=16,
        ch=p.pick(smoke=8, lecture=16, full=32),
        decoder=p.pick(smoke="mlp", lecture="mlp", full="conv"),
        dec_ch=p.pick(smoke=None, lecture=None, full=64),
        dec_hidden=p.pick(smoke=(64,), lecture=(256, 512), full=()),
        steps=p.pick(smoke=40, lecture=6000, full=25_000),
        batch_size=p.pick(smoke=64, lecture=128, full=128),
        lr=1e-3,
        n_train=p.pick(smoke=2048, lecture=None, full=None),
    )


def _small_mlp(latent_dim: int, hidden: tuple[int, ...], lecture_steps: int, full_factor: int) -> dict:
    """The network and training of a small MLP model, scaled by the profile: ``lecture_steps`` steps on all
    of MNIST in lecture, ``full_factor`` times as many with the same network in full (the factor is chosen so
    that the notebook's models fit its GPU budget), and 40 steps of a (64,) MLP on 2048 images in smoke."""
    p = profile()
    return dict(
        latent_dim=latent_dim,
        hidden=p.pick(smoke=(64,), lecture=hidden, full=hidden),
        steps=p.pick(smoke=40, lecture=lecture_steps, full=full_factor * lecture_steps),
        batch_size=p.pick(smoke=64, lecture=128, full=128),
        lr=1e-3,
        n_train=p.pick(smoke=2048, lecture=None, full=None),
    )


def autoencoder_2d_settings() -> AutoencoderSettings:
    """Notebook 04's plain autoencoder: 2D codes, MLP (512, 256), the same data and decoder as the 2D VAE."""
    return AutoencoderSettings(**_small_mlp(2, (512, 256), 3000, full_factor=10))


def vae_2d_settings() -> MLPVAESettings:
    """Notebook 04's VAE: a 2D latent space (to plot it), MLP (512, 256)."""
    return MLPVAESettings(**_small_mlp(2, (512, 256), 3000, full_factor=10))


def beta_vae_settings(beta: float = 1.0, remedy: str = "none") -> MLPVAESettings:
    """A small beta-VAE of notebook 05 (16 latent dimensions, MLP (256,)) with KL weight ``beta``, and the
    ``remedy`` for posterior collapse: ``none``, ``kl_annealing`` (the KL weight rises from 0 over the first
    half of training) or ``free_bits`` (0.25 free nats per dimension)."""
    if remedy not in REMEDIES:
        raise ValueError(f"unknown remedy {remedy!r}; choose one of: {', '.join(REMEDIES)}")
    network_and_training = _small_mlp(16, (256,), 1500, full_factor=4)
    return MLPVAESettings(
        **network_and_training,
        beta=float(beta),
        warmup_steps=network_and_training["steps"] // 2 if remedy == "kl_annealing" else 0,
        free_bits=0.25 if remedy == "free_bits" else 0.0,
    )


def cvae_settings() -> MLPVAESettings:
    """Notebook 05's conditional VAE: MLP (512, 256), the label as a one-hot input of the encoder and the
    decoder, and only 2 latent dimensions: with more, a short training can let the class leak into z (the
    KL term charges up to log 10 nats for storing what the decoder already gets from y), the decoder then
    reads it from z as well as from y, and samples follow the requested label less reliably."""
    return MLPVAESettings(**_small_mlp(2, (512, 256), 6000, full_factor=4), num_classes=10)


# ---------------------------------------------------------------------------------------------
# Building and training
# ---------------------------------------------------------------------------------------------


def _adam(model: nn.Module, settings: _Training) -> dict:
    """``fit``'s ``optimizer`` and ``scheduler``: Adam at ``settings.lr``, moved by ``settings.lr_schedule``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    return {"optimizer": optimizer, "scheduler": lr_schedule(optimizer, settings.steps, settings.lr_schedule)}


def build_vae(settings: VAESettings) -> VAE:
    """The untrained VAE that ``settings`` describe."""
    if settings.arch == "mlp":
        return VAE.mlp(latent_dim=settings.latent_dim, hidden=settings.hidden, num_classes=settings.num_classes)
    return VAE.conv(
        latent_dim=settings.latent_dim,
        ch=settings.ch,
        decoder=settings.decoder,
        dec_ch=settings.dec_ch,
        dec_hidden=settings.dec_hidden,
        num_classes=settings.num_classes,
    )


def train_vae(name: str, settings: VAESettings) -> tuple[VAE, History]:
    """Build and train (or load from the cache) the VAE that ``settings`` describe, on dynamically
    binarized MNIST (a conditional VAE is given the labels). Returns ``(model, history)``."""

    def train(model: VAE) -> History:
        data = mnist(train=True).loader(settings.batch_size, n=settings.n_train)
        loss = elbo_loss(beta=settings.beta, free_bits=settings.free_bits, warmup_steps=settings.warmup_steps)
        return fit(model, loss, data, steps=settings.steps, desc=name, **_adam(model, settings))

    return load_or_train(name, lambda: build_vae(settings), train, settings)


# ---------------------------------------------------------------------------------------------
# The course's trained models
# ---------------------------------------------------------------------------------------------


@course_model("vae_mnist")
def mnist_vae() -> tuple[VAE, History]:
    """The VAE of notebook 05 (:func:`mnist_vae_settings`) on dynamically binarized MNIST (x in {0, 1};
    grey levels in [0, 1] also encode). Returns ``(model, history)``; ``model.encode`` / ``model.decode``
    map images <-> ``[B, model.latent_dim]`` latents (16 dimensions)."""
    return train_vae("vae_mnist", mnist_vae_settings())


@course_model("ae_mnist_2d")
def mnist_autoencoder_2d() -> tuple[Autoencoder, History]:
    """The plain autoencoder of notebook 04 (:func:`autoencoder_2d_settings`), trained on dynamically
    binarized MNIST with the binary cross-entropy. Returns ``(model, history)``."""
    settings = autoencoder_2d_settings()

    def build() -> Autoencoder:
        return Autoencoder(code_dim=settings.latent_dim, hidden=settings.hidden)

    def train(model: Autoencoder) -> History:
        data = mnist(train=True).loader(settings.batch_size, n=settings.n_train)
        loss = lambda model, batch: model.loss(binarize(batch[0])).mean()
        return fit(model, loss, data, steps=settings.steps, desc="ae_mnist_2d", **_adam(model, settings))

    return load_or_train("ae_mnist_2d", build, train, settings)


@course_model("vae_mnist_2d")
def mnist_vae_2d() -> tuple[VAE, History]:
    """The VAE of notebook 04 (:func:`vae_2d_settings`), with a 2D latent space. Returns ``(model, history)``."""
    return train_vae("vae_mnist_2d", vae_2d_settings())


@course_model(
    "vae_mnist_beta",
    variants=[{"beta": b} for b in BETAS] + [{"beta": COLLAPSE_BETA, "remedy": r} for r in REMEDIES[1:]],
)
def mnist_beta_vae(beta: float = 1.0, remedy: str = "none") -> tuple[VAE, History]:
    """A small beta-VAE of notebook 05 (:func:`beta_vae_settings`): the rate-distortion sweep over ``beta``
    (``BETAS``), and the posterior-collapse study at ``COLLAPSE_BETA`` with each of ``REMEDIES``."""
    return train_vae("vae_mnist_beta", beta_vae_settings(beta, remedy))


@course_model("cvae_mnist")
def mnist_cvae() -> tuple[VAE, History]:
    """The conditional VAE of notebook 05 (:func:`cvae_settings`): every method takes the labels ``y``
    ``[B]``, and ``sample(n, y)`` draws the requested digits. Returns ``(model, history)``."""
    return train_vae("cvae_mnist", cvae_settings())
