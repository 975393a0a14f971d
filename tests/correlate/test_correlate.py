"""``anodemap correlate``: the modalities of the simulated region (anodemap.synth.region)
registered on its HAADF survey and tabulated per feature, against the truth; the command
end to end; its errors.

The bounds sit above what was measured (docs/registration.md gives the measurements);
nothing here is timed.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.correlate.inputs import read_features, read_modality
from anodemap.correlate.parameters import CorrelateParameters
from anodemap.correlate.pipeline import correlate
from anodemap.correlate.regions import region_map
from anodemap.correlate.statistics import Measured, fraction_rows, ratio_row, value_row
from anodemap.io import load

# the truth's class names (region.json) of the feature classes
_TRUTH_NAMES = {
    "bright": "crystalline Si (unlithiated)",
    "grey": "moderately lithiated Li_xSi (grey)",
    "dendrite-like": "dendrite-like high-Li Li_xSi",
    "boundary": "oxygen-rich grain boundary (Li2O / Li silicates)",
    "all pixels": "all pixels",
    "material (all but pores)": "material (all but pores)",
}


def _run(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """The simulated region of seed 1 (HAADF, EELS, EDX, SPED) and the results of
    anodemap features, eels, edx and diffraction of it."""
    from anodemap.synth.region import write_region

    root = tmp_path_factory.mktemp("region")
    files = write_region(root, seed=1, diffraction=True)
    for name, src in (
        ("features", "haadf"),
        ("eels", "eels"),
        ("edx", "edx"),
        ("diffraction", "diffraction"),
    ):
        assert _run(name, files[src], "-o", root / name, "-q", "--no-figures") == 0
    return root, files


@pytest.fixture(scope="module")
def command(region, tmp_path_factory):
    root, files = region
    out = tmp_path_factory.mktemp("correlate")
    code = _run(
        "correlate",
        files["haadf"],
        "-o",
        out,
        "--features",
        root / "features",
        "--eels",
        root / "eels",
        "--edx",
        root / "edx",
        "--diffraction",
        root / "diffraction",
        "-q",
    )
    assert code == 0
    return out


def _truth(root):
    return json.loads((root / "truth" / "region.json").read_text())


def _truth_labels_result(root):
    """A features result with the truth's classes (so that the statistics are checked
    apart from the segmentation)."""
    labels = np.asarray(load(root / "truth" / "haadf" / "labels.hspy").data, np.uint8)
    _, rows = region_map(labels, 4)
    feats = read_features(root / "features")
    return {
        "labels": labels,
        "axes": feats["axes"],
        "regions": [{k: str(v) for k, v in r.items()} for r in rows],
        "summary": {"parameters": {"min_region_px": 4}},
    }


def _li_si(rows):
    return {
        r["group"]: r
        for r in rows
        if r["quantity"] == "li_si" and r["group_kind"] in ("class", "all")
    }


# ------------------------------------------------------------------ the statistics
def test_value_ratio_and_fraction_rows_by_hand():
    v = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    sigma = np.full(v.shape, 0.5)
    m = Measured("x", "", v, np.isfinite(v), sigma)
    mask = np.array([[True, True, True], [True, False, False]])
    row = value_row(m, mask)
    assert (row["pixels"], row["flagged"], row["counted"]) == (4, 1, 3)
    assert row["value"] == pytest.approx(2.0) and row["se"] == pytest.approx(1 / np.sqrt(3))
    assert row["map_sigma"] == pytest.approx(0.5 / np.sqrt(3))
    o = Measured("O_Ka", "", np.array([[1.0, 3.0]]), np.ones((1, 2), bool))
    si = Measured("Si_Ka", "", np.array([[4.0, 4.0]]), np.ones((1, 2), bool))
    assert ratio_row(o, si, np.ones((1, 2), bool), "o_si")["value"] == pytest.approx(0.5)
    phase = Measured(
        "phase",
        "",
        np.array([[-1, 0, 1, 1]]),
        np.ones((1, 4), bool),
        legend={"-1": "vacuum", "0": "amorphous", "1": "Si"},
    )
    shares = {r["quantity"]: r for r in fraction_rows(phase, np.ones((1, 4), bool), {"vacuum"})}
    assert shares["phase_fraction:Si"]["value"] == pytest.approx(2 / 3)
    assert shares["phase_fraction:Si"]["flagged"] == 1  # vacuum is not counted


def test_li_si_per_class_against_the_truth_with_the_true_classes(region):
    """The truth's classes on the survey: what registration and the EELS map give per
    class, against the truth's means over every survey pixel of the class inside the
    EELS map (measured, seeds 0/1/2: bright +0.04/+0.03/+0.06, grey +0.01/+0.03/+0.02,
    dendrite-like -0.16/-0.12/-0.15, boundary -0.08/-0.07/-0.10 with the oxide peak
    fitted beside the Li_xSi one (-0.21/-0.21/-0.19 with one peak), all material
    -0.02/-0.01/-0.02)."""
    root, _ = region
    truth = _truth(root)["feature_means_haadf_frame"]["within_eels"]
    feats = _truth_labels_result(root)
    image = np.asarray(load(root / "haadf.hspy").data, float)
    eels = read_modality("eels", root / "eels", "--eels")
    li = _li_si(correlate(image, feats["axes"], feats, [eels], CorrelateParameters()).rows)

    def diff(group, truth_name=None):
        return li[group]["value"] - truth[truth_name or _TRUTH_NAMES[group]]["li_per_si"]

    for group in ("grey", "bright"):  # the target: within 0.1
        assert abs(diff(group)) < 0.1, (group, diff(group))
    # thin threads come out low (docs/registration.md); the boundaries within 0.1 since
    # anodemap eels fits their oxide plasmon beside the Li_xSi one
    assert -0.3 < diff("dendrite-like") < 0.05
    assert abs(diff("boundary")) < 0.1
    assert -0.06 < diff("material (all but pores)", "material (all but pores)") < 0.05
    assert li["grey"]["counted"] > 1000 and li["grey"]["se"] < 0.02
    assert li["pore"]["counted"] < 0.1 * li["pore"]["pixels"]  # pores have no Li/Si


def _true_class_result(region):
    root, _ = region
    truth = _truth(root)["feature_means_haadf_frame"]["within_eels"]
    feats = _truth_labels_result(root)
    image = np.asarray(load(root / "haadf.hspy").data, float)
    eels = read_modality("eels", root / "eels", "--eels")
    # the truth's classes as they are: no step of the correlate may change them
    p = CorrelateParameters(eels_oxide="off")
    return correlate(image, feats["axes"], feats, [eels], p), truth, eels


def _unmixed(rows, quantity="li_si_unmixed"):
    return {r["group"]: r for r in rows if r["quantity"] == quantity}


def test_dendrite_like_li_si_unmixed_within_0p1_of_the_truth(region):
    """The issue's target for the dendrite-like class, met by the unmixed means (linear
    unmixing of each EELS pixel's class shares; measured, seeds 0/1/2: +0.03/+0.00/
    +0.01, where the mean over the pixels whose centre lies in the class, the
    pixel-majority statistics, gave -0.14/-0.11/-0.14: the threads are 1-3 phantom
    pixels wide, and the class of a 3 nm pixel's centre misses a share of them even
    through the true transform, -0.16 on seed 0). Bright and grey stay within 0.1 too
    (measured -0.00..+0.01)."""
    result, truth, _ = _true_class_result(region)
    li = _unmixed(result.rows)
    for group in ("dendrite-like", "bright", "grey"):
        diff = li[group]["value"] - truth[_TRUTH_NAMES[group]]["li_per_si"]
        assert abs(diff) < 0.1, (group, diff)
    # the pixel-majority mean of the same run is further off (the mixing it misses)
    majority = _li_si(result.rows)["dendrite-like"]["value"]
    true = truth[_TRUTH_NAMES["dendrite-like"]]["li_per_si"]
    assert abs(li["dendrite-like"]["value"] - true) < abs(majority - true)
    # the block bootstrap's 1σ (measured 0.05-0.09) is what the error is checked against:
    # the fit's own (0.015-0.02) ignores that neighbouring pixels vary together
    row = li["dendrite-like"]
    assert row["se_fit"] < row["se"] < 0.15
    assert abs(row["value"] - true) < 3 * row["se"]
    assert row["effective_pixels"] > 100


def test_boundary_li_si_unmixed_within_0p1_of_the_truth(region):
    """The issue's target for the boundary class, met since ``anodemap eels`` fits the
    Li2O/silicate plasmon beside the Li_xSi one (anodemap.eels.oxide_peak; measured,
    seeds 0/1/2: unmixed -0.04/-0.05/-0.06 with a block-bootstrap 1σ of 0.06-0.08,
    pixel-majority -0.08/-0.07/-0.1002, seed 2 just outside; with one peak
    -0.18/-0.19/-0.15 and -0.21/-0.21/-0.19: the oxide plasmon pulled the fitted
    energy up)."""
    result, truth, eels = _true_class_result(region)
    li = _unmixed(result.rows)
    true = truth[_TRUTH_NAMES["boundary"]]["li_per_si"]
    assert li["boundary"]["value"] == pytest.approx(true, abs=0.1)
    assert abs(li["boundary"]["value"] - true) < 3 * li["boundary"]["se"]
    majority = _li_si(result.rows)["boundary"]["value"]
    assert majority == pytest.approx(true, abs=0.1)


def test_the_class_shares_unmix_the_true_values_to_the_true_means(region):
    """The share model alone: each EELS pixel's true Li/Si (the phantom at its sample
    point) unmixed on the shares the registration gives is within 0.05 of the truth's
    per-class means (measured, seeds 0-2: within 0.03 for every class)."""
    from anodemap.correlate.unmix import class_shares, unmix
    from anodemap.features.classes import CLASS_NAMES, CLASSES

    root, _ = region
    result, truth, eels = _true_class_result(region)
    values = np.asarray(load(root / "truth" / "eels" / "li_per_si.hspy").data, float)
    back = result.registrations["eels"].transform.inverse()
    shares, known = class_shares(result.survey_labels, CLASSES, back, values.shape)
    assert np.allclose(shares[known].sum(-1), 1.0)
    u = unmix(values, eels.layers[0].valid, shares, known=known)
    for i, code in enumerate(CLASSES):
        name = CLASS_NAMES[code]
        if name == "pore":  # the EELS map has no Li/Si there: not estimable
            assert not u.estimable[i] and np.isnan(u.mean[i])
            continue
        assert u.mean[i] == pytest.approx(truth[_TRUTH_NAMES[name]]["li_per_si"], abs=0.05)


# ------------------------------------------------------------------ the command
def test_the_command_writes_maps_tables_figures(command, region):
    root, _ = region
    summary = json.loads((command / "summary.json").read_text())
    for name in (
        "feature_statistics.csv",
        "feature_statistics.json",
        "registration.json",
        "registration.png",
        "maps_by_feature.png",
        "li_si_by_feature.png",
        "eels_li_si_ratio.hspy",
        "edx_O_Ka.hspy",
        "diffraction_phase.hspy",
        "labels.hspy",
    ):
        assert (command / name).exists(), name
    reg = json.loads((command / "registration.json").read_text())["modalities"]
    assert set(reg) == {"eels", "edx", "diffraction"}
    assert reg["eels"]["quality"] == "good" and reg["edx"]["quality"] == "good"
    # every modality where its pixels truly looked (the survey drifts and jitters)
    from anodemap.registration import Transform
    from anodemap.synth.region import ScanView

    ref_yx = np.stack(
        [load(root / "truth" / "haadf" / f"sample_{a}_nm.hspy").data for a in "yx"], -1
    )
    ij = np.stack(np.indices(ref_yx.shape[:2]), -1).astype(float)
    for name, bound in (("eels", 0.3), ("edx", 0.3), ("diffraction", 0.4)):
        v = _truth(root)["views"][name]
        view = ScanView(**{k: tuple(x) if isinstance(x, list) else x for k, x in v.items()})
        true = view.pixel_of(ref_yx)
        inside = (
            (true >= 0).all(-1)
            & (true[..., 0] <= view.shape[0] - 1)
            & (true[..., 1] <= view.shape[1] - 1)
        )
        found = Transform.from_dict(reg[name]["transform"]).apply(ij)
        err = np.linalg.norm(found - true, axis=-1)[inside]
        assert np.sqrt(np.mean(err**2)) < bound, (name, np.sqrt(np.mean(err**2)))
    assert summary["input"]["path"].endswith("haadf.hspy")
    assert [p["group"] for p in summary["paper_comparison"]] == [
        "dendrite-like",
        "bright",
        "grey",
        "all pixels",
    ]


def _one(region, names, **parameters):
    """correlate of the survey with the results ``names`` only, and the truth's classes."""
    root, _ = region
    feats = read_features(root / "features")
    image = np.asarray(load(root / "haadf.hspy").data, float)
    mods = [read_modality(n, root / n, f"--{n}") for n in names]
    result = correlate(image, feats["axes"], feats, mods, CorrelateParameters(**parameters))
    truth = np.asarray(load(root / "truth" / "haadf" / "labels.hspy").data)
    return result, feats["labels"], truth


