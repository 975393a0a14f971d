"""Phase and orientation mapping by template matching in polar coordinates (ASTAR-style).

Every pattern of a block goes through one fused kernel:

1. **Polar transform** around its own direct-beam centre (sub-pixel, bilinear) onto a grid of
   ``n_r`` radii (1/Å, one detector pixel apart) by ``n_azimuth`` azimuths.
2. **Ring removal and intensity transform.** Per radius, the azimuthal *median* of the
   linear intensity (the azimuthally uniform part: amorphous rings and diffuse background;
   the median ignores spots, which cover few azimuths) is subtracted, negatives are clipped
   to 0 and the remaining *spot image* is compressed by ``gamma`` (default 0.5, the square
   root; model choice, as pyxem's and ASTAR's usual image gamma): ``P = max(I - med_r, 0)**γ``.
   Subtracting in linear intensity before the gamma keeps the spot contrast independent of
   the ring it sits on. Template intensities get the same gamma, so an exact kinematic
   pattern reaches Q = 1.
3. **Correlation over all in-plane rotations at once.** For template ``T`` with spots at
   polar bins ``(r_j, a_j)`` and weights ``w_j``, the correlation at in-plane rotation
   ``θ = k·Δφ`` is the gather-sum ``C(k) = Σ_j w_j P(r_j, a_j + k)``, computed for all ``k``
   as contiguous SIMD sweeps along azimuth (numba, float32) over an azimuth-doubled copy of
   ``P``. No template is ever rotated.
4. **Correlation index** (Rauch & Dupuy, Arch. Metall. Mater. 50 (2005) 87; Rauch et al.,
   Z. Kristallogr. 225 (2010) 103)::

       Q = Σ_j P(r_j, a_j + k) T_j / ( sqrt(Σ_image P²) · sqrt(Σ_j T_j²) )

   Normalisation (stated choice): the image norm runs over the *whole* polar spot image,
   not only over the template's spot positions as in Rauch & Dupuy's formula. With the
   spot-only norm a template with one spot on any bright pixel scores Q = 1; with the image
   norm Q is the cosine between the spot image and the template drawn on the polar grid, so
   Q = 1 exactly when the spot image is the template (and Q <= 1 always), and templates
   that leave spots of the pattern unexplained score lower. pyxem's
   ``normalize_image=True`` makes the same choice.
5. **Reliabilities.** Orientation reliability ``R = 100 (1 - Q2/Q1)`` within the best phase,
   with Q2 the best solution that is a different *orientation*: a template at its best
   in-plane angle, or another in-plane angle of the best template, whose orientation is
   more than ``min_misorientation`` from the best one modulo the crystal's proper rotations
   (libraries with Euler angles; without them, templates are told apart by beam direction
   and the template's own in-plane symmetry). Kinematic near-ambiguities thus get a low R:
   an off-zone pattern and its 180° in-plane turn with the beam tilted by 2-3° score within
   1 % of each other, and a pattern of one Friedel pair fixes no orientation.
   Phase reliability ``100 (1 - Q_second_phase / Q_best_phase)``.
6. **Amorphous class, by a measured criterion.** Each pattern is also matched after a
   *decoy* transform: in every radial band of ``scramble_band`` radii, the half circle is
   cut into segments of about ``decoy_segment`` pixels of arc, which are shuffled and
   rotated at random, each azimuth moving together with its Friedel mate at +180°. This
   keeps every ring, every radial profile, each band's intensity values, spot and speckle
   shapes and the centrosymmetry of speckle, and destroys the angular relations between
   spots (within a band and across radii) that a lattice imposes. The *spottiness* is
   ``L = ln(Q_best / Q_decoy)`` (Q_decoy: mean over ``n_decoys`` decoys). For a pattern without crystal spots (azimuthally
   exchangeable), the pattern and its decoy are about equally likely, so L is symmetric
   about 0; a lattice gives L > 0. (A single Friedel pair of spots and nothing else is
   indistinguishable from centrosymmetric speckle by this test and comes out amorphous.)
   The threshold is derived from the data (:func:`amorphous_threshold`): a stated false-discovery rate of
   the crystalline class by the knockoff+ rule (Barber & Candès, Ann. Stat. 43 (2015)
   2055), and a stated false-positive rate per amorphous pattern from the null's scale
   measured on the patterns with L < 0. Spots on amorphous rings survive the ring
   removal and come out crystalline. A second, intensity-based route catches what the
   decoy test cannot (one Friedel pair, few spots on strong rings): after a Gaussian
   smoothing of ``peak_smoothing`` px, each radius's circle gives
   ``z = (I - median) / (1.4826 MAD)`` and the *pair peak* is the largest
   ``min(z(φ), z(φ + π))``, the weaker Friedel mate of the best pair in units of the
   ring's own noise. Its null (Gumbel) is fitted to the patterns the decoy test leaves
   amorphous (to their lower quantiles when crystals are the majority of them) and the
   threshold is its ``1 - fpr`` quantile (:func:`peak_threshold`); a
   pattern is crystalline by either route. These two routes are relative to the scan: a
   scan without amorphous patterns has no null for them. An **absolute** route needs
   none: a Friedel pair at ``bragg_z`` (8) times its ring's noise or more is Bragg
   diffraction whatever the rest of the scan.
7. **Labels** (:func:`assign_phases`, codes in :func:`phase_label_names`): vacuum (decided
   before matching from the intensity scattered outside the direct beam), amorphous (no
   route calls it crystalline), the best phase, or *crystalline, not indexed* when a
   pattern with Bragg spots and its best template disagree: the share of its spots'
   intensity the template explains and the share of the template's intensity it shows
   (``spot_match``, their geometric mean;
   :func:`~anodemap.diffraction.matching_kernels.spot_kernel`) is below
   ``min_spot_match``. The *amorphous share* of each pattern is the fraction of its
   intensity (between ``r_min`` and ``r_max``, area-weighted) that is azimuthally
   uniform (the per-radius median); it includes any isotropic diffuse background.

This module holds the entry points: the block kernel (:func:`match_kernel`),
:func:`match_patterns`, :func:`refine_orientations` and, for diagnostics,
:func:`polar_transform` and :func:`match_polar`. The inputs and the prepared
:class:`Matcher` are in :mod:`anodemap.diffraction.matcher`, the compiled kernels in
:mod:`anodemap.diffraction.matching_kernels`, the thresholds and labels (6 and 7) in
:mod:`anodemap.diffraction.thresholds`; their public names are exported from here too.

Conventions
-----------
* Pattern pixels are ``(ky, kx)`` = (row, column); centres are given as ``(ky, kx)`` pixels.
* Azimuth ``φ = atan2(ky - cy, kx - cx)``: from +kx towards +ky, in radians. A template's
  spot azimuths must use the same convention (spot at ``(x, y) = (kx, ky)`` direction).
* The in-plane angle ``θ`` is the rotation that takes the template onto the pattern (spot at
  template azimuth ``φ`` appears at ``φ + θ``). For Bunge Euler angles of the template
  ``(φ1, Φ, φ2)`` (passive, sample -> crystal, the sample frame being the template's x, y and
  the beam z), the pattern's orientation is ``(φ1 + θ, Φ, φ2)``.
* Kinematic patterns obey Friedel's law, so the in-plane angle is found modulo 180° when
  the crystal has no 2-fold axis along the beam (e.g. a [111] pattern is 6-fold, the
  crystal 3-fold: Σ3 twins look alike). Orientations of the mirror half of the proper
  fundamental sector need the mirrored templates
  (``generate_templates(..., include_mirrored=True)``).
* s = 1/d in 1/Å throughout (q = 2πs is never used here).

Examples
--------
>>> import numpy as np
>>> from anodemap.diffraction.matching import SpotTemplates, match_patterns
>>> az = np.deg2rad([[0, 90, 180, 270], [0, 60, 180, 240]])
>>> lib = SpotTemplates(r=np.full((2, 4), 0.3), azimuth=az, intensity=np.ones((2, 4)))
>>> yy, xx = np.mgrid[:48, :48]
>>> pattern = np.zeros((48, 48))
>>> for a in az[1] + np.deg2rad(30):   # template 1 rotated by 30 degrees
...     pattern += np.exp(-((yy - 24 - 15 * np.sin(a))**2 + (xx - 24 - 15 * np.cos(a))**2) / 2)
>>> res = match_patterns(pattern[None], [[24.0, 24.0]], [lib], scale=0.02,
...                      amorphous_threshold=0.0)
>>> int(res["template"][0]), round(float(res["angle"][0]))
(1, 30)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anodemap._compute import OutputSpec, map_pixels
from anodemap.diffraction.matcher import (
    Matcher,
    MatchParameters,
    PolarGrid,
    SpotTemplates,
    laue_rotations,
    prepare_matcher,
)
from anodemap.diffraction.matching_kernels import (
    content_hashes,
    correlation_kernel,
    polar_kernel,
    search_kernel,
    spot_kernel,
)
from anodemap.diffraction.thresholds import (
    LABEL_AMORPHOUS,
    LABEL_NOT_ANALYSED,
    LABEL_NOT_INDEXED,
    LABEL_VACUUM,
    amorphous_threshold,
    assign_phases,
    decision_thresholds,
    peak_threshold,
    phase_label_names,
)
from anodemap.errors import AnodemapInputError
from anodemap.status import Status

__all__ = [
    "LABEL_AMORPHOUS",
    "LABEL_NOT_ANALYSED",
    "LABEL_NOT_INDEXED",
    "LABEL_VACUUM",
    "MatchParameters",
    "Matcher",
    "PolarGrid",
    "SpotTemplates",
    "amorphous_threshold",
    "assign_phases",
    "laue_rotations",
    "match_kernel",
    "match_polar",
    "match_patterns",
    "peak_threshold",
    "phase_label_names",
    "polar_transform",
    "prepare_matcher",
    "refine_orientations",
]


# --------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------
def _check_block(patterns: Any, centres: Any) -> tuple[np.ndarray, np.ndarray]:
    patterns = np.asarray(patterns)
    if patterns.ndim != 3:
        raise AnodemapInputError(
            f"expected a block of patterns (n, ky, kx), got shape {patterns.shape}; flatten "
            "the scan axes (or use match_patterns / map_pixels for (ny, nx, ky, kx) data)"
        )
    if min(patterns.shape[1:]) < 4:
        raise AnodemapInputError(f"patterns of shape {patterns.shape[1:]} are too small")
    centres = np.asarray(centres, dtype=np.float64)
    if centres.shape != (patterns.shape[0], 2):
        raise AnodemapInputError(
            f"centres must have shape (n, 2) = ({patterns.shape[0]}, 2) in pixels (ky, kx), "
            f"one per pattern; got {centres.shape}"
        )
    return patterns, centres


def _polar(
    patterns: np.ndarray, centres: np.ndarray, grid: PolarGrid, scale: float, params
) -> tuple[np.ndarray, ...]:
    n = patterns.shape[0]
    data = np.asarray(patterns, dtype=np.float32)
    finite = np.isfinite(data).all(axis=(1, 2)) & np.isfinite(centres).all(axis=1)
    if not finite.all():
        data = np.where(np.isfinite(data), data, 0.0).astype(np.float32)
        centres = np.where(np.isfinite(centres), centres, 0.0)
    if params.smoothing > 0:
        from scipy.ndimage import gaussian_filter

        data = gaussian_filter(data, (0, params.smoothing, params.smoothing)).astype(np.float32)
    radii = grid.radii
    az = grid.azimuths
    gamma = -1.0 if params.gamma == "log" else float(params.gamma)
    out = np.empty((n, grid.n_r, 2 * grid.n_azimuth), np.float32)
    pnorm = np.empty(n, np.float64)
    share = np.empty(n, np.float64)
    valid = np.empty((n, grid.n_r), np.bool_)
    polar_kernel(
        data,
        centres,
        radii / scale,
        radii,
        np.cos(az),
        np.sin(az),
        gamma,
        out,
        pnorm,
        share,
        valid,
    )
    return out, pnorm, share, valid, finite


def _spot_statistics(
    patterns: np.ndarray, centres: np.ndarray, matcher: Matcher, found: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Friedel-pair peak and the agreement of each pattern's spots with its best template
    (:func:`spot_kernel`) on the polar grid's radii; ``found``: :func:`_search`'s maps."""
    p = matcher.params
    grid = matcher.grid
    data = np.asarray(patterns, dtype=np.float32)
    data = np.where(np.isfinite(data), data, 0.0).astype(np.float32)
    centres = np.where(np.isfinite(centres), centres, 0.0)
    if p.peak_smoothing > 0:
        from scipy.ndimage import gaussian_filter

        sig = float(p.peak_smoothing)
        data = gaussian_filter(data, (0, sig, sig)).astype(np.float32)
    n = data.shape[0]
    # the best template of the best phase, as an index of the whole matcher, and its turn
    phase = np.asarray(found["crystal_phase"], np.int64) - 1
    templ = np.asarray(matcher.phase_starts, np.int64)[phase] + np.asarray(found["template"])
    templ = np.where(np.asarray(found["status"]) == Status.OK, templ, -1).astype(np.int64)
    shift = np.rint(np.asarray(found["angle"]) / grid.angle_step_deg).astype(np.int64)
    shift %= grid.n_azimuth
    out = {
        "pair_peak": np.empty(n, np.float64),
        "spots_explained": np.empty(n, np.float64),
        "template_seen": np.empty(n, np.float64),
        "n_spots": np.empty(n, np.int32),
    }
    az = grid.azimuths
    spot_kernel(
        data,
        centres,
        grid.radii / matcher.scale,
        np.cos(az),
        np.sin(az),
        templ,
        shift,
        matcher.starts,
        matcher.spot_r,
        matcher.spot_a,
        matcher.spot_w,
        float(p.spot_z),
        float(p.seen_z),
        float(p.spot_tolerance_px),
        out["pair_peak"],
        out["spots_explained"],
        out["template_seen"],
        out["n_spots"],
    )
    with np.errstate(invalid="ignore"):
        out["spot_match"] = np.sqrt(out["spots_explained"] * out["template_seen"])
    return out


