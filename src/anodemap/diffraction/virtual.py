"""4D-STEM basics on lazy data: direct beam (descan), virtual images, averages and I(s).

Every per-pattern computation is a plain kernel on a block of patterns ``(n, ky, kx)``
run by the one execution layer, :func:`anodemap._compute.map_pixels`, so the same call
runs on a numpy array, on a lazy dask array read chunk by chunk, and on a
``dask.distributed`` cluster (pass ``client=``). The averaged pattern is a reduction
(sum and count) over the same chunks, written with ``dask.array.blockwise``.

Conventions
-----------
- Data are ``(ny, nx, ky, kx)``: scan axes first, the pattern last (a
  :class:`~anodemap.io.Dataset` or an array).
- Pixel coordinates ``(ky, kx)`` are array indices: the centre of pixel ``[0, 0]`` is
  ``(0.0, 0.0)``; the middle of a 144-pixel pattern is 71.5.
- A *centre* is either one ``(cy, cx)`` for every pattern, a map of shape ``(ny, nx, 2)``
  (one centre per pattern: the descan correction), or a :class:`DirectBeam`. Masks are
  placed around it: a pixel belongs to a disk of radius r when its centre lies at
  distance ``d <= r``, to an annulus when ``inner <= d <= outer`` (HyperSpy's CircleROI
  rule, so pyxem's virtual images compare pixel for pixel).
- Scattering vector s = 1/d in 1/Å (q = 2πs where a formula needs it).

Examples
--------
>>> import numpy as np
>>> from anodemap.diffraction.virtual import find_direct_beam, virtual_images, Disk, Annulus
>>> yy, xx = np.mgrid[:32, :32]
>>> data = np.broadcast_to(100.0 * ((yy - 15.3) ** 2 + (xx - 16.2) ** 2 < 16), (2, 3, 32, 32))
>>> beam = find_direct_beam(data, radius=4)
>>> np.round(beam.center[0, 0], 1)
array([15.3, 16.2])
>>> imgs = virtual_images(data, {"bf": Disk(5), "adf": Annulus(6, 15)}, center=beam)
>>> imgs["bf"].shape, float(imgs["adf"][0, 0])
((2, 3), 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
from scipy import ndimage as ndi

from anodemap._compute import (
    OutputSpec,
    chunked_view,
    cluster_result,
    default_rows_per_chunk,
    local_scheduler,
    map_pixels,
    progress_context,
    usable_cores,
)
from anodemap.diffraction.calibration import (
    ReciprocalCalibration,
    reciprocal_calibration,
    require_4d,
)
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset
from anodemap.status import Status

__all__ = [
    "Annulus",
    "AzimuthalProfile",
    "averaged_patterns",
    "DirectBeam",
    "Disk",
    "azimuthal_average",
    "find_direct_beam",
    "image_dataset",
    "mean_pattern",
    "mask_pixels",
    "mean_patterns",
    "ring_level",
    "scattered_fraction",
    "scattered_fraction_noise",
    "scattering_masks",
    "virtual_adf",
    "virtual_bf",
    "virtual_image",
    "virtual_images",
]

# Working-array budget inside a kernel, in float64 elements (model choice: 4 Mi elements =
# 32 MiB per temporary keeps a worker's peak memory small whatever the chunk size).
_BATCH_ELEMENTS = 4 * 2**20
# Centre refinement: stop when the centre moves less than this (px). Model choice: an
# order of magnitude below the 0.05 px accuracy the tests demand.
_CENTER_TOL = 1e-3
# A direct beam whose contrast over the surrounding background is below this many
# standard deviations of that background is "no signal" (model choice: 3σ detection).
_MIN_BEAM_SNR = 3.0
# Rows of a lazy dataset used to estimate the beam radius when none is given (model
# choice: enough patterns to beat noise, few enough to read one chunk at most).
_RADIUS_SAMPLE = 4
# ... and, where those show no beam, the positions per scan axis of the sample spread over
# the whole scan (model choice: 8 x 8 = 64 patterns, a few rows of chunks to read).
_RADIUS_SPREAD = 8
# Direct beam outshone by a Bragg disk: besides the brightest disk, this many further
# maxima of a pattern are refined as candidates when they reach this fraction of the
# brightest (model choice: on the 48 x 48 benchmark electrode the second maximum is below
# 0.27 of the first in 99 % of the patterns, while the 17 beams outshone by a disk on two
# other simulated electrodes reach 0.91-0.99 of it, so the extra work touches about 1 % of
# the patterns and the beam is never left out).
_N_ALTERNATIVES = 2
_ALTERNATIVE_RATIO = 0.25


@dataclass(frozen=True)
class Disk:
    """Disk mask of ``radius`` (px, or 1/Å with ``units="1/Å"``) around the centre."""

    radius: float


@dataclass(frozen=True)
class Annulus:
    """Annular mask ``inner <= d <= outer`` around the centre."""

    inner: float
    outer: float


MaskSpec = Disk | Annulus | np.ndarray
Units = Literal["px", "1/Å"]


# --------------------------------------------------------------------------- helpers
def _array(data: Any) -> Any:
    return data.data if isinstance(data, Dataset) else data


def _resolve_calibration(data: Any, calibration: Any) -> ReciprocalCalibration:
    if isinstance(calibration, ReciprocalCalibration):
        return calibration
    if calibration is not None:
        sc = np.broadcast_to(np.asarray(calibration, dtype=float), (2,))
        if not np.all(np.isfinite(sc)) or np.any(sc <= 0):
            raise AnodemapInputError(f"calibration={calibration!r}: must be positive 1/Å per px")
        return ReciprocalCalibration((float(sc[0]), float(sc[1])), "given (1/Å per px)")
    if isinstance(data, Dataset):
        return reciprocal_calibration(data)
    raise AnodemapInputError(
        "the pattern is an array without a calibration; pass calibration=<1/Å per pixel> "
        "(or a ReciprocalCalibration), or a Dataset with calibrated signal axes"
    )


def _to_px(value: float, units: str, data: Any, calibration: Any) -> float:
    if units == "px":
        return float(value)
    if units in ("1/Å", "1/A"):
        return _resolve_calibration(data, calibration).to_pixels(value)
    raise AnodemapInputError(f"units={units!r}: use 'px' or '1/Å'")


def _resolve_center(center: Any, nav_shape: tuple[int, ...], sig_shape: tuple[int, int]):
    """(fixed (cy, cx) or None, per-pattern map (*nav, 2) or None)."""
    if center is None:
        return ((sig_shape[0] - 1) / 2.0, (sig_shape[1] - 1) / 2.0), None
    if isinstance(center, DirectBeam):
        center = center.filled()
    arr = np.asarray(center, dtype=float)
    if arr.shape == (2,):
        return (float(arr[0]), float(arr[1])), None
    if arr.shape != tuple(nav_shape) + (2,):
        raise AnodemapInputError(
            f"center of shape {arr.shape}: give (cy, cx), a map of shape "
            f"{tuple(nav_shape) + (2,)} or a DirectBeam"
        )
    bad = ~np.isfinite(arr).all(axis=-1)
    if bad.any():
        raise AnodemapInputError(
            f"the centre map is not finite at {int(bad.sum())} scan positions; pass "
            "DirectBeam.filled() (failed centres replaced by the fitted descan plane)"
        )
    return None, arr


def _rows(arr: Any, rows_per_chunk: int | None) -> int | None:
    """Scan rows per chunk: for a lazy input, rows that do not cut the chunks it already
    has; for one in memory, enough chunks to keep every core busy.

    A chunk boundary of the execution layer that falls inside a file's chunk makes two
    tasks read that chunk; taking the largest divisor of the input's row chunk that is
    not above the default size (about 64 MiB) reads every chunk once. An array in memory
    costs nothing to cut, and the kernels of this module run one chunk per thread: it is
    cut into at least two chunks per core (measured: direct-beam centres of 48 x 48
    patterns in memory 0.28 s in one chunk, 0.16 s in four, on two cores).
    """
    if rows_per_chunk is not None or len(arr.shape) != 4:
        return rows_per_chunk
    if getattr(arr, "chunks", None) is None:
        limit = default_rows_per_chunk(arr.shape, 2, np.dtype(arr.dtype).itemsize)
        return max(1, min(limit, int(arr.shape[0]) // (2 * usable_cores())))
    chunks = arr.chunks
    if len(chunks[1]) != 1 or len(set(chunks[0][:-1])) > 1:
        return None  # split along x, or irregular: let the execution layer rechunk
    rows_in = int(chunks[0][0])
    limit = default_rows_per_chunk(arr.shape, 2, np.dtype(arr.dtype).itemsize)
    return max(d for d in range(1, rows_in + 1) if rows_in % d == 0 and d <= max(limit, 1))


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median over the last axes of ``values`` where ``mask`` is True, per leading index.

    Vectorised (one sort per row, no per-pattern Python loop as in ``np.nanmedian``);
    NaN where a row selects nothing.
    """
    n = values.shape[0]
    v = np.where(mask, values, np.inf).reshape(n, -1)
    v.sort(axis=1)
    m = mask.reshape(n, -1).sum(axis=1)
    lo = np.clip((m - 1) // 2, 0, v.shape[1] - 1)
    hi = np.clip(m // 2, 0, v.shape[1] - 1)
    rows = np.arange(n)
    med = 0.5 * (v[rows, lo] + v[rows, hi])
    return np.where(m > 0, med, np.nan)


def _batch(n_pixels: int) -> int:
    return max(1, _BATCH_ELEMENTS // max(1, n_pixels))


def _compute_array(arr: Any, client: Any, scheduler: str | None, progress: bool) -> np.ndarray:
    if client is not None:
        return np.asarray(cluster_result(client, client.compute(arr)))
    with progress_context(progress):
        return np.asarray(arr.compute(scheduler=local_scheduler(scheduler)))


# ---------------------------------------------------------------------- direct beam
@dataclass
class DirectBeam:
    """Direct-beam centre of every pattern: the descan map.

    Attributes
    ----------
    center : ndarray, shape (ny, nx, 2)
        Beam centre (cy, cx) in pixel coordinates (origin: centre of pixel [0, 0]); NaN
        where ``status`` is not OK.
    radius : ndarray, shape (ny, nx)
        Measured beam radius in px (area above half contrast, = sqrt(A/π)).
    status : ndarray of uint8, shape (ny, nx)
        :class:`anodemap.status.Status` codes: OK, NO_SIGNAL (no beam above 3σ of the
        background), NOT_CONVERGED (the centre left the search window), INVALID_INPUT
        (non-finite counts).
    pattern_shape : (int, int)
        (ky, kx).
    search_radius : float
        The beam radius (px) the refinement used.
    outshone : ndarray of bool, shape (ny, nx), optional
        Patterns whose brightest disk was a Bragg disk, not the direct beam: their
        centre is the disk where the neighbours' descan puts the beam
        (:func:`find_direct_beam`).
    """

    center: np.ndarray
    radius: np.ndarray
    status: np.ndarray
    pattern_shape: tuple[int, int]
    search_radius: float
    outshone: np.ndarray | None = None

    @property
    def ok(self) -> np.ndarray:
        """Boolean map of patterns whose centre was measured."""
        return self.status == Status.OK

    @property
    def shift(self) -> np.ndarray:
        """Descan: centre minus the pattern middle, (ny, nx, 2) in px."""
        mid = np.array([(self.pattern_shape[0] - 1) / 2.0, (self.pattern_shape[1] - 1) / 2.0])
        return self.center - mid

    def plane(self, n_sigma: float = 3.0, n_rounds: int = 3) -> np.ndarray:
        """Least-squares plane c = a + b·iy + c·ix through the measured centres.

        Descan from a misaligned scan is linear in the scan position (model choice, as
        pyxem's ``BeamShift.get_linear_plane``). Centres further than ``n_sigma`` robust
        standard deviations (1.4826 × MAD) from the plane are left out, ``n_rounds``
        times, so that a few failed centres do not tilt it.

        Returns
        -------
        ndarray, shape (ny, nx, 2)
        """
        return _descan_plane(self.center, self.ok, n_sigma, n_rounds)

    def filled(self) -> np.ndarray:
        """Measured centres, with failed ones replaced by the fitted plane (:meth:`plane`)."""
        if self.ok.all():
            return self.center.copy()
        return np.where(self.ok[..., None], self.center, self.plane())


def _descan_plane(center: np.ndarray, ok: np.ndarray, n_sigma: float, n_rounds: int) -> np.ndarray:
    """Robust least-squares plane through the centres ``(ny, nx, 2)`` where ``ok``
    (:meth:`DirectBeam.plane`)."""
    ny, nx = ok.shape
    iy, ix = np.mgrid[:ny, :nx]
    design = np.stack([np.ones(ny * nx), iy.ravel(), ix.ravel()], axis=1).astype(float)
    use = ok.ravel().copy()
    if not use.any():
        raise AnodemapInputError("no direct-beam centre was measured: no plane to fit")
    out = np.empty((ny * nx, 2))
    for k in range(2):
        y = center[..., k].ravel()
        keep = use.copy()
        for _ in range(n_rounds):
            coef, *_ = np.linalg.lstsq(design[keep], y[keep], rcond=None)
            resid = y - design @ coef
            mad = 1.4826 * np.median(np.abs(resid[keep]))
            new_keep = use & (np.abs(resid) <= max(n_sigma * mad, 1e-9))
            if new_keep.sum() < 3 or np.array_equal(new_keep, keep):
                break
            keep = new_keep
        out[:, k] = design @ coef
    return out.reshape(ny, nx, 2)


def _estimate_radius(data: Any) -> float:
    """Beam radius (px): the half-contrast area of the beam in a mean of valid patterns.

    The mean is over the valid patterns (finite, not constant) of the first
    ``_RADIUS_SAMPLE`` × ``_RADIUS_SAMPLE`` scan positions; where those hold no valid
    pattern or show no beam (a damaged or dark start of the scan), over the valid ones of
    up to ``_RADIUS_SPREAD`` × ``_RADIUS_SPREAD`` positions spread over the whole scan. A
    bad pattern anywhere is then flagged by the per-pattern search, never fatal here.
    """
    a = _array(data)
    ny, nx = a.shape[:2]
    radius, n_valid = _radius_of_mean(a[: min(ny, _RADIUS_SAMPLE), : min(nx, _RADIUS_SAMPLE)])
    if radius is None:
        iy = np.unique(np.linspace(0, ny - 1, min(ny, _RADIUS_SPREAD)).astype(int))
        ix = np.unique(np.linspace(0, nx - 1, min(nx, _RADIUS_SPREAD)).astype(int))
        radius, n_valid = _radius_of_mean(a[iy][:, ix])
    if radius is None:
        found = (
            f"the mean of the {n_valid} valid patterns sampled over the scan has no maximum "
            "above its median level"
            if n_valid
            else "none of the patterns sampled over the scan is valid (finite and not constant)"
        )
        raise AnodemapInputError(
            f"no direct beam found: {found}; anodemap diffraction needs patterns with the "
            "direct beam on the detector"
        )
    return radius


def _radius_of_mean(sample: Any) -> tuple[float | None, int]:
    """(Half-contrast beam radius of the mean of the valid patterns of ``sample``, or None
    where it shows no beam; the number of valid patterns)."""
    if hasattr(sample, "compute"):
        sample = sample.compute(scheduler=local_scheduler())
    stack = np.asarray(sample, dtype=float)
    stack = stack.reshape((-1,) + stack.shape[-2:])
    flat = stack.reshape(stack.shape[0], -1)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(flat).all(axis=1) & (flat.max(axis=1) > flat.min(axis=1))
    if not valid.any():
        return None, 0
    if not valid.all():  # (all valid: the same array and sum as before this check existed)
        stack = stack[valid]
    mean = np.nan_to_num(stack.mean(axis=0))
    sm = ndi.uniform_filter(mean, size=3)
    peak = np.unravel_index(int(np.argmax(sm)), sm.shape)
    bg = float(np.median(mean))
    if sm[peak] <= bg:
        return None, int(valid.sum())
    half = bg + 0.5 * (float(sm[peak]) - bg)
    labels, _ = ndi.label(sm >= half)
    area = float(np.count_nonzero(labels == labels[peak]))
    return max(1.0, math.sqrt(area / math.pi)), int(valid.sum())


def _refine_beam(
    x: np.ndarray,
    iy: np.ndarray,
    ix: np.ndarray,
    radius: float,
    r_in: float,
    r_out: float,
    n_iter: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Refine beam centres from the whole-pixel starts ``(iy, ix)`` of patterns ``x``.

    Returns ``(cy, cx, radius, status)`` per pattern (NaN centre where not OK; non-finite
    counts are the caller's to flag).
    """
    nb, ky, kx = x.shape
    h = int(math.ceil(r_out)) + 2
    off = np.arange(-h, h + 1)
    rows = iy[:, None] + off[None, :]
    cols = ix[:, None] + off[None, :]
    valid = ((rows >= 0) & (rows < ky))[:, :, None] & ((cols >= 0) & (cols < kx))[:, None, :]
    win = x[
        np.arange(nb)[:, None, None],
        np.clip(rows, 0, ky - 1)[:, :, None],
        np.clip(cols, 0, kx - 1)[:, None, :],
    ]
    cy = iy.astype(float)
    cx = ix.astype(float)
    moved = np.full(nb, np.inf)
    lost = np.zeros(nb, dtype=bool)
    good = np.ones(nb, dtype=bool)
    for _ in range(n_iter):
        dy = rows[:, :, None] - cy[:, None, None]
        dx = cols[:, None, :] - cx[:, None, None]
        d2 = dy * dy + dx * dx
        inner = (d2 <= r_in * r_in) & valid
        ann = (d2 > r_in * r_in) & (d2 <= r_out * r_out) & valid
        bg = np.nan_to_num(_masked_median(win, ann))
        w = np.where(inner, win - bg[:, None, None], 0.0)
        total = w.sum(axis=(1, 2))
        good = total > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            ddy = np.where(good, (w * dy).sum(axis=(1, 2)) / total, 0.0)
            ddx = np.where(good, (w * dx).sum(axis=(1, 2)) / total, 0.0)
        cy = cy + ddy
        cx = cx + ddx
        moved = np.hypot(ddy, ddx)
        lost |= (np.abs(cy - iy) > h - r_out) | (np.abs(cx - ix) > h - r_out)
        if np.all((moved < _CENTER_TOL) | lost):
            break
    # final background, contrast and radius around the converged centre
    dy = rows[:, :, None] - cy[:, None, None]
    dx = cols[:, None, :] - cx[:, None, None]
    d2 = dy * dy + dx * dx
    inner = (d2 <= r_in * r_in) & valid
    ann = (d2 > r_in * r_in) & (d2 <= r_out * r_out) & valid
    bg = np.nan_to_num(_masked_median(win, ann))
    noise = np.nan_to_num(1.4826 * _masked_median(np.abs(win - bg[:, None, None]), ann), nan=np.inf)
    core = (d2 <= (0.5 * radius) ** 2) & valid
    plateau = np.nan_to_num(_masked_median(win, core), nan=-np.inf)
    contrast = plateau - bg
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((win - bg[:, None, None]) / contrast[:, None, None], 0.0, 1.0)
    area = np.where(inner, frac, 0.0).sum(axis=(1, 2))
    st = np.zeros(nb, dtype=np.uint8)
    st[lost | (moved > 10 * _CENTER_TOL)] = Status.NOT_CONVERGED
    st[~(contrast > _MIN_BEAM_SNR * np.maximum(noise, 1e-12)) | ~good] = Status.NO_SIGNAL
    ok = st == Status.OK
    return (
        np.where(ok, cy, np.nan),
        np.where(ok, cx, np.nan),
        np.where(ok, np.sqrt(area / math.pi), np.nan),
        st,
    )


def _beam_kernel(
    block: np.ndarray,
    *,
    radius: float,
    margin: float,
    ring: float,
    guess: tuple[float, float] | None,
    max_shift: float | None,
    n_iter: int,
) -> dict[str, np.ndarray]:
    """Direct-beam centre of each pattern in ``block`` (n, ky, kx).

    1. Coarse: maximum of the pattern box-filtered over the beam size (inside
       ``max_shift`` of ``guess`` if given).
    2. Refine: centre of mass of (I − b) over the disk ``d <= radius + margin`` around the
       current estimate, b the median of the ring just outside it; repeated until the
       centre moves less than 1e-3 px. The window is symmetric about the estimate, so a
       radially symmetric halo or ring centred on the beam does not bias the fixed point.
    3. Alternatives: up to ``_N_ALTERNATIVES`` further maxima of the smoothed pattern,
       each outside the square of half-side ``2 · radius + margin`` around the maxima
       before it and at least
       ``_ALTERNATIVE_RATIO`` of the highest, refined the same way. They are where a Bragg
       disk outshines the direct beam; :func:`find_direct_beam` picks among them by the
       descan of the neighbouring patterns (:func:`_consistent_centres`).
    """
    n, ky, kx = block.shape
    center = np.full((n, 2), np.nan)
    alternatives = np.full((n, _N_ALTERNATIVES, 2), np.nan)
    alt_radius = np.full((n, _N_ALTERNATIVES), np.nan)
    rad = np.full(n, np.nan)
    status = np.zeros(n, dtype=np.uint8)
    r_in = radius + margin
    r_out = r_in + ring
    k = max(3, 2 * int(round(radius)) + 1)
    half = int(math.ceil(2.0 * radius + margin))
    box = np.arange(-half, half + 1)
    region = None
    if guess is not None:
        yy, xx = np.mgrid[:ky, :kx]
        lim = max_shift if max_shift is not None else max(ky, kx)
        region = (np.abs(yy - guess[0]) <= lim) & (np.abs(xx - guess[1]) <= lim)
    step = _batch(ky * kx)
    for start in range(0, n, step):
        x = np.asarray(block[start : start + step], dtype=np.float64)
        nb = x.shape[0]
        finite = np.isfinite(x).all(axis=(1, 2))
        x = np.where(np.isfinite(x), x, 0.0)
        sm = ndi.uniform_filter(x, size=(1, k, k), mode="constant")
        if region is not None:
            sm[:, ~region] = -np.inf
        flat = sm.reshape(nb, -1)
        flat_idx = np.argmax(flat, axis=1)
        top = flat[np.arange(nb), flat_idx]
        iy, ix = np.divmod(flat_idx, kx)
        cy, cx, r, st = _refine_beam(x, iy, ix, radius, r_in, r_out, n_iter)
        st[~finite] = Status.INVALID_INPUT
        ok = st == Status.OK
        sl = slice(start, start + nb)
        center[sl, 0] = np.where(ok, cy, np.nan)
        center[sl, 1] = np.where(ok, cx, np.nan)
        rad[sl] = np.where(ok, r, np.nan)
        status[sl] = st
        ay, ax = iy, ix
        every = np.arange(nb)[:, None, None]
        for a in range(_N_ALTERNATIVES):
            # the next maximum: the box around the last one picked is left out
            rows = np.clip(ay[:, None] + box, 0, ky - 1)
            cols = np.clip(ax[:, None] + box, 0, kx - 1)
            sm[every, rows[:, :, None], cols[:, None, :]] = -np.inf
            flat_idx = np.argmax(flat, axis=1)
            value = flat[np.arange(nb), flat_idx]
            ay, ax = np.divmod(flat_idx, kx)
            bright = finite & np.isfinite(value) & (value >= _ALTERNATIVE_RATIO * top)
            if not bright.any():
                break
            sel = np.flatnonzero(bright)
            acy, acx, ar, _ = _refine_beam(x[sel], ay[sel], ax[sel], radius, r_in, r_out, n_iter)
            alternatives[start + sel, a, 0] = acy
            alternatives[start + sel, a, 1] = acx
            alt_radius[start + sel, a] = ar
    return {
        "center": center,
        "radius": rad,
        "status": status,
        "alternatives": alternatives,
        "alt_radius": alt_radius,
    }


def _consistent_centres(
    center: np.ndarray,
    radius: np.ndarray,
    status: np.ndarray,
    alternatives: np.ndarray,
    alt_radius: np.ndarray,
    beam_radius: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the brightest disk is not where the descan puts the beam, take the
    alternative that is.

    The descan expected at each pattern is the robust plane through all centres
    (:meth:`DirectBeam.plane`) plus the median, over the 7 × 7 neighbouring patterns, of
    the centres' departures from it (a smooth descan that is not linear is followed; a
    few wrong centres among the neighbours do not move it). A pattern's brightest disk is
    replaced by an alternative when that lies less than half as far from the expected
    descan and within ``max(beam radius, 2 px)`` of it, while the brightest disk lies
    beyond that distance (model choice: Bragg disks lie several beam radii from the beam,
    the departures of a descan from its neighbours' are a fraction of a pixel).

    Returns
    -------
    center, radius : the chosen centres and radii
    moved : ndarray of bool, where an alternative was taken
    """
    from scipy.ndimage import median_filter

    moved = np.zeros(status.shape, dtype=bool)
    has_alt = np.isfinite(alternatives).all(axis=-1).any(axis=-1) & (status == Status.OK)
    if not has_alt.any() or center.ndim != 3:
        return center, radius, moved
    ok = status == Status.OK
    plane = _descan_plane(center, ok, 3.0, 3)
    departure = np.where(ok[..., None], center - plane, 0.0)
    expected = plane + np.stack(
        [median_filter(departure[..., k], size=7, mode="nearest") for k in range(2)], axis=-1
    )
    limit = max(float(beam_radius), 2.0)
    d0 = np.linalg.norm(center - expected, axis=-1)
    da = np.linalg.norm(alternatives - expected[..., None, :], axis=-1)
    da = np.where(np.isfinite(da), da, np.inf)
    best = np.argmin(da, axis=-1)
    d_best = np.take_along_axis(da, best[..., None], axis=-1)[..., 0]
    moved = has_alt & (d0 > limit) & (d_best <= limit) & (d_best < 0.5 * d0)
    if not moved.any():
        return center, radius, moved
    center = center.copy()
    radius = radius.copy()
    pick = np.take_along_axis(alternatives, best[..., None, None], axis=-2)[..., 0, :]
    center[moved] = pick[moved]
    radius[moved] = np.take_along_axis(alt_radius, best[..., None], axis=-1)[..., 0][moved]
    return center, radius, moved


def find_direct_beam(
    data: Any,
    *,
    radius: float | None = None,
    guess: tuple[float, float] | None = None,
    max_shift: float | None = None,
    margin: float | None = None,
    ring: float = 3.0,
    n_iter: int = 20,
    rows_per_chunk: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> DirectBeam:
    """Direct-beam centre of every pattern with sub-pixel precision (the descan map).

    Per pattern: the maximum of the pattern smoothed over the beam size, then the
    centre of mass of the background-subtracted beam in a disk window centred on the
    estimate, iterated to a fixed point (see ``_beam_kernel``). On simulated patterns
    with Poisson noise, rings and spots the error is below 0.05 px (tests). Where a
    Bragg disk outshines the direct beam (thick crystals near a zone axis), the disk
    where the neighbouring patterns' descan puts the beam is taken instead of the
    brightest (``DirectBeam.outshone`` marks them; not done when ``guess`` is given).

    Parameters
    ----------
    data : Dataset or array, shape (ny, nx, ky, kx)
        numpy or dask (lazy) data.
    radius : float, optional
        Beam radius in px (default: half-contrast area of the mean of the valid patterns
        among the first ones, or else among patterns spread over the scan).
    guess : (float, float), optional
        Approximate beam position; with ``max_shift`` (px), the beam is looked for only
        within that distance of it (for patterns whose Bragg disks outshine the beam).
    max_shift : float, optional
        Half-size of the search box around ``guess``.
    margin : float, optional
        Window radius beyond the beam radius, px (default max(2, radius/4); model choice:
        covers the blurred disk edge).
    ring : float
        Width (px) of the ring outside the window whose median is the background.
    n_iter : int
        Maximum refinement iterations.
    rows_per_chunk, client, scheduler, progress
        Execution, as :func:`anodemap._compute.map_pixels`.

    Returns
    -------
    DirectBeam

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:40, :40]
    >>> d = np.hypot(yy - 20.25, xx - 18.6)
    >>> pat = 50.0 / (1 + np.exp((d - 5) / 0.5)) + 1.0   # disk of radius 5 px, soft edge
    >>> beam = find_direct_beam(np.broadcast_to(pat, (1, 2, 40, 40)), radius=5)
    >>> np.round(beam.center[0, 1], 2), int(beam.status[0, 1])
    (array([20.25, 18.6 ]), 0)
    """
    shape = require_4d(data)
    arr = _array(data)
    if radius is None:
        radius = _estimate_radius(arr)
    radius = float(radius)
    if not radius > 0:
        raise AnodemapInputError(f"radius={radius}: the beam radius must be positive (px)")
    if margin is None:
        margin = max(2.0, 0.25 * radius)
    res = map_pixels(
        _beam_kernel,
        arr,
        sig_ndim=2,
        outputs={
            "center": OutputSpec((2,)),
            "radius": OutputSpec(),
            "status": OutputSpec((), np.uint8),
            "alternatives": OutputSpec((_N_ALTERNATIVES, 2)),
            "alt_radius": OutputSpec((_N_ALTERNATIVES,)),
        },
        kwargs={
            "radius": radius,
            "margin": float(margin),
            "ring": float(ring),
            "guess": None if guess is None else (float(guess[0]), float(guess[1])),
            "max_shift": max_shift,
            "n_iter": int(n_iter),
        },
        rows_per_chunk=_rows(arr, rows_per_chunk),
        client=client,
        scheduler=scheduler,
        progress=progress,
    )
    center, beam_radius = res["center"], res["radius"]
    if not np.any(res["status"] == Status.OK):
        n = int(np.asarray(res["status"]).size)
        raise AnodemapInputError(
            f"no direct beam found in any of the {n} patterns (none shows a bright disk "
            "standing out of its background: a dark or noise-only recording, a beam off the "
            "detector, or not diffraction patterns); anodemap diffraction needs patterns "
            "with the direct beam on the detector"
        )
    moved = np.zeros(res["status"].shape, dtype=bool)
    if guess is None:  # with a guess the user has said where the beam is
        center, beam_radius, moved = _consistent_centres(
            res["center"],
            res["radius"],
            res["status"],
            res["alternatives"],
            res["alt_radius"],
            radius,
        )
    return DirectBeam(
        center=center,
        radius=beam_radius,
        status=res["status"],
        pattern_shape=(shape[2], shape[3]),
        search_radius=radius,
        outshone=moved,
    )


# ------------------------------------------------------------------- virtual images
def _geometric_mask(spec: Disk | Annulus, d2: np.ndarray) -> np.ndarray:
    if isinstance(spec, Disk):
        return d2 <= spec.radius**2
    return (d2 >= spec.inner**2) & (d2 <= spec.outer**2)


def _shifted_mask(mask: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``mask`` moved by ``shift`` (n, 2) px with bilinear interpolation: (n, ky, kx)."""
    ky, kx = mask.shape
    n = shift.shape[0]
    fy = np.floor(shift[:, 0])
    fx = np.floor(shift[:, 1])
    ty = shift[:, 0] - fy
    tx = shift[:, 1] - fx
    ys = np.arange(ky)[None, :] - fy[:, None].astype(int)  # source row for weight (1-ty)
    xs = np.arange(kx)[None, :] - fx[:, None].astype(int)
    out = np.zeros((n, ky, kx))
    for oy, wy in ((0, 1.0 - ty), (-1, ty)):
        r = ys + oy
        vr = (r >= 0) & (r < ky)
        rc = np.clip(r, 0, ky - 1)
        for ox, wx in ((0, 1.0 - tx), (-1, tx)):
            c = xs + ox
            vc = (c >= 0) & (c < kx)
            cc = np.clip(c, 0, kx - 1)
            vals = mask[rc[:, :, None], cc[:, None, :]] * (vr[:, :, None] & vc[:, None, :])
            out += (wy[:, None, None] * wx[:, None, None]) * vals
    return out


@numba.njit(cache=True, nogil=True)
def _sparse_mask_sums(flat, idx, w, starts, out):
    """``out[p, j] = Σ_k w[k] flat[p, idx[k]]`` over ``k`` in ``starts[j]:starts[j+1]``.

    Patterns in their own dtype (no converted copy), sums in float64; only the pixels
    inside each mask are read.
    """
    n = flat.shape[0]
    for p in range(n):
        row = flat[p]
        for j in range(starts.size - 1):
            acc = 0.0
            for k in range(starts[j], starts[j + 1]):
                acc += w[k] * row[idx[k]]
            out[p, j] = acc


def _sparse_masks(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzero pixels of each column of a (ky·kx, n_masks) weight matrix."""
    idx, w, starts = [], [], [0]
    for j in range(weights.shape[1]):
        nz = np.flatnonzero(weights[:, j])
        idx.append(nz)
        w.append(weights[nz, j])
        starts.append(starts[-1] + nz.size)
    return (
        np.concatenate(idx).astype(np.int64),
        np.concatenate(w).astype(np.float64),
        np.asarray(starts, dtype=np.int64),
    )


def _virtual_kernel(
    block: np.ndarray,
    *centers: np.ndarray,
    names: tuple[str, ...],
    specs: tuple[Any, ...],
    weights: np.ndarray | None,
    mask_centers: tuple[Any, ...],
) -> dict[str, np.ndarray]:
    """Masked sums of each pattern in ``block`` (n, ky, kx) for every mask.

    Fixed centre: one matrix product with the (ky·kx, n_masks) mask matrix ``weights``.
    Per-pattern centres (``centers[0]``, (n, 2)): geometric masks are drawn around each
    centre; array masks are shifted by (centre − mask centre) with bilinear weights.
    """
    n, ky, kx = block.shape
    out = np.empty((n, len(names)))
    if weights is not None and block.dtype.kind in "fiu":
        flat = np.ascontiguousarray(block).reshape(n, ky * kx)
        _sparse_mask_sums(flat, *_sparse_masks(weights), out)
        return {name: out[:, j] for j, name in enumerate(names)}
    step = _batch(ky * kx * max(1, len(names)))
    yy = np.arange(ky, dtype=float)
    xx = np.arange(kx, dtype=float)
    for start in range(0, n, step):
        x = np.asarray(block[start : start + step], dtype=np.float64)
        nb = x.shape[0]
        sl = slice(start, start + nb)
        if weights is not None:
            out[sl] = x.reshape(nb, -1) @ weights
            continue
        c = np.asarray(centers[0][sl], dtype=float)
        d2 = (yy[None, :, None] - c[:, 0, None, None]) ** 2 + (
            xx[None, None, :] - c[:, 1, None, None]
        ) ** 2
        for j, spec in enumerate(specs):
            if isinstance(spec, Disk | Annulus):
                out[sl, j] = np.where(_geometric_mask(spec, d2), x, 0.0).sum(axis=(1, 2))
            else:
                m = _shifted_mask(spec, c - np.asarray(mask_centers[j])[None, :])
                out[sl, j] = np.einsum("nij,nij->n", x, m)
    return {name: out[:, j] for j, name in enumerate(names)}


def virtual_images(
    data: Any,
    masks: Mapping[str, MaskSpec],
    *,
    center: Any = None,
    mask_center: tuple[float, float] | None = None,
    rows_per_chunk: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Several virtual images in one pass over the data.

    Parameters
    ----------
    data : Dataset or array, shape (ny, nx, ky, kx)
    masks : mapping of name to Disk, Annulus or ndarray (ky, kx)
        Disk/Annulus radii in px around the centre. An array mask (boolean or weights) is
        used as drawn when the centre is fixed; with per-pattern centres it is shifted
        with each pattern's centre relative to ``mask_center``.
    center : None, (cy, cx), ndarray (ny, nx, 2) or DirectBeam
        Where the beam is: default the pattern middle; a map or a :class:`DirectBeam`
        corrects the descan pattern by pattern.
    mask_center : (float, float), optional
        The beam position an array mask was drawn for (default: the pattern middle).
    rows_per_chunk, client, scheduler, progress
        Execution, as :func:`anodemap._compute.map_pixels`.

    Returns
    -------
    dict of str to ndarray (ny, nx)
        Sum of counts × mask over each pattern.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.ones((2, 2, 16, 16))
    >>> out = virtual_images(data, {"bf": Disk(2), "all": np.ones((16, 16))})
    >>> float(out["bf"][0, 0]), float(out["all"][0, 0])
    (12.0, 256.0)
    """
    shape = require_4d(data)
    arr = _array(data)
    sig = (shape[2], shape[3])
    if not masks:
        raise AnodemapInputError("no masks given")
    names = tuple(str(k) for k in masks)
    specs: list[Any] = []
    for name, m in masks.items():
        if isinstance(m, Disk | Annulus):
            if isinstance(m, Annulus) and not (0 <= m.inner <= m.outer):
                raise AnodemapInputError(f"mask {name!r}: need 0 <= inner <= outer, got {m}")
            specs.append(m)
            continue
        a = np.asarray(m, dtype=float)
        if a.shape != sig:
            raise AnodemapInputError(
                f"mask {name!r} has shape {a.shape}, the patterns {sig}; draw it on the "
                "detector grid"
            )
        specs.append(a)
    fixed, cmap = _resolve_center(center, shape[:2], sig)
    mid = ((sig[0] - 1) / 2.0, (sig[1] - 1) / 2.0)
    mc = tuple(mask_center) if mask_center is not None else mid
    weights = None
    extras: tuple[Any, ...] = ()
    if cmap is None:
        yy, xx = np.mgrid[: sig[0], : sig[1]]
        d2 = (yy - fixed[0]) ** 2 + (xx - fixed[1]) ** 2
        cols = []
        for s in specs:
            if isinstance(s, Disk | Annulus):
                cols.append(_geometric_mask(s, d2).astype(float).ravel())
            else:
                shift = np.array([[fixed[0] - mc[0], fixed[1] - mc[1]]])
                moved = s if np.allclose(shift, 0) else _shifted_mask(s, shift)[0]
                cols.append(moved.ravel())
        weights = np.stack(cols, axis=1)
    else:
        extras = (cmap,)
    return map_pixels(
        _virtual_kernel,
        arr,
        sig_ndim=2,
        outputs={name: OutputSpec() for name in names},
        extras=extras,
        kwargs={
            "names": names,
            "specs": tuple(specs),
            "weights": weights,
            "mask_centers": tuple(mc for _ in specs),
        },
        rows_per_chunk=_rows(arr, rows_per_chunk),
        client=client,
        scheduler=scheduler,
        progress=progress,
    )


# The detector's outermost ring whose level is taken for the floor of scattered_fraction
# (model choices: 3 px wide, the mean of its pixels between their 5th and 95th percentiles:
# a Bragg spot or two on the ring do not move it, and unlike a median it keeps the mean of
# skewed noise, such as read noise clipped at 0 by an unsigned integer type).
_FLOOR_RING_PX = 3.0
_FLOOR_TRIM = 0.05


def scattering_masks(
    beam_radius_px: float, centres: Any, pattern_shape: tuple[int, int]
) -> dict[str, Disk | Annulus]:
    """The three masks of :func:`scattered_fraction`.

    ``"beam"``: the direct beam, a disk of ``beam_radius_px`` (the measured beam radius and
    a pixel's margin); ``"scattered"``: the annulus from twice that radius (past the beam's
    own tail) to the largest circle inside the detector around the median centre;
    ``"floor"``: the outermost 3 px of that annulus, whose level (:func:`ring_level`) is
    the detector's floor: the dark level, clipped read noise, and what little is
    scattered that far out.

    Examples
    --------
    >>> m = scattering_masks(3.0, [[31.5, 31.5]], (64, 64))
    >>> m["beam"].radius, m["scattered"].inner, m["scattered"].outer, m["floor"].inner
    (3.0, 6.0, 31.5, 28.5)
    """
    cy, cx = np.nanmedian(np.asarray(centres, dtype=float).reshape(-1, 2), axis=0)
    edge = float(min(cy, cx, pattern_shape[0] - 1 - cy, pattern_shape[1] - 1 - cx))
    r = float(beam_radius_px)
    outer = max(2.0 * r + 1.0, edge)
    return {
        "beam": Disk(r),
        "scattered": Annulus(2.0 * r, outer),
        "floor": Annulus(max(2.0 * r, outer - _FLOOR_RING_PX), outer),
    }


def mask_pixels(spec: Disk | Annulus, center: Any, pattern_shape: tuple[int, int]) -> int:
    """Number of detector pixels in a disk or annulus around ``center`` (the median of a
    centre map), by the rule of :func:`virtual_images`.

    Examples
    --------
    >>> mask_pixels(Disk(1.0), (2.0, 2.0), (5, 5))
    5
    """
    c = np.nanmedian(np.asarray(center, dtype=float).reshape(-1, 2), axis=0)
    yy, xx = np.mgrid[: pattern_shape[0], : pattern_shape[1]]
    d2 = (yy - c[0]) ** 2 + (xx - c[1]) ** 2
    return int(np.count_nonzero(_geometric_mask(spec, d2)))


@numba.njit(cache=True, nogil=True)
def _ring_level_kernel(patterns, centres, inner, outer, trim, level, spread):
    """Mean and standard deviation of the pixels of each pattern with
    ``inner <= d <= outer`` from its centre, between their ``trim`` and ``1 - trim``
    quantiles (NaN for an empty ring).

    Serial: :func:`ring_level` runs chunks of rows on every core already, and a parallel
    loop around the sort took 4-5 s to compile on the first run."""
    n, h, w = patterns.shape
    for i in range(n):
        buf = np.empty(h * w, np.float64)
        k = 0
        for y in range(h):
            dy = y - centres[i, 0]
            for x in range(w):
                dx = x - centres[i, 1]
                d2 = dy * dy + dx * dx
                if inner * inner <= d2 <= outer * outer:
                    buf[k] = patterns[i, y, x]
                    k += 1
        if k == 0:
            level[i] = np.nan
            spread[i] = np.nan
            continue
        v = np.sort(buf[:k])
        lo = int(trim * k)
        hi = max(lo + 1, k - lo)
        level[i] = v[lo:hi].mean()
        spread[i] = v[lo:hi].std()


def _trimmed_std_factor(trim: float) -> float:
    """Standard deviation of a normal sample over that of its middle ``1 - 2 trim`` (the
    truncated normal's variance is ``1 - 2 a φ(a) / (1 - 2 trim)``, ``a`` its quantile)."""
    if trim <= 0:
        return 1.0
    from statistics import NormalDist  # the standard library's: scipy.stats costs 0.4 s

    a = NormalDist().inv_cdf(1.0 - trim)
    pdf = math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    return 1.0 / math.sqrt(1.0 - 2.0 * a * pdf / (1.0 - 2.0 * trim))


def _ring_level_block(block: np.ndarray, centres: np.ndarray, *, ring: Annulus, trim: float):
    level = np.empty(block.shape[0], np.float64)
    spread = np.empty(block.shape[0], np.float64)
    data = np.ascontiguousarray(block, dtype=np.float32)
    c = np.ascontiguousarray(centres, dtype=np.float64)
    _ring_level_kernel(data, c, float(ring.inner), float(ring.outer), float(trim), level, spread)
    return {"level": level, "spread": spread}


def ring_level(
    data: Any,
    ring: Annulus,
    *,
    center: Any = None,
    trim: float = _FLOOR_TRIM,
    spread: bool = False,
    rows_per_chunk: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Level of each pattern on a ring: the mean of its pixels there, the highest and the
    lowest ``trim`` of them left out.

    A few Bragg spots on the ring do not move it; on the detector's outermost ring it
    measures the floor of :func:`scattered_fraction`.

    Parameters
    ----------
    data : Dataset or array, shape (ny, nx, ky, kx)
    ring : Annulus
        Radii in px around each pattern's centre (``inner <= d <= outer``).
    center : None, (cy, cx), ndarray (ny, nx, 2) or DirectBeam
        As :func:`virtual_images`.
    trim : float
        Share of the ring's pixels left out at each end (model choice 0.05).
    spread : bool
        Also return the pixels' standard deviation there (from the same middle share,
        scaled to a normal distribution's): the noise per pixel where nothing scatters.
    rows_per_chunk, client, scheduler, progress
        Execution, as :func:`anodemap._compute.map_pixels`.

    Returns
    -------
    ndarray (ny, nx), or (level, spread)

    Examples
    --------
    >>> import numpy as np
    >>> data = np.full((1, 2, 16, 16), 2.0)
    >>> data[0, 0, 7, 2] = 500.0                    # a spot on the ring
    >>> ring_level(data, Annulus(4.5, 6.5), center=(7.5, 7.5)).tolist()
    [[2.0, 2.0]]
    """
    shape = require_4d(data)
    arr = _array(data)
    sig = (shape[2], shape[3])
    if not (0 <= ring.inner <= ring.outer) or not 0 <= trim < 0.5:
        raise AnodemapInputError(f"ring {ring}, trim {trim}: need 0 <= inner <= outer, trim < 0.5")
    fixed, cmap = _resolve_center(center, shape[:2], sig)
    if cmap is None:
        cmap = np.broadcast_to(np.asarray(fixed, float), tuple(shape[:2]) + (2,))
    res = map_pixels(
        _ring_level_block,
        arr,
        sig_ndim=2,
        outputs={"level": OutputSpec(), "spread": OutputSpec()},
        extras=(np.ascontiguousarray(cmap, dtype=np.float64),),
        kwargs={"ring": ring, "trim": float(trim)},
        rows_per_chunk=_rows(arr, rows_per_chunk),
        client=client,
        scheduler=scheduler,
        progress=progress,
    )
    level = np.asarray(res["level"])
    if not spread:
        return level
    return level, np.asarray(res["spread"]) * _trimmed_std_factor(trim)


def scattered_fraction(
    beam: Any,
    scattered: Any,
    floor: Any = None,
    pixels: tuple[int, int] | None = None,
) -> np.ndarray:
    """Counts scattered outside the direct beam per count in it, pattern by pattern.

    ``beam`` and ``scattered`` are the virtual images of the masks of
    :func:`scattering_masks`, ``pixels`` their numbers of pixels (:func:`mask_pixels`),
    ``floor`` the level of its floor ring (:func:`ring_level`), taken off every pixel
    first::

        f = (S - F n_S) / (B - F n_B)

    so that a detector offset or clipped read noise (a count or so per pixel over
    thousands of pixels) does not pass for scattering. A specimen scatters a share of the
    electrons that grows with its thickness, most of it near the beam; vacuum leaves the
    beam alone. Where the beam holds no counts the fraction is ``inf`` (the beam is
    blocked or absent: no vacuum). A saturated beam makes the fraction too large.

    Examples
    --------
    >>> scattered_fraction([1000.0, 1000.0, 0.0], [2.0, 300.0, 5.0]).tolist()
    [0.002, 0.3, inf]
    >>> # an offset of one count per pixel on 50 beam and 1000 annulus pixels
    >>> float(scattered_fraction(1050.0, 1002.0, 1.0, (50, 1000))[()])
    0.002
    """
    b = np.asarray(beam, dtype=np.float64)
    s = np.asarray(scattered, dtype=np.float64)
    if floor is not None:
        if pixels is None:
            raise AnodemapInputError("scattered_fraction: give the masks' pixel numbers")
        level = np.nan_to_num(np.asarray(floor, dtype=np.float64))
        b = b - level * float(pixels[0])
        s = s - level * float(pixels[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, s / np.where(b > 0, b, 1.0), np.inf)


def scattered_fraction_noise(
    beam: Any, floor: Any, spread: Any, pixels: tuple[int, int, int]
) -> np.ndarray:
    """Standard deviation of :func:`scattered_fraction` from the detector's noise.

    ``spread`` is the noise per pixel measured on the floor ring (:func:`ring_level` with
    ``spread=True``), ``pixels`` the numbers of pixels of the beam, the annulus and the
    floor ring. The annulus sum carries ``n_S`` pixels of noise, the floor taken off it
    ``n_S`` times the error of a mean over the ring's middle 90 %::

        σ_f = σ sqrt(n_S (1 + n_S / (0.9 n_F))) / (B - F n_B)

    On the floor ring of a pattern with a specimen ``σ`` also holds what it scatters
    there, which errs on the side of a larger noise.

    Examples
    --------
    >>> round(float(scattered_fraction_noise(1e5, 0.0, 1.0, (50, 3000, 500))[()]), 4)
    0.0015
    """
    b = np.asarray(beam, dtype=np.float64) - np.nan_to_num(
        np.asarray(floor, dtype=np.float64)
    ) * float(pixels[0])
    n_s, n_f = float(pixels[1]), max(1.0, 0.9 * float(pixels[2]))
    sigma = np.asarray(spread, dtype=np.float64) * math.sqrt(n_s * (1.0 + n_s / n_f))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, sigma / np.where(b > 0, b, 1.0), np.inf)


def virtual_bf(
    data: Any,
    radius: float,
    *,
    center: Any = None,
    units: Units = "px",
    calibration: Any = None,
    **execution: Any,
) -> np.ndarray:
    """Virtual bright-field image: counts inside a disk of ``radius`` around the centre.

    ``units="1/Å"`` gives the radius as s (needs a calibrated Dataset or ``calibration``).
    ``center`` and the execution keywords are those of :func:`virtual_images`.

    Examples
    --------
    >>> import numpy as np
    >>> float(virtual_bf(np.ones((1, 1, 9, 9)), 1.0)[0, 0])
    5.0
    """
    r = _to_px(radius, units, data, calibration)
    return virtual_images(data, {"bf": Disk(r)}, center=center, **execution)["bf"]


def virtual_adf(
    data: Any,
    inner: float,
    outer: float,
    *,
    center: Any = None,
    units: Units = "px",
    calibration: Any = None,
    **execution: Any,
) -> np.ndarray:
    """Virtual annular dark-field image: counts with ``inner <= d <= outer``.

    Examples
    --------
    >>> import numpy as np
    >>> float(virtual_adf(np.ones((1, 1, 9, 9)), 1.5, 4.0)[0, 0])
    40.0
    """
    ri = _to_px(inner, units, data, calibration)
    ro = _to_px(outer, units, data, calibration)
    return virtual_images(data, {"adf": Annulus(ri, ro)}, center=center, **execution)["adf"]


def virtual_image(
    data: Any,
    mask: np.ndarray,
    *,
    center: Any = None,
    mask_center: tuple[float, float] | None = None,
    **execution: Any,
) -> np.ndarray:
    """Virtual image with an arbitrary mask (boolean or weights, shape (ky, kx)).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((8, 8), bool); m[0, 0] = True
    >>> float(virtual_image(np.arange(256.0).reshape(2, 2, 8, 8), m)[1, 1])
    192.0
    """
    return virtual_images(
        data, {"mask": mask}, center=center, mask_center=mask_center, **execution
    )["mask"]


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
    arr = _array(data)
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
        fixed, cmap = _resolve_center(center, nav, sig)
        if cmap is None:
            raise AnodemapInputError("center: give a per-pattern map or a DirectBeam")
    itemsize = max(np.dtype(arr.dtype).itemsize, 1)
    rows = _rows(arr, rows_per_chunk) or default_rows_per_chunk(shape, 2, itemsize)
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
    cal = _resolve_calibration(data, calibration)
    fixed, cmap = _resolve_center(center, nav, sig)
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


def _bin_weights(dy: np.ndarray, dx: np.ndarray, scale: tuple[float, float], width: float):
    """Bin index and linear-split weight of each pixel (pixel shared by two bins)."""
    s = np.sqrt((dy * scale[0]) ** 2 + (dx * scale[1]) ** 2) / width
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
) -> dict[str, np.ndarray]:
    """I(s) of each pattern in ``block`` (n, ky, kx); each pixel's count is split
    linearly between the two nearest bin centres (model choice: smoother than nearest-bin
    histogramming, and a peak between two bins keeps its position)."""
    n, ky, kx = block.shape
    out = np.empty((n, n_bins))
    step = _batch(ky * kx * 3)
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
        k0, f = _bin_weights(dy, dx, scale, width)
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
    arr = _array(data)
    ndim = len(arr.shape)
    if ndim == 4:
        require_4d(data)
    elif ndim != 2:
        raise AnodemapInputError(
            f"expected one pattern (ky, kx) or a 4D-STEM dataset (ny, nx, ky, kx), got "
            f"shape {tuple(arr.shape)}"
        )
    cal = _resolve_calibration(data, calibration)
    sig = tuple(int(n) for n in arr.shape[-2:])
    nav = tuple(int(n) for n in arr.shape[:-2])
    fixed, cmap = _resolve_center(center, nav, sig)
    width = float(bin_width) if bin_width is not None else min(cal.scale)
    if not width > 0:
        raise AnodemapInputError(f"bin_width={bin_width}: must be positive (1/Å)")
    cs = np.asarray(fixed, dtype=float).reshape(-1, 2) if cmap is None else cmap.reshape(-1, 2)
    top = float(s_max) if s_max is not None else _full_ring_s(cs, sig, cal.scale)
    if top <= 0:
        raise AnodemapInputError("the centre lies on or outside the detector edge")
    n_bins = int(math.floor(top / width)) + 1
    s = np.arange(n_bins) * width
    matrix = None
    if cmap is None:
        from scipy import sparse

        yy, xx = np.mgrid[: sig[0], : sig[1]]
        k0, f = _bin_weights(yy - fixed[0], xx - fixed[1], cal.scale, width)
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
        },
        rows_per_chunk=_rows(arr, rows_per_chunk),
        client=client,
        scheduler=scheduler,
        progress=progress,
    )
    return AzimuthalProfile(s=s, intensity=res["intensity"], calibration=cal)


# --------------------------------------------------------------------------- output
def image_dataset(source: Any, image: np.ndarray, title: str, units: str = "counts") -> Dataset:
    """Wrap a scan map (ny, nx) as a Dataset with the scan axes of ``source``.

    Examples
    --------
    >>> import numpy as np
    >>> image_dataset(None, np.zeros((2, 3)), "VBF").axes[1].name
    'x'
    """
    image = np.asarray(image)
    if isinstance(source, Dataset) and source.nav_shape == image.shape:
        axes = [
            Axis(a.name, a.size, a.scale, a.offset, a.units, navigate=False)
            for a in source.nav_axes
        ]
        ds = Dataset(image, axes, {"General": dict(source.metadata.get("General", {}))})
    else:
        axes = [Axis(n, s, navigate=False) for n, s in zip(("y", "x"), image.shape, strict=False)]
        ds = Dataset(image, axes)
    ds.set_meta("General.title", title)
    ds.set_meta("Signal.signal_type", "")
    ds.set_meta("Signal.quantity", units)
    return ds
