"""The whole low-loss analysis of a spectrum image, fused in one pass over the data.

Every chunk of spectra goes through: validity check -> zero-loss peak location ->
alignment -> zero-loss extraction -> t/λ (log-ratio); then the plasmon fit on the aligned
spectra and the strongest loss peak (a warning where it lies outside the fit window);
zero-loss deconvolution (Richardson–Lucy over the energy range of the 42 eV window
only, Fourier-log, or none) -> the 42 eV window map; Fourier-log (which removes the
plural plasmons) -> the Li-K edge map, with its 1σ (a power law and the hydrogenic Li-K
edge fitted together, or the paper's window above the power law). With
``EELSParameters(fit_deconvolved=True)`` the whole axis is deconvolved and the fit sees
the deconvolved spectra. The data are read once, chunk by chunk, by the execution layer
(:mod:`anodemap._compute`), so the same call runs in memory, out of core and on a
dask.distributed cluster. The plasmon energy map then goes through the Li/Si
calibration.

Three status maps say why a pixel has the value it has: ``fit_status`` (the plasmon
fit), ``li_si_status`` (Li/Si: the fit's status, or the calibration's) and
``li_k_status`` (the Li-K edge map).

Examples
--------
>>> from anodemap.synth import make_phantom, simulate_eels
>>> from anodemap.eels import analyse_eels, eels_dataset
>>> sim = simulate_eels(make_phantom((8, 8), seed=1), seed=1)      # doctest: +SKIP
>>> result = analyse_eels(eels_dataset(sim.spectra, sim.energy))    # doctest: +SKIP
>>> result.maps["li_si_ratio"].shape                                 # doctest: +SKIP
(8, 8)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from anodemap._compute import OutputSpec, local_scheduler, map_pixels, progress_label
from anodemap.eels import windows as _win
from anodemap.eels.calibration import Calibration, default_calibration
from anodemap.eels.deconvolution import fourier_log, richardson_lucy, richardson_lucy_range
from anodemap.eels.fit_window import auto_window, strongest_loss_peak
from anodemap.eels.oxide_index import oxide_index
from anodemap.eels.oxide_peak import fit_oxide_peak, holds_oxide_range
from anodemap.eels.parameters import EELSParameters
from anodemap.eels.plasmon import fit_plasmon
from anodemap.eels.zlp import (
    align_zlp,
    extract_zlp,
    locate_zlp,
    thickness_log_ratio,
    zlp_fwhm,
)
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset
from anodemap.status import WARNINGS, Status

__all__ = ["EELSParameters", "EELSResult", "analyse_eels", "eels_dataset", "energy_axis"]


# Fraction of a spectrum's positive counts allowed in negative channels before the
# pixel is flagged INVALID_INPUT. Model choice: read noise after dark subtraction
# gives small negative values that are normal; more than 1 % of the signal below zero
# means a bad dark reference or corrupt data, and the fit would be meaningless.
_NEGATIVE_FRACTION_LIMIT = 0.01

# Target input bytes per chunk for this pipeline (model choice: the kernels make a few
# float64 working copies of a chunk; 16 MiB keeps peak memory well under the data size).
_CHUNK_BYTES = 16 * 2**20

_ENERGY_UNITS = {"ev": 1.0, "kev": 1e3, "mev": 1e-3}

# Richardson–Lucy for the window maps runs on the channels from this far below the
# lowest window edge to this far above the highest (model choice: the boundary-aware
# update leaves the channels near the ends of its range less well determined, an effect
# that falls off by 5 to 8 times per eV inwards). Measured on the simulated electrode
# (256 x 256, defaults, so 37-65 eV): the window maps differ from those with a 10 eV
# margin by 8e-6 (median) and 3e-5 (99th percentile) of the 42 eV map's values, and by
# 1.5e-5 and 7e-5 of the counts in the Li-K window; with 2 eV by 4e-5 and 2e-4.
_RL_MARGIN_EV = 3.0

# The Li-K map's Fourier-log runs on channels summed to about this width (model choice:
# the Li-K window is 4 eV and its background a smooth power law over 23 eV; measured on
# the simulated 64 x 64 electrode at 0.05 eV per channel, summing 4 channels changes the
# Li-K counts by 5.5 counts (median), a tenth of their counting noise, and leaves their
# error against the truth unchanged, at a fifth of the cost).
_LI_K_BIN_EV = 0.2
# Channels of the Fourier-log taper at the end of the (summed) axis (2 eV at 0.2 eV).
_LI_K_TAPER_CHANNELS = 10

# The shape of the hydrogenic Li-K edge needs the beam energy and the collection angle;
# where neither the parameters nor the file give them: the paper's 200 kV (JEOL 2200FS),
# and 10 mrad (a model choice: the paper does not state beta; the shape over 57-75 eV
# changes by at most 5 % between 5 and 50 mrad).
_DEFAULT_BEAM_ENERGY_KEV = 200.0
_DEFAULT_COLLECTION_ANGLE_MRAD = 10.0

# Pixel counts at which the auto fit window is found on a sum of spectra: at most this
# many, evenly spread over the scan (model choice: the sum of 256 spectra has the shape
# of the scan's mean spectrum at far better counts).
_AUTO_WINDOW_PIXELS = 256


# name -> (title, units/quantity label, OutputSpec)
_MAP_OUTPUTS: dict[str, tuple[str, str, OutputSpec]] = {
    "zlp_position": ("Zero-loss peak position before alignment", "eV", OutputSpec()),
    "thickness": ("Relative thickness t/λ (log-ratio)", "t/λ", OutputSpec()),
    "plasmon_energy": ("First plasmon peak energy", "eV", OutputSpec()),
    "plasmon_energy_err": ("First plasmon peak energy, 1σ", "eV", OutputSpec()),
    "plasmon_fwhm": ("First plasmon FWHM", "eV", OutputSpec()),
    "plasmon_fwhm_err": ("First plasmon FWHM, 1σ", "eV", OutputSpec()),
    "plasmon_area": ("First plasmon area", "counts", OutputSpec()),
    "oxide_peak_area": (
        "Li$_2$O/silicate plasmon area (two-peak fit; 0: none)",
        "counts",
        OutputSpec(),
    ),
    "oxide_peak_energy": ("Li$_2$O/silicate plasmon energy (two-peak fit)", "eV", OutputSpec()),
    "oxide_peak_significance": (
        "Li$_2$O/silicate plasmon: fitted area in σ, or the score test's z where not refitted",
        "σ",
        OutputSpec(),
    ),
    "reduced_chi2": ("Reduced χ² of the plasmon fit", "", OutputSpec()),
    "loss_peak_energy": ("Strongest loss peak above the zero-loss peak", "eV", OutputSpec()),
    "li2o_window": ("Li$_2$O/silicate second-plasmon window, 42 ± 2 eV", "counts", OutputSpec()),
    "oxide_index": ("Oxide index: 42 eV window / (plasmon area × t/λ)", "", OutputSpec()),
    "li_k": ("Li-K edge counts, 60 ± 2 eV", "counts", OutputSpec()),
    "li_k_err": ("Li-K edge counts, 1σ (counting noise)", "counts", OutputSpec()),
    "li_k_fraction": (
        "Li-K edge counts per single-scattering count",
        "Li-K / (I$_0$ t/λ)",
        OutputSpec(),
    ),
    "li_k_fraction_err": (
        "Li-K edge counts per single-scattering count, 1σ",
        "Li-K / (I$_0$ t/λ)",
        OutputSpec(),
    ),
    "li_k_background_exponent": ("Li-K background power-law exponent r", "r", OutputSpec()),
    "fit_status": ("Plasmon fit status", "", OutputSpec((), np.uint8)),
    "li_k_status": ("Li-K map status", "", OutputSpec((), np.uint8)),
}


def energy_axis(dataset: Dataset) -> np.ndarray:
    """The calibrated energy axis of a spectrum dataset in eV, validated.

    Raises a clear error for a missing, uncalibrated or non-uniform energy axis, for
    data that are not spectra, and for an axis without the zero-loss region. An axis in
    keV or meV is converted to eV (the same values as the axis recorded in eV).
    """
    if len(dataset.sig_axes) != 1:
        raise AnodemapInputError(
            f"expected spectra (one signal axis, energy last), got signal shape "
            f"{dataset.sig_shape}; is this a diffraction dataset or an image?"
        )
    ax = dataset.sig_axes[0]
    units = ax.units.strip().lower()
    if units not in _ENERGY_UNITS:
        raise AnodemapInputError(
            f"the signal axis {ax.name!r} has units {ax.units!r}, not an energy; the energy "
            "axis is missing or not calibrated (set its scale, offset and units in eV)"
        )
    if not ax.is_uniform:
        raise AnodemapInputError(
            f"the energy axis {ax.name!r} is not uniform (channel widths vary); resample the "
            "spectra onto a uniform axis first"
        )
    if ax.size < 16:
        raise AnodemapInputError(f"the energy axis has only {ax.size} channels")
    if ax.scale <= 0:
        raise AnodemapInputError(f"the energy axis scale is {ax.scale}; it must be positive")
    factor = _ENERGY_UNITS[units]
    if factor == 1.0:
        return ax.values
    # keV or meV: the axis converted to eV before its points are computed, so that the
    # points (and the channels inside an energy window's inclusive edges) are those of the
    # same axis recorded in eV, to the last bit
    ev = dataclasses.replace(
        ax, scale=_in_ev(ax.scale, factor), offset=_in_ev(ax.offset, factor), units="eV"
    )
    return ev.values


def _in_ev(value: float, factor: float) -> float:
    """An axis scale or offset converted to eV, rounded to 12 significant digits.

    Rounding undoes the binary error of the unit conversion (0.05 eV written as 5e-05 keV
    is 5.000000000000001e-05 keV, and times 1000 not 0.05): 12 digits are far more than
    any energy calibration has, and far fewer than the 16 of a float64.

    Examples
    --------
    >>> _in_ev(0.05 / 1000, 1e3), _in_ev(-0.005, 1e3)
    (0.05, -5.0)
    """
    return float(f"{float(value) * factor:.12g}")


def eels_dataset(
    spectra: Any, energy: np.ndarray, pixel_size_nm: float | None = None, title: str = ""
) -> Dataset:
    """Wrap an array of spectra ``(..., E)`` and its energy axis in a calibrated Dataset."""
    energy = np.asarray(energy, dtype=float)
    nav = tuple(spectra.shape[:-1])
    names = ["y", "x"] if len(nav) == 2 else ["x"] * len(nav)
    step = pixel_size_nm if pixel_size_nm is not None else 1.0
    units = "nm" if pixel_size_nm is not None else ""
    axes = [Axis(n, s, step, 0.0, units) for n, s in zip(names, nav, strict=True)]
    # from explicit values, so that a non-uniform axis stays non-uniform (and is refused)
    axes.append(
        Axis.from_dict({"name": "Energy loss", "axis": energy, "units": "eV", "navigate": False})
    )
    ds = Dataset(spectra, axes)
    ds.set_meta("Signal.signal_type", "EELS")
    ds.set_meta("General.title", title)
    return ds


def _eels_kernel(block: np.ndarray, *, energy: np.ndarray, p: EELSParameters) -> dict[str, Any]:
    """All per-pixel steps for a block of spectra ``(n, E)``: the named result maps."""
    return process_spectra(block, energy, p)[0]


def process_spectra(
    block: np.ndarray, energy: np.ndarray, p: EELSParameters
) -> tuple[dict[str, Any], np.ndarray, Any]:
    """Run every per-pixel step on spectra ``(n, E)``.

    Returns
    -------
    maps : dict of str to ndarray, shape (n,)
        The per-pixel results (as in :attr:`EELSResult.maps`, before calibration).
    work : ndarray, shape (n, E)
        The spectra that were fitted: the aligned ones, or the deconvolved ones with
        ``p.fit_deconvolved``. Rows of flagged pixels are 0.
    fit : PlasmonFit
        The plasmon fit (its ``model_spectrum(energy)`` draws the fitted model).
    """
    n = block.shape[0]
    spectra = np.asarray(block)
    if spectra.dtype not in (np.float32, np.float64):
        spectra = spectra.astype(np.float64)
    clean = np.empty(spectra.shape, dtype=np.float64)
    invalid = np.empty(n, dtype=np.bool_)
    _validate(np.ascontiguousarray(spectra), _NEGATIVE_FRACTION_LIMIT, clean, invalid)
    status = np.where(invalid, np.uint8(Status.INVALID_INPUT), np.uint8(Status.OK))

    position, _height, zstatus = locate_zlp(clean, energy, search=p.zlp_search)
    zstatus = np.asarray(zstatus)
    no_zlp = (status == Status.OK) & (zstatus != Status.OK)
    status[no_zlp] = Status.NO_ZERO_LOSS
    bad = status != Status.OK
    shifts = np.where(bad, 0.0, position)
    aligned = align_zlp(clean, energy, shifts, target=0.0)
    aligned[bad] = 0.0

    zlp = extract_zlp(aligned, energy, method=p.zlp_method)
    if p.thickness_method == "threshold":
        fwhm, _ = zlp_fwhm(aligned, energy, search=p.zlp_search)
        t = _threshold_thickness(aligned, energy, p.threshold_fwhm * np.nan_to_num(fwhm))
    else:
        t, _ = thickness_log_ratio(aligned, energy, zlp)
    t = np.asarray(t, dtype=float)
    thin = (status == Status.OK) & ~(t >= p.min_thickness)
    status[thin] = Status.NO_SIGNAL

    # spectra of pixels flagged so far take no further part: zero (their window maps
    # are 0 and their fit returns a status)
    ok = status == Status.OK
    aligned[~ok] = 0.0
    zlp[~ok] = 0.0
    deconvolved, win_energy = _deconvolve(aligned, zlp, energy, ok, p)
    work = deconvolved if p.fit_deconvolved else aligned

    window = _fixed_window(p.window)
    fit_options = {"background": p.background} if p.background else {}
    fit = fit_plasmon(work, energy, window=window, model=p.model, **fit_options)
    li_xsi = _with_oxide_peak(work, energy, fit, p)
    fstatus = li_xsi["status"]
    pre_fit = status.copy()  # input statuses, before the fit
    status = np.where(status == Status.OK, fstatus, status).astype(np.uint8)
    # a converged fit whose window misses the strongest loss peak: kept, with a warning
    peak, _valley = strongest_loss_peak(aligned, energy)
    peak = np.where(ok, peak, np.nan)
    outside = (status == Status.OK) & ((peak < window[0]) | (peak > window[1]))
    status[outside] = Status.STRONGEST_PEAK_OUTSIDE_WINDOW

    li2o = _win.integrate_window(deconvolved, win_energy, *p.li2o_window)
    lik = _li_k(aligned, zlp, energy, t, ok, pre_fit, p)

    def masked(values: Any, bad_mask: np.ndarray) -> np.ndarray:
        return np.where(bad_mask, np.nan, np.asarray(values, dtype=float))

    input_bad = (status == Status.INVALID_INPUT) | (status == Status.NO_ZERO_LOSS)
    fit_bad = ~np.isin(status, _CONVERGED)
    maps = {
        "zlp_position": masked(position, input_bad),
        "thickness": masked(t, input_bad),
        "plasmon_energy": masked(li_xsi["position"], fit_bad),
        "plasmon_energy_err": masked(li_xsi["position_err"], fit_bad),
        "plasmon_fwhm": masked(li_xsi["fwhm"], fit_bad),
        "plasmon_fwhm_err": masked(li_xsi["fwhm_err"], fit_bad),
        "plasmon_area": masked(li_xsi["area"], fit_bad),
        "oxide_peak_area": masked(li_xsi["oxide_area"], fit_bad),
        "oxide_peak_energy": masked(li_xsi["oxide_energy"], fit_bad),
        "oxide_peak_significance": masked(li_xsi["significance"], input_bad),
        "reduced_chi2": masked(li_xsi["redchi"], fit_bad),
        "loss_peak_energy": peak,
        "li2o_window": masked(li2o, input_bad),
        # none where the fit is not the first plasmon's (failed, status 7, area too large)
        "oxide_index": oxide_index(li2o, fit.area, zlp.sum(axis=-1), t, status == Status.OK),
        **lik,
        "fit_status": status,
    }
    return maps, work, fit


def _with_oxide_peak(
    work: np.ndarray, energy: np.ndarray, fit: Any, p: EELSParameters
) -> dict[str, np.ndarray]:
    """The Li_xSi peak per pixel: the one-peak fit's, or, with ``p.oxide_peak="auto"``,
    the two-peak fit's where the oxide peak is there (:mod:`anodemap.eels.oxide_peak`).

    The Li_xSi peak's values and the reduced χ² are those of the fit kept.
    ``oxide_area``/``oxide_energy`` are the oxide peak's where it was kept, 0/NaN where
    not; ``significance`` its fitted area in σ where refitted, else the score test's z
    (:class:`~anodemap.eels.oxide_peak.OxidePeakFit`); ``status``
    the fit status: the two-peak fit's where it was kept (OK, or NO_SIGNAL where beside
    the oxide no Li_xSi peak is above the noise), else the one-peak fit's. The oxide
    index keeps the one-peak area (its definition, measured with it).
    """
    shape = fit.position.shape
    out = {
        "position": fit.position,
        "position_err": fit.position_err,
        "fwhm": fit.fwhm,
        "fwhm_err": fit.fwhm_err,
        "area": fit.area,
        "redchi": fit.redchi,
        "oxide_area": np.zeros(shape),
        "oxide_energy": np.full(shape, np.nan),
        "significance": np.full(shape, np.nan),
        "status": np.asarray(fit.status, dtype=np.uint8),
    }
    if p.oxide_peak == "off" or not holds_oxide_range(fit.window):
        return out
    two = fit_oxide_peak(work, energy, fit)
    use = two.selected
    for key in ("position", "position_err", "fwhm", "fwhm_err", "area", "redchi"):
        out[key] = np.where(use, getattr(two, key), out[key])
    out["oxide_area"] = np.where(use, two.oxide_area, 0.0)
    out["oxide_energy"] = np.where(use, two.oxide_energy, np.nan)
    out["significance"] = np.where(np.isfinite(two.significance), two.significance, np.nan)
    out["status"] = np.where(use, two.status, out["status"]).astype(np.uint8)
    return out


# Plasmon fit statuses of a converged fit (its values are in the maps): OK and the
# warnings.
_CONVERGED = tuple(sorted(int(c) for c in {Status.OK, *WARNINGS}))


def _fixed_window(window: Any) -> tuple[float, float]:
    if isinstance(window, str):
        raise AnodemapInputError(
            f"window={window!r}: analyse_eels resolves 'auto'; process_spectra needs (lo, hi)"
        )
    return float(window[0]), float(window[1])


def _li_k(
    aligned: np.ndarray,
    zlp: np.ndarray,
    energy: np.ndarray,
    t: np.ndarray,
    ok: np.ndarray,
    input_status: np.ndarray,
    p: EELSParameters,
) -> dict[str, np.ndarray]:
    """The Li-K maps: counts and their 1σ, per single-scattering count, exponent, status.

    Fourier-log (reconvolved by the zero-loss peak) on channels summed to about
    ``_LI_K_BIN_EV``: the single-scattering distribution, in which the plural plasmons
    that lie under and below the edge are gone, so that the pre-edge is a power law.
    Then :func:`anodemap.eels.windows.edge_fit` with the hydrogenic Li-K shape
    (``p.li_k_method``: the fitted edge's counts in the window, or the paper's window
    counts above the two-area background), its 1σ from the counting noise of the
    recorded spectra propagated through Fourier-log (:func:`_fourier_log_variance`).
    The single-scattering count of a pixel is ``I0 t/λ`` with ``I0 = I_t exp(-t/λ)``
    (``I_t`` its total counts).
    """
    n = aligned.shape[0]
    status = np.where(ok, np.uint8(Status.OK), input_status).astype(np.uint8)
    nan = np.full(n, np.nan)
    names = ("li_k", "li_k_err", "li_k_fraction", "li_k_fraction_err", "li_k_background_exponent")
    out = {k: nan.copy() for k in names}
    out["li_k_status"] = status
    if not ok.any():
        return out
    scale = float(energy[1] - energy[0])
    b = max(1, int(math.floor(_LI_K_BIN_EV / scale + 1e-9)))
    m = (energy.size // b) * b
    rows = np.flatnonzero(ok)
    summed = np.empty((rows.size, m // b), dtype=np.float32)
    zsum = np.empty((rows.size, m // b), dtype=np.float32)
    _sum_channels(aligned, rows, b, summed)
    _sum_channels(zlp, rows, b, zsum)
    e_b = energy[:m].reshape(-1, b).mean(-1)
    # float32: the Li-K counts change by < 0.1 count (median 0.002) against float64,
    # against a counting noise of about 45 counts
    ssd, fl_status = fourier_log(summed, zsum, e_b, taper=_LI_K_TAPER_CHANNELS)
    ssd = np.asarray(ssd, dtype=np.float64)
    shape = _li_k_shape(e_b, p)
    edge_end = min(p.li_k_edge_fit[1], float(e_b[-1]) - _LI_K_TAPER_CHANNELS * b * scale)
    edge = _win.edge_fit(
        ssd,
        e_b,
        shape,
        p.li_k_window,
        p.li_k_background,
        (p.li_k_edge_fit[0], edge_end),
        exponent_range=p.li_k_exponent_range,
        method=p.li_k_method,
        variance=_fourier_log_variance(summed, zsum, _LI_K_TAPER_CHANNELS),
    )
    sub = np.where(np.asarray(fl_status) != Status.OK, fl_status, edge.status).astype(np.uint8)
    thick = ~(t[rows] <= p.li_k_max_thickness)
    sub[thick & (sub == Status.OK)] = Status.TOO_THICK
    status[rows] = sub
    good = status == Status.OK
    for key, values in (("li_k", edge.signal), ("li_k_err", edge.error)):
        out[key][rows] = values
        out[key][~good] = np.nan
    out["li_k_background_exponent"][rows] = edge.exponent
    total = aligned.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        single = total * np.exp(-t) * t
        out["li_k_fraction"] = np.where(good, out["li_k"] / single, np.nan)
        out["li_k_fraction_err"] = np.where(good, out["li_k_err"] / single, np.nan)
    return out


def _li_k_shape(energy: np.ndarray, p: EELSParameters) -> np.ndarray:
    """The hydrogenic Li-K cross-section on ``energy`` (cm²/eV) at the parameters' beam
    energy and collection angle (their defaults where not resolved from a file)."""
    e0 = _DEFAULT_BEAM_ENERGY_KEV if p.beam_energy_kev is None else p.beam_energy_kev
    beta = (
        _DEFAULT_COLLECTION_ANGLE_MRAD
        if p.collection_angle_mrad is None
        else p.collection_angle_mrad
    )
    return _win.hydrogenic_k_edge(energy, _win.LI_K_ONSET_EV, 3, e0, beta)


def _fourier_log_variance(spectra: np.ndarray, zlp: np.ndarray, taper: int) -> Any:
    """``variance(u, sel)``: the counting-noise variance of ``sum(u * S[sel])``, with
    ``S`` the Fourier-log single-scattering distribution of ``spectra``.

    To first order in the noise of the recorded spectrum ``J``, Fourier-log reconvolved
    by ``Z`` changes by ``dS = F⁻¹[Z/J · F(dJ)]`` (``F`` the transform, on the padded
    and tapered axis of :func:`~anodemap.eels.deconvolution.fourier_log`), so
    ``sum(u dS) = sum(v dJ)`` with ``v = taper · F⁻¹[conj(Z/J) · F(u)]``, and the variance
    is ``sum(v² var(J))``: the noise of every channel, the zero-loss and plasmon
    regions' too, wherever Fourier-log moves it. The variance of each recorded channel
    is modelled as ``g J + c`` (gain times counts plus read noise), with ``g`` and ``c``
    estimated per spectrum from its second differences in the upper half of the axis
    (:func:`_counting_variance`); the noise of the zero-loss peak ``Z``,
    taken from the same spectrum, is left out (it changes the single scattering in
    proportion, by about 1/sqrt(I0)).
    """
    import scipy.fft

    n_pix, n_e = spectra.shape
    n = scipy.fft.next_fast_len(2 * n_e - 1, real=True)
    window = np.ones(n_e, dtype=np.float32)
    if taper > 0:
        window[n_e - taper :] = np.hanning(2 * taper)[taper:]
    # float32 transforms: a variance needs nothing like float32's 1e-7 precision
    j = np.asarray(spectra, dtype=np.float32)
    jf = scipy.fft.rfft(j * window, n=n, axis=-1)
    zf = scipy.fft.rfft(np.asarray(zlp, dtype=np.float32), n=n, axis=-1)
    ratio = np.empty_like(jf)
    _conj_ratio(zf, jf, ratio)
    del jf, zf
    var_j = np.empty_like(j)
    _counting_variance(j, window, n_e // 2, var_j)

    def variance(u: np.ndarray, sel: np.ndarray) -> np.ndarray:
        full = np.zeros((n_pix, n), dtype=np.float32)
        full[:, sel] = u
        f = scipy.fft.rfft(full, axis=-1)
        f *= ratio
        v = scipy.fft.irfft(f, n=n, axis=-1)[:, :n_e]
        return np.einsum("ij,ij->i", v * v, var_j, dtype=np.float64)

    return variance


@numba.njit(cache=True, nogil=True)
def _conj_ratio(zf, jf, out):
    """``out = conj(zf / jf)``, 0 where ``jf`` is 0 or the ratio is not finite."""
    for p in range(jf.shape[0]):
        for k in range(jf.shape[1]):
            j = jf[p, k]
            jj = j.real * j.real + j.imag * j.imag
            r = zf[p, k] * j.conjugate() / jj if jj > 0.0 else 0.0j
            out[p, k] = r.conjugate() if math.isfinite(r.real) and math.isfinite(r.imag) else 0.0


@numba.njit(cache=True, nogil=True)
def _counting_variance(spectra, window, start, out):
    """Per spectrum, ``out = window² (g counts + c)``: the variance of each channel with
    the gain ``g`` and offset ``c`` of ``var = g counts + c`` from second differences.

    For independent channels of a spectrum that is smooth over three channels,
    ``(y[i-1] - 2 y[i] + y[i+1])² / 6`` estimates the variance at ``i``; its least-squares
    line against the mean counts of the nine channels around ``i`` (a mean of few would
    carry noise enough to flatten the line) gives ``g`` (Poisson: the detector's
    counts per electron) and ``c`` (read noise). ``c`` is not held >= 0: it is an
    extrapolation to zero counts, noisy, and cutting it would bias ``g`` low; the
    variance ``g counts + c`` is held >= 0 instead. Channels from ``start`` on: the upper
    half of the axis, free of sharp features (zero-loss peak, plasmon maximum).
    """
    n_pix, n_e = spectra.shape
    half = 4  # the level: mean of 9 channels, so that its own noise barely biases g
    for p in range(n_pix):
        y = spectra[p]
        m = 0
        sx = sy = sxx = sxy = 0.0
        for i in range(max(start, half), n_e - half):
            d = float(y[i - 1]) - 2.0 * float(y[i]) + float(y[i + 1])
            q = d * d / 6.0
            lv = 0.0
            for k in range(i - half, i + half + 1):
                lv += float(y[k])
            lv /= 2 * half + 1
            m += 1
            sx += lv
            sy += q
            sxx += lv * lv
            sxy += lv * q
        g = c = 0.0
        den = m * sxx - sx * sx
        if m > 0 and den > 0.0:
            g = (m * sxy - sx * sy) / den
            c = (sy - g * sx) / m
        if not g >= 0.0:
            # no rise of the noise with the counts to be seen: a constant variance
            g = 0.0
            c = sy / m if m > 0 else 0.0
        for i in range(n_e):
            out[p, i] = max(g * float(y[i]) + c, 0.0) * window[i] * window[i]


@numba.njit(cache=True, nogil=True)
def _sum_channels(src, rows, b, out):
    """``out[k, j] = sum(src[rows[k], j*b:(j+1)*b])`` (float32 output)."""
    n_out = out.shape[1]
    for k in range(rows.shape[0]):
        r = rows[k]
        for j in range(n_out):
            acc = 0.0
            for i in range(j * b, (j + 1) * b):
                acc += src[r, i]
            out[k, j] = acc


def _window_range(energy: np.ndarray, p: EELSParameters) -> tuple[float, float]:
    """Energy range (eV) that Richardson–Lucy covers for the 42 eV window map."""
    edges = tuple(p.li2o_window)
    lo = max(min(edges) - _RL_MARGIN_EV, float(energy[0]))
    hi = min(max(edges) + _RL_MARGIN_EV, float(energy[-1]))
    return lo, hi


def _deconvolve(
    aligned: np.ndarray, zlp: np.ndarray, energy: np.ndarray, ok: np.ndarray, p: EELSParameters
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-loss deconvolution of the rows ``ok`` of ``aligned`` as ``p`` asks.

    Returns the spectra for the window maps (and, with ``p.fit_deconvolved``, for the
    fit) and their energy axis: Richardson–Lucy over the windows' range only unless the
    fit needs the whole axis; Fourier-log on the whole axis; ``aligned`` itself for
    ``"none"``. Rows not ``ok`` are 0.
    """
    if p.deconvolve == "none":
        return aligned, energy
    if p.deconvolve == "rl" and not p.fit_deconvolved:
        lo, hi = _window_range(energy, p)
        # float32: counts need far less than its ~1e-7 relative precision (measured on
        # the simulated electrode: window maps change by < 1e-6 against float64). Rows
        # not ok have a zero psf: they are skipped (status NO_ZERO_LOSS, NaN) -> 0.
        sub, sub_energy, _ = richardson_lucy_range(
            aligned, zlp, energy, (lo, hi), iterations=p.rl_iterations, dtype=np.float32
        )
        out = np.asarray(sub, dtype=np.float64)
        out[~ok] = 0.0
        return out, sub_energy
    if p.deconvolve == "rl":
        # float32 halves the cost of the FFTs; counts need far less than its ~1e-7
        # relative precision (measured on the simulated electrode: fitted plasmon energies
        # change by < 1e-5 eV against float64)
        full, _ = richardson_lucy(
            aligned.astype(np.float32),
            zlp.astype(np.float32),
            energy=energy,
            iterations=p.rl_iterations,
        )
    else:
        full, _ = fourier_log(aligned, zlp, energy)
    full = np.asarray(full, dtype=np.float64)
    full[~ok] = 0.0
    return full, energy


