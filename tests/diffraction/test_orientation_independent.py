"""Orientations against an independent forward model (issue 14, item 6).

The patterns are diffsims' kinematic (precession) patterns of our CIFs, the orientations
orix's (``tests/diffsims_patterns.py``); nothing comes from ``anodemap.synth``. The frames
are pinned first (orix = anodemap Bunge matrices, diffsims' beam along −z, the drawn spots
are anodemap's spots of the truth orientation), then ``analyse_diffraction`` is run on
scans of grains near zone axes and at random orientations, with and without precession.

Measured (``docs/diffraction.md``, "Orientations on independent patterns"; 12 scans,
seeds 0-2 and 10-12, with and without precession): median misorientation over correctly
phased pixels of grains near zone axes 0.64-1.19° (Si) and 0.58-0.96° (Li15Si4) per
scan; where the reliability is >= 10, 514 of 516 pixels within 2°.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("diffsims")
pytest.importorskip("orix")
pytest.importorskip("diffpy.structure")

import diffsims_patterns as dp  # noqa: E402
from anodemap.diffraction.crystal import electron_wavelength, load_phase  # noqa: E402
from anodemap.diffraction.templates import (  # noqa: E402
    euler_from_matrix,
    euler_to_quaternion,
    misorientation_deg,
    orientation_matrix,
)

#: the orientation reliability from which an orientation counts as reliable in the truth
#: comparison (``anodemap.diffraction.output.compare_with_truth``)
RELIABLE = 10.0


# --------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------
def test_orix_and_anodemap_share_bunge_matrices_and_quaternions():
    from orix.quaternion import Rotation

    e = dp.random_euler(np.random.default_rng(1), 50)
    rot = Rotation.from_euler(np.radians(e))
    np.testing.assert_allclose(rot.to_matrix(), orientation_matrix(e), atol=1e-12)
    q = rot.data * np.sign(rot.data[:, :1])  # orix's a >= 0 form
    np.testing.assert_allclose(q, euler_to_quaternion(e), atol=1e-12)


def test_misorientation_is_orix_angle_with_the_laue_group():
    """Kinematic patterns obey Friedel's law: an orientation is known modulo the Laue group
    (m-3m for both phases; orix's Oh), not the point group (-43m for Li15Si4)."""
    from orix.quaternion import Orientation, symmetry

    rng = np.random.default_rng(2)
    a, b = dp.random_euler(rng, 200), dp.random_euler(rng, 200)
    oa = Orientation.from_euler(np.radians(a), symmetry=symmetry.Oh)
    ob = Orientation.from_euler(np.radians(b), symmetry=symmetry.Oh)
    expected = np.degrees(oa.angle_with(ob))
    for phase in ("Si", "Li15Si4"):
        np.testing.assert_allclose(misorientation_deg(a, b, phase), expected, atol=1e-9)


def test_diffsims_beam_travels_along_minus_z():
    """Its excited reflections lie on the sphere through 0 centred at +K z (within its cut-off),
    z ≈ +|g|²/(2K): the incident wave vector is −K z."""
    k = 1.0 / electron_wavelength(300.0)
    e = dp.random_euler(np.random.default_rng(3), 6)
    for spots in dp.diffsims_spots("Li15Si4", orientation_matrix(e), precession_deg=0.0):
        r2 = (spots.xy**2).sum(axis=1)
        on_sphere = k - np.sqrt(k * k - r2)  # z of the sphere centred at +K z
        assert np.all(np.abs(spots.z - on_sphere) <= dp.MAX_EXCITATION_ERROR + 1e-9)
        # the sphere centred at -K z (beam along +z) is off by 2 |g|²/2K on average
        assert np.mean(np.abs(spots.z + on_sphere)) > 3 * np.mean(np.abs(spots.z - on_sphere))


@pytest.mark.parametrize("phase", ["Si", "Li15Si4"])
def test_drawn_spots_are_anodemap_spots_of_the_truth_and_naive_ones_turned_180(phase):
    """Each drawn spot sits where anodemap puts reflection hkl for the truth orientation,
    excited as anodemap excites it (beam along +Z). Drawing diffsims' (x, y) as they are
    (rotation = truth) gives instead the spots (Friedel mates -hkl) of the grain turned by
    180° about the beam, a different orientation: what issue 14 measured."""
    crystal = load_phase(phase)
    k = 1.0 / electron_wavelength(300.0)
    e = dp.random_euler(np.random.default_rng(4), 5)
    g = orientation_matrix(e)
    turned = g @ np.diag([-1.0, -1.0, 1.0])
    drawn = dp.grain_spots(phase, e, precession_deg=0.0)
    naive = dp.diffsims_spots(phase, g, precession_deg=0.0)
    for gi, ti, sd, sn in zip(g, turned, drawn, naive, strict=True):
        for mat, hkl, xy in ((gi, sd.hkl, sd.xy), (ti, -sn.hkl, sn.xy)):
            v = (hkl @ crystal.reciprocal_matrix) @ mat  # rows: g^T h, the sample frame
            np.testing.assert_allclose(v[:, :2], xy, atol=1e-9)
            # anodemap's excitation error -(v_z + |v|²/2K): within diffsims' cut-off (1e-4:
            # its first-order sphere against diffsims' exact one, |g| <= 2 1/Å)
            sg = v[:, 2] + (v**2).sum(axis=1) / (2 * k)
            assert np.all(np.abs(sg) <= dp.MAX_EXCITATION_ERROR + 1e-4)
    assert np.all(misorientation_deg(e, euler_from_matrix(turned), phase) > 5.0)


@pytest.mark.parametrize("phase", ["Si", "Li15Si4"])
def test_kinematic_intensities_agree_per_hkl(phase):
    """Same structure, same setting: diffsims' |F|² (Lobato factors) and ours (Peng et al.)
    relative to the strongest agree per hkl to 0.5 % over the 60 strongest reflections."""
    from diffsims.utils.sim_utils import get_kinematical_intensities

    refl = load_phase(phase).reflections(1.4)
    ours = np.abs(refl.structure_factor) ** 2
    theirs = get_kinematical_intensities(
        dp.diffsims_phase(phase).structure,
        refl.hkl,
        refl.s,
        prefactor=1,
        scattering_params="lobato",
        debye_waller_factors=dp.DEBYE_WALLER[phase],
    )
    top = np.argsort(-ours)[:60]
    ratio = (theirs[top] / theirs.max()) / (ours[top] / ours.max())
    np.testing.assert_allclose(ratio, 1.0, atol=0.005)


# --------------------------------------------------------------------------------------
# orientations found on diffsims scans
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[0.4, 0.0], ids=["precession", "no-precession"])
def found(request):
    from anodemap.diffraction.pipeline import DiffractionParameters, analyse_diffraction

    grains = dp.grains_near_zone_axes_and_random(np.random.default_rng(100), n_random=8)
    scan = dp.make_scan(grains, precession_deg=request.param, seed=0)
    res = analyse_diffraction(scan.dataset(), DiffractionParameters(), progress=False)
    names = np.array([res.phase_labels.get(str(int(v)), "?") for v in res.maps["phase"].ravel()])
    out = {"scan": scan, "result": res}
    for phase in dp.ZONE_AXES:
        ok = (scan.phase.ravel() == phase) & (names == phase)
        out[phase] = {
            "mis": misorientation_deg(
                res.maps["euler"].reshape(-1, 3)[ok], scan.euler.reshape(-1, 3)[ok], phase
            ),
            "reliability": res.maps["reliability"].ravel()[ok],
            "zone": scan.kind.ravel()[ok] == "zone",
            "recall": ok.sum() / (scan.phase == phase).sum(),
        }
    return out


