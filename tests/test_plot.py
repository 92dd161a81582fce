import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from gencourse import plot
from gencourse.train import History


def teardown_function():
    plt.close("all")


def test_make_grid_places_each_image():
    images = torch.zeros(5, 1, 4, 4)
    images[3] = 1.0
    grid = plot.make_grid(images, nrow=3, padding=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 1)
    assert grid[6:10, 1:5].min() == 1.0 and grid[1:5, 1:5].max() == 0.0  # image 3 is row 1, column 0


def test_image_grid_detects_the_value_range():
    ax = plot.image_grid(torch.full((4, 1, 8, 8), -1.0), title="all black")
    assert ax.images[0].get_array().max() <= 0.0 + 1.0 and ax.get_title() == "all black"
    shown = ax.images[0].get_array()
    assert np.isclose(shown[3, 3], 0.0)  # -1 maps to black
    with pytest.raises(ValueError, match="B, C, H, W"):
        plot.make_grid(torch.zeros(2, 2, 2, 2, 2))


def test_scatter_and_density_label_their_axes():
    ax = plot.scatter2d(torch.randn(100, 2), title="points")
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == "points"
    ax = plot.density2d(lambda x: -0.5 * (x**2).sum(1), n=50)
    assert ax.images[0].get_array().shape == (50, 50)
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        plot.scatter2d(torch.randn(10, 3))


def test_grid2d_cell_area_integrates_a_density():
    pts, _, area = plot.grid2d(lim=6, n=300)
    density = torch.exp(-0.5 * (pts**2).sum(1)) / (2 * torch.pi)
    assert float(density.sum() * area) == pytest.approx(1.0, abs=1e-3)


def test_training_curves_plot_every_key():
    history = History()
    for step in range(20):
        history.log(step, loss=1 / (step + 1), kl=0.1)
    ax = history.plot(smooth=0.5)
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"loss", "kl"}
    assert ax.get_xlabel() == "training step"


def test_animation_falls_back_to_a_static_strip_headless():
    frames = [torch.randn(50, 2) * (i + 1) for i in range(9)]
    fig = plot.animate(frames, lambda ax, f: plot.scatter2d(f, ax=ax), strip=4)
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == ["frame 0", "frame 3", "frame 5", "frame 8"]
    html = plot.animate(frames[:2], lambda ax, f: plot.scatter2d(f, ax=ax), force_static=False)
    assert "<script" in html.data
    assert "font-awesome" not in html.data and plot.PLAYER_ICONS in html.data  # buttons work offline
