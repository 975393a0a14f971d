"""Kinematic template libraries: orientation sampling, conventions, spots and intensities."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from anodemap.diffraction.crystal import AtomSite, Crystal, electron_wavelength, load_phase
from anodemap.diffraction.templates import (
    TemplateLibrary,
    beam_directions,
    euler_from_matrix,
    euler_to_quaternion,
    generate_templates,
    misorientation_deg,
    orientation_matrix,
    zone_axis_template,
)
from anodemap.errors import AnodemapInputError


@pytest.fixture(scope="module")
def si_lib() -> TemplateLibrary:
    return generate_templates("Si", 300, 0.01, 0.0, 1.5)


@pytest.fixture(scope="module")
def li_lib_sped() -> TemplateLibrary:
    return generate_templates("Li15Si4", 300, 0.01, 0.4, 1.5)


def _random_unit(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _max_gap_deg(
    dirs: np.ndarray, rots: np.ndarray, probes: np.ndarray, inversion: bool = True
) -> float:
    """Largest angle from a probe direction to the sampled set, after symmetry.

    ``rots`` are proper rotations; ``inversion`` adds -1 (Laue group).
    """
    eq = np.einsum("rij,nj->nri", rots, probes)
    if inversion:
        eq = np.concatenate([eq, -eq], axis=1)
    best = np.full(len(probes), -1.0)
    for start in range(0, len(dirs), 500):
        c = np.einsum("nri,mi->nrm", eq, dirs[start : start + 500]).max(axis=(1, 2))
        best = np.maximum(best, c)
    return float(np.degrees(np.arccos(np.clip(best, -1, 1))).max())


def _spots_from_orientation(lib: TemplateLibrary, crystal: Crystal, i: int, euler) -> np.ndarray:
    """Sample-frame (X, Y) of the template's hkl for a given orientation."""
    g_cart = lib.hkl[i][lib.mask[i]].astype(float) @ crystal.reciprocal_matrix
    return (g_cart @ orientation_matrix(np.asarray(euler, dtype=float)))[:, :2]


# ---- orientation conventions -------------------------------------------------------------


def test_euler_matrix_quaternion_round_trip():
    rng = np.random.default_rng(3)
    e = np.column_stack(
        [
            rng.uniform(0, 360, 200),
            np.degrees(np.arccos(rng.uniform(-1, 1, 200))),
            rng.uniform(0, 360, 200),
        ]
    )
    g = orientation_matrix(e)
    np.testing.assert_allclose(
        g @ np.swapaxes(g, 1, 2), np.broadcast_to(np.eye(3), g.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(g), 1.0)
    np.testing.assert_allclose(orientation_matrix(euler_from_matrix(g)), g, atol=1e-9)
    q = euler_to_quaternion(e)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0)
    assert np.all(q[:, 0] >= 0)


def test_conventions_match_orix():
    orix = pytest.importorskip("orix")
    from orix.quaternion import Orientation
    from orix.vector import Vector3d

    assert orix is not None
    rng = np.random.default_rng(4)
    e = np.column_stack(
        [
            rng.uniform(0, 360, 50),
            np.degrees(np.arccos(rng.uniform(-1, 1, 50))),
            rng.uniform(0, 360, 50),
        ]
    )
    o = Orientation.from_euler(np.radians(e))
    np.testing.assert_allclose(euler_to_quaternion(e), o.data, atol=1e-12)
    np.testing.assert_allclose(orientation_matrix(e), o.to_matrix(), atol=1e-12)
    # the beam (sample Z) in crystal coordinates, as orix computes it
    beam = (o * Vector3d.zvector()).data
    np.testing.assert_allclose(orientation_matrix(e)[:, :, 2], beam, atol=1e-12)