def polar_transform(
    patterns: Any,
    centres: Any,
    scale: float,
    r_range: tuple[float, float],
    n_azimuth: int = 240,
    gamma: float | str = 0.5,
    smoothing: float = 0.0,
) -> dict[str, np.ndarray]:
    """Polar spot images of a block of patterns around per-pattern centres.

    Parameters
    ----------
    patterns : ndarray, shape (n, ky, kx)
        Diffraction patterns (linear intensity).
    centres : ndarray, shape (n, 2)
        Direct-beam centres in pixels (ky, kx), sub-pixel.
    scale : float
        1/Å per pixel; the radial step of the grid.
    r_range : (float, float)
        Radii in 1/Å.
    n_azimuth : int
        Azimuthal bins over 360°.
    gamma : float or "log"
        Transform of the ring-subtracted intensity.
    smoothing : float
        Gaussian σ (pixels) applied to the patterns first.

    Returns
    -------
    dict
        ``image`` (n, n_r, n_azimuth) float32: the spot image ``max(I - median_r, 0)**γ``;
        ``norm`` (n,): its Euclidean norm; ``amorphous_share`` (n,); ``radius_valid``
        (n, n_r): radii with at least 75 % of the circle on the detector; ``radii`` (1/Å),
        ``azimuths`` (rad).

    Examples
    --------
    >>> import numpy as np
    >>> pol = polar_transform(np.ones((2, 32, 32)), [[16, 16], [15.5, 16]], 0.01, (0.02, 0.1))
    >>> pol["image"].shape, float(pol["image"].max()), float(pol["amorphous_share"][0])
    ((2, 9, 240), 0.0, 1.0)
    """
    patterns, centres = _check_block(patterns, centres)
    params = MatchParameters(n_azimuth=n_azimuth, gamma=gamma, smoothing=smoothing)
    lo, hi = map(float, r_range)
    if not (hi > lo > 0 and scale > 0):
        raise AnodemapInputError(f"r_range={r_range}, scale={scale}: need 0 < r_min < r_max")
    grid = PolarGrid(lo, float(scale), int((hi - lo) / scale) + 1, int(n_azimuth))
    img, pnorm, share, valid, _ = _polar(patterns, centres, grid, float(scale), params)
    return {
        "image": img[:, :, : grid.n_azimuth],
        "norm": pnorm,
        "amorphous_share": share,
        "radius_valid": valid,
        "radii": grid.radii,
        "azimuths": grid.azimuths,
    }


