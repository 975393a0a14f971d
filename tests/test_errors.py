"""Every bad input gets a clear answer, and none a silent wrong result (issue 15).

The first part walks the error paths of every command in a subprocess, as a user meets
them: exit code 2, one line ``anodemap...: error: ...`` naming the file or the option, no
traceback, no advice in Python arguments the command line does not take. The cases run
a few at a time in one fixture (each costs an interpreter start), the table reports
each. The second part checks the cases that used to give a wrong result without a word:
a missing ``.zspy`` chunk, an energy axis in keV, a beam energy given on the command line,
a bad pattern at the first scan position, a recording cut short.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from anodemap.cli import _simulate_diffraction, _simulate_eels, main
from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io import load, save
from anodemap.status import Status

# advice in terms of Python arguments (name=...) that the command line does not take (as
# in test_real_files)
_PYTHON_ADVICE = re.compile(r"\b(?:pass|with|choose one with) [a-z_]+=|\b[a-z]+_[a-z_]+=")
_DATA = "Experiments/Simulated SPED/data"
_SCALE = 0.04375  # 1/Å per pixel of the simulated patterns (64 px)


# ------------------------------------------------------------------ the files
def _chunk(store: Path, key: str) -> Path:
    return store / _DATA / key


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Small simulated inputs and damaged copies of them (about 5 s)."""
    from anodemap.diffraction.stream import write_blo

    root = tmp_path_factory.mktemp("errors")
    out: dict[str, Path] = {"root": root}
    out["eels"] = _simulate_eels(root / "eels", (8, 8), 0, 5.0)
    sim = _simulate_diffraction(root / "diff", (16, 16), 0, 5.0, tvips=True)
    out["zspy"], out["tvips"] = sim["zspy"], sim["tvips"]
    ds = load(sim["zspy"])
    out["chunked"] = save(ds, root / "chunked.zspy", writer_options={"chunks": (4, 4, 64, 64)})
    for name in ("cut_chunk", "missing_chunk", "corrupt_chunk"):
        out[name] = root / f"{name}.zspy"
        shutil.copytree(out["chunked"], out[name])
    cut = _chunk(out["cut_chunk"], "1/2/0/0")
    cut.write_bytes(cut.read_bytes()[:100])
    _chunk(out["missing_chunk"], "2/1/0/0").unlink()
    bad = _chunk(out["corrupt_chunk"], "1/2/0/0")
    raw = bytearray(bad.read_bytes())
    for i in range(100, len(raw), 7):  # same length, scrambled bytes
        raw[i] = (raw[i] * 31 + 7) % 256
    bad.write_bytes(bytes(raw))
    blo = write_blo(ds, root / "scan.blo")
    out["cut_blo"] = root / "cut.blo"
    out["cut_blo"].write_bytes(blo.read_bytes()[:-5000])
    nan = np.array(ds.data)
    nan[0, 0] = np.nan
    out["nan00"] = save(dataclasses.replace(ds, data=nan), root / "nan00.zspy")
    out["empty"] = root / "empty.hspy"
    out["empty"].write_bytes(b"")
    out["bad_study"] = root / "bad_study.toml"
    out["bad_study"].write_text("[study\nname = 1\n")
    out["study_missing"] = root / "study_missing.toml"
    out["study_missing"].write_text(
        '[study]\nname = "x"\n[[states]]\nname = "a"\n[[states.datasets]]\npath = "gone.hspy"\n'
    )
    out["good_study"] = root / "good_study.toml"
    out["good_study"].write_text(
        f'[study]\nname = "x"\n[[states]]\nname = "a"\n[[states.datasets]]\n'
        f'path = "{out["eels"].as_posix()}"\n'
    )
    out["cut_hspy"] = root / "cut.hspy"
    out["cut_hspy"].write_bytes(out["eels"].read_bytes()[:50_000])
    # the recording with its last part cut to 60 %
    cut_rec = root / "cut_recording"
    cut_rec.mkdir()
    for part in sorted(Path(sim["tvips"]).parent.glob("sped_*.tvips")):
        shutil.copy(part, cut_rec / part.name)
    last = sorted(cut_rec.glob("sped_*.tvips"))[-1]
    with open(last, "r+b") as f:
        f.truncate(int(last.stat().st_size * 0.6) + 100)
    out["cut_tvips"] = cut_rec / "sped_000.tvips"
    return out


