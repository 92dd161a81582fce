"""Generative adversarial networks (Goodfellow et al. 2014): a generator G turns noise z ~ N(0, I) into
samples, a discriminator D tells real from fake, and the two are trained against each other:

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

This module holds, top to bottom: the networks (MLPs for 2D toy data, DCGAN-style convolutional nets
for 28x28 images, class-conditional variants of both, and InfoGAN's categorical code), the losses for
the four objectives, the WGAN-GP gradient penalty, and the two-player training loop (built from
``gencourse.train``'s pieces). Mode collapse on ring8 / grid25 is measured by
``gencourse.metrics.mode_metrics``; the course's trained GANs are in ``gencourse.recipes.gan``.

Discriminators return raw scores (logits) of shape ``[B]``: D(x) = sigmoid(logit) for the
"minimax" / "nonsaturating" objectives, an unbounded critic value for "wgan" / "hinge".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gencourse.checks import check_count, check_labels, check_values
from gencourse.data import from_symmetric
from gencourse.metrics import CONFIDENT, judge
from gencourse.nn import MLP, ConvDecoder, ConvEncoder
from gencourse.train import History, check_finite, finish, run_callback, to_device, training_steps
from gencourse.train import lr_schedule as shaped_lr_schedule

KINDS = ("minimax", "nonsaturating", "wgan", "hinge")
MAX_LOSS = 1e6  # a loss beyond this has diverged, though finite (see DivergedLossError)

# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------


def _with_labels(z: torch.Tensor, labels, embed: nn.Embedding | None) -> torch.Tensor:
    """[z, embed(labels)] for a conditional network, z itself otherwise (labels must match)."""
    if embed is None:
        if labels is not None:
            raise ValueError("this network is unconditional: build it with num_classes=... to pass labels")
        return z
    if labels is None:
        raise ValueError(f"this network is class-conditional: pass labels (ints in [0, {embed.num_embeddings}))")
    return torch.cat([z, embed(labels)], dim=1)


def _project(h: torch.Tensor, head: nn.Linear, embed: nn.Embedding | None, labels) -> torch.Tensor:
    """The projection discriminator (Miyato & Koyama 2018): logit = w^T h + embed(y)^T h, shape [B]."""
    out = head(h).squeeze(-1)
    if embed is None:
        if labels is not None:
            raise ValueError("this discriminator is unconditional: build it with num_classes=... to pass labels")
        return out
    if labels is None:
        raise ValueError("this discriminator is class-conditional: pass the labels of x")
    return out + (embed(labels) * h).sum(-1)


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Divide the weight of every linear and convolution layer by its largest singular value
    (spectral normalization, Miyato et al. 2018), which makes the network at most 1-Lipschitz per layer."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        elif not isinstance(child, nn.Embedding):
            spectral_normalize(child)
    return module


class MLPGenerator(nn.Module):
    """G(z) (or G(z, y)): ``[B, latent_dim] -> [B, out_dim]`` through an MLP; class-conditional when
    ``num_classes`` is given (a label embedding is concatenated to z).

    ``batch_norm`` puts batch normalization after each hidden linear layer, as the DCGAN and PacGAN
    generators do. On the 2D mixtures it costs precision: each sample then depends on the rest of its
    batch, and the samples stay blurred around the modes.
    """

    def __init__(
        self,
        latent_dim: int = 2,
        out_dim: int = 2,
        hidden: Sequence[int] = (256, 256, 256),
        *,
        act: str = "relu",
        num_classes: int | None = None,
        embed_dim: int = 16,
        batch_norm: bool = False,
    ):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.net = MLP(latent_dim + (embed_dim if num_classes else 0), out_dim, hidden, act)
        if batch_norm:  # Linear, act, ..., Linear  ->  Linear, BatchNorm, act, ..., Linear
            layers, last = [], self.net[-1]
            for layer in self.net:
                layers.append(layer)
                if isinstance(layer, nn.Linear) and layer is not last:
                    layers.append(nn.BatchNorm1d(layer.out_features))
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_with_labels(z, labels, self.embed))


class MLPDiscriminator(nn.Module):
    """D(x): ``[B, in_dim] -> [B / pack]`` logits.

    ``pack`` > 1 is PacGAN (Lin et al. 2018): the discriminator judges ``pack`` samples at once,
    concatenated into one input, so a generator that repeats itself is easy to catch. The batch size
    must then be a multiple of ``pack``. ``num_classes`` makes it a projection discriminator;
    ``spectral_norm`` normalizes every layer.
    """

    def __init__(
        self,
        in_dim: int = 2,
        hidden: Sequence[int] = (256, 256, 256),
        *,
        act: str = "leaky_relu",
        pack: int = 1,
        num_classes: int | None = None,
        spectral_norm: bool = False,
    ):
        super().__init__()
        if pack < 1 or (pack > 1 and num_classes):
            raise ValueError("pack must be >= 1, and packing is for unconditional discriminators only")
        self.pack, self.num_classes = pack, num_classes
        self.features = MLP(in_dim * pack, hidden[-1], hidden[:-1], act, out_act=act)
        self.head = nn.Linear(hidden[-1], 1)
        self.embed = nn.Embedding(num_classes, hidden[-1]) if num_classes else None
        if spectral_norm:
            spectral_normalize(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if len(x) % self.pack:
            raise ValueError(
                f"a packed discriminator (pack={self.pack}) needs a batch size that is a multiple "
                f"of {self.pack}, got {len(x)}"
            )
        h = self.features(x.reshape(len(x) // self.pack, -1))
        return _project(h, self.head, self.embed, labels)


class DCGenerator(nn.Module):
    """DCGAN-style generator (Radford et al. 2016): ``[B, latent_dim] -> [B, 1, 28, 28]`` in [-1, 1]:
    a linear layer to 7x7 feature maps, two stride-2 transposed convolutions with batch norm, tanh.
    Class-conditional when ``num_classes`` is given. ``out_range``: where its samples lie (tanh), and so
    where :func:`train_gan` expects the real data."""

    out_range = (-1.0, 1.0)

    def __init__(self, latent_dim: int = 64, ch: int = 16, *, num_classes: int | None = None, embed_dim: int = 16):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.net = ConvDecoder(latent_dim + (embed_dim if num_classes else 0), 1, ch, norm="batch", out_act="tanh")

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_with_labels(z, labels, self.embed))


class DCDiscriminator(nn.Module):
    """DCGAN-style discriminator: ``[B, 1, 28, 28]`` in [-1, 1] -> ``[B]`` logits, through two stride-2
    convolutions with leaky ReLU. ``norm`` is ``batch`` (DCGAN) or ``none`` (required with a gradient
    penalty, which is per example); ``spectral_norm`` normalizes every layer; ``num_classes`` makes it
    a projection discriminator. ``num_codes = K`` adds InfoGAN's auxiliary head Q(c | x) on the same
    features: :meth:`code_logits` ``[B, K]`` guesses which of K categorical codes made a sample."""

    def __init__(
        self,
        ch: int = 32,
        *,
        norm: str = "batch",
        num_classes: int | None = None,
        spectral_norm: bool = False,
        num_codes: int | None = None,
    ):
        super().__init__()
        self.num_classes, self.num_codes = num_classes, num_codes
        self.encoder = ConvEncoder(1, 1, ch, norm=norm)
        self.embed = nn.Embedding(num_classes, self.encoder.head.in_features) if num_classes else None
        self.code_head = nn.Linear(self.encoder.head.in_features, num_codes) if num_codes else None
        if spectral_norm:
            spectral_normalize(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return _project(self.encoder.features(x), self.encoder.head, self.embed, labels)

    def code_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Q(c | x): logits ``[B, num_codes]`` of the categorical code behind each sample."""
        if self.code_head is None:
            raise ValueError("this discriminator has no code head: build it with num_codes=... (InfoGAN)")
        return self.code_head(self.encoder.features(x))


