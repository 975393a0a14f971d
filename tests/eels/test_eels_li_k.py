"""The Li-K edge map (paper Figures S8b, S10d) against the simulator's exact Li-K counts.

The simulator (anodemap.synth.eels) puts a Li-K edge (onset 54.7 eV, hydrogenic-like decay,
strength per Li atom; tests/synth/test_synth.py checks its shape against exspy's hydrogenic
cross-section) into the single-scattering distribution and reports, per pixel, the counts of
that edge in the paper's 58-62 eV window (``li_k_counts``) and their share of the single
scattering (``li_k_fraction``). The map is right when it measures those.

The estimator (``windows.edge_fit``: a power law and the hydrogenic Li-K edge fitted
together, or the paper's window above the power law) and its 1σ are also checked on
data from forward models independent of ``anodemap.synth``: single-scattering spectra
made of a power law and exspy's hydrogenic Li-K cross-section with Poisson noise, and
low-loss spectra made here by Poisson plural scattering of a Drude plasmon and that edge.
"""

from __future__ import annotations

import numpy as np
import pytest

from anodemap.eels import analyse_eels, compare_with_truth, eels_dataset
from anodemap.eels.deconvolution import richardson_lucy_range
from anodemap.eels.parameters import EELSParameters
from anodemap.eels.pipeline import _counting_variance
from anodemap.eels.windows import (
    LI_K_BACKGROUND_EV,
    LI_K_ONSET_EV,
    edge_fit,
    edge_window,
    hydrogenic_k_edge,
    integrate_window,
    powerlaw_two_area,
)
from anodemap.eels.zlp import align_zlp, extract_zlp, locate_zlp
from anodemap.errors import AnodemapInputError
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


@pytest.mark.parametrize("method", ["fit", "window"])
@pytest.mark.parametrize("t", [0.4, 1.0, 1.4])
def test_noise_free_li_k_counts_match_the_truth(t, method):
    # Li-free Si: nearly nothing; Li_1.8Si and Li_3.7Si: the simulated edge counts within
    # 5 % (measured -1.9 % to -3.5 %, both methods: the simulated onset is broadened by
    # 1 eV, and its edge decays as (E/E_K)^-3.6, the hydrogenic one 1-2 % differently)
    p = EELSParameters(li_k_method=method)
    lithiated = []
    for x in (0.0, 1.8, 3.7):
        s = simulate_spectrum(x, t, noise=False)
        r = analyse_eels(eels_dataset(s.spectra[None], s.energy), p, progress=False)
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
    # measured 5-18 counts (window) and 10-22 (fit: the tail of the Si plasmon is not
    # quite a power law over 30-73 eV) against 445-741
    assert abs(si) < 0.04 * min(lithiated)


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
    # every material pixel has a value or a flag; few are flagged (measured 8 of 983)
    assert cmp["n_with_value"] + cmp["n_flagged"] == material.sum()
    assert cmp["fraction_flagged"] <= 0.02
    assert set(cmp["flagged_by_status"]) <= {
        "background_no_counts",
        "background_exponent",
        "not_converged",
        "too_thick",
    }
    k = cmp["li_k"]
    # counts against the exact edge counts: unbiased to a few % (measured -0.1 %), and a
    # typical error of 6 % (the counting noise at the paper's dose)
    assert abs(k["relative_error_vs_exact_truth"]["median"]) <= 0.03
    assert k["relative_error_vs_exact_truth"]["median_abs"] <= 0.08
    assert k["spearman_vs_exact_truth_all_material"] >= 0.78  # measured 0.83
    # the 1σ map is honest: errors against the exact counts in units of their 1σ have a
    # spread near 1 (measured 1.09; 64 % within 1σ, 93 % within 2σ)
    z = k["normalised_error_vs_exact_truth"]
    assert 0.9 <= z["std"] <= 1.2
    assert 0.58 <= z["within_1_sigma"] <= 0.76
    assert 0.9 <= z["within_2_sigma"] <= 0.98
    # pure Si has no Li-K edge: its pixels are near 0 against the lithiated ones
    # (measured 22 against 622 counts)
    ok = result.maps["li_k_status"] == Status.OK
    si = ok & (sim.truth["li_per_si"] == 0) & (sim.truth["oxide_fraction"] == 0)
    rich = ok & (sim.truth["li_per_si"] > 2.8)
    assert abs(np.median(result.maps["li_k"][si])) < 0.1 * np.median(result.maps["li_k"][rich])


