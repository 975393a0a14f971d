"""Study files and ``anodemap run`` (issue 16): checked before any work, one folder per
analysis of each dataset, results kept when nothing changed, a failing dataset reported
while the others go on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from anodemap.analysis import analyses_of, analysis_names, get_analysis
from anodemap.cli import _simulate_diffraction, _simulate_eels, main
from anodemap.errors import AnodemapInputError
from anodemap.io import load
from anodemap.study import RUN_SCHEMA, read_study

_FAST = 'step_deg = 5.0\nrefine_step_deg = 0.0\nphases = ["Si"]\n'


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("study")
    out = {"root": root}
    out["eels"] = _simulate_eels(root / "e", (12, 12), 3, 5.0)
    out["eels_truth"] = root / "e" / "truth"
    sim = _simulate_diffraction(root / "d", (12, 12), 3, 5.0)
    out["sped"], out["sped_truth"] = sim["zspy"], sim["truth_dir"]
    return out


def _study(data: dict[str, Path], tmp_path: Path, body: str) -> Path:
    path = tmp_path / "study.toml"
    text = body.format(**{k: v.as_posix() for k, v in data.items()})
    path.write_text(f'[study]\nname = "test"\n[parameters.diffraction]\n{_FAST}\n{text}')
    return path


_TWO_STATES = """
[[states]]
name = "lithiated_1"
cycle = 1
step = "lithiated"
capacity_mAh_g = 3314
  [[states.datasets]]
  path = "{eels}"
  truth = "{eels_truth}"
  [[states.datasets]]
  path = "{sped}"
  truth = "{sped_truth}"
[[states]]
name = "delithiated_1"
  [[states.datasets]]
  path = "{sped}"
  name = "sped_unknown_phase"
  [states.datasets.parameters]
  phases = ["Si", "NoSuchPhase"]
  [[states.datasets]]
  path = "{eels}"
  name = "eels_5"
  [states.datasets.parameters]
  rl_iterations = 5
