"""PDFs of every phase class and region of a diffraction scan, in one call.

Steps: the phase map, calibration and regions of the scan's diffraction result
(:mod:`anodemap.pdf.regions`) → I(s) of every pattern about its own centre → per region, G(r)
of the mean of its patterns' I(s) with a bootstrap band and peak intervals, the termination
bias of each peak subtracted with its systematic term (:func:`anodemap.pdf.bootstrap_pdf`)
→ every pair of regions compared (:func:`anodemap.pdf.compare_regions`).

Examples
--------
>>> from anodemap.io import load                                     # doctest: +SKIP
>>> res = analyse_pdfs(load("sped.zspy", lazy=True), PDFParameters(), "diffraction_out/")  # doctest: +SKIP
>>> res.summary()["regions"]["amorphous"]["peaks"][0]["r_angstrom"]   # doctest: +SKIP
2.35
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.pdf.bootstrap import BootstrapPDF, RegionComparison, bootstrap_pdf, compare_regions
from anodemap.pdf.composition import LiSiMap
from anodemap.pdf.parameters import PDFParameters
from anodemap.pdf.regions import pattern_profiles, read_diffraction, region_masks
from anodemap.pdf.scattering import parse_composition, scattering_source
from anodemap.pdf.termination import OVERLAP_FRACTION, OVERLAP_GAP, resolution_fwhm

__all__ = ["PDFResult", "RegionPDF", "analyse_pdfs", "file_stem"]

LEVEL = 0.95  # the level of every interval of the command (summary keys say ci95)


def file_stem(name: str) -> str:
    """A region's name as a folder name: letters, digits and _ only.

    Examples
    --------
    >>> file_stem("crystalline, not indexed"), file_stem("region 2")
    ('crystalline_not_indexed', 'region_2')
    """
    out = "".join(c if c.isalnum() else "_" for c in name)
    return "_".join(part for part in out.split("_") if part) or "region"


@dataclass
class RegionPDF:
    """The PDF of one region: its bootstrap result and where it came from."""

    name: str
    kind: str
    n_patterns: int
    seed: int
    pdf: BootstrapPDF
    intensity: np.ndarray  # mean I(s) of its patterns on the result's s
    pixels: np.ndarray | None = None  # (ny, nx) bool: the patterns averaged (truth, Li/Si)
    li_si: dict[str, Any] | None = None  # the composition from the Li/Si map (--li-si-map)
    coordination: dict[str, Any] | None = None  # first-shell coordination (--density)
    g_r: np.ndarray | None = None  # g(r) on the result's r (--density)

    def ratios(self) -> dict[str, dict[str, Any]]:
        """r_k/r_1 of the distances with intervals (resampled ratios of the apparent
        positions less their biases, widened by the systematic terms, in proportion)."""
        peaks = self.pdf.peaks
        out: dict[str, dict[str, Any]] = {}
        if not peaks:
            return out
        p1 = peaks[0]
        for k, pk in enumerate(peaks[1:], start=1):
            boot = self.pdf.peak_boot
            num = boot[:, k, 0] - pk.bias
            den = boot[:, 0, 0] - p1.bias
            ok = np.isfinite(num) & np.isfinite(den)
            value = pk.r_corrected / p1.r_corrected
            if ok.sum() >= 2:
                lo, hi = np.percentile(num[ok] / den[ok], [2.5, 97.5])
            else:
                lo = hi = float("nan")
            widen = value * (pk.systematic / pk.r_corrected + p1.systematic / p1.r_corrected)
            out[f"r{k + 1}/r1"] = {
                "value": float(value),
                "ci95": [float(lo - widen), float(hi + widen)],
            }
        return out


@dataclass
class PDFResult:
    """The PDFs of a scan's regions and their comparisons (:func:`analyse_pdfs`)."""

    s: np.ndarray
    r: np.ndarray
    regions: dict[str, RegionPDF]
    not_analysed: dict[str, str]
    comparisons: list[tuple[str, str, RegionComparison]]
    parameters: PDFParameters
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def maps(self) -> dict[str, np.ndarray]:
        """The result's arrays by name: each region's G(r), band and peak table (r, 95 %
        interval, height, FWHM): the same in memory, read lazily and on a cluster."""
        out: dict[str, np.ndarray] = {}
        for name, reg in self.regions.items():
            out[f"{name}: G"] = reg.pdf.g
            out[f"{name}: band"] = reg.pdf.band
            out[f"{name}: peaks"] = np.array(
                [[q.r_corrected, *q.ci, q.height, q.fwhm_angstrom] for q in reg.pdf.peaks]
            )
        return out

    def summary(self) -> dict[str, Any]:
        """Numbers and choices for ``summary.json`` (see ``docs/pdf.md``)."""
        return {
            "analysis": "pdf",
            **self.settings,
            "regions": {name: _region_summary(reg) for name, reg in self.regions.items()},
            "not_analysed": dict(self.not_analysed),
            "comparisons": [
                _comparison_summary(a, b, c, self.regions) for a, b, c in self.comparisons
            ],
            "parameters": self.parameters.as_dict(),
        }