class GAN(nn.Module):
    """A generator and its discriminator, trained and cached together; ``sample`` uses the generator.

    ``codes = K > 0`` makes it an InfoGAN (Chen et al. 2016): the generator (built with
    ``num_classes=K``) takes a categorical code c ~ Cat(K) through its label embedding, beside the noise
    z; the discriminator sees no code (``num_classes=None``) but, built with ``num_codes=K``, also learns
    to tell which code made a sample. Training (:func:`train_gan`) rewards the generator for making c
    recoverable from G(z, c), a bound on the mutual information I(c; G(z, c)): without any labels,
    each code value tends to become a digit. (The InfoGAN paper appends c to z as a one-hot block instead.)
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, codes: int = 0):
        super().__init__()
        g_classes, d_classes = getattr(generator, "num_classes", None), getattr(discriminator, "num_classes", None)
        if codes:
            if g_classes != codes or d_classes is not None or getattr(discriminator, "num_codes", None) != codes:
                raise ValueError(
                    f"codes={codes} (InfoGAN) needs a generator built with num_classes={codes} (it takes the "
                    f"code), and an unconditional discriminator built with num_codes={codes} (it guesses it)"
                )
        elif g_classes != d_classes:
            raise ValueError(
                "the generator and the discriminator must both be conditional on the same classes, "
                "or both unconditional"
            )
        self.generator, self.discriminator, self.codes = generator, discriminator, codes
        self.latent_dim, self.num_classes = generator.latent_dim, None if codes else g_classes

    def sample_latent(self, n: int) -> torch.Tensor:
        """z ~ N(0, I), ``[n, latent_dim]``, on the model's device."""
        return torch.randn(n, self.latent_dim, device=next(self.generator.parameters()).device)

    def sample_code(self, n: int) -> torch.Tensor:
        """An InfoGAN's codes c ~ Cat(codes), uniform: ``[n]`` integers, on the model's device."""
        if not self.codes:
            raise ValueError("this GAN has no categorical code: build it with codes=K (InfoGAN)")
        return torch.randint(0, self.codes, (n,), device=next(self.generator.parameters()).device)

    @torch.no_grad()
    def sample(
        self,
        n: int | None = None,
        labels: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        code: torch.Tensor | None = None,
    ):
        """``n`` samples G(z), z ~ N(0, I) (or the given ``z``). A conditional model takes ``labels``
        ``[n]``, by default 0, 1, ..., K-1, 0, 1, ... ; an InfoGAN takes its categorical ``code`` ``[n]``
        (default: drawn at random, as in training). Generated in eval mode. Give ``n`` or ``z`` (or both,
        if they agree)."""
        if z is None:
            if n is None:
                raise TypeError("sample() needs n, the number of samples (or the latent codes z [n, latent_dim])")
            n = check_count(n)
        else:
            check_values(z, "z")
            if z.dim() != 2 or z.shape[1] != self.latent_dim or (n is not None and len(z) != n):
                rows = "n" if n is None else n
                raise ValueError(
                    f"z must be [{rows}, {self.latent_dim}] (latent_dim={self.latent_dim}), got {tuple(z.shape)}"
                )
        z = self.sample_latent(n) if z is None else z.to(next(self.generator.parameters()).device)
        if code is not None and not self.codes:
            raise ValueError("this GAN has no categorical code: build it with codes=K (InfoGAN) to pass code")
        if self.codes:
            if labels is not None:
                raise ValueError("an InfoGAN takes no labels: pass its categorical code as code=...")
            labels = self.sample_code(len(z)) if code is None else code.to(z.device)
            if labels.shape != (len(z),) or labels.min() < 0 or labels.max() >= self.codes:
                raise ValueError(f"code must be {len(z)} integers in [0, {self.codes}), got {labels}")
        elif self.num_classes and labels is None:
            labels = torch.arange(len(z), device=z.device) % self.num_classes
        elif labels is not None:
            if not self.num_classes:
                raise ValueError("this GAN is unconditional: build it with num_classes=... to pass labels")
            check_labels(labels, self.num_classes, len(z))
        training = self.generator.training
        self.generator.eval()
        x = self.generator(z, None if labels is None else labels.to(z.device))
        self.generator.train(training)
        return x


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)): the discriminator that maximises V(D, G) for a fixed G
    (Goodfellow et al. 2014, Prop. 1). Takes the two densities evaluated at the same points."""
    return p_data / (p_data + p_g)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown GAN loss kind {kind!r}; choose one of: {', '.join(KINDS)}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "nonsaturating"):
    """The discriminator's loss (to minimise), a mean over the batch. With D = sigmoid(logit):

    - ``minimax``, ``nonsaturating``: -E_x[log D(x)] - E_z[log(1 - D(G(z)))]  (binary cross-entropy;
      -log sigmoid(a) = softplus(-a) keeps it finite for large logits)
    - ``wgan``: E_z[f(G(z))] - E_x[f(x)]  (the negated Wasserstein estimate of a critic f)
    - ``hinge``: E_x[max(0, 1 - f(x))] + E_z[max(0, 1 + f(G(z)))]
    """
    _check_kind(kind)
    if kind in ("minimax", "nonsaturating"):
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "wgan":
        return fake_logits.mean() - real_logits.mean()
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "nonsaturating") -> torch.Tensor:
    """The generator's loss (to minimise), a mean over the batch:

    - ``minimax``: E_z[log(1 - D(G(z)))] = -E softplus(logit). Its gradient vanishes when D rejects
      the fakes confidently (D(G(z)) -> 0), which is early in training.
    - ``nonsaturating``: -E_z[log D(G(z))] = E softplus(-logit); same fixed point, strong gradient
      exactly when the fakes are rejected.
    - ``wgan``, ``hinge``: -E_z[f(G(z))].
    """
    _check_kind(kind)
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    if kind == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    return -fake_logits.mean()


def gradient_penalty(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """The WGAN-GP penalty (Gulrajani et al. 2017), E_x^[(||grad f(x^)||_2 - 1)^2], a scalar, with
    x^ = eps x + (1 - eps) x~ on random lines between real x and fake x~, eps ~ U[0, 1] per example.

    Differentiable w.r.t. the critic's parameters (``create_graph``), so it can be added to its loss.
    ``labels`` are passed to a conditional critic. Multiply by lambda (10 in the paper) yourself.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    eps = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = discriminator(x_hat) if labels is None else discriminator(x_hat, labels)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


