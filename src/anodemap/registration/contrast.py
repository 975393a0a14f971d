"""What of an image the registration compares: its intensity, the intensity inverted,
or its gradient magnitude, robustly normalised, with its flagged pixels left out.

Modalities show one specimen with different contrast: a HAADF image is bright where the
specimen is thick and heavy, so is an EELS t/λ map, an EDX count map and a virtual ADF
image; a zero-loss or virtual bright-field image is the other way round (``inverted``).
The gradient magnitude (``gradient``) keeps the outlines whatever their sign, at the
cost of the smooth thickness variation that intensities share.

Examples
--------
>>> import numpy as np
>>> img = np.arange(16.0).reshape(4, 4); img[0, 0] = np.nan
>>> out, valid = prepare(img, contrast="inverted")
>>> bool(valid[0, 0]), bool(out[3, 3] < out[1, 1])
(False, True)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["CONTRASTS", "blur", "prepare"]

#: The contrasts the registration can compare.
CONTRASTS = ("intensity", "inverted", "gradient")

# robust normalisation: values beyond this many robust standard deviations are clipped
# (a hot pixel or a Bragg flash must not dominate the correlation)
_CLIP_SIGMAS = 5.0


def blur(image: np.ndarray, valid: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian smoothing over the valid pixels only (normalised convolution): a flagged
    pixel neither gives its value to its neighbours nor gets one."""
    if sigma_px <= 0:
        return np.where(valid, image, 0.0)
    w = ndimage.gaussian_filter(valid.astype(float), sigma_px, mode="constant")
    v = ndimage.gaussian_filter(np.where(valid, image, 0.0), sigma_px, mode="constant")
    return np.where(valid, v / np.maximum(w, 1e-12), 0.0)


def prepare(
    image: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    contrast: str = "intensity",
    sigma_px: float = 0.0,
    highpass_px: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The image as the registration compares it, and its valid pixels.

    Parameters
    ----------
    image : ndarray (ny, nx)
    valid : ndarray of bool, optional
        Pixels with a value (default: the finite ones); NaN pixels are never valid.
    contrast : {"intensity", "inverted", "gradient"}
    sigma_px : float
        Gaussian smoothing first (σ in pixels; an anti-aliasing blur before comparing
        with a coarser map). The gradient is taken at least at σ = 1 px.
    highpass_px : float
        Intensities: the image smoothed by this σ (pixels) is subtracted (0: not).

    Returns
    -------
    prepared : ndarray of float64
        Zero median, unit robust standard deviation over the valid pixels, clipped at
        ±5; 0 at invalid pixels.
    valid : ndarray of bool
    """
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast {contrast!r}: one of {', '.join(CONTRASTS)}")
    img = np.asarray(image, dtype=float)
    ok = np.isfinite(img) if valid is None else (np.asarray(valid, bool) & np.isfinite(img))
    if ok.sum() < 4:
        return np.zeros(img.shape), ok
    if contrast == "gradient":
        s = max(sigma_px, 1.0)
        filled = blur(img, ok, s)
        gy = ndimage.sobel(filled, axis=0, mode="nearest")
        gx = ndimage.sobel(filled, axis=1, mode="nearest")
        out = np.hypot(gy, gx)
        # a gradient next to a flagged pixel measures the gap, not the specimen
        ok = ndimage.binary_erosion(ok, iterations=1, border_value=1)
    else:
        out = blur(img, ok, sigma_px)
        if highpass_px > 0:  # the smooth thickness variation out: it matches anywhere
            out = out - blur(img, ok, highpass_px)
        if contrast == "inverted":
            out = -out
    vals = out[ok]
    if vals.size < 4:
        return np.zeros(img.shape), ok
    med = float(np.median(vals))
    spread = 1.4826 * float(np.median(np.abs(vals - med)))
    if not spread > 0:
        spread = float(vals.std()) or 1.0
    out = np.clip((out - med) / spread, -_CLIP_SIGMAS, _CLIP_SIGMAS)
    return np.where(ok, out, 0.0), ok
