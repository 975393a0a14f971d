"""Writing EDX results: one net-intensity map per line, its 1σ, figures, summary.json.

Maps are named as exspy names lines (``Si_Ka.hspy``, ``O_Ka.hspy``), each with
``LINE_uncertainty.hspy``; beside them ``status.hspy``, ``counts.hspy``,
``reduced_chi2.hspy`` (fit), Cliff–Lorimer ``EL_atomic_percent.hspy`` (with k-factors),
the images recorded with the spectra (``haadf.hspy``, ``adf.hspy``, ``image_1.hspy``, ...;
:func:`anodemap.io.scan_images.image_names`), the mean
spectrum (``mean_spectrum.hspy``), figures and ``summary.json`` (written last).

Examples
--------
>>> "Si_Ka.hspy" in output_names() and "Pt_La_uncertainty.hspy" in output_names()
True
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.io import Axis, Dataset, save
from anodemap.io.results import map_dataset, write_json
from anodemap.io.scan_images import MAX_IMAGES, image_names, image_stems
from anodemap.status import legend

__all__ = ["output_names", "write_edx_results"]

_FIXED = ["status", "counts", "reduced_chi2", "mean_spectrum"]
_FIGURES = ["overview.png", "mean_spectrum.png", "status.png"]


def output_names() -> list[str]:
    """Every name :func:`write_edx_results` may write (for the checks before a run)."""
    return list(_output_names())


@cache
def _output_names() -> tuple[str, ...]:
    from anodemap.edx.lines import all_lines

    stems = list(_FIXED) + image_stems()
    for ln in all_lines():
        stems += [ln.name, f"{ln.name}_uncertainty"]
    for el in dict.fromkeys(ln.element for ln in all_lines()):
        stems += [f"{el}_atomic_percent", f"{el}_atomic_percent_uncertainty"]
    out = [f"{s}.hspy" for s in stems] + [f"{s}.png" for s in stems]
    return (*out, *_FIGURES, "summary.json")


def _pixel_size(nav_axes: list[Axis]) -> tuple[float | None, str]:
    ax = nav_axes[-1] if nav_axes else None
    if ax is not None and ax.units and ax.is_uniform:
        return abs(float(ax.scale)), ax.units
    return None, ""


def _map_keys(result: Any) -> list[str]:
    keys = []
    for name in result.lines:
        keys += [name, f"{name}_uncertainty"]
    keys += [k for k in result.maps if k.endswith("_atomic_percent")]
    keys += [k for k in result.maps if k.endswith("_atomic_percent_uncertainty")]
    keys += [k for k in ("status", "counts", "reduced_chi2") if k in result.maps]
    return keys


def _mean_spectrum_dataset(result: Any) -> Dataset:
    e = result.energy_ev
    axis = Axis("Energy", e.size, float(e[1] - e[0]) / 1e3, float(e[0]) / 1e3, "keV", False)
    ds = Dataset(np.asarray(result.mean_spectrum, dtype=float), [axis])
    ds.set_meta("General.title", "mean spectrum (counts per pixel)")
    ds.set_meta("Signal.signal_type", "EDS_TEM")
    ds.set_meta("Signal.quantity", "counts per pixel")
    return ds


def write_edx_results(
    result: Any,
    outdir: str | os.PathLike,
    figures: bool = True,
    *,
    worker: Any = None,
    dataset: Any = None,
) -> dict[str, Any]:
    """Write the maps of an :class:`~anodemap.edx.pipeline.EDXResult`, the images read
    with the spectra (``dataset.images``), figures and ``summary.json`` (last).

    Returns
    -------
    dict
        The summary written.
    """
    from anodemap.io.outdir import output_folder

    outdir = Path(outdir)
    images = list(getattr(dataset, "images", []) or [])[:MAX_IMAGES]
    with output_folder(outdir) as folder:
        keys = _map_keys(result)
        stems = image_names(images)
        hspy = [f"{k}.hspy" for k in keys] + [f"{s}.hspy" for s in stems] + ["mean_spectrum.hspy"]
        folder.claim([*hspy, "summary.json"])
        summary_path = outdir / "summary.json"
        if summary_path.exists():  # a stale summary must not vouch for new, partial files
            summary_path.unlink()
        for key in keys:
            title, units = result.titles[key]
            ds = map_dataset(result.maps[key], result.nav_axes, title, units)
            if key == "status":
                ds.set_meta("Signal.status_legend", legend())
            ds.set_meta("General.source", result.source)
            save(ds, outdir / f"{key}.hspy")
        for stem, im in zip(stems, images, strict=True):
            save(im, outdir / f"{stem}.hspy")
        save(_mean_spectrum_dataset(result), outdir / "mean_spectrum.hspy")
        written = sorted(hspy)
        if figures:
            from anodemap.edx.figures import write_figures

            written += write_figures(result, outdir, worker, dict(zip(stems, images, strict=True)))
        folder.retire_previous()
        summary = {**folder.provenance(), **result.summary()}
        summary["images"] = {s: im.title for s, im in zip(stems, images, strict=True)}
        summary["files"] = written
        write_json(summary, summary_path)
    return summary
