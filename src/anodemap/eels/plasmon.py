"""Per-pixel fit of the first bulk plasmon peak of low-loss EELS spectra.

The paper (Methods; Results on valence EELS) maps the Li/Si ratio from the energy of
the first bulk plasmon, found with a non-linear least-squares (NLLS) Lorentzian fit
per pixel. :func:`fit_plasmon` does that fit on whole blocks of spectra with a
Levenberg–Marquardt solver compiled with numba (analytic Jacobians, one compiled loop
over the pixels of a block, no Python loop over pixels). The solver itself (iteration,
normal equations, damped Cholesky solve, covariance) lives in
:mod:`anodemap.eels._lm`; this module holds the plasmon model, its starting values,
bounds and derived quantities, and the public API.

Model
-----
Within an energy window ``[lo, hi]`` the spectrum (counts per channel) is modelled as

    I(E) = A · Σ_{m=1..M} t^(m−1)/m! · P_m(E) + B(E)

* ``P_1`` is the first-plasmon lineshape. ``model="lorentzian"``:
  ``1/π · (G/2) / ((E − E0)² + (G/2)²)`` (centre E0, FWHM G, unit area; HyperSpy's
  ``Lorentzian`` with γ = G/2). ``model="drude"``: the free-electron energy-loss
  function ``E·Γ·Ep² / ((E² − Ep²)² + (E·Γ)²)`` (Egerton, *Electron Energy-Loss
  Spectroscopy in the Electron Microscope*, 3rd ed., 2011, eq. 3.43; exspy's
  ``VolumePlasmonDrude``).
* ``second_plasmon=True`` adds plural scattering, orders m = 2..M
  (``plural_orders``, default 3): Poisson statistics give the m-th plasmon the area
  ``A·t^(m−1)/m!`` with t = t/λ (one free parameter, so the second plasmon has its own
  amplitude A2 = A·t/2 and the third is tied to it), and the m-fold self-convolution of
  a Lorentzian is the Lorentzian at m·E0 with FWHM m·G. For the Drude model the same
  rule (m·Ep, m·Γ, scaled to equal area) approximates the self-convolution.
* ``B`` is the background: ``"none"``, ``"offset"`` (c), ``"linear"`` (c + s·(E − mid)),
  ``"powerlaw"`` (a·(E/E_ref)^−r, r free: the zero-loss tail) or ``"powerlaw_offset"``
  (c + b·((E/E_ref)^−r − 1)/r, the Box–Cox form of a power law plus offset, which stays
  defined as r → 0). E_ref is the geometric mean of the window ends. Power-law fits
  start from a linear-background fit; they are 3-7x slower.

The default (Lorentzian, plural scattering, linear background, 8-25 eV) was chosen by
measurement on simulated spectra (see the notes at :data:`DEFAULT_WINDOW_EV` and
:data:`DEFAULT_BACKGROUND`): a plain Lorentzian plus offset is biased upwards by the
second plasmon (+0.03 to +0.14 eV for t/λ = 0.4-1.6) and by a strong zero-loss tail.

Reported values
---------------
``position`` is the energy of the *maximum* of the fitted first-plasmon lineshape: E0
for the Lorentzian; for the Drude function the maximum lies below Ep,
``E_max² = [(2Ep² − Γ²) + sqrt((2Ep² − Γ²)² + 12 Ep⁴)] / 6`` (≈ Ep − Γ²/(8 Ep)), and
``ep`` and ``gamma`` (Γ) are returned as well. ``fwhm`` is the full width at half maximum
of the fitted first-plasmon lineshape (G for the Lorentzian, found numerically for the
Drude function) and ``area`` its integral divided by the channel width, i.e. counts
when the spectra are counts per channel.

Uncertainties
-------------
1-σ errors come from the covariance ``C = (Jᵀ W J)⁻¹`` at the solution, W = diag(1/σ²)
with σ² = max(counts, 1) (Poisson) unless ``sigma`` is given. With
``absolute_sigma=False`` (default, the convention of ``scipy.optimize.curve_fit``) C is
multiplied by the reduced chi-square χ²/(n − p), so the errors stay right when the
spectra are not raw electron counts (detector gain, deconvolution); with
``absolute_sigma=True`` the σ are taken as exact. Derived quantities (Drude position,
FWHM, area; second-plasmon area) get their errors by first-order propagation through C.

Status
------
Every pixel gets a :class:`anodemap.status.Status` code; a pixel that fails gets NaN
values and the code says why: ``INVALID_INPUT`` (NaN/inf counts or non-positive σ in
the window), ``NO_SIGNAL`` (fewer than ``min_counts`` counts, or no structure above the
noise), ``PEAK_OUTSIDE_WINDOW`` (no interior maximum in the window — a monotonic
spectrum — or a fitted maximum outside ``[lo, hi]``), ``NOT_CONVERGED`` (iteration
limit, no downhill step, or an undetermined peak parameter).

Kernel and execution
--------------------
:func:`fit_plasmon` takes any block ``(..., E)``; every pixel is independent, so a
caller may split the scan into chunks in any way (the energy axis must stay whole) and
run the chunks in parallel threads (the kernel releases the GIL) or processes.
:func:`plasmon_block` is the same call in the form ``block -> {name: array}`` used by
:func:`anodemap._compute.map_pixels`, and :func:`plasmon_output_fields` names its
outputs.

Examples
--------
>>> import numpy as np
>>> from anodemap.eels.plasmon import fit_plasmon
>>> energy = np.arange(0.0, 40.0, 0.05)
>>> peak = 1e5 * 0.05 / np.pi * 2.0 / ((energy - 15.0) ** 2 + 2.0**2)
>>> spectra = np.random.default_rng(0).poisson(peak + 50.0, size=(3, energy.size))
>>> fit = fit_plasmon(spectra, energy, model="lorentzian", background="offset",
...                   second_plasmon=False)
>>> fit.position.shape, bool(np.all(np.abs(fit.position - 15.0) < 0.05))
((3,), True)
>>> [int(s) for s in fit.status]
[0, 0, 0]
"""

from __future__ import annotations

from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap.eels import _lm
from anodemap.errors import AnodemapInputError
from anodemap.status import Status

__all__ = [
    "DEFAULT_WINDOW_EV",
    "DEFAULT_MODEL",
    "DEFAULT_BACKGROUND",
    "DEFAULT_PLURAL_ORDERS",
    "MODELS",
    "BACKGROUNDS",
    "PlasmonFit",
    "fit_plasmon",
    "plasmon_block",
    "plasmon_output_fields",
    "lorentzian",
    "drude",
    "drude_maximum",
    "model_spectrum",
]

