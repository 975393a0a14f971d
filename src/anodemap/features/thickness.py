"""The thickness term of a HAADF image: a t/λ map put on the image's grid.

HAADF intensity is, column by column, about the thickness times ``Σ n_i Z_i**n``. A t/λ
map of the same region (``anodemap eels``: ``thickness.hspy``) divides the
thickness out. Its pores and vacuum (t/λ below ``min_thickness``) are holes in the
lamella, not thin material, so there the term is that of the material around them
(normalised convolution); t/λ also holds λ, which differs between the classes by up to
about 15 %, and is kept: it adds to the contrast of the classes rather than removing it.

Examples
--------
>>> import numpy as np
>>> t = np.full((20, 20), 0.8); t[8:12, 8:12] = 0.05  # a pore
>>> term = thickness_term(t, min_thickness=0.1)
>>> bool(np.allclose(term[10, 10], 0.8, rtol=0.05))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from anodemap.errors import AnodemapInputError
from anodemap.features.calibration import is_calibrated, to_nm
from anodemap.io import Axis

__all__ = ["envelope_term", "resample_to_image", "thickness_term"]

# width (t/λ-map pixels) of the normalised convolution that fills holes and of the band
# around them left out (partial pixels at their edges); model choices
_FILL_SIGMA_PX = 1.5
_EDGE_PX = 1


def thickness_term(
    t_over_lambda: np.ndarray, min_thickness: float = 0.1, smoothing_px: float = _FILL_SIGMA_PX
) -> np.ndarray:
    """t/λ with its holes (below ``min_thickness``, and the pixel around them) filled
    from the material around them, smoothed by ``smoothing_px`` (Gaussian σ).

    Parameters
    ----------
    t_over_lambda : ndarray (ny, nx)
    min_thickness : float
        t/λ below this is a hole (``anodemap eels``'s ``min_thickness``, 0.1).
    smoothing_px : float
        Gaussian σ of the normalised convolution, in pixels of the map.

    Returns
    -------
    ndarray
        Positive everywhere.

    Raises
    ------
    AnodemapInputError
        No pixel of the map reaches ``min_thickness``.
    """
    t = np.asarray(t_over_lambda, dtype=float)
    solid = np.isfinite(t) & (t >= min_thickness)
    solid = ndimage.binary_erosion(solid, iterations=_EDGE_PX, border_value=1)
    if not solid.any():
        raise AnodemapInputError(
            f"the t/λ map has no pixel of material (t/λ >= {min_thickness:g} everywhere "
            "below): give the t/λ map of the region's material (anodemap eels)"
        )
    values = np.where(solid, t, 0.0)
    out = np.zeros_like(t)
    todo = np.ones(t.shape, bool)
    sigma = smoothing_px
    while todo.any():  # larger kernels for larger holes
        num = ndimage.gaussian_filter(values, sigma, mode="nearest")
        den = ndimage.gaussian_filter(solid.astype(float), sigma, mode="nearest")
        ok = todo & (den > 0.2)
        out[ok] = num[ok] / den[ok]
        todo &= ~ok
        sigma *= 2.0
        if sigma > 4 * max(t.shape):
            out[todo] = float(np.median(t[solid]))
            break
    return out


def resample_to_image(
    values: np.ndarray, map_axes: list[Axis], image_axes: list[Axis]
) -> np.ndarray:
    """A map (``values`` with its two axes ``map_axes``) on the image's grid.

    By their calibrated axes (nm, offsets included: the two must share an origin, as a
    microscope's stage coordinates do; registration is not done here), linearly; or
    pixel for pixel when neither is calibrated and the shapes agree.

    Raises
    ------
    AnodemapInputError
        The map does not cover the image, or cannot be placed on it.
    """
    data = np.asarray(values, dtype=float)
    shape = tuple(a.size for a in image_axes)
    t_axes = list(map_axes)
    if not (is_calibrated(t_axes) and is_calibrated(image_axes)):
        if data.shape == shape:
            return data
        raise AnodemapInputError(
            f"a t/λ map of {data.shape[0]} x {data.shape[1]} pixels without a calibration "
            f"in nm cannot be placed on the image of {shape[0]} x {shape[1]}; give the map "
            "of the same scan, or calibrated maps"
        )
    t_nm, i_nm = to_nm(t_axes), to_nm(image_axes)
    coords = []
    for ta, ia in zip(t_nm, i_nm, strict=True):
        index = (ia.values - ta.offset) / ta.scale
        # half a map pixel beyond its edge is still its pixel
        if index.min() < -0.5 - 1e-6 or index.max() > ta.size - 0.5 + 1e-6:
            raise AnodemapInputError(
                f"the t/λ map ({ta.name or 'axis'} {ta.values[0]:.4g}–{ta.values[-1]:.4g} nm) "
                f"does not cover the image ({ia.values[0]:.4g}–{ia.values[-1]:.4g} nm); give "
                "the t/λ map of the same region (the maps are placed by their calibrated "
                "axes, not registered)"
            )
        coords.append(np.clip(index, 0, ta.size - 1))
    grid = np.meshgrid(*coords, indexing="ij")
    return ndimage.map_coordinates(data, grid, order=1, mode="nearest")


def envelope_term(
    image: np.ndarray, scale_px: float, classify: Any, iterations: int = 3
) -> np.ndarray:
    """The thickness term estimated from the image itself, when no t/λ map is given.

    The grey class is the majority and, of one composition, varies in a HAADF image
    only with the thickness: its level, smoothed over ``scale_px`` (Gaussian σ) by
    normalised convolution over the pixels classified grey, estimates the term. The
    classes are found again on the image divided by it, ``iterations`` times, starting
    from the image's local median over a window of ``4 scale_px`` (where the majority,
    grey, sets the level).

    Parameters
    ----------
    image : ndarray
    scale_px : float
        Gaussian σ (px): thickness varies slower than this, the classes faster.
    classify : callable
        ``classify(image) -> (probability (5, ny, nx), info)``
        (:func:`anodemap.features.unsupervised.classify`).
    iterations : int

    Returns
    -------
    ndarray
        Relative to the image's grey level (about 1).
    """
    from anodemap.features.classes import GREY

    img = np.asarray(image, dtype=float)
    term = _local_median(img, scale_px)
    for _ in range(iterations):
        prob, _ = classify(img / term)
        grey = (prob.argmax(axis=0) == GREY).astype(float)
        num = ndimage.gaussian_filter(img * grey, scale_px, mode="nearest")
        den = ndimage.gaussian_filter(grey, scale_px, mode="nearest")
        level = float(np.median(img[grey > 0])) if grey.any() else float(np.median(img))
        if not level > 0:  # no usable grey level: leave the thickness in
            return np.ones_like(img)
        # far from any grey pixel the term is the image's grey level
        weight = np.clip(den / 0.05, 0.0, 1.0)
        local = np.where(den > 1e-6, num / np.maximum(den, 1e-6), level)
        term = (weight * local + (1.0 - weight) * level) / level
        term = np.maximum(term, 1e-3)
    return term


def _local_median(image: np.ndarray, scale_px: float) -> np.ndarray:
    """The image's median over windows of about ``4 scale_px``, relative to its median
    (computed on an image binned to about ``scale_px / 2`` per pixel, then interpolated)."""
    ny, nx = image.shape
    b = max(1, min(int(scale_px // 2), min(ny, nx) // 4))
    cy, cx = ny // b * b, nx // b * b
    binned = image[:cy, :cx].reshape(cy // b, b, cx // b, b).mean(axis=(1, 3))
    size = max(3, int(round(4 * scale_px / b)) | 1)
    med = ndimage.median_filter(binned, size=size, mode="nearest")
    zoom = (ny / med.shape[0], nx / med.shape[1])
    level = ndimage.zoom(med, zoom, order=1, mode="nearest", grid_mode=True)[:ny, :nx]
    level = np.pad(level, ((0, ny - level.shape[0]), (0, nx - level.shape[1])), mode="edge")
    ref = float(np.median(image))
    if not ref > 0:
        return np.ones_like(image)
    return np.maximum(level / ref, 1e-3)
