"""The connected regions of the feature classes as a map, numbered as ``regions.csv``
of ``anodemap features`` numbers them, and the groups the statistics are over.

``anodemap features`` lists regions (4-connected pixels of one class, at least
``min_region_px``) class by class in the order :func:`skimage.measure.regionprops`
finds them; the same rule here gives each pixel its region's number, checked against
the table's class and area of every region.

Examples
--------
>>> import numpy as np
>>> labels = np.full((6, 8), 2, np.uint8); labels[1:3, 1:4] = 3; labels[4:, 6:] = 3
>>> ids, rows = region_map(labels, min_area_px=1)
>>> [(r["region"], r["class"], r["area_px"]) for r in rows]
[(1, 'grey', 38), (2, 'dendrite-like', 6), (3, 'dendrite-like', 4)]
>>> int(ids[1, 1]), int(ids[5, 7])
(2, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anodemap.correlate.statistics import Group
from anodemap.errors import AnodemapInputError
from anodemap.features.classes import CLASS_NAMES, CLASSES, PORE

__all__ = ["class_groups", "check_regions", "region_map"]


def region_map(labels: np.ndarray, min_area_px: int = 1) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Each pixel's region number (0: in no listed region) and the regions' class and
    area, as ``anodemap features`` numbers them."""
    from skimage.measure import label as connected
    from skimage.measure import regionprops

    ids = np.zeros(labels.shape, np.int32)
    rows: list[dict[str, Any]] = []
    for code in CLASSES:
        parts = connected(labels == code, connectivity=1)
        for r in regionprops(parts):
            if r.area < min_area_px:
                continue
            number = len(rows) + 1
            ids[parts == r.label] = number
            rows.append({"region": number, "class": CLASS_NAMES[code], "area_px": int(r.area)})
    return ids, rows


def check_regions(found: list[dict[str, Any]], table: list[dict[str, str]], where: str) -> None:
    """Refuse a ``regions.csv`` that does not list the regions of the label map."""
    listed = [(int(r["region"]), r["class"], int(r["area_px"])) for r in table]
    made = [(r["region"], r["class"], r["area_px"]) for r in found]
    if listed != made:
        raise AnodemapInputError(
            f"{where}: regions.csv does not list the regions of labels.hspy ({len(listed)} "
            f"rows, {len(made)} regions); run anodemap features again into a new folder"
        )


def class_groups(labels: np.ndarray, known: np.ndarray) -> list[Group]:
    """One group per feature class, one of all material (every class but pores) and one
    of all pixels, over the pixels whose class is ``known``."""
    groups = [
        Group("class", CLASS_NAMES[c], CLASS_NAMES[c], None, known & (labels == c)) for c in CLASSES
    ]
    groups.append(Group("all", "material (all but pores)", "", None, known & (labels != PORE)))
    groups.append(Group("all", "all pixels", "", None, known.copy()))
    return groups