# Model choice (measured on simulated spectra: Poisson plural scattering of Lorentzian
# and Drude plasmons at 12.7-16.9 eV, FWHM 4 eV, t/λ 0.15-1.6, convolved with a 1 eV
# zero-loss peak with weak and strong Lorentzian tails, 1e6 counts). With the default
# model, windows 6-24, 8-22, 8-25, 9-24, 10-25 and 8-28 eV gave rms position biases of
# 0.018, 0.009, 0.010, 0.008, 0.008 and 0.012 eV and scatter 0.007-0.010 eV; 8-25 eV is
# within 10 % of the best total error and keeps the upper half of a 5 eV wide 16.9 eV
# peak (paper, Results: Li_xSi plasmons between 12.74 and 16.83 eV) inside the window.
DEFAULT_WINDOW_EV: tuple[float, float] = (8.0, 25.0)
# The paper fitted Lorentzians (Results, Methods); the default keeps that lineshape.
DEFAULT_MODEL = "lorentzian"
# Model choice (same measurement): with plural scattering modelled, a linear background
# gave max |bias| 0.023 eV (rms 0.010), an offset 0.054 eV (rms 0.019), a power law plus
# offset 0.022 eV (rms 0.007) at 5-7x the cost; a plain Lorentzian plus offset is biased
# by up to +0.14 eV by the second plasmon (see tests/eels/test_plasmon.py).
DEFAULT_BACKGROUND = "linear"
# Plasmon orders in the plural-scattering series (model choice: the third order's
# low-energy tail still reaches the window for t/λ >= 1; orders >= 4 changed positions
# by < 0.001 eV).
DEFAULT_PLURAL_ORDERS = 3

MODELS = ("lorentzian", "drude")
BACKGROUNDS = ("none", "offset", "linear", "powerlaw", "powerlaw_offset")
_MODEL_ID = {name: i for i, name in enumerate(MODELS)}
_BG_ID = {name: i for i, name in enumerate(BACKGROUNDS)}
_BG_NPAR = (0, 1, 2, 2, 3)

_OK = int(Status.OK)
_NOT_CONVERGED = int(Status.NOT_CONVERGED)
_OUTSIDE = int(Status.PEAK_OUTSIDE_WINDOW)
_NO_SIGNAL = int(Status.NO_SIGNAL)
_INVALID = int(Status.INVALID_INPUT)

_INV_PI = 1.0 / np.pi


# --------------------------------------------------------------------------------------
# Lineshapes (plain numpy, for users and tests)
# --------------------------------------------------------------------------------------


def lorentzian(energy: np.ndarray, area: float, centre: float, fwhm: float) -> np.ndarray:
    """Lorentzian ``area/π · (fwhm/2) / ((E − centre)² + (fwhm/2)²)``.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.linspace(-1000, 1000, 2_000_001)
    >>> round(float(np.trapezoid(lorentzian(e, 2.0, 0.0, 1.0), e)), 3)
    1.999
    """
    g = 0.5 * fwhm
    return area * _INV_PI * g / ((np.asarray(energy, dtype=float) - centre) ** 2 + g * g)


def drude(energy: np.ndarray, amplitude: float, ep: float, gamma: float) -> np.ndarray:
    """Drude energy-loss function ``amplitude · E·Γ·Ep² / ((E² − Ep²)² + (E·Γ)²)``, 0 for E ≤ 0.

    Egerton (2011), *EELS in the Electron Microscope*, 3rd ed., eq. 3.43. Its maximum,
    ``amplitude · Ep/Γ`` at ``E ≈ Ep``, lies at :func:`drude_maximum`.

    Examples
    --------
    >>> round(float(drude(15.0, 1.0, 15.0, 4.0)), 4)
    3.75
    """
    e = np.asarray(energy, dtype=float)
    out = amplitude * e * gamma * ep**2 / ((e * e - ep * ep) ** 2 + (e * gamma) ** 2)
    return np.where(e > 0, out, 0.0)


def drude_maximum(ep: Any, gamma: Any) -> Any:
    """Energy of the maximum of the Drude loss function (eV).

    Setting the derivative of ``E / ((E² − Ep²)² + E²Γ²)`` to zero gives
    ``3E⁴ + (Γ² − 2Ep²)E² − Ep⁴ = 0``, so
    ``E_max² = [(2Ep² − Γ²) + sqrt((2Ep² − Γ²)² + 12 Ep⁴)] / 6 ≈ Ep² − Γ²/4``.

    Examples
    --------
    >>> round(float(drude_maximum(16.0, 4.0)), 3)  # ≈ 16 - 4²/(8·16) = 15.875
    15.875
    """
    ep2 = np.asarray(ep, dtype=float) ** 2
    g2 = np.asarray(gamma, dtype=float) ** 2
    b = 2.0 * ep2 - g2
    return np.sqrt((b + np.sqrt(b * b + 12.0 * ep2 * ep2)) / 6.0)


# --------------------------------------------------------------------------------------
# Compiled kernel
# --------------------------------------------------------------------------------------

# The same compile flags as the solver (fast-math for the vectorised channel loops,
# IEEE-exact for decisions; see anodemap.eels._lm): one definition, in the solver.
_jit = _lm.jit_fast
_jit_exact = _lm.jit_exact

# What the solver passes through to the model and validity functions, _eval_model and
# _valid_step (one namedtuple: numba flattens it into plain arguments, and the solver
# never looks inside). Rebuilt per fit stage, as the background changes between stages.
_PlasmonModel = namedtuple(
    "_PlasmonModel",
    ["energy", "log_energy", "model", "background", "norders", "lo", "hi", "de", "span"],
)


