"""Linear unmixing of coarse map pixels (anodemap.correlate.unmix) against a phantom
whose class means are known by construction: thin threads seen by a survey of fine
pixels and a map of coarser, rotated ones that sample one point per pixel.

The tolerances sit above what was measured on these phantoms (in each docstring).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from anodemap.correlate.statistics import Measured
from anodemap.correlate.unmix import class_shares, unmix, unmixed_rows
from anodemap.registration import Transform

_CLASSES = (0, 1, 2, 3)
_MEANS = np.array([0.0, 0.5, 1.8, 3.6])  # pore (no value), bright, grey, threads


def _phantom(seed: int) -> np.ndarray:
    """Classes on a 1-unit grid: grey with bright discs, threads 1-3 units wide, pores."""
    rng = np.random.default_rng(seed)
    n = 400
    lab = np.full((n, n), 2, np.uint8)
    y, x = np.indices((n, n))
    for _ in range(12):
        cy, cx, r = rng.uniform(0, n, 2).tolist() + [rng.uniform(8, 20)]
        lab[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = 1
    for _ in range(40):
        cy, cx = rng.uniform(0, n, 2)
        theta = rng.uniform(0, math.pi)
        width = rng.uniform(1.0, 3.0)
        d = np.abs((y - cy) * math.cos(theta) - (x - cx) * math.sin(theta))
        along = np.abs((y - cy) * math.sin(theta) + (x - cx) * math.cos(theta))
        lab[(d < width / 2) & (along < 60)] = 3
    for _ in range(6):
        cy, cx, r = rng.uniform(0, n, 2).tolist() + [rng.uniform(4, 10)]
        lab[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = 0
    return lab


def _sample(lab: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The phantom pixel each point (..., 2) lies in (a fine probe)."""
    ij = np.clip(np.floor(points).astype(int), 0, lab.shape[0] - 1)
    return lab[ij[..., 0], ij[..., 1]]


def _scene(seed: int):
    """Survey of 1.5-unit pixels, map of 3-unit pixels rotated by 2°: the survey's
    classes, the map's values (its sample point's class mean plus a within-class
    scatter), its pixels' true classes and the map pixel → survey pixel transform."""
    rng = np.random.default_rng(seed)
    lab = _phantom(seed)
    survey_px, map_px = 1.5, 3.0
    ns, nm = 250, 110
    survey_offset = np.array([6.3, 5.8])
    survey = _sample(lab, np.stack(np.indices((ns, ns)), -1) * survey_px + survey_offset)
    th = math.radians(2.0)
    rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]]) * map_px
    map_offset = np.array([30.7, 29.2])
    pts = np.stack(np.indices((nm, nm)), -1) @ rot.T + map_offset
    truth = _sample(lab, pts)
    values = _MEANS[truth] + rng.normal(0, 0.3, truth.shape)
    valid = truth != 0  # the map has no value in pores
    to_survey = Transform(rot / survey_px, (map_offset - survey_offset) / survey_px)
    return survey, values, valid, truth, to_survey


@pytest.mark.parametrize("seed", [0, 1])
def test_unmixing_recovers_the_class_means_the_pixel_majority_misses(seed):
    """Threads 1-3 units wide in 3-unit map pixels: the class of each map pixel's centre
    in the survey (the pixel-majority statistics) puts grey pixels in the thread class;
    unmixing the point shares recovers every class mean within the issue's 0.1
    (measured, seeds 0/1/2/3: threads +0.08/-0.01/+0.00/+0.02 unmixed, -0.27/-0.41/
    -0.36/-0.39 by majority; bright, grey within 0.015). Seed 0's +0.08 is five of the
    fit's 1σ: the shares are estimated probabilities, and threads as thin as a survey
    pixel make them a little low where the share is high (0.75 against 0.81)."""
    survey, values, valid, truth, to_survey = _scene(seed)
    shares, known = class_shares(survey, _CLASSES, to_survey, values.shape)
    assert known.all() and np.allclose(shares.sum(-1), 1.0)
    u = unmix(values, valid, shares, known=known)
    assert not u.estimable[0] and np.isnan(u.mean[0])  # pores: the map flags them
    for c, bound in ((1, 0.05), (2, 0.05), (3, 0.1)):
        assert u.mean[c] == pytest.approx(_MEANS[c], abs=bound), (c, u.mean[c])
    # the majority: the class of the survey pixel nearest each map pixel's centre
    centre = np.rint(to_survey.apply(np.stack(np.indices(values.shape), -1))).astype(int)
    majority = survey[centre[..., 0], centre[..., 1]]
    thread = valid & (majority == 3)
    assert values[thread].mean() - _MEANS[3] < -0.2
    assert abs(u.mean[3] - _MEANS[3]) < abs(values[thread].mean() - _MEANS[3]) / 3