def test_the_edx_o_map_decides_the_boundaries_under_it(region):
    """Under the EDX map the boundary class is the O-rich pixels (auto cut), here with
    the EDX result alone. Measured, seeds 0/1/2 (docs/registration.md): boundary IoU
    under the EDX map 0.60/0.56/0.62 with the HAADF alone -> 0.81/0.79/0.83, grey
    0.85/0.74/0.77 -> 0.92/0.80/0.89, dendrite-like unchanged (its pixels keep their
    class); pores and c-Si unchanged; outside the EDX map nothing changes."""
    from anodemap.features.truth import compare

    result, haadf, truth = _one(region, ["edx"])
    labels, cover = result.survey_labels, result.survey_cover["edx"]
    summary = result.summary["o_rich"]
    assert summary["applied"] and 0.15 < summary["threshold"]["value"] < 0.4
    np.testing.assert_array_equal(labels[~cover], haadf[~cover])
    for code in (0, 1):  # pores and c-Si stay
        np.testing.assert_array_equal(labels == code, haadf == code)
    after = compare(labels, truth, within=cover)["classes"]
    before = compare(haadf, truth, within=cover)["classes"]
    assert after["boundary"]["iou"] >= 0.75 and after["boundary"]["iou"] >= (
        before["boundary"]["iou"] + 0.15
    ), (before, after)
    assert after["grey"]["iou"] >= before["grey"]["iou"] + 0.03
    assert after["dendrite-like"]["iou"] >= before["dendrite-like"]["iou"] - 0.005
    assert not np.any((haadf == 3) & (labels == 4))  # dendrite-like pixels keep their class
    assert [r["area_px"] for r in result.regions if r["class"] == "boundary"]


