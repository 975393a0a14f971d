"""Zero-loss deconvolution of low-loss spectra: Richardson–Lucy and Fourier-log.

Plain-array kernels on blocks of spectra ``(..., E)`` (energy last, uniform axis in eV
that starts at negative energy and contains 0 eV). All keep the spectra on their energy
axis (no shift): the kernel is the zero-loss peak *centred at 0 eV*, wherever 0 eV sits
in the array.

- :func:`richardson_lucy` and :func:`fourier_log` work on the whole axis of the whole
  block with real FFTs (``scipy.fft``), zero-padded so that the convolutions are linear,
  not circular (zeros are assumed beyond the ends of the axis).
- :func:`richardson_lucy_range` deconvolves only the channels of an energy range, with
  the boundary-aware update of Bertero & Boccacci (2005), which assumes nothing about
  the spectrum outside the range; direct convolutions (numba) by the zero-loss kernel
  without its tails below a small fraction of its maximum. It is what
  :func:`anodemap.eels.analyse_eels` uses for the energy-window maps.

Each function returns its result and a status; a pixel that cannot be processed (NaN/inf
in its spectrum or zero-loss, or a zero-loss with no positive counts) gets NaN results
and an :class:`~anodemap.status.Status` code, never an exception.

Examples
--------
>>> import numpy as np
>>> from anodemap.eels.deconvolution import richardson_lucy
>>> energy = np.arange(-5.0, 30.0, 0.05)
>>> psf = np.exp(-0.5 * (energy / 0.4) ** 2)
>>> # a Gaussian line (sigma 0.3 eV) blurred by the psf (sigma 0.4 eV) has sigma 0.5 eV
>>> blurred = 0.6 * np.exp(-0.5 * ((energy - 15.0) / 0.5) ** 2)
>>> restored, status = richardson_lucy(blurred, psf, energy=energy, iterations=50)
>>> bool(restored.max() > 1.5 * blurred.max()), int(status)
(True, 0)
"""

from __future__ import annotations

import math
from typing import Literal

import numba
import numpy as np
import scipy.fft

from anodemap.eels.zlp import (
    FWHM_PER_SIGMA,
    as_block,
    match_block,
    shift_linear,
    uniform_axis,
    zlp_fwhm,
)
from anodemap.status import Status

__all__ = ["RL_KERNEL_THRESHOLD", "fourier_log", "richardson_lucy", "richardson_lucy_range"]

_OK = int(Status.OK)
_INVALID = int(Status.INVALID_INPUT)
_NO_ZLP = int(Status.NO_ZERO_LOSS)


def _zero_index(energy: np.ndarray, n_e: int) -> float:
    """Fractional channel index of 0 eV on the uniform axis ``energy``."""
    offset, scale = uniform_axis(energy, n_e)
    n0 = -offset / scale
    if not -0.5 <= n0 <= n_e - 0.5:
        raise ValueError(
            f"0 eV is not on the energy axis [{offset:g}, {offset + scale * (n_e - 1):g}] eV; "
            "zero-loss deconvolution needs the zero-loss peak (aligned at 0 eV) in the spectra"
        )
    return n0


