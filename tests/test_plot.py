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


# ---- sliders (plot.explore) ----------------------------------------------------------------------


def _recording_draw(calls):
    def draw(ax, t):
        calls.append(t)
        ax.plot([0, 1], [0, t])

    return draw


def test_explore_falls_back_to_a_row_of_panels_without_ipywidgets(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_ipywidgets(name, *args, **kwargs):
        if name.split(".")[0] == "ipywidgets":
            raise ImportError("No module named 'ipywidgets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ipywidgets)
    monkeypatch.setattr(plot, "widgets_wanted", lambda: True)  # as in a live notebook, lecture profile
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    calls = []
    assert plot.explore(_recording_draw(calls), [0, 10, 20, 30, 40, 50, 60, 70, 80], label="t", panels=4) is None
    assert calls == [0, 30, 50, 80]  # evenly spaced, first and last included
    (fig,) = shown
    assert [ax.get_title() for ax in fig.axes] == ["t = 0", "t = 30", "t = 50", "t = 80"]
    assert "pip install" in capsys.readouterr().out  # a live notebook says how to get the slider


def test_explore_is_static_headless_and_in_the_smoke_profile(monkeypatch):
    monkeypatch.setattr(plot, "_in_notebook", lambda: True)
    monkeypatch.setenv("GENCOURSE_PROFILE", "lecture")
    assert not plot.widgets_wanted()  # a kernel started by pytest (nbval) inherits PYTEST_CURRENT_TEST
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert plot.widgets_wanted()  # a live notebook
    monkeypatch.setenv("GENCOURSE_WIDGETS", "0")  # what python -m gencourse.export sets for its runs
    assert not plot.widgets_wanted()
    monkeypatch.delenv("GENCOURSE_WIDGETS")
    monkeypatch.setenv("GENCOURSE_PROFILE", "smoke")
    assert not plot.widgets_wanted()
    monkeypatch.setattr(plot, "_in_notebook", lambda: False)  # nbval, nbconvert, a script
    monkeypatch.setenv("GENCOURSE_PROFILE", "lecture")
    assert not plot.widgets_wanted()


def test_explore_panels_take_several_parameters_and_explicit_settings():
    seen = []

    def draw(ax, z1, z2):
        seen.append((z1, z2))
        ax.set_title(f"({z1:.1f}, {z2:.1f})")

    zs = np.linspace(-2, 2, 5)
    fig = plot.explore_panels(draw, {"z1": zs, "z2": zs[::-1]}, panels=3)
    assert seen == [(-2, 2), (0, 0), (2, -2)]
    assert [ax.get_title() for ax in fig.axes] == ["(-2.0, 2.0)", "(0.0, 0.0)", "(2.0, -2.0)"]  # draw's own titles
    fig = plot.explore_panels(lambda ax, T: None, [0.5, 1.0, 2.0], label="T", at=[1.0, 2.0], fmt="{:.1f}")
    assert [ax.get_title() for ax in fig.axes] == ["T = 1.0", "T = 2.0"]
    with pytest.raises(ValueError, match="at least one value"):
        plot.explore_panels(lambda ax, t: None, [], label="t")


def test_explore_widget_has_a_slider_whose_update_draws_every_value(monkeypatch):
    widgets = pytest.importorskip("ipywidgets", reason="the widgets extra is not installed")
    calls = []
    ts = [0, 250, 500, 999]
    box = plot.explore_widget(_recording_draw(calls), ts, label="t")
    slider, out = box.children
    assert isinstance(slider, widgets.SelectionSlider) and isinstance(out, widgets.Output)
    assert slider.description == "t" and list(slider.options) == [("0", 0), ("250", 1), ("500", 2), ("999", 3)]
    assert calls == [0]  # the first figure is drawn when the widget is built
    for index in [1, 2, 3, 0]:
        slider.value = index  # what dragging the slider does
    assert calls == [0, 250, 500, 999, 0]

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.setattr(plot, "widgets_wanted", lambda: True)  # a live notebook
    assert plot.explore(_recording_draw(calls), ts, label="t") is None
    assert isinstance(shown[-1], widgets.VBox) and shown[-1].children[0].description == "t"


def test_explore_widget_takes_one_slider_per_named_parameter():
    pytest.importorskip("ipywidgets", reason="the widgets extra is not installed")
    seen = []
    box = plot.explore_widget(lambda ax, z1, z2: seen.append((z1, z2)), {"z1": [-1, 0, 1], "z2": [-1, 1]})
    z1, z2, _ = box.children
    z1.value, z2.value = 2, 1
    assert seen == [(-1, -1), (1, -1), (1, 1)]
