"""Tests of anodemap.eels.plasmon: accuracy, uncertainties, statuses, shapes, exspy agreement."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from anodemap.eels.plasmon import (
    DEFAULT_BACKGROUND,
    DEFAULT_WINDOW_EV,
    drude,
    drude_maximum,
    fit_plasmon,
    lorentzian,
    model_spectrum,
    plasmon_block,
    plasmon_output_fields,
)
from anodemap.errors import AnodemapInputError
from anodemap.status import Status
from helpers import exspy_file

DE = 0.05  # channel width (eV) of the simulated spectra, as in the paper's data
ENERGY = np.arange(-5.0, 60.0, DE)


def _lowloss(
    ep: float,
    fwhm: float = 4.0,
    total: float = 1e6,
    t_lambda: float = 1.0,
    ssd: str = "lorentzian",
    zlp_fwhm: float = 1.0,
    zlp_tail: float = 0.1,
    orders: int = 5,
) -> np.ndarray:
    """Noise-free low-loss spectrum, independent of the fit model.

    Single-scattering plasmon (Lorentzian or Drude, zero below 0 eV), Poisson plural
    scattering up to ``orders`` by FFT self-convolution, everything convolved with a
    zero-loss peak: a Gaussian core plus a Lorentzian tail of weight ``zlp_tail``.
    """
    n = 4096
    grid = np.arange(n) * DE
    if ssd == "lorentzian":
        s = lorentzian(grid, 1.0, ep, fwhm)
    else:
        s = drude(grid, 1.0, ep, fwhm)
    s /= s.sum()
    big = 2 * n
    sf = np.fft.rfft(s, big)
    total_f = np.zeros_like(sf)
    term = np.ones_like(sf)
    for k in range(orders + 1):
        total_f += term * t_lambda**k / math.factorial(k)
        term = term * sf
    total_f *= math.exp(-t_lambda)
    ez = (np.arange(big) - big // 2) * DE
    sg = zlp_fwhm / 2.3548
    z = (1 - zlp_tail) * np.exp(-0.5 * (ez / sg) ** 2) / (sg * math.sqrt(2 * math.pi))
    z = (z + zlp_tail * lorentzian(ez, 1.0, 0.0, zlp_fwhm)) * DE
    full = np.fft.irfft(total_f * np.fft.rfft(np.roll(z, -big // 2)), big)
    e_full = np.where(np.arange(big) < big // 2, np.arange(big), np.arange(big) - big) * DE
    order = np.argsort(e_full)
    return total * np.interp(ENERGY, e_full[order], full[order])


def _poisson(clean: np.ndarray, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(np.clip(clean, 0, None), size=(n, clean.size))


# --------------------------------------------------------------------------------------
# accuracy and uncertainties
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["lorentzian", "drude"])
@pytest.mark.parametrize("counts", [1e5, 1e6])
def test_recovers_known_parameters_with_consistent_errors(model: str, counts: float) -> None:
    """Spectra drawn from the fit model itself: parameters, errors and pulls are right."""
    centre, width = 15.2, 4.0
    area = 0.6 * counts  # counts in the first plasmon
    amp = area * DE if model == "lorentzian" else area * DE / (math.pi * centre / 2)
    params = [amp, centre, width, 0.6, area * DE * 0.005, -area * DE * 0.002]
    clean = model_spectrum(params, ENERGY, model=model, window_channels=(8.0, 25.0))
    assert np.all(clean[(ENERGY > 8) & (ENERGY < 25)] > 0)
    fit = fit_plasmon(_poisson(clean, 300, seed=int(counts) % 97), ENERGY, model=model)
    assert np.all(fit.status == Status.OK)
    truth = centre if model == "lorentzian" else float(drude_maximum(centre, width))
    assert abs(np.median(fit.position) - truth) <= 0.01
    # the error estimate matches the observed scatter
    pull = (fit.position - truth) / fit.position_err
    assert 0.8 <= np.std(pull) <= 1.25
    fwhm_pull = (fit.fwhm - np.median(fit.fwhm)) / fit.fwhm_err
    assert 0.8 <= np.std(fwhm_pull) <= 1.25
    area_pull = (fit.area - np.median(fit.area)) / fit.area_err
    assert 0.8 <= np.std(area_pull) <= 1.25
    if model == "lorentzian":
        assert abs(np.median(fit.fwhm) - width) < 0.05
        assert abs(np.median(fit.area) / area - 1) < 0.01
        exact = area
    else:
        assert fit.ep is not None and abs(np.median(fit.ep) - centre) < 0.01
        assert abs(np.median(fit.gamma) - width) < 0.05
        # position is the maximum of the Drude function, ~Γ²/(8 Ep) below Ep
        assert abs((centre - truth) - width**2 / (8 * centre)) < 0.01
        # the reported FWHM is that of the lineshape, found numerically
        fine = np.linspace(1.0, 40.0, 200001)
        shape = drude(fine, 1.0, centre, width)
        above = fine[shape >= shape.max() / 2]
        assert abs(np.median(fit.fwhm) - (above[-1] - above[0])) < 0.05
        # the area is the exact integral of the fitted Drude function (counts)
        grid = np.linspace(0.0, 5000.0, 2_000_001)
        exact = amp * np.trapezoid(drude(grid, 1.0, centre, width), grid) / DE
        assert abs(np.median(fit.area) / exact - 1) < 0.01
    assert fit.second_area is not None
    # area·(t/λ)/2; the second plasmon lies mostly above the window, hence 10 %
    assert abs(np.median(fit.second_area) / (exact * 0.3) - 1) < 0.1
    assert np.median(fit.redchi) == pytest.approx(1.0, abs=0.1)


def test_default_background_removes_bias_of_plain_lorentzian_plus_offset() -> None:
    """Zero-loss tail + plural scattering bias a plain Lorentzian + offset; the default not.

    The simulation (see _lowloss) is independent of the fit model: Drude and Lorentzian
    single-scattering distributions, Poisson plural scattering to 5th order, a 1 eV
    zero-loss peak with a Lorentzian tail. The true position is the maximum of the
    single-scattering plasmon. Tolerance 0.025 eV: the measured worst case of the default
    over t/λ 0.15-1.6 and 12.7-16.9 eV is 0.023 eV (module notes), from the plural
    scattering of a truncated single-scattering distribution that the Lorentzian series
    only approximates.
    """
    for ssd, ep, tl, tail in [
        ("lorentzian", 13.0, 1.0, 0.1),
        ("drude", 16.5, 1.0, 0.1),
        ("drude", 12.8, 0.15, 0.5),  # thin, strong zero-loss tail: plain fit biased low
    ]:
        truth = ep if ssd == "lorentzian" else float(drude_maximum(ep, 4.0))
        data = _poisson(_lowloss(ep, t_lambda=tl, ssd=ssd, zlp_tail=tail), 100, seed=5)
        default = fit_plasmon(data, ENERGY)
        plain = fit_plasmon(data, ENERGY, background="offset", second_plasmon=False)
        assert np.all(default.status == Status.OK) and np.all(plain.status == Status.OK)
        bias_default = np.median(default.position) - truth
        bias_plain = np.median(plain.position) - truth
        assert abs(bias_default) <= 0.025, (ssd, ep, tl, bias_default)
        assert abs(bias_plain) >= 0.04, (ssd, ep, tl, bias_plain)
        assert abs(bias_default) < abs(bias_plain) / 3


@pytest.mark.parametrize("background", ["none", "offset", "linear", "powerlaw", "powerlaw_offset"])
def test_every_background_converges_on_realistic_spectra(background: str) -> None:
    data = _poisson(_lowloss(14.0, t_lambda=0.8, zlp_tail=0.5), 40, seed=11)
    fit = fit_plasmon(data, ENERGY, background=background)
    assert np.mean(fit.status == Status.OK) >= 0.95
    ok = fit.status == Status.OK
    tolerance = 0.5 if background == "none" else 0.06
    assert abs(np.median(fit.position[ok]) - 14.0) < tolerance


# --------------------------------------------------------------------------------------
# statuses
# --------------------------------------------------------------------------------------


def test_statuses_and_nan_values() -> None:
    good = _lowloss(15.0, total=1e5)
    decaying = 1e4 * np.exp(-np.clip(ENERGY, 0, None) / 3.0) + 5  # peak below the window
    rising = 50 + 5e5 * DE * lorentzian(ENERGY, 1.0, 32.0, 4.0)  # peak above the window
    nan_row = good.copy()
    nan_row[300] = np.nan
    inf_row = good.copy()
    inf_row[400] = np.inf  # 15 eV, inside the window
    flat = np.random.default_rng(1).poisson(1000.0, ENERGY.size).astype(float)
    rows = np.stack(
        [good, nan_row, inf_row, np.zeros_like(good), flat, decaying, rising, good * 0 + 3.0]
    )
    fit = fit_plasmon(rows, ENERGY)
    expected = [
        Status.OK,
        Status.INVALID_INPUT,
        Status.INVALID_INPUT,
        Status.NO_SIGNAL,
        Status.NO_SIGNAL,
        Status.PEAK_OUTSIDE_WINDOW,
        Status.PEAK_OUTSIDE_WINDOW,
        Status.NO_SIGNAL,  # constant 3 counts per channel: no structure
    ]
    assert fit.status.tolist() == [int(s) for s in expected]
    assert fit.status.dtype == np.uint8
    bad = fit.status != Status.OK
    for name in ("position", "fwhm", "area", "position_err", "fwhm_err", "area_err"):
        values = getattr(fit, name)
        assert np.all(np.isnan(values[bad])), name
        assert np.all(np.isfinite(values[~bad])), name


def test_nan_outside_the_window_is_harmless_and_few_counts_is_no_signal() -> None:
    spectrum = _lowloss(15.0, total=1e5)
    spectrum[ENERGY < 2.0] = np.nan  # e.g. a saturated zero-loss peak masked out
    assert fit_plasmon(spectrum, ENERGY).status == Status.OK
    tiny = _poisson(_lowloss(15.0, total=100.0), 1, seed=2)[0]
    assert fit_plasmon(tiny, ENERGY).status == Status.NO_SIGNAL


def test_no_plural_scattering_pins_t_lambda_at_zero() -> None:
    y = 30 + 4e5 * DE * lorentzian(ENERGY, 1.0, 15.0, 4.0)  # no second plasmon at all
    fit = fit_plasmon(y, ENERGY, sigma=np.sqrt(y))
    assert fit.status == Status.OK
    assert float(fit.position) == pytest.approx(15.0, abs=1e-4)
    assert float(fit.second_area) == pytest.approx(0.0, abs=1.0)
    assert np.isfinite(fit.second_area_err)


def test_peak_fitted_outside_window_is_flagged() -> None:
    # a wide peak whose maximum lies just above the window end
    y = 20 + 3e5 * DE * lorentzian(ENERGY, 1.0, 24.0, 6.0)
    fit = fit_plasmon(y, ENERGY, window=(8.0, 22.0), background="offset", second_plasmon=False)
    assert fit.status == Status.PEAK_OUTSIDE_WINDOW
    assert np.isnan(fit.position)


# --------------------------------------------------------------------------------------
# shapes, dtypes, options
# --------------------------------------------------------------------------------------


def test_shapes_and_dtypes() -> None:
    clean = _lowloss(15.5, total=1e5)
    cube = _poisson(clean, 12, seed=4).reshape(3, 4, -1)
    f3 = fit_plasmon(cube.astype(np.float32), ENERGY)
    assert f3.position.shape == (3, 4) and f3.status.shape == (3, 4)
    assert f3.n_iter.dtype == np.int32 and f3.params is not None
    assert f3.params.shape == (3, 4, len(f3.param_names))
    f2 = fit_plasmon(cube.reshape(12, -1), ENERGY)  # integer counts
    np.testing.assert_allclose(f2.position, f3.position.ravel(), atol=1e-9)
    f1 = fit_plasmon(cube[1, 2], ENERGY)
    assert f1.position.shape == ()
    assert float(f1.position) == pytest.approx(f3.position[1, 2], abs=1e-9)
    fth = fit_plasmon(cube, ENERGY, workers=2)
    np.testing.assert_array_equal(fth.position, f3.position)
    empty = fit_plasmon(np.zeros((0, ENERGY.size)), ENERGY)
    assert empty.position.shape == (0,)


def test_model_spectrum_reproduces_fit_and_block_kernel() -> None:
    clean = _lowloss(13.5, total=1e6)
    fit = fit_plasmon(clean, ENERGY, sigma=np.sqrt(np.maximum(clean, 1)))
    window = (ENERGY >= 8) & (ENERGY <= 25)
    resid = (fit.model_spectrum(ENERGY) - clean)[window] / np.sqrt(clean[window])
    assert np.sqrt(np.mean(resid**2)) < 0.5  # the model describes the simulation well
    out = plasmon_block(np.stack([clean, clean]), energy=ENERGY)
    fields = plasmon_output_fields("lorentzian", True)
    assert list(out) == list(fields)
    assert out["position"].shape == (2,) and out["status"].dtype == np.uint8
    assert out["position"][0] == pytest.approx(float(fit.position))


def test_sigma_options() -> None:
    data = _poisson(_lowloss(15.0, total=2e5), 50, seed=8).astype(float)
    gain = 7.0  # counts that are not electrons: scaled errors stay right
    rel = fit_plasmon(data * gain, ENERGY)
    base = fit_plasmon(data, ENERGY)
    np.testing.assert_allclose(rel.position, base.position, atol=2e-3)
    np.testing.assert_allclose(rel.position_err, base.position_err, rtol=0.02)
    assert np.median(rel.redchi) == pytest.approx(gain, rel=0.15)
    absolute = fit_plasmon(data * gain, ENERGY, absolute_sigma=True)
    np.testing.assert_allclose(
        absolute.position_err * np.sqrt(rel.redchi), rel.position_err, rtol=1e-9
    )
    per_channel = fit_plasmon(data, ENERGY, sigma=np.sqrt(np.maximum(data, 1)))
    np.testing.assert_allclose(per_channel.position, base.position, atol=1e-9)
    bad_sigma = fit_plasmon(data[:2], ENERGY, sigma=np.zeros(ENERGY.size))
    assert np.all(bad_sigma.status == Status.INVALID_INPUT)


def test_input_errors() -> None:
    y = _lowloss(15.0, total=1e5)
    with pytest.raises(AnodemapInputError, match="window"):
        fit_plasmon(y, ENERGY, window=(8.0, 80.0))
    with pytest.raises(AnodemapInputError, match="model"):
        fit_plasmon(y, ENERGY, model="gaussian")
    with pytest.raises(AnodemapInputError, match="background"):
        fit_plasmon(y, ENERGY, background="spline")
    with pytest.raises(AnodemapInputError, match="uniform"):
        fit_plasmon(y, ENERGY + 1e-3 * np.arange(ENERGY.size) ** 1.5)
    with pytest.raises(AnodemapInputError, match="energy"):
        fit_plasmon(y, ENERGY[:-1])
    with pytest.raises(AnodemapInputError, match="above 0 eV"):
        fit_plasmon(y, ENERGY, window=(-2.0, 20.0), model="drude")
    assert fit_plasmon(y, ENERGY, background="default").background == DEFAULT_BACKGROUND


# --------------------------------------------------------------------------------------
# agreement with exspy
# --------------------------------------------------------------------------------------


def _exspy_lowloss_file() -> Path:
    return exspy_file("tests", "components", "lowloss_spectrum.msa")


def _hyperspy():
    pytest.importorskip("exspy", reason="exspy is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
    import logging

    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    return hs


@pytest.mark.parametrize("window", [(10.0, 20.0), (9.0, 22.0)])
def test_agrees_with_exspy_on_its_measured_lowloss_spectrum(window: tuple[float, float]) -> None:
    """Same data, window, model (Lorentzian + Offset) and χ² (unweighted, exspy's default).

    Both minimise the same χ², so they differ only by where they stop: ours stops when
    the Gauss-Newton step is below 0.01σ, or takes a last step of at most 0.1σ (second-
    order error, measured <= 0.03σ); σ is 0.08-0.13 eV here, so |ΔE| <= 0.005 eV. With
    tight tolerances the two agree to 1e-4 eV.
    """
    path = _exspy_lowloss_file()
    hs = _hyperspy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.load(path, signal_type="EELS")
        m = s.create_model(auto_background=False)
        lor = hs.model.components1D.Lorentzian()
        off = hs.model.components1D.Offset()
        m.extend([lor, off])
        m.set_signal_range(*window)
        lor.centre.value, lor.gamma.value, lor.A.value, off.offset.value = 15.0, 2.0, 2e4, 500.0
        m.fit()
    energy = s.axes_manager[-1].axis
    kw = {"window": window, "model": "lorentzian", "background": "offset"}
    ours = fit_plasmon(s.data, energy, second_plasmon=False, sigma=1.0, **kw)
    assert ours.status == Status.OK
    assert abs(float(ours.position) - lor.centre.value) <= 0.005
    assert abs(float(ours.position) - lor.centre.value) <= 0.05 * lor.centre.std
    assert float(ours.position_err) == pytest.approx(lor.centre.std, rel=0.02)
    strict = fit_plasmon(
        s.data, energy, second_plasmon=False, sigma=1.0, tol=1e-6, final_step=0.0, **kw
    )
    assert abs(float(strict.position) - lor.centre.value) <= 1e-4
    assert float(strict.fwhm) == pytest.approx(2 * lor.gamma.value, abs=1e-3)
    # exspy's binned-signal area A is the number of counts under the peak, as ours
    assert float(strict.area) == pytest.approx(lor.A.value, rel=1e-3)


def test_agrees_with_exspy_multifit_on_a_small_map() -> None:
    hs = _hyperspy()
    rng = np.random.default_rng(12)
    centres = rng.uniform(13.0, 16.5, size=(3, 4))
    clean = 40.0 + 2e5 * DE * lorentzian(ENERGY, 1.0, centres[..., None], 4.0)
    data = rng.poisson(clean).astype(float)
    window = (8.0, 25.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.signals.Signal1D(data)
        ax = s.axes_manager[-1]
        ax.scale, ax.offset, ax.units = DE, float(ENERGY[0]), "eV"
        s.set_signal_type("EELS")
        m = s.create_model(auto_background=False)
        lor = hs.model.components1D.Lorentzian()
        off = hs.model.components1D.Offset()
        m.extend([lor, off])
        m.set_signal_range(*window)
        lor.centre.value, lor.gamma.value, lor.A.value, off.offset.value = 14.5, 2.0, 2e5, 40.0
        for par in (lor.centre, lor.gamma, lor.A, off.offset):
            par.assign_current_value_to_all()
        m.multifit(show_progressbar=False)
    exspy_centre = lor.centre.map["values"]
    ours = fit_plasmon(
        data, ENERGY, window=window, background="offset", second_plasmon=False, sigma=1.0
    )
    assert np.all(ours.status == Status.OK)
    assert np.max(np.abs(ours.position - exspy_centre)) <= 0.005
    assert np.max(np.abs(ours.position - centres)) < 0.1


def test_default_window_is_the_documented_one() -> None:
    assert DEFAULT_WINDOW_EV == (8.0, 25.0)
