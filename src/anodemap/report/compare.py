"""The comparison of the states: distributions, phase fractions, trends, calibration.

Each function returns the plain dictionaries of ``report.json``'s ``comparison``; the
figures and the page are drawn from them alone (:mod:`anodemap.report.figures`).
The Li/Si and plasmon-energy distributions are read from the maps themselves
(``li_si_ratio.hspy`` with ``li_si_status.hspy``, ``plasmon_energy.hspy`` with
``fit_status.hspy``), over the pixels whose status says the value is valid, pooled
over the EELS datasets of a state; every other pixel is counted with its reason.

Examples
--------
>>> from anodemap.report.compare import distributions
>>> dists = distributions(states, Path("study_out/"))    # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anodemap.status import WARNINGS, Status, describe

__all__ = [
    "calibrations",
    "capacity_comparison",
    "distributions",
    "phase_fractions",
    "usable",
    "versus_cycle",
]

# The quantities compared across states: map, its status map and the codes that make a
# value valid (those of the analysis's own summary: Li/Si where li_si_status is OK; a
# plasmon energy where the fit converged, warnings included, as ``n_plasmon_converged``)
QUANTITIES = {
    "li_si_ratio": {
        "title": "Li/Si",
        "axis_label": "Li/Si (Li atoms per Si atom)",
        "unit": "",
        "map": "li_si_ratio.hspy",
        "status_map": "li_si_status.hspy",
        "valid_codes": (int(Status.OK),),
        "valid_rule": "Li/Si status 0: a converged plasmon fit within the calibrated range",
    },
    "plasmon_energy": {
        "title": "Plasmon energy",
        "axis_label": "plasmon energy (eV)",
        "unit": "eV",
        "map": "plasmon_energy.hspy",
        "status_map": "fit_status.hspy",
        "valid_codes": tuple(sorted({int(Status.OK), *(int(c) for c in WARNINGS)})),
        "valid_rule": "fit status 0 or 7: a converged plasmon fit (7: with a warning)",
    },
}

# Names of the phase map's labels that are not material (excluded from fractions)
_NOT_MATERIAL = {"vacuum", "not analysed"}
_NOT_INDEXED = "crystalline, not indexed"
_MAX_BINS, _MIN_BINS = 50, 10


def usable(state: dict[str, Any], kind: str) -> list[tuple[dict, dict]]:
    """``(dataset, analysis)`` pairs of a state whose results of ``kind`` can be read."""
    return [
        (ds, a)
        for ds in state["datasets"]
        for a in ds["analyses"]
        if a["usable"] and (a["statistics"] or {}).get("kind") == kind
    ]


def _why_none(state: dict[str, Any], kind: str, what: str) -> str:
    """Why a state has no ``kind`` results, in words."""
    reasons = [
        f"{ds['name']}: {a['problems'][0] if a['problems'] else a['status_text']}"
        for ds in state["datasets"]
        for a in ds["analyses"]
        if not a["usable"] and (ds["kind"] == kind or a["analysis"] == kind)
    ]
    if reasons:
        return f"no {what}: " + "; ".join(reasons)
    return f"no {what}: this state has no {kind} dataset"


def _stats(v: np.ndarray) -> dict[str, Any]:
    if v.size == 0:
        return {k: None for k in ("mean", "std", "median", "p5", "p25", "p75", "p95", "min", "max")}
    p5, p25, p50, p75, p95 = (float(q) for q in np.percentile(v, [5, 25, 50, 75, 95]))
    return {
        "mean": float(np.mean(v)),
        "std": float(np.std(v)),
        "median": p50,
        "p5": p5,
        "p25": p25,
        "p75": p75,
        "p95": p95,
        "min": float(np.min(v)),
        "max": float(np.max(v)),
    }


def _read_pair(folder: Path, spec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from anodemap.io import load

    values = np.asarray(load(folder / spec["map"]).data, dtype=float)
    status = np.asarray(load(folder / spec["status_map"]).data)
    if values.shape != status.shape:
        raise ValueError(f"{spec['map']} {values.shape} and {spec['status_map']} differ in shape")
    return values.ravel(), status.ravel()


def distributions(states: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """Li/Si and plasmon energy of every state over its valid pixels, on shared bins.

    Returns
    -------
    list of dict
        Per quantity: ``bin_edges`` (shared by the states) and per state ``n_pixels``,
        ``n_valid``, ``excluded`` (status code, meaning, pixels), ``counts`` per bin,
        statistics and the datasets pooled; ``note`` says why a state has no values.

    Examples
    --------
    >>> dists = distributions(report["states"], Path("study_out/"))   # doctest: +SKIP
    >>> [d["quantity"] for d in dists]                                # doctest: +SKIP
    ['li_si_ratio', 'plasmon_energy']
    """
    result = []
    for key, spec in QUANTITIES.items():
        per_state = []
        for st in states:
            per_state.append(_state_distribution(st, out, spec))
        pooled = [e.pop("_values") for e in per_state]
        every = np.concatenate(pooled) if pooled else np.zeros(0)
        edges = _shared_edges(every)
        for e, v in zip(per_state, pooled, strict=True):
            e["counts"] = (
                np.histogram(v, bins=edges)[0].astype(int).tolist()
                if edges is not None and v.size
                else None
            )
        result.append(
            {
                "quantity": key,
                "title": spec["title"],
                "axis_label": spec["axis_label"],
                "unit": spec["unit"],
                "valid_rule": spec["valid_rule"],
                "bin_edges": None if edges is None else [float(b) for b in edges],
                "states": per_state,
            }
        )
    return result


def _state_distribution(st: dict[str, Any], out: Path, spec: dict[str, Any]) -> dict[str, Any]:
    values, excluded, datasets, missing = [], {}, [], []
    n_pixels = 0
    for ds, a in usable(st, "eels"):
        try:
            v, s = _read_pair(out / a["folder"], spec)
        except (OSError, ValueError) as err:
            missing.append(f"{ds['name']}: maps not readable ({err})")
            continue
        ok = np.isin(s, spec["valid_codes"])
        finite = np.isfinite(v)
        n_pixels += int(v.size)
        for code, n in zip(*np.unique(s[~ok], return_counts=True), strict=True):
            excluded[int(code)] = excluded.get(int(code), 0) + int(n)
        # a status that says valid over a NaN value is counted, not hidden
        nan_ok = int(np.count_nonzero(ok & ~finite))
        if nan_ok:
            excluded[-1] = excluded.get(-1, 0) + nan_ok
        keep = ok & finite
        values.append(v[keep])
        datasets.append(
            {"dataset": ds["name"], "n_pixels": int(v.size), "n_valid": int(keep.sum())}
        )
    v = np.concatenate(values) if values else np.zeros(0)
    note = None
    if not datasets:
        note = _why_none(st, "eels", "EELS maps")
    elif v.size == 0:
        note = "no pixel has a valid value (see the excluded pixels)"
    return {
        "state": st["name"],
        "label": st["label"],
        "n_pixels": n_pixels,
        "n_valid": int(v.size),
        "n_excluded": n_pixels - int(v.size),
        "excluded": [
            {
                "code": None if code < 0 else code,
                "description": "status says valid, but the value is not finite"
                if code < 0
                else describe(code),
                "n": n,
            }
            for code, n in sorted(excluded.items())
        ],
        "datasets": datasets,
        "missing": missing,
        "stats": _stats(v),
        "note": note,
        "_values": v,
    }


def _shared_edges(v: np.ndarray) -> np.ndarray | None:
    """Bin edges for all states at once: Freedman-Diaconis, 10 to 50 bins."""
    if v.size == 0:
        return None
    lo, hi = float(np.min(v)), float(np.max(v))
    if hi - lo < 1e-9:
        return np.linspace(lo - 0.5, hi + 0.5, _MIN_BINS + 1)
    n = len(np.histogram_bin_edges(v, bins="fd")) - 1
    return np.linspace(lo, hi, int(np.clip(n, _MIN_BINS, _MAX_BINS)) + 1)


def phase_fractions(states: list[dict[str, Any]]) -> dict[str, Any]:
    """Phase fractions of every state, from the diffraction summaries.

    A state with one diffraction dataset has exactly its summary's fractions; several
    are pooled, each weighted by its material patterns. The crystalline fraction is
    the sum over the indexed phases (Si, Li15Si4, ...: every label but amorphous and
    crystalline-not-indexed), which is reported apart.

    Examples
    --------
    >>> stats = {"kind": "diffraction", "n_patterns": 10, "n_material": 8, "n_vacuum": 2,
    ...          "phase_fractions": [{"phase": "amorphous", "fraction": 0.75},
    ...                              {"phase": "Si", "fraction": 0.25}]}
    >>> state = {"name": "a", "label": "A", "datasets": [{"name": "sped", "kind": "diffraction",
    ...          "analyses": [{"analysis": "diffraction", "usable": True, "statistics": stats}]}]}
    >>> pf = phase_fractions([state])
    >>> pf["phases"], pf["states"][0]["crystalline_fraction"]
    (['amorphous', 'Si'], 0.25)
    """
    phases: list[str] = []
    entries = []
    for st in states:
        found = usable(st, "diffraction")
        entry: dict[str, Any] = {
            "state": st["name"],
            "label": st["label"],
            "datasets": [ds["name"] for ds, _ in found],
            "n_patterns": None,
            "n_material": None,
            "n_vacuum": None,
            "fractions": [],
            "crystalline_fraction": None,
            "note": None,
        }
        if not found:
            entry["note"] = _why_none(st, "diffraction", "phase map")
            entries.append(entry)
            continue
        stats = [a["statistics"] for _, a in found]
        n_mat = [s["n_material"] or 0 for s in stats]
        names: list[str] = []
        for s in stats:
            names += [p["phase"] for p in s["phase_fractions"] if p["phase"] not in names]
        fractions = {}
        for name in names:
            if len(stats) == 1:
                f = {p["phase"]: p["fraction"] for p in stats[0]["phase_fractions"]}.get(name)
            else:
                total = sum(n_mat)
                f = (
                    sum(
                        n
                        * ({p["phase"]: p["fraction"] for p in s["phase_fractions"]}.get(name) or 0)
                        for s, n in zip(stats, n_mat, strict=True)
                    )
                    / total
                    if total
                    else None
                )
            fractions[name] = f
        for name in names:
            if name not in phases and name not in _NOT_MATERIAL:
                phases.append(name)
        crystalline = [n for n in names if n not in ("amorphous", _NOT_INDEXED, *_NOT_MATERIAL)]
        have = [fractions[n] for n in crystalline if fractions[n] is not None]
        entry.update(
            n_patterns=sum(s["n_patterns"] or 0 for s in stats),
            n_material=sum(n_mat),
            n_vacuum=sum(s["n_vacuum"] or 0 for s in stats),
            fractions=[{"phase": n, "fraction": fractions[n]} for n in names],
            crystalline_phases=crystalline,
            crystalline_fraction=float(sum(have)) if have else None,
        )
        if not sum(n_mat):
            entry["note"] = "no material pattern (all vacuum or not analysed)"
        entries.append(entry)
    # amorphous first, the phases as found, crystalline-not-indexed last
    order = sorted(phases, key=lambda n: (n != "amorphous", n == _NOT_INDEXED))
    return {"phases": order, "states": entries}


def versus_cycle(
    states: list[dict[str, Any]], dists: list[dict[str, Any]], fractions: dict[str, Any]
) -> list[dict[str, Any]]:
    """Crystalline fraction and mean plasmon energy of each state with its cycle."""
    plasmon = {
        e["state"]: e for d in dists if d["quantity"] == "plasmon_energy" for e in d["states"]
    }
    cryst = {e["state"]: e for e in fractions["states"]}
    rows = []
    for st in states:
        p = plasmon.get(st["name"], {})
        c = cryst.get(st["name"], {})
        rows.append(
            {
                "state": st["name"],
                "label": st["label"],
                "cycle": st["cycle"],
                "step": st["step"],
                "crystalline_fraction": c.get("crystalline_fraction"),
                "plasmon_energy_mean_eV": (p.get("stats") or {}).get("mean"),
                "plasmon_energy_std_eV": (p.get("stats") or {}).get("std"),
                "plasmon_energy_n": p.get("n_valid"),
            }
        )
    return rows


def capacity_comparison(
    states: list[dict[str, Any]], dists: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Measured Li/Si of each state with a capacity against the Li/Si it implies.

    A lithiation's capacity counts the Li inserted per Si: that is the Li/Si expected
    if every charge went into the silicon. A delithiation's counts the Li taken out:
    after the first cycle, at most ``x(lithiation) - x(delithiation)`` Li per Si can
    remain (the rest of the charge of the lithiation may have gone to side reactions,
    e.g. the SEI), which needs the first lithiation's capacity; later cycles would need
    every earlier one, so they are not compared.
    """
    li = {e["state"]: e for d in dists if d["quantity"] == "li_si_ratio" for e in d["states"]}
    lithiated = {
        st["cycle"]: st["li_per_si_from_capacity"]
        for st in states
        if st["step"] == "lithiated" and st["li_per_si_from_capacity"] is not None
    }
    rows = []
    for st in states:
        x = st["li_per_si_from_capacity"]
        if x is None:
            continue
        expected, kind, note = None, None, None
        if st["step"] == "lithiated":
            expected, kind = x, "Li inserted per Si (all charge into the silicon)"
        elif st["step"] == "delithiated" and st["cycle"] == 1 and 1 in lithiated:
            expected = lithiated[1] - x
            kind = "at most this Li per Si remains: first lithiation minus this delithiation"
        elif st["step"] == "delithiated":
            note = (
                "the capacity counts the Li taken out, not the Li that remains; comparing "
                "needs the capacities of every earlier (de)lithiation"
            )
        else:
            note = "the step (lithiated or delithiated) is not given: the capacity's meaning is unknown"
        e = li.get(st["name"], {})
        s = e.get("stats") or {}
        rows.append(
            {
                "state": st["name"],
                "label": st["label"],
                "step": st["step"],
                "cycle": st["cycle"],
                "capacity_mAh_g": st["capacity_mAh_g"],
                "li_per_si_from_capacity": x,
                "expected_li_si": expected,
                "expected_meaning": kind,
                "measured_mean": s.get("mean"),
                "measured_std": s.get("std"),
                "measured_median": s.get("median"),
                "measured_n": e.get("n_valid"),
                "note": note or (e.get("note") if not e.get("n_valid") else None),
            }
        )
    return rows


