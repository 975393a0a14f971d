"""``anodemap run`` gives the PDF of every feature class of a region with a diffraction
scan: the simulated region with SPED (``anodemap simulate region --diffraction``, seed
1) run end to end into ``OUT/STATE/regions/REGION/pdf/``, its feature classes as PDF
regions, their G(r) against the Si-Si bond and the simulator's truth, the report's
section, reuse of unchanged results, and what a failed result leaves out.

The bounds sit above what was measured (docs/registration.md, "anodemap run"); nothing
here is timed.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.io import load

STATE = "lithiated_1"
CORRELATE = f"{STATE}/regions/A/correlate"
PDF = f"{STATE}/regions/A/pdf"
CLASSES = ("bright", "grey", "dendrite-like", "boundary")
# the Si-Si bond of diamond Si: √3/4 × a, a = 5.431 Å (CODATA's lattice parameter of Si,
# 5.431020511 Å)
SI_SI = 5.431020511 * np.sqrt(3) / 4


def _run(*args) -> int:
    return main([str(a) for a in args])


def _failed(out) -> list:
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    return [
        (name, e["error"])
        for st in run.get("states", [])
        for card in (*st["datasets"], *st.get("regions", []))
        for name, e in card["analyses"].items()
        if e["status"] == "failed"
    ]


@pytest.fixture(scope="module")
def region_run(tmp_path_factory):
    """anodemap simulate region --diffraction (seed 1), then anodemap run of its study."""
    base = tmp_path_factory.mktemp("region_pdf")
    assert _run("simulate", "region", "-o", base / "sim", "--seed", 1, "--diffraction") == 0
    out = base / "out"
    code = _run("run", base / "sim" / "study.toml", "-o", out, "--no-progress")
    if code != 0:
        pytest.fail(f"anodemap run: exit {code}, failed: {_failed(out)}")
    return base / "sim", out


def _statuses(out) -> dict[str, dict[str, str]]:
    run = json.loads((out / "run.json").read_text())
    (state,) = run["states"]
    found = {
        d["name"]: {a: e["status"] for a, e in d["analyses"].items()} for d in state["datasets"]
    }
    found["region A"] = {a: e["status"] for a, e in state["regions"][0]["analyses"].items()}
    return found


def _material(out) -> np.ndarray:
    """The scan's material patterns: those the diffraction result calls neither vacuum
    nor not analysed (its phase map and legend)."""
    diffraction = out / STATE / "diffraction" / "diffraction"
    phase = np.asarray(load(diffraction / "phase.hspy").data)
    names = json.loads((diffraction / "summary.json").read_text())["phase_labels"]
    return np.isin(phase, [int(k) for k, v in names.items() if v not in ("vacuum", "not analysed")])


def _first_shell(peaks: list[dict]) -> dict:
    """The first peak beyond 1.8 Å: shorter than any bond of Si or Li_xSi, the peaks
    below are termination ripples of the 48-pixel patterns' s_max (docs/pdf.md)."""
    return next(p for p in peaks if p["r_angstrom"] > 1.8)


def test_the_region_runs_the_pdf_of_its_feature_classes(region_run):
    """After the correlate, the region's diffraction dataset's PDF with the feature
    classes on the scan's grid as its regions; each class's patterns are exactly the
    material patterns of that class in labels_diffraction.hspy (counted here from it and
    the diffraction result's phase map)."""
    sim, out = region_run
    run = json.loads((out / "run.json").read_text())
    (region,) = run["states"][0]["regions"]
    assert list(region["analyses"]) == ["correlate", "pdf"]
    entry = region["analyses"]["pdf"]
    assert entry["status"] == "done" and entry["folder"] == PDF
    assert entry["dataset"] == "diffraction"
    assert entry["regions"] == f"{CORRELATE}/labels_diffraction.hspy"
    assert entry["truth_comparison"] == f"{PDF}/truth_comparison.json"
    assert run["counts"] == {"done": 7, "skipped": 0, "failed": 0}
    summary = json.loads((out / PDF / "summary.json").read_text())
    assert summary["input"]["path"] == str(sim / "sped.zspy")
    assert summary["diffraction_result"]["folder"] == str(out / STATE / "diffraction/diffraction")
    labels = np.asarray(load(out / entry["regions"]).data)
    material = _material(out)
    regions = summary["regions"]
    for code, name in enumerate(CLASSES, 1):
        assert regions[name]["kind"] == "region", name
        assert regions[name]["n_patterns"] == int(((labels == code) & material).sum()), name
        assert regions[name]["n_patterns"] >= summary["parameters"]["min_patterns"]
    assert not any(n.startswith("region") or n == "pore" for n in regions), list(regions)
    # the phase classes stay, as in the dataset's own PDF
    assert {"amorphous", "Si"} <= set(regions)


