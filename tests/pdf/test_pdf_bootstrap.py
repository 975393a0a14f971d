"""Tests of anodemap.pdf.bootstrap on regions of Debye-simulated silicon patterns.

Each region is 40 patterns; every pattern is the Debye intensity of a diamond-Si cluster
(the helper of ``tests/pdf/test_pdf.py``, copied: an independent forward model, not the
transform the code inverts) with its own Poisson noise, 10 expected counts at s = 2.2 1/Å
per pattern. The second model is the same cluster scaled by 1.0128, which moves r1 by
+0.030 Å (2.352 → 2.382 Å).

Measured with the seeds below (20 repetitions, n_boot = 200):

* the 95 % interval of r1, r2, r3 covers the noise-free estimate of the same method in
  18/20, 18/20, 18/20 repetitions (percentile intervals from 40 patterns run slightly
  narrow); it covers the geometric truth 2.352 / 3.840 Å in 0/20: the finite-s_max bias
  (−0.009 / −0.012 Å, ``docs/pdf.md``) is 3-6 × the interval width (0.003 / 0.002 Å). The
  bootstrap sees only what varies between patterns. With the termination bias estimated
  from a model of the peaks, subtracted and its size added as a systematic half-width, the
  interval of the distance covers the truth in 20/20, 20/20.
* r1 of the scaled model vs the reference: told apart in 20/20; two regions of the same model
  not told apart in 19/20.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from anodemap.errors import AnodemapInputError
from anodemap.pdf import (
    bootstrap_pdf,
    compare_regions,
    find_peaks,
    pair_distribution,
    reduced_intensity,
)
from debye_patterns import R1, R2, R3, debye, diamond_cluster

S = np.arange(0.0025, 2.2, 0.0025)  # s = 1/d, 1/Å
S_RANGE = (0.2, 2.0)
R = np.arange(0.0, 8.0, 0.005)  # Å
N_PATTERNS = 40
COUNTS_AT_SMAX = 10.0  # expected counts per pattern at the last s
SCALE = 1.0128  # r1: 2.352 → 2.382 Å
N_REP = 20


def _debye(pos: np.ndarray, s: np.ndarray, sigma_pair: float = 0.05) -> np.ndarray:
    """Debye intensity with a 0.05 Å pair-distance spread by default."""
    return debye(pos, s, sigma_pair)


_diamond_cluster = diamond_cluster


def _region(intensity: np.ndarray, seed: int) -> np.ndarray:
    """N_PATTERNS noisy patterns of one model: Poisson counts, independent per pattern."""
    rng = np.random.default_rng(seed)
    lam = intensity / intensity[-1] * COUNTS_AT_SMAX
    return rng.poisson(lam, size=(N_PATTERNS, lam.size)).astype(np.float64)


def _bootstrap(profiles: np.ndarray, seed: int, **kw: object):
    return bootstrap_pdf(S, profiles, "Si:1", R, s_range=S_RANGE, seed=seed, **kw)


@pytest.fixture(scope="module")
def models() -> tuple[np.ndarray, np.ndarray]:
    pos = _diamond_cluster(12.0)  # 360 atoms
    return _debye(pos, S), _debye(pos * SCALE, S)


@pytest.fixture(scope="module")
def repetitions(models: tuple[np.ndarray, np.ndarray]) -> dict[str, list]:
    """N_REP repeated simulations: a reference region, a second region of the same model
    and a region of the scaled model, each with fresh noise and its own bootstrap seed."""
    ref, scaled = models
    out: dict[str, list] = {"a": [], "same": [], "scaled": []}
    for k in range(N_REP):
        out["a"].append(_bootstrap(_region(ref, 1000 + k), seed=3 * k + 1))
        out["same"].append(_bootstrap(_region(ref, 2000 + k), seed=3 * k + 2))
        out["scaled"].append(_bootstrap(_region(scaled, 3000 + k), seed=3 * k + 3))
    return out


def test_intervals_cover_the_noise_free_estimate(models: tuple, repetitions: dict) -> None:
    """The bootstrap is calibrated: 95 % intervals cover the method's noise-free result."""
    ri = reduced_intensity(S, models[0], "Si:1", s_range=S_RANGE)
    clean = [p.r_angstrom for p in find_peaks(R, pair_distribution(ri.s, ri.phi, R), n=3)]
    covered = np.zeros(3)
    for res in repetitions["a"]:
        assert [p.n_missing for p in res.peaks] == [0, 0, 0] and res.n_failed == 0
        for i, p in enumerate(res.peaks):
            covered[i] += p.r_ci[0] <= clean[i] <= p.r_ci[1]
            assert p.height_ci[0] <= p.height <= p.height_ci[1]
            assert p.fwhm_ci[0] <= p.fwhm_angstrom <= p.fwhm_ci[1]
    assert np.all(covered >= 0.9 * N_REP), covered  # measured 18, 18, 18 of 20