def calibrations(states: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    """The Li/Si calibrations the EELS datasets used (one entry per distinct curve)."""
    from anodemap.report.collect import read_json

    found: dict[tuple, dict[str, Any]] = {}
    for st in states:
        for ds, a in usable(st, "eels"):
            try:
                cal = read_json(out / a["folder"] / "summary.json").get("calibration") or {}
            except (OSError, ValueError):
                continue
            key = (cal.get("name"), cal.get("equation"))
            if key not in found:
                cov = np.asarray(cal.get("covariance") or [], dtype=float)
                coefs = cal.get("coefficients") or {}
                sig = np.sqrt(np.clip(np.diag(cov), 0, None)) if cov.ndim == 2 else []
                fig = out / a["folder"] / "calibration.png"
                found[key] = {
                    "name": cal.get("name"),
                    "path": cal.get("path"),
                    "form": cal.get("form"),
                    "equation": cal.get("equation"),
                    "coefficients": [
                        {
                            "name": n,
                            "value": v,
                            "sigma": float(sig[i]) if i < len(sig) else None,
                        }
                        for i, (n, v) in enumerate(coefs.items())
                    ],
                    "row_sigma_eV": cal.get("row_sigma_eV"),
                    "x_range": cal.get("x_range"),
                    "energy_range_eV": cal.get("energy_range_eV"),
                    "rows": [
                        {
                            k: r.get(k)
                            for k in (
                                "x",
                                "plasmon_energy_eV",
                                "fitted_eV",
                                "residual_eV",
                                "kind",
                                "source",
                            )
                        }
                        for r in cal.get("rows") or []
                    ],
                    "comments": "\n".join(cal.get("comments") or []),
                    "figure": f"{a['folder']}/calibration.png" if fig.is_file() else None,
                    "used_by": [],
                }
            found[key]["used_by"].append(f"{st['label']} / {ds['name']}")
    return list(found.values())
