"""Energy-window maps and edge signals: counts in a window, with or without a background.

The paper maps Li2O and lithium silicates with the second plasmon window
42 ± 2 eV after Richardson–Lucy deconvolution, and the Li-K edge with a
60 ± 2 eV window after a power-law background fitted below the edge
(:func:`edge_window`). :func:`edge_fit` measures the same counts with less noise: a
power law and an edge of known shape (the hydrogenic K-shell cross-section,
:func:`hydrogenic_k_edge`) fitted together below and above the edge, the counts in the
window taken from the fitted edge, each with its 1σ.

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
   3rd ed., Springer (2011), sec. 4.4.2 (power-law background, two-area method),
   sec. 3.6.1 (hydrogenic K-shell generalized oscillator strength) and sec. 4.5
   (fitting an edge with a background).
.. [2] W. K. Newey and K. D. West, "A simple, positive semi-definite, heteroskedasticity
   and autocorrelation consistent covariance matrix", *Econometrica* 55, 703 (1987).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.status import Status

__all__ = [
    "LI2O_WINDOW_EV",
    "LI_K_WINDOW_EV",
    "LI_K_BACKGROUND_EV",
    "LI_K_EDGE_FIT_EV",
    "LI_K_ONSET_EV",
    "POWER_LAW_EXPONENT_RANGE",
    "EdgeFit",
    "EdgeSignal",
    "check_window",
    "edge_fit",
    "edge_window",
    "hydrogenic_k_edge",
    "integrate_window",
    "powerlaw_background",
    "powerlaw_two_area",
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
# Li 1s binding energy: the Li-K onset (X-ray Data Booklet, LBNL, Table 1-1).
LI_K_ONSET_EV = 54.7
# Where :func:`edge_fit` fits the edge (with the background): from the start of the
# paper's window, 3.3 eV above the onset, so that the onset's broadening (lifetime,
# spectrometer resolution) and the near-edge structure closest to it are left out, to
# 95 eV, below the Si-L2,3 onset (99.4 eV, X-ray Data Booklet Table 1-1). Model choice;
# the end is cut to the recorded axis less the Fourier-log taper (73 eV on the
# simulated 75 eV axis).
LI_K_EDGE_FIT_EV = (58.0, 95.0)

# CODATA 2022 (https://physics.nist.gov/cuu/Constants/): Rydberg energy, Bohr radius,
# electron rest energy. Written out so that this module (imported by the command line
# for its options) stays light.
_RYDBERG_EV = 13.605693122990
_BOHR_CM = 5.29177210544e-9
_MC2_EV = 0.51099895069e6


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


def hydrogenic_k_edge(
    energy: np.ndarray,
    onset_ev: float,
    atomic_number: int,
    beam_energy_kev: float = 200.0,
    collection_angle_mrad: float = 10.0,
    *,
    n_q: int = 32,
) -> np.ndarray:
    """Energy-differential K-shell cross-section dσ/dE of the hydrogenic model, in cm²/eV.

    The generalized oscillator strength of a hydrogen-like K shell (Bethe; Egerton 2011,
    sec. 3.6.1), with the screened charge ``Z_s = Z - 1/2`` and two electrons, is
    integrated over the momentum transfers the spectrometer collects,

    ``dσ/dE = 4π a0² (R/T) (R/E) ∫ df/dE d(ln q²a0²)``,

    from ``q_min = k0 - k1`` to ``q_max² = q_min² + 4 k0 k1 sin²(β/2)`` (incident and
    scattered wave numbers from the relativistic momenta; ``T = m0 v²/2``). Below the
    hydrogenic threshold ``Z_s² R`` (85 eV for Li, above the real onset 54.7 eV) the
    oscillator strength is continued analytically, as in Egerton's SIGMAK3. The edge
    starts at the real ``onset_ev`` (0 below it), sharp: the broadening of a measured onset
    (lifetime, resolution) and the near-edge structure are not in the model.

    Parameters
    ----------
    energy : ndarray
        Energy losses in eV.
    onset_ev : float
        Edge onset (the K binding energy) in eV.
    atomic_number : int
        Z of the element (> 1).
    beam_energy_kev : float
        Incident energy in keV.
    collection_angle_mrad : float
        Spectrometer collection semi-angle β in mrad.
    n_q : int
        Gauss–Legendre nodes in ln q² (16 already agree with 256 to 1e-12 for Li-K).

    Returns
    -------
    ndarray
        dσ/dE per atom in cm²/eV, the shape of ``energy``.

    Examples
    --------
    >>> e = np.array([50.0, 60.0, 70.0])
    >>> s = hydrogenic_k_edge(e, 54.7, 3)   # Li-K, 200 keV, 10 mrad
    >>> float(s[0]), round(float(np.log(s[1] / s[2]) / np.log(70 / 60)), 1)  # ~ E^-3.5
    (0.0, 3.5)
    """
    if atomic_number < 2:
        raise AnodemapInputError(f"atomic_number={atomic_number}: the model needs Z >= 2")
    if not (beam_energy_kev > 0 and collection_angle_mrad > 0):
        raise AnodemapInputError(
            f"beam energy {beam_energy_kev!r} keV and collection angle "
            f"{collection_angle_mrad!r} mrad must be positive (--beam-energy, "
            "--collection-angle)"
        )
    e = np.asarray(energy, dtype=np.float64)
    out = np.zeros(e.shape)
    on = (e >= onset_ev) & (e < beam_energy_kev * 1e3)
    loss = e[on]
    e0 = beam_energy_kev * 1e3
    gamma = 1.0 + e0 / _MC2_EV
    t_kin = 0.5 * _MC2_EV * (1.0 - 1.0 / gamma**2)  # m0 v^2 / 2 (eV)
    # (k a0)^2 = p^2 / (2 m0 R), (pc)^2 = E_kin^2 + 2 E_kin m0c^2
    k0 = math.sqrt((e0**2 + 2.0 * e0 * _MC2_EV) / (2.0 * _MC2_EV * _RYDBERG_EV))
    e1 = e0 - loss
    k1 = np.sqrt((e1**2 + 2.0 * e1 * _MC2_EV) / (2.0 * _MC2_EV * _RYDBERG_EV))
    qmin2 = (k0 - k1) ** 2
    qmax2 = qmin2 + 4.0 * k0 * k1 * math.sin(0.5e-3 * collection_angle_mrad) ** 2
    zs = atomic_number - 0.5
    nodes, weights = np.polynomial.legendre.leggauss(n_q)
    lo, hi = np.log(qmin2), np.log(qmax2)
    half = 0.5 * (hi - lo)
    lnq2 = half[:, None] * nodes[None, :] + (0.5 * (hi + lo))[:, None]
    q = np.exp(lnq2) / zs**2  # Q = q^2 a0^2 / Zs^2
    k2 = (loss / (zs**2 * _RYDBERG_EV) - 1.0)[:, None]
    a = q - k2 + 1.0
    k = np.sqrt(np.maximum(np.abs(k2), 1e-12))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        # continuum (k^2 >= 0) and its analytic continuation below Zs^2 R (k^2 < 0)
        above = -2.0 / k * np.arctan2(2.0 * k, a) - np.log1p(-np.exp(-2.0 * np.pi / k))
        below = -(np.log1p(2.0 * k / a) - np.log1p(-2.0 * k / a)) / k
    exponent = np.where(k2 >= 0.0, above, below)
    dfde = (
        256.0
        * loss[:, None]
        / (zs**4 * _RYDBERG_EV**2)
        * (q + k2 / 3.0 + 1.0 / 3.0)
        * np.exp(exponent)
        / (a**2 + 4.0 * k2) ** 3
    )
    integral = half * (dfde @ weights)
    out[on] = 4.0 * math.pi * _BOHR_CM**2 * (_RYDBERG_EV / t_kin) * (_RYDBERG_EV / loss) * integral
    return out


class EdgeFit(NamedTuple):
    """Result of :func:`edge_fit`, arrays of the navigation shape."""

    signal: np.ndarray
    """Edge counts in the window: from the fitted edge (``method="fit"``) or the counts
    there above the background (``method="window"``); NaN where ``status`` is not 0."""
    error: np.ndarray
    """1σ of ``signal`` (counting noise, from the fit's residuals); NaN where ``status``
    is not 0."""
    exponent: np.ndarray
    """Exponent r of the background ``A E^-r`` (the fitted one for ``"fit"``, the
    two-area one for ``"window"``)."""
    status: np.ndarray
    """uint8 :class:`~anodemap.status.Status`: OK, BACKGROUND_NO_COUNTS,
    BACKGROUND_EXPONENT or NOT_CONVERGED."""


def edge_fit(
    spectra: np.ndarray,
    energy: np.ndarray,
    shape: np.ndarray,
    window: tuple[float, float] = LI_K_WINDOW_EV,
    background: tuple[float, float] = LI_K_BACKGROUND_EV,
    edge_range: tuple[float, float] = LI_K_EDGE_FIT_EV,
    *,
    exponent_range: tuple[float, float] = POWER_LAW_EXPONENT_RANGE,
    method: str = "fit",
    correlation_ev: float = 0.0,
    variance: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> EdgeFit:
    """Edge counts in ``window`` with their 1σ, from a power law and an edge fitted together.

    The model ``A E^-r + B s(E)``, with ``s`` the edge's shape (e.g.
    :func:`hydrogenic_k_edge`), is fitted by least squares to the channels of
    ``background`` (below the edge) and of ``edge_range`` (above it), starting from the
    two-area power law of ``background`` (:func:`powerlaw_two_area`). ``A`` and ``B``
    are linear, ``r`` is found by Levenberg–Marquardt. Then:

    * ``method="fit"``: the counts are the fitted edge's in ``window``,
      ``B * sum(s)`` over it. They rest on every channel of ``edge_range``, not only
      those of the window, and so are less noisy than the window's counts, but they
      assume the edge has the shape ``s`` from the start of ``edge_range`` on;
    * ``method="window"``: the counts in ``window`` less the two-area background, as
      :func:`edge_window` (the paper's map); the fit gives only their 1σ.

    The 1σ is that of the estimate as a linear function of the channels,
    ``signal = sum(u * y)`` (to first order). Without ``variance``, the noise covariance
    of the channels is estimated from the fit's residuals: each channel's variance its
    squared residual (White's heteroscedasticity-consistent estimate), with Bartlett-
    weighted products of neighbours to ``correlation_ev`` (Newey–West) where the noise is
    correlated over a short range. That suits spectra whose noise is local (counting
    noise of a recorded spectrum). The noise of a deconvolved spectrum is not: it holds
    the noise of the whole recorded spectrum spread smoothly over all energies, which
    the residuals of a smooth model cannot see; give then ``variance(u, sel)``, which
    returns the variance of ``sum(u * y)`` for influences ``u`` of shape
    ``(n, len(sel))`` on the channels ``sel`` of ``energy`` (the pipeline propagates the
    counting noise of the recorded spectra through Fourier-log).

    Parameters
    ----------
    spectra : ndarray, shape (..., E)
        Single-scattering distributions (e.g. after Fourier-log), counts per channel.
    energy : ndarray, shape (E,)
        Uniform energy axis in eV.
    shape : ndarray, shape (E,)
        The edge's shape on ``energy`` (any scale; 0 below the onset).
    window : (float, float)
        Window of the counts reported, in eV.
    background : (float, float)
        Pre-edge window in eV; it must end below ``window`` and ``edge_range``.
    edge_range : (float, float)
        Channels above the onset that the fit sees, in eV; cut to the axis.
    exponent_range : (float, float)
        Accepted exponents r.
    method : {"fit", "window"}
        Where the counts come from (see above).
    correlation_ev : float
        Range of the noise correlation between channels, in eV, for the residual-based
        1σ (0: independent channels).
    variance : callable, optional
        ``variance(u, sel) -> ndarray (n,)``: the variance of ``sum(u * y)`` (see above).

    Returns
    -------
    EdgeFit
        ``(signal, error, exponent, status)``; ``status`` NOT_CONVERGED where the fit
        found no minimum (for ``method="window"`` only where the 1σ rests on the fit's
        residuals), and as :func:`edge_window` otherwise.

    Examples
    --------
    >>> e = np.arange(20.0, 80.0, 0.2)
    >>> s = hydrogenic_k_edge(e, 54.7, 3)
    >>> spectrum = 1e7 * e**-3.5 + 500 * s / integrate_window(s, e, 58.0, 62.0)
    >>> fit = edge_fit(spectrum[None], e, s, edge_range=(58.0, 78.0))
    >>> round(float(fit.signal[0])), round(float(fit.exponent[0]), 2), int(fit.status[0])
    (500, 3.5, 0)
    """
    if method not in ("fit", "window"):
        raise AnodemapInputError(f"method={method!r}: must be 'fit' or 'window'")
    check_window(energy, *window, what="edge window")
    check_window(energy, *background, what="background window")
    lo_e, hi_e = float(edge_range[0]), min(float(edge_range[1]), float(energy[-1]))
    check_window(energy, lo_e, hi_e, "edge fit range")
    if background[1] > min(window[0], lo_e):
        raise AnodemapInputError(
            f"background window {background} eV must end below the edge window {window} eV "
            f"and the edge fit range {edge_range} eV"
        )
    if method == "window" and not lo_e <= window[0] < window[1] <= hi_e:
        # the 1σ of the window's counts needs every channel of the window in the fit
        raise AnodemapInputError(
            f"edge fit range [{lo_e:g}, {hi_e:g}] eV must hold the edge window {window} eV "
            "for method='window'"
        )
    spectra = np.asarray(spectra, dtype=np.float64)
    nav = spectra.shape[:-1]
    flat = spectra.reshape(-1, spectra.shape[-1])
    scale = float(energy[1] - energy[0])
    pre = (energy >= background[0]) & (energy <= background[1])
    post = (energy >= lo_e) & (energy <= hi_e)
    sel = np.flatnonzero(pre | post)
    seg = post[sel].astype(np.int64)
    e_sel = energy[sel]
    x = np.log(e_sel / math.sqrt(e_sel[0] * e_sel[-1]))  # centred: A and r less correlated
    w_win = _window_weights(energy, *window)
    shape = np.asarray(shape, dtype=np.float64)
    norm = float(shape @ w_win)
    if not norm > 0:
        raise AnodemapInputError(f"the edge shape is 0 in the window {window} eV")
    h = shape[sel] / norm  # B is then the edge's counts in the window
    a2, r2, positive = powerlaw_two_area(flat, energy, *background)
    start = np.where(np.isfinite(r2), np.clip(r2, *exponent_range), 0.5 * sum(exponent_range))
    y = np.ascontiguousarray(flat[:, sel])
    n_pix = flat.shape[0]
    amp = np.empty(n_pix)
    r = np.empty(n_pix)
    b = np.empty(n_pix)
    var = np.empty(n_pix)
    converged = np.empty(n_pix, dtype=np.bool_)
    resid = np.empty_like(y)
    infl = np.empty_like(y)
    lags = max(0, int(round(correlation_ev / scale)))
    from anodemap.eels._edge_kernels import edge_fit_kernel, hac_variance

    if method == "fit" or variance is None:
        edge_fit_kernel(y, x, h, seg, start, lags, amp, r, b, var, converged, resid, infl)
    else:
        converged[:] = True  # the window's counts and 1σ need no fit
    if method == "fit":
        signal, exponent = b, r
        if variance is not None:
            var = variance(infl, sel)
    else:
        # the paper's counts, and their sensitivity to each channel: the window's
        # weights less the two-area background's derivatives (through its two sums)
        total = flat @ w_win
        mid = math.sqrt(background[0] * background[1])
        i1 = integrate_window(flat, energy, background[0], mid)
        i2 = integrate_window(flat, energy, mid, background[1])
        ratio, dratio = _background_ratio(window, background, r2)
        bg = (i1 + i2) * ratio
        signal, exponent = total - bg, r2
        dr = 2.0 / math.log(background[1] / background[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            d1 = ratio + (i1 + i2) * dratio * dr / i1
            d2 = ratio - (i1 + i2) * dratio * dr / i2
        c1 = _window_weights(energy, background[0], mid)[sel]
        c2 = _window_weights(energy, mid, background[1])[sel]
        u = w_win[sel][None, :] - d1[:, None] * c1[None, :] - d2[:, None] * c2[None, :]
        u = np.ascontiguousarray(np.where(np.isfinite(u), u, 0.0))
        if variance is not None:
            var = variance(u, sel)
        else:
            var = np.empty(n_pix)
            hac_variance(u, resid, seg, lags, 3, var)
    status = np.full(n_pix, np.uint8(Status.OK), dtype=np.uint8)
    rmin, rmax = exponent_range
    status[~((exponent >= rmin) & (exponent <= rmax))] = Status.BACKGROUND_EXPONENT
    if method == "fit" or variance is None:
        # the window's counts need the fit only for a residual-based 1σ
        status[~converged] = Status.NOT_CONVERGED
    status[~positive] = Status.BACKGROUND_NO_COUNTS
    good = status == Status.OK
    signal = np.where(good, signal, np.nan)
    error = np.where(good, np.sqrt(np.maximum(var, 0.0)), np.nan)
    return EdgeFit(
        signal.reshape(nav), error.reshape(nav), exponent.reshape(nav), status.reshape(nav)
    )


def _background_ratio(
    window: tuple[float, float], background: tuple[float, float], r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A power law's counts in ``window`` per count in ``background``, and d/dr of it."""

    def ratio(rr: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _powerlaw_integral(*window, rr) / _powerlaw_integral(*background, rr)

    step = 1e-4
    return ratio(r), (ratio(r + step) - ratio(r - step)) / (2 * step)