# ----------------------------------------------------------------- the table
# the cases that run the analysis as far as the data: small template libraries, quickly
# built (the error comes from the data)
_LIGHT = ["--phases", "Si", "--step", "5", "--refine-step", "0", "--no-progress"]
# id -> (command line, words the error line must hold); {name} is a path of `files`,
# {out} an output folder of the case's own. The unreachable scheduler comes first: it
# waits longest.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "scheduler unreachable": (
        ["eels", "{eels}", "-o", "{out}", "--scheduler", "tcp://127.0.0.1:9"],
        ["--scheduler", "tcp://127.0.0.1:9", "could not be reached"],
    ),
    "scheduler address invalid": (
        ["eels", "{eels}", "-o", "{out}", "--scheduler", "nonsense::"],
        ["--scheduler", "nonsense::"],
    ),
    # eels options
    "iterations negative": (
        ["eels", "{eels}", "-o", "{out}", "--iterations", "-5"],
        ["--iterations"],
    ),
    "iterations zero": (["eels", "{eels}", "-o", "{out}", "--iterations", "0"], ["--iterations"]),
    "iterations not whole": (
        ["eels", "{eels}", "-o", "{out}", "--iterations", "2.5"],
        ["--iterations"],
    ),
    "window reversed": (["eels", "{eels}", "-o", "{out}", "--window", "30", "20"], ["--window"]),
    "window not finite": (["eels", "{eels}", "-o", "{out}", "--window", "nan", "20"], ["--window"]),
    "window one value": (["eels", "{eels}", "-o", "{out}", "--window", "8"], ["--window"]),
    "window off the axis": (
        ["eels", "{eels}", "-o", "{out}", "--window", "8", "500"],
        ["--window"],
    ),
    "eels input missing": (["eels", "{root}/nope.hspy", "-o", "{out}"], ["nope.hspy"]),
    "eels input empty": (["eels", "{empty}", "-o", "{out}"], ["empty.hspy", "empty"]),
    "hspy truncated": (["eels", "{cut_hspy}", "-o", "{out}"], ["cut.hspy", "truncated"]),
    "eels calibration missing": (
        ["eels", "{eels}", "-o", "{out}", "--calibration", "{root}/nope.csv"],
        ["nope.csv"],
    ),
    "eels given diffraction": (["eels", "{zspy}", "-o", "{out}"], ["sped.zspy", "anodemap eels"]),
    "demo scan step": (["demo", "-o", "{out}", "--scan-step", "0"], ["--scan-step"]),
    "demo shape": (["demo", "-o", "{out}", "--shape", "0", "0"], ["--shape"]),
    # diffraction options
    "beam energy zero": (
        ["diffraction", "{zspy}", "-o", "{out}", "--beam-energy", "0"],
        ["--beam-energy"],
    ),
    "beam energy negative": (
        ["diffraction", "{zspy}", "-o", "{out}", "--beam-energy", "-300"],
        ["--beam-energy"],
    ),
    "camera length zero": (
        ["diffraction", "{zspy}", "-o", "{out}", "--camera-length", "0"],
        ["--camera-length"],
    ),
    "calibration negative": (
        ["diffraction", "{zspy}", "-o", "{out}", "--calibration", "-1"],
        ["--calibration"],
    ),
    "step zero": (["diffraction", "{zspy}", "-o", "{out}", "--step", "0"], ["--step"]),
    "step not finite": (["diffraction", "{zspy}", "-o", "{out}", "--step", "inf"], ["--step"]),
    "refine step negative": (
        ["diffraction", "{zspy}", "-o", "{out}", "--refine-step", "-1"],
        ["--refine-step"],
    ),
    "decoys zero": (["diffraction", "{zspy}", "-o", "{out}", "--decoys", "0"], ["--decoys"]),
    "precession negative": (
        ["diffraction", "{zspy}", "-o", "{out}", "--precession", "-0.1"],
        ["--precession"],
    ),
    "scan step zero": (
        ["diffraction", "{zspy}", "-o", "{out}", "--scan-step", "0"],
        ["--scan-step"],
    ),
    "in-memory negative": (
        ["diffraction", "{zspy}", "-o", "{out}", "--in-memory-gb", "-1"],
        ["--in-memory-gb"],
    ),
    "in-memory not a number": (
        ["diffraction", "{zspy}", "-o", "{out}", "--in-memory-gb", "lots"],
        ["--in-memory-gb"],
    ),
    "phase unknown": (
        ["diffraction", "{zspy}", "-o", "{out}", "--phases", "Xx"],
        ["--phases", "Xx"],
    ),
    "regions missing": (
        ["diffraction", "{zspy}", "-o", "{out}", "--regions", "{root}/nope.npy"],
        ["nope.npy", "--regions"],
    ),
    "signal not in the file": (
        ["diffraction", "{zspy}", "-o", "{out}", "--signal", "3"],
        ["--signal"],
    ),
    # damaged files
    "zspy chunk cut short": (
        ["diffraction", "{cut_chunk}", "-o", "{out}"],
        ["cut_chunk.zspy", "1/2/0/0", "truncated", "damaged"],
    ),
    "zspy chunk missing": (
        ["diffraction", "{missing_chunk}", "-o", "{out}"],
        ["missing_chunk.zspy", "2/1/0/0", "missing", "damaged"],
    ),
    "zspy chunk corrupt": (
        ["diffraction", "{corrupt_chunk}", "-o", "{out}", *_LIGHT],
        ["corrupt_chunk.zspy", "1/2/0/0", "damaged"],
    ),
    "zspy chunk corrupt, read chunk by chunk": (
        ["diffraction", "{corrupt_chunk}", "-o", "{out}", *_LIGHT, "--in-memory-gb", "0"],
        ["corrupt_chunk.zspy", "1/2/0/0", "damaged"],
    ),
    "blo truncated": (
        ["diffraction", "{cut_blo}", "-o", "{out}"],
        ["cut.blo", "truncated", "damaged"],
    ),
    "zspy chunk missing, eels": (
        ["eels", "{missing_chunk}", "-o", "{out}"],
        ["missing_chunk.zspy", "missing", "damaged"],
    ),
    # stream options and recordings
    "recording truncated": (
        ["stream", "{cut_tvips}", "-o", "{out}.zspy"],
        ["sped_002.tvips", "truncated", "--allow-truncated"],
    ),
    "stream scan shape zero": (
        ["stream", "{tvips}", "-o", "{out}.zspy", "--scan-shape", "0", "16"],
        ["--scan-shape"],
    ),
    "stream first frame negative": (
        ["stream", "{tvips}", "-o", "{out}.zspy", "--first-frame", "-1"],
        ["--first-frame"],
    ),
    "stream first frame beyond": (
        ["stream", "{tvips}", "-o", "{out}.zspy", "--first-frame", "99999"],
        ["--first-frame", "sped_000.tvips"],
    ),
    "stream hysteresis not whole": (
        ["stream", "{tvips}", "-o", "{out}.zspy", "--hysteresis", "x"],
        ["--hysteresis"],
    ),
    "stream pixel size zero": (
        ["stream", "{tvips}", "-o", "{out}.zspy", "--reciprocal-pixel-size", "0"],
        ["--reciprocal-pixel-size"],
    ),
    "stream intensity range reversed": (
        ["stream", "{tvips}", "-o", "{out}.blo", "--intensity-range", "10", "5"],
        ["--intensity-range"],
    ),
    "stream scan shape too large": (
        ["stream", "{tvips}", "-o", "{out}.zspy", "--scan-shape", "40", "40", "--no-headers"],
        ["--scan-shape", "sped_000.tvips"],
    ),
    # simulate
    "simulate shape": (["simulate", "eels", "-o", "{out}", "--shape", "0", "4"], ["--shape"]),
    "simulate pattern size": (
        ["simulate", "diffraction", "-o", "{out}", "--pattern-size", "8"],
        ["--pattern-size"],
    ),
    "simulate pixel size": (
        ["simulate", "eels", "-o", "{out}", "--pixel-size", "0"],
        ["--pixel-size"],
    ),
    "simulate seed": (["simulate", "eels", "-o", "{out}", "--seed", "-1"], ["--seed"]),
    "simulate region shape": (
        ["simulate", "region", "-o", "{out}", "--shape", "32", "32"],
        ["--shape", "simulate region"],
    ),
    # run
    "run study missing": (["run", "{root}/nope.toml", "-o", "{out}"], ["nope.toml"]),
    "run study not toml": (["run", "{bad_study}", "-o", "{out}"], ["bad_study.toml", "TOML"]),
    "run dataset missing": (
        ["run", "{study_missing}", "-o", "{out}"],
        ["study_missing.toml", "gone.hspy", "does not exist"],
    ),
    "run output is a file": (["run", "{good_study}", "-o", "{empty}"], ["empty.hspy", "-o"]),
}


