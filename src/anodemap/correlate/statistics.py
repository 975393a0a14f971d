"""Per-feature statistics: each map's values over the pixels of each feature class and
each connected region, with their uncertainties and the pixels counted and left out.

The statistics of a map are taken on the map's own pixels, never on interpolated
values: each pixel of the map is counted once, in the class (and region) of the survey
pixel its centre lies in (:func:`anodemap.registration.resample_labels` through the
registration). For a group of pixels (a class, a region) and a map:

- ``pixels``: the map's pixels in the group; ``flagged``: those without a usable value
  (its status, NaN; vacuum and "not analysed" for phase fractions); ``counted``: the
  rest; ``coverage``: the share of the group's area in the survey that the map covers;
- ``value``: the mean over the pixels counted (``area``: the group's area in the
  survey, nm²; ``area_fraction``: its share of the survey; ``regions``: their number;
  ``phase_fraction:P``: the share of phase P among the pixels counted; ``o_si``: the
  ratio of the group's mean O Kα and Si Kα net counts);
- ``se``: the standard error over the pixels, std / √counted (what the spread of the
  values says; neighbouring pixels that vary together make it a lower bound);
  ``map_sigma``: the 1σ of the mean from the map's own per-pixel 1σ, √(mean σ² /
  counted); ``systematic``: the mean calibration 1σ (Li/Si: it does not average away);
- ``p05``, ``median``, ``p95``: the spread of the values.

Beside these pixel-majority rows, :mod:`anodemap.correlate.unmix` adds per-class rows
``QUANTITY_unmixed`` (least squares of each pixel's value on its class shares) with
``effective_pixels``, ``se_fit`` and ``note``, empty in the rows here.

Examples
--------
>>> import numpy as np
>>> v = np.array([[1.0, 2.0], [3.0, np.nan]])
>>> m = Measured("li_si", "Li per Si", v, np.isfinite(v))
>>> row = value_row(m, np.ones((2, 2), bool))
>>> row["counted"], row["flagged"], row["value"], round(row["se"], 3)
(3, 1, 2.0, 0.577)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "COLUMNS",
    "MAX_FLAGGED_SHARE",
    "Group",
    "Measured",
    "fraction_rows",
    "ratio_row",
    "value_row",
]

#: A group whose pixels the map flags more than this share of has no value (the
#: unmixed means' rule, :func:`anodemap.correlate.unmix.unmix`).
MAX_FLAGGED_SHARE = 0.5

#: The columns of ``feature_statistics.csv``.
COLUMNS = (
    "group_kind",
    "group",
    "class",
    "region",
    "quantity",
    "units",
    "pixels",
    "flagged",
    "counted",
    "effective_pixels",
    "coverage",
    "value",
    "se",
    "se_fit",
    "map_sigma",
    "systematic",
    "std",
    "p05",
    "median",
    "p95",
    "note",
    "paper",
)


@dataclass
class Group:
    """Pixels of the reference frame that a row is about."""

    kind: str  # "class", "all", "region"
    name: str
    class_name: str
    region: int | None
    mask: np.ndarray


@dataclass
class Measured:
    """A map, as the statistics count it.

    Attributes
    ----------
    quantity, units : str
    values : ndarray
        On the map's own grid.
    valid : ndarray of bool
        Pixels with a usable value.
    sigma, systematic : ndarray, optional
        Per-pixel 1σ and systematic 1σ.
    legend : dict, optional
        Labels: code → name.
    """

    quantity: str
    units: str
    values: np.ndarray
    valid: np.ndarray
    sigma: np.ndarray | None = None
    systematic: np.ndarray | None = None
    legend: dict[str, str] | None = None


def _base(m: Measured, mask: np.ndarray) -> dict[str, Any]:
    use = mask & m.valid
    return {
        "quantity": m.quantity,
        "units": m.units,
        "pixels": int(mask.sum()),
        "flagged": int((mask & ~m.valid).sum()),
        "counted": int(use.sum()),
    }


def value_row(m: Measured, mask: np.ndarray) -> dict[str, Any]:
    """The statistics of the value map ``m`` over ``mask``; none (NaN, with a note)
    where the map flags more than half of its pixels there, as for the unmixed means
    (:mod:`anodemap.correlate.unmix`): the few left, at a pore's rim say, are not the
    group's.

    Examples
    --------
    >>> v = np.array([[1.0, np.nan], [np.nan, np.nan]])
    >>> row = value_row(Measured("li_si", "Li per Si", v, np.isfinite(v)), np.ones((2, 2), bool))
    >>> row["counted"], row["value"], row["note"]
    (1, nan, 'not estimable: the map has no value in 75 % of these pixels')
    """
    row = _base(m, mask)
    use = mask & m.valid
    v = np.asarray(m.values, float)[use]
    n = row["counted"]
    nan = float("nan")
    row.update(value=nan, se=nan, map_sigma=nan, systematic=nan, std=nan)
    row.update(p05=nan, median=nan, p95=nan)
    if row["flagged"] > MAX_FLAGGED_SHARE * row["pixels"]:
        share = 100.0 * row["flagged"] / row["pixels"]
        row["note"] = f"not estimable: the map has no value in {share:.0f} % of these pixels"
        return row
    if n:
        std = float(v.std(ddof=1)) if n > 1 else nan
        p05, med, p95 = (float(x) for x in np.percentile(v, (5, 50, 95)))
        row.update(value=float(v.mean()), std=std, p05=p05, median=med, p95=p95)
        row["se"] = std / math.sqrt(n) if n > 1 else nan
        if m.sigma is not None:
            s = np.asarray(m.sigma, float)[use]
            row["map_sigma"] = float(np.sqrt(np.nanmean(s**2) / n))
        if m.systematic is not None:
            row["systematic"] = float(np.nanmean(np.asarray(m.systematic, float)[use]))
    return row


def ratio_row(num: Measured, den: Measured, mask: np.ndarray, quantity: str) -> dict[str, Any]:
    """The ratio of the group's means of two maps over the pixels valid in both, with
    its standard error by the delta method (their covariance over the pixels kept)."""
    both = Measured(quantity, f"{num.quantity} / {den.quantity}", num.values, num.valid & den.valid)
    row = _base(both, mask)
    use = mask & both.valid
    a, b = np.asarray(num.values, float)[use], np.asarray(den.values, float)[use]
    nan = float("nan")
    row.update(value=nan, se=nan, map_sigma=nan, systematic=nan, std=nan)
    row.update(p05=nan, median=nan, p95=nan)
    n = row["counted"]
    if n > 1 and b.mean() > 0:
        ma, mb = float(a.mean()), float(b.mean())
        r = ma / mb
        cov = np.cov(a, b) / n
        var = r * r * (cov[0, 0] / ma**2 + cov[1, 1] / mb**2 - 2 * cov[0, 1] / (ma * mb))
        row.update(value=r, se=float(math.sqrt(max(var, 0.0))) if ma != 0 else nan)
        if num.sigma is not None and den.sigma is not None and ma != 0:
            va = np.nanmean(np.asarray(num.sigma, float)[use] ** 2) / n
            vb = np.nanmean(np.asarray(den.sigma, float)[use] ** 2) / n
            row["map_sigma"] = abs(r) * math.sqrt(va / ma**2 + vb / mb**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_pixel = a / b
        ok = np.isfinite(per_pixel) & (b > 0)
        if ok.any():
            p05, med, p95 = (float(x) for x in np.percentile(per_pixel[ok], (5, 50, 95)))
            row.update(p05=p05, median=med, p95=p95)
    return row


def fraction_rows(m: Measured, mask: np.ndarray, skip: set[str]) -> list[dict[str, Any]]:
    """The share of each label of the label map ``m`` (phases) among the group's pixels
    counted, labels named in ``skip`` (vacuum) not counted; binomial standard error."""
    legend = m.legend or {}
    values = np.asarray(m.values)
    counted_codes = [int(c) for c, name in legend.items() if name not in skip]
    valid = m.valid & np.isin(values, counted_codes)
    base = Measured(m.quantity, "share", values, valid)
    rows = []
    use = mask & base.valid
    for code in counted_codes:
        row = _base(base, mask)
        row["quantity"] = f"phase_fraction:{legend[str(code)]}"
        n = row["counted"]
        f = float((values[use] == code).sum()) / n if n else float("nan")
        se = math.sqrt(f * (1 - f) / n) if n else float("nan")
        nan = float("nan")
        row.update(value=f, se=se, map_sigma=nan, systematic=nan, std=nan)
        row.update(p05=nan, median=nan, p95=nan)
        rows.append(row)
    return rows