"""


# ----------------------------------------------------------------- the contract
def test_every_analysis_declares_itself():
    assert analysis_names()[:2] == ["eels", "diffraction"]
    for name in analysis_names():
        a = get_analysis(name)
        assert a.name == name and a.title and a.data_kind
        assert name in analyses_of(a.reads or name)
        assert "summary.json" in a.output_names()
        a.parameters({})  # the defaults are valid
    with pytest.raises(AnodemapInputError, match="eels, diffraction"):
        get_analysis("pdf2")


def test_parameters_from_a_table_are_checked():
    eels = get_analysis("eels")
    assert eels.parameters({"window": [10, 20]}).window == (10, 20)
    with pytest.raises(
        AnodemapInputError, match="unknown eels parameter rl_iteration; .*rl_iterations"
    ):
        eels.parameters({"rl_iteration": 3})


# ----------------------------------------------------------------- the study file
def test_a_study_file_is_read_with_kinds_inferred(data, tmp_path):
    study = read_study(_study(data, tmp_path, _TWO_STATES))
    assert [s.name for s in study.states] == ["lithiated_1", "delithiated_1"]
    first = study.states[0]
    assert [(d.name, d.kind) for d in first.datasets] == [("eels", "eels"), ("sped", "diffraction")]
    assert first.capacity_mAh_g == 3314.0 and first.cycle == 1 and first.step == "lithiated"
    assert first.datasets[1].parameters["diffraction"]["phases"] == ["Si"]
    assert study.states[1].datasets[1].parameters["eels"] == {"rl_iterations": 5}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[[states]]\nname = "a"\ncolour = "red"\n', ["state 'a'", "unknown key colour"]),
        ('[[states]]\nname = "a b"\n', ["state 1", "'a b'", "folder name"]),
        ('[[states]]\nname = "a"\n[[states]]\nname = "a"\n', ["second state"]),
        ('[[states]]\nname = "a"\nstep = "charged"\n', ["step = 'charged'", "pristine"]),
        (
            '[[states]]\nname = "a"\n[[states.datasets]]\npath = "{root}/nope.hspy"\n',
            ["dataset 1", "nope.hspy", "does not exist"],
        ),
        (
            '[[states]]\nname = "a"\n[[states.datasets]]\npath = "{eels}"\nkind = "tilt"\n',
            ["kind = 'tilt'", "eels, diffraction, edx"],
        ),
        (  # a kind that is an analysis but not a kind of data (pdf reads diffraction scans)
            '[[states]]\nname = "a"\n[[states.datasets]]\npath = "{eels}"\nkind = "pdf"\n',
            ["kind = 'pdf'", "eels, diffraction, edx"],
        ),
        (  # a kind the file's data are not
            '[[states]]\nname = "a"\n[[states.datasets]]\npath = "{eels}"\nkind = "edx"\n',
            ["kind = 'edx'", "EELS spectrum image", "not data of this kind"],
        ),
        (
            '[[states]]\nname = "a"\n[[states.datasets]]\npath = "{eels}"\n'
            "[states.datasets.parameters]\nstep_deg = 2\n",
            ["dataset 'eels'", "unknown eels parameter step_deg"],
        ),
        (
            '[[states]]\nname = "a"\n[[states.datasets]]\npath = "{eels}"\n'
            '[[states.datasets]]\npath = "{eels}"\n',
            ["second dataset of this name"],
        ),
        ("", ["no state"]),
        ('[[states]]\nname = "a"\nname2 = [\n', ["not a valid TOML file"]),
    ],
)
def test_a_wrong_study_file_is_one_clear_error(data, tmp_path, body, words, capsys):
    path = _study(data, tmp_path, body)
    out = tmp_path / "out"
    assert main(["run", str(path), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("anodemap: error: ") and str(path) in line
    for word in words:
        assert word in line, line
    assert not out.exists()  # nothing was started


# ----------------------------------------------------------------- the run
@pytest.fixture(scope="module")
def first_run(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    study = _study(data, tmp, _TWO_STATES)
    out = tmp / "out"
    code = main(["run", str(study), "-o", str(out), "--no-progress", "--no-figures"])
    return study, out, code


def test_run_writes_one_folder_per_analysis_and_run_json(first_run, data):
    _, out, code = first_run
    assert code == 1  # one dataset failed
    run = json.loads((out / "run.json").read_text())
    assert run["schema"] == RUN_SCHEMA
    # the failed diffraction dataset fails its PDF too (not run: it needs that result)
    assert run["counts"] == {"done": 4, "skipped": 0, "failed": 2}
    lith, delith = run["states"]
    assert lith["li_per_si_from_capacity"] == pytest.approx(3.47, abs=0.01)  # paper: 3.47
    eels = lith["datasets"][0]["analyses"]["eels"]
    assert eels["status"] == "done" and eels["folder"] == "lithiated_1/eels/eels"
    summary = json.loads((out / eels["folder"] / "summary.json").read_text())
    assert summary["input"]["path"] == str(data["eels"])
    truth = json.loads((out / eels["truth_comparison"]).read_text())
    assert truth["li_si_error"]["median_abs"] < 0.1
    diff = lith["datasets"][1]["analyses"]["diffraction"]
    assert (out / diff["folder"] / "phase.hspy").is_file()
    assert json.loads((out / diff["truth_comparison"]).read_text())["phase_accuracy"] > 0.9
    # the PDF of the diffraction result is compared with the dataset's truth too
    pdf_ok = lith["datasets"][1]["analyses"]["pdf"]
    assert pdf_ok["status"] == "done" and pdf_ok["truth_comparison"] is not None
    assert json.loads((out / pdf_ok["truth_comparison"]).read_text())["regions"]
    wrong = delith["datasets"][0]["analyses"]["diffraction"]
    assert wrong["status"] == "failed" and "NoSuchPhase" in wrong["error"]
    pdf = delith["datasets"][0]["analyses"]["pdf"]
    assert pdf["status"] == "failed" and "needs the diffraction result" in pdf["error"]
    assert not (out / wrong["folder"] / "summary.json").exists()
    # the dataset after the failure ran, with its own parameters
    ok = delith["datasets"][1]["analyses"]["eels"]
    assert ok["status"] == "done"
    assert (out / ok["folder"] / "li_si_ratio.hspy").is_file()


def test_the_maps_are_those_of_the_command(first_run, data, tmp_path):
    """A study's analysis writes what the command writes for the same input."""
    _, out, _ = first_run
    single = tmp_path / "single"
    assert (
        main(["eels", str(data["eels"]), "-o", str(single), "--no-progress", "--no-figures"]) == 0
    )
    for name in ("li_si_ratio", "plasmon_energy", "fit_status", "li_k"):
        a = np.asarray(load(out / "lithiated_1/eels/eels" / f"{name}.hspy").data)
        b = np.asarray(load(single / f"{name}.hspy").data)
        np.testing.assert_array_equal(a, b)


