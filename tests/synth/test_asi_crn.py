"""The packaged amorphous-Si network against published a-Si numbers.

Every number below is measured here on the packaged positions (distances, a Debye sum),
independently of the statistics the builder stored, and held against published values:

* first pair-distribution peak 2.35 Å and second 3.84 Å, bond-angle spread of the
  annealed material about 9.6° (K. Laaziri et al., Phys. Rev. Lett. 82 (1999) 3460 and
  Phys. Rev. B 60 (1999) 13520); a continuous random network is four-fold coordinated by
  construction (Wooten, Winer and Weaire, Phys. Rev. Lett. 54 (1985) 1392), measured a-Si
  3.88 (annealed, Laaziri et al.);
* density 1.8 % below c-Si's 2.329 g/cm³ (J. S. Custer et al., Appl. Phys. Lett. 64
  (1994) 437), i.e. 2.29 g/cm³;
* first sharp diffraction peak at Q ≈ 2.0 1/Å, s = Q/2π ≈ 0.32 1/Å (Laaziri et al. 1999).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from anodemap.errors import AnodemapIOError
from anodemap.synth import crn as crn_module
from anodemap.synth.crn import load_asi_crn

TETRAHEDRAL_DEG = math.degrees(math.acos(-1.0 / 3.0))
# Si molar mass 28.0855 g/mol, N_A = 6.02214076e23 /mol (exact): atoms/Å³ to g/cm³
G_CM3_PER_ATOM_A3 = 28.0855 / 0.602214076


def _pair_distances(pos: np.ndarray, box: float, rmax: float) -> tuple[np.ndarray, np.ndarray]:
    pairs = cKDTree(pos, boxsize=box).query_pairs(rmax, output_type="ndarray")
    v = pos[pairs[:, 1]] - pos[pairs[:, 0]]
    v -= box * np.round(v / box)
    return pairs, np.linalg.norm(v, axis=1)


def _gr(pos: np.ndarray, box: float, dr: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """g(r) up to half the box, smoothed with a 0.03 Å Gaussian."""
    _, d = _pair_distances(pos, box, 0.5 * box)
    edges = np.arange(0.0, 0.5 * box, dr)
    r = 0.5 * (edges[1:] + edges[:-1])
    h = 2.0 * np.histogram(d, edges)[0] / len(pos)
    kern = np.exp(-0.5 * (np.arange(-10, 11) * dr / 0.03) ** 2)
    h = np.convolve(h, kern / kern.sum(), mode="same")
    rho = len(pos) / box**3
    return r, h / (rho * 4 * np.pi * r**2 * dr)


def _structure_factor(pos: np.ndarray, box: float, s: np.ndarray) -> np.ndarray:
    """S(s) by the Debye sum over all pairs closer than half the box (Lorch window), minus
    the uniform-density term over the same sphere."""
    rmax = 0.5 * box
    _, d = _pair_distances(pos, box, rmax)
    n = len(pos)
    w = np.sinc(d / rmax)
    out = np.empty_like(s)
    r = np.linspace(0.0, rmax, 4001)[1:]
    for k, sk in enumerate(s):
        pair_term = 2.0 * np.sum(np.sinc(2 * sk * d) * w) / n
        shell = 4 * np.pi * r**2 * np.sinc(2 * sk * r) * np.sinc(r / rmax)
        uniform = n / box**3 * np.trapezoid(shell, r)
        out[k] = 1.0 + pair_term - uniform
    return out


def _bragg(pos: np.ndarray, box: float, hkl: np.ndarray, n_cells: int = 5) -> np.ndarray:
    """|Σ exp(2πi g·r)|²/N at the reciprocal-lattice vectors hkl of the diamond start
    (n_cells conventional cells per box edge)."""
    g = np.asarray(hkl, dtype=float) * n_cells / box
    return np.abs(np.exp(2j * np.pi * pos @ g.T).sum(axis=0)) ** 2 / len(pos)


G111 = np.array([[1, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1]])


@pytest.fixture(scope="module")
def crn():
    return load_asi_crn()


def test_loader_gives_a_fourfold_periodic_network(crn):
    n = len(crn.positions)
    assert n == 1000
    assert crn.box == pytest.approx(27.32, abs=0.01)
    assert np.all((crn.positions >= 0) & (crn.positions < crn.box))
    assert np.all(np.bincount(crn.bonds.ravel(), minlength=n) == 4)
    assert np.all(crn.bonds[:, 0] < crn.bonds[:, 1])
    assert len(np.unique(crn.bonds, axis=0)) == len(crn.bonds)
    assert not crn.positions.flags.writeable
    assert "not a measured structure" in crn.metadata["note"]
    assert load_asi_crn() is crn  # read once


def test_loader_error_names_the_file(monkeypatch):
    monkeypatch.setattr(crn_module, "DATA_FILE", "no_such_network.json")
    with pytest.raises(AnodemapIOError, match="no_such_network.json.*reinstall"):
        load_asi_crn.__wrapped__()


def test_bond_lengths_and_angles(crn):
    i, j = crn.bonds.T
    v = crn.positions[j] - crn.positions[i]
    v -= crn.box * np.round(v / crn.box)
    length = np.linalg.norm(v, axis=1)
    # a-Si bond 2.35 Å (Laaziri et al. 1999); tolerance 0.02 Å
    assert length.mean() == pytest.approx(2.35, abs=0.02)
    assert length.std() < 0.1
    # bond angles at every atom, from its four bonds
    n = len(crn.positions)
    vec = np.zeros((n, 4, 3))
    fill = np.zeros(n, dtype=int)
    for a, b, d in zip(i, j, v, strict=True):
        vec[a, fill[a]] = d
        vec[b, fill[b]] = -d
        fill[a] += 1
        fill[b] += 1
    u = vec / np.linalg.norm(vec, axis=2, keepdims=True)
    iu, ju = np.triu_indices(4, 1)
    ang = np.degrees(np.arccos(np.clip(np.sum(u[:, iu] * u[:, ju], axis=2), -1, 1)))
    assert ang.mean() == pytest.approx(TETRAHEDRAL_DEG, abs=1.0)
    rms = np.sqrt(np.mean((ang - TETRAHEDRAL_DEG) ** 2))
    # measured spread about 9.6° (annealed) to 10.5° (as implanted), Laaziri et al.;
    # CRN models 9-11°; tolerance: 8.5-11.5°
    assert 8.5 < rms < 11.5


def test_coordination_from_distances(crn):
    n = len(crn.positions)
    pairs, d = _pair_distances(crn.positions, crn.box, 2.8)  # 2.8 Å: first minimum of g(r)
    coordination = np.bincount(pairs.ravel(), minlength=n)
    # a continuous random network: every atom four-fold (measured a-Si: 3.88)
    assert np.mean(coordination == 4) > 0.98
    assert coordination.mean() == pytest.approx(4.0, abs=0.05)
    # and those neighbours are the stored bonds
    near = {tuple(p) for p in np.sort(pairs, axis=1)}
    assert len(near & {tuple(b) for b in crn.bonds}) > 0.98 * len(crn.bonds)


def test_pair_distribution_peaks(crn):
    r, g = _gr(crn.positions, crn.box)
    first = (r > 2.0) & (r < 2.8)
    second = (r > 3.2) & (r < 4.4)
    # Laaziri et al. 1999: 2.35 Å and 3.84 Å; tolerances 0.02 and 0.05 Å
    assert r[first][np.argmax(g[first])] == pytest.approx(2.35, abs=0.02)
    assert r[second][np.argmax(g[second])] == pytest.approx(3.84, abs=0.05)
    # nothing between the shells but the tails: g(2.9 Å) well below its peaks
    assert g[np.argmin(np.abs(r - 2.9))] < 0.1 * g[first].max()


def test_density(crn):
    mass_density = crn.density * G_CM3_PER_ATOM_A3
    # c-Si 2.329 g/cm³ less 1.8 % (Custer et al. 1994): 2.287; published a-Si 2.28-2.33
    assert 2.28 < mass_density < 2.33


def test_first_sharp_diffraction_peak(crn):
    s = np.arange(0.2, 0.45, 0.0025)  # the first ring of the simulator's s range (1/Å)
    sq = _structure_factor(crn.positions, crn.box, s)
    s_peak = s[np.argmax(sq)]
    # measured Q ≈ 2.0 1/Å, s ≈ 0.32 1/Å (Laaziri et al. 1999); tolerance ±0.015 1/Å
    assert s_peak == pytest.approx(0.32, abs=0.015)
    # a peak, not a shoulder: S falls by more than 0.2 beyond it, before the second peak
    assert sq.max() - sq[(s > 0.36) & (s < 0.45)].min() > 0.2


def test_no_bragg_peak_left(crn):
    s111 = _bragg(crn.positions, crn.box, G111)
    g220 = [[2, 2, 0], [2, -2, 0], [2, 0, 2], [2, 0, -2], [0, 2, 2], [0, 2, -2]]
    s220 = _bragg(crn.positions, crn.box, g220)
    # the diamond start has S = N/2 = 500 at {111} and N = 1000 at {220}; an amorphous
    # network of order 1 (a random phase sum is exponentially distributed around S(s))
    assert s111.max() < 10.0
    assert s220.max() < 10.0
