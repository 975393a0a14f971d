"""The fused low-loss pipeline on the simulated electrode: truth recovered, bad input flagged."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from anodemap.eels import EELSParameters, analyse_eels, compare_with_truth, eels_dataset
from anodemap.eels.deconvolution import richardson_lucy, richardson_lucy_range
from anodemap.eels.pipeline import process_spectra
from anodemap.eels.windows import integrate_window
from anodemap.eels.zlp import extract_zlp
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset
from anodemap.status import Status


def test_truth_recovered(sim, result):
    cmp = compare_with_truth(result, sim.truth)
    material = np.isfinite(sim.truth["plasmon_peak_eV"])
    # the targets at realistic counts: median |dE| <= 0.02 eV, median |dLi/Si| <= 0.1
    assert cmp["plasmon_energy_error_eV"]["median_abs"] <= 0.02
    assert cmp["li_si_error"]["median_abs"] <= 0.1
    # Every material pixel where the Li_xSi plasmon dominates converges. At grain
    # boundaries with more than half Li2O/silicate (truth oxide_fraction > 0.5) the ~20 eV
    # oxide plasmon dominates the window, and those pixels may be flagged instead.
    li_xsi = material & (sim.truth["oxide_fraction"] <= 0.5)
    assert result.valid[li_xsi].mean() >= 0.99
    assert result.valid[material].mean() >= 0.9
    # pores are flagged, not fitted
    pores = sim.truth["labels"] == 0
    assert np.all(result.maps["fit_status"][pores] != Status.OK)
    assert np.all(np.isnan(result.maps["li_si_ratio"][pores]))
    # thickness from the log-ratio matches the simulated t/lambda
    assert abs(cmp["thickness_relative_error"]["median"]) <= 0.03
    # where there is no oxide: unbiased, and the uncertainties are honest
    # (pulls of about unit spread; the Lorentzian is not the simulated Drude x angular
    # lineshape, so a small model error adds to the counting noise)
    li = cmp["oxide_free"]
    assert li["plasmon_energy_error_eV"]["median_abs"] <= 0.015
    assert abs(li["plasmon_energy_error_eV"]["median"]) <= 0.015
    assert li["li_si_error"]["median_abs"] <= 0.05
    assert 0.7 <= li["plasmon_energy_pull_std"] <= 1.6


def test_li_si_uncertainty_carries_the_fit_through_the_slope(result):
    ok = result.valid
    x = result.maps["li_si_ratio"][ok]
    slope = np.abs(result.calibration.slope(x))
    expected = result.maps["plasmon_energy_err"][ok] / slope
    np.testing.assert_allclose(result.maps["li_si_uncertainty"][ok], expected, rtol=1e-12)
    # the curve flattens at high x: the same energy error means a larger Li/Si error
    rel = result.maps["li_si_uncertainty"][ok] / result.maps["plasmon_energy_err"][ok]
    assert np.median(rel[x > 3.0]) > 2 * np.median(rel[x < 1.0])
    assert np.all(result.maps["li_si_calibration_uncertainty"][ok] >= 0)


def test_zlp_drift_measured(sim, result):
    ok = np.isfinite(result.maps["zlp_position"])
    err = result.maps["zlp_position"][ok] - sim.truth["zlp_shift_eV"][ok]
    # the drift across the scan is followed to a few meV ...
    assert np.std(err) < 0.005
    # ... with a constant offset: the simulated zero-loss peak is asymmetric, and the
    # locator reports the centre of its top half, not the maximum channel
    assert abs(np.median(err)) < 0.05


def test_window_maps_follow_the_oxide(sim, result):
    oxide = sim.truth["oxide_fraction"] > 0.3
    clean = (sim.truth["oxide_fraction"] == 0) & (sim.truth["labels"] != 0)
    li2o = result.maps["li2o_window"]
    assert np.nanmedian(li2o[oxide]) > 1.2 * np.nanmedian(li2o[clean])


def test_no_nan_without_a_status(result):
    # every map has its status map; a NaN always has a failure code there (the warning
    # STRONGEST_PEAK_OUTSIDE_WINDOW keeps the plasmon values)
    owners = {
        "plasmon_energy": "fit_status",
        "plasmon_fwhm": "fit_status",
        "reduced_chi2": "fit_status",
        "li_si_ratio": "li_si_status",
        "li_si_uncertainty": "li_si_status",
        "li_k": "li_k_status",
        "li_k_fraction": "li_k_status",
    }
    for key, status_key in owners.items():
        nan = np.isnan(result.maps[key])
        codes = result.maps[status_key][nan]
        assert np.all(codes != Status.OK), key
        assert np.all(codes != Status.STRONGEST_PEAK_OUTSIDE_WINDOW), key
        # and a pixel with a status OK has a value
        assert np.all(np.isfinite(result.maps[key][result.maps[status_key] == Status.OK])), key


def test_line_scan_and_single_spectrum(sim, result):
    row = sim.spectra[10]
    line = analyse_eels(eels_dataset(row, sim.energy), progress=False)
    assert line.maps["plasmon_energy"].shape == (32,)
    np.testing.assert_allclose(
        line.maps["plasmon_energy"],
        result.maps["plasmon_energy"][10],
        rtol=0,
        atol=1e-9,
        equal_nan=True,
    )
    one = analyse_eels(eels_dataset(row[5], sim.energy), progress=False)
    assert one.maps["plasmon_energy"].shape == ()


def test_lazy_input_gives_same_maps(sim, result):
    lazy = da.from_array(sim.spectra, chunks=(7, 32, -1))
    out = analyse_eels(
        eels_dataset(lazy, sim.energy, pixel_size_nm=5.0), progress=False, rows_per_chunk=5
    )
    for key in ("plasmon_energy", "li_si_ratio", "thickness", "fit_status"):
        np.testing.assert_allclose(out.maps[key], result.maps[key], equal_nan=True)


def test_distributed_cluster_gives_same_maps(sim, local_cluster_client):
    sub = sim.spectra[:8]
    local = analyse_eels(eels_dataset(sub, sim.energy), progress=False)
    remote = analyse_eels(
        eels_dataset(sub, sim.energy), progress=False, rows_per_chunk=2, client=local_cluster_client
    )
    for key in ("plasmon_energy", "li_si_ratio", "thickness", "li2o_window", "fit_status"):
        np.testing.assert_array_equal(local.maps[key], remote.maps[key])


def test_bad_pixels_are_flagged_not_fatal(sim):
    cube = sim.spectra[:4, :4].copy()
    cube[0, 0, 100] = np.nan
    cube[0, 1] = -np.abs(cube[0, 1])  # negative counts
    zero = np.searchsorted(sim.energy, -3.0), np.searchsorted(sim.energy, 3.0)
    cube[0, 2, zero[0] : zero[1]] = 0.0  # no zero-loss peak
    cube[0, 3] = 0.0  # no signal at all
    res = analyse_eels(eels_dataset(cube, sim.energy), progress=False)
    st = res.maps["fit_status"]
    assert st[0, 0] == Status.INVALID_INPUT
    assert st[0, 1] == Status.INVALID_INPUT
    assert st[0, 2] == Status.NO_ZERO_LOSS
    assert st[0, 3] == Status.INVALID_INPUT
    assert np.isnan(res.maps["plasmon_energy"][0]).all()
    good = sim.truth["labels"][1:4, :4] != 0
    assert (st[1:][good] == Status.OK).all()


def test_peak_outside_window_flagged(sim):
    # unlithiated Si (plasmon at 16.83 eV) fitted on the falling side only, 18.5-24 eV
    si = (sim.truth["labels"] == 1) & (sim.truth["oxide_fraction"] == 0)
    cube = sim.spectra[si][:6]
    p = EELSParameters(window=(18.5, 24.0))
    res = analyse_eels(eels_dataset(cube, sim.energy), p, progress=False)
    assert np.all(res.maps["fit_status"] == Status.PEAK_OUTSIDE_WINDOW)
    assert np.all(np.isnan(res.maps["plasmon_energy"]))


def test_bad_inputs_raise_clear_errors(sim):
    cube = sim.spectra[:2, :2]
    with pytest.raises(AnodemapInputError, match="outside the energy axis"):
        analyse_eels(
            eels_dataset(cube, sim.energy), EELSParameters(window=(60.0, 90.0)), progress=False
        )
    with pytest.raises(AnodemapInputError, match="does not contain 0 eV"):
        analyse_eels(eels_dataset(cube, sim.energy + 10.0), progress=False)
    uneven = sim.energy + 1e-3 * np.sin(np.arange(sim.energy.size))
    with pytest.raises(AnodemapInputError, match="not uniform"):
        analyse_eels(eels_dataset(cube, uneven), progress=False)
    uncal = Dataset(np.asarray(cube))
    with pytest.raises(AnodemapInputError, match="not calibrated"):
        analyse_eels(uncal, progress=False)
    image = Dataset(
        np.zeros((2, 8, 8)),
        [Axis("n", 2), Axis("ky", 8, navigate=False), Axis("kx", 8, navigate=False)],
    )
    with pytest.raises(AnodemapInputError, match="expected spectra"):
        analyse_eels(image, progress=False)
    with pytest.raises(AnodemapInputError, match="deconvolve"):
        analyse_eels(
            eels_dataset(cube, sim.energy), EELSParameters(deconvolve="magic"), progress=False
        )


@pytest.mark.parametrize(
    ("method", "fit_deconvolved"), [("fourier-log", True), ("rl", True), ("none", False)]
)
def test_other_deconvolutions_recover_truth(sim, method, fit_deconvolved):
    cube = sim.spectra[8:20, 8:20]
    p = EELSParameters(deconvolve=method, fit_deconvolved=fit_deconvolved)
    res = analyse_eels(eels_dataset(cube, sim.energy), p, progress=False)
    truth = sim.truth["plasmon_peak_eV"][8:20, 8:20]
    # Li_xSi-dominated pixels (at oxide-rich boundaries the truth is not what one peak measures)
    li_xsi = np.isfinite(truth) & (sim.truth["oxide_fraction"][8:20, 8:20] == 0)
    assert res.valid[li_xsi].mean() > 0.97
    ok = res.valid & li_xsi
    assert np.median(np.abs(res.maps["plasmon_energy"][ok] - truth[ok])) <= 0.03


def test_default_fits_aligned_spectra_and_deconvolves_for_the_windows(sim):
    block = sim.spectra[8:12].reshape(-1, sim.energy.size)
    maps, work, fit = process_spectra(block, sim.energy, EELSParameters())
    plain, aligned, _ = process_spectra(block, sim.energy, EELSParameters(deconvolve="none"))
    # the fit sees the aligned spectra, whatever the deconvolution
    np.testing.assert_array_equal(work, aligned)
    for key in ("plasmon_energy", "plasmon_fwhm", "reduced_chi2", "fit_status"):
        np.testing.assert_array_equal(maps[key], plain[key])
    assert fit.model_spectrum(sim.energy).shape == work.shape
    # the 42 eV window map comes from Richardson–Lucy on 37-47 eV (the window +- 3 eV)
    ok = maps["fit_status"] == Status.OK
    zlp = extract_zlp(aligned[ok], sim.energy)
    sub, sub_energy, _ = richardson_lucy_range(
        aligned[ok], zlp, sim.energy, (37.0, 47.0), dtype=np.float32
    )
    assert sub_energy[0] == pytest.approx(37.0) and sub_energy[-1] == pytest.approx(47.0)
    np.testing.assert_allclose(
        maps["li2o_window"][ok], integrate_window(sub, sub_energy, 40.0, 44.0), rtol=1e-12
    )
    # the Li-K map does not depend on the deconvolution chosen for the 42 eV window: it
    # always comes from Fourier-log (tests/eels/test_eels_li_k.py checks it against the truth)
    np.testing.assert_array_equal(maps["li_k"], plain["li_k"])
    np.testing.assert_array_equal(maps["li_k_status"], plain["li_k_status"])
    change = np.abs(maps["li2o_window"][ok] / plain["li2o_window"][ok] - 1)
    assert np.median(change) > 1e-3  # deconvolution changes the map (median 0.35 %)
    # with fit_deconvolved, the fit sees the whole-axis Richardson–Lucy result
    p = EELSParameters(fit_deconvolved=True)
    full_maps, full_work, _ = process_spectra(block, sim.energy, p)
    zlp_ok = ok & (full_maps["fit_status"] == Status.OK)
    assert np.all(full_maps["plasmon_energy"][zlp_ok] != maps["plasmon_energy"][zlp_ok])
    expected, _ = richardson_lucy(
        aligned[ok].astype(np.float32),
        extract_zlp(aligned[ok], sim.energy).astype(np.float32),
        energy=sim.energy,
        iterations=p.rl_iterations,
    )
    np.testing.assert_allclose(full_work[ok], expected, rtol=0, atol=1e-6 * expected.max())


def test_window_maps_on_a_range_match_whole_axis_richardson_lucy(sim, result):
    # fit_deconvolved=True deconvolves the whole axis (FFTs, the whole zero-loss kernel)
    # and takes the window maps from it: the default's range-only deconvolution must
    # give the same maps
    whole = analyse_eels(
        eels_dataset(sim.spectra, sim.energy, pixel_size_nm=5.0),
        EELSParameters(fit_deconvolved=True),
        progress=False,
    )
    material = np.isfinite(sim.truth["plasmon_peak_eV"]) & (result.maps["thickness"] >= 0.1)
    # relative to the counts in the window and to their counting noise
    counts = integrate_window(sim.spectra, sim.energy, 40.0, 44.0)[material]
    diff = np.abs(result.maps["li2o_window"] - whole.maps["li2o_window"])[material]
    assert np.median(diff / counts) < 1e-3  # measured 1.1e-4
    assert np.percentile(diff / counts, 99) < 5e-3  # 1.0e-3
    assert np.all(diff < 0.25 * np.sqrt(counts))  # 0.09 sigma at most


def test_energy_axis_in_kev_is_converted(sim):
    cube = sim.spectra[8:10, 8:12]
    ev = analyse_eels(eels_dataset(cube, sim.energy), progress=False)
    ds = eels_dataset(cube, sim.energy)
    ax = ds.sig_axes[0]
    ds.axes[-1] = Axis(ax.name, ax.size, ax.scale / 1e3, ax.offset / 1e3, "keV", navigate=False)
    kev = analyse_eels(ds, progress=False)
    np.testing.assert_allclose(kev.maps["plasmon_energy"], ev.maps["plasmon_energy"], atol=1e-6)
