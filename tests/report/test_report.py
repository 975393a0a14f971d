"""The study report (anodemap.report): report.json's content, the page, and a browser.

The run folder is made as ``anodemap run`` lays it out (the issue-16 contract): small
simulated EELS and diffraction datasets analysed by the real commands into
``OUT/STATE/DATASET/ANALYSIS/``, truth comparisons written as the demo writes them,
and ``run.json`` written by hand, with a failed dataset, a skipped one, a state with
two EELS datasets and a state without any.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from anodemap.report.format import num, pct

CHROMIUM = Path("/usr/bin/chromium")
# the error of the failed dataset: characters that must be escaped on the page
FAILED_ERROR = "lithiated_1/sped.blo: truncated <header says 256 frames> & 200 found"


# ------------------------------------------------------------------ the run
def _cli(*argv: Any) -> None:
    from anodemap.cli import main

    assert main([str(a) for a in argv]) == 0, argv


def _load(path: Path) -> np.ndarray:
    from anodemap.io import load

    return np.asarray(load(path).data)


def _eels_truth(folder: Path, truth_dir: Path) -> None:
    """truth_comparison.json/.png of an EELS folder, as ``anodemap demo`` computes them."""
    from anodemap.eels import output
    from anodemap.io.results import write_json
    from anodemap.plotting import save_figure

    files = {
        "plasmon_energy": "plasmon_energy",
        "plasmon_energy_err": "plasmon_energy_uncertainty",
        "li_si_ratio": "li_si_ratio",
        "thickness": "thickness",
        "li_k_status": "li_k_status",
        "li_k": "li_k",
        "li_k_fraction": "li_k_fraction",
        "li_si_status": "li_si_status",
    }
    maps = {k: _load(folder / f"{f}.hspy") for k, f in files.items()}
    result = SimpleNamespace(
        maps=maps, valid=maps["li_si_status"] == 0, nav_axes=[SimpleNamespace(scale=5.0)]
    )
    names = ("plasmon_peak_eV", "li_per_si", "t_over_lambda", "t_over_lambda_in_window")
    names += ("oxide_fraction", "labels", "li_k_counts", "li_k_fraction")
    truth = {k: _load(truth_dir / f"{k}.hspy") for k in names if (truth_dir / f"{k}.hspy").exists()}
    write_json(output.compare_with_truth(result, truth), folder / "truth_comparison.json")
    figure = getattr(output, "truth_figure", None)  # the library's, where it has one
    if figure is not None:
        save_figure(figure(result, truth), folder / "truth_comparison.png")


def _diffraction_truth(folder: Path, truth_dir: Path) -> None:
    """truth_comparison.json/.png of a diffraction folder, as the demo computes them."""
    from anodemap.diffraction.output import compare_with_truth, truth_comparison_figure
    from anodemap.io.results import write_json
    from anodemap.plotting import save_figure

    labels = json.loads((folder / "summary.json").read_text())["phase_labels"]
    truth_labels = json.loads((truth_dir / "truth.json").read_text())["phase_labels"]
    truth = {k: _load(truth_dir / f"{k}.hspy") for k in ("phase", "euler_deg")}
    truth["amorphous_intensity_share"] = _load(truth_dir / "amorphous_intensity_share.hspy")
    maps = {
        "phase": _load(folder / "phase.hspy"),
        "euler": _load(folder / "orientations.hspy"),
        "reliability": _load(folder / "reliability.hspy"),
        "amorphous_share": _load(folder / "amorphous_share.hspy"),
    }
    write_json(
        compare_with_truth(maps, labels, truth, truth_labels), folder / "truth_comparison.json"
    )
    fig = truth_comparison_figure(maps, labels, truth, truth_labels, 5.0)
    save_figure(fig, folder / "truth_comparison.png")


def _analysis(out: Path, folder: str, status: str = "done", truth: bool = True) -> dict:
    return {
        "folder": folder,
        "status": status,
        "error": None,
        "seconds": 2.5,
        "key": "0" * 64,
        "truth_comparison": f"{folder}/truth_comparison.json" if truth else None,
    }


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A run folder of four states (about 30 s on two cores)."""
    base = tmp_path_factory.mktemp("report")
    sim, out = base / "inputs", base / "out"
    for seed, side in ((1, 16), (2, 16), (3, 16), (4, 12)):
        _cli("simulate", "eels", "-o", sim / f"eels{seed}", "--shape", side, side, "--seed", seed)
    for seed in (1, 2):
        _cli(
            "simulate", "diffraction", "-o", sim / f"sped{seed}", "--shape", 16, 16, "--seed", seed
        )

    def eels(folder: str, seed: int, truth: bool = True) -> None:
        _cli("eels", sim / f"eels{seed}" / "eels.hspy", "-o", out / folder, "--no-progress")
        if truth:
            _eels_truth(out / folder, sim / f"eels{seed}" / "truth")

    def sped(folder: str, seed: int) -> None:
        inp = sim / f"sped{seed}" / "sped.zspy"
        _cli("diffraction", inp, "-o", out / folder, "--phases", "Si", "Li15Si4", "--step", 5,
             "--refine-step", 0, "--no-progress")  # fmt: skip
        _diffraction_truth(out / folder, sim / f"sped{seed}" / "truth")

    eels("pristine/eels/eels", 1)
    sped("pristine/sped/diffraction", 1)
    eels("lithiated_1/eels/eels", 2)
    eels("delithiated_1/eels_A/eels", 3)
    eels("delithiated_1/eels_B/eels", 4, truth=False)
    sped("delithiated_1/sped/diffraction", 2)

    failed = _analysis(out, "lithiated_1/sped/diffraction", truth=False)
    failed.update(status="failed", error=FAILED_ERROR, seconds=0.4)

    def dataset(name: str, path: Path, kind: str, analyses: dict) -> dict:
        return {"name": name, "path": str(path), "kind": kind, "region": None, "analyses": analyses}

    study = base / "study.toml"
    study.write_text('[study]\nname = "Simulated Si anode"\n')
    run = {
        "schema": "anodemap.run/1",
        "anodemap_version": "0.1.0.dev0",
        "study": {
            "name": "Simulated Si anode <all-solid-state> & cryo",
            "description": "Four states of a simulated electrode.\nSecond line.",
            "file": str(study),
            "sha256": "ab" * 32,
            "simulated": True,
        },
        "started": "2026-12-07T12:00:00+00:00",
        "finished": "2026-12-07T12:01:00+00:00",
        "states": [
            {
                "name": "pristine", "label": "Pristine", "cycle": 0, "step": "pristine",
                "capacity_mAh_g": None, "li_per_si_from_capacity": None,
                "datasets": [
                    dataset("eels", sim / "eels1/eels.hspy", "eels",
                            {"eels": _analysis(out, "pristine/eels/eels")}),
                    dataset("sped", sim / "sped1/sped.zspy", "diffraction",
                            {"diffraction": _analysis(out, "pristine/sped/diffraction")}),
                ],
            },
            {
                "name": "lithiated_1", "label": "1st lithiation", "cycle": 1,
                "step": "lithiated", "capacity_mAh_g": 3314.0, "li_per_si_from_capacity": 3.4734,
                "datasets": [
                    dataset("eels", sim / "eels2/eels.hspy", "eels",
                            {"eels": _analysis(out, "lithiated_1/eels/eels")}),
                    dataset("sped", sim / "sped.blo", "diffraction", {"diffraction": failed}),
                ],
            },
            {
                "name": "delithiated_1", "label": "1st delithiation", "cycle": 1,
                "step": "delithiated", "capacity_mAh_g": 2537.0, "li_per_si_from_capacity": 2.659,
                "datasets": [
                    dataset("eels_A", sim / "eels3/eels.hspy", "eels",
                            {"eels": _analysis(out, "delithiated_1/eels_A/eels", "skipped")}),
                    dataset("eels_B", sim / "eels4/eels.hspy", "eels",
                            {"eels": _analysis(out, "delithiated_1/eels_B/eels", truth=False)}),
                    dataset("sped", sim / "sped2/sped.zspy", "diffraction",
                            {"diffraction": _analysis(out, "delithiated_1/sped/diffraction")}),
                ],
            },
            {
                "name": "delithiated_10", "label": "10th delithiation", "cycle": 10,
                "step": "delithiated", "capacity_mAh_g": None, "li_per_si_from_capacity": None,
                "datasets": [],
            },
        ],
        "cycling": {
            "file": str(base / "cycling.csv"),
            "cycle": list(range(1, 11)),
            "charge_mAh_g": [3314.0 - 40 * i for i in range(10)],
            "discharge_mAh_g": [2537.0 - 35 * i for i in range(10)],
        },
    }  # fmt: skip
    (out / "run.json").write_text(json.dumps(run, indent=1))
    return out


