"""EDX maps as an analysis of the contract (:mod:`anodemap.analysis.base`).

``anodemap edx`` and a study's EDX datasets run through :class:`EDXAnalysis`: read an
EDX spectrum image with the images of its scan (:func:`anodemap.edx.reading.load_edx`),
map the net intensities of its lines (:func:`anodemap.edx.pipeline.analyse_edx`), write
them (:func:`anodemap.edx.output.write_edx_results`) and, for a simulated dataset,
compare them with the truth.

Examples
--------
>>> from anodemap.analysis import get_analysis
>>> get_analysis("edx").data_kind
'EDX spectrum image'
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.analysis.base import Analysis, Context
from anodemap.edx.parameters import EDXParameters

__all__ = ["EDXAnalysis"]


class EDXAnalysis(Analysis):
    """Net intensity maps of X-ray lines (with 1σ) of an EDX spectrum image."""

    name = "edx"
    title = "EDX maps: net X-ray line intensities with their 1σ (fit or windows)"
    data_kind = "EDX spectrum image"
    Parameters = EDXParameters
    version = "1"
    input_help = (
        "EDX spectrum image, line scan or spectrum (.bcf, .emd, .hspy, ... any rosettasciio format)"
    )

    def load(self, path: Path, *, signal: int | str | None = None) -> Any:
        from anodemap.edx.reading import load_edx

        return load_edx(path, signal=signal)

    def accepts(self, dataset: Any) -> bool:
        from anodemap.io import kinds

        return kinds.edx_spectra(dataset) is None

    def analyse(
        self, dataset: Any, parameters: Any, context: Context, files: Mapping[str, Any]
    ) -> Any:
        from anodemap.edx.pipeline import analyse_edx

        p = parameters
        context.log(
            f"spectra: scan {dataset.nav_shape or '(single spectrum)'}, {dataset.sig_shape[0]} "
            f"channels; method {p.method}" + (f", binned {p.bin} x {p.bin}" if p.bin > 1 else "")
        )
        t0 = time.perf_counter()
        result = analyse_edx(dataset, p, client=context.client, progress=context.progress)
        context.log(
            f"lines {', '.join(result.lines)}; FWHM at Mn Ka {result.fwhm_mn_ka_ev:g} eV "
            f"({result.fwhm_source}); {result.maps['status'].size} pixels in "
            f"{time.perf_counter() - t0:.2f} s"
        )
        return result

    def write(
        self, result: Any, outdir: Path, context: Context, dataset: Any, worker: Any
    ) -> dict[str, Any]:
        from anodemap.edx.output import write_edx_results

        return write_edx_results(
            result, outdir, figures=context.figures, worker=worker, dataset=dataset
        )

    def output_names(self) -> list[str]:
        from anodemap.edx.output import output_names

        return list(output_names())

    def describe(self, summary: Mapping[str, Any], context: Context) -> None:
        n, ok = summary["n_pixels"], summary["n_ok"]
        context.log(f"{ok} of {n} pixels analysed ({n - ok} without counts or invalid)")
        if summary.get("pca"):
            pca = summary["pca"]
            context.log(
                f"Poisson-weighted PCA: {pca['n_components']} components kept ({pca['criterion']}) "
                f"of {pca['n_channels']} channels; the 1σ maps are Poisson noise through that "
                "projection, not the Poisson 1σ of the counts"
            )
            if pca["n_components"] == 1:  # every pixel a multiple of the mean spectrum
                context.log(
                    "warning: one component kept: every pixel's spectrum is the mean spectrum "
                    "scaled, so the line ratios are the same everywhere (the data hold no "
                    "composition contrast above the noise by this criterion); run without "
                    "--pca to see the raw contrast"
                )
        for name, a in (summary.get("artefacts") or {}).items():
            frac = a.get("fraction_of_parent")
            context.log(
                f"{name}: {a['mean_counts_per_pixel']:.3g} counts per pixel in the mean spectrum"
                + (f" ({100 * frac:.2f} % of its line)" if frac is not None else "")
            )
        for name, s in summary["net_counts"].items():
            if s["total"] is None:
                continue
            context.log(
                f"{name}: {s['total']:.6g} ± {s['total_uncertainty']:.3g} net counts in all, "
                f"median {s['median']:.4g} ± {s['median_uncertainty']:.3g} per pixel, "
                f"{100 * s['fraction_above_3_sigma']:.0f} % of pixels above 3σ"
            )

    def compare_with_truth(
        self, result: Any, truth_dir: Path, outdir: Path, context: Context
    ) -> dict[str, Any]:
        """Errors of the line maps against the truth maps in ``truth_dir`` (as
        ``anodemap simulate edx`` writes them): ``truth_comparison.json``."""
        from anodemap.io import load
        from anodemap.io.results import write_json
        from anodemap.status import Status

        ok = np.asarray(result.maps["status"]) == int(Status.OK)
        comparison: dict[str, Any] = {"lines": {}, "n_pixels": int(ok.size), "n_ok": int(ok.sum())}
        for name in result.lines:
            path = truth_dir / f"{name}.hspy"
            if not path.exists():
                continue
            truth = np.asarray(load(path).data, dtype=float)
            if truth.shape != ok.shape:
                continue  # binned maps: no pixel-by-pixel truth
            v = np.asarray(result.maps[name])[ok]
            s = np.asarray(result.maps[f"{name}_uncertainty"])[ok]
            t = truth[ok]
            pull = (v - t) / s
            comparison["lines"][name] = {
                "total_relative_error": float((v.sum() - t.sum()) / t.sum()) if t.sum() else None,
                "median_abs_error_counts": float(np.median(np.abs(v - t))),
                "pull_mean": float(np.mean(pull)),
                "pull_std": float(np.std(pull)),
                "max_abs_pull": float(np.max(np.abs(pull))),
            }
        write_json(comparison, outdir / "truth_comparison.json")
        for name, c in comparison["lines"].items():
            context.log(
                f"against the truth, {name}: total {100 * (c['total_relative_error'] or 0):+.2f} %, "
                f"pulls {c['pull_mean']:+.2f} ± {c['pull_std']:.2f} over {comparison['n_ok']} pixels"
            )
        return comparison
