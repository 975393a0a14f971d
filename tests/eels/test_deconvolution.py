"""Tests of the deconvolution kernels (anodemap.eels.deconvolution): truth and exspy."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import scipy.fft

from anodemap.eels.deconvolution import (
    _plural_scattering,
    fourier_log,
    richardson_lucy,
    richardson_lucy_range,
)
from anodemap.eels.zlp import align_zlp, extract_zlp, locate_zlp, zlp_integral
from anodemap.status import Status
from helpers import exspy_file, hs_load

WIDE = -10.0 + 0.1 * np.arange(2000)  # -10 ... 189.9 eV
T_VALUES = np.array([0.5, 1.0, 2.0])
PLASMON = (WIDE > 5) & (WIDE < 60)


def drude(energy: np.ndarray, ep: float = 16.7, width: float = 3.7) -> np.ndarray:
    """Drude loss function Im(-1/eps), zero at E <= 0."""
    e = np.clip(energy, 0.0, None)
    return np.where(energy > 0, e * width * ep**2 / ((e**2 - ep**2) ** 2 + (e * width) ** 2), 0.0)


def gaussian(energy, centre, sigma):
    return np.exp(-0.5 * ((np.asarray(energy) - centre) / sigma) ** 2)


def linear_convolve(signal, kernel, energy):
    """Linear convolution on the axis, kernel(s) centred at 0 eV (0 eV on a channel)."""
    n_e = energy.size
    i0 = int(round(-energy[0] / (energy[1] - energy[0])))
    n = scipy.fft.next_fast_len(4 * n_e)
    kernel = np.asarray(kernel, dtype=np.float64)
    lag = np.zeros((*kernel.shape[:-1], n))
    lag[..., : n_e - i0] = kernel[..., i0:]
    lag[..., n - i0 :] = kernel[..., :i0]
    out = scipy.fft.irfft(scipy.fft.rfft(signal, n, axis=-1) * scipy.fft.rfft(lag), n, axis=-1)
    return out[..., :n_e]


def peak_position(spectra, energy, mask, half_width=0):
    """Energy of the maximum inside ``mask``, refined by a least-squares parabola over
    ``half_width`` channels either side (3-point parabola for 0)."""
    idx = np.flatnonzero(mask)
    sub = spectra[..., idx]
    h = max(int(half_width), 1)
    k = np.clip(np.argmax(sub, axis=-1), h, idx.size - 1 - h)
    x = np.arange(-h, h + 1)
    window = np.take_along_axis(sub, k[..., None] + x, axis=-1)
    c2, c1, _ = np.polyfit(x, window.reshape(-1, x.size).T, 2)
    delta = (-c1 / (2 * c2)).reshape(k.shape)
    return energy[idx[k]] + delta * (energy[1] - energy[0])


def plural(t=T_VALUES, energy=WIDE, sigma=0.35, counts=1e6):
    beam = gaussian(energy, 0.0, sigma)
    beam *= counts / beam.sum()
    return _plural_scattering(beam, drude(energy), energy, t)


def exspy_linescan():
    data = ("tests", "signals", "data")
    ll = hs_load(exspy_file(*data, "EELS_LL_linescan_simulated_thickness_variation.hspy"))
    zl = hs_load(exspy_file(*data, "EELS_ZLP_linescan_simulated_thickness_variation.hspy"))
    return ll, zl


needs_exspy = pytest.mark.skipif(
    importlib.util.find_spec("exspy") is None or importlib.util.find_spec("hyperspy") is None,
    reason="exspy/HyperSpy not installed: comparisons with exspy skipped",
)


# --------------------------------------------------------------------------------------
# forward model
# --------------------------------------------------------------------------------------


def test_plural_scattering_model():
    spectra = plural()
    beam = gaussian(WIDE, 0.0, 0.35)
    beam *= 1e6 / beam.sum()
    # Poisson: the unscattered fraction is exp(-t); all electrons are kept (up to the
    # plural scattering beyond the end of the axis, < 1e-3 here)
    np.testing.assert_allclose(spectra.sum(-1), 1e6, rtol=1e-3)
    np.testing.assert_allclose(
        spectra[:, WIDE < -3], np.exp(-T_VALUES)[:, None] * beam[WIDE < -3], rtol=1e-6, atol=1e-9
    )
    # expansion: J = e^-t Z * (delta + t S1 + t^2/2 S1 * S1 + O(t^3))
    t = 1e-3
    small = plural(t=np.array([t]))[0]
    s1 = drude(WIDE) / drude(WIDE).sum()
    first = linear_convolve(s1, beam, WIDE)
    second = linear_convolve(linear_convolve(s1, s1, WIDE), beam, WIDE)
    expected = np.exp(-t) * (beam + t * first + 0.5 * t**2 * second)
    np.testing.assert_allclose(small, expected, rtol=0, atol=1e-6 * t * first.max())


# --------------------------------------------------------------------------------------
# Fourier-log
# --------------------------------------------------------------------------------------


def test_fourier_log_recovers_ssd():
    spectra = plural()
    zlp = extract_zlp(spectra, WIDE, method="mirror")
    i0 = zlp_integral(zlp)
    s1 = drude(WIDE) / drude(WIDE).sum()
    ssd, status = fourier_log(spectra, zlp, WIDE)
    assert np.all(status == Status.OK)
    # truth at the resolution of the data: I0 t/lambda (S1 convolved with the ZLP shape)
    truth = T_VALUES[:, None] * linear_convolve(s1, zlp, WIDE)
    resid = np.abs(ssd - truth)[:, PLASMON].max(-1) / truth.max(-1)
    assert np.all(resid < 1e-4)  # measured 1.4e-5
    np.testing.assert_allclose(ssd.sum(-1), i0 * T_VALUES, rtol=1e-3)  # measured 2e-4
    pos = peak_position(ssd, WIDE, PLASMON)
    np.testing.assert_allclose(pos, peak_position(truth, WIDE, PLASMON), atol=0.005)  # 1e-5
    # no zero-loss left: nothing at negative energy (measured 8e-7 of the maximum)
    assert np.abs(ssd[:, WIDE < -2]).max() < 1e-5 * ssd.max()

    # Gaussian reconvolution with the FWHM of this (Gaussian) ZLP: the same result
    ssd_g, status = fourier_log(spectra, zlp, WIDE, reconvolve="gaussian")
    assert np.all(status == Status.OK)
    assert np.all(np.abs(ssd_g - truth)[:, PLASMON].max(-1) / truth.max(-1) < 5e-4)  # 1e-4
    # a wider Gaussian: same area, broader peak
    ssd_w, _ = fourier_log(spectra, zlp, WIDE, reconvolve="gaussian", fwhm=2.0)
    np.testing.assert_allclose(ssd_w.sum(-1), ssd.sum(-1), rtol=1e-6)
    assert np.all(ssd_w.max(-1) < ssd.max(-1))


def test_fourier_log_noisy_peak_position(record_property):
    rng = np.random.default_rng(3)
    t = np.repeat([0.5, 1.5], 40)
    clean = plural(t=t)
    spectra = rng.poisson(np.clip(clean, 0, None)).astype(np.float64)
    pos, _, _ = locate_zlp(spectra, WIDE)
    aligned = align_zlp(spectra, WIDE, pos)
    zlp = extract_zlp(aligned, WIDE)
    ssd, status = fourier_log(aligned, zlp, WIDE, reconvolve="gaussian")
    assert np.all(status == Status.OK)
    s1 = drude(WIDE) / drude(WIDE).sum()
    truth = linear_convolve(s1, gaussian(WIDE, 0, 0.35), WIDE)
    # plasmon position as a fit would see it: parabola over +-1 eV around the maximum
    truth_peak = peak_position(truth, WIDE, PLASMON, half_width=10)
    err = peak_position(ssd, WIDE, PLASMON, half_width=10) - truth_peak
    record_property("flog_peak_err_eV", [err.mean(), err.std()])
    print(
        f"Fourier-log plasmon peak with 1e6 counts: error {err.mean():+.4f} +- {err.std():.4f} eV"
    )
    # measured: bias -0.002 eV, std 0.02 eV (t = 0.5 and 1.5, 1e6 counts per spectrum)
    assert abs(err.mean()) < 0.01
    assert np.max(np.abs(err)) < 0.08


def test_fourier_log_unwrap_for_thick_samples():
    energy = -10.0 + 0.2 * np.arange(3000)
    t = np.array([2.0, 4.0])
    spectra = plural(t=t, energy=energy, sigma=0.5)
    zlp = extract_zlp(spectra, energy)
    s1 = drude(energy) / drude(energy).sum()
    truth = t[:, None] * linear_convolve(s1, zlp, energy)
    region = (energy > 5) & (energy < 60)

    def resid(ssd):
        return np.abs(ssd - truth)[:, region].max(-1) / truth.max(-1)

    # the principal logarithm is exact only for t/lambda < pi (measured 1e-5 at t = 2,
    # 0.17 at t = 4); unwrapping the phase restores t = 4 (measured 1.4e-5)
    plain = resid(fourier_log(spectra, zlp, energy)[0])
    unwrapped = resid(fourier_log(spectra, zlp, energy, unwrap=True)[0])
    assert plain[0] < 1e-4 and plain[1] > 0.05
    assert np.all(unwrapped < 1e-4)


def test_fourier_log_statuses_shapes_dtypes():
    spectra = plural(t=np.full(6, 1.0))
    zlp = extract_zlp(spectra, WIDE)
    shared, status = fourier_log(spectra, zlp[0], WIDE)
    per_pixel, _ = fourier_log(spectra, zlp, WIDE)
    np.testing.assert_allclose(shared, per_pixel, rtol=1e-12, atol=1e-12 * per_pixel.max())
    cube, status = fourier_log(spectra.reshape(2, 3, -1), zlp.reshape(2, 3, -1), WIDE)
    assert cube.shape == (2, 3, WIDE.size) and status.shape == (2, 3)
    f32, status = fourier_log(spectra.astype(np.float32), zlp.astype(np.float32), WIDE)
    assert f32.dtype == np.float32 and np.all(status == Status.OK)
    # float32 FFTs: rounding ~1e-7 of the norm; largest where the ZLP is removed (0 eV),
    # measured 9e-6 of the ZLP maximum
    np.testing.assert_allclose(f32, per_pixel, atol=3e-5 * spectra.max())

    spectra[1, 50] = np.nan
    zlp[2] = 0.0
    ssd, status = fourier_log(spectra, zlp, WIDE)
    assert status.tolist()[:3] == [Status.OK, Status.INVALID_INPUT, Status.NO_ZERO_LOSS]
    assert np.isfinite(ssd[0]).all() and np.isnan(ssd[1:3]).all() and np.isfinite(ssd[3:]).all()
    ssd, status = fourier_log(spectra, zlp, WIDE, reconvolve="gaussian")
    assert status.tolist()[:3] == [Status.OK, Status.INVALID_INPUT, Status.NO_ZERO_LOSS]
    with pytest.raises(ValueError, match="0 eV"):
        fourier_log(spectra, zlp, WIDE + 20.0)
    with pytest.raises(ValueError, match="reconvolve"):
        fourier_log(spectra, zlp, WIDE, reconvolve="lorentzian")


@needs_exspy
def test_fourier_log_matches_exspy(exspy_lowloss_msa):
    ll, zl = exspy_linescan()
    energy = ll.axes_manager[-1].axis
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ll.fourier_log_deconvolution(zl).data
    # exspy: Hann taper on both ends (2 % of the channels, at least 20), FFT length
    # next_fast_len(2E - 1), Z ln(J/Z). Same algorithm: equal to rounding (2e-16).
    ours, status = fourier_log(ll.data, zl.data, energy, taper_side="both")
    assert np.all(status == Status.OK)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * np.abs(theirs).max())

    # exspy's measured spectrum, aligned, with its mirror zero-loss
    real = hs_load(exspy_lowloss_msa)
    energy = real.axes_manager[-1].axis
    pos, _, _ = locate_zlp(real.data, energy)
    aligned = align_zlp(real.data, energy, pos)
    zlp = extract_zlp(aligned, energy)
    s = real.deepcopy()
    s.data = aligned.astype(np.float64)
    z = s.deepcopy()
    z.data = zlp
    theirs = s.fourier_log_deconvolution(z).data
    ours, _ = fourier_log(aligned, zlp, energy, taper_side="both")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * np.abs(theirs).max())


# --------------------------------------------------------------------------------------
# Richardson–Lucy
# --------------------------------------------------------------------------------------


def sharp_spectrum(energy):
    lines = sum(a * gaussian(energy, c, 0.12) for a, c in ((1.0, 8.0), (0.6, 9.0), (2.0, 16.7)))
    return 1e4 * (lines + 0.05 * gaussian(energy, 30.0, 5.0))


@pytest.mark.parametrize("offset", [-5.0, -5.02])
def test_richardson_lucy_sharpens_without_shift(offset):
    energy = offset + 0.05 * np.arange(1200)
    truth = sharp_spectrum(energy)
    psf = gaussian(energy, 0.0, 0.3)
    # blur with the psf centred at 0 eV (analytically for Gaussians: sigma adds in
    # quadrature), so the blurred spectrum is exact even when 0 eV is between channels
    blurred = 1e4 * 0.12 / np.hypot(0.12, 0.3) * sum(
        a * gaussian(energy, c, np.hypot(0.12, 0.3))
        for a, c in ((1.0, 8.0), (0.6, 9.0), (2.0, 16.7))
    ) + 1e4 * 0.05 * 5.0 / np.hypot(5.0, 0.3) * gaussian(energy, 30.0, np.hypot(5.0, 0.3))
    restored, status = richardson_lucy(blurred, psf, energy=energy, iterations=50)
    assert status == Status.OK
    err_in = np.linalg.norm(blurred - truth)
    err_out = np.linalg.norm(restored - truth)
    assert err_out < 0.5 * err_in  # measured 0.20 (offset -5) and 0.19 (-5.02)
    assert restored.min() >= 0
    np.testing.assert_allclose(restored.sum(), blurred.sum(), rtol=1e-10)
    # the two lines 1 eV apart are resolved again, and nothing moves
    mid = (energy > 8.3) & (energy < 8.7)
    assert restored[mid].min() < 0.8 * min(
        restored[np.abs(energy - 8) < 0.2].max(), restored[np.abs(energy - 9) < 0.2].max()
    )

    # the isolated line does not move (measured 5e-4 eV; 0 eV between channels: 8e-4 eV);
    # the 8 eV line is pulled back towards its place (its neighbour's blur leaks into the
    # centroid window of the blurred spectrum)
    def centroid(y, centre):
        near = np.abs(energy - centre) < 0.5
        return (y[near] * energy[near]).sum() / y[near].sum()

    assert abs(centroid(restored, 16.7) - centroid(truth, 16.7)) < 0.002
    assert abs(centroid(restored, 8.0) - 8.0) < 0.5 * abs(centroid(blurred, 8.0) - 8.0)


def test_richardson_lucy_counts_and_noise():
    rng = np.random.default_rng(4)
    spectra = plural(t=np.full(50, 1.0))
    spectra = rng.poisson(np.clip(spectra, 0, None)).astype(np.float64) - 1.0  # dark offset
    pos, _, _ = locate_zlp(spectra, WIDE)
    aligned = align_zlp(spectra, WIDE, pos)
    zlp = extract_zlp(aligned, WIDE)
    out, status = richardson_lucy(aligned, zlp, energy=WIDE, iterations=15)
    assert np.all(status == Status.OK)
    assert out.min() >= 0
    # counts conserved relative to the clipped input (negative values set to 0)
    np.testing.assert_allclose(out.sum(-1), np.clip(aligned, 0, None).sum(-1), rtol=1e-9)
    # the zero-loss is sharpened towards 0 eV: more counts in the central channel
    centre = np.argmin(np.abs(WIDE))
    assert np.all(out[:, centre] > 1.5 * aligned[:, centre])


def test_richardson_lucy_statuses_shapes_dtypes():
    spectra = plural(t=np.full(6, 1.0))
    zlp = extract_zlp(spectra, WIDE)
    with_energy, status = richardson_lucy(spectra, zlp[0], energy=WIDE, iterations=5)
    without, _ = richardson_lucy(spectra, zlp[0], iterations=5)
    # 0 eV falls on a channel and is the maximum of the psf: the same kernel centre
    np.testing.assert_allclose(with_energy, without, rtol=1e-12, atol=1e-12 * without.max())
    cube, status = richardson_lucy(spectra.reshape(3, 2, -1), zlp.reshape(3, 2, -1), energy=WIDE)
    assert cube.shape == (3, 2, WIDE.size) and status.shape == (3, 2)
    f32, status = richardson_lucy(spectra.astype(np.float32), zlp[0], energy=WIDE, iterations=5)
    assert f32.dtype == np.float32 and np.all(status == Status.OK)
    np.testing.assert_allclose(f32, with_energy, atol=1e-4 * with_energy.max())
    same, _ = richardson_lucy(spectra, zlp[0], energy=WIDE, iterations=0)
    np.testing.assert_array_equal(same, np.clip(spectra, 0, None))  # negative values -> 0

    spectra[1, 50] = np.inf
    zlp[2] = 0.0
    zlp[3, 10] = np.nan
    out, status = richardson_lucy(spectra, zlp, energy=WIDE, iterations=5)
    assert status.tolist() == [
        Status.OK,
        Status.INVALID_INPUT,
        Status.NO_ZERO_LOSS,
        Status.INVALID_INPUT,
        Status.OK,
        Status.OK,
    ]
    assert np.isnan(out[1:4]).all() and np.isfinite(out[[0, 4, 5]]).all()
    with pytest.raises(ValueError, match="0 eV"):
        richardson_lucy(spectra, zlp, energy=WIDE + 50.0)
    with pytest.raises(ValueError, match="psf"):
        richardson_lucy(spectra, zlp[:4], energy=WIDE)


# --------------------------------------------------------------------------------------
# Richardson–Lucy on a sub-range (boundary-aware)
# --------------------------------------------------------------------------------------


def test_richardson_lucy_range_equals_whole_axis_inside():
    spectra = plural()
    zlp = extract_zlp(spectra, WIDE)
    whole, _ = richardson_lucy(spectra, zlp, energy=WIDE, iterations=15)
    part, energy, status = richardson_lucy_range(spectra, zlp, WIDE, (37.0, 65.0))
    assert np.all(status == Status.OK)
    sel = (WIDE >= 37.0) & (WIDE <= 65.0)
    np.testing.assert_array_equal(energy, WIDE[sel])
    # 3 eV inside the ends of the range the two agree (measured 8e-6 of the maximum,
    # from the kernel's tails below 1e-3 of its maximum that the range version omits)
    inner = (energy >= 40.0) & (energy <= 62.0)
    ref = whole[:, sel]
    err = np.abs(part - ref)[:, inner].max(-1) / ref[:, inner].max(-1)
    assert np.all(err < 5e-5)
    # ... and with the whole kernel, 1e-6 below the level of the largest omitted tap
    part, _, _ = richardson_lucy_range(spectra, zlp, WIDE, (37.0, 65.0), kernel_threshold=1e-9)
    err = np.abs(part - ref)[:, inner].max(-1) / ref[:, inner].max(-1)
    assert np.all(err < 2e-6)  # measured 5e-7


def test_richardson_lucy_range_assumes_nothing_beyond_the_range():
    spectra = plural()
    zlp = extract_zlp(spectra, WIDE)
    truth, _ = richardson_lucy(spectra, zlp, energy=WIDE, iterations=15)
    # an axis that ends at 60 eV, in the middle of the plural-scattering tail
    cut = WIDE <= 60.0
    zeros_beyond, _ = richardson_lucy(spectra[:, cut], zlp[:, cut], energy=WIDE[cut])
    ranged, energy, _ = richardson_lucy_range(spectra[:, cut], zlp[:, cut], WIDE[cut], (30.0, 60.0))
    ref = truth[:, (WIDE >= 30.0) & cut]
    zeros_beyond = zeros_beyond[:, WIDE[cut] >= 30.0]

    def error(result, lo, hi):
        near = (energy >= lo) & (energy <= hi)
        return np.abs(result - ref)[:, near].max(-1) / ref[:, near].max(-1)

    # zeros assumed beyond the axis pile the counts up at its end (measured 54-68 %);
    # the boundary-aware update stays close to the whole-axis result there (0.02-0.5 %)
    assert np.all(error(zeros_beyond, 55.0, 60.0) > 0.3)
    assert np.all(error(ranged, 55.0, 60.0) < 0.01)
    assert np.all(error(ranged, 40.0, 55.0) < 5e-5)  # measured 7e-6


@pytest.mark.parametrize("offset", [-5.0, -5.02])
def test_richardson_lucy_range_sharpens_without_shift(offset):
    energy = offset + 0.05 * np.arange(1200)
    psf = gaussian(energy, 0.0, 0.3)
    lines = ((1.0, 14.0), (0.6, 14.6), (2.0, 16.7))
    truth = 1e4 * sum(a * gaussian(energy, c, 0.12) for a, c in lines)
    width = np.hypot(0.12, 0.3)  # Gaussians blurred by the psf (0 eV exact on any grid)
    blurred = 1e4 * 0.12 / width * sum(a * gaussian(energy, c, width) for a, c in lines)
    whole, _ = richardson_lucy(blurred, psf, energy=energy, iterations=50)
    part, e, status = richardson_lucy_range(
        blurred, psf, energy, (10.0, 21.0), iterations=50, kernel_threshold=1e-12
    )
    assert status == Status.OK
    sel = (energy >= 10.0) & (energy <= 21.0)
    # nothing beyond the range to miss here: the whole-axis result (0 eV between
    # channels: the psf is shifted by the same fraction of a channel in both)
    np.testing.assert_allclose(part, whole[sel], rtol=0, atol=1e-10 * whole.max())  # 2e-15
    assert np.linalg.norm(part - truth[sel]) < 0.5 * np.linalg.norm(blurred - truth)  # 0.32
    # the two lines 0.6 eV apart are resolved again (a dip between them) ...
    dip = part[np.abs(e - 14.3) < 0.1].min() / part[np.abs(e - 14.6) < 0.1].max()
    dip_blurred = (
        blurred[np.abs(energy - 14.3) < 0.1].min() / blurred[np.abs(energy - 14.6) < 0.1].max()
    )
    assert dip < 0.97 < 1.1 < dip_blurred  # measured 0.93-0.95 and 1.15
    # ... and the isolated line does not move (measured 2e-5 and 1e-4 eV)
    near = np.abs(e - 16.7) < 0.5
    assert abs((part[near] * e[near]).sum() / part[near].sum() - 16.7) < 0.002


def test_richardson_lucy_range_statuses_shapes_dtypes():
    spectra = plural(t=np.full(6, 1.0))
    zlp = extract_zlp(spectra, WIDE)
    rng = (20.0, 40.0)
    shared, e, status = richardson_lucy_range(spectra, zlp[0], WIDE, rng, iterations=5)
    per_pixel, _, _ = richardson_lucy_range(spectra, zlp, WIDE, rng, iterations=5)
    np.testing.assert_allclose(shared, per_pixel, rtol=1e-12)
    assert shared.shape == (6, e.size) and e[0] >= 20.0 and e[-1] <= 40.0
    assert e.size == np.count_nonzero((WIDE >= 20.0) & (WIDE <= 40.0))
    cube, _, status = richardson_lucy_range(
        spectra.reshape(3, 2, -1), zlp.reshape(3, 2, -1), WIDE, rng, iterations=5
    )
    assert cube.shape == (3, 2, e.size) and status.shape == (3, 2)
    np.testing.assert_array_equal(cube.reshape(6, -1), per_pixel)
    f32, _, _ = richardson_lucy_range(spectra.astype(np.float32), zlp, WIDE, rng, iterations=5)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, per_pixel, rtol=1e-5)
    single, _, _ = richardson_lucy_range(spectra, zlp, WIDE, rng, iterations=5, dtype=np.float32)
    np.testing.assert_array_equal(single, f32)
    sel = (WIDE >= 20.0) & (WIDE <= 40.0)
    dark = spectra - 2.0
    same, _, _ = richardson_lucy_range(dark, zlp, WIDE, rng, iterations=0)
    np.testing.assert_array_equal(same, np.clip(dark[:, sel], 0, None))

    spectra[1, 50] = np.nan  # outside the range: still an invalid spectrum
    zlp[2] = 0.0
    zlp[3, 10] = np.inf
    out, _, status = richardson_lucy_range(spectra, zlp, WIDE, rng, iterations=5)
    assert status.tolist() == [
        Status.OK,
        Status.INVALID_INPUT,
        Status.NO_ZERO_LOSS,
        Status.INVALID_INPUT,
        Status.OK,
        Status.OK,
    ]
    assert np.isnan(out[1:4]).all() and np.isfinite(out[[0, 4, 5]]).all()
    np.testing.assert_array_equal(out[[0, 4, 5]], per_pixel[[0, 4, 5]])
    with pytest.raises(ValueError, match="0 eV"):
        richardson_lucy_range(spectra, zlp, WIDE + 50.0, (60.0, 80.0))
    with pytest.raises(ValueError, match="no channel"):
        richardson_lucy_range(spectra, zlp, WIDE, (300.0, 400.0))
    with pytest.raises(ValueError, match="kernel_threshold"):
        richardson_lucy_range(spectra, zlp, WIDE, rng, kernel_threshold=-1.0)
    with pytest.raises(ValueError, match="dtype"):
        richardson_lucy_range(spectra, zlp, WIDE, rng, dtype=np.int32)
    with pytest.raises(ValueError, match="psf"):
        richardson_lucy_range(spectra, zlp[:4], WIDE, rng)


@needs_exspy
def test_richardson_lucy_matches_exspy():
    ll, zl = exspy_linescan()
    energy = ll.axes_manager[-1].axis
    psf = zl.inav[5]
    theirs = ll.richardson_lucy_deconvolution(psf, iterations=15, show_progressbar=False).data
    ours, status = richardson_lucy(ll.data, psf.data, energy=energy, iterations=15)
    assert np.all(status == Status.OK)
    # exspy: np.convolve (direct, linear) with the kernel centred on its maximum channel,
    # which is 0 eV here; ours: the same linear convolutions by zero-padded FFTs. The
    # FFT rounding (1e-16) grows through 15 multiplicative updates: measured 2.6e-10.
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8 * np.abs(theirs).max())
    # one psf per spectrum (exspy maps a psf with the same navigation shape)
    theirs = ll.richardson_lucy_deconvolution(zl, iterations=10, show_progressbar=False).data
    ours, _ = richardson_lucy(ll.data, zl.data, energy=energy, iterations=10)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8 * np.abs(theirs).max())
