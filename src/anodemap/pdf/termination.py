"""The termination bias of the peak positions of G(r), estimated from a model of the peaks.

G(r) is computed from φ(s) over a finite s range ``[s_lo, s_max]`` and under a damping
window, so every peak of the true G(r) is seen through a kernel about as wide as
``1/s_max``: its own shape is symmetric, but the tails and ripples of the neighbouring
peaks and of the peak's mirror image at ``-r`` are not, and they move the apparent
maximum. For diamond silicon seen up to s_max = 2.0 1/Å the first peak sits 0.009 Å and
the second 0.012 Å below the true distances (``docs/pdf.md``), more than the bootstrap
interval of a region of a few tens of patterns.

The bias is estimated by forward modelling (model choice, validated in ``docs/pdf.md``):
every peak found in the measured G(r) becomes a Gaussian shell of pair distances (position
r_k, spread σ_k, weight a_k), whose reduced intensity is the Debye form
``a_k sin(2π s r_k) exp(-2π² σ_k² s²)``. The model's G(r) is computed from it on the *same*
s samples, with the *same* damping, and its apparent peaks found by the same peak search;
r_k, σ_k and a_k are adjusted (a fixed-point iteration) until the model's apparent peaks
have the measured positions, widths and heights. The bias of a peak is then its apparent
position minus the model's distance, ``b_k = r_app - r_k``, and ``r_app - b_k`` is the
corrected distance.

Its uncertainty is stated, not hidden: the correction is taken to be known to within its
own size (systematic half-width ``|b_k|``). A peak with a neighbour closer than
``OVERLAP_GAP`` resolution widths, or whose half height is not reached before its
neighbour, is *overlapped*: the model cannot separate the two (measured: the correction of
r2 of diamond Si at s_max = 1.6 1/Å, 1.4 resolution widths from r3, went the wrong way),
so it is not applied, and the systematic half-width is ``max(|b_k|, OVERLAP_FRACTION ×
resolution FWHM)``; so is a peak whose model did not converge (bias 0).

Examples
--------
>>> import numpy as np
>>> from anodemap.pdf import pair_distribution
>>> s = np.linspace(0.2, 2.0, 721)
>>> shells = [(2.352, 4 / 2.352), (3.840, 12 / 3.840)]   # (distance Å, weight n/r)
>>> phi = sum(a * np.sin(2 * np.pi * s * d) * np.exp(-0.05 * s**2) for d, a in shells)
>>> r = np.arange(0.0, 8.0, 0.005)
>>> g = pair_distribution(s, phi, r)
>>> c = termination_corrections(s, r, g, [2.35, 3.84])
>>> [round(x.bias, 4) != 0 for x in c], [abs(x.bias) == x.systematic for x in c]
([True, True], [True, True])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anodemap.pdf.transform import Damping, damping_window, find_peaks

__all__ = [
    "OVERLAP_FRACTION",
    "TerminationCorrection",
    "resolution_fwhm",
    "termination_corrections",
]

#: Least systematic half-width of an overlapped or unconverged peak, as a fraction of the
#: resolution FWHM (model choice from the measured worst case: r2 of diamond Si at
#: s_max = 1.6 1/Å, overlapped by r3, is 0.014 Å = 3 % of the 0.47 Å resolution away from
#: the truth after the correction).
OVERLAP_FRACTION = 0.05
#: A peak with a neighbour closer than this many resolution FWHMs is overlapped (model
#: choice: diamond Si's r2 and r3, 0.66 Å apart, are corrected to within 0.002 Å at
#: s_max = 1.8 1/Å, 1.5 widths apart, and wrongly at 1.6, 1.4 widths apart).
OVERLAP_GAP = 1.5
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_MAX_ITER = 40
_TOLERANCE = 1e-4  # Å: model positions match the measured ones
_CONVERGED = 2e-3  # Å: a target whose model is further away is not corrected
_SIGMA_MAX = 0.5  # Å: a wider shell is not a peak


@dataclass(frozen=True)
class TerminationCorrection:
    """The estimated termination bias of one peak.

    Attributes
    ----------
    bias : float
        Apparent position minus the model's distance, Å (subtract it from the apparent
        position); 0 where not converged.
    systematic : float
        Half-width of the correction's own uncertainty, Å.
    sigma : float
        Spread of the model's shell of distances, Å (NaN where not converged).
    overlapped : bool
        The peak's half height is not reached before a neighbour (FWHM undefined).
    converged : bool
        The model reproduced the measured peak.
    """

    bias: float
    systematic: float
    sigma: float
    overlapped: bool
    converged: bool


def _weights(s: np.ndarray, damping: Damping, s_max: float | None) -> np.ndarray:
    """Trapezoid weights × window × 8π: G = sin(2π r s) @ weights·φ."""
    ds = np.diff(s)
    w = np.zeros_like(s)
    w[:-1] += 0.5 * ds
    w[1:] += 0.5 * ds
    return 8.0 * np.pi * w * damping_window(s, damping, s_max)


def resolution_fwhm(s: np.ndarray, damping: Damping = "lorch", s_max: float | None = None) -> float:
    """FWHM (Å) of the G(r) peak of one sharp shell seen over ``s`` with ``damping``.

    Examples
    --------
    >>> round(resolution_fwhm(np.linspace(0.2, 2.0, 721)), 2)
    0.39
    """
    s = np.asarray(s, dtype=np.float64)
    r0 = 5.0 + 2.0 / float(s[-1])
    r = np.arange(r0 - 2.0, r0 + 2.0, 0.002)
    g = np.sin(2.0 * np.pi * np.outer(r, s)) @ (
        _weights(s, damping, s_max) * np.sin(2 * np.pi * s * r0)
    )
    peak = min(find_peaks(r, g, n=10, r_min=0.0), key=lambda p: abs(p.r_angstrom - r0))
    return float(peak.fwhm_angstrom)


def termination_corrections(
    s: np.ndarray,
    r: np.ndarray,
    g: np.ndarray,
    targets: Sequence[float],
    *,
    damping: Damping = "lorch",
    s_max: float | None = None,
    r_min: float = 1.0,
) -> list[TerminationCorrection]:
    """The termination bias of the peaks of ``g`` at ``targets`` (see the module).

    Parameters
    ----------
    s : array_like
        The s samples (1/Å) G(r) was computed from (``ReducedIntensity.s``).
    r, g : array_like
        The r grid (Å) and G(r) as computed (with ``damping``).
    targets : sequence of float
        Apparent positions of the peaks to correct (from :func:`find_peaks`).
    damping, s_max :
        As given to :func:`~anodemap.pdf.pair_distribution`.
    r_min : float
        As given to :func:`find_peaks`, Å.

    Returns
    -------
    list of TerminationCorrection
        One per target, in order.
    """
    s = np.asarray(s, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    wres = resolution_fwhm(s, damping, s_max)
    floor = OVERLAP_FRACTION * wres
    found = find_peaks(r, g, n=r.size, r_min=r_min)
    if not found:
        return [TerminationCorrection(0.0, floor, float("nan"), True, False) for _ in targets]
    rm = np.array([p.r_angstrom for p in found])
    hm = np.array([p.height for p in found])
    wm = np.array([p.fwhm_angstrom for p in found])
    model = _fit_shells(s, r, rm, hm, wm, wres, _weights(s, damping, s_max), r_min)
    out = []
    gaps = np.diff(rm)
    nearest = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    for t in targets:
        k = int(np.argmin(np.abs(rm - t)))
        overlapped = bool(not np.isfinite(wm[k]) or nearest[k] < OVERLAP_GAP * wres)
        if model is None or not abs(model[2][k] - rm[k]) <= _CONVERGED:
            out.append(TerminationCorrection(0.0, floor, float("nan"), overlapped, False))
            continue
        rk, sk, _ = model
        bias = float(rm[k] - rk[k])
        if overlapped:  # not applied: its size only widens the interval
            out.append(TerminationCorrection(0.0, max(abs(bias), floor), float(sk[k]), True, True))
        else:
            out.append(TerminationCorrection(bias, abs(bias), float(sk[k]), False, True))
    return out


def _fit_shells(
    s: np.ndarray,
    r: np.ndarray,
    rm: np.ndarray,
    hm: np.ndarray,
    wm: np.ndarray,
    wres: float,
    weights: np.ndarray,
    r_min: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Shells (distance, spread) whose modelled G has the measured peaks; with the model's
    apparent positions (NaN for a peak the model lost). None where it has no peak."""
    sine = np.sin(2.0 * np.pi * np.outer(r, s)) * weights  # (n_r, n_s)
    idx = np.clip(np.searchsorted(r, rm), 0, r.size - 1)
    width_ok = np.isfinite(wm)
    rk = rm.copy()
    var = np.where(width_ok, (np.where(width_ok, wm, wres) ** 2 - wres**2), 0.0)
    var = np.clip(var / _FWHM_PER_SIGMA**2, 0.0, _SIGMA_MAX**2)
    gaps = np.diff(rm)
    reach = 0.5 * np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    ra = rm.copy()
    for _ in range(_MAX_ITER):
        shells = np.sin(2.0 * np.pi * np.outer(s, rk)) * np.exp(
            -2.0 * np.pi**2 * np.outer(s**2, var)
        )
        unit = sine @ shells  # (n_r, K): G of each shell of weight 1
        try:
            a = np.linalg.solve(unit[idx], hm)
        except np.linalg.LinAlgError:
            a = np.linalg.lstsq(unit[idx], hm, rcond=None)[0]
        seen = find_peaks(r, unit @ a, n=r.size, r_min=r_min)
        if not seen:
            return None
        pos = np.array([p.r_angstrom for p in seen])
        wid = np.array([p.fwhm_angstrom for p in seen])
        near = np.argmin(np.abs(pos[None, :] - rm[:, None]), axis=1)
        matched = np.abs(pos[near] - rm) <= reach
        ra = np.where(matched, pos[near], np.nan)  # a lost peak is not moved
        step = np.where(matched, rm - pos[near], 0.0)
        # a shell stays within half a resolution width of its peak: a weak peak beside a
        # strong one must not wander off (it would be another peak)
        rk = np.clip(rk + step, rm - 0.5 * wres, rm + 0.5 * wres)
        wa = wid[near]
        both = width_ok & matched & np.isfinite(wa)
        var = np.clip(
            var + np.where(both, wm**2 - np.where(both, wa, 0.0) ** 2, 0.0) / _FWHM_PER_SIGMA**2,
            0.0,
            _SIGMA_MAX**2,
        )
        if np.max(np.abs(step)) < _TOLERANCE:
            break
    return rk, np.sqrt(var), ra
