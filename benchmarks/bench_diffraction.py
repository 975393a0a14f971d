"""Benchmark: anodemap against pyxem on the same simulated scanning precession diffraction.

One command (not a test):

    python benchmarks/bench_diffraction.py                      # 48 x 48 scan, 4.3 GB vBF file
    python benchmarks/bench_diffraction.py --shape 24 24 --vi-scan 128 --repeat 1  # quick look

It measures, on the same simulated dataset (``anodemap.synth``: 64 x 64 patterns, 300 kV,
0.4 degree precession, descan, noise; truth phase 0 amorphous / 1 Si / 2 Li15Si4 / -1 pore):

1. phase and orientation mapping, patterns per second of the whole job:

   * anodemap: the whole ``anodemap diffraction INPUT -o OUTDIR`` command in a subprocess
     (reading the .zspy, direct-beam centring, virtual BF/ADF, 1.5 degree templates of Si
     and Li15Si4 with precession, matching, the 1.0 degree orientation refinement,
     averaged patterns, writing the maps and figures; Python start-up included): once
     with an empty template cache (its libraries built: "first run"), then ``--repeat``
     times with the libraries of that run read back from the cache, as pyxem's library
     is built once before its timed runs;
   * pyxem (its documented route, ``examples/orientation_mapping``): direct-beam centring
     (``center_direct_beam(method="blur")``), polar transform
     (``get_azimuthal_integral2d(mean=True)``), gamma 0.5 and ``get_orientation`` against a
     diffsims ``SimulationGenerator`` library of the same two phases (orix ``Phase.from_cif``
     of our CIFs), rotations from ``orix.sampling.get_sample_reduced_fundamental`` at the
     same 1.5 degree step, with the same precession angle (and, for accuracy only, without).
     The library is built once and its time is reported separately; pyxem's rate is given
     with and without it.

   Accuracy against the truth over non-pore pixels. pyxem has no amorphous class (every
   pattern gets Si or Li15Si4), so its accuracy is given over all non-pore pixels (where
   every amorphous pixel counts as wrong) and over crystalline pixels only; anodemap's is
   given the same two ways. Orientation: misorientation angle (orix, Laue group m-3m,
   proper subgroup 432, which kinematic patterns cannot tell apart from -43m) between
   truth and result on crystalline pixels whose phase was found correctly.

2. virtual bright-field throughput out of core: a lazily written, chunked ``.zspy``
   (``--vi-scan`` squared patterns of 64 x 64 float32, default 512 x 512 = 4.3 GB
   uncompressed) is read by a fresh subprocess per tool: anodemap ``virtual_bf`` on
   ``anodemap.io.load(lazy=True)`` and pyxem ``get_integrated_intensity(CircleROI)`` on
   ``hs.load(lazy=True)``, both with a fixed centre and the same radius; plus a plain
   dask read-and-sum of the same file as the reading-speed reference. Before every run
   the file's pages are dropped from the OS page cache (``posix_fadvise DONTNEED``), so
   reads come from disk. Each subprocess runs under ``RLIMIT_AS`` (address space, default
   ``--memory-limit-gb 3``, below the file size) and reports its peak resident memory
   (``VmHWM`` from ``/proc/self/status``).

Results are printed as JSON and written to ``benchmarks/results/diffraction.json``.
Timings are medians of ``--repeat`` runs (``--vi-repeat`` for the virtual images).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _pagecache import drop_page_cache
from _timing import timed

HERE = Path(__file__).resolve().parent
GAMMA = 0.5  # pyxem's documented gamma correction of the polar patterns


def _git_commit() -> str:
    """The commit measured, with ``+modified: ...`` for uncommitted changes under src/."""
    try:
        git = ["git", "-C", str(HERE.parent)]
        head = subprocess.run(
            [*git, "log", "-1", "--format=%h"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    return head + (f" +modified: {', '.join(changed)}" if changed else "")


# ----------------------------------------------------------------------------- accuracy
def _phase_accuracy(pred: np.ndarray, truth: np.ndarray) -> dict:
    solid = truth >= 0
    cryst = truth >= 1
    out = {
        "non_pore_pixels": float(np.mean(pred[solid] == truth[solid])),
        "crystalline_pixels": float(np.mean(pred[cryst] == truth[cryst])) if cryst.any() else None,
    }
    for label, name in ((0, "amorphous"), (1, "Si"), (2, "Li15Si4")):
        sel = truth == label
        out[f"recall_{name}"] = float(np.mean(pred[sel] == label)) if sel.any() else None
    return out


def _misorientation(
    euler_found: np.ndarray, euler_truth: np.ndarray, ok: np.ndarray, laue_proper
) -> dict:
    from orix.quaternion import Orientation

    sel = ok & np.isfinite(euler_found).all(-1) & np.isfinite(euler_truth).all(-1)
    if not sel.any():
        return {"n": 0}
    a = Orientation.from_euler(np.deg2rad(euler_found[sel]), symmetry=laue_proper)
    b = Orientation.from_euler(np.deg2rad(euler_truth[sel]), symmetry=laue_proper)
    ang = np.rad2deg(a.angle_with(b))
    return {
        "n": int(sel.sum()),
        "median_deg": float(np.median(ang)),
        "p90_deg": float(np.percentile(ang, 90)),
        "fraction_within_2_deg": float(np.mean(ang <= 2.0)),
        "fraction_within_5_deg": float(np.mean(ang <= 5.0)),
    }


# ----------------------------------------------------------------------------- anodemap
def _anodemap_run(path: Path, outdir: Path, cache: Path) -> float:
    """Wall time of the whole command, its template cache in ``cache``."""
    cmd = [
        sys.executable,
        "-c",
        "import sys;from anodemap.cli import main, exit_now;exit_now(main(sys.argv[1:]))",
        "diffraction",
        str(path),
        "-o",
        str(outdir),
        "--no-progress",
    ]
    env = dict(os.environ, ANODEMAP_CACHE_DIR=str(cache))
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - t0


def _anodemap_maps(outdir: Path) -> tuple[np.ndarray, np.ndarray]:
    from anodemap.io import load
    from anodemap.synth.diffraction import PHASE_LABELS

    summary = json.loads((outdir / "summary.json").read_text())
    by_name = {name: label for label, name in PHASE_LABELS.items()}
    found = np.asarray(load(outdir / "phase.hspy").data).astype(int)
    pred = np.full(found.shape, -2, dtype=int)  # -2: a label the truth does not have
    for label, name in summary["phase_labels"].items():
        if name in by_name:
            pred[found == int(label)] = by_name[name]
    euler = np.asarray(load(outdir / "orientations.hspy").data, dtype=float)
    return pred, euler


# ----------------------------------------------------------------------------- pyxem
def _pyxem_library(cifs: dict, energy_kev: float, precession: float, step: float, s_max: float):
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.crystal_map import Phase
    from orix.sampling import get_sample_reduced_fundamental

    phases, rotations = [], []
    for name, cif in cifs.items():
        ph = Phase.from_cif(str(cif))
        ph.name = name
        phases.append(ph)
        rotations.append(
            get_sample_reduced_fundamental(resolution=step, point_group=ph.point_group)
        )
    gen = SimulationGenerator(energy_kev, precession_angle=precession, minimum_intensity=1e-4)
    sim = gen.calculate_diffraction2d(
        phases,
        rotation=rotations,
        max_excitation_error=0.05,
        reciprocal_radius=s_max,
        with_direct_beam=False,
    )
    return sim, [int(r.size) for r in rotations]


def _pyxem_signal(patterns: np.ndarray, scale: float, energy_kev: float):
    import pyxem as pxm

    s = pxm.signals.ElectronDiffraction2D(patterns)
    s.calibration.scale = scale
    s.calibration.units = "k_A^-1"
    s.beam_energy = energy_kev
    return s


def _pyxem_map(s, sim, npt: int, npt_azim: int):
    """Centring, polar transform, matching: pyxem's documented orientation-mapping route."""
    c = s.center_direct_beam(method="blur", sigma=1, inplace=False, show_progressbar=False)
    c.calibration.center = None
    polar = c.get_azimuthal_integral2d(npt=npt, npt_azim=npt_azim, inplace=False, mean=True)
    polar = polar**GAMMA
    return polar.get_orientation(sim, n_best=1, frac_keep=0.1, show_progressbar=False)