@_jit
def _eval_model(p, pm, f, jac):
    """Model ``f`` (n,) and Jacobian ``jac`` (P, n) at parameters ``p`` (solver callback).

    ``pm`` is a :data:`_PlasmonModel`: energies and log(E/E_ref) of the channels, the
    model id, the background id and the number of plasmon orders (and the window, for
    :func:`_valid_step`). Plasmon orders m = 1..norders have centre m·E0, width m·G and
    area ``A·t^(m-1)/m!`` (Poisson plural scattering with t = t/λ, parameter p[3]).
    Loops are branch-free over channels so that LLVM vectorises them.
    """
    e = pm.energy
    lne = pm.log_energy
    model = pm.model
    bg = pm.background
    norders = pm.norders
    n = e.size
    amp = p[0]
    e0 = p[1]
    g = p[2]
    t = p[3] if norders > 1 else 0.0
    j0 = jac[0]
    j1 = jac[1]
    j2 = jac[2]
    j3 = jac[3]
    if norders > 1:
        for k in range(n):
            j3[k] = 0.0
    cm = 1.0  # t^(m-1)/m!
    dcm = 0.0  # d cm / dt
    for m in range(1, norders + 1):
        if m > 1:
            dcm = (dcm * t + cm) / m
            cm = cm * t / m
        fm = float(m)
        if model == 0:  # Lorentzian of unit area, centre m·E0, FWHM m·G
            hg = 0.5 * fm * g
            hg2 = hg * hg
            c = hg * _INV_PI
            cen = fm * e0
            ac = amp * cm
            ad = amp * dcm
            if m == 1:
                for k in range(n):
                    d = e[k] - cen
                    u = 1.0 / (d * d + hg2)
                    base = c * u
                    f[k] = ac * base
                    j0[k] = base
                    j1[k] = ac * 2.0 * base * d * u
                    j2[k] = ac * 0.5 * _INV_PI * u * u * (d * d - hg2)
            else:
                for k in range(n):
                    d = e[k] - cen
                    u = 1.0 / (d * d + hg2)
                    base = c * u
                    f[k] += ac * base
                    j0[k] += cm * base
                    j1[k] += ac * fm * 2.0 * base * d * u
                    j2[k] += ac * fm * 0.5 * _INV_PI * u * u * (d * d - hg2)
                    j3[k] += ad * base
        else:  # Drude with m·Ep, m·G, divided by m so that all orders have area ∝ cm
            epm = fm * e0
            gm = fm * g
            ep2 = epm * epm
            gm2 = gm * gm
            ac = amp * cm
            ad = amp * dcm
            cnum = gm * ep2 / fm
            if m == 1:
                for k in range(n):
                    ek = e[k]
                    a = ek * ek - ep2
                    q = 1.0 / (a * a + ek * ek * gm2)
                    base = cnum * ek * q
                    val = ac * base
                    f[k] = val
                    j0[k] = base
                    j1[k] = val * (2.0 / epm + 4.0 * a * epm * q)
                    j2[k] = val * (1.0 / gm - 2.0 * ek * ek * gm * q)
            else:
                for k in range(n):
                    ek = e[k]
                    a = ek * ek - ep2
                    q = 1.0 / (a * a + ek * ek * gm2)
                    base = cnum * ek * q
                    val = ac * base
                    f[k] += val
                    j0[k] += cm * base
                    j1[k] += val * fm * (2.0 / epm + 4.0 * a * epm * q)
                    j2[k] += val * fm * (1.0 / gm - 2.0 * ek * ek * gm * q)
                    j3[k] += ad * base
    i = 4 if norders > 1 else 3
    if bg == 1:  # offset
        c0 = p[i]
        for k in range(n):
            f[k] += c0
            jac[i, k] = 1.0
    elif bg == 2:  # linear in t = (E - mid) / half-span, t in [-1, 1]
        c0 = p[i]
        s = p[i + 1]
        mid = 0.5 * (e[0] + e[n - 1])
        ihs = 2.0 / (e[n - 1] - e[0])
        for k in range(n):
            t = (e[k] - mid) * ihs
            f[k] += c0 + s * t
            jac[i, k] = 1.0
            jac[i + 1, k] = t
    elif bg == 3:  # power law a·(E/E_ref)^-r
        ab = p[i]
        r = p[i + 1]
        for k in range(n):
            pw = np.exp(-r * lne[k])
            val = ab * pw
            f[k] += val
            jac[i, k] = pw
            jac[i + 1, k] = -val * lne[k]
    elif bg == 4:
        # Power law plus offset in Box-Cox form, c + b·((E/E_ref)^-r − 1)/r, which stays
        # well defined as r → 0 (→ c − b·ln(E/E_ref)); the plain form a·x^-r + c runs
        # off to a → ∞, c → −∞ whenever the data prefer a logarithmic background.
        c0 = p[i]
        b0 = p[i + 1]
        r = p[i + 2]
        for k in range(n):
            lk = lne[k]
            rl = r * lk
            if abs(rl) < 1e-3:  # series: φ = −L + rL²/2 − r²L³/6, ∂φ/∂r = L²/2 − rL³/3
                phi = -lk + 0.5 * r * lk * lk - r * r * lk * lk * lk / 6.0
                dphi = 0.5 * lk * lk - r * lk * lk * lk / 3.0 + 0.125 * r * r * lk**4
            else:
                ex = np.exp(-rl)
                phi = (ex - 1.0) / r
                dphi = (-lk * ex * r - (ex - 1.0)) / (r * r)
            f[k] += c0 + b0 * phi
            jac[i, k] = 1.0
            jac[i + 1, k] = phi
            jac[i + 2, k] = b0 * dphi


@_jit_exact
def _drude_emax(ep, g):
    ep2 = ep * ep
    b = 2.0 * ep2 - g * g
    return np.sqrt((b + np.sqrt(b * b + 12.0 * ep2 * ep2)) / 6.0)


@_jit_exact
def _drude_fwhm(ep, g):
    """FWHM of the Drude loss function by Newton's method on both half-maximum points."""
    em = _drude_emax(ep, g)
    ep2 = ep * ep
    am = em * em - ep2
    hm = 2.0 * (am * am + em * em * g * g) / em  # h(E) = ((E²-Ep²)² + E²Γ²)/E at half max
    roots = np.empty(2)
    for side in range(2):
        x = em - 0.5 * g if side == 0 else em + 0.5 * g
        if x <= 0.0:
            x = 0.5 * em
        for _ in range(50):
            a = x * x - ep2
            q = a * a + x * x * g * g - hm * x
            dq = 4.0 * x * a + 2.0 * x * g * g - hm
            if dq == 0.0:
                break
            step = q / dq
            x -= step
            if x <= 0.0:
                x = 1e-9
            if abs(step) < 1e-13 * (1.0 + abs(x)):
                break
        roots[side] = x
    return roots[1] - roots[0]


@_jit_exact
def _drude_area_factor(ep, g):
    """Integral over E > 0 of E·Γ·Ep²/((E²−Ep²)²+(EΓ)²), valid for Γ < 2 Ep.

    With u = E² the integrand becomes a rational function of u; its integral is
    ``Ep²/sqrt(4Ep² − Γ²) · (π/2 + atan((2Ep² − Γ²)/(Γ·sqrt(4Ep² − Γ²))))`` (→ π·Ep/2 for
    Γ ≪ Ep).
    """
    s = np.sqrt(4.0 * ep * ep - g * g)
    return ep * ep / s * (0.5 * np.pi + np.arctan((2.0 * ep * ep - g * g) / (g * s)))


@_jit_exact
def _valid_step(pt, pm):
    """Whether parameters stay in the sane region (model choices; solver callback): all
    finite, FWHM between half a channel and 4x the window, position positive and within
    one window width of the window ``[pm.lo, pm.hi]``."""
    lo = pm.lo
    hi = pm.hi
    de = pm.de
    span = pm.span
    for a in range(pt.size):
        if not np.isfinite(pt[a]):
            return False
    if not (pt[2] > 0.5 * de and pt[2] < 4.0 * span):
        return False
    if not (pt[1] > lo - span and pt[1] < hi + span) or pt[1] <= 0.0:
        return False
    return True


# The solver, compiled for the plasmon model: _levenberg_marquardt(pm, y, w, rec) with
# pm a _PlasmonModel and rec an _lm.LMRecord.
_levenberg_marquardt = _lm.make_levenberg_marquardt(_eval_model, _valid_step)


# The settings of one _fit_block call, as one record (see fit_plasmon for their meaning;
# model and background as indices into MODELS and BACKGROUNDS).
_FitSettings = namedtuple(
    "_FitSettings",
    [
        "model",
        "background",
        "norders",
        "max_iter",
        "tol",
        "final_step",
        "min_snr",
        "min_counts",
        "absolute_sigma",
    ],
)


