"""Writing a segmentation: maps that open in HyperSpy, the regions table, figures and
``summary.json`` (last, so a folder with a summary is complete).

Examples
--------
>>> output_names()[:3]
['labels.hspy', 'probability.hspy', 'uncertainty.hspy']
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.features.classes import CLASS_NAMES, CLASSES
from anodemap.features.regions import REGION_COLUMNS
from anodemap.io import Axis, Dataset, save
from anodemap.io.results import map_dataset, write_json, write_text

__all__ = ["output_names", "regions_csv", "write_features"]

_MAPS = ("labels.hspy", "probability.hspy", "uncertainty.hspy", "normalised.hspy")
_FIGURES = ("features.png", "uncertainty.png")


def output_names() -> list[str]:
    """Every file :func:`write_features` may write."""
    return [*_MAPS, "regions.csv", *_FIGURES, "summary.json"]


def regions_csv(rows: list[dict[str, Any]]) -> str:
    """The regions as CSV text, one row per region (columns :data:`REGION_COLUMNS`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(REGION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def _legend() -> dict[str, str]:
    return {str(c): CLASS_NAMES[c] for c in CLASSES}


def _stack(probability: np.ndarray, axes: list[Axis]) -> Dataset:
    sig = [Axis(a.name, a.size, a.scale, a.offset, a.units, navigate=False) for a in axes]
    ds = Dataset(probability, [Axis("class", probability.shape[0], navigate=True), *sig])
    ds.set_meta("General.title", "class probability")
    ds.set_meta("Signal.quantity", "probability")
    ds.set_meta("Signal.class_legend", _legend())
    return ds


def write_features(
    seg: Any,
    image: np.ndarray,
    outdir: str | Path,
    *,
    figures: bool = True,
    worker: Any = None,
    source: str = "",
) -> dict[str, Any]:
    """Write ``seg`` (:class:`~anodemap.features.segment.Segmentation`) into ``outdir``.

    Writes ``labels.hspy`` (class codes, uint8), ``probability.hspy`` (a stack: one
    image per class code), ``uncertainty.hspy`` (1 - the chosen class's probability),
    ``normalised.hspy`` (the image with zero and thickness removed), ``regions.csv``,
    figures and ``summary.json``; returns the summary.
    """
    from anodemap.io.outdir import output_folder

    outdir = Path(outdir)
    with output_folder(outdir) as folder:
        summary_path = outdir / "summary.json"
        folder.claim([*_MAPS, "regions.csv", "summary.json"])
        if summary_path.exists():  # a stale summary must not vouch for new, partial files
            summary_path.unlink()
        labels = map_dataset(seg.labels, seg.axes, "feature class", "")
        labels.set_meta("Signal.class_legend", _legend())
        maps = {
            "labels.hspy": labels,
            "probability.hspy": _stack(seg.probability, seg.axes),
            "uncertainty.hspy": map_dataset(seg.uncertainty, seg.axes, "1 - probability", ""),
            "normalised.hspy": map_dataset(
                seg.normalised, seg.axes, "HAADF / thickness term (grey = 1)", ""
            ),
        }
        for name, ds in maps.items():
            ds.set_meta("General.source", source or "anodemap features")
            save(ds, outdir / name)
        write_text(regions_csv(seg.regions), outdir / "regions.csv")
        written = [*_MAPS, "regions.csv"]
        if figures:
            written += _figures(seg, image, outdir, worker)
        folder.retire_previous()
        summary = {**folder.provenance(), **seg.summary, "files": sorted(written)}
        write_json(summary, summary_path)
    return summary


def _figures(seg: Any, image: np.ndarray, outdir: Path, worker: Any) -> list[str]:
    from anodemap.features.figures import features_png
    from anodemap.io.outdir import claim
    from anodemap.plotting import FigureWorker, map_png

    own = worker is None
    worker = worker if worker is not None else FigureWorker(processes=0)
    claim(outdir, list(_FIGURES))
    scale = {"pixel_size": seg.pixel_size_nm, "units": "nm"}
    jobs = [
        worker.submit(features_png, image, seg.labels, outdir / "features.png", **scale),
        worker.submit(
            map_png,
            seg.uncertainty,
            outdir / "uncertainty.png",
            title="1 - probability of the class",
            label="uncertainty",
            cmap="magma",
            vmin=0.0,
            vmax=1.0,
            **scale,
        ),
    ]
    for job in jobs:
        worker.result(job)
    if own:
        worker.close()
    return list(_FIGURES)
