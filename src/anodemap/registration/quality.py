"""How well a registration fits: the shifts that remain between the two images, tile by
tile, once one is mapped onto the other.

The fixed image is cut into tiles; in each the moving image, already mapped through the
transform, is shifted by the translation that fits best (Gauss-Newton with a gain and an
offset, sub-pixel). A perfect transform leaves only the tiles' estimation noise; a wrong
rotation or scale leaves shifts that grow across the field; drift or scan distortion
leaves a pattern. The residual is the root mean square of the tiles' shifts.

Examples
--------
>>> import numpy as np
>>> from scipy import ndimage
>>> rng = np.random.default_rng(0)
>>> img = ndimage.gaussian_filter(rng.random((96, 96)), 1.5)
>>> moved = ndimage.shift(img, (0.4, 0.0), order=3)
>>> r = tile_residuals(img, np.ones(img.shape, bool), moved, np.ones(img.shape, bool))
>>> round(float(np.median(r.shifts[:, 0])), 1), r.tiles
(0.4, 16)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["TileResiduals", "tile_residuals"]


@dataclass
class TileResiduals:
    """The shift left in each tile (fixed pixels) and where the tile is.

    Attributes
    ----------
    centres : ndarray (n, 2)
        Tile centres (row, column) in the fixed image.
    shifts : ndarray (n, 2)
        Position of the tile's content in the mapped moving image minus in the fixed
        image (rows, columns; fixed pixels).
    sigmas : ndarray (n,)
        1σ of each shift (least-squares covariance; the pixels' noise as independent).
    rms_px : float
        Root mean square length of the shifts (NaN without tiles).
    tiles : int
        Tiles measured (enough valid pixels and contrast).
    """

    centres: np.ndarray
    shifts: np.ndarray
    sigmas: np.ndarray
    rms_px: float
    tiles: int


def _local_shift(
    f: np.ndarray, m: np.ndarray, iterations: int = 20
) -> tuple[np.ndarray, float, float]:
    """The shift d (rows, columns) with m(x + d) ≈ a f(x) + b, by Gauss-Newton, its 1σ
    (the larger of the two, from the least-squares covariance) and the correlation of
    the two there; NaN when the tile holds no match within 3 pixels."""
    coeffs = ndimage.spline_filter(m, order=3, mode="nearest")
    gy = ndimage.spline_filter(np.gradient(m, axis=0), order=3, mode="nearest")
    gx = ndimage.spline_filter(np.gradient(m, axis=1), order=3, mode="nearest")
    r, c = np.indices(f.shape, dtype=float)
    r, c, fv = r.ravel(), c.ravel(), f.ravel()
    d = np.zeros(2)
    gain, offset = 1.0, 0.0
    nan = np.full(2, np.nan)
    for _ in range(iterations):
        pos = np.stack([r + d[0], c + d[1]])
        mv = ndimage.map_coordinates(coeffs, pos, order=3, prefilter=False, mode="nearest")
        dy = ndimage.map_coordinates(gy, pos, order=3, prefilter=False, mode="nearest")
        dx = ndimage.map_coordinates(gx, pos, order=3, prefilter=False, mode="nearest")
        res = mv - (gain * fv + offset)
        jac = np.column_stack([dy, dx, -fv, -np.ones_like(fv)])
        step, *_ = np.linalg.lstsq(jac, -res, rcond=None)
        d += step[:2]
        gain += step[2]
        offset += step[3]
        if np.abs(d).max() > 3.0:
            return nan, float("nan"), float("nan")  # no match within the tile
        if np.abs(step[:2]).max() < 1e-4:
            break
    dof = max(len(fv) - 4, 1)
    cov = float((res**2).sum()) / dof * np.linalg.pinv(jac.T @ jac)
    ncc = float(np.corrcoef(mv, fv)[0, 1]) if mv.std() > 0 and fv.std() > 0 else 0.0
    return d, float(np.sqrt(max(cov[0, 0], cov[1, 1]))), ncc


def tile_residuals(
    fixed: np.ndarray,
    fixed_valid: np.ndarray,
    mapped: np.ndarray,
    mapped_valid: np.ndarray,
    *,
    tile_px: int | None = None,
    smoothing_px: float = 1.0,
    max_sigma_px: float = 0.25,
    min_ncc: float = 0.5,
) -> TileResiduals:
    """The shifts left between ``fixed`` and ``mapped`` (the moving image on the fixed
    grid), tile by tile.

    Parameters
    ----------
    fixed, mapped : ndarray (ny, nx)
        Prepared images on the same grid.
    fixed_valid, mapped_valid : ndarray of bool
    tile_px : int, optional
        Tile side; default a quarter of the overlap's shorter side, at least 16 pixels.
    smoothing_px : float
        Gaussian σ applied to both first (noise).
    max_sigma_px : float
        Tiles whose shift is less certain than this (1σ, least-squares covariance:
        little structure in them) are left out.
    min_ncc : float
        So are tiles where the two images, aligned, correlate less than this (noise or
        what only one modality shows: their covariance does not say so).

    Returns
    -------
    TileResiduals
        Tiles with under 90 % valid pixels or no contrast are left out, and those above.
    """
    both = fixed_valid & mapped_valid
    if not both.any():
        return TileResiduals(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), float("nan"), 0)
    rows, cols = np.nonzero(both.any(axis=1))[0], np.nonzero(both.any(axis=0))[0]
    (r_lo, r_hi), (c_lo, c_hi) = (rows[0], rows[-1] + 1), (cols[0], cols[-1] + 1)
    side = int(tile_px or max(16, min(r_hi - r_lo, c_hi - c_lo) // 4))  # over the overlap
    f = ndimage.gaussian_filter(np.where(both, fixed, 0.0), smoothing_px)
    m = ndimage.gaussian_filter(np.where(both, mapped, 0.0), smoothing_px)
    centres, shifts, sigmas = [], [], []
    for r0 in range(r_lo, r_hi - side + 1, side):
        for c0 in range(c_lo, c_hi - side + 1, side):
            win = (slice(r0, r0 + side), slice(c0, c0 + side))
            if both[win].mean() < 0.9 or f[win].std() == 0 or m[win].std() == 0:
                continue
            d, sigma, ncc = _local_shift(f[win], m[win])
            if not (sigma <= max_sigma_px and ncc >= min_ncc):
                continue  # too little in the tile that both images show
            centres.append((r0 + (side - 1) / 2.0, c0 + (side - 1) / 2.0))
            shifts.append(d)
            sigmas.append(sigma)
    c = np.asarray(centres, float).reshape(-1, 2)
    s = np.asarray(shifts, float).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum(s**2, axis=1)))) if len(s) else float("nan")
    return TileResiduals(c, s, np.asarray(sigmas, float), rms, len(s))
