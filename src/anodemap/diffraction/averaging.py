"""Averages over a 4D-STEM scan: mean patterns of regions and azimuthal averages I(s).

:func:`mean_pattern` and :func:`mean_patterns` (the mean pattern of each region of a label
map, descan-corrected), :func:`averaged_patterns` (those and each region's pooled I(s),
in one pass) and :func:`azimuthal_average` (I(s) of one pattern or of every pattern, an
:class:`AzimuthalProfile`). The sums over regions are a reduction over the same chunks as
the per-pattern kernels, written with ``dask.array.blockwise``: they run out of core and
on a ``dask.distributed`` cluster. Conventions as in :mod:`anodemap.diffraction.virtual`,
which re-exports every public name of this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from anodemap._compute import (
    OutputSpec,
    chunked_view,
    cluster_result,
    default_rows_per_chunk,
    local_scheduler,
    map_pixels,
    progress_context,
)
from anodemap.diffraction._data4d import batch_size, chunk_rows, data_array, resolve_calibration
from anodemap.diffraction.beam import resolve_center
from anodemap.diffraction.calibration import ReciprocalCalibration, require_4d
from anodemap.errors import AnodemapInputError

__all__ = [
    "AzimuthalProfile",
    "averaged_patterns",
    "azimuthal_average",
    "mean_pattern",
    "mean_patterns",
]


def _compute_array(arr: Any, client: Any, scheduler: str | None, progress: bool) -> np.ndarray:
    if client is not None:
        return np.asarray(cluster_result(client, client.compute(arr)))
    with progress_context(progress):
        return np.asarray(arr.compute(scheduler=local_scheduler(scheduler)))


# --------------------------------------------------------------- averaged pattern
@numba.njit(cache=True, nogil=True)
def _group_sums_kernel(block, labels, shifts, centres, scale_y, scale_x, width, out):
    """Accumulate, per label, the whole-pixel-shifted patterns and their radial profile.

    ``out`` rows per label: ``[sum (ky·kx), count (ky·kx), I(s) sum (n_bins), weight
    (n_bins)]``; ``n_bins = (out.shape[1] - 2·ky·kx) // 2`` (0: no profile). Pattern
    pixel (y, x) goes to (y + shift_y, x + shift_x) where that lies on the detector; for
    the profile it lies at s = |(y, x) - centre| (in 1/Å) and is split linearly between
    the two nearest bins (as :func:`azimuthal_average`).
    """
    n, ky, kx = block.shape
    npx = ky * kx
    n_bins = (out.shape[1] - 2 * npx) // 2
    for i in range(n):
        lab = labels[i]
        if lab < 0 or lab >= out.shape[0]:
            continue
        sy = shifts[i, 0]
        sx = shifts[i, 1]
        cy = centres[i, 0]
        cx = centres[i, 1]
        row = out[lab]
        for y in range(ky):
            ty = y + sy
            dy = (y - cy) * scale_y
            inside_y = 0 <= ty < ky
            for x in range(kx):
                v = float(block[i, y, x])
                tx = x + sx
                if inside_y and 0 <= tx < kx:
                    row[ty * kx + tx] += v
                    row[npx + ty * kx + tx] += 1.0
                if n_bins > 0:
                    dx = (x - cx) * scale_x
                    r = math.sqrt(dy * dy + dx * dx) / width
                    k0 = int(r)
                    f = r - k0
                    if k0 < n_bins:
                        row[2 * npx + k0] += v * (1.0 - f)
                        row[2 * npx + n_bins + k0] += 1.0 - f
                    if k0 + 1 < n_bins:
                        row[2 * npx + k0 + 1] += v * f
                        row[2 * npx + n_bins + k0 + 1] += f


def _group_sums(
    block: np.ndarray,
    labels: np.ndarray,
    *centers: np.ndarray,
    target: Any,
    n_labels: int,
    scale: tuple[float, float],
    width: float,
    n_bins: int,
) -> np.ndarray:
    """Sums of a chunk per label (:func:`_group_sums_kernel`), as one row ``(1, ...)``."""
    nav = block.shape[:-2]
    ky, kx = block.shape[-2:]
    n = int(math.prod(nav))
    lab = np.ascontiguousarray(np.asarray(labels).reshape(n), dtype=np.int64)
    if centers:
        cen = np.asarray(centers[0], dtype=np.float64).reshape(n, 2)
        shifts = np.rint(np.asarray(target, dtype=np.float64)[None, :] - cen).astype(np.int64)
    else:  # no centres: patterns summed as they are, the profile around the middle
        cen = np.broadcast_to(np.asarray(target, dtype=np.float64), (n, 2))
        shifts = np.zeros((n, 2), np.int64)
    out = np.zeros((n_labels, 2 * ky * kx + 2 * n_bins))
    _group_sums_kernel(
        block.reshape(n, ky, kx),
        lab,
        np.ascontiguousarray(shifts),
        np.ascontiguousarray(cen),
        float(scale[0]),
        float(scale[1]),
        float(width),
        out,
    )
    return out.reshape(1, -1)


def _grouped(
    data: Any,
    labels: np.ndarray,
    n_labels: int | None,
    center: Any,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    width: float = 1.0,
    n_bins: int = 0,
    rows_per_chunk: int | None,
    client: Any,
    scheduler: str | None,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One pass: per label, the mean pattern (descan-corrected if ``center``), the number
    of patterns, and the radial sums ``(num, weight)`` of ``n_bins`` bins."""
    import dask.array as da

    shape = require_4d(data)
    arr = data_array(data)
    nav, sig = shape[:2], shape[2:]
    labels = np.asarray(labels)
    if labels.shape != nav:
        raise AnodemapInputError(f"label map of shape {labels.shape}: the scan is {nav}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise AnodemapInputError(f"labels must be integers, got {labels.dtype}")
    labels = labels.astype(np.int64)
    if n_labels is None:
        n_labels = int(labels.max()) + 1 if labels.size else 0
    n_labels = int(n_labels)
    if n_labels < 1 or not np.any((labels >= 0) & (labels < n_labels)):
        raise AnodemapInputError("the label map selects no scan position")
    n_patterns = np.bincount(labels[(labels >= 0) & (labels < n_labels)], minlength=n_labels)
    cmap = None
    if center is not None:
        fixed, cmap = resolve_center(center, nav, sig)
        if cmap is None:
            raise AnodemapInputError("center: give a per-pattern map or a DirectBeam")
    itemsize = max(np.dtype(arr.dtype).itemsize, 1)
    rows = chunk_rows(arr, rows_per_chunk) or default_rows_per_chunk(shape, 2, itemsize)
    rows = int(max(1, min(rows, nav[0])))
    darr = (
        arr.rechunk((rows, nav[1]) + sig)
        if isinstance(arr, da.Array)
        else chunked_view(arr, (rows, nav[1]) + sig)  # views: from_array copies it whole
    )
    dl = da.from_array(labels, chunks=(rows, nav[1]))
    args: list[Any] = [darr, ("n0", "n1", "s0", "s1"), dl, ("n0", "n1")]
    if cmap is not None:
        args += [da.from_array(cmap, chunks=(rows, nav[1], 2)), ("n0", "n1", "c")]
    size = sig[0] * sig[1]
    width_row = 2 * size + 2 * n_bins
    partial = da.blockwise(
        _group_sums,
        ("n0", "out"),
        *args,
        new_axes={"out": n_labels * width_row},
        adjust_chunks={"n0": 1},
        concatenate=True,
        dtype=np.float64,
        meta=np.empty((0, 0), dtype=np.float64),
        target=np.array([(sig[0] - 1) / 2.0, (sig[1] - 1) / 2.0]),
        n_labels=n_labels,
        scale=tuple(float(v) for v in scale),
        width=float(width),
        n_bins=int(n_bins),
    )
    res = _compute_array(partial.sum(axis=0), client, scheduler, progress)
    res = res.reshape(n_labels, width_row)
    total, count = res[:, :size], res[:, size : 2 * size]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, 0.0)
    return (
        mean.reshape((n_labels, *sig)),
        n_patterns,
        res[:, 2 * size : 2 * size + n_bins],
        res[:, 2 * size + n_bins :],
    )