def _run_case(files: dict[str, Path], name: str) -> tuple[int, str, float]:
    argv, _ = CASES[name]
    if argv[0] in ("eels", "diffraction") and name not in _WITH_FIGURES:
        argv = [*argv, "--no-figures"]  # the figure process starts first: 1 s each
    out = files["root"] / "out" / re.sub(r"\W+", "_", name)
    args = [a.format(out=out, **{k: str(v) for k, v in files.items()}) for a in argv]
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "anodemap.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=files["root"],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return done.returncode, done.stderr, time.perf_counter() - t0


# (the others without the figure process: what they test comes before it is used)
_WITH_FIGURES = {"eels input missing", "zspy chunk cut short", "scheduler unreachable"}


@pytest.fixture(scope="module")
def outcomes(files) -> dict[str, tuple[int, str, float]]:
    """Every case run once, two at a time (each is mostly an interpreter start)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {name: pool.submit(_run_case, files, name) for name in CASES}
        return {name: run.result() for name, run in runs.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_every_error_is_a_clear_one(name, outcomes, files):
    code, err, _ = outcomes[name]
    lines = err.strip().splitlines()
    assert code == 2, f"{name}: exit {code}\n{err}"
    assert "Traceback" not in err, err
    message = lines[-1]
    assert re.match(r"anodemap( \w+)?: error: ", message), message
    for word in CASES[name][1]:
        assert word in message, f"{name}: {word!r} not in {message!r}"
    assert not _PYTHON_ADVICE.search(message), message
    out = files["root"] / "out" / re.sub(r"\W+", "_", name)
    assert not (out / "summary.json").exists()


def test_an_unreachable_scheduler_fails_within_seconds(outcomes):
    """Not dask's 30 s: the connection timeout (5 s) and the start of the command."""
    assert outcomes["scheduler unreachable"][2] < 20


