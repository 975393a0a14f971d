"""The truth comparisons of a simulated study, as tables for the report.

Every ``truth_comparison.json`` of the run (written beside the maps, as ``anodemap
demo`` writes it) is flattened to rows, and the comparisons of one analysis are put
side by side: one table per analysis, one column per dataset, one row per number.

Examples
--------
>>> tables = truth_tables(states, Path("study_out/"))    # doctest: +SKIP
>>> [r["label"] for r in flatten({"li_si_error": {"rms": 0.1}, "n": 3})]
['Li/Si error › RMS', 'n']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["flatten", "truth_tables"]


def truth_tables(states: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """One table per analysis of every ``truth_comparison.json`` the run names.

    Returns
    -------
    list of dict
        ``analysis``; ``columns``: per dataset its state, name, file, figure, over which
        pixels the numbers are (``n_pixels``, ``n_compared``, ``n_material_li_k``,
        ``n_material_pixels``) and a ``problem`` if the file cannot be read; ``rows``:
        ``key``, ``label`` and ``values`` (one per column, None where a column lacks it).
    """
    from anodemap.report.collect import read_json

    tables: dict[str, dict[str, Any]] = {}
    for st in states:
        # a region's analyses whose truth its card does not show (its PDF by feature
        # class) take a column of their own
        cards = [
            *st["datasets"],
            *(
                {
                    "name": f"region {rg['name']}",
                    "analyses": [a for a in rg["analyses"] if "truth" not in a],
                }
                for rg in st.get("regions") or []
            ),
        ]
        for ds in cards:
            for a in ds["analyses"]:
                rel = a.get("truth_comparison")
                if not rel or not a["usable"]:
                    continue
                stats = a["statistics"] or {}
                column: dict[str, Any] = {
                    "state": st["name"],
                    "label": st["label"],
                    "dataset": ds["name"],
                    "file": rel,
                    "figure": None,
                    "problem": None,
                    "n_pixels": stats.get("n_pixels", stats.get("n_patterns")),
                }
                try:
                    found = read_json(out / rel)
                except (OSError, ValueError) as err:
                    column["problem"] = f"{rel} cannot be read: {err}"
                    found = {}
                # over which pixels the numbers are, for the sentence above the table
                column["n_compared"] = found.get("n_compared")
                column["n_material_li_k"] = (found.get("li_k") or {}).get("n_material")
                column["n_material_pixels"] = found.get("n_material_pixels")
                png = (out / rel).with_name("truth_comparison.png")
                if png.is_file():
                    column["figure"] = png.relative_to(out).as_posix()
                table = tables.setdefault(
                    a["analysis"], {"analysis": a["analysis"], "columns": [], "_rows": {}}
                )
                for row in flatten(found):
                    entry = table["_rows"].setdefault(
                        row["key"], {"key": row["key"], "label": row["label"], "values": {}}
                    )
                    entry["values"][len(table["columns"])] = row["value"]
                table["columns"].append(column)
    result = []
    for table in tables.values():
        n = len(table["columns"])
        rows = table.pop("_rows").values()
        table["rows"] = [{**r, "values": [r["values"].get(i) for i in range(n)]} for r in rows]
        result.append(table)
    return result


# Words for the keys of the truth comparisons (anything else: its key, spaced)
_WORDS = {
    "median_abs": "median |error|",
    "rms": "RMS",
    "n_compared": "pixels compared (Li/Si value, material in the truth)",
    "plasmon_energy_error_eV": "plasmon energy error (eV)",
    "li_si_error": "Li/Si error",
    "plasmon_energy_pull_std": "plasmon energy pull: std of error / 1σ",
    "mean_li_si_fitted": "mean Li/Si, fitted",
    "mean_li_si_true": "mean Li/Si, truth",
    "thickness_relative_error": "t/λ relative error",
    "oxide_free": "oxide-free pixels",
    "li_k": "Li-K",
    "li_k_fraction": "per single-scattering count",
    "n_material": "material pixels",
    "n_with_value": "pixels with a value",
    "n_flagged": "pixels flagged",
    "fraction_flagged": "share flagged",
    "flagged_by_status": "flagged, by status",
    "spearman_vs_li_si_pixels_with_value": "Spearman ρ vs truth Li/Si, pixels with a value",
    "spearman_vs_li_si_all_material_flagged_as_failures": (
        "Spearman ρ vs truth Li/Si, all material pixels (flagged: failure)"
    ),
    "spearman_vs_li_si_oxide_free_all": "Spearman ρ vs truth Li/Si, all oxide-free pixels",
    "n_oxide_free": "oxide-free pixels",
    "oxide_index": "oxide index (42 eV window / (plasmon area × t/λ))",
    "pearson_vs_oxide_fraction": "Pearson r vs truth oxide share",
    "spearman_vs_oxide_fraction": "Spearman ρ vs truth oxide share",
    "median_oxide_free": "median, oxide-free pixels",
    "median_oxide_rich": "median, pixels of oxide share ≥ 0.3",
    "spearman_of_the_exact_truth_vs_li_si": (
        "Spearman ρ of the exact truth vs truth Li/Si (the best reachable)"
    ),
    "spearman_vs_exact_truth_all_material": "Spearman ρ vs exact truth, all material pixels",
    "error_vs_exact_truth": "error vs exact truth",
    "relative_error_vs_exact_truth": "relative error vs exact truth",
    "n_pixels": "pixels",
    "n_material_pixels": "material pixels",
    "n_pore_pixels": "pore pixels",
    "n_called_vacuum": "pixels called vacuum",
    "phase_accuracy": "phase accuracy (all material pixels)",
    "label_accuracy": "label accuracy (all pixels, pores right as vacuum)",
    "confusion": "pixels: truth › found",
    "pores_called_crystalline": "pores called crystalline",
    "pores_called_amorphous": "pores called amorphous",
    "reliability_threshold": "reliability threshold (%)",
    "all_right_phase": "all pixels of the right phase",
    "reliable": "reliable pixels of the right phase",
    "within_2deg": "share within 2°",
    "median_deg": "median misorientation (°)",
    "amorphous_share": "amorphous share",
    "found_mean": "found, mean",
    "simulated_intensity_share_mean": "simulated intensity share, mean",
    "scan": "scan found in the stream",
    # the PDF's (anodemap.pdf.truth): distances against the simulator's amorphous models
    "found_angstrom": "found (Å)",
    "ci95_angstrom": "95 % interval (Å)",
    "expected_angstrom": "expected from the models, same route (Å)",
    "difference_angstrom": "found − expected (Å)",
    "covered": "interval covers the expected",
    "apparent_difference_angstrom": "apparent peaks: found − expected (Å)",
    "apparent_covered_statistical": "statistical interval covers the expected apparent peak",
    "models_angstrom": "models' own G(r) peak (Å)",
    "models_difference_angstrom": "found − models' own (Å)",
    "models_covered": "interval covers the models' own",
    "amorphous_intensity_share_truth": "truth's amorphous share of the intensity",
    "n_peaks_compared": "peaks compared",
    "n_covered": "intervals covering the expected",
    "n_not_in_truth": "peaks that are no shell of the truth",
    "n_covered_by_models": "intervals covering the models' own",
    "n_peaks_compared_amorphous": "peaks compared, amorphous regions",
    "n_covered_amorphous": "intervals covering the expected, amorphous regions",
    "models_own_peaks_angstrom": "each model's own G(r) peaks (Å)",
}


def flatten(obj: Any, path: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows ``{"key", "label", "value"}`` of every leaf of a nested JSON object.

    Examples
    --------
    >>> flatten({"li_k": {"li_k": {"n": 2}}})[0]["label"]
    'Li-K › counts › n'
    """
    if isinstance(obj, dict):
        return [row for k, v in obj.items() for row in flatten(v, (*path, str(k)))]
    if isinstance(obj, list):
        return [row for i, v in enumerate(obj) for row in flatten(v, (*path, str(i)))]
    return [{"key": ".".join(path), "label": _label(path), "value": obj}]


def _label(path: tuple[str, ...]) -> str:
    # the Li-K comparison holds the counts map under the same name: say which
    words = [
        "counts"
        if p == "li_k" and i > 0 and path[i - 1] == "li_k"
        else _WORDS.get(p, p.replace("_", " "))
        for i, p in enumerate(path)
    ]
    return " › ".join(words)