@numba.njit(cache=True, nogil=True)
def _validate(spectra, limit, clean, invalid):
    """Flag and clean raw spectra in one pass.

    A row is invalid if it holds NaN/inf, has no positive counts, or has more than
    ``limit`` of its positive counts in negative channels; ``clean`` is the row with
    negative values set to 0 (all 0 for an invalid row).
    """
    n_pix, n_e = spectra.shape
    for p in range(n_pix):
        neg = 0.0
        pos = 0.0
        finite = True
        for i in range(n_e):
            v = float(spectra[p, i])
            if not math.isfinite(v):
                finite = False
                clean[p, i] = 0.0
            elif v < 0.0:
                neg -= v
                clean[p, i] = 0.0
            else:
                pos += v
                clean[p, i] = v
        bad = not finite or neg > limit * pos or not pos > 0.0
        invalid[p] = bad
        if bad:
            for i in range(n_e):
                clean[p, i] = 0.0


@numba.njit(cache=True, nogil=True)
def _threshold_thickness_kernel(aligned, n_below, out):
    """``out[p] = ln(sum(aligned[p]) / sum(aligned[p, :n_below[p]]))`` (NaN if undefined)."""
    n_pix, n_e = aligned.shape
    for p in range(n_pix):
        k = n_below[p]
        i0 = 0.0
        for i in range(min(max(k, 0), n_e)):
            i0 += aligned[p, i]
        it = i0
        for i in range(min(max(k, 0), n_e), n_e):
            it += aligned[p, i]
        if 0 < k < n_e and i0 > 0.0 and it > 0.0:
            out[p] = math.log(it / i0)
        else:
            out[p] = np.nan