# ------------------------------------------------- no silent wrong result
def test_damaged_zspy_is_refused_when_opened(files):
    for lazy in (True, False):
        with pytest.raises(AnodemapIOError, match=r"2/1/0/0 \(array region \[8:12, 4:8, :, :\]\)"):
            load(files["missing_chunk"], lazy=lazy)
        with pytest.raises(AnodemapIOError, match=r"1/2/0/0.*100 bytes of the \d+ its Blosc"):
            load(files["cut_chunk"], lazy=lazy)
    # a chunk whose bytes are corrupt is found when it is read
    ds = load(files["corrupt_chunk"], lazy=True)
    with pytest.raises(AnodemapIOError, match=r"corrupt_chunk.zspy: the chunk .*1/2/0/0.*corrupt"):
        ds.data.compute()
    assert np.asarray(ds.data[:4].compute()).shape == (4, 16, 64, 64)  # the rest reads


def test_lazy_data_are_read_by_their_absolute_path(files, monkeypatch):
    """A cluster's worker does not run in the caller's folder: the graph holds the
    absolute path (the caller's folder changed here before the data are read)."""
    monkeypatch.chdir(files["root"])
    ds = load("chunked.zspy", lazy=True)
    monkeypatch.chdir(files["root"] / "eels")
    assert np.array_equal(ds.data.compute(), load(files["chunked"]).data)