def _pyxem_maps(om, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Phase labels (1 Si, 2 Li15Si4) and Euler angles of the best match.

    The phase is read from the template index (pyxem 0.21's ``to_phase_index`` fails for
    ``n_best=1`` and its ``searchsorted`` puts the first template of a phase in the one
    before); the rotation is pyxem's own ``to_rotation`` (template and in-plane angle).
    """
    data = np.asarray(om.data)  # (ny, nx, n_best, [index, correlation, rotation, factor])
    index = data[..., 0, 0].astype(int)
    pred = np.searchsorted(np.cumsum(sizes), index, side="right") + 1
    rot = om.to_rotation()
    # pyxem 0.21 reports, for patterns drawn in anodemap's sample frame (X along kx, Y
    # along ky, beam along +Z), the rotation g diag(-1, 1, -1) where anodemap reports g
    # (tests/diffraction/test_orientation_independent.py checks it): brought into anodemap's frame
    # before it is compared with the truth
    g = rot.to_matrix().reshape(-1, 3, 3) @ np.diag([-1.0, 1.0, -1.0])
    from orix.quaternion import Rotation

    euler = np.rad2deg(Rotation.from_matrix(g).to_euler())
    euler = euler.reshape(*index.shape, -1, 3)[..., 0, :]
    return pred, euler


# ----------------------------------------------------------------------------- virtual
_CHILD_PRELUDE = (
    "import resource,sys,time,json\n"
    "lim=int(sys.argv[2])\n"
    "if lim>0: resource.setrlimit(resource.RLIMIT_AS,(lim,lim))\n"
    "path=sys.argv[1];cy,cx,r=map(float,sys.argv[3:6])\n"
)
_CHILD_END = (
    "\nhwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "print('RESULT',json.dumps({'s':dt,'vmhwm_bytes':int(hwm.split()[1])*1024,"
    "'checksum':float(np.nansum(img))}))\n"
)
_CHILDREN = {
    "anodemap_virtual_bf": (
        "import numpy as np\n"
        "from anodemap.io import load\n"
        "from anodemap.diffraction.virtual import virtual_bf\n"
        "t0=time.perf_counter();ds=load(path,lazy=True)\n"
        "img=virtual_bf(ds,r,center=(cy,cx));dt=time.perf_counter()-t0"
    ),
    "pyxem_integrated_intensity": (
        "import numpy as np,hyperspy.api as hs\n"
        "hs.set_log_level('ERROR')\n"
        "t0=time.perf_counter();s=hs.load(path,lazy=True)\n"
        "s.set_signal_type('electron_diffraction')\n"
        "ax=s.axes_manager.signal_axes\n"
        "roi=hs.roi.CircleROI(cx=ax[0].index2value(0)+cx*ax[0].scale,"
        "cy=ax[1].index2value(0)+cy*ax[1].scale,r=r*ax[0].scale)\n"
        "v=s.get_integrated_intensity(roi);v.compute(show_progressbar=False)\n"
        "img=np.asarray(v.data);dt=time.perf_counter()-t0"
    ),
    "dask_read_and_sum": (
        "import numpy as np\n"
        "from anodemap.io import load\n"
        "t0=time.perf_counter();ds=load(path,lazy=True)\n"
        "img=ds.data.sum(axis=(-2,-1)).compute();dt=time.perf_counter()-t0"
    ),
}


def _write_big(patterns: np.ndarray, scale: float, center, n_scan: int, path: Path) -> dict:
    import dask.array as da

    from anodemap.io import Axis, Dataset, save

    ny, nx, ky, kx = patterns.shape
    reps = (-(-n_scan // ny), -(-n_scan // nx), 1, 1)
    src = da.from_array(patterns.astype(np.float32), chunks=(ny, nx, ky, kx))
    big = da.tile(src, reps)[:n_scan, :n_scan].rechunk((16, 256, ky, kx))
    axes = [
        Axis("y", n_scan, 5.0, 0.0, "nm"),
        Axis("x", n_scan, 5.0, 0.0, "nm"),
        Axis("ky", ky, scale, -center[0] * scale, "1/Å", navigate=False),
        Axis("kx", kx, scale, -center[1] * scale, "1/Å", navigate=False),
    ]
    ds = Dataset(big, axes)
    ds.set_meta("Signal.signal_type", "electron_diffraction")
    t0 = time.perf_counter()
    save(ds, path)
    t_write = time.perf_counter() - t0
    disk = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {
        "scan": [n_scan, n_scan],
        "pattern": [ky, kx],
        "dtype": "float32",
        "chunks": [16, 256, ky, kx],
        "uncompressed_bytes": int(big.nbytes),
        "bytes_on_disk": int(disk),
        "write_s": t_write,
    }


def _virtual_bench(path: Path, n_patterns: int, center, radius: float, limit: int, repeat: int):
    out = {}
    for name, body in _CHILDREN.items():
        code = _CHILD_PRELUDE + body + _CHILD_END
        times, peaks, err = [], [], None
        for _ in range(repeat):
            drop_page_cache([path])
            args = [str(path), str(limit), str(center[0]), str(center[1]), str(radius)]
            res = subprocess.run(
                [sys.executable, "-c", code, *args], capture_output=True, text=True
            )
            if res.returncode != 0 or "RESULT" not in res.stdout:
                err = res.stderr.strip().splitlines()[-1:] or [f"exit {res.returncode}"]
                break
            r = json.loads(res.stdout.split("RESULT", 1)[1])
            times.append(r["s"])
            peaks.append(r["vmhwm_bytes"])
        if err is not None:
            out[name] = {"error": err[0]}
            continue
        t = statistics.median(times)
        out[name] = {
            "s": t,
            "patterns_per_s": n_patterns / t,
            "read_MB_per_s": n_patterns * 64 * 64 * 4 / t / 1e6,
            "peak_rss_bytes": int(max(peaks)),
        }
    return out


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", nargs=2, type=int, default=[48, 48], help="scan of the mapping test")
    ap.add_argument("--pattern-size", type=int, default=64)
    ap.add_argument("--precession", type=float, default=0.4, help="degrees")
    ap.add_argument("--step", type=float, default=1.5, help="template step in degrees (both)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--npt-azim", type=int, default=360, help="pyxem polar azimuthal bins")
    ap.add_argument(
        "--npt",
        type=int,
        help="pyxem polar radial bins (default: one detector pixel per bin out to the corner)",
    )
    ap.add_argument("--vi-scan", type=int, default=512, help="virtual-image file: N x N scan")
    ap.add_argument("--vi-repeat", type=int, default=1, help="repeats of the virtual runs")
    ap.add_argument("--memory-limit-gb", type=float, default=3.0, help="RLIMIT_AS of the runs")
    ap.add_argument("--skip-virtual", action="store_true")
    ap.add_argument("--workdir", help="where to write the files (default: a temporary folder)")
    args = ap.parse_args(argv)

    import hyperspy.api as hs

    from anodemap.diffraction.crystal import load_phase, structure_path
    from anodemap.diffraction.templates import generate_templates
    from anodemap.io import save
    from anodemap.synth import make_phantom
    from anodemap.synth.diffraction import simulate_diffraction, to_dataset

    hs.set_log_level("ERROR")
    commit = _git_commit()  # the code measured: taken before the runs
    shape = tuple(args.shape)
    size = args.pattern_size
    print(f"simulating {shape[0]} x {shape[1]} patterns of {size} x {size} ...", flush=True)
    sim = simulate_diffraction(
        make_phantom(shape, seed=args.seed),
        pattern_shape=(size, size),
        precession_angle_deg=args.precession,
        seed=args.seed,
    )
    truth = np.asarray(sim.truth["phase"]).astype(int)
    truth_euler = np.asarray(sim.truth["euler_deg"], dtype=float)
    n = shape[0] * shape[1]
    energy = float(sim.beam_energy_kev)
    s_max = float(sim.scale) * (size // 2)  # the inscribed circle of the detector
    laue_proper = load_phase_laue()
    npt = args.npt or int(np.ceil(np.sqrt(2.0) * size / 2))

    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        path = save(to_dataset(sim), tmp / "sped.zspy")

        # ---- anodemap: the whole command
        print("anodemap diffraction ...", flush=True)
        # first with an empty template cache (the libraries built, as on a first run),
        # then ``--repeat`` runs with the libraries of that run read back, as pyxem's is
        # built once before its timed runs
        t_first = _anodemap_run(path, tmp / "out_first", tmp / "cache")
        times = [_anodemap_run(path, tmp / f"out{i}", tmp / "cache") for i in range(args.repeat)]
        t_am = statistics.median(times)
        am_pred, am_euler = _anodemap_maps(tmp / "out0")
        t_tpl, libs = timed(
            lambda: [
                generate_templates(
                    load_phase(p),
                    energy,
                    float(sim.scale),
                    args.precession,
                    args.step,
                    detector_shape=(size, size),
                    include_mirrored=True,
                )
                for p in ("Si", "Li15Si4")
            ],
            1,
        )

        # ---- pyxem: library once, then centring + polar + matching
        print("pyxem library and matching ...", flush=True)
        cifs = {p: structure_path(p) for p in ("Si", "Li15Si4")}
        t_lib, (px_sim, sizes) = timed(
            lambda: _pyxem_library(cifs, energy, args.precession, args.step, s_max), 1
        )
        sig = _pyxem_signal(sim.patterns, float(sim.scale), energy)
        t_px, om = timed(lambda: _pyxem_map(sig, px_sim, npt, args.npt_azim), args.repeat)
        px_pred, px_euler = _pyxem_maps(om, sizes)
        # accuracy without precession in the library (as pyxem users often run it)
        px_sim0, _ = _pyxem_library(cifs, energy, 0.0, args.step, s_max)
        px_pred0, px_euler0 = _pyxem_maps(_pyxem_map(sig, px_sim0, npt, args.npt_azim), sizes)

        am_rate, px_rate = n / t_am, n / t_px
        am_rate_first = n / t_first
        px_rate_lib = n / (t_px + t_lib)

        def orient(pred, euler):
            return _misorientation(euler, truth_euler, (truth >= 1) & (pred == truth), laue_proper)

        mapping = {
            "scan": list(shape),
            "n_patterns": n,
            "truth_counts": {
                name: int(np.sum(truth == k))
                for k, name in ((-1, "pore"), (0, "amorphous"), (1, "Si"), (2, "Li15Si4"))
            },
            "step_deg": args.step,
            "pyxem_polar_bins": {"radial": npt, "azimuthal": args.npt_azim, "gamma": GAMMA},
            "precession_deg": args.precession,
            "templates": {
                "anodemap_per_phase": {lib.phase: int(len(lib.euler)) for lib in libs},
                "anodemap_generate_s": t_tpl,
                "pyxem_per_phase": dict(zip(cifs, sizes, strict=True)),
                "pyxem_library_s": t_lib,
            },
            "patterns_per_s": {
                "anodemap_whole_command": am_rate,
                "anodemap_first_run_libraries_built": am_rate_first,
                "pyxem_centre_polar_match": px_rate,
                "pyxem_including_library": px_rate_lib,
                "ratio": am_rate / px_rate,
                "ratio_first_run_vs_pyxem_including_library": am_rate_first / px_rate_lib,
                "ratio_first_run_vs_pyxem": am_rate_first / px_rate,
            },
            "seconds": {
                "anodemap_whole_command": t_am,
                "anodemap_first_run": t_first,
                "pyxem_centre_polar_match": t_px,
            },
            "phase_accuracy": {
                "anodemap": _phase_accuracy(am_pred, truth),
                "pyxem_precession_library": _phase_accuracy(px_pred, truth),
                "pyxem_no_precession_library": _phase_accuracy(px_pred0, truth),
                "note": "pyxem has no amorphous class: over non-pore pixels every amorphous "
                "pixel counts as wrong for it; crystalline_pixels leaves them out",
            },
            "orientation_error": {
                "anodemap": orient(am_pred, am_euler),
                "pyxem_precession_library": orient(px_pred, px_euler),
                "pyxem_no_precession_library": orient(px_pred0, px_euler0),
            },
        }

        virtual = None
        if not args.skip_virtual:
            print(f"writing a {args.vi_scan} x {args.vi_scan} scan .zspy ...", flush=True)
            big = tmp / "big.zspy"
            info = _write_big(sim.patterns, float(sim.scale), sim.center, args.vi_scan, big)
            limit = int(args.memory_limit_gb * 2**30)
            print("virtual bright field, out of core ...", flush=True)
            radius = 6.0
            runs = _virtual_bench(
                big, args.vi_scan**2, sim.center, radius, limit, max(1, args.vi_repeat)
            )
            a, p = runs.get("anodemap_virtual_bf", {}), runs.get("pyxem_integrated_intensity", {})
            virtual = {
                "file": info,
                "memory_limit_RLIMIT_AS_bytes": limit,
                "page_cache": "dropped (posix_fadvise DONTNEED) before every run",
                "bf_radius_px": radius,
                "runs": runs,
                "ratio_anodemap_to_pyxem": (
                    a["patterns_per_s"] / p["patterns_per_s"]
                    if "patterns_per_s" in a and "patterns_per_s" in p
                    else None
                ),
            }

    out = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "anodemap_commit": commit,
        "versions": _versions(),
        "pattern": [size, size],
        "mapping": mapping,
        "virtual_image": virtual,
    }
    print(json.dumps(out, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "diffraction.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


def load_phase_laue():
    """Proper rotations of the Laue group m-3m (both phases), as an orix Symmetry."""
    from orix.quaternion.symmetry import Oh

    return Oh.laue_proper_subgroup


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("anodemap", "pyxem", "diffsims", "orix", "hyperspy", "dask", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


if __name__ == "__main__":
    sys.exit(main())
