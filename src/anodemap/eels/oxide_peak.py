"""The Li_xSi plasmon where a Li2O/silicate plasmon overlaps it: a second, oxide peak.

At grain boundaries the beam crosses Li_xSi and the Li2O/lithium-silicate layer
together. The paper places the Li2O plasmon at 19 eV and the SiO2 plasmon at 22 eV
(its refs. 41 and 45), above the Li_xSi plasmons (12.74-16.83 eV), and notes that
their overlap makes that range hard to use. A one-peak fit of such a spectrum lands
between the two peaks: the Li_xSi energy reads high and Li/Si low (measured on the
simulated region: -0.10, -0.17, -0.23 Li/Si at oxide shares 0.3-0.4, 0.4-0.5,
0.5-0.6), which is why the paper leaves grain boundaries out of its plasmon averages.

:func:`fit_oxide_peak` refits a pixel with the one-peak model of
:func:`anodemap.eels.plasmon.fit_plasmon` (its first-plasmon lineshape, plural orders
and background, started from its solution) plus one Lorentzian for the oxide:

    I(E) = [one-peak model](E) + A_ox · L(E; E_ox, G_ox)

with E_ox held within the paper's 19-22 eV (:data:`OXIDE_PEAK_RANGE_EV`), G_ox within
:data:`OXIDE_WIDTH_RANGE_EV` (model choice) and the Li_xSi position below 19 eV. The
oxide's own plural orders (2·E_ox >= 38 eV) and its cross term with Li_xSi
(E0 + E_ox >= 31 eV) lie above the default 8-25 eV window and are not modelled.

A pixel is refitted where a score test at the one-peak solution (Rao's: the gain in
χ² that a fixed-shape oxide peak of any of 12 centres and widths could bring, without
fitting it) reaches :data:`SCREEN_SIGMA`, or, from a fresh start, where the one-peak
fit did not converge (where it stopped is no start: 20-30 eV wide peaks under a
negative background); the test costs a fraction of the fit, which most oxide-free
pixels then skip. The two-peak
result replaces the one-peak one only where the oxide peak is there: its area at least
:data:`MIN_SIGNIFICANCE` standard errors (model choice). On spectra made
by a Poisson sum of Drude plasmons (tests/eels/test_oxide_peak.py, not anodemap's
simulator) no oxide-free spectrum passed that test, and where 40-60 % of the
single scattering was a 19-22 eV oxide the Li_xSi peak came back within 0.04 eV where
the one-peak fit was off by 0.15-2.6 eV.

Examples
--------
>>> import numpy as np
>>> from anodemap.eels.plasmon import fit_plasmon, lorentzian
>>> e = np.arange(0.0, 40.0, 0.05)
>>> y = lorentzian(e, 2e5, 15.0, 4.0) + lorentzian(e, 1.2e5, 20.0, 5.0) + 50.0
>>> one = fit_plasmon(y, e, second_plasmon=False, background="offset")
>>> two = fit_oxide_peak(y, e, one)
>>> round(float(one.position), 1), round(float(two.position), 2), bool(two.selected)
(16.7, 15.0, True)
>>> bool(np.allclose(two.model_spectrum(e), y, rtol=1e-4))
True
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Any

import numpy as np

from anodemap.eels import _lm
from anodemap.eels.plasmon import (
    _BG_ID,
    _MODEL_ID,
    PlasmonFit,
    _c64,
    _drude_area_factor,
    _drude_emax,
    _drude_fwhm,
    _eval_model,
    _PlasmonModel,
    _valid_step,
    _window_geometry,
    _window_slice,
    lorentzian,
    model_spectrum,
)
from anodemap.errors import AnodemapInputError
from anodemap.status import Status

__all__ = [
    "MIN_SIGNIFICANCE",
    "OXIDE_PEAK_RANGE_EV",
    "OXIDE_WIDTH_RANGE_EV",
    "SCREEN_SIGMA",
    "OxidePeakFit",
    "fit_oxide_peak",
    "holds_oxide_range",
]

# The plasmon of Si, the highest of the Li_xSi plasmons (eV; the paper's 16.83 eV).
_SI_PLASMON_EV = 16.83
#: Where the oxide plasmon may lie (eV): Li2O 19 eV and SiO2 22 eV, the paper's values
#: (its refs. 41 and 45); lithium silicates, Li2O-SiO2 mixtures, lie between.
OXIDE_PEAK_RANGE_EV = (19.0, 22.0)
#: Bounds of the oxide peak's FWHM (eV): model choice (no width is given for these
#: oxides; the 3-8 eV tested lie inside), narrow enough not to become a background.
OXIDE_WIDTH_RANGE_EV = (1.0, 10.0)
#: The oxide peak counts when its fitted area is at least this many standard errors
#: (model choice; oxide-free Drude spectra refitted regardless: median 0.3-0.8, 1 pixel
#: of 72 at 3.2).
MIN_SIGNIFICANCE = 3.0
#: Score-test z from which a converged pixel is refitted with the oxide peak: the usual
#: 5σ of a detection searched over many positions (model choice). Measured: oxide-free
#: Drude spectra at most 4.0 (median 1.2-1.8), oxide mixtures 14 or more.
SCREEN_SIGMA = 5.0
#: Start of the oxide peak: a tenth of the Li_xSi area (model choice), 5 eV wide.
_START_AREA_FRACTION = 0.1
_START_WIDTH_EV = 5.0

_OK = int(Status.OK)
_NO_SIGNAL = int(Status.NO_SIGNAL)
_OUTSIDE = int(Status.PEAK_OUTSIDE_WINDOW)
_NOT_CONVERGED = int(Status.NOT_CONVERGED)
_INV_PI = 1.0 / np.pi

# The solver's pass-through: the one-peak model and the index of the oxide's area
# (its centre and width follow).
_TwoPeakModel = namedtuple("_TwoPeakModel", ["base", "j"])


@_lm.jit_fast
def _eval_two(p, tm, f, jac):
    """One-peak model (:func:`anodemap.eels.plasmon._eval_model`) plus the oxide
    Lorentzian (area p[j], centre p[j+1], FWHM p[j+2]) and its Jacobian rows."""
    _eval_model(p, tm.base, f, jac)
    e = tm.base.energy
    j = tm.j
    amp = p[j]
    cen = p[j + 1]
    hg = 0.5 * p[j + 2]
    hg2 = hg * hg
    c = hg * _INV_PI
    jr0 = jac[j]
    jr1 = jac[j + 1]
    jr2 = jac[j + 2]
    for k in range(e.size):
        d = e[k] - cen
        u = 1.0 / (d * d + hg2)
        base = c * u
        f[k] += amp * base
        jr0[k] = base
        jr1[k] = amp * 2.0 * base * d * u
        jr2[k] = amp * 0.5 * _INV_PI * u * u * (d * d - hg2)


@_lm.jit_exact
def _valid_two(pt, tm):
    return _valid_step(pt, tm.base) and pt[tm.j + 2] > 0.0


_solve = _lm.make_levenberg_marquardt(_eval_two, _valid_two)


@_lm.jit_fast
def _trial_peaks(e, limits):
    """The score test's fixed oxide peaks (unit-area Lorentzians), one row each (model
    choice): 4 centres across ``limits[0:2]``, FWHM 3, 5 and 8 eV within ``limits[2:4]``."""
    out = np.empty((12, e.size))
    for ic in range(4):
        cen = limits[0] + ic * (limits[1] - limits[0]) / 3.0
        for iw in range(3):
            hg = 0.5 * min(max((3.0, 5.0, 8.0)[iw], limits[2]), limits[3])
            row = out[3 * ic + iw]
            for k in range(e.size):
                d = e[k] - cen
                row[k] = hg * _INV_PI / (d * d + hg * hg)
    return out


@_lm.jit_fast
def _score_z(y, w, f, jac, nbase, trial, jtj, jtr, wt, a_vec, sol):
    """Largest score-test z, over the ``trial`` oxide peaks, for adding one to the
    one-peak model whose values ``f`` and Jacobian ``jac`` (at its solution) are given.

    For a peak j of fixed centre and width the score of its area at 0, with the
    one-peak parameters' own gradient g = JᵀWr taken out, is U = Σ w r j − aᵀ(JᵀWJ)⁻¹g
    (r = y − f, a = JᵀWj; g ≈ 0 at the one-peak minimum, to the fit's tolerance),
    with variance V = jᵀWj − aᵀ(JᵀWJ)⁻¹a, scaled by the reduced χ² (Rao's score test:
    the one-peak fit alone is needed). Returns +inf when JᵀWJ cannot be factored (then
    the pixel is refitted).
    """
    n = y.size
    chi2 = _lm.normal_equations(y, w, f, jac, nbase, jtj, jtr)
    redchi = max(chi2 / max(n - nbase, 1), 1e-300)
    # Cholesky of JᵀWJ in place (lower triangle)
    for a in range(nbase):
        for b in range(a + 1):
            acc = jtj[a, b]
            for c in range(b):
                acc -= jtj[a, c] * jtj[b, c]
            if a == b:
                # a pivot under 1e-12 of its diagonal: not determined (as _lm's 1e-10
                # pivot rule, model choice)
                if not acc > 1e-12 * max(jtj[a, a], 1e-300):
                    return np.inf
                jtj[a, a] = np.sqrt(acc)
            else:
                jtj[a, b] = acc / jtj[b, b]
    # L⁻¹g, kept in jtr
    for a in range(nbase):
        acc = jtr[a]
        for b in range(a):
            acc -= jtj[a, b] * jtr[b]
        jtr[a] = acc / jtj[a, a]
    best = -np.inf
    for c in range(trial.shape[0]):
        tc = trial[c]
        u = 0.0
        s = 0.0
        for k in range(n):
            v = w[k] * tc[k]
            wt[k] = v
            u += v * (y[k] - f[k])
            s += v * tc[k]
        for a in range(nbase):
            ja = jac[a]
            acc = 0.0
            for k in range(n):
                acc += wt[k] * ja[k]
            a_vec[a] = acc
        # aᵀ(LLᵀ)⁻¹a = |L⁻¹a|², aᵀ(LLᵀ)⁻¹g = (L⁻¹a)·(L⁻¹g)
        q = 0.0
        for a in range(nbase):
            acc = a_vec[a]
            for b in range(a):
                acc -= jtj[a, b] * sol[b]
            sol[a] = acc / jtj[a, a]
            q += sol[a] * sol[a]
            u -= sol[a] * jtr[a]
        v = s - q
        if v > 0.0:
            best = max(best, u / np.sqrt(v * redchi))
    return best


@_lm.jit_exact
def _fit_two_block(
    ydata, e, start, converged, model, bg, norders, limits, screen, max_iter, tol, out, pout
):
    """Two-peak fits of the rows of ``ydata`` (npix, n) started from the one-peak
    parameters ``start`` (npix, nbase; NaN: not fitted). Where the one-peak fit
    ``converged``, the pixel is refitted only if the score test (:func:`_score_z`)
    reaches ``screen``. ``limits`` = (oxide centre lo, hi, oxide FWHM lo, hi). Columns
    of ``out``: position, position_err, fwhm, area, oxide_area, oxide_area_err,
    oxide_energy, oxide_fwhm, significance (the score test's z where not refitted),
    status, fwhm_err, refitted, n_iter, score_z, redchi; ``pout`` (npix, nbase + 3)
    the final parameters where refitted."""
    npix, n = ydata.shape
    nbase = start.shape[1]
    npar = nbase + 3
    j = nbase
    lo, hi, de, span, _eref, lne = _window_geometry(e)
    tm = _TwoPeakModel(_PlasmonModel(e, lne, model, bg, norders, lo, hi, de, span), j)
    nrep = 4 if norders > 1 else 3
    jr = nrep + 1 if bg == 3 else (nrep + 2 if bg == 4 else -1)
    work = _lm.workspace(npar, n)
    p = work.p
    cov = np.empty((npar, npar))
    w = np.empty(n)
    trial = _trial_peaks(e, limits)
    jtj = np.empty((work.jtj.shape[0], work.jtj.shape[0]))
    jtr = np.empty(work.jtj.shape[0])
    wt = np.empty(n)
    a_vec = np.empty(nbase)
    sol = np.empty(nbase)
    for ip in range(npix):
        for c in range(out.shape[1]):
            out[ip, c] = np.nan
        out[ip, 9] = _NOT_CONVERGED
        out[ip, 11] = 0.0
        if not np.isfinite(start[ip, 0]):
            continue
        y = ydata[ip]
        for k in range(n):
            w[k] = 1.0 / max(y[k], 1.0)
        if converged[ip]:
            # the score test needs the one-peak model at its minimum
            for a in range(nbase):
                p[a] = start[ip, a]
            _eval_model(p, tm.base, work.f, work.jac)
            z = _score_z(y, w, work.f, work.jac, nbase, trial, jtj, jtr, wt, a_vec, sol)
            out[ip, 13] = z
            if z < screen:
                out[ip, 8] = z
                continue
        out[ip, 11] = 1.0
        for a in range(nbase):
            p[a] = start[ip, a]
            work.lower[a] = -np.inf
            work.upper[a] = np.inf
        # the start (model choice): a tenth of the area at mid-range; the score test's
        # best peak as the start was measured and lost more fits than it saved time
        p[j] = _START_AREA_FRACTION * abs(p[0])
        p[j + 1] = 0.5 * (limits[0] + limits[1])
        p[j + 2] = _START_WIDTH_EV
        if not converged[ip]:
            # a one-peak fit that did not converge stopped anywhere (measured: 20-30 eV
            # wide, under a negative background): half its area to each peak, the
            # Li_xSi peak midway below the oxide's range, no background (model choice)
            p[0] = 0.5 * abs(p[0])
            p[j] = p[0]
            p[1] = 0.5 * (lo + limits[0])
            p[2] = _START_WIDTH_EV
            if norders > 1:
                p[3] = 0.5
            for a in range(nrep, nbase):
                p[a] = 0.0
        # the Li_xSi peak stays below the oxide's range (else the two may swap)
        work.upper[1] = limits[0]
        p[1] = min(p[1], limits[0])
        # t/λ and the power-law exponent bounded as in the one-peak fit (plasmon._fit_block)
        if norders > 1:
            work.lower[3] = 0.0
            work.upper[3] = 10.0
        if jr >= 0:
            work.lower[jr] = -3.0
            work.upper[jr] = 12.0
        work.lower[j] = 0.0
        work.upper[j] = np.inf
        work.lower[j + 1] = limits[0]
        work.upper[j + 1] = limits[1]
        work.lower[j + 2] = limits[2]
        work.upper[j + 2] = limits[3]
        rec = _lm.LMRecord(_lm.LMSettings(npar, max_iter, tol, 0.0, False, 3), work)
        status, it, chi2 = _solve(tm, y, w, rec)
        out[ip, 12] = it
        for a in range(npar):
            pout[ip, a] = p[a]
        if status != _OK:
            out[ip, 9] = status
            continue
        _lm.covariance(rec, npar, cov)
        redchi = chi2 / max(n - npar, 1)
        out[ip, 14] = redchi
        e0 = p[1]
        g = p[2]
        if model == 0:
            pos = e0
            fw = g
            area = p[0]
            vpos = cov[1, 1]
            vfw = cov[2, 2]
            varea = cov[0, 0]
        else:
            if not (g < 1.9 * e0):  # over-damped (as the one-peak fit)
                continue
            pos = _drude_emax(e0, g)
            fw = _drude_fwhm(e0, g)
            area = p[0] * _drude_area_factor(e0, g)
            he = 1e-6 * e0
            hg = 1e-6 * g
            d1 = (_drude_emax(e0 + he, g) - _drude_emax(e0 - he, g)) / (2 * he)
            d2 = (_drude_emax(e0, g + hg) - _drude_emax(e0, g - hg)) / (2 * hg)
            vpos = d1 * d1 * cov[1, 1] + 2 * d1 * d2 * cov[1, 2] + d2 * d2 * cov[2, 2]
            f1 = (_drude_fwhm(e0 + he, g) - _drude_fwhm(e0 - he, g)) / (2 * he)
            f2 = (_drude_fwhm(e0, g + hg) - _drude_fwhm(e0, g - hg)) / (2 * hg)
            vfw = f1 * f1 * cov[1, 1] + 2 * f1 * f2 * cov[1, 2] + f2 * f2 * cov[2, 2]
            varea = cov[0, 0] * _drude_area_factor(e0, g) ** 2
        vox = cov[j, j]
        # an area held at 0 has no covariance: no oxide peak
        sig = p[j] / np.sqrt(vox * redchi) if vox > 0.0 else 0.0
        out[ip, 4] = p[j] / de
        out[ip, 5] = np.sqrt(vox * redchi) / de if vox > 0.0 else np.nan
        out[ip, 6] = p[j + 1]
        out[ip, 7] = p[j + 2]
        out[ip, 8] = sig
        if not (vpos >= 0.0 and vfw >= 0.0 and varea >= 0.0):
            continue  # the Li_xSi peak is not determined
        if pos < lo or pos > hi:
            out[ip, 9] = _OUTSIDE
            continue
        out[ip, 0] = pos
        out[ip, 1] = np.sqrt(vpos * redchi)
        out[ip, 2] = fw
        out[ip, 3] = area / de
        out[ip, 10] = np.sqrt(vfw * redchi)
        # with the oxide peak, no Li_xSi plasmon above the noise: no Li_xSi energy
        li_xsi_sigmas = area / np.sqrt(varea * redchi) if varea > 0.0 else np.inf
        out[ip, 9] = _OK if li_xsi_sigmas >= MIN_SIGNIFICANCE else _NO_SIGNAL


@dataclass
class OxidePeakFit:
    """Result of :func:`fit_oxide_peak`; arrays of the scan shape.

    Attributes
    ----------
    position, position_err : ndarray
        Energy (eV) of the Li_xSi first plasmon's maximum with the oxide peak fitted
        beside it, and its 1σ (as :class:`~anodemap.eels.plasmon.PlasmonFit`).
    fwhm, fwhm_err, area : ndarray
        The Li_xSi peak's FWHM (eV) with its 1σ, and its area (counts).
    oxide_area, oxide_area_err, oxide_energy, oxide_fwhm : ndarray
        The oxide peak: area (counts) and its 1σ, centre and FWHM (eV).
    significance : ndarray
        ``oxide_area / oxide_area_err`` (0 where the area went to its bound 0).
    status : ndarray of uint8
        :class:`anodemap.status.Status` of the two-peak fit: OK; NO_SIGNAL where the
        Li_xSi area is under MIN_SIGNIFICANCE σ beside the oxide peak; NOT_CONVERGED where it failed or
        the one-peak fit gave no start; PEAK_OUTSIDE_WINDOW.
    selected : ndarray of bool
        Where the two-peak result should replace the one-peak one: refitted, converged
        (OK or NO_SIGNAL) and ``significance >= min_significance``.
    refitted : ndarray of bool
        Where the two-peak fit ran; elsewhere values are NaN, the status NOT_CONVERGED
        and ``significance`` the score test's z (below ``screen_sigma``; NaN where the
        one-peak fit gave no start).
    n_iter : ndarray of int32
        Levenberg–Marquardt iterations of the two-peak fit (0 where not refitted).
    score_z : ndarray
        The score test's z (NaN where the one-peak fit did not converge).
    redchi : ndarray
        Reduced χ² of the two-peak fit (NaN where it did not converge).
    params : ndarray, shape (..., P + 3)
        Final parameters where refitted: the one-peak fit's (its ``param_names``)
        then the oxide peak's area (per channel, model units), centre and FWHM.
    settings : dict
        What :meth:`model_spectrum` needs of the one-peak fit's settings.
    """

    position: np.ndarray
    position_err: np.ndarray
    fwhm: np.ndarray
    area: np.ndarray
    oxide_area: np.ndarray
    oxide_area_err: np.ndarray
    oxide_energy: np.ndarray
    oxide_fwhm: np.ndarray
    significance: np.ndarray
    status: np.ndarray
    selected: np.ndarray
    fwhm_err: np.ndarray
    refitted: np.ndarray
    n_iter: np.ndarray
    score_z: np.ndarray
    redchi: np.ndarray
    params: np.ndarray
    settings: dict[str, Any]

    def model_spectrum(self, energy: Any, *, oxide_only: bool = False) -> np.ndarray:
        """The two-peak model on ``energy``, shape (..., E): NaN where not refitted; with
        ``oxide_only`` the oxide peak alone.

        Examples
        --------
        See the module docstring (the fitted model reproduces the spectrum).
        """
        e = np.asarray(energy, dtype=np.float64)
        p = np.asarray(self.params, dtype=np.float64)
        a, c, g = (p[..., k, None] for k in range(p.shape[-1] - 3, p.shape[-1]))
        oxide = a * lorentzian(e, 1.0, c, g)
        if oxide_only:
            return oxide
        st = self.settings
        return oxide + model_spectrum(
            p[..., :-3],
            e,
            model=st["model"],
            background=st["background"],
            plural_orders=st["plural_orders"],
            window_channels=st["window_channels"],
        )


def holds_oxide_range(
    window: tuple[float, float], peak_range: tuple[float, float] = OXIDE_PEAK_RANGE_EV
) -> bool:
    """Whether a fit window holds the oxide peak's range and reaches below 16.83 eV, the
    plasmon of Si, the highest of the Li_xSi ones (the paper's 12.74-16.83 eV).

    Examples
    --------
    >>> holds_oxide_range((8.0, 25.0)), holds_oxide_range((18.8, 42.8))
    (True, False)
    """
    return window[0] < _SI_PLASMON_EV and window[1] > peak_range[1]


def fit_oxide_peak(
    spectra: Any,
    energy: Any,
    first: PlasmonFit,
    *,
    peak_range: tuple[float, float] = OXIDE_PEAK_RANGE_EV,
    width_range: tuple[float, float] = OXIDE_WIDTH_RANGE_EV,
    min_significance: float = MIN_SIGNIFICANCE,
    screen_sigma: float = SCREEN_SIGMA,
    max_iter: int = 100,
    tol: float = 0.01,
) -> OxidePeakFit:
    """Refit the pixels of a one-peak plasmon fit with an oxide plasmon beside it.

    Parameters
    ----------
    spectra : array_like, shape (..., E)
        The spectra that ``first`` was fitted to (counts; Poisson weights as
        :func:`~anodemap.eels.plasmon.fit_plasmon` uses by default).
    energy : array_like, shape (E,)
        Energy axis (eV).
    first : PlasmonFit
        The one-peak fit: its window, model, background, plural orders and, per pixel,
        the start. Pixels where it converged below the oxide's range are refitted from
        its solution where the score test reaches ``screen_sigma``; where it stopped NOT_CONVERGED (a Li_xSi and
        an oxide peak of similar height may be what stopped it) always, from a fresh
        start; the others (no signal, no peak, invalid input) are not.
    peak_range, width_range : (float, float)
        Bounds of the oxide peak's centre and FWHM in eV.
    min_significance : float
        Oxide area in standard errors from which the two-peak result is ``selected``.
    screen_sigma : float
        Pixels whose one-peak fit converged are refitted only where the score test for
        an oxide peak reaches this z (``-inf``: every pixel).
    max_iter, tol : int, float
        Levenberg–Marquardt limits, as the one-peak fit's (measured on the simulated
        region: the two-peak fits take 17 iterations (median), none more than 60).

    Returns
    -------
    OxidePeakFit

    Examples
    --------
    See the module docstring.
    """
    if not holds_oxide_range(first.window, peak_range):
        raise AnodemapInputError(
            f"the plasmon fit window {first.window[0]:g}-{first.window[1]:g} eV does not hold "
            f"the oxide plasmon's {peak_range[0]:g}-{peak_range[1]:g} eV and reach below "
            f"{_SI_PLASMON_EV:g} eV: fit a window that does (--window LO HI), or leave the "
            "oxide peak out (--oxide-peak off)"
        )
    data = np.asarray(spectra)
    e_all = np.asarray(energy, dtype=np.float64)
    sl = _window_slice(e_all, first.window)
    ew = np.ascontiguousarray(e_all[sl])
    scan_shape = data.shape[:-1]
    npix = int(np.prod(scan_shape, dtype=np.int64))
    y = _c64(data[..., sl]).reshape(npix, ew.size)
    params = np.asarray(first.params, dtype=np.float64).reshape(npix, -1)
    # a one-peak fit that did not converge may be two peaks side by side: start there too
    first_status = np.asarray(first.status).reshape(npix)
    tried = np.isin(first_status, (_OK, _NOT_CONVERGED))
    # a converged peak at or above the oxide's range is no Li_xSi plasmon pulled up by it
    above = (first_status == _OK) & (np.asarray(first.position).reshape(npix) >= peak_range[1])
    tried &= ~above
    start = np.where(tried[:, None], params, np.nan)
    out = np.empty((npix, 15))
    pout = np.full((npix, start.shape[1] + 3), np.nan)
    limits = np.array([*peak_range, *width_range], dtype=np.float64)
    norders = int(first.settings.get("plural_orders", 1)) if first.second_plasmon else 1
    if npix:
        _fit_two_block(
            y,
            ew,
            np.ascontiguousarray(start),
            first_status == _OK,
            _MODEL_ID[first.model],
            _BG_ID[first.background],
            norders,
            limits,
            float(screen_sigma),
            int(max_iter),
            float(tol),
            out,
            pout,
        )
    col = [out[:, i].reshape(scan_shape) for i in range(15)]
    status = col[9].astype(np.uint8)
    refitted = col[11] > 0
    converged = refitted & ((status == _OK) | (status == _NO_SIGNAL))
    selected = converged & (np.nan_to_num(col[8]) >= min_significance)
    n_iter = np.nan_to_num(col[12]).astype(np.int32)
    return OxidePeakFit(
        *col[:9],
        status,
        selected,
        col[10],
        refitted,
        n_iter,
        col[13],
        col[14],
        pout.reshape(scan_shape + (pout.shape[1],)),
        {
            "model": first.model,
            "background": first.background,
            "plural_orders": norders,
            "window_channels": (float(ew[0]), float(ew[-1])),
        },
    )
