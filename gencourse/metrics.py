"""How good is a generative model? Divergences, sample-quality scores and the MNIST judge.

- :func:`kl_divergence` between discrete distributions, :func:`bits_per_dim` for likelihood models.
- :func:`frechet_distance` / :func:`fid`, :func:`inception_score` and :func:`precision_recall`: the
  standard sample-based scores, computed on features of a classifier.
- The **judge**: Inception-v3 features are meaningless for 28x28 digits (and its weights cannot be
  downloaded offline), so the course scores MNIST samples with its own small classifier, whose weights
  are committed in ``gencourse/weights/judge.pt``. Every score anywhere in the course is computed in
  the same feature space, so numbers are comparable between notebooks, runs and machines, but *not*
  with published (Inception) FIDs or Inception Scores.
- :func:`evaluate_samples` gives all the scores of a batch of MNIST-like samples in one call.
- :func:`mode_metrics`: modes covered and share of high-quality samples on the 2D Gaussian mixtures
  (ring8, grid25), the standard measure of mode collapse.

The judge's weights are reproduced by ``python -m gencourse.metrics train-judge`` (seeded, a few
minutes on a laptop CPU, MNIST train split).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gencourse.checks import NAN_CAUSES, check_values
from gencourse.data import Modes

JUDGE_PATH = Path(__file__).resolve().parent / "weights" / "judge.pt"
CONFIDENT = 0.9  # a prediction with max probability >= this counts as "confident"
PRESENT = 0.01  # a class is present when >= this fraction of the samples are confidently in it

# ---------------------------------------------------------------------------------------------
# Divergences and likelihood units
# ---------------------------------------------------------------------------------------------


def kl_divergence(p, q) -> torch.Tensor:
    """KL(p || q) = sum_i p_i log(p_i / q_i) over the last dimension, for discrete distributions.

    ``p`` and ``q`` have the same shape ``[..., K]`` (non-negative, each row summing to 1); the result
    has shape ``[...]`` (a scalar for two vectors). Terms with p_i = 0 contribute 0; p_i > 0 where
    q_i = 0 gives +inf, since q then cannot explain an outcome that p produces.
    """
    p, q = torch.as_tensor(p), torch.as_tensor(q)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    p, q = p.to(torch.promote_types(p.dtype, torch.float32)), q.to(torch.promote_types(q.dtype, torch.float32))
    for name, d in (("p", p), ("q", q)):
        if (d < 0).any() or not torch.isfinite(d).all():
            raise ValueError(f"{name} must hold finite non-negative probabilities")
        if not torch.allclose(d.sum(-1), torch.ones((), dtype=d.dtype), atol=1e-4):
            raise ValueError(
                f"{name} must sum to 1 over its last dimension (got sums like "
                f"{d.sum(-1).flatten()[0].item():.4g}); normalise it with {name} / {name}.sum(-1, keepdim=True)"
            )
    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros((), dtype=p.dtype))
    return terms.sum(-1)


def bits_per_dim(nll_nats, num_dims: int, *, continuous: bool = False) -> float:
    """Negative log-likelihood in bits per dimension: mean(nll) / (num_dims * ln 2).

    ``nll_nats`` is -log P(x) of discrete data in nats per example (a float or a tensor ``[B]``, averaged),
    ``num_dims`` the number of dimensions of one example (784 for MNIST). For 8-bit pixels modelled by a
    density on dequantized data in [0, 1), use :func:`gencourse.flows.dequantized_bits_per_dim`, which takes
    that log-density and adds the D log 256 nats of the pixels' cells.

    A probability is at most 1, so a discrete NLL is >= 0: an example's NLL below -64 log 2 nats is refused
    (the margin admits estimates: an unbiased estimate of P(x), such as the importance-weighted one behind
    an IWAE bound, exceeds 2^64 P(x) with probability <= 2^-64 by Markov's inequality). It means a
    log-likelihood was passed where its negative is meant, or -log p(x) of a density on dequantized data
    without the D log 256 (below 8 bits/dim that density exceeds 1, so -log p(x) < 0). ``continuous=True``
    is for the NLL of a density on continuous data (e.g. 2D points), which may be negative: nothing is
    refused then. An NLL of +inf (probability 0) gives inf bits; NaN or an empty ``nll_nats`` is refused.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be a positive integer, got {num_dims}")
    nll = torch.as_tensor(nll_nats).detach().cpu().double()
    if not nll.numel():
        raise ValueError("nll_nats is empty: pass the NLL of at least one example")
    if nll.isnan().any():
        raise ValueError(f"nll_nats holds NaN values. Likely causes: the model's weights became NaN, or {NAN_CAUSES}")
    if not continuous and nll.min() < -64 * math.log(2):
        raise ValueError(
            f"bits_per_dim got a negative log-likelihood of {nll.min().item():.4g} nats, impossible for discrete "
            "data (a probability is at most 1). Likely: a log-likelihood passed where its negative is meant "
            "(negate it); -log p(x) of a density on dequantized data in [0, 1)^D, which lacks the D log 256 "
            "of the pixels' cells (gencourse.flows.dequantized_bits_per_dim(log_density, num_dims) takes the "
            "log-density and adds it); or the NLL of a density on continuous data, which may be negative: "
            "pass continuous=True."
        )
    return float(nll.mean()) / (num_dims * math.log(2))


# ---------------------------------------------------------------------------------------------
# Scores on features: Frechet distance, Inception Score, precision / recall
# ---------------------------------------------------------------------------------------------


def _float64(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu().double()
    _check_finite(x, name)
    return x


def _check_finite(x: torch.Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values. Likely causes: {NAN_CAUSES}")


def _sqrtm_psd(s: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix, via its eigenvectors."""
    eigvals, eigvecs = torch.linalg.eigh((s + s.T) / 2)
    return (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """The Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2):

        d^2 = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))

    ``mu`` are ``[D]``, ``sigma`` ``[D, D]`` covariances. Computed in float64; the trace of the matrix
    square root uses tr((s1 s2)^(1/2)) = tr((s1^(1/2) s2 s1^(1/2))^(1/2)), whose argument is symmetric
    PSD, so its square root comes from a stable eigendecomposition (no scipy needed).
    """
    mu1, mu2 = _float64(mu1, "mu1"), _float64(mu2, "mu2")
    sigma1, sigma2 = _float64(sigma1, "sigma1"), _float64(sigma2, "sigma2")
    d = mu1.shape[-1] if mu1.dim() == 1 else -1
    if mu1.dim() != 1 or mu2.shape != mu1.shape or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"expected mu1, mu2 of shape [D] and sigma1, sigma2 of shape [D, D]; got "
            f"{tuple(mu1.shape)}, {tuple(sigma1.shape)}, {tuple(mu2.shape)}, {tuple(sigma2.shape)}"
        )
    root1 = _sqrtm_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    tr_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * tr_sqrt
    return max(float(value), 0.0)


def _mean_cov(features, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    f = _float64(features, name)
    if f.dim() != 2 or len(f) < 2:
        raise ValueError(f"{name} must be [N, D] with N >= 2, got shape {tuple(f.shape)}")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def fid(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted (mean, unbiased covariance) to two feature sets
    ``[N, D]`` and ``[M, D]``. With the judge's features this is the course's FID; it is biased
    upwards for small N, so compare scores computed on the same number of samples."""
    mu_a, sigma_a = _mean_cov(features_a, "features_a")
    mu_b, sigma_b = _mean_cov(features_b, "features_b")
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"the two feature sets have different dimensions: {mu_a.shape[0]} and {mu_b.shape[0]}")
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)


