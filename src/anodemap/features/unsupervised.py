"""The unsupervised default: classes of a thickness-normalised HAADF image by its
intensity, with thresholds measured on the image's own histogram.

The rule, in order (``J``: the image with the thickness term divided out, smoothed by a
Gaussian of ``smoothing_px``):

1. **grey** is the majority class (paper: "the majority of the microstructure"): its
   level ``μ`` is the highest peak of the histogram of ``J`` and its width ``σ`` the
   half width at half maximum of the peak's narrower side (÷ 1.1774), at least the noise.
   Where Otsu's split of the image leaves a dark side under 0.25 x the bright side
   (vacuum around a particle), the peak is sought on the bright side. Pixels at a
   clipped extreme of the detector range are left out of every level and threshold.
2. **pores** are the darkest mode: Otsu's threshold between the pixels darker than ``μ``,
   kept only when the pixels below it average under ``pore_ratio`` × ``μ`` (a pore holds
   less than half the material of the column around it). Where pores are few, that split
   falls between dendrite-like and grey instead; then the pixels under ``pore_ratio`` ×
   ``μ`` are the pores if there are at least 10 of them and 0.1 % of the image. Otherwise
   the image has no pore.
3. **bright** (crystalline Si): Otsu's threshold of the material, kept when the pixels
   above it average over ``bright_ratio`` × ``μ`` (c-Si is about twice as bright as
   Li1.8Si per thickness in the Z-contrast model of :mod:`anodemap.synth.haadf`) and it
   lies above the grey band.
4. **dendrite-like**: darker than ``μ - dark_sigmas σ`` (and not pore): the dark grey
   regions, high in Li (paper, Fig. 2b, feature 1).
5. **boundary**: brighter than ``μ + boundary_sigmas σ`` and not bright (O-rich grain
   boundaries: Li2O and silicates scatter more than Li_xSi).
6. **growing** (hysteresis, Canny 1986): a dendrite-like (boundary) region grows into the
   8-connected pixels darker than ``μ - grow_dark_sigmas σ`` (brighter than ``μ +
   grow_boundary_sigmas σ``): a thread's or a band's edges are partial pixels, fainter
   than its core (by default the boundary only: docs/features.md says why).
7. **the pores' shell**: pixels within ``pore_shell_px`` of a pore, neither pore nor
   bright, are boundary (:func:`line_pores`): O lines the pores (paper, Fig. 3b), and a
   pixel at a pore's edge, part void and part shell, reads as dendrite-like or grey.
8. **dark against the local grey** (a dark top-hat): the grey and dendrite-like pixels
   are split again by ``J`` less the *local* grey level ``r`` (``J`` of the grey pixels
   averaged by a Gaussian of ``dark_reference_px``, normalised convolution): a pixel is
   dendrite-like where ``J - r < -dark_local_sigmas w``, ``w`` the spread (MAD) of the
   grey pixels about ``r`` (at least the noise), the grey found again three times;
   8-connected dark specks under ``min_dark_area_px`` stay grey
   (:func:`split_dark`). The grey's Li/Si varies over about 20 nm in the phantom, a
   dendrite-like thread is about 9 nm across: a reference of a few thread widths
   follows the grey, not the threads, and ``w`` (about half the global width σ) leaves
   out the grey's own spread.

The probability of each class is that of ``J`` lying between the class's two thresholds
given the image's measured noise (Gaussian, of sd ``s``): ``Φ((J - t_lo)/s) - Φ((J -
t_hi)/s)``. It says how sure the class is against the noise, not against the rule.

Steps 6 and 7 raised the mean IoU of the five classes on the simulated electrode by
3-5 points, step 8 the dendrite-like IoU by 0.05-0.16 on the simulated electrode and
region survey (docs/features.md). Measured there too, structure-tensor coherence
did not separate the dendrite-like sheets from the grey (medians 0.6-0.7 in both at
every scale tried), so the default decides by intensity; the texture features serve the
trainable mode (:mod:`anodemap.features.trainable`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> img = np.full((64, 64), 1.0); img[:, :8] = 0.05; img[20:40, 20:40] = 1.8
>>> img[50:60, 30:50] = 0.8
>>> prob, info = classify(img + rng.normal(0, 0.03, img.shape))
>>> labels = prob.argmax(axis=0)
>>> [int(labels[30, 4]), int(labels[30, 30]), int(labels[10, 40]), int(labels[55, 40])]
[0, 1, 2, 3]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

from anodemap.features.classes import (
    BOUNDARY,
    BRIGHT,
    BY_INTENSITY,
    CLASS_NAMES,
    CLASSES,
    DENDRITE,
    GREY,
    PORE,
)

__all__ = ["classify", "line_pores", "noise_sd", "split_dark"]

# pores without a mode of their own: at least this many pixels, and this share of the
# image, under pore_ratio x the grey level (model choice: a few noisy pixels are no pore)
_MIN_PORE_PX, _MIN_PORE_SHARE = 10, 0.001
# histogram of J for the grey peak: bins between these percentiles, smoothed (model choice)
_HIST_BINS = 256
_HIST_RANGE = (0.5, 99.5)
_HIST_SMOOTH_BINS = 2.0
_FWHM_TO_SIGMA = 1.0 / math.sqrt(2.0 * math.log(2.0))  # HWHM / this = σ (1.1774)
# a dark side of the image this much darker than its bright side is vacuum, not the grey
# (model choice: the simulated pores hold under 0.1 of the grey; c-Si, the brightest
# material, about 2 x the grey, so a grey/c-Si split stays above 0.4)
_VACUUM_RATIO = 0.25
# share of the pixels at the image's minimum or maximum that says it is clipped (model
# choice: noise spreads an unclipped image's extremes over single pixels)
_CLIPPED = 0.005
# step 8: passes of the local grey reference (each leaves out the dark pixels the last
# found; the dendrite-like IoU changed by under 0.01 from 3 to 8 passes on the simulated
# electrode and region survey) and the weight below which a pixel's neighbourhood holds
# too little grey for a local level (the global grey level is used there; model choices)
_DARK_PASSES = 3
_MIN_GREY_WEIGHT = 1e-3


def noise_sd(image: np.ndarray, smoothing_px: float = 0.0) -> float:
    """The standard deviation of the image's pixel noise (robust: the median absolute
    deviation of its high-pass residual), after a Gaussian smoothing of ``smoothing_px``.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = np.random.default_rng(1).normal(0, 0.1, (128, 128))
    >>> round(noise_sd(noisy), 2)
    0.1
    """
    img = np.asarray(image, dtype=float)
    residual = img - ndimage.gaussian_filter(img, 1.0)
    mad = np.median(np.abs(residual - np.median(residual))) * 1.4826
    delta = np.zeros((15, 15))
    delta[7, 7] = 1.0
    white = float(np.sqrt(np.sum((delta - ndimage.gaussian_filter(delta, 1.0)) ** 2)))
    sigma = mad / white
    if smoothing_px > 0:
        sigma *= float(np.sqrt(np.sum(ndimage.gaussian_filter(delta, smoothing_px) ** 2)))
    return float(sigma)


def _otsu(values: np.ndarray) -> float | None:
    from skimage.filters import threshold_otsu

    values = values[np.isfinite(values)]
    if values.size < 2 or values.min() == values.max():
        return None
    return float(threshold_otsu(values))


def _grey_peak(values: np.ndarray, floor: float) -> tuple[float, float]:
    lo, hi = np.percentile(values, _HIST_RANGE)
    hist, edges = np.histogram(values, bins=_HIST_BINS, range=(lo, hi))
    smooth = ndimage.gaussian_filter1d(hist.astype(float), _HIST_SMOOTH_BINS)
    centres = 0.5 * (edges[1:] + edges[:-1])
    i = int(np.argmax(smooth))
    half = smooth[i] / 2.0
    left = i
    while left > 0 and smooth[left] > half:
        left -= 1
    right = i
    while right < smooth.size - 1 and smooth[right] > half:
        right += 1
    hwhm = min(centres[i] - centres[left], centres[right] - centres[i])
    return float(centres[i]), max(float(hwhm) * _FWHM_TO_SIGMA, floor)


def classify(
    image: np.ndarray,
    *,
    smoothing_px: float = 0.7,
    dark_sigmas: float = 2.0,
    boundary_sigmas: float = 3.0,
    pore_ratio: float = 0.5,
    bright_ratio: float = 1.3,
    grow_dark_sigmas: float | None = None,
    grow_boundary_sigmas: float | None = 2.5,
    pore_shell_px: float = 0.0,
    dark_reference_px: float | None = None,
    dark_local_sigmas: float = 2.5,
    min_dark_area_px: float = 0.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Class probabilities of every pixel of a thickness-normalised image by the rule of
    this module.

    Parameters
    ----------
    image : ndarray (ny, nx)
        The HAADF image with its thickness term divided out.
    smoothing_px : float
        Gaussian σ (px) of the smoothing before the thresholds.
    dark_sigmas, boundary_sigmas : float
        Where dendrite-like and boundary begin, in grey widths σ below and above the grey
        level (model choices, measured on the simulated electrode: docs/features.md).
    pore_ratio, bright_ratio : float
        The pore mode must lie below, the bright mode above, this many grey levels.
    grow_dark_sigmas, grow_boundary_sigmas : float or None
        Hysteresis: a dendrite-like (boundary) region grows into the pixels connected to
        it that lie more than this many grey widths below (above) the grey level, less
        far than ``dark_sigmas`` (``boundary_sigmas``). None: no growing.
    pore_shell_px : float
        Pixels within this distance (px) of a pore, neither pore nor bright, are
        boundary: the O-rich shell that lines pores. 0: none.
    dark_reference_px, dark_local_sigmas, min_dark_area_px : float
        Step 8 (:func:`split_dark`): Gaussian σ (px) of the local grey reference (None:
        no step 8), the cut below it in local grey widths, and the smallest dark region
        (px) kept as dendrite-like.

    Returns
    -------
    probability : ndarray (5, ny, nx)
        Per class code (:mod:`anodemap.features.classes`); each pixel's sum is 1.
    info : dict
        The measured levels and thresholds (in units of the grey level), the noise, and
        which classes the image holds.
    """
    img = np.asarray(image, dtype=float)
    usable = _unclipped(img)
    scale = float(np.median(img[usable]))
    scale = scale if scale > 0 else float(np.abs(img[usable]).max() or 1.0)
    j = ndimage.gaussian_filter(np.nan_to_num(img / scale), smoothing_px)
    s = max(noise_sd(img / scale, smoothing_px), 1e-6)
    values = j[usable]
    # a dark majority (vacuum around a particle, a needle) is not the grey: look for the
    # grey peak above it
    split = _otsu(values)
    if split is not None and np.median(values[values < split]) < _VACUUM_RATIO * np.median(
        values[values >= split]
    ):
        mu, sigma = _grey_peak(values[values >= split], s)
    else:
        mu, sigma = _grey_peak(values, s)
    has = {c: True for c in BY_INTENSITY}
    t_pore = _otsu(values[values < mu])
    pore_level, few = None, False
    if t_pore is not None and np.median(values[values < t_pore]) < pore_ratio * mu:
        pore_level = float(np.median(values[values < t_pore]))
    elif np.count_nonzero(values < pore_ratio * mu) >= max(
        _MIN_PORE_PX, _MIN_PORE_SHARE * values.size
    ):
        # few pores: Otsu's split of the dark side then falls between the dendrite-like
        # and the grey; the pores are still the pixels under pore_ratio x the grey
        pore_level, few = float(np.median(values[values < pore_ratio * mu])), True
    if pore_level is not None:
        # midway between the pores' level and the grey: a pixel half pore counts as pore
        # half the time, so the pores' area is not biased by their edges (but never above
        # pore_ratio x the grey: a few pores' midpoint would take in dark dendrite-like)
        t_pore = min(0.5 * (pore_level + mu), pore_ratio * mu) if few else 0.5 * (pore_level + mu)
    else:
        has[PORE], t_pore = False, -math.inf
    material = values[values >= t_pore]
    t_bright = _otsu(material)
    t_grey_hi = mu + boundary_sigmas * sigma
    if t_bright is None or not (
        t_bright > t_grey_hi and np.mean(material[material > t_bright]) > bright_ratio * mu
    ):
        has[BRIGHT], t_bright = False, math.inf
    t_grey_lo = max(mu - dark_sigmas * sigma, t_pore)
    t_grey_hi = min(t_grey_hi, t_bright)
    # hysteresis (Canny's): the grey band narrows to the growing cuts inside the regions
    # connected to a clear dendrite-like (boundary) core
    g_lo = None if grow_dark_sigmas is None else mu - grow_dark_sigmas * sigma
    g_hi = None if grow_boundary_sigmas is None else mu + grow_boundary_sigmas * sigma
    lo_grown = _grown(-j, -t_grey_lo, None if g_lo is None else -g_lo, j > t_pore)
    hi_grown = _grown(j, t_grey_hi, g_hi, j < t_bright)
    cut_lo = np.where(lo_grown, g_lo if g_lo is not None else t_grey_lo, t_grey_lo)
    cut_hi = np.where(hi_grown, g_hi if g_hi is not None else t_grey_hi, t_grey_hi)
    cuts = [-math.inf, t_pore, cut_lo, cut_hi, t_bright, math.inf]
    raw = np.nan_to_num(img / scale)
    s_raw = max(noise_sd(raw), 1e-6)
    above = []
    for k, t in enumerate(cuts):
        if np.ndim(t) == 0 and not math.isfinite(t):
            above.append(np.full(j.shape, float(t < 0)))
        elif k == 1:  # pores unsmoothed: a crack one pixel wide stays dark
            above.append(ndtr((raw - t) / s_raw))
        else:
            above.append(ndtr((j - t) / s))
    prob = np.zeros((len(BY_INTENSITY), *j.shape))
    for k, code in enumerate(BY_INTENSITY):
        prob[code] = np.clip(above[k] - above[k + 1], 0.0, 1.0)
    prob /= np.maximum(prob.sum(axis=0, keepdims=True), 1e-12)
    shell = line_pores(prob, pore_shell_px if has[PORE] else 0.0)
    local = split_dark(prob, j, s, dark_reference_px, dark_local_sigmas, min_dark_area_px)
    info = {
        "intensity_scale": scale,
        "grey_level": mu,
        "grey_width": sigma,
        "pore_level": pore_level,
        "noise_sd": s,
        "thresholds": {
            "pore_dendrite": _finite(t_pore),
            "dendrite_grey": _finite(t_grey_lo),
            "grey_boundary": _finite(t_grey_hi),
            "boundary_bright": _finite(t_bright),
        },
        "grown": {
            "dendrite_grey": None if g_lo is None else float(g_lo),
            "grey_boundary": None if g_hi is None else float(g_hi),
            "pixels": int(np.count_nonzero(lo_grown | hi_grown)),
        },
        "pore_shell": {"width_px": float(pore_shell_px), "pixels": int(np.count_nonzero(shell))},
        "local_dark": local,
        "classes_found": {CLASS_NAMES[c]: bool(has[c]) for c in CLASSES},
        "clipped_pixels": int(np.count_nonzero(~usable)),
    }
    return prob, info


