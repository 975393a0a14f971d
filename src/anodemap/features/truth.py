"""A segmentation against a truth label map: per-class recall, precision and IoU over
all pixels, and the porosity's error.

Examples
--------
>>> import numpy as np
>>> truth = np.full((10, 10), 2); truth[:3] = 0
>>> found = truth.copy(); found[3] = 0
>>> c = compare(found, truth)
>>> c["classes"]["pore"]["recall"], c["classes"]["pore"]["precision"], c["accuracy"]
(1.0, 0.75, 0.9)
>>> top = np.zeros((10, 10), bool); top[:5] = True  # only the upper half counted
>>> c = compare(found, truth, within=top)
>>> c["classes"]["pore"]["precision"], c["accuracy"], c["over"]
(0.75, 0.8, 'the 50 pixels asked for')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anodemap.features.classes import CLASS_NAMES, CLASSES, PORE

__all__ = ["compare"]


def compare(
    labels: np.ndarray,
    truth: np.ndarray,
    porosity: dict[str, Any] | None = None,
    within: np.ndarray | None = None,
) -> dict[str, Any]:
    """Recall, precision and IoU of every class, accuracy, and the porosity against the
    truth's pore fraction (all pixels, or those ``within``, a boolean map; None where a
    class is absent from both)."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    if labels.shape != truth.shape:
        from anodemap.errors import AnodemapInputError

        raise AnodemapInputError(
            f"truth labels of shape {truth.shape}, the segmentation's {labels.shape}"
        )
    over = "all pixels of the image"
    if within is not None:
        keep = np.asarray(within, bool)
        if not keep.any():
            raise ValueError("within: no pixel to compare")
        labels, truth = labels[keep], truth[keep]
        over = f"the {labels.size} pixels asked for"
    classes = {}
    for c in CLASSES:
        found, true = labels == c, truth == c
        hit = int(np.count_nonzero(found & true))
        n_found, n_true = int(found.sum()), int(true.sum())
        union = int(np.count_nonzero(found | true))
        classes[CLASS_NAMES[c]] = {
            "recall": hit / n_true if n_true else None,
            "precision": hit / n_found if n_found else None,
            "iou": hit / union if union else None,
            "truth_fraction": n_true / truth.size if truth.size else None,
            "found_fraction": n_found / truth.size if truth.size else None,
        }
    true_porosity = float(np.count_nonzero(truth == PORE)) / truth.size
    found = porosity or {"fraction": float(np.count_nonzero(labels == PORE)) / labels.size}
    return {
        "accuracy": float(np.count_nonzero(labels == truth)) / truth.size,
        "classes": classes,
        "porosity": {
            "truth": true_porosity,
            "found": found["fraction"],
            "uncertainty": found.get("uncertainty"),
            "error": found["fraction"] - true_porosity,
        },
        "over": over,
    }
