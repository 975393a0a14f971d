"""Registration of the maps of one region (anodemap.registration): known transforms
recovered on synthetic images, on real images transformed by a known similarity, and on
the simulated region (anodemap.synth.region), whose every pixel's position is known.

The bounds sit above what was measured (docs/registration.md gives the measurements);
nothing here is timed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from anodemap.io import load
from anodemap.registration import Transform, register, resample, resample_labels
from anodemap.registration.ncc import best_shift
from anodemap.registration.quality import tile_residuals
from anodemap.synth.region import ScanView

# the repository's root (this file may move within tests/), then ../shared/data/real
_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
REAL = _ROOT.parent / "shared" / "data" / "real"


def _texture(shape, sigma=2.0, seed=0):
    return ndimage.gaussian_filter(np.random.default_rng(seed).random(shape), sigma)


def _seen_by(reference, truth, shape, block=3, rng=None):
    """The map a coarser scan records of ``reference``: ``truth`` maps reference pixels to
    its pixels; each of its pixels averages block x block points of its area (a detector
    pixel), with Poisson noise when ``rng`` is given; NaN outside the reference."""
    inv = truth.inverse()
    sub = (np.arange(block) + 0.5) / block - 0.5
    acc = np.zeros(shape)
    for dy in sub:
        for dx in sub:
            t = Transform(inv.matrix, inv.shift + inv.matrix @ np.array([dy, dx]))
            acc += ndimage.map_coordinates(reference, t.grid(shape), order=3, cval=np.nan)
    img = acc / block**2
    return rng.poisson(np.clip(img, 0, None)).astype(float) if rng is not None else img


def _position_error(found, truth, ref_shape, moving_shape):
    """|found - truth| (moving pixels) at every reference pixel inside the moving map."""
    ij = np.stack(np.indices(ref_shape), -1).astype(float)
    true = truth.apply(ij)
    inside = (
        (true[..., 0] >= 0)
        & (true[..., 0] <= moving_shape[0] - 1)
        & (true[..., 1] >= 0)
        & (true[..., 1] <= moving_shape[1] - 1)
    )
    return np.linalg.norm(found.apply(ij) - true, axis=-1)[inside]


# ----------------------------------------------------------------- the transform
def test_transform_algebra():
    a = Transform.similarity(0.8, 12.0, (3.0, -2.0))
    b = Transform.similarity(1.5, -4.0, (1.0, 7.0))
    p = np.array([[5.0, 9.0], [-3.0, 2.5]])
    np.testing.assert_allclose(a.inverse().apply(a.apply(p)), p, atol=1e-12)
    np.testing.assert_allclose(a.then(b).apply(p), b.apply(a.apply(p)), atol=1e-12)
    assert a.scale == pytest.approx(0.8) and a.rotation_deg == pytest.approx(12.0)
    for model in ("similarity", "affine"):
        back = Transform.from_parameters(a.parameters(model, (4, 5)), model, (4, 5))
        np.testing.assert_allclose(back.apply(p), a.apply(p), atol=1e-12)
    assert Transform.from_dict(a.to_dict()).apply(p) == pytest.approx(a.apply(p))


def test_masked_correlation_ignores_flagged_pixels():
    img = _texture((80, 90), 1.5)
    part = img[10:50, 20:70].copy()
    part[5:15, 5:25] = 1e6  # a flagged block: it would pull an unmasked correlation
    ok = np.ones(part.shape, bool)
    ok[5:15, 5:25] = False
    shift, peak, margin = best_shift(img, np.ones(img.shape, bool), part, ok)
    assert shift == (10, 20) and peak == pytest.approx(1.0) and margin > 0.3


# --------------------------------------------------------- known transforms
@pytest.mark.parametrize(
    ("scale", "rotation", "shift", "shape", "pixels"),
    [
        (0.5, -2.0, (-15.0, -18.0), (48, 48), (1.0, 2.0)),  # moving map coarser
        (1.6, 4.5, (20.0, 12.0), (150, 150), (1.0, 0.625)),  # moving map finer
        (1.0, -7.0, (-30.0, -25.0), (60, 70), (1.0, 1.0)),
    ],
)
def test_register_recovers_a_known_similarity(scale, rotation, shift, shape, pixels):
    survey = _texture((160, 160), 2.5, seed=3)
    truth = Transform.similarity(scale, rotation, shift)
    moving = _seen_by(survey, truth, shape, block=1)
    reg = register(
        survey, moving, reference_pixel_nm=pixels[0], moving_pixel_nm=pixels[1], model="similarity"
    )
    err = _position_error(reg.transform, truth, survey.shape, shape)
    assert err.max() < 0.05, err.max()
    assert reg.transform.rotation_deg == pytest.approx(rotation, abs=0.05)
    assert reg.transform.scale == pytest.approx(scale, rel=2e-3)
    assert reg.quality() == "good"


def test_an_inverted_contrast_is_found():
    """A map that is dark where the survey is bright (a zero-loss or bright-field image)."""
    survey = _texture((160, 160), 2.5, seed=4)
    truth = Transform.similarity(0.5, 3.0, (-12.0, -16.0))
    moving = -_seen_by(survey, truth, (50, 50), block=2)
    reg = register(survey, moving, reference_pixel_nm=1.0, moving_pixel_nm=2.0)
    assert reg.contrast == "inverted"
    assert _position_error(reg.transform, truth, survey.shape, (50, 50)).max() < 0.05


def _real_image():
    path = REAL / "hyperspy" / "fei_emd_image.emd"
    if not path.exists():
        pytest.skip(f"real test data not found at {path}")
    ds = load(path)
    return np.asarray(ds.data, float), ds.axes[0].scale * 1000.0  # µm -> nm


@pytest.mark.parametrize(
    ("scale", "rotation", "shift", "shape"),
    [(1 / 1.6, 3.5, (-40.0, -55.0), (200, 200)), (1 / 2.5, -6.0, (-30.0, -20.0), (150, 150))],
)
def test_a_real_image_transformed_by_a_known_similarity(scale, rotation, shift, shape):
    """Velox HAADF of nanoparticles (512 x 512, 5.3 nm pixels) seen by a coarser, rotated
    scan: each pixel the mean of 3 x 3 points of its area, Poisson counts."""
    survey, pixel = _real_image()
    truth = Transform.similarity(scale, rotation, shift)
    moving = _seen_by(survey, truth, shape, rng=np.random.default_rng(0))
    for model in ("similarity", "affine"):
        reg = register(
            survey, moving, reference_pixel_nm=pixel, moving_pixel_nm=pixel / scale, model=model
        )
        err = _position_error(reg.transform, truth, survey.shape, shape)
        # measured: rms 0.04-0.16, max 0.08-0.33 moving pixels
        assert np.sqrt(np.mean(err**2)) < 0.25 and err.max() < 0.5, (model, err.max())
        assert reg.transform.rotation_deg == pytest.approx(rotation, abs=0.1)
        assert reg.transform.scale == pytest.approx(scale, rel=3e-3)


def test_a_real_tilt_series_frame_transformed():
    """The 0° image of a needle tilt series (64 x 64, 18 nm pixels): little structure, a
    smooth object; registered to within about half a pixel by a similarity."""
    path = REAL / "etspy" / "HAADF.dm3"
    if not path.exists():
        pytest.skip(f"real test data not found at {path}")
    image = np.asarray(load(path).data[45], float)
    truth = Transform.similarity(1 / 1.3, -4.0, (2.0, 3.0))
    moving = _seen_by(image, truth, (48, 48), block=2)
    reg = register(image, moving, reference_pixel_nm=18.0, moving_pixel_nm=18.0 * 1.3)
    err = _position_error(reg.transform, truth, image.shape, (48, 48))
    assert np.sqrt(np.mean(err**2)) < 0.5 and err.max() < 1.0  # measured 0.33 / 0.62


# ------------------------------------------------------------- the tiles' residual
def test_the_residual_grows_with_a_wrong_rotation():
    survey = _texture((160, 160), 2.0, seed=5)
    truth = Transform.similarity(1.0, 0.0, (-40.0, -40.0))
    moving = _seen_by(survey, truth, (80, 80), block=1)
    ok = np.ones((80, 80), bool)
    right = ndimage.map_coordinates(survey, truth.inverse().grid((80, 80)), order=3)
    # turned by 1 degree about the centre: 0.7 px at the corners' tiles
    c = np.array([39.5, 39.5])
    turn = Transform.similarity(1.0, 1.0)
    turn = Transform(turn.matrix, c - turn.matrix @ c)
    wrong = ndimage.map_coordinates(right, turn.grid((80, 80)), order=3, mode="nearest")
    good = tile_residuals(moving, ok, right, ok)
    bad = tile_residuals(moving, ok, wrong, ok)
    assert good.rms_px < 0.05 and bad.rms_px > 0.3, (good.rms_px, bad.rms_px)
    far = np.hypot(*(bad.centres - c).T)
    assert np.hypot(*bad.shifts[np.argmax(far)].T) > 2 * np.hypot(*bad.shifts[np.argmin(far)].T)


# ----------------------------------------------------------------------- resampling
def test_resampling_flags_what_it_cannot_know():
    values = np.arange(20.0).reshape(4, 5)
    values[2, 2] = np.nan
    labels = np.arange(20).reshape(4, 5).astype(np.uint8)
    t = Transform.similarity(1.0, 0.0, (0.0, 0.4))  # 0.4 pixel along x
    out, inside = resample(values, t, (4, 6))
    assert not inside[:, -1].any() and np.isnan(out[:, -1]).all()  # outside: flagged
    assert np.isnan(out[2, 2])  # its nearest pixel is flagged: flagged, not filled
    assert out[2, 1] == pytest.approx(values[2, 1])  # a flagged neighbour gives nothing
    assert out[0, 0] == pytest.approx(0.4)
    lab, inside = resample_labels(labels, t, (4, 6))
    assert lab[0, 0] in (0, 1) and (lab[:, -1] == 255).all()


# --------------------------------------------------------------- the simulated region
def _views(root):
    truth = json.loads((root / "truth" / "region.json").read_text())
    return {
        k: ScanView(**{kk: tuple(vv) if isinstance(vv, list) else vv for kk, vv in v.items()})
        for k, v in truth["views"].items()
    }


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """The simulated region of seed 1 with its EELS and EDX results."""
    from anodemap.analysis import Context, get_analysis
    from anodemap.synth.region import write_region

    root = tmp_path_factory.mktemp("region")
    files = write_region(root, seed=1)
    quiet = Context(progress=False, figures=False, log=lambda _: None)
    for name in ("eels", "edx"):
        get_analysis(name).run(files[name], root / f"{name}_out", context=quiet)
    return root


@pytest.mark.parametrize(
    ("name", "image", "model", "rms", "worst"),
    [
        ("eels", "thickness.hspy", "affine", 0.3, 0.7),  # measured 0.16 / 0.43
        ("edx", "counts.hspy", "affine", 0.25, 0.5),  # measured 0.11 / 0.32
        ("eels", "thickness.hspy", "similarity", 0.5, 1.2),  # measured 0.35 / 1.06
        ("edx", "counts.hspy", "similarity", 0.35, 0.7),  # measured 0.18 / 0.48
    ],
)
def test_the_maps_of_the_simulated_region_register_within_half_a_pixel(
    region, name, image, model, rms, worst
):
    """Against where every pixel truly looked (the survey drifts and jitters; the maps
    are rotated, drift, and their recorded stage positions are 10-15 nm off)."""
    views = _views(region)
    ref_yx = np.stack(
        [load(region / "truth" / "haadf" / f"sample_{a}_nm.hspy").data for a in "yx"], -1
    )
    survey = np.asarray(load(region / "haadf.hspy").data, float)
    moving = np.asarray(load(region / f"{name}_out" / image).data, float)
    v = views[name]
    reg = register(
        survey, moving, reference_pixel_nm=1.5, moving_pixel_nm=v.pixel_size_nm, model=model
    )
    true = v.pixel_of(ref_yx)
    ij = np.stack(np.indices(survey.shape), -1).astype(float)
    inside = (
        (true >= 0).all(-1) & (true[..., 0] <= v.shape[0] - 1) & (true[..., 1] <= v.shape[1] - 1)
    )
    err = np.linalg.norm(reg.transform.apply(ij) - true, axis=-1)[inside]
    assert np.sqrt(np.mean(err**2)) < rms and err.max() < worst, (err.mean(), err.max())
    assert reg.contrast == "intensity" and reg.quality() in ("good", "fair")
