"""The Li-K edge map (paper Figures S8b, S10d) against the simulator's exact Li-K counts.

The simulator (anodemap.synth.eels) puts a Li-K edge (onset 54.7 eV, hydrogenic-like decay,
strength per Li atom; tests/test_synth.py checks its shape against exspy's hydrogenic
cross-section) into the single-scattering distribution and reports, per pixel, the counts of
that edge in the paper's 58-62 eV window (``li_k_counts``) and their share of the single
scattering (``li_k_fraction``). The map is right when it measures those.
"""

from __future__ import annotations

import numpy as np
import pytest

from anodemap.eels import analyse_eels, compare_with_truth, eels_dataset
from anodemap.eels.deconvolution import richardson_lucy_range
from anodemap.eels.windows import (
    LI_K_BACKGROUND_EV,
    edge_window,
    powerlaw_two_area,
)
from anodemap.eels.zlp import align_zlp, extract_zlp, locate_zlp
from anodemap.status import Status
from anodemap.synth import simulate_spectrum


@pytest.mark.parametrize("r", [2.0, 3.5, 5.0])
def test_two_area_power_law_is_exact_on_a_power_law(r):
    e = np.arange(-5.0, 80.0, 0.05)
    spectrum = np.where(e > 1, 1e8 * np.abs(e) ** -r, 0.0)
    edge = np.where(e >= 56.0, 25.0, 0.0)  # 25 counts per channel above 56 eV
    a, r_fit, positive = powerlaw_two_area(spectrum, e, *LI_K_BACKGROUND_EV)
    assert positive and r_fit == pytest.approx(r, abs=2e-3)
    signal, exponent, status = edge_window((spectrum + edge)[None], e)
    assert status[0] == Status.OK
    # 25 counts x 80 channels in 58-62 eV, the background removed to 0.5 %
    assert signal[0] == pytest.approx(2000.0, rel=5e-3)


def test_unreliable_backgrounds_are_flagged_not_given():
    e = np.arange(-5.0, 80.0, 0.05)
    steep = np.where(e > 1, 1e20 * np.abs(e) ** -10.0, 0.0)  # r = 10: no pre-edge tail
    rising = np.where(e > 1, 1e-2 * np.abs(e) ** 2.0, 0.0)  # r = -2
    empty = np.zeros_like(e)
    signal, exponent, status = edge_window(np.stack([steep, rising, empty]), e)
    assert list(status) == [
        Status.BACKGROUND_EXPONENT,
        Status.BACKGROUND_EXPONENT,
        Status.BACKGROUND_NO_COUNTS,
    ]
    assert np.all(np.isnan(signal))
    assert exponent[0] == pytest.approx(10.0, abs=0.05)
    assert exponent[1] == pytest.approx(-2.0, abs=0.05)


@pytest.mark.parametrize("t", [0.4, 1.0, 1.4])
def test_noise_free_li_k_counts_match_the_truth(t):
    # Li-free Si: nothing; Li_1.8Si and Li_3.7Si: the simulated edge counts within 5 %
    # (measured -2.1 % to -3.5 %: a little of the broadened onset reaches the end of the
    # background window and raises the extrapolated background)
    lithiated = []
    for x in (0.0, 1.8, 3.7):
        s = simulate_spectrum(x, t, noise=False)
        r = analyse_eels(eels_dataset(s.spectra[None], s.energy), progress=False)
        assert r.maps["li_k_status"][0] == Status.OK
        truth = float(s.truth["li_k_counts"])
        if x == 0.0:
            si = float(r.maps["li_k"][0])
            continue
        lithiated.append(truth)
        assert r.maps["li_k"][0] == pytest.approx(truth, rel=0.05), x
        assert r.maps["li_k_fraction"][0] == pytest.approx(
            float(s.truth["li_k_fraction"]), rel=0.05
        )
    assert abs(si) < 0.04 * min(lithiated)  # measured 5-18 counts against 445-741


def test_too_thick_pixels_are_flagged():
    # beyond t/lambda = 1.5 the plural scattering beyond the end of the 75 eV axis
    # reaches the Li-K region (Fourier-log cannot see it): flagged, no number
    s = simulate_spectrum(1.8, 1.8, noise=False)
    r = analyse_eels(eels_dataset(s.spectra[None], s.energy), progress=False)
    assert r.maps["li_k_status"][0] == Status.TOO_THICK
    assert np.isnan(r.maps["li_k"][0]) and np.isnan(r.maps["li_k_fraction"][0])


