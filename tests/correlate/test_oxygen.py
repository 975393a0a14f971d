"""The O-rich boundary class from an EDX O/Si map (anodemap.correlate.oxygen), on
counts drawn here (a band of oxide in a silicide, Poisson) rather than by the region
simulator; the simulated region's numbers are in test_correlate.py."""

from __future__ import annotations

import numpy as np

from anodemap.correlate.oxygen import o_rich_boundaries
from anodemap.features.classes import BOUNDARY, BRIGHT, DENDRITE, GREY, PORE


def _band(o_rich_counts: float, seed: int = 0):
    """A 60 x 60 grey map with an oxide band in columns 20-25 that the HAADF missed
    (its boundary class sits in columns 40-43, where there is no O), a pore and c-Si.
    Net counts after a background of 10 counts under each line: Si Kα about 60, O Kα
    ``o_rich_counts`` in the band and 1 elsewhere; 1σ from the gross counts."""
    rng = np.random.default_rng(seed)
    labels = np.full((60, 60), GREY, np.uint8)
    labels[:, 40:44] = BOUNDARY
    labels[5:10, 5:10] = PORE
    labels[50:58, 50:58] = BRIGHT
    o_true = np.full(labels.shape, 1.0)
    o_true[:, 20:26] = o_rich_counts
    o = rng.poisson(o_true + 10.0) - 10.0
    si = rng.poisson(np.full(labels.shape, 70.0)) - 10.0
    return labels, o, np.sqrt(o_true + 10.0), si


def test_the_o_rich_band_becomes_boundary_and_the_haadf_one_without_o_leaves_it():
    labels, o, sigma, si = _band(25.0)
    prob = np.zeros((5, *labels.shape))
    prob[GREY] = 0.6
    prob[DENDRITE, :, 42:44] = 0.9  # the rule's second choice: dendrite-like there
    out = o_rich_boundaries(labels, o, sigma, si, np.ones(labels.shape, bool), probability=prob)
    assert out.summary["applied"] and out.summary["threshold"]["source"].startswith("auto")
    assert 0.02 < out.summary["threshold"]["value"] < 0.4  # between 1/60 and 25/60
    assert (out.labels[:, 20:26] == BOUNDARY).mean() > 0.93  # measured 0.958
    assert not np.any(out.labels[:, 40:44] == BOUNDARY)
    assert np.all(out.labels[:, 40:42] == GREY) and np.all(out.labels[:, 42:44] == DENDRITE)
    # pores and c-Si are never moved; grey away from the band stays grey
    assert np.all(out.labels[labels == PORE] == PORE)
    assert np.all(out.labels[labels == BRIGHT] == BRIGHT)
    assert (out.labels[:, 30:38] == GREY).mean() > 0.99
    assert out.summary["to_boundary"] == int((out.changed & (out.labels == BOUNDARY)).sum())


def test_without_an_o_rich_mode_the_classes_stay_the_haadf():
    """O at its background everywhere (a pristine lamella): Otsu would split the
    noise; the O-rich share (O above 3σ) is under 1 %, so nothing moves."""
    labels, o, sigma, si = _band(1.0)
    out = o_rich_boundaries(labels, o, sigma, si, np.ones(labels.shape, bool))
    assert not out.summary["applied"] and "no O-rich mode" in out.summary["threshold"]["source"]
    np.testing.assert_array_equal(out.labels, labels)
    assert not out.changed.any()


def test_a_given_cut_and_the_edx_field_of_view():
    labels, o, sigma, si = _band(25.0)
    covered = np.zeros(labels.shape, bool)
    covered[:30] = True  # the EDX map covers the upper half only
    out = o_rich_boundaries(labels, o, sigma, si, covered, threshold=0.2)
    assert out.summary["threshold"] == {
        "value": 0.2,
        "source": "given (--o-rich)",
        "units": "O Kα / Si Kα net counts",
    }
    assert (out.labels[:30, 20:26] == BOUNDARY).mean() > 0.97
    np.testing.assert_array_equal(out.labels[30:], labels[30:])  # outside: the HAADF's
    # a cut above every ratio leaves no O-rich pixel and takes the HAADF's band away
    high = o_rich_boundaries(labels, o, sigma, si, covered, threshold=5.0)
    assert not np.any(high.labels[:30] == BOUNDARY)


def test_the_option_is_checked_on_the_command_line(capsys):
    from anodemap.cli import main

    code = main(["correlate", "x.hspy", "-o", "y", "--features", "f", "--o-rich", "-1"])
    assert code == 2
    assert "argument --o-rich: give auto, off or" in capsys.readouterr().err


def test_a_real_bruker_map_without_an_o_rich_mode_keeps_the_features_regions(tmp_path):
    """The real test_TEM.bcf (HAADF and EDX of one scan, Bruker Esprit; no O-rich mode):
    the O step runs, says why it changes nothing, and the correlate's classes and
    regions are those of anodemap features."""
    import csv
    import json
    from pathlib import Path

    import pytest

    from anodemap.cli import main
    from anodemap.io import load

    path = Path(__file__).resolve().parents[2].parent / "shared/data/real/hyperspy/test_TEM.bcf"
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (see ../shared/data/README.md)")
    f, e, c = tmp_path / "f", tmp_path / "e", tmp_path / "c"
    assert main(["features", str(path), "-o", str(f), "--no-progress", "-q"]) == 0
    assert main(["edx", str(path), "-o", str(e), "--no-progress", "-q"]) == 0
    args = ["correlate", str(path), "-o", str(c), "--features", str(f), "--edx", str(e)]
    assert main([*args, "--no-progress", "-q"]) == 0
    summary = json.loads((c / "summary.json").read_text())
    assert summary["oxide_steps"] == ["edx"] and not summary["o_rich"]["applied"]
    assert "no O-rich mode" in summary["o_rich"]["threshold"]["source"]
    np.testing.assert_array_equal(load(c / "labels.hspy").data, load(f / "labels.hspy").data)

    def rows(folder):
        with open(folder / "regions.csv", encoding="utf-8", newline="") as fh:
            return [(r["region"], r["class"], r["area_px"]) for r in csv.DictReader(fh)]

    assert rows(c) == rows(f) and rows(c)
