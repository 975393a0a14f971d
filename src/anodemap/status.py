"""Per-pixel status codes shared by every per-pixel kernel.

Every map that anodemap produces comes with an integer status map of the same
shape (``uint8``). A pixel that fails never stops a map and never becomes an
unexplained NaN: its value is NaN *and* its status says why.

The codes are stable (they are written into result files); add new codes at the
end, never renumber.

Examples
--------
>>> from anodemap.status import Status, describe
>>> int(Status.OK)
0
>>> describe(Status.PEAK_OUTSIDE_WINDOW)
'peak outside the fit window'
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

import numpy as np


class Status(IntEnum):
    """Why a pixel has the value it has."""

    OK = 0
    NOT_CONVERGED = 1
    PEAK_OUTSIDE_WINDOW = 2
    NO_SIGNAL = 3
    INVALID_INPUT = 4
    NO_ZERO_LOSS = 5
    OUTSIDE_CALIBRATION = 6
    STRONGEST_PEAK_OUTSIDE_WINDOW = 7
    BACKGROUND_NO_COUNTS = 8
    BACKGROUND_EXPONENT = 9
    TOO_THICK = 10
    VACUUM = 11
    NOT_INDEXED = 12


_DESCRIPTIONS = {
    Status.OK: "converged",
    Status.NOT_CONVERGED: "fit did not converge",
    Status.PEAK_OUTSIDE_WINDOW: "peak outside the fit window",
    Status.NO_SIGNAL: "no signal (too few counts in the window)",
    Status.INVALID_INPUT: "invalid input (NaN, infinite or negative counts)",
    Status.NO_ZERO_LOSS: "no zero-loss peak found",
    Status.OUTSIDE_CALIBRATION: "plasmon energy outside the calibrated range",
    Status.STRONGEST_PEAK_OUTSIDE_WINDOW: (
        "converged, but the strongest loss peak lies outside the fit window"
    ),
    Status.BACKGROUND_NO_COUNTS: "edge background: no positive counts below the edge",
    Status.BACKGROUND_EXPONENT: "edge background: power-law exponent outside the physical range",
    Status.TOO_THICK: "too thick for the edge background (plural scattering: t/λ above the limit)",
    Status.VACUUM: "vacuum: next to nothing scattered outside the direct beam (no specimen)",
    Status.NOT_INDEXED: "crystalline (Bragg spots), but no given phase reproduces them",
}

# Codes that flag a usable value rather than a failure: the pixel keeps its value (a
# converged plasmon fit) and the code says what to keep in mind.
WARNINGS = frozenset({Status.STRONGEST_PEAK_OUTSIDE_WINDOW})


def describe(code: int) -> str:
    """Return a short human-readable description of a status code."""
    return _DESCRIPTIONS[Status(int(code))]


def legend(codes: Iterable[int] | None = None) -> dict[str, str]:
    """Mapping ``{"code": description}`` for every status (or only ``codes``)."""
    wanted = list(Status) if codes is None else [Status(int(c)) for c in codes]
    return {str(int(s)): _DESCRIPTIONS[s] for s in wanted}


def counts(status_map: np.ndarray, codes: Iterable[int] | None = None) -> dict[str, int]:
    """Number of pixels with each status, keyed by the status name.

    Parameters
    ----------
    status_map : ndarray
    codes : iterable of int, optional
        Only these codes (default: every code).
    """
    values = np.asarray(status_map).ravel()
    wanted = list(Status) if codes is None else [Status(int(c)) for c in codes]
    return {s.name.lower(): int(np.count_nonzero(values == int(s))) for s in wanted}