@_jit_exact
def _window_geometry(e):
    """Ends, channel width and span of the window's energies ``e``, and for the power-law
    backgrounds E_ref and ln(E/E_ref) per channel (0 for a window from 0 eV or below).

    E_ref is the geometric mean of the window ends, where ∂B/∂r = 0 for B = a·(E/E_ref)^-r:
    this decorrelates a and r (model choice).
    """
    n = e.size
    lo = e[0]
    hi = e[n - 1]
    de = (hi - lo) / (n - 1)
    eref = np.sqrt(lo * hi) if lo > 0.0 else 1.0
    lne = np.empty(n)
    for k in range(n):
        lne[k] = np.log(e[k] / eref) if lo > 0.0 else 0.0
    return lo, hi, de, hi - lo, eref, lne


@_jit_exact
def _fit_block(ydata, sig, e, settings, out, pout):
    """Fit every row of ``ydata`` (npix, n); write results into ``out`` (npix, 15).

    ``sig`` holds σ per channel: (0, n) for Poisson weights, (1, n) for one row shared
    by all pixels, (npix, n) per pixel; ``e`` the window's energies; ``settings`` is a
    :data:`_FitSettings`. ``pout`` (npix, P) receives the final parameters. Columns of
    ``out``: position, fwhm, area, position_err, fwhm_err, area_err, redchi, n_iter,
    status, ep, gamma, second_area, ep_err, gamma_err, second_area_err.
    """
    model = settings.model
    bg = settings.background
    norders = settings.norders
    max_iter = settings.max_iter
    tol = settings.tol
    final_step = settings.final_step
    min_snr = settings.min_snr
    min_counts = settings.min_counts
    absolute_sigma = settings.absolute_sigma
    npix, n = ydata.shape
    second = norders > 1
    nrep = 4 if second else 3
    npar = nrep + (0, 1, 2, 2, 3)[bg]
    lo, hi, de, span, eref, lne = _window_geometry(e)
    # Starting values come from the spectrum summed in bins of about 0.25 eV and smoothed
    # over 2·hb + 1 bins (about 1 eV); model choices: fine enough to place a 3-5 eV wide
    # peak to a fraction of its width, coarse enough that noise makes no false maxima.
    nbin = max(1, int(round(0.25 / de)))
    hb = max(1, int(round(0.5 / (nbin * de))))
    if n // nbin < 4 * hb + 5:  # short window or wide channels: no binning
        nbin = 1
        hb = max(1, min(hb, (n - 5) // 4))
    nb = n // nbin
    nedge = hb + 1
    eb = np.empty(nb)
    for j in range(nb):
        eb[j] = lo + (j * nbin + 0.5 * (nbin - 1)) * de
    w = np.empty(n)
    bm = np.empty(nb)
    ys = np.empty(nb)
    dd = np.empty(nb)
    # One solver workspace for all pixels of the block; the start point goes into
    # work.p and the solution comes back there.
    work = _lm.workspace(npar, n)
    p = work.p
    skip = work.skip
    cov = np.empty((npar, npar))
    per_pixel_sigma = sig.shape[0] > 1
    use_sigma = sig.shape[0] > 0

    for ip in range(npix):
        for c in range(out.shape[1]):
            out[ip, c] = np.nan
        out[ip, 7] = 0.0
        y = ydata[ip]
        # ---- validity and weights ------------------------------------------------
        # A sum is finite only if every term is: one vectorised pass finds NaN/inf.
        total = 0.0
        for k in range(n):
            total += y[k]
        bad = not np.isfinite(total)
        if use_sigma and not bad:
            srow = sig[ip] if per_pixel_sigma else sig[0]
            smin = np.inf
            ssum = 0.0
            for k in range(n):
                sk = srow[k]
                smin = min(smin, sk)
                ssum += sk
                w[k] = 1.0 / (sk * sk)
            bad = not (smin > 0.0 and np.isfinite(ssum))
        elif not bad:
            for k in range(n):
                w[k] = 1.0 / max(y[k], 1.0)
        if bad:
            out[ip, 8] = _INVALID
            continue
        if not use_sigma and total < min_counts:
            out[ip, 8] = _NO_SIGNAL
            continue
        # ---- starting values ----------------------------------------------------------
        for j in range(nb):
            acc = 0.0
            for k in range(j * nbin, (j + 1) * nbin):
                acc += y[k]
            bm[j] = acc / nbin
        for j in range(nb):
            a0 = max(0, j - hb)
            a1 = min(nb, j + hb + 1)
            acc = 0.0
            for k in range(a0, a1):
                acc += bm[k]
            ys[j] = acc / (a1 - a0)
        yl = 0.0
        yr = 0.0
        el = 0.0
        er = 0.0
        for j in range(nedge):
            yl += ys[j]
            yr += ys[nb - 1 - j]
            el += eb[j]
            er += eb[nb - 1 - j]
        yl /= nedge
        yr /= nedge
        el /= nedge
        er /= nedge
        slope = (yr - yl) / (er - el)
        imax = 0
        ymin = ys[0]
        ymax = ys[0]
        for j in range(nb):
            dd[j] = ys[j] - (yl + slope * (eb[j] - el))
            if dd[j] > dd[imax]:
                imax = j
            ymin = min(ymin, ys[j])
            ymax = max(ymax, ys[j])
        h = dd[imax]
        # Noise of a smoothed value (and of the chord, about the same).
        if use_sigma:
            srow = sig[ip] if per_pixel_sigma else sig[0]
            sk = srow[min(imax * nbin + nbin // 2, n - 1)]
            var1 = sk * sk
        else:
            var1 = max(ys[imax], 1.0)
        noise = np.sqrt(2.0 * var1 / ((2 * hb + 1) * nbin))
        if not (ymax - ymin > min_snr * noise) or not (total != 0.0):
            out[ip, 8] = _NO_SIGNAL
            continue
        if h < min_snr * noise or imax < nedge or imax > nb - 1 - nedge:
            out[ip, 8] = _OUTSIDE
            continue
        # Parabolic refinement of the maximum of the chord-subtracted smoothed spectrum.
        db = nbin * de
        xc = eb[imax]
        den = dd[imax - 1] - 2.0 * dd[imax] + dd[imax + 1]
        if den < 0.0:
            xc += 0.5 * db * (dd[imax - 1] - dd[imax + 1]) / den
        # Half-maximum crossings.
        hl = -1.0
        for j in range(imax, -1, -1):
            if dd[j] < 0.5 * h:
                frac = (dd[j + 1] - 0.5 * h) / (dd[j + 1] - dd[j])
                hl = eb[imax] - eb[j + 1] + frac * db
                break
        hr = -1.0
        for j in range(imax, nb):
            if dd[j] < 0.5 * h:
                frac = (dd[j - 1] - 0.5 * h) / (dd[j - 1] - dd[j])
                hr = eb[j - 1] - eb[imax] + frac * db
                break
        if hl < 0.0 and hr < 0.0:
            hl = 0.25 * span
            hr = hl
        elif hl < 0.0:
            hl = hr
        elif hr < 0.0:
            hr = hl
        g0 = min(max(hl + hr, 3.0 * de), 0.8 * span)
        if model == 0:
            p[0] = h * np.pi * 0.5 * g0
            p[1] = xc
        else:
            p[1] = np.sqrt(xc * xc + 0.25 * g0 * g0)
            p[0] = h * g0 / p[1]
        p[2] = g0
        i = 3
        if second:
            p[3] = 0.5  # model choice: start at t/λ = 0.5, typical of a thin lamella
            i = 4
        # Background start: what the first plasmon does not explain at the window ends.
        if model == 0:
            pl = p[0] * _INV_PI * 0.5 * g0 / ((el - xc) ** 2 + 0.25 * g0 * g0)
            pr = p[0] * _INV_PI * 0.5 * g0 / ((er - xc) ** 2 + 0.25 * g0 * g0)
        else:
            ep2 = p[1] * p[1]
            pl = p[0] * el * g0 * ep2 / ((el * el - ep2) ** 2 + (el * g0) ** 2)
            pr = p[0] * er * g0 * ep2 / ((er * er - ep2) ** 2 + (er * g0) ** 2)
        bl = yl - pl
        br = yr - pr
        if bg == 1:
            p[i] = min(bl, br)
        elif bg == 2:
            p[i] = 0.5 * (bl + br)
            p[i + 1] = 0.5 * (br - bl) * span / (er - el)
        # ---- Levenberg–Marquardt ------------------------------------------------------
        # Power-law backgrounds are fitted in two stages (model choice, measured): their
        # flat, degenerate directions (amplitude → 0 leaves the exponent free) trap a
        # cold start, so first fit a linear background and start the power law from the
        # line it found. One call site for the solver keeps the compiled code small.
        it = 0
        nstage = 2 if (bg == 3 or bg == 4) else 1
        mid = 0.5 * (lo + hi)
        status = _NOT_CONVERGED
        chi2 = np.inf
        for stage in range(nstage):
            bgs = bg
            nps = npar
            if stage == 0 and nstage == 2:
                bgs = 2
                nps = nrep + 2
                p[i] = 0.5 * (bl + br)
                p[i + 1] = 0.5 * (br - bl) * span / (er - el)
            elif stage == 1:
                c_lin = p[i]
                s_lin = p[i + 1] * 2.0 / span  # per eV
                if bg == 3:
                    # a·(E/E_ref)^-r with the line's value and logarithmic slope at mid
                    if c_lin > 0.0:
                        rr = min(max(-s_lin * mid / c_lin, -3.0), 12.0)
                        p[i] = c_lin * np.exp(rr * np.log(mid / eref))
                    else:
                        rr = 0.0
                        p[i] = max(0.01 * h, 1e-12)
                    p[i + 1] = rr
                else:
                    # c + b·φ_0(E) = c − b·ln(E/E_ref), the line's value and slope at mid
                    b0 = -s_lin * mid
                    p[i] = c_lin + b0 * np.log(mid / eref)
                    p[i + 1] = b0
                    p[i + 2] = 0.0
            # Bounds, enforced by the solver by projection. Model choices: t/λ in
            # [0, 10] (plural scattering cannot be negative; t/λ > 10 has no plasmon
            # left); the power-law exponent in [-3, 12] (zero-loss and interband tails
            # fall off as E^-2 ... E^-6; beyond 12 the term is a spike at the window start
            # chasing noise).
            for a in range(nps):
                work.lower[a] = -np.inf
                work.upper[a] = np.inf
            if second:
                work.lower[3] = 0.0
                work.upper[3] = 10.0
            jr = -1
            if bgs == 3:
                jr = nrep + 1
            elif bgs == 4:
                jr = nrep + 2
            if jr >= 0:
                work.lower[jr] = -3.0
                work.upper[jr] = 12.0
            # Convergence is judged on the plasmon's area, position and width (the first
            # three parameters); the final-step shortcut is unsafe in the flat valleys
            # of the power laws.
            lm_settings = _lm.LMSettings(nps, max_iter - it, tol, final_step, jr < 0, 3)
            rec = _lm.LMRecord(lm_settings, work)
            pm = _PlasmonModel(e, lne, model, bgs, norders, lo, hi, de, span)
            status, itk, chi2 = _levenberg_marquardt(pm, y, w, rec)
            it += itk
        dof = max(n - npar, 1)
        out[ip, 7] = it
        for a in range(npar):
            pout[ip, a] = p[a]
        redchi = chi2 / dof
        out[ip, 6] = redchi
        if status != _OK:
            out[ip, 8] = status
            continue
        # ---- covariance and derived quantities ------------------------------------------
        # The workspace still holds the factor of the last (undamped) convergence check
        # of the last stage, whose npar is the full npar.
        _lm.covariance(rec, nrep, cov)
        scale = 1.0 if absolute_sigma else redchi
        amp = p[0]
        e0 = p[1]
        g = p[2]
        if model == 0:
            pos = e0
            fw = g
            area = amp
            vpos = cov[1, 1]
            vfw = cov[2, 2]
            ga = 1.0
            gb = 0.0
            gc = 0.0
        else:
            if not (g < 1.9 * e0):  # over-damped: no plasmon peak (model choice 1.9)
                out[ip, 8] = _NOT_CONVERGED
                continue
            pos = _drude_emax(e0, g)
            fw = _drude_fwhm(e0, g)
            kf = _drude_area_factor(e0, g)
            area = amp * kf
            he = 1e-6 * e0
            hg = 1e-6 * g
            dpos_de = (_drude_emax(e0 + he, g) - _drude_emax(e0 - he, g)) / (2 * he)
            dpos_dg = (_drude_emax(e0, g + hg) - _drude_emax(e0, g - hg)) / (2 * hg)
            dfw_de = (_drude_fwhm(e0 + he, g) - _drude_fwhm(e0 - he, g)) / (2 * he)
            dfw_dg = (_drude_fwhm(e0, g + hg) - _drude_fwhm(e0, g - hg)) / (2 * hg)
            dk_de = (_drude_area_factor(e0 + he, g) - _drude_area_factor(e0 - he, g)) / (2 * he)
            dk_dg = (_drude_area_factor(e0, g + hg) - _drude_area_factor(e0, g - hg)) / (2 * hg)
            vpos = (
                dpos_de * dpos_de * cov[1, 1]
                + 2 * dpos_de * dpos_dg * cov[1, 2]
                + dpos_dg * dpos_dg * cov[2, 2]
            )
            vfw = dfw_de * dfw_de * cov[1, 1] + 2 * dfw_de * dfw_dg * cov[1, 2]
            vfw += dfw_dg * dfw_dg * cov[2, 2]
            ga = kf
            gb = amp * dk_de
            gc = amp * dk_dg
        varea = ga * ga * cov[0, 0] + gb * gb * cov[1, 1] + gc * gc * cov[2, 2]
        varea += 2 * (ga * gb * cov[0, 1] + ga * gc * cov[0, 2] + gb * gc * cov[1, 2])
        if not (vpos >= 0.0 and vfw >= 0.0 and varea >= 0.0):
            # A peak parameter is not determined by the data.
            out[ip, 8] = _NOT_CONVERGED
            continue
        if pos < lo or pos > hi:
            out[ip, 8] = _OUTSIDE
            continue
        if model == 1:
            out[ip, 9] = e0
            out[ip, 10] = g
            out[ip, 12] = np.sqrt(cov[1, 1] * scale)
            out[ip, 13] = np.sqrt(cov[2, 2] * scale)
        if second:
            # Second-order area A·t/2 (Poisson: A2/A1 = (t/λ)/2), first-order propagation;
            # t held at its bound (t/λ = 0: no plural scattering seen) counts as exact.
            tt = p[3]
            v2 = 0.25 * tt * tt * varea
            if not skip[3]:
                v2 += 0.25 * area * area * cov[3, 3]
                v2 += 0.5 * tt * area * (ga * cov[0, 3] + gb * cov[1, 3] + gc * cov[2, 3])
            out[ip, 11] = 0.5 * area * tt / de
            out[ip, 14] = np.sqrt(max(v2, 0.0) * scale) / de
        out[ip, 0] = pos
        out[ip, 1] = fw
        out[ip, 2] = area / de  # counts: integral over energy / channel width
        out[ip, 3] = np.sqrt(vpos * scale)
        out[ip, 4] = np.sqrt(vfw * scale)
        out[ip, 5] = np.sqrt(varea * scale) / de
        out[ip, 8] = _OK


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------

_COLUMNS = (
    "position",
    "fwhm",
    "area",
    "position_err",
    "fwhm_err",
    "area_err",
    "redchi",
    "n_iter",
    "status",
    "ep",
    "gamma",
    "second_area",
    "ep_err",
    "gamma_err",
    "second_area_err",
)


@dataclass
class PlasmonFit:
    """Result of :func:`fit_plasmon`; every array has the scan shape ``spectra.shape[:-1]``.

    Attributes
    ----------
    position, position_err : ndarray of float64
        Energy (eV) of the maximum of the fitted first-plasmon lineshape, and its 1-σ error.
    fwhm, fwhm_err : ndarray of float64
        Full width at half maximum of the fitted lineshape (eV).
    area, area_err : ndarray of float64
        Integral of the first-plasmon lineshape over energy divided by the channel width:
        counts, for spectra in counts per channel.
    redchi : ndarray of float64
        Reduced chi-square ``χ²/(n − p)`` at the solution (≈ 1 for Poisson counts).
    n_iter : ndarray of int32
        Levenberg–Marquardt iterations used (0 when no fit was attempted).
    status : ndarray of uint8
        :class:`anodemap.status.Status` code; values are NaN wherever it is not OK.
    ep, gamma, ep_err, gamma_err : ndarray of float64 or None
        Drude parameters Ep and Γ (eV) for ``model="drude"``; None for the Lorentzian.
    second_area, second_area_err : ndarray of float64 or None
        Area (counts) of the second-plasmon term, ``area·t/2``, when
        ``second_plasmon=True``; None otherwise. ``second_area/area = (t/λ)/2`` for
        Poisson plural scattering.
    model, background, window, second_plasmon, absolute_sigma
        The settings of the fit.
    params : ndarray, shape (..., P)
        Final model parameters named by ``param_names`` (see :meth:`model_spectrum`);
        kept for NOT_CONVERGED pixels for diagnosis, NaN where no fit was attempted.
        Lorentzian ``area`` and Drude ``amplitude`` are per channel (model units), ``t_lambda``
        is t/λ of the plural-scattering series, ``offset`` the background at the window
        centre and ``slope`` its change from the centre to the window end (counts per
        channel); ``pl_*`` are the power-law terms (module notes).
    param_names : tuple of str
    settings : dict
        Other settings (``max_iter``, ``tol``, ``plural_orders``, ``window_channels_eV``:
        the first and last channel energies inside the window, ...).
    """

    position: np.ndarray
    fwhm: np.ndarray
    area: np.ndarray
    position_err: np.ndarray
    fwhm_err: np.ndarray
    area_err: np.ndarray
    redchi: np.ndarray
    n_iter: np.ndarray
    status: np.ndarray
    ep: np.ndarray | None = None
    gamma: np.ndarray | None = None
    ep_err: np.ndarray | None = None
    gamma_err: np.ndarray | None = None
    second_area: np.ndarray | None = None
    second_area_err: np.ndarray | None = None
    model: str = DEFAULT_MODEL
    background: str = DEFAULT_BACKGROUND
    window: tuple[float, float] = DEFAULT_WINDOW_EV
    second_plasmon: bool = True
    absolute_sigma: bool = False
    params: np.ndarray | None = None
    param_names: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, np.ndarray]:
        """The per-pixel arrays by name (only those present for this model)."""
        names = plasmon_output_fields(self.model, self.second_plasmon)
        return {name: getattr(self, name) for name in names}

    @property
    def ok(self) -> np.ndarray:
        """Boolean map of pixels with status OK."""
        return self.status == int(Status.OK)

    def model_spectrum(self, energy: Any) -> np.ndarray:
        """The fitted model evaluated on ``energy``, shape ``(..., E)`` (NaN where not fitted).

        Examples
        --------
        >>> import numpy as np
        >>> e = np.arange(0.0, 40.0, 0.1)
        >>> y = lorentzian(e, 5e4, 15.0, 4.0) + 30.0
        >>> fit = fit_plasmon(y, e, background="offset", second_plasmon=False, sigma=1.0)
        >>> bool(np.allclose(fit.model_spectrum(e), y, rtol=1e-4))
        True
        """
        return model_spectrum(
            self.params,
            energy,
            model=self.model,
            background=self.background,
            plural_orders=self.settings.get("plural_orders", 1),
            window_channels=self.settings["window_channels_eV"],
        )


def plasmon_output_fields(
    model: str = DEFAULT_MODEL, second_plasmon: bool = True
) -> dict[str, np.dtype]:
    """Names and dtypes of the per-pixel outputs of :func:`fit_plasmon` for these settings.

    Examples
    --------
    >>> list(plasmon_output_fields("lorentzian", False))[:3]
    ['position', 'fwhm', 'area']
    """
    names = list(_COLUMNS[:9])
    if model == "drude":
        names += ["ep", "gamma", "ep_err", "gamma_err"]
    if second_plasmon:
        names += ["second_area", "second_area_err"]
    dtypes = {"n_iter": np.dtype(np.int32), "status": np.dtype(np.uint8)}
    return {name: dtypes.get(name, np.dtype(np.float64)) for name in names}


def _param_names(model: str, background: str, second_plasmon: bool) -> tuple[str, ...]:
    names = ["area", "centre", "fwhm"] if model == "lorentzian" else ["amplitude", "ep", "gamma"]
    if second_plasmon:
        names.append("t_lambda")
    names += {
        "none": [],
        "offset": ["offset"],
        "linear": ["offset", "slope"],
        "powerlaw": ["pl_amplitude", "pl_exponent"],
        "powerlaw_offset": ["offset", "pl_b", "pl_exponent"],
    }[background]
    return tuple(names)


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise AnodemapInputError(f"{what}={value!r} is not one of {', '.join(allowed)}")
    return value


def _window_slice(energy: np.ndarray, window: tuple[float, float]) -> slice:
    lo, hi = (float(v) for v in window)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise AnodemapInputError(f"window={window!r}: give a finite (lo, hi) with lo < hi in eV")
    e0, e1 = float(energy[0]), float(energy[-1])
    if lo < e0 - 1e-9 or hi > e1 + 1e-9:
        raise AnodemapInputError(
            f"window [{lo:g}, {hi:g}] eV lies outside the energy axis [{e0:g}, {e1:g}] eV"
        )
    tol = 1e-6 * abs(float(energy[1] - energy[0]))
    i0 = int(np.searchsorted(energy, lo - tol, side="left"))
    i1 = int(np.searchsorted(energy, hi + tol, side="right"))
    return slice(i0, i1)


def _c64(a: Any) -> np.ndarray:
    """C-contiguous, writeable float64 array (one compiled signature for every input:
    read-only inputs such as dask chunks or broadcast views would compile another)."""
    out = np.ascontiguousarray(a, dtype=np.float64)
    return out if out.flags.writeable else out.copy()


def _check_energy(energy: Any, n_channels: int) -> np.ndarray:
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim != 1 or e.size != n_channels:
        raise AnodemapInputError(
            f"energy must be 1-D with one value per channel ({n_channels}); got shape {e.shape}"
        )
    if e.size < 2 or not np.all(np.isfinite(e)):
        raise AnodemapInputError("energy must hold at least 2 finite values (eV)")
    step = np.diff(e)
    if not (step[0] > 0 and np.allclose(step, step[0], rtol=1e-4, atol=0)):
        raise AnodemapInputError("energy must be uniform and increasing (eV per channel)")
    return e


def fit_plasmon(
    spectra: Any,
    energy: Any,
    *,
    window: tuple[float, float] = DEFAULT_WINDOW_EV,
    model: str = DEFAULT_MODEL,
    background: str = DEFAULT_BACKGROUND,
    second_plasmon: bool = True,
    plural_orders: int = DEFAULT_PLURAL_ORDERS,
    sigma: Any = None,
    absolute_sigma: bool = False,
    max_iter: int = 100,
    tol: float = 1e-2,
    final_step: float = 0.1,
    min_snr: float = 5.0,
    min_counts: float = 100.0,
    workers: int = 1,
) -> PlasmonFit:
    """Fit the first bulk plasmon of every spectrum by Levenberg–Marquardt.

    Parameters
    ----------
    spectra : array_like, shape (..., E)
        Low-loss spectra (counts), energy last: one spectrum, a line scan or a map.
        float32/float64/integer; only the window channels are copied (to float64).
    energy : array_like, shape (E,)
        Uniform, increasing energy axis in eV (channel centres).
    window : (lo, hi)
        Fit window in eV, inclusive (default 8-25 eV).
    model : {"lorentzian", "drude"}
        First-plasmon lineshape (see module notes).
    background : {"none", "offset", "linear", "powerlaw", "powerlaw_offset"}
        Background under the peak; the power-law terms need ``lo > 0``.
    second_plasmon : bool
        Add the plural-scattering second plasmon at twice the position, twice the width,
        with a free area.
    sigma : None, float or array_like
        Standard deviation of each channel. None (default): Poisson,
        ``σ² = max(counts, 1)``. A scalar or an array broadcastable to ``spectra``.
    absolute_sigma : bool
        If False (default), scale the covariance by the reduced chi-square; if True,
        take σ as exact (see module notes).
    max_iter : int
        Maximum Levenberg–Marquardt iterations per pixel.
    tol : float
        Convergence: the Gauss–Newton distance to the minimum is below ``tol`` standard
        errors of every parameter (default 0.01: any bias from stopping is < 1 % of σ).
    final_step : float
        When the Gauss–Newton step to the minimum is below ``final_step`` standard errors
        it is taken without a further model evaluation and the fit stops (its error is
        second order, measured < 0.03 σ for 0.1; set 0 to always iterate down to ``tol``).
        Not used with the power-law backgrounds, whose flat valleys make it unsafe.
    min_snr : float
        Minimum peak height above the chord between the window ends, in units of the
        noise of a 1 eV average, for a fit to be attempted.
    min_counts : float
        With Poisson weights, pixels with fewer counts in the window are NO_SIGNAL.
    workers : int
        Threads over which the pixels of this call are split (the kernel releases the GIL).
        Keep 1 when an outer executor (dask) already runs blocks in parallel.

    Returns
    -------
    PlasmonFit
        Arrays of shape ``spectra.shape[:-1]`` (see :class:`PlasmonFit`).

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.eels.plasmon import fit_plasmon, lorentzian
    >>> energy = np.arange(-2.0, 40.0, 0.05)
    >>> rng = np.random.default_rng(1)
    >>> clean = lorentzian(energy, 2e4, 16.8, 4.0) + lorentzian(energy, 4e3, 33.6, 8.0) + 20
    >>> fit = fit_plasmon(rng.poisson(clean), energy, model="lorentzian",
    ...                   background="offset", second_plasmon=True)
    >>> round(float(fit.position), 1), int(fit.status)
    (16.8, 0)
    """
    model = _check_choice(model, MODELS, "model")
    if background == "default":
        background = DEFAULT_BACKGROUND
    background = _check_choice(background, BACKGROUNDS, "background")
    if not 2 <= int(plural_orders) <= 8:
        raise AnodemapInputError(f"plural_orders must be 2 ... 8; got {plural_orders}")
    norders = int(plural_orders) if second_plasmon else 1
    data = np.asarray(spectra)
    if data.ndim < 1:
        raise AnodemapInputError("spectra must have at least one axis (energy last)")
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise AnodemapInputError(f"spectra must be real numbers; got dtype {data.dtype}")
    e = _check_energy(energy, data.shape[-1])
    sl = _window_slice(e, window)
    ew = _c64(e[sl])
    npar = 3 + int(second_plasmon) + _BG_NPAR[_BG_ID[background]]
    if ew.size < npar + 2:
        raise AnodemapInputError(
            f"window {window} holds {ew.size} channels; the fit needs at least {npar + 2}"
        )
    if (model == "drude" or background.startswith("powerlaw")) and not ew[0] > 0:
        raise AnodemapInputError(
            f"model={model!r}, background={background!r} need a window above 0 eV; "
            f"got lo={window[0]}"
        )
    if int(max_iter) < 1:
        raise AnodemapInputError(f"max_iter must be >= 1; got {max_iter}")
    scan_shape = data.shape[:-1]
    npix = int(np.prod(scan_shape, dtype=np.int64))
    y = _c64(data[..., sl]).reshape(npix, ew.size)
    if sigma is None:
        sig = np.empty((0, ew.size))
    else:
        s = np.asarray(sigma, dtype=np.float64)
        if s.ndim == 0 or s.shape[:-1] == () or all(d == 1 for d in s.shape[:-1]):
            s1 = np.broadcast_to(s, (data.shape[-1],)) if s.ndim <= 1 else s.reshape(-1)
            sig = _c64(s1[sl]).reshape(1, ew.size)
        else:
            try:
                sb = np.broadcast_to(s, data.shape)
            except ValueError:
                raise AnodemapInputError(
                    f"sigma of shape {s.shape} does not broadcast to spectra {data.shape}"
                ) from None
            sig = _c64(sb[..., sl]).reshape(npix, ew.size)
    out = np.empty((npix, len(_COLUMNS)), dtype=np.float64)
    pout = np.full((npix, npar), np.nan)
    settings = _FitSettings(
        _MODEL_ID[model],
        _BG_ID[background],
        norders,
        int(max_iter),
        float(tol),
        float(final_step),
        float(min_snr),
        float(min_counts),
        bool(absolute_sigma),
    )
    if workers > 1 and npix >= 2 * workers:
        bounds = np.linspace(0, npix, workers + 1).astype(int)

        def run(j: int) -> None:
            a, b = bounds[j], bounds[j + 1]
            sj = sig if sig.shape[0] <= 1 else sig[a:b]
            _fit_block(y[a:b], sj, ew, settings, out[a:b], pout[a:b])

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, range(workers)))
    elif npix:
        _fit_block(y, sig, ew, settings, out, pout)

    def col(name: str, dtype: Any = np.float64) -> np.ndarray:
        return out[:, _COLUMNS.index(name)].astype(dtype).reshape(scan_shape)

    fit = PlasmonFit(
        position=col("position"),
        fwhm=col("fwhm"),
        area=col("area"),
        position_err=col("position_err"),
        fwhm_err=col("fwhm_err"),
        area_err=col("area_err"),
        redchi=col("redchi"),
        n_iter=col("n_iter", np.int32),
        status=col("status", np.uint8),
        model=model,
        background=background,
        window=(float(window[0]), float(window[1])),
        second_plasmon=bool(second_plasmon),
        absolute_sigma=bool(absolute_sigma),
        params=pout.reshape(scan_shape + (npar,)),
        param_names=_param_names(model, background, second_plasmon),
        settings={
            "max_iter": int(max_iter),
            "tol": float(tol),
            "min_snr": float(min_snr),
            "min_counts": float(min_counts),
            "plural_orders": norders,
            "final_step": float(final_step),
            "window_channels_eV": (float(ew[0]), float(ew[-1])),
        },
    )
    if model == "drude":
        fit.ep = col("ep")
        fit.gamma = col("gamma")
        fit.ep_err = col("ep_err")
        fit.gamma_err = col("gamma_err")
    if second_plasmon:
        fit.second_area = col("second_area")
        fit.second_area_err = col("second_area_err")
    return fit


def model_spectrum(
    params: Any,
    energy: Any,
    *,
    model: str = DEFAULT_MODEL,
    background: str = DEFAULT_BACKGROUND,
    plural_orders: int = DEFAULT_PLURAL_ORDERS,
    window_channels: tuple[float, float] = DEFAULT_WINDOW_EV,
) -> np.ndarray:
    """Evaluate the fit model (see module notes) for parameters ``params`` (..., P).

    Parameters
    ----------
    params : array_like, shape (..., P)
        Parameters in the order of :attr:`PlasmonFit.param_names`.
    energy : array_like, shape (E,)
        Energies in eV.
    model, background : str
        As in :func:`fit_plasmon` (``background="default"`` allowed).
    plural_orders : int
        Number of plasmon orders (1 = first plasmon only, i.e. ``second_plasmon=False``).
    window_channels : (float, float)
        First and last channel energy of the fit window: they define the linear
        background's centre and the power law's E_ref (``fit.settings``).

    Returns
    -------
    ndarray, shape (..., E)

    Examples
    --------
    >>> import numpy as np
    >>> e = np.array([10.0, 15.0, 20.0])
    >>> model_spectrum([1.0, 15.0, 2.0, 5.0], e, background="offset", plural_orders=1,
    ...                window_channels=(8.0, 25.0)).round(4)
    array([5.0122, 5.3183, 5.0122])
    """
    if background == "default":
        background = DEFAULT_BACKGROUND
    model = _check_choice(model, MODELS, "model")
    background = _check_choice(background, BACKGROUNDS, "background")
    p = np.asarray(params, dtype=np.float64)
    e = np.asarray(energy, dtype=np.float64)
    norders = int(plural_orders)
    npar = 3 + int(norders > 1) + _BG_NPAR[_BG_ID[background]]
    if p.shape[-1:] != (npar,):
        raise AnodemapInputError(
            f"params must have {npar} values on the last axis for model={model!r}, "
            f"background={background!r}, plural_orders={norders}; got shape {p.shape}"
        )
    pp = [p[..., j, None] for j in range(npar)]
    amp, e0, g = pp[0], pp[1], pp[2]
    t = pp[3] if norders > 1 else 0.0
    out = np.zeros(p.shape[:-1] + e.shape)
    cm = 1.0
    for m in range(1, norders + 1):
        if m > 1:
            cm = cm * t / m
        if model == "lorentzian":
            out = out + amp * cm * lorentzian(e, 1.0, m * e0, m * g)
        else:
            out = out + amp * cm * drude(e, 1.0, m * e0, m * g) / m
    i = 4 if norders > 1 else 3
    lo, hi = (float(v) for v in window_channels)
    eref = np.sqrt(lo * hi) if lo > 0 else 1.0
    if background == "offset":
        out = out + pp[i]
    elif background == "linear":
        out = out + pp[i] + pp[i + 1] * (e - 0.5 * (lo + hi)) * 2.0 / (hi - lo)
    elif background == "powerlaw":
        out = out + pp[i] * (e / eref) ** (-pp[i + 1])
    elif background == "powerlaw_offset":
        r = pp[i + 2]
        lx = np.log(e / eref)
        safe_r = np.where(r == 0, 1.0, r)
        phi = np.where(r == 0, -lx, np.expm1(-r * lx) / safe_r)
        out = out + pp[i] + pp[i + 1] * phi
    return out


def plasmon_block(block: np.ndarray, *, energy: np.ndarray, **kwargs: Any) -> dict[str, np.ndarray]:
    """Kernel form of :func:`fit_plasmon` for :func:`anodemap._compute.map_pixels`.

    Takes a block ``(n, E)`` and returns ``{name: array (n,)}`` with the fields of
    :func:`plasmon_output_fields`. Module-level, so it pickles for dask.distributed.

    Examples
    --------
    >>> import numpy as np
    >>> out = plasmon_block(np.zeros((2, 160)), energy=np.arange(160) * 0.25,
    ...                     second_plasmon=False)
    >>> out["status"].tolist()  # zero spectra: NO_SIGNAL
    [3, 3]
    """
    return fit_plasmon(block, energy, **kwargs).to_dict()