def _grown(value: np.ndarray, core: float, grow: float | None, inside: np.ndarray) -> np.ndarray:
    """Hysteresis: the pixels of ``inside`` with ``value`` above ``grow`` that are
    connected (8-connectivity) to one above ``core``. Empty where ``grow`` is None or
    not below a finite ``core``."""
    if grow is None or not (math.isfinite(core) and grow < core):
        return np.zeros(value.shape, bool)
    candidate = (value > grow) & inside
    labels, n = ndimage.label(candidate, structure=np.ones((3, 3)))
    seeded = np.zeros(n + 1, bool)
    seeded[np.unique(labels[(value > core) & candidate])] = True
    seeded[0] = False
    return seeded[labels]


def line_pores(prob: np.ndarray, width_px: float) -> np.ndarray:
    """Make the pixels within ``width_px`` of a pore boundary, in place: the O-rich shell
    that lines pores (paper, Fig. 3b). Pixels labelled pore or bright keep their class;
    the others give their grey and dendrite-like probability to the boundary (their
    values are partial pixels of void and shell, no guide to the class).

    Parameters
    ----------
    prob : ndarray (5, ny, nx)
        Class probabilities, changed in place.
    width_px : float
        Shell width (px); 0: nothing changes.

    Returns
    -------
    ndarray of bool
        The shell's pixels.

    Examples
    --------
    >>> import numpy as np
    >>> prob = np.zeros((5, 9, 9)); prob[2] = 1.0; prob[:, 4, 4] = [1, 0, 0, 0, 0]
    >>> int(line_pores(prob, 1.5).sum()), int(prob.argmax(axis=0)[4, 5])
    (8, 4)
    """
    label = prob.argmax(axis=0)
    pore = label == PORE
    if width_px <= 0 or not pore.any():
        return np.zeros(label.shape, bool)
    shell = (ndimage.distance_transform_edt(~pore) <= width_px) & ~pore & (label != BRIGHT)
    rest = np.clip(1.0 - prob[PORE] - prob[BRIGHT], 0.0, 1.0)
    prob[GREY][shell] = 0.0
    prob[DENDRITE][shell] = 0.0
    prob[BOUNDARY][shell] = rest[shell]
    return shell


