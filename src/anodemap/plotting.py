"""Figures for papers: maps with a scale bar and a labelled colour bar.

Matplotlib only, Agg backend when writing files, so figures are made on
machines without a screen.

Examples
--------
>>> import numpy as np
>>> from anodemap.plotting import nice_length
>>> nice_length(137.0)
100.0
>>> nice_length(0.3)
0.2
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["nice_length", "plot_map", "save_figure", "add_scalebar"]


def nice_length(target: float) -> float:
    """Largest 1, 2 or 5 × 10^n not above ``target`` (for scale bars)."""
    if not np.isfinite(target) or target <= 0:
        return 1.0
    exp = math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        value = m * 10.0**exp
        if value <= target * (1 + 1e-9):
            return float(f"{value:.12g}")
    return float(f"{10.0**exp:.12g}")


def add_scalebar(ax: Any, pixel_size: float, units: str, n_pixels_x: int, color: str = "white"):
    """Draw a scale bar of a nice length (about a fifth of the width) in the lower left.

    ``pixel_size`` is in ``units`` per pixel; nm bars of 1000 nm or more are shown in µm.
    """
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    width = pixel_size * n_pixels_x
    length = nice_length(width / 5)
    label_value, label_units = length, units
    if units == "nm" and length >= 1000:
        label_value, label_units = length / 1000, "µm"
    label = f"{label_value:g} {label_units}".strip()
    bar = AnchoredSizeBar(
        ax.transData,
        length / pixel_size,
        label,
        "lower left",
        pad=0.4,
        color=color,
        frameon=False,
        size_vertical=max(n_pixels_x / 100, 0.5),
        fontproperties=FontProperties(size=9, weight="bold"),
    )
    ax.add_artist(bar)
    return bar


def plot_map(
    values: np.ndarray,
    *,
    pixel_size: float | None = None,
    units: str = "nm",
    title: str = "",
    label: str = "",
    cmap: str = "viridis",
    valid: np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    ax: Any = None,
):
    """Show a map with a colour bar and (when calibrated) a scale bar.

    Parameters
    ----------
    values : ndarray, shape (ny, nx) or (n,)
        The map; a 1-D line scan is drawn as a profile.
    pixel_size : float, optional
        Scan step in ``units`` per pixel; no scale bar if None.
    valid : ndarray of bool, optional
        Pixels to show; the others are drawn grey (e.g. failed fits).
    vmin, vmax : float, optional
        Colour limits; default the given percentiles of the valid pixels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    values = np.asarray(values, dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.2), constrained_layout=True)
    else:
        fig = ax.figure
    show = np.isfinite(values) if valid is None else (np.asarray(valid) & np.isfinite(values))
    finite = values[show]
    if vmin is None:
        vmin = float(np.percentile(finite, percentiles[0])) if finite.size else 0.0
    if vmax is None:
        vmax = float(np.percentile(finite, percentiles[1])) if finite.size else 1.0
    if vmax <= vmin:
        vmax = vmin + (abs(vmin) * 1e-3 or 1.0)
    if values.ndim == 1:
        x = np.arange(values.size) * (pixel_size or 1.0)
        ax.plot(x, np.where(show, values, np.nan), "-", color="C0")
        ax.set_xlabel(f"position ({units})" if pixel_size else "pixel")
        ax.set_ylabel(label)
    else:
        cm = plt.get_cmap(cmap).with_extremes(bad="0.6")
        im = ax.imshow(
            np.ma.masked_where(~show, values),
            cmap=cm,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
        cb = fig.colorbar(im, ax=ax, shrink=0.9)
        cb.set_label(label)
        ax.set_xticks([])
        ax.set_yticks([])
        if pixel_size:
            add_scalebar(ax, pixel_size, units, values.shape[1])
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a figure atomically (temporary name, then rename) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path
