"""Figures of an EDX analysis: the line maps, an overview with the HAADF, the mean
spectrum with its model or windows, and the status map.

Examples
--------
>>> names = write_figures(result, outdir)              # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anodemap.status import Status

__all__ = ["mean_spectrum_figure", "write_figures"]


def _pixel_size(axes: list[Any]) -> tuple[float | None, str]:
    ax = axes[-1] if axes else None
    if ax is not None and ax.units and ax.is_uniform:
        return abs(float(ax.scale)), ax.units
    return None, ""


def write_figures(
    result: Any, outdir: Path, worker: Any = None, images: dict[str, Any] | None = None
) -> list[str]:
    """Write the PNG figures; return their names. The map figures are drawn by
    ``worker`` (a :class:`~anodemap.plotting.FigureWorker`) while this process draws the
    overview and the spectrum."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from anodemap.io.outdir import claim
    from anodemap.plotting import FigureWorker, map_png, save_figure

    status = np.asarray(result.maps["status"])
    names: list[str] = []
    names.append(save_figure(mean_spectrum_figure(result), outdir / "mean_spectrum.png").name)
    if status.size <= 1:  # one spectrum: no map to draw
        return names
    own = worker is None
    worker = worker if worker is not None else FigureWorker(processes=0)
    size, units = _pixel_size(result.nav_axes)
    ok = status == int(Status.OK)
    jobs = []
    keys = [k for n in result.lines for k in (n, f"{n}_uncertainty")]
    keys += [k for k in result.maps if "_atomic_percent" in k]
    keys += [k for k in ("counts", "reduced_chi2") if k in result.maps]
    for key in keys:
        title, unit = result.titles[key]
        path = outdir / f"{key}.png"
        claim(path)
        cmap = "inferno" if "uncertainty" not in key else "cividis"
        jobs.append(
            worker.submit(
                map_png,
                np.asarray(result.maps[key]),
                path,
                pixel_size=size,
                units=units or "nm",
                title=title,
                label=unit,
                cmap=cmap,
                valid=ok,
            )
        )
    for stem, im in (images or {}).items():
        path = outdir / f"{stem}.png"
        claim(path)
        isize, iunits = _pixel_size(im.sig_axes)
        jobs.append(
            worker.submit(
                map_png,
                np.asarray(im.data, dtype=float),
                path,
                pixel_size=isize,
                units=iunits or "nm",
                title=im.title or stem,
                label="counts",
                cmap="gray",
            )
        )
    names.append(
        save_figure(_overview(result, images or {}, size, units), outdir / "overview.png").name
    )
    names.append(save_figure(_status(status, size, units), outdir / "status.png").name)
    names += [worker.result(job).name for job in jobs]
    if own:
        worker.close()
    return names


def _overview(result: Any, images: dict[str, Any], size: float | None, units: str):
    from anodemap.plotting import map_figure, plot_map

    panels_data = []
    for stem, im in list(images.items())[:1]:
        isize, iunits = _pixel_size(im.sig_axes)
        panels_data.append(
            (np.asarray(im.data, dtype=float), im.title or stem, "counts", "gray", isize, iunits)
        )
    ok = np.asarray(result.maps["status"]) == int(Status.OK)
    for name in result.lines:
        panels_data.append(
            (np.asarray(result.maps[name]), name, "net counts", "inferno", size, units)
        )
    n = len(panels_data)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, panels = map_figure(panels_data[-1][0].shape, nrows, ncols)
    for (ax, cax), (values, title, label, cmap, psize, punits) in zip(
        panels, panels_data, strict=False
    ):
        valid = ok if values.shape == ok.shape and cmap != "gray" else None
        plot_map(
            values,
            pixel_size=psize,
            units=punits or "nm",
            title=title,
            label=label,
            cmap=cmap,
            valid=valid,
            ax=ax,
            cax=cax,
        )
    for ax, cax in panels[n:]:
        ax.set_axis_off()
        if cax is not None:
            cax.set_axis_off()
    return fig


def _status(status: np.ndarray, size: float | None, units: str):
    from anodemap.eels.output import status_figure

    return status_figure(status, size, units or "nm", "EDX status", "analysed")


def mean_spectrum_figure(result: Any):
    """The mean spectrum (log counts) with the fitted model and its families, or the
    integration (solid) and background (dashed) windows of each line."""
    from matplotlib.figure import Figure

    e = result.energy_ev / 1e3
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.step(e, result.mean_spectrum, where="mid", color="0.3", lw=0.8, label="mean spectrum")
    if result.mean_model:
        ax.plot(e, result.mean_model["total"], color="C3", lw=1.2, label="fit")
        ax.plot(e, result.mean_model["background"], color="C0", lw=1.0, ls="--", label="background")
        for i, fam in enumerate(result.families):
            ax.plot(
                e, result.mean_model[fam], lw=0.9, color=f"C{(i + 1) % 10}", label=f"{fam} family"
            )
        for name in getattr(result, "artefacts", {}) or {}:
            ax.plot(e, result.mean_model[name], lw=0.8, ls=":", color="0.2", label=name)
    for name, w in (result.windows or {}).items():
        a, b = (v / 1e3 for v in w["integration"])
        ax.axvspan(a, b, color="C2", alpha=0.2)
        for lo, hi in (
            (w["background"][0], w["background"][1]),
            (w["background"][2], w["background"][3]),
        ):
            ax.axvspan(lo / 1e3, hi / 1e3, color="C0", alpha=0.15)
        ax.text(
            (a + b) / 2,
            1.0,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=7,
            rotation=90,
        )
    positive = result.mean_spectrum[result.mean_spectrum > 0]
    if positive.size:
        ax.set_yscale("log")
        ax.set_ylim(max(positive.min() * 0.5, 1e-4), positive.max() * 2)
    top = min(e[-1], 1.25 * max(ln_e for ln_e in _line_energies(result)))
    ax.set_xlim(max(e[0], 0.0), max(top, 2.0))
    ax.set_xlabel("energy (keV)")
    ax.set_ylabel("counts per pixel")
    ax.set_title(
        f"mean spectrum of {result.maps['status'].size} pixels ({result.method})", fontsize=10
    )
    ax.legend(fontsize=7, loc="upper right")
    return fig


def _line_energies(result: Any) -> list[float]:
    from anodemap.edx.lines import xray_line

    return [xray_line(n).energy_ev / 1e3 for n in result.lines]