def test_the_fit_is_the_better_estimator_over_all_material_pixels(sim, result):
    # the default (fit) against the paper's window on the same spectra, over all material
    # pixels: fewer flagged (measured 8 against 19 of 983), smaller errors against the
    # exact edge counts (rms 57 against 71 counts), closer ranks (Spearman with the exact
    # counts 0.83 against 0.75; with Li/Si 0.62 against 0.56 for the counts, 0.64 against
    # 0.57 per single-scattering count)
    assert result.parameters.li_k_method == "fit"
    paper = analyse_eels(
        eels_dataset(sim.spectra, sim.energy, pixel_size_nm=5.0),
        EELSParameters(li_k_method="window"),
        progress=False,
    )
    fit = compare_with_truth(result, sim.truth)["li_k"]
    window = compare_with_truth(paper, sim.truth)["li_k"]
    assert fit["n_flagged"] < window["n_flagged"]
    rms = [c["li_k"]["error_vs_exact_truth"]["rms"] for c in (fit, window)]
    assert rms[0] < 0.9 * rms[1]
    for key, name in (
        ("li_k", "spearman_vs_exact_truth_all_material"),
        ("li_k", "spearman_vs_li_si_all_material_flagged_as_failures"),
        ("li_k_fraction", "spearman_vs_li_si_all_material_flagged_as_failures"),
    ):
        assert fit[key][name] > window[key][name] + 0.03, (key, name)
    # the paper's map keeps an honest 1σ too (measured spread 1.06)
    assert 0.9 <= window["li_k"]["normalised_error_vs_exact_truth"]["std"] <= 1.2


def test_li_k_map_follows_li_per_si(sim, result):
    # Spearman rank correlation with the truth Li/Si over ALL material pixels, flagged
    # ones counted as failures. Even the exact edge counts reach only 0.63 here (the edge
    # also sees the Li of Li2O/silicates at grain boundaries, and the counts scale with
    # the thickness), so the map is held to a share of that ceiling (measured: 0.62 for
    # the counts, 0.64 per single-scattering count against a ceiling of 0.63; 0.67 and
    # 0.77 over oxide-free pixels)
    cmp = compare_with_truth(result, sim.truth)["li_k"]
    for key in ("li_k", "li_k_fraction"):
        k = cmp[key]
        ceiling = k["spearman_of_the_exact_truth_vs_li_si"]
        rho = k["spearman_vs_li_si_all_material_flagged_as_failures"]
        assert rho >= 0.9 * ceiling, key
        assert k["spearman_vs_li_si_oxide_free_all"] >= 0.6, key
    assert cmp["li_k_fraction"]["spearman_vs_li_si_oxide_free_all"] >= 0.72


def test_edge_shape_follows_the_file_or_the_parameters(sim):
    # the beam energy and collection angle of the hydrogenic shape: as given, else from
    # the file's metadata (HyperSpy's keys), else 200 keV and 10 mrad
    ds = eels_dataset(sim.spectra[:2, :2], sim.energy)
    assert analyse_eels(ds, progress=False).parameters.beam_energy_kev == 200.0
    ds.set_meta("Acquisition_instrument.TEM.beam_energy", 300.0)
    ds.set_meta("Acquisition_instrument.TEM.Detector.EELS.collection_angle", 25.0)
    r = analyse_eels(ds, progress=False)
    assert (r.parameters.beam_energy_kev, r.parameters.collection_angle_mrad) == (300.0, 25.0)
    r = analyse_eels(ds, EELSParameters(beam_energy_kev=80.0), progress=False)
    assert (r.parameters.beam_energy_kev, r.parameters.collection_angle_mrad) == (80.0, 25.0)


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


# --------------------------------------------------------------------------------------
# The edge shape and the estimator on data from independent forward models
# --------------------------------------------------------------------------------------
def _exspy_k_edge(energy, element="Li", onset=LI_K_ONSET_EV, e0=200.0, beta_mrad=10.0):
    """exspy's hydrogenic K-shell cross-section (Egerton's SIGMAK3), barn/eV, 0 below."""
    pytest.importorskip("exspy", reason="exspy is not installed: no comparison")
    from exspy._misc.eels.hydrogenic_gos import HydrogenicGOS

    spline = HydrogenicGOS(f"{element}_K").integrateq(onset, beta_mrad * 1e-3, e0)
    return np.where(energy >= onset, spline(np.clip(energy, onset, None)), 0.0)