@pytest.mark.parametrize("phase", ["Si", "Li15Si4"])
def test_grains_near_zone_axes_median_within_1_5_degrees(found, phase):
    """Issue 14 target: median <= 1.5° over correctly phased pixels of grains near zone
    axes (measured 0.58-1.19° per scan over twelve). Grains found turned 180° about
    [111], [112], [113] or [012] (same zero-order Laue zone; 60°, 60°, 50.5°, 36.9° off,
    with low reliability) are in the median."""
    f = found[phase]
    assert f["recall"] >= 0.8  # most pixels are phased right (else the median means little)
    zone = f["mis"][f["zone"]]
    assert zone.size >= 12
    assert np.median(zone) <= 1.5


def test_reliable_orientations_within_2_degrees(found):
    """Issue 14 target: >= 95 % of the pixels called reliable within 2° (both phases)."""
    mis = np.concatenate([found[p]["mis"] for p in dp.ZONE_AXES])
    rel = np.concatenate([found[p]["reliability"] for p in dp.ZONE_AXES])
    reliable = rel >= RELIABLE
    assert reliable.sum() >= 20
    assert np.mean(mis[reliable] < 2.0) >= 0.95


def test_li15si4_random_orientations_found(found):
    """Issue 14 found Li15Si4 20-50° off everywhere; at random orientations its patterns are
    rich, and most pixels are found within 2° (measured 0.88-1.00 per scan over twelve)."""
    f = found["Li15Si4"]
    random = f["mis"][~f["zone"]]
    assert np.median(random) <= 1.5
    assert np.mean(random < 2.0) >= 0.75