@pytest.mark.parametrize("phase", ["Si", "Li15Si4"])
def test_misorientation_matches_orix(phase):
    """Misorientation modulo the Laue class's rotations (432 for both phases) = orix's."""
    pytest.importorskip("orix")
    from orix.quaternion import Orientation
    from orix.quaternion.symmetry import O

    rng = np.random.default_rng(7)
    a = np.column_stack(
        [
            rng.uniform(0, 360, 400),
            np.degrees(np.arccos(rng.uniform(-1, 1, 400))),
            rng.uniform(0, 360, 400),
        ]
    )
    b = a + rng.normal(0.0, 25.0, a.shape)  # near and far pairs
    ours = misorientation_deg(a, b, phase)
    theirs = np.degrees(
        Orientation.from_euler(np.radians(a), O).angle_with(
            Orientation.from_euler(np.radians(b), O)
        )
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    assert ours.max() <= 62.8 + 1e-9  # the largest cubic misorientation
    assert len(load_phase(phase).point_group_rotations()) == 24
    # symmetric equivalents are the same orientation; NaN stays NaN
    g = orientation_matrix(a[:5])
    s = load_phase(phase).point_group_rotations()[7]
    np.testing.assert_allclose(
        misorientation_deg(euler_from_matrix(s @ g), a[:5], phase), 0, atol=1e-6
    )
    assert np.isnan(misorientation_deg([np.nan, 0, 0], [0, 0, 0], phase))


def test_library_beam_directions_match_euler(si_lib):
    g = orientation_matrix(si_lib.euler)
    np.testing.assert_allclose(g[:, :, 2], si_lib.beam_directions, atol=1e-12)
    assert np.all(si_lib.euler[:, 0] == 0.0)  # in-plane rotation is left to the matcher


# ---- fundamental-sector sampling ------------------------------------------------------------


@pytest.mark.parametrize("step", [1.5, 3.0])
def test_cubic_sector_is_the_standard_triangle_and_covers_it(step):
    si = load_phase("Si")
    d = beam_directions(si, step)
    x, y, z = d.T
    assert np.all(z + 1e-9 >= x) and np.all(x + 1e-9 >= y) and np.all(y >= -1e-9)
    for corner in ([0, 0, 1], [1, 0, 1], [1, 1, 1]):
        c = np.asarray(corner, float) / np.linalg.norm(corner)
        assert np.max(d @ c) > 1 - 1e-12  # zone axes [001], [101], [111] are sampled exactly
    # every direction of the sphere lies within step*sqrt(3)/2 of a sample, after symmetry
    gap = _max_gap_deg(d, si.point_group_rotations(), _random_unit(3000, 7))
    assert gap <= step * math.sqrt(3) / 2
    # and the grid is not wastefully dense: about (area of the triangle)/step^2 points
    area = 4 * math.pi / 48
    assert len(d) < 2.5 * area / math.radians(step) ** 2


def test_li15si4_uses_the_same_sector():
    # Laue group m-3m for point group -43m (Friedel's law): the same triangle as Si
    np.testing.assert_allclose(beam_directions("Li15Si4", 2.0), beam_directions("Si", 2.0))


def test_generic_laue_group_sampling_tetragonal():
    rots = []
    for perm in ((0, 1), (1, 0)):
        for sx, sy, sz in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            m[0, perm[0]], m[1, perm[1]], m[2, 2] = sx, sy, sz
            rots.append(m)
    site = (AtomSite("Si1", "Si", (0.1, 0.2, 0.3), 1.0, 0.5),)
    tet = Crystal("tet", (4, 4, 6, 90, 90, 90), np.array(rots), np.zeros((16, 3)), site)
    step = 3.0
    d = beam_directions(tet, step)
    gap = _max_gap_deg(d, tet.point_group_rotations(), _random_unit(3000, 8))
    assert gap <= step * math.sqrt(3) / 2
    # 1/16 of the sphere: about as many points as the area over step^2
    expected = (4 * math.pi / 16) / math.radians(step) ** 2
    assert 0.7 * expected < len(d) < 1.6 * expected
    assert np.max(d @ [0, 0, 1]) > 1 - 1e-12  # the 4-fold axis is included


# ---- spot patterns ---------------------------------------------------------------------------


def test_si_001_zone_axis_pattern():
    lib = zone_axis_template("Si", (0, 0, 1), beam_energy_kv=300, calibration=0.01, s_max=0.8)
    m = lib.mask[0]
    hkl = lib.hkl[0][m]
    assert np.all(hkl[:, 2] == 0)
    families = {tuple(sorted(np.abs(h))) for h in hkl}
    assert (0, 0, 2) not in families  # 200 is forbidden
    assert (0, 2, 2) in families and (0, 0, 4) in families
    first = np.all(np.sort(np.abs(hkl), axis=1) == [0, 2, 2], axis=1)
    assert first.sum() == 4
    r = lib.r[0][m][first]
    np.testing.assert_allclose(r, 1 / 1.92015, rtol=1e-5)  # s = 1/d(220)
    az = np.sort(np.degrees(lib.azimuth[0][m][first]) % 360)
    np.testing.assert_allclose(az, [45, 135, 225, 315], atol=1e-4)  # four-fold
    np.testing.assert_allclose(
        lib.intensities[0][m][first], lib.intensities[0][m][first][0], rtol=1e-6
    )
    # the 220 spots are the strongest
    assert np.all(lib.intensities[0][m][first] >= lib.intensities[0][m].max() * (1 - 1e-6))


def test_si_110_zone_axis_has_111_and_no_002():
    lib = zone_axis_template("Si", (1, 1, 0), s_max=0.8)
    fam = {tuple(sorted(np.abs(h))) for h in lib.hkl[0][lib.mask[0]]}
    assert (1, 1, 1) in fam and (0, 0, 4) in fam and (0, 2, 2) in fam
    assert (0, 0, 2) not in fam


def test_li15si4_templates_obey_i43d(li_lib_sped):
    lib = li_lib_sped
    hkl = np.abs(lib.hkl[lib.mask].astype(int))
    assert np.all(hkl.sum(axis=1) % 2 == 0)  # I centring
    for i in range(3):
        j, k = (x for x in range(3) if x != i)
        axial = (hkl[:, j] == 0) & (hkl[:, k] == 0)
        assert np.all(hkl[axial, i] % 4 == 0)  # h00: h = 4n (d-glide)
        hhl = hkl[:, j] == hkl[:, k]
        assert np.all((2 * hkl[hhl, j] + hkl[hhl, i]) % 4 == 0)  # hhl: 2h + l = 4n
    za = zone_axis_template("Li15Si4", (0, 0, 1), precession_angle_deg=0.4, s_max=0.8)
    h = za.hkl[0][za.mask[0]].astype(int)
    assert np.all(h[:, 2] == 0)
    assert not np.any((np.abs(h[:, 0]) == 2) & (h[:, 1] == 0))  # 200 absent
    assert np.any((np.abs(h[:, 0]) == 4) & (h[:, 1] == 0))  # 400 present
    assert np.any(np.all(np.sort(np.abs(h), axis=1) == [0, 1, 3], axis=1))  # 310 present


def test_spot_geometry_is_consistent_with_orientations(si_lib, li_lib_sped):
    for lib, name in ((si_lib, "Si"), (li_lib_sped, "Li15Si4")):
        crystal = load_phase(name)
        for i in (0, lib.n_templates // 2, lib.n_templates - 1):
            m = lib.mask[i]
            expected = _spots_from_orientation(lib, crystal, i, lib.euler[i])
            np.testing.assert_allclose(lib.spots[i][m], expected, atol=1e-5)
            np.testing.assert_allclose(lib.r[i][m], np.hypot(*expected.T), atol=1e-5)
            np.testing.assert_allclose(
                lib.azimuth[i][m], np.arctan2(expected[:, 1], expected[:, 0]), atol=1e-5
            )
            # rows are sorted strongest first, padding is zero
            inten = lib.intensities[i][m]
            assert np.all(np.diff(inten) <= 1e-6 * inten[0])
            assert np.all(lib.intensities[i][~m] == 0) and np.all(lib.spots[i][~m] == 0)
        assert lib.spots.shape == (lib.n_templates, lib.max_spots, 2)
        assert lib.intensities.shape == lib.mask.shape == lib.r.shape == lib.azimuth.shape
        assert np.all(lib.r[lib.mask] <= lib.s_max + 1e-6)
        assert np.all(lib.mask.sum(axis=1) >= 4)  # every template has spots


def test_in_plane_rotation_is_counter_clockwise(si_lib):
    crystal = load_phase("Si")
    i = 100
    for phi1 in (17.0, 90.0, 250.0):
        rotated = si_lib.rotated_spots(phi1)[i][si_lib.mask[i]]
        expected = _spots_from_orientation(si_lib, crystal, i, si_lib.euler_at(i, phi1))
        np.testing.assert_allclose(rotated, expected, atol=1e-5)


def test_mirrored_templates_are_proper_orientations(si_lib):
    mir = si_lib.mirrored()
    crystal = load_phase("Si")
    g = orientation_matrix(mir.euler)
    np.testing.assert_allclose(np.linalg.det(g), 1.0)
    np.testing.assert_allclose(g[:, :, 2], -si_lib.beam_directions, atol=1e-9)
    for i in (5, 200):
        m = mir.mask[i]
        np.testing.assert_allclose(
            mir.spots[i][m], _spots_from_orientation(mir, crystal, i, mir.euler[i]), atol=1e-5
        )
        np.testing.assert_allclose(mir.spots[i][m][:, 1], -si_lib.spots[i][m][:, 1])
    both = generate_templates("Si", 300, 0.01, 0.0, 3.0, include_mirrored=True)
    assert both.n_templates == 2 * len(beam_directions("Si", 3.0))
    # with the mirrored half, every beam direction is covered by the 24 proper rotations alone
    gap = _max_gap_deg(
        both.beam_directions,
        crystal.point_group_rotations(),
        _random_unit(2000, 9),
        inversion=False,
    )
    assert gap <= 3.0 * math.sqrt(3) / 2
    half = _max_gap_deg(
        si_lib.beam_directions,
        crystal.point_group_rotations(),
        _random_unit(2000, 9),
        inversion=False,
    )
    assert half > 10.0  # the triangle alone does not cover the proper-rotation sector


def test_precession_integrates_more_reflections():
    kw = dict(beam_energy_kv=300, calibration=0.01, s_max=1.5, excitation_error_width=0.002)
    flat = zone_axis_template("Li15Si4", (1, 1, 1), precession_angle_deg=0.0, **kw)
    sped = zone_axis_template("Li15Si4", (1, 1, 1), precession_angle_deg=0.4, **kw)

    def outer_share(lib):
        m = lib.mask[0]
        return lib.intensities[0][m][lib.r[0][m] > 0.8].sum() / lib.intensities[0][m].sum()

    # 0.4 deg precession brings reflections far from the zone axis into the pattern
    assert outer_share(sped) > 3 * outer_share(flat)
    assert sped.mask.sum() > flat.mask.sum()


def test_excitation_error_weight_and_wavelength():
    # a ZOLZ reflection g has s_g = -g^2/(2K): with sigma = 0.01, w(220) = exp(-(s_g/sigma)^2)
    lib = zone_axis_template("Si", (0, 0, 1), beam_energy_kv=300, s_max=0.6, max_spots=4)
    si = load_phase("Si")
    F2 = np.abs(si.structure_factor([[2, 2, 0]], beam_energy_kv=300)[0]) ** 2
    k = 1 / electron_wavelength(300)
    g = 1 / si.d_spacing([2, 2, 0])[0]
    w = math.exp(-(((g**2 / (2 * k)) / 0.01) ** 2))
    np.testing.assert_allclose(lib.intensities[0][lib.mask[0]], F2 * w, rtol=1e-5)
    assert lib.wavelength == pytest.approx(electron_wavelength(300))
    # sinc2 for a slab of thickness t
    t = 30.0
    lib2 = zone_axis_template(
        "Si", (0, 0, 1), s_max=0.6, max_spots=4, shape_function="sinc2", thickness_nm=t
    )
    w2 = np.sinc(10 * t * g**2 / (2 * k)) ** 2
    np.testing.assert_allclose(lib2.intensities[0][lib2.mask[0]], F2 * w2, rtol=1e-5)


def test_s_max_from_detector_and_pixels():
    lib = generate_templates("Si", 300, 0.02, step_deg=5.0, detector_shape=(128, 100))
    assert lib.s_max == pytest.approx(0.02 * 50)
    px = lib.spots_in_pixels((64.0, 50.0))
    m = lib.mask
    np.testing.assert_allclose(px[m], lib.spots[m] / 0.02 + [64.0, 50.0], rtol=1e-6)


def test_library_sizes_for_the_paper_phases(si_lib, li_lib_sped):
    n = len(beam_directions("Si", 1.5))
    assert si_lib.n_templates == li_lib_sped.n_templates == n
    assert 300 < n < 700
    assert li_lib_sped.max_spots <= 150 and si_lib.max_spots < 100
    assert si_lib.laue_group == li_lib_sped.laue_group == "m-3m"
    assert "step_deg" in si_lib.metadata and "Zeilinger" in li_lib_sped.metadata["structure_source"]


def test_to_orix(si_lib):
    pytest.importorskip("orix")
    o = si_lib.to_orix()
    assert o.symmetry.name == "m-3m"
    np.testing.assert_allclose(np.abs(o.data), np.abs(si_lib.quaternions), atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(calibration=-1.0), "calibration"),
        (dict(beam_energy_kv=0.0), "beam_energy_kv"),
        (dict(precession_angle_deg=20.0), "precession_angle_deg"),
        (dict(shape_function="sinc2"), "thickness_nm"),
        (dict(shape_function="box"), "shape_function"),
        (dict(step_deg=0.0), "step_deg"),
        (dict(excitation_error_width=0.0), "excitation_error_width"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(AnodemapInputError, match=match):
        generate_templates("Si", **kwargs)