def test_the_bright_class_has_the_si_si_bond(region_run):
    """The bright (c-Si) class's first shell against the Si-Si bond, 2.352 Å: measured
    2.283 Å [2.261, 2.305] (-0.07: its patterns are Bragg spots of single grains, which
    the route's s_max of 1.28 1/Å and Lorch damping resolve so), and the same as the Si
    phase class's (bright is 98 % Si on the scan)."""
    _, out = region_run
    regions = json.loads((out / PDF / "summary.json").read_text())["regions"]
    bright = _first_shell(regions["bright"]["peaks"])
    assert abs(bright["r_angstrom"] - SI_SI) < 0.1, bright
    assert abs(bright["r_angstrom"] - _first_shell(regions["Si"]["peaks"])["r_angstrom"]) < 0.02


def test_the_amorphous_classes_first_shell_against_the_truth(region_run):
    """For the feature classes whose patterns the truth says are amorphous (its
    amorphous share of their intensity at least 0.9: grey and boundary on seed 1), the
    first shell against the one the simulator's amorphous models give over the same
    patterns (``anodemap.pdf.truth``). Measured: grey 2.407 Å [2.395, 2.418] vs 2.417,
    boundary 2.440 Å [2.405, 2.465] vs 2.441; the dendrite-like class (share 0.68: Bragg
    spots of Li15Si4) is not compared."""
    _, out = region_run
    truth = json.loads((out / PDF / "truth_comparison.json").read_text())["regions"]
    amorphous = [n for n in CLASSES if truth[n]["amorphous"]]
    assert "grey" in amorphous, {n: truth[n]["amorphous_intensity_share_truth"] for n in CLASSES}
    for name in amorphous:
        shell = _first_shell(
            [
                {"r_angstrom": p["found_angstrom"], **p}
                for p in truth[name]["peaks"].values()
                if p.get("expected_angstrom") is not None
            ]
        )
        assert shell["covered"], (name, shell)
        assert abs(shell["found_angstrom"] - shell["expected_angstrom"]) < 0.03, (name, shell)
        assert truth[name]["n_patterns"] > 100


