"""Segmentation of one HAADF image into the feature classes: the steps in order.

1. Zero of the signal (``black_level``), then the thickness term divided out: from a t/λ
   map of the region (:mod:`anodemap.features.thickness`) when given, else from the
   envelope of the grey class, or not at all.
2. Class probabilities: the unsupervised rule (:mod:`anodemap.features.unsupervised`) or,
   with scribbles, a random forest (:mod:`anodemap.features.trainable`).
3. Labels (the most probable class), connected regions and porosity
   (:mod:`anodemap.features.regions`), a summary over all pixels.

Examples
--------
>>> import numpy as np
>>> from anodemap.io import Axis
>>> rng = np.random.default_rng(0)
>>> img = np.full((64, 64), 100.0); img[:, :6] = 5.0; img[20:40, 20:40] = 180.0
>>> axes = [Axis("y", 64, 2.0, 0.0, "nm", False), Axis("x", 64, 2.0, 0.0, "nm", False)]
>>> seg = segment(rng.poisson(img).astype(float), axes)
>>> round(seg.summary["porosity"]["fraction"], 3), seg.summary["class_fractions"]["bright"]
(0.094, 0.09765625)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.features import regions as _regions
from anodemap.features.calibration import pixel_size_nm, to_nm
from anodemap.features.classes import CLASS_NAMES, CLASSES, GREY
from anodemap.features.parameters import FeaturesParameters
from anodemap.io import Axis

__all__ = ["Segmentation", "segment"]

#: Envelope σ for an image without a length calibration (model choice: 40 nm at the
#: simulated electrode's 1.875 nm pixels).
_UNCALIBRATED_SCALE_PX = 20.0
#: Width of the pores' O-rich shell for an image without a length calibration (model
#: choice: 6 nm at the simulated electrode's 1.875 nm pixels).
_UNCALIBRATED_SHELL_PX = 3.0
#: Local grey reference (σ) and smallest dark region of the rule's last step for an
#: image without a length calibration (model choice: 8 nm and 10 nm² at the simulated
#: electrode's 1.875 nm pixels).
_UNCALIBRATED_DARK_REFERENCE_PX = 4.0
_UNCALIBRATED_DARK_AREA_PX = 3.0


@dataclass
class Segmentation:
    """The classes of one image.

    Attributes
    ----------
    labels : ndarray of uint8 (ny, nx)
        Class codes (:mod:`anodemap.features.classes`).
    probability : ndarray of float32 (5, ny, nx)
        Probability of each class at each pixel.
    normalised : ndarray of float32 (ny, nx)
        The image with its zero and thickness term removed, grey level about 1.
    axes : list of Axis
        The image's two axes, in nm where calibrated.
    pixel_size_nm : float or None
    regions : list of dict
        The connected regions (:func:`anodemap.features.regions.connected_regions`).
    summary : dict
    """

    labels: np.ndarray
    probability: np.ndarray
    normalised: np.ndarray
    axes: list[Axis]
    pixel_size_nm: float | None
    regions: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def uncertainty(self) -> np.ndarray:
        """1 - the probability of the chosen class."""
        return (1.0 - self.probability.max(axis=0)).astype(np.float32)


def _zero(image: np.ndarray, black_level: float | None) -> tuple[np.ndarray, float, str]:
    if black_level is not None:
        return image - black_level, float(black_level), "given (black_level)"
    low = float(np.nanmin(image))
    if low < 0:
        return image - low, low, "the image's minimum (it holds negative counts)"
    return image, 0.0, "0 (default)"


def segment(
    image: np.ndarray,
    axes: list[Axis],
    parameters: FeaturesParameters | None = None,
    *,
    thickness: tuple[np.ndarray, list[Axis]] | None = None,
    scribbles: np.ndarray | None = None,
    log: Callable[[str], None] | None = None,
) -> Segmentation:
    """Segment ``image`` into pores, bright, grey, dendrite-like and boundary.

    Parameters
    ----------
    image : ndarray (ny, nx)
        HAADF counts.
    axes : list of Axis
        Its two axes (calibrated in a real-space unit, or not).
    parameters : FeaturesParameters, optional
    thickness : (ndarray, list of Axis), optional
        A t/λ map and its two axes (``anodemap eels``'s ``thickness.hspy``).
    scribbles : ndarray of int, optional
        Marked pixels (:mod:`anodemap.features.scribbles`): the trainable mode.
    log : callable, optional
        Takes lines for the user.

    Returns
    -------
    Segmentation

    Raises
    ------
    AnodemapInputError
        An image without finite values or of one value.
    """
    from anodemap.features.thickness import envelope_term, resample_to_image, thickness_term
    from anodemap.features.unsupervised import classify, line_pores

    p = parameters or FeaturesParameters()
    say = log or (lambda _: None)
    img = np.asarray(image, dtype=float)
    if img.ndim != 2 or min(img.shape) < 8:
        raise AnodemapInputError(
            f"an image of shape {img.shape}: segmentation needs 8 x 8 px or more"
        )
    if not np.isfinite(img).all():
        raise AnodemapInputError("the image holds NaN or infinite values")
    if float(img.max()) == float(img.min()):
        raise AnodemapInputError("the image holds one value only: nothing to segment")
    nm_axes = to_nm(axes)
    size = pixel_size_nm(axes)
    img, zero, zero_source = _zero(img, p.black_level)

    shell_px = p.pore_shell_nm / size if size else _UNCALIBRATED_SHELL_PX
    dark_px = None
    if p.dark_reference_nm:
        dark_px = p.dark_reference_nm / size if size else _UNCALIBRATED_DARK_REFERENCE_PX
    dark_area_px = p.min_dark_area_nm2 / size**2 if size else _UNCALIBRATED_DARK_AREA_PX

    def rule(values: np.ndarray, shapes: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
        # shapes=False: intensity alone (the grey pixels that set the envelope)
        return classify(
            values,
            smoothing_px=p.smoothing_px,
            dark_sigmas=p.dark_sigmas,
            boundary_sigmas=p.boundary_sigmas,
            pore_ratio=p.pore_ratio,
            bright_ratio=p.bright_ratio,
            grow_dark_sigmas=p.grow_dark_sigmas if shapes else None,
            grow_boundary_sigmas=p.grow_boundary_sigmas if shapes else None,
            pore_shell_px=shell_px if shapes else 0.0,
            dark_reference_px=dark_px if shapes else None,
            dark_local_sigmas=p.dark_local_sigmas,
            min_dark_area_px=dark_area_px,
        )

    if thickness is not None:
        values, map_axes = thickness
        term_map = thickness_term(values, p.min_thickness)
        term = resample_to_image(term_map, map_axes, axes)
        term = term / float(np.median(term))
        thickness_source = "t/λ map (--thickness), its holes filled from the material around"
    elif p.background == "envelope":
        scale_px = p.background_scale_nm / size if size else _UNCALIBRATED_SCALE_PX
        term = envelope_term(img, scale_px, lambda v: rule(v, shapes=False))
        thickness_source = f"envelope of the grey class (σ = {scale_px:.3g} px)"
    else:
        term = np.ones_like(img)
        thickness_source = "none (background none)"
    normalised = img / np.maximum(term, 1e-6)
    if scribbles is not None:
        from anodemap.features.trainable import train_and_predict

        prob, how = train_and_predict(
            normalised, scribbles, scales=p.feature_scales_px, n_trees=p.n_trees, seed=p.seed
        )
        # the pores' O-rich shell, as in the unsupervised rule: a forest sees the partial
        # pixels at a pore's edge as dark grey or dendrite-like
        how["pore_shell"] = {"width_px": shell_px, "pixels": int(line_pores(prob, shell_px).sum())}
        mode = "trainable"
        say(f"trained a random forest on {int(np.count_nonzero(scribbles))} marked pixels")
    else:
        prob, how = rule(normalised)
        mode = "unsupervised"
    labels = prob.argmax(axis=0).astype(np.uint8)
    origin = (nm_axes[0].offset, nm_axes[1].offset)
    rows = _regions.connected_regions(labels, prob, size, origin, p.min_region_px)
    grey_level = float(np.median(normalised[labels == GREY])) if (labels == GREY).any() else None
    summary = _summary(labels, prob, rows, p, mode, how, size)
    if mode == "unsupervised" and p.pore_trials > 0:
        from anodemap.features.detection import pore_detection_limit

        summary["porosity"]["detection_limit"] = pore_detection_limit(
            normalised, rule, pixel_size_nm=size, placements=int(p.pore_trials)
        )
    summary["signal_zero"] = {"counts": zero, "source": zero_source}
    summary["thickness_term"] = thickness_source
    summary["grey_level_normalised"] = grey_level
    return Segmentation(
        labels,
        prob.astype(np.float32),
        (normalised / (grey_level or 1.0)).astype(np.float32),
        nm_axes,
        size,
        rows,
        summary,
    )


def _summary(
    labels: np.ndarray,
    prob: np.ndarray,
    rows: list[dict[str, Any]],
    p: FeaturesParameters,
    mode: str,
    how: dict[str, Any],
    size: float | None,
) -> dict[str, Any]:
    n = labels.size
    counts = np.bincount(labels.ravel(), minlength=len(CLASSES))
    pore = int(counts[0])
    material = max(n - pore, 1)
    per_class = {CLASS_NAMES[c]: 0 for c in CLASSES}
    for r in rows:
        per_class[r["class"]] += 1
    certain = prob.max(axis=0)
    return {
        "mode": mode,
        "n_pixels": int(n),
        "image_shape": list(labels.shape),
        "pixel_size_nm": size,
        "class_codes": {CLASS_NAMES[c]: int(c) for c in CLASSES},
        "class_pixels": {CLASS_NAMES[c]: int(counts[c]) for c in CLASSES},
        "class_fractions": {CLASS_NAMES[c]: float(counts[c]) / n for c in CLASSES},
        "class_fractions_over": "all pixels of the image",
        "material_fractions": {
            CLASS_NAMES[c]: float(counts[c]) / material for c in CLASSES if c != 0
        },
        "material_fractions_over": "pixels not labelled pore",
        "porosity": _regions.porosity(labels, prob),
        "regions": {
            "count_per_class": per_class,
            "listed_from_area_px": p.min_region_px,
            "connectivity": "4 (pixels sharing an edge)",
        },
        "mean_probability_of_label": float(certain.mean()),
        "pixels_below_probability_0.9": int(np.count_nonzero(certain < 0.9)),
        "method": how,
        "parameters": p.as_dict(),
    }
