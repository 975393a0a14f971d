"""A correlation against the simulated truth of its region: each map's per-class mean
against the truth's mean over the same survey pixels.

The truth is the survey's own (``truth/haadf/`` of :func:`anodemap.synth.region.
write_region`, or ``anodemap simulate haadf``'s ``truth/``): the true class and values
of the phantom pixel each HAADF pixel saw. A class's measured mean is taken over the
map's pixels whose centre lies in a survey pixel of that class (docs/registration.md);
its truth is the mean of the true values over the survey pixels of that class that the
map covers. Two truths per class are given:

- ``truth_same_pixels``: over the survey pixels that ``anodemap features`` put in the
  class — what the registration and the map give, apart from the segmentation;
- ``truth_true_class``: over the survey pixels of the truth's class — the issue's
  "truth's per-feature means", which the segmentation's errors also move (its IoU per
  class, within the map, is given beside it).

Examples
--------
>>> import numpy as np
>>> labels = np.array([[1, 1], [2, 2]]); truth = np.array([[1, 2], [2, 2]])
>>> li = np.array([[0.0, 1.8], [1.8, 1.8]])
>>> rows = {"bright": {"value": 0.1, "se": 0.01, "counted": 2}}
>>> c = compare_groups(rows, labels, np.ones((2, 2), bool), truth, li)
>>> [round(c["bright"][k], 2) for k in ("truth_same_pixels", "error_same_pixels", "iou")]
[0.9, -0.8, 0.5]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError

__all__ = ["TRUTH_OF", "compare_groups", "compare_with_truth"]

#: The statistics' quantities that a region's truth holds: quantity -> (the modality
#: whose map gives it, the truth map of the survey). ``li_si``: the mean over the map's
#: pixels whose centre lies in the class; ``li_si_unmixed``: by linear unmixing of each
#: pixel's class shares (:mod:`anodemap.correlate.unmix`); both against the same truth.
TRUTH_OF = {"li_si": ("eels", "li_per_si"), "li_si_unmixed": ("eels", "li_per_si")}

_MATERIAL = "material (all but pores)"
_ALL = "all pixels"


def _mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    return float(values[mask].mean()) if mask.any() else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _finite(v: Any) -> float | None:
    """A number, or None where there is none (NaN: no pixel counted)."""
    return float(v) if isinstance(v, int | float) and np.isfinite(v) else None


def compare_groups(
    measured: dict[str, dict[str, Any]],
    labels: np.ndarray,
    cover: np.ndarray,
    truth_labels: np.ndarray,
    truth_values: np.ndarray,
) -> dict[str, dict[str, Any]]:
    """Per class (and all material, all pixels): the measured mean and the truth's two
    means over the survey pixels the map covers (the module's description).

    Parameters
    ----------
    measured : dict
        Group name -> its statistics row (``value``, ``se``, ``counted``).
    labels, truth_labels : ndarray (ny, nx)
        The classes found and the true classes, on the survey's grid.
    cover : ndarray of bool
        The survey pixels the map covers.
    truth_values : ndarray
        The true values on the survey's grid.
    """
    from anodemap.features.classes import CLASS_NAMES, CLASSES, PORE

    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {
        CLASS_NAMES[c]: (labels == c, truth_labels == c) for c in CLASSES
    }
    groups[_MATERIAL] = (labels != PORE, truth_labels != PORE)
    everywhere = np.ones(labels.shape, bool)
    groups[_ALL] = (everywhere, everywhere)
    out = {}
    for name, (found, true) in groups.items():
        row = measured.get(name) or {}
        value = _finite(row.get("value"))
        same = _mean(truth_values, found & cover)
        own = _mean(truth_values, true & cover)
        union = int(((found | true) & cover).sum())
        out[name] = {
            "measured": value,
            "se": _finite(row.get("se")),
            "counted": row.get("counted"),
            "survey_pixels": int((found & cover).sum()),
            "truth_same_pixels": same,
            "error_same_pixels": _minus(value, same),
            "truth_pixels": int((true & cover).sum()),
            "truth_true_class": own,
            "error_true_class": _minus(value, own),
            "iou": float((found & true & cover).sum()) / union if union else None,
        }
    return out


def _classes(result: Any, truth_labels: np.ndarray) -> dict[str, Any]:
    """The classes against the truth over every survey pixel and under each map; those
    of ``anodemap features`` beside them where the correlate's steps changed some."""
    everywhere = np.ones(truth_labels.shape, bool)
    areas = {
        "all pixels": everywhere,
        **{f"under the {k} map": np.asarray(v, bool) for k, v in result.survey_cover.items()},
    }
    from anodemap.features.truth import compare

    own = result.haadf_labels
    changed = own is not None and not np.array_equal(own, result.survey_labels)
    out = {}
    for name, within in areas.items():
        if not within.any():
            continue
        out[name] = {
            "pixels": int(within.sum()),
            "classes": compare(result.survey_labels, truth_labels, within=within)["classes"],
        }
        if changed:
            out[name]["haadf_alone"] = compare(own, truth_labels, within=within)["classes"]
    return out


def compare_with_truth(result: Any, truth_dir: Path) -> dict[str, Any]:
    """The comparison of a :class:`~anodemap.correlate.pipeline.CorrelateResult` with the
    truth maps of its survey in ``truth_dir`` (``labels.hspy``, and ``li_per_si.hspy``
    for Li/Si): the content of ``truth_comparison.json``.

    Raises
    ------
    AnodemapInputError
        No ``labels.hspy`` in ``truth_dir``, or truth maps of another grid than the survey.
    """
    from anodemap.io import load

    truth_dir = Path(truth_dir)
    labels = result.survey_labels

    def read(name: str) -> np.ndarray | None:
        path = truth_dir / f"{name}.hspy"
        if not path.exists():
            return None
        data = np.asarray(load(path).data)
        if data.shape != labels.shape:
            raise AnodemapInputError(
                f"truth {path}: {data.shape[0]} x {data.shape[1]} pixels, the HAADF survey "
                f"{labels.shape[0]} x {labels.shape[1]}: give the truth of this image"
            )
        return data

    truth_labels = read("labels")
    if truth_labels is None:
        raise AnodemapInputError(
            f"truth {truth_dir}: no labels.hspy (the survey's true classes); give the truth "
            "folder that anodemap simulate region (truth/haadf) or simulate haadf wrote"
        )
    measured = [
        r for r in result.rows if r["group_kind"] in ("class", "all") and r["quantity"] in TRUTH_OF
    ]
    quantities = {}
    for quantity, (modality, truth_name) in TRUTH_OF.items():
        values = read(truth_name)
        cover = result.survey_cover.get(modality)
        if values is None or cover is None:
            continue
        rows = {r["group"]: r for r in measured if r["quantity"] == quantity}
        quantities[quantity] = {
            "modality": modality,
            "truth_map": f"{truth_name}.hspy",
            "covered_survey_pixels": int(np.asarray(cover, bool).sum()),
            "groups": compare_groups(
                rows, labels, np.asarray(cover, bool), truth_labels, np.asarray(values, float)
            ),
        }
    return {
        "truth": str(truth_dir),
        "survey_pixels": int(labels.size),
        "class_accuracy": float((labels == truth_labels).mean()),
        "classes": _classes(result, truth_labels),
        "quantities": quantities,
        "note": "measured: the map's pixels in each class found (anodemap features); "
        "li_si_unmixed: the class means by linear unmixing of the pixels' class shares; "
        "truth_same_pixels: the truth's mean over the survey pixels of that class found "
        "that the map covers; truth_true_class: over the survey pixels of the truth's "
        "class that the map covers (the segmentation's errors move it too; iou: of the "
        "two, within the map)",
    }
