"""EDX maps (issue 18, item 2): the line table, the linear model, truth recovered on the
simulated electrode and on spectra of an independent forward model, the command."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from anodemap.analysis import Context, analyses_of, get_analysis
from anodemap.cli import main
from anodemap.edx.fit import FitOperator, fit_kernel
from anodemap.edx.lines import all_lines, family_of, resolve_lines, xray_line
from anodemap.edx.model import build_model
from anodemap.edx.parameters import EDXParameters
from anodemap.edx.pipeline import analyse_edx
from anodemap.edx.resolution import MN_KA_EV, fwhm_ev
from anodemap.edx.windows import line_windows
from anodemap.errors import AnodemapInputError
from anodemap.status import Status
from anodemap.synth import make_phantom
from anodemap.synth.edx import edx_dataset, simulate_edx


@pytest.fixture(scope="module")
def sim64():
    return simulate_edx(make_phantom((64, 64), seed=3), seed=3)


@pytest.fixture(scope="module")
def fitted(sim64):
    return analyse_edx(edx_dataset(sim64), progress=False)


# ------------------------------------------------------------------ line table
def test_the_table_has_the_k_lines_of_li_to_zr_and_the_lines_of_the_real_files():
    k = {ln.z for ln in all_lines() if ln.line == "Ka"}
    assert set(range(3, 41)) <= k
    for name in (
        "Fe_Ka",
        "Fe_Kb",
        "Pt_La",
        "Pt_Lb1",
        "Pt_Ma",
        "Cu_Ka",
        "Cu_La",
        "Ga_Ka",
        "Ga_La",
        "Au_La",
        "Au_Ma",
        "Pd_La",
        "Ti_Ka",
        "Nb_Ka",
        "Nb_La",
    ):
        assert xray_line(name).energy_ev > 0
    # energies (xraylib; Deslattes et al. 2003) against well-known values, in eV
    for name, e in {
        "Si_Ka": 1739.8,
        "O_Ka": 524.9,
        "Fe_Ka": 6399.5,
        "Cu_Ka": 8041.0,
        "Pt_La": 9434.5,
        "Au_Ma": 2121.4,
    }.items():
        assert abs(xray_line(name).energy_ev - e) < 1.0, name
    assert [ln.name for ln in family_of("Si_Kb")] == ["Si_Ka", "Si_Kb"]
    assert 0.02 < xray_line("Si_Kb").weight < 0.04  # Si Kb/Ka (xraylib's radiative rates)


def test_lines_are_checked_and_elements_give_their_main_line():
    assert resolve_lines(["Fe", "Pt", "O_Ka"], (150.0, 20000.0)) == ["Fe_Ka", "Pt_La", "O_Ka"]
    assert resolve_lines(["Pt"], (150.0, 5000.0)) == ["Pt_Ma"]
    with pytest.raises(AnodemapInputError, match="lines of Si are Si_Ka, Si_Kb"):
        xray_line("Si_La")
    with pytest.raises(AnodemapInputError, match="outside the spectrum's energy range"):
        resolve_lines(["Fe_Ka"], (150.0, 4000.0))
    with pytest.raises(AnodemapInputError, match="did you mean"):
        xray_line("Sx_Ka")


def test_the_resolution_relation():
    assert fwhm_ev(MN_KA_EV, 130.0) == pytest.approx(130.0)
    # Fiori & Newbury: FWHM^2 grows by 2.5 eV per eV of energy
    assert fwhm_ev(10000.0, 130.0) ** 2 - fwhm_ev(2000.0, 130.0) ** 2 == pytest.approx(20000.0)
    # below the Fano limit at Mn Ka: the Fano limit, not NaN
    assert fwhm_ev(500.0, 118.0) == pytest.approx(np.sqrt(2.5 * 500.0))


def test_a_family_shape_has_the_area_of_its_weights():
    e = np.arange(0.0, 20000.0, 10.0)
    m = build_model(e, ["Pt_La"], 130.0, background="polynomial", order=1)
    weights = sum(ln.weight for ln in m.families[0].lines)
    assert m.design[:, 0].sum() == pytest.approx(weights, rel=1e-6)
    with pytest.raises(AnodemapInputError, match="--background"):
        build_model(e, ["Pt_La"], 130.0, background="spline")


# ------------------------------------------------------------------ truth recovery
@pytest.mark.parametrize("line, total_tol", [("Si_Ka", 0.005), ("O_Ka", 0.02)])
def test_the_fit_recovers_the_simulated_line_counts_in_every_pixel(sim64, fitted, line, total_tol):
    """All 4096 pixels (pores, c-Si, Li_xSi, oxide boundaries): every one analysed, none
    further than 5σ from its truth, the pulls (value - truth)/σ of mean 0 and spread 1
    (the 1σ is the scatter), the map's total within 0.5 % (Si Ka, 268 000 counts) and
    2 % (O Ka, 21 000). Measured (seed 3): pulls -0.06 ± 1.02 (Si), -0.05 ± 0.98 (O),
    largest |pull| 4.1; totals -0.04 % and +0.7 %."""
    status = fitted.maps["status"]
    assert (status == Status.OK).all()
    v, s, t = fitted.maps[line], fitted.maps[f"{line}_uncertainty"], sim64.truth[line]
    pull = (v - t) / s
    assert np.all(np.abs(pull) < 5.0)
    assert abs(pull.mean()) < 0.15
    assert 0.9 < pull.std() < 1.1
    assert abs(v.sum() - t.sum()) / t.sum() < total_tol


def test_o_is_mapped_at_the_oxide_boundaries(sim64, fitted):
    """The paper's picture (Fig. 3b): O where the phantom has its oxide, not in c-Si."""
    lab = sim64.truth["labels"]
    o = fitted.maps["O_Ka"]
    assert np.median(o[lab == 4]) > 5 * max(np.median(o[lab == 1]), 0.5)


