"""``build_report``: the study's ``report.json`` and its one-file ``report.html``.

The report is assembled as plain data (``report.json``, schema ``anodemap.report/1``),
and the page and its comparison figures are made from that data alone (after a round
trip through JSON), so every number on the page is one of ``report.json``. The
analyses' own figures are embedded as data URIs: the page is one file that opens
offline, with no external style sheet, script, font or image.

Examples
--------
>>> from anodemap.report import build_report
>>> json_path, html_path = build_report("study_out/")   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
import math
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anodemap import __version__
from anodemap.report import compare, figures, pdf
from anodemap.report.collect import collect_states, read_run, sha256_of
from anodemap.report.format import num, pct
from anodemap.report.truth import truth_tables

__all__ = ["SCHEMA", "assemble", "build_report", "render"]

SCHEMA = "anodemap.report/1"

# Versions the report records: the packages that made or read the results
_PACKAGES = (
    "anodemap",
    "numpy",
    "scipy",
    "numba",
    "dask",
    "distributed",
    "rosettasciio",
    "h5py",
    "zarr",
    "matplotlib",
    "jinja2",
)


def build_report(out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``OUT/report.json`` and ``OUT/report.html`` for the run in ``out``.

    Parameters
    ----------
    out : path
        A run folder: ``run.json`` (``anodemap run``) and the analysis folders it names.

    Returns
    -------
    (Path, Path)
        ``report.json`` and ``report.html``, each written under a temporary name and
        renamed, so that neither is ever seen half-written.

    Raises
    ------
    AnodemapInputError
        ``out`` has no readable ``run.json`` of schema ``anodemap.run/1``.

    Examples
    --------
    >>> json_path, html_path = build_report("study_out/")   # doctest: +SKIP
    >>> json_path.name, html_path.name                       # doctest: +SKIP
    ('report.json', 'report.html')
    """
    from anodemap.io.results import write_json

    out = Path(out)
    report = assemble(read_run(out), out)
    # the page is made from what report.json holds, not from anything beside it
    data = json.loads(json.dumps(report, allow_nan=False))
    html = render(data, out)
    json_path = write_json(data, out / "report.json")
    html_path = _write_text(out / "report.html", html)
    return json_path, html_path


def assemble(run: dict[str, Any], out: Path) -> dict[str, Any]:
    """The content of ``report.json`` for a run read by :func:`~anodemap.report.collect.read_run`.

    Examples
    --------
    >>> report = assemble(read_run("study_out/"), Path("study_out/"))   # doctest: +SKIP
    >>> report["schema"]                                                 # doctest: +SKIP
    'anodemap.report/1'
    """
    states = collect_states(run, out)
    for i, st in enumerate(states):
        st["colour"] = figures.STATE_COLOURS[i % len(figures.STATE_COLOURS)]
    dists = compare.distributions(states, out)
    fractions = compare.phase_fractions(states)
    fractions["colours"] = figures.phase_colours(fractions["phases"])
    study = run.get("study") or {}
    report = {
        "schema": SCHEMA,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "anodemap_version": __version__,
        "packages": _versions(),
        "run": {
            "folder": str(out.resolve()),
            "sha256": sha256_of(out / "run.json"),
            "anodemap_version": run.get("anodemap_version"),
            "started": run.get("started"),
            "finished": run.get("finished"),
        },
        "study": {
            "name": study.get("name") or "(unnamed study)",
            "description": study.get("description"),
            "file": study.get("file"),
            "sha256": study.get("sha256"),
            "simulated": bool(study.get("simulated")),
        },
        "electrochem": _electrochem(),
        "problems": _problems(states),
        "states": states,
        "comparison": {
            "distributions": dists,
            "phase_fractions": fractions,
            "versus_cycle": compare.versus_cycle(states, dists, fractions),
            "capacity": compare.capacity_comparison(states, dists),
            "calibrations": compare.calibrations(states, out),
            "truth": truth_tables(states, out),
            "pdf": pdf.amorphous_comparison(states, out),
        },
        "cycling": _cycling(run.get("cycling")),
    }
    return _clean(report)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _electrochem() -> dict[str, float]:
    """The constants of Li/Si from capacity (:mod:`anodemap.electrochem`), as the page
    states the formula."""
    from anodemap import electrochem as ec

    return {
        "coulomb_per_mah": ec.COULOMB_PER_MAH,
        "si_molar_mass_g_per_mol": ec.SI_MOLAR_MASS_G_PER_MOL,
        "faraday_c_per_mol": ec.FARADAY_C_PER_MOL,
    }


