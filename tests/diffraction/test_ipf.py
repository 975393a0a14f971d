"""IPF colours and the orix CrystalMap export, checked against orix on the same orientations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anodemap.diffraction.ipf import (
    ipf_colours,
    ipf_key_image,
    reduce_to_cubic_sector,
    sample_direction_in_crystal,
)
from anodemap.diffraction.output import to_crystal_map, write_diffraction_results
from anodemap.diffraction.pipeline import DiffractionParameters, DiffractionResult
from anodemap.io import Axis


def _cubic_rotations() -> np.ndarray:
    """The 24 proper rotations of m-3m: signed permutation matrices with det +1."""
    import itertools

    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.linalg.det(m) > 0:
                mats.append(m)
    return np.array(mats)


def test_direction_along_beam_matches_orix():
    orix_q = pytest.importorskip("orix.quaternion")
    from orix.quaternion.symmetry import Oh
    from orix.vector import Vector3d

    rng = np.random.default_rng(4)
    euler = rng.uniform([0, 0, 0], [360, 180, 360], size=(500, 3))
    ori = orix_q.Orientation.from_euler(np.radians(euler), Oh)
    theirs = (ori * Vector3d.zvector()).data
    ours = sample_direction_in_crystal(euler)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    # and the same point of the fundamental sector as orix picks
    sector = (ori * Vector3d.zvector()).in_fundamental_sector(Oh).data
    np.testing.assert_allclose(reduce_to_cubic_sector(ours), sector, atol=1e-12)


def test_ipf_corners_and_symmetry():
    corners = np.array([[0, 0, 1], [1, 0, 1], [1, 1, 1]], float)
    np.testing.assert_allclose(ipf_colours(corners), np.eye(3), atol=1e-12)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 3))
    base = ipf_colours(v)
    for r in _cubic_rotations():
        np.testing.assert_allclose(ipf_colours(v @ r.T), base, atol=1e-12)
        np.testing.assert_allclose(ipf_colours(-(v @ r.T)), base, atol=1e-12)  # Friedel
    with pytest.raises(ValueError, match="Laue class"):
        ipf_colours(v, "6/mmm")


def test_ipf_key_triangle():
    rgba, extent = ipf_key_image(101)
    assert extent[1] == pytest.approx(np.sqrt(2) - 1)
    # [001] (bottom-left pixel) is red and inside, the top-left corner is outside
    np.testing.assert_allclose(rgba[-1, 0], [1, 0, 0, 1], atol=1e-9)
    assert rgba[0, 0, 3] == 0
    # the triangle covers the area between the [001]-[101] edge, the [001]-[111] line
    # and the [101]-[111] small circle: a little over half of its bounding box
    assert 0.5 < rgba[..., 3].mean() < 0.75


def _fake_result() -> DiffractionResult:
    phase = np.array([[0, 1, 1], [2, 2, 1]], dtype=np.int16)
    status = np.array([[0, 0, 0], [0, 0, 6]], dtype=np.uint8)
    euler = np.zeros((2, 3, 3))
    euler[0, 1] = [10.0, 20.0, 30.0]
    euler[0, 2] = [0.0, 45.0, 0.0]
    euler[1, 0] = [100.0, 54.7356, 45.0]
    euler[1, 1] = [5.0, 0.0, 0.0]
    maps = {
        "phase": phase,
        "status": status,
        "euler": euler,
        "correlation": np.full((2, 3), 0.5),
        "reliability": np.array([[0.0, 30.0, 30.0], [30.0, 5.0, 0.0]]),
        "phase_reliability": np.full((2, 3), 40.0),
        "amorphous_share": np.full((2, 3), 0.2),
        "spottiness": np.ones((2, 3)),
        "virtual_bf": np.ones((2, 3)),
        "virtual_adf": np.ones((2, 3)),
        "beam_centre": np.zeros((2, 3, 2)),
    }
    nav = [Axis("y", 2, 5.0, 0.0, "nm"), Axis("x", 3, 5.0, 0.0, "nm")]
    return DiffractionResult(
        maps, nav, {"0": "amorphous", "1": "Si", "2": "Li15Si4"}, {}, DiffractionParameters()
    )


def test_crystal_map_export_matches_maps():
    pytest.importorskip("orix")
    from orix.quaternion import Orientation
    from orix.quaternion.symmetry import Oh

    result = _fake_result()
    xmap = to_crystal_map(result)
    assert xmap.shape == (2, 3)
    np.testing.assert_array_equal(xmap.phase_id, [0, 1, 1, 2, 2, -1])
    assert xmap.phases[1].name == "Si" and xmap.phases[1].point_group.name == "m-3m"
    assert xmap.phases[2].name == "Li15Si4" and xmap.phases[2].point_group.name == "m-3m"
    si = xmap["Si"].orientations
    expected = Orientation.from_euler(np.radians([[10.0, 20.0, 30.0], [0.0, 45.0, 0.0]]), Oh)
    assert np.degrees(si.angle_with(expected)).max() < 1e-6
    np.testing.assert_allclose(xmap["Si"].x, [5.0, 10.0])
    np.testing.assert_allclose(xmap.prop["reliability"], result.maps["reliability"].ravel())


def test_ipf_figure_written(tmp_path):
    summary = write_diffraction_results(_fake_result(), tmp_path)
    assert "orientation_ipf_z.png" in summary["files"]
    assert (tmp_path / "orientation_ipf_z.png").stat().st_size > 1000
    assert json.loads((tmp_path / "summary.json").read_text())["files"] == summary["files"]