@pytest.mark.parametrize(
    ("element", "z", "onset", "e0", "beta"),
    [("Li", 3, 54.7, 200.0, 10.0), ("Li", 3, 54.7, 300.0, 20.0), ("Li", 3, 54.7, 80.0, 5.0)]
    + [("C", 6, 284.0, 200.0, 10.0)],
)
def test_hydrogenic_k_edge_is_exspys(element, z, onset, e0, beta):
    # the same model computed independently (Gauss-Legendre in ln q^2, exact kinematics)
    # against exspy's (quad, with a linear spline over its own energy grid): within 1 %
    # (measured 0.7 % for Li at 200 keV, mostly exspy's interpolation; 0.08 % for C)
    e = np.arange(onset, onset + 60.0, 0.5)
    ours = hydrogenic_k_edge(e, onset, z, e0, beta) * 1e24  # cm^2 -> barn
    assert np.max(np.abs(ours / _exspy_k_edge(e, element, onset, e0, beta) - 1.0)) < 0.01
    assert hydrogenic_k_edge(np.array([onset - 0.1]), onset, z)[0] == 0.0


def _ssd_with_edge(r, counts, e0=200.0, beta=10.0, n=1500, seed=0, edge=None):
    """Single-scattering-like spectra: a power law and exspy's Li-K edge with ``counts``
    in 58-62 eV (channel weights as integrate_window's), Poisson noise."""
    e = np.arange(20.0, 90.0, 0.2)
    shape = _exspy_k_edge(e, e0=e0, beta_mrad=beta) if edge is None else edge(e)
    shape = counts * shape / float(integrate_window(shape, e, 58.0, 62.0))
    lam = 400.0 * (e / 30.0) ** -r + shape
    y = np.random.default_rng(seed).poisson(np.tile(lam, (n, 1))).astype(float)
    return e, y, lam


@pytest.mark.parametrize(
    ("r", "counts", "e0", "beta"),
    [(3.0, 500.0, 200.0, 10.0), (4.0, 300.0, 200.0, 10.0)] + [(5.0, 800.0, 300.0, 20.0)],
)
def test_edge_fit_measures_an_independent_edge_with_an_honest_sigma(r, counts, e0, beta):
    # both estimators unbiased (mean of 1500 spectra within 1.5 %; measured 0.3 %), their
    # 1σ (residual-based: independent channels) honest (spread of the errors in units of
    # it near 1, measured 1.02-1.04), and the fit less noisy than the window (measured
    # 0.58-0.79 times its spread)
    e, y, _ = _ssd_with_edge(r, counts, e0, beta, seed=int(r))
    shape = hydrogenic_k_edge(e, LI_K_ONSET_EV, 3, e0, beta)
    spread = {}
    for method in ("fit", "window"):
        f = edge_fit(y, e, shape, edge_range=(58.0, 88.0), method=method)
        assert np.all(f.status == Status.OK), method
        assert f.exponent.mean() == pytest.approx(r, abs=0.05)
        assert f.signal.mean() == pytest.approx(counts, rel=0.015), method
        pull = (f.signal - counts) / f.error
        assert 0.9 <= pull.std() <= 1.12, method
        assert 0.62 <= np.mean(np.abs(pull) < 1) <= 0.74, method
        spread[method] = f.signal.std()
    assert spread["fit"] < 0.85 * spread["window"]


def test_edge_fit_window_method_is_the_papers_window():
    e, y, _ = _ssd_with_edge(4.0, 300.0, n=50, seed=7)
    shape = hydrogenic_k_edge(e, LI_K_ONSET_EV, 3)
    ours = edge_fit(y, e, shape, edge_range=(58.0, 88.0), method="window")
    paper = edge_window(y, e)
    np.testing.assert_allclose(ours.signal, paper.signal, rtol=1e-12)
    np.testing.assert_array_equal(ours.exponent, paper.exponent)


