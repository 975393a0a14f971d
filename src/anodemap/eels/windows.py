"""Energy-window maps: integrated intensity in a window, with or without a background.

The paper maps Li2O and lithium silicates with the second plasmon window
42 ± 2 eV after Richardson–Lucy deconvolution, and the Li-K edge with a
60 ± 2 eV window after a power-law background fitted below the edge.

All functions take spectra of shape ``(..., E)`` and a uniform energy axis
``(E,)`` in eV, and return arrays of shape ``(...)``.

Examples
--------
>>> import numpy as np
>>> from anodemap.eels.windows import integrate_window
>>> energy = np.arange(0, 100, 0.5)
>>> spectra = np.ones((2, energy.size))
>>> integrate_window(spectra, energy, 40.0, 44.0)  # 4 eV of 1 count/channel at 0.5 eV/ch
array([8., 8.])

References
----------
.. [1] R. F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*,
   3rd ed., Springer (2011), sec. 4.4.2 (power-law background, two-area method).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.status import Status

__all__ = [
    "LI2O_WINDOW_EV",
    "LI_K_WINDOW_EV",
    "LI_K_BACKGROUND_EV",
    "POWER_LAW_EXPONENT_RANGE",
    "EdgeSignal",
    "check_window",
    "integrate_window",
    "powerlaw_background",
    "powerlaw_two_area",
    "edge_window",
]

# The paper's windows (Results; Figures S4b, S8b-c, S10d-e): second plasmons of
# Li2O / lithium silicates at 42 ± 2 eV, and the Li-K edge at 60 ± 2 eV.
LI2O_WINDOW_EV = (40.0, 44.0)
LI_K_WINDOW_EV = (58.0, 62.0)
# Background fit window below the Li-K edge, on the single-scattering distribution
# (Fourier-log; there are no plural plasmons left in it). Model choice: the Li-K onset
# is at 54.7 eV (Li 1s binding energy, X-ray Data Booklet, Table 1-1; Egerton 2011,
# Appendix D: 55 eV), so the window ends 1.7 eV below it, clear of the onset's
# broadening; it starts at 30 eV, above the valence plasmons of Li_xSi (12.7-16.8 eV),
# Li2O (19 eV) and SiO2 (22 eV) with their widths. The width sets the noise of the
# extrapolated background: measured on the simulated 64 x 64 electrode (paper's counts),
# the error of the Li-K counts has a spread (std) of 72 counts with 30-53 eV, 87 with
# 35-53 eV and several hundred with 47-53 eV, for edges of 400-750 counts.
LI_K_BACKGROUND_EV = (30.0, 53.0)
# Exponents r of a pre-edge background A E^-r outside this range flag the pixel. Model
# choice: r is usually between 2 and 6 (Egerton 2011, sec. 4.4.2); the range is widened
# by the spread of r that counting noise gives over a 23 eV window (1st-99th percentile
# 1.1-8.6 over the simulated electrode, whose noise-free r is 3.7-4.2).
POWER_LAW_EXPONENT_RANGE = (1.0, 8.0)


def check_window(energy: np.ndarray, lo: float, hi: float, what: str = "window") -> None:
    """Raise a clear error if ``[lo, hi]`` is empty or not inside the energy axis."""
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        raise AnodemapInputError(f"{what} [{lo}, {hi}] eV is empty or not finite; give LO < HI")
    e0, e1 = float(energy[0]), float(energy[-1])
    if lo < e0 or hi > e1:
        raise AnodemapInputError(
            f"{what} [{lo:g}, {hi:g}] eV lies outside the energy axis [{e0:g}, {e1:g}] eV"
        )


def _window_weights(energy: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fraction of each channel (width = scale, centred on its energy) inside [lo, hi]."""
    scale = float(energy[1] - energy[0])
    left = energy - scale / 2
    right = energy + scale / 2
    overlap = np.clip(np.minimum(right, hi) - np.maximum(left, lo), 0.0, None)
    return overlap / scale


