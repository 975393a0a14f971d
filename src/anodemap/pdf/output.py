"""Writing the PDF analysis: per region G(r) (.csv, .hspy) and I(s), φ(s); the peak table,
the comparisons, figures and ``summary.json`` (last).

Layout of ``OUTDIR``::

    regions/NAME/pdf.csv                r, G, band low, band high (Å, 1/Å²); g(r) with --density
    regions/NAME/pdf.hspy               the same three curves, r axis in Å (HyperSpy)
    regions/NAME/reduced_intensity.csv  s, I(s), fitted N⟨f²⟩ + B, φ(s)
    peaks.csv                           one row per region and peak
    comparisons.csv                     one row per pair of regions and peak
    reduced_intensity.png, pdf.png, pdf_differences.png
    summary.json

Examples
--------
>>> "summary.json" in output_names() and "regions" in output_names()
True
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.io import Axis, Dataset, save
from anodemap.io.results import write_json, write_text
from anodemap.pdf.pipeline import LEVEL, PDFResult, file_stem

__all__ = ["output_names", "write_pdf_results"]

_FIGURES = ("reduced_intensity.png", "pdf.png", "pdf_differences.png")
_TABLES = ("peaks.csv", "comparisons.csv")
_MAX_PAIRS_SHOWN = 10


def output_names() -> list[str]:
    """Every name :func:`write_pdf_results` may write in its folder."""
    return ["regions", *_TABLES, *_FIGURES, "summary.json"]


def _csv(header: str, columns: list[np.ndarray], names: list[str]) -> str:
    buf = io.StringIO()
    np.savetxt(
        buf,
        np.column_stack(columns),
        delimiter=",",
        header=header + "\n" + ",".join(names),
        comments="",
        fmt="%.7g",
    )
    return buf.getvalue()


def _region_files(result: PDFResult, name: str, folder: Path) -> None:
    reg = result.regions[name]
    pdf, ri = reg.pdf, reg.pdf.reduced
    folder.mkdir(parents=True, exist_ok=True)
    head = f"{name}: {reg.n_patterns} patterns; G(r) with its pointwise {100 * LEVEL:g} % bootstrap band"
    columns = [pdf.r, pdf.g, pdf.band[0], pdf.band[1]]
    names = ["r (Å)", "G (1/Å²)", "band low", "band high"]
    if reg.g_r is not None:  # with --density (docs/pdf.md: G continued below s_min)
        columns.append(reg.g_r)
        names.append("g (pair distribution, from --density)")
        head += "; g(r) = 1 + G(r)/(4 pi r rho0) with the density of --density"
    write_text(_csv(head, columns, names), folder / "pdf.csv")
    step = float(pdf.r[1] - pdf.r[0])
    ds = Dataset(
        np.stack([pdf.g, pdf.band[0], pdf.band[1]]),
        [
            Axis("curve", 3, navigate=True),
            Axis("r", pdf.r.size, step, float(pdf.r[0]), "Å", navigate=False),
        ],
    )
    ds.set_meta("General.title", f"G(r) of {name}: [G, {100 * LEVEL:g} % band low, band high]")
    ds.set_meta("Signal.quantity", "G(r) (1/Å²)")
    ds.set_meta("Signal.peaks_angstrom", [float(p.r_corrected) for p in pdf.peaks])
    save(ds, folder / "pdf.hspy")
    fitted = ri.n_atoms * ri.mean_f2 + sum(c * ri.s**k for k, c in enumerate(ri.background))
    write_text(
        _csv(
            f"{name}: mean I(s) of {reg.n_patterns} patterns, the fitted N<f^2> + B and phi(s)",
            [ri.s, reg.intensity, fitted, ri.phi],
            ["s (1/Å)", "I (mean counts per pixel)", "N<f2>+B", "phi (1/Å)"],
        ),
        folder / "reduced_intensity.csv",
    )


def _peak_rows(result: PDFResult) -> str:
    lines = [
        "region,peak,r_angstrom,ci95_low,ci95_high,r_apparent_angstrom,termination_bias_angstrom,"
        "systematic_angstrom,stat_ci95_low,stat_ci95_high,height,height_ci95_low,height_ci95_high,"
        "fwhm_angstrom,fwhm_ci95_low,fwhm_ci95_high,overlapped,n_missing"
    ]
    for name, reg in result.regions.items():
        for k, p in enumerate(reg.pdf.peaks):
            values = [p.r_corrected, *p.ci, p.r_angstrom, p.bias, p.systematic, *p.r_ci]
            values += [p.height, *p.height_ci, p.fwhm_angstrom, *p.fwhm_ci]
            lines.append(
                f'"{name}",r{k + 1},'
                + ",".join(f"{v:.6g}" for v in values)
                + f",{p.overlapped},{p.n_missing}"
            )
    return "\n".join(lines) + "\n"


def _comparison_rows(summary: dict[str, Any]) -> str:
    lines = [
        "region_a,region_b,peak,r_a_angstrom,r_b_angstrom,dr_angstrom,ci95_low,ci95_high,differs"
    ]
    for c in summary["comparisons"]:
        for p in c["peaks"]:
            nums = [p["r_a_angstrom"], p["r_b_angstrom"], p["dr_angstrom"], *p["ci95_angstrom"]]
            lines.append(
                f'"{c["a"]}","{c["b"]}",{p["peak"]},'
                + ",".join(f"{v:.6g}" for v in nums)
                + f",{p['differs']}"
            )
    return "\n".join(lines) + "\n"


def write_pdf_results(
    result: PDFResult, outdir: str | Path, figures: bool = True, *, worker: Any = None
) -> dict[str, Any]:
    """Write ``result`` into ``outdir`` (see the module); return the summary.

    The folder is held as one run's (:func:`anodemap.io.outdir.output_folder`); the
    ``regions`` folder of an earlier run is replaced whole.
    """
    from anodemap.io.outdir import output_folder
    from anodemap.pdf import figures as fg
    from anodemap.plotting import FigureWorker

    outdir = Path(outdir)
    with output_folder(outdir) as folder:
        (outdir / "summary.json").unlink(missing_ok=True)
        folder.claim(["summary.json", "regions", *_TABLES])
        shutil.rmtree(outdir / "regions", ignore_errors=True)  # an earlier run's regions
        own = worker is None
        worker = worker if worker is not None else FigureWorker(processes=0)
        jobs, here = [], None
        written = ["regions", *_TABLES]
        if figures and result.regions:
            jobs, here = _submit_figures(result, outdir, worker, fg)
        for name in result.regions:
            _region_files(result, name, outdir / "regions" / file_stem(name))
        if here is not None:
            written.append(fg.pdf_png(*here).name)
        summary = {**folder.provenance(), **result.summary()}
        write_text(_peak_rows(result), outdir / "peaks.csv")
        write_text(_comparison_rows(summary), outdir / "comparisons.csv")
        written += [Path(worker.result(job)).name for job in jobs]
        if own:
            worker.close()
        folder.retire_previous()
        summary["files"] = written
        write_json(summary, outdir / "summary.json")
    return summary


def _submit_figures(
    result: PDFResult, outdir: Path, worker: Any, fg: Any
) -> tuple[list[Any], tuple[Any, ...]]:
    """Submit two figures to ``worker``; the arguments of the third, drawn here."""
    from anodemap.io.outdir import claim

    regs = list(result.regions.values())
    spectra = []
    for reg in regs:
        ri = reg.pdf.reduced
        fitted = ri.n_atoms * ri.mean_f2 + sum(c * ri.s**k for k, c in enumerate(ri.background))
        spectra.append((reg.name, ri.s, reg.intensity, fitted, ri.phi))
    curves = [
        (
            reg.name,
            reg.pdf.r,
            reg.pdf.g,
            reg.pdf.band[0],
            reg.pdf.band[1],
            [p.r_angstrom for p in reg.pdf.peaks],
        )
        for reg in regs
    ]
    pairs = [(f"{a} − {b}", c.r, c.dg, c.band[0], c.band[1]) for a, b, c in result.comparisons]
    claim(outdir, [n for n in _FIGURES if pairs or n != "pdf_differences.png"])
    # the helper process draws two while this one writes the regions' files and draws G(r)
    jobs = [worker.submit(fg.reduced_intensity_png, spectra, outdir / "reduced_intensity.png")]
    if pairs:
        jobs.append(
            worker.submit(
                fg.differences_png,
                pairs[:_MAX_PAIRS_SHOWN],
                outdir / "pdf_differences.png",
                len(pairs),
                LEVEL,
            )
        )
    return jobs, (curves, outdir / "pdf.png", LEVEL)
