"""Figures of a correlation: how well each modality registered, the maps with the
feature classes outlined, and Li/Si per feature beside the paper's values.

Plain functions of arrays, so that a :class:`~anodemap.plotting.FigureWorker` draws
them in its process.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> labels = np.full((20, 20), 2, np.uint8); labels[5:10, 5:10] = 3
>>> maps = {"Li/Si": (np.random.default_rng(0).random((20, 20)), "Li per Si", None)}
>>> with tempfile.TemporaryDirectory() as d:
...     maps_png(maps, labels, pathlib.Path(d) / "m.png", 2.0).stat().st_size > 0
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.features.classes import CLASS_COLOURS, CLASS_DESCRIPTIONS, CLASSES, GREY

__all__ = ["draw_figures", "li_si_png", "maps_png", "registration_png"]

# the paper's Li/Si per feature (Ahmed et al., first lithiation, Fig. 3d): class -> (low, high)
_PAPER_LI_SI = {
    "dendrite-like": (2.8, 4.3),
    "bright": (0.0, 0.0),
    "grey": (1.8, 1.8),
    "all pixels": (2.2, 2.2),
}


def _stretch(image: np.ndarray) -> np.ndarray:
    v = image[np.isfinite(image)]
    if not v.size:
        return np.zeros(image.shape)
    lo, hi = np.percentile(v, (1, 99))
    return np.clip((np.nan_to_num(image, nan=lo) - lo) / ((hi - lo) or 1.0), 0, 1)


def _outlines(ax: Any, labels: np.ndarray) -> None:
    from matplotlib.colors import to_rgba
    from skimage.segmentation import find_boundaries

    overlay = np.zeros((*labels.shape, 4))
    for c in CLASSES:
        if c != GREY and np.any(labels == c):
            overlay[find_boundaries(labels == c, mode="inner")] = to_rgba(CLASS_COLOURS[c])
    ax.imshow(overlay, interpolation="nearest")


def maps_png(
    maps: dict[str, tuple[Any, ...]],
    labels: np.ndarray,
    path: str | os.PathLike,
    pixel_size: float,
) -> Path:
    """Each map (values, unit, pixels with a value or None[, a label map's codes and
    names]) in the reference frame with the feature classes outlined (grey not); pixels
    without a value (flagged, outside the map) hatched; a label map in one colour per
    code, named on its colour bar."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.patches import Patch

    from anodemap.plotting import map_figure, plot_map, save_figure

    n = len(maps) + 1  # the last panel holds the legend
    ncols = min(n, 3)
    fig, panels = map_figure(labels.shape, (n + ncols - 1) // ncols, ncols)
    for (title, (values, unit, valid, *names)), (ax, cax) in zip(
        maps.items(), panels, strict=False
    ):
        kinds = names[0] if names else None  # a label map's codes and names
        plot_map(
            values,
            pixel_size=pixel_size,
            title=title,
            label=unit,
            valid=valid,
            ax=ax,
            cax=cax,
            cmap="Pastel2" if kinds else "viridis",  # pale: the outlines stay readable
            categories=kinds,
        )
        _outlines(ax, labels)
    for ax, cax in panels[len(maps) :]:
        ax.set_axis_off()
        if cax is not None:
            cax.set_axis_off()
    handles = [
        Patch(color=CLASS_COLOURS[c], label=f"{CLASS_DESCRIPTIONS[c]}, outlined")
        for c in CLASSES
        if c != GREY and np.any(labels == c)
    ]
    if handles:
        panels[len(maps)][0].legend(handles=handles, loc="center", fontsize=9, frameon=False)
    return save_figure(fig, path)


def registration_png(
    reference: np.ndarray,
    moved: dict[str, np.ndarray],
    arrows: dict[str, tuple[np.ndarray, np.ndarray]],
    notes: dict[str, str],
    path: str | os.PathLike,
    pixel_size: float,
) -> Path:
    """Per modality: the reference (magenta) and the registered image (green) over each
    other (white where they agree), and the shifts left tile by tile (×10)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from anodemap.plotting import add_scalebar, save_figure

    n = max(len(moved), 1)
    fig = Figure(figsize=(7.4, 3.7 * n), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n, 2, squeeze=False))
    ref = _stretch(reference)
    for row, (name, image) in zip(axes, moved.items(), strict=False):
        mov = _stretch(image)
        rgb = np.stack([ref, np.where(np.isfinite(image), mov, 0.0), ref], axis=-1)
        row[0].imshow(rgb, interpolation="nearest")
        row[0].set_title(f"HAADF (magenta) and {name} (green)", fontsize=9)
        row[1].imshow(ref, cmap="gray", interpolation="nearest")
        centres, shifts = arrows.get(name, (np.zeros((0, 2)), np.zeros((0, 2))))
        if len(centres):
            row[1].quiver(
                centres[:, 1],
                centres[:, 0],
                10 * shifts[:, 1],
                -10 * shifts[:, 0],
                color="#EE6677",
                angles="xy",
                scale_units="xy",
                scale=1.0,
                width=0.006,
            )
        row[1].set_title(f"{name}: shifts left per tile (x10)\n{notes.get(name, '')}", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            add_scalebar(ax, pixel_size, "nm", reference.shape[1])
    return save_figure(fig, path)


def li_si_png(
    rows: list[dict[str, Any]],
    path: str | os.PathLike,
    unmixed: list[dict[str, Any]] | None = None,
) -> Path:
    """Li/Si per feature class: mean ± standard error, the 5-95 % range of the pixels,
    the unmixed class mean ± its standard error (``li_si_unmixed`` rows, beside), and
    the paper's values."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from anodemap.plotting import save_figure

    by_group = {u["group"]: u for u in unmixed or []}
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, r in enumerate(rows):
        if r["value"] is None or not np.isfinite(r["value"]):  # too few pixels with a value
            ax.text(
                i,
                0.5,
                "no value",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="center",
                fontsize=7,
                color="0.4",
            )
            continue
        ax.plot([i, i], [r["p05"], r["p95"]], color="0.6", lw=6, solid_capstyle="butt")
        ax.errorbar(i, r["value"], yerr=r["se"], fmt="o", color="#4477AA", capsize=4)
        u = by_group.get(r["group"])
        if u is not None and u.get("value") is not None and np.isfinite(u["value"]):
            se = u.get("se")
            ax.errorbar(
                i + 0.18,
                u["value"],
                yerr=se if se is not None and np.isfinite(se) else None,
                fmt="D",
                color="#228833",
                capsize=4,
                ms=5,
            )
        lo, hi = _PAPER_LI_SI.get(r["group"], (np.nan, np.nan))
        if lo == hi:
            ax.plot([i - 0.3, i + 0.3], [lo, lo], color="#EE6677", lw=2)
        elif np.isfinite(lo):
            ax.fill_between([i - 0.3, i + 0.3], lo, hi, color="#EE6677", alpha=0.25, lw=0)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xticks(range(len(rows)), [r["group"] for r in rows], rotation=20, fontsize=8)
    ax.set_ylabel("Li/Si")
    ax.set_title(
        "Li/Si per feature: mean ± s.e. (blue), unmixed (green), 5-95 % of pixels (grey), "
        "paper (red)",
        fontsize=9,
    )
    return save_figure(fig, path)


def draw_figures(result: Any, outdir: Path, worker: Any = None) -> list[str]:
    """The figures of ``result`` into ``outdir``; the names written."""
    from anodemap.io.outdir import claim
    from anodemap.plotting import FigureWorker

    own = worker is None
    worker = worker if worker is not None else FigureWorker(processes=0)
    pixel = abs(result.axes[0].scale)
    labels = result.maps["labels"]
    jobs, names = [], []
    shown = {
        "Li/Si": ("eels_li_si_ratio", "Li per Si"),
        "plasmon energy": ("eels_plasmon_energy", "eV"),
        "t/λ": ("eels_thickness", "t/λ"),
        "O Kα / Si Kα": ("edx_o_si", "net counts ratio"),
        "oxide index, EELS 42 eV": ("eels_oxide_index", "window / (area × t/λ)"),
        "phase": ("diffraction_phase", ""),
    }
    maps = {}
    for title, (key, unit) in shown.items():
        if key in result.maps:
            values = result.maps[key]
            valid = values > -4 if key == "diffraction_phase" else None  # -4: outside
            maps[title] = (values, unit, valid)
            legend = result.meta.get(key, {}).get("legend")
            if legend:  # a label map: its names on the colour bar
                codes = {int(k): v for k, v in legend.items() if int(k) > -4}
                maps[title] = (values, unit, valid, codes)
    if maps:
        claim(outdir / "maps_by_feature.png")
        jobs.append(worker.submit(maps_png, maps, labels, outdir / "maps_by_feature.png", pixel))
        names.append("maps_by_feature.png")
    if result.registrations:
        back = result.transforms["haadf"].inverse()  # HAADF pixel -> reference pixel
        arrows, notes = {}, {}
        for name, reg in result.registrations.items():
            arrows[name] = (back.apply(reg.tile_centres), reg.tile_shifts @ back.matrix.T)
            d = reg.to_dict()
            notes[name] = (
                f"residual {d['residual_nm']:.2f} nm, 1σ {d['uncertainty_nm']:.2f} nm, "
                f"{d['tiles']} tiles, {d['contrast']}, {d['quality']}"
            )
        moved = {k: v for k, v in result.images.items() if k != "haadf"}
        claim(outdir / "registration.png")
        jobs.append(
            worker.submit(
                registration_png,
                result.images["haadf"],
                moved,
                arrows,
                notes,
                outdir / "registration.png",
                pixel,
            )
        )
        names.append("registration.png")
    li = [
        r
        for r in result.rows
        if r["quantity"] == "li_si" and r["group_kind"] in ("class", "all") and r["counted"]
    ]
    unmixed = [r for r in result.rows if r["quantity"] == "li_si_unmixed"]
    if li:
        claim(outdir / "li_si_by_feature.png")
        jobs.append(worker.submit(li_si_png, li, outdir / "li_si_by_feature.png", unmixed))
        names.append("li_si_by_feature.png")
    for job in jobs:
        worker.result(job)
    if own:
        worker.close()
    return names
