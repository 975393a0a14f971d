"""Figures of a segmentation: the image with each class outlined, and the label map.

Plain functions of arrays, so that a :class:`~anodemap.plotting.FigureWorker` draws them
in its process.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> img = np.random.default_rng(0).random((32, 32))
>>> labels = np.full((32, 32), 2, np.uint8); labels[8:16, 8:16] = 1
>>> with tempfile.TemporaryDirectory() as d:
...     features_png(img, labels, pathlib.Path(d) / "f.png", pixel_size=2.0).stat().st_size > 0
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.features.classes import CLASS_COLOURS, CLASS_DESCRIPTIONS, CLASSES, GREY

__all__ = ["features_figure", "features_png"]


def features_figure(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    pixel_size: float | None = None,
    units: str = "nm",
    title: str = "",
) -> Any:
    """The image with the outlines of each class but the grey majority (left) and the
    label map (right), a legend, and, when calibrated, scale bars."""
    from matplotlib.colors import ListedColormap, to_rgba
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from skimage.segmentation import find_boundaries

    from anodemap.plotting import add_scalebar

    ny, nx = labels.shape
    aspect = min(max(ny / nx, 0.25), 4.0)
    w, h = (3.6, 3.6 * aspect) if aspect <= 1 else (3.6 / aspect, 3.6)
    pad, gap, legend_w, top = 0.15, 0.15, 2.3, 0.35
    fig = Figure(figsize=(pad + 2 * w + gap + legend_w, h + top + pad))
    fw, fh = fig.get_size_inches()
    ax1 = fig.add_axes((pad / fw, pad / fh, w / fw, h / fh))
    ax2 = fig.add_axes(((pad + w + gap) / fw, pad / fh, w / fw, h / fh))
    present = [c for c in CLASSES if np.any(labels == c)]
    lo, hi = np.percentile(image, (0.5, 99.5))
    ax1.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
    overlay = np.zeros((ny, nx, 4))
    for c in present:
        if c != GREY:
            overlay[find_boundaries(labels == c, mode="inner")] = to_rgba(CLASS_COLOURS[c])
    ax1.imshow(overlay, interpolation="nearest")
    cmap = ListedColormap([CLASS_COLOURS[c] for c in CLASSES])
    ax2.imshow(labels, cmap=cmap, vmin=-0.5, vmax=len(CLASSES) - 0.5, interpolation="nearest")
    for ax, name in ((ax1, "HAADF, classes outlined"), (ax2, "classes")):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name if not title else f"{title}: {name}", fontsize=9)
        if pixel_size:
            add_scalebar(ax, pixel_size, units, nx)
    handles = [
        Patch(
            color=CLASS_COLOURS[c],
            label=CLASS_DESCRIPTIONS[c] + (", not outlined" if c == GREY else ""),
        )
        for c in present
    ]
    ax2.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.04, 1.0),
        fontsize=7,
        frameon=False,
        borderaxespad=0.0,
    )
    return fig


def features_png(
    image: np.ndarray, labels: np.ndarray, path: str | os.PathLike, **options: Any
) -> Path:
    """:func:`features_figure` saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from anodemap.plotting import save_figure

    return save_figure(features_figure(image, labels, **options), path)