def test_energy_axis_in_kev_or_mev_gives_the_maps_of_ev():
    from anodemap.eels.pipeline import analyse_eels, eels_dataset, energy_axis
    from anodemap.synth import make_phantom, simulate_eels

    sim = simulate_eels(make_phantom((8, 8), seed=2), seed=2)
    ev = eels_dataset(sim.spectra, sim.energy)
    ax = ev.axes[-1]
    assert (ax.units, ax.scale, ax.offset, ax.is_uniform) == ("eV", 0.05, -5.0, True)
    results = {}
    for units, factor in (("eV", 1.0), ("keV", 1e-3), ("meV", 1e3)):
        other = dataclasses.replace(
            ax, scale=ax.scale * factor, offset=ax.offset * factor, units=units
        )
        ds = dataclasses.replace(ev, axes=[*ev.axes[:-1], other])
        assert np.array_equal(energy_axis(ds), energy_axis(ev))
        results[units] = analyse_eels(ds, progress=False)
    for units in ("keV", "meV"):
        for name, value in results["eV"].maps.items():
            assert np.array_equal(value, results[units].maps[name], equal_nan=True), (units, name)


@pytest.fixture(scope="module")
def nan_run(files, tmp_path_factory) -> Path:
    """``anodemap diffraction`` on the patterns with a NaN pattern at (0, 0), the beam
    energy given (200 keV; the file says 300)."""
    out = tmp_path_factory.mktemp("nan_run")
    argv = ["diffraction", str(files["nan00"]), "-o", str(out), "--beam-energy", "200"]
    argv += ["--phases", "Si", "--step", "3", "--refine-step", "0", "--no-figures", "--no-progress"]
    assert main(argv) == 0
    return out


def test_a_bad_pattern_at_the_first_position_is_flagged_not_fatal(nan_run):
    status = np.asarray(load(nan_run / "match_status.hspy").data)
    phase = np.asarray(load(nan_run / "phase.hspy").data)
    assert status[0, 0] == Status.INVALID_INPUT
    assert phase[0, 0] == -3  # not analysed
    assert np.count_nonzero(status == Status.INVALID_INPUT) == 1
    summary = json.loads((nan_run / "summary.json").read_text())
    assert summary["status_counts"]["invalid_input"] == 1


def test_the_beam_energy_given_is_the_one_used_and_recorded(nan_run):
    summary = json.loads((nan_run / "summary.json").read_text())
    assert summary["parameters"]["beam_energy_kev"] == 200.0
    assert summary["settings"]["beam_energy_kev"] == 200.0


def test_beam_energy_zero_is_refused_by_the_library_too(files):
    from anodemap.diffraction.pipeline import DiffractionParameters, analyse_diffraction

    ds = load(files["zspy"], lazy=True)
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(AnodemapInputError, match="--beam-energy"):
            analyse_diffraction(ds, DiffractionParameters(beam_energy_kev=bad), progress=False)
    with pytest.raises(AnodemapInputError, match="--decoys"):
        analyse_diffraction(ds, DiffractionParameters(n_decoys=0), progress=False)


