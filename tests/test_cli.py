"""The command line as the acceptance checks call it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anodemap.cli import main

EXPECTED = [
    "plasmon_energy.hspy",
    "plasmon_fwhm.hspy",
    "li_si_ratio.hspy",
    "li_si_uncertainty.hspy",
    "fit_status.hspy",
    "thickness.hspy",
    "li2o_window.hspy",
    "oxide_index.hspy",
    "li_k.hspy",
    "summary.json",
    "li_si_ratio.png",
    "plasmon_energy.png",
    "overview.png",
    "oxide_index.png",
]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "eels", "-o", str(out), "--shape", "12", "16", "--seed", "2"]) == 0
    return out


def test_simulate_writes_data_and_truth(simulated):
    assert (simulated / "eels.hspy").exists()
    assert (simulated / "truth" / "li_per_si.hspy").exists()
    assert (simulated / "truth" / "plasmon_peak_eV.hspy").exists()


def test_eels_command_outputs(simulated, tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    out = tmp_path / "res"
    assert (
        main(
            [
                "eels",
                str(simulated / "eels.hspy"),
                "-o",
                str(out),
                "--window",
                "8",
                "25",
                "--deconvolve",
                "rl",
                "--no-progress",
            ]
        )
        == 0
    )
    for name in EXPECTED:
        assert (out / name).exists(), name
    s = hs.load(out / "li_si_ratio.hspy")
    assert s.data.shape == (12, 16)
    ax = s.axes_manager.signal_axes
    assert ax[0].units == "nm" and ax[0].scale == pytest.approx(5.0)
    e = hs.load(out / "plasmon_energy.hspy")
    assert "eV" in e.metadata.Signal.quantity
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["fraction_converged"] <= 1
    assert summary["li_si_ratio"]["mean"] is not None
    assert "equation" in summary["calibration"]
    truth = hs.load(simulated / "truth" / "li_per_si.hspy").data
    fitted = s.data
    ok = np.isfinite(fitted) & (truth > 0)
    assert np.median(np.abs(fitted[ok] - truth[ok])) <= 0.1


def test_user_calibration_csv(simulated, tmp_path):
    csv = tmp_path / "cal.csv"
    csv.write_text("x,plasmon_energy_eV,source\n0,16.8,test\n2,14.5,test\n4,12.9,test\n")
    out = tmp_path / "res"
    assert (
        main(
            [
                "eels",
                str(simulated / "eels.hspy"),
                "-o",
                str(out),
                "--calibration",
                str(csv),
                "--deconvolve",
                "none",
                "--no-progress",
                "--no-figures",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["deconvolve"] == "none"
    assert any("test" in str(r) for r in summary["calibration"]["rows"])


def test_demo(tmp_path):
    """The four-state demo: simulated, run, reported, each map against its truth."""
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--shape", "16", "16", "--no-progress"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert [s["name"] for s in run["states"]] == [
        "pristine",
        "lithiated_1",
        "delithiated_1",
        "delithiated_10",
    ]
    # eels, diffraction and the PDFs of the diffraction result, in each of four states
    assert run["counts"] == {"done": 12, "skipped": 0, "failed": 0}
    assert (out / "report.html").is_file() and (out / "report.json").is_file()
    for state in run["states"]:
        eels, sped = state["datasets"]
        e = json.loads((out / eels["analyses"]["eels"]["truth_comparison"]).read_text())
        # issue 1's target is 0.02 eV on the 1st-lithiation electrode (below); on these
        # 16 x 16 states, with 160-230 material pixels each, 0.011-0.039 eV was measured
        # (0.012-0.018 eV at 64 x 64)
        assert e["plasmon_energy_error_eV"]["median_abs"] <= 0.05, state["name"]
        d = json.loads((out / sped["analyses"]["diffraction"]["truth_comparison"]).read_text())
        assert d["phase_accuracy"] >= 0.98, state["name"]
        assert d["pores_called_crystalline"] == 0
    lith = json.loads((out / "lithiated_1/eels/eels/truth_comparison.json").read_text())
    assert lith["plasmon_energy_error_eV"]["median_abs"] <= 0.02
    assert lith["li_si_error"]["median_abs"] <= 0.1
    # a second demo into the folder keeps what is up to date
    assert main(["demo", "-o", str(out), "--shape", "16", "16", "--no-progress"]) == 0
    assert json.loads((out / "run.json").read_text())["counts"]["skipped"] == 12


def test_tvips_recording_to_phase_maps_against_the_truth(tmp_path):
    """A simulated camera's TVIPS video stream: the scan found (not given) by `anodemap
    stream`, then phase and orientation maps by a one-state study, against the truth."""
    from anodemap.synth.tvips import compare_scan_with_truth

    sim = tmp_path / "sim"
    argv = ["simulate", "diffraction", "-o", str(sim), "--shape", "24", "24", "--tvips"]
    assert main(argv) == 0
    truth = json.loads((sim / "truth" / "recording.json").read_text())
    scan = tmp_path / "scan.zspy"
    argv = ["stream", str(sim / "sped_000.tvips"), "-o", str(scan), "--no-progress"]
    scale = repr(truth["reciprocal_pixel_size_per_angstrom"])
    assert main([*argv, "--reciprocal-pixel-size", scale, "--scan-step", "5"]) == 0
    report = json.loads(scan.with_name(scan.name + ".scan.json").read_text())
    found = compare_scan_with_truth(report, truth)
    items = found["items"]
    # the scan found, not given: serpentine with hysteresis, one duplicate, one drop
    assert found["all_agree"], items
    assert items["scan_shape"]["found"] == [24, 24] and items["hysteresis"]["found"] == 2
    assert items["n_duplicate_frames"]["found"] == 1 and len(items["dropped"]["found"]) == 1
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nname = "recording"\n[parameters.diffraction]\nprecession_angle_deg = 0.4\n'
        f'[[states]]\nname = "a"\n[[states.datasets]]\npath = "{scan.as_posix()}"\n'
        f'truth = "{(sim / "truth").as_posix()}"\n'
    )
    out = tmp_path / "out"
    assert main(["run", str(study), "-o", str(out), "--no-progress"]) == 0
    d = json.loads((out / "a/scan/diffraction/truth_comparison.json").read_text())
    # issue 3's targets: >= 98 % of the material pixels' phases, orientations within 2
    # degrees where reliable
    assert d["phase_accuracy"] >= 0.98 and d["pores_called_crystalline"] == 0
    reliable = [o["reliable"] for k, o in d["orientation"].items() if k != "reliability_threshold"]
    assert sum(r["n"] for r in reliable) >= 20  # 55 Si pixels on this electrode
    assert all(r["within_2deg"] >= 0.95 for r in reliable if r["n"])
    assert (out / "a/scan/diffraction/truth_comparison.png").exists()


def test_simulated_recording_streams_to_the_simulated_patterns(tmp_path):
    """`anodemap simulate diffraction --tvips` writes a recording of the same patterns that
    `anodemap stream` (scan found, not given) turns back into them, exactly (as uint16,
    zeros at the dropped position)."""
    from anodemap.io import load

    sim = tmp_path / "sim"
    argv = ["simulate", "diffraction", "-o", str(sim), "--shape", "12", "16", "--tvips"]
    assert main([*argv, "--pattern-size", "32"]) == 0
    truth = json.loads((sim / "truth" / "recording.json").read_text())
    assert truth["scan_shape"] == [12, 16] and truth["first_frame"] == 6
    scale = truth["reciprocal_pixel_size_per_angstrom"]
    out = tmp_path / "scan.zspy"
    argv = ["stream", str(sim / "sped_000.tvips"), "-o", str(out), "--no-progress"]
    assert main([*argv, "--reciprocal-pixel-size", repr(scale), "--scan-step", "5"]) == 0
    from anodemap.synth.tvips import compare_scan_with_truth

    report = json.loads((tmp_path / "scan.zspy.scan.json").read_text())
    assert compare_scan_with_truth(report, truth)["all_agree"]
    ref = np.clip(np.rint(np.asarray(load(sim / "sped.zspy").data)), 0, 65535)
    for y, x in truth["dropped"]:
        ref[y, x] = 0
    got = load(out)
    np.testing.assert_array_equal(np.asarray(got.data), ref)
    assert got.axes[2].scale == pytest.approx(scale) and got.axes[2].units == "1/Å"
    frame_of_pixel = np.asarray(load(sim / "truth" / "frame_of_pixel.hspy").data)
    assert (frame_of_pixel < 0).sum() == 1


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["eels", str(tmp_path / "nope.dm4"), "-o", str(tmp_path / "o")]) == 2
    assert "nope.dm4" in capsys.readouterr().err


def test_eels_on_a_real_measured_spectrum(exspy_lowloss_msa, tmp_path):
    """exspy's measured low-loss spectrum (MSA, single spectrum) runs through the command."""
    out = tmp_path / "msa"
    assert main(["eels", str(exspy_lowloss_msa), "-o", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # the default 8-25 eV window holds its weaker feature near 13.6 eV, not its strongest
    # plasmon near 31 eV: the fit converges and is flagged for it (tests/eels/test_eels_window.py
    # has the auto and 24-40 eV windows)
    assert summary["n_pixels"] == 1
    assert summary["status_counts"]["strongest_peak_outside_window"] == 1
    assert summary["window_warning"] is not None
    # the whole chain runs on a real file and lands in the physical range; t/lambda < 2
    assert 12.0 < summary["plasmon_energy_eV"]["median"] < 17.0
    assert 0.1 < summary["thickness_t_over_lambda"]["median"] < 2.0


def test_eels_command_on_a_cluster(simulated, tmp_path, local_cluster_client):
    """--scheduler runs the same analysis on a dask.distributed cluster, same maps."""
    hs = pytest.importorskip("hyperspy.api")
    address = local_cluster_client.scheduler.address
    local, remote = tmp_path / "local", tmp_path / "remote"
    args = ["--no-progress", "--no-figures", "--deconvolve", "none"]
    assert main(["eels", str(simulated / "eels.hspy"), "-o", str(local), *args]) == 0
    assert (
        main(
            ["eels", str(simulated / "eels.hspy"), "-o", str(remote), "--scheduler", address, *args]
        )
        == 0
    )
    for name in ("plasmon_energy.hspy", "li_si_ratio.hspy", "fit_status.hspy"):
        np.testing.assert_array_equal(hs.load(local / name).data, hs.load(remote / name).data)


@pytest.mark.parametrize("ext", ["zspy", "blo"])
def test_stream_command_finds_the_scan(tmp_path, ext):
    """`anodemap stream INPUT_000.tvips -o OUT` without a scan shape finds it."""
    from anodemap.io import load
    from anodemap.synth.tvips import write_tvips_recording

    sim = write_tvips_recording(
        tmp_path / "rec",
        scan_shape=(12, 14),
        frame_shape=(32, 32),
        serpentine=True,
        hysteresis=2,
        duplicates=(30,),
        drops=(77,),
        frames_per_part=60,
    )
    first = sorted(tmp_path.glob("rec*_000.tvips"))[0]
    out = tmp_path / f"scan.{ext}"
    assert main(["stream", str(first), "-o", str(out), "--no-progress"]) == 0
    ds = load(out)
    assert ds.nav_shape == (12, 14) and ds.sig_shape == (32, 32)
    report = json.loads((tmp_path / f"scan.{ext}.scan.json").read_text())
    assert report["scan_shape"] == [12, 14]
    assert report["serpentine"] is True
    # every scan position holds the frame recorded there (zeros where it was dropped)
    from anodemap.diffraction.stream import TvipsRecording

    expected = TvipsRecording(first).read_frames(sim.frame_of_pixel.ravel())
    expected = expected.reshape(12, 14, 32, 32).astype(np.float64)
    data = np.asarray(ds.data)
    if ext == "zspy":
        np.testing.assert_array_equal(data, expected)
        # written in one pass; --two-pass writes the same store
        sp = report["scores"]["single_pass"]
        assert sp["blocks"] == sp["written_while_reading"] + sp["written_after"] >= 1
        two = tmp_path / "two.zspy"
        assert main(["stream", str(first), "-o", str(two), "--no-progress", "--two-pass"]) == 0
        files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
        assert all((out / f).read_bytes() == (two / f).read_bytes() for f in files)
        assert (
            "single_pass" not in json.loads((tmp_path / "two.zspy.scan.json").read_text())["scores"]
        )
    else:  # 8-bit: counts scaled so that the direct beam saturates (stream_to_file)
        assert data.dtype == np.uint8
        hi = report["scores"]["blo_intensity_range"]["hi"]
        assert 0 < hi < expected.max()
        scaled = np.clip(np.round(255 * expected / hi), 0, 255)
        assert np.max(np.abs(data.astype(float) - scaled)) <= 1


def test_stream_command_writes_zspy_and_blo_in_one_command(tmp_path):
    """`-o OUT.zspy -o OUT.blo`: both files from one search of the scan, each the same
    as the one its own command writes; a name given twice or a wrong extension is a
    clear error before anything is read or written."""
    from anodemap.io import load
    from anodemap.synth.tvips import write_tvips_recording

    write_tvips_recording(
        tmp_path / "rec",
        scan_shape=(10, 12),
        frame_shape=(32, 32),
        serpentine=True,
        hysteresis=1,
        duplicates=(25,),
        drops=(50,),
        frames_per_part=50,
    )
    first = str(sorted(tmp_path.glob("rec*_000.tvips"))[0])
    q = ["--no-progress"]
    both = [tmp_path / "both" / "scan.blo", tmp_path / "both" / "scan.zspy"]  # .blo named first
    assert main(["stream", first, "-o", str(both[0]), "-o", str(both[1]), *q]) == 0
    for ext in ("blo", "zspy"):
        one = tmp_path / "one" / f"scan.{ext}"
        assert main(["stream", first, "-o", str(one), *q]) == 0
        a, b = load(tmp_path / "both" / f"scan.{ext}"), load(one)
        assert a.nav_shape == (10, 12)
        np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))
        assert [(x.scale, x.units) for x in a.axes] == [(x.scale, x.units) for x in b.axes]
        report = json.loads((tmp_path / "both" / f"scan.{ext}.scan.json").read_text())
        alone = json.loads((tmp_path / "one" / f"scan.{ext}.scan.json").read_text())
        for key in ("first_frame", "last_frame", "scan_shape", "hysteresis", "missing"):
            assert report[key] == alone[key]
        if ext == "zspy":  # the .zspy was written while reading, as on its own
            assert report["scores"]["single_pass"]["blocks"] >= 1
            files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
            assert files == sorted(
                p.relative_to(both[1]) for p in both[1].rglob("*") if p.is_file()
            )
            assert all((one / f).read_bytes() == (both[1] / f).read_bytes() for f in files)
        else:
            assert report["scores"]["blo_intensity_range"] == alone["scores"]["blo_intensity_range"]

    twice = tmp_path / "twice.zspy"
    assert main(["stream", first, "-o", str(twice), "-o", str(twice), *q]) == 2
    wrong = [str(tmp_path / "w.zspy"), str(tmp_path / "w.tif")]
    assert main(["stream", first, "-o", wrong[0], "-o", wrong[1], *q]) == 2
    assert not twice.exists() and not (tmp_path / "w.zspy").exists()


def test_console_command_exits_quickly_with_the_right_code_and_all_output(tmp_path):
    # `anodemap` ends through cli.run: main, then os._exit after flushing the streams
    import subprocess
    import sys

    code = "import sys; from anodemap.cli import run; sys.argv[0] = 'anodemap'; run()"
    bad = subprocess.run(
        [sys.executable, "-c", code, "eels", str(tmp_path / "missing.hspy"), "-o", "x"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "missing.hspy: no such file" in bad.stderr
    tiny = subprocess.run(
        [sys.executable, "-c", code, "simulate", "eels", "-o", "x", "--shape", "4", "4"],
        capture_output=True,
        text=True,
    )
    assert tiny.returncode == 2  # a clear error, not a traceback
    assert "at least 8 x 8" in tiny.stderr and "Traceback" not in tiny.stderr
    out = tmp_path / "sim"
    good = subprocess.run(
        [sys.executable, "-c", code, "simulate", "eels", "-o", str(out), "--shape", "8", "8"],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    assert "wrote" in good.stderr  # the last message reached the terminal
    assert (out / "eels.hspy").is_file()


def test_tvips_recording_to_phase_maps_opened_in_hyperspy(tmp_path):
    """Issue 3, done when: a TVIPS recording converted to .zspy and .blo in one command
    each, phase-mapped in another, and the maps opened in HyperSpy.

    The recording holds a simulated electrode's patterns (serpentine scan with
    hysteresis, frames before and after, a duplicated and a dropped frame, 3 parts), so
    the maps from the converted file must equal those of the patterns analysed
    directly (as the camera stores them: uint16), and recover the simulated phases.
    """
    from anodemap.diffraction.matching import phase_label_names
    from anodemap.diffraction.pipeline import analyse_diffraction
    from anodemap.io import Dataset
    from anodemap.synth import make_phantom
    from anodemap.synth.diffraction import simulate_diffraction, to_dataset
    from anodemap.synth.tvips import write_tvips_recording

    hs = pytest.importorskip("hyperspy.api")
    sim = simulate_diffraction(make_phantom((16, 16), seed=3), seed=3)
    ds = to_dataset(sim)
    rec = write_tvips_recording(
        tmp_path / "rec",
        patterns=np.asarray(ds.data),
        hysteresis=3,
        duplicates=(40,),
        drops=(77,),
        frames_per_part=100,
        beam_energy_kev=300,
    )
    first = str(rec.paths[0])
    cal = ["--reciprocal-pixel-size", str(ds.axes[2].scale), "--scan-step", "5"]
    for ext in ("zspy", "blo"):
        out = str(tmp_path / f"scan.{ext}")
        assert main(["stream", first, "-o", out, "--no-progress", *cal]) == 0
        maps = str(tmp_path / f"maps_{ext}")
        argv = ["diffraction", out, "-o", maps, "--precession", "0.4", "--no-progress"]
        if ext == "blo":  # the scan step of the file (5 nm) overridden
            argv += ["--scan-step", "2.5"]
        else:  # read chunk by chunk in every pass, as a file too large for memory
            argv += ["--in-memory-gb", "0"]
        assert main([*argv, "--no-figures"]) == 0

    bad = ["diffraction", str(tmp_path / "scan.zspy"), "-o", str(tmp_path / "x"), "--scan-step"]
    assert main([*bad, "0", "--no-progress", "--no-figures"]) == 2  # a clear error

    # the reference: the same patterns as uint16, zeros at the dropped position
    frames = np.clip(np.rint(np.asarray(ds.data)), 0, 65535).astype(np.uint16)
    for y, x in rec.dropped:
        frames[y, x] = 0
    ref = analyse_diffraction(Dataset(frames, ds.axes, ds.metadata), progress=False)
    # material positions the recording has (a dropped frame is no pattern: not analysed)
    material = sim.truth["phase"] >= 0
    for y, x in rec.dropped:
        material[y, x] = False
    for ext in ("zspy", "blo"):
        phase = hs.load(tmp_path / f"maps_{ext}" / "phase.hspy")
        assert phase.data.shape == (16, 16)
        step = 5.0 if ext == "zspy" else 2.5
        assert [(a.units, a.scale) for a in phase.axes_manager.signal_axes] == [
            ("nm", step),
            ("nm", step),
        ]
        summary = json.loads((tmp_path / f"maps_{ext}" / "summary.json").read_text())
        assert summary["phase_labels"] == phase_label_names(["Si", "Li15Si4"])
        found = phase.data
        if ext == "zspy":
            assert summary["parameters"]["in_memory_gb"] == 0.0
            np.testing.assert_array_equal(found, ref.maps["phase"])
            corr = hs.load(tmp_path / "maps_zspy" / "correlation.hspy").data
            np.testing.assert_allclose(corr, ref.maps["correlation"], rtol=1e-6)
        accuracy = (found[material] == sim.truth["phase"][material]).mean()
        assert accuracy >= 0.98, (ext, accuracy)


def test_every_command_has_the_shared_talk_options():
    """-q/--quiet and -v/--verbose on every subcommand (issue 16: shared options defined
    once), and -q silences the log of a command that says something by default."""
    import argparse

    from anodemap.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= flags, name


def test_quiet_simulate_says_nothing(tmp_path, capsys):
    assert main(["simulate", "haadf", "-o", str(tmp_path / "h"), "--shape", "24", "24", "-q"]) == 0
    assert capsys.readouterr().err == ""