def match_polar(polar: Any, matcher: Matcher) -> tuple[np.ndarray, np.ndarray]:
    """Correlation index of polar spot images against every template, best rotation each.

    A diagnostic entry point to the matching step alone (the block kernel does this and
    more).

    Parameters
    ----------
    polar : ndarray, shape (n, n_r, n_azimuth)
        Spot images on ``matcher.grid`` (e.g. ``polar_transform(...)["image"]``).
    matcher : Matcher

    Returns
    -------
    q : ndarray, shape (n, M)
        Correlation index of each template at its best in-plane rotation.
    angle : ndarray, shape (n, M)
        That rotation in degrees (a multiple of the azimuthal step).

    Examples
    --------
    >>> import numpy as np
    >>> lib = SpotTemplates(r=np.array([[0.3, 0.5]]), azimuth=np.array([[0.0, 1.0]]),
    ...                     intensity=np.ones((1, 2)))
    >>> m = prepare_matcher([lib], scale=0.01, template_energy=1.0)
    >>> img = np.zeros((1, m.grid.n_r, m.grid.n_azimuth), np.float32)
    >>> r, a = m.spot_r, (m.spot_a + 20) % m.grid.n_azimuth   # rotated by 20 bins = 30°
    >>> img[0, r, a] = m.spot_w
    >>> q, angle = match_polar(img, m)
    >>> round(float(q[0, 0]), 6), float(angle[0, 0])
    (1.0, 30.0)
    """
    img = np.asarray(polar, dtype=np.float32)
    g = matcher.grid
    if img.ndim != 3 or img.shape[1:] != (g.n_r, g.n_azimuth):
        raise AnodemapInputError(
            f"polar images must have shape (n, {g.n_r}, {g.n_azimuth}) (the matcher's grid), "
            f"got {img.shape}"
        )
    n = img.shape[0]
    doubled = np.ascontiguousarray(np.concatenate([img, img], axis=2))
    pnorm = np.sqrt((img.astype(np.float64) ** 2).sum(axis=(1, 2)))
    q = np.empty((n, matcher.n_templates), np.float32)
    s = np.empty((n, matcher.n_templates), np.int16)
    correlation_kernel(doubled, pnorm, matcher.spot_offset, matcher.spot_w, matcher.starts, q, s)
    return q.astype(np.float64), s * g.angle_step_deg