def split_dark(
    prob: np.ndarray,
    j: np.ndarray,
    noise: float,
    reference_px: float | None,
    sigmas: float = 2.5,
    min_area_px: float = 0.0,
) -> dict[str, Any] | None:
    """Split the grey and dendrite-like pixels again, in place, by how much darker each
    is than the grey *around it* (step 8 of the rule: a dark top-hat).

    The local grey level ``r`` is ``j`` averaged over the grey pixels by a Gaussian of
    ``reference_px`` (normalised convolution; the global grey median where the
    neighbourhood holds no grey). A pixel whose most probable class is grey or
    dendrite-like is dendrite-like where ``j - r < -sigmas w``, ``w`` the spread of the
    grey pixels about ``r`` (1.4826 × their median absolute deviation, at least the
    noise); the grey is then found again, three passes in all, so that the dark pixels
    leave the reference. 8-connected dark regions of fewer than ``min_area_px`` pixels
    stay grey. The two classes share the pixel's grey and dendrite-like probability as
    ``Φ((cut - (j - r)) / noise)``: certainty against the noise, as in the rest of the
    rule (a speck's goes to grey, as the pores' shell's goes to boundary).

    Parameters
    ----------
    prob : ndarray (5, ny, nx)
        Class probabilities, changed in place.
    j : ndarray (ny, nx)
        The smoothed, thickness-normalised image the rule classified.
    noise : float
        The noise sd of ``j``.
    reference_px : float or None
        Gaussian σ (px) of the local grey reference; None or 0: nothing changes.
    sigmas : float
        The cut, in local grey widths ``w`` below ``r``.
    min_area_px : float
        Dark regions with fewer pixels stay grey.

    Returns
    -------
    dict or None
        The width ``w`` and cut (in units of ``j``), the dendrite-like and speck pixels;
        None where nothing was done.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> j = 1.0 + 0.1 * np.linspace(-1, 1, 64)[None, :] + rng.normal(0, 0.01, (64, 64))
    >>> j[30:33, 10:54] -= 0.08  # a thread 3 px across, darker than the grey around it
    >>> prob = np.zeros((5, 64, 64)); prob[2] = 1.0
    >>> info = split_dark(prob, j, 0.01, 4.0)
    >>> labels = prob.argmax(axis=0)
    >>> int(labels[31, 30]), int(labels[10, 2]), int(labels[10, 60])
    (3, 2, 2)
    """
    if reference_px is None or reference_px <= 0:
        return None
    label = prob.argmax(axis=0)
    candidate = (label == GREY) | (label == DENDRITE)
    grey = label == GREY
    if np.count_nonzero(grey) < 2:
        return None
    fallback = float(np.median(j[grey]))
    for _ in range(_DARK_PASSES):
        weight = ndimage.gaussian_filter(grey.astype(float), reference_px)
        level = ndimage.gaussian_filter(np.where(grey, j, 0.0), reference_px)
        reference = np.where(
            weight > _MIN_GREY_WEIGHT, level / np.maximum(weight, _MIN_GREY_WEIGHT), fallback
        )
        below = j - reference
        of_grey = below[grey]
        width = max(1.4826 * float(np.median(np.abs(of_grey - np.median(of_grey)))), noise)
        cut = -sigmas * width
        dark = candidate & (below < cut)
        specks = _specks(dark, min_area_px)
        dark &= ~specks
        if not (candidate & ~dark).any():
            break
        grey = candidate & ~dark
    mass = prob[GREY] + prob[DENDRITE]
    share = ndtr((cut - below) / noise)
    share[specks] = 0.0
    prob[DENDRITE] = np.where(candidate, mass * share, prob[DENDRITE])
    prob[GREY] = np.where(candidate, mass - prob[DENDRITE], prob[GREY])
    return {
        "reference_px": float(reference_px),
        "width": width,
        "cut": cut,
        "cut_widths": float(sigmas),
        "min_area_px": float(min_area_px),
        "pixels": int(np.count_nonzero(dark)),
        "speck_pixels": int(np.count_nonzero(specks)),
    }


def _specks(mask: np.ndarray, min_area_px: float) -> np.ndarray:
    """The pixels of ``mask``'s 8-connected regions of fewer than ``min_area_px``."""
    if min_area_px <= 1 or not mask.any():
        return np.zeros(mask.shape, bool)
    regions, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    small = np.bincount(regions.ravel()) < min_area_px
    small[0] = False
    return small[regions]


def _unclipped(img: np.ndarray) -> np.ndarray:
    """Finite pixels not at a clipped extreme: the image's minimum or maximum held by
    more than ``_CLIPPED`` of the pixels (a saturated or cut detector range) is left out
    of the levels and thresholds (such pixels are still classified)."""
    ok = np.isfinite(img)
    for value in (np.min(img[ok]), np.max(img[ok])):
        at = img == value
        if np.count_nonzero(at) > _CLIPPED * img.size:
            ok &= ~at
    return ok if np.count_nonzero(ok) >= 2 else np.isfinite(img)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