def _threshold_thickness(
    aligned: np.ndarray, energy: np.ndarray, threshold: np.ndarray
) -> np.ndarray:
    """t/λ = ln(I_t / I_0) with I_0 the counts below a per-spectrum threshold energy."""
    n_below = np.searchsorted(energy, threshold)  # number of channels below the threshold
    out = np.empty(aligned.shape[0])
    _threshold_thickness_kernel(np.ascontiguousarray(aligned), n_below.astype(np.int64), out)
    return out


@dataclass
class EELSResult:
    """Maps from :func:`analyse_eels`, with the axes they were measured on.

    Attributes
    ----------
    maps : dict of str to ndarray
        Per-pixel results in scan order: ``plasmon_energy`` (eV), ``plasmon_fwhm``,
        ``li_si_ratio``, ``li_si_uncertainty`` (statistical: the fit's 1σ through the
        slope of the calibration curve), ``li_si_calibration_uncertainty`` (systematic:
        the curve's own 1σ), ``thickness`` (t/λ), ``loss_peak_energy`` (eV),
        ``li2o_window``, ``oxide_index`` (:mod:`anodemap.eels.oxide_index`),
        ``oxide_peak_area`` (counts; 0 where the one-peak fit was kept),
        ``oxide_peak_energy`` (eV) and ``oxide_peak_significance`` (σ) of the oxide
        plasmon fitted beside the Li_xSi one (:mod:`anodemap.eels.oxide_peak`), ``li_k``
        (counts), ``li_k_err`` (its 1σ), ``li_k_fraction``,
        ``li_k_fraction_err``, ``li_k_background_exponent`` and three status maps (uint8,
        :class:`anodemap.status.Status`): ``fit_status`` (plasmon fit), ``li_si_status``
        and ``li_k_status``.
    nav_axes : list of Axis
        The scan axes of the input.
    calibration : Calibration
    parameters : EELSParameters
        As run: ``window`` holds the window used (found, for ``"auto"``).
    window_auto : dict or None
        For ``window="auto"``: the strongest loss peak and window found, and from how
        many spectra.
    images : list of Dataset
        The images recorded with the spectra (the simultaneous HAADF/ADF: of the input
        file, or given as ``--adf``), written beside the maps.
    """

    maps: dict[str, np.ndarray]
    nav_axes: list[Axis]
    calibration: Calibration
    parameters: EELSParameters
    source: str = ""
    titles: dict[str, tuple[str, str]] = field(default_factory=dict)
    window_auto: dict[str, Any] | None = None
    images: list[Any] = field(default_factory=list)

    @property
    def valid(self) -> np.ndarray:
        """Pixels with a Li/Si value: the plasmon fit converged, its window holds the
        strongest loss peak, and its energy is within the calibration."""
        return self.maps["li_si_status"] == Status.OK

    @property
    def plasmon_valid(self) -> np.ndarray:
        """Pixels whose plasmon fit converged (``fit_status`` OK or the warning
        STRONGEST_PEAK_OUTSIDE_WINDOW), whatever their Li/Si."""
        return np.isin(self.maps["fit_status"], _CONVERGED)

    def window_warning(self) -> dict[str, Any] | None:
        """A warning when converged fits missed the strongest loss peak, else None."""
        flagged = self.maps["fit_status"] == Status.STRONGEST_PEAK_OUTSIDE_WINDOW
        n = int(flagged.sum())
        if n == 0:
            return None
        peak = self.maps["loss_peak_energy"][flagged]
        lo, hi = _fixed_window(self.parameters.window)
        return {
            "n_pixels": n,
            "fraction_of_converged": float(n / max(int(self.plasmon_valid.sum()), 1)),
            "strongest_peak_eV_median": float(np.median(peak)),
            "fit_window_eV": [lo, hi],
            "message": (
                f"in {n} pixel{'s' if n != 1 else ''} the strongest loss peak (median "
                f"{np.median(peak):.1f} eV) "
                f"lies outside the fit window {lo:g}-{hi:g} eV: the fit describes another "
                "feature, and those pixels have no Li/Si (status 7); fit the strongest "
                "peak with --window auto or --window LO HI"
            ),
        }

    def oxide_peak_summary(self) -> dict[str, Any]:
        """Where the Li_xSi peak came from a fit with the oxide peak beside it."""
        two = self.plasmon_valid & (np.nan_to_num(self.maps["oxide_peak_area"]) > 0)
        n_two = int(two.sum())
        energy = self.maps["oxide_peak_energy"][two]
        window = _fixed_window(self.parameters.window)
        mode = self.parameters.oxide_peak
        if mode != "off" and not holds_oxide_range(window):
            mode = (
                f"not run: the fit window {window[0]:g}-{window[1]:g} eV does not hold 19-22 eV "
                "and reach below Si's 16.83 eV"
            )
        return {
            "mode": mode,
            "n_pixels_two_peak": n_two,
            "fraction_of_converged": float(n_two / max(int(self.plasmon_valid.sum()), 1)),
            "oxide_energy_eV_median": float(np.median(energy)) if n_two else None,
            "method": (
                "anodemap.eels.oxide_peak: an oxide Lorentzian at 19-22 eV fitted where a score "
                "test reaches 5 sigma, kept where its area is >= 3 sigma"
            ),
        }

    def summary(self) -> dict[str, Any]:
        """Numbers for summary.json: plasmon, Li/Si and Li-K statistics, status counts.

        Plasmon statistics are over every converged fit, Li/Si statistics over the
        pixels with a Li/Si value (within the calibration), Li-K statistics over the
        pixels whose Li-K status is OK; each says over how many pixels.
        """
        from anodemap.status import counts, legend

        status = self.maps["fit_status"]
        li_status = self.maps["li_si_status"]
        k_status = self.maps["li_k_status"]
        valid = self.valid
        converged = self.plasmon_valid
        k_ok = k_status == Status.OK
        t = self.maps["thickness"][np.isfinite(self.maps["thickness"])]
        n = int(status.size)

        def stats(v: np.ndarray) -> dict[str, float | int | None]:
            if v.size == 0:
                return {"n": 0, "mean": None, "std": None, "median": None, "p5": None, "p95": None}
            return {
                "n": int(v.size),
                "mean": float(np.mean(v)),
                "std": float(np.std(v)),
                "median": float(np.median(v)),
                "p5": float(np.percentile(v, 5)),
                "p95": float(np.percentile(v, 95)),
            }

        used = sorted({int(c) for m in (status, li_status, k_status) for c in np.unique(m)})
        lo, hi = _fixed_window(self.parameters.window)
        return {
            "source": self.source,
            "n_pixels": n,
            "n_valid": int(valid.sum()),
            "n_plasmon_converged": int(converged.sum()),
            "fraction_converged": float(converged.sum() / n) if n else 0.0,
            "fraction_li_si_valid": float(valid.sum() / n) if n else 0.0,
            "fit_window_eV": [lo, hi],
            "fit_window_auto": self.window_auto,
            "window_warning": self.window_warning(),
            "status_counts": counts(status),
            "li_si_status_counts": counts(li_status),
            "li_k_status_counts": counts(k_status),
            "status_legend": legend(),
            "status_codes_used": legend(used),
            "plasmon_energy_eV": stats(self.maps["plasmon_energy"][converged]),
            "plasmon_fwhm_eV": stats(self.maps["plasmon_fwhm"][converged]),
            "li_si_ratio": stats(self.maps["li_si_ratio"][valid]),
            "li_si_uncertainty_statistical": stats(self.maps["li_si_uncertainty"][valid]),
            "li_si_uncertainty_calibration": stats(
                self.maps["li_si_calibration_uncertainty"][valid]
            ),
            "oxide_peak": self.oxide_peak_summary(),
            "li_k_method": self.parameters.li_k_method,
            "li_k_counts": stats(self.maps["li_k"][k_ok]),
            "li_k_counts_uncertainty": stats(self.maps["li_k_err"][k_ok]),
            "li_k_fraction": stats(self.maps["li_k_fraction"][k_ok]),
            "thickness_t_over_lambda": stats(t),
            "calibration": self.calibration.to_dict(),
            "parameters": self.parameters.as_dict(),
        }