def match_kernel(block: np.ndarray, centres: np.ndarray, *, matcher: Matcher) -> dict[str, Any]:
    """Block kernel for :func:`anodemap._compute.map_pixels`: match a block of patterns.

    Parameters
    ----------
    block : ndarray, shape (n, ky, kx)
    centres : ndarray, shape (n, 2)
        Direct-beam centres in pixels (ky, kx).
    matcher : Matcher
        From :func:`prepare_matcher`.

    Returns
    -------
    dict of str to ndarray (n, ...)
        ``phase`` (the labels of :func:`phase_label_names`, decided with
        ``params.amorphous_threshold`` if set, else with the threshold derived from this
        block: call :func:`assign_phases` on the assembled maps for one decision over the
        whole scan; no vacuum here), ``crystal_phase`` (best crystalline phase),
        ``template`` (index in its library), ``angle`` (in-plane, degrees), ``correlation``
        (Q of the best phase), ``reliability`` and ``phase_reliability`` (0-100),
        ``phase_correlation`` (best Q per phase), ``decoy_correlation``, ``spottiness``,
        ``pair_peak``, ``spots_explained``, ``template_seen``, ``spot_match``, ``n_spots``
        (:func:`spot_kernel`), ``amorphous_share``, ``status``
        (:class:`anodemap.status.Status`) and, with library orientations, ``euler`` (Bunge
        φ1, Φ, φ2 in degrees).
    """
    patterns, centres = _check_block(block, centres)
    p = matcher.params
    out = _search(patterns, centres, matcher, int(p.n_decoys))
    out.update(_spot_statistics(patterns, centres, matcher, out))
    threshold, peak_thr = decision_thresholds(out, p)
    labels = assign_phases(
        out, threshold, peak_thr, bragg_z=p.bragg_z, min_spot_match=p.min_spot_match
    )
    out["phase"], out["status"] = labels["phase"], labels["status"]
    return out


