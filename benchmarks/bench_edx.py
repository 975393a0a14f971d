"""Benchmark: anodemap edx against exspy on the same simulated EDX spectrum image.

One command (not a test):

    python benchmarks/bench_edx.py                 # 128 x 128 x 2048, as in issue 18
    python benchmarks/bench_edx.py --shape 32 32   # quick look

On one simulated spectrum image (anodemap.synth.edx: Si Ka/Kb, O Ka on bremsstrahlung,
Poisson) it measures

1. the model fit: exspy's ``create_model()`` + ``multifit()`` (non-linear least squares,
   pixel by pixel, timed on ``--exspy-pixels`` pixels: its cost per pixel is constant)
   and its linear ``multifit(optimizer="lstsq")`` on the whole map, against anodemap's
   whole-map linear fit (``analyse_edx``, method fit, the model exspy fits:
   ``background="polynomial"``, order 6, and anodemap's default);
2. the windows: exspy's ``get_lines_intensity`` with ``estimate_background_windows``
   against ``analyse_edx(method="windows")``;
3. anodemap's peak memory (max RSS of ``anodemap edx`` on the file, in a subprocess) over
   the size of the data.

Results are printed and written to ``benchmarks/results/edx.json``. Timings are medians
of ``--repeat`` runs; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from _timing import timed

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", nargs=2, type=int, default=[128, 128])
    ap.add_argument("--exspy-pixels", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    logging.getLogger("exspy").setLevel(logging.ERROR)
    import hyperspy.api  # noqa: F401  (registers exspy's signal types)

    from anodemap.edx.parameters import EDXParameters
    from anodemap.edx.pipeline import analyse_edx
    from anodemap.io import save
    from anodemap.synth import make_phantom
    from anodemap.synth.edx import edx_dataset, simulate_edx

    shape = tuple(args.shape)
    sim = simulate_edx(make_phantom(shape, seed=1), seed=1)
    ds = edx_dataset(sim)
    n_pix = shape[0] * shape[1]
    lines = ("Si_Ka", "O_Ka")
    res: dict = {"shape": [*shape, sim.spectra.shape[-1]], "machine": platform.platform()}

    t_ours, r = timed(
        lambda: analyse_edx(
            ds,
            EDXParameters(
                lines=lines,
                background="polynomial",
                background_order=6,
                weighting="uniform",
                energy_range_ev=(0.0, float(sim.energy_ev[-1])),
            ),
            progress=False,
        ),
        args.repeat,
    )
    t_local, r_local = timed(
        lambda: analyse_edx(ds, EDXParameters(lines=lines), progress=False), args.repeat
    )
    t_win, r_win = timed(
        lambda: analyse_edx(ds, EDXParameters(lines=lines, method="windows"), progress=False),
        args.repeat,
    )

    s = ds.to_hyperspy()
    s.set_microscope_parameters(beam_energy=200.0, energy_resolution_MnKa=130.0)
    s.set_lines(list(lines))
    k = max(1, min(int(np.sqrt(args.exspy_pixels)), *shape))  # a k x k block of the map
    sub = s.inav[:k, :k]
    idx = (np.arange(k)[:, None] * shape[1] + np.arange(k)[None, :]).ravel()
    m = sub.create_model()
    t0 = time.perf_counter()
    m.multifit()
    t_nlls = (time.perf_counter() - t0) / idx.size
    nlls = {
        i.metadata.Sample.xray_lines[0]: np.asarray(i.data).ravel() for i in m.get_lines_intensity()
    }
    mf = s.create_model()
    t_lstsq, _ = timed(lambda: mf.multifit(optimizer="lstsq"), 1)
    lin = {
        i.metadata.Sample.xray_lines[0]: np.asarray(i.data).ravel()
        for i in mf.get_lines_intensity()
    }
    t_exwin, ex_win = timed(
        lambda: s.get_lines_intensity(
            xray_lines=list(lines),
            background_windows=s.estimate_background_windows(xray_lines=list(lines)),
        ),
        args.repeat,
    )
    fit = {}
    for line in lines:
        ours = r.maps[line].ravel()
        fit[line] = {
            "median_rel_diff_vs_exspy_nlls": float(
                np.median(np.abs(ours[idx] - nlls[line]) / np.maximum(np.abs(nlls[line]), 1))
            ),
            "total_rel_diff_vs_exspy_lstsq": float(
                (np.nansum(ours) - lin[line].sum()) / lin[line].sum()
            ),
            "total_rel_error_vs_truth_polynomial": float(
                np.nansum(ours) / sim.truth[line].sum() - 1
            ),
            "total_rel_error_vs_truth_local": float(
                np.nansum(r_local.maps[line]) / sim.truth[line].sum() - 1
            ),
        }
    win = {
        line: float(
            (np.nansum(r_win.maps[line]) - float(np.asarray(ex_win[j].data).sum()))
            / float(np.asarray(ex_win[j].data).sum())
        )
        for j, line in enumerate(lines)
    }
    res["seconds"] = {
        "anodemap_fit_polynomial_whole_map": t_ours,
        "anodemap_fit_local_whole_map": t_local,
        "anodemap_windows_whole_map": t_win,
        "exspy_multifit_nlls_per_pixel": t_nlls,
        "exspy_multifit_nlls_whole_map_extrapolated": t_nlls * n_pix,
        "exspy_multifit_lstsq_whole_map": t_lstsq,
        "exspy_windows_whole_map": t_exwin,
    }
    res["speedup_fit_vs_exspy_nlls"] = t_nlls * n_pix / t_ours
    res["agreement_fit"] = fit
    res["agreement_windows_total_rel_diff"] = win

    with tempfile.TemporaryDirectory() as tmp:
        path = save(ds, Path(tmp) / "edx.hspy", writer_options={"compression": None})
        code = (
            "import resource, sys; from anodemap.cli import main; "
            f"main(['edx', r'{path}', '-o', r'{tmp}/out', '--no-figures', '--no-progress', '-q']); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        base = (
            "import resource, dask.array, rsciio.hspy, anodemap.edx.pipeline, anodemap.cli; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        rss = int(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True
            ).stdout.split()[-1]
        )
        rss0 = int(
            subprocess.run(
                [sys.executable, "-c", base], capture_output=True, text=True
            ).stdout.split()[-1]
        )
    data_mb = sim.spectra.nbytes / 2**20
    res["memory"] = {
        "data_MiB": data_mb,
        "max_rss_MiB": rss / 1024,
        "max_rss_above_imports_MiB": (rss - rss0) / 1024,
        "above_imports_over_data": (rss - rss0) / 1024 / data_mb,
    }
    print(json.dumps(res, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "edx.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