def test_estimates_meet_accuracy_targets(repetitions: dict) -> None:
    """r1, r2, r3 within the issue's 0.02 / 0.03 / 0.03 Å of the truth in every repetition."""
    for res in repetitions["a"]:
        p1, p2, p3 = res.peaks
        assert abs(p1.r_angstrom - R1) <= 0.02
        assert abs(p2.r_angstrom - R2) <= 0.03
        assert abs(p3.r_angstrom - R3) <= 0.03


def test_intervals_cover_the_truth(repetitions: dict) -> None:
    """Issue 17: the 95 % intervals cover the true r1 and r2 in at least 90 % of runs.

    The interval of the distance (:attr:`PeakInterval.ci`) is the bootstrap interval moved
    by the estimated termination bias and widened by its stated systematic half-width
    (:mod:`anodemap.pdf.termination`). The statistical interval of the apparent position
    alone misses the truth: the bias (r1 -0.009, r2 -0.012 Å) is several times its width.
    Measured: 20/20 and 20/20 covered; the statistical interval alone 0/20, 0/20.
    """
    covered = np.zeros(2)
    statistical = np.zeros(2)
    for res in repetitions["a"]:
        p1, p2, _ = res.peaks
        covered += [p1.ci[0] <= R1 <= p1.ci[1], p2.ci[0] <= R2 <= p2.ci[1]]
        statistical += [p1.r_ci[0] <= R1 <= p1.r_ci[1], p2.r_ci[0] <= R2 <= p2.r_ci[1]]
        assert not p1.overlapped and not p2.overlapped
        # the correction moves toward the truth and is no larger than the bias
        assert abs(p1.r_corrected - R1) < abs(p1.r_angstrom - R1)
        assert abs(p2.r_corrected - R2) < abs(p2.r_angstrom - R2)
        assert p1.ci[1] - p1.ci[0] < 0.025  # still an informative interval
    assert np.all(covered >= 0.9 * N_REP), covered
    assert np.all(statistical <= 0.1 * N_REP), statistical


def test_regions_told_apart_by_r1(repetitions: dict) -> None:
    """0.03 Å in r1 is told apart; two regions of one model are not (most repetitions)."""
    apart = same_apart = 0
    for a, same, scaled in zip(
        repetitions["a"], repetitions["same"], repetitions["scaled"], strict=True
    ):
        diff = compare_regions(scaled, a)
        d1 = diff.peaks[0]
        apart += d1.differs
        assert d1.dr_angstrom == pytest.approx(R1 * (SCALE - 1), abs=0.005)
        assert d1.n_used == a.n_boot
        same_apart += compare_regions(same, a).peaks[0].differs
    assert apart == N_REP  # measured 20/20
    assert same_apart <= 0.1 * N_REP  # measured 1/20


def test_same_seed_same_result_and_band(models: tuple) -> None:
    profiles = _region(models[0], 7)
    a, b = _bootstrap(profiles, seed=5), _bootstrap(profiles, seed=5)
    np.testing.assert_array_equal(a.g_boot, b.g_boot)
    np.testing.assert_array_equal(a.band, b.band)
    assert a.peaks == b.peaks
    c = _bootstrap(profiles, seed=6)
    assert not np.array_equal(a.band, c.band)
    np.testing.assert_array_equal(a.g, c.g)  # the estimate does not depend on the seed
    assert np.all(a.band[0] <= a.band[1])
    json.dumps(a.summary())  # JSON-ready


def test_vectorised_resamples_match_the_core(models: tuple) -> None:
    """With identical patterns every resample is the mean: its G equals the core's."""
    profiles = np.repeat(models[0][None], 5, axis=0)
    res = _bootstrap(profiles, seed=0, n_boot=20)
    ri = reduced_intensity(S, models[0], "Si:1", s_range=S_RANGE)
    g = pair_distribution(ri.s, ri.phi, R)
    np.testing.assert_allclose(res.g, g, rtol=0, atol=1e-12 * np.abs(g).max())
    np.testing.assert_allclose(res.g_boot, np.broadcast_to(g, res.g_boot.shape), atol=1e-9)
    for p in res.peaks:
        assert p.r_ci[1] - p.r_ci[0] < 1e-9


def test_input_errors(models: tuple) -> None:
    profiles = _region(models[0], 0)
    with pytest.raises(AnodemapInputError, match="n_patterns"):
        bootstrap_pdf(S, profiles[:, :-1], "Si:1", R)
    with pytest.raises(AnodemapInputError, match="at least 2 patterns"):
        bootstrap_pdf(S, profiles[:1], "Si:1", R)
    with pytest.raises(AnodemapInputError, match="level"):
        bootstrap_pdf(S, profiles, "Si:1", R, level=95)
    a = _bootstrap(profiles, seed=1, n_boot=20)
    with pytest.raises(AnodemapInputError, match="own seed"):
        compare_regions(a, _bootstrap(profiles, seed=1, n_boot=20))
    with pytest.raises(AnodemapInputError, match="r grids"):
        compare_regions(a, bootstrap_pdf(S, profiles, "Si:1", R[:-1], s_range=S_RANGE, seed=2))