@pytest.fixture(scope="module")
def built(run_folder) -> SimpleNamespace:
    """build_report on the run folder: paths, report.json's content, the page."""
    from anodemap.report import build_report

    json_path, html_path = build_report(run_folder)
    return SimpleNamespace(
        json_path=json_path,
        html_path=html_path,
        data=json.loads(json_path.read_text()),
        html=html_path.read_text(encoding="utf-8"),
        out=run_folder,
    )


class _Page(HTMLParser):
    """The page's numbers (text of span.n), attributes and visible text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.numbers: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self._in_number = 0
        self._current = ""
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            self.attrs.append((tag, k, v or ""))
        if tag == "span" and ("class", "n") in attrs:
            self._in_number, self._current = 1, ""

    def handle_endtag(self, tag):
        if tag == "span" and self._in_number:
            self.numbers.append(self._current)
            self._in_number = 0

    def handle_data(self, data):
        self.text.append(data)
        if self._in_number:
            self._current += data


def _numbers(obj: Any, path: str = "") -> list[tuple[str, float]]:
    """Every number of a JSON object (not booleans), with where it is."""
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _numbers(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _numbers(v, f"{path}[{i}]")]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return [(path, obj)]
    return []


def _state(data: dict, name: str) -> dict:
    return next(s for s in data["states"] if s["name"] == name)


# ------------------------------------------------------------------ content
def test_report_json_schema_versions_and_hashes(built):
    d = built.data
    assert built.json_path == built.out / "report.json"
    assert built.html_path == built.out / "report.html"
    assert d["schema"] == "anodemap.report/1"
    for name in ("numpy", "scipy", "dask", "rosettasciio", "matplotlib", "jinja2", "python"):
        assert d["packages"][name] and d["packages"][name] != "not installed", name
    assert [s["name"] for s in d["states"]] == [
        "pristine",
        "lithiated_1",
        "delithiated_1",
        "delithiated_10",
    ]
    assert d["study"]["sha256"] == "ab" * 32
    import hashlib

    assert d["run"]["sha256"] == hashlib.sha256((built.out / "run.json").read_bytes()).hexdigest()
    # each input's hash is the one its analysis recorded, and the page shows it
    a = _state(d, "pristine")["datasets"][0]["analyses"][0]
    summary = json.loads((built.out / a["folder"] / "summary.json").read_text())
    assert a["input"]["hash"] == summary["input"]["sha256"]
    assert a["input"]["size_bytes"] == summary["input"]["size_bytes"]
    assert a["input"]["hash"] in built.html and summary["input"]["path"] in built.html
    # no temporary file left beside the report
    assert not [p.name for p in built.out.iterdir() if ".partial" in p.name]


def test_every_number_of_report_json_is_on_the_page_and_no_other(built):
    page = _Page(built.html)
    shown = set(page.numbers)
    numbers = _numbers(built.data)
    assert len(numbers) > 500  # the test checks something
    missing = [(p, v) for p, v in numbers if num(v) not in shown and pct(v) not in shown]
    assert not missing, missing[:20]
    # and every number the page shows is one of report.json, formatted
    known = {num(v) for _, v in numbers} | {pct(v) for _, v in numbers}
    extra = [s for s in page.numbers if s not in known]
    assert not extra, extra[:20]


def test_distributions_cover_the_valid_pixels_of_the_maps(built):
    dists = {d["quantity"]: d for d in built.data["comparison"]["distributions"]}
    folders = {
        "pristine": ["pristine/eels/eels"],
        "lithiated_1": ["lithiated_1/eels/eels"],
        "delithiated_1": ["delithiated_1/eels_A/eels", "delithiated_1/eels_B/eels"],
        "delithiated_10": [],
    }
    rules = {"li_si_ratio": ("li_si_status", (0,)), "plasmon_energy": ("fit_status", (0, 7))}
    for quantity, (status_name, codes) in rules.items():
        d = dists[quantity]
        for e in d["states"]:
            values = [
                _load(built.out / f / f"{quantity}.hspy").ravel() for f in folders[e["state"]]
            ]
            status = [
                _load(built.out / f / f"{status_name}.hspy").ravel() for f in folders[e["state"]]
            ]
            valid = [
                np.isin(s, codes) & np.isfinite(v) for v, s in zip(values, status, strict=True)
            ]
            n_valid = int(sum(v.sum() for v in valid))
            n_pixels = int(sum(s.size for s in status))
            assert e["n_valid"] == n_valid, (quantity, e["state"])
            assert e["n_pixels"] == n_pixels
            assert e["n_excluded"] == n_pixels - n_valid == sum(x["n"] for x in e["excluded"])
            if n_valid:
                assert sum(e["counts"]) == n_valid
                assert len(e["counts"]) == len(d["bin_edges"]) - 1
                pooled = np.concatenate([v[m] for v, m in zip(values, valid, strict=True)])
                assert e["stats"]["mean"] == pytest.approx(float(np.mean(pooled)), rel=1e-12)
            else:
                assert e["counts"] is None and e["note"]
            # a state of one dataset agrees with that dataset's own summary
            if len(folders[e["state"]]) == 1:
                summary = json.loads(
                    (built.out / folders[e["state"]][0] / "summary.json").read_text()
                )
                key = {"li_si_ratio": "li_si_ratio", "plasmon_energy": "plasmon_energy_eV"}[
                    quantity
                ]
                assert summary[key]["n"] == n_valid
                assert summary[key]["mean"] == pytest.approx(e["stats"]["mean"], rel=1e-12)
    # the pixel counts are stated on the page, with the state that has no dataset explained
    ten = next(e for e in dists["li_si_ratio"]["states"] if e["state"] == "delithiated_10")
    assert ten["n_valid"] == 0 and "no eels dataset" in ten["note"].lower()
    assert "10th delithiation" in built.html


def test_phase_fractions_equal_the_summaries(built):
    pf = built.data["comparison"]["phase_fractions"]
    by_state = {e["state"]: e for e in pf["states"]}
    for state, folder in (
        ("pristine", "pristine/sped/diffraction"),
        ("delithiated_1", "delithiated_1/sped/diffraction"),
    ):
        summary = json.loads((built.out / folder / "summary.json").read_text())
        e = by_state[state]
        assert {f["phase"]: f["fraction"] for f in e["fractions"]} == summary["phase_fractions"]
        assert e["n_material"] == summary["n_material"]
        crystalline = summary["phase_fractions"]["Si"] + summary["phase_fractions"]["Li15Si4"]
        assert e["crystalline_fraction"] == pytest.approx(crystalline, abs=1e-15)
        for f in e["fractions"]:
            assert pct(f["fraction"]) in built.html
    # the failed diffraction and the missing state are said, not drawn empty
    assert "failed" in by_state["lithiated_1"]["note"]
    assert by_state["delithiated_10"]["n_material"] is None
    assert pf["phases"][0] == "amorphous"


def test_failed_skipped_and_absent_are_said_and_escaped(built):
    html = built.html
    escaped = FAILED_ERROR.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in html
    assert "<header says" not in html and "<all-solid-state>" not in html
    assert "Simulated Si anode &lt;all-solid-state&gt; &amp; cryo" in html
    assert any(FAILED_ERROR in p for p in built.data["problems"])
    assert any("10th delithiation: no dataset" in p for p in built.data["problems"])
    assert "No dataset was given for this state" in html
    skipped = _state(built.data, "delithiated_1")["datasets"][0]["analyses"][0]
    assert skipped["status"] == "skipped" and skipped["usable"]
    assert 'class="badge skipped"' in html and 'class="badge failed"' in html


def test_capacity_and_cycle_comparison(built):
    cap = {e["state"]: e for e in built.data["comparison"]["capacity"]}
    assert cap["lithiated_1"]["expected_li_si"] == 3.4734
    # after the first cycle at most x(lithiation) - x(delithiation) Li per Si remain
    assert cap["delithiated_1"]["expected_li_si"] == pytest.approx(3.4734 - 2.659)
    li = next(
        d for d in built.data["comparison"]["distributions"] if d["quantity"] == "li_si_ratio"
    )
    lith = next(e for e in li["states"] if e["state"] == "lithiated_1")
    assert cap["lithiated_1"]["measured_mean"] == lith["stats"]["mean"]
    cycle = {e["state"]: e for e in built.data["comparison"]["versus_cycle"]}
    assert cycle["lithiated_1"]["crystalline_fraction"] is None  # its diffraction failed
    assert cycle["pristine"]["crystalline_fraction"] is not None
    cal = built.data["comparison"]["calibrations"]
    assert len(cal) == 1 and len(cal[0]["used_by"]) == 4 and cal[0]["equation"] in built.html


def _leaves(obj: Any, key: str = "") -> dict[str, Any]:
    """Every leaf of a JSON object by its dotted path (list items by their index)."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return {key: obj}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(_leaves(v, f"{key}.{k}" if key else str(k)))
    return out


