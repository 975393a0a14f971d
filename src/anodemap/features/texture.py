"""Per-pixel features of an image: intensity, local variance and texture at a few scales.

Each feature is a plain array of the image's shape, named, so that a classifier's input
is listed in ``summary.json``. The texture features come from the structure tensor
(:func:`skimage.feature.structure_tensor`): its coherence ``((λ1 - λ2) / (λ1 + λ2))``,
0 for isotropic texture and 1 for parallel lines, is high in sheet-like (dendrite-like)
regions; and from the Hessian, whose eigenvalues mark thin dark or bright lines.

References
----------
J. Bigun, G. H. Granlund, "Optimal orientation detection of linear symmetry", Proc. 1st
ICCV (1987) 433: the structure tensor and its coherence.

Examples
--------
>>> import numpy as np
>>> stripes = np.sin(np.arange(32) / 2.0)[None, :].repeat(32, axis=0)
>>> f = pixel_features(stripes, scales=(1.0, 2.0))
>>> bool(f["coherence_2px"][8:24, 8:24].mean() > 0.9)
True
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["coherence", "pixel_features"]


def coherence(image: np.ndarray, sigma: float, inner: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Coherence (0-1) and orientation (rad) of the structure tensor.

    Parameters
    ----------
    image : ndarray
    sigma : float
        Integration window (Gaussian σ, px).
    inner : float
        Gradient scale (Gaussian σ, px) applied first.

    Returns
    -------
    coherence, orientation : ndarray
        The orientation is that of the lines (perpendicular to the gradient), from +x
        towards +y.
    """
    from skimage.feature import structure_tensor

    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=float), inner)
    arr, arc, acc = structure_tensor(smooth, sigma=sigma, order="rc")
    trace = arr + acc
    diff = np.sqrt((arr - acc) ** 2 + 4.0 * arc**2)
    coh = np.where(trace > 0, diff / np.where(trace > 0, trace, 1.0), 0.0)
    # gradient direction: angle of the main eigenvector (x = columns, y = rows)
    angle = 0.5 * np.arctan2(2.0 * arc, acc - arr)
    return np.clip(coh, 0.0, 1.0) ** 2, np.mod(angle + np.pi / 2.0, np.pi)


def pixel_features(image: np.ndarray, scales: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Named per-pixel features of ``image`` at each scale (σ in px).

    Smoothed intensity, local standard deviation, gradient magnitude, the two Hessian
    eigenvalues and the structure tensor's coherence (:func:`coherence`).

    Parameters
    ----------
    image : ndarray (ny, nx)
        Best normalised (thickness divided out, grey level 1).
    scales : tuple of float
        The trainable mode's are ``FeaturesParameters.feature_scales_px``.

    Returns
    -------
    dict of str to ndarray
    """
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals

    img = np.asarray(image, dtype=float)
    out: dict[str, np.ndarray] = {}
    for s in scales:
        tag = f"{s:g}px"
        mean = ndimage.gaussian_filter(img, s)
        out[f"intensity_{tag}"] = mean
        out[f"std_{tag}"] = np.sqrt(
            np.maximum(ndimage.gaussian_filter(img * img, s) - mean * mean, 0.0)
        )
        out[f"gradient_{tag}"] = ndimage.gaussian_gradient_magnitude(img, s)
        h = hessian_matrix(img, sigma=s, order="rc", use_gaussian_derivatives=True)
        e1, e2 = hessian_matrix_eigvals(h)
        out[f"hessian_max_{tag}"], out[f"hessian_min_{tag}"] = s * s * e1, s * s * e2
        out[f"coherence_{tag}"] = coherence(img, sigma=max(s, 1.0), inner=1.0)[0]
    return out