def test_the_report_shows_the_regions_pdf(region_run):
    _, out = region_run
    report = json.loads((out / "report.json").read_text())
    assert not report["problems"], report["problems"]
    (region,) = report["states"][0]["regions"]
    pdf = next(a for a in region["analyses"] if a["analysis"] == "pdf")
    assert pdf["usable"] and pdf["statistics"]["kind"] == "pdf"
    assert {r["name"] for r in pdf["statistics"]["regions"]} >= set(CLASSES)
    assert pdf["by_feature"]["dataset"] == "diffraction"
    assert [f["file"] for f in pdf["figures"]] == [f"{PDF}/pdf.png"]
    # its truth in the truth tables (3.7), in a column of its own
    (table,) = [t for t in report["comparison"]["truth"] if t["analysis"] == "pdf"]
    assert [c["dataset"] for c in table["columns"]] == ["diffraction", "region A"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "feature classes on its scan grid as its regions" in html
    assert 'alt="G(r) of each phase class and region, with its 95 % band"' in html
    assert html.count('alt="G(r) of each phase class and region') == 2  # dataset and region


def _run_changed(sim, again, dataset: str, parameters: str) -> None:
    """anodemap run into ``again`` of the study with ``parameters`` given to ``dataset``."""
    changed = sim / f"study_{dataset}_changed.toml"
    line = f'name = "{dataset}"\n'
    text = (sim / "study.toml").read_text()
    changed.write_text(text.replace(line, f"{line}  parameters = {parameters}\n"))
    assert _run("run", changed, "-o", again, "--no-progress") == 0


def test_a_rerun_keeps_it_and_a_changed_correlate_reruns_it(region_run, tmp_path):
    sim, out = region_run
    again = tmp_path / "out"
    shutil.copytree(out, again)
    assert _run("run", sim / "study.toml", "-o", again, "--no-progress") == 0
    assert set(_statuses(again)["region A"].values()) == {"skipped"}
    assert json.loads((again / "run.json").read_text())["counts"]["skipped"] == 7
    off = '{ correlate = { o_rich = "off", eels_oxide = "off" } }'
    _run_changed(sim, again, "haadf", off)
    status = _statuses(again)
    assert status["region A"] == {"correlate": "done", "pdf": "done"}
    assert status["diffraction"] == {"diffraction": "skipped", "pdf": "skipped"}
    assert status["haadf"] == {"features": "skipped"}
    # the boundaries of the HAADF alone: another boundary class on the scan
    before = np.asarray(load(out / CORRELATE / "labels_diffraction.hspy").data)
    after = np.asarray(load(again / CORRELATE / "labels_diffraction.hspy").data)
    assert (before == 4).sum() != (after == 4).sum()
    n = json.loads((again / PDF / "summary.json").read_text())["regions"]["boundary"]["n_patterns"]
    assert n == int(((after == 4) & _material(again)).sum())


def test_a_class_with_too_few_patterns_is_said(region_run, tmp_path):
    """--min-patterns above a class's patterns (dendrite-like: 150 on seed 1): listed as
    not analysed with the reason; the region's PDF reruns, its correlate is kept."""
    sim, out = region_run
    again = tmp_path / "out"
    shutil.copytree(out, again)
    _run_changed(sim, again, "diffraction", "{ pdf = { min_patterns = 200 } }")
    assert _statuses(again)["region A"] == {"correlate": "skipped", "pdf": "done"}
    summary = json.loads((again / PDF / "summary.json").read_text())
    labels = np.asarray(load(again / CORRELATE / "labels_diffraction.hspy").data)
    material = _material(again)
    for code, name in enumerate(CLASSES, 1):
        n = int(((labels == code) & material).sum())
        if n < 200:
            assert name not in summary["regions"]
            assert summary["not_analysed"][name] == (
                f"{n} material patterns, fewer than --min-patterns 200"
            )
        else:
            assert summary["regions"][name]["n_patterns"] == n
    assert "dendrite-like" in summary["not_analysed"], summary["not_analysed"]


@pytest.mark.parametrize(
    "broken, words",
    [
        (("haadf", "features"), ["not run", "correlate result of region 'A'", "features"]),
        (("diffraction", "diffraction"), ["not run", "diffraction result"]),
    ],
)
def test_a_failed_result_leaves_the_pdf_not_run_and_said(region_run, tmp_path, broken, words):
    """A failed features result (the correlate is not run) or diffraction result (the
    PDF has no phase map): the region's PDF is not run, and run.json says why."""
    from anodemap.analysis import Context
    from anodemap.study import read_study
    from anodemap.study.run import _run_regions

    sim, out = region_run
    study = read_study(sim / "study.toml")
    run = json.loads((out / "run.json").read_text())
    chains = {(STATE, d["name"]): d["analyses"] for d in run["states"][0]["datasets"]}
    chains[STATE, broken[0]][broken[1]] = {"status": "failed", "error": "broken file"}
    again = tmp_path / "out"
    shutil.copytree(out, again)
    found = _run_regions(study, again, Context(progress=False, figures=False), False, chains)
    entry = found[STATE][0]["analyses"]["pdf"]
    assert entry["status"] == "failed" and entry["folder"] == PDF
    for w in words:
        assert w in entry["error"], (w, entry["error"])