def test_the_eels_thickness_finds_the_thin_classes_again_under_its_map(region):
    """Under the EELS map the survey is classified again with its registered t/λ
    instead of the grey envelope, here with the EELS result alone. Measured, seed 1:
    IoU under the EELS map grey 0.76 -> 0.82, dendrite-like 0.67 -> 0.81, boundary
    0.35 -> 0.57 (seeds 0/2 in docs/registration.md); pores and c-Si unchanged."""
    from anodemap.features.truth import compare

    result, haadf, truth = _one(region, ["eels"])
    labels, cover = result.survey_labels, result.survey_cover["eels"]
    assert result.summary["eels_thickness"]["applied"]
    np.testing.assert_array_equal(labels[~cover], haadf[~cover])
    for code in (0, 1):
        np.testing.assert_array_equal(labels == code, haadf == code)
    after = compare(labels, truth, within=cover)["classes"]
    before = compare(haadf, truth, within=cover)["classes"]
    for name, gain in (("grey", 0.05), ("dendrite-like", 0.1), ("boundary", 0.15)):
        assert after[name]["iou"] >= before[name]["iou"] + gain, (name, before, after)
    off, _, _ = _one(region, ["eels"], eels_thickness=False, eels_oxide="off")
    np.testing.assert_array_equal(off.survey_labels, haadf)
    assert off.summary["eels_thickness"] is None and off.summary["eels_oxide"] is None


