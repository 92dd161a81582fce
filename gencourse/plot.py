"""Plots the course uses everywhere: image grids, 2D scatter and density plots, training curves,
animations that fall back to a static strip of frames where nobody can watch them play, and sliders
(:func:`explore`) that fall back to a row of panels where nobody can drag them.

Every function draws on an ``ax`` (a new figure when none is given) and returns it; notebook cells end
with ``plt.show()``. Figures are sized to be readable when projected.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

plt.rcParams.update({"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 12, "figure.dpi": 90})


def _new_ax(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``[B, C, H, W]`` images in [0, 1] into one ``[rows*H, cols*W, C]`` array."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W] (or [B, H, W]), got shape {tuple(images.shape)}")
    b, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), pad_value, np.float32)
    imgs = _numpy(images).transpose(0, 2, 3, 1)
    for i in range(b):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = imgs[i]
    return grid


def image_grid(
    images: torch.Tensor,
    nrow: int | None = None,
    ax=None,
    title: str | None = None,
    value_range: tuple[float, float] | None = None,
    figsize=None,
    row_labels: Sequence[str] | None = None,
):
    """Show a batch of images ``[B, C, H, W]`` as a grid with ``nrow`` images per row.

    ``value_range`` is the range of the input; by default [-1, 1] if any value is negative, else [0, 1].
    ``row_labels`` names each row (e.g. the class of a conditional model's samples).
    """
    images = images.detach().float().cpu()
    lo, hi = value_range or ((-1.0, 1.0) if images.min() < 0 else (0.0, 1.0))
    images = ((images - lo) / (hi - lo)).clamp(0, 1)
    nrow = nrow or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / nrow)
    ax = _new_ax(ax, figsize or (min(12, 1.0 * nrow + 1), min(12, 1.0 * rows + 1)))
    grid = make_grid(images, nrow=nrow)
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels is not None:
        h = images.shape[-2] + 2
        ax.set_yticks([2 + h * i + h / 2 - 1 for i in range(len(row_labels))], list(row_labels))
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def scatter2d(
    points,
    ax=None,
    title: str | None = None,
    lim: float | None = 4.5,
    s: float = 3,
    alpha: float = 0.5,
    color=None,
    label: str | None = None,
    figsize=(6, 6),
):
    """Scatter ``[N, 2]`` points on square axes ``[-lim, lim]^2`` (``lim=None`` leaves them automatic)."""
    pts = _numpy(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be [N, 2], got shape {pts.shape}")
    ax = _new_ax(ax, figsize)
    ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=alpha, c=color, label=label, edgecolors="none")
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax


def grid2d(lim: float = 4.5, n: int = 200):
    """A square grid over ``[-lim, lim]^2``: ``(points [n*n, 2], xs [n], cell area)``."""
    xs = torch.linspace(-lim, lim, n)
    xx, yy = torch.meshgrid(xs, xs, indexing="xy")
    return torch.stack([xx.flatten(), yy.flatten()], dim=1), xs, float((xs[1] - xs[0]) ** 2)


def density2d(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    ax=None,
    lim: float = 4.5,
    n: int = 200,
    title: str | None = None,
    figsize=(6, 6),
    cmap: str = "viridis",
):
    """Show the density exp(``log_prob``(x)) of a 2D model as an image over ``[-lim, lim]^2``."""
    pts, xs, _ = grid2d(lim, n)
    with torch.no_grad():
        values = log_prob(pts).exp().reshape(n, n)
    ax = _new_ax(ax, figsize)
    ax.imshow(_numpy(values), origin="lower", extent=(-lim, lim, -lim, lim), cmap=cmap, aspect="equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax


def hist2d(
    points, ax=None, lim: float = 4.5, bins: int = 100, title: str | None = None, figsize=(6, 6), cmap: str = "viridis"
):
    """A 2D histogram of ``[N, 2]`` samples: the empirical density of a sampler."""
    pts = _numpy(points)
    ax = _new_ax(ax, figsize)
    ax.hist2d(pts[:, 0], pts[:, 1], bins=bins, range=[[-lim, lim], [-lim, lim]], cmap=cmap)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax


def contour2d(
    fn: Callable[[torch.Tensor], torch.Tensor],
    ax=None,
    lim: float = 4.5,
    n: int = 150,
    levels: int = 12,
    title: str | None = None,
    figsize=(6, 6),
    filled: bool = True,
    cmap: str = "RdBu_r",
    colorbar: bool = True,
):
    """Contours of a scalar function of 2D points (a discriminator's output, an energy, a log density)."""
    pts, xs, _ = grid2d(lim, n)
    with torch.no_grad():
        values = _numpy(fn(pts).reshape(n, n))
    ax = _new_ax(ax, figsize)
    draw = ax.contourf if filled else ax.contour
    cs = draw(_numpy(xs), _numpy(xs), values, levels=levels, cmap=cmap)
    if colorbar:
        ax.figure.colorbar(cs, ax=ax, fraction=0.046, pad=0.04)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return ax


def _smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average, debiased like Adam's, so the first points are not pulled to 0."""
    if weight <= 0:
        return values
    out, avg = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out[i] = avg / (1 - weight ** (i + 1))
    return out


def training_curves(
    history,
    keys=None,
    ax=None,
    smooth: float = 0.0,
    title: str = "Training curves",
    figsize=(8, 4.5),
    logy: bool = False,
):
    """Plot logged values of a :class:`gencourse.train.History` (or a ``{key: values}`` dict) per step."""
    ax = _new_ax(ax, figsize)
    if isinstance(history, dict):
        series = {k: (np.arange(len(v)), np.asarray(v, dtype=float)) for k, v in history.items()}
    else:
        series = {k: (np.asarray(history.steps(k)), np.asarray(history[k], dtype=float)) for k in history.keys()}
    for key in keys or list(series):
        steps, values = series[key]
        if smooth > 0:
            ax.plot(steps, values, alpha=0.25)
            ax.plot(steps, _smooth(values, smooth), label=key, color=ax.lines[-1].get_color())
        else:
            ax.plot(steps, values, label=key)
    ax.set_xlabel("training step")
    ax.set_ylabel("value")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


# matplotlib's animation player (Animation.to_jshtml) loads Font Awesome from a CDN for its button icons;
# offline (the course's normal case) its buttons would be blank. The same icons as plain characters:
FONT_AWESOME_LINK = re.compile(r"<link[^>]*font-awesome[^>]*>", re.IGNORECASE)
PLAYER_ICONS = (
    "<style>.anim-buttons .fa{font-style:normal}"
    '.fa-minus::before{content:"\\2212"}.fa-plus::before{content:"+"}'
    '.fa-fast-backward::before{content:"|\\25C0\\25C0"}.fa-step-backward::before{content:"|\\25C0"}'
    '.fa-play::before{content:"\\25B6"}.fa-flip-horizontal{display:inline-block;transform:scaleX(-1)}'
    '.fa-pause::before{content:"\\275A\\275A"}.fa-step-forward::before{content:"\\25B6|"}'
    '.fa-fast-forward::before{content:"\\25B6\\25B6|"}</style>'
)


def offline_player(page: str) -> str:
    """``page`` (HTML) with the animation player's Font Awesome link replaced by :data:`PLAYER_ICONS`."""
    return FONT_AWESOME_LINK.sub(lambda _: PLAYER_ICONS, page)


def animate(
    frames: Sequence,
    draw: Callable,
    titles: Sequence[str] | None = None,
    interval: int = 200,
    figsize=(6, 6),
    strip: int = 5,
    force_static: bool | None = None,
):
    """Animate ``draw(ax, frame)`` over ``frames``.

    In a live Jupyter kernel (lecture and full profiles) this returns an HTML/JS player to display.
    Headless, or in the smoke profile, it draws a static strip of ``strip`` evenly spaced frames
    instead and returns that figure, so the cell works (and shows the same story) everywhere.
    """
    from gencourse.config import profile

    frames = list(frames)
    if not frames:
        raise ValueError("animate needs at least one frame")
    titles = list(titles) if titles is not None else [f"frame {i}" for i in range(len(frames))]
    static = (profile().is_smoke or not _in_notebook()) if force_static is None else force_static
    if static:
        picks = np.unique(np.linspace(0, len(frames) - 1, min(strip, len(frames))).round().astype(int))
        fig, axes = plt.subplots(
            1, len(picks), figsize=(figsize[0] * 0.7 * len(picks), figsize[1] * 0.7), squeeze=False
        )
        for ax, i in zip(axes[0], picks):
            draw(ax, frames[i])
            ax.set_title(titles[i])
        fig.tight_layout()
        return fig
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots(figsize=figsize)

    def update(i):
        ax.clear()
        draw(ax, frames[i])
        ax.set_title(titles[i])

    anim = FuncAnimation(fig, update, frames=len(frames), interval=interval)
    html = HTML(offline_player(anim.to_jshtml()))
    plt.close(fig)
    return html


# ---- sliders -------------------------------------------------------------------------------------


def _label(value, fmt) -> str:
    if callable(fmt):
        return str(fmt(value))
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _params(values, label: str) -> dict[str, list]:
    """``values`` as ``{slider name: its values}``: one slider for a sequence, one per key for a mapping."""
    params = {name: list(v) for name, v in values.items()} if isinstance(values, Mapping) else {label: list(values)}
    for name, options in params.items():
        if not options:
            raise ValueError(f"explore needs at least one value for {name!r}")
    return params


def _draw_at(draw: Callable, ax, point: dict, by_name: bool, fmt) -> None:
    """``draw`` one panel at ``point`` (``{name: value}``), titled with the setting unless ``draw`` gave a title."""
    if by_name:
        draw(ax, **point)
    else:
        (value,) = point.values()
        draw(ax, value)
    if not ax.get_title():
        ax.set_title(", ".join(f"{name} = {_label(v, fmt)}" for name, v in point.items()))


def widgets_wanted() -> bool:
    """Whether :func:`explore` shows sliders: in a notebook kernel, outside the smoke profile, unless the
    kernel runs headless: ``GENCOURSE_WIDGETS=0`` (set by ``python -m gencourse.export`` for its runs) or
    started by pytest (nbval, whose kernels inherit ``PYTEST_CURRENT_TEST``)."""
    from gencourse.config import profile

    headless = os.environ.get("GENCOURSE_WIDGETS", "1") == "0" or "PYTEST_CURRENT_TEST" in os.environ
    return _in_notebook() and not profile().is_smoke and not headless


def explore_panels(draw: Callable, values, *, label="value", panels=5, at=None, fmt="{:g}", figsize=(5, 5), title=None):
    """The static form of :func:`explore`: ``draw(ax, value)`` on a row of ``panels`` axes at evenly spaced
    ``values`` (or at the values ``at``). Returns the figure."""
    params = _params(values, label)
    if at is None:
        count = min(panels, min(len(v) for v in params.values()))
        picks = [np.linspace(0, len(v) - 1, count).round().astype(int) for v in params.values()]
        at = [{name: params[name][i[k]] for name, i in zip(params, picks)} for k in range(count)]
    elif not isinstance(values, Mapping):
        at = [{label: value} for value in at]
    at = list(at)
    width = min(figsize[0], 16 / len(at))
    fig, axes = plt.subplots(1, len(at), figsize=(width * len(at), figsize[1] * width / figsize[0]), squeeze=False)
    for ax, point in zip(axes[0], at):
        _draw_at(draw, ax, point, isinstance(values, Mapping), fmt)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def explore_widget(draw: Callable, values, *, label="value", fmt="{:g}", figsize=(5, 5), title=None):
    """The live form of :func:`explore`: a slider per parameter over exactly ``values`` and the figure
    ``draw(ax, value)`` below them, redrawn on every move (an ``ipywidgets.VBox``; needs the ``widgets``
    extra). The first figure is drawn before the widget is returned, so a ``draw`` that fails raises here."""
    import ipywidgets as widgets
    from IPython.display import display

    params = _params(values, label)
    sliders = {
        name: widgets.SelectionSlider(
            options=[(_label(v, fmt), i) for i, v in enumerate(options)],
            value=0,
            description=name,
            continuous_update=True,
            layout=widgets.Layout(width="min(600px, 90%)"),
            style={"description_width": "initial"},
        )
        for name, options in params.items()
    }
    out = widgets.Output()

    def render():
        point = {name: params[name][slider.value] for name, slider in sliders.items()}
        fig, ax = plt.subplots(figsize=figsize)
        try:
            _draw_at(draw, ax, point, isinstance(values, Mapping), fmt)
            if title:
                fig.suptitle(title)
        finally:
            plt.close(fig)  # shown through the output widget only, never again by the inline backend
        return fig

    def update(change):
        with out:  # a draw that fails on some value shows its traceback under the sliders
            out.clear_output(wait=True)
            display(render())

    first = render()
    with out:
        display(first)
    for slider in sliders.values():
        slider.observe(update, names="value")
    return widgets.VBox([*sliders.values(), out])


def explore(
    draw: Callable,
    values,
    *,
    label: str = "value",
    panels: int = 5,
    at=None,
    fmt="{:g}",
    figsize=(5, 5),
    title: str | None = None,
    live: bool | None = None,
) -> None:
    """Show ``draw(ax, value)`` with a slider over ``values``, for the parameter that is the point of a
    picture (a noise level, a temperature, a training step, a position in latent space)::

        plot.explore(lambda ax, t: plot.image_grid(x_t[t], ax=ax, title=f"t = {t}"), ts, label="t")

    ``values`` is the list of settings the slider steps through (``label`` names it), or a dict
    ``{name: values}`` for one slider each, in which case ``draw`` is called as ``draw(ax, **{name: value})``.
    Each move calls ``draw`` on a fresh axis, so precompute what is slow (samples at each setting) and
    let ``draw`` only plot it. ``fmt`` (a format string or a function) writes a value on its slider.

    In a live notebook with ipywidgets installed (``pip install "gencourse[widgets]"``) this displays the
    sliders (:func:`explore_widget`). Anywhere else (headless runs such as nbval, CI and the exported pages,
    the smoke profile, or without ipywidgets) it shows a row of ``panels`` evenly spaced settings, or the
    settings ``at`` (:func:`explore_panels`), so the cell tells the same story. ``live`` forces either form.
    Displays its result and returns None, so it is the one line a notebook cell needs.
    """
    from IPython.display import display

    if live is None:
        live = widgets_wanted()
        if live:
            try:
                import ipywidgets  # noqa: F401
            except ImportError:
                live = False
                print('A slider needs ipywidgets: pip install "gencourse[widgets]", then restart the kernel.')
    if live:
        display(explore_widget(draw, values, label=label, fmt=fmt, figsize=figsize, title=title))
    else:
        explore_panels(draw, values, label=label, panels=panels, at=at, fmt=fmt, figsize=figsize, title=title)
        plt.show()
