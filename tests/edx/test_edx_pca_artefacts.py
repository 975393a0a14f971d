"""EDX, issue 18 item 2 remainders: Poisson-weighted PCA denoising (against the truth and
HyperSpy's decomposition) and the detector's escape and sum peaks (against simulated
spectra that carry them). Every number is over all pixels; bounds sit a little beyond
what was measured (docs/edx.md gives the measurements)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.edx.denoise import poisson_pca
from anodemap.edx.model import build_model
from anodemap.edx.parameters import EDXParameters
from anodemap.edx.pipeline import analyse_edx
from anodemap.synth import make_phantom
from anodemap.synth.edx import edx_dataset, simulate_edx


@pytest.fixture(scope="module")
def sim64():
    return simulate_edx(make_phantom((64, 64), seed=3), seed=3)


def _cli_args(tmp_path, n):
    """Simulate an n x n EDX map; the start of an ``anodemap edx`` command on it."""
    main(["simulate", "edx", "-o", str(tmp_path / "sim"), "--shape", str(n), str(n)])
    return ["edx", str(tmp_path / "sim" / "edx.hspy"), "--no-figures", "--no-progress", "-q"]


def _rms(result, sim, line):
    return float(np.sqrt(np.mean((result.maps[line] - sim.truth[line]) ** 2)))


# ------------------------------------------------------------------ PCA
@pytest.mark.parametrize("method", ["fit", "windows"])
def test_pca_lowers_the_error_against_the_truth_and_keeps_the_totals(sim64, method):
    """Measured (seed 3, auto keeps 2 components): rms error over all 4096 pixels,
    fit Si Ka 8.71 -> 7.74, O Ka 3.84 -> 2.82 counts; totals unchanged to 1e-9."""
    ds = edx_dataset(sim64)
    raw = analyse_edx(ds, EDXParameters(method=method), progress=False)
    pca = analyse_edx(ds, EDXParameters(method=method, pca="auto"), progress=False)
    assert pca.pca["n_components"] == 2 and pca.pca["criterion"] == "auto"
    for line, gain in (("Si_Ka", 0.95), ("O_Ka", 0.88)):
        assert _rms(pca, sim64, line) < gain * _rms(raw, sim64, line), line
        # the totals: the first Keenan-Kotula component is the mean spectrum, kept
        # exactly, so the sum over pixels of the denoised spectra is that of the counts
        t_raw, t_pca = raw.maps[line].sum(), pca.maps[line].sum()
        sigma_total = np.sqrt(np.sum(raw.maps[f"{line}_uncertainty"] ** 2))
        assert abs(t_pca - t_raw) < 1e-6 * sigma_total
        # the 1σ after PCA (Poisson noise through the fixed projection): smaller, and
        # still near the errors (pulls measured -0.10 ± 1.04 Si, -0.26 ± 1.12 O)
        s = pca.maps[f"{line}_uncertainty"]
        assert np.median(s) < np.median(raw.maps[f"{line}_uncertainty"])
        pull = (pca.maps[line] - sim64.truth[line]) / s
        assert abs(pull.mean()) < 0.4 and 0.9 < pull.std() < 1.25, (line, pull.mean(), pull.std())
    summary = pca.summary()
    assert "not the Poisson 1σ" in summary["pca"]["uncertainty"]


def test_auto_finds_the_signal_components_above_the_poisson_noise():
    """Spectra made of exactly k shapes with Poisson noise: auto keeps k (k = 1, 2, 3),
    and the noise level lies within 10 % of the (k+1)-th singular value of the data."""
    rng = np.random.default_rng(7)
    shapes = np.abs(rng.normal(size=(3, 120))) + 0.05
    for k in (1, 2, 3):
        weights = rng.uniform(20.0, 200.0, (48, 48, k))
        data = rng.poisson(weights @ shapes[:k])
        pca = poisson_pca(data, np.arange(120), "auto")
        assert pca.n_components == k
        assert abs(pca.noise_level / pca.singular_values[k] - 1) < 0.1


def test_pca_equals_hyperspys_poisson_normalised_decomposition(sim64):
    """HyperSpy's decomposition(normalize_poissonian_noise=True) (SVD, no centring) on the
    channels the fit analyses: the same factors (|cos| > 1 - 1e-9), its explained
    variance = our singular values² / pixels, its reconstruction with k components equal
    to ours to 1e-9 of the counts (measured 2e-13)."""
    hs = pytest.importorskip("hyperspy.api")
    sub = sim64.spectra[:32, :32]
    model = build_model(sim64.energy_ev, ["Si_Ka", "O_Ka"], 130.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.signals.Signal1D(sub[..., model.used].astype(float))
        s.decomposition(normalize_poissonian_noise=True, algorithm="SVD", print_info=False)
    ours = poisson_pca(sub, model.used, 3)
    ev = np.asarray(s.learning_results.explained_variance[:5])
    np.testing.assert_allclose(ev, ours.singular_values[:5] ** 2 / 1024, rtol=1e-9)
    f = np.asarray(s.learning_results.factors[:, :3])
    g = (ours.components[:3] * ours.sqrt_b).T
    cos = np.abs(np.sum(f * g, axis=0)) / (np.linalg.norm(f, axis=0) * np.linalg.norm(g, axis=0))
    assert np.all(cos > 1 - 1e-9)
    for k in (1, 2, 3):
        ours.n_components = k
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = np.asarray(s.get_decomposition_model(k).data).reshape(-1, model.used.size)
        mine = ours.denoise(sub.reshape(-1, sub.shape[-1]))
        assert np.abs(theirs - mine).max() < 1e-9 * np.abs(theirs).max()


def test_pca_lazy_and_in_memory_agree(sim64):
    import dask.array as da

    ds = edx_dataset(sim64)
    a = analyse_edx(ds, EDXParameters(pca=3), progress=False)
    lazy = edx_dataset(sim64)
    lazy.data = da.from_array(sim64.spectra, chunks=(16, 64, 2048))
    b = analyse_edx(lazy, EDXParameters(pca=3), progress=False)
    np.testing.assert_allclose(a.maps["Si_Ka"], b.maps["Si_Ka"], rtol=1e-9)
    assert a.pca["singular_values"] == pytest.approx(b.pca["singular_values"], rel=1e-9)


def test_pca_options_on_the_command_line(tmp_path, capsys):
    args = _cli_args(tmp_path, 16)
    assert main([*args, "-o", str(tmp_path / "a"), "--pca", "auto"]) == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["pca"]["criterion"] == "auto" and s["pca"]["n_components"] >= 1
    assert main([*args, "-o", str(tmp_path / "b"), "--pca", "two"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--pca" in err[-1] and "Traceback" not in "\n".join(err)


# ------------------------------------------------------------------ escape and sum peaks
def _with_and_without(sim, lines, artefact, line, bound):
    """The map of ``line`` is > 10σ (of its total) high without ``artefact`` in the fit,
    within ``bound`` σ of the truth with it; the result with it."""
    ds = edx_dataset(sim)
    plain = analyse_edx(ds, EDXParameters(lines=lines), progress=False)
    fitted = analyse_edx(ds, EDXParameters(lines=lines, artefacts=(artefact,)), progress=False)
    truth = sim.truth[line].sum()
    sigma = np.sqrt(np.sum(fitted.maps[f"{line}_uncertainty"] ** 2))
    assert plain.maps[line].sum() - truth > 10 * sigma
    assert abs(fitted.maps[line].sum() - truth) < bound * sigma
    return fitted


def test_escape_peaks_of_cu_ka_on_fe_ka_are_fitted():
    """Cu Ka's Si escape peak (6.30 keV) lies on Fe Ka (6.40 keV). Simulated with 1 % of
    every line above the Si K edge escaping: unmodelled, Fe Ka is measured +8.9 % high
    (30 σ of its total); with --artefacts escape, +0.3 % (< 1σ), and the fitted escape
    fraction of Cu Ka is 0.0098 (truth 0.01)."""
    sim = simulate_edx(
        make_phantom((64, 64), seed=3),
        seed=3,
        extra_lines={"Cu_Ka": 400.0, "Fe_Ka": 30.0},
        escape_fraction=0.01,
    )
    esc = _with_and_without(sim, ("Si_Ka", "O_Ka", "Cu_Ka", "Fe_Ka"), "escape", "Fe_Ka", 2.0)
    pull = (esc.maps["Fe_Ka"] - sim.truth["Fe_Ka"]) / esc.maps["Fe_Ka_uncertainty"]
    assert abs(pull.mean()) < 0.15 and 0.9 < pull.std() < 1.15
    fraction = esc.artefacts["escape_Cu_Ka"]["fraction_of_parent"]
    assert fraction == pytest.approx(0.01, abs=0.001)
    assert esc.artefacts["escape_Cu_Ka"]["energies_keV"][0] == pytest.approx(6.301, abs=1e-3)
    for line in ("Si_Ka", "O_Ka", "Cu_Ka"):  # lines away from escape peaks: unchanged
        assert abs(esc.maps[line].sum() / sim.truth[line].sum() - 1) < 0.015


def test_sum_peaks_of_si_on_sn_la_are_fitted():
    """The Si Ka + Si Ka pile-up peak (3.48 keV) lies on Sn La (3.44 keV). Simulated with
    a pile-up of 2e-4 per count (1.6 sum counts per pixel on 3.9 Sn La counts):
    unmodelled, Sn La is measured +26 % high; with --artefacts sum, -2.3 % (1.5σ), and the
    Si+Si sum peak's counts within 10 % of the truth."""
    sim = simulate_edx(
        make_phantom((48, 48), seed=3), seed=3, pileup=2e-4, extra_lines={"Sn_La": 4.0}
    )
    fitted = _with_and_without(sim, ("Si_Ka", "O_Ka", "Sn_La"), "sum", "Sn_La", 3.0)
    got = fitted.artefacts["sum_Si_Ka+Si_Ka"]["mean_counts_per_pixel"]
    assert got == pytest.approx(float(sim.truth["sum_Si_Ka+Si_Ka"].mean()), rel=0.1)


