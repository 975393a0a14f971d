"""First-shell coordination number from G(r) and a density (``anodemap.pdf.coordination``).

Validated against neighbours counted from the atom positions between the same bounds:

* the simulator's periodic a-Si model (1000 atoms, ``amorphous_model(0.0)``: bulk, its
  Debye intensity with the uniform-density term), 40 noisy patterns: N₁ −1 to +4 % off the
  count for s_max 1.3-2.5 1/Å;
* the 360-atom diamond-Si cluster of ``tests/debye_patterns.py`` (surface atoms: a mean
  coordination of 3.45 within 2.9 Å), the density of c-Si: N₁ 8-34 % over the count,
  because a cluster's G(r) has not the −4πrρ₀ baseline of bulk.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from anodemap.pdf import bootstrap_pdf
from anodemap.pdf.coordination import ATOMIC_WEIGHTS, coordination_number, number_density
from anodemap.synth.diffraction import amorphous_model
from debye_patterns import A_SI, debye, diamond_cluster

_AVOGADRO = 6.02214076e23
S = np.arange(0.0025, 2.6, 0.0025)
R = np.arange(0.0, 8.0, 0.005)


def _noisy(intensity: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Patterns with Poisson noise, 1e4 expected counts at the last s."""
    scale = 1e4 / intensity[-1]
    rng = np.random.default_rng(seed)
    return rng.poisson(scale * intensity, size=(n, intensity.size)).astype(float)


def _counted(pos: np.ndarray, lo: float, hi: float, box: float | None = None) -> float:
    """Mean number of neighbours at distances in (lo, hi] from every atom (periodic when
    ``box`` is given); pair counts of both orders, so the self pairs cancel."""
    tree = cKDTree(pos, boxsize=box)
    both = tree.count_neighbors(tree, [lo, hi])
    return float(both[1] - both[0]) / len(pos)


@pytest.mark.parametrize("s_max", [1.3, 2.0])
def test_bulk_amorphous_silicon(s_max: float) -> None:
    m = amorphous_model(0.0)
    profiles = _noisy(m.intensity(S), 40, seed=int(10 * s_max))
    res = bootstrap_pdf(S, profiles, "Si:1", R, s_range=(0.2, s_max), n_boot=100, seed=3)
    density = m.density * ATOMIC_WEIGHTS["Si"] / _AVOGADRO * 1e24  # g/cm³ of the model
    n1 = coordination_number(res, profiles, S, density)
    assert n1.number_density == pytest.approx(m.density, rel=1e-3)  # weights: 28.085 vs Si
    lo, hi = n1.bounds_angstrom
    assert 0.99 <= lo < 1.9 and 2.7 < hi < 3.1  # below the shell; its first minimum
    truth = _counted(m.positions, lo, hi, m.box)
    assert 3.5 < truth < 4.1
    # measured +3.1 % (s_max 1.3), +3.3 % (2.0): the low-s extrapolation, N
    assert 0.0 < n1.value / truth - 1.0 < 0.06
    assert n1.ci[0] <= n1.value <= n1.ci[1] and n1.ci[1] - n1.ci[0] < 0.2
    assert n1.n_resamples == 100
    # dominated by the density term: 10 % more density, 0.37 (s_max 2.0) to 0.48 (1.3)
    # more neighbours (the bounds of the shell narrow with s_max)
    assert 0.3 < 0.1 * n1.per_density < 0.55


def test_diamond_cluster_with_its_surface() -> None:
    pos = diamond_cluster(12.0)
    profiles = _noisy(debye(pos, S, 0.05), 40, seed=5)
    res = bootstrap_pdf(S, profiles, "Si:1", R, s_range=(0.2, 2.0), n_boot=100, seed=4)
    density = 8 * ATOMIC_WEIGHTS["Si"] / _AVOGADRO / (A_SI * 1e-8) ** 3  # c-Si, g/cm³
    assert density == pytest.approx(2.329, abs=0.002)
    n1 = coordination_number(res, profiles, S, density)
    lo, hi = n1.bounds_angstrom
    truth = _counted(pos, lo, hi)
    assert truth == pytest.approx(3.45, abs=0.05)  # 4 inside, fewer at the surface
    assert 0.0 < n1.value / truth - 1.0 < 0.25  # measured +19 % at s_max 2.0


def test_without_the_low_s_extrapolation_it_would_be_far_off() -> None:
    """Why φ is continued below s_min: without it N₁ is 25-40 % high (measured)."""
    from anodemap.pdf import pair_distribution

    m = amorphous_model(0.0)
    profiles = _noisy(m.intensity(S), 20, seed=1)
    res = bootstrap_pdf(S, profiles, "Si:1", R, s_range=(0.2, 2.0), n_boot=20, seed=1)
    n1 = coordination_number(res, profiles, S, 2.28)
    lo, hi = n1.bounds_angstrom
    g = pair_distribution(res.reduced.s, res.reduced.phi, R, damping="lorch")
    sl = (R >= lo) & (R <= hi)
    rho = number_density("Si:1", 2.28)
    plain = np.trapezoid(R[sl] * g[sl] + 4 * np.pi * R[sl] ** 2 * rho, R[sl])
    truth = _counted(m.positions, lo, hi, m.box)
    assert plain / truth - 1.0 > 0.15 > n1.value / truth - 1.0


def test_bad_density_is_refused() -> None:
    from anodemap.errors import AnodemapInputError

    with pytest.raises(AnodemapInputError, match="--density"):
        number_density("Si:1", -1.0)


def test_g_of_r_of_bulk_amorphous_silicon() -> None:
    """g(r) from the density (G continued below s_min): against the model's own g(r)
    from its pair histogram, through s_max 2.0 1/Å. Measured: below the first shell
    (1.0-1.6 Å, where the network has no pair) mean |g| 0.08, at most 0.18 (termination
    ripples), the first peak 2.330 Å against the model histogram's 2.325, and g at 6-8 Å
    1.003 (1)."""
    from anodemap.pdf.coordination import pair_distribution_g

    m = amorphous_model(0.0)
    profiles = _noisy(m.intensity(S), 40, seed=7)
    res = bootstrap_pdf(S, profiles, "Si:1", R, s_range=(0.2, 2.0), n_boot=50, seed=3)
    density = m.density * ATOMIC_WEIGHTS["Si"] / _AVOGADRO * 1e24
    g = pair_distribution_g(res, density)
    assert np.mean(np.abs(g[(R >= 1.0) & (R <= 1.6)])) <= 0.15
    far = (R >= 6.0) & (R <= 8.0)
    assert abs(np.nanmean(g[far]) - 1.0) < 0.05
    # the model's g(r): its Si-Si pair histogram per shell volume and density
    hist = sum(m.pair_histograms.values())
    dr = float(m.r[1] - m.r[0])
    model_g = hist / (4.0 * np.pi * m.r**2 * dr * m.density)
    first = (R > 1.9) & (R < 2.8)
    near = (m.r > 1.9) & (m.r < 2.8)
    assert abs(R[first][np.argmax(g[first])] - m.r[near][np.argmax(model_g[near])]) < 0.03