def test_the_eels_oxide_index_decides_the_boundaries_under_its_map(region):
    """Under the EELS map the boundary class is the pixels of high 42 eV oxide index
    (anodemap.correlate.oxide_plasmon), after the t/λ step. Measured, seeds 0/1/2
    (docs/registration.md), boundary IoU under the EELS map 0.74/0.64/0.76 (t/λ and
    the EDX O) -> 0.82/0.80/0.87 with the index; here seed 1 with the EELS alone, the
    t/λ step's classes against the index's. With EDX too the finer EELS map decides
    where both cover."""
    from anodemap.features.truth import compare

    result, haadf, truth = _one(region, ["eels"])
    before, _, _ = _one(region, ["eels"], eels_oxide="off")
    labels, cover = result.survey_labels, result.survey_cover["eels"]
    s = result.summary["eels_oxide"]
    assert s["applied"] and s["threshold"]["source"].startswith("auto (Otsu;")
    np.testing.assert_array_equal(labels[~cover], haadf[~cover])
    for code in (0, 1, 3):  # pores, c-Si and dendrite-like keep their class
        np.testing.assert_array_equal(labels == code, before.survey_labels == code)
    after = compare(labels, truth, within=cover)["classes"]
    base = compare(before.survey_labels, truth, within=cover)["classes"]
    assert after["boundary"]["iou"] >= 0.75 and after["boundary"]["iou"] >= (
        base["boundary"]["iou"] + 0.15
    ), (base, after)
    assert after["grey"]["iou"] >= base["grey"]["iou"] + 0.03
    both, _, _ = _one(region, ["eels", "edx"])
    assert both.summary["oxide_steps"] == ["edx", "eels"]  # 4 nm first, 3 nm decides


