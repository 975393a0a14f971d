"""Numba kernels of the scan search, :mod:`anodemap.diffraction.scan` (private).

The frames of a TVIPS recording are read as raw records (frame header, then pixels)
into a flat buffer; the kernels take that buffer viewed as the pixel type (1D,
contiguous) with the record stride and the pixel offset in elements, so that no copy
of the frame stack is made and the inner loops run over contiguous pixels (each loop
runs over a slice, which lets LLVM drop numba's negative-index check and vectorise;
indexing ``flat[base + p]`` instead is about 10x slower).

Sums are exact: integer accumulation in 64 bits (pixels are unsigned integers of at
most 32 bits; squared differences of 32-bit pixels above 3e9 apart would wrap).

The kernels are serial and release the GIL: the caller overlaps them with reading
(a reader thread) or runs several at once (dask threads). One pass over a frame costs
about 0.2 ns per byte here, faster than the page cache delivers it, and a numba
``prange`` launch costs 4-8 ms per call with the OpenMP threading layer on a small
shared machine (GNU OpenMP's active wait), more than the work of a chunk.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["frame_features", "line_pair_products", "runs_of_masks"]


def runs_of_masks(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encoding of boolean pixel masks in flattened (row-major) pixel order.

    Parameters
    ----------
    masks : ndarray of bool, shape (n_pixels, k)
        Column ``j`` is the mask of detector ``j``; masks may overlap.

    Returns
    -------
    start, stop : ndarray of int64, shape (n_runs,)
        Flat pixel ranges ``start <= p < stop``.
    detector : ndarray of int64, shape (n_runs,)
        The detector each run belongs to.

    Examples
    --------
    >>> m = np.array([[1, 0], [1, 1], [0, 1], [1, 0]], bool)
    >>> [a.tolist() for a in runs_of_masks(m)]
    [[0, 3, 1], [2, 4, 3], [0, 0, 1]]
    """
    starts, stops, dets = [], [], []
    for j in range(masks.shape[1]):
        m = np.concatenate([[False], np.asarray(masks[:, j], bool), [False]])
        edges = np.flatnonzero(m[1:] != m[:-1])
        starts.append(edges[0::2])
        stops.append(edges[1::2])
        dets.append(np.full(edges.size // 2, j))
    return (
        np.concatenate(starts).astype(np.int64),
        np.concatenate(stops).astype(np.int64),
        np.concatenate(dets).astype(np.int64),
    )


@numba.njit(nogil=True, cache=True)
def _one_frame(
    flat,
    rec_stride,
    data_offset,
    n_pixels,
    run_start,
    run_stop,
    run_det,
    prev,
    has_prev,
    i,
    out_det,
    total,
    fmax,
    sqdiff,
):
    """Features of frame ``i`` (see :func:`frame_features`)."""
    # Slices (not ``flat[base + p]``) let LLVM drop numba's negative-index wraparound
    # and vectorise the loops (about 10x).
    base = i * rec_stride + data_offset
    f = flat[base : base + n_pixels]
    for r in range(run_start.size):
        seg = f[run_start[r] : run_stop[r]]
        s = np.int64(0)
        for p in range(seg.size):
            s += np.int64(seg[p])
        out_det[i, run_det[r]] += s
    tot = np.int64(0)
    mx = np.int64(0)
    for p in range(n_pixels):
        v = np.int64(f[p])
        tot += v
        mx = max(mx, v)
    total[i] = tot
    fmax[i] = mx
    if i > 0:
        g = flat[base - rec_stride : base - rec_stride + n_pixels]
    elif has_prev:
        g = prev[:n_pixels]
    else:
        sqdiff[i] = -1
        return
    ch = np.int64(0)
    for p in range(n_pixels):
        d = np.int64(f[p]) - np.int64(g[p])
        ch += d * d
    sqdiff[i] = ch


@numba.njit(nogil=True, cache=True)
def frame_features(
    flat, rec_stride, data_offset, n_frames, n_pixels, run_start, run_stop, run_det, prev, out_det
):
    """Per-frame detector sums, total, maximum and squared change from the previous frame.

    Parameters
    ----------
    flat : 1D contiguous array of the pixel type
        Frame ``i``'s pixels are ``flat[i * rec_stride + data_offset + p]``,
        ``0 <= p < n_pixels``.
    rec_stride, data_offset : int
        In elements of the pixel type.
    n_frames, n_pixels : int
    run_start, run_stop, run_det : 1D int64 arrays
        Detector runs (:func:`runs_of_masks`).
    prev : 1D array (n_pixels,) of the pixel type, or an empty array
        The frame before frame 0 (the last of the previous chunk); empty for none.
    out_det : 2D int64 array (n_frames, k)
        Zeroed on entry; receives the detector sums.

    Returns
    -------
    total, fmax, sqdiff : 1D int64 arrays (n_frames,)
        ``sqdiff[i] = sum_p (F_i[p] - F_{i-1}[p])**2``; -1 for frame 0 without ``prev``.
    """
    total = np.zeros(n_frames, np.int64)
    fmax = np.zeros(n_frames, np.int64)
    sqdiff = np.zeros(n_frames, np.int64)
    has_prev = prev.size == n_pixels
    for i in range(n_frames):
        _one_frame(
            flat,
            rec_stride,
            data_offset,
            n_pixels,
            run_start,
            run_stop,
            run_det,
            prev,
            has_prev,
            i,
            out_det,
            total,
            fmax,
            sqdiff,
        )
    return total, fmax, sqdiff


@numba.njit(nogil=True, cache=True)
def line_pair_products(z, nx, ys, serpentine, hs, out):
    """Mean over detectors of ``z[a] * z[b]`` for the frames ``a`` at (y, x), ``b`` at (y + 1, x).

    The line-pair score of the scan search, for many hysteresis values in one call.

    Parameters
    ----------
    z : 2D contiguous float32 array (n_steps, k), 8 <= k < 16
        Standardised detector features of each acquisition step (NaN: no frame).
    nx : int
        Line length.
    ys : 1D int64 array
        The rows ``y`` of the pairs (each with row ``y + 1``).
    serpentine : bool
        Odd rows recorded in reverse: the frame j-th on an odd line shows
        ``x = (nx - 1 - j + h) % nx``.
    hs : 1D int64 array
        Hysteresis values (ignored unless ``serpentine``).
    out : 2D float32 array (hs.size, ys.size * nx)
        ``out[i, r * nx + x]``: the pair of row ``ys[r]`` at ``x`` for ``hs[i]``.

    Notes
    -----
    The products are summed in the order numpy's mean over a last axis of 8 to 15
    elements uses (``geometry._mean_of_columns``), so the numbers are numpy's bit for bit.
    """
    k = z.shape[1]
    kf = np.float32(k)
    for i in range(hs.size):
        h = hs[i]
        for r in range(ys.size):
            y = ys[r]
            for j in range(nx):
                # the acquisition step at (y, x = j) and at (y + 1, x = j)
                ja = j
                jb = j
                if serpentine:
                    if y % 2 == 1:
                        ja = (nx - 1 - j + h) % nx
                    else:
                        jb = (nx - 1 - j + h) % nx
                za = z[y * nx + ja]
                zb = z[(y + 1) * nx + jb]
                s = ((za[0] * zb[0] + za[1] * zb[1]) + (za[2] * zb[2] + za[3] * zb[3])) + (
                    (za[4] * zb[4] + za[5] * zb[5]) + (za[6] * zb[6] + za[7] * zb[7])
                )
                for c in range(8, k):
                    s = s + za[c] * zb[c]
                out[i, r * nx + j] = s / kf