def _phase_ramp(n: int, shift_ch: float, dtype) -> np.ndarray:
    """Fourier factor that shifts a real signal of length n by ``shift_ch`` channels."""
    k = np.arange(n // 2 + 1)
    ramp = np.exp((-2j * np.pi * shift_ch / n) * k)
    return ramp.astype(np.complex64 if dtype == np.float32 else np.complex128)


# --------------------------------------------------------------------------------------
# Richardson–Lucy
# --------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _multiply_rows(spec, kernel):
    """``spec[p] *= kernel[p]`` in place (``kernel`` with one row is shared)."""
    n_pix, n_f = spec.shape
    shared = kernel.shape[0] == 1
    for p in range(n_pix):
        q = 0 if shared else p
        for k in range(n_f):
            spec[p, k] *= kernel[q, k]


@numba.njit(cache=True, nogil=True)
def _rl_ratio(y, conv, floor, out):
    """``out = y / max(conv, floor)`` row by row."""
    n_pix, n_e = y.shape
    for p in range(n_pix):
        f = floor[p]
        for i in range(n_e):
            c = conv[p, i]
            out[p, i] = y[p, i] / (c if c > f else f)


@numba.njit(cache=True, nogil=True)
def _rl_update(x, corr):
    """``x *= max(corr, 0)``: the multiplicative update, kept non-negative."""
    n_pix, n_e = x.shape
    for p in range(n_pix):
        for i in range(n_e):
            c = corr[p, i]
            x[p, i] *= c if c > 0.0 else 0.0


def richardson_lucy(
    spectra: np.ndarray,
    psf: np.ndarray,
    *,
    energy: np.ndarray | None = None,
    iterations: int = 15,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Richardson–Lucy deconvolution of each spectrum by its (or a shared) zero-loss peak.

    The multiplicative update (Richardson 1972, Lucy 1974; for EELS Gloter et al.,
    Ultramicroscopy 96 (2003) 385) is

    ``x <- x * K^T (y / (K x))``, starting from ``x = y``,

    with ``K`` the convolution by the point-spread function ``psf`` normalised to unit
    area and centred at 0 eV, ``K^T`` the correlation by it. Both are computed for the
    whole block with real FFTs zero-padded by the extent of the kernel, so they are
    linear convolutions with zero outside the measured axis (the same as exspy's
    ``np.convolve``-based implementation), and the result stays on the input energy axis.
    The update keeps the estimate non-negative and conserves the total counts exactly
    (``sum(x) == sum(y)`` at every iteration, up to rounding).

    Parameters
    ----------
    spectra : ndarray, shape (..., E)
        Aligned low-loss spectra, zero-loss peak at 0 eV, energy last. Negative values
        (read noise after dark subtraction) are set to 0 first: counts are conserved
        relative to these clipped spectra.
    psf : ndarray, shape (E,) or (..., E)
        Point-spread function on the same axis, one per spectrum or shared: the
        zero-loss peak (e.g. from :func:`anodemap.eels.zlp.extract_zlp`), normalised
        here to unit area. Negative values are set to 0.
    energy : ndarray, shape (E,), optional
        The uniform energy axis (eV). The kernel is centred at 0 eV on this axis; if 0 eV
        falls between channels the psf is first shifted by the fraction of a channel
        (linear interpolation). Without ``energy`` the kernel is centred on the maximum
        channel of the block's summed psf (as exspy does), which equals 0 eV for aligned
        spectra whose 0 eV falls on a channel. Pass it.
    iterations : int
        Number of iterations. More iterations sharpen more and amplify noise more.
    workers : int, optional
        Threads for ``scipy.fft`` (default 1: the caller parallelises over blocks).

    Returns
    -------
    deconvolved : ndarray, shape (..., E)
        Same dtype as ``spectra`` (float32 or float64; computed in that precision, so
        float32 input has a dynamic range of about 1e-6 of the maximum).
    status : ndarray of uint8, shape (...)
        ``Status.INVALID_INPUT`` for NaN/inf in the spectrum or its psf,
        ``Status.NO_ZERO_LOSS`` for a psf with no positive counts; those rows are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> energy = np.arange(-5.0, 30.0, 0.05)
    >>> psf = np.exp(-0.5 * (energy / 0.4) ** 2)
    >>> spectra = np.ones((2, 3, energy.size))
    >>> out, status = richardson_lucy(spectra, psf, energy=energy, iterations=5)
    >>> out.shape, status.shape
    ((2, 3, 700), (2, 3))
    """
    block, nav = as_block(spectra)
    n_pix, n_e = block.shape
    dtype = block.dtype
    kern = match_block(psf, n_pix, n_e, "psf").astype(dtype, copy=True)
    iterations = int(iterations)
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    workers = 1 if workers is None else int(workers)

    status = np.full(n_pix, _OK, dtype=np.uint8)
    bad_y = ~np.isfinite(block).all(axis=-1)
    bad_k = ~np.isfinite(kern).all(axis=-1)
    kern[~np.isfinite(kern)] = 0.0
    np.maximum(kern, 0.0, out=kern)
    no_k = ~(kern.max(axis=-1) > 0)

    if energy is not None:
        n0 = _zero_index(energy, n_e)
        i0 = int(round(n0))
        if abs(i0 - n0) > 1e-6:
            kern = shift_linear(kern, np.full(kern.shape[0], i0 - n0))
    else:
        i0 = int(np.argmax(kern.sum(axis=0)))

    # kernel extent around the centre channel -> padding for a linear convolution;
    # values below 1e-12 of a row's maximum are dropped (exact zeros for the FFT)
    kern[kern < 1e-12 * kern.max(axis=-1, keepdims=True)] = 0.0
    area = kern.sum(axis=-1, dtype=np.float64)
    support = np.flatnonzero((kern > 0).any(axis=0))
    if support.size:
        left = max(i0 - int(support[0]), 0)
        right = max(int(support[-1]) - i0, 0)
    else:
        left = right = 0
    n = scipy.fft.next_fast_len(n_e + max(left, right, 1), real=True)
    lag = np.zeros((kern.shape[0], n), dtype=dtype)
    lag[:, : right + 1] = kern[:, i0 : i0 + right + 1]
    if left:
        lag[:, n - left :] = kern[:, i0 - left : i0]
    with np.errstate(divide="ignore", invalid="ignore"):
        lag /= np.where(area > 0, area, 1.0).astype(dtype)[:, None]
    lag[no_k, 0] = 1.0  # harmless identity kernel for failed rows (they become NaN)
    kf = scipy.fft.rfft(lag, axis=-1, workers=workers)
    kc = np.conj(kf)

    y = np.where(np.isfinite(block), block, 0.0).astype(dtype, copy=False)
    np.maximum(y, 0.0, out=y)
    # zero-padded work buffers: the padding stays 0, so the FFTs need no copies
    xp = np.zeros((n_pix, n), dtype=dtype)
    rp = np.zeros((n_pix, n), dtype=dtype)
    x = xp[:, :n_e]
    ratio = rp[:, :n_e]
    x[...] = y
    # guard against division by (numerically) zero: conv >= floor
    floor = (8 * np.finfo(dtype).eps) * y.max(axis=-1) + np.finfo(dtype).tiny
    fft_kw = {"axis": -1, "workers": workers}
    for _ in range(iterations):
        spec = scipy.fft.rfft(xp, **fft_kw)
        _multiply_rows(spec, kf)
        conv = scipy.fft.irfft(spec, n=n, overwrite_x=True, **fft_kw)[:, :n_e]
        _rl_ratio(y, conv, floor, ratio)
        spec = scipy.fft.rfft(rp, **fft_kw)
        _multiply_rows(spec, kc)
        corr = scipy.fft.irfft(spec, n=n, overwrite_x=True, **fft_kw)[:, :n_e]
        _rl_update(x, corr)
    x = np.ascontiguousarray(x)

    status[np.broadcast_to(no_k, (n_pix,))] = _NO_ZLP
    status[bad_y | np.broadcast_to(bad_k, (n_pix,))] = _INVALID
    x[status != _OK] = np.nan
    return x.reshape(*nav, n_e), status.reshape(nav)


# --------------------------------------------------------------------------------------
# Richardson–Lucy on a sub-range of the energy axis (boundary-aware)
# --------------------------------------------------------------------------------------

# Fraction of a zero-loss peak's maximum below which its tails are left out of the
# kernel of richardson_lucy_range (model choice: a tail at the level of the noise is
# noise). The kernel is the contiguous run of channels around 0 eV above this level.
# Measured on the simulated electrode (256 x 256, ~7500 counts in the zero-loss maximum
# channel): the kernel keeps +-1.7 eV (median; 1.35-2.2 eV), where the channels hold ~10
# counts (Poisson noise ~3), and leaves out 0.2 % of the zero-loss area; the 42 eV
# window map then differs from that of whole-axis Richardson-Lucy with the whole kernel
# by 1.4e-4 (median) and 9e-4 (99th percentile) of its value, the Li-K map by 3e-4 and
# 2e-3 of the counts in its window, a small fraction of their counting noise; the
# whole +-5 eV kernel costs 2.5 times as much.
RL_KERNEL_THRESHOLD = 1e-3

# error_model="numpy" (no Python exception on division by zero) and contraction into
# fused multiply-adds let LLVM vectorise the loops below.
_jit_rl = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})


@_jit_rl
def _correlate_valid(src, ker, nt, n, out):
    """``out[i] = sum_{t < nt} ker[t] * src[i + t]`` for ``i < n`` (no padding).

    Eight taps per pass over ``out`` so that each output is loaded and stored once per
    eight multiply-adds (the loop over ``i`` is vectorised).
    """
    for i in range(n):
        out[i] = 0.0
    t = 0
    while t + 8 <= nt:
        k0, k1, k2, k3 = ker[t], ker[t + 1], ker[t + 2], ker[t + 3]
        k4, k5, k6, k7 = ker[t + 4], ker[t + 5], ker[t + 6], ker[t + 7]
        s0, s1, s2, s3 = (
            src[t : t + n],
            src[t + 1 : t + 1 + n],
            src[t + 2 : t + 2 + n],
            src[t + 3 : t + 3 + n],
        )
        s4, s5, s6, s7 = (
            src[t + 4 : t + 4 + n],
            src[t + 5 : t + 5 + n],
            src[t + 6 : t + 6 + n],
            src[t + 7 : t + 7 + n],
        )
        for i in range(n):
            out[i] += (k0 * s0[i] + k1 * s1[i] + k2 * s2[i] + k3 * s3[i]) + (
                k4 * s4[i] + k5 * s5[i] + k6 * s6[i] + k7 * s7[i]
            )
        t += 8
    while t < nt:
        k0 = ker[t]
        s0 = src[t : t + n]
        for i in range(n):
            out[i] += k0 * s0[i]
        t += 1


@_jit_rl
def _rl_range_kernel(y, psf, i0, c0, nd, threshold, iterations, eps, status, out, work):
    """Boundary-aware Richardson–Lucy of rows ``y[p]`` observed on ``[c0, c0 + nd)``.

    ``psf[p]`` is centred on channel ``i0``; its kernel is the contiguous run of channels
    around ``i0`` above ``threshold`` times its maximum, normalised to unit area. The
    object is estimated on ``[c0 - r, c0 + nd + l)`` (``l``, ``r``: the kernel's extent
    below and above 0 eV); ``out[p]`` receives it on the observed channels. Rows with
    NaN/inf in ``y[p]`` or their psf get ``status[p] = INVALID_INPUT``, rows whose psf
    has no positive value ``NO_ZERO_LOSS``; both are skipped. ``psf`` may hold one
    shared row. ``work`` is an (8, L) scratch buffer of the compute dtype,
    ``L >= nd + 2 * n_e``; ``eps`` its machine epsilon.
    """
    n_pix, n_e = y.shape
    kfwd = work[0]  # kfwd[s] = k(s - l), s in [0, l + r]
    kflip = work[1]  # kflip[t] = k(r - t)
    x = work[2]  # object on [c0 - r, c0 + nd + l)
    conv = work[3]  # K x on the observed channels
    rpad = work[4]  # y / K x on the observed channels, at offset l + r, zero around
    corr = work[5]  # K^T (y / K x)
    alpha_inv = work[6]  # 1 / K^T m
    yobs = work[7]  # the observed channels, negative values set to 0
    csum = np.empty(n_e + 1)
    shared = psf.shape[0] == 1
    for p in range(n_pix):
        q = 0 if shared else p
        finite = True
        peak = 0.0
        for i in range(n_e):
            v = psf[q, i]
            finite &= math.isfinite(v) and math.isfinite(y[p, i])
            if v > peak:
                peak = v
        if not finite or not peak > 0.0:
            status[p] = _INVALID if not finite else _NO_ZLP
            for i in range(nd):
                out[p, i] = np.nan
            continue
        # kernel: contiguous support above the threshold around 0 eV
        level = threshold * peak
        lft = 0
        while i0 - lft - 1 >= 0 and psf[q, i0 - lft - 1] > level:
            lft += 1
        rgt = 0
        while i0 + rgt + 1 < n_e and psf[q, i0 + rgt + 1] > level:
            rgt += 1
        nt = lft + rgt + 1
        nx = nd + lft + rgt
        area = 0.0
        for s in range(nt):
            v = psf[q, i0 - lft + s]
            area += v if v > 0.0 else 0.0
        if not area > 0.0:
            area = 1.0
        csum[0] = 0.0
        for s in range(nt):
            v = psf[q, i0 - lft + s]
            v = (v if v > 0.0 else 0.0) / area
            kfwd[s] = v
            kflip[nt - 1 - s] = v
            csum[s + 1] = csum[s] + kfwd[s]  # the taps as stored (compute dtype)
        # alpha = K^T m (m: the observed channels), exactly, from the cumulative sums
        for m in range(nx):
            hi = min(nt - 1, nt - 2 + nd - m)
            lo = max(0, nt - 1 - m)
            a = csum[hi + 1] - csum[lo] if hi >= lo else 0.0
            alpha_inv[m] = 1.0 / a if a > 0.0 else 0.0
        # start from the data (the nearest channel beyond the ends of the axis)
        for m in range(nx):
            c = min(max(c0 - rgt + m, 0), n_e - 1)
            v = y[p, c]
            x[m] = v if v > 0.0 else 0.0
        vmax = 0.0
        for i in range(nd):
            v = y[p, c0 + i]
            v = v if v > 0.0 else 0.0
            yobs[i] = v
            if v > vmax:
                vmax = v
        floor = 8.0 * eps * vmax + 1e-30
        for i in range(nx + nt):
            rpad[i] = 0.0
        for _ in range(iterations):
            _correlate_valid(x, kflip, nt, nd, conv)
            for i in range(nd):
                c = conv[i]
                rpad[nt - 1 + i] = yobs[i] / (c if c > floor else floor)
            _correlate_valid(rpad, kfwd, nt, nx, corr)
            for m in range(nx):
                c = corr[m] * alpha_inv[m]
                x[m] *= c if c > 0.0 else 0.0
        for i in range(nd):
            out[p, i] = x[rgt + i]


def richardson_lucy_range(
    spectra: np.ndarray,
    psf: np.ndarray,
    energy: np.ndarray,
    energy_range: tuple[float, float],
    *,
    iterations: int = 15,
    kernel_threshold: float = RL_KERNEL_THRESHOLD,
    dtype: type | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Richardson–Lucy deconvolution of the channels inside an energy range only.

    The boundary-aware update of Bertero & Boccacci (Astron. Astrophys. 437 (2005) 369):
    the data ``y`` are used on the channels of ``energy_range`` only (mask ``m``), the
    estimate ``x`` covers that range extended by the kernel's extent on each side, and

    ``x <- x / (K^T m) * K^T (m y / (K x))``, starting from the data,

    with ``K`` the convolution by the zero-loss kernel (unit area, centred at 0 eV).
    Nothing is assumed about the spectrum outside the range (no zeros, no periodicity):
    the channels near the ends of the range are less well determined than the middle,
    so give the range a margin of a few kernel widths around the energies you need.
    The convolutions are direct (numba, per spectrum), so the cost grows with the
    kernel's extent; tails of the kernel below ``kernel_threshold`` times its maximum
    are left out.

    Parameters
    ----------
    spectra : ndarray, shape (..., E)
        Aligned low-loss spectra, zero-loss peak at 0 eV, energy last. Negative values
        are treated as 0.
    psf : ndarray, shape (..., E) or (E,)
        Zero-loss peak of each spectrum (or one shared), on the same axis; normalised here.
    energy : ndarray, shape (E,)
        The uniform energy axis in eV, containing 0 eV. If 0 eV falls between channels
        the psf is first shifted by the fraction of a channel (linear interpolation).
    energy_range : (float, float)
        The channels whose centres lie in ``[lo, hi]`` eV are observed and returned.
    iterations : int
        Number of iterations.
    kernel_threshold : float
        The kernel is the contiguous run of channels around 0 eV whose psf value exceeds
        this fraction of the psf's maximum (0: every positive channel).
    dtype : {numpy.float32, numpy.float64}, optional
        Precision of the computation and of the result (default: float32 for float32
        spectra, float64 otherwise). float32 has a relative precision of about 1e-7,
        far finer than counting noise, and is faster.

    Returns
    -------
    deconvolved : ndarray, shape (..., E_range)
        The estimate on the channels of the range.
    energy_range_axis : ndarray, shape (E_range,)
        Their energies, ``energy[(energy >= lo) & (energy <= hi)]``.
    status : ndarray of uint8, shape (...)
        ``Status.INVALID_INPUT`` for NaN/inf in the spectrum or its psf,
        ``Status.NO_ZERO_LOSS`` for a psf with no positive counts; those rows are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> energy = np.arange(-5.0, 60.0, 0.05)
    >>> psf = np.exp(-0.5 * (energy / 0.4) ** 2)
    >>> line = np.exp(-0.5 * ((energy - 42.0) / 0.3) ** 2)
    >>> blurred = 0.6 * np.exp(-0.5 * ((energy - 42.0) / 0.5) ** 2)  # line * psf
    >>> out, e, status = richardson_lucy_range(blurred, psf, energy, (38.0, 46.0), iterations=50)
    >>> bool(out.max() > 1.5 * blurred.max()), round(float(e[np.argmax(out)]), 2), int(status)
    (True, 42.0, 0)
    """
    block, nav = as_block(spectra)
    n_pix, n_e = block.shape
    if dtype is None:
        dtype = np.float32 if block.dtype == np.float32 else np.float64
    dtype = np.dtype(dtype).type
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    kern = match_block(psf, n_pix, n_e, "psf")
    energy = np.asarray(energy, dtype=np.float64)
    iterations = int(iterations)
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if not kernel_threshold >= 0:
        raise ValueError(f"kernel_threshold must be >= 0, got {kernel_threshold}")
    lo, hi = (float(v) for v in energy_range)
    inside = np.flatnonzero((energy >= lo) & (energy <= hi))
    if inside.size == 0:
        raise ValueError(
            f"energy_range [{lo:g}, {hi:g}] eV holds no channel of the energy axis "
            f"[{energy[0]:g}, {energy[-1]:g}] eV"
        )
    c0, nd = int(inside[0]), int(inside.size)
    n0 = _zero_index(energy, n_e)
    i0 = int(round(n0))

    if abs(i0 - n0) > 1e-6:
        kern = shift_linear(kern, np.full(kern.shape[0], i0 - n0))
    status = np.full(n_pix, _OK, dtype=np.uint8)
    out = np.empty((n_pix, nd), dtype=dtype)  # the kernel fills every row (NaN if skipped)
    work = np.zeros((8, nd + 2 * n_e + 8), dtype=dtype)
    _rl_range_kernel(
        block,
        kern,
        i0,
        c0,
        nd,
        float(kernel_threshold),
        iterations,
        float(np.finfo(dtype).eps),
        status,
        out,
        work,
    )
    return out.reshape(*nav, nd), energy[c0 : c0 + nd].copy(), status.reshape(nav)


# --------------------------------------------------------------------------------------
# Fourier-log
# --------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _flog_spectrum(jf, zf, i0, sigma_ch, ramp, n, mode, unwrap, out):
    """Frequency-domain Fourier-log step for every row: ``out = R * log(J / Z)``.

    ``mode`` 0: ``R = Z``; 1: ``R = I0 G ramp`` (Gaussian of ``sigma_ch`` channels);
    2: ``R = I0 ramp``. Non-finite logarithms (Z = 0 or J = 0) contribute 0.
    """
    n_pix, n_f = jf.shape
    shared = zf.shape[0] == 1
    c = -2.0 * math.pi * math.pi / (n * n)
    for p in range(n_pix):
        zrow = zf[0] if shared else zf[p]
        prev_raw = 0.0
        turns = 0.0
        zz0 = 1.0
        for k in range(n_f):
            z = zrow[k]
            if mode == 0:
                r = z
            elif mode == 1:
                g = c * (sigma_ch[p] * k) ** 2
                if g < -700.0:
                    # the Gaussian has vanished: nothing more to add (unwrap irrelevant)
                    for kk in range(k, n_f):
                        out[p, kk] = 0.0
                    break
                r = i0[p] * math.exp(g) * ramp[k]
            else:
                r = i0[p] * ramp[k]
            # log(J/Z) = log|J|/|Z| + i arg(J conj(Z)), without a complex division
            j = jf[p, k]
            zz = z.real * z.real + z.imag * z.imag
            jj = j.real * j.real + j.imag * j.imag
            if not (zz > 0.0 and jj > 0.0 and math.isfinite(jj / zz)):
                out[p, k] = 0.0
                continue
            lg = 0.5 * math.log(jj / zz)
            ph = math.atan2(j.imag * z.real - j.real * z.imag, j.real * z.real + j.imag * z.imag)
            if unwrap:
                # as numpy.unwrap (jumps larger than pi are taken modulo 2 pi), but only
                # while the zero-loss carries signal (|Z| > 1e-3 |Z(0)|); beyond, the phase
                # of J/Z is noise and the last count of turns is kept
                if k == 0:
                    zz0 = zz
                if zz > 1e-6 * zz0:
                    d = ph - prev_raw
                    turns -= 2.0 * math.pi * round(d / (2.0 * math.pi))
                    prev_raw = ph
                ph += turns
            out[p, k] = r * complex(lg, ph)


def _taper_window(n_e: int, channels: int, side: str, dtype) -> np.ndarray:
    w = np.ones(n_e, dtype=dtype)
    if channels <= 0:
        return w
    han = np.hanning(2 * channels).astype(dtype)
    if side in ("high", "both"):
        w[n_e - channels :] *= han[channels:]
    if side in ("low", "both"):
        w[:channels] *= han[:channels]
    return w


def fourier_log(
    spectra: np.ndarray,
    zlp: np.ndarray,
    energy: np.ndarray,
    *,
    reconvolve: Literal["zlp", "gaussian"] | None = "zlp",
    fwhm: float | np.ndarray | None = None,
    taper: int | None = None,
    taper_side: Literal["high", "both", "none"] = "high",
    pad: int | None = None,
    unwrap: bool = False,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fourier-log deconvolution: the single-scattering distribution S(E) of each spectrum.

    With Poisson statistics of plural scattering the spectrum is ``J = Z * exp(S/I0)``
    in Fourier space (Egerton, *Electron Energy-Loss Spectroscopy in the Electron
    Microscope*, 3rd ed., Springer 2011, sec. 4.2), so ``S = I0 ln(J/Z)``, where ``Z``
    is the Fourier transform of the zero-loss peak and ``I0`` its area. To limit the
    amplification of noise at high frequency the result is reconvolved (same section):
    ``Z ln(J/Z)`` (``reconvolve="zlp"``, the single-scattering distribution at the
    resolution of the measurement, as exspy does), ``G ln(J/Z)`` with ``G`` a Gaussian
    of area ``I0`` centred at 0 eV (``"gaussian"``), or ``I0 ln(J/Z)`` (None: no
    reconvolution, noisy). The zero-loss peak is removed; the area of the result is
    ``I0 ln(I_t/I0)`` = ``I0 t/λ`` (``I_t`` of the tapered spectrum).

    Before the transforms, the last ``taper`` channels of each spectrum are multiplied by
    a half Hann window (``taper_side="high"``; ``"both"`` also tapers the first channels,
    as exspy does), so that the spectrum falls smoothly to zero and the step at the end
    of the axis does not ring; those channels of the result are not meaningful. Spectra
    and zero-loss are zero-padded to ``pad`` channels (default the next fast length
    >= ``2E - 1``) to limit wrap-around.

    Parameters
    ----------
    spectra : ndarray, shape (..., E)
        Aligned low-loss spectra (zero-loss peak at 0 eV), energy last.
    zlp : ndarray, shape (..., E) or (E,)
        Their zero-loss peaks on the same axis (e.g. from
        :func:`anodemap.eels.zlp.extract_zlp`), per spectrum or shared.
    energy : ndarray, shape (E,)
        Uniform energy axis in eV, containing 0 eV.
    reconvolve : {"zlp", "gaussian", None}
        Reconvolution function (see above).
    fwhm : float or ndarray of shape (...), optional
        FWHM (eV) of the Gaussian for ``reconvolve="gaussian"``; default the FWHM of each
        zero-loss peak (so the resolution of the measurement is kept).
    taper : int, optional
        Number of tapered channels; default ``max(20, round(0.02 E))`` (as exspy).
    taper_side : {"high", "both", "none"}
        Which end(s) of the spectra to taper.
    pad : int, optional
        FFT length (>= E).
    unwrap : bool
        Unwrap the phase of ``J/Z`` along frequency before taking the logarithm. The
        principal logarithm is exact only for t/λ < π; unwrapping extends this for
        thicker, well-sampled spectra (noise can make unwrapping fail).
    workers : int, optional
        Threads for ``scipy.fft`` (default 1: the caller parallelises over blocks).

    Returns
    -------
    ssd : ndarray, shape (..., E)
        Single-scattering distribution on the input energy axis, same dtype as
        ``spectra``.
    status : ndarray of uint8, shape (...)
        ``Status.INVALID_INPUT`` for NaN/inf in the spectrum or zero-loss,
        ``Status.NO_ZERO_LOSS`` for a zero-loss with no positive area (or no measurable
        FWHM when the Gaussian width is taken from it); those rows are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> energy = np.arange(-5.0, 95.0, 0.1)
    >>> zlp = np.exp(-0.5 * (energy / 0.4) ** 2)
    >>> spectra = zlp + 0.01 * zlp.sum() * np.exp(-0.5 * ((energy - 16.7) / 2.0) ** 2)
    >>> ssd, status = fourier_log(spectra, zlp, energy)
    >>> round(float(energy[np.argmax(ssd)]), 1), int(status)
    (16.7, 0)
    """
    block, nav = as_block(spectra)
    n_pix, n_e = block.shape
    dtype = block.dtype
    _, scale = uniform_axis(energy, n_e)
    n0 = _zero_index(energy, n_e)
    z = match_block(zlp, n_pix, n_e, "zlp").astype(dtype, copy=False)
    workers = 1 if workers is None else int(workers)
    if reconvolve not in ("zlp", "gaussian", None):
        raise ValueError(f"reconvolve must be 'zlp', 'gaussian' or None, got {reconvolve!r}")
    if taper_side not in ("high", "both", "none"):
        raise ValueError(f"taper_side must be 'high', 'both' or 'none', got {taper_side!r}")

    status = np.full(n_pix, _OK, dtype=np.uint8)
    bad = ~np.isfinite(block).all(axis=-1) | np.broadcast_to(~np.isfinite(z).all(axis=-1), (n_pix,))
    i0 = np.broadcast_to(z.sum(axis=-1, dtype=np.float64), (n_pix,))
    no_z = ~(i0 > 0)

    n = scipy.fft.next_fast_len(2 * n_e - 1, real=True) if pad is None else int(pad)
    if n < n_e:
        raise ValueError(f"pad ({n}) must be at least the number of channels ({n_e})")
    channels = max(20, int(round(0.02 * n_e))) if taper is None else int(taper)
    channels = min(channels, n_e)

    # zero-padded copies (the FFTs then need no padding copies of their own); rows with
    # non-finite values are computed as zeros and returned as NaN
    window = _taper_window(n_e, channels if taper_side != "none" else 0, taper_side, dtype)
    yp = np.zeros((n_pix, n), dtype=dtype)
    np.multiply(block, window, out=yp[:, :n_e])
    yp[~np.isfinite(block).all(axis=-1)] = 0.0
    zp = np.zeros((z.shape[0], n), dtype=dtype)
    zp[:, :n_e] = z
    zp[~np.isfinite(z).all(axis=-1)] = 0.0
    zc = zp[:, :n_e]

    jf = scipy.fft.rfft(yp, axis=-1, workers=workers)
    del yp
    zf = scipy.fft.rfft(zp, axis=-1, workers=workers)
    ramp = _phase_ramp(n, n0, np.float64)
    sigma_ch = np.zeros(n_pix)
    if reconvolve == "gaussian":
        if fwhm is None:
            width, wstatus = zlp_fwhm(zc, energy, search=None, max_fwhm=None)
            width = np.broadcast_to(np.asarray(width, dtype=np.float64), (z.shape[0],))
            no_z = no_z | np.broadcast_to(np.asarray(wstatus) != _OK, (n_pix,))
            width = np.broadcast_to(np.where(np.isfinite(width), width, 0.0), (n_pix,))
        else:
            width = np.broadcast_to(np.asarray(fwhm, dtype=np.float64), nav).reshape(n_pix)
        sigma_ch = np.ascontiguousarray(width / (FWHM_PER_SIGMA * scale))
    mode = {"zlp": 0, "gaussian": 1, None: 2}[reconvolve]
    logr = np.empty_like(jf)
    _flog_spectrum(jf, zf, np.ascontiguousarray(i0), sigma_ch, ramp, n, mode, bool(unwrap), logr)
    del jf
    ssd = scipy.fft.irfft(logr, n=n, axis=-1, workers=workers, overwrite_x=True)[:, :n_e]
    ssd = np.ascontiguousarray(ssd, dtype=dtype)

    status[no_z] = _NO_ZLP
    status[bad] = _INVALID
    ssd[status != _OK] = np.nan
    return ssd.reshape(*nav, n_e), status.reshape(nav)


# --------------------------------------------------------------------------------------
# forward model (for tests and simulations)
# --------------------------------------------------------------------------------------


def _plural_scattering(
    zlp: np.ndarray,
    ssd: np.ndarray,
    energy: np.ndarray,
    t_over_lambda: float | np.ndarray,
    *,
    pad_factor: int = 4,
) -> np.ndarray:
    """Low-loss spectra from a beam energy distribution and a single-scattering shape.

    Poisson plural scattering: ``FT(J) = FT(Z) exp(t/λ (FT(S1) - 1))``, with ``S1`` the
    single-scattering distribution normalised to unit area (its values at energies
    <= 0 eV are ignored; 0 eV may fall between channels) and ``Z`` the energy
    distribution of the incident beam on the axis ``energy`` (e.g. a vacuum zero-loss
    peak). All of ``Z``'s counts are kept: the zero-loss peak of the result is
    ``Z exp(-t/λ)`` and its total is ``sum(Z)``, less the plural scattering that lands
    beyond the end of the axis (lost, as in a measurement). Zero-padded to
    ``pad_factor * E`` channels so that nothing wraps round.

    Parameters
    ----------
    zlp : ndarray, shape (..., E) or (E,)
        Incident beam energy distribution (counts).
    ssd : ndarray, shape (..., E) or (E,)
        Single-scattering shape (any area).
    energy : ndarray, shape (E,)
        Uniform energy axis in eV containing 0 eV.
    t_over_lambda : float or ndarray broadcastable to the navigation shape

    Returns
    -------
    ndarray, shape (..., E), float64

    Examples
    --------
    >>> import numpy as np
    >>> energy = np.arange(-5.0, 200.0, 0.1)
    >>> beam = np.exp(-0.5 * (energy / 0.4) ** 2)
    >>> loss = np.exp(-0.5 * ((energy - 16.7) / 2.0) ** 2)
    >>> spectrum = _plural_scattering(beam, loss, energy, 1.0)
    >>> round(float(np.log(spectrum.sum() / (beam.sum() * np.exp(-1.0)))), 6)
    1.0
    """
    e = np.asarray(energy, dtype=np.float64)
    n_e = e.size
    n0 = _zero_index(e, n_e)
    z = np.asarray(zlp, dtype=np.float64)
    s1 = np.where(e > 0, np.asarray(ssd, dtype=np.float64), 0.0)
    s1 = s1 / s1.sum(axis=-1, keepdims=True)
    t = np.asarray(t_over_lambda, dtype=np.float64)
    nav = np.broadcast_shapes(z.shape[:-1], s1.shape[:-1], t.shape)
    n = scipy.fft.next_fast_len(pad_factor * n_e, real=True)
    zf = scipy.fft.rfft(z, n=n, axis=-1)
    # S1 in "lag" form: 0 eV at index 0 (shift left by n0 channels)
    sf = scipy.fft.rfft(s1, n=n, axis=-1) * _phase_ramp(n, -n0, np.float64)
    jf = zf * np.exp(t[..., None] * (sf - 1.0))
    out = scipy.fft.irfft(jf, n=n, axis=-1)[..., :n_e]
    return np.broadcast_to(out, (*nav, n_e)).copy()