def _peak_summary(p: Any) -> dict[str, Any]:
    return {
        "r_angstrom": p.r_corrected,
        "ci95_angstrom": list(p.ci),
        "height": p.height,
        "fwhm_angstrom": p.fwhm_angstrom,
        "height_ci95": list(p.height_ci),
        "fwhm_ci95_angstrom": list(p.fwhm_ci),
        "r_apparent_angstrom": p.r_angstrom,
        "ci95_statistical_angstrom": list(p.r_ci),
        "termination_bias_angstrom": p.bias,
        "systematic_angstrom": p.systematic,
        "overlapped": p.overlapped,
        "n_missing": p.n_missing,
    }


def _region_summary(reg: RegionPDF) -> dict[str, Any]:
    ri = reg.pdf.reduced
    stem = file_stem(reg.name)
    return {
        "kind": reg.kind,
        "n_patterns": reg.n_patterns,
        "seed": reg.seed,
        "composition": dict(ri.composition),
        **({"li_si": reg.li_si} if reg.li_si is not None else {}),
        "peaks": [_peak_summary(p) for p in reg.pdf.peaks],
        "ratios": reg.ratios(),
        # needs a density (--density): see docs/pdf.md
        "coordination_number": reg.coordination,
        "n_atoms": ri.n_atoms,
        "background_coefficients": list(ri.background),
        "n_failed_resamples": reg.pdf.n_failed,
        "files": [
            f"regions/{stem}/pdf.csv",
            f"regions/{stem}/pdf.hspy",
            f"regions/{stem}/reduced_intensity.csv",
        ],
    }


def _comparison_summary(
    a: str, b: str, c: RegionComparison, regions: dict[str, RegionPDF]
) -> dict[str, Any]:
    peaks = []
    ra = [p.r_angstrom for p in regions[a].pdf.peaks]
    for d in c.peaks:
        k = int(np.argmin(np.abs(np.asarray(ra) - d.r_a)))
        peaks.append(
            {
                "peak": f"r{k + 1}",
                "r_a_angstrom": d.r_a,
                "r_b_angstrom": d.r_b,
                "dr_angstrom": d.dr_angstrom,
                "ci95_angstrom": list(d.dr_ci),
                "differs": d.differs,
                "dheight": d.dheight,
                "dheight_ci95": list(d.dheight_ci),
                "n_used": d.n_used,
            }
        )
    differ = [p["peak"] for p in peaks if p["differs"]]
    same = [p["peak"] for p in peaks if not p["differs"]]
    statement = (
        (f"{', '.join(differ)} of {a} and {b} differ beyond their 95 % intervals" if differ else "")
        + ("; " if differ and same else "")
        + (f"{', '.join(same)}: no difference beyond the uncertainty" if same else "")
    ) or "no peaks in common to compare"
    return {
        "a": a,
        "b": b,
        "peaks": peaks,
        "differs": bool(differ),
        "statement": statement,
        "apparent_positions": "dr is of the apparent positions; the interval is widened by "
        "the difference of the two termination biases",
    }


