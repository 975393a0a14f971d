"""Reading a run folder for the report: ``run.json`` and what each analysis wrote.

Everything here turns files into the plain dictionaries of ``report.json``: the study
and its states in order, and per dataset and analysis its status, input record, key
statistics (from the analysis's ``summary.json``) and figures. Nothing is computed
that the analysis has not written, except where a file is missing or unreadable: then
the entry says so in ``problems`` and the analysis takes no part in the comparisons.

Examples
--------
>>> from anodemap.report.collect import read_run, collect_states
>>> run = read_run("study_out/")                         # doctest: +SKIP
>>> states = collect_states(run, Path("study_out/"))     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from anodemap.errors import AnodemapInputError
from anodemap.report import pdf as pdf_report
from anodemap.report import region as region_report
from anodemap.status import Status

__all__ = ["RUN_SCHEMA", "collect_states", "read_json", "read_run", "sha256_of"]

RUN_SCHEMA = "anodemap.run/1"

# What the run's statuses mean, as the page says them
STATUS_TEXT = {
    "done": "analysed in this run",
    "skipped": "unchanged since an earlier run: its results, kept from then",
    "failed": "failed",
}

# Figures shown first (in this order) and titled; any other PNG of the folder follows
# under "more figures", titled by its file name
_FIGURE_TITLES = {
    "overview.png": "Overview of the EELS maps",
    "li_si_ratio.png": "Li/Si map",
    "plasmon_energy.png": "Plasmon energy map",
    "li_si_status.png": "Li/Si status: why a pixel has no Li/Si",
    "phase.png": "Phase map",
    "orientation_ipf_z.png": "Orientation map (inverse pole figure, z)",
    "amorphous_share.png": "Amorphous share of the pattern intensity",
    "mean_patterns.png": "Averaged pattern and I(s) of each phase",
    "fit_status.png": "Plasmon fit status",
    "thickness.png": "Thickness t/λ",
    "example_fits.png": "Example spectra and fits",
    "calibration.png": "Li/Si calibration",
    "li_si_uncertainty.png": "Li/Si uncertainty (fit)",
    "li_si_calibration_uncertainty.png": "Li/Si uncertainty (calibration)",
    "plasmon_fwhm.png": "Plasmon FWHM",
    "li2o_window.png": "Li2O/silicate window, 42 ± 2 eV",
    "oxide_index.png": "Oxide index: the 42 eV window over plasmon area × t/λ",
    "oxide_peak_area.png": "Li2O/silicate plasmon fitted beside the Li_xSi one (area)",
    "li_k.png": "Li-K edge counts",
    "li_k_fraction.png": "Li-K counts per single-scattering count",
    "li_k_status.png": "Li-K status",
    "zlp_position.png": "Zero-loss position",
    "reliability.png": "Orientation reliability",
    "phase_reliability.png": "Phase reliability",
    "correlation.png": "Correlation index",
    "virtual_bf.png": "Virtual bright field",
    "virtual_adf.png": "Virtual annular dark field",
    "spot_match.png": "Spot agreement with the best template",
    "scattered_fraction.png": "Scattered fraction (vacuum criterion)",
    "region_patterns.png": "Averaged pattern of each region",
    "features.png": "Feature classes",
    "uncertainty.png": "Feature class uncertainty",
    "maps_by_feature.png": "Every map with the feature classes outlined",
    "li_si_by_feature.png": "Li/Si per feature class, with the paper's values",
    "registration.png": "Each map registered on the HAADF survey",
}
_MAIN_FIGURES = {
    "eels": ("overview.png", "li_si_ratio.png", "plasmon_energy.png", "li_si_status.png"),
    "diffraction": ("phase.png", "orientation_ipf_z.png", "amorphous_share.png"),
    "features": ("features.png",),
    "correlate": ("maps_by_feature.png", "li_si_by_feature.png"),
}
# Figures of several panels, shown at the page's full width
_WIDE = frozenset(
    {
        "overview.png",
        "example_fits.png",
        "mean_patterns.png",
        "region_patterns.png",
        "maps_by_feature.png",
        "registration.png",
    }
)
_FIGURE_TITLES.update(pdf_report.FIGURE_TITLES)
_MAIN_FIGURES["pdf"] = pdf_report.MAIN_FIGURES
_TRUTH_FIGURE = "truth_comparison.png"
# What status 0 means in each EELS status map (as anodemap.eels.output's figures say)
_OK_MEANING = {
    "fit_status": "converged",
    "li_si_status": "Li/Si given",
    "li_k_status": "Li-K edge measured",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_json(path: Path) -> Any:
    """The content of a JSON file (``ValueError``/``OSError`` pass through)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**22), b""):
            h.update(block)
    return h.hexdigest()


