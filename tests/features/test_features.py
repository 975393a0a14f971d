"""Feature segmentation of HAADF images (anodemap.features) against the simulated truth,
the HAADF simulator (anodemap.synth.haadf) and ``anodemap features`` end to end.

The simulated electrode: a 192 x 192 phantom of 2.5 nm pixels (the EELS grid), its HAADF
image of 229 x 229 pixels of 1.875 nm, rotated by 4 degrees, drifting and jittering,
1000 counts per c-Si column of t/λ 1. Every number compared is over all pixels. The
bounds sit a little below what was measured (docs/features.md gives the measurements).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.features.classes import BOUNDARY, BRIGHT, CLASS_NAMES, DENDRITE, GREY, PORE
from anodemap.features.parameters import FeaturesParameters
from anodemap.features.segment import segment
from anodemap.features.truth import compare
from anodemap.features.unsupervised import classify
from anodemap.io import Axis, load, save
from anodemap.io.results import map_dataset
from anodemap.synth import make_phantom
from anodemap.synth.haadf import haadf_dataset, simulate_haadf, truth_scribbles

SEED = 1


def _run(*args) -> int:
    """``anodemap`` with these arguments (paths allowed): its exit code."""
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def electrode():
    phantom = make_phantom((192, 192), pixel_size_nm=2.5, seed=SEED)
    sim = simulate_haadf(phantom, seed=SEED)
    eels_axes = [
        Axis(n, k, 2.5, 0.0, "nm", False) for n, k in zip("yx", phantom.shape, strict=True)
    ]
    return phantom, sim, haadf_dataset(sim), eels_axes


@pytest.fixture(scope="module")
def with_thickness(electrode):
    """The unsupervised classes with the t/λ map of the EELS grid, placed by its axes."""
    phantom, sim, ds, eels_axes = electrode
    seg = segment(sim.image, ds.axes, thickness=(phantom.t_over_lambda, eels_axes))
    return seg, compare(seg.labels, sim.truth["labels"], seg.summary["porosity"])


def _check(comparison, recall, precision):
    for code in (PORE, BRIGHT, GREY, DENDRITE, BOUNDARY):
        c = comparison["classes"][CLASS_NAMES[code]]
        assert c["recall"] >= recall[code], (CLASS_NAMES[code], c)
        assert c["precision"] >= precision[code], (CLASS_NAMES[code], c)


# ------------------------------------------------------------------ the simulator
def test_simulated_haadf_has_its_own_grid_and_truth_on_it(electrode):
    phantom, sim, ds, _ = electrode
    assert sim.pixel_size_nm == pytest.approx(0.75 * phantom.pixel_size_nm)
    assert sim.image.shape == (229, 229) != phantom.shape
    for key in ("labels", "t_over_lambda", "expected_counts", "sample_y_nm", "sample_x_nm"):
        assert sim.truth[key].shape == sim.image.shape
    # the field of view lies inside the phantom, rotated by 4 degrees
    y, x = sim.truth["sample_y_nm"], sim.truth["sample_x_nm"]
    assert 0 < x.min() and x.max() < phantom.shape[1] * phantom.pixel_size_nm
    assert abs(np.degrees(np.arctan2(-(x[-1, 0] - x[0, 0]), y[-1, 0] - y[0, 0]))) == (
        pytest.approx(4.0, abs=1.0)  # the drift turns it by 0.5 degrees
    )
    # line jitter: the step between rows' first pixels varies, not so within a row
    assert np.std(np.diff(x[:, 0])) > 0.05 * sim.pixel_size_nm
    assert np.std(np.diff(x[0])) < 1e-9
    assert ds.sig_axes[0].units == "nm" and ds.sig_axes[0].scale == sim.pixel_size_nm


def test_z_contrast_orders_the_classes_per_thickness(electrode):
    """Per unit t/λ: c-Si brightest, then the O-rich boundaries, grey, dendrite-like;
    pores hold the least signal; the counts are Poisson around the expectation."""
    _, sim, _, _ = electrode
    lab = sim.truth["labels"]
    per_t = sim.truth["expected_counts"] / np.maximum(sim.truth["t_over_lambda"], 1e-3)
    level = {c: np.median(per_t[lab == c]) for c in (BRIGHT, BOUNDARY, GREY, DENDRITE)}
    assert level[BRIGHT] > level[BOUNDARY] > level[GREY] > level[DENDRITE]
    counts = {c: np.median(sim.truth["expected_counts"][lab == c]) for c in range(5)}
    assert counts[PORE] < 0.2 * min(counts[c] for c in (BRIGHT, GREY, DENDRITE, BOUNDARY))
    resid = (sim.image - sim.truth["expected_counts"]) / np.sqrt(
        np.maximum(sim.truth["expected_counts"], 1.0)
    )
    assert np.std(resid[sim.truth["expected_counts"] > 50]) == pytest.approx(1.0, abs=0.05)


# ------------------------------------------------------------------ unsupervised
def test_unsupervised_with_the_eels_thickness_recovers_the_truth(with_thickness):
    """Measured (seed 1): recall pore 0.92, bright 0.97, grey 0.87, dendrite-like 0.75,
    boundary 0.74; precision 0.99, 0.91, 0.88, 0.87, 0.69; porosity 4.44 ± 0.49 % against
    4.78 % (before the local grey reference: dendrite-like recall 0.63, precision 0.91)."""
    seg, c = with_thickness
    _check(
        c,
        recall={PORE: 0.88, BRIGHT: 0.94, GREY: 0.84, DENDRITE: 0.71, BOUNDARY: 0.69},
        precision={PORE: 0.95, BRIGHT: 0.87, GREY: 0.84, DENDRITE: 0.83, BOUNDARY: 0.64},
    )
    por = c["porosity"]
    assert abs(por["error"]) <= 0.01  # the target: 1 % absolute
    assert abs(por["error"]) <= 2 * por["uncertainty"]
    assert seg.summary["thickness_term"].startswith("t/λ map")


def test_unsupervised_without_a_thickness_map(electrode):
    """The grey envelope stands in for t/λ. Measured (seed 1): recall 0.93, 0.96, 0.87,
    0.76, 0.66; precision 0.98, 0.97, 0.85, 0.78, 0.67; porosity 4.53 ± 0.50 %."""
    _, sim, ds, _ = electrode
    seg = segment(sim.image, ds.axes)
    c = compare(seg.labels, sim.truth["labels"], seg.summary["porosity"])
    _check(
        c,
        recall={PORE: 0.88, BRIGHT: 0.92, GREY: 0.83, DENDRITE: 0.72, BOUNDARY: 0.61},
        precision={PORE: 0.94, BRIGHT: 0.93, GREY: 0.81, DENDRITE: 0.74, BOUNDARY: 0.62},
    )
    assert abs(c["porosity"]["error"]) <= 0.01
    assert abs(c["porosity"]["error"]) <= 2 * c["porosity"]["uncertainty"]


def test_the_shape_steps_raise_the_thin_classes(electrode, with_thickness):
    """Hysteresis growing of the boundary regions and the pores' O-rich shell, against
    the intensity rule alone (both with the t/λ map). Measured (seed 1): IoU
    dendrite-like 0.579 -> 0.597, boundary 0.400 -> 0.555, mean of the five classes
    0.701 -> 0.741; pores 0.905 -> 0.905 and bright 0.884 -> 0.884 (not hurt)."""
    phantom, sim, ds, eels_axes = electrode
    plain = FeaturesParameters(
        grow_dark_sigmas=None, grow_boundary_sigmas=None, pore_shell_nm=0, dark_reference_nm=None
    )
    seg = segment(sim.image, ds.axes, plain, thickness=(phantom.t_over_lambda, eels_axes))
    before = compare(seg.labels, sim.truth["labels"])["classes"]
    after = with_thickness[1]["classes"]
    iou = {k: (before[k]["iou"], after[k]["iou"]) for k in before}
    assert iou["dendrite-like"][1] >= iou["dendrite-like"][0] + 0.01, iou
    assert iou["boundary"][1] >= iou["boundary"][0] + 0.1, iou
    assert np.mean([v[1] for v in iou.values()]) >= np.mean([v[0] for v in iou.values()]) + 0.03
    for name in ("pore", "bright"):
        assert iou[name][1] >= iou[name][0] - 0.005, iou
    info = with_thickness[0].summary["method"]
    assert info["pore_shell"]["pixels"] > 0 and info["grown"]["pixels"] > 0


def test_the_thickness_term_matters(electrode, with_thickness):
    """Left in (background none), the FIB wedge makes thick grey look like boundary and
    thin grey like dendrite-like: far fewer pixels right."""
    _, sim, ds, _ = electrode
    raw = segment(sim.image, ds.axes, FeaturesParameters(background="none"))
    plain = compare(raw.labels, sim.truth["labels"])["accuracy"]
    assert with_thickness[1]["accuracy"] > plain + 0.1


def test_probabilities_are_distributions_and_flag_the_errors(with_thickness, electrode):
    seg, _ = with_thickness
    _, sim, _, _ = electrode
    assert seg.probability.shape == (5, *seg.labels.shape)
    np.testing.assert_allclose(seg.probability.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(seg.probability.argmax(axis=0), seg.labels)
    wrong = seg.labels != sim.truth["labels"]
    assert seg.uncertainty[wrong].mean() > 2 * seg.uncertainty[~wrong].mean()


# ------------------------------------------------------------------ trainable
def test_trainable_mode_on_scribbles(electrode, with_thickness):
    """Scribbles from the truth (8 strokes of 15 px per class, 0.7 % of the pixels), the
    pores' shell added as in the unsupervised rule. Measured (seed 1): 83.9 % of the
    pixels right (the unsupervised rule 84.7 %, 83.8 % before its local grey of step 3
    c), mean IoU 0.737 (0.714 without the shell), porosity 4.03 % against 4.78 %."""
    phantom, sim, ds, eels_axes = electrode
    marks = truth_scribbles(sim.truth["labels"], seed=SEED)
    assert 0.004 < np.count_nonzero(marks) / marks.size < 0.01
    seg = segment(sim.image, ds.axes, thickness=(phantom.t_over_lambda, eels_axes), scribbles=marks)
    c = compare(seg.labels, sim.truth["labels"], seg.summary["porosity"])
    assert c["accuracy"] >= 0.82
    assert c["accuracy"] >= with_thickness[1]["accuracy"] - 0.01
    assert np.mean([v["iou"] for v in c["classes"].values()]) >= 0.72
    assert abs(c["porosity"]["error"]) <= 0.01
    assert seg.summary["mode"] == "trainable"
    assert seg.summary["method"]["marked_pixels"]["dendrite-like"] > 20
    assert seg.summary["method"]["pore_shell"]["pixels"] > 0
    again = segment(
        sim.image, ds.axes, thickness=(phantom.t_over_lambda, eels_axes), scribbles=marks
    )
    np.testing.assert_array_equal(again.probability, seg.probability)  # seeded forest


# ------------------------------------------------------------------ regions
def test_regions_have_sizes_and_shapes_in_nm(with_thickness):
    seg, _ = with_thickness
    rows = seg.regions
    assert rows and {r["class"] for r in rows} == set(CLASS_NAMES.values())
    p = seg.pixel_size_nm
    for r in rows:
        assert r["area_nm2"] == pytest.approx(r["area_px"] * p * p)
        assert r["equivalent_diameter_nm"] == pytest.approx(2 * np.sqrt(r["area_nm2"] / np.pi))
        assert 0 <= r["eccentricity"] <= 1 and 0 <= r["orientation_deg"] < 180
        assert r["area_px"] >= FeaturesParameters().min_region_px
    # listed regions are a part of the labelled pixels
    for code, name in CLASS_NAMES.items():
        listed = sum(r["area_px"] for r in rows if r["class"] == name)
        assert listed <= np.count_nonzero(seg.labels == code)


def test_a_thickness_map_that_misses_the_image_is_refused(electrode):
    from anodemap.errors import AnodemapInputError

    _, sim, ds, _ = electrode
    small = [Axis("y", 10, 2.0, 0.0, "nm", False), Axis("x", 10, 2.0, 0.0, "nm", False)]
    with pytest.raises(AnodemapInputError, match="does not cover the image"):
        segment(sim.image, ds.axes, thickness=(np.full((10, 10), 0.8), small))


# ------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def simulated_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("haadf")
    assert (
        _run("simulate", "haadf", "-o", out, "--shape", 96, 96, "--scan-step", 2.5, "--seed", 3)
        == 0
    )
    return out


def test_anodemap_features_end_to_end(simulated_files, tmp_path, capsys):
    hs = pytest.importorskip("hyperspy.api")
    out = tmp_path / "features"
    tmap = simulated_files / "truth" / "t_over_lambda_eels_grid.hspy"
    code = _run("features", simulated_files / "haadf.hspy", "-o", out, "--thickness", tmap)
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["files"]) >= {"labels.hspy", "probability.hspy", "regions.csv"}
    assert {"features.png", "uncertainty.png"} <= set(summary["files"])
    assert sum(summary["class_fractions"].values()) == pytest.approx(1.0)
    assert summary["class_fractions_over"] == "all pixels of the image"
    assert summary["porosity"]["uncertainty"] > 0
    assert summary["parameters"]["smoothing_px"] == FeaturesParameters().smoothing_px
    s = hs.load(out / "labels.hspy")
    image = hs.load(simulated_files / "haadf.hspy")
    assert s.data.shape == image.data.shape and s.data.dtype == np.uint8
    for a, b in zip(s.axes_manager.signal_axes, image.axes_manager.signal_axes, strict=True):
        assert a.units == b.units == "nm"
        assert (a.scale, a.offset) == (pytest.approx(b.scale), pytest.approx(b.offset))
    prob = hs.load(out / "probability.hspy")
    assert prob.data.shape == (5, *s.data.shape)
    header = (out / "regions.csv").read_text().splitlines()[0]
    assert header.startswith("region,class,class_code,area_px,area_nm2,equivalent_diameter_nm")
    truth = np.asarray(load(simulated_files / "truth" / "labels.hspy").data)
    assert compare(s.data, truth)["accuracy"] > 0.7


def test_anodemap_features_trains_on_scribbles(simulated_files, tmp_path, capsys):
    out = tmp_path / "trained"
    marks = simulated_files / "truth" / "scribbles.png"
    code = _run(
        "features",
        simulated_files / "haadf.hspy",
        "-o",
        out,
        "--no-figures",
        "--training",
        marks,
        "--trees",
        30,
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "trainable"
    assert summary["method"]["classifier"].startswith("sklearn RandomForestClassifier(30 trees")


@pytest.mark.parametrize(
    "make, expected",
    [
        (None, "no such file"),
        (lambda p: np.save(p, np.zeros((5, 5), int)), "paint the scribbles on this image"),
        (lambda p: np.save(p, np.full((109, 109), 7)), "values other than 0-5"),
        (lambda p: p.write_bytes(b"not a numpy file"), "cannot be read"),
        (lambda p: np.save(p, np.ones((109, 109), int)), "at least two"),
    ],
)
def test_a_bad_scribble_file_is_refused_in_one_line(
    make, expected, simulated_files, tmp_path, capsys
):
    scribbles = tmp_path / "marks.npy"
    if make is not None:
        make(scribbles)
    out = tmp_path / "out"
    image = simulated_files / "haadf.hspy"
    code = _run("features", image, "-o", out, "--no-figures", "--training", scribbles)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("anodemap: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "--training" in errors[0] and str(scribbles) in errors[0], errors[0]
    assert expected in errors[0], errors[0]
    assert not (out / "summary.json").exists()


def test_thickness_map_written_as_eels_writes_it_is_accepted(simulated_files, tmp_path):
    """A t/λ map with the axes anodemap eels gives its maps (scan axes in nm)."""
    t = np.asarray(load(simulated_files / "truth" / "t_over_lambda_eels_grid.hspy").data)
    axes = [Axis("y", t.shape[0], 2.5, 0.0, "nm"), Axis("x", t.shape[1], 2.5, 0.0, "nm")]
    path = save(map_dataset(t, axes, "t/λ", ""), tmp_path / "t_over_lambda.hspy")
    out = tmp_path / "o"
    image = simulated_files / "haadf.hspy"
    assert _run("features", image, "-o", out, "--no-figures", "--thickness", path, "-q") == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_few_pores_in_a_small_image_are_found(seed):
    """The default `anodemap simulate haadf` (a 64 x 64 phantom): 2-3 % pores, too few
    for a mode of their own in the histogram (Otsu's split of the dark side falls between
    dendrite-like and grey). They are still the pixels under half the grey level: before
    that rule the porosity came out 0.00 ± 0.00 % (seed 0: truth 2.44 %, now 2.18 ± 0.33)."""
    phantom = make_phantom((64, 64), pixel_size_nm=5.0, seed=seed)
    sim = simulate_haadf(phantom, seed=seed)
    seg = segment(sim.image, haadf_dataset(sim).axes)
    c = compare(seg.labels, sim.truth["labels"], seg.summary["porosity"])
    assert (sim.truth["labels"] == PORE).mean() > 0.01  # the phantom has pores
    assert abs(c["porosity"]["error"]) <= 0.01, c["porosity"]
    assert c["classes"]["pore"]["recall"] >= 0.6, c["classes"]["pore"]


def test_the_thin_classes_on_the_simulated_region_survey():
    """An image the defaults were not chosen on: the simulated region's HAADF survey
    (phantom 288 x 288 of 1.25 nm, 200 x 200 pixels of 1.5 nm, rotated, drifting, seed
    0), grey envelope. Measured: IoU dendrite-like 0.69, boundary 0.49, mean of the five
    classes 0.791 (before the local grey reference 0.53 and 0.755; growing the
    dendrite-like regions, as tried then: 0.37, 0.49, 0.713)."""
    from anodemap.synth.region import DEFAULT_VIEWS, view_haadf

    phantom = make_phantom((288, 288), pixel_size_nm=1.25, seed=0)
    sim = view_haadf(phantom, DEFAULT_VIEWS["haadf"], seed=0)
    seg = segment(sim.image, haadf_dataset(sim).axes)
    c = compare(seg.labels, sim.truth["labels"])["classes"]
    assert c["dendrite-like"]["iou"] >= 0.64 and c["boundary"]["iou"] >= 0.44, c
    assert np.mean([c[k]["iou"] for k in c]) >= 0.76


# ------------------------------------------------------------------ the local grey reference
def _rule_labels(normalised: np.ndarray, pixel_nm: float, local: bool) -> np.ndarray:
    """The unsupervised rule with the default parameters on a thickness-normalised image,
    its lengths in nm put in pixels of ``pixel_nm``; ``local``: with step 8, the split
    of grey and dendrite-like by the local grey reference."""
    p = FeaturesParameters()
    shared = ("smoothing_px", "dark_sigmas", "boundary_sigmas", "pore_ratio", "bright_ratio")
    kw = {name: getattr(p, name) for name in (*shared, "grow_dark_sigmas", "grow_boundary_sigmas")}
    kw["pore_shell_px"] = p.pore_shell_nm / pixel_nm
    if local:
        kw["dark_reference_px"] = p.dark_reference_nm / pixel_nm
        kw["dark_local_sigmas"] = p.dark_local_sigmas
        kw["min_dark_area_px"] = p.min_dark_area_nm2 / pixel_nm**2
    prob, _ = classify(normalised, **kw)
    return prob.argmax(axis=0)


def _local_step_gain(normalised, pixel_nm, truth):
    """IoU per class without and with step 8, and whether only grey and dendrite-like
    pixels changed class."""
    before = _rule_labels(normalised, pixel_nm, local=False)
    after = _rule_labels(normalised, pixel_nm, local=True)
    moved = before != after
    only_thin = bool(np.all(np.isin(before[moved], (GREY, DENDRITE))))
    only_thin &= bool(np.all(np.isin(after[moved], (GREY, DENDRITE))))
    b, a = compare(before, truth)["classes"], compare(after, truth)["classes"]
    return b, a, only_thin


def test_a_thin_dark_thread_against_its_local_grey():
    """A grey whose level varies smoothly (± 6 %, periods of 48 and 64 px: the grey's
    Li/Si field), a thread 3 px across 6 % darker, noise 2 %. The global cut (grey level
    − 2 widths) finds the thread only where the grey around it is dark and calls the
    dark grey dendrite-like; against the local grey (σ 4 px) the thread is found along
    its length and the grey stays grey; a dark speck under the smallest area stays grey.
    Measured: thread 149 -> 260 of 277 pixels, grey away from it called dendrite-like
    893 -> 143 of 15169 (0 with specks under 12 px left grey)."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:128, :128]
    img = 1.0 + 0.06 * np.sin(2 * np.pi * x / 48.0) * np.cos(2 * np.pi * y / 64.0)
    thread = (np.abs(y - 0.5 * x - 30) < 1.5) & (x > 8) & (x < 120)
    img[thread] -= 0.06
    img[100:102, 100] -= 0.15  # a speck of 2 px
    img = img + rng.normal(0, 0.02, img.shape)
    away = ndimage.distance_transform_edt(~thread) > 4
    plain = classify(img)[0].argmax(axis=0)
    local = classify(img, dark_reference_px=4.0)[0].argmax(axis=0)
    no_specks = classify(img, dark_reference_px=4.0, min_dark_area_px=12)[0].argmax(axis=0)
    assert np.mean(plain[thread] == DENDRITE) < 0.6
    assert np.mean(local[thread] == DENDRITE) > 0.9
    assert np.mean(plain[away] == DENDRITE) > 0.05
    assert np.mean(local[away] == DENDRITE) < 0.015
    assert plain[100, 100] == DENDRITE == local[100, 100]
    assert no_specks[100, 100] == GREY and np.mean(no_specks[thread] == DENDRITE) > 0.9
    assert np.count_nonzero(no_specks[away] == DENDRITE) == 0


