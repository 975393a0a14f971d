"""Benchmark: anodemap against exspy on the same simulated spectrum image.

One command (not a test):

    python benchmarks/bench_eels.py                # 256 x 256 x 1600, as in the issue
    python benchmarks/bench_eels.py --shape 64 64  # quick look

It measures, on the same simulated low-loss spectrum image:

1. plasmon fitting alone: exspy ``model.multifit`` (Lorentzian + Offset, the mean
   spectrum's fit as starting values everywhere) against anodemap's ``fit_plasmon``
   with the same model and window, on the same aligned spectra: pixels per second and
   the agreement of the peak positions where both converged;
2. the whole job: exspy zero-loss alignment + multifit against the whole
   ``anodemap eels`` command (alignment, thickness, Richardson–Lucy, fit, windows, Li/Si,
   writing), per pixel, and anodemap's peak memory (max RSS of the command) relative to
   the size of the data; also without the oxide peak (``--oxide-peak off``: its cost).

exspy is timed on a random subset of pixels (``--exspy-pixels``, default 2048) because it
fits pixel by pixel in Python at a constant cost per pixel; the per-pixel rate is what
is compared. Results are printed and written to ``benchmarks/results/eels.json``.
Timings are medians of ``--repeat`` runs.
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

from _timing import timed

HERE = Path(__file__).resolve().parent


def _exspy_signal(spectra: np.ndarray, energy: np.ndarray):
    import hyperspy.api as hs

    s = hs.signals.Signal1D(spectra)
    s.set_signal_type("EELS")
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = (
        float(energy[0]),
        float(energy[1] - energy[0]),
        "eV",
        "Energy loss",
    )
    return s


def _exspy_fit(s, window):
    import hyperspy.api as hs

    m = s.create_model(auto_background=False, auto_add_edges=False)
    lor = hs.model.components1D.Lorentzian()
    off = hs.model.components1D.Offset()
    m.extend([lor, off])
    m.set_signal_range(*window)
    # starting values from the mean spectrum's fit, assigned to every pixel
    mean = s.mean(axis=tuple(range(s.axes_manager.navigation_dimension)))
    mm = mean.create_model(auto_background=False, auto_add_edges=False)
    l0, o0 = hs.model.components1D.Lorentzian(), hs.model.components1D.Offset()
    mm.extend([l0, o0])
    mm.set_signal_range(*window)
    e = mean.axes_manager.signal_axes[0].axis
    sel = (e >= window[0]) & (e <= window[1])
    l0.centre.value = float(e[sel][np.argmax(mean.data[sel])])
    l0.gamma.value = 2.0
    l0.A.value = float(mean.data[sel].max() * np.pi * 2.0)
    mm.fit()
    for a, b in ((lor, l0), (off, o0)):
        for pa, pb in zip(a.parameters, b.parameters, strict=True):
            pa.value = pb.value
            pa.assign_current_value_to_all()
    m.multifit(show_progressbar=False)
    return lor.centre.map["values"].copy(), lor.centre.map["is_set"].copy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", nargs=2, type=int, default=[256, 256])
    ap.add_argument("--channels", type=int, default=1600)
    ap.add_argument("--exspy-pixels", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--window", nargs=2, type=float, default=[10.0, 22.0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import hyperspy.api as hs

    from anodemap.eels.pipeline import eels_dataset
    from anodemap.eels.plasmon import fit_plasmon
    from anodemap.eels.zlp import align_zlp, locate_zlp
    from anodemap.io import save
    from anodemap.synth import make_phantom, simulate_eels

    hs.set_log_level("ERROR")  # exspy warns for every pixel whose fit stops at maxfev
    shape = tuple(args.shape)
    window = tuple(args.window)
    print(f"simulating {shape[0]} x {shape[1]} x {args.channels} ...", flush=True)
    sim = simulate_eels(
        make_phantom(shape, seed=args.seed), n_channels=args.channels, seed=args.seed
    )
    spectra, energy = sim.spectra, sim.energy
    n = spectra.shape[0] * spectra.shape[1]
    flat = spectra.reshape(n, -1)
    pos, _, _ = locate_zlp(flat, energy)
    aligned = align_zlp(flat, energy, pos, target=0.0).astype(np.float32)

    rng = np.random.default_rng(args.seed)
    sub = np.sort(rng.choice(n, size=min(args.exspy_pixels, n), replace=False))

    # 1. plasmon fit alone, same model, window and aligned data
    # same model (one Lorentzian + offset, no plural term), window and weighting as exspy
    # (unweighted least squares: sigma=1)
    same = {
        "window": window,
        "model": "lorentzian",
        "background": "offset",
        "sigma": 1.0,
        "second_plasmon": False,
    }
    fit_plasmon(aligned[:64], energy, **same)  # compile
    t_am, fit = timed(lambda: fit_plasmon(aligned, energy, **same), args.repeat)
    s_sub = _exspy_signal(aligned[sub], energy)
    t_ex, (centre_ex, set_ex) = timed(lambda: _exspy_fit(s_sub, window), 1)
    am_rate, ex_rate = n / t_am, sub.size / t_ex
    # compare where both converged on material (pores have no plasmon to fit)
    material = np.isfinite(sim.truth["plasmon_peak_eV"]).ravel()[sub]
    both = set_ex & (np.asarray(fit.status)[sub] == 0) & np.isfinite(centre_ex) & material
    d = np.abs(np.asarray(fit.position)[sub][both] - centre_ex[both])

    # 2. whole job: exspy alignment + fit against the whole anodemap eels command
    s_raw = _exspy_signal(flat[sub].astype(np.float32), energy)

    def exspy_whole():
        s = s_raw.deepcopy()
        s.align_zero_loss_peak(subpixel=True, show_progressbar=False, crop=False)
        return _exspy_fit(s, window)

    with tempfile.TemporaryDirectory() as tmp:
        # The input as an instrument writes it (DigitalMicrograph files are not
        # compressed): an uncompressed .hspy. rosettasciio's default gzip .hspy is timed
        # too; decompressing it costs more than the whole analysis (reported apart).
        files = {
            "rl": Path(tmp) / "sim.hspy",
            "none": Path(tmp) / "sim.hspy",
            "rl_gzip_input": Path(tmp) / "sim_gzip.hspy",
            # the cost of the oxide peak beside the Li_xSi one (docs/eels.md)
            "rl_oxide_peak_off": Path(tmp) / "sim.hspy",
        }
        ds = eels_dataset(spectra, energy, pixel_size_nm=5.0)
        save(ds, files["rl"], writer_options={"compression": None})
        save(ds, files["rl_gzip_input"])
        data_bytes = spectra.nbytes

        def command(method: str) -> list[str]:
            return [
                sys.executable,
                "-c",
                # the `anodemap` command (main, then its exit), reporting VmHWM: peak
                # resident memory of this process image (ru_maxrss would carry the
                # parent's high-water mark across exec)
                "import sys;from anodemap.cli import main, exit_now;r=main(sys.argv[1:]);"
                "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
                "print('MAXRSS_KB',hwm.split()[1]);exit_now(r)",
                "eels",
                str(files[method]),
                "-o",
                str(Path(tmp) / "out"),
                "--no-progress",
                "--deconvolve",
                "none" if method == "none" else "rl",
                *(["--oxide-peak", "off"] if method == "rl_oxide_peak_off" else []),
            ]

        # exspy and anodemap alternate, so that a slow spell of the shared machine
        # falls on both; the ratio is the median of the per-round ratios
        times: dict[str, list[float]] = {m: [] for m in files}
        peaks: dict[str, list[int]] = {m: [] for m in files}
        t_exspy: list[float] = []
        for _ in range(args.repeat):
            t_exspy.append(timed(exspy_whole, 1)[0])
            for method in files:
                t0 = time.perf_counter()
                res = subprocess.run(command(method), capture_output=True, text=True, check=True)
                times[method].append(time.perf_counter() - t0)
                peaks[method].append(int(res.stdout.split("MAXRSS_KB")[1].split()[0]) * 1024)
        t_cmd = {m: statistics.median(v) for m, v in times.items()}
        rss = {m: statistics.median(v) for m, v in peaks.items()}
        ratios = {
            m: statistics.median(
                (n / t) / (sub.size / te) for t, te in zip(v, t_exspy, strict=True)
            )
            for m, v in times.items()
        }
    whole_ex_rate = sub.size / statistics.median(t_exspy)

    out = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "shape": [*shape, args.channels],
        "exspy_pixels": int(sub.size),
        "fit_pixels_per_s": {"anodemap": am_rate, "exspy": ex_rate, "ratio": am_rate / ex_rate},
        "fit_agreement_eV": {
            "n_both_converged": int(both.sum()),
            "median_abs_delta": float(np.median(d)) if d.size else None,
            "p95_abs_delta": float(np.percentile(d, 95)) if d.size else None,
            "fraction_within_0.005_eV": float(np.mean(d <= 0.005)) if d.size else None,
        },
        "whole_pixels_per_s": {
            "exspy_align_plus_fit": whole_ex_rate,
            **{f"anodemap_eels_{m}": n / t for m, t in t_cmd.items()},
            **{f"ratio_{m}": r for m, r in ratios.items()},
        },
        "anodemap_eels_command_s": t_cmd,
        "exspy_align_plus_fit_s": {"pixels": int(sub.size), "median": statistics.median(t_exspy)},
        "peak_memory": {
            "data_bytes": data_bytes,
            "max_rss_bytes": rss,
            "ratio_to_data": {m: v / data_bytes for m, v in rss.items()},
        },
    }
    print(json.dumps(out, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "eels.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
