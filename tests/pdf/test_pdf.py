"""Tests of anodemap.pdf against Debye scattering from atomistic silicon models.

The patterns are made by the Debye scattering equation from explicit atom positions,
``I(s) = Σ_i Σ_j f_i f_j sin(2π s r_ij)/(2π s r_ij)``, summed over a 0.001 Å histogram of
the pair distances: an independent forward model, not the analytic form that
:func:`anodemap.pdf.pair_distribution` inverts. Truth is geometry: the diamond-Si distances
a√3/4 = 2.352 Å, a/√2 = 3.840 Å and a√11/4 = 4.503 Å (a = 5.431 Å), and for the disordered
model the mean first-neighbour distance computed from its own coordinates.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from anodemap.errors import AnodemapInputError
from anodemap.pdf import (
    electron_scattering_factor,
    find_peaks,
    mean_scattering_factors,
    pair_distribution,
    parse_composition,
    reduced_intensity,
    scattering_elements,
)
from debye_patterns import R1, R2, R3, debye, diamond_cluster

S = np.arange(0.0025, 2.2, 0.0025)  # s = 1/d, 1/Å
S_RANGE = (0.2, 2.0)  # kept s interval, 1/Å (a 300 kV SPED pattern reaches s ≈ 2)
R = np.arange(0.0, 8.0, 0.005)  # r grid, Å


_diamond_cluster = diamond_cluster
_debye = debye


def _counts(intensity: np.ndarray, counts_at_smax: float, seed: int) -> np.ndarray:
    """Poisson counting noise, scaled so the last sample expects ``counts_at_smax``."""
    rng = np.random.default_rng(seed)
    return rng.poisson(intensity / intensity[-1] * counts_at_smax).astype(np.float64)


def _peaks(intensity: np.ndarray, composition: str = "Si:1", **kw: object) -> list:
    ri = reduced_intensity(S, intensity, composition, s_range=S_RANGE, **kw)
    return find_peaks(R, pair_distribution(ri.s, ri.phi, R), n=3)


@pytest.fixture(scope="module")
def crystal() -> tuple[np.ndarray, np.ndarray]:
    pos = _diamond_cluster(12.0)  # 360 atoms
    return pos, _debye(pos, S, sigma_pair=0.05)


# --- scattering factors ------------------------------------------------------------------
def test_data_file_names_its_source_and_elements() -> None:
    text = resources.files("anodemap").joinpath(
        "data", "electron_scattering_factors_lobato2014.json"
    )
    table = json.loads(text.read_text("utf-8"))
    assert "Lobato" in table["source"] and "A70" in table["source"]
    assert {"Li", "O", "Si"} <= set(scattering_elements())
    assert all(len(v["a"]) == len(v["b"]) == 5 for v in table["elements"].values())


@pytest.mark.parametrize("element", ["H", "Li", "C", "O", "F", "Si", "P", "Cu"])
def test_scattering_factor_matches_diffsims(element: str) -> None:
    sim_utils = pytest.importorskip("diffsims.utils.sim_utils")
    from diffsims.utils.lobato_scattering_params import ATOMIC_SCATTERING_PARAMS_LOBATO

    s = np.array([0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0])
    coeffs = np.asarray(ATOMIC_SCATTERING_PARAMS_LOBATO[element])[None]  # (1, 5, 2)
    ref = sim_utils.get_atomic_scattering_factors(s**2, coeffs, "lobato")[:, 0]
    np.testing.assert_allclose(electron_scattering_factor(element, s), ref, rtol=1e-12)


@pytest.mark.parametrize("element", ["Li", "O", "Si"])
def test_scattering_factor_agrees_with_peng_1996(element: str) -> None:
    """Two independent published fits of the same physics agree to a few per cent."""
    from anodemap.diffraction.crystal import electron_scattering_factor as peng

    s = np.linspace(0.0, 2.0, 41)
    lobato = electron_scattering_factor(element, s)
    # measured: at most 2.3 % (O), 2.0 % (Li), 0.5 % (Si)
    np.testing.assert_allclose(lobato, peng(element, s), rtol=0.03)


def test_composition_parsing_and_errors() -> None:
    assert parse_composition({"Si": 2, "Li": 0}) == {"Si": 1.0}
    assert parse_composition("Li:3.75 Si:1") == pytest.approx(
        {"Li": 0.789474, "Si": 0.210526}, rel=1e-5
    )
    with pytest.raises(AnodemapInputError, match="Xx"):
        parse_composition("Xx:1")
    with pytest.raises(AnodemapInputError, match="Element:amount"):
        parse_composition("Si:one")
    f, f2 = mean_scattering_factors("Si:1 Li:1", np.array([0.5]))
    assert f2[0] > f[0] ** 2  # ⟨f²⟩ ≥ ⟨f⟩², equal only for one element


# --- transform on analytic input ---------------------------------------------------------
def test_single_shell_and_gaussian_peak() -> None:
    s = np.linspace(0.0, 2.0, 801)
    phi = np.sin(2 * np.pi * s * 2.352) / (2 * np.pi * 2.352)
    (peak,) = find_peaks(R, pair_distribution(s, phi, R), n=1)  # Lorch damping
    assert peak.r_angstrom == pytest.approx(2.352, abs=2e-3)
    # without damping the termination ripples of a sharp shell pass for peaks
    undamped = find_peaks(R, pair_distribution(s, phi, R, damping=None), n=3)
    assert undamped[0].r_angstrom < 2.0
    gauss = np.exp(-0.5 * ((R - 3.0) / 0.1) ** 2)
    (p,) = find_peaks(R, gauss, n=1)
    assert p.r_angstrom == pytest.approx(3.0, abs=1e-4)
    assert p.height == pytest.approx(1.0, abs=1e-3)  # parabola on a Gaussian top
    assert p.fwhm_angstrom == pytest.approx(2.3548 * 0.1, abs=2e-3)


def test_input_errors() -> None:
    with pytest.raises(AnodemapInputError, match="differ in length"):
        reduced_intensity(S, S[:-1], "Si:1")
    with pytest.raises(AnodemapInputError, match="fit="):
        reduced_intensity(S, S, "Si:1", fit="cubic")  # type: ignore[arg-type]
    with pytest.raises(AnodemapInputError, match="not positive"):
        reduced_intensity(S, -np.ones_like(S), "Si:1", fit="scale")
    with pytest.raises(AnodemapInputError, match="damping"):
        pair_distribution(S, S, R, damping="gauss")  # type: ignore[arg-type]


# --- Debye-simulated silicon -------------------------------------------------------------
def test_diamond_cluster_peaks_with_noise(crystal: tuple[np.ndarray, np.ndarray]) -> None:
    """Measured (seed 0): r1 = 2.343, r2 = 3.828, r3 = 4.516 Å (truth 2.352, 3.840, 4.503)."""
    pos, intensity = crystal
    assert 300 <= len(pos) <= 500
    p1, p2, p3 = _peaks(_counts(intensity, 1e4, seed=0))
    assert abs(p1.r_angstrom - R1) <= 0.02
    assert abs(p2.r_angstrom - R2) <= 0.03
    assert abs(p3.r_angstrom - R3) <= 0.03
    assert 0.2 < p1.fwhm_angstrom < 0.5  # Lorch resolution at s_max = 2 1/Å
    # 4 first and 12 second neighbours: the second shell is the taller one in G(r)
    assert p2.height > p1.height > 0


def test_reduced_intensity_oscillates_about_zero(crystal: tuple) -> None:
    _, intensity = crystal
    ri = reduced_intensity(S, intensity, "Si:1", s_range=S_RANGE)
    high = ri.s >= 1.0
    assert abs(ri.phi[high].mean()) < 0.1 * np.abs(ri.phi[high]).max()
    assert ri.summary()["fit"] == "scale+constant"
    assert ri.summary()["scattering_factors"].startswith("I. Lobato")


def test_constant_background_is_absorbed(crystal: tuple) -> None:
    """An inelastic-like constant under the pattern leaves G(r) unchanged (fit absorbs it)."""
    _, intensity = crystal
    ref = _peaks(intensity)
    shifted = _peaks(intensity + 0.3 * intensity[S > 1.0].mean())
    for a, b in zip(ref, shifted, strict=True):
        assert b.r_angstrom == pytest.approx(a.r_angstrom, abs=1e-3)
        assert b.height == pytest.approx(a.height, rel=1e-3)


def test_composition_moves_heights_not_positions(crystal: tuple) -> None:
    """Analysing the Si pattern as Li3.75Si rescales G(r) but moves r1, r2 by < 0.005 Å."""
    _, intensity = crystal
    si = _peaks(intensity, "Si:1")
    lisi = _peaks(intensity, "Si:1 Li:3.75")
    for a, b in zip(si[:2], lisi[:2], strict=True):
        assert abs(a.r_angstrom - b.r_angstrom) < 0.005
        assert b.height > 1.2 * a.height


def test_disordered_silicon_first_peak() -> None:
    """Diamond Si with Gaussian displacements (σ = 0.1 Å per coordinate), Poisson noise.

    Measured (seed 1): mean first-neighbour distance 2.355 Å (bond spread 0.13 Å), first
    peak of G(r) at 2.334 Å: G weights each pair by 1/r and the displaced bond lengths are
    skewed to long bonds, so the peak sits about 0.02 Å below the mean.
    """
    pos0 = _diamond_cluster(12.0)
    bonds = pdist(pos0) < 0.5 * (R1 + R2)
    rng = np.random.default_rng(1)
    pos = pos0 + rng.normal(0.0, 0.1, pos0.shape)
    true_r1 = pdist(pos)[bonds].mean()
    p1, p2, _ = _peaks(_counts(_debye(pos, S), 1e4, seed=2))
    assert abs(p1.r_angstrom - true_r1) <= 0.05
    assert abs(p2.r_angstrom - R2) <= 0.05
