"""Compiled (numba) kernels of the template matcher, and the hash that seeds its decoys.

The per-pattern work of :mod:`anodemap.diffraction.matching`: the polar transform with
ring removal and intensity transform (:func:`polar_kernel`), the fused search of every
pattern over all templates, in-plane rotations and decoys (:func:`search_kernel`), the
correlation of every template alone (:func:`correlation_kernel`, for
:func:`~anodemap.diffraction.matching.match_polar`), the Friedel-pair peak and the spots'
agreement with the best template (:func:`spot_kernel`), the templates' in-plane symmetry
(:func:`symmetry_period`) and the content hash of each polar image that seeds its decoys
(:func:`content_hashes`). The method, its conventions and its references are those of
:mod:`anodemap.diffraction.matching`.

The kernels sit in a file of their own because numba's on-disk cache (``cache=True``) is
kept per source file: an edit of the Python around them then costs no recompile. The
template cache hashes this file too (:mod:`anodemap.diffraction._cache`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "content_hashes",
    "correlation_kernel",
    "polar_kernel",
    "search_kernel",
    "spot_kernel",
    "symmetry_period",
]


# Minimum fraction of an azimuthal circle inside the detector for a radius to be used
# (model choice: the median of the uniform part needs most of the circle).
_MIN_VALID_FRACTION = 0.75


# --------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _select(buf, n, k):
    """k-th smallest of ``buf[:n]`` (in place, Hoare's quickselect with median-of-three)."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        a, b, c = buf[lo], buf[mid], buf[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i = lo
        j = hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return buf[k]


@numba.njit(inline="always")
def _bilinear(patterns, i, y, x, h, w):
    """Bilinear interpolation of pattern ``i`` at (y, x), inside [0, h-1] x [0, w-1]."""
    y0 = min(int(y), h - 2)
    x0 = min(int(x), w - 2)
    fy = y - y0
    fx = x - x0
    return (1.0 - fy) * ((1.0 - fx) * patterns[i, y0, x0] + fx * patterns[i, y0, x0 + 1]) + fy * (
        (1.0 - fx) * patterns[i, y0 + 1, x0] + fx * patterns[i, y0 + 1, x0 + 1]
    )


@numba.njit(parallel=True, cache=True, fastmath=True)
def polar_kernel(patterns, centres, rpx, radii, cos_a, sin_a, gamma, out, pnorm, share, valid):
    """Polar transform, ring removal, gamma; fills ``out`` (n, n_r, 2 n_az), doubled."""
    n, h, w = patterns.shape
    n_r = rpx.size
    n_az = cos_a.size
    for i in numba.prange(n):
        cy = centres[i, 0]
        cx = centres[i, 1]
        row = np.empty(n_az, np.float32)
        ok = np.empty(n_az, np.bool_)
        buf = np.empty(n_az, np.float32)
        num = 0.0
        den = 0.0
        norm2 = 0.0
        for ir in range(n_r):
            nvalid = 0
            for ia in range(n_az):
                y = cy + rpx[ir] * sin_a[ia]
                x = cx + rpx[ir] * cos_a[ia]
                if y >= 0.0 and x >= 0.0 and y <= h - 1.0 and x <= w - 1.0:
                    v = _bilinear(patterns, i, y, x, h, w)
                    v = max(v, 0.0)
                    row[ia] = v
                    ok[ia] = True
                    buf[nvalid] = v
                    nvalid += 1
                else:
                    row[ia] = 0.0
                    ok[ia] = False
            if nvalid < _MIN_VALID_FRACTION * n_az:
                valid[i, ir] = False
                for ia in range(n_az):
                    out[i, ir, ia] = 0.0
                    out[i, ir, ia + n_az] = 0.0
                continue
            valid[i, ir] = True
            med = _select(buf, nvalid, nvalid // 2)  # median (upper for an even count)
            tot = 0.0
            for ia in range(n_az):
                if ok[ia]:
                    tot += row[ia]
            num += radii[ir] * med * nvalid
            den += radii[ir] * tot
            for ia in range(n_az):
                d = row[ia] - med
                if d > 0.0 and ok[ia]:
                    if gamma > 0.0:
                        p = d**gamma
                    else:
                        p = math.log1p(d)
                else:
                    p = 0.0
                out[i, ir, ia] = p
                out[i, ir, ia + n_az] = p
                norm2 += p * p
        pnorm[i] = math.sqrt(norm2)
        share[i] = min(max(num / den, 0.0), 1.0) if den > 0.0 else np.nan


@numba.njit(cache=True)
def _spot_one(
    i,
    patterns,
    centres,
    rpx,
    cos_a,
    sin_a,
    templ,
    shift,
    starts,
    spot_r,
    spot_a,
    spot_w,
    peak_z,
    seen_z,
    tol_px,
    pair_out,
    explained_out,
    seen_out,
    peaks_out,
):
    """:func:`spot_kernel` for pattern ``i``, writing its entries of the outputs (a
    function of its own, as :func:`_search_one` is for :func:`search_kernel`: numba
    compiles it once with ordinary calls rather than inlining the body into the
    parallel loop; maps bit for bit the same)."""
    n, h, w = patterns.shape
    n_r = rpx.size
    n_az = cos_a.size
    half = n_az // 2
    d_az = 2.0 * math.pi / n_az
    tol2 = tol_px * tol_px
    cy = centres[i, 0]
    cx = centres[i, 1]
    row = np.empty(n_az, np.float64)
    ok = np.empty(n_az, np.bool_)
    buf = np.empty(n_az, np.float64)
    z = np.full((n_r, n_az), -np.inf)
    excess = np.zeros((n_r, n_az))
    measured = np.zeros(n_r, np.bool_)
    best = -np.inf
    for ir in range(n_r):
        nvalid = 0
        for ia in range(n_az):
            y = cy + rpx[ir] * sin_a[ia]
            x = cx + rpx[ir] * cos_a[ia]
            if y >= 0.0 and x >= 0.0 and y <= h - 1.0 and x <= w - 1.0:
                v = _bilinear(patterns, i, y, x, h, w)
                row[ia] = v
                ok[ia] = True
                buf[nvalid] = v
                nvalid += 1
            else:
                ok[ia] = False
        if nvalid < _MIN_VALID_FRACTION * n_az:
            continue
        med = _select(buf, nvalid, nvalid // 2)
        k = 0
        for ia in range(n_az):
            if ok[ia]:
                buf[k] = abs(row[ia] - med)
                k += 1
        mad = 1.4826 * _select(buf, nvalid, nvalid // 2)
        if not mad > 0.0:
            continue
        measured[ir] = True
        for ia in range(n_az):
            if ok[ia]:
                z[ir, ia] = (row[ia] - med) / mad
                excess[ir, ia] = row[ia] - med
        for ia in range(half):
            if ok[ia] and ok[ia + half]:
                zz = min(row[ia], row[ia + half]) - med
                if zz / mad > best:
                    best = zz / mad
    pair_out[i] = best if best > -np.inf else 0.0
    t = templ[i]
    if t < 0:
        explained_out[i] = np.nan
        seen_out[i] = np.nan
        peaks_out[i] = 0
        return
    j0 = starts[t]
    j1 = starts[t + 1]
    k = shift[i]
    # the pattern's spots, and the share of their excess the template explains
    total = 0.0
    hit = 0.0
    n_peaks = 0
    for ir in range(n_r):
        if not measured[ir]:
            continue
        da = max(1, int(math.ceil(1.0 / (rpx[ir] * d_az))))
        for ia in range(n_az):
            if not z[ir, ia] >= peak_z:
                continue
            e = excess[ir, ia]
            top = True
            for dr in range(-1, 2):
                jr = ir + dr
                if jr < 0 or jr >= n_r or not measured[jr]:
                    continue
                for dd in range(-da, da + 1):
                    if (dr != 0 or dd != 0) and excess[jr, (ia + dd) % n_az] > e:
                        top = False
                        break
                if not top:
                    break
            if not top:
                continue
            n_peaks += 1
            total += e
            px = rpx[ir] * cos_a[ia]
            py = rpx[ir] * sin_a[ia]
            for j in range(j0, j1):
                a = (spot_a[j] + k) % n_az
                dx = rpx[spot_r[j]] * cos_a[a] - px
                dy = rpx[spot_r[j]] * sin_a[a] - py
                if dx * dx + dy * dy <= tol2:
                    hit += e
                    break
    peaks_out[i] = n_peaks
    if n_peaks == 0:
        explained_out[i] = np.nan
        seen_out[i] = np.nan
        return
    explained_out[i] = hit / total
    # the template's spots, and the share of their weight the pattern shows
    w_all = 0.0
    w_seen = 0.0
    reach = int(math.ceil(tol_px))
    for j in range(j0, j1):
        rb = spot_r[j]
        if not measured[rb]:
            continue
        wj = float(spot_w[j]) * float(spot_w[j])
        w_all += wj
        a = (spot_a[j] + k) % n_az
        tx = rpx[rb] * cos_a[a]
        ty = rpx[rb] * sin_a[a]
        found = False
        for dr in range(-reach, reach + 1):
            jr = rb + dr
            if jr < 0 or jr >= n_r or not measured[jr]:
                continue
            da = min(half, int(math.ceil(tol_px / max(rpx[jr] * d_az, 1e-12))))
            for dd in range(-da, da + 1):
                b = (a + dd) % n_az
                if z[jr, b] >= seen_z:
                    dx = rpx[jr] * cos_a[b] - tx
                    dy = rpx[jr] * sin_a[b] - ty
                    if dx * dx + dy * dy <= tol2:
                        found = True
                        break
            if found:
                break
        if found:
            w_seen += wj
    seen_out[i] = w_seen / w_all if w_all > 0.0 else 0.0


@numba.njit(parallel=True, cache=True)
def spot_kernel(
    patterns,
    centres,
    rpx,
    cos_a,
    sin_a,
    templ,
    shift,
    starts,
    spot_r,
    spot_a,
    spot_w,
    peak_z,
    seen_z,
    tol_px,
    pair_out,
    explained_out,
    seen_out,
    peaks_out,
):
    """Friedel-pair peak and spot agreement with a template, of each (smoothed) pattern.

    Per radius, ``z = (I - median) / (1.4826 MAD)`` over the circle (the ring's own noise).

    * ``pair_out``: the largest ``min(z(φ), z(φ + π))``, the weaker of two Friedel mates at
      the best pair;
    * ``peaks_out``: the *spots*, local maxima of ``I - median`` (over ±1 radius and ±1 px
      of arc) with ``z >= peak_z``;
    * ``explained_out``: the share of the spots' ``I - median`` within ``tol_px`` of a
      spot of template ``templ[i]`` turned by ``shift[i]`` azimuthal bins (NaN without
      spots or template);
    * ``seen_out``: the share of that template's weight ``w²`` (its kinematic intensity),
      over its spots on measured radii, where the pattern reaches ``z >= seen_z`` within
      ``tol_px`` (0 when none of its spots lies on a measured radius; NaN without spots).
    """
    n = patterns.shape[0]
    for i in numba.prange(n):
        _spot_one(
            np.int64(i),
            patterns,
            centres,
            rpx,
            cos_a,
            sin_a,
            templ,
            shift,
            starts,
            spot_r,
            spot_a,
            spot_w,
            peak_z,
            seen_z,
            tol_px,
            pair_out,
            explained_out,
            seen_out,
            peaks_out,
        )


@numba.njit(cache=True)
def _far_apart(ga, gb, sym, s0, s1, cos_thr):
    """True when orientations ``ga``, ``gb`` (3x3, sample -> crystal) differ by more than the
    threshold angle modulo the crystal rotations ``sym[s0:s1]``: ``max_S tr(S ga gbᵀ)`` below
    ``1 + 2 cos(threshold)``."""
    m = np.empty((3, 3))
    for a in range(3):
        for b in range(3):
            m[a, b] = ga[a, 0] * gb[b, 0] + ga[a, 1] * gb[b, 1] + ga[a, 2] * gb[b, 2]
    limit = 1.0 + 2.0 * cos_thr
    for k in range(s0, s1):
        tr = 0.0
        for a in range(3):
            for b in range(3):
                tr += sym[k, a, b] * m[b, a]
        if tr >= limit:
            return False
    return True


@numba.njit(cache=True)
def _turned(gt, theta):
    """``gt · Rz(θ)``: template orientation turned in plane by θ (passive Rz, Bunge φ1)."""
    c = math.cos(theta)
    s = math.sin(theta)
    out = np.empty((3, 3))
    for a in range(3):
        out[a, 0] = gt[a, 0] * c - gt[a, 1] * s
        out[a, 1] = gt[a, 0] * s + gt[a, 1] * c
        out[a, 2] = gt[a, 2]
    return out


@numba.njit(cache=True)
def symmetry_period(sr, sa, sw, starts, n_r, n_az, threshold):
    """In-plane rotational symmetry of each template -> period in azimuthal bins."""
    n_t = starts.size - 1
    period = np.empty(n_t, np.int64)
    dense = np.zeros((n_r, 2 * n_az), np.float32)
    for m in range(n_t):
        self2 = 0.0
        for j in range(starts[m], starts[m + 1]):
            dense[sr[j], sa[j]] += sw[j]
            dense[sr[j], sa[j] + n_az] += sw[j]
            self2 += sw[j] * sw[j]
        per = n_az
        for order in (6, 4, 3, 2):
            if n_az % order != 0:
                continue
            sh0 = n_az // order
            best = 0.0
            for sh in (sh0 - 1, sh0, sh0 + 1):
                c = 0.0
                for j in range(starts[m], starts[m + 1]):
                    c += sw[j] * dense[sr[j], sa[j] + sh]
                best = max(best, c)
            if self2 > 0.0 and best >= threshold * self2:
                per = sh0
                break
        period[m] = per
        for j in range(starts[m], starts[m + 1]):
            dense[sr[j], sa[j]] = 0.0
            dense[sr[j], sa[j] + n_az] = 0.0
    return period


@numba.njit(cache=True)
def _splitmix(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _correlate_row(img, off, sw, j0, j1, acc):
    """``acc[k] = Σ_j w_j P(a_j + k)`` for every in-plane shift k of one template.

    ``img`` is a flattened azimuth-doubled polar image and ``off[j]`` the flat index of
    spot j. Eight spots per sweep (then four, then one) cut the accumulator traffic:
    measured 1.3x for four against one, and 10 % more for eight.
    """
    n_az = acc.size
    acc[:] = 0.0
    j = j0
    while j + 8 <= j1:
        r0 = img[off[j] : off[j] + n_az]
        r1 = img[off[j + 1] : off[j + 1] + n_az]
        r2 = img[off[j + 2] : off[j + 2] + n_az]
        r3 = img[off[j + 3] : off[j + 3] + n_az]
        r4 = img[off[j + 4] : off[j + 4] + n_az]
        r5 = img[off[j + 5] : off[j + 5] + n_az]
        r6 = img[off[j + 6] : off[j + 6] + n_az]
        r7 = img[off[j + 7] : off[j + 7] + n_az]
        w0, w1, w2, w3 = sw[j], sw[j + 1], sw[j + 2], sw[j + 3]
        w4, w5, w6, w7 = sw[j + 4], sw[j + 5], sw[j + 6], sw[j + 7]
        for k in range(n_az):
            acc[k] += ((w0 * r0[k] + w1 * r1[k]) + (w2 * r2[k] + w3 * r3[k])) + (
                (w4 * r4[k] + w5 * r5[k]) + (w6 * r6[k] + w7 * r7[k])
            )
        j += 8
    while j + 4 <= j1:
        r0 = img[off[j] : off[j] + n_az]
        r1 = img[off[j + 1] : off[j + 1] + n_az]
        r2 = img[off[j + 2] : off[j + 2] + n_az]
        r3 = img[off[j + 3] : off[j + 3] + n_az]
        w0, w1, w2, w3 = sw[j], sw[j + 1], sw[j + 2], sw[j + 3]
        for k in range(n_az):
            acc[k] += (w0 * r0[k] + w1 * r1[k]) + (w2 * r2[k] + w3 * r3[k])
        j += 4
    while j < j1:
        r0 = img[off[j] : off[j] + n_az]
        w0 = sw[j]
        for k in range(n_az):
            acc[k] += w0 * r0[k]
        j += 1


@numba.njit(cache=True, nogil=True, fastmath=True)
def _row_max(acc):
    """Largest value of a correlation row. A plain running maximum, which LLVM vectorises
    (``np.argmax`` does not: it cost as much as the correlation sweeps themselves)."""
    best = acc[0]
    for k in range(1, acc.size):
        best = max(best, acc[k])
    return best


@numba.njit(cache=True, nogil=True, fastmath=True)
def _first_shift(acc, value):
    """First shift where the row reaches ``value`` (a value of the row: exact)."""
    for k in range(acc.size):
        if acc[k] >= value:
            return k
    return 0


# the two above inlined into the sweep over all templates, the loop where the time goes
# (numba inlines them into this small function only: inlined into the whole search they
# made it take 38 s to compile, called there 5 % more time to run)
_correlate_row_inline = numba.njit(inline="always")(_correlate_row.py_func)
_row_max_inline = numba.njit(inline="always")(_row_max.py_func)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _sweep(img, off, sw, starts, acc, qt):
    """``qt[m]``: the largest correlation of template ``m`` over all in-plane shifts."""
    for m in range(starts.size - 1):
        _correlate_row_inline(img, off, sw, starts[m], starts[m + 1], acc)
        qt[m] = _row_max_inline(acc)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _best_shift(img, off, sw, j0, j1, acc):
    """Best in-plane shift of one template (first on ties) and its value; ``acc`` is left
    holding the template's whole correlation row."""
    _correlate_row(img, off, sw, j0, j1, acc)
    value = _row_max(acc)
    return _first_shift(acc, value), value


@numba.njit(parallel=True, cache=True, fastmath=True)
def correlation_kernel(polar, pnorm, off, sw, starts, out_q, out_s):
    """For every pattern and template: best correlation index over in-plane rotations.

    ``polar`` (n, n_r, 2 n_az) azimuth-doubled spot images; ``off`` the flat index
    ``r_j · 2 n_az + a_j`` of each spot; ``sw`` the template weights already divided by
    the template norm. The sum for all rotations is a contiguous sweep of a doubled row per
    spot (row slices let LLVM vectorise it: measured 2.7x faster than indexing).
    """
    n = polar.shape[0]
    n_az = polar.shape[2] // 2
    n_t = starts.size - 1
    for i in numba.prange(n):
        acc = np.empty(n_az, np.float32)
        img = polar[i].ravel()
        inv = np.float32(1.0 / pnorm[i]) if pnorm[i] > 0.0 else np.float32(0.0)
        for m in range(n_t):
            bk, value = _best_shift(img, off, sw, starts[m], starts[m + 1], acc)
            out_q[i, m] = value * inv
            out_s[i, m] = bk


@numba.njit(cache=True, nogil=True, fastmath=True)
def _decoy_image(pimg, h0, band, seg_bins, out, src):
    """One decoy of a polar image: per radial band, segments of the half circle shuffled
    and rotated (``seg_bins[b]`` bins long), each azimuth with its Friedel mate."""
    n_r, n2 = pimg.shape
    n_az = n2 // 2
    half = n_az // 2
    for b in range((n_r + band - 1) // band):
        length = seg_bins[b]
        n_seg = (half + length - 1) // length
        order = np.arange(n_seg)
        h = _splitmix(h0 + np.uint64(1000003 * (b + 1)))
        for k in range(n_seg - 1, 0, -1):  # Fisher-Yates
            h = _splitmix(h)
            jj = np.int64(h % np.uint64(k + 1))
            order[k], order[jj] = order[jj], order[k]
        h = _splitmix(h)
        shift = np.int64(h % np.uint64(half))
        pos = 0
        for k in range(n_seg):
            s0 = order[k] * length
            for a in range(s0, min(s0 + length, half)):
                src[pos] = (a + shift) % half
                pos += 1
        for ir in range(b * band, min((b + 1) * band, n_r)):
            for a in range(half):
                v = pimg[ir, src[a]]
                w = pimg[ir, src[a] + half]
                out[ir, a] = v
                out[ir, a + half] = w
                out[ir, a + n_az] = v
                out[ir, a + n_az + half] = w


@numba.njit(cache=True, nogil=True, fastmath=True)
def _search_one(
    i,
    polar,
    pnorm,
    hashes,
    sw,
    off,
    starts,
    phase_starts,
    period,
    nb_starts,
    nb_idx,
    delta,
    tmat,
    oriented,
    sym,
    sym_starts,
    cos_thr,
    n_decoys,
    band,
    seg_bins,
    best_t,
    best_q,
    best_shift,
    second_q,
    q_decoy,
    winner,
):
    """:func:`search_kernel` for pattern ``i``, writing its row of the outputs.

    A function of its own, called from the parallel loop, rather than the loop's body:
    numba then compiles it once with ordinary calls to the helpers above instead of
    inlining them into the loop (measured on a cold cache: 38 s -> 15 s of compiling,
    maps bit for bit the same)."""
    n_r, n2 = polar.shape[1], polar.shape[2]
    n_az = n2 // 2
    n_t = starts.size - 1
    n_ph = phase_starts.size - 1
    step = 2.0 * math.pi / n_az
    acc = np.empty(n_az, np.float32)
    brow = np.empty(n_az, np.float32)
    qt = np.empty(n_t, np.float32)
    pimg = polar[i]
    img = pimg.ravel()
    inv = 1.0 / pnorm[i] if pnorm[i] > 0.0 else 0.0
    _sweep(img, off, sw, starts, acc, qt)
    win = 0
    q_win = np.float32(-1.0)
    for p in range(n_ph):
        t0 = phase_starts[p]
        mb = t0
        q1 = qt[t0]
        for m in range(t0 + 1, phase_starts[p + 1]):
            if qt[m] > q1:
                q1 = qt[m]
                mb = m
        s = 0
        if q1 > 0.0:
            s, _ = _best_shift(img, off, sw, starts[mb], starts[mb + 1], acc)
        else:  # nothing to match: every template scores 0, take the first
            mb = t0
            q1 = np.float32(0.0)
        best_t[i, p] = mb
        best_q[i, p] = q1 * inv
        best_shift[i, p] = s
        if q1 > q_win:
            win = p
            q_win = q1
    # Q2 of the best phase: other shifts of its best template, then the other
    # templates, best first, until one is another orientation
    p = win
    winner[i] = win
    t0 = phase_starts[p]
    t1 = phase_starts[p + 1]
    mb = best_t[i, p]
    s0 = np.int64(best_shift[i, p])
    _correlate_row(img, off, sw, starts[mb], starts[mb + 1], brow)
    q2 = np.float32(0.0)
    k0 = sym_starts[p]
    k1 = sym_starts[p + 1]
    if oriented[p]:
        g1 = _turned(tmat[mb], s0 * step)
        for k in range(n_az):
            if brow[k] > q2:
                if _far_apart(g1, _turned(tmat[mb], k * step), sym, k0, k1, cos_thr):
                    q2 = brow[k]
        # templates above Q2 in decreasing order: the first that is another
        # orientation (at its own best shift) is Q2; those near the best are passed
        seen = np.zeros(t1 - t0, np.bool_)
        seen[mb - t0] = True
        while True:
            m2 = -1
            v2 = q2
            for m in range(t0, t1):
                if qt[m] > v2 and not seen[m - t0]:
                    v2 = qt[m]
                    m2 = m
            if m2 < 0:
                break
            seen[m2 - t0] = True
            s2, _ = _best_shift(img, off, sw, starts[m2], starts[m2 + 1], acc)
            if _far_apart(g1, _turned(tmat[m2], s2 * step), sym, k0, k1, cos_thr):
                q2 = v2
                break
    else:
        per = period[mb]
        for k in range(n_az):
            d = (k - s0) % per
            d = min(d, per - d)
            if d > delta and brow[k] > q2:
                q2 = brow[k]
        excluded = np.zeros(t1 - t0, np.bool_)
        excluded[mb - t0] = True
        for jj in range(nb_starts[mb], nb_starts[mb + 1]):
            excluded[nb_idx[jj] - t0] = True
        for m in range(t0, t1):
            if qt[m] > q2 and not excluded[m - t0]:
                q2 = qt[m]
    second_q[i] = q2 * inv
    # parabolic refinement of the best phase's in-plane angle
    cm = brow[(s0 - 1) % n_az]
    c0 = brow[s0]
    cp = brow[(s0 + 1) % n_az]
    den = cm - 2.0 * c0 + cp
    frac = 0.0
    if den < 0.0:
        frac = min(max(0.5 * (cm - cp) / den, -0.5), 0.5)
    best_shift[i, p] = s0 + frac
    # decoys: the best template over all phases of each decoy image
    if n_decoys > 0:
        dimg = np.empty((n_r, n2), np.float32)
        src = np.empty(n_az // 2, np.int64)
        dflat = dimg.ravel()
        total = 0.0
        qd_t = np.empty(n_t, np.float32)
        for kd in range(n_decoys):
            _decoy_image(pimg, hashes[i] + np.uint64(kd), band, seg_bins, dimg, src)
            _sweep(dflat, off, sw, starts, acc, qd_t)
            qd = max(np.float32(0.0), qd_t.max())
            total += qd * inv
        q_decoy[i] = total / n_decoys


@numba.njit(parallel=True, cache=True, fastmath=True)
def search_kernel(
    polar,
    pnorm,
    hashes,
    sw,
    off,
    starts,
    phase_starts,
    period,
    nb_starts,
    nb_idx,
    delta,
    tmat,
    oriented,
    sym,
    sym_starts,
    cos_thr,
    n_decoys,
    band,
    seg_bins,
):
    """Matching of every pattern: best template per phase, reliability runner-up, decoys.

    Per pattern, every template is correlated at every in-plane shift (exhaustive):

    * per phase, the best template and in-plane shift (first on ties);
    * for the best phase, ``Q2``: the best solution that is another orientation (another
      template at its best shift, or another shift of the best template), as in the
      notes of :mod:`anodemap.diffraction.matching`;
    * the mean over ``n_decoys`` decoys (0: none, ``q_decoy`` is then 0) of the best
      correlation over all templates.

    The exhaustive sweep replaced an exact branch and bound over templates and blocks of
    shifts: once the row maximum was vectorised (:func:`_row_max`), the sweep of all
    templates cost less than the bounds and the branching (measured on the benchmark's
    simulated SPED, 1860 templates: 0.93 s against 1.5 s for 2304 patterns, one decoy
    pass), and it needs neither.

    Returns ``winner`` (n,: the best phase, first on ties), ``best_t, best_q, best_shift``
    (n, n_phases; the shift of the best phase refined by a parabola through the
    correlation peak), ``second_q`` (n,) and ``q_decoy`` (n,); correlations are
    normalised (Q).
    """
    n = polar.shape[0]
    n_ph = phase_starts.size - 1
    best_t = np.zeros((n, n_ph), np.int64)
    best_q = np.zeros((n, n_ph), np.float64)
    best_shift = np.zeros((n, n_ph), np.float64)
    second_q = np.zeros(n, np.float64)
    q_decoy = np.zeros(n, np.float64)
    winner = np.zeros(n, np.int64)
    for i in numba.prange(n):
        # the index as int64: numba types a prange index int64 where it types the loop
        # and uint64 where it lowers it, and each type was a compile of _search_one of its
        # own (measured: 2.6 s of the 13 s that search_kernel took to compile)
        _search_one(
            np.int64(i),
            polar,
            pnorm,
            hashes,
            sw,
            off,
            starts,
            phase_starts,
            period,
            nb_starts,
            nb_idx,
            delta,
            tmat,
            oriented,
            sym,
            sym_starts,
            cos_thr,
            n_decoys,
            band,
            seg_bins,
            best_t,
            best_q,
            best_shift,
            second_q,
            q_decoy,
            winner,
        )
    return winner, best_t, best_q, best_shift, second_q, q_decoy


def content_hashes(polar: np.ndarray, n_az: int, seed: int) -> np.ndarray:
    """A 64-bit hash of each pattern's polar image (chunking-independent decoy seeds).

    ``Σ_k b_k w_k mod 2^64 XOR seed`` over every ``step``-th 32-bit word ``b_k`` of the
    image's first ``n_az`` azimuths, ``w_k = (2k + 1) · 0x9E3779B1``.
    """
    n, n_r = polar.shape[:2]
    step = max(1, (n_r * n_az) // 4096)
    out = np.empty(n, np.uint64)
    _hash_kernel(polar.view(np.uint32), n_az, step, np.uint64(seed), out)
    return out


@numba.njit(cache=True, nogil=True)
def _hash_kernel(bits, n_az, step, seed, out):
    """See :func:`content_hashes` (uint64 arithmetic wraps, as numpy's does)."""
    n, n_r = bits.shape[:2]
    mult = np.uint64(0x9E3779B1)
    for i in range(n):
        acc = np.uint64(0)
        k = 0
        q = 0
        for r in range(n_r):
            for a in range(n_az):
                if q % step == 0:
                    acc += np.uint64(bits[i, r, a]) * (
                        (np.uint64(2) * np.uint64(k) + np.uint64(1)) * mult
                    )
                    k += 1
                q += 1
        out[i] = acc ^ seed
