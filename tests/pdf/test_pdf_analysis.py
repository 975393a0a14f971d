"""``anodemap pdf`` (issue 17): the command end to end, its regions, its errors, the study.

Two kinds of data:

* a small scan of the simulated electrode (``anodemap simulate diffraction``), analysed by
  ``anodemap diffraction`` first: the PDF of every phase class and of the regions of that
  result, the files and keys the issue asks for;
* a scan whose patterns are Debye sums over atom positions (``tests/debye_patterns.py``: an
  independent forward model) drawn on a 256-pixel detector with a camera length 3 % off:
  three regions of 24 patterns, a 12 Å diamond-Si cluster, the same cluster scaled by
  1.0128 (r1 +0.030 Å) and a 20 Å cluster, whose Si rings correct the s-scale; every ring
  drawn as an ellipse of axis ratio 1.02 (measured and undone). Measured:
  factor 0.9715 (truth 1/1.03 = 0.9709); region 1 r1 2.349 Å [2.343, 2.355], r2 3.836 Å
  [3.827, 3.846] (truth 2.352, 3.840); regions 1 and 2 differ in r1, regions 1 and 3 do
  not.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from anodemap.cli import _simulate_diffraction, main
from anodemap.io import load, save
from debye_patterns import R1, R2, debye, debye_scan, diamond_cluster

_FAST = ["--step", "5", "--refine-step", "0", "--no-progress", "-q"]


def _run(*argv: object) -> int:
    return main([str(a) for a in argv])


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


# ------------------------------------------------------------------ simulated electrode
@pytest.fixture(scope="module")
def electrode(tmp_path_factory) -> dict[str, Path]:
    """A 24 x 24 simulated scan, its diffraction result with two regions (halves)."""
    root = tmp_path_factory.mktemp("pdf_sim")
    sim = _simulate_diffraction(root / "sim", (24, 24), 2, 5.0)
    regions = np.zeros((24, 24), np.int32)
    regions[:, :12], regions[:, 12:] = 1, 2
    np.save(root / "halves.npy", regions)
    diff = root / "diffraction"
    assert (
        _run("diffraction", sim["zspy"], "-o", diff, "--regions", root / "halves.npy", *_FAST) == 0
    )
    out = root / "pdf"
    assert _run("pdf", sim["zspy"], "-o", out, "--diffraction", diff, "--no-progress", "-q") == 0
    return {"root": root, "zspy": sim["zspy"], "diffraction": diff, "pdf": out}


def test_pdf_of_every_phase_class_and_region(electrode):
    s = _summary(electrode["pdf"])
    phase = np.asarray(load(electrode["diffraction"] / "phase.hspy").data)
    labels = {int(k): v for k, v in _summary(electrode["diffraction"])["phase_labels"].items()}
    material = ~np.isin(phase, [k for k, v in labels.items() if v in ("vacuum", "not analysed")])
    halves = np.zeros(phase.shape, int)
    halves[:, :12], halves[:, 12:] = 1, 2
    expected = {}
    for k, name in labels.items():
        if name not in ("vacuum", "not analysed"):
            expected[name] = int(np.sum(material & (phase == k)))
    expected |= {f"region {v}": int(np.sum(material & (halves == v))) for v in (1, 2)}
    analysed = {k: v for k, v in expected.items() if v >= 20}
    assert set(s["regions"]) == set(analysed)  # the regions of the diffraction result too
    assert set(s["not_analysed"]) == set(expected) - set(analysed)
    assert "vacuum" not in s["regions"] and np.any(phase == -1)  # the scan has pores
    for name, reg in s["regions"].items():
        assert reg["n_patterns"] == analysed[name]
        peaks = reg["peaks"]
        assert len(peaks) == 3
        assert [p["r_angstrom"] for p in peaks] == sorted(p["r_angstrom"] for p in peaks)
        for p in peaks:
            lo, hi = p["ci95_angstrom"]
            assert lo <= p["r_angstrom"] <= hi and hi - lo < 0.5
            assert p["height"] > 0 and p["fwhm_angstrom"] > 0.2  # wider than resolution
        assert set(reg["ratios"]) == {"r2/r1", "r3/r1"}
    # the simulated amorphous Li_xSi: first shell of Si-Si and Li-Si bonds
    assert 2.2 < s["regions"]["amorphous"]["peaks"][0]["r_angstrom"] < 2.6
    # every pair compared, each peak's difference stated
    n = len(s["regions"])
    assert len(s["comparisons"]) == n * (n - 1) // 2
    for c in s["comparisons"]:
        assert c["statement"] and all("differs" in p for p in c["peaks"])
    # the choices are recorded; the s range comes from the data
    lo, hi = s["s_range_inv_angstrom"]
    assert s["s_range_from"].startswith("from the data") and 0.1 < lo < 0.4 and 1.1 < hi < 1.4
    assert s["s_scale_correction"]["factor"] == 1.0  # 64-pixel patterns: not applied
    assert s["s_scale_correction"]["how"]
    assert s["damping"] == "lorch" and s["composition"] == {"Si": 1.0}


def test_files_of_the_command(electrode):
    out = electrode["pdf"]
    s = _summary(out)
    for name in ("peaks.csv", "comparisons.csv", "pdf.png", "reduced_intensity.png"):
        assert (out / name).is_file(), name
    ds = load(out / "regions" / "amorphous" / "pdf.hspy")
    r_axis = ds.sig_axes[0]
    assert r_axis.units == "Å" and r_axis.scale == pytest.approx(0.01)
    table = np.loadtxt(out / "regions" / "amorphous" / "pdf.csv", delimiter=",", skiprows=2)
    np.testing.assert_allclose(table[:, 1], np.asarray(ds.data)[0], rtol=1e-6, atol=1e-9)
    assert np.all(table[:, 2] <= table[:, 3])
    rows = (out / "peaks.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * len(s["regions"])
    assert set(s["files"]) >= {"regions", "peaks.csv", "pdf.png"}
    # with the HyperSpy users open: a Signal1D with the r axis in Å
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs

        sig = hs.load(out / "regions" / "amorphous" / "pdf.hspy")
    assert sig.axes_manager.signal_axes[0].units == "Å"


def test_the_beam_centres_of_the_diffraction_result_are_used(electrode, tmp_path):
    """The PDF takes the direct-beam centres from the diffraction result
    (``beam_centre.hspy``): those the diffraction found (the function a result without
    the file has the PDF call again), so either way the PDFs are the same, bit for bit."""
    from anodemap.diffraction.virtual import find_direct_beam

    diff = electrode["diffraction"]
    centres = np.asarray(load(diff / "beam_centre.hspy").data)
    data = np.asarray(load(electrode["zspy"]).data)
    assert centres.shape == (24, 24, 2)
    assert centres.tobytes() == np.asarray(find_direct_beam(data).filled()).tobytes()
    assert "beam_centre.hspy" in _summary(diff)["files"]
    older = tmp_path / "diffraction"
    shutil.copytree(diff, older)
    (older / "beam_centre.hspy").unlink()
    out = tmp_path / "pdf"
    argv = ["pdf", electrode["zspy"], "-o", out, "--diffraction", older]
    assert _run(*argv, "--no-figures", "--no-progress", "-q") == 0
    folders = sorted(p.name for p in (electrode["pdf"] / "regions").iterdir())
    assert folders == sorted(p.name for p in (out / "regions").iterdir()) and folders
    for region in folders:
        a, b = (
            np.asarray(load(folder / "regions" / region / "pdf.hspy").data)
            for folder in (electrode["pdf"], out)
        )
        assert a.tobytes() == b.tobytes(), region


def test_user_regions_replace_those_of_the_result(electrode, tmp_path):
    quarters = np.zeros((24, 24), np.int32)
    quarters[:12, :12] = 7
    np.save(tmp_path / "q.npy", quarters)
    out = tmp_path / "pdf"
    argv = ["pdf", electrode["zspy"], "-o", out, "--diffraction", electrode["diffraction"]]
    assert _run(*argv, "--regions", tmp_path / "q.npy", "--no-figures", "-q") == 0
    s = _summary(out)
    names = set(s["regions"]) | set(s["not_analysed"])
    assert "region 7" in names and "region 1" not in names
    assert not (out / "pdf.png").exists()


def test_a_missing_diffraction_result_is_one_clear_error(electrode, tmp_path, capsys):
    zspy = electrode["zspy"]
    out = tmp_path / "out"
    assert _run("pdf", zspy, "-o", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("anodemap: error: ") and "--diffraction" in err[0]
    assert "anodemap diffraction" in err[0]
    assert not out.exists()
    # a folder without a complete result
    (tmp_path / "empty").mkdir()
    assert _run("pdf", zspy, "-o", out, "--diffraction", tmp_path / "empty") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--diffraction" in line and "summary.json" in line
    # the result of another scan
    other = _simulate_diffraction(tmp_path / "other", (12, 12), 5, 5.0)["zspy"]
    assert _run("pdf", other, "-o", out, "--diffraction", electrode["diffraction"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--diffraction" in line and "not of" in line


# ------------------------------------------------------------------ Debye scattering
@pytest.fixture(scope="module")
def debye_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pdf_debye")
    s = np.arange(0.0, 3.0, 0.001)
    small = diamond_cluster(12.0)
    models = [debye(small, s, 0.05), debye(small * 1.0128, s, 0.05)]
    models.append(debye(diamond_cluster(20.0), s, 0.05))
    labels = np.zeros((8, 9), int)
    labels[:, 3:6], labels[:, 6:] = 1, 2
    ds, _ = debye_scan(
        models, s, labels, size=256, scale=0.016, calibration_error=1.03, seed=1, ellipse=(1.02, 30)
    )
    save(ds, root / "debye.hspy")
    np.save(root / "regions.npy", labels + 1)
    diff, out = root / "diffraction", root / "pdf"
    assert (
        _run(
            "diffraction", root / "debye.hspy", "-o", diff, "--phases", "Si", "--no-figures", *_FAST
        )
        == 0
    )
    argv = ["pdf", root / "debye.hspy", "-o", out, "--diffraction", diff, "--regions"]
    argv += [root / "regions.npy", "--s-reference", "region 3", "--no-progress", "-q"]
    assert _run(*argv) == 0
    return {"summary": _summary(out), "out": out}


def test_debye_scan_ring_ellipse_measured_and_undone(debye_run):
    ring = debye_run["summary"]["ring_geometry"]
    assert ring["applied"], ring["how"]
    assert ring["axis_ratio"] == pytest.approx(1.02, abs=0.003)
    assert ring["major_axis_angle_deg"] == pytest.approx(30.0, abs=3.0)
    # the direct beam is where the rings are centred in these patterns
    assert np.hypot(*ring["centre_offset_px"]) < 0.3


def test_debye_scan_distances_with_the_s_scale_corrected(debye_run):
    s = debye_run["summary"]
    scaling = s["s_scale_correction"]
    assert scaling["applied"] and scaling["factor"] == pytest.approx(1 / 1.03, abs=0.002)
    reg = s["regions"]
    assert reg["region 1"]["n_patterns"] == reg["region 2"]["n_patterns"] == 24
    p1, p2, _ = reg["region 1"]["peaks"]
    assert abs(p1["r_angstrom"] - R1) <= 0.02 and abs(p2["r_angstrom"] - R2) <= 0.03
    assert p1["ci95_angstrom"][0] <= R1 <= p1["ci95_angstrom"][1]
    assert p2["ci95_angstrom"][0] <= R2 <= p2["ci95_angstrom"][1]
    q1 = reg["region 2"]["peaks"][0]  # the scaled cluster: r1 2.382 Å
    assert q1["ci95_angstrom"][0] <= R1 * 1.0128 <= q1["ci95_angstrom"][1]
    pairs = {(c["a"], c["b"]): {p["peak"]: p for p in c["peaks"]} for c in s["comparisons"]}
    d12 = pairs[("region 1", "region 2")]["r1"]
    assert d12["differs"] and d12["dr_angstrom"] == pytest.approx(-0.030, abs=0.006)
    assert not pairs[("region 1", "region 3")]["r1"]["differs"]


def _ring_height(folder: Path, lo: float, hi: float) -> float:
    a = np.loadtxt(folder / "regions/region_3/reduced_intensity.csv", delimiter=",", skiprows=2)
    s, phi = a[:, 0], a[:, 3]
    return float(phi[(s > lo) & (s < hi)].max())


def test_without_the_ring_correction_the_rings_are_smeared(debye_run, tmp_path):
    """The 2 % ellipse smears each ring over a range of s growing with s: without its
    correction the 422 ring of the 20 Å cluster (s = 0.902 1/Å) stands 9 % lower in φ(s)
    (measured 1.27 against 1.40). G(r)'s first peaks, of FWHM 0.34 Å at this s range,
    barely feel it (r1 within 0.001 Å)."""
    out = debye_run["out"]
    source = Path(_summary(out)["input"]["path"])
    again = tmp_path / "pdf"
    argv = ["pdf", source, "-o", again, "--diffraction", source.parent / "diffraction"]
    argv += ["--regions", source.parent / "regions.npy", "--s-reference", "region 3", "-q"]
    assert _run(*argv, "--no-figures", "--no-ring-correction") == 0
    s = _summary(again)
    assert not s["ring_geometry"]["applied"]
    assert _ring_height(out, 0.88, 0.95) > 1.05 * _ring_height(again, 0.88, 0.95)
    r1 = [x["regions"]["region 1"]["peaks"][0]["r_angstrom"] for x in (s, debye_run["summary"])]
    assert r1[0] == pytest.approx(r1[1], abs=0.005)


def test_without_the_s_reference_the_camera_length_error_stays(debye_run, tmp_path):
    """The check can fail: with no reference the distances come out 3 % short."""
    out = debye_run["out"]
    source = Path(_summary(out)["input"]["path"])
    again = tmp_path / "pdf"
    argv = ["pdf", source, "-o", again, "--diffraction", source.parent / "diffraction"]
    argv += ["--regions", source.parent / "regions.npy", "--s-reference", "none", "-q"]
    assert _run(*argv, "--no-figures") == 0
    s = _summary(again)
    assert s["s_scale_correction"]["factor"] == 1.0
    r1 = s["regions"]["region 1"]["peaks"][0]["r_angstrom"]
    assert r1 == pytest.approx(R1 / 1.03, abs=0.02) and abs(r1 - R1) > 0.05


def test_agrees_with_pyxem_on_the_same_averaged_pattern(debye_run):
    """pyxem's ReducedIntensityGenerator1D and PDFGenerator1D (deprecated since 0.15, in
    0.21) on region 1's mean I(s): the same N⟨f²⟩ + C fit and, without damping, the same
    G(r) up to pyxem's normalisation (its φ is 2π ours) and its rectangle rule."""
    pytest.importorskip("pyxem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyxem as pxm
        from pyxem.generators.pdf_generator1d import PDFGenerator1D
        from pyxem.generators.red_intensity_generator1d import ReducedIntensityGenerator1D

    from anodemap.pdf import find_peaks, pair_distribution

    s_sum = debye_run["summary"]
    table = np.loadtxt(
        debye_run["out"] / "regions" / "region_1" / "reduced_intensity.csv",
        delimiter=",",
        skiprows=2,
    )
    s, intensity, fitted, phi = table.T
    width = s_sum["s_bin_width_inv_angstrom"]
    first = int(round(s[0] / width))
    padded = np.concatenate([np.zeros(first), intensity])  # pyxem's s starts at 0
    lo, hi = s_sum["s_range_inv_angstrom"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sig = pxm.signals.ElectronDiffraction1D(padded.reshape(1, 1, -1))
        sig.axes_manager.signal_axes[0].scale = width
        gen = ReducedIntensityGenerator1D(sig)
        gen.set_s_cutoff(lo + 0.5 * (hi - lo), hi)
        gen.fit_atomic_scattering(["Si"], [1.0], plot_fit=False, show_progressbar=False)
        fit_pyxem = np.asarray(gen.background_fit.data).ravel()[first:]
        ri = gen.get_reduced_intensity()
        pdf = PDFGenerator1D(ri).get_pdf(s_min=lo, s_max=hi + width, r_max=8.0, r_increment=0.01)
    np.testing.assert_allclose(fit_pyxem, fitted, rtol=2e-3)
    r = np.arange(0.0, 8.0, 0.01)
    g_pyxem = np.asarray(pdf.data).ravel()[: r.size] / (2 * np.pi)
    g = pair_distribution(s, phi, r, damping=None)
    assert np.max(np.abs(g_pyxem - g)) < 0.05 * np.max(np.abs(g))
    ours = [p.r_angstrom for p in find_peaks(r, g, n=2)]
    theirs = [p.r_angstrom for p in find_peaks(r, g_pyxem, n=2)]
    np.testing.assert_allclose(theirs, ours, atol=0.005)


# ------------------------------------------------------------------ the study
def test_study_runs_pdf_after_diffraction_and_reports_it(electrode, tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nname = "pdf"\n[parameters.diffraction]\nstep_deg = 5.0\n'
        'refine_step_deg = 0.0\n[[states]]\nname = "lithiated_1"\n'
        f'  [[states.datasets]]\n  path = "{electrode["zspy"].as_posix()}"\n  name = "sped"\n'
        f'  [[states.datasets]]\n  path = "{electrode["zspy"].as_posix()}"\n  name = "wrong"\n'
        '  parameters = { phases = ["Si", "NoSuchPhase"] }\n'
    )
    out = tmp_path / "out"
    argv = ["run", study, "-o", out, "--no-progress"]
    assert _run(*argv) == 1  # the diffraction of the second dataset fails (unknown phase)
    run = json.loads((out / "run.json").read_text())
    sped, wrong = run["states"][0]["datasets"]
    assert list(sped["analyses"]) == ["diffraction", "pdf"]
    entry = sped["analyses"]["pdf"]
    assert entry["status"] == "done" and entry["folder"] == "lithiated_1/sped/pdf"
    s = _summary(out / entry["folder"])
    assert s["diffraction_result"]["folder"] == str(
        (out / "lithiated_1/sped/diffraction").resolve()
    )
    assert "amorphous" in s["regions"]
    assert wrong["analyses"]["pdf"]["status"] == "failed"
    assert "needs the diffraction result" in wrong["analyses"]["pdf"]["error"]
    # the report: the amorphous G(r) of the state, its peaks on the page
    report = json.loads((out / "report.json").read_text())
    pc = report["comparison"]["pdf"]
    (e,) = pc["entries"]
    assert e["state"] == "lithiated_1" and len(e["g"]) == len(pc["r"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Pair distribution functions of the amorphous regions" in html
    from anodemap.report.format import num

    assert num(e["peaks"][0]["r"]) in html
    # nothing changed: both kept; a changed diffraction parameter reruns both
    assert _run(*argv) == 1
    run = json.loads((out / "run.json").read_text())
    assert {a["status"] for a in run["states"][0]["datasets"][0]["analyses"].values()} == {
        "skipped"
    }
    study.write_text(study.read_text().replace("step_deg = 5.0", "step_deg = 4.0"))
    assert _run(*argv) == 1
    run = json.loads((out / "run.json").read_text())
    assert {a["status"] for a in run["states"][0]["datasets"][0]["analyses"].values()} == {"done"}
