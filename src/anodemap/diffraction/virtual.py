"""4D-STEM basics on lazy data: direct beam (descan), virtual images, averages and I(s).

Every per-pattern computation is a plain kernel on a block of patterns ``(n, ky, kx)``
run by the one execution layer, :func:`anodemap._compute.map_pixels`, so the same call
runs on a numpy array, on a lazy dask array read chunk by chunk, and on a
``dask.distributed`` cluster (pass ``client=``). The averaged pattern is a reduction
(sum and count) over the same chunks, written with ``dask.array.blockwise``.

This module holds the virtual images (disk, annulus and array masks, the ring level and
the scattered fraction of the vacuum test); the direct beam is in
:mod:`anodemap.diffraction.beam` and the averages and I(s) in
:mod:`anodemap.diffraction.averaging`, whose public names are exported from here too.

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

from anodemap._compute import OutputSpec, map_pixels
from anodemap.diffraction._data4d import batch_size, chunk_rows, data_array, resolve_calibration
from anodemap.diffraction.averaging import (
    AzimuthalProfile,
    averaged_patterns,
    azimuthal_average,
    mean_pattern,
    mean_patterns,
)
from anodemap.diffraction.beam import DirectBeam, find_direct_beam, resolve_center
from anodemap.diffraction.calibration import require_4d
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset

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


def _to_px(value: float, units: str, data: Any, calibration: Any) -> float:
    if units == "px":
        return float(value)
    if units in ("1/Å", "1/A"):
        return resolve_calibration(data, calibration).to_pixels(value)
    raise AnodemapInputError(f"units={units!r}: use 'px' or '1/Å'")


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
    step = batch_size(ky * kx * max(1, len(names)))
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
    arr = data_array(data)
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
    fixed, cmap = resolve_center(center, shape[:2], sig)
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
        rows_per_chunk=chunk_rows(arr, rows_per_chunk),
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
    arr = data_array(data)
    sig = (shape[2], shape[3])
    if not (0 <= ring.inner <= ring.outer) or not 0 <= trim < 0.5:
        raise AnodemapInputError(f"ring {ring}, trim {trim}: need 0 <= inner <= outer, trim < 0.5")
    fixed, cmap = resolve_center(center, shape[:2], sig)
    if cmap is None:
        cmap = np.broadcast_to(np.asarray(fixed, float), tuple(shape[:2]) + (2,))
    res = map_pixels(
        _ring_level_block,
        arr,
        sig_ndim=2,
        outputs={"level": OutputSpec(), "spread": OutputSpec()},
        extras=(np.ascontiguousarray(cmap, dtype=np.float64),),
        kwargs={"ring": ring, "trim": float(trim)},
        rows_per_chunk=chunk_rows(arr, rows_per_chunk),
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
