"""Normalised cross-correlation of two masked images at every relative shift.

Pixels that carry no value (outside a rotated map, flagged by a status, NaN) are left
out through masks: the correlation at each shift is over the pixels valid in both
images there (Padfield's masked normalised cross-correlation, computed with six FFT
correlations), so a map's border or holes never pull the match.

References
----------
D. Padfield, "Masked object registration in the Fourier domain", IEEE Trans. Image
Process. 21 (2012) 2706-2718, doi:10.1109/TIP.2011.2181402.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a = rng.random((40, 50))
>>> b = a[5:30, 12:40]
>>> shift, peak, margin = best_shift(a, np.ones(a.shape, bool), b, np.ones(b.shape, bool))
>>> shift, peak, bool(margin > 0.5)
((5, 12), 1.0, True)
"""

from __future__ import annotations

import numpy as np
from scipy import fft

__all__ = ["best_shift", "masked_ncc"]


def _correlate(fa: np.ndarray, fb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return fft.irfft2(fa * fb, s=shape)


def masked_ncc(
    fixed: np.ndarray,
    fixed_valid: np.ndarray,
    moving: np.ndarray,
    moving_valid: np.ndarray,
    min_overlap: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """The normalised cross-correlation of ``moving`` placed at every integer offset
    ``(dy, dx)`` over ``fixed``: ``fixed[r, c]`` against ``moving[r - dy, c - dx]``.

    Parameters
    ----------
    fixed, moving : ndarray (2-D)
        The images; their shapes may differ.
    fixed_valid, moving_valid : ndarray of bool
        Pixels with a value.
    min_overlap : float
        Offsets where fewer valid pixels overlap than this share of the smaller image's
        valid pixels get NaN.

    Returns
    -------
    ncc : ndarray (Hf + Hm - 1, Wf + Wm - 1)
        At index ``(i, j)`` the offset ``(i - Hm + 1, j - Wm + 1)``.
    overlap : ndarray
        The number of pixels valid in both at each offset.
    """
    f = np.where(fixed_valid, fixed, 0.0).astype(float)
    g = np.where(moving_valid, moving, 0.0).astype(float)
    mf = np.asarray(fixed_valid, dtype=float)
    mg = np.asarray(moving_valid, dtype=float)
    # centre each image on its own mean: fewer digits lost in the differences below
    f = np.where(fixed_valid, f - f[fixed_valid].mean(), 0.0)
    g = np.where(moving_valid, g - g[moving_valid].mean(), 0.0)
    shape = (f.shape[0] + g.shape[0] - 1, f.shape[1] + g.shape[1] - 1)
    fast = tuple(fft.next_fast_len(n, real=True) for n in shape)

    def spec(a: np.ndarray, flip: bool) -> np.ndarray:
        return fft.rfft2(a[::-1, ::-1] if flip else a, s=fast)

    Ff, Fff, Fmf = spec(f, False), spec(f * f, False), spec(mf, False)
    Gg, Ggg, Gmg = spec(g, True), spec(g * g, True), spec(mg, True)
    n = _correlate(Fmf, Gmg, fast)[: shape[0], : shape[1]]
    sf = _correlate(Ff, Gmg, fast)[: shape[0], : shape[1]]
    sg = _correlate(Fmf, Gg, fast)[: shape[0], : shape[1]]
    sff = _correlate(Fff, Gmg, fast)[: shape[0], : shape[1]]
    sgg = _correlate(Fmf, Ggg, fast)[: shape[0], : shape[1]]
    sfg = _correlate(Ff, Gg, fast)[: shape[0], : shape[1]]
    n = np.round(n)
    need = min_overlap * min(mf.sum(), mg.sum())
    ok = n >= max(need, 2.0)
    safe = np.where(ok, n, 1.0)
    vf = sff - sf * sf / safe
    vg = sgg - sg * sg / safe
    floor = 1e-9 * max(float(np.max(vf, initial=0.0)), float(np.max(vg, initial=0.0)), 1e-30)
    ok &= (vf > floor) & (vg > floor)
    ncc = np.full(shape, np.nan)
    ncc[ok] = (sfg[ok] - sf[ok] * sg[ok] / safe[ok]) / np.sqrt(vf[ok] * vg[ok])
    return ncc, n


def best_shift(
    fixed: np.ndarray,
    fixed_valid: np.ndarray,
    moving: np.ndarray,
    moving_valid: np.ndarray,
    min_overlap: float = 0.3,
    exclusion_px: int = 4,
) -> tuple[tuple[int, int], float, float]:
    """The integer offset ``(dy, dx)`` of ``moving`` over ``fixed`` of highest
    normalised cross-correlation (:func:`masked_ncc`), that correlation, and its margin
    over the best correlation more than ``exclusion_px`` pixels away (another place
    that would match nearly as well makes the margin small)."""
    ncc, _ = masked_ncc(fixed, fixed_valid, moving, moving_valid, min_overlap)
    if not np.isfinite(ncc).any():
        return (0, 0), float("nan"), 0.0
    i, j = np.unravel_index(np.nanargmax(ncc), ncc.shape)
    peak = float(ncc[i, j])
    away = ncc.copy()
    k = exclusion_px
    away[max(i - k, 0) : i + k + 1, max(j - k, 0) : j + k + 1] = np.nan
    second = float(np.nanmax(away)) if np.isfinite(away).any() else -1.0
    shift = (int(i - moving.shape[0] + 1), int(j - moving.shape[1] + 1))
    return shift, round(peak, 12), peak - second
