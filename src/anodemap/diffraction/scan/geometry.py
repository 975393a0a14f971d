"""The scan geometry from image content: acquisition order and the line-length search.

Acquisition step ``y * nx + j`` is recorded at a position that the line length ``nx``,
serpentine scanning and its hysteresis fix (:func:`acquisition_rows`). Frames one line
apart show neighbouring positions, so for the true geometry they agree best: the line
length is the local peak of the mean correlation of frames one line apart
(:func:`find_line_length`), among candidates from the autocorrelation of the features
(:func:`autocorr_candidates`) or the divisors of the positions counted; serpentine
scanning and its hysteresis are those under which each line agrees best with the next
(:func:`best_geometry`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "acquisition_map",
    "acquisition_rows",
    "autocorr_candidates",
    "best_geometry",
    "find_line_length",
]


def _kernels():
    """The numba kernels, imported (and compiled or loaded from cache) on first use."""
    from anodemap.diffraction.scan import _kernels as kernels

    return kernels


def acquisition_rows(rows: np.ndarray, nx: int, serpentine: bool, hysteresis: int) -> np.ndarray:
    """Acquisition step of each scan position of the given scan rows, (len(rows), nx)."""
    rows = np.asarray(rows, dtype=np.int64)
    j = np.arange(nx, dtype=np.int64)
    jj = np.broadcast_to(j, (rows.size, nx))
    if serpentine:
        # on odd lines the frame j-th on the line shows x = (nx - 1 - j + h) % nx
        odd = (rows % 2 == 1)[:, None]
        jj = np.where(odd, (nx - 1 - j + hysteresis) % nx, j)
    return rows[:, None] * nx + jj


def acquisition_map(ny: int, nx: int, serpentine: bool, hysteresis: int) -> np.ndarray:
    """Acquisition step of each scan position (ny, nx), the inverse of the frame order."""
    return acquisition_rows(np.arange(ny), nx, serpentine, hysteresis)


def _mean_of_columns(cols: list[np.ndarray]) -> np.ndarray:
    """``np.stack(cols, -1).mean(axis=-1)`` with the same bits, without the stack.

    numpy sums a short contiguous last axis pairwise: eight partial sums combined as
    ``((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7))``, then the rest one by one
    (fewer than eight: one by one). Doing those additions column by column gives the
    same numbers several times faster than a reduction over an axis of nine.
    """
    k = len(cols)
    if 8 <= k < 16:
        c = cols
        s = ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]))
        for extra in c[8:]:
            s = s + extra
    else:
        s = np.stack(cols, axis=-1).sum(axis=-1)
    return s / s.dtype.type(k)


def _line_pairs_score(cols: list[np.ndarray], n: int, nx: int, serpentine: bool, h: int) -> float:
    """Mean correlation of the frames at (y, x) and (y + 1, x) for one scan geometry.

    ``cols`` are the standardised features of the acquisition steps, one array per
    virtual detector.
    """
    ny = n // nx
    if ny < 2 or nx < 2:
        return -np.inf
    ys = np.unique(np.linspace(0, ny - 2, min(ny - 1, 64)).astype(int))  # at most 64 pairs
    a = acquisition_rows(ys, nx, serpentine, h)
    b = acquisition_rows(ys + 1, nx, serpentine, h)
    prod = _mean_of_columns([c[a] * c[b] for c in cols])  # NaN where a position is missing
    good = np.isfinite(prod)
    return float(prod[good].mean()) if good.any() else -np.inf


def _line_pair_scores(z: np.ndarray, n: int, nx: int, serpentine: bool, hs) -> list[float]:
    """:func:`_line_pairs_score` for each hysteresis in ``hs`` (the same numbers).

    With 8 to 15 detectors (the stream's 1 + 8) the pairs' products come from one
    compiled call for all ``hs``; otherwise from :func:`_line_pairs_score` one by one.
    """
    hs = np.asarray(list(hs), dtype=np.int64)
    ny = n // nx
    k = z.shape[1]
    if ny < 2 or nx < 2:
        return [-np.inf] * hs.size
    if not (8 <= k < 16 and z.dtype == np.float32):
        cols = [np.ascontiguousarray(z[:, c]) for c in range(k)]
        return [_line_pairs_score(cols, n, nx, serpentine, int(h)) for h in hs]
    ys = np.unique(np.linspace(0, ny - 2, min(ny - 1, 64)).astype(int)).astype(np.int64)
    prod = np.empty((hs.size, ys.size * nx), np.float32)
    _kernels().line_pair_products(np.ascontiguousarray(z), nx, ys, bool(serpentine), hs, prod)
    out = []
    for p in prod:
        good = np.isfinite(p)  # NaN where a position is missing
        out.append(float(p[good].mean()) if good.any() else -np.inf)
    return out


def best_geometry(z: np.ndarray, n: int, nx: int, max_h: int | None, serp_fixed, h_fixed):
    """Best (score, serpentine, h) for a line length; each part may be fixed by the user."""
    best = (-np.inf, False, 0)
    serps = [serp_fixed] if serp_fixed is not None else [False, True]
    for serp in serps:
        if not serp:
            hs = [0]
        elif h_fixed is not None:
            hs = [int(h_fixed)]
        else:
            hmax = min(nx // 4, 16) if max_h is None else int(max_h)
            hs = list(range(-hmax, hmax + 1))
        for h, s in zip(hs, _line_pair_scores(z, n, nx, serp, hs), strict=True):
            if s > best[0] + 1e-12 or (abs(s - best[0]) <= 1e-12 and abs(h) < abs(best[2])):
                best = (s, serp, h)
    return best


def autocorr_candidates(z: np.ndarray, n_peaks: int = 8) -> list[int]:
    """Line-length candidates from local peaks of the feature autocorrelation."""
    zz = np.nan_to_num(z)
    n = zz.shape[0]
    nfft = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(zz, nfft, axis=0)
    ac = np.fft.irfft((f * f.conj()).real.sum(axis=1), nfft)[:n]
    ac = ac / np.maximum(n - np.arange(n), 1)
    lags = np.arange(3, n // 2)
    if lags.size == 0:
        return []
    peak = (ac[lags] > ac[lags - 1]) & (ac[lags] >= ac[lags + 1])
    cand = lags[peak]
    cand = cand[np.argsort(-ac[cand])][:n_peaks]
    out = set()
    for c in cand:
        out.add(int(c))
        if c % 2 == 0:
            out.add(int(c // 2))  # serpentine scans peak at two lines
    return sorted(out)


def find_line_length(z, n, candidates, max_h, serp_fixed, h_fixed, exact: bool):
    """Choose the line length by the local peak of the line-pair correlation."""
    cache: dict[int, tuple] = {}

    def geom(L):
        if L not in cache:
            if L == 1:  # "lines" of one frame: consecutive frames (NaN: a missing position)
                prod = _mean_of_columns([z[:-1, c] * z[1:, c] for c in range(z.shape[1])])
                good = np.isfinite(prod)
                cache[L] = (float(prod[good].mean()) if good.any() else -np.inf, False, 0)
            else:
                cache[L] = best_geometry(z, n, L, max_h, serp_fixed, h_fixed)
        return cache[L]

    rows = []
    for L in candidates:
        if L < 2 or n // L < 2 or (exact and n % L):
            continue
        s, serp, h = geom(L)
        # local peak: frames one line apart must agree better than one frame off (for
        # lines of 2, one frame off is the next frame: on a specimen whose content
        # changes slowly along the line, frames 2 apart agree well without being a line
        # apart, but the next frame agrees better still)
        neighbours = [geom(L2)[0] for L2 in (L - 1, L + 1) if L2 >= 1 and n // L2 >= 2]
        prominence = s - max(neighbours) if neighbours else s
        rows.append((s, prominence, L, serp, h))
    if not rows:
        return None, []
    peaked = [r for r in rows if r[1] > 0] or rows
    peaked.sort(key=lambda r: (-r[0], r[2]))
    return peaked[0], peaked[1:3]