@torch.no_grad()
def code_digits(gan: GAN, n_per_code: int = 200) -> torch.Tensor:
    """Which digits an InfoGAN's codes became: counts ``[codes, 10]`` of the judge's confident
    predictions (probability >= 0.9) among ``n_per_code`` samples of each code value. A row's maximum
    over its sum is the code's purity; the argmax of each row, the digit the code stands for."""
    if not gan.codes:
        raise ValueError("code_digits needs an InfoGAN (a GAN built with codes=K)")
    rows = []
    for c in range(gan.codes):
        x = from_symmetric(gan.sample(n_per_code, code=torch.full((n_per_code,), c)))
        top, digit = judge().probs(x).max(1)
        rows.append(torch.bincount(digit[top >= CONFIDENT].cpu(), minlength=10))
    return torch.stack(rows)


def code_purity(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From :func:`code_digits`' counts ``[codes, 10]``: per code, the share of its confident samples that
    are its most frequent digit (its purity), and that digit; both ``[codes]``."""
    share = counts.float() / counts.sum(1, keepdim=True).clamp(min=1)
    return share.max(1)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latent vectors ``z0``, ``z1`` ``[D]`` at ``t`` ``[T]`` -> ``[T, D]``:

        slerp(z0, z1; t) = sin((1 - t) W) / sin W * z0 + sin(t W) / sin W * z1,  cos W = z0.z1 / (|z0||z1|).

    Unlike the straight line, it keeps the norm near that of typical Gaussian samples (~ sqrt(D))."""
    omega = torch.arccos((z0 @ z1 / (z0.norm() * z1.norm())).clamp(-1 + 1e-7, 1 - 1e-7))
    t = t.reshape(-1, 1)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


# ---------------------------------------------------------------------------------------------
# The two-player training loop
# ---------------------------------------------------------------------------------------------


class DivergedLossError(FloatingPointError):
    """A GAN loss stayed finite but its size passed ``MAX_LOSS``: the training diverged. The message names
    the likely causes. (A NaN or infinite loss is :class:`gencourse.train.NonFiniteLossError`.)"""


def _check_bounded(history: History, step: int, keys: tuple[str, ...], lr: float) -> None:
    """Raise :class:`DivergedLossError` if the last logged value of a loss in ``keys`` exceeds ``MAX_LOSS``
    in size (the values are already floats: this costs nothing). Sound for every kind: the minimax and
    non-saturating losses are means of softplus(+-logit) <= |logit| + log 2, so they pass 1e6 only with
    logits beyond 1e6, where sigmoid(logit) is exactly 0 or 1 in float32 long before (|logit| > 17); the
    wgan and hinge losses are critic values, which a Lipschitz critic (gradient penalty, spectral norm)
    keeps within a few times the data's diameter."""
    for key in keys:
        value = history.records[key][-1][1]
        if abs(value) > MAX_LOSS:
            what = "discriminator loss" if key == "d_loss" else "generator loss"
            raise DivergedLossError(
                f"the {what} reached {value:.3g} at step {step}: still finite, but beyond {MAX_LOSS:g}, where "
                "the discriminator's scores have blown up; the training diverged. Likely causes:\n"
                f"  - the learning rate is too high (lr={lr:g}): try 2e-4 (DCGAN's) or 3-10x lower;\n"
                "  - real data far outside the range of the generator's samples, or huge values in it;\n"
                "  - with kind='wgan' or 'hinge', a critic without a Lipschitz constraint: pass gp_weight=10, "
                "or build the discriminator with spectral_norm=True."
            )


def _check_first_batch(gan: GAN, real: torch.Tensor, labels: torch.Tensor | None) -> None:
    """The real data against the model, once, on the first batch (one min/max pass): finite values within
    the generator's range if it is bounded (``out_range``, a tanh), and the labels of a conditional GAN."""
    bounds = getattr(gan.generator, "out_range", None)
    try:
        check_values(real, "the real data", *(bounds or ()), dtype=next(gan.generator.parameters()).dtype)
    except ValueError as exc:
        where = f" (the generator's samples lie in [{bounds[0]:g}, {bounds[1]:g}])" if bounds else ""
        raise ValueError(f"{exc}{where}; checked on the first batch") from None
    if labels is not None:
        check_labels(labels, gan.num_classes, len(real), "the labels of the real data")


def _real_and_labels(batch, conditional: bool):
    if isinstance(batch, (tuple, list)):
        x, y = batch
        return x, (y if conditional else None)
    if conditional:
        raise ValueError("a conditional GAN needs (x, labels) batches")
    return batch, None


def _scheduler(optimizer: torch.optim.Optimizer, lr_schedule: str | Callable[[int], float], steps: int | None):
    if callable(lr_schedule):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule)
    if steps is None:
        raise ValueError(f"lr_schedule={lr_schedule!r} is a shape over the training's steps: give steps=")
    return shaped_lr_schedule(optimizer, steps, lr_schedule)