def _s_range(
    p: PDFParameters, s: np.ndarray, beam_radius_px: float | None, scale: tuple[float, float]
) -> tuple[tuple[float, float], str]:
    top = float(s[-1])
    if p.s_range is not None:
        lo, hi = (float(v) for v in p.s_range)
        if not 0 <= lo < hi:
            raise AnodemapInputError(f"--s-range {lo:g} {hi:g}: give 0 <= LO < HI (1/Å)")
        if hi > top + 1e-9:
            raise AnodemapInputError(
                f"--s-range {lo:g} {hi:g}: the patterns reach s = {top:.4g} 1/Å (the largest "
                f"full circle around the centres of the material patterns); give HI <= {top:.4g}"
            )
        return (lo, hi), "given (--s-range)"
    if beam_radius_px:
        lo = p.beam_radii * beam_radius_px * min(scale)
        how = (
            f"from the data: {p.beam_radii:g} x the direct-beam radius "
            f"({beam_radius_px:.3g} px, as the diffraction analysis measured it) to the "
            "largest full circle around the centres of 99 % of the material patterns"
        )
    else:
        lo = 0.1
        how = "from the data: 0.1 1/Å (no beam radius recorded) to the largest full circle"
    return (float(lo), top), how


#: A checked s-scale is applied when at least this many rings agree to this 1σ (model
#: choice: the check reaches 0.2 % on Debye-scattered Si at 0.01 1/Å per pixel; on
#: 64-pixel patterns of single grains it is 10-25 % off with a 1σ of 6-27 %).
_SCALE_RINGS, _SCALE_SIGMA, _SCALE_LIMIT = 3, 0.003, 0.1


def _s_scale(
    p: PDFParameters, masks: dict[str, tuple[str, np.ndarray]], intensity: np.ndarray, s: np.ndarray
) -> dict[str, Any]:
    """The s-scale factor from the Si rings of the reference region, and how it was found."""
    from anodemap.diffraction.rings import check_s_scale

    ref = p.s_reference
    out: dict[str, Any] = {"factor": 1.0, "applied": False, "reference": ref, "check": None}
    if not ref or ref.lower() == "none":
        return {**out, "how": "not checked (--s-reference none): the calibration as it is"}
    if ref not in masks:
        return {
            **out,
            "how": f"not checked: no {ref!r} patterns in this scan (the regions "
            f"are {', '.join(masks) or 'none'}); the calibration as it is",
        }
    rows = intensity[masks[ref][1].ravel()]
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    if len(rows) < p.min_patterns:
        return {
            **out,
            "how": f"not checked: {len(rows)} {ref} patterns, fewer than "
            f"--min-patterns {p.min_patterns}; the calibration as it is",
        }
    check = check_s_scale(s, rows.mean(axis=0), "Si")
    if check is None:
        return {
            **out,
            "how": f"checked against the Si reflections in the mean I(s) of {ref}: "
            "fewer than two rings found, not applied; the calibration as it is",
        }
    out["check"] = check.summary()
    good = (
        len(check.reflections) >= _SCALE_RINGS
        and check.uncertainty <= _SCALE_SIGMA
        and abs(check.factor - 1.0) <= _SCALE_LIMIT
    )
    what = (
        f"the rings of the mean I(s) of {ref} against the Si reflections "
        f"({len(check.reflections)} rings): factor {check.factor:.4f} ± {check.uncertainty:.4f}"
    )
    if not good:
        return {
            **out,
            "how": f"{what}: not applied (needs {_SCALE_RINGS} rings agreeing to "
            f"{100 * _SCALE_SIGMA:g} % and within {100 * _SCALE_LIMIT:g} % of 1); the "
            "calibration as it is",
        }
    return {**out, "factor": check.factor, "applied": True, "how": f"{what}: applied to s"}


def _region_composition(
    given: dict[str, float], li_si: LiSiMap | None, pixels: np.ndarray
) -> tuple[dict[str, float], dict[str, Any] | None]:
    """The region's composition: Si:1 Li:x from the Li/Si map where it has values."""
    if li_si is None:
        return given, None
    x, n = li_si.region_mean(pixels)
    info: dict[str, Any] = {
        "li_per_si": x,
        "n_valid": n,
        "n_patterns": int(pixels.sum()),
        "source": li_si.source,
    }
    if x is None:
        info["composition_from"] = "--composition: no valid Li/Si value in the region"
        return given, info
    info["composition_from"] = f"Li/Si map: mean of {n} of {int(pixels.sum())} patterns"
    comp = parse_composition({"Si": 1.0, "Li": max(x, 0.0)})
    return comp, info