def test_li_k_map_measures_the_simulated_edge(sim, result):
    cmp = compare_with_truth(result, sim.truth)["li_k"]
    material = sim.truth["labels"] != 0
    # every material pixel has a value or a flag; few are flagged (measured 19 of 983)
    assert cmp["n_with_value"] + cmp["n_flagged"] == material.sum()
    assert cmp["fraction_flagged"] <= 0.05
    assert set(cmp["flagged_by_status"]) <= {
        "background_no_counts",
        "background_exponent",
        "too_thick",
    }
    k = cmp["li_k"]
    # counts against the exact edge counts: unbiased to a few % (measured -1.3 %), and a
    # typical error of 8 % (the counting noise of a 4 eV window at the paper's dose)
    assert abs(k["relative_error_vs_exact_truth"]["median"]) <= 0.05
    assert k["relative_error_vs_exact_truth"]["median_abs"] <= 0.12
    assert k["spearman_vs_exact_truth_all_material"] >= 0.65  # measured 0.75
    # pure Si has no Li-K edge: its pixels are near 0 against the lithiated ones
    ok = result.maps["li_k_status"] == Status.OK
    si = ok & (sim.truth["li_per_si"] == 0) & (sim.truth["oxide_fraction"] == 0)
    rich = ok & (sim.truth["li_per_si"] > 2.8)
    assert abs(np.median(result.maps["li_k"][si])) < 0.1 * np.median(result.maps["li_k"][rich])


def test_li_k_map_follows_li_per_si(sim, result):
    # Spearman rank correlation with the truth Li/Si over ALL material pixels, flagged
    # ones counted as failures. Even the exact edge counts reach only 0.63 here (the edge
    # also sees the Li of Li2O/silicates at grain boundaries, and the counts scale with
    # the thickness), so the map is held to a share of that ceiling (measured: 0.56 for
    # the counts, 0.57 per single-scattering count; 0.63 and 0.72 over oxide-free pixels)
    cmp = compare_with_truth(result, sim.truth)["li_k"]
    for key in ("li_k", "li_k_fraction"):
        k = cmp[key]
        ceiling = k["spearman_of_the_exact_truth_vs_li_si"]
        rho = k["spearman_vs_li_si_all_material_flagged_as_failures"]
        assert rho >= 0.8 * ceiling, key
        assert k["spearman_vs_li_si_oxide_free_all"] >= 0.55, key
    assert cmp["li_k_fraction"]["spearman_vs_li_si_oxide_free_all"] >= 0.65


@pytest.mark.parametrize(("x", "t"), [(0.0, 0.8), (3.7, 1.2)])
def test_paper_deconvolution_alone_leaves_plural_plasmons_under_the_edge(x, t):
    # Richardson-Lucy (the paper's zero-loss deconvolution) sharpens but keeps the plural
    # plasmons (3 x 16.8 = 50 eV in Si, 4 x 12.9 = 52 eV and 5 x 12.9 = 65 eV in
    # Li_3.7Si): a power law below the edge then extrapolates wrongly, with the
    # background fitted just below the edge (47-54 eV) or over 30-53 eV. Noise-free
    # spectra: measured -1968 and +103 counts in Si (truth 0), +335 and -53 in Li_3.7Si
    # at t/lambda = 1.2 (truth 745). Fourier-log removes the plural plasmons: within 5 %.
    s = simulate_spectrum(x, t, noise=False)
    spectra = s.spectra[None].astype(float)
    position, _, _ = locate_zlp(spectra, s.energy)
    aligned = align_zlp(spectra, s.energy, position)
    zlp = extract_zlp(aligned, s.energy)
    rl, rl_energy, _ = richardson_lucy_range(aligned, zlp, s.energy, (27.0, 65.0))
    rl = np.asarray(rl, dtype=float)
    truth = float(s.truth["li_k_counts"])
    scale = float(simulate_spectrum(3.7, t, noise=False).truth["li_k_counts"])
    for background in ((47.0, 54.0), LI_K_BACKGROUND_EV):
        paper = edge_window(rl, rl_energy, background=background, exponent_range=(-99, 99))
        assert abs(paper.signal[0] - truth) > 0.1 * scale, background
    ours = analyse_eels(eels_dataset(s.spectra[None], s.energy), progress=False)
    assert abs(ours.maps["li_k"][0] - truth) < 0.05 * scale