def test_windows_give_their_expectation_with_a_consistent_sigma(sim64):
    """Windows are linear in the counts: over all pixels their values scatter around the
    windows of the noise-free spectra with the 1σ they report."""
    r = analyse_edx(edx_dataset(sim64), EDXParameters(method="windows"), progress=False)
    w = line_windows(sim64.energy_ev, r.lines, 130.0)
    expected = sim64.expected @ w.matrix
    for j, line in enumerate(r.lines):
        pull = (r.maps[line] - expected[..., j]) / r.maps[f"{line}_uncertainty"]
        assert abs(pull.mean()) < 0.1 and 0.9 < pull.std() < 1.1, line
    # what windows measure: 98 % of a Gaussian (±1 FWHM), Kb and background errors aside
    ratio = r.maps["Si_Ka"].sum() / sim64.truth["Si_Ka"].sum()
    assert 0.95 < ratio < 1.0


def _exspy_templates(energy_kev, lines):
    """Counts per channel for unit area of each line's family, from exspy's own model
    (its line energies and weights, HyperSpy's Gaussians sampled at channel centres)."""
    hs = pytest.importorskip("hyperspy.api")
    pytest.importorskip("exspy")
    import logging

    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    logging.getLogger("exspy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.signals.Signal1D(np.zeros(energy_kev.size))
        s.set_signal_type("EDS_TEM")
        ax = s.axes_manager[-1]
        ax.scale, ax.offset, ax.units = (
            float(energy_kev[1] - energy_kev[0]),
            float(energy_kev[0]),
            "keV",
        )
        s.set_microscope_parameters(beam_energy=200.0, energy_resolution_MnKa=130.0)
        s.add_lines(lines)
        m = s.create_model(auto_background=False)
        out = {}
        for line in lines:
            for c in m:
                c.A.value = 1.0 if c.name == line else 0.0
            m[line].A.value = 1.0  # its family's other lines are twinned to it
            m.store_current_values()
            out[line] = np.asarray(m.as_signal().data, dtype=float)
    return out


def test_an_independent_forward_model_is_recovered():
    """Spectra built from exspy's model components (exspy's energies and line weights,
    sampled Gaussians) on a power-law continuum, which no polynomial of the fit is, with
    Poisson noise, over 40 x 40 pixels of varying Si, O and Fe: the default fit finds
    each pixel's line areas, pulls of spread 1 and totals within 2 % (measured: Si
    -0.08 %, O +1.2 % (about 2σ of its 32 000 counts), Fe +0.1 %; pulls -0.04 ± 1.00,
    -0.01 ± 1.03, -0.12 ± 1.04)."""
    e_kev = np.arange(0.0, 12.0, 0.01)
    lines = ["Si_Ka", "O_Ka", "Fe_Ka"]
    templates = _exspy_templates(e_kev, lines)
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[:40, :40]
    areas = {
        "Si_Ka": 150.0 + 100.0 * np.sin(xx / 6.0) ** 2,
        "O_Ka": 40.0 * (yy / 39.0),
        "Fe_Ka": 60.0 * ((xx + yy) % 9 == 0) + 5.0,
    }
    continuum = (
        2.0 * np.clip(e_kev, 0.05, None) ** -1.3 * np.exp(-0.05 / np.clip(e_kev, 0.01, None))
    )
    expected = sum(areas[n][..., None] * templates[n] for n in lines) + continuum
    spectra = rng.poisson(expected)
    from anodemap.io import Axis, Dataset

    ds = Dataset(
        spectra,
        [
            Axis("y", 40, 2.0, 0, "nm"),
            Axis("x", 40, 2.0, 0, "nm"),
            Axis("Energy", e_kev.size, 0.01, 0.0, "keV", navigate=False),
        ],
    )
    ds.set_meta("Signal.signal_type", "EDS_TEM")
    r = analyse_edx(ds, EDXParameters(lines=tuple(lines)), progress=False)
    for line in lines:
        v, s = r.maps[line], r.maps[f"{line}_uncertainty"]
        pull = (v - areas[line]) / s
        assert np.all(np.abs(pull) < 5.0), line
        assert abs(pull.mean()) < 0.2 and 0.85 < pull.std() < 1.15, (line, pull.mean(), pull.std())
        assert abs(v.sum() / areas[line].sum() - 1.0) < 0.02, line


def test_one_operator_for_all_pixels_matches_a_per_pixel_solve(sim64):
    """The same fixed weights, solved pixel by pixel with numpy's lstsq: the same numbers."""
    e = sim64.energy_ev
    m = build_model(e, ["Si_Ka", "O_Ka"], 130.0)
    y = sim64.spectra.reshape(-1, e.size)[:50].astype(float)
    op = FitOperator.from_mean(m, sim64.spectra.reshape(-1, e.size).mean(0))
    out = fit_kernel(y, used=m.used, h=op.h, design=m.design, h2=op.h2, shape=op.shape)
    w = 1.0 / np.sqrt(op.variance)
    for i in range(y.shape[0]):
        x, *_ = np.linalg.lstsq(m.design * w[:, None], y[i, m.used] * w, rcond=None)
        np.testing.assert_allclose(out["amplitude"][i], x, rtol=1e-8, atol=1e-8)


# ------------------------------------------------------------------ modes and options
def test_lazy_binned_and_in_memory_agree(sim64):
    ds = edx_dataset(sim64)
    quiet = dict(progress=False)
    ref = analyse_edx(ds, **quiet)
    import dask.array as da

    lazy = dataclasses.replace(ds, data=da.from_array(ds.data, chunks=(16, 64, -1)))
    r = analyse_edx(lazy, **quiet)
    for k in ("Si_Ka", "O_Ka_uncertainty", "status"):
        np.testing.assert_allclose(r.maps[k], ref.maps[k], rtol=1e-10)
    binned = analyse_edx(ds, EDXParameters(bin=2), **quiet)
    assert binned.maps["Si_Ka"].shape == (32, 32)
    assert binned.nav_axes[0].scale == pytest.approx(10.0)
    # summed pixels: the binned map's total is the map's total (a linear estimator)
    assert binned.maps["Si_Ka"].sum() == pytest.approx(ref.maps["Si_Ka"].sum(), rel=0.01)


def test_cliff_lorimer_fractions_sum_to_one(sim64):
    p = EDXParameters(k_factors={"Si_Ka": 1.0, "O_Ka": 1.9})
    r = analyse_edx(edx_dataset(sim64), p, progress=False)
    total = r.maps["Si_atomic_percent"] + r.maps["O_atomic_percent"]
    np.testing.assert_allclose(total, 100.0)
    assert np.all(r.maps["O_atomic_percent_uncertainty"] > 0)
    with pytest.raises(AnodemapInputError, match="add Fe_Ka to --lines"):
        analyse_edx(edx_dataset(sim64), EDXParameters(k_factors={"Fe_Ka": 1.0}), progress=False)


def test_flagged_pixels_have_a_status_and_no_value():
    data = np.zeros((2, 3, 400))
    data[0, 0, 170:180] = 5.0
    data[0, 1, 175] = -1.0  # inside the Si Ka segment (outside, a channel is not read)
    data[0, 2, 175] = np.nan
    from anodemap.io import Axis, Dataset

    ds = Dataset(data, [Axis("y", 2), Axis("x", 3), Axis("E", 400, 10.0, 0.0, "eV", False)])
    r = analyse_edx(ds, EDXParameters(lines=("Si_Ka",), file_lines=False), progress=False)
    st = r.maps["status"]
    assert st[0, 1] == Status.INVALID_INPUT and st[0, 2] == Status.INVALID_INPUT
    assert st[1, 0] == Status.NO_SIGNAL and st[0, 0] == Status.OK
    assert np.isnan(r.maps["Si_Ka"][st != Status.OK]).all()
    assert np.isfinite(r.maps["Si_Ka"][0, 0])


# ------------------------------------------------------------------ the command
def test_simulate_and_map_with_the_truth(tmp_path, capsys):
    assert main(["simulate", "edx", "-o", str(tmp_path / "sim"), "--shape", "24", "24"]) == 0
    analysis = get_analysis("edx")
    quiet = Context(progress=False, figures=True, log=lambda _: None)
    out = analysis.run(
        tmp_path / "sim" / "edx.hspy",
        tmp_path / "out",
        None,
        quiet,
        truth=tmp_path / "sim" / "truth",
    )
    for name in (
        "Si_Ka.hspy",
        "O_Ka.hspy",
        "Si_Ka_uncertainty.hspy",
        "status.hspy",
        "overview.png",
        "mean_spectrum.png",
        "Si_Ka.png",
        "summary.json",
        "truth_comparison.json",
    ):
        assert (tmp_path / "out" / name).exists(), name
    for line in ("Si_Ka", "O_Ka"):
        c = out.truth["lines"][line]
        assert abs(c["pull_mean"]) < 0.3 and 0.8 < c["pull_std"] < 1.2
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["lines"] == ["Si_Ka", "O_Ka"] and summary["fwhm_mn_ka_source"] == "file"
    from anodemap.io import load

    m = load(tmp_path / "out" / "Si_Ka.hspy")
    assert [a.units for a in m.axes] == ["nm", "nm"] and m.axes[0].scale == 5.0


def test_the_command_line_options(tmp_path, capsys):
    main(["simulate", "edx", "-o", str(tmp_path / "sim"), "--shape", "16", "16"])
    src = str(tmp_path / "sim" / "edx.hspy")
    code = main(
        [
            "edx",
            src,
            "-o",
            str(tmp_path / "w"),
            "--method",
            "windows",
            "--lines",
            "Si",
            "--no-file-lines",
            "--bin",
            "2",
            "--no-figures",
            "--no-progress",
            "--k-factors",
            "Si_Ka=1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert s["lines"] == ["Si_Ka"] and s["method"] == "windows" and s["scan_shape"] == [8, 8]
    code = main(["edx", src, "-o", str(tmp_path / "bad"), "--lines", "Si_Kc", "--no-figures"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("anodemap: error:") and "Si_Kc" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_a_study_reads_edx_datasets():
    assert analyses_of("edx") == ("edx",)
    sim = simulate_edx(make_phantom((8, 8), seed=0), seed=0)
    assert get_analysis("edx").accepts(edx_dataset(sim))
    assert not get_analysis("eels").accepts(edx_dataset(sim))
