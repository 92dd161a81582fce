import math

import torch

from gencourse.downstream import auroc, label_spreading, linear_probe, semi_supervised_accuracy
from gencourse.vae import VAE


def test_linear_probe_learns_a_separable_problem_and_fails_on_noise():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 5, generator=g) * 4
    y = torch.arange(300) % 3
    x = centres[y] + torch.randn(300, 5, generator=g)
    assert linear_probe(x[:60], y[:60], x[60:], y[60:]) > 0.95
    noise = torch.randn(300, 5, generator=g)
    assert linear_probe(noise[:60], y[:60], noise[60:], y[60:]) < 0.55


def test_auroc():
    assert auroc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    assert auroc(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])) == 0.5
    assert auroc(torch.ones(4), torch.ones(7)) == 0.5


def test_semi_supervised_accuracy_compares_pixels_and_latents_per_draw():
    torch.manual_seed(0)
    model = VAE.mlp(latent_dim=4, hidden=(32,))
    acc = semi_supervised_accuracy(model, per_class=10, draws=2, n_unlabelled=2000, n_test=500)
    assert set(acc) == {"raw pixels", "VAE latents"}
    assert acc["raw pixels"].shape == acc["VAE latents"].shape == (2,)
    assert (acc["raw pixels"] > 0.5).all()  # 100 labelled pixels already beat chance (0.1) by far
    again = semi_supervised_accuracy(model, per_class=10, draws=2, n_unlabelled=2000, n_test=500)
    assert torch.equal(acc["raw pixels"], again["raw pixels"])  # the labelled sets are seeded


def test_label_spreading_follows_the_shape_of_the_unlabelled_data():
    g = torch.Generator().manual_seed(0)
    angle = torch.rand(600, generator=g) * 2 * math.pi
    radius = torch.where(torch.arange(600) % 2 == 0, 1.0, 3.0)
    points = radius[:, None] * torch.stack([angle.cos(), angle.sin()], 1) + 0.05 * torch.randn(600, 2, generator=g)
    labels = (radius > 2).long()  # two concentric circles: no line separates them
    train, test = torch.arange(2), torch.arange(2, 600)  # one labelled point per circle
    assert label_spreading(points[train], labels[train], points[test], labels[test]) > 0.99
    assert linear_probe(points[train], labels[train], points[test], labels[test]) < 0.8


class PixelMeans(torch.nn.Module):
    """Not a VAE: a model whose code is the mean of each 7x7 block of pixels, [B, 16]."""

    def encode(self, x):
        return (torch.nn.functional.avg_pool2d(x, 7).flatten(1),)


def test_semi_supervised_accuracy_takes_any_model_with_encode():
    acc = semi_supervised_accuracy(PixelMeans(), per_class=10, draws=1, n_unlabelled=2000, n_test=500)
    assert acc["VAE latents"].shape == (1,)
    assert 0.3 < acc["VAE latents"].item() < acc["raw pixels"].item()  # a coarse code, but far above chance
