"""Bounded memory: the memory a process may use (available memory, cgroup, RLIMIT_AS), the
diffraction command's choice between reading into memory and chunk by chunk, no needless
copies of data in memory, and running out of memory as a clear error.

The measurement on 1 GB inputs is ``benchmarks/bench_memory.py`` (too heavy for CI); its
numbers are in docs/diffraction.md, "Memory". Every subprocess here runs under an
address-space limit of at most a few GB.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from anodemap import _platform
from anodemap._platform import MemoryBudget, describe_budget, memory_budget
from anodemap.errors import AnodemapError

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _run_capped(code: str, cap_bytes: int, *args: str) -> subprocess.CompletedProcess:
    """Python ``code`` in a fresh process whose address space is limited to ``cap_bytes``
    from its first line on (``RLIMIT_AS``, as ``prlimit --as`` sets it)."""
    prefix = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({int(cap_bytes)}, {int(cap_bytes)}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prefix + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


# ------------------------------------------------------------------ memory_budget
@linux
def test_memory_budget_is_the_address_space_left_under_rlimit_as():
    cap = 2_000_000_000
    proc = _run_capped(
        """
        import json
        from anodemap._platform import _meminfo, memory_budget
        b = memory_budget()
        held = _meminfo("VmSize", "/proc/self/status")
        print(json.dumps({"limit": b.limit, "bytes": b.bytes, "held": held}))
        """,
        cap,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["limit"] == "address space"
    # the cap less what the interpreter holds (a few MB may be reserved between the two)
    assert 0 <= cap - out["held"] - out["bytes"] < 20e6


@linux
def test_memory_budget_without_limits_is_the_available_memory():
    budget = memory_budget()
    assert budget.bytes is not None and budget.bytes > 0
    assert budget.bytes == min(budget.limits.values())
    assert "available memory" in budget.limits
    assert "GB more" in describe_budget(budget)


def _cgroup(folder, version, limit, usage, inactive=0):
    folder.mkdir(parents=True, exist_ok=True)
    if version == "v2":
        (folder / "memory.max").write_text(f"{limit}\n")
        (folder / "memory.current").write_text(f"{usage}\n")
        (folder / "memory.stat").write_text(f"anon 1\ninactive_file {inactive}\n")
    else:
        (folder / "memory.limit_in_bytes").write_text(f"{limit}\n")
        (folder / "memory.usage_in_bytes").write_text(f"{usage}\n")
        (folder / "memory.stat").write_text(f"cache 5\ntotal_inactive_file {inactive}\n")
    return folder


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_cgroup_headroom_is_the_tightest_limit_less_usage_not_reclaimable(
    tmp_path, monkeypatch, version
):
    """The smallest headroom over the cgroup and those above it; inactive page cache
    counts as free (the kernel reclaims it first); no limit ("max", v1's huge number) is
    none."""
    no_limit = "max" if version == "v2" else str(2**63 - 4096)
    inner = _cgroup(tmp_path / "a" / "b", version, 4_000_000_000, 3_000_000_000, 500_000_000)
    outer = _cgroup(tmp_path / "a", version, 10_000_000_000, 9_800_000_000)
    root = _cgroup(tmp_path, version, 0, 0)
    (root / ("memory.max" if version == "v2" else "memory.limit_in_bytes")).write_text(no_limit)
    dirs = [(version, str(inner)), (version, str(outer)), (version, str(root))]
    monkeypatch.setattr(_platform, "_cgroup_dirs", lambda: dirs)
    # inner: 4.0 - (3.0 - 0.5) = 1.5 GB; outer: 10.0 - 9.8 = 0.2 GB
    assert _platform._cgroup_headroom() == 200_000_000
    dirs.pop(1)
    assert _platform._cgroup_headroom() == 1_500_000_000
    dirs.pop(0)
    assert _platform._cgroup_headroom() is None


def test_budget_names_the_tightest_limit(monkeypatch):
    monkeypatch.setattr(_platform, "_meminfo", lambda key, path="": 8_000_000_000)
    monkeypatch.setattr(_platform, "_cgroup_headroom", lambda: 3_000_000_000)
    monkeypatch.setattr(_platform, "_address_space_headroom", lambda: None)
    budget = memory_budget()
    assert (budget.bytes, budget.limit) == (3_000_000_000, "cgroup")
    assert "container" in describe_budget(budget)
    monkeypatch.setattr(_platform, "_address_space_headroom", lambda: 1_000_000_000)
    assert memory_budget().limit == "address space"


# ------------------------------------------------------------- no needless copies
def test_map_pixels_works_on_views_of_data_in_memory():
    """An array in memory is cut into views, not copied whole first (dask's from_array
    copies a numpy array; for the diffraction patterns that was one more copy of the
    input in every pass). numpy reports its allocations to tracemalloc."""
    import tracemalloc

    from anodemap._compute import OutputSpec, map_pixels

    data = np.ones((64, 64, 32, 32), np.float32)  # 16 MiB

    def total(block):
        return {"t": block.sum(axis=(1, 2), dtype=np.float64)}

    map_pixels(total, data, sig_ndim=2, outputs={"t": OutputSpec()}, progress=False)
    tracemalloc.start()
    try:
        out = map_pixels(total, data, sig_ndim=2, outputs={"t": OutputSpec()}, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert float(out["t"][3, 5]) == 32 * 32
    assert peak < 0.25 * data.nbytes, peak


# -------------------------------------------------------- diffraction: the choice
@pytest.fixture(scope="module")
def small_scan():
    """A lazy 12 x 12 simulated scan (two chunks) and its in-memory patterns."""
    import dask.array as da

    from anodemap.synth import make_phantom
    from anodemap.synth.diffraction import simulate_diffraction, to_dataset

    ds = to_dataset(simulate_diffraction(make_phantom((12, 12), seed=1), seed=1))
    patterns = np.asarray(ds.data)
    lazy = dataclasses.replace(ds, data=da.from_array(patterns, chunks=(6, 12, 64, 64)))
    return lazy, patterns


def _budget(monkeypatch, nbytes):
    from anodemap.diffraction import pipeline

    budget = MemoryBudget(nbytes, "address space", {"address space": nbytes})
    monkeypatch.setattr(pipeline, "memory_budget", lambda: budget)


def test_patterns_read_into_memory_when_the_run_fits(small_scan, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="anodemap")
    from anodemap.diffraction.pipeline import _in_memory, _in_memory_need

    lazy, patterns = small_scan
    _budget(monkeypatch, _in_memory_need(lazy.data.nbytes))
    reading = {}
    out = _in_memory(lazy.data, 2.0, None, True, reading)
    assert isinstance(out, np.ndarray) and reading["in_memory"]
    np.testing.assert_array_equal(out, patterns)
    assert "into memory once" in caplog.text


def test_patterns_stay_out_of_core_when_the_run_would_not_fit(small_scan, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="anodemap")
    from anodemap.diffraction.pipeline import _in_memory, _in_memory_need

    lazy, _ = small_scan
    _budget(monkeypatch, _in_memory_need(lazy.data.nbytes) - 1)
    reading = {}
    assert _in_memory(lazy.data, 2.0, None, True, reading) is lazy.data
    assert not reading.get("in_memory")
    err = caplog.text
    assert "chunk by chunk" in err and "may use" in err and "ulimit -v" in err
    # larger than --in-memory-gb: out of core, and said so with the option's name
    assert _in_memory(lazy.data, 1e-4, None, True, {}) is lazy.data
    assert "--in-memory-gb" in caplog.text


def test_read_that_runs_out_of_memory_goes_on_out_of_core(small_scan, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="anodemap")
    import dask.array

    from anodemap.diffraction.pipeline import _in_memory

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.00 GiB for an array")

    monkeypatch.setattr(dask.array, "store", no_memory)
    lazy, _ = small_scan
    reading = {}
    assert _in_memory(lazy.data, 2.0, None, True, reading) is lazy.data
    assert not reading.get("in_memory")
    assert "did not fit in memory after all" in caplog.text


def test_run_out_of_memory_in_memory_is_run_again_out_of_core(small_scan, monkeypatch, caplog):
    """Memory running out after the patterns were read into memory: the run is done again
    reading chunk by chunk, and its maps are those of a run out of core, bit for bit."""
    caplog.set_level(logging.INFO, logger="anodemap")
    from anodemap.diffraction import virtual
    from anodemap.diffraction.pipeline import DiffractionParameters, analyse_diffraction

    lazy, _ = small_scan
    reference = analyse_diffraction(lazy, DiffractionParameters(in_memory_gb=0), progress=False)
    original = virtual.find_direct_beam
    calls = []

    def short_of_memory(data, *args, **kwargs):
        calls.append(type(data).__name__)
        if isinstance(data, np.ndarray):
            raise MemoryError("Unable to allocate 512. MiB for an array")
        return original(data, *args, **kwargs)

    monkeypatch.setattr(virtual, "find_direct_beam", short_of_memory)
    result = analyse_diffraction(lazy, DiffractionParameters(), progress=True)
    assert calls == ["ndarray", "Array"]
    assert "running again" in caplog.text
    for key in ("phase", "euler", "correlation", "reliability", "virtual_bf", "status"):
        np.testing.assert_array_equal(result.maps[key], reference.maps[key])
    assert result.parameters.in_memory_gb == 2.0  # the parameters as given


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("Unable to allocate 1.00 GiB for an array with shape (4096, 65536)"),
        OSError("Can't synchronously read data (filter returned failure during read)"),
    ],
)
def test_out_of_memory_out_of_core_is_a_clear_error(small_scan, monkeypatch, error):
    from anodemap.diffraction import virtual
    from anodemap.diffraction.pipeline import DiffractionParameters, analyse_diffraction

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(virtual, "find_direct_beam", fail)
    lazy, _ = small_scan
    with pytest.raises(AnodemapError) as info:
        analyse_diffraction(lazy, DiffractionParameters(in_memory_gb=0), progress=False)
    message = str(info.value)
    assert "may use" in message and "taskset -c 0 anodemap diffraction" in message
    assert "ulimit -v" in message


def test_other_read_errors_pass_unchanged(small_scan, monkeypatch):
    from anodemap.diffraction import virtual
    from anodemap.diffraction.pipeline import DiffractionParameters, analyse_diffraction

    def fail(*args, **kwargs):
        raise OSError("Input/output error")

    monkeypatch.setattr(virtual, "find_direct_beam", fail)
    lazy, _ = small_scan
    with pytest.raises(OSError, match="Input/output error"):
        analyse_diffraction(lazy, DiffractionParameters(in_memory_gb=0), progress=False)


# ------------------------------------------------------------------------- EELS
@pytest.mark.parametrize(
    "error",
    [
        MemoryError("Unable to allocate 1.00 GiB for an array"),
        OSError("Can't read data (filter returned failure during read)"),
    ],
)
def test_eels_out_of_memory_is_a_clear_error(monkeypatch, error):
    from anodemap.eels import pipeline
    from anodemap.synth import make_phantom, simulate_eels

    sim = simulate_eels(make_phantom((8, 8), seed=0), seed=0)
    ds = pipeline.eels_dataset(sim.spectra, sim.energy, pixel_size_nm=5.0)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipeline, "map_pixels", fail)
    with pytest.raises(AnodemapError) as info:
        pipeline.analyse_eels(ds, progress=False)
    message = str(info.value)
    assert "may use" in message and "taskset -c 0 anodemap eels" in message
