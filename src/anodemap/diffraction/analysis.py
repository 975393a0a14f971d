"""Phase and orientation mapping as an analysis of the contract
(:mod:`anodemap.analysis.base`).

``anodemap diffraction`` and a study's diffraction datasets run through
:class:`DiffractionAnalysis`: read a 4D (precession) diffraction scan, map phases,
orientations, virtual images and averaged patterns
(:func:`anodemap.diffraction.pipeline.analyse_diffraction`), write them
(:func:`anodemap.diffraction.output.write_diffraction_results`) and, for a simulated
dataset, compare them with the truth.

Examples
--------
>>> from anodemap.analysis import get_analysis
>>> get_analysis("diffraction").Parameters().phases
('Si', 'Li15Si4')
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from anodemap.analysis.base import Analysis, Context
from anodemap.diffraction.parameters import DiffractionParameters

__all__ = ["DiffractionAnalysis", "with_scan_step"]


class DiffractionAnalysis(Analysis):
    """Phase, orientation, virtual-image and averaged-pattern maps of a diffraction scan."""

    name = "diffraction"
    title = "phase and orientation maps of Si, Li15Si4 and amorphous material"
    data_kind = "4D (precession) diffraction scan"
    Parameters = DiffractionParameters
    files = ("regions",)
    version = "1"
    input_help = "4D .hspy/.zspy, .blo, or any 4D file rosettasciio reads"
    file_options = {
        "regions": (
            "--regions",
            "FILE",
            "label image over the scan (.npy, .png, .tif, .hspy; 0: in no region, any other "
            "value: a region): averaged pattern, I(s) and phase fractions of each region",
        )
    }

    def add_dataset_options(self, parser: Any) -> None:
        from anodemap.analysis.options import number

        parser.add_argument(
            "--scan-step",
            type=number(above=0, unit=" nm"),
            metavar="NM",
            help="scan step of the maps, in nm (default: from the file)",
        )

    def prepare_from_args(self, args: Any) -> Callable[[Any], Any] | None:
        step = getattr(args, "scan_step", None)
        return None if step is None else (lambda ds: with_scan_step(ds, step))

    def load(self, path: Path, *, signal: int | str | None = None) -> Any:
        from anodemap.io import kinds, load

        ds = load(path, lazy=True, signal=signal, kind=kinds.diffraction_scan)
        return ds.as_scan_2d()  # a line scan or a stack of patterns: maps of one row

    def accepts(self, dataset: Any) -> bool:
        from anodemap.io import kinds

        return kinds.diffraction_scan(dataset) is None

    def analyse(
        self, dataset: Any, parameters: Any, context: Context, files: Mapping[str, Any]
    ) -> Any:
        from anodemap.diffraction.pipeline import analyse_diffraction

        p = parameters
        context.log(
            f"patterns: scan {dataset.nav_shape}, {dataset.sig_shape[0]} x "
            f"{dataset.sig_shape[-1]} px; phases {', '.join(p.phases)}; templates every "
            f"{p.step_deg} degrees"
            + (f", orientations refined at {p.refine_step_deg}" if p.refine_step_deg else "")
        )
        regions = None
        if files.get("regions"):
            import numpy as np

            from anodemap.io.regions import load_regions

            regions = load_regions(files["regions"], dataset.nav_shape)
            context.log(f"regions: {len(np.unique(regions[regions > 0]))} from {files['regions']}")
        preload = None
        if context.figures:
            from anodemap.plotting import import_in_background

            preload = import_in_background()  # for this process's share of the figures
        result = analyse_diffraction(
            dataset,
            p,
            client=context.client,
            progress=context.progress,
            regions=regions,
            log=context.log,
        )
        if preload is not None:
            preload.join()
        return result

    def write(
        self, result: Any, outdir: Path, context: Context, dataset: Any, worker: Any
    ) -> dict[str, Any]:
        from anodemap.diffraction.output import write_diffraction_results

        return write_diffraction_results(result, outdir, figures=context.figures, worker=worker)

    def output_names(self) -> list[str]:
        from anodemap.diffraction.output import output_names

        return output_names()

    def describe(self, summary: Mapping[str, Any], context: Context) -> None:
        fractions = ", ".join(
            f"{name} {100 * f:.1f} %"
            for name, f in summary["phase_fractions"].items()
            if f is not None
        )
        others = f"{summary['n_vacuum']} vacuum"
        if summary["n_not_analysed"]:
            others += f", {summary['n_not_analysed']} not analysed (match_status says why)"
        context.log(
            f"phase fractions over the {summary['n_material']} material patterns of "
            f"{summary['n_patterns']} (vacuum excluded; {others}): {fractions or 'none'}"
        )
        for reg in summary.get("regions") or []:
            inside = ", ".join(
                f"{name} {100 * f:.1f} %"
                for name, f in reg["phase_fractions"].items()
                if f is not None
            )
            context.log(
                f"region {reg['region']} ({reg['n_patterns']} patterns, {reg['n_vacuum']} "
                f"vacuum): {inside or 'no material'}"
            )

    def compare_with_truth(
        self, result: Any, truth_dir: Path, outdir: Path, context: Context
    ) -> dict[str, Any]:
        """Phases, vacuum and orientations against the truth maps in ``truth_dir`` (as
        ``anodemap simulate diffraction`` writes them); ``truth_comparison.json`` and
        ``.png``."""
        import numpy as np

        from anodemap.diffraction.output import compare_with_truth, truth_comparison_figure
        from anodemap.io import load
        from anodemap.io.results import write_json

        truth_meta = json.loads((truth_dir / "truth.json").read_text())
        truth = {
            k: np.asarray(load(truth_dir / f"{k}.hspy").data)
            for k in ("phase", "euler_deg", "amorphous_intensity_share")
        }
        maps = {
            "phase": np.asarray(result.maps["phase"]),
            "euler": np.asarray(result.maps["euler"]),
            "reliability": np.asarray(result.maps["reliability"]),
            "amorphous_share": np.asarray(result.maps["amorphous_share"]),
        }
        comparison = compare_with_truth(
            maps, result.phase_labels, truth, truth_meta["phase_labels"]
        )
        write_json(comparison, outdir / "truth_comparison.json")
        if context.figures:
            from anodemap.plotting import save_figure

            step = result.nav_axes[-1].scale
            figure = truth_comparison_figure(
                maps, result.phase_labels, truth, truth_meta["phase_labels"], step
            )
            save_figure(figure, outdir / "truth_comparison.png")
        context.log(
            f"against the truth: {truth_sentence(comparison)} ({outdir / 'truth_comparison.json'})"
        )
        return comparison


def with_scan_step(ds: Any, step: float) -> Any:
    """The dataset with its scan (navigation) axes in nm, ``step`` apart.

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.io import Axis, Dataset
    >>> ds = Dataset(np.zeros((2, 3, 4, 4)), [Axis("y", 2), Axis("x", 3),
    ...     Axis("ky", 4, navigate=False), Axis("kx", 4, navigate=False)])
    >>> [(a.scale, a.units) for a in with_scan_step(ds, 5.0).nav_axes]
    [(5.0, 'nm'), (5.0, 'nm')]
    """
    import dataclasses

    from anodemap.errors import AnodemapInputError

    if not step > 0:
        raise AnodemapInputError(f"--scan-step {step}: the scan step must be positive (nm)")
    axes = [
        dataclasses.replace(a, scale=float(step), offset=0.0, units="nm") if a.navigate else a
        for a in ds.axes
    ]
    return dataclasses.replace(ds, axes=axes)


def truth_sentence(comparison: Mapping[str, Any]) -> str:
    """The comparison with the truth in one line for the console.

    Examples
    --------
    >>> c = {"phase_accuracy": 0.99, "n_material_pixels": 100, "n_pore_pixels": 4,
    ...      "vacuum": {"recall": 1.0, "precision": 1.0},
    ...      "orientation": {"reliability_threshold": 10.0, "Si": {
    ...          "all_right_phase": {"within_2deg": 0.5, "n": 10},
    ...          "reliable": {"within_2deg": 1.0, "n": 4}}}}
    >>> truth_sentence(c)  # doctest: +NORMALIZE_WHITESPACE
    'phases 99.0 % right over 100 material pixels; vacuum: 100 % of 4 pore pixels found
    (precision 100 %); orientations within 2°, of all correctly phased pixels: Si 50 % of 10;
    of those reliable (≥ 10): Si 100 % of 4'
    """
    orientation = {k: o for k, o in comparison["orientation"].items() if isinstance(o, dict)}
    vac = comparison["vacuum"]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.0f} %"

    def within(which: str) -> str:
        return ", ".join(
            f"{name} {pct(o[which]['within_2deg'])} of {o[which]['n']}"
            for name, o in orientation.items()
        )

    return (
        f"phases {100 * (comparison['phase_accuracy'] or 0):.1f} % right over "
        f"{comparison['n_material_pixels']} material pixels"
        f"; vacuum: {pct(vac['recall'])} of {comparison['n_pore_pixels']} pore pixels found "
        f"(precision {pct(vac['precision'])})"
        f"; orientations within 2°, of all correctly phased pixels: {within('all_right_phase')}"
        f"; of those reliable (≥ {comparison['orientation']['reliability_threshold']:g}): "
        + within("reliable")
    )
