"""Pair distribution functions as an analysis of the contract (:mod:`anodemap.analysis.base`).

``anodemap pdf INPUT -o OUT --diffraction DIR`` and a study's diffraction datasets (after
their diffraction analysis) run through :class:`PDFAnalysis`: the phase classes and regions
of the scan's diffraction result, G(r) of each with a bootstrap band and peak intervals,
the comparison of every pair (:func:`anodemap.pdf.pipeline.analyse_pdfs`), written by
:func:`anodemap.pdf.output.write_pdf_results`.

It needs the diffraction result rather than labelling the patterns itself: the labels
are the expensive part (template matching), their parameters (phases, precession,
calibration) are the diffraction command's, and the PDFs are then of exactly the phase
classes that the diffraction maps show. Without it the command says to run
``anodemap diffraction`` first.

Examples
--------
>>> from anodemap.analysis import get_analysis
>>> a = get_analysis("pdf")
>>> a.reads, a.requires, a.Parameters().damping
('diffraction', ('diffraction',), 'lorch')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anodemap.analysis.base import Analysis, Context
from anodemap.pdf.parameters import PDFParameters

__all__ = ["PDFAnalysis"]


class PDFAnalysis(Analysis):
    """G(r) of every phase class and region of a diffraction scan, with confidence."""

    name = "pdf"
    title = "pair distribution functions G(r) of the phases and regions, with confidence"
    data_kind = "4D diffraction scan analysed by anodemap diffraction"
    Parameters = PDFParameters
    files = ("diffraction", "regions", "li_si_map")
    reads = "diffraction"
    requires = ("diffraction",)
    version = "1"
    input_help = "the 4D diffraction file that anodemap diffraction analysed"
    file_options = {
        "diffraction": (
            "--diffraction",
            "DIR",
            "the folder anodemap diffraction wrote for this input: phase classes, "
            "calibration, direct-beam radius and regions are taken from it (required)",
        ),
        "regions": (
            "--regions",
            "FILE",
            "label image over the scan, as anodemap diffraction --regions reads it (0: in "
            "no region); default: the regions of the diffraction result, if any",
        ),
        "li_si_map": (
            "--li-si-map",
            "PATH",
            "the folder anodemap eels wrote for the same scan grid, or its li_si_ratio.hspy: "
            "each region's composition becomes Si:1 Li:x, x its mean Li/Si over the "
            "region's patterns with a valid value (instead of --composition)",
        ),
    }

    def load(self, path: Path, *, signal: int | str | None = None) -> Any:
        from anodemap.analysis import get_analysis

        return get_analysis("diffraction").load(path, signal=signal)

    def accepts(self, dataset: Any) -> bool:
        from anodemap.analysis import get_analysis

        return get_analysis("diffraction").accepts(dataset)

    def analyse(
        self, dataset: Any, parameters: Any, context: Context, files: Mapping[str, Any]
    ) -> Any:
        from anodemap.pdf.pipeline import analyse_pdfs

        regions, names = None, None
        if files.get("regions"):
            from anodemap.io.regions import inside, load_regions, region_names

            regions = load_regions(files["regions"], tuple(dataset.nav_shape))
            # a map with a legend (anodemap correlate's feature classes on this scan's
            # grid): its regions by name, the positions it does not cover in none
            names = region_names(files["regions"])
            regions = inside(regions, names)
        li_si = None
        if files.get("li_si_map"):
            from anodemap.pdf.composition import read_li_si_map

            li_si = read_li_si_map(
                files["li_si_map"], tuple(dataset.nav_shape), getattr(dataset, "nav_axes", None)
            )
        context.log(
            f"PDFs of the phase classes{' and regions' if regions is not None else ''} of "
            f"{files['diffraction']} (composition "
            f"{'from ' + li_si.source if li_si is not None else parameters.composition}, "
            f"damping {parameters.damping})"
        )
        return analyse_pdfs(
            dataset,
            parameters,
            files["diffraction"],
            regions=regions,
            region_names=names,
            li_si=li_si,
            client=context.client,
            progress=context.progress,
            log=context.log,
        )

    def write(
        self, result: Any, outdir: Path, context: Context, dataset: Any, worker: Any
    ) -> dict[str, Any]:
        from anodemap.pdf.output import write_pdf_results

        return write_pdf_results(result, outdir, figures=context.figures, worker=worker)

    def output_names(self) -> list[str]:
        from anodemap.pdf.output import output_names

        return output_names()

    def describe(self, summary: Mapping[str, Any], context: Context) -> None:
        lo, hi = summary["s_range_inv_angstrom"]
        context.log(
            f"{len(summary['regions'])} regions analysed over s = {lo:.3g}-{hi:.3g} 1/Å"
            + (
                f"; not analysed: {', '.join(summary['not_analysed'])}"
                if summary["not_analysed"]
                else ""
            )
        )
        for c in summary["comparisons"]:
            if c["differs"]:
                context.log(c["statement"])

    def compare_with_truth(
        self, result: Any, truth_dir: Path, outdir: Path, context: Context
    ) -> dict[str, Any]:
        """r1-r3 of every region against the simulator's amorphous models in
        ``truth_dir`` (:func:`anodemap.pdf.truth.compare_with_truth`);
        ``truth_comparison.json``."""
        from anodemap.io.results import write_json
        from anodemap.pdf.truth import compare_with_truth, truth_sentence

        comparison = compare_with_truth(result, Path(truth_dir))
        write_json(comparison, outdir / "truth_comparison.json")
        context.log(
            f"against the truth: {truth_sentence(comparison)} ({outdir / 'truth_comparison.json'})"
        )
        return comparison
