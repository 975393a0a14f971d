"""Connected regions of each class, their size and shape, and the porosity.

Regions are 4-connected (pixels sharing an edge) groups of one class, measured with
:func:`skimage.measure.regionprops`: area, equivalent diameter (of the disc of equal
area), eccentricity and orientation of the ellipse of equal second moments, centroid.
A region cut by the image's edge is marked (its size is a lower bound).

Examples
--------
>>> import numpy as np
>>> labels = np.full((20, 30), 2); labels[5:9, 3:23] = 3
>>> rows = connected_regions(labels, np.ones((5, 20, 30)) / 5, pixel_size_nm=2.0)
>>> r = [r for r in rows if r["class"] == "dendrite-like"][0]
>>> r["area_nm2"], r["orientation_deg"], r["touches_edge"]
(320.0, 0.0, False)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from anodemap.features.classes import CLASS_NAMES, CLASSES, PORE

__all__ = ["REGION_COLUMNS", "connected_regions", "porosity"]

REGION_COLUMNS = (
    "region",
    "class",
    "class_code",
    "area_px",
    "area_nm2",
    "equivalent_diameter_nm",
    "eccentricity",
    "orientation_deg",
    "centroid_y_nm",
    "centroid_x_nm",
    "mean_probability",
    "touches_edge",
)


def connected_regions(
    labels: np.ndarray,
    probability: np.ndarray,
    pixel_size_nm: float | None,
    origin_nm: tuple[float, float] = (0.0, 0.0),
    min_area_px: int = 1,
) -> list[dict[str, Any]]:
    """One row per connected region of each class (at least ``min_area_px`` pixels).

    Lengths are in nm where the image is calibrated (``pixel_size_nm``), else the
    ``_nm`` columns hold pixels. The orientation is that of the region's long axis,
    from +x towards +y (0-180 degrees), as the phantom's sheet angles.
    """
    from skimage.measure import label as connected
    from skimage.measure import regionprops

    p = pixel_size_nm or 1.0
    oy, ox = origin_nm if pixel_size_nm else (0.0, 0.0)
    ny, nx = labels.shape
    rows: list[dict[str, Any]] = []
    for code in CLASSES:
        parts = connected(labels == code, connectivity=1)
        for r in regionprops(parts, intensity_image=probability[code]):
            if r.area < min_area_px:
                continue
            y0, x0, y1, x1 = r.bbox
            cy, cx = r.centroid
            angle = (90.0 - math.degrees(r.orientation)) % 180.0
            rows.append(
                {
                    "region": len(rows) + 1,
                    "class": CLASS_NAMES[code],
                    "class_code": int(code),
                    "area_px": int(r.area),
                    "area_nm2": float(r.area * p * p),
                    "equivalent_diameter_nm": float(r.equivalent_diameter_area * p),
                    "eccentricity": float(r.eccentricity),
                    "orientation_deg": round(float(angle), 6) % 180.0,
                    "centroid_y_nm": float(oy + cy * p),
                    "centroid_x_nm": float(ox + cx * p),
                    "mean_probability": float(r.intensity_mean),
                    "touches_edge": bool(y0 == 0 or x0 == 0 or y1 == ny or x1 == nx),
                }
            )
    return rows


def porosity(labels: np.ndarray, probability: np.ndarray) -> dict[str, Any]:
    """The pore area fraction over all pixels, with its uncertainty.

    The uncertainty combines, in quadrature, the pixels' class uncertainty against the
    noise (``sqrt(Σ p(1 - p)) / N`` of the pore probabilities p) and the pores' outlines:
    each outline pixel holds between none and all pore, and a threshold shifts every
    outline the same way, so ``n_outline / (N √12)`` (1σ of a uniform part of a pixel,
    all outlines together).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.full((10, 10), 2); labels[2:6, 2:6] = 0
    >>> prob = np.zeros((5, 10, 10)); prob[0][labels == 0] = 1; prob[2][labels == 2] = 1
    >>> p = porosity(labels, prob)
    >>> p["fraction"], round(p["uncertainty"], 4)
    (0.16, 0.0346)
    """
    from skimage.segmentation import find_boundaries

    pore = labels == PORE
    n = labels.size
    p = np.clip(probability[PORE], 0.0, 1.0)
    outline = int(np.count_nonzero(find_boundaries(pore, connectivity=1, mode="inner")))
    noise = float(np.sqrt(np.sum(p * (1.0 - p)))) / n
    edge = outline / (n * math.sqrt(12.0))
    return {
        "fraction": float(np.count_nonzero(pore)) / n,
        "uncertainty": float(math.hypot(noise, edge)),
        "from_probability": float(p.mean()),
        "outline_pixels": outline,
        "uncertainty_terms": {"noise": noise, "outline": edge},
        "over": "all pixels of the image",
    }