def test_the_point_share_is_the_class_probability_at_the_sample_point():
    """Calibration: among map pixels whose thread share lies in a bin, the share of
    pixels truly on a thread is the bin's share, within 0.1 (measured, seeds 0-3:
    within 0.06)."""
    survey, _, _, truth, to_survey = _scene(0)
    shares, _ = class_shares(survey, _CLASSES, to_survey, truth.shape)
    s = shares[..., 3].ravel()
    on = (truth == 3).ravel()
    for lo, hi in ((0.1, 0.4), (0.4, 0.6), (0.6, 0.9)):
        inside = (s >= lo) & (s < hi)
        assert inside.sum() > 50
        assert on[inside].mean() == pytest.approx(s[inside].mean(), abs=0.1)


def test_the_cell_footprint_counts_the_survey_pixels_in_each_cell():
    lab = np.zeros((6, 6), int)
    lab[:, 3] = 1  # one column of class 1
    half = Transform(np.eye(2) / 3.0, np.zeros(2))  # survey pixel -> cell of 3 x 3
    shares, known = class_shares(lab, (0, 1), half.inverse(), (2, 2), footprint="cell")
    # survey columns 0-1 fall in cell 0 (rint(1/3 * 1) = 0), 2-4 in cell 1, 5 in cell 2
    assert known.all()
    assert shares[0, 0].tolist() == [1.0, 0.0]
    assert shares[0, 1, 1] == pytest.approx(1 / 3)


def test_too_little_share_is_not_estimable_and_says_why():
    rng = np.random.default_rng(3)
    shares = rng.dirichlet((4.0, 4.0, 0.01), size=(30, 30))
    values = shares @ np.array([1.0, 2.0, 1.5])
    m = Measured("li_si", "", values, np.ones(values.shape, bool))
    rows = unmixed_rows(m, shares, np.ones(values.shape, bool), ["a", "b", "c"], [1.0] * 3)
    by = {r["group"]: r for r in rows}
    # its pixels' other classes renormalised: a share of 1 % moves them by at most 0.005
    assert by["a"]["value"] == pytest.approx(1.0, abs=0.01)
    assert by["b"]["value"] == pytest.approx(2.0, abs=0.01)
    assert by["c"]["effective_pixels"] < 20
    assert math.isnan(by["c"]["value"]) and "not estimable" in by["c"]["note"]
    assert by["a"]["quantity"] == "li_si_unmixed" and by["a"]["note"] == ""


def test_weighting_by_a_sigma_that_grows_with_the_value_biases_the_mean():
    """Why the fit is unweighted by default: where the map's 1σ rises with the value
    within a class (the EELS Li/Si), 1/σ² weights pull the class mean low."""
    rng = np.random.default_rng(4)
    shares = np.zeros((40, 40, 1))
    shares[..., 0] = 1.0
    values = rng.uniform(2.0, 4.0, (40, 40))
    sigma = 0.05 * values**2
    valid = np.ones(values.shape, bool)
    plain = unmix(values, valid, shares, sigma=sigma, min_pixels=5)
    weighted = unmix(values, valid, shares, sigma=sigma, weighted=True, min_pixels=5)
    assert plain.mean[0] == pytest.approx(values.mean(), rel=1e-9)
    assert weighted.mean[0] < plain.mean[0] - 0.2
    # the map's own 1σ carried through the fit: √(Σσ²)/n for one pure class
    assert plain.map_sigma[0] == pytest.approx(np.sqrt((sigma**2).sum()) / sigma.size)
