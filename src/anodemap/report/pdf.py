"""The report's PDF parts: a PDF folder's key numbers, and each state's amorphous G(r).

:func:`pdf_statistics` turns a PDF ``summary.json`` (``anodemap pdf``) into the dataset's
entry of ``report.json`` (the peak table of every region, the choices, the comparisons);
:func:`amorphous_comparison` gathers the G(r) of every state's ``amorphous`` phase class,
sampled on one r grid, with its band and peaks, so that :func:`amorphous_figure` draws
them on shared axes from ``report.json`` alone.

Examples
--------
>>> s = pdf_statistics({"analysis": "pdf", "s_range_inv_angstrom": [0.2, 1.3],
...     "regions": {"amorphous": {"kind": "phase", "n_patterns": 40, "peaks": [
...         {"r_angstrom": 2.35, "ci95_angstrom": [2.33, 2.37], "height": 1.0,
...          "fwhm_angstrom": 0.5}]}}})
>>> s["regions"][0]["peaks"][0]["label"], s["regions"][0]["peaks"][0]["ci95"]
('r1', [2.33, 2.37])
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FIGURE_TITLES",
    "MAIN_FIGURES",
    "amorphous_comparison",
    "amorphous_figure",
    "pdf_statistics",
]

FIGURE_TITLES = {
    "pdf.png": "G(r) of each phase class and region, with its 95 % band",
    "reduced_intensity.png": "I(s) with the fitted N⟨f²⟩ + B, and φ(s), of each region",
    "pdf_differences.png": "Differences of the regions' G(r), with their bands",
}
MAIN_FIGURES = ("pdf.png",)
REGION = "amorphous"  # the phase class compared across the states
# r grid of the comparison (Å): coarse enough that its numbers fit in report.json and on
# the page, fine enough for peaks about 0.4 Å wide
_R_SHOWN = np.round(np.arange(1.0, 8.0 + 1e-9, 0.05), 2)


def _peaks(peaks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "label": f"r{k + 1}",
            "r": p.get("r_angstrom"),
            "ci95": list(p.get("ci95_angstrom") or [None, None]),
            "height": p.get("height"),
            "fwhm": p.get("fwhm_angstrom"),
            "bias": p.get("termination_bias_angstrom"),
            "overlapped": bool(p.get("overlapped")),
        }
        for k, p in enumerate(peaks or [])
    ]


def _coordination(n1: Any) -> dict[str, Any] | None:
    if not isinstance(n1, dict):
        return None
    return {
        "value": n1.get("value"),
        "ci95": list(n1.get("ci95") or [None, None]),
        "density": n1.get("density_g_cm3"),
        "reliability": n1.get("reliability"),
    }


def pdf_statistics(summary: dict[str, Any]) -> dict[str, Any]:
    """Key numbers of a PDF ``summary.json`` (:mod:`anodemap.pdf.output`)."""
    scaling = summary.get("s_scale_correction") or {}
    composition = summary.get("composition") or {}
    return {
        "kind": "pdf",
        "s_range": list(summary.get("s_range_inv_angstrom") or [None, None]),
        "s_range_from": summary.get("s_range_from"),
        "damping": summary.get("damping"),
        "composition": " ".join(f"{el}:{v:.3g}" for el, v in composition.items()),
        "resolution_fwhm": summary.get("resolution_fwhm_angstrom"),
        "s_scale_factor": scaling.get("factor"),
        "s_scale_how": scaling.get("how"),
        "interval": (summary.get("interval") or {}).get("termination"),
        "regions": [
            {
                "name": name,
                "kind": reg.get("kind"),
                "n_patterns": reg.get("n_patterns"),
                "peaks": _peaks(reg.get("peaks")),
                "composition": " ".join(
                    f"{el}:{v:.3g}" for el, v in (reg.get("composition") or {}).items()
                ),
                "li_per_si": (reg.get("li_si") or {}).get("li_per_si"),
                "li_si_valid": (reg.get("li_si") or {}).get("n_valid"),
                "coordination_number": _coordination(reg.get("coordination_number")),
                "ratios": [
                    {"name": k, "value": v.get("value"), "ci95": list(v.get("ci95") or [])}
                    for k, v in (reg.get("ratios") or {}).items()
                ],
            }
            for name, reg in (summary.get("regions") or {}).items()
        ],
        "not_analysed": [
            {"name": k, "reason": v} for k, v in (summary.get("not_analysed") or {}).items()
        ],
        "comparisons": [
            {
                "a": c.get("a"),
                "b": c.get("b"),
                "differs": c.get("differs"),
                "statement": c.get("statement"),
            }
            for c in summary.get("comparisons") or []
        ],
    }


def amorphous_comparison(states: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """The amorphous G(r) of every PDF result of every state, on one r grid.

    Returns ``{"region", "r", "entries", "notes"}``: an entry per PDF folder that has the
    region (state, label, dataset, patterns, peaks, G, band low and high on ``r``), a
    note per state without one.
    """
    entries, notes = [], []
    for st in states:
        found = False
        for ds in st["datasets"]:
            for a in ds["analyses"]:
                s = a.get("statistics") or {}
                if a.get("analysis") != "pdf" or not a.get("usable") or s.get("kind") != "pdf":
                    continue
                reg = next((x for x in s["regions"] if x["name"] == REGION), None)
                if reg is None:
                    notes.append(f"{st['label']} / {ds['name']}: no {REGION} region with a PDF")
                    continue
                try:
                    table = np.loadtxt(
                        out / a["folder"] / "regions" / REGION / "pdf.csv",
                        delimiter=",",
                        skiprows=2,
                    )
                except (OSError, ValueError) as err:
                    notes.append(
                        f"{st['label']} / {ds['name']}: {REGION} pdf.csv unreadable ({err})"
                    )
                    continue
                r, g, lo, hi = table.T
                entries.append(
                    {
                        "state": st["name"],
                        "label": st["label"],
                        "dataset": ds["name"],
                        "n_patterns": reg["n_patterns"],
                        "peaks": reg["peaks"],
                        "g": [round(float(v), 4) for v in np.interp(_R_SHOWN, r, g)],
                        "band_low": [round(float(v), 4) for v in np.interp(_R_SHOWN, r, lo)],
                        "band_high": [round(float(v), 4) for v in np.interp(_R_SHOWN, r, hi)],
                    }
                )
                found = True
        if not found and not any(n.startswith(f"{st['label']} / ") for n in notes):
            notes.append(f"{st['label']}: no PDF result (no diffraction dataset, or it failed)")
    grid = [float(v) for v in _R_SHOWN] if entries else []  # every number is shown
    return {"region": REGION, "r": grid, "entries": entries, "notes": notes}


def amorphous_figure(comparison: dict[str, Any], states: list[dict[str, Any]]) -> bytes | None:
    """PNG: the amorphous G(r) of every state on shared axes, one colour per state, with
    the bands; None when there is none."""
    if not comparison["entries"]:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    colour = {st["name"]: st.get("colour", "C0") for st in states}
    r = np.asarray(comparison["r"])
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.add_subplot()
    styles = ["-", "--", ":", "-."]
    seen: dict[str, int] = {}
    for e in comparison["entries"]:
        k = seen.get(e["state"], 0)
        seen[e["state"]] = k + 1
        c = colour.get(e["state"], "C0")
        ax.fill_between(r, e["band_low"], e["band_high"], color=c, alpha=0.25, lw=0)
        ax.plot(
            r,
            e["g"],
            color=c,
            lw=1.2,
            ls=styles[k % len(styles)],
            label=f"{e['label']} / {e['dataset']} (n = {e['n_patterns']})",
        )
    ax.axhline(0.0, color="0.7", lw=0.6)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G(r) (1/Å²)")
    ax.set_title(f"G(r) of the {comparison['region']} regions, 95 % bands", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    return buf.getvalue()