def train_gan(
    gan: GAN,
    data,
    *,
    kind: str = "nonsaturating",
    steps: int | None = None,
    epochs: int | None = None,
    seconds: float | None = None,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    n_critic: int = 1,
    gp_weight: float = 0.0,
    info_weight: float | None = None,
    lr_schedule: str | Callable[[int], float] | None = None,
    history: History | None = None,
    callback: Callable | None = None,
    every: int = 100,
    desc: str = "training the GAN",
) -> History:
    """Train ``gan`` with alternating updates and return the :class:`~gencourse.train.History`.

    Each step takes one batch of real data (``x``, or ``(x, labels)``; see ``training_steps``) and
    updates the discriminator on discriminator_loss(D(x), D(G(z)), kind) [+ ``gp_weight`` * gradient
    penalty]; every ``n_critic``-th step the generator is then updated on generator_loss(D(G(z)), kind).
    For an InfoGAN (``gan.codes``) both updates add ``info_weight`` (default 1) * cross-entropy(Q(c | G(z,
    c)), c), logged as ``info``: the code must stay recognisable in the sample.
    Adam with ``lr`` and ``betas`` for both players. ``lr_schedule`` multiplies both learning rates: a shape
    of :func:`gencourse.train.lr_schedule` over the ``steps`` (``"linear"``: 1 - step / steps, a decay to 0
    that lets the samples settle instead of orbiting the equilibrium), or any factor ``lr_schedule(step)``
    (e.g. ``lambda step: 1 - step / steps``, the same). Logged per step: ``d_loss``,
    ``real_logit`` and ``fake_logit`` (mean scores), ``gp``, ``info``; per generator step: ``g_loss``.
    ``callback(step, gan, history)`` runs every ``every`` steps and after the last one, in eval mode
    (e.g. a :class:`Snapshots`). A NaN or infinite loss stops training with a message, and so does a loss
    whose size passes ``MAX_LOSS`` = 1e6 (:class:`DivergedLossError`); the first batch is checked against
    the model (shape, the generator's range, NaN, labels).
    """
    _check_kind(kind)
    n_critic = check_count(n_critic, "n_critic")
    if info_weight is not None and not gan.codes:
        raise ValueError("info_weight is for an InfoGAN (a GAN built with codes=K); this GAN has no code")
    info_weight = 1.0 if info_weight is None else info_weight
    G, D = gan.generator, gan.discriminator
    dev = next(G.parameters()).device
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    schedules = [_scheduler(opt, lr_schedule, steps) for opt in (opt_g, opt_d)] if lr_schedule else []
    history = history or History()
    offset = max((s for v in history.records.values() for s, _ in v), default=-1) + 1
    start, step = time.perf_counter(), -1
    gan.train()
    for step, batch, bar in training_steps(data, steps=steps, epochs=epochs, seconds=seconds, desc=desc):
        real, labels = _real_and_labels(to_device(batch, dev), gan.num_classes is not None)
        update_g = step % n_critic == 0
        # One G forward serves both players: detached for D's update, attached for G's.
        # An InfoGAN's generator takes its categorical code where a conditional one takes the label.
        if step == 0:
            _check_first_batch(gan, real, labels)
        code = gan.sample_code(len(real)) if gan.codes else None
        with torch.set_grad_enabled(update_g):
            fake = G(gan.sample_latent(len(real)), labels if code is None else code)
        if step == 0 and real.shape[1:] != fake.shape[1:]:
            raise ValueError(
                f"real batches have shape {tuple(real.shape)} but the generator makes {tuple(fake.shape)}: "
                "reshape the data (MNIST for the DC networks: [B, 1, 28, 28])"
            )
        real_logits, fake_logits = D(real, labels), D(fake.detach(), labels)
        loss_d = discriminator_loss(real_logits, fake_logits, kind)
        logged = {"real_logit": real_logits.mean(), "fake_logit": fake_logits.mean()}
        if gp_weight:
            logged["gp"] = gradient_penalty(D, real, fake, labels)
            loss_d = loss_d + gp_weight * logged["gp"]
        if gan.codes:
            logged["info"] = F.cross_entropy(D.code_logits(fake.detach()), code)
            loss_d = loss_d + info_weight * logged["info"]
        check_finite(loss_d, offset + step, "discriminator loss", lr)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        if update_g:
            D.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
            loss_g = generator_loss(D(fake, labels), kind)
            if gan.codes:
                loss_g = loss_g + info_weight * F.cross_entropy(D.code_logits(fake), code)
            D.requires_grad_(True)
            check_finite(loss_g, offset + step, "generator loss", lr)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            logged["g_loss"] = loss_g
        for schedule in schedules:
            schedule.step()
        history.log(offset + step, d_loss=loss_d, **logged)
        _check_bounded(history, offset + step, ("d_loss", "g_loss") if update_g else ("d_loss",), lr)
        if step % 10 == 0:
            bar.set_postfix(d_loss=f"{loss_d.item():.3g}", g_loss=f"{history['g_loss'][-1]:.3g}")
        if callback is not None and step % every == 0 and step > 0:
            run_callback(callback, offset + step, gan, history)
    return finish(gan, history, callback, offset, step, start)


class Snapshots:
    """A ``train_gan`` callback that records frames for plots and animations: at each call, the
    generator's samples G(z) for a fixed ``z`` (and ``labels``), and, if ``points`` are given, the
    discriminator's logits there (its decision surface on a grid, e.g. ``gencourse.plot.grid2d``).

    ``frames`` is a list of ``{"step", "samples", "logits"}`` dicts of CPU tensors.
    """

    def __init__(self, z: torch.Tensor, labels: torch.Tensor | None = None, points: torch.Tensor | None = None):
        self.z, self.labels, self.points = z, labels, points
        self.frames: list[dict] = []

    @torch.no_grad()
    def __call__(self, step: int, gan: GAN, history: History | None = None) -> None:
        frame = {"step": step, "samples": gan.sample(labels=self.labels, z=self.z).cpu(), "logits": None}
        if self.points is not None:
            dev = next(gan.discriminator.parameters()).device
            frame["logits"] = gan.discriminator(self.points.to(dev)).cpu()
        self.frames.append(frame)
