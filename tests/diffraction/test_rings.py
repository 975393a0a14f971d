"""Ring geometry (anodemap.diffraction.rings) on patterns from Debye scattering.

The patterns are made by the Debye equation from atom positions (tests/debye_patterns.py),
an independent forward model, and put on a detector with a known distortion: an ellipse
of axis ratio 1.02 (the issue's 2 %), a centre off the pixel grid and a camera length
3 % off the calibration. The tests check that the distortion is measured and that the
corrected profile gives the diamond-Si distances.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from anodemap.diffraction.crystal import electron_scattering_factor
from anodemap.diffraction.rings import check_s_scale, corrected_profile, measure_ellipse
from anodemap.pdf import find_peaks, pair_distribution, reduced_intensity
from debye_patterns import R1, R2, debye, diamond_cluster

S_FINE = np.arange(0.0, 3.0, 0.001)
CENTRE = (129.3, 126.6)


@pytest.fixture(scope="module")
def si_intensity() -> np.ndarray:
    return debye(diamond_cluster(20.0), S_FINE, sigma_pair=0.05)


def detector(
    intensity: np.ndarray,
    *,
    scale: float,
    ratio: float = 1.02,
    angle_deg: float = 30.0,
    camera: float = 1.0,
    n: int = 256,
    seed: int = 0,
) -> np.ndarray:
    """Poisson counts on an n x n detector of nominal calibration ``scale`` (1/Å per px):
    a ring of true s appears as an ellipse of axis ratio ``ratio`` (major axis at
    ``angle_deg``), scaled by 1/``camera`` (the true s per pixel is ``camera`` x
    ``scale``)."""
    yy, xx = np.mgrid[:n, :n].astype(float)
    dy, dx = yy - CENTRE[0], xx - CENTRE[1]
    t = math.radians(angle_deg)
    u = dx * math.cos(t) + dy * math.sin(t)
    v = -dx * math.sin(t) + dy * math.cos(t)
    radius = np.hypot(u / math.sqrt(ratio), v * math.sqrt(ratio))  # area-preserving
    counts = np.interp(radius * scale * camera, S_FINE, intensity)
    counts *= 2000.0 / np.interp(1.0, S_FINE, intensity)  # 2000 counts per pixel at s = 1
    return np.random.default_rng(seed).poisson(counts).astype(float)


@pytest.mark.parametrize(("ratio", "angle"), [(1.02, 30.0), (1.02, -65.0), (1.0, 0.0)])
def test_ellipse_and_centre_are_measured(si_intensity, ratio, angle):
    pattern = detector(si_intensity, scale=0.0105, ratio=ratio, angle_deg=angle)
    e = measure_ellipse(pattern, (128.0, 128.0), window_px=(22, 40))  # around the 111 ring
    assert e.centre == pytest.approx(CENTRE, abs=0.05)  # from 1.3 and 1.4 px off
    assert e.axis_ratio == pytest.approx(ratio, abs=0.002)
    if ratio > 1:
        assert math.degrees(e.angle_rad) == pytest.approx(angle, abs=2.0)
    assert e.n_sectors >= 80


@pytest.mark.parametrize("camera", [0.97, 1.0, 1.03])
def test_s_scale_is_checked_against_the_si_reflections(si_intensity, camera):
    pattern = detector(si_intensity, scale=0.0105, camera=camera)
    e = measure_ellipse(pattern, (128.0, 128.0), window_px=(20, 42))
    s, i = corrected_profile(pattern, 0.0105, ellipse=e)
    check = check_s_scale(s, i, "Si")
    assert check is not None
    # measured: 0.9700, 1.0004, 1.0306 (111, 220, 311, 422 found)
    assert check.factor == pytest.approx(camera, abs=0.002)
    assert {tuple(r["hkl"]) for r in check.reflections} >= {(1, 1, 1), (0, 2, 2), (1, 1, 3)}
    assert check.summary()["camera_length_error_percent"] == pytest.approx(
        (1 / check.factor - 1) * 100
    )


def test_no_crystalline_rings_no_scale():
    # the incoherent scattering alone (no interference): nothing to check the scale on
    s = np.arange(0.0, 1.4, 0.0105)
    assert check_s_scale(s, electron_scattering_factor("Si", s) ** 2 + 1.0, "Si") is None


def _first_peaks(s: np.ndarray, i: np.ndarray) -> list[float]:
    ri = reduced_intensity(s, i, "Si:1", s_range=(0.25, 1.9))
    r = np.arange(0.0, 8.0, 0.005)
    return [p.r_angstrom for p in find_peaks(r, pair_distribution(ri.s, ri.phi, r), n=2)]


def test_corrected_profile_gives_the_si_distances(si_intensity):
    # 3 % camera-length error and a 2 % ellipse: without correction r1 and r2 come out
    # 2-3 % long; with the measured ellipse and s-scale within 0.02 and 0.03 Å (r1 2.352,
    # r2 3.840 Å; measured 2.341, 3.826, the termination bias of docs/pdf.md)
    scale = 0.0155  # s up to about 1.95 1/Å at the detector's edge
    pattern = detector(si_intensity, scale=scale, camera=1.03, seed=3)
    s0, i0 = corrected_profile(pattern, scale, centre=(128.0, 128.0))
    raw = _first_peaks(s0, i0)
    assert raw[0] > R1 + 0.03 and raw[1] > R2 + 0.06  # measured 2.401, 3.934
    e = measure_ellipse(pattern, (128.0, 128.0), window_px=(14, 28))
    s1, i1 = corrected_profile(pattern, scale, ellipse=e)
    check = check_s_scale(s1, i1, "Si")
    assert check is not None and check.factor == pytest.approx(1.03, abs=0.003)
    s2, i2 = corrected_profile(pattern, scale, ellipse=e, s_scale=check.factor)
    r1, r2 = _first_peaks(s2, i2)
    assert r1 == pytest.approx(R1, abs=0.02)
    assert r2 == pytest.approx(R2, abs=0.03)


def test_azimuthal_average_undoes_the_ellipse_like_corrected_profile(si_intensity):
    # the per-pattern route (anodemap.diffraction.averaging, used by anodemap pdf) and the
    # one-pattern route give the same profile with the ellipse undone
    from anodemap.diffraction.averaging import azimuthal_average

    pattern = detector(si_intensity, scale=0.0105)
    e = measure_ellipse(pattern, (128.0, 128.0), window_px=(22, 40))
    s1, i1 = corrected_profile(pattern, 0.0105, ellipse=e)
    prof = azimuthal_average(pattern, calibration=0.0105, center=e.centre, ellipse=e)
    n = min(s1.size, prof.s.size)
    np.testing.assert_allclose(prof.s[:n], s1[:n], rtol=1e-12)
    np.testing.assert_allclose(prof.intensity[2:n], i1[2:n], rtol=1e-9)
    plain = azimuthal_average(pattern, calibration=0.0105, center=e.centre)
    # the 422 ring (s = 0.902) is sharper with the ellipse undone (the smear grows with s)
    ring = (prof.s > 0.87) & (prof.s < 0.93)
    sharp, smeared = prof.intensity[ring].max(), plain.intensity[: prof.s.size][ring].max()
    assert sharp > 1.05 * smeared, sharp / smeared
