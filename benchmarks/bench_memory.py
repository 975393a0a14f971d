"""Benchmark: memory of the default ``anodemap diffraction`` and ``anodemap eels`` commands.

One command (not a test; it writes about 2.1 GB of inputs and runs each command a few
times on them, some 10 minutes on 2 cores):

    python benchmarks/bench_memory.py --workdir /tmp/anodemap-mem
    python benchmarks/bench_memory.py --workdir /tmp/m --diffraction-scan 128 --eels-scan 200

It writes, once (kept in ``--workdir`` for later runs):

* a diffraction ``.zspy``: the simulated electrode of ``anodemap.synth`` (32 x 32 patterns
  of 64 x 64 float32, seed 0) tiled to ``--diffraction-scan`` squared patterns (default
  256 x 256: 1.07 GB), chunks of 16 x 256 patterns, as ``bench_diffraction.py`` writes;
* an EELS ``.hspy``: the simulated spectrum image (32 x 32 x 1600 float32, seed 0) tiled
  to ``--eels-scan`` squared spectra (default 400 x 400: 1.02 GB), uncompressed as
  instrument files are;
* for each, a tiny input of the same kind (8 x 8 patterns, 8 x 8 spectra): the "empty run".

Then it runs each command in a fresh process under ``prlimit --as`` (``RLIMIT_AS``, the
process's address space: virtual memory, which numba's LLVM and the thread stacks reserve
in large amounts without touching it) and reports, per run, the exit code, wall time,
``VmPeak`` (largest address space) and ``VmHWM`` (largest resident memory) of the command's
own process, read from ``/proc/self/status`` just before it exits:

1. the empty run (tiny input, no cap): its ``VmPeak`` is the baseline B;
2. the large input with the default settings, no cap;
3. the large input with the default settings under a cap of ``2 GB + B`` (the issue's
   target: "an address-space cap of 2 GB plus what an empty run of the same command
   needs");
4. diffraction only: ``--in-memory-gb 0`` (always out of core), no cap.

Every run passes ``--no-figures`` (figures are drawn by a helper process with its own
address space, and do not depend on the input's size) and ``--no-progress``. Results are
printed as JSON and written to ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# runs anodemap's command line in this process, then reports the process's memory
_RUNNER = r"""
import json, sys
from anodemap.cli import main
rc = main(sys.argv[1:])
status = {}
with open("/proc/self/status") as f:
    for line in f:
        key, _, value = line.partition(":")
        if key in ("VmPeak", "VmHWM"):
            status[key] = int(value.split()[0]) * 1024
