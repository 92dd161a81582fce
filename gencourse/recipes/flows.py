"""The course's trained normalizing flows (notebook 06): a RealNVP per 2D toy distribution and a
multi-scale flow on MNIST.

    from gencourse import recipes
    recipes.flows.mnist_flow_settings()          # the settings of this profile, as a table
    flow, history = recipes.flows.mnist_flow()   # trained once, then loaded from the cache

Both train by maximum likelihood with Adam and a linear warm-up then cosine decay of the learning rate: the
first steps after ActNorm's data-dependent initialization are the most fragile.
"""

from __future__ import annotations

import dataclasses

import torch

from gencourse.config import profile
from gencourse.data import TOY2D, mnist, toy2d
from gencourse.flows import coupling_flow_2d, dequantized_bpd_loss, multiscale_flow, nll_loss
from gencourse.recipes import Settings, course_model, setting
from gencourse.train import fit, load_or_train, lr_schedule

# ---------------------------------------------------------------------------------------------
# RealNVP on 2D toy data
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ToyFlowSettings(Settings):
    """How the RealNVP of notebook 06 is built and trained on one 2D toy distribution."""

    data: str = setting("the 2D toy distribution it learns (gencourse.data.toy2d)")
    num_layers: int = setting("(ActNorm, affine coupling) pairs; the coupling masks alternate [1, 0] and [0, 1]")
    hidden: int = setting("width of the two hidden layers of each coupling's MLP")
    steps: int = setting("training steps, each on a fresh batch")
    batch_size: int = setting("points per batch")
    lr: float = setting("Adam's peak learning rate")
    lr_schedule: str = setting("learning-rate schedule after the warm-up (gencourse.train.lr_schedule)")
    warmup: int = setting("steps of linear learning-rate warm-up (it may outlast a short run)")


def toy_flow_settings(name: str = "moons") -> ToyFlowSettings:
    """The settings of the 2D RealNVP for the toy distribution ``name`` in the active profile."""
    if name not in TOY2D:
        raise ValueError(f"unknown toy2d distribution {name!r}; choose one of: {', '.join(TOY2D)}")
    prof = profile()
    return ToyFlowSettings(
        data=name,
        num_layers=prof.pick(smoke=4, lecture=8, full=8),
        hidden=64,
        steps=prof.pick(smoke=30, lecture=3000, full=5000),
        batch_size=256,
        lr=2e-3,
        lr_schedule="cosine",
        warmup=100,
    )


@course_model("flow_toy2d", variants=[{"name": "moons"}, {"name": "checkerboard"}])
def toy2d_flow(name: str = "moons"):
    """The RealNVP of notebook 06 trained on the 2D toy distribution ``name``: ``(flow, history)``;
    the history's ``loss`` is the negative log-likelihood in nats per point."""
    settings = toy_flow_settings(name)

    def build():
        return coupling_flow_2d(settings.num_layers, settings.hidden)

    def train(model):
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        return fit(
            model,
            nll_loss,
            lambda: toy2d(settings.data, settings.batch_size),
            steps=settings.steps,
            optimizer=optimizer,
            scheduler=lr_schedule(optimizer, settings.steps, settings.lr_schedule, warmup=settings.warmup),
            desc=f"RealNVP on {settings.data}",
        )

    # a 2D flow is tiny: the CPU is faster than a GPU here, and it keeps the notebook's tensors on one device
    return load_or_train(f"flow_toy2d_{name}", build, train, settings, device=torch.device("cpu"))


# ---------------------------------------------------------------------------------------------
# A multi-scale flow on MNIST
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MnistFlowSettings(Settings):
    """How the multi-scale flow of notebook 06 (gencourse.flows.multiscale_flow) is built and trained on
    dequantized MNIST; each tuple has one entry per scale (1 x 28 x 28 squeezed to 4 x 14 x 14, then 8 x 7 x 7)."""

    flow_steps: tuple[int, ...] = setting("steps of flow (ActNorm, 1x1 convolution, affine coupling) per scale")
    hidden: tuple[int, ...] = setting("channels of the coupling ResNets per scale")
    blocks: tuple[int, ...] = setting("residual blocks of the coupling ResNets per scale")
    alpha: float = setting("margin of the logit transform: x -> logit(alpha + (1 - 2 alpha) x)")
    n_train: int | None = setting("training images (None: all 60,000)")
    batch_size: int = setting("images per batch")
    steps: int = setting("training steps")
    lr: float = setting("Adam's peak learning rate")
    lr_schedule: str = setting("learning-rate schedule after the warm-up (gencourse.train.lr_schedule)")
    warmup: int = setting("steps of linear learning-rate warm-up")
    clip_grad: float = setting("largest gradient norm (larger gradients are scaled down to it)")


def mnist_flow_settings() -> MnistFlowSettings:
    """The settings of the MNIST flow in the active profile."""
    prof = profile()
    return MnistFlowSettings(
        flow_steps=prof.pick(smoke=(1, 1), lecture=(4, 4), full=(4, 4)),
        hidden=prof.pick(smoke=(8, 8), lecture=(32, 64), full=(64, 96)),
        blocks=prof.pick(smoke=(1, 1), lecture=(1, 2), full=(1, 2)),
        alpha=1e-6,
        n_train=prof.pick(smoke=512, lecture=None, full=None),
        batch_size=prof.pick(smoke=32, lecture=64, full=64),
        steps=prof.pick(smoke=8, lecture=1800, full=12000),
        lr=prof.pick(smoke=1e-3, lecture=2e-3, full=1e-3),
        lr_schedule="cosine",
        warmup=prof.pick(smoke=2, lecture=100, full=500),
        clip_grad=100.0,
    )


@course_model("flow_mnist")
def mnist_flow():
    """The multi-scale flow of notebook 06 trained on MNIST (dequantized, logit space):
    ``(flow, history)``; the history's ``loss`` is in bits per dimension."""
    settings = mnist_flow_settings()

    def build():
        return multiscale_flow(
            (1, 28, 28),
            steps=settings.flow_steps,
            hidden=settings.hidden,
            blocks=settings.blocks,
            alpha=settings.alpha,
        )

    def train(model):
        data = mnist(train=True).loader(settings.batch_size, scale="uint8", n=settings.n_train)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        history = fit(
            model,
            dequantized_bpd_loss,
            data,
            steps=settings.steps,
            optimizer=optimizer,
            scheduler=lr_schedule(optimizer, settings.steps, settings.lr_schedule, warmup=settings.warmup),
            clip_grad=settings.clip_grad,
            desc="multi-scale flow on MNIST",
        )
        history.meta["epochs"] = settings.steps / len(data)
        return history

    return load_or_train("flow_mnist", build, train, settings)
