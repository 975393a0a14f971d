"""The oxide index map of ``anodemap eels`` (anodemap.eels.oxide_index) against the
simulator's oxide share. Its physics (thickness-free up to t/λ of about 1.5, Li2O and
SiO2 above Li_xSi) is checked on Drude plasmons made in tests/correlate/
test_oxide_plasmon.py, independent of the simulator."""

from __future__ import annotations

import numpy as np

from anodemap.eels import compare_with_truth


def test_the_oxide_index_follows_the_true_oxide_share(sim, result):
    """Over every material pixel of the shared 32 x 32 simulation (seed 3): nearly all
    have a value (measured 968 of 983), the index follows the truth's oxide share
    (measured Pearson 0.944, Spearman 0.870) and the O-rich pixels (share >= 0.3) read
    over three times the oxide-free ones (0.133 against 0.036)."""
    cmp = compare_with_truth(result, sim.truth)["oxide_index"]
    material = np.isfinite(sim.truth["plasmon_peak_eV"])
    assert cmp["n_material"] == int(material.sum())
    assert cmp["n_with_value"] >= 0.97 * cmp["n_material"]
    assert cmp["pearson_vs_oxide_fraction"] > 0.9
    assert cmp["spearman_vs_oxide_fraction"] > 0.8
    assert cmp["median_oxide_rich"] > 3 * cmp["median_oxide_free"]
    # no value where no first plasmon was fitted (pores, failed fits)
    q = result.maps["oxide_index"]
    assert np.all(np.isnan(q[~np.isfinite(result.maps["plasmon_area"])]))


def test_no_index_where_the_fit_describes_a_weaker_peak(exspy_lowloss_msa):
    """exspy's real low-loss spectrum: its strongest loss peak (31 eV) lies outside the
    default 8-25 eV window, so the fit describes the weaker 14 eV feature (status 7) and
    its area is not the first plasmon's: no index (it read 1.7 with that area)."""
    from anodemap.eels import analyse_eels
    from anodemap.io import load
    from anodemap.status import Status

    r = analyse_eels(load(exspy_lowloss_msa), progress=False)
    assert r.maps["fit_status"].ravel()[0] == Status.STRONGEST_PEAK_OUTSIDE_WINDOW
    assert np.isfinite(r.maps["li2o_window"]).all()
    assert np.isnan(r.maps["oxide_index"]).all()


def test_no_index_where_the_fit_took_two_plasmons():
    """The 1st delithiation (a-Si, plasmon 16-16.7 eV, near the oxide's 20.5 eV): at
    oxide shares above 0.5 the one-peak fit takes both plasmons and its area swells
    (9-13 times the single scattering): with it those pixels would read the lowest index
    (measured median 0.010 against 0.034 oxide-free); they have none, and over the rest
    the index follows the oxide share (measured here, 32 x 32 of seed 3: 863 of 921
    material pixels, Pearson 0.972, O-rich 0.079 against 0.034)."""
    from anodemap.eels import EELSParameters, analyse_eels, eels_dataset
    from anodemap.synth import simulate_eels
    from anodemap.synth.study import state_phantom

    sim = simulate_eels(state_phantom("delithiated_1", (32, 32), seed=3), seed=3)
    r = analyse_eels(eels_dataset(sim.spectra, sim.energy, pixel_size_nm=5.0), progress=False)
    cmp = compare_with_truth(r, sim.truth)["oxide_index"]
    assert cmp["n_with_value"] >= 0.9 * cmp["n_material"]
    assert cmp["pearson_vs_oxide_fraction"] > 0.9
    assert cmp["median_oxide_rich"] > 2 * cmp["median_oxide_free"]
    rich = sim.truth["oxide_fraction"] >= 0.5
    m = r.maps
    # the trap is the one-peak area's (the index's A); --oxide-peak auto's plasmon_area
    # map is the Li_xSi peak's alone where the oxide peak was fitted beside it
    one = analyse_eels(
        eels_dataset(sim.spectra, sim.energy, pixel_size_nm=5.0),
        EELSParameters(oxide_peak="off"),
        progress=False,
    ).maps
    assert np.array_equal(one["oxide_index"], m["oxide_index"], equal_nan=True)
    raw = one["li2o_window"][rich] / (one["plasmon_area"][rich] * one["thickness"][rich])
    assert rich.sum() > 20 and np.nanmedian(raw) < cmp["median_oxide_free"]  # the trap
    assert np.isnan(m["oxide_index"][rich]).all()
