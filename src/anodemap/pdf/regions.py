"""The regions of a PDF analysis and the I(s) of every pattern in them.

The regions come from the result of ``anodemap diffraction`` of the same scan: each phase
class of its phase map (amorphous, each phase, crystalline but not indexed), never the
vacuum (pore) patterns or those not analysed, and each user region (a label image as
``anodemap diffraction --regions`` reads it, or the ``regions.hspy`` that the diffraction
result holds), restricted to its material patterns. The azimuthal average I(s) of every
pattern is taken about its own direct-beam centre, the one the diffraction analysis
found (its ``beam_centre.hspy``; for a result without it, :func:`find_direct_beam`, the
function that analysis uses, finds it again) with the calibration that analysis used.

Examples
--------
>>> import numpy as np
>>> labels = DiffractionLabels(Path("."), np.array([[0, 1], [-1, 0]]),
...     {-1: "vacuum", 0: "amorphous", 1: "Si"}, None, (0.05, 0.05), 2.0, {})
>>> {k: (kind, int(m.sum())) for k, (kind, m) in region_masks(labels).items()}
{'amorphous': ('phase', 2), 'Si': ('phase', 1)}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError

__all__ = [
    "DiffractionLabels",
    "PatternProfiles",
    "pattern_profiles",
    "read_diffraction",
    "region_masks",
]

#: Phase-map names that are not material (never a PDF region)
NOT_MATERIAL = ("vacuum", "not analysed")


@dataclass(frozen=True)
class DiffractionLabels:
    """What a PDF takes from a diffraction result folder.

    Attributes
    ----------
    folder : Path
    phase : ndarray of int (ny, nx)
        Phase map (``phase.hspy``).
    phase_labels : dict of int to str
        Label → name (``summary.json``'s ``phase_labels``).
    regions : ndarray of int (ny, nx) or None
        User regions of that run (``regions.hspy``; 0: in none).
    scale : (float, float)
        The calibration it used, 1/Å per pixel.
    beam_radius_px : float or None
        Direct-beam radius it measured, pixels.
    summary : dict
        Its ``summary.json``.
    beam_centres : ndarray (ny, nx, 2) or None
        The direct-beam centre (ky, kx) of every pattern it used, pixels
        (``beam_centre.hspy``; None for a result without it).
    """

    folder: Path
    phase: np.ndarray
    phase_labels: dict[int, str]
    regions: np.ndarray | None
    scale: tuple[float, float]
    beam_radius_px: float | None
    summary: dict[str, Any]
    beam_centres: np.ndarray | None = None


def read_diffraction(folder: str | Path, nav_shape: tuple[int, ...]) -> DiffractionLabels:
    """The phase map, labels, regions and calibration of a diffraction result folder.

    Raises
    ------
    AnodemapInputError
        A file is missing or unreadable, or the maps do not have the scan's shape (the
        message names ``--diffraction``).
    """
    from anodemap.io import load

    folder = Path(folder)
    where = f"--diffraction {folder}"
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        labels = {int(k): str(v) for k, v in summary["phase_labels"].items()}
        scale = tuple(float(v) for v in summary["calibration"]["scale_inv_angstrom_per_px"])
        phase = np.asarray(load(folder / "phase.hspy").data).astype(np.int64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AnodemapInputError(
            f"{where}: not a readable result of anodemap diffraction ({err}); run anodemap "
            "diffraction on this input again"
        ) from err
    nav = tuple(int(n) for n in nav_shape)
    if len(nav) == 1:
        nav = (1, *nav)
    phase = phase.reshape(nav) if phase.size == int(np.prod(nav)) else phase
    if phase.shape != nav:
        raise AnodemapInputError(
            f"{where}: its phase map is {phase.shape}, the scan {nav}: the result of another "
            "scan; run anodemap diffraction on this input"
        )
    regions = None
    if (folder / "regions.hspy").is_file():
        regions = np.asarray(load(folder / "regions.hspy").data).astype(np.int64).reshape(nav)
    centres = None
    if (folder / "beam_centre.hspy").is_file():  # results of anodemap 0.1 may lack it
        try:
            centres = np.asarray(load(folder / "beam_centre.hspy").data, dtype=np.float64)
        except (OSError, ValueError) as err:
            raise AnodemapInputError(
                f"{where}: beam_centre.hspy is not readable ({err}); run anodemap "
                "diffraction on this input again"
            ) from err
        if centres.shape != (*nav, 2):  # not this scan's: found again from the patterns
            centres = None
    settings = (summary.get("settings") or {}).get("labels") or {}
    radius = settings.get("vacuum_beam_radius_px")
    return DiffractionLabels(
        folder,
        phase,
        labels,
        regions,
        (scale[0], scale[-1]),
        float(radius) if radius else None,
        summary,
        centres,
    )


def region_masks(
    labels: DiffractionLabels,
    regions: np.ndarray | None = None,
    names: dict[int, str] | None = None,
) -> dict[str, tuple[str, np.ndarray]]:
    """Name → (``"phase"`` or ``"region"``, mask of its material patterns), in order: the
    phase classes by label, then the user regions by value (named ``region N``, or by
    ``names``: the legend of the region map, e.g. the feature classes ``anodemap
    correlate`` wrote; a name that is a phase class's is kept apart as ``region N
    (NAME)``).

    ``regions`` (0: in none) replaces those of the diffraction result.
    """
    phase = labels.phase
    material = np.isin(phase, [k for k, v in labels.phase_labels.items() if v not in NOT_MATERIAL])
    out: dict[str, tuple[str, np.ndarray]] = {}
    for k in sorted(labels.phase_labels, key=lambda k: (k < 0, k)):
        name = labels.phase_labels[k]
        if name not in NOT_MATERIAL:
            out[name] = ("phase", material & (phase == k))
    user = labels.regions if regions is None else np.asarray(regions).reshape(phase.shape)
    if user is not None:
        for v in np.unique(user[user > 0]).tolist():
            name = (names or {}).get(int(v)) or f"region {int(v)}"
            if name in out:
                name = f"region {int(v)} ({name})"
            out[name] = ("region", material & (user == v))
    return out


@dataclass(frozen=True)
class PatternProfiles:
    """I(s) of every pattern of a scan about its own centre.

    Attributes
    ----------
    s : ndarray (n_s,)
        s = 1/d in 1/Å (bin k at k × one pixel's width), up to the largest full circle
        around the centres of all but ``FULL_RING_QUANTILE`` of the material patterns.
    intensity : ndarray (ny, nx, n_s)
        Mean counts per pixel.
    centres : ndarray (ny, nx, 2)
        The centres the profiles are about, pixels: the direct beam's, moved by the
        offset of the ring centre where the ring geometry was measured.
    ring : dict, optional
        The ring geometry measured and whether it was applied (:func:`ring_geometry`).
    """

    s: np.ndarray
    intensity: np.ndarray
    centres: np.ndarray
    ring: dict[str, Any] | None = None


#: Share of the material patterns whose full rings set the largest s (model choice: a
#: few patterns whose brightest disk is a Bragg disk get a centre far off, 11 of 2744 in
#: the simulated pristine scan, and would cut s_max from 1.32 to 0.87 1/Å; their top bins
#: are partial rings instead).
FULL_RING_QUANTILE = 0.01


def pattern_profiles(
    dataset: Any,
    scale: tuple[float, float],
    *,
    material: np.ndarray | None = None,
    client: Any = None,
    progress: bool = False,
    in_memory_gb: float = 2.0,
    ring_correction: bool = False,
    beam_radius_px: float | None = None,
    ring_patterns: np.ndarray | None = None,
    centres: np.ndarray | None = None,
) -> PatternProfiles:
    """Direct-beam centre and azimuthal average of every pattern (two passes over the
    data, read once into memory when it is lazy, at most ``in_memory_gb`` and no
    ``client`` is given; one, about the ``centres`` (ny, nx, 2) given, as the
    diffraction analysis found them), up to the largest circle that lies on the detector
    around the centres of all but ``FULL_RING_QUANTILE`` of the ``material`` patterns
    (default: all).

    With ``ring_correction``, one more pass: the ring centre and elliptical distortion
    measured on the mean of the ``ring_patterns`` (the amorphous class: diffuse rings,
    no spots) (:func:`ring_geometry`) are undone in every pattern's profile."""
    from anodemap.diffraction.virtual import azimuthal_average, find_direct_beam

    data = dataset.data if hasattr(dataset, "data") else dataset
    if len(data.shape) == 3:  # a line scan: one row
        data = data[None]
    nbytes = int(np.prod(data.shape)) * np.dtype(data.dtype).itemsize
    if client is None and not isinstance(data, np.ndarray) and nbytes <= in_memory_gb * 1e9:
        data = np.asarray(data)
    if centres is None:
        beam = find_direct_beam(data, client=client, progress=progress)
        centres = beam.filled()
    centres = np.asarray(centres, dtype=np.float64).reshape(*data.shape[:2], 2)
    ring, ellipse = None, None
    if ring_correction:
        ring, ellipse, offset = ring_geometry(
            data, centres, ring_patterns, beam_radius_px, client=client, progress=progress
        )
        centres = centres + offset
    ky, kx = (int(n) for n in data.shape[-2:])
    cy, cx = centres[..., 0], centres[..., 1]
    edge = np.minimum(
        np.minimum(cy, ky - 1 - cy) * scale[0], np.minimum(cx, kx - 1 - cx) * scale[1]
    )
    chosen = (
        edge
        if material is None or not np.any(material)
        else edge[np.asarray(material).reshape(edge.shape)]
    )
    top = float(np.quantile(chosen, FULL_RING_QUANTILE, method="lower"))
    if not top > 0:
        raise AnodemapInputError("the direct-beam centres lie on or outside the detector edge")
    if ellipse is not None:
        top *= math.sqrt(ellipse.a * ellipse.b) / ellipse.a  # the edge through the correction
    prof = azimuthal_average(
        data,
        calibration=scale,
        center=centres,
        s_max=top,
        client=client,
        progress=progress,
        ellipse=ellipse,
    )
    return PatternProfiles(np.asarray(prof.s), np.asarray(prof.intensity), centres, ring)


#: The ring geometry is applied when the fit used this many of its 90 sectors and their
#: radii scatter about the ellipse by at most this (px), and the ring centre lies this
#: close to the mean direct-beam centre (model choices: a ring crossed by Bragg spots or
#: too faint leaves fewer sectors, or scatters more; a centre further off is a failed fit).
#: The ellipse and the centre offset are each applied only where they exceed this many
#: of their 1σ (else the ring is taken as round, or centred on the beam).
_RING_SECTORS, _RING_RESIDUAL_PX, _RING_OFFSET_PX, _RING_SIGMAS = 60, 1.0, 3.0, 3.0
#: Fewest patterns whose mean the ring is measured on.
_RING_MIN_PATTERNS = 20


def ring_geometry(
    data: Any,
    centres: np.ndarray,
    material: np.ndarray | None,
    beam_radius_px: float | None,
    *,
    client: Any = None,
    progress: bool = False,
) -> tuple[dict[str, Any], Any, np.ndarray]:
    """The centre offset and elliptical distortion of the strongest ring of the
    descan-corrected mean of ``material`` (the amorphous patterns: a diffuse ring is
    round on a true detector, while the spots of a few grains make a crystalline ring
    look elliptical) (:func:`anodemap.diffraction.rings.measure_ellipse`).

    The mean is taken with each pattern shifted by whole pixels onto the detector's
    middle (:func:`anodemap.diffraction.averaging.mean_pattern`); the mean of what the
    whole-pixel shifts leave (under ±0.5 px each) is where the direct beam lies in it.
    The ring is the most prominent maximum of the mean's radial profile beyond 2.5
    direct-beam radii; its window ±20 %.

    Returns
    -------
    info : dict
        What was measured and whether it is applied (for ``summary.json``).
    ellipse : Ellipse or None
        The distortion to undo (None: not applied).
    offset : ndarray (2,)
        Ring centre minus direct-beam centre (px), added to every centre (0 when not
        applied).
    """
    from scipy.signal import find_peaks

    from anodemap.diffraction.averaging import mean_pattern
    from anodemap.diffraction.rings import corrected_profile, measure_ellipse

    zero = np.zeros(2)
    sig = tuple(int(n) for n in data.shape[-2:])
    nav = tuple(int(n) for n in data.shape[:2])
    use = np.zeros(nav, bool) if material is None else np.asarray(material).reshape(nav)
    if use.sum() < _RING_MIN_PATTERNS:
        how = (
            f"not measured: {int(use.sum())} amorphous patterns, fewer than "
            f"{_RING_MIN_PATTERNS} (a crystalline ring of few grains is spotty, not a "
            "measure of the detector's distortion)"
        )
        return {"applied": False, "how": how}, None, zero
    mean = mean_pattern(data, use, center=centres, client=client, progress=progress)
    target = np.array([(sig[0] - 1) / 2.0, (sig[1] - 1) / 2.0])
    c = centres[use]
    beam_in_mean = target + np.mean(c + np.rint(target - c) - target, axis=0)
    radius_px, profile = corrected_profile(mean, 1.0, centre=beam_in_mean)
    lo = max(2.5 * (beam_radius_px or 2.0), 3.0)
    edge = float(radius_px[-1]) - 2.0
    inside = (radius_px >= lo) & (radius_px <= edge)
    idx = np.flatnonzero(inside & np.isfinite(profile))
    peaks, props = find_peaks(profile[idx], prominence=0) if idx.size > 2 else ([], {})
    if len(peaks) == 0:
        return {"applied": False, "how": "no ring in the material patterns' mean"}, None, zero
    best = int(idx[peaks[int(np.argmax(props["prominences"]))]])
    r_ring = float(radius_px[best])
    window = (0.8 * r_ring, min(1.2 * r_ring, edge))
    try:
        e = measure_ellipse(mean, tuple(beam_in_mean), window_px=window)
    except AnodemapInputError as err:
        return {"applied": False, "how": f"not measured: {err}"}, None, zero
    offset = np.asarray(e.centre) - beam_in_mean
    info: dict[str, Any] = {
        **e.summary(),
        "ring_window_px": [float(window[0]), float(window[1])],
        "centre_offset_px": [float(offset[0]), float(offset[1])],
    }
    reasons = []
    if e.n_sectors < _RING_SECTORS:
        reasons.append(f"{e.n_sectors} of 90 sectors fitted (needs {_RING_SECTORS})")
    if e.residual_px > _RING_RESIDUAL_PX:
        reasons.append(f"residual {e.residual_px:.2f} px (at most {_RING_RESIDUAL_PX:g})")
    if np.hypot(*offset) > _RING_OFFSET_PX:
        reasons.append(f"ring centre {np.hypot(*offset):.1f} px from the beam's")
    if reasons:
        return (
            {**info, "applied": False, "how": "measured, not applied: " + "; ".join(reasons)},
            None,
            zero,
        )
    # what is not significant is not applied: a round ring, a centre on the beam
    sigma = e.amplitude_sigma_px
    round_ring = (e.a - e.b) / 2 <= _RING_SIGMAS * sigma
    if np.hypot(*offset) <= _RING_SIGMAS * sigma * math.sqrt(2):
        offset = zero
    info["ellipse_applied"] = not round_ring
    info["offset_applied"] = bool(offset.any())
    how = (
        f"measured on the ring at {r_ring:.1f} px of the mean of {int(use.sum())} amorphous "
        f"patterns: axis ratio {info['axis_ratio']:.4f}, major axis at "
        f"{info['major_axis_angle_deg']:.1f} deg, centre offset "
        f"({info['centre_offset_px'][0]:.2f}, {info['centre_offset_px'][1]:.2f}) px, "
        f"1σ {sigma:.3f} px; "
        + ("within 3σ of a circle: not undone; " if round_ring else "the ellipse undone; ")
        + (
            "the offset within 3σ: the beam centres kept"
            if not offset.any()
            else "the centres moved by the offset"
        )
    )
    return {**info, "applied": True, "how": how}, (None if round_ring else e), offset