@pytest.mark.parametrize("thickness", [True, False], ids=["t/λ", "envelope"])
def test_the_local_grey_reference_raises_the_dendrite_like_iou(electrode, thickness):
    """Step 8 on the simulated electrode (seed 1), against the rule without it. Measured:
    IoU dendrite-like 0.597 -> 0.675 with the t/λ map, 0.538 -> 0.627 with the grey
    envelope; grey 0.764 -> 0.775 and 0.725 -> 0.748; no pixel of another class moves."""
    phantom, sim, ds, eels_axes = electrode
    t = (phantom.t_over_lambda, eels_axes) if thickness else None
    seg = segment(sim.image, ds.axes, FeaturesParameters(pore_trials=0), thickness=t)
    b, a, only_thin = _local_step_gain(seg.normalised, seg.pixel_size_nm, sim.truth["labels"])
    assert only_thin
    assert a["dendrite-like"]["iou"] >= b["dendrite-like"]["iou"] + 0.06, (b, a)
    assert a["dendrite-like"]["iou"] >= (0.65 if thickness else 0.60), a
    assert a["grey"]["iou"] >= b["grey"]["iou"] + 0.005, (b, a)


@pytest.mark.parametrize(
    ("seed", "measured"), [(0, (0.531, 0.688)), (1, (0.556, 0.703)), (2, (0.660, 0.761))]
)
def test_the_local_grey_reference_on_the_simulated_region_survey(seed, measured):
    """The simulated region's HAADF survey (1.5 nm pixels, grey envelope; the grid the
    step's lengths in nm were not chosen for alone): step 8 takes the dark grey the
    global cut called dendrite-like back to grey (seed 0: precision 0.63 -> 0.77) and
    finds more of the threads (recall 0.77 -> 0.86). Measured IoU dendrite-like, without
    -> with: ``measured``; grey 0.833 -> 0.855, 0.695 -> 0.735, 0.752 -> 0.780."""
    from anodemap.synth.region import DEFAULT_VIEWS, view_haadf

    phantom = make_phantom((288, 288), pixel_size_nm=1.25, seed=seed)
    sim = view_haadf(phantom, DEFAULT_VIEWS["haadf"], seed=seed)
    seg = segment(sim.image, haadf_dataset(sim).axes, FeaturesParameters(pore_trials=0))
    b, a, only_thin = _local_step_gain(seg.normalised, seg.pixel_size_nm, sim.truth["labels"])
    assert only_thin
    assert b["dendrite-like"]["iou"] == pytest.approx(measured[0], abs=0.02)
    assert a["dendrite-like"]["iou"] >= measured[1] - 0.02, a
    assert a["dendrite-like"]["iou"] >= b["dendrite-like"]["iou"] + 0.08, (b, a)
    assert a["grey"]["iou"] >= b["grey"]["iou"] + 0.01, (b, a)
    if seed == 0:
        assert a["dendrite-like"]["precision"] >= 0.74 > b["dendrite-like"]["precision"], (b, a)