def test_an_eels_result_without_the_oxide_index_leaves_the_classes(region, tmp_path):
    """An EELS result of an older version (no oxide_index.hspy, no oxide peak): read
    without it, the step is left out and said; the classes are those of --eels-oxide
    off; the boundary's Li/Si rows say that a one-peak fit read them low."""
    import shutil

    root, _ = region
    old = tmp_path / "eels"
    shutil.copytree(root / "eels", old)
    (old / "oxide_index.hspy").unlink()
    summary = json.loads((old / "summary.json").read_text())
    del summary["oxide_peak"]  # older versions fitted one peak and said nothing of it
    (old / "summary.json").write_text(json.dumps(summary))
    feats = read_features(root / "features")
    image = np.asarray(load(root / "haadf.hspy").data, float)
    said = []
    result = correlate(
        image, feats["axes"], feats, [read_modality("eels", old, "--eels")],
        CorrelateParameters(), log=said.append,
    )  # fmt: skip
    off, _, _ = _one(region, ["eels"], eels_oxide="off")
    assert result.summary["eels_oxide"] is None
    # an EELS result without the oxide peak's summary: its boundary Li/Si is a one-peak fit
    li = [r for r in result.rows if r.get("class") == "boundary" and r["quantity"] == "li_si"]
    assert li and all("O-rich: Li/Si from a one-peak plasmon fit" in r["note"] for r in li)
    np.testing.assert_array_equal(result.survey_labels, off.survey_labels)
    assert any("without oxide_index.hspy" in line for line in said)


def test_the_boundary_li_si_rows_say_their_calibration(command):
    rows = list(csv.DictReader(open(command / "feature_statistics.csv", encoding="utf-8")))
    li = [r for r in rows if r["class"] == "boundary" and r["quantity"].startswith("li_si")]
    said = "O-rich: Li/Si of the Li_xSi plasmon, fitted beside the Li2O/silicate plasmon"
    assert li and all(said in r["note"] for r in li)
    labels = np.asarray(load(command / "labels.hspy").data)
    regions = list(csv.DictReader(open(command / "regions.csv", encoding="utf-8")))
    for code, name in enumerate(("pore", "bright", "grey", "dendrite-like", "boundary")):
        listed = sum(int(r["area_px"]) for r in regions if r["class"] == name)
        assert 0 < listed <= int((labels == code).sum())  # regions under 4 px not listed


def test_o_rich_off_keeps_the_haadf_classes(region):
    off, haadf, _ = _one(region, ["edx"], o_rich="off")
    np.testing.assert_array_equal(off.survey_labels, haadf)
    assert off.summary["o_rich"] is None
    on, _, _ = _one(region, ["edx"])
    assert on.summary["o_rich"]["to_boundary"] > 0
    assert not np.array_equal(on.survey_labels, haadf)


