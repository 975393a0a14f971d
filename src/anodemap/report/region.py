"""The report's per-feature sections: a HAADF image's feature classes (``anodemap
features``) and a region's correlation (``anodemap correlate``, joined by ``anodemap
run`` for the datasets that share a region name): the registration of each map, the
maps' values per feature class with their uncertainties and coverage, the paper's
statements beside them and, for a simulated region, the truth.

Only what the analyses wrote is read (``summary.json``, ``feature_statistics.json``,
``truth_comparison.json``); nothing is computed here.

Examples
--------
>>> s = features_statistics({"class_fractions": {"pore": 0.03, "grey": 0.97},
...                          "porosity": {"fraction": 0.03, "uncertainty": 0.003}})
>>> s["kind"], s["classes"][0], s["porosity"]
('features', {'class': 'pore', 'fraction': 0.03, 'pixels': None, 'regions': None}, 0.03)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "collect_regions",
    "correlate_statistics",
    "edx_statistics",
    "features_statistics",
    "region_truth",
]

# the statistics' quantities in the order the page shows them, with their titles
_QUANTITIES = {
    "li_si": "Li/Si",
    "li_si_unmixed": "Li/Si, unmixed (least squares on each pixel's class shares)",
    "plasmon_energy": "Plasmon energy (eV)",
    "t_over_lambda": "Thickness t/λ",
    "O_Ka": "O Kα net counts",
    "Si_Ka": "Si Kα net counts",
    "o_si": "O Kα / Si Kα",
    "oxide_index": "Oxide index: EELS 42 eV window / (first plasmon area × t/λ)",
}
# the columns of a quantity's table, as feature_statistics.json names them
_VALUE_KEYS = (
    "pixels",
    "counted",
    "flagged",
    "coverage",
    "value",
    "se",
    "map_sigma",
    "systematic",
    "p05",
    "median",
    "p95",
    "effective_pixels",
    "note",
)
# the quantities shown open on the page (the others folded)
_OPEN = ("li_si", "li_si_unmixed")
_TRUTH_KEYS = (
    "measured",
    "se",
    "counted",
    "truth_same_pixels",
    "error_same_pixels",
    "truth_true_class",
    "error_true_class",
    "iou",
)


def features_statistics(summary: dict[str, Any]) -> dict[str, Any]:
    """Key numbers of an ``anodemap features`` ``summary.json``: the share of every
    class, porosity with its 1σ, the connected regions per class."""
    pixels = summary.get("class_pixels") or {}
    regions = (summary.get("regions") or {}).get("count_per_class") or {}
    porosity = summary.get("porosity") or {}
    return {
        "kind": "features",
        "n_pixels": summary.get("n_pixels"),
        "mode": summary.get("mode"),
        "classes": [
            {
                "class": name,
                "fraction": fraction,
                "pixels": pixels.get(name),
                "regions": regions.get(name),
            }
            for name, fraction in (summary.get("class_fractions") or {}).items()
        ],
        "porosity": porosity.get("fraction"),
        "porosity_uncertainty": porosity.get("uncertainty"),
        "mean_probability_of_label": summary.get("mean_probability_of_label"),
    }


def edx_statistics(summary: dict[str, Any]) -> dict[str, Any]:
    """Key numbers of an ``anodemap edx`` ``summary.json``: each line's net counts (all
    pixels together and per pixel) with their 1σ.

    Examples
    --------
    >>> s = edx_statistics({"method": "fit", "net_counts": {"O_Ka": {"total": 10.0}}})
    >>> s["lines"][0]["line"], s["lines"][0]["total"]
    ('O_Ka', 10.0)
    """
    keys = ("energy_keV", "total", "total_uncertainty", "median", "median_uncertainty")
    return {
        "kind": "edx",
        "method": summary.get("method"),
        "n_pixels": summary.get("n_pixels"),
        "n_ok": summary.get("n_ok"),
        "lines": [
            {
                "line": name,
                **{k: v.get(k) for k in keys},
                "above_3_sigma": v.get("fraction_above_3_sigma"),
            }
            for name, v in (summary.get("net_counts") or {}).items()
        ],
    }


def correlate_statistics(summary: dict[str, Any], where: Path) -> dict[str, Any]:
    """Key numbers of an ``anodemap correlate`` folder ``where``: each modality's
    registration, and from ``feature_statistics.json`` the area of every feature class
    and every map's values per class (the rows of single connected regions stay in the
    CSV: too many for a page), with the paper's statements."""
    from anodemap.report.collect import read_json

    try:
        rows = read_json(where / "feature_statistics.json").get("rows") or []
    except (OSError, ValueError, AttributeError):
        rows = []
    groups = [r for r in rows if r.get("group_kind") in ("class", "all")]
    areas: dict[str, dict[str, Any]] = {}
    by_quantity: dict[str, list[dict[str, Any]]] = {}
    for r in groups:
        q = r.get("quantity")
        if q in ("area", "area_fraction", "regions"):
            areas.setdefault(r["group"], {"group": r["group"]})[q] = r.get("value")
        else:
            by_quantity.setdefault(q, []).append(
                {"group": r["group"], **{k: r.get(k) for k in _VALUE_KEYS}}
            )
    order = [*_QUANTITIES, *sorted(q for q in by_quantity if q not in _QUANTITIES)]
    registration = summary.get("registration") or {}
    images = summary.get("registration_images") or {}
    return {
        "kind": "correlate",
        "reference": summary.get("reference"),
        "modalities": list(summary.get("modalities") or []),
        "registration": [
            {
                "modality": name,
                "image": images.get(name),
                "contrast": reg.get("contrast"),
                "model": reg.get("model"),
                "rotation_deg": (reg.get("transform") or {}).get("rotation_deg"),
                "scale_over_calibration": reg.get("scale_over_calibration"),
                "residual_nm": reg.get("residual_nm"),
                "uncertainty_nm": reg.get("uncertainty_nm"),
                "tiles": reg.get("tiles"),
                "quality": reg.get("quality"),
            }
            for name, reg in registration.items()
        ],
        "areas": [
            {
                "group": a["group"],
                "area_nm2": a.get("area"),
                "area_fraction": a.get("area_fraction"),
                "regions": a.get("regions"),
            }
            for a in areas.values()
        ],
        "quantities": [
            {
                "quantity": q,
                "title": _QUANTITIES.get(q, q.replace("_", " ")),
                "open": q in _OPEN,
                "rows": by_quantity[q],
            }
            for q in order
            if q in by_quantity
        ],
        "paper": [
            {
                k: r.get(k)
                for k in ("paper", "group", "quantity", "value", "se", "p05", "p95", "counted")
            }
            for r in rows
            if r.get("group_kind") == "paper"
        ],
        "n_rows": len(rows),
        "o_rich": summary.get("o_rich"),
        "eels_thickness": summary.get("eels_thickness"),
        "eels_oxide": summary.get("eels_oxide"),
        "oxide_steps": summary.get("oxide_steps"),
    }


