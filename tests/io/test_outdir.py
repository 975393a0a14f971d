"""Output folders are one run's (issue 15): the lock, the checks before a run, the input
record in summary.json, the cleanup of leftovers and of an earlier run's maps."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.io import load
from anodemap.io import outdir as od

# the console command as a user runs it (as in test_cli)
CONSOLE = "import sys; from anodemap.cli import run; sys.argv[0] = 'anodemap'; run()"


def _cli(*argv: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CONSOLE, *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _run(argv: list, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _stale_lock(folder: Path, **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    info = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "earlier"} | extra
    lock = folder / od.LOCK_NAME
    lock.write_text(json.dumps(info))
    return lock


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Two small simulated spectrum images whose maps differ (seeds 2 and 5)."""
    root = tmp_path_factory.mktemp("inputs")
    out = {}
    for name, seed in (("a", 2), ("b", 5)):
        argv = ["simulate", "eels", "-o", root / name, "--shape", "12", "16", "--seed", seed]
        assert main([str(a) for a in argv]) == 0
        out[name] = root / name / "eels.hspy"
    return out


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> dict[str, Path]:
    """Each input analysed alone (no figures): the maps a folder of that input holds."""
    root = tmp_path_factory.mktemp("reference")
    for name, path in inputs.items():
        argv = ["eels", path, "-o", root / name, "--no-progress", "--no-figures"]
        assert main([str(a) for a in argv]) == 0
    return {name: root / name for name in inputs}


def _maps_of(folder: Path, reference: dict[str, Path]) -> str:
    """Which reference run every map of ``folder`` comes from ('mixed' if not one); a
    map the references share (e.g. no oxide peak in either) tells nothing and is left
    out."""
    found = set()
    for f in sorted(reference["a"].glob("*.hspy")):
        here = np.asarray(load(folder / f.name).data)
        refs = {k: np.asarray(load(ref / f.name).data) for k, ref in reference.items()}
        if np.array_equal(refs["a"], refs["b"], equal_nan=True):
            continue
        same = [k for k, ref in refs.items() if np.array_equal(here, ref, equal_nan=True)]
        found.add(same[0] if len(same) == 1 else "mixed")
    return found.pop() if len(found) == 1 else "mixed"


# ------------------------------------------------------------------ two runs
@pytest.fixture(scope="module")
def raced(inputs, tmp_path_factory):
    """Two runs of different inputs into one folder, started together (figures on, so
    that each holds the folder for seconds)."""
    out = tmp_path_factory.mktemp("race") / "res"
    procs = {name: _cli("eels", inputs[name], "-o", out, "--no-progress") for name in ("a", "b")}
    done = {name: (p.wait(timeout=300), p.communicate()[1]) for name, p in procs.items()}
    return out, done, {name: p.pid for name, p in procs.items()}