def _problems(states: list[dict[str, Any]]) -> list[str]:
    """What the reader must know before the numbers: failures, absences, gaps."""
    problems = []
    if not states:
        problems.append("run.json lists no state: there is nothing to compare")
    for st in states:
        if not st["datasets"]:
            problems.append(f"{st['label']}: no dataset was given for this state")
        for ds in st["datasets"]:
            if not ds["analyses"]:
                problems.append(f"{st['label']} / {ds['name']}: run.json records no analysis")
            for a in ds["analyses"]:
                for p in a["problems"]:
                    problems.append(f"{st['label']} / {ds['name']} / {a['analysis']}: {p}")
        for rg in st.get("regions") or []:
            for a in rg["analyses"]:
                for p in a["problems"]:
                    problems.append(f"{st['label']} / region {rg['name']} / {a['analysis']}: {p}")
    return problems


def _cycling(cycling: dict[str, Any] | None) -> dict[str, Any] | None:
    if not cycling:
        return None
    return {k: cycling.get(k) for k in ("file", "cycle", "charge_mAh_g", "discharge_mAh_g")}


def _clean(obj: Any) -> Any:
    """Plain JSON types: numpy scalars as Python numbers, NaN and infinities as None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _analysis_images(report: dict[str, Any], out: Path) -> dict[str, str]:
    """Data URIs of every PNG of the run folder that the report names."""
    names = set()
    for st in report["states"]:
        cards = [*st["datasets"], *(st.get("regions") or [])]
        for a in (a for card in cards for a in card["analyses"]):
            names.update(f["file"] for f in (*a["figures"], *a["more_figures"]))
    for table in report["comparison"]["truth"]:
        names.update(c["figure"] for c in table["columns"])
    for c in report["comparison"]["calibrations"]:
        names.add(c["figure"])
    images = {}
    for name in sorted(n for n in names if n):
        try:
            images[name] = _data_uri((out / name).read_bytes())
        except OSError:  # gone since it was listed: the page says the figure is missing
            continue
    return images


def render(report: dict[str, Any], out: Path) -> str:
    """The HTML page of a report (the content of ``report.json``).

    The comparison figures are drawn from ``report``; the analyses' figures it names
    are read from ``out`` and embedded as data URIs.

    Examples
    --------
    >>> html = render(json.loads(Path("study_out/report.json").read_text()), Path("study_out/"))  # doctest: +SKIP
    """
    from jinja2 import Environment, PackageLoader, StrictUndefined

    comparison = report["comparison"]
    made = {
        f"distribution_{d['quantity']}": figures.distribution_figure(d, report["states"])
        for d in comparison["distributions"]
    }
    made["phase_fractions"] = figures.phase_fraction_figure(
        comparison["phase_fractions"], report["states"]
    )
    made["versus_cycle"] = figures.cycle_figure(comparison["versus_cycle"], report["states"])
    made["capacity"] = figures.capacity_figure(comparison["capacity"], report["states"])
    made["cycling"] = figures.cycling_figure(report["cycling"])
    made["pdf"] = pdf.amorphous_figure(comparison["pdf"], report["states"])
    env = Environment(
        loader=PackageLoader("anodemap.report", "templates"),
        autoescape=True,  # every string from a file is escaped
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = num
    env.filters["pct"] = pct
    return env.get_template("report.html.j2").render(
        r=report,
        made={k: _data_uri(v) if v else None for k, v in made.items()},
        images=_analysis_images(report, out),
    )


def _write_text(path: Path, text: str) -> Path:
    """Write ``text`` atomically (:func:`anodemap.io.results.write_text`)."""
    from anodemap.io.results import write_text

    return write_text(text, path)
