"""Writing a correlation: the maps in the reference frame (``.hspy``), the statistics
(``feature_statistics.csv``, ``.json``), ``registration.json``, figures and
``summary.json`` (last, so that a folder with a summary is complete).

Examples
--------
>>> names = output_names()
>>> "eels_li_si_ratio.hspy" in names and "feature_statistics.csv" in names
True
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.correlate.inputs import IMAGES, MAPS
from anodemap.correlate.pipeline import SCAN_LABELS
from anodemap.correlate.statistics import COLUMNS
from anodemap.io import save
from anodemap.io.results import map_dataset, write_json, write_text

__all__ = ["output_names", "statistics_csv", "write_correlation"]

_FIGURES = ("registration.png", "maps_by_feature.png", "li_si_by_feature.png")
_TABLES = ("feature_statistics.csv", "feature_statistics.json", "registration.json", "regions.csv")


def _map_names() -> list[str]:
    names = ["labels", "regions", "coverage", "edx_o_si"]
    for modality, specs in MAPS.items():
        names += [f"{modality}_{f.removesuffix('.hspy')}" for f in IMAGES[modality]]
        for spec in specs:
            stem = f"{modality}_{spec.file.removesuffix('.hspy')}"
            names.append(stem)
            if spec.sigma:
                names.append(f"{stem}_uncertainty")
            if spec.status:
                names.append(f"{modality}_{spec.status.removesuffix('.hspy')}")
    return list(dict.fromkeys(names))


def output_names() -> list[str]:
    """Every file :func:`write_correlation` may write."""
    return [
        *(f"{n}.hspy" for n in _map_names()),
        *(f"labels_{n}.hspy" for n in SCAN_LABELS),
        *_TABLES,
        *_FIGURES,
        "summary.json",
    ]


def _save_scan_labels(result: Any, outdir: Path) -> None:
    """The feature classes on each scan's own grid (``labels_diffraction.hspy``), with
    the class legend of ``labels.hspy``: ``anodemap pdf SCAN --regions`` names its
    regions by it (:func:`anodemap.io.regions.region_names`)."""
    legend = result.meta.get("labels", {}).get("legend")
    for name, (values, axes) in result.scan_labels.items():
        title = f"feature class on the {name} scan's grid (255: outside the HAADF survey)"
        ds = map_dataset(values, axes, title, "")
        if legend:
            ds.set_meta("Signal.legend", legend)
        ds.set_meta("General.source", f"anodemap correlate (frame: the {name} scan)")
        save(ds, outdir / f"labels_{name}.hspy")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return value


def statistics_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text (columns :data:`~anodemap.correlate.statistics.COLUMNS`;
    an empty cell: no value)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    return buf.getvalue()


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        clean = {}
        for k in COLUMNS:
            v = row.get(k)
            clean[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        out.append(clean)
    return out


def write_correlation(
    result: Any, outdir: str | Path, *, figures: bool = True, worker: Any = None
) -> dict[str, Any]:
    """Write a :class:`~anodemap.correlate.pipeline.CorrelateResult` into ``outdir``;
    return the summary."""
    from anodemap.io.outdir import output_folder

    outdir = Path(outdir)
    with output_folder(outdir) as folder:
        summary_path = outdir / "summary.json"
        hspy = [f"{k}.hspy" for k in result.maps]
        hspy += [f"labels_{k}.hspy" for k in result.scan_labels]
        folder.claim([*hspy, *_TABLES, "summary.json"])
        if summary_path.exists():  # a stale summary must not vouch for new, partial files
            summary_path.unlink()
        for key, values in result.maps.items():
            meta = result.meta.get(key, {})
            if values.ndim == 3:  # a stack (coverage): one image per modality
                from anodemap.io import Axis, Dataset

                ds = Dataset(values, [Axis("modality", values.shape[0]), *result.axes])
                ds.set_meta("General.title", meta.get("title", key))
            else:
                ds = map_dataset(values, result.axes, meta.get("title", key), meta.get("units", ""))
            if meta.get("legend"):
                ds.set_meta("Signal.legend", meta["legend"])
            if meta.get("status"):
                from anodemap.status import legend

                ds.set_meta("Signal.status_legend", {**legend(), "255": "outside the map"})
            ds.set_meta("General.source", f"anodemap correlate (frame: {result.reference})")
            save(ds, outdir / f"{key}.hspy")
        _save_scan_labels(result, outdir)
        write_text(statistics_csv(result.rows), outdir / "feature_statistics.csv")
        write_json(
            {
                "reference": result.reference,
                "columns": list(COLUMNS),
                "rows": _json_rows(result.rows),
            },
            outdir / "feature_statistics.json",
        )
        registration = {
            "reference": result.reference,
            "registered_on": "haadf",
            "modalities": result.summary["registration"],
            "transforms_from_reference": result.summary["transforms_from_reference"],
            "convention": "moving (row, column) = matrix @ reference (row, column) + shift_px; "
            "registrations are of each modality on the HAADF survey",
        }
        write_json(registration, outdir / "registration.json")
        # the regions the statistics number (those of anodemap features' regions.csv
        # unless the EELS t/λ or the O steps changed classes)
        lines = [
            "region,class,area_px",
            *(f"{r['region']},{r['class']},{r['area_px']}" for r in result.regions),
        ]
        write_text("\n".join(lines) + "\n", outdir / "regions.csv")
        written = [*hspy, *_TABLES]
        if figures:
            from anodemap.correlate.figures import draw_figures

            written += draw_figures(result, outdir, worker)
        folder.retire_previous()
        keys = ("group", "value", "se", "map_sigma", "systematic", "counted", "flagged")
        li = [
            {k: r[k] for k in (*keys, "coverage")}
            for r in result.rows
            if r["quantity"] == "li_si" and r["group_kind"] in ("class", "all")
        ]
        unmixed = [
            {k: r[k] for k in (*keys, "se_fit", "effective_pixels", "note")}
            for r in result.rows
            if r["quantity"] == "li_si_unmixed" and r["group_kind"] == "class"
        ]
        paper = [
            {
                k: r.get(k)
                for k in ("paper", "group", "quantity", "value", "se", "p05", "p95", "counted")
            }
            for r in result.rows
            if r["group_kind"] == "paper"
        ]
        summary = {
            **folder.provenance(),
            **result.summary,
            "li_si_per_class": _json_rows_like(li),
            "li_si_unmixed_per_class": _json_rows_like(unmixed),
            "paper_comparison": _json_rows_like(paper),
            "files": sorted(written),
        }
        write_json(summary, summary_path)
    return summary


def _json_rows_like(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
        for r in rows
    ]