def test_edge_fit_is_blind_to_the_onset_broadening_but_not_to_near_edge_structure():
    # The fit sees the edge from 58 eV on: a 1 eV broadening of the onset at 54.7 eV
    # changes nothing (measured within 0.3 %). It measures the hydrogenic continuum, not
    # near-edge structure: a peak at 60 eV (1.5 eV sigma) adding +-30 % to the edge
    # there moves the window's counts fully but the fit's by -11 % and +18 % (the
    # window: exact). Both stay proportional to the Li where the near-edge shape is the
    # same over the scan (docs/eels.md).
    kernel = np.exp(-0.5 * (np.arange(-25, 26) * 0.2) ** 2)

    def broadened(e):
        return np.convolve(_exspy_k_edge(e), kernel / kernel.sum(), mode="same")

    e, y, _ = _ssd_with_edge(4.0, 300.0, n=1000, seed=3, edge=broadened)
    shape = hydrogenic_k_edge(e, LI_K_ONSET_EV, 3)
    f = edge_fit(y, e, shape, edge_range=(58.0, 88.0))
    assert f.signal.mean() == pytest.approx(300.0, rel=0.01)
    for amplitude, low, high in ((0.3, -0.15, -0.07), (-0.3, 0.13, 0.23)):

        def with_peak(e, a=amplitude):
            return _exspy_k_edge(e) * (1.0 + a * np.exp(-0.5 * ((e - 60.0) / 1.5) ** 2))

        e, _, lam = _ssd_with_edge(4.0, 500.0, n=1, edge=with_peak)
        fit = edge_fit(lam[None], e, shape, edge_range=(58.0, 88.0)).signal[0]
        window = edge_fit(lam[None], e, shape, edge_range=(58.0, 88.0), method="window")
        assert window.signal[0] == pytest.approx(500.0, rel=1e-3)
        assert low < fit / 500.0 - 1.0 < high, amplitude


def test_edge_fit_flags_what_it_cannot_fit():
    e = np.arange(20.0, 90.0, 0.2)
    shape = hydrogenic_k_edge(e, LI_K_ONSET_EV, 3)
    rising = 1e-2 * e**2.0  # r = -2: no pre-edge tail
    empty = np.zeros_like(e)
    f = edge_fit(np.stack([rising, empty]), e, shape, edge_range=(58.0, 88.0))
    assert list(f.status) == [Status.BACKGROUND_EXPONENT, Status.BACKGROUND_NO_COUNTS]
    assert np.all(np.isnan(f.signal)) and np.all(np.isnan(f.error))


def test_counting_variance_finds_gain_and_read_noise():
    # var = g counts + c from second differences: gain 2 counts per electron, read noise
    # 3 counts (c = 9) on a smooth decaying spectrum; the model unbiased (within 3 % on
    # average over 400 spectra, at every channel; measured 0.5 % with 2000), and 90 % of
    # the spectra's own models within 30 % (one spectrum's estimate is noisy: measured
    # 5th-95th percentile 0.78-1.24)
    rng = np.random.default_rng(5)
    e = np.linspace(1.0, 80.0, 400)
    electrons = 2000.0 * (e / 10.0) ** -2.0 + 20.0
    y = 2.0 * rng.poisson(np.tile(electrons, (400, 1))) + 3.0 * rng.standard_normal((400, 400))
    out = np.empty_like(y)
    _counting_variance(y, np.ones(400), 200, out)
    truth = 4.0 * electrons + 9.0
    ratio = out[:, 200:] / truth[None, 200:]
    assert ratio.mean(axis=0) == pytest.approx(1.0, abs=0.03)
    assert np.percentile(ratio.mean(axis=1), [5, 95]) == pytest.approx(1.0, abs=0.3)