def test_truth_comparison_of_every_map(built):
    tables = {t["analysis"]: t for t in built.data["comparison"]["truth"]}
    assert sorted(tables) == ["diffraction", "eels"]
    # the five datasets with a truth comparison: three EELS, two diffraction
    assert sorted((c["state"], c["dataset"]) for t in tables.values() for c in t["columns"]) == [
        ("delithiated_1", "eels_A"),
        ("delithiated_1", "sped"),
        ("lithiated_1", "eels"),
        ("pristine", "eels"),
        ("pristine", "sped"),
    ]
    for t in tables.values():
        for i, c in enumerate(t["columns"]):
            raw = _leaves(json.loads((built.out / c["file"]).read_text()))
            column = {r["key"]: r["values"][i] for r in t["rows"]}
            assert {k: column[k] for k in raw} == raw  # every number, as written
            assert all(column[k] is None for k in column if k not in raw)
            assert c["figure"] == c["file"].replace(".json", ".png")
    keys = {r["key"] for t in tables.values() for r in t["rows"]}
    for key in (
        "plasmon_energy_error_eV.median_abs",
        "li_si_error.rms",
        "li_k.li_k.spearman_vs_li_si_all_material_flagged_as_failures",
        "phase_accuracy",
        "orientation.Si.all_right_phase.within_2deg",
    ):
        assert key in keys, key