def mean_pattern(
    data: Any,
    region: np.ndarray | None = None,
    *,
    center: Any = None,
    rows_per_chunk: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Averaged pattern of a region of the scan (position-averaged diffraction).

    The one-region case of :func:`mean_patterns` (see there for how it runs).

    Parameters
    ----------
    data : Dataset or array, shape (ny, nx, ky, kx)
    region : ndarray of bool (ny, nx), optional
        Scan positions to average (default: all).
    center : None, ndarray (ny, nx, 2) or DirectBeam
        If given, every pattern is first moved by a whole-pixel shift that brings its
        centre onto the pattern middle (descan-corrected average); detector pixels that
        receive no data from a pattern are left out of that pixel's mean.

    Returns
    -------
    ndarray (ky, kx)
        Mean counts per pixel.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.arange(4.0)[:, None, None, None] * np.ones((4, 1, 3, 3))
    >>> float(mean_pattern(data, np.array([[True], [False], [True], [False]]))[0, 0])
    1.0
    """
    nav = require_4d(data)[:2]
    if region is None:
        region = np.ones(nav, dtype=bool)
    region = np.asarray(region)
    if region.shape != nav:
        raise AnodemapInputError(f"region of shape {region.shape}: the scan is {nav}")
    if not region.any():
        raise AnodemapInputError("the region selects no scan position")
    means, _ = mean_patterns(
        data,
        np.where(region.astype(bool), 0, -1),
        1,
        center=center,
        rows_per_chunk=rows_per_chunk,
        client=client,
        scheduler=scheduler,
        progress=progress,
    )
    return means[0]


def mean_patterns(
    data: Any,
    labels: np.ndarray,
    n_labels: int | None = None,
    *,
    center: Any = None,
    rows_per_chunk: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Averaged pattern of every region of a label map, in one pass over the data.

    A chunked reduction: ``dask.array.blockwise`` computes, for every chunk of scan rows,
    the sum of its patterns per label and how many patterns went into each detector
    pixel (two small arrays per chunk), and the chunk results are summed. Only those
    partial sums leave the workers, so it runs out of core and on a
    ``dask.distributed`` cluster (``client=``).

    Parameters
    ----------
    data : Dataset or array, shape (ny, nx, ky, kx)
    labels : ndarray of int (ny, nx)
        Region of each scan position: ``0 .. n_labels - 1``; negative: in none.
    n_labels : int, optional
        Number of regions (default: the largest label + 1).
    center : None, ndarray (ny, nx, 2) or DirectBeam
        As in :func:`mean_pattern`: descan-corrected averages, centred on the pattern
        middle ``((ky - 1) / 2, (kx - 1) / 2)`` to the nearest pixel.

    Returns
    -------
    means : ndarray (n_labels, ky, kx)
        Mean counts per pixel of each region (zeros for an empty region).
    n_patterns : ndarray of int (n_labels,)
        Scan positions averaged in each region.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.arange(4.0)[:, None, None, None] * np.ones((4, 1, 3, 3))
    >>> means, n = mean_patterns(data, np.array([[0], [1], [0], [-1]]))
    >>> means[:, 0, 0].tolist(), n.tolist()
    ([1.0, 1.0], [2, 1])
    """
    means, n_patterns, _, _ = _grouped(
        data,
        labels,
        n_labels,
        center,
        rows_per_chunk=rows_per_chunk,
        client=client,
        scheduler=scheduler,
        progress=progress,
    )
    return means, n_patterns


def averaged_patterns(
    data: Any,
    labels: np.ndarray,
    n_labels: int | None = None,
    *,
    center: Any,
    calibration: Any = None,
    bin_width: float | None = None,
    s_max: float | None = None,
    rows_per_chunk: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, AzimuthalProfile]:
    """Descan-corrected mean pattern and I(s) of every region of a label map, one pass.

    The mean patterns are those of :func:`mean_patterns` (whole-pixel shifts onto the
    pattern middle). The profiles are not taken from them: every pattern's pixels are
    binned by their distance from its own sub-pixel centre, as :func:`azimuthal_average`
    bins them, and the bins are summed over the region (a pooled azimuthal average,
    which equals the mean of the patterns' own I(s) where their bins hold the same
    pixels), so the rings keep their positions and widths to a fraction of a pixel.

    Parameters
    ----------
    data : Dataset or array, shape (ny, nx, ky, kx)
    labels : ndarray of int (ny, nx)
        Region of each scan position: ``0 .. n_labels - 1``; negative: in none.
    n_labels : int, optional
        Number of regions (default: the largest label + 1). Given, a label map that
        selects no position gives NaN averages and zero counts, without reading the data.
    center : ndarray (ny, nx, 2) or DirectBeam
        Each pattern's beam centre (pixels).
    calibration : ReciprocalCalibration or float, optional
        1/Å per pixel (default: from the Dataset's signal axes).
    bin_width : float, optional
        Bin width in 1/Å (default: one pixel).
    s_max : float, optional
        Largest s (default: the largest circle around every centre of the selected
        patterns that lies inside the detector, so that every bin is a full ring).

    Returns
    -------
    means : ndarray (n_labels, ky, kx)
    n_patterns : ndarray of int (n_labels,)
    profile : AzimuthalProfile
        ``intensity`` (n_labels, n_bins): mean counts per pixel at ``s``; NaN for an
        empty region.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.ones((2, 2, 17, 17))
    >>> centres = np.full((2, 2, 2), 8.0)
    >>> means, n, prof = averaged_patterns(data, np.array([[0, 0], [1, -1]]),
    ...                                    center=centres, calibration=0.1)
    >>> n.tolist(), prof.intensity.shape, float(prof.intensity[1, 3])
    ([2, 1], (2, 9), 1.0)
    """
    shape = require_4d(data)
    nav, sig = shape[:2], shape[2:]
    cal = resolve_calibration(data, calibration)
    fixed, cmap = resolve_center(center, nav, sig)
    if cmap is None:
        raise AnodemapInputError("center: give a per-pattern map or a DirectBeam")
    width = float(bin_width) if bin_width is not None else min(cal.scale)
    if not width > 0:
        raise AnodemapInputError(f"bin_width={bin_width}: must be positive (1/Å)")
    lab = np.asarray(labels)
    top = s_max
    if top is None:  # full rings around the centres of the patterns averaged
        chosen = lab >= 0 if n_labels is None else (lab >= 0) & (lab < int(n_labels))
        cs = cmap[chosen] if lab.shape == nav and chosen.any() else cmap.reshape(-1, 2)
        top = _full_ring_s(cs, sig, cal.scale)
    if not top > 0:
        raise AnodemapInputError("the centres lie on or outside the detector edge")
    n_bins = int(math.floor(top / width)) + 1
    if n_labels is not None and lab.shape == nav and not np.any((lab >= 0) & (lab < n_labels)):
        # no pattern in any group (a scan of vacuum): nothing to read
        k = int(n_labels)
        return (
            np.full((k, *sig), np.nan),
            np.zeros(k, np.int64),
            AzimuthalProfile(np.arange(n_bins) * width, np.full((k, n_bins), np.nan), cal),
        )
    means, n_patterns, num, den = _grouped(
        data,
        labels,
        n_labels,
        cmap,
        scale=cal.scale,
        width=width,
        n_bins=n_bins,
        rows_per_chunk=rows_per_chunk,
        client=client,
        scheduler=scheduler,
        progress=progress,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        intensity = np.where(den > 0, num / den, np.nan)
    intensity[n_patterns == 0] = np.nan
    return means, n_patterns, AzimuthalProfile(np.arange(n_bins) * width, intensity, cal)


# ------------------------------------------------------------------ azimuthal average
@dataclass
class AzimuthalProfile:
    """Azimuthal average I(s).

    Attributes
    ----------
    s : ndarray (n_bins,)
        Bin centres, s = 1/d in 1/Å (bin k at k × bin width).
    intensity : ndarray (..., n_bins)
        Mean counts per pixel in each bin, per pattern (ny, nx, n_bins) or for one
        pattern (n_bins,).
    calibration : ReciprocalCalibration
    """

    s: np.ndarray
    intensity: np.ndarray
    calibration: ReciprocalCalibration


def _ellipse_factors(ellipse: Any) -> tuple[float, float, float, float] | None:
    """(√(ab)/a, √(ab)/b, cos θ, sin θ) of an ellipse with semi-axes a ≥ b along θ and
    θ + 90° (None for None): offsets scaled by these along the axes lie on circles.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> [round(v, 4) for v in _ellipse_factors(SimpleNamespace(a=1.02, b=1.0, angle_rad=0.0))]
    [0.9901, 1.01, 1.0, 0.0]
    """
    if ellipse is None:
        return None
    mean = math.sqrt(ellipse.a * ellipse.b)
    return (
        mean / ellipse.a,
        mean / ellipse.b,
        math.cos(ellipse.angle_rad),
        math.sin(ellipse.angle_rad),
    )


def _full_ring_s(centres: np.ndarray, sig: tuple[int, ...], scale: tuple[float, float]) -> float:
    """Largest s (1/Å) whose circle around every centre ``(n, 2)`` (px) lies inside the
    detector: the last radius at which every azimuthal bin is a full ring."""
    cs = np.asarray(centres, dtype=float).reshape(-1, 2)
    return float(
        np.min(
            np.minimum.reduce(
                [
                    cs[:, 0] * scale[0],
                    (sig[0] - 1 - cs[:, 0]) * scale[0],
                    cs[:, 1] * scale[1],
                    (sig[1] - 1 - cs[:, 1]) * scale[1],
                ]
            )
        )
    )


def _bin_weights(
    dy: np.ndarray,
    dx: np.ndarray,
    scale: tuple[float, float],
    width: float,
    ellipse: tuple[float, float, float, float] | None = None,
):
    """Bin index and linear-split weight of each pixel (pixel shared by two bins).

    ``ellipse`` = (factor along the major axis, factor along the minor axis, cos, sin of
    the major axis's angle): the ring distortion undone (:func:`_ellipse_factors`); the
    radius then in pixels of the geometric-mean scale."""
    if ellipse is None:
        s = np.sqrt((dy * scale[0]) ** 2 + (dx * scale[1]) ** 2) / width
    else:
        fu, fv, c, sn = ellipse
        u = (dx * c + dy * sn) * fu
        v = (dy * c - dx * sn) * fv
        s = np.sqrt(u * u + v * v) * math.sqrt(scale[0] * scale[1]) / width
    k0 = np.floor(s).astype(np.int64)
    f = s - k0
    return k0, f


def _azimuthal_kernel(
    block: np.ndarray,
    *centers: np.ndarray,
    scale: tuple[float, float],
    width: float,
    n_bins: int,
    matrix: Any,
    ellipse: tuple[float, float, float, float] | None = None,
) -> dict[str, np.ndarray]:
    """I(s) of each pattern in ``block`` (n, ky, kx); each pixel's count is split
    linearly between the two nearest bin centres (model choice: smoother than nearest-bin
    histogramming, and a peak between two bins keeps its position)."""
    n, ky, kx = block.shape
    out = np.empty((n, n_bins))
    step = batch_size(ky * kx * 3)
    yy = np.arange(ky, dtype=float)
    xx = np.arange(kx, dtype=float)
    for start in range(0, n, step):
        x = np.asarray(block[start : start + step], dtype=np.float64)
        nb = x.shape[0]
        sl = slice(start, start + nb)
        if matrix is not None:
            out[sl] = np.asarray(matrix.T @ x.reshape(nb, -1).T).T
            continue
        c = np.asarray(centers[0][sl], dtype=float)
        dy = yy[None, :, None] - c[:, 0, None, None]
        dx = xx[None, None, :] - c[:, 1, None, None]
        k0, f = _bin_weights(dy, dx, scale, width, ellipse)
        base = (np.arange(nb) * (n_bins + 1))[:, None, None]
        size = nb * (n_bins + 1)
        lo = np.where(k0 < n_bins, k0, n_bins) + base
        hi = np.where(k0 + 1 < n_bins, k0 + 1, n_bins) + base
        num = np.bincount(lo.ravel(), (x * (1 - f)).ravel(), size) + np.bincount(
            hi.ravel(), (x * f).ravel(), size
        )
        den = np.bincount(lo.ravel(), (1 - f).ravel(), size) + np.bincount(
            hi.ravel(), f.ravel(), size
        )
        num = num.reshape(nb, n_bins + 1)[:, :n_bins]
        den = den.reshape(nb, n_bins + 1)[:, :n_bins]
        out[sl] = num / den
    return {"intensity": out}


def azimuthal_average(
    data: Any,
    *,
    calibration: Any = None,
    center: Any = None,
    bin_width: float | None = None,
    s_max: float | None = None,
    rows_per_chunk: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool = False,
    ellipse: Any = None,
) -> AzimuthalProfile:
    """Azimuthal average I(s) of one pattern or of every pattern, s = 1/d in 1/Å.

    Parameters
    ----------
    data : Dataset or array, shape (ky, kx) or (ny, nx, ky, kx)
        One pattern (e.g. from :func:`mean_pattern`) or a 4D dataset.
    calibration : ReciprocalCalibration or float, optional
        1/Å per pixel (default: from the Dataset's signal axes; an array needs it).
    center : None, (cy, cx), ndarray (ny, nx, 2) or DirectBeam
        Beam centre (default: the pattern middle).
    bin_width : float, optional
        Bin width in 1/Å (default: one pixel).
    s_max : float, optional
        Largest s (default: the largest circle around every centre that lies inside the
        detector, so that every bin is a full ring).
    ellipse : Ellipse, optional
        An elliptical ring distortion (:func:`anodemap.diffraction.rings.measure_ellipse`;
        its axes and angle, not its centre) undone about each centre: s is then measured
        in the geometric-mean pixel size.

    Returns
    -------
    AzimuthalProfile

    Examples
    --------
    >>> import numpy as np
    >>> prof = azimuthal_average(np.ones((33, 33)), calibration=0.01)
    >>> prof.s[:3], round(float(prof.intensity[5]), 9)
    (array([0.  , 0.01, 0.02]), 1.0)
    """
    arr = data_array(data)
    ndim = len(arr.shape)
    if ndim == 4:
        require_4d(data)
    elif ndim != 2:
        raise AnodemapInputError(
            f"expected one pattern (ky, kx) or a 4D-STEM dataset (ny, nx, ky, kx), got "
            f"shape {tuple(arr.shape)}"
        )
    cal = resolve_calibration(data, calibration)
    sig = tuple(int(n) for n in arr.shape[-2:])
    nav = tuple(int(n) for n in arr.shape[:-2])
    fixed, cmap = resolve_center(center, nav, sig)
    width = float(bin_width) if bin_width is not None else min(cal.scale)
    if not width > 0:
        raise AnodemapInputError(f"bin_width={bin_width}: must be positive (1/Å)")
    cs = np.asarray(fixed, dtype=float).reshape(-1, 2) if cmap is None else cmap.reshape(-1, 2)
    factors = _ellipse_factors(ellipse)
    top = float(s_max) if s_max is not None else _full_ring_s(cs, sig, cal.scale)
    if s_max is None and factors is not None:
        top *= min(factors[0], factors[1])  # the edge seen through the correction
    if top <= 0:
        raise AnodemapInputError("the centre lies on or outside the detector edge")
    n_bins = int(math.floor(top / width)) + 1
    s = np.arange(n_bins) * width
    matrix = None
    if cmap is None:
        from scipy import sparse

        yy, xx = np.mgrid[: sig[0], : sig[1]]
        k0, f = _bin_weights(yy - fixed[0], xx - fixed[1], cal.scale, width, factors)
        k0, f = k0.ravel(), f.ravel()
        pix = np.arange(k0.size)
        rows = np.concatenate([pix, pix])
        cols = np.concatenate([k0, k0 + 1])
        vals = np.concatenate([1 - f, f])
        keep = cols < n_bins
        m = sparse.csr_matrix(
            (vals[keep], (rows[keep], cols[keep])), shape=(sig[0] * sig[1], n_bins)
        )
        norm = np.asarray(m.sum(axis=0)).ravel()
        matrix = (m @ sparse.diags(1.0 / np.where(norm > 0, norm, np.inf))).tocsr()
    res = map_pixels(
        _azimuthal_kernel,
        arr,
        sig_ndim=2,
        outputs={"intensity": OutputSpec((n_bins,))},
        extras=() if cmap is None else (cmap,),
        kwargs={
            "scale": cal.scale,
            "width": width,
            "n_bins": n_bins,
            "matrix": matrix,
            "ellipse": factors,
        },
        rows_per_chunk=chunk_rows(arr, rows_per_chunk),
        client=client,
        scheduler=scheduler,
        progress=progress,
    )
    return AzimuthalProfile(s=s, intensity=res["intensity"], calibration=cal)