def test_without_artefacts_the_simulator_is_unchanged():
    """The artefact options off by default: the same spectra as before they existed
    (the expected counts of the default model, rebuilt here independently)."""
    from anodemap.edx.lines import family_of
    from anodemap.edx.model import channel_edges, line_shape
    from anodemap.synth.edx import bremsstrahlung_shape

    ph = make_phantom((12, 12), seed=4)
    sim = simulate_edx(ph, seed=4)
    zero = simulate_edx(ph, seed=4, extra_lines={}, escape_fraction=0.0, pileup=0.0)
    assert np.array_equal(sim.spectra, zero.spectra)
    edges = channel_edges(sim.energy_ev)
    expected = (
        sim.truth["Si_Ka"][..., None] * line_shape(edges, family_of("Si_Ka"), 130.0)
        + sim.truth["O_Ka"][..., None] * line_shape(edges, family_of("O_Ka"), 130.0)
        + (sim.truth["bremsstrahlung"] / bremsstrahlung_shape(sim.energy_ev, 200.0).sum())[
            ..., None
        ]
        * bremsstrahlung_shape(sim.energy_ev, 200.0)
    )
    np.testing.assert_allclose(sim.expected, expected, rtol=1e-12)
    assert "escape_fraction" not in sim.truth


def test_artefact_options_are_checked(tmp_path, capsys):
    args = _cli_args(tmp_path, 8)
    assert main([*args, "-o", str(tmp_path / "a"), "--artefacts", "escape,sum"]) == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["parameters"]["artefacts"] == ["escape", "sum"]
    # Si Ka and O Ka lie below the Si K edge: no escape peak, three sum peaks
    assert sorted(s["artefacts"]) == ["sum_O_Ka+O_Ka", "sum_Si_Ka+O_Ka", "sum_Si_Ka+Si_Ka"]
    assert main([*args, "-o", str(tmp_path / "b"), "--artefacts", "ghost"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--artefacts" in err[-1] and "Traceback" not in "\n".join(err)