def read_run(out: str | os.PathLike) -> dict[str, Any]:
    """``OUT/run.json``, checked for its schema.

    Raises
    ------
    AnodemapInputError
        No ``run.json`` in ``out`` (``anodemap run`` writes it last: the run did not
        finish), or not one of schema ``anodemap.run/1``.
    """
    path = Path(out) / "run.json"
    if not path.is_file():
        raise AnodemapInputError(
            f"{path}: no run.json; run the study first (anodemap run STUDY.toml -o {out}), "
            "or name the run folder that holds it"
        )
    try:
        run = read_json(path)
    except ValueError as err:
        raise AnodemapInputError(f"{path}: not valid JSON ({err}); run the study again") from err
    if not isinstance(run, dict) or run.get("schema") != RUN_SCHEMA:
        found = run.get("schema") if isinstance(run, dict) else type(run).__name__
        raise AnodemapInputError(
            f"{path}: schema {found!r}, this report reads {RUN_SCHEMA!r}; run the study "
            "again with this anodemap"
        )
    return run


def collect_states(run: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """The states of the run in order, each with its datasets and their analyses.

    A state's Li/Si from capacity is run.json's, or computed from its capacity
    (:func:`anodemap.electrochem.li_per_host`) where run.json leaves it out.

    Examples
    --------
    >>> run = {"states": [{"name": "lith", "capacity_mAh_g": 3314, "datasets": []}]}
    >>> st = collect_states(run, Path("."))[0]
    >>> st["label"], round(st["li_per_si_from_capacity"], 2)
    ('lith', 3.47)
    """
    from anodemap.electrochem import li_per_host

    states = []
    for i, st in enumerate(run.get("states") or []):
        capacity = st.get("capacity_mAh_g")
        x = st.get("li_per_si_from_capacity")
        if x is None and capacity is not None:
            x = float(li_per_host(capacity))
        datasets = [_dataset(ds, out, i, j) for j, ds in enumerate(st.get("datasets") or [])]
        states.append(
            {
                "id": f"state-{i}",
                "name": st.get("name"),
                "label": st.get("label") or st.get("name"),
                "cycle": st.get("cycle"),
                "step": st.get("step"),
                "capacity_mAh_g": capacity,
                "li_per_si_from_capacity": x,
                "datasets": datasets,
                "regions": region_report.collect_regions(st, out, i),
            }
        )
    return states


def _dataset(ds: dict[str, Any], out: Path, i: int, j: int) -> dict[str, Any]:
    analyses = [
        analysis_entry(name, entry or {}, out) for name, entry in (ds.get("analyses") or {}).items()
    ]
    return {
        "id": f"state-{i}-dataset-{j}",
        "name": ds.get("name"),
        "kind": ds.get("kind"),
        "region": ds.get("region"),
        "path": ds.get("path"),
        "analyses": analyses,
    }


def analysis_entry(name: str, entry: dict[str, Any], out: Path) -> dict[str, Any]:
    """One analysis of ``run.json`` as the report shows it: status, input, key
    statistics (by what its ``summary.json`` holds) and figures; ``problems`` says what
    is missing."""
    status = entry.get("status")
    folder = entry.get("folder")
    a: dict[str, Any] = {
        "analysis": name,
        "status": status,
        "status_text": STATUS_TEXT.get(status, f"unknown status {status!r}"),
        "error": entry.get("error"),
        "seconds": entry.get("seconds"),
        "key": entry.get("key"),
        "folder": folder,
        "problems": [],
        "usable": False,
        "input": None,
        "command_line": None,
        "anodemap_version": None,
        "statistics": None,
        "figures": [],
        "more_figures": [],
        "truth_comparison": entry.get("truth_comparison"),
    }
    if status == "failed":
        a["problems"].append(
            "no results: the analysis failed"
            + (f" ({entry['error']})" if entry.get("error") else " (run.json gives no error)")
        )
        return a
    if status not in ("done", "skipped"):
        a["problems"].append(f"run.json gives the status {status!r}: results not shown")
        return a
    if not folder:
        a["problems"].append("run.json names no result folder")
        return a
    where = out / folder
    if not where.is_dir():
        a["problems"].append(f"the result folder {folder} is missing")
        return a
    try:
        summary = read_json(where / "summary.json")
    except FileNotFoundError:
        a["problems"].append(
            f"{folder}/summary.json is missing: the analysis did not complete (a summary "
            "is written last)"
        )
        return a
    except (OSError, ValueError) as err:
        a["problems"].append(f"{folder}/summary.json cannot be read: {err}")
        return a
    a["usable"] = True
    a["input"] = _input(summary.get("input"))
    a["command_line"] = summary.get("command_line")
    a["anodemap_version"] = summary.get("anodemap_version")
    # by what the summary holds: the analysis's name is the run's choice
    if "li_si_ratio" in summary:
        a["statistics"] = eels_statistics(summary)
    elif "phase_fractions" in summary:
        a["statistics"] = diffraction_statistics(summary)
    elif summary.get("analysis") == "pdf":
        a["statistics"] = pdf_report.pdf_statistics(summary)
    elif "li_si_per_class" in summary:
        a["statistics"] = region_report.correlate_statistics(summary, where)
    elif "class_fractions" in summary:
        a["statistics"] = region_report.features_statistics(summary)
    elif "net_counts" in summary:
        a["statistics"] = region_report.edx_statistics(summary)
    else:
        a["problems"].append(f"the report has no section for the analysis {name!r} yet")
    kind = (a["statistics"] or {}).get("kind", name)
    a["figures"], a["more_figures"] = _figures(where, folder, kind, a["problems"])
    return a


def _input(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The input record of summary.json (``anodemap.io.outdir.input_record``)."""
    if not record:
        return None
    hash_name = "sha256" if "sha256" in record else "sha256_head_tail"
    return {
        "path": record.get("path"),
        "kind": record.get("kind"),
        "files": record.get("files"),
        "size_bytes": record.get("size_bytes"),
        "modified": record.get("modified"),
        "hash_name": hash_name,
        "hash": record.get(hash_name),
        "hashed": record.get("hashed"),
    }


def _figures(
    where: Path, folder: str, kind: str, problems: list[str]
) -> tuple[list[dict], list[dict]]:
    """The folder's PNGs (but the truth comparison's): main ones first, then the rest."""
    main_names = _MAIN_FIGURES.get(kind, ())
    order = list(_FIGURE_TITLES)
    pngs = sorted(
        (p for p in where.glob("*.png") if p.name != _TRUTH_FIGURE and not p.name.startswith(".")),
        key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name),
    )
    main, more = [], []
    for p in pngs:
        if not _is_png(p):
            problems.append(f"{folder}/{p.name} is not a readable PNG: left out")
            continue
        entry = {
            "file": f"{folder}/{p.name}",
            "title": _FIGURE_TITLES.get(p.name, p.stem),
            "wide": p.name in _WIDE,
        }
        (main if p.name in main_names else more).append(entry)
    return main, more


def _is_png(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == _PNG_SIGNATURE
    except OSError:
        return False


def _stats(s: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any]:
    s = s or {}
    return {k: s.get(k) for k in keys}


_STAT_KEYS = ("n", "mean", "std", "median", "p5", "p95")


def _status_rows(
    counts: dict[str, int] | None, legend: dict[str, str], ok: str | None = None
) -> list[dict[str, Any]]:
    """Non-zero status counts, each with its code and meaning (``ok``: that of code 0)."""
    rows = []
    for name, n in (counts or {}).items():
        if not n:
            continue
        try:
            code: int | None = int(Status[name.upper()])
        except KeyError:
            code = None
        description = legend.get(str(code), name.replace("_", " "))
        if code == 0 and ok:
            description = ok
        rows.append({"code": code, "name": name, "description": description, "n": n})
    return rows


def eels_statistics(summary: dict[str, Any]) -> dict[str, Any]:
    """Key numbers of an EELS ``summary.json`` (written by ``anodemap.eels.output``).

    Examples
    --------
    >>> s = eels_statistics({"n_pixels": 4, "n_valid": 3, "li_si_ratio": {"n": 3, "mean": 1.5},
    ...                      "li_si_status_counts": {"ok": 3, "no_signal": 1}})
    >>> s["n_li_si"], s["quantities"][0]["mean"]
    (3, 1.5)
    >>> [(c["n"], c["description"]) for c in s["flags"][0]["counts"]]
    [(3, 'Li/Si given'), (1, 'no signal')]
    """
    legend = summary.get("status_legend") or {}
    quantities = [
        ("plasmon_energy_eV", "Plasmon energy (eV)", "converged plasmon fits"),
        ("li_si_ratio", "Li/Si", "pixels with a Li/Si value (within the calibration)"),
        ("li_si_uncertainty_statistical", "Li/Si uncertainty, fit (1σ)", "the same pixels"),
        ("li_si_uncertainty_calibration", "Li/Si uncertainty, calibration (1σ)", "the same pixels"),
        ("plasmon_fwhm_eV", "Plasmon FWHM (eV)", "converged plasmon fits"),
        ("thickness_t_over_lambda", "Thickness t/λ", "pixels with a thickness"),
        ("li_k_fraction", "Li-K counts per single-scattering count", "Li-K status 0"),
    ]
    window_warning = summary.get("window_warning")
    params = summary.get("parameters") or {}
    return {
        "kind": "eels",
        "n_pixels": summary.get("n_pixels"),
        "n_plasmon_converged": summary.get("n_plasmon_converged"),
        "fraction_converged": summary.get("fraction_converged"),
        "n_li_si": summary.get("n_valid"),
        "fraction_li_si": summary.get("fraction_li_si_valid"),
        "quantities": [
            {
                "key": key,
                "title": title,
                "over": over,
                **_stats(summary.get(key), _STAT_KEYS),
            }
            for key, title, over in quantities
            if key in summary
        ],
        "flags": [
            {
                "map": m,
                "title": title,
                "counts": _status_rows(summary.get(key), legend, _OK_MEANING[m]),
            }
            for m, key, title in (
                ("fit_status", "status_counts", "Plasmon fit"),
                ("li_si_status", "li_si_status_counts", "Li/Si"),
                ("li_k_status", "li_k_status_counts", "Li-K edge"),
            )
            if key in summary
        ],
        "fit_window_eV": summary.get("fit_window_eV"),
        "window_warning": window_warning.get("message") if window_warning else None,
        "oxide_peak": summary.get("oxide_peak"),
        "deconvolve": params.get("deconvolve"),
        "model": params.get("model"),
        "calibration": (summary.get("calibration") or {}).get("name"),
    }


def diffraction_statistics(summary: dict[str, Any]) -> dict[str, Any]:
    """Key numbers of a diffraction ``summary.json`` (``anodemap.diffraction.output``).

    Examples
    --------
    >>> s = diffraction_statistics({"n_patterns": 4, "phase_fractions": {"amorphous": 1.0}})
    >>> s["n_patterns"], s["phase_fractions"]
    (4, [{'phase': 'amorphous', 'fraction': 1.0}])
    """
    legend = summary.get("status_legend") or {}
    settings = summary.get("settings") or {}
    params = summary.get("parameters") or {}
    regions = summary.get("regions")
    return {
        "kind": "diffraction",
        "n_patterns": summary.get("n_patterns"),
        "n_material": summary.get("n_material"),
        "n_vacuum": summary.get("n_vacuum"),
        "n_not_analysed": summary.get("n_not_analysed"),
        "n_indexed": summary.get("n_indexed"),
        "phase_fractions": [
            {"phase": name, "fraction": f}
            for name, f in (summary.get("phase_fractions") or {}).items()
        ],
        "phase_fractions_over": summary.get("phase_fractions_over"),
        "status_counts": _status_rows(summary.get("status_counts"), legend),
        "mean_amorphous_share_of_crystalline_patterns": summary.get(
            "mean_amorphous_share_of_crystalline_patterns"
        ),
        "median_correlation_index": summary.get("median_correlation_index"),
        "phases": list(params.get("phases") or []),
        "step_deg": params.get("step_deg"),
        "precession_angle_deg": settings.get("precession_angle_deg"),
        "beam_energy_kev": settings.get("beam_energy_kev"),
        "regions": None
        if regions is None
        else [
            {
                "region": r.get("region"),
                "n_patterns": r.get("n_patterns"),
                "n_material": r.get("n_material"),
                "n_vacuum": r.get("n_vacuum"),
                "phase_fractions": [
                    {"phase": name, "fraction": f}
                    for name, f in (r.get("phase_fractions") or {}).items()
                ],
            }
            for r in regions
        ],
    }