def test_the_table_counts_every_pixel(command):
    rows = list(csv.DictReader(open(command / "feature_statistics.csv", encoding="utf-8")))
    assert rows and set(rows[0]) >= {"group", "quantity", "value", "se", "counted", "flagged"}
    li = {r["group"]: r for r in rows if r["quantity"] == "li_si" and r["group_kind"] == "class"}
    for r in li.values():
        assert int(r["pixels"]) == int(r["counted"]) + int(r["flagged"])
    total = sum(int(r["pixels"]) for r in li.values())
    assert total == 64 * 64  # every EELS pixel lies in the survey, in one class
    assert float(li["bright"]["value"]) < 0.1  # c-Si: no Li
    # pores: a few rim pixels carry a Li/Si; the class has none (as its unmixed row)
    assert int(li["pore"]["counted"]) < 0.1 * int(li["pore"]["pixels"])
    assert li["pore"]["value"] == "" and li["pore"]["note"].startswith("not estimable")
    phases = {
        r["quantity"]: float(r["value"])
        for r in rows
        if r["group"] == "bright" and r["quantity"].startswith("phase_fraction")
    }
    assert phases["phase_fraction:Si"] > 0.8  # the bright class is crystalline Si
    regions = [r for r in rows if r["group_kind"] == "region" and r["quantity"] == "li_si"]
    assert regions and all(r["region"] for r in regions)
    o_si = {
        r["group"]: float(r["value"])
        for r in rows
        if r["quantity"] == "o_si" and r["group_kind"] == "class"
    }
    assert o_si["boundary"] > 1.5 * o_si["grey"]  # O at the grain boundaries (Fig. 3b); 1.8x
    index = {
        r["group"]: float(r["value"])
        for r in rows
        if r["quantity"] == "oxide_index" and r["group_kind"] == "class" and r["value"]
    }
    assert "pore" not in index  # no first plasmon fitted in most pore pixels: no value
    # Li2O/silicates at the grain boundaries in the 42 eV window (Fig. S4b); measured 3.3x
    assert index["boundary"] > 2.5 * index["grey"] and index["boundary"] > 2.5 * index["bright"]


def test_the_table_has_the_unmixed_means_beside_the_majority(command):
    """Every value map gains QUANTITY_unmixed rows per class; a class the map has no
    value in (Li/Si in pores) is not estimable, with an empty value and the reason; the
    paper's class statements come from the unmixed means."""
    rows = list(csv.DictReader(open(command / "feature_statistics.csv", encoding="utf-8")))
    quantities = {r["quantity"] for r in rows if r["quantity"].endswith("_unmixed")}
    assert quantities == {
        "li_si_unmixed",
        "plasmon_energy_unmixed",
        "t_over_lambda_unmixed",
        "O_Ka_unmixed",
        "Si_Ka_unmixed",
        "oxide_index_unmixed",
    }
    li = {r["group"]: r for r in rows if r["quantity"] == "li_si_unmixed"}
    assert set(li) == {"pore", "bright", "grey", "dendrite-like", "boundary"}
    assert li["pore"]["value"] == "" and "not estimable" in li["pore"]["note"]
    for name in ("bright", "grey", "dendrite-like"):
        r = li[name]
        assert float(r["se"]) > 0 and float(r["effective_pixels"]) > 20 and not r["note"]
    assert float(li["bright"]["value"]) < 0.1  # c-Si: no Li
    summary = json.loads((command / "summary.json").read_text())
    paper = {p["group"]: p["quantity"] for p in summary["paper_comparison"]}
    assert paper == {
        "dendrite-like": "li_si_unmixed",
        "bright": "li_si_unmixed",
        "grey": "li_si_unmixed",
        "all pixels": "li_si",
    }
    unmixed = {r["group"]: r for r in summary["li_si_unmixed_per_class"]}
    assert unmixed["grey"]["value"] == pytest.approx(float(li["grey"]["value"]), rel=1e-5)
    assert summary["parameters"]["footprint"] == "point"


