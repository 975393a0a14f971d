"""The first run's kernel compiling in helper processes (``anodemap._warmup``): the lock
around numba's cache, the rows a helper analyses, a helper's life, and (slow) a first run
whose kernels all come from its helper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from anodemap import _warmup
from anodemap.io import Axis, Dataset

fcntl = pytest.importorskip("fcntl")


def test_rows_cut_the_middle_rows_and_keep_the_axes():
    data = np.arange(10 * 3 * 4, dtype=np.float32).reshape(10, 3, 4)
    axes = [Axis("y", 10, 2.0, 1.0, "nm"), Axis("x", 3, 2.0), Axis("E", 4, navigate=False)]
    cut = _warmup._rows(Dataset(data, axes, {"General": {"title": "t"}}), 4)
    assert cut.data.shape == (4, 3, 4) and cut.data.flags.c_contiguous
    np.testing.assert_array_equal(cut.data, data[3:7])
    assert cut.axes[0].size == 4 and cut.axes[0].offset == 1.0 + 3 * 2.0
    assert cut.axes[1:] == axes[1:] and cut.metadata == {"General": {"title": "t"}}
    small = Dataset(data[:2], [Axis("y", 2), *axes[1:]])
    assert _warmup._rows(small, 4) is small


def test_the_lock_keeps_another_process_out_while_held(tmp_path):
    lock = _warmup._FileLock(tmp_path / "numba.lock")
    probe = textwrap.dedent(
        f"""
        import fcntl, os, sys
        fd = os.open({str(tmp_path / "numba.lock")!r}, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_{{}} | fcntl.LOCK_NB)
        except OSError:
            sys.exit(1)
        """
    )

    def other_gets(kind: str) -> bool:
        code = probe.format(kind)
        return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

    with lock.exclusive():
        with lock.shared():  # the same thread again: re-entrant
            pass
        assert not other_gets("SH")
    with lock.shared():
        assert other_gets("SH") and not other_gets("EX")
    assert other_gets("EX")


def test_the_cache_guard_wraps_numba_cache_loads_and_saves(tmp_path, monkeypatch):
    from numba.core.caching import Cache

    module = tmp_path / "toy_kernel.py"
    module.write_text("import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import toy_kernel

    asked, saved = [], []
    load, save = Cache.load_overload, Cache.save_overload
    undo = _warmup._guard_numba_cache(
        _warmup._FileLock(tmp_path / "numba.lock"),
        waiter=lambda func: asked.append(func.__name__) or False,
        saved=lambda func: saved.append(func.__name__),
    )
    try:
        with pytest.raises(RuntimeError):  # one guard per process
            _warmup._guard_numba_cache(_warmup._FileLock(tmp_path / "other.lock"))
        assert toy_kernel.twice(3) == 6
    finally:
        undo()
    assert asked == ["twice"] and saved == ["twice"]
    assert (Cache.load_overload, Cache.save_overload) == (load, save)


def test_no_helper_where_none_is_needed(monkeypatch):
    warm = _warmup.start(["pdf", "edx"])
    assert warm.kinds == []
    monkeypatch.setenv("ANODEMAP_WARMUP", "off")
    monkeypatch.setattr(_warmup, "_cached", lambda kind: False)
    assert _warmup.start(["eels"]).kinds == []
    monkeypatch.delenv("ANODEMAP_WARMUP")
    assert _warmup.start(["eels"], scheduler="tcp://host:8786").kinds == []


@pytest.fixture(scope="module")
def eels_file(tmp_path_factory) -> Path:
    from anodemap.cli import _simulate_eels

    return _simulate_eels(tmp_path_factory.mktemp("warm"), (8, 8), 1, 5.0)


def test_a_helper_analyses_the_rows_it_is_given_and_ends(eels_file, monkeypatch):
    from numba.core.caching import Cache

    load = Cache.load_overload
    monkeypatch.setattr(_warmup, "_cached", lambda kind: False)  # the kernels are cached
    with _warmup.start(["eels", "diffraction"]) as warm:
        assert warm.kinds == ["eels", "diffraction"]
        assert Cache.load_overload is not load  # guarded while helpers run
        lock = warm._lock.path
        warm.offer("eels", eels_file)
        warm.offer("eels", "elsewhere.hspy")  # one dataset per helper: ignored
        outcome = warm.wait(120)
    assert outcome == {"eels": "done", "diffraction": "no dataset"}
    assert Cache.load_overload is load and not os.path.exists(lock)


def test_a_helper_that_fails_ends_the_waiting(tmp_path, monkeypatch):
    monkeypatch.setattr(_warmup, "_cached", lambda kind: False)
    with _warmup.start(["eels"]) as warm:
        warm.offer("eels", tmp_path / "missing.hspy")
        outcome = warm.wait(120)
        func = type("f", (), {"__module__": "anodemap.eels.plasmon", "__qualname__": "k"})
        assert warm._wait_for(func) is False  # a finished helper: nothing to wait for
    assert outcome["eels"].startswith("failed: ")


@pytest.mark.slow
def test_a_first_run_loads_every_kernel_its_helper_compiled(eels_file, tmp_path):
    """With an empty numba cache, ``anodemap run`` of a one-dataset study compiles no
    EELS kernel itself: it waits for its helper's, and its results are those of a run
    with the kernels cached."""
    study = tmp_path / "study.toml"
    study.write_text(
        f'[study]\nname = "one"\n\n[[states]]\nname = "s"\n\n  [[states.datasets]]\n'
        f'  path = "{eels_file.as_posix()}"\n  kind = "eels"\n'
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    code = "import sys; from anodemap.cli import run; sys.argv[0] = 'anodemap'; run()"

    def run(out: Path, *more: str) -> str:
        argv = [sys.executable, "-c", code, "run", str(study), "-o", str(out), *more]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stderr

    first = run(tmp_path / "first", "--no-figures", "--no-progress")
    assert "compiling eels." not in first  # compile_notice: none compiled by the run
    assert "waiting for the numerical kernels, compiled in the background" in first
    assert "waiting for" not in run(tmp_path / "second", "--no-figures", "--no-progress")
    from anodemap.io import load

    for name in ("plasmon_energy", "li_k", "thickness"):
        a, b = (
            np.asarray(load(tmp_path / run_dir / "s" / "eels" / "eels" / f"{name}.hspy").data)
            for run_dir in ("first", "second")
        )
        assert a.tobytes() == b.tobytes(), name
    summary = json.loads((tmp_path / "first" / "run.json").read_text())
    assert summary["counts"] == {"done": 1, "skipped": 0, "failed": 0}
