"""Registration of two images of one region: the transform from the pixels of the
reference to those of the moving image, found automatically, with its residual.

The steps (docs/registration.md):

1. both images are prepared with the chosen contrast (:mod:`~anodemap.registration.
   contrast`), their smooth variation (thickness) taken out; ``auto`` tries intensity
   and inverted intensity and keeps the one of higher correlation peak (the same
   correlation of either sign); the gradient magnitude only where that peak does not
   stand out;
2. the work is done on the grid of the coarser image (each of its pixels one
   measurement); the scale is that of the calibrations;
3. the rotation and shift of highest correlation (:mod:`~anodemap.registration.coarse`);
4. Gauss-Newton refinement of a similarity, or of an affine map (``model="affine"``:
   drift during a scan shears and stretches the image), to sub-pixel
   (:mod:`~anodemap.registration.refine`);
5. the shifts left tile by tile (:mod:`~anodemap.registration.quality`).

Examples
--------
>>> import numpy as np
>>> from scipy import ndimage
>>> from anodemap.registration.transform import Transform
>>> rng = np.random.default_rng(3)
>>> survey = ndimage.gaussian_filter(rng.random((160, 160)), 2.5)
>>> true = Transform.similarity(0.5, -2.0, (-15.0, -18.0))  # survey px → map px
>>> small = ndimage.map_coordinates(survey, true.inverse().grid((48, 48)), order=3)
>>> reg = register(survey, small, reference_pixel_nm=1.0, moving_pixel_nm=2.0)
>>> err = reg.transform.apply([[80, 80]]) - true.apply([[80, 80]])
>>> bool(np.abs(err).max() < 0.05), round(reg.transform.rotation_deg, 1), reg.quality()
(True, -2.0, 'good')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.registration.coarse import coarse_registration
from anodemap.registration.contrast import CONTRASTS, blur, prepare
from anodemap.registration.quality import tile_residuals
from anodemap.registration.refine import refine, warp_to
from anodemap.registration.transform import MODELS, Transform

__all__ = ["Registration", "register"]

# coarse search: both images smoothed by this σ, in pixels of the coarser image
_COARSE_SMOOTHING = 1.0
# a first estimate whose correlation peak is not this much above the best elsewhere is
# not trusted (measured: 0.14-0.67 where right, 0.00-0.02 where wrong;
# docs/registration.md)
MIN_MARGIN = 0.1
# above this margin (and not of poor quality) the intensity (or inverted) match is taken
# as it is; otherwise the gradient magnitude is tried too
CLEAR_MARGIN = 0.3


# pixels closer than this many high-pass widths to an edge are not fitted
_EDGE_SIGMAS = 1.5


def _away_from_edges(valid: np.ndarray, pixels: int) -> np.ndarray:
    """The valid pixels at least ``pixels`` from an invalid one or the border."""
    if pixels <= 0:
        return valid
    from scipy import ndimage

    return ndimage.binary_erosion(valid, iterations=pixels, border_value=0)


@dataclass
class Registration:
    """The transform from the reference's pixels to the moving image's, and its quality.

    Attributes
    ----------
    transform : Transform
        Reference pixel (row, column) → moving pixel.
    model, contrast : str
        The transform model and the contrast compared.
    reference_pixel_nm, moving_pixel_nm : float
    ncc : float
        Normalised correlation of the prepared images over the pixels compared.
    margin : float
        The first estimate's correlation peak minus the best correlation elsewhere.
    overlap_px : int
        Pixels compared (of the coarser image).
    residual_px : float
        Root mean square of the shifts left tile by tile, reference pixels: how much
        local matches disagree with the transform (their own noise and the modalities'
        different contrast included: an upper bound of the error).
    uncertainty_px : float
        1σ of a mapped position: ``residual_px / sqrt(tiles)`` (the tiles taken as
        independent measurements of the transform).
    tiles : int
    tried : dict
        Per contrast tried: the first estimate's correlation and margin.
    angles : list of dict
        Every rotation the first estimate tried, with its correlation.
    tile_centres, tile_shifts : ndarray (n, 2)
        Where the tiles are and the shift each kept, reference pixels.
    """

    transform: Transform
    model: str
    contrast: str
    reference_pixel_nm: float
    moving_pixel_nm: float
    ncc: float
    margin: float
    overlap_px: int
    residual_px: float
    tiles: int
    tried: dict[str, dict[str, float]] = field(default_factory=dict)
    angles: list[dict[str, float]] = field(default_factory=list)
    tile_centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    tile_shifts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def residual_nm(self) -> float:
        """:attr:`residual_px` in nm."""
        return self.residual_px * self.reference_pixel_nm

    @property
    def uncertainty_px(self) -> float:
        """1σ of a mapped position, reference pixels."""
        return self.residual_px / math.sqrt(self.tiles) if self.tiles else float("nan")

    def quality(self) -> str:
        """``good``: a clear correlation peak, at least 4 tiles and a position
        uncertainty under a quarter of the coarser image's pixel; ``fair``: under half
        of it (or fewer tiles); else ``poor``."""
        coarse = max(self.reference_pixel_nm, self.moving_pixel_nm)
        sigma_nm = self.uncertainty_px * self.reference_pixel_nm
        if self.margin < MIN_MARGIN or not np.isfinite(sigma_nm):
            return "poor"
        if sigma_nm <= 0.25 * coarse and self.tiles >= 4:
            return "good"
        return "fair" if sigma_nm <= 0.5 * coarse else "poor"

    def to_dict(self) -> dict[str, Any]:
        """For ``registration.json``: lengths in reference pixels, moving pixels and nm."""
        to_moving = self.reference_pixel_nm / self.moving_pixel_nm
        return {
            "transform": self.transform.to_dict(),
            "model": self.model,
            "contrast": self.contrast,
            "reference_pixel_nm": self.reference_pixel_nm,
            "moving_pixel_nm": self.moving_pixel_nm,
            "scale_over_calibration": self.transform.scale / to_moving,
            "ncc": self.ncc,
            "margin": self.margin,
            "overlap_px": self.overlap_px,
            "residual_px": self.residual_px,
            "residual_moving_px": self.residual_px * to_moving,
            "residual_nm": self.residual_nm,
            "uncertainty_px": self.uncertainty_px,
            "uncertainty_nm": self.uncertainty_px * self.reference_pixel_nm,
            "tiles": self.tiles,
            "quality": self.quality(),
            "contrasts_tried": self.tried,
        }


def register(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    reference_pixel_nm: float,
    moving_pixel_nm: float,
    reference_valid: np.ndarray | None = None,
    moving_valid: np.ndarray | None = None,
    contrast: str = "auto",
    model: str = "similarity",
    max_rotation_deg: float = 10.0,
    min_overlap: float = 0.5,
    highpass_px: float = 2.0,
) -> Registration:
    """Register ``moving`` onto ``reference``.

    Parameters
    ----------
    reference, moving : ndarray (2-D)
        The images (any units; NaN for no value).
    reference_pixel_nm, moving_pixel_nm : float
        Their pixel sizes (calibrated axes): the scale between them, to start with.
    reference_valid, moving_valid : ndarray of bool, optional
        Pixels with a value (default: the finite ones).
    contrast : {"auto", "intensity", "inverted", "gradient"}
        What is compared (``inverted``: the moving image's intensity upside down).
    model : {"similarity", "affine"}
    max_rotation_deg : float
        Rotations up to this are searched.
    min_overlap : float
        Share of the smaller field of view that must overlap.
    highpass_px : float
        Intensities: variations slower than a Gaussian of this σ, in pixels of the
        coarser image, are taken out (0: kept).

    Returns
    -------
    Registration

    Raises
    ------
    AnodemapInputError
        The images do not overlap by ``min_overlap`` at any rotation searched.
    """
    if model not in MODELS:
        raise ValueError(f"model {model!r}: one of {', '.join(MODELS)}")
    if contrast != "auto" and contrast not in CONTRASTS:
        raise ValueError(f"contrast {contrast!r}: auto or one of {', '.join(CONTRASTS)}")
    ref = np.asarray(reference, dtype=float)
    mov = np.asarray(moving, dtype=float)
    ref_ok = np.isfinite(ref) if reference_valid is None else reference_valid & np.isfinite(ref)
    mov_ok = np.isfinite(mov) if moving_valid is None else moving_valid & np.isfinite(mov)
    # the work is done on the coarser image's grid ("fixed"); "other" is mapped onto it
    swap = moving_pixel_nm > reference_pixel_nm
    p_fixed = max(reference_pixel_nm, moving_pixel_nm)
    scale = p_fixed / min(reference_pixel_nm, moving_pixel_nm)  # other px per fixed px
    hp_nm = highpass_px * p_fixed
    tried: dict[str, dict[str, float]] = {}

    def attempt(c: str) -> tuple[Any, ...]:
        pr, pr_ok = prepare(
            ref,
            ref_ok,
            contrast="gradient" if c == "gradient" else "intensity",
            highpass_px=hp_nm / reference_pixel_nm,
        )
        pm, pm_ok = prepare(mov, mov_ok, contrast=c, highpass_px=hp_nm / moving_pixel_nm)
        fixed, fixed_ok, other, other_ok = (
            (pm, pm_ok, pr, pr_ok) if swap else (pr, pr_ok, pm, pm_ok)
        )
        est = coarse_registration(
            blur(fixed, fixed_ok, _COARSE_SMOOTHING),
            fixed_ok,
            blur(other, other_ok, _COARSE_SMOOTHING * scale),
            other_ok,
            scale=scale,
            max_rotation_deg=max_rotation_deg,
            min_overlap=min_overlap,
        )
        tried[c] = {"ncc": est.ncc, "margin": est.margin}
        return est, c, fixed, fixed_ok, other, other_ok

    def finish(attempted: tuple[Any, ...]) -> Registration:
        est, chosen, fixed, fixed_ok, other, other_ok = attempted
        # near an edge (of the map, of flagged pixels) the smooth part taken out is
        # one-sided and differs between the two images: left out of the fit, or it
        # pulls the scale
        edge = int(np.ceil(_EDGE_SIGMAS * highpass_px)) if highpass_px > 0 else 0
        fit = refine(
            fixed,
            _away_from_edges(fixed_ok, edge),
            other,
            _away_from_edges(other_ok, int(np.ceil(edge * scale))),
            est.transform,
            model=model,
            scale=scale,
        )
        # the tiles compare both images smoothed alike (the finer one anti-aliased)
        mapped, mapped_ok = warp_to(
            blur(other, other_ok, 0.5 * scale), other_ok, fit.transform, fixed.shape, order=3
        )
        tiles = tile_residuals(blur(fixed, fixed_ok, 0.5), fixed_ok, mapped, mapped_ok)
        if swap:  # the tiles lie on the moving image's grid: into reference pixels
            centres = fit.transform.apply(tiles.centres)
            shifts = tiles.shifts @ fit.transform.matrix.T
            transform = fit.transform.inverse()
        else:
            centres, shifts, transform = tiles.centres, tiles.shifts, fit.transform
        rms = float(np.sqrt(np.mean(np.sum(shifts**2, axis=1)))) if len(shifts) else float("nan")
        return Registration(
            transform=transform,
            model=model,
            contrast=chosen,
            reference_pixel_nm=float(reference_pixel_nm),
            moving_pixel_nm=float(moving_pixel_nm),
            ncc=fit.ncc,
            margin=est.margin,
            overlap_px=fit.n_pixels,
            residual_px=rms,
            tiles=tiles.tiles,
            tried=tried,
            angles=est.angles,
            tile_centres=centres,
            tile_shifts=shifts,
        )

    def attempt_checked(c: str) -> tuple[Any, ...]:
        found = attempt(c)
        if not np.isfinite(found[0].ncc):
            raise AnodemapInputError(
                f"the two images overlap by less than {min_overlap:.0%} of the smaller field "
                f"of view at every rotation up to ±{max_rotation_deg:g}° (not of one region?)"
            )
        return found

    if contrast != "auto":
        return finish(attempt_checked(contrast))
    # intensity or inverted: the higher peak (one correlation, of either sign); where that
    # peak is not clear or the result poor, the gradient magnitude too, kept if its peak
    # is clear and its tiles agree better
    first = finish(max((attempt_checked("intensity"), attempt("inverted")), key=lambda t: t[0].ncc))
    if first.margin >= CLEAR_MARGIN and first.quality() != "poor":
        return first
    gradient = finish(attempt("gradient"))
    if gradient.margin >= MIN_MARGIN and _doubt(gradient) < _doubt(first):
        return gradient
    return first


def _doubt(reg: Registration) -> tuple[float, float]:
    """Which of two registrations to keep: the smaller position 1σ of at least two
    tiles, then the clearer correlation peak."""
    sigma = reg.uncertainty_px * reg.reference_pixel_nm if reg.tiles >= 2 else np.inf
    return (sigma if np.isfinite(sigma) else np.inf, -reg.margin)