def test_the_classes_on_the_diffraction_scans_own_grid(command, region):
    """With a diffraction result the correlate also writes the survey's classes on the
    scan's grid (``labels_diffraction.hspy``: the class of the survey pixel each scan
    pixel's centre lies in), with labels.hspy's legend and the scan's axes, for
    ``anodemap pdf --regions``. Against the simulator's class at each scan position
    (truth/diffraction/labels.hspy; measured, seed 1: 85.7 % of the scan's pixels right,
    IoU bright 0.98, pore 0.85, grey 0.78, dendrite-like 0.67, boundary 0.51)."""
    from anodemap.io.regions import region_names

    root, _ = region
    found = load(command / "labels_diffraction.hspy")
    scan = load(root / "diffraction" / "virtual_adf.hspy")
    labels = np.asarray(found.data)
    assert labels.shape == scan.data.shape and labels.dtype == np.uint8
    assert found.get_meta("Signal.legend") == load(command / "labels.hspy").get_meta(
        "Signal.legend"
    )
    names = region_names(command / "labels_diffraction.hspy")
    assert names[1] == "bright" and names[255].startswith("outside")
    for mine, theirs in zip(found.axes, scan.axes, strict=True):
        assert mine.units == theirs.units == "nm"
        assert (mine.size, mine.scale, mine.offset) == pytest.approx(
            (theirs.size, theirs.scale, theirs.offset)
        )
    truth = np.asarray(load(root / "truth" / "diffraction" / "labels.hspy").data)
    inside = labels != 255
    assert inside.mean() > 0.9  # the scan lies in the survey (all of it, seed 1)
    assert (labels[inside] == truth[inside]).mean() > 0.8
    bright = ((labels == 1) & (truth == 1)).sum() / ((labels == 1) | (truth == 1)).sum()
    assert bright > 0.93, bright
    summary = json.loads((command / "summary.json").read_text())
    assert "labels_diffraction.hspy" in summary["files"]


def test_the_maps_open_in_hyperspy_in_the_reference_frame(command, region):
    hs = pytest.importorskip("hyperspy.api")
    root, _ = region
    li = hs.load(command / "eels_li_si_ratio.hspy")
    survey = hs.load(root / "haadf.hspy")
    assert li.data.shape == survey.data.shape
    assert li.axes_manager[0].units == "nm"
    assert li.axes_manager[0].scale == pytest.approx(survey.axes_manager[0].scale)
    inside = np.isfinite(li.data)
    assert 0.2 < inside.mean() < 0.7  # the EELS map covers part of the survey, never filled


def test_the_eels_frame_keeps_the_eels_values(region, tmp_path):
    root, files = region
    out = tmp_path / "c"
    code = _run(
        "correlate",
        files["haadf"],
        "-o",
        out,
        "--features",
        root / "features",
        "--eels",
        root / "eels",
        "--reference",
        "eels",
        "-q",
        "--no-figures",
    )
    assert code == 0
    mine = np.asarray(load(out / "eels_li_si_ratio.hspy").data)
    theirs = np.asarray(load(root / "eels" / "li_si_ratio.hspy").data)
    ok = np.isfinite(theirs)
    np.testing.assert_allclose(mine[ok], theirs[ok], rtol=1e-9)
    labels = np.asarray(load(out / "labels.hspy").data)
    assert labels.shape == theirs.shape and (labels != 255).all()


# ------------------------------------------------------------------ errors
def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return [line for line in err if line.startswith("anodemap: error")]


def test_a_features_result_of_another_image_is_refused(region, tmp_path, capsys):
    root, files = region
    other = tmp_path / "other.hspy"
    ds = load(files["haadf"])
    ds.data = np.asarray(ds.data).copy()
    ds.data[0, 0] += 1
    from anodemap.io import save

    save(ds, other)
    assert _run("features", other, "-o", tmp_path / "f", "-q", "--no-figures") == 0
    capsys.readouterr()
    code = _run(
        "correlate", files["haadf"], "-o", tmp_path / "c", "--features", tmp_path / "f", "-q"
    )
    lines = _error_line(capsys)
    assert code == 2 and len(lines) == 1 and "--features" in lines[0] and "other.hspy" in lines[0]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--eels", "edx"], "--eels"),  # the EDX result given as EELS
        (["--edx", "empty"], "--edx"),  # no summary.json
        (["--reference", "eels"], "--reference"),  # no EELS result to be the frame
        ([], "--features"),
    ],
)
def test_wrong_folders_are_refused_naming_the_option(region, tmp_path, capsys, args, option):
    root, files = region
    (tmp_path / "empty").mkdir()
    extra = [
        str(root / a) if a in ("edx",) else str(tmp_path / a) if a == "empty" else a for a in args
    ]
    features = [] if option == "--features" else ["--features", root / "features"]
    capsys.readouterr()
    code = _run("correlate", files["haadf"], "-o", tmp_path / "c", *features, *extra, "-q")
    lines = _error_line(capsys)
    assert code == 2 and len(lines) == 1 and option in lines[0], lines


