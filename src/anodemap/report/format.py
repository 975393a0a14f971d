"""How the report writes numbers: one function per form, used by the page and its tests.

Every number on the page goes through :func:`num` or :func:`pct`, so a number of
``report.json`` can be found on the page by formatting it the same way.

Examples
--------
>>> num(14.486863546017776), num(256), num(0.0009220727), num(20243.64), num(None)
('14.49', '256', '9.221e-04', '20243.6', '–')
>>> pct(0.9061224489795918)
'90.6 %'
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MISSING", "num", "pct"]

# What the page shows where report.json holds null (no value): never an empty cell
MISSING = "–"


def num(value: Any) -> str:
    """A number as the page shows it.

    Integers in full; real numbers with four significant digits between 0.001 and
    1000, one decimal from 1000 on (none if whole: no exponent for capacities or
    counts), and in scientific notation below 0.001 (calibration residuals, Li-K
    fractions).

    Parameters
    ----------
    value : int, float or None

    Returns
    -------
    str
        ``"–"`` for None.

    Examples
    --------
    >>> num(3.0), num(3314.0), num(-7.283704412941461e-07), num(True)
    ('3', '3314', '-7.284e-07', 'yes')
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"
    if magnitude >= 1e-3:
        return f"{value:.4g}"
    return f"{value:.3e}"


def pct(value: Any) -> str:
    """A fraction (0 to 1) as a percentage with one decimal.

    Examples
    --------
    >>> pct(0.0), pct(1), pct(None)
    ('0.0 %', '100.0 %', '–')
    """
    if value is None:
        return MISSING
    return f"{100 * float(value):.1f} %"
