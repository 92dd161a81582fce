"""What a generative model's latent code is good for, measured downstream of it: semi-supervised
classification from a few labels, and anomaly detection by a likelihood score.

Semi-supervised MNIST (Kingma et al., 2014, "M1"): encode every image with a model trained without labels,
then fit the same classifier on few labelled examples, once on the raw pixels and once on the codes; the
representation that makes the labels easier to learn from wins. Two classifiers: a linear probe, and label
spreading, which also uses the unlabelled points. :func:`semi_supervised_accuracy` takes any model with
``encode(x) -> (mu, ...)`` (a :class:`gencourse.vae.VAE`, for one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gencourse.data import mnist


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    weight_decay: float = 1e-2,
) -> float:
    """Test accuracy of a multinomial logistic regression trained on ``(train_x [N, D], train_y [N])``,
    the classifier of the semi-supervised comparison (Kingma et al., 2014, "M1"): the same probe on raw
    pixels and on a model's latent codes says which representation makes the labels easier to learn from
    few examples. Full-batch L-BFGS on the cross-entropy + ``weight_decay`` |W|^2 / 2, to convergence."""
    train_x, test_x = train_x.flatten(1).float(), test_x.flatten(1).float()
    classes = int(max(train_y.max(), test_y.max())) + 1
    linear = nn.Linear(train_x.shape[1], classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(train_x), train_y) + 0.5 * weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return (linear(test_x).argmax(1) == test_y).float().mean().item()


def label_spreading(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    k: int = 10,
    alpha: float = 0.99,
    iters: int = 30,
) -> float:
    """Test accuracy of label spreading (Zhou et al., 2004), a classifier that also uses the unlabelled
    test points: labels flow along a k-nearest-neighbour graph over all points,
    F <- alpha D^-1/2 W D^-1/2 F + (1 - alpha) Y, with W_ij = exp(-d_ij^2 / s^2) on the graph's edges."""
    points = torch.cat([train_x.flatten(1), test_x.flatten(1)]).float()
    n, rows = len(points), []
    for i in range(0, n, 1000):  # the k nearest neighbours, 1000 rows of distances at a time
        d = torch.cdist(points[i : i + 1000], points)
        d[torch.arange(len(d)), torch.arange(i, i + len(d))] = float("inf")
        rows.append(d.topk(k, largest=False))
    dist, idx = torch.cat([r.values for r in rows]), torch.cat([r.indices for r in rows])
    edges = torch.stack([torch.arange(n).repeat_interleave(k), idx.flatten()])
    weights = torch.exp(-(dist / dist[:, -1].mean()).pow(2)).flatten()
    w = torch.sparse_coo_tensor(edges, weights, (n, n), check_invariants=False)
    w = (w + w.t()).coalesce()  # symmetric
    d_inv_sqrt = torch.sparse.sum(w, 1).to_dense().rsqrt()[:, None]
    y0 = torch.zeros(n, int(train_y.max()) + 1)
    y0[torch.arange(len(train_y)), train_y] = 1
    f = y0
    for _ in range(iters):
        f = alpha * d_inv_sqrt * torch.sparse.mm(w, d_inv_sqrt * f) + (1 - alpha) * y0
    return (f[len(train_y) :].argmax(1) == test_y).float().mean().item()


def semi_supervised_accuracy(
    model: nn.Module,
    *,
    per_class: int = 10,
    draws: int = 5,
    n_unlabelled: int | None = None,
    n_test: int | None = None,
    classifier: str = "linear",
) -> dict[str, torch.Tensor]:
    """Semi-supervised MNIST with ``per_class`` labels per digit (Kingma et al., 2014, "M1"): the test
    accuracy of the same ``classifier`` on raw pixels and on the model's codes mu(x) = ``model.encode(x)[0]``
    (a VAE's posterior means), for ``draws`` random labelled sets (seeds 0, 1, ...). ``classifier``:
    ``linear`` (:func:`linear_probe`) or ``label_spreading`` (:func:`label_spreading`, which also uses the
    unlabelled test digits). Images are grey levels in [0, 1] (for a VAE trained on binarized MNIST, the
    mean of its binarized images). Returns ``{"raw pixels": [draws], "VAE latents": [draws]}``."""
    classify = {"linear": linear_probe, "label_spreading": label_spreading}.get(classifier)
    if classify is None:
        raise ValueError(f"unknown classifier {classifier!r}; choose 'linear' or 'label_spreading'")
    train_x, train_y = mnist(train=True).tensors("unit", n_unlabelled)
    test_x, test_y = mnist(train=False).tensors("unit", n_test)
    weight = next(model.parameters(), None)  # the images are on the CPU, the model may be on a GPU
    dev = torch.device("cpu") if weight is None else weight.device
    with torch.no_grad():
        train_z, test_z = (
            torch.cat([model.encode(x[i : i + 5000].to(dev))[0].cpu() for i in range(0, len(x), 5000)])
            for x in (train_x, test_x)
        )
    accuracy = {"raw pixels": [], "VAE latents": []}
    for seed in range(draws):
        g = torch.Generator().manual_seed(seed)
        labelled = torch.cat(
            [
                idx[torch.randperm(len(idx), generator=g)[:per_class]]
                for idx in (torch.nonzero(train_y == c)[:, 0] for c in range(10))
            ]
        )
        accuracy["raw pixels"].append(classify(train_x[labelled], train_y[labelled], test_x, test_y))
        accuracy["VAE latents"].append(classify(train_z[labelled], train_y[labelled], test_z, test_y))
    return {name: torch.tensor(values) for name, values in accuracy.items()}


def auroc(normal_scores: torch.Tensor, anomaly_scores: torch.Tensor) -> float:
    """Area under the ROC curve = P(score of a normal input > score of an anomaly) (ties count 1/2):
    1 separates perfectly, 0.5 is chance. For anomaly detection the score is the ELBO."""
    a, b = normal_scores.flatten()[:, None], anomaly_scores.flatten()[None, :]
    return ((a > b).float().mean() + 0.5 * (a == b).float().mean()).item()