def test_beam_radius_from_valid_patterns_anywhere():
    """The beam radius estimate skips non-finite and constant patterns, and looks over
    the whole scan where the first patterns show no beam."""
    from anodemap.diffraction.beam import _estimate_radius

    yy, xx = np.mgrid[:32, :32]
    beam = 100.0 * (np.hypot(yy - 15.5, xx - 15.5) <= 4) + 1.0
    data = np.broadcast_to(beam, (8, 8, 32, 32)).copy()
    radius = _estimate_radius(data)
    data[0, 0] = np.nan
    data[0, 1] = 0.0
    assert _estimate_radius(data) == radius
    data[:4, :4] = np.nan  # the whole first block
    assert _estimate_radius(data) == radius
    data[:] = np.nan
    with pytest.raises(AnodemapInputError, match="none of the patterns sampled"):
        _estimate_radius(data)


def test_a_truncated_recording_says_so_and_keeps_its_line_length(files):
    """The issue's case: with the last part cut, the shape used to come from the count
    of the positions left (9 x 24 for a 16 x 16 scan)."""
    from anodemap.diffraction.stream import reconstruct_scan

    with pytest.warns(UserWarning, match="incomplete frame is skipped"):
        plan = reconstruct_scan(files["cut_tvips"], allow_truncated=True)
    n_pos = plan.scores["truncated"]["positions_recorded"]
    assert n_pos < 256
    assert plan.scan_shape == (-(-n_pos // 16), 16)
    note = next(w for w in plan.warnings if "truncated" in w)
    assert "--scan-shape NY NX" in note and "correlation" in note
    assert len(plan.missing) >= plan.scan_shape[0] * 16 - n_pos
    with pytest.warns(UserWarning, match="incomplete frame is skipped"):
        given = reconstruct_scan(files["cut_tvips"], (16, 16), allow_truncated=True)
    assert given.scan_shape == (16, 16)
    assert len(given.missing) >= 256 - n_pos
    assert any("were not recorded" in w for w in given.warnings)


def test_number_options_are_checked_where_parsed():
    import argparse

    from anodemap.analysis.options import number as _number

    assert _number(int, least=1)("3") == 3
    assert _number(above=0)("0.5") == 0.5
    for parse, text in (
        (_number(int, least=1), "0"),
        (_number(int), "1.5"),
        (_number(above=0), "0"),
        (_number(least=0), "-1e-9"),
        (_number(), "nan"),
        (_number(), "-inf"),
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


# ------------------------------------------------------------------- cluster
def test_cluster_lost_is_a_clear_error():
    from distributed.client import FutureCancelledError

    from anodemap._compute import cluster_result

    class Lost:
        def result(self, timeout=None):
            raise FutureCancelledError("key", "scheduler-connection-lost")

    class Client:
        class scheduler:  # noqa: N801 - the attribute distributed's Client has
            address = "tcp://10.0.0.5:8786"

    with pytest.raises(AnodemapIOError, match=r"--scheduler tcp://10.0.0.5:8786: .*lost"):
        cluster_result(Client(), Lost())


def test_workers_that_cannot_read_the_input_are_named(tmp_path):
    from anodemap._compute import _unreadable

    there = tmp_path / "there.hspy"
    there.write_bytes(b"x")
    assert _unreadable([str(there), str(tmp_path / "gone.hspy")]) == [str(tmp_path / "gone.hspy")]


def test_connect_cluster_unreachable_within_its_timeout():
    from anodemap._compute import connect_cluster

    t0 = time.perf_counter()
    with pytest.raises(AnodemapIOError, match="--scheduler tcp://127.0.0.1:9.*within 1 s"):
        connect_cluster("tcp://127.0.0.1:9", timeout=1)
    assert time.perf_counter() - t0 < 10