def test_a_rerun_keeps_what_is_up_to_date_and_redoes_what_changed(first_run, data, tmp_path):
    study0, out0, _ = first_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    study = tmp_path / "study.toml"  # a copy: changed below, other tests read the first
    study.write_text(study0.read_text())
    argv = ["run", str(study), "-o", str(out), "--no-progress", "--no-figures"]
    assert main(argv) == 1
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"done": 0, "skipped": 4, "failed": 2}
    # a changed parameter reruns that analysis only
    study.write_text(study.read_text().replace("rl_iterations = 5", "rl_iterations = 6"))
    assert main(argv) == 1
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"done": 1, "skipped": 3, "failed": 2}
    assert run["states"][1]["datasets"][1]["analyses"]["eels"]["status"] == "done"
    # --force reruns everything
    assert main([*argv, "--force"]) == 1
    assert json.loads((out / "run.json").read_text())["counts"]["done"] == 4


def test_one_figure_process_for_a_run_started_by_its_first_analysis():
    from anodemap.analysis import Context
    from anodemap.study.run import _SharedFigures

    context = Context(log=lambda _line: None)
    with _SharedFigures(True) as figures:
        assert figures._worker is None  # a run that keeps every folder starts none
        first, second = figures.context(context), figures.context(context)
        assert first.figure_worker is second.figure_worker is not None
    assert figures._worker is None  # closed with the run
    with _SharedFigures(False) as figures:  # --no-figures, or the caller's own process
        assert figures.context(context) is context


def test_an_interrupted_analysis_is_not_taken_as_up_to_date(first_run, tmp_path):
    study, out0, _ = first_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    (out / "lithiated_1/eels/eels/summary.json").unlink()  # as a run killed mid-way leaves it
    assert main(["run", str(study), "-o", str(out), "--no-progress", "--no-figures"]) == 1
    run = json.loads((out / "run.json").read_text())
    assert run["states"][0]["datasets"][0]["analyses"]["eels"]["status"] == "done"


# ----------------------------------------------------------------- on a cluster
def test_a_study_on_a_cluster_gives_the_maps_of_this_machine(
    first_run, data, tmp_path, local_cluster_client, capsys
):
    """`anodemap run --scheduler` on a LocalCluster of two worker processes, the datasets
    at once: every analysis that ran here runs there, and gives the same maps: integer maps (phases,
    status codes) exactly, the others within 1e-12 relative (the file's own chunks are
    summed in another order than the patterns read into memory here)."""
    study, out_here, _ = first_run
    out = tmp_path / "cluster"
    address = local_cluster_client.scheduler.address
    argv = ["run", str(study), "-o", str(out), "--no-progress", "--no-figures"]
    assert main([*argv, "--scheduler", address]) == 1  # the same dataset fails
    assert "4 datasets, up to 4 at once on the cluster" in capsys.readouterr().err
    here = json.loads((out_here / "run.json").read_text())
    there = json.loads((out / "run.json").read_text())
    assert there["counts"] == here["counts"]
    compared = 0
    for state in there["states"]:
        for ds in state["datasets"]:
            for entry in ds["analyses"].values():
                if entry["status"] != "done":
                    continue
                for path in sorted((out / entry["folder"]).glob("*.hspy")):
                    a = np.asarray(load(path).data)
                    b = np.asarray(load(out_here / entry["folder"] / path.name).data)
                    if np.issubdtype(a.dtype, np.integer):
                        np.testing.assert_array_equal(a, b, err_msg=str(path))
                    else:
                        np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=str(path))
                    compared += 1
    assert compared >= 30