def region_truth(entry: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """A region's ``truth_comparison.json`` (:mod:`anodemap.correlate.truth`) as the page
    shows it, or None; a file that cannot be read says so in ``problem``."""
    from anodemap.report.collect import read_json

    file = entry.get("truth_comparison")
    if not file:
        return None
    try:
        found = read_json(out / file)
    except (OSError, ValueError) as err:
        return {"file": file, "problem": f"cannot be read: {err}", "quantities": []}
    return {
        "file": file,
        "problem": None,
        "class_accuracy": found.get("class_accuracy"),
        "note": found.get("note"),
        "classes": [
            {
                "area": area,
                "pixels": body.get("pixels"),
                "iou": {k: v.get("iou") for k, v in (body.get("classes") or {}).items()},
                "haadf_alone": {
                    k: v.get("iou") for k, v in (body.get("haadf_alone") or {}).items()
                },
            }
            for area, body in (found.get("classes") or {}).items()
        ],
        "quantities": [
            {
                "quantity": q,
                "title": _QUANTITIES.get(q, q),
                "modality": body.get("modality"),
                "truth_map": body.get("truth_map"),
                "covered_survey_pixels": body.get("covered_survey_pixels"),
                "rows": [
                    {"group": g, **{k: row.get(k) for k in _TRUTH_KEYS}}
                    for g, row in (body.get("groups") or {}).items()
                ],
            }
            for q, body in (found.get("quantities") or {}).items()
        ],
    }


def collect_regions(state: dict[str, Any], out: Path, i: int) -> list[dict[str, Any]]:
    """The regions of a state of ``run.json`` (``anodemap run`` joins the datasets that
    share a region name), each with its analyses as the datasets' are collected, the
    results it had to leave out, and its truth comparison."""
    from anodemap.report.collect import analysis_entry

    regions = []
    for j, rg in enumerate(state.get("regions") or []):
        analyses = []
        for name, entry in (rg.get("analyses") or {}).items():
            a = analysis_entry(name, entry or {}, out)
            for result, why in (entry.get("left_out") or {}).items():
                a["problems"].append(f"the {result} maps are not in it: {why}")
            if name == "correlate":  # its truth in its card; another's (a PDF) in 3.7
                a["truth"] = region_truth(entry, out) if a["usable"] else None
            if entry.get("dataset"):  # an analysis of one of its datasets, by feature class
                a["by_feature"] = {"dataset": entry["dataset"], "regions": entry.get("regions")}
            analyses.append(a)
        regions.append(
            {
                "id": f"state-{i}-region-{j}",
                "name": rg.get("name"),
                "image": rg.get("image"),
                "datasets": [
                    {"kind": k, "dataset": d} for k, d in (rg.get("datasets") or {}).items()
                ],
                "analyses": analyses,
            }
        )
    return regions