def test_page_is_self_contained(built):
    page = _Page(built.html)
    for tag, attr, value in page.attrs:
        if attr in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", value, re.I), (tag, attr, value[:80])
            assert value.startswith(("data:image/png;base64,", "#")), (tag, attr, value[:80])
    assert "link" not in page.tags and "script" not in page.tags and "iframe" not in page.tags
    assert "@import" not in built.html and "url(" not in built.html
    # every figure of every analysis folder that ran is embedded
    imgs = [v for t, a, v in page.attrs if t == "img" and a == "src"]
    expected = sum(
        len(a["figures"]) + len(a["more_figures"])
        for s in built.data["states"]
        for ds in s["datasets"]
        for a in ds["analyses"]
    )
    assert len(imgs) >= expected + 5 + 5  # + comparison and truth figures
    for src in imgs:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_run_without_results_says_why(tmp_path):
    """A run whose every analysis failed or lost its folder: words, no empty chart."""
    from anodemap.report import build_report

    run = {
        "schema": "anodemap.run/1",
        "study": {"name": "Nothing worked"},
        "states": [
            {
                "name": "a", "cycle": 1, "step": "lithiated", "capacity_mAh_g": 3314,
                "datasets": [{"name": "eels", "kind": "eels", "path": "/x/eels.dm4",
                              "analyses": {"eels": {"folder": "a/eels/eels", "status": "done"}}}],
            },
            {"name": "b", "datasets": []},
        ],
    }  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(run))
    _, html_path = build_report(tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    html = html_path.read_text()
    assert "the result folder a/eels/eels is missing" in html
    assert "No state has a valid Li/Si value, so there is no chart" in html
    assert "No state has a phase map, so there is no chart" in html
    assert "<img" not in html
    # Li/Si from the capacity where run.json leaves it out
    assert data["states"][0]["li_per_si_from_capacity"] == pytest.approx(3.473, abs=1e-3)


def test_missing_run_json_is_a_clear_error(tmp_path):
    from anodemap.errors import AnodemapInputError
    from anodemap.report import build_report

    with pytest.raises(AnodemapInputError, match="no run.json"):
        build_report(tmp_path)
    (tmp_path / "run.json").write_text('{"schema": "anodemap.run/0"}')
    with pytest.raises(AnodemapInputError, match="schema"):
        build_report(tmp_path)


# ------------------------------------------------------------------ browser
class _Chromium:
    """Headless Chromium driven through its DevTools protocol over a pipe.

    ``--remote-debugging-pipe`` makes Chromium read commands on its fd 3 and write
    answers and events on fd 4, each a JSON message ended by a NUL byte; no port is
    opened and nothing is downloaded.
    """

    FLAGS = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-pipe",
    )

    def __init__(self, profile: Path, log: Path):
        import fcntl

        # above 4, so that putting them on fds 3 and 4 cannot clobber one of them
        r_in, w_in = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in os.pipe())
        r_out, w_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in os.pipe())
        self._log = open(log, "wb")  # noqa: SIM115 - closed in close()
        # a small Python trampoline puts the pipe ends on fds 3 and 4 and execs Chromium
        # (a shell cannot: dash redirects fds 0 to 9 only)
        trampoline = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                trampoline,
                str(r_in),
                str(w_out),
                str(CHROMIUM),
                *self.FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(r_in, w_out),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(r_in)
        os.close(w_out)
        self._w, self._r = w_in, r_out
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:  # fmt: skip
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._message(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        for m in self.events:
            if m.get("method") == method:
                return m
        while True:
            m = self._message(deadline)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        self._log.close()


def _open_in_chromium(path: Path, tmp: Path) -> SimpleNamespace:
    """Load a page: console errors, image states, requests and a screenshot."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium): no browser check")
    profile = tmp / f"profile-{time.monotonic_ns()}"
    profile.mkdir()
    browser = _Chromium(profile, tmp / "chromium.log")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session=session)
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1200, "height": 1600, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        browser.call("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        browser.wait_event("Page.loadEventFired")
        script = (
            "JSON.stringify(Array.from(document.images).map("
            "i => ({complete: i.complete, width: i.naturalWidth, alt: i.alt})))"
        )
        value = browser.call(
            "Runtime.evaluate", {"expression": script, "returnByValue": True}, session=session
        )["result"]["value"]
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    finally:
        browser.close()
    errors, requests = [], []
    for m in browser.events:
        method, params = m.get("method"), m.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(str([a.get("value") for a in params.get("args", [])]))
        elif method == "Runtime.exceptionThrown":
            errors.append(str(params.get("exceptionDetails", {}).get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            requests.append(params["request"]["url"])
    return SimpleNamespace(
        errors=errors, images=json.loads(value), requests=requests, screenshot=shot
    )


def _colours(png_b64: str) -> tuple[int, float]:
    """Distinct colours of a screenshot and the share of its commonest colour."""
    from PIL import Image

    img = Image.open(BytesIO(base64.b64decode(png_b64))).convert("RGB")
    colours = img.getcolors(maxcolors=img.width * img.height)
    return len(colours), max(c for c, _ in colours) / (img.width * img.height)


def test_page_in_a_browser(built, tmp_path):
    page = tmp_path / "report.html"
    shutil.copy(built.html_path, page)
    seen = _open_in_chromium(page, tmp_path)
    assert not seen.errors, seen.errors
    assert len(seen.images) >= 20
    broken = [i for i in seen.images if not (i["complete"] and i["width"] > 0)]
    assert not broken, broken
    outside = [u for u in seen.requests if not u.startswith(("file:", "data:"))]
    assert not outside, outside
    n_colours, commonest = _colours(seen.screenshot)
    assert n_colours > 16 and commonest < 0.98, (n_colours, commonest)


def test_the_browser_check_can_fail(tmp_path):
    """The same check on a page with a broken image, a console error and nothing else."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA" alt="broken">'
        '<script>console.error("deliberate")</script></body></html>'
    )
    seen = _open_in_chromium(page, tmp_path)
    assert any("deliberate" in e for e in seen.errors), seen.errors
    assert [i["width"] for i in seen.images] == [0]
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    n_colours, commonest = _colours(_open_in_chromium(blank, tmp_path).screenshot)
    assert n_colours == 1 and commonest == 1.0
