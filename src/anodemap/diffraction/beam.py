"""Direct beam of every pattern of a 4D-STEM scan: sub-pixel centres and the descan.

:func:`find_direct_beam` measures the beam centre of every pattern into a
:class:`DirectBeam` (whose :meth:`~DirectBeam.plane` is the fitted descan), the beam
radius estimated from the data when it is not given, and, where a Bragg disk outshines
the beam, the disk that the neighbouring patterns' descan points to instead.
:func:`resolve_center` reads the ``center`` argument of the virtual images and the
averages (one centre, a centre map or a :class:`DirectBeam`). Conventions as in
:mod:`anodemap.diffraction.virtual`, which re-exports :class:`DirectBeam` and
:func:`find_direct_beam`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from anodemap._compute import OutputSpec, local_scheduler, map_pixels
from anodemap.diffraction._data4d import batch_size, chunk_rows, data_array
from anodemap.diffraction.calibration import require_4d
from anodemap.errors import AnodemapInputError
from anodemap.status import Status

__all__ = ["DirectBeam", "find_direct_beam", "resolve_center"]

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


def resolve_center(center: Any, nav_shape: tuple[int, ...], sig_shape: tuple[int, int]):
    """Read a ``center`` argument: None (the pattern middle), one ``(cy, cx)``, a map
    ``(*nav, 2)`` or a :class:`DirectBeam` (its :meth:`~DirectBeam.filled` centres).

    Returns (fixed (cy, cx) or None, per-pattern map (*nav, 2) or None).
    """
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
    a = data_array(data)
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
    step = batch_size(ky * kx)
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
    arr = data_array(data)
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
        rows_per_chunk=chunk_rows(arr, rows_per_chunk),
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