def analyse_eels(
    dataset: Dataset,
    parameters: EELSParameters | None = None,
    *,
    calibration: Calibration | None = None,
    client: Any = None,
    progress: bool = True,
    rows_per_chunk: int | None = None,
) -> EELSResult:
    """Low-loss analysis of a spectrum image, line scan or single spectrum.

    Parameters
    ----------
    dataset : Dataset
        Spectra with a calibrated energy axis (eV) last; numpy or dask (lazy) data.
    parameters : EELSParameters, optional
        Analysis parameters (default: the paper's workflow).
    calibration : Calibration, optional
        Plasmon energy -> Li/Si calibration (default: the packaged Li_xSi table).
    client : dask.distributed.Client, optional
        Run on this cluster.
    progress : bool
        Show a progress bar.

    Returns
    -------
    EELSResult
    """
    p = parameters or EELSParameters()
    _check_parameters(p)
    cal = calibration or default_calibration()
    energy = energy_axis(dataset)
    if not energy[0] < 0 < energy[-1]:
        raise AnodemapInputError(
            f"the energy axis [{energy[0]:g}, {energy[-1]:g}] eV does not contain 0 eV, so the "
            "spectra have no zero-loss peak to align, deconvolve and measure thickness with"
        )
    if isinstance(p.window, str) and p.window != "auto":
        raise AnodemapInputError(
            f"window={p.window!r}: give the plasmon fit window as (LO, HI) in eV (--window LO "
            "HI) or 'auto' (--window auto)"
        )
    if not isinstance(p.window, str):
        try:
            _win.check_window(energy, *_fixed_window(p.window), what="plasmon fit window")
        except AnodemapInputError as err:
            raise AnodemapInputError(
                f"{err} (--window LO HI, or --window auto; window in Python)"
            ) from err
    scale = float(energy[1] - energy[0])
    taper_ev = _LI_K_TAPER_CHANNELS * max(1, int(math.floor(_LI_K_BIN_EV / scale + 1e-9))) * scale
    for name in ("li2o_window", "li_k_window", "li_k_background"):
        lo, hi = getattr(p, name)
        end = energy[-1] - (taper_ev if name == "li_k_window" else 0.0)
        if hi > end:
            raise AnodemapInputError(
                f"{name} [{lo:g}, {hi:g}] eV lies beyond the end of the energy axis "
                f"({energy[-1]:g} eV"
                + (f", less the {taper_ev:g} eV tapered by Fourier-log" if end < energy[-1] else "")
                + f"); record the spectra to higher energy (the command line has no option "
                f"for this window; {name} in Python)"
            )
    if p.li_k_method not in ("fit", "window"):
        raise AnodemapInputError(
            f"--li-k-method {p.li_k_method} (li_k_method): must be fit or window"
        )
    lo_fit, hi_fit = p.li_k_edge_fit
    end = min(hi_fit, energy[-1] - taper_ev)
    first = p.li_k_window[0] if p.li_k_method == "window" else p.li_k_window[1]
    if not (p.li_k_background[1] <= lo_fit <= first and p.li_k_window[1] <= end):
        raise AnodemapInputError(
            f"li_k_edge_fit [{lo_fit:g}, {hi_fit:g}] eV, cut to {end:g} eV by the end of the "
            f"axis less the Fourier-log taper, must start above the background window "
            f"{tuple(p.li_k_background)} eV and hold the end of the Li-K window "
            f"{tuple(p.li_k_window)} eV (its whole, for --li-k-method window; "
            "li_k_edge_fit in Python)"
        )
    p = _edge_kinematics(dataset, p)
    window_auto = None
    if p.window == "auto":
        lo, hi, peak, n_used = _find_auto_window(dataset, energy, p)
        window_auto = {
            "strongest_peak_eV": peak,
            "window_eV": [lo, hi],
            "n_spectra_summed": n_used,
            "method": "anodemap.eels.fit_window.auto_window on the sum of aligned spectra",
        }
        p = dataclasses.replace(p, window=(lo, hi))
    if p.deconvolve not in ("rl", "fourier-log", "none"):
        raise AnodemapInputError(
            f"--deconvolve {p.deconvolve} (deconvolve): must be rl, fourier-log or none"
        )
    if rows_per_chunk is None and dataset.nav_shape:
        row_bytes = 8 * math.prod(dataset.data.shape[1:])
        rows_per_chunk = max(1, _CHUNK_BYTES // row_bytes)
    # Compile the numba kernels (or load them from the cache) on one spectrum first, so
    # that the progress of the map measures the work and not a one-off compilation.
    first = dataset.data[(0,) * len(dataset.nav_shape)] if dataset.nav_shape else dataset.data
    if hasattr(first, "compute"):
        first = first.compute(scheduler=local_scheduler())
    process_spectra(np.asarray(first)[None], energy, p)
    with progress_label("spectra"), _memory_errors(dataset):
        out = map_pixels(
            _eels_kernel,
            dataset.data,
            sig_ndim=1,
            outputs={k: v[2] for k, v in _MAP_OUTPUTS.items()},
            kwargs={"energy": energy, "p": p},
            client=client,
            progress=progress,
            rows_per_chunk=rows_per_chunk,
        )
    maps = {k: np.asarray(v) for k, v in out.items()}
    x, _x_err_total, cal_status = cal.x_of_energy(
        maps["plasmon_energy"], maps["plasmon_energy_err"]
    )
    # Li/Si has its own status: the plasmon fit's (failures, and the warning that the
    # fit missed the strongest peak), else the calibration's
    li_status = maps["fit_status"].copy()
    outside = (li_status == Status.OK) & (np.asarray(cal_status) == Status.OUTSIDE_CALIBRATION)
    li_status[outside] = Status.OUTSIDE_CALIBRATION
    maps["li_si_status"] = li_status
    ok = li_status == Status.OK
    x = np.where(ok, x, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.abs(cal.slope(np.nan_to_num(x)))
        # statistical: the fit's 1-sigma through the local slope of the curve
        x_stat = maps["plasmon_energy_err"] / slope
        # systematic: the calibration curve's own 1-sigma, common to every pixel at this x
        x_cal = cal.energy_uncertainty(np.nan_to_num(x)) / slope
    maps["li_si_ratio"] = x
    maps["li_si_uncertainty"] = np.where(ok, x_stat, np.nan)
    maps["li_si_calibration_uncertainty"] = np.where(ok, x_cal, np.nan)
    titles = {k: v[:2] for k, v in _MAP_OUTPUTS.items()}
    titles["li_si_ratio"] = ("Li per Si (x in Li$_x$Si)", "Li/Si")
    titles["li_si_uncertainty"] = ("Li per Si, 1σ from the fit", "Li/Si")
    titles["li_si_calibration_uncertainty"] = ("Li per Si, 1σ of the calibration curve", "Li/Si")
    titles["li_si_status"] = ("Li/Si status", "")
    return EELSResult(
        maps,
        list(dataset.nav_axes),
        cal,
        p,
        source=dataset.title,
        titles=titles,
        window_auto=window_auto,
    )


def _edge_kinematics(dataset: Dataset, p: EELSParameters) -> EELSParameters:
    """``p`` with the beam energy and collection angle the Li-K edge shape is computed
    for: as given, else from the file's metadata (HyperSpy's keys, keV and mrad), else
    the defaults (``_DEFAULT_BEAM_ENERGY_KEV``, ``_DEFAULT_COLLECTION_ANGLE_MRAD``)."""
    found = {}
    for name, key, default in (
        ("beam_energy_kev", "Acquisition_instrument.TEM.beam_energy", _DEFAULT_BEAM_ENERGY_KEV),
        (
            "collection_angle_mrad",
            "Acquisition_instrument.TEM.Detector.EELS.collection_angle",
            _DEFAULT_COLLECTION_ANGLE_MRAD,
        ),
    ):
        value = getattr(p, name)
        if value is None:
            meta = dataset.get_meta(key)
            try:
                value = float(meta) if meta not in (None, "") else None
            except (TypeError, ValueError):
                value = None
            if value is None or not (math.isfinite(value) and value > 0):
                value = default
        found[name] = float(value)
    return dataclasses.replace(p, **found)


@contextlib.contextmanager
def _memory_errors(dataset: Dataset) -> Iterator[None]:
    """Running out of memory inside the block as a clear error that says what to do.

    numpy's ``MemoryError`` ("Unable to allocate ...") and an HDF5 decompression filter
    that could not allocate its buffer ("filter returned failure during read", which a
    damaged chunk also gives) become an :class:`AnodemapError` that says how much memory
    the process may use (:func:`anodemap._platform.memory_budget`) and what to do.
    """
    from anodemap._platform import describe_budget, usable_cores
    from anodemap.errors import AnodemapError

    try:
        yield
    except (MemoryError, OSError) as err:
        if isinstance(err, OSError) and "filter returned failure" not in str(err):
            raise
        what = (
            "a compressed chunk of the input could not be decoded (HDF5: filter returned "
            "failure during read): the memory ran out, or the chunk is damaged"
            if isinstance(err, OSError)
            else f"out of memory ({err})"
        )
        how = (
            "the spectra were read chunk by chunk"
            if dataset.is_lazy
            else "the input was read whole (its format cannot be read chunk by chunk)"
        )
        raise AnodemapError(
            f"{what}; {how}, with the kernels' working memory on {usable_cores()} cores: "
            f"{describe_budget()}. Give the process more memory (raise ulimit -v or the "
            "container's limit, close other programs) or run it on fewer cores (taskset -c 0 "
            "anodemap eels ...: less working memory, same maps)"
        ) from err


def _check_parameters(p: EELSParameters) -> None:
    """Refuse parameters out of range, naming the command-line option (and Python name).

    Raises
    ------
    AnodemapInputError
    """
    it = p.rl_iterations
    if isinstance(it, bool) or not isinstance(it, int | np.integer) or it < 1:
        raise AnodemapInputError(
            f"--iterations {it} (rl_iterations): the Richardson-Lucy iterations must be a "
            "whole number, at least 1"
        )
    if p.model not in ("lorentzian", "drude"):
        raise AnodemapInputError(f"--model {p.model} (model): must be lorentzian or drude")
    for name in ("li_k_max_thickness", "threshold_fwhm", "min_thickness"):
        value = getattr(p, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise AnodemapInputError(f"{name}={value!r}: must be a finite number >= 0")


def _find_auto_window(
    dataset: Dataset, energy: np.ndarray, p: EELSParameters
) -> tuple[float, float, float, int]:
    """The auto fit window from the sum of up to ``_AUTO_WINDOW_PIXELS`` aligned spectra,
    evenly spread over the scan (deterministic)."""
    from anodemap.eels.zlp import locate_zlp

    nav = tuple(dataset.nav_shape)
    n_pix = math.prod(nav) if nav else 1
    picks = np.unique(np.linspace(0, n_pix - 1, min(n_pix, _AUTO_WINDOW_PIXELS)).astype(int))
    data = dataset.data
    if nav:
        flat = data.reshape(n_pix, data.shape[-1])
        rows = flat[picks]
    else:
        rows = data[None]
    if hasattr(rows, "compute"):
        rows = rows.compute(scheduler=local_scheduler())
    rows = np.asarray(rows, dtype=np.float64)
    clean = np.empty(rows.shape, dtype=np.float64)
    invalid = np.empty(rows.shape[0], dtype=np.bool_)
    _validate(np.ascontiguousarray(rows), _NEGATIVE_FRACTION_LIMIT, clean, invalid)
    position, _h, zstatus = locate_zlp(clean, energy, search=p.zlp_search)
    good = ~invalid & (np.asarray(zstatus) == Status.OK)
    if not good.any():
        raise AnodemapInputError(
            "--window auto: no spectrum with a zero-loss peak to find the window from; give "
            "the plasmon fit window as --window LO HI"
        )
    aligned = align_zlp(clean[good], energy, np.asarray(position)[good], target=0.0)
    lo, hi, peak = auto_window(aligned.sum(axis=0), energy)
    return lo, hi, peak, int(good.sum())
