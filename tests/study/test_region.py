"""``anodemap run`` joins the datasets of a region: the simulated region (``anodemap
simulate region``) run end to end into ``OUT/STATE/regions/REGION/correlate/``, its
per-feature Li/Si against the truth, the report's section, reuse of unchanged results,
a failed dataset left out, and the study file's checks.

The bounds sit above what was measured (docs/registration.md, "anodemap run"); nothing
here is timed.
"""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.io import load

CORRELATE = "lithiated_1/regions/A/correlate"


def _run(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def region_run(tmp_path_factory):
    """anodemap simulate region (seed 0), then anodemap run of its study file."""
    base = tmp_path_factory.mktemp("region_run")
    assert _run("simulate", "region", "-o", base / "sim", "--seed", 0) == 0
    out = base / "out"
    code = _run("run", base / "sim" / "study.toml", "-o", out, "--no-progress")
    if code != 0:  # say which analysis failed and why
        run = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
        failed = [
            (name, e["error"])
            for st in run.get("states", [])
            for card in (*st["datasets"], *st.get("regions", []))
            for name, e in card["analyses"].items()
            if e["status"] == "failed"
        ]
        pytest.fail(f"anodemap run: exit {code}, failed: {failed}")
    return base / "sim", out


def _li_si_rows(out):
    with open(out / CORRELATE / "feature_statistics.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {r["group"]: r for r in rows if r["quantity"] == "li_si" and r["group_kind"] == "class"}


def test_run_joins_the_datasets_of_the_region(region_run):
    sim, out = region_run
    run = json.loads((out / "run.json").read_text())
    state = run["states"][0]
    analyses = {d["name"]: list(d["analyses"]) for d in state["datasets"]}
    # the survey's own correlate is left to the region's
    assert analyses == {"haadf": ["features"], "eels": ["eels"], "edx": ["edx"]}
    (region,) = state["regions"]
    assert region["name"] == "A" and region["image"] == "haadf"
    assert region["datasets"] == {"features": "haadf", "eels": "eels", "edx": "edx"}
    entry = region["analyses"]["correlate"]
    assert entry["status"] == "done" and entry["folder"] == CORRELATE
    assert run["counts"] == {"done": 4, "skipped": 0, "failed": 0}
    summary = json.loads((out / CORRELATE / "summary.json").read_text())
    assert summary["modalities"] == ["eels", "edx"]
    assert summary["input"]["path"] == str(sim / "haadf.hspy")
    for name in ("eels", "edx"):
        assert summary["registration"][name]["quality"] == "good"
    assert (out / CORRELATE / "eels_li_si_ratio.hspy").is_file()
    assert (out / CORRELATE / "truth_comparison.json").is_file()


def test_li_si_per_class_within_0p1_of_the_truth_over_the_same_pixels(region_run):
    """Bright and grey (the classes anodemap features found) against the truth's Li/Si
    over the survey pixels of that class that the EELS map covers, computed here from
    the truth maps (measured, seed 0: bright +0.02, grey -0.05)."""
    sim, out = region_run
    li = _li_si_rows(out)
    labels = np.asarray(load(out / CORRELATE / "labels.hspy").data)  # EDX's boundaries in
    truth = np.asarray(load(sim / "truth/haadf/li_per_si.hspy").data, float)
    coverage = np.asarray(load(out / CORRELATE / "coverage.hspy").data)
    cover = coverage[0].astype(bool)  # the frame is the survey's; eels first
    assert 0.3 < cover.mean() < 0.6  # the EELS map covers part of the survey
    compared = json.loads((out / CORRELATE / "truth_comparison.json").read_text())
    groups = compared["quantities"]["li_si"]["groups"]
    for name, code in (("bright", 1), ("grey", 2)):
        expected = truth[(labels == code) & cover].mean()
        assert groups[name]["truth_same_pixels"] == pytest.approx(expected, rel=1e-9)
        measured = float(li[name]["value"])
        assert abs(measured - expected) < 0.1, (name, measured, expected)
        assert int(li[name]["counted"]) > 300
    assert float(li["bright"]["value"]) < 0.1  # c-Si holds no Li


def test_the_unmixed_means_are_closer_to_the_truth_of_the_true_classes(region_run):
    """With the classes anodemap features finds, the unmixed per-class Li/Si is nearer
    the truth's means over the true classes than the pixel-majority mean (measured,
    seeds 0/1/2, unmixed (soft shares) vs majority: bright -0.00/+0.02/+0.04 vs
    +0.03/+0.05/+0.10, grey -0.01/+0.04/+0.00 vs +0.04/+0.11/+0.05, dendrite-like
    -0.12/+0.03/-0.07 vs -0.31/-0.13/-0.23, boundary -0.00/+0.03/-0.02 vs
    -0.04/-0.02/-0.05): it corrects
    the mixing of coarse pixels, not the segmentation's errors. (On seed 1 the boundary's
    pixel-majority mean is the closer one: this seed's run is not checked here.)"""
    _, out = region_run
    compared = json.loads((out / CORRELATE / "truth_comparison.json").read_text())
    majority = compared["quantities"]["li_si"]["groups"]
    unmixed = compared["quantities"]["li_si_unmixed"]["groups"]
    for name in ("bright", "grey", "dendrite-like", "boundary"):
        err = unmixed[name]["error_true_class"]
        assert abs(err) < abs(majority[name]["error_true_class"]), (name, err)


def test_boundary_li_si_within_0p1_of_the_truth_of_its_true_class(region_run):
    """With the classes found (the boundaries under the maps from the EDX O/Si and the
    EELS oxide index) and the Li_xSi plasmon fitted beside the oxide one, the boundary
    class's Li/Si against the truth's over the true class. Measured, seeds 0/1/2:
    unmixed -0.00/+0.03/-0.02, pixel-majority -0.04/-0.02/-0.05 (with one peak
    -0.14/-0.105/-0.09 and -0.18/-0.17/-0.15)."""
    _, out = region_run
    groups = json.loads((out / CORRELATE / "truth_comparison.json").read_text())
    for quantity in ("li_si", "li_si_unmixed"):
        row = groups["quantities"][quantity]["groups"]["boundary"]
        assert abs(row["error_true_class"]) < 0.1, (quantity, row)


def test_grey_li_si_within_0p1_of_the_truth_of_its_true_class(region_run):
    """With the classes found (anodemap features with its local grey; under the EELS
    map found again with its t/λ; the boundaries under the EDX map from its O/Si and
    under the EELS map from its 42 eV oxide index), the grey mean against the truth's
    over the true grey class. Measured, seed 0: pixel-majority +0.040, unmixed -0.014
    (+0.024 with hard shares; +0.12/+0.08 with the classes of anodemap features alone
    before its local grey). Seeds 1/2 (not run here): unmixed +0.04/+0.00,
    pixel-majority +0.11/+0.05 (docs/registration.md)."""
    _, out = region_run
    groups = json.loads((out / CORRELATE / "truth_comparison.json").read_text())
    for quantity in ("li_si", "li_si_unmixed"):
        row = groups["quantities"][quantity]["groups"]["grey"]
        assert abs(row["error_true_class"]) < 0.1, (quantity, row)


@pytest.mark.xfail(
    strict=True,
    reason="issue 18 target not met on every seed for the dendrite-like class with the "
    "classes found: unmixed -0.12 on seed 0 (seeds 1/2 +0.03/-0.07; pixel-majority "
    "-0.31/-0.13/-0.23): grey pixels at the threads' edges called dendrite-like dilute "
    "it (docs/registration.md)",
)
def test_dendrite_like_li_si_within_0p1_of_the_truth_of_its_true_class(region_run):
    _, out = region_run
    groups = json.loads((out / CORRELATE / "truth_comparison.json").read_text())
    row = groups["quantities"]["li_si_unmixed"]["groups"]["dendrite-like"]
    assert abs(row["error_true_class"]) < 0.1


def test_the_report_has_the_region_section(region_run):
    _, out = region_run
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "anodemap.report/1" and not report["problems"]
    (region,) = report["states"][0]["regions"]
    (a,) = region["analyses"]
    assert a["analysis"] == "correlate" and a["usable"]
    s = a["statistics"]
    assert s["kind"] == "correlate" and s["quantities"][0]["quantity"] == "li_si"
    li = {r["group"]: r for r in s["quantities"][0]["rows"]}
    assert li["grey"]["value"] == pytest.approx(float(_li_si_rows(out)["grey"]["value"]), 1e-5)
    assert len(s["paper"]) == 4
    assert {r["group"] for r in a["truth"]["quantities"][0]["rows"]} >= {"bright", "grey"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Region A" in html
    numbers = set(re.findall(r'<span class="n">([^<]*)</span>', html))
    from anodemap.report.format import num

    for row in li.values():
        if row["value"] is not None:
            assert num(row["value"]) in numbers
    assert any(f["file"].endswith("maps_by_feature.png") for f in a["figures"])
    assert 'alt="Every map with the feature classes outlined"' in html


def test_a_rerun_keeps_and_a_changed_eels_result_reruns_the_correlate(region_run, tmp_path):
    sim, out = region_run
    again = tmp_path / "out"
    shutil.copytree(out, again)
    assert _run("run", sim / "study.toml", "-o", again, "--no-progress") == 0
    run = json.loads((again / "run.json").read_text())
    assert run["counts"] == {"done": 0, "skipped": 4, "failed": 0}
    text = (sim / "study.toml").read_text()
    changed = sim / "study_rl10.toml"
    changed.write_text(
        text.replace('name = "eels"\n', 'name = "eels"\n  parameters = { rl_iterations = 10 }\n')
    )
    assert _run("run", changed, "-o", again, "--no-progress") == 0
    run = json.loads((again / "run.json").read_text())
    status = {d["name"]: d["analyses"] for d in run["states"][0]["datasets"]}
    assert status["eels"]["eels"]["status"] == "done"
    assert status["haadf"]["features"]["status"] == "skipped"
    assert status["edx"]["edx"]["status"] == "skipped"
    assert run["states"][0]["regions"][0]["analyses"]["correlate"]["status"] == "done"


def test_a_failed_result_is_left_out_and_said(region_run, tmp_path):
    """The region's EELS result failed: the correlate joins the EDX map alone and says
    what it left out; the report says it first."""
    from anodemap.analysis import Context
    from anodemap.report import build_report
    from anodemap.study import read_study
    from anodemap.study.run import _run_regions

    sim, out = region_run
    study = read_study(sim / "study.toml")
    run = json.loads((out / "run.json").read_text())
    chains = {("lithiated_1", d["name"]): d["analyses"] for d in run["states"][0]["datasets"]}
    chains["lithiated_1", "eels"]["eels"] = {"status": "failed", "error": "broken file"}
    again = tmp_path / "out"
    shutil.copytree(out, again)
    found = _run_regions(study, again, Context(progress=False, figures=False), False, chains)
    entry = found["lithiated_1"][0]["analyses"]["correlate"]
    assert entry["status"] == "done"
    assert "broken file" in entry["left_out"]["eels"]
    summary = json.loads((again / CORRELATE / "summary.json").read_text())
    assert summary["modalities"] == ["edx"]
    run["states"][0]["regions"] = found["lithiated_1"]
    (again / "run.json").write_text(json.dumps(run))
    build_report(again)
    report = json.loads((again / "report.json").read_text())
    assert any("region A" in p and "broken file" in p for p in report["problems"])


def _study(tmp_path, sim, datasets: str) -> object:
    path = tmp_path / "s.toml"
    path.write_text(f'[study]\nname = "t"\n[[states]]\nname = "s"\n{datasets}')
    return path


def _ds(sim, file, kind, region="A", name=None):
    extra = f'name = "{name}"\n' if name else ""
    return (
        f'[[states.datasets]]\npath = "{(sim / file).as_posix()}"\nkind = "{kind}"\n'
        f'region = "{region}"\n{extra}'
    )


@pytest.mark.parametrize(
    "files, words",
    [
        (
            [("eels.hspy", "eels"), ("edx.hspy", "edx")],
            ["region 'A'", "no image dataset", 'kind = "features"', 'region = "A"'],
        ),
        (
            [("haadf.hspy", "features"), ("eels.hspy", "eels"), ("eels.hspy", "eels", "b")],
            ["region 'A'", "two eels datasets", "another region name"],
        ),
        ([("haadf.hspy", "features", "regions")], ["'regions'", "another name"]),
    ],
)
def test_a_wrong_region_is_one_clear_error(region_run, tmp_path, capsys, files, words):
    sim, _ = region_run
    body = "".join(_ds(sim, f[0], f[1], name=f[2] if len(f) > 2 else None) for f in files)
    assert _run("run", _study(tmp_path, sim, body), "-o", tmp_path / "o") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "s.toml" in err, err
    for w in words:
        assert w in err, (w, err)
    assert not (tmp_path / "o").exists()


def test_a_region_name_must_be_a_folder_name(region_run, tmp_path, capsys):
    sim, _ = region_run
    body = _ds(sim, "haadf.hspy", "features", region="../up")
    assert _run("run", _study(tmp_path, sim, body), "-o", tmp_path / "o") == 2
    assert "region '../up'" in capsys.readouterr().err