def test_two_runs_into_one_folder_the_second_refuses(raced, inputs, reference):
    out, done, pids = raced
    codes = sorted(code for code, _ in done.values())
    assert codes == [0, 2], done
    winner = next(name for name, (code, _) in done.items() if code == 0)
    loser = "b" if winner == "a" else "a"
    err = done[loser][1]
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("anodemap: error: ")
    assert f"{out}: another anodemap run is writing into this folder (pid {pids[winner]}" in message
    assert "choose another place with -o" in message and str(out / od.LOCK_NAME) in message
    # the folder is the winner's, summary and maps alike
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["path"] == str(inputs[winner].resolve())
    assert summary["input"]["sha256"] == _sha256(inputs[winner])
    assert _maps_of(out, reference) == winner
    assert not (out / od.LOCK_NAME).exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_an_earlier_runs_other_maps_do_not_stay_beside_a_new_summary(
    raced, inputs, reference, tmp_path, capsys
):
    """A run without figures into the folder of a run with figures: the figures of the
    earlier run (of another input) go to .previous-run/, with its summary."""
    out = tmp_path / "res"
    shutil.copytree(raced[0], out)
    before = json.loads((out / "summary.json").read_text())
    loser = "b" if before["input"]["path"] == str(inputs["a"].resolve()) else "a"
    (out / "notes.txt").write_text("the user's own file")
    code, err = _run(["eels", inputs[loser], "-o", out, "--no-progress", "--no-figures"], capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == sorted([*summary["files"], "summary.json", "notes.txt"])
    assert summary["input"]["path"] == str(inputs[loser].resolve())
    assert _maps_of(out, reference) == loser
    aside = out / od.PREVIOUS_RUN
    moved = sorted(p.name for p in aside.iterdir())
    assert "overview.png" in moved and "summary.json" in moved
    assert json.loads((aside / "summary.json").read_text()) == before
    assert f"moved to {aside}" in err
    assert not (out / od.MANIFEST_NAME).exists()  # summary.json lists every file


def test_a_busy_folder_is_refused_at_once_naming_the_run(inputs, tmp_path):
    out = tmp_path / "res"
    with od.output_folder(out, command_line="anodemap eels other.dm4 -o res", log=None):
        t0 = time.perf_counter()
        proc = _cli("eels", inputs["a"], "-o", out, "--no-progress", "--no-figures")
        code, (_, err) = proc.wait(timeout=120), proc.communicate()
        elapsed = time.perf_counter() - t0
    assert code == 2, err
    assert "Traceback" not in err and "[anodemap] reading" not in err
    assert f"pid {os.getpid()} on this host" in err and "anodemap eels other.dm4 -o res" in err
    assert elapsed < 30  # no waiting: refused once the lock is seen
    assert not (out / "summary.json").exists()


def test_a_stale_lock_is_taken_over(inputs, tmp_path, capsys):
    out = tmp_path / "res"
    lock = _stale_lock(out, command_line="anodemap eels killed.dm4 -o res")
    code, err = _run(["eels", inputs["a"], "-o", out, "--no-progress", "--no-figures"], capsys)
    assert code == 0, err
    assert "took over the lock of an earlier run that ended without releasing it" in err
    assert not lock.exists() and (out / "summary.json").exists()


def test_a_lock_of_another_host_is_not_taken_over(inputs, tmp_path, capsys):
    out = tmp_path / "res"
    _stale_lock(out, host="elsewhere.example")
    code, err = _run(["eels", inputs["a"], "-o", out, "--no-progress"], capsys)
    assert code == 2
    assert "on host elsewhere.example" in err and "cannot tell from this machine" in err
    assert f"remove {out / od.LOCK_NAME}" in err and "Traceback" not in err


# ----------------------------------------------------------- checks before a run
@pytest.mark.parametrize("command", ["eels", "diffraction", "demo"])
def test_output_that_is_a_file_is_refused_before_the_analysis(command, inputs, tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("not a folder")
    argv = [command] + ([inputs["a"]] if command != "demo" else []) + ["-o", target]
    code, err = _run([*argv, "--no-progress"], capsys)
    assert code == 2
    assert f"{target}: exists and is a file, not a folder; -o names the folder" in err
    assert "[anodemap] reading" not in err and "simulating" not in err and "Traceback" not in err
    assert target.read_text() == "not a folder"


def test_stream_output_that_is_a_folder_is_refused(tmp_path, capsys):
    target = tmp_path / "scan.blo"
    target.mkdir()
    code, err = _run(["stream", tmp_path / "rec_000.tvips", "-o", target], capsys)
    assert code == 2
    assert f"{target}: exists and is a folder; -o names the output file" in err
    assert "Traceback" not in err


def test_stream_output_being_written_by_another_run_is_refused(tmp_path, capsys):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            info = {"pid": other.pid, "host": socket.gethostname(), "started": "now"}
            (tmp_path / f".scan.zspy{od.LOCK_NAME}").write_text(json.dumps(info))
            argv = ["stream", tmp_path / "rec_000.tvips", "-o", tmp_path / "scan.zspy"]
            code, err = _run(argv, capsys)
        finally:
            other.kill()
    assert code == 2
    assert f"another anodemap run is writing this file (pid {other.pid}" in err


def test_read_only_folder_is_refused_without_traceback(inputs, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("this user can write in a read-only folder (root): chmod has no effect")
        code, err = _run(["eels", inputs["a"], "-o", out, "--no-progress"], capsys)
    finally:
        out.chmod(0o755)
    assert code == 2
    assert f"{out}: cannot be written (permission denied); choose a folder you can write" in err
    assert "Traceback" not in err and "[anodemap] reading" not in err


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (errno.EROFS, "is on a read-only file system"),
        (errno.EACCES, "cannot be written (permission denied)"),
    ],
)
@pytest.mark.parametrize("command", ["eels", "stream"])
def test_read_only_file_system_is_refused_without_traceback(
    command, code, why, inputs, tmp_path, capsys, monkeypatch
):
    # a read-only mount cannot be made without privileges, nor a folder root cannot
    # write in: the lock's creation fails as it would there, which every run tries
    # before reading anything
    real_open = os.open

    def read_only(path, flags, *args, **kw):
        if str(path).endswith(od.LOCK_NAME) and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(od.os, "open", read_only)
    out = tmp_path / "ro"
    out.mkdir()
    target = out if command == "eels" else out / "scan.zspy"
    exit_code, err = _run([command, inputs["a"], "-o", target, "--no-progress"], capsys)
    assert exit_code == 2
    assert f"{out}: {why}; choose a folder you can write in with -o" in err
    assert "Traceback" not in err and "[anodemap] reading" not in err


def test_too_little_free_space_is_refused(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(od.shutil, "disk_usage", lambda p: SimpleNamespace(free=1000))
    code, err = _run(["eels", inputs["a"], "-o", tmp_path / "res", "--no-progress"], capsys)
    assert code == 2
    assert "only 1.0 kB free on its file system, and the results need about" in err
    assert "choose another place with -o" in err
    assert not (tmp_path / "res").exists()  # the folder it made is removed again


def test_an_input_among_the_outputs_is_refused(reference, tmp_path, capsys):
    out = tmp_path / "res"
    shutil.copytree(reference["a"], out)
    inp = out / "li_si_ratio.hspy"
    before = _sha256(inp)
    why = {
        "eels": "where this command writes li_si_ratio.hspy: the input would be replaced",
        "diffraction": "where an earlier anodemap run wrote li_si_ratio.hspy, which this run "
        f"does not write and would move to {out / od.PREVIOUS_RUN}",
    }
    for command, reason in why.items():
        code, err = _run([command, inp, "-o", out, "--no-progress"], capsys)
        assert code == 2
        expected = f"{inp}: is in the output folder {out}, {reason}; copy the input elsewhere"
        assert f"{expected} or choose another folder with -o" in err, err
        assert "[anodemap] reading" not in err and "Traceback" not in err
    assert _sha256(inp) == before and not (out / od.PREVIOUS_RUN).exists()


def test_output_inside_a_folder_store_input_is_refused(tmp_path, capsys):
    store = tmp_path / "scan.zspy"
    store.mkdir()
    code, err = _run(["diffraction", store, "-o", store / "maps", "--no-progress"], capsys)
    assert code == 2
    assert f"{store / 'maps'}: is inside the input {store}" in err
    assert not (store / "maps").exists()


def test_a_file_analysed_into_its_own_folder_stays(inputs, tmp_path, capsys):
    folder = tmp_path / "own"
    shutil.copytree(inputs["a"].parent, folder)
    inp = folder / "eels.hspy"
    before = _sha256(inp)
    code, err = _run(["eels", inp, "-o", folder, "--no-progress", "--no-figures"], capsys)
    assert code == 0, err
    assert _sha256(inp) == before and (folder / "truth" / "truth.json").exists()
    assert json.loads((folder / "summary.json").read_text())["input"]["sha256"] == before


# ----------------------------------------------------------------- leftovers
def test_leftovers_of_interrupted_runs_are_removed(inputs, tmp_path, capsys):
    out = tmp_path / "res"
    _stale_lock(out)
    dead = _dead_pid()
    leftovers = [
        f".li_k.partial-{dead}-0123abcd.hspy",  # anodemap's temporary names
        ".overview.partial.png",  # older ones
        ".summary.json.partial",
        ".phase.partial-89abcdef.hspy",
        ".scan.zspy.old-0a1b2c3d",
    ]
    for name in leftovers:
        (out / name).write_text("half")
    store = out / ".big.partial-deadbeef.zspy"
    (store / "Experiments").mkdir(parents=True)
    (store / "Experiments" / "0.0").write_bytes(b"\0" * 1000)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as alive:
        try:
            live = out / f".zlp_position.partial-{alive.pid}-0123abcd.hspy"
            live.write_text("being written")
            code, err = _run(
                ["eels", inputs["a"], "-o", out, "--no-progress", "--no-figures"], capsys
            )
            assert code == 0, err
            assert live.exists()  # its writer still runs
        finally:
            alive.kill()
    assert not [n for n in leftovers if (out / n).exists()] and not store.exists()
    assert "removed 6 temporary files left by an interrupted run" in err


def test_a_run_killed_mid_way_leaves_nothing_after_the_next_run(inputs, reference, tmp_path):
    out = tmp_path / "res"
    proc = _cli("eels", inputs["b"], "-o", out, "--no-progress", "--no-figures")
    t0 = time.monotonic()
    while not any(out.glob("*.hspy")) and not any(out.glob(".*partial*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 120
        time.sleep(0.005)
    proc.kill()  # SIGKILL: no cleanup of its own
    proc.communicate()
    assert (out / od.LOCK_NAME).exists() and not (out / "summary.json").exists()
    rerun = _cli("eels", inputs["a"], "-o", out, "--no-progress", "--no-figures")
    code, (_, err) = rerun.wait(timeout=300), rerun.communicate()
    assert code == 0, err
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"]["sha256"] == _sha256(inputs["a"])
    assert _maps_of(out, reference) == "a"


def test_the_lock_is_released_on_error_and_ctrl_c(inputs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "res"
    code, err = _run(["eels", tmp_path / "missing.hspy", "-o", out, "--no-progress"], capsys)
    assert code == 2 and "no such file" in err
    assert not out.exists()  # made for the run, empty: removed

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    import anodemap.io

    monkeypatch.setattr(anodemap.io, "load", interrupted)
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        main(["eels", str(inputs["a"]), "-o", str(out), "--no-progress", "--no-figures"])
    assert not (out / od.LOCK_NAME).exists()


# ------------------------------------------------------------- input record
def test_summary_names_its_input(reference, inputs):
    summary = json.loads((reference["a"] / "summary.json").read_text())
    record = summary["input"]
    assert record["path"] == str(inputs["a"].resolve()) and Path(record["path"]).is_absolute()
    assert record["size_bytes"] == inputs["a"].stat().st_size
    assert record["sha256"] == _sha256(inputs["a"]) and record["hashed"] == "the whole file"
    assert summary["anodemap_version"]
    assert summary["command_line"].startswith("anodemap eels ")
    assert f"-o {reference['a']}" in summary["command_line"]


def test_input_record_of_large_files_and_folder_stores(tmp_path, monkeypatch):
    monkeypatch.setattr(od, "FULL_HASH_BYTES", 3 * 2**20)
    rng = np.random.default_rng(0)
    big = tmp_path / "big.blo"
    big.write_bytes(rng.bytes(5 * 2**20))
    r = od.input_record(big)
    assert r["size_bytes"] == 5 * 2**20 and "sha256" not in r
    assert r["hashed"] == "the size, the first and the last MiB"
    h = hashlib.sha256(b"5242880\0")
    data = big.read_bytes()
    h.update(data[: 2**20])
    h.update(data[-(2**20) :])
    assert r["sha256_head_tail"] == h.hexdigest()

    store = tmp_path / "scan.zspy"
    (store / "a").mkdir(parents=True)
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    (store / "a" / "0.0").write_bytes(b"chunk")
    small = od.input_record(store)
    assert small["kind"] == "folder" and small["files"] == 2 and small["size_bytes"] == 23
    assert small["hashed"] == "every file: its path, size and content" and "sha256" in small
    (store / "a" / "0.0").write_bytes(b"chunK")
    assert od.input_record(store)["sha256"] != small["sha256"]
    (store / "a" / "1.0").write_bytes(rng.bytes(4 * 2**20))
    assert "sha256_head_tail" in od.input_record(store)


def test_records_kept_within_a_run_are_read_once(tmp_path, monkeypatch):
    made = []
    real = od._input_record
    monkeypatch.setattr(od, "_input_record", lambda path, *a: made.append(path) or real(path, *a))
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 100)
    store = tmp_path / "scan.zspy"
    store.mkdir()
    (store / "0.0").write_bytes(b"chunk")
    with od.records_kept():
        first = od.input_record(f)
        assert od.input_record(f) == first and len(made) == 1
        assert od.input_record(store) == od.input_record(store) and len(made) == 2
        f.write_bytes(b"y" * 101)  # written again: read again
        assert od.input_record(f)["sha256"] != first["sha256"] and len(made) == 3
        (store / "1.0").write_bytes(b"more")
        assert od.input_record(store)["files"] == 2 and len(made) == 4
    od.input_record(f)
    od.input_record(f)
    assert len(made) == 6  # outside a run: every record is made


def test_temporary_names_differ_between_calls_and_processes():
    names = {od.temporary_path("out/overview.png").name for _ in range(100)}
    assert len(names) == 100
    assert all(n.startswith(f".overview.partial-{os.getpid()}-") for n in names)