def _composition_shift(
    s: np.ndarray, mean: np.ndarray, res: BootstrapPDF, r: np.ndarray, damping: Any
) -> dict[str, float | None]:
    """r_k(x) − r_k(x = 0) of the apparent peaks of the mean pattern: what the Li/Si map's
    composition moved (same s range, fit and damping; Si:1 for x = 0)."""
    from anodemap.pdf.transform import find_peaks, pair_distribution, reduced_intensity

    ri = res.reduced
    ri0 = reduced_intensity(s, mean, "Si:1", s_range=ri.s_range, fit=ri.fit, fit_range=ri.fit_range)
    g0 = pair_distribution(ri0.s, ri0.phi, r, damping=damping)
    p0 = find_peaks(r, g0, n=len(res.peaks) + 2)
    out: dict[str, float | None] = {}
    for k, q in enumerate(res.peaks):
        near = min(p0, key=lambda p: abs(p.r_angstrom - q.r_angstrom), default=None)
        ok = near is not None and abs(near.r_angstrom - q.r_angstrom) <= q.tolerance
        out[f"r{k + 1}"] = float(q.r_angstrom - near.r_angstrom) if ok else None
    return out


def analyse_pdfs(
    dataset: Any,
    parameters: PDFParameters | None,
    diffraction: str | Path,
    *,
    regions: np.ndarray | None = None,
    region_names: dict[int, str] | None = None,
    li_si: LiSiMap | None = None,
    client: Any = None,
    progress: bool = False,
    log: Any = None,
) -> PDFResult:
    """G(r) of every phase class and region of ``dataset`` (see the module).

    Parameters
    ----------
    dataset : Dataset
        The 4D diffraction scan that ``anodemap diffraction`` analysed into
        ``diffraction``.
    parameters : PDFParameters, optional
    diffraction : path
        That analysis's output folder.
    regions : ndarray of int, optional
        User regions (0: in none); default: those of the diffraction result, if any.
    region_names : dict of int to str, optional
        Their names (the region map's legend); default ``region N``.
    li_si : LiSiMap, optional
        Li/Si of the same scan (``--li-si-map``): each region's composition becomes Si:1
        Li:x with x its mean over the region's valid values (``composition`` where none).
    client, progress : optional
        Where the two passes over the data run, and whether they show progress.
    log : callable, optional
        Takes one line for the user.

    Returns
    -------
    PDFResult
    """
    p = parameters or PDFParameters()
    say = log or (lambda _msg: None)
    composition = parse_composition(p.composition)
    damping = None if p.damping == "none" else p.damping
    labels = read_diffraction(diffraction, tuple(dataset.nav_shape))
    masks = region_masks(labels, regions, region_names)
    material = np.any([m for kind, m in masks.values() if kind == "phase"], axis=0)
    prof = pattern_profiles(
        dataset,
        labels.scale,
        material=material,
        client=client,
        progress=progress,
        in_memory_gb=p.in_memory_gb,
        ring_correction=p.ring_correction,
        beam_radius_px=labels.beam_radius_px,
        ring_patterns=masks["amorphous"][1] if "amorphous" in masks else None,
        centres=labels.beam_centres,
    )
    if prof.ring is not None:
        say(f"ring geometry: {prof.ring['how']}")
    intensity = prof.intensity.reshape(-1, prof.s.size)
    scaling = _s_scale(p, masks, intensity, prof.s)
    s = prof.s * scaling["factor"]
    if scaling["applied"]:
        say(f"s-scale: {scaling['how']}")
    scale = tuple(v * scaling["factor"] for v in labels.scale)
    s_range, s_how = _s_range(p, s, labels.beam_radius_px, scale)
    r = np.arange(0.0, p.r_max_angstrom + 0.5 * p.r_step_angstrom, p.r_step_angstrom)
    done: dict[str, RegionPDF] = {}
    skipped: dict[str, str] = {}
    for k, (name, (kind, mask)) in enumerate(masks.items()):
        used = mask.ravel() & np.all(np.isfinite(intensity), axis=1)
        rows = intensity[used]
        if len(rows) < p.min_patterns:
            skipped[name] = (
                f"{len(rows)} material patterns, fewer than --min-patterns {p.min_patterns}"
            )
            continue
        comp, li_info = _region_composition(composition, li_si, used.reshape(mask.shape))
        try:
            res = bootstrap_pdf(
                s,
                rows,
                comp,
                r,
                n_boot=p.n_boot,
                seed=p.seed + k,
                s_range=s_range,
                fit=p.fit,
                damping=damping,
                n_peaks=p.n_peaks,
                level=LEVEL,
                correct_termination=p.termination_correction,
            )
        except AnodemapInputError as err:  # one region's failure is said, the others go on
            skipped[name] = str(err)
            continue
        keep = (s >= res.reduced.s[0]) & (s <= res.reduced.s[-1])
        coordination, g_r = None, None
        if p.density is not None:
            from anodemap.pdf.coordination import coordination_number, pair_distribution_g

            n1 = coordination_number(res, rows, s, p.density, level=LEVEL)
            coordination = n1.summary() if n1 is not None else None
            g_r = pair_distribution_g(res, p.density)
        if li_info is not None and li_info["li_per_si"]:
            li_info["shift_from_x0_angstrom"] = _composition_shift(
                s, rows.mean(axis=0), res, r, damping
            )
        done[name] = RegionPDF(
            name,
            kind,
            len(rows),
            p.seed + k,
            res,
            rows.mean(axis=0)[keep],
            used.reshape(mask.shape),
            li_info,
            coordination,
            g_r,
        )
        say(
            f"{name} ({len(rows)} patterns): "
            + ", ".join(
                f"r{i + 1} {q.r_corrected:.3f} Å [{q.ci[0]:.3f}, {q.ci[1]:.3f}]"
                for i, q in enumerate(res.peaks)
            )
        )
    comparisons = [
        (a, b, compare_regions(done[a].pdf, done[b].pdf)) for a, b in combinations(done, 2)
    ]
    settings = {
        "diffraction_result": {
            "folder": str(Path(diffraction).resolve()),
            "input": labels.summary.get("input"),
        },
        "n_patterns": int(labels.phase.size),
        "n_material": int(np.sum(material)),
        "composition": composition,
        "composition_from": (
            f"the Li/Si map {li_si.source}: Si:1 Li:x per region, x its mean over the "
            "region's patterns with a valid Li/Si (status 0); --composition where none"
            if li_si is not None
            else "--composition"
        ),
        "s_range_inv_angstrom": list(s_range),
        "s_range_from": s_how,
        "s_max_of_data_inv_angstrom": float(s[-1]),
        "s_bin_width_inv_angstrom": float(s[1] - s[0]),
        "calibration_inv_angstrom_per_px": list(scale),
        "calibration_of_diffraction_result": list(labels.scale),
        "s_scale_correction": scaling,
        "ring_geometry": prof.ring
        if prof.ring is not None
        else {"applied": False, "how": "not measured (--no-ring-correction)"},
        "fit": p.fit,
        "damping": p.damping,
        "r_grid_angstrom": {"start": 0.0, "stop": float(r[-1]), "step": p.r_step_angstrom},
        "resolution_fwhm_angstrom": resolution_fwhm(
            s[(s >= s_range[0]) & (s <= s_range[1])], damping
        ),
        "interval": {
            "level": LEVEL,
            "statistical": f"bootstrap percentile over each region's patterns, {p.n_boot} "
            "resamples, N and background refitted in each",
            "termination": (
                "the termination bias of each position estimated from a model of the peaks "
                "(Gaussian shells seen through the same s range and damping) is subtracted "
                "and its size added on both sides as a systematic term; peaks with a "
                f"neighbour closer than {OVERLAP_GAP:g} resolution widths are not corrected "
                f"and get at least {OVERLAP_FRACTION:g} of the resolution width"
                if p.termination_correction
                else "not corrected (--no-termination-correction): statistical only"
            ),
            "not_included": "the s calibration (camera length) and the composition",
        },
        "scattering_factors": scattering_source(),
        "coordination_number": (
            f"N1 of every region from the density {p.density:g} g/cm³ (docs/pdf.md)"
            if p.density is not None
            else "not computed: it needs the density (--density), not given"
        ),
    }
    return PDFResult(s, r, done, skipped, comparisons, p, settings)
