"""Plots the course uses everywhere: image grids, 2D scatter and density plots, training curves, and
animations that fall back to a static strip of frames where nobody can watch them play.

Every function draws on an ``ax`` (a new figure when none is given) and returns it; notebook cells end
with ``plt.show()``. Figures are sized to be readable when projected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

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