def test_the_excitation_error_width_is_chosen_from_the_patterns(found):
    """diffsims' relrods are narrower than the templates' default (0.01 1/Å): the
    refinement chooses the narrower candidate."""
    width = found["result"].settings["orientation_refinement_excitation_error_width"]
    assert math.isclose(width, 0.007)


@pytest.mark.slow
def test_pyxem_reports_these_patterns_in_its_own_sample_frame():
    """pyxem 0.21's template matching, given these patterns and templates whose beam
    directions include the right ones, reports ``g · diag(-1, 1, -1)`` for anodemap's ``g``:
    its sample frame is anodemap's turned 180° about ky (x along -kx, y along ky, z against
    the beam). The same patterns, the same physics, Euler angles that differ by that change
    of frame (``docs/diffraction.md``)."""
    pxm = pytest.importorskip("pyxem")
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation

    rng = np.random.default_rng(2)
    e = dp.random_euler(rng, 4)
    spots = dp.grain_spots("Li15Si4", e, precession_deg=0.4)
    images = np.stack([dp.render(s, rng, centre_jitter_px=0.0) for s in spots])
    g = orientation_matrix(e)
    pyxem_frame = g @ np.diag([-1.0, 1.0, -1.0])
    # templates: the beam directions (phi1 = 0, pyxem finds the in-plane angle) of the
    # candidates g, g · diag(-1, 1, -1) and g · diag(1, -1, -1)
    cand = np.degrees(
        Rotation.from_matrix(np.concatenate([pyxem_frame, g, g @ dp.FLIP_X])).to_euler()
    )
    cand[:, 0] = 0.0
    sim = SimulationGenerator(300, precession_angle=0.4).calculate_diffraction2d(
        dp.diffsims_phase("Li15Si4"),
        rotation=Rotation.from_euler(np.radians(cand)),
        max_excitation_error=0.02,
        reciprocal_radius=1.35,
        with_direct_beam=False,
    )
    signal = pxm.signals.ElectronDiffraction2D(images.reshape(2, 2, *dp.SHAPE))
    signal.set_diffraction_calibration(dp.SCALE)
    signal.calibration.center = None
    polar = (signal**0.5).get_azimuthal_integral2d(npt=64, npt_azim=360, radial_range=(0.1, 1.35))
    found = polar.get_orientation(sim, n_best=1, frac_keep=1.0)
    g_pyxem = found.to_crystal_map().rotations.to_matrix().reshape(-1, 3, 3)
    e_pyxem = euler_from_matrix(g_pyxem)
    # measured: 0.1-0.6° from g · diag(-1, 1, -1); g itself is 32-52° away from it
    assert np.all(misorientation_deg(e_pyxem, euler_from_matrix(pyxem_frame), "Li15Si4") < 1.5)
    assert np.all(misorientation_deg(e_pyxem, e, "Li15Si4") > 10.0)
