"""Sub-pixel refinement of a registration by Gauss-Newton least squares.

The moving image, sampled through the transform at every valid pixel of the fixed
image (cubic splines), is fitted to the fixed image with a gain and an offset
(``a M(W(x; p)) + b ≈ F(x)``, which maximises their normalised correlation). The warp
parameters ``p`` are linear in the position (:meth:`~anodemap.registration.transform.
Transform.parameters`), so each step is one linear least-squares solve (forward
additive Lucas-Kanade). It runs from coarse to fine: both images smoothed by the same
physical Gaussian, 2, then 1, then 0.5 fixed pixels (the same smoothing on both sides
leaves the match unbiased; the widest widens the basin).

References
----------
S. Baker, I. Matthews, "Lucas-Kanade 20 years on: a unifying framework", Int. J.
Comput. Vis. 56 (2004) 221-255, doi:10.1023/B:VISI.0000011205.11775.fd.

Examples
--------
>>> import numpy as np
>>> from scipy import ndimage
>>> from anodemap.registration.transform import Transform, within
>>> rng = np.random.default_rng(0)
>>> img = ndimage.gaussian_filter(rng.random((80, 80)), 2.0)
>>> true = Transform.similarity(1.0, 1.5, (6.3, 4.8))
>>> fixed = ndimage.map_coordinates(img, true.grid((60, 60)), order=3)
>>> ok = np.ones((60, 60), bool)
>>> fit = refine(fixed, ok, img, np.ones(img.shape, bool), Transform.similarity(1, 0, (6, 5)))
>>> bool(np.abs(fit.transform.apply([[30, 30]]) - true.apply([[30, 30]])).max() < 0.01)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from anodemap.registration.contrast import blur
from anodemap.registration.transform import Transform, within

__all__ = ["Refined", "refine", "warp_to"]

#: Physical smoothing of the passes, in fixed pixels (coarse to fine).
PASSES = (2.0, 1.0, 0.5)


@dataclass
class Refined:
    """The refined transform and how well it fits.

    Attributes
    ----------
    transform : Transform
    ncc : float
        Normalised correlation of the two images over the pixels compared (last pass).
    n_pixels : int
        Fixed pixels compared.
    position_sigma_px : float
        1σ of a mapped position at the centre from the least-squares covariance, in
        moving pixels (it takes the pixels' noise as independent: a lower bound).
    iterations : int
    """

    transform: Transform
    ncc: float
    n_pixels: int
    position_sigma_px: float
    iterations: int


def _columns(model: str, y: np.ndarray, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """d(row, column)/d(parameter) of each parameter at fixed positions (y, x) about
    the centre."""
    one, zero = np.ones_like(y), np.zeros_like(y)
    if model == "similarity":
        return [(y, x), (-x, y), (one, zero), (zero, one)]
    return [(y, zero), (x, zero), (zero, y), (zero, x), (one, zero), (zero, one)]


def _shear_prior(
    params: np.ndarray, model: str, sigma_residual: float, shear_sigma: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows that hold an affine map near a similarity: its two non-similar parts,
    (A11 - A22)/2 and (A12 + A21)/2, about 0 within ``shear_sigma`` × its scale (the
    shear and stretch that drift gives), weighted against the residuals' spread."""
    if model != "affine" or not shear_sigma:
        return np.zeros((0, len(params) + 2)), np.zeros(0)
    a11, a12, a21, a22 = params[:4]
    scale = float(np.sqrt(abs(a11 * a22 - a12 * a21))) or 1.0
    w = sigma_residual / (shear_sigma * scale)
    rows = np.zeros((2, len(params) + 2))
    rows[0, [0, 3]] = 0.5 * w, -0.5 * w
    rows[1, [1, 2]] = 0.5 * w, 0.5 * w
    return rows, np.array([0.5 * (a11 - a22), 0.5 * (a12 + a21)]) * w


def warp_to(
    moving: np.ndarray,
    moving_valid: np.ndarray,
    transform: Transform,
    shape: tuple[int, int],
    order: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The moving image on a fixed grid of ``shape`` through ``transform`` and the
    pixels that got a value (inside the moving image, at a valid pixel)."""
    coords = transform.grid(shape)
    inside = within(coords, moving.shape)
    near = ndimage.map_coordinates(moving_valid.astype(np.uint8), coords, order=0, mode="nearest")
    out = ndimage.map_coordinates(moving, coords, order=order, mode="nearest")
    ok = inside & (near > 0)
    return np.where(ok, out, 0.0), ok


def _pass(
    fixed: np.ndarray,
    fixed_ok: np.ndarray,
    moving: np.ndarray,
    moving_ok: np.ndarray,
    transform: Transform,
    model: str,
    max_iterations: int,
    shear_sigma: float | None = None,
) -> tuple[Transform, float, int, float, int]:
    ny, nx = fixed.shape
    centre = np.array([(ny - 1) / 2.0, (nx - 1) / 2.0])
    params = transform.parameters(model, centre)
    coeffs = ndimage.spline_filter(moving, order=3, mode="nearest")
    gy = ndimage.spline_filter(np.gradient(moving, axis=0), order=3, mode="nearest")
    gx = ndimage.spline_filter(np.gradient(moving, axis=1), order=3, mode="nearest")
    # a cubic spline reaches two pixels: only where all of them are valid
    safe = ndimage.binary_erosion(moving_ok, iterations=2, border_value=0)
    rr, cc = np.nonzero(fixed_ok)
    y, x = rr - centre[0], cc - centre[1]
    f = fixed[rr, cc]
    cols = _columns(model, y, x)
    gain, offset = 1.0, 0.0
    mh, mw = moving.shape
    corners = np.array([[0, 0], [0, nx - 1], [ny - 1, 0], [ny - 1, nx - 1]], float)
    n_used, ncc, sigma, steps = 0, float("nan"), float("nan"), 0
    jac, r = np.zeros((0, len(params) + 2)), np.zeros(0)
    for steps in range(1, max_iterations + 1):  # noqa: B007 (the count is returned)
        t = Transform.from_parameters(params, model, centre)
        pos = np.stack([rr, cc], axis=1) @ t.matrix.T + t.shift
        inside = (pos[:, 0] >= 0) & (pos[:, 0] <= mh - 1) & (pos[:, 1] >= 0) & (pos[:, 1] <= mw - 1)
        near = np.zeros(inside.shape, bool)
        ip = np.round(pos[inside]).astype(int)
        near[inside] = safe[ip[:, 0], ip[:, 1]]
        use = inside & near
        n_used = int(use.sum())
        if n_used < 10 * (len(params) + 2):
            break
        p = pos[use].T
        m = ndimage.map_coordinates(coeffs, p, order=3, prefilter=False)
        dmy = ndimage.map_coordinates(gy, p, order=3, prefilter=False)
        dmx = ndimage.map_coordinates(gx, p, order=3, prefilter=False)
        r = gain * m + offset - f[use]
        jac = np.column_stack(
            [gain * (dmy * cy[use] + dmx * cx[use]) for cy, cx in cols] + [m, np.ones_like(m)]
        )
        a_rows, a_res = _shear_prior(params, model, float(np.sqrt(np.mean(r**2))), shear_sigma)
        a_full = np.vstack([jac, a_rows]) if len(a_rows) else jac
        r_full = np.concatenate([r, a_res]) if len(a_rows) else r
        norm = np.sqrt((a_full**2).sum(axis=0)) + 1e-30
        step, *_ = np.linalg.lstsq(a_full / norm, -r_full, rcond=None)
        step /= norm
        params = params + step[: len(params)]
        gain += step[-2]
        offset += step[-1]
        fu = f[use]
        ncc = float(np.corrcoef(m, fu)[0, 1]) if m.std() > 0 and fu.std() > 0 else float("nan")
        # how far the step moved the fixed image's corners, in moving pixels
        moved = Transform.from_parameters(params, model, centre).apply(corners) - t.apply(corners)
        if np.abs(moved).max() < 1e-3:
            break
    # 1σ of the centre's position from the covariance of the last solve
    dof = max(len(r) - jac.shape[1], 1)
    if len(r):
        s2 = float((r**2).sum()) / dof
        cov = s2 * np.linalg.pinv(jac.T @ jac)
        k = len(params)
        sigma = float(np.sqrt(cov[k - 2, k - 2] + cov[k - 1, k - 1]))
    return Transform.from_parameters(params, model, centre), ncc, n_used, sigma, steps


def refine(
    fixed: np.ndarray,
    fixed_valid: np.ndarray,
    moving: np.ndarray,
    moving_valid: np.ndarray,
    start: Transform,
    *,
    model: str = "similarity",
    scale: float | None = None,
    passes: tuple[float, ...] = PASSES,
    max_iterations: int = 30,
    shear_sigma: float | None = 0.02,
) -> Refined:
    """Refine ``start`` (fixed pixel → moving pixel) to the best match.

    Parameters
    ----------
    fixed, moving : ndarray (2-D)
        Prepared images (:func:`anodemap.registration.contrast.prepare`).
    fixed_valid, moving_valid : ndarray of bool
    start : Transform
        Within about a pixel and a degree of the answer (:mod:`~anodemap.registration.
        coarse`).
    model : {"similarity", "affine"}
    scale : float, optional
        Moving pixels per fixed pixel, to smooth the moving image by the same physical
        width as the fixed one (default: the start's scale).
    passes : tuple of float
        Gaussian σ of each pass in fixed pixels.
    max_iterations : int
        Gauss-Newton steps per pass at most.
    shear_sigma : float or None
        Affine: its shear and stretch (the parts that are not a similarity) are held
        near 0 within this share of the scale (model choice: 0.02, the distortion of a
        drift of 2 % of the field of view during the scan; None: free).

    Returns
    -------
    Refined
    """
    s = start.scale if scale is None else scale
    transform = start
    ncc, n_used, sigma, total = float("nan"), 0, float("nan"), 0
    for sigma_px in passes:
        f = blur(fixed, fixed_valid, sigma_px)
        m = blur(moving, moving_valid, sigma_px * s)
        transform, ncc, n_used, sigma, it = _pass(
            f, fixed_valid, m, moving_valid, transform, model, max_iterations, shear_sigma
        )
        total += it
    return Refined(transform, ncc, n_used, sigma, total)
