"""Low-loss EELS as an analysis of the contract (:mod:`anodemap.analysis.base`).

``anodemap eels`` and a study's EELS datasets run through :class:`EELSAnalysis`:
read a low-loss spectrum image, map plasmon, Li/Si, thickness and Li-K
(:func:`anodemap.eels.pipeline.analyse_eels`), write them
(:func:`anodemap.eels.output.write_eels_results`) and, for a simulated dataset,
compare them with the truth.

Examples
--------
>>> from anodemap.analysis import get_analysis
>>> get_analysis("eels").files
('calibration', 'adf')
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anodemap.analysis.base import Analysis, Context
from anodemap.eels.parameters import EELSParameters

__all__ = ["EELSAnalysis"]

# the truth maps of anodemap.synth.simulate_eels that the comparison uses
_TRUTH_MAPS = (
    "plasmon_peak_eV",
    "li_per_si",
    "t_over_lambda",
    "t_over_lambda_in_window",
    "oxide_fraction",
    "labels",
    "li_k_counts",
    "li_k_fraction",
)


def _adf_image(path: Path, nav_shape: tuple[int, ...]) -> Any:
    """The image of ``--adf``: the file's one image of the scan's shape, titled ADF
    (so that it is kept as ``adf.hspy``) unless its title says what it is."""
    from anodemap.io.scan_images import read_scan_image

    image = read_scan_image(path, nav_shape, "--adf")
    if "adf" not in image.title.lower():
        image.set_meta("General.title", f"ADF ({path.name})")
    image.set_meta("General.source_file", str(path))
    return image


class EELSAnalysis(Analysis):
    """Plasmon, Li/Si, thickness, Li2O/silicate and Li-K maps of a low-loss EELS SI."""

    name = "eels"
    title = "low-loss EELS maps: plasmon, Li/Si, thickness, Li-K"
    data_kind = "low-loss EELS spectrum image"
    Parameters = EELSParameters
    files = ("calibration", "adf")
    version = "1"
    input_help = "spectrum image, line scan or spectrum (any rosettasciio format)"
    file_options = {
        "calibration": (
            "--calibration",
            "CSV",
            "Li/Si calibration table with header x,plasmon_energy_eV,source (default: the "
            "table shipped with anodemap, docs/eels.md)",
        ),
        "adf": (
            "--adf",
            "IMAGE",
            "the ADF/HAADF image recorded with the spectrum image, when its file is another "
            "(DigitalMicrograph): kept beside the maps as adf.hspy, and what anodemap "
            "correlate registers the maps by (images in the input file itself are kept "
            "without it)",
        ),
    }

    def load(self, path: Path, *, signal: int | str | None = None) -> Any:
        from anodemap.io import kinds, load, load_all
        from anodemap.io.scan_images import ScanDataset, images_of_scan

        ds = load(path, lazy=True, signal=signal, kind=kinds.lowloss_eels, signal_type="EELS")
        # a Velox .emd holds the simultaneous HAADF beside the spectra: kept with the maps
        images = images_of_scan(load_all(path, lazy=True), ds.nav_shape)
        return ScanDataset(ds.data, ds.axes, ds.metadata, ds.original_metadata, images)

    def accepts(self, dataset: Any) -> bool:
        from anodemap.io import kinds

        return kinds.lowloss_eels(dataset) is None

    def analyse(
        self, dataset: Any, parameters: Any, context: Context, files: Mapping[str, Any]
    ) -> Any:
        from anodemap.eels.calibration import Calibration, default_calibration
        from anodemap.eels.pipeline import analyse_eels

        path = files.get("calibration")
        cal = Calibration.from_csv(path) if path else default_calibration()
        images = list(getattr(dataset, "images", []) or [])
        if files.get("adf"):
            images.append(_adf_image(Path(files["adf"]), dataset.nav_shape))
        p = parameters
        window = "auto" if p.window == "auto" else f"{p.window} eV"
        context.log(
            f"spectra: scan {dataset.nav_shape or '(single spectrum)'}, {dataset.sig_shape[0]} "
            f"channels; deconvolution {p.deconvolve}, fit window {window}"
        )
        t0 = time.perf_counter()
        preload = None
        if context.figures:
            from anodemap.plotting import import_in_background

            preload = import_in_background()  # for this process's share of the figures
        result = analyse_eels(
            dataset, p, calibration=cal, client=context.client, progress=context.progress
        )
        context.log(
            f"analysed {result.maps['fit_status'].size} pixels in {time.perf_counter() - t0:.1f} s"
        )
        if result.window_auto is not None:
            w = result.window_auto
            context.log(
                f"fit window (auto): {w['window_eV'][0]:.2f}-{w['window_eV'][1]:.2f} eV around "
                f"the strongest loss peak at {w['strongest_peak_eV']:.2f} eV"
            )
        if preload is not None:
            preload.join()
        result.images = images
        return result

    def write(
        self, result: Any, outdir: Path, context: Context, dataset: Any, worker: Any
    ) -> dict[str, Any]:
        from anodemap.eels.output import write_eels_results

        return write_eels_results(
            result, outdir, figures=context.figures, worker=worker, dataset=dataset
        )

    def output_names(self) -> list[str]:
        from anodemap.eels.output import output_names

        return output_names()

    def describe(self, summary: Mapping[str, Any], context: Context) -> None:
        log = context.log
        e, f = summary["plasmon_energy_eV"], summary["plasmon_fwhm_eV"]
        if e["mean"] is not None:
            log(
                f"plasmon over {summary['n_plasmon_converged']} converged fits "
                f"({100 * summary['fraction_converged']:.1f} %): energy mean {e['mean']:.2f} eV "
                f"(std {e['std']:.2f}), FWHM mean {f['mean']:.2f} eV"
            )
        else:
            log("no plasmon fit converged; see fit_status.hspy and summary.json")
        if summary["window_warning"] is not None:
            log("WARNING: " + summary["window_warning"]["message"])
        ox = summary.get("oxide_peak") or {}  # absent from results before the oxide peak
        if ox.get("n_pixels_two_peak"):
            log(
                f"Li2O/silicate plasmon fitted beside the Li_xSi one in {ox['n_pixels_two_peak']} "
                f"pixels (median {ox['oxide_energy_eV_median']:.1f} eV; oxide_peak_area.hspy): "
                "their Li/Si is the Li_xSi peak's (--oxide-peak off: one peak everywhere)"
            )
        elif ox.get("mode") not in (None, "auto", "off"):
            log(f"oxide peak {ox['mode']}")
        s = summary["li_si_ratio"]
        if s["mean"] is not None:
            log(
                f"Li/Si over {summary['n_valid']} pixels within the calibration: mean "
                f"{s['mean']:.2f}, std {s['std']:.2f}"
            )
        else:
            why = ", ".join(
                f"{n} {name.replace('_', ' ')}"
                for name, n in summary["li_si_status_counts"].items()
                if n and name != "ok"
            )
            log(f"no pixel gave a Li/Si value ({why}); see li_si_status.hspy and summary.json")
        k = summary["li_k_status_counts"]
        n_k = summary["li_k_counts"]["n"]
        log(
            f"Li-K map: {n_k} pixel{'s' if n_k != 1 else ''} with a value, "
            f"{summary['n_pixels'] - n_k - k['no_signal']} flagged (li_k_status.hspy), "
            f"{k['no_signal']} without signal"
        )

    def compare_with_truth(
        self, result: Any, truth_dir: Path, outdir: Path, context: Context
    ) -> dict[str, Any]:
        """Errors of the maps against the truth maps in ``truth_dir`` (as
        ``anodemap simulate eels`` writes them); ``truth_comparison.json`` and ``.png``."""
        import numpy as np

        from anodemap.eels.output import compare_with_truth, truth_figure
        from anodemap.io import load
        from anodemap.io.results import write_json

        truth = {
            k: np.asarray(load(truth_dir / f"{k}.hspy").data)
            for k in _TRUTH_MAPS
            if (truth_dir / f"{k}.hspy").exists()
        }
        comparison = compare_with_truth(result, truth)
        write_json(comparison, outdir / "truth_comparison.json")
        if context.figures:
            from anodemap.plotting import save_figure

            save_figure(truth_figure(result, truth), outdir / "truth_comparison.png")
        e = comparison["plasmon_energy_error_eV"]["median_abs"]
        x = comparison["li_si_error"]["median_abs"]
        if e is not None:
            context.log(
                f"against the truth: median |ΔE_p| = {e:.4f} eV, median |ΔLi/Si| = {x:.3f} "
                f"over {comparison['n_compared']} pixels (truth_comparison.json)"
            )
        k = comparison["li_k"]
        rho = k["li_k"]["spearman_vs_li_si_all_material_flagged_as_failures"]
        rho_f = k["li_k_fraction"]["spearman_vs_li_si_all_material_flagged_as_failures"]
        if rho is not None and rho_f is not None:
            context.log(
                f"Li-K map against the truth Li/Si over all {k['n_material']} material pixels "
                f"({k['n_flagged']} flagged, counted as failures): Spearman {rho:.2f} (counts), "
                f"{rho_f:.2f} (per single-scattering count)"
            )
        return comparison