def integrate_window(spectra: np.ndarray, energy: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Counts integrated over ``[lo, hi]`` eV, with fractional end channels.

    Parameters
    ----------
    spectra : ndarray, shape (..., E)
    energy : ndarray, shape (E,)
        Uniform energy axis in eV (channel centres).
    lo, hi : float
        Window in eV.

    Returns
    -------
    ndarray, shape (...)
        Integrated counts (sum over channels, so counts, not counts × eV).
    """
    check_window(energy, lo, hi)
    w = _window_weights(energy, lo, hi)
    idx = np.nonzero(w)[0]
    return np.asarray(spectra)[..., idx] @ w[idx]


def powerlaw_background(
    spectra: np.ndarray, energy: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``A * E**-r`` to every spectrum in ``[lo, hi]`` eV (log-linear least squares).

    Channels with counts <= 0 are left out of the fit (their logarithm is undefined).

    Returns
    -------
    A, r : ndarray, shape (...)
        Amplitude and exponent; NaN where fewer than 3 positive channels are left.
    ok : ndarray of bool, shape (...)
    """
    check_window(energy, lo, hi, "background window")
    if lo <= 0:
        raise AnodemapInputError(f"a power-law background needs a window above 0 eV, got {lo:g}")
    sel = (energy >= lo) & (energy <= hi)
    x = np.log(energy[sel])
    y = np.asarray(spectra, dtype=np.float64)[..., sel]
    good = y > 0
    logy = np.log(np.where(good, y, 1.0))
    n = good.sum(-1)
    sx = (good * x).sum(-1)
    sy = (good * logy).sum(-1)
    sxx = (good * x * x).sum(-1)
    sxy = (good * x * logy).sum(-1)
    den = n * sxx - sx * sx
    ok = (n >= 3) & (den > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(ok, (n * sxy - sx * sy) / np.where(ok, den, 1.0), np.nan)
        intercept = np.where(ok, (sy - slope * sx) / np.where(ok, n, 1.0), np.nan)
    return np.exp(intercept), -slope, ok


def powerlaw_two_area(
    spectra: np.ndarray, energy: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``A * E**-r`` by the two-area method: the counts in both halves of ``[lo, hi]``.

    The window is split at the geometric mean ``m = sqrt(lo hi)``. With ``I1`` and ``I2``
    the counts in ``[lo, m]`` and ``[m, hi]``, a power law gives
    ``I1 / I2 = (hi/lo)**((r - 1)/2)`` exactly, so ``r = 1 + 2 ln(I1/I2) / ln(hi/lo)``
    (the two-area method of Egerton 2011, sec. 4.4.2, which splits at the midpoint and
    is exact only to first order), and ``A`` follows from ``I1 + I2``. Unlike a least-squares fit
    of ``ln(counts)`` per channel it needs no channel to be positive, only the two sums,
    so it holds on noisy deconvolved spectra with a few counts per channel.

    Parameters
    ----------
    spectra : ndarray, shape (..., E)
    energy : ndarray, shape (E,)
        Uniform axis in eV (channel centres).
    lo, hi : float
        Fit window in eV, ``0 < lo < hi``.

    Returns
    -------
    A : ndarray, shape (...)
        Amplitude in counts per channel at 1 eV (the model of a channel at energy E is
        ``A * E**-r``); NaN where a half has no positive counts.
    r : ndarray, shape (...)
        Exponent; NaN where a half has no positive counts.
    positive : ndarray of bool, shape (...)
        Both halves hold positive counts.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(20.0, 80.0, 0.05)
    >>> a, r, ok = powerlaw_two_area(1e7 * e**-3.5, e, 30.0, 53.0)
    >>> round(float(r), 2), bool(ok)
    (3.5, True)
    """
    check_window(energy, lo, hi, "background window")
    if lo <= 0:
        raise AnodemapInputError(f"a power-law background needs a window above 0 eV, got {lo:g}")
    mid = math.sqrt(lo * hi)
    i1 = integrate_window(spectra, energy, lo, mid)
    i2 = integrate_window(spectra, energy, mid, hi)
    positive = (i1 > 0) & (i2 > 0)
    scale = float(energy[1] - energy[0])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.where(positive, 1.0 + 2.0 * np.log(i1 / i2) / math.log(hi / lo), np.nan)
        a = (i1 + i2) * scale / _powerlaw_integral(lo, hi, r)
    return np.where(positive, a, np.nan), r, positive


def _powerlaw_integral(lo: float, hi: float, r: np.ndarray) -> np.ndarray:
    """``integral of E**-r over [lo, hi]`` (with the limit ``ln(hi/lo)`` at r = 1)."""
    r = np.asarray(r, dtype=float)
    near_one = np.abs(r - 1.0) < 1e-9
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        general = (hi ** (1.0 - r) - lo ** (1.0 - r)) / np.where(near_one, 1.0, 1.0 - r)
    return np.where(near_one, np.log(hi / lo), general)


class EdgeSignal(NamedTuple):
    """Result of :func:`edge_window`, arrays of the navigation shape."""

    signal: np.ndarray
    """Counts in the edge window above the background (NaN where ``status`` is not 0)."""
    exponent: np.ndarray
    """Exponent r of the fitted background ``A E^-r`` (NaN without positive counts)."""
    status: np.ndarray
    """uint8 :class:`~anodemap.status.Status`: OK, BACKGROUND_NO_COUNTS or
    BACKGROUND_EXPONENT."""


def edge_window(
    spectra: np.ndarray,
    energy: np.ndarray,
    window: tuple[float, float] = LI_K_WINDOW_EV,
    background: tuple[float, float] = LI_K_BACKGROUND_EV,
    *,
    exponent_range: tuple[float, float] = POWER_LAW_EXPONENT_RANGE,
) -> EdgeSignal:
    """Edge signal: counts in ``window`` above a power law fitted in ``background``.

    The power law ``A E^-r`` is fitted by the two-area method
    (:func:`powerlaw_two_area`) and its integral over ``window`` (analytic) is
    subtracted from the counts there. Pixels whose background cannot be trusted are NaN
    with a status: ``BACKGROUND_NO_COUNTS`` where a half of the background window holds no
    positive counts, ``BACKGROUND_EXPONENT`` where r lies outside ``exponent_range``.

    Use it on single-scattering distributions (Fourier-log): a power law does not
    describe the plural plasmons of a spectrum that still holds them.

    Parameters
    ----------
    spectra : ndarray, shape (..., E)
    energy : ndarray, shape (E,)
    window : (float, float)
        Integration window in eV (default: Li-K, 60 ± 2 eV as in the paper).
    background : (float, float)
        Pre-edge window for the power-law fit in eV; it must end below ``window``.
    exponent_range : (float, float)
        Accepted exponents r.

    Returns
    -------
    EdgeSignal
        ``(signal, exponent, status)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.arange(1.0, 100.0, 0.1)
    >>> s = 1e6 * e**-3.0 + np.where(e > 55, 10.0, 0.0)
    >>> signal, r, status = edge_window(s[None], e)
    >>> round(float(signal[0])), round(float(r[0]), 2), int(status[0])  # 10 counts x 40 channels
    (400, 3.0, 0)
    """
    check_window(energy, *window, what="edge window")
    if background[1] > window[0]:
        raise AnodemapInputError(
            f"background window {background} eV must end below the edge window {window} eV"
        )
    a, r, positive = powerlaw_two_area(spectra, energy, *background)
    scale = float(energy[1] - energy[0])
    total = integrate_window(spectra, energy, *window)
    with np.errstate(over="ignore", invalid="ignore"):
        bg = a * _powerlaw_integral(window[0], window[1], r) / scale
    status = np.full(np.shape(total), np.uint8(Status.OK), dtype=np.uint8)
    rmin, rmax = exponent_range
    status[~((r >= rmin) & (r <= rmax))] = Status.BACKGROUND_EXPONENT
    status[~positive] = Status.BACKGROUND_NO_COUNTS
    signal = np.where(status == Status.OK, total - bg, np.nan)
    return EdgeSignal(signal, r, status)