print("MEMORY " + json.dumps(status), file=sys.stderr, flush=True)
sys.stdout.flush()
import os
os._exit(rc)
"""


# every run: no figures (drawn by a helper process with its own address space, the same
# whatever the input's size), no progress lines
_COMMON = ("--no-figures", "--no-progress")


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=HERE,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_diffraction(path: Path, n_scan: int, seed: int = 0) -> dict:
    """The simulated 32 x 32 electrode tiled to ``n_scan`` squared patterns, as .zspy."""
    import dask.array as da

    from anodemap.io import Axis, Dataset, save
    from anodemap.synth import make_phantom
    from anodemap.synth.diffraction import simulate_diffraction

    sim = simulate_diffraction(make_phantom((32, 32), seed=seed), seed=seed)
    patterns = np.asarray(sim.patterns, dtype=np.float32)
    ny, nx, ky, kx = patterns.shape
    reps = (-(-n_scan // ny), -(-n_scan // nx), 1, 1)
    src = da.from_array(patterns, chunks=(ny, nx, ky, kx))
    big = da.tile(src, reps)[:n_scan, :n_scan].rechunk((min(16, n_scan), n_scan, ky, kx))
    scale, center = float(sim.scale), sim.center
    axes = [
        Axis("y", n_scan, 5.0, 0.0, "nm"),
        Axis("x", n_scan, 5.0, 0.0, "nm"),
        Axis("ky", ky, scale, -center[0] * scale, "1/Å", navigate=False),
        Axis("kx", kx, scale, -center[1] * scale, "1/Å", navigate=False),
    ]
    ds = Dataset(big, axes)
    ds.set_meta("Signal.signal_type", "electron_diffraction")
    ds.set_meta("Acquisition_instrument.TEM.beam_energy", float(sim.beam_energy_kev))
    ds.set_meta("Acquisition_instrument.TEM.precession_angle", float(sim.precession_angle_deg))
    save(ds, path)
    return {
        "scan": [n_scan, n_scan],
        "pattern": [ky, kx],
        "dtype": "float32",
        "bytes": int(big.nbytes),
    }


def write_eels(path: Path, n_scan: int, seed: int = 0) -> dict:
    """The simulated 32 x 32 spectrum image tiled to ``n_scan`` squared spectra, as an
    uncompressed .hspy."""
    import dask.array as da

    from anodemap.eels.pipeline import eels_dataset
    from anodemap.io import Dataset, save
    from anodemap.synth import make_phantom, simulate_eels

    sim = simulate_eels(make_phantom((32, 32), seed=seed), seed=seed)
    spectra = np.asarray(sim.spectra, dtype=np.float32)
    ny, nx, ne = spectra.shape
    reps = (-(-n_scan // ny), -(-n_scan // nx), 1)
    src = da.from_array(spectra, chunks=(ny, nx, ne))
    big = da.tile(src, reps)[:n_scan, :n_scan].rechunk((min(32, n_scan), n_scan, ne))
    small = eels_dataset(spectra[:1, :1], sim.energy, pixel_size_nm=5.0)
    axes = [dataclasses.replace(a, size=n_scan) if a.navigate else a for a in small.axes]
    ds = Dataset(big, axes, metadata=small.metadata)
    save(ds, path, writer_options={"compression": None})
    return {"scan": [n_scan, n_scan], "channels": ne, "dtype": "float32", "bytes": int(big.nbytes)}


def measured_run(argv: list[str], cap_bytes: int | None, timeout: float = 1800) -> dict:
    """``anodemap ARGV`` in a fresh process (under ``prlimit --as=CAP``): exit code, wall
    time, the process's VmPeak and VmHWM, and the last lines of its stderr."""
    cmd = [sys.executable, "-c", _RUNNER, *argv]
    if cap_bytes is not None:
        cmd = ["prlimit", f"--as={int(cap_bytes)}", "--", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    memory: dict = {}
    for line in proc.stderr.splitlines():
        if line.startswith("MEMORY "):
            memory = json.loads(line[7:])
    log = [ln for ln in proc.stderr.splitlines() if not ln.startswith("MEMORY ")]
    return {
        "argv": argv,
        "cap_bytes": cap_bytes,
        "returncode": proc.returncode,
        "wall_s": round(wall, 2),
        "vm_peak_bytes": memory.get("VmPeak"),
        "vm_hwm_bytes": memory.get("VmHWM"),
        "log_tail": log[-6:],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", help="where the inputs are kept (default: a temporary folder)")
    ap.add_argument("--diffraction-scan", type=int, default=256)
    ap.add_argument("--eels-scan", type=int, default=400)
    ap.add_argument("--margin-gb", type=float, default=2.0, help="the cap above the baseline")
    ap.add_argument("--only", choices=("diffraction", "eels"), help="one command only")
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="anodemap-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = {
        "diffraction": (
            work / f"sped_{args.diffraction_scan}.zspy",
            args.diffraction_scan,
            work / "sped_8.zspy",
            write_diffraction,
        ),
        "eels": (
            work / f"eels_{args.eels_scan}.hspy",
            args.eels_scan,
            work / "eels_8.hspy",
            write_eels,
        ),
    }
    env_cache = work / "template-cache"
    os.environ.setdefault("ANODEMAP_CACHE_DIR", str(env_cache))
    out: dict = {
        "commit": _git_commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "margin_bytes": int(args.margin_gb * 1e9),
    }
    for name, (big, n, tiny, writer) in inputs.items():
        if args.only and name != args.only:
            continue
        for path, size in ((big, n), (tiny, 8)):
            info_path = path.with_suffix(path.suffix + ".json")
            if not info_path.exists():
                print(f"writing {path} ...", flush=True)
                info_path.write_text(json.dumps(writer(path, size)))
        info = json.loads((work / (big.name + ".json")).read_text())
        res: dict = {"input": str(big), "input_info": info}

        def run(inp: Path, outname: str, cap: int | None, *extra: str, _name=name) -> dict:
            r = measured_run([_name, str(inp), "-o", str(work / outname), *_COMMON, *extra], cap)
            print(json.dumps(r), flush=True)
            return r

        # the template cache filled first, so that every run reads the same libraries
        run(tiny, f"{name}_warm", None)
        res["empty_run"] = run(tiny, f"{name}_tiny", None)
        base = res["empty_run"]["vm_peak_bytes"]
        cap = base + out["margin_bytes"]
        res["default"] = run(big, f"{name}_default", None)
        res["default_capped"] = run(big, f"{name}_capped", cap)
        if name == "diffraction":
            res["out_of_core"] = run(big, f"{name}_ooc", None, "--in-memory-gb", "0")
        out[name] = res
    text = json.dumps(out, indent=2)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "memory.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