def _plural_spectra(li_share, t, n, seed, counts=3e5, read_noise=3.0):
    """Low-loss spectra from a forward model written here: a Drude plasmon (15 eV, 4 eV
    wide, with the angular factor of 10 mrad at 200 keV) and exspy's Li-K edge as the
    single scattering, Poisson plural scattering FT(J) = FT(Z) exp(t/λ (FT(S1) - 1)) on a
    Gaussian zero-loss peak (0.9 eV FWHM), modelled to 400 eV and recorded from -5 to
    75 eV at 0.05 eV; Poisson and read noise. Returns the axis, noisy and noise-free
    spectra and the edge's counts in 58-62 eV of the single scattering I0 t/λ S1."""
    de = 0.05
    e = np.arange(-5.0, 400.0, de)
    loss = np.where(e > 0, e, 0.0)
    gamma = 1.0 + 200.0 / 511.0
    theta_e = loss / (511e3 * (1.0 - 1.0 / gamma**2) * gamma)  # E / (gamma m0 v^2)
    angular = np.log1p((0.010 / np.where(theta_e > 0, theta_e, 1.0)) ** 2)
    ep, width = 15.0, 4.0
    drude = loss * width * ep**2 / ((loss**2 - ep**2) ** 2 + (loss * width) ** 2) * angular
    edge = _exspy_k_edge(e)
    s1 = (1.0 - li_share) * drude / drude.sum() + li_share * edge / edge.sum()
    zlp = np.exp(-0.5 * (e / (0.9 / 2.3548)) ** 2)
    zlp /= zlp.sum()
    m = e.size
    n0 = int(round(5.0 / de))
    s1_lag = np.roll(np.pad(s1, (0, m)), -n0)  # 0 eV at index 0
    jf = np.fft.rfft(np.pad(zlp, (0, m))) * np.exp(t * (np.fft.rfft(s1_lag) - 1.0))
    spectrum = np.maximum(np.fft.irfft(jf, 2 * m)[:m] * counts, 0.0)
    keep = e < 75.0
    lam = spectrum[keep]
    truth = (
        counts
        * np.exp(-t)
        * t
        * li_share
        * float(integrate_window(edge[keep] / edge.sum(), e[keep], 58.0, 62.0))
    )
    rng = np.random.default_rng(seed)
    y = rng.poisson(np.tile(lam, (n, 1))) + read_noise * rng.standard_normal((n, lam.size))
    return e[keep], y.astype(np.float32), lam, truth


@pytest.mark.parametrize(("li_share", "t"), [(0.03, 0.7), (0.05, 1.0), (0.0, 0.8)])
def test_li_k_map_on_independent_plural_scattering(li_share, t):
    # Through the whole pipeline (alignment, Fourier-log, edge) on spectra that
    # anodemap.synth did not make. Noise-free, both methods within 4 % of the edge's
    # counts (measured fit +1.5 to +2.3 %, window +0.8 to +1.3 %: the Drude tail is not
    # quite a power law), and near 0 without Li (measured 10.5 and 5.7 counts). Noisy,
    # the fit is less noisy (measured 0.79-0.85 times the window's spread) and each
    # 1σ, propagated through Fourier-log, honest (spread of the errors in its units
    # measured 0.91-1.06).
    e, y, lam, truth = _plural_spectra(li_share, t, n=300, seed=int(100 * t))
    spread = {}
    for method in ("fit", "window"):
        p = EELSParameters(li_k_method=method)
        clean = analyse_eels(eels_dataset(lam[None].astype(np.float32), e), p, progress=False)
        exact = float(clean.maps["li_k"][0])
        if li_share:
            assert exact == pytest.approx(truth, rel=0.04), method
        else:
            assert abs(exact) < 20.0, method
        noisy = analyse_eels(eels_dataset(y, e), p, progress=False)
        ok = noisy.maps["li_k_status"] == Status.OK
        assert ok.mean() >= 0.9, method  # measured 0.94-1.0
        counts, sigma = noisy.maps["li_k"][ok], noisy.maps["li_k_err"][ok]
        pull = (counts - exact) / sigma
        assert 0.85 <= pull.std() <= 1.15, method
        spread[method] = counts.std()
    assert spread["fit"] < 0.9 * spread["window"]


def test_every_li_k_value_has_its_sigma(result):
    # the 1σ maps have a value exactly where the maps have one (status OK), positive
    ok = result.maps["li_k_status"] == Status.OK
    for key in ("li_k", "li_k_fraction"):
        err = result.maps[f"{key}_err"]
        assert np.array_equal(np.isfinite(err), ok), key
        assert np.array_equal(np.isfinite(result.maps[key]), ok), key
        assert np.all(err[ok] > 0), key


def test_window_method_needs_the_whole_window_in_the_edge_fit(sim):
    ds = eels_dataset(sim.spectra[:2, :2], sim.energy)
    p = EELSParameters(li_k_method="window", li_k_edge_fit=(60.0, 95.0))
    with pytest.raises(AnodemapInputError, match="li_k_edge_fit"):
        analyse_eels(ds, p, progress=False)
    # the fit may start inside the window (it extrapolates the edge's shape down to 58 eV)
    r = analyse_eels(ds, EELSParameters(li_k_edge_fit=(60.0, 95.0)), progress=False)
    assert np.all(r.maps["li_k_status"] == Status.OK)