def _search(
    patterns: np.ndarray, centres: np.ndarray, matcher: Matcher, n_decoys: int
) -> dict[str, Any]:
    """Polar transform and compiled search of a checked block, and the maps that follow
    from them alone (:func:`match_kernel`'s, less ``pair_peak`` and ``phase``); with
    ``n_decoys=0`` no decoys are searched and ``decoy_correlation`` and ``spottiness``
    are 0 (an orientation needs no amorphous test)."""
    p = matcher.params
    grid = matcher.grid
    n = patterns.shape[0]
    n_az = grid.n_azimuth
    polar, pnorm, share, _valid, finite = _polar(patterns, centres, grid, matcher.scale, p)
    winner, best_t, best_q, best_shift, second_q, q_decoy = search_kernel(
        polar,
        pnorm,
        content_hashes(polar, n_az, p.seed) if n_decoys else np.zeros(n, np.uint64),
        matcher.spot_w,
        matcher.spot_offset,
        matcher.starts,
        matcher.phase_starts,
        matcher.period,
        matcher.nb_starts,
        matcher.nb_idx,
        float(p.min_misorientation / grid.angle_step_deg),
        matcher.template_matrices,
        matcher.oriented,
        matcher.symmetry,
        matcher.symmetry_starts,
        math.cos(math.radians(p.min_misorientation)),
        int(n_decoys),
        int(p.scramble_band),
        matcher.segment_bins,
    )
    rows = np.arange(n)
    ph = winner
    q1 = best_q[rows, ph]
    q2 = second_q
    with np.errstate(divide="ignore", invalid="ignore"):
        reliability = np.where(q1 > 0, 100.0 * (1.0 - q2 / q1), 0.0)
        if matcher.n_phases > 1:
            other = np.sort(best_q, axis=1)[:, -2]
            phase_rel = np.where(q1 > 0, 100.0 * (1.0 - other / q1), 0.0)
        else:
            phase_rel = np.full(n, 100.0)  # a single phase: no competitor
        spottiness = np.where((q1 > 0) & (q_decoy > 0), np.log(q1 / q_decoy), 0.0)
    reliability = np.clip(reliability, 0.0, 100.0)
    angle = np.mod(best_shift[rows, ph] * grid.angle_step_deg, 360.0)
    t_global = best_t[rows, ph]
    template = t_global - matcher.phase_starts[ph]

    status = np.full(n, int(Status.OK), np.uint8)
    no_signal = ~(pnorm > 0)
    status[no_signal] = Status.NO_SIGNAL
    status[~finite] = Status.INVALID_INPUT
    crystal_phase = (ph + 1).astype(np.uint8)

    out: dict[str, Any] = {
        "crystal_phase": crystal_phase,
        "template": template.astype(np.int32),
        "angle": angle,
        "correlation": q1,
        "reliability": reliability,
        "phase_reliability": phase_rel,
        "phase_correlation": best_q,
        "decoy_correlation": q_decoy,
        "spottiness": spottiness,
        "amorphous_share": np.where(np.isfinite(share), share, 0.0),
        "status": status,
    }
    if matcher.has_orientations:
        eul = np.zeros((n, 3))
        for k, e in enumerate(matcher.euler):
            sel = ph == k
            eul[sel] = e[template[sel]]
        eul[:, 0] = np.mod(eul[:, 0] + angle, 360.0)
        out["euler"] = eul
    return out


