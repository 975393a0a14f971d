"""The first estimate of a registration: the rotation by a scan over angles, the shift
by normalised cross-correlation at each, the scale from the calibrations.

For each angle the moving image is turned and brought to the fixed image's pixel size
(its scale from the calibrated axes), and its masked normalised cross-correlation with
the fixed image over every shift (:func:`anodemap.registration.ncc.masked_ncc`) gives
the best shift and its correlation; the angle of the highest correlation wins, and a
finer scan around it follows. The result is within about one fixed pixel and a fraction
of the angle step: :mod:`anodemap.registration.refine` takes it from there.

A scan over angles was chosen over the rotation from log-polar Fourier magnitudes: the
maps of one region share only part of their fields of view, and their spectra differ
more by that than by a rotation of a few degrees (docs/registration.md gives the
measurements).

Examples
--------
>>> import numpy as np
>>> from scipy import ndimage
>>> rng = np.random.default_rng(1)
>>> big = ndimage.gaussian_filter(rng.random((120, 120)), 2)
>>> moving = ndimage.rotate(big, 3.0, reshape=False)[30:90, 30:90]
>>> est = coarse_registration(big, np.ones(big.shape, bool), moving,
...                           np.ones(moving.shape, bool), scale=1.0, max_rotation_deg=6)
>>> abs(est.transform.rotation_deg - 3.0) < 1.0  # refine.py takes it further
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from anodemap.registration.ncc import best_shift
from anodemap.registration.transform import Transform, within

__all__ = ["CoarseEstimate", "coarse_registration", "reduced", "turned"]


@dataclass
class CoarseEstimate:
    """The first estimate: the transform (fixed pixel → moving pixel), the correlation
    at it, its margin over the best correlation elsewhere (:func:`~anodemap.
    registration.ncc.best_shift`), and every angle tried."""

    transform: Transform
    ncc: float
    margin: float
    angles: list[dict[str, float]] = field(default_factory=list)


def turned(
    moving: np.ndarray, valid: np.ndarray, scale: float, rotation_deg: float
) -> tuple[np.ndarray, np.ndarray, Transform]:
    """The moving image turned and brought to the fixed pixel size: the image on a
    canvas that holds all of it, its valid pixels, and the canvas → moving transform."""
    b = Transform.similarity(scale, rotation_deg).matrix
    ny, nx = moving.shape
    corners = np.array([[0, 0], [0, nx - 1], [ny - 1, 0], [ny - 1, nx - 1]], float)
    q = corners @ np.linalg.inv(b).T
    lo = np.floor(q.min(axis=0))
    shape = tuple(int(v) for v in np.ceil(q.max(axis=0)) - lo + 1)
    to_moving = Transform(b, b @ lo)
    coords = to_moving.grid(shape)
    inside = within(coords, moving.shape)
    near = ndimage.map_coordinates(valid.astype(np.uint8), coords, order=0, mode="nearest")
    canvas = ndimage.map_coordinates(moving, coords, order=1, mode="nearest")
    ok = inside & (near > 0)
    return np.where(ok, canvas, 0.0), ok, to_moving


def reduced(image: np.ndarray, valid: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The image in blocks of ``factor`` × ``factor`` pixels (mean of the valid ones; a
    block is valid when at least half of it is), and its valid blocks."""
    if factor <= 1:
        return image, valid
    ny, nx = (n // factor * factor for n in image.shape)
    shape = (ny // factor, factor, nx // factor, factor)
    w = valid[:ny, :nx].astype(float).reshape(shape).sum(axis=(1, 3))
    v = np.where(valid, image, 0.0)[:ny, :nx].reshape(shape).sum(axis=(1, 3))
    ok = w >= 0.5 * factor * factor
    return np.where(ok, v / np.maximum(w, 1.0), 0.0), ok


def _try(fixed, fixed_valid, moving, moving_valid, scale, angle, min_overlap):
    canvas, ok, to_moving = turned(moving, moving_valid, scale, angle)
    (dy, dx), peak, margin = best_shift(fixed, fixed_valid, canvas, ok, min_overlap)
    d = np.array([dy, dx], float)
    t = Transform(to_moving.matrix, to_moving.shift - to_moving.matrix @ d)
    return t, peak, margin


def coarse_registration(
    fixed: np.ndarray,
    fixed_valid: np.ndarray,
    moving: np.ndarray,
    moving_valid: np.ndarray,
    *,
    scale: float,
    max_rotation_deg: float = 10.0,
    step_deg: float | None = None,
    min_overlap: float = 0.5,
    max_side: int = 128,
) -> CoarseEstimate:
    """The rotation and shift of highest correlation, the scale given.

    Parameters
    ----------
    fixed, moving : ndarray (2-D)
        Prepared images (:func:`anodemap.registration.contrast.prepare`); the fixed
        one should have the larger (or equal) pixel size.
    fixed_valid, moving_valid : ndarray of bool
    scale : float
        Moving pixels per fixed pixel (from the calibrations).
    max_rotation_deg : float
        Angles from −max to +max are tried.
    step_deg : float, optional
        The angle step of the first scan; default: the angle that moves the edge of the
        smaller field of view by one fixed pixel (0.25°-2°).
    min_overlap : float
        Shifts where less than this share of the smaller image overlaps are not tried.
    max_side : int
        A fixed image longer than this is searched in blocks of pixels (a whole
        factor), the moving one smoothed to match: the estimate stays within a block
        and a quarter of the angle step, as the refinement needs.

    Returns
    -------
    CoarseEstimate
    """
    f = max(1, int(math.ceil(max(fixed.shape) / max_side)))
    if f > 1:
        fixed, fixed_valid = reduced(fixed, fixed_valid, f)
        moving = ndimage.gaussian_filter(moving, 0.5 * (f - 1) * scale)
    if step_deg is None:
        radius = 0.5 * min(
            math.hypot(*fixed.shape), math.hypot(*moving.shape) / max(scale * f, 1e-12)
        )
        step_deg = float(np.clip(math.degrees(1.0 / max(radius, 1.0)), 0.25, 2.0))
    n = int(math.ceil(max_rotation_deg / step_deg))
    angles = [k * step_deg for k in range(-n, n + 1)] if max_rotation_deg > 0 else [0.0]
    tried: dict[float, tuple[Transform, float, float]] = {}

    def attempt(angle: float) -> None:
        tried[angle] = _try(fixed, fixed_valid, moving, moving_valid, scale * f, angle, min_overlap)

    for angle in angles:
        attempt(angle)
    best = max(tried, key=lambda a: np.nan_to_num(tried[a][1], nan=-2.0))
    if max_rotation_deg > 0:
        for k in (-3, -2, -1, 1, 2, 3):  # a finer scan around the best angle
            attempt(best + k * step_deg / 4.0)
        best = max(tried, key=lambda a: np.nan_to_num(tried[a][1], nan=-2.0))
    transform, peak, margin = tried[best]
    if f > 1:  # block q of the reduced image holds fixed pixels f q ... f q + f - 1
        a = transform.matrix / f
        transform = Transform(a, transform.shift - a @ np.full(2, (f - 1) / 2.0))
    table = [
        {"rotation_deg": float(a), "ncc": float(v[1]), "margin": float(v[2])}
        for a, v in sorted(tried.items())
    ]
    return CoarseEstimate(transform, float(peak), float(margin), table)
