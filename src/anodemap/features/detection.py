"""The pore detection limit of the unsupervised classes, measured by injecting pores.

An image in which no pore is found has a porosity of 0 only down to the smallest pore
the classifier would have found in it. That size is measured on the image itself:
one synthetic pore at a time, a disc of diameter d, is put into the thickness-normalised
image at a random place in the material (seeded), and the image is classified again by
the same rule (:func:`anodemap.features.unsupervised.classify`). A pixel covered by the
share c of the disc (4 x 4 sub-pixels) becomes (1 - c) × its value + c × the pore's
level: the level of the image's own pores where it has them, else 0 (an empty column
through the whole lamella: the strongest contrast a pore can have; a partly filled pore
is harder to find). The pixel's noise is kept where the pore leaves material and none
is added where it is empty (a pore in a HAADF image has next to no counts).

The pore is *found* where at least half of the pixels it covers by half or more are
labelled pore. Diameters grow by √2 from 1 px until one is found in at least
``FOUND_SHARE`` of the placements; two halvings (in log d) of the last step between a
diameter missed and one found give the detection limit to 9 %. It is reported as that
diameter (nm), its disc's area and the porosity of one such pore. Smaller pores may
still exist unseen, many of them adding to more than that porosity: the limit bounds
what one pore could hide, not the total porosity. The thickness term is not
re-estimated with the pore in (the envelope smooths over 40 nm: a pore that small
changes it little).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> img = rng.poisson(400.0, (96, 96)) / 400.0
>>> lim = pore_detection_limit(img, pixel_size_nm=2.0, placements=4)
>>> lim["diameter_px"] is not None and lim["diameter_px"] > 1
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from anodemap.features.classes import PORE

__all__ = ["FOUND_SHARE", "pore_detection_limit"]

# found in this share of the placements (model choice: a 90 % detection probability)
FOUND_SHARE = 0.9
_SUB = 4  # sub-pixels per pixel side for the disc's coverage
_GROWTH = math.sqrt(2.0)  # diameters grow by this factor (area doubles)
_REFINE = 2  # halvings of the last step: the limit to a factor 2^(1/8) (9 %)
_SEED = 18  # the placements: fixed, so the same image gives the same limit


def _coverage(d: float, cy: float, cx: float, shape: tuple[int, int]) -> tuple[Any, np.ndarray]:
    """Share of each pixel of a box around (cy, cx) inside a disc of diameter d."""
    r = d / 2.0
    y0, y1 = max(int(math.floor(cy - r)) - 1, 0), min(int(math.ceil(cy + r)) + 2, shape[0])
    x0, x1 = max(int(math.floor(cx - r)) - 1, 0), min(int(math.ceil(cx + r)) + 2, shape[1])
    sub = (np.arange(_SUB) + 0.5) / _SUB - 0.5
    yy = np.arange(y0, y1)[:, None, None, None] + sub[None, None, :, None]
    xx = np.arange(x0, x1)[None, :, None, None] + sub[None, None, None, :]
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return (slice(y0, y1), slice(x0, x1)), inside.mean(axis=(2, 3))


def pore_detection_limit(
    normalised: np.ndarray,
    rule: Callable[[np.ndarray], tuple[np.ndarray, dict[str, Any]]] | None = None,
    *,
    pixel_size_nm: float | None = None,
    placements: int = 8,
    max_diameter_px: float = 64.0,
) -> dict[str, Any]:
    """The smallest pore the classifier finds in ``normalised`` (module description).

    Parameters
    ----------
    normalised : ndarray (ny, nx)
        The image with its zero and thickness term removed (as the rule sees it).
    rule : callable, optional
        Image → (probabilities, info), the classifier (default: ``classify`` with its
        defaults).
    pixel_size_nm : float, optional
        For the diameter and area in nm.
    placements : int
        Places tried per diameter.
    max_diameter_px : float
        Largest diameter tried (also at most a third of the image's smaller side).

    Returns
    -------
    dict
        ``diameter_px``, ``diameter_nm``, ``area_nm2``, ``porosity`` (one such pore over
        all pixels; None where no diameter tried was found), ``pore_level``, the share
        found at each diameter tried, and how.
    """
    from anodemap.features.unsupervised import classify

    rule = rule or classify
    img = np.asarray(normalised, dtype=float)
    prob, info = rule(img)
    labels = prob.argmax(axis=0)
    scale = float(info.get("intensity_scale", 1.0))
    own = info.get("pore_level")
    level = float(own) * scale if own is not None else 0.0
    rng = np.random.default_rng(_SEED)
    ny, nx = img.shape
    top = min(max_diameter_px, min(ny, nx) / 3.0)
    tried: list[dict[str, float]] = []

    def found(d: float) -> bool:
        margin = d / 2.0 + 1.0
        hits = 0
        for _ in range(placements):
            for _attempt in range(50):  # a place in the material
                cy = rng.uniform(margin, ny - 1 - margin)
                cx = rng.uniform(margin, nx - 1 - margin)
                if labels[int(round(cy)), int(round(cx))] != PORE:
                    break
            box, c = _coverage(d, cy, cx, img.shape)
            test = img.copy()
            test[box] = (1.0 - c) * test[box] + c * level
            p, _ = rule(test)
            covered = c >= 0.5
            got = p[:, box[0], box[1]].argmax(axis=0)[covered] == PORE
            hits += int(covered.any() and got.mean() >= 0.5)
        tried.append({"diameter_px": round(d, 3), "found_share": hits / placements})
        return hits / placements >= FOUND_SHARE

    found_d, missed_d = None, None
    d = 1.0
    while d <= top + 1e-9:
        if found(d):
            found_d = d
            break
        missed_d = d
        d *= _GROWTH
    if found_d is not None and missed_d is not None:
        for _ in range(_REFINE):  # halve the step between missed and found (in log d)
            mid = math.sqrt(found_d * missed_d)
            if found(mid):
                found_d = mid
            else:
                missed_d = mid
    area_px = math.pi * found_d**2 / 4.0 if found_d is not None else None
    return {
        "diameter_px": found_d,
        "diameter_nm": found_d * pixel_size_nm if found_d and pixel_size_nm else None,
        "area_nm2": area_px * pixel_size_nm**2 if area_px and pixel_size_nm else None,
        "porosity": area_px / img.size if area_px else None,
        "pore_level": "the image's pores" if own is not None else "0 (empty column)",
        "found_share_required": FOUND_SHARE,
        "placements_per_diameter": placements,
        "tried": tried,
        "method": "one disc pore at a time injected into the normalised image, classified "
        "again; the smallest diameter (steps of √2 from 1 px, the last step halved twice) "
        "found in the required share",
    }