def test_a_dataset_names_its_own_files(data, tmp_path):
    """`regions = ...` of a diffraction dataset reaches its analysis (averaged pattern and
    phase fractions per region); an EELS dataset has no regions file to read."""
    labels = np.zeros((12, 12), dtype=np.int32)
    labels[:6] = 1
    labels[6:] = 2
    regions = tmp_path / "regions.npy"
    np.save(regions, labels)
    body = (
        '[[states]]\nname = "a"\n[[states.datasets]]\npath = "{sped}"\n'
        f'regions = "{regions.as_posix()}"\n'
    )
    study = _study(data, tmp_path, body)
    out = tmp_path / "out"
    assert main(["run", str(study), "-o", str(out), "--no-progress", "--no-figures"]) == 0
    summary = json.loads((out / "a/sped/diffraction/summary.json").read_text())
    assert [r["n_patterns"] for r in summary["regions"]] == [72, 72]
    assert (out / "a/sped/diffraction/regions.hspy").is_file()
    wrong = _study(data, tmp_path, body.replace("{sped}", "{eels}"))
    with pytest.raises(AnodemapInputError, match="no analysis of eels datasets reads a regions"):
        read_study(wrong)


_LINKED = """
[[states]]
name = "lithiated_1"
  [[states.datasets]]
  path = "{eels}"
  name = "eels"
  [states.datasets.parameters]
  rl_iterations = {rl}
  [[states.datasets]]
  path = "{sped}"
  name = "sped"
  li_si_map = "eels"
"""


def test_a_pdf_takes_its_composition_from_the_li_si_map_of_a_named_eels_dataset(data, tmp_path):
    """li_si_map = "eels" in a diffraction dataset: the PDF runs after that EELS dataset
    and takes each region's composition from its Li/Si map (the two scans of one
    simulated phantom share the grid); a changed EELS result reruns the PDF."""
    out = tmp_path / "out"
    for rl, expected in ((5, {"done": 3, "skipped": 0}), (6, {"done": 2, "skipped": 1})):
        study = _study(data, tmp_path, _LINKED.replace("{rl}", str(rl)))
        assert main(["run", str(study), "-o", str(out), "-q", "--no-figures"]) == 0
        run = json.loads((out / "run.json").read_text())
        assert {k: run["counts"][k] for k in expected} == expected, run["counts"]
    sped = run["states"][0]["datasets"][1]["analyses"]
    assert list(sped) == ["diffraction", "pdf"] and sped["pdf"]["status"] == "done"
    summary = json.loads((out / sped["pdf"]["folder"] / "summary.json").read_text())
    region = next(iter(summary["regions"].values()))
    assert region["li_si"]["source"].startswith(str(out / "lithiated_1" / "eels" / "eels"))
    assert region["composition"]["Li"] > 0.0


def test_a_link_to_a_dataset_that_is_not_there_is_refused(data, tmp_path, capsys):
    body = _LINKED.replace("{rl}", "5").replace('li_si_map = "eels"', 'li_si_map = "eels2"')
    study = _study(data, tmp_path, body)
    assert main(["run", str(study), "-o", str(tmp_path / "o"), "--no-progress"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "li_si_map = 'eels2'" in line and "'eels'" in line and str(study) in line