def match_patterns(
    patterns: Any,
    centres: Any,
    libraries: Sequence[Any] | Any,
    scale: float,
    *,
    params: MatchParameters | None = None,
    matcher: Matcher | None = None,
    vacuum: Any = None,
    rows_per_chunk: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """Phase and orientation of every pattern: map the matching kernel over the scan.

    Parameters
    ----------
    patterns : ndarray or dask array, shape (..., ky, kx)
        One pattern, a stack (n, ky, kx) or a scan (ny, nx, ky, kx).
    centres : array_like, shape (..., 2)
        Direct-beam centres in pixels (ky, kx), matching the leading axes of ``patterns``.
    libraries : template library or sequence of them
        Crystalline phases in label order (see :func:`prepare_matcher`).
    scale : float
        1/Å per pixel.
    params : MatchParameters, optional
        Keyword arguments override its fields (``n_azimuth=..., fdr=...``).
    matcher : Matcher, optional
        A prepared matcher (then ``libraries`` and ``scale`` are not re-binned).
    vacuum : array_like of bool, shape ``patterns.shape[:-2]``, optional
        Patterns of vacuum: labelled so, and left out of the scan-relative thresholds.
    rows_per_chunk, scheduler, client, progress
        Passed to :func:`anodemap._compute.map_pixels`.

    Returns
    -------
    dict
        The maps of :func:`match_kernel` (shape ``patterns.shape[:-2]``), with ``phase``
        and ``status`` decided by :func:`assign_phases` with one set of thresholds for all
        patterns (``amorphous_threshold``, ``peak_threshold``, returned too), plus
        ``phase_names`` (:func:`phase_label_names`) and ``matcher``.
    """
    shape = tuple(np.shape(patterns))
    if len(shape) < 2:
        raise AnodemapInputError(f"patterns of shape {shape}: need (..., ky, kx)")
    nav = shape[:-2]
    centres_a = np.asarray(centres, dtype=np.float64)
    if centres_a.shape != nav + (2,):
        raise AnodemapInputError(
            f"centres must have shape {nav + (2,)} (one (ky, kx) per pattern), got "
            f"{centres_a.shape}"
        )
    if vacuum is not None and np.shape(vacuum) != nav:
        raise AnodemapInputError(
            f"vacuum mask of shape {np.shape(vacuum)}: the patterns' scan is {nav}"
        )
    if matcher is None:
        matcher = prepare_matcher(libraries, scale, shape[-2:], params, **kwargs)
    if len(nav) == 0:
        res = match_kernel(np.asarray(patterns)[None], centres_a[None], matcher=matcher)
        res = {k: v[0] for k, v in res.items()}
    else:
        res = map_pixels(
            match_kernel,
            patterns,
            sig_ndim=2,
            outputs=matcher.outputs(),
            extras=[centres_a],
            kwargs={"matcher": matcher},
            rows_per_chunk=rows_per_chunk,
            scheduler=scheduler,
            client=client,
            progress=progress,
        )
    # the statuses of the matching itself, before the block kernels' own labels
    ok = np.isin(np.asarray(res["status"]), [Status.OK, Status.VACUUM, Status.NOT_INDEXED])
    res["status"] = np.where(ok, np.uint8(Status.OK), np.asarray(res["status"])).astype(np.uint8)
    p = matcher.params
    material = None if vacuum is None else ~np.asarray(vacuum, bool)
    thr, peak_thr = decision_thresholds(res, p, material)
    out = assign_phases(
        res,
        thr,
        peak_thr,
        bragg_z=p.bragg_z,
        min_spot_match=p.min_spot_match,
        vacuum=vacuum,
    )
    out["phase_names"] = phase_label_names(matcher.phase_names)
    out["matcher"] = matcher
    return out


def _refine_kernel(
    block: np.ndarray,
    centres: np.ndarray,
    phase: np.ndarray,
    sample: np.ndarray,
    *,
    refiners: Sequence[Matcher],
    others: Sequence[Sequence[Matcher]] = (),
) -> dict[str, np.ndarray]:
    """Orientation and reliability of each pattern against its own phase's refiner; for
    the patterns with ``sample`` set, also the best Q against each of ``others[k]`` (the
    other candidates of phase k): ``candidate_q``, its first column ``refiners``' Q."""
    n = block.shape[0]
    euler = np.full((n, 3), np.nan)
    reliability = np.zeros(n)
    refined = np.zeros(n, np.bool_)
    n_cand = 1 + (len(others[0]) if len(others) else 0)
    cand_q = np.full((n, n_cand), np.nan)
    for k, matcher in enumerate(refiners):
        sel = np.flatnonzero(np.asarray(phase) == k + 1)
        if sel.size == 0 or not matcher.has_orientations:
            continue
        # the phase is decided: no decoys, no Friedel-pair statistic
        patterns, cen = _check_block(block[sel], np.asarray(centres)[sel])
        res = _search(patterns, cen, matcher, 0)
        ok = np.asarray(res["status"]) == Status.OK
        euler[sel[ok]] = res["euler"][ok]
        reliability[sel[ok]] = res["reliability"][ok]
        refined[sel[ok]] = True
        if n_cand == 1:
            continue
        cand_q[sel[ok], 0] = res["correlation"][ok]
        sub = np.flatnonzero(np.asarray(sample)[sel] != 0)
        if sub.size == 0:
            continue
        for j, other in enumerate(others[k]):
            r = _search(patterns[sub], cen[sub], other, 0)
            good = np.asarray(r["status"]) == Status.OK
            cand_q[sel[sub[good]], j + 1] = r["correlation"][good]
    out = {"euler": euler, "reliability": reliability, "refined": refined}
    if n_cand > 1:
        out["candidate_q"] = np.where(np.asarray(sample)[:, None] != 0, cand_q, np.nan)
    return out


def _sample_pixels(phase: np.ndarray, n_phases: int, per_phase: int) -> np.ndarray:
    """Up to ``per_phase`` pixels of each phase, evenly spaced in scan order (deterministic)."""
    flat = np.asarray(phase).ravel()
    keep = np.zeros(flat.size, np.bool_)
    for k in range(1, n_phases + 1):
        idx = np.flatnonzero(flat == k)
        if idx.size > per_phase:
            idx = idx[np.unique(np.rint(np.linspace(0, idx.size - 1, per_phase)).astype(np.int64))]
        keep[idx] = True
    return keep.reshape(np.shape(phase))


def _choose_candidate(q: np.ndarray, phase: np.ndarray) -> int:
    """Index of the candidate whose templates fit best: the largest mean over the phases of
    each phase's mean Q.

    ``q`` (n, n_cand): best Q of each sampled pattern per candidate (NaN: not compared).
    Each phase counts once, whatever its number of patterns: the width is one property of
    the specimen, and the patterns of a phase share that phase's peculiarities (a Si grain
    whose patterns show one Friedel pair hardly fixes the width, yet its many pixels would
    outvote the other phase's). The first of equal scores wins.
    """
    ok = np.all(np.isfinite(q), axis=1)
    labels = np.unique(phase[ok])
    if labels.size == 0:
        return 0
    score = np.mean([q[ok & (phase == k)].mean(axis=0) for k in labels], axis=0)
    return int(np.argmax(score))


def refine_orientations(
    patterns: Any,
    centres: Any,
    phase: Any,
    refiners: Sequence[Matcher] | Sequence[Sequence[Matcher]],
    euler: np.ndarray,
    reliability: np.ndarray,
    *,
    rows_per_chunk: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool = False,
    sample_per_phase: int = 128,
    return_choice: bool = False,
) -> tuple[np.ndarray, ...]:
    """Orientations of crystalline patterns matched again, each against its own phase.

    The phase decision needs every phase's library and the decoys; an orientation needs
    only the phase found, at a finer step. Each pattern with ``phase == k + 1`` is matched
    against ``refiners[k]`` (a :func:`prepare_matcher` of that phase's finer library); its
    Euler angles and orientation reliability are replaced by that match's, the others
    (amorphous, failed) keep theirs.

    ``refiners[k]`` may also be a sequence of candidate matchers, the same number for every
    phase, candidate ``j`` of every phase made with the same model setting (in the pipeline:
    the excitation-error width of the templates, a property of the specimen -- its
    thickness -- rather than of the phase), the first the default. The candidate is then
    chosen from the data: while every pattern is refined with the first, up to
    ``sample_per_phase`` patterns of each phase (evenly spaced in scan order) are also
    matched against the others, and the candidate with the largest mean over the phases of
    each phase's mean best correlation index Q wins. If it is not the first, the patterns
    are refined again with it (one more pass). See
    ``anodemap.diffraction.templates.REFINEMENT_EXCITATION_ERROR_WIDTHS`` for what it was
    measured to do.

    Parameters
    ----------
    patterns : ndarray or dask array, shape (*nav, ky, kx)
    centres : array_like, shape (*nav, 2)
    phase : array_like of int, shape nav
        Labels as :func:`match_patterns` returns them (k + 1 for phase k; the others are
        left alone).
    refiners : sequence of Matcher, or sequence of sequences of Matcher
        One per crystalline phase, in label order (or one list of candidates per phase).
    euler, reliability : ndarray
        The maps to update, shapes ``(*nav, 3)`` and ``nav`` (not modified in place).
    rows_per_chunk, scheduler, client, progress
        Passed to :func:`anodemap._compute.map_pixels`.
    sample_per_phase : int
        Patterns per phase on which the candidates are compared.
    return_choice : bool
        Also return the index of the candidate chosen (0 with a single one).

    Returns
    -------
    euler, reliability : ndarray
    choice : int
        Only with ``return_choice``.

    Examples
    --------
    >>> from anodemap.diffraction.matching import refine_orientations  # doctest: +SKIP
    >>> euler, rel = refine_orientations(data, centres, phase, refiners, euler, rel)  # doctest: +SKIP
    """
    nav = tuple(np.shape(patterns)[:-2])
    phase = np.asarray(phase)
    if phase.shape != nav:
        raise AnodemapInputError(f"phase map of shape {phase.shape}, patterns' scan is {nav}")
    candidates = [list(r) if isinstance(r, Sequence) else [r] for r in refiners]
    counts = {len(c) for c in candidates}
    if len(counts) > 1 or 0 in counts:
        raise AnodemapInputError(
            "refine_orientations: give every phase the same number (>= 1) of candidate refiners"
        )
    n_cand = counts.pop() if counts else 1
    centres = np.asarray(centres, dtype=np.float64)
    phase16 = phase.astype(np.int16)

    def run(choice: int, sample: np.ndarray | None) -> dict[str, Any]:
        outputs = {
            "euler": OutputSpec((3,), np.float64),
            "reliability": OutputSpec((), np.float64),
            "refined": OutputSpec((), np.bool_),
        }
        others: list[list[Matcher]] = []
        if sample is not None:
            outputs["candidate_q"] = OutputSpec((n_cand,), np.float64)
            others = [c[1:] for c in candidates]
        else:
            sample = np.zeros(nav, np.bool_)
        return map_pixels(
            _refine_kernel,
            patterns,
            sig_ndim=2,
            outputs=outputs,
            extras=[centres, phase16, sample.astype(np.uint8)],
            kwargs={"refiners": [c[choice] for c in candidates], "others": others},
            rows_per_chunk=rows_per_chunk,
            scheduler=scheduler,
            client=client,
            progress=progress,
        )

    choice = 0
    if n_cand > 1:
        res = run(0, _sample_pixels(phase, len(candidates), int(sample_per_phase)))
        q = np.asarray(res["candidate_q"], dtype=np.float64).reshape(-1, n_cand)
        choice = _choose_candidate(q, phase.ravel())
        if choice != 0:
            res = run(choice, None)
    else:
        res = run(0, None)
    done = np.asarray(res["refined"], bool)
    euler = np.where(done[..., None], res["euler"], euler)
    reliability = np.where(done, res["reliability"], reliability)
    if return_choice:
        return euler, reliability, choice
    return euler, reliability