def test_the_feature_classes_on_the_diffraction_grid_are_pdf_regions(region, tmp_path):
    """Issue 17 item 4: every microstructure feature as a PDF region. The correlate in
    the diffraction scan's frame writes the feature classes on its grid (labels.hspy,
    with the class names as its legend); anodemap pdf --regions takes them by name and
    leaves out the positions outside the survey. The grey feature is mostly amorphous
    (96 % on this region): its first Si-Si / Li-Si shell lies within 0.05 Å of the
    amorphous class's (measured 2.410 and 2.389 Å; the peaks under 1.8 Å, shorter than any
    bond here, are termination ripples of the 48-pixel patterns' s_max of 1.28 1/Å), and
    the bright feature's PDF is the Si class's (bright is 98 % Si)."""
    root, files = region
    corr = tmp_path / "in_diffraction_frame"
    argv = ["correlate", files["haadf"], "-o", corr, "--features", root / "features"]
    argv += ["--diffraction", root / "diffraction", "--reference", "diffraction"]
    assert _run(*argv, "-q", "--no-figures") == 0
    labels = load(corr / "labels.hspy")
    assert labels.data.shape == load(files["diffraction"], lazy=True).nav_shape
    assert labels.get_meta("Signal.legend")["3"] == "dendrite-like"
    out = tmp_path / "pdf"
    argv = ["pdf", files["diffraction"], "-o", out, "--diffraction", root / "diffraction"]
    assert _run(*argv, "--regions", corr / "labels.hspy", "-q", "--no-figures") == 0
    summary = json.loads((out / "summary.json").read_text())
    found = set(summary["regions"])
    assert {"bright", "grey"} <= found and not any(n.startswith("region") for n in found), found
    r1 = {
        n: next(p["r_angstrom"] for p in summary["regions"][n]["peaks"] if p["r_angstrom"] > 1.8)
        for n in ("grey", "amorphous", "bright", "Si")
    }
    assert abs(r1["grey"] - r1["amorphous"]) < 0.05, r1
    assert abs(r1["bright"] - r1["Si"]) < 0.02, r1


def test_soft_shares_unmix_grey_closer_than_hard(region):
    """--unmix-shares soft (default): a survey pixel called grey or dendrite-like counts
    for both by the features' probabilities. Measured with anodemap run, seeds 0/1/2,
    unmixed against the truth of the true class: grey +0.024/+0.071/+0.029 (hard) ->
    -0.014/+0.042/+0.001 (soft), dendrite-like -0.156/-0.006/-0.096 ->
    -0.115/+0.026/-0.070, bright and boundary within 0.004 of before; the pixel-majority
    rows do not change."""
    root, _ = region
    truth = _truth(root)["feature_means_haadf_frame"]["within_eels"]
    soft, _, _ = _one(region, ["eels", "edx"])
    hard, _, _ = _one(region, ["eels", "edx"], unmix_shares="hard")
    assert soft.summary["unmix_shares"].startswith("soft")
    assert hard.summary["unmix_shares"].startswith("hard")

    def error(result, group):
        return _unmixed(result.rows)[group]["value"] - truth[_TRUTH_NAMES[group]]["li_per_si"]

    assert abs(error(soft, "grey")) < abs(error(hard, "grey"))
    for group in ("grey", "dendrite-like", "bright", "boundary"):
        assert abs(error(soft, group)) < 0.1, (group, error(soft, group))
    assert _li_si(soft.rows)["grey"]["value"] == _li_si(hard.rows)["grey"]["value"]