def inception_score(probs) -> float:
    """IS = exp( E_x KL(p(y|x) || p(y)) ), with p(y) = E_x p(y|x) the marginal class distribution.

    ``probs`` is ``[N, classes]``, each row a predicted distribution p(y|x). It ranges from 1 (every
    prediction the same, or all uniform) to the number of classes (confident predictions spread evenly
    over all classes): high when each sample is clearly one thing *and* the samples cover all classes.
    """
    p = _float64(probs, "probs")
    if p.dim() == 2 and not len(p):
        raise ValueError("probs is empty: the score needs at least one prediction [N >= 1, classes]")
    if p.dim() != 2 or (p < 0).any() or not torch.allclose(p.sum(1), torch.ones((), dtype=p.dtype), atol=1e-3):
        raise ValueError("probs must be [N, classes] with non-negative rows summing to 1 (use softmax(logits, 1))")
    marginal = p.mean(0, keepdim=True).expand_as(p)
    return math.exp(float(kl_divergence(p, marginal).mean()))


def _kth_neighbour_radii(features: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (the row itself, at distance 0, is skipped)."""
    radii = []
    for start in range(0, len(features), chunk):
        d = torch.cdist(features[start : start + chunk], features)
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _inside_manifold(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """For each query, whether it falls in some ball B(support_j, radii_j)."""
    inside = []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk], support)
        inside.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(inside)


def precision_recall(real_features, fake_features, k: int = 3, chunk: int = 1000) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019), the k-NN manifold estimate.

    Each set's manifold is the union of balls around its points, each ball reaching the point's k-th
    nearest neighbour within the set. precision = fraction of fake samples inside the real manifold
    (are samples realistic?); recall = fraction of real samples inside the fake manifold (is all of the
    data covered?). Features ``[N, D]`` and ``[M, D]``; use sets of the same size, since the radii
    grow as a set gets sparser. Distances are computed ``chunk`` rows at a time, so 10000 x 10000 fits
    in memory.
    """
    real = torch.as_tensor(real_features).detach().float().cpu()
    fake = torch.as_tensor(fake_features).detach().float().cpu()
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"features must be [N, D] and [M, D] with the same D, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    _check_finite(real, "real_features")
    _check_finite(fake, "fake_features")
    if not 1 <= k < min(len(real), len(fake)):
        raise ValueError(f"k={k} needs more than k samples in each set (got {len(real)} real, {len(fake)} fake)")
    real_radii = _kth_neighbour_radii(real, k, chunk)
    fake_radii = _kth_neighbour_radii(fake, k, chunk)
    precision = _inside_manifold(fake, real, real_radii, chunk).float().mean().item()
    recall = _inside_manifold(real, fake, fake_radii, chunk).float().mean().item()
    return precision, recall


# ---------------------------------------------------------------------------------------------
# The MNIST judge
# ---------------------------------------------------------------------------------------------


def check_mnist_images(x, name: str = "images") -> torch.Tensor:
    """Return ``x`` as float32 ``[N, 1, 28, 28]`` on the CPU, or raise an error that says how to convert it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [N, 1, 28, 28], got {type(x).__name__}")
    if x.dtype == torch.uint8:
        raise ValueError(f"{name} are uint8 pixels in [0, 255]; convert them with x.float() / 255")
    if x.dim() == 3 and x.shape[1:] == (28, 28):
        raise ValueError(f"{name} have shape {tuple(x.shape)}; add the channel dimension with x.unsqueeze(1)")
    if x.dim() == 2 and x.shape[1] == 784:
        raise ValueError(f"{name} are flat vectors {tuple(x.shape)}; reshape them with x.view(-1, 1, 28, 28)")
    if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"{name} must be [N, 1, 28, 28] (MNIST-sized grey images), got shape {tuple(x.shape)}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty")
    x = x.detach().float().cpu()
    _check_finite(x, name)
    lo, hi = x.min().item(), x.max().item()
    tol = 1e-3
    if lo >= -1 - tol and hi <= 1 + tol and lo < -tol:
        raise ValueError(
            f"{name} lie in [{lo:.3g}, {hi:.3g}]: this looks like the [-1, 1] range of a tanh output; "
            "the judge wants [0, 1]: convert with (x + 1) / 2 (gencourse.data.from_symmetric)"
        )
    if lo < -tol or hi > 1 + tol:
        hint = "x / 255" if hi > 2 and lo >= 0 else "x.clamp(0, 1) if they are only slightly outside"
        raise ValueError(
            f"{name} lie in [{lo:.3g}, {hi:.3g}] but the judge wants values in [0, 1]; convert them first (e.g. {hint})"
        )
    return x.clamp(0, 1)


class Judge(nn.Module):
    """A small CNN MNIST classifier (about 190k parameters, >= 99% test accuracy) whose penultimate
    layer is the feature space of the course's FID and precision/recall.

    ``[N, 1, 28, 28]`` in [0, 1] -> three stride-2 conv + batch-norm + ReLU stages (28 -> 14 -> 7 -> 4;
    strided convolutions rather than pooling keep it fast on a CPU) -> a 128-d feature layer -> 10 logits.
    """

    feature_dim = 128

    def __init__(self):
        super().__init__()

        def stage(c_in, c_out, kernel):
            conv = nn.Conv2d(c_in, c_out, kernel, stride=2, padding=kernel // 2, bias=False)
            return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU())

        self.body = nn.Sequential(
            stage(1, 32, 5),
            stage(32, 64, 3),
            stage(64, 64, 3),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, self.feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 10]`` for images ``[N, 1, 28, 28]`` in [0, 1] (no range check: for training)."""
        return self.head(self.body(x - 0.5))

    @torch.no_grad()
    def _batched(self, x: torch.Tensor, fn, batch_size: int) -> torch.Tensor:
        x = check_mnist_images(x)
        return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

    def features(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Penultimate-layer features ``[N, 128]`` of images ``[N, 1, 28, 28]`` in [0, 1]."""
        return self._batched(x, lambda b: self.body(b - 0.5), batch_size)

    def logits(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Class logits ``[N, 10]`` of images ``[N, 1, 28, 28]`` in [0, 1]."""
        return self._batched(x, self.forward, batch_size)

    def probs(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Class probabilities p(y|x) ``[N, 10]`` of images ``[N, 1, 28, 28]`` in [0, 1]."""
        return self.logits(x, batch_size).softmax(1)

    def predict(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """The predicted digit ``[N]`` (int64)."""
        return self.logits(x, batch_size).argmax(1)


_JUDGE: Judge | None = None


def load_judge(path: Path = JUDGE_PATH) -> Judge:
    """A :class:`Judge` with the weights in ``path`` (float16 on disk, float32 in memory), eval mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"the judge's weights are missing ({path}); they are part of the package. Restore the file from "
            "the repository or recreate it with `python -m gencourse.metrics train-judge`"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = Judge()
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (RuntimeError, AttributeError) as exc:
        raise RuntimeError(
            f"{path} does not hold the Judge network's weights ({str(exc).splitlines()[0]}); "
            "recreate it with `python -m gencourse.metrics train-judge`"
        ) from None
    return model.eval().requires_grad_(False)


def judge() -> Judge:
    """The course's judge, loaded once per process from ``gencourse/weights/judge.pt`` (eval mode, CPU,
    float32). It always runs on the CPU so that its scores are the same on every machine."""
    global _JUDGE
    if _JUDGE is None:
        _JUDGE = load_judge()
    return _JUDGE


def _shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (zero padding): the judge then also
    recognises slightly off-centre digits, as generated samples often are."""
    n = len(x)
    padded = F.pad(x, [max_shift] * 4)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator)
    rows = (dy[:, None] + torch.arange(28)[None, :])[:, None, :, None].expand(n, 1, 28, 28 + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(28)[None, :])[:, None, None, :].expand(n, 1, 28, 28)
    return out.gather(3, cols)


def accuracy(model: Judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` ([N, 1, 28, 28] in [0, 1]) that ``model`` classifies as ``labels``."""
    return (model.predict(images) == labels).float().mean().item()


def train_judge(epochs: int = 4, seed: int = 0, batch_size: int = 128, lr: float = 3e-3) -> tuple[Judge, float]:
    """Train a :class:`Judge` on the MNIST train split (Adam, one-cycle schedule, random shifts of
    up to 2 pixels) and return it with its MNIST test accuracy. Seeded: the same seed and machine
    give the same weights."""
    from gencourse.config import seed_everything
    from gencourse.data import TensorLoader, mnist
    from gencourse.train import fit

    g = seed_everything(seed)
    x, y = mnist(train=True).tensors("unit")
    loader = TensorLoader(x, y, batch_size=batch_size, generator=g)
    model = Judge()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader))

    def loss_fn(model, batch):
        images, labels = batch
        return F.cross_entropy(model(_shift(images, 2, g)), labels)

    fit(model, loss_fn, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler, desc="judge")
    x_test, y_test = mnist(train=False).tensors("unit")
    return model.eval(), accuracy(model, x_test, y_test)


def save_judge(model: Judge, path: Path = JUDGE_PATH) -> None:
    """Save the judge's state in float16 (about 200 kB; the accuracy is unchanged)."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


# ---------------------------------------------------------------------------------------------
# All the scores of a batch of samples
# ---------------------------------------------------------------------------------------------

_REFERENCE: torch.Tensor | None = None


def reference_features() -> torch.Tensor:
    """The judge's features ``[10000, 128]`` of the MNIST test set, the reference of every FID and
    precision/recall in the course. Computed once per process and cached on disk under
    ``gencourse.config.cache_dir()``, keyed by a hash of the judge's weights and of the test images."""
    global _REFERENCE
    if _REFERENCE is not None:
        return _REFERENCE
    from gencourse.config import cache_dir
    from gencourse.data import mnist

    x, _ = mnist(train=False).tensors("uint8")
    key = hashlib.sha256(JUDGE_PATH.read_bytes() + x.numpy().tobytes()).hexdigest()[:12]
    path = cache_dir() / f"judge-features-mnist-test-{key}.pt"
    try:
        features = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(features, torch.Tensor) or features.shape != (len(x), Judge.feature_dim):
            raise ValueError(f"unexpected content in {path}")
    except Exception:  # missing or corrupt: recompute (a few seconds), never use a bad file
        features = judge().features(x.float() / 255)
        _save_reference(features, path)
    _REFERENCE = features
    return features


def _save_reference(features: torch.Tensor, path: Path) -> None:
    """Cache the reference features on disk; they are only a speed-up, so a cache that cannot be written is
    reported and the features are used from memory."""
    import warnings

    from gencourse.train import CacheWarning, save_atomic, writable_folder

    problem = writable_folder(path.parent)
    try:
        if problem is None:
            save_atomic(features, path)  # a unique temporary file, then an atomic rename
    except (OSError, RuntimeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        warnings.warn(
            f"cannot cache the judge's reference features in {path.parent} ({problem}); they are recomputed "
            "in every new process. Point GENCOURSE_CACHE at a writable folder to keep them.",
            CacheWarning,
            stacklevel=3,
        )


def evaluate_samples(images: torch.Tensor, n_reference: int = 10000, k: int = 3, seed: int = 0) -> dict:
    """Score MNIST-like samples ``[N, 1, 28, 28]`` in [0, 1] with the judge. Returns a dict:

    - ``fid``: Frechet distance between the judge features of the samples and of the first
      ``n_reference`` MNIST test images (lower is better; ~0 for a second set of real digits, up to
      the small-N bias: compare scores on the same N, ideally >= 1000).
    - ``inception_score``: exp E KL(p(y|x) || p(y)) of the judge's predictions, between 1 and 10
      (high = each sample clearly a digit *and* all digits present).
    - ``precision``, ``recall``: :func:`precision_recall` with ``k`` neighbours against a random subset
      (seeded by ``seed``) of the reference of the same size as the samples, since the k-NN radii
      depend on the set size. Precision: fraction of samples that look real; recall: fraction of the
      real digits' variety the samples cover.
    - ``confident``: fraction of samples whose top class has probability >= 0.9.
    - ``class_counts``: a list of 10 ints, how many samples the judge assigns (argmax) to each digit.
    - ``classes_present``: how many digits receive at least 1% of the samples as *confident*
      predictions (top class, probability >= 0.9): 10 for good coverage, 1 for a model that
      collapsed onto one digit.
    - ``n``: the number of samples.

    These scores live in the judge's feature space: they are comparable across the course's notebooks,
    runs and machines, but not with published FIDs or Inception Scores (computed with Inception-v3).
    """
    x = check_mnist_images(images)
    n = len(x)
    if n <= max(k, 1):
        raise ValueError(
            f"evaluate_samples needs more than {max(k, 1)} samples, got {n} (use >= 1000 for stable scores)"
        )
    if not 1 < n_reference <= 10000:
        raise ValueError(f"n_reference must be between 2 and 10000 (the MNIST test set), got {n_reference}")
    model = judge()
    features = model.features(x)
    with torch.no_grad():
        probs = model.head(features).softmax(1)
    reference = reference_features()[:n_reference]
    g = torch.Generator().manual_seed(seed)
    m = min(n, len(reference))
    precision, recall = precision_recall(
        reference[torch.randperm(len(reference), generator=g)[:m]], features[torch.randperm(n, generator=g)[:m]], k=k
    )
    top, predicted = probs.max(1)
    confident = top >= CONFIDENT
    confident_counts = torch.bincount(predicted[confident], minlength=10)
    return {
        "fid": fid(features, reference),
        "inception_score": inception_score(probs),
        "precision": precision,
        "recall": recall,
        "confident": confident.float().mean().item(),
        "class_counts": torch.bincount(predicted, minlength=10).tolist(),
        "classes_present": int((confident_counts >= PRESENT * n).sum()),
        "n": n,
    }


# ---------------------------------------------------------------------------------------------
# Mode collapse on 2D mixtures
# ---------------------------------------------------------------------------------------------


def mode_metrics(samples: torch.Tensor, modes: Modes, n_std: float = 3.0, min_count: int = 1) -> dict:
    """Mode coverage and sample quality of 2D samples from a mixture with known modes, following the
    protocol of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018):

    - draw 2500 samples from the generator (the papers' number; pass them as ``samples`` ``[N, 2]``);
    - a sample is *high quality* if its Euclidean distance to the nearest mode centre is at most
      ``n_std`` (3) standard deviations of the mixture components (``modes.std``);
    - each high-quality sample is assigned to its nearest mode; a mode is *covered* if it received at
      least ``min_count`` high-quality samples (1, as in the papers: a mode is lost only if no sample
      lands within 3 std of it).

    Returns ``modes`` (covered, int), ``num_modes``, ``high_quality`` (fraction in [0, 1]), ``counts``
    (high-quality samples per mode) and ``kl_uniform``: KL(mode histogram of the high-quality samples
    || uniform), 0 when every mode gets the same share (it reveals half-collapsed modes that still count
    as covered). Real data scores ~98.9% high quality (a 2D Gaussian has 1 - exp(-9/2) of its mass within
    3 std). ``kl_uniform`` is NaN when no sample is high quality (there is no histogram to compare).
    Empty samples, or samples with NaN (a diverged generator), are refused with an error.
    """
    check_values(samples, "samples")
    if samples.dim() != 2 or samples.shape[1] != 2:
        raise ValueError(f"samples must be [N, 2], got {tuple(samples.shape)}")
    dist, nearest = torch.cdist(samples.float().cpu(), modes.centres.float()).min(dim=1)
    good = dist <= n_std * modes.std
    counts = torch.bincount(nearest[good], minlength=len(modes.centres))
    uniform = torch.full((len(counts),), 1 / len(counts))
    kl = kl_divergence(counts / counts.sum(), uniform).item() if counts.sum() > 0 else float("nan")
    return {
        "modes": int((counts >= min_count).sum()),
        "num_modes": len(counts),
        "high_quality": good.float().mean().item(),
        "counts": counts.tolist(),
        "kl_uniform": kl,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gencourse.metrics", description="The course's MNIST judge.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train-judge", help="train the judge on MNIST and save its weights")
    train.add_argument("--epochs", type=int, default=4)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=JUDGE_PATH, help=f"where to save the weights (default {JUDGE_PATH})")
    commands.add_parser("accuracy", help="the committed judge's accuracy on the MNIST test set")
    args = parser.parse_args(argv)
    from gencourse.data import mnist

    if args.command == "accuracy":
        x, y = mnist(train=False).tensors("unit")
        print(f"judge test accuracy: {accuracy(judge(), x, y):.4f} ({JUDGE_PATH})")
        return
    start = time.perf_counter()
    model, acc = train_judge(epochs=args.epochs, seed=args.seed)
    print(f"trained in {time.perf_counter() - start:.0f} s; test accuracy {acc:.4f} (float32)")
    if acc < 0.99:
        raise SystemExit(f"test accuracy {acc:.4f} is below 0.99: not saving; train longer (--epochs)")
    save_judge(model, args.out)
    x, y = mnist(train=False).tensors("unit")
    print(
        f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} kB); "
        f"test accuracy as saved (float16): {accuracy(load_judge(args.out), x, y):.4f}"
    )


if __name__ == "__main__":
    main()
