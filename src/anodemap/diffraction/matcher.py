"""The template matcher's inputs and its prepared state.

The template library interface (:class:`SpotTemplates`), the matcher's parameters
(:class:`MatchParameters`), the polar grid (:class:`PolarGrid`), the crystal rotations of
a Laue class (:func:`laue_rotations`), and :func:`prepare_matcher`, which bins the
libraries onto the polar grid of the patterns into a :class:`Matcher`: the picklable
state that :func:`anodemap.diffraction.matching.match_kernel` needs for every block. The
method is described in :mod:`anodemap.diffraction.matching`, which re-exports every
public name of this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap._compute import OutputSpec
from anodemap.diffraction.matching_kernels import symmetry_period
from anodemap.errors import AnodemapInputError

__all__ = [
    "MatchParameters",
    "Matcher",
    "PolarGrid",
    "SpotTemplates",
    "laue_rotations",
    "prepare_matcher",
]

# Self-correlation (normalised) above which a template counts as symmetric under an
# in-plane rotation by 2π/k (model choice: binning a rotated spot can move it by one
# azimuthal bin, which the ±1-bin search absorbs; 0.9 tolerates a few unmatched weak spots
# at the radial cut-off while rejecting pseudo-symmetry of a few spots).
_SYMMETRY_SELF_CORRELATION = 0.9


# --------------------------------------------------------------------------------------
# Inputs: templates and parameters
# --------------------------------------------------------------------------------------
@dataclass
class SpotTemplates:
    """A minimal template library: spot polar coordinates and intensities per template.

    Any object with the attributes ``r``, ``azimuth``, ``intensity`` (and optionally
    ``mask``, ``euler``, ``beam_directions``, ``symmetry``, ``name``) is accepted by the
    matcher, e.g. :class:`anodemap.diffraction.templates.TemplateLibrary`; this class is
    that interface written down, for synthetic libraries and tests.

    Parameters
    ----------
    r : ndarray, shape (M, S)
        Spot radii s = 1/d in 1/Å (padded with anything where ``mask`` is False).
    azimuth : ndarray, shape (M, S)
        Spot azimuths in radians (convention of :mod:`anodemap.diffraction.matching`).
    intensity : ndarray, shape (M, S)
        Kinematic spot intensities (linear; the matcher applies ``template_gamma``).
    mask : ndarray of bool, shape (M, S), optional
        Which entries are real spots (default: all finite entries with intensity > 0).
    euler : ndarray, shape (M, 3), optional
        Bunge Euler angles (φ1, Φ, φ2) of each template in degrees.
    beam_directions : ndarray, shape (M, 3), optional
        Beam direction of each template in the Cartesian crystal frame (default: from
        ``euler``), for the template-neighbour exclusion of the orientation reliability.
    symmetry : ndarray, shape (K, 3, 3), optional
        Proper rotations of the crystal (Cartesian crystal frame) for the neighbour search
        (a library with only ``laue_group``, e.g. "m-3m", gets them from
        :func:`laue_rotations`).
    name : str
        Phase name.

    Examples
    --------
    >>> import numpy as np
    >>> lib = SpotTemplates(r=np.ones((3, 2)), azimuth=np.zeros((3, 2)),
    ...                     intensity=np.ones((3, 2)), name="X")
    >>> len(lib)
    3
    """

    r: np.ndarray
    azimuth: np.ndarray
    intensity: np.ndarray
    mask: np.ndarray | None = None
    euler: np.ndarray | None = None
    beam_directions: np.ndarray | None = None
    symmetry: np.ndarray | None = None
    name: str = "phase"

    def __len__(self) -> int:
        return int(np.shape(self.r)[0])


def _attr(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _library_arrays(lib: Any, index: int) -> dict[str, Any]:
    """Read a template library (any object with the :class:`SpotTemplates` attributes)."""
    r = _attr(lib, "r", "spot_r", "radius", "polar_r")
    az = _attr(lib, "azimuth", "spot_azimuth", "polar_azimuth", "theta")
    inten = _attr(lib, "intensity", "intensities", "spot_intensity")
    if r is None or az is None or inten is None:
        raise AnodemapInputError(
            f"library {index} has no spot radii / azimuths / intensities (attributes r, "
            "azimuth, intensity); build it with anodemap.diffraction.templates or SpotTemplates"
        )
    r = np.asarray(r, dtype=np.float64)
    az = np.asarray(az, dtype=np.float64)
    inten = np.asarray(inten, dtype=np.float64)
    if r.ndim == 1:
        r, az, inten = r[None], az[None], inten[None]
    if r.ndim != 2 or az.shape != r.shape or inten.shape != r.shape:
        raise AnodemapInputError(
            f"library {index}: r, azimuth and intensity must have the same shape (M, S), got "
            f"{r.shape}, {az.shape}, {inten.shape}"
        )
    if r.shape[0] == 0:
        raise AnodemapInputError(f"library {index} is empty (no templates); build it first")
    mask = _attr(lib, "mask", "spot_mask")
    mask = np.ones(r.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != r.shape:
        raise AnodemapInputError(f"library {index}: mask shape {mask.shape} != {r.shape}")
    mask = mask & np.isfinite(r) & np.isfinite(az) & np.isfinite(inten) & (inten > 0)
    if not mask.any():
        raise AnodemapInputError(f"library {index} has no spots with positive intensity")
    euler = _attr(lib, "euler", "euler_angles")
    if euler is not None:
        euler = np.asarray(euler, dtype=np.float64)
        if euler.shape != (r.shape[0], 3):
            raise AnodemapInputError(
                f"library {index}: euler must have shape ({r.shape[0]}, 3) (Bunge, degrees), "
                f"got {euler.shape}"
            )
    dirs = _attr(lib, "beam_directions", "directions")
    if dirs is not None:
        dirs = np.asarray(dirs, dtype=np.float64).reshape(r.shape[0], 3)
    elif euler is not None:
        _, big, phi2 = np.radians(euler).T
        dirs = np.stack(
            [np.sin(phi2) * np.sin(big), np.cos(phi2) * np.sin(big), np.cos(big)], axis=1
        )
    sym = _attr(lib, "symmetry", "rotations")
    if sym is None:
        laue = _attr(lib, "laue_group")
        sym = laue_rotations(str(laue)) if laue is not None else None
    sym = None if sym is None else np.asarray(sym, dtype=np.float64).reshape(-1, 3, 3)
    name = _attr(lib, "name", "phase", "phase_name")
    return {
        "r": r,
        "azimuth": az,
        "intensity": inten,
        "mask": mask,
        "euler": euler,
        "directions": dirs,
        "symmetry": sym,
        "name": str(name) if name is not None else f"phase{index + 1}",
    }


def _axis_rotation(axis: Sequence[float], angle_deg: float) -> np.ndarray:
    u = np.asarray(axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    a = math.radians(angle_deg)
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)


def laue_rotations(laue_group: str) -> np.ndarray:
    """Proper rotations of a Laue class in the Cartesian crystal frame (a ∥ x, c* ∥ z).

    Generated from the class's rotation axes in the standard settings of the International
    Tables (unique axis c; monoclinic unique axis b ∥ y; trigonal/hexagonal 2-folds along
    a ∥ x). An unknown name gives the identity only.

    Examples
    --------
    >>> [len(laue_rotations(g)) for g in ("m-3m", "m-3", "6/mmm", "4/m", "mmm", "-1")]
    [24, 12, 12, 4, 4, 1]
    """
    z, x, y = (0, 0, 1), (1, 0, 0), (0, 1, 0)
    gens = {
        "m-3m": [((1, 1, 1), 120), (z, 90)],
        "m-3": [((1, 1, 1), 120), (z, 180)],
        "6/mmm": [(z, 60), (x, 180)],
        "6/m": [(z, 60)],
        "-3m": [(z, 120), (x, 180)],
        "-3": [(z, 120)],
        "4/mmm": [(z, 90), (x, 180)],
        "4/m": [(z, 90)],
        "mmm": [(z, 180), (x, 180)],
        "2/m": [(y, 180)],
    }.get(laue_group.replace(" ", ""), [])
    mats = [np.eye(3)]
    gen_m = [_axis_rotation(a, ang) for a, ang in gens]
    grew = True
    while grew:  # closure of the group under multiplication
        grew = False
        for a in list(mats):
            for g in gen_m:
                c = g @ a
                if not any(np.allclose(c, b, atol=1e-9) for b in mats):
                    mats.append(c)
                    grew = True
    return np.round(np.array(mats), 12)


@dataclass(frozen=True)
class MatchParameters:
    """Parameters of the matcher (defaults are model choices, stated per field).

    Parameters
    ----------
    n_azimuth : int
        Azimuthal bins: in-plane angle step 360°/n_azimuth (default 240 -> 1.5°, the
        angular step of the libraries the issue compares with); the best angle is then
        refined by a parabola through the correlation peak.
    r_range : (float, float), optional
        Radial range in 1/Å (default: from 0.9× the smallest to 1.03× the largest template
        spot radius, cut at the largest circle inside the detector around its centre).
    gamma : float or "log"
        Intensity transform of the ring-subtracted pattern: ``x**gamma`` or ``log1p(x)``.
    template_gamma : float
        Transform of the template intensities, ``I**template_gamma`` (default 0.5 as for
        the pattern, so that the weights are consistent with the pattern's spot image).
    template_energy : float
        Each template keeps its strongest spots up to this fraction of ``Σ w²`` (model
        choice 0.95: measured on a 1.5° Li15Si4 library at 300 kV with precession, the
        median template needs 38 of its ~100 kinematic spots for 95 % and 65 for 99 %; the
        weak rest changes Q by a near-constant factor <= 2.5 % and costs 2-3x the time).
        1.0 keeps all spots.
    smoothing : float
        Gaussian σ in detector pixels applied to the patterns first (0: none).
    min_misorientation : float
        Degrees: solutions closer than this to the best one do not count as the second
        solution of the orientation reliability (model choice: 5°, about 3 library steps of
        1.5°).
    scramble_band : int
        Radial bins per decoy band (model choice: 3, about a spot's diameter).
    decoy_segment : float
        Arc length in detector pixels of the azimuthal segments the decoy shuffles (model
        choice: 3 px, about a nano-beam spot's or a speckle's diameter, so that spots and
        speckles move whole).
    n_decoys : int
        Decoys per pattern; ``Q_decoy`` is the mean of their best Q (model choice 2. The
        null spread of L falls by ~18 % from one decoy to three, measured on synthetic
        rings; the mean of several decoys biases L slightly negative under the null,
        which errs towards amorphous. Each decoy costs about as much as matching the
        pattern itself. Measured on five simulated electrodes (32 × 32 seeds 3, 0, 7;
        48 × 48 seeds 0, 11): phase accuracy over non-pore pixels 0.9993 (mean) with
        three decoys, 0.9992 with two, 0.9987 with one, the loss with one in the
        Li15Si4 recall (0.97–0.98 on two of them); two are about 1.25 times as fast as
        three.)
    fdr : float
        False-discovery rate of the crystalline class for the data-derived amorphous
        threshold (model choice 0.05).
    fpr : float
        Probability that an amorphous pattern is called crystalline (model choice 1e-3; see
        :func:`~anodemap.diffraction.thresholds.amorphous_threshold`).
    amorphous_threshold : float, optional
        Fixed threshold on the spottiness instead of the data-derived one.
    peak_smoothing : float
        Gaussian σ in detector pixels of the smoothing before the Friedel-pair peak
        statistic (model choice 1 px: about a nano-beam spot's half width, a matched
        filter for spots against pixel noise).
    peak_threshold : float, optional
        Fixed threshold on the Friedel-pair peak statistic instead of the data-derived one
        (:func:`~anodemap.diffraction.thresholds.peak_threshold`); ``inf`` switches the
        intensity route off.
    bragg_z : float
        Friedel-pair peak from which a pattern has Bragg spots whatever the rest of the scan
        (the absolute route of :func:`~anodemap.diffraction.thresholds.assign_phases`;
        ``inf``: off). Model choice 8: over 7821 amorphous and pore patterns of six
        simulated electrodes (64 × 64 px, 1e5 electrons) the statistic reached at most
        4.6, and a Gumbel law fitted to them puts 8 at a tail probability of about 1e-9 per
        pattern (6.1 at 1e-6); 1e3 and 1e4 electrons and 8-bit patterns with a saturated
        beam gave at most 3.9. Every Si pattern of those electrodes reached 10, the real
        zone-axis patterns of ``test1.blo`` 26-37; Li15Si4 on amorphous rings (3-80) is
        left to the scan-relative routes below 8.
    spot_z : float
        ``z`` (above the ring's median, in units of its noise) from which a local maximum
        counts as a spot when the spots are compared with the best template (model choice 8,
        as ``bragg_z``: noise alone makes no such spot).
    seen_z : float
        ``z`` from which a template's spot counts as shown by the pattern (model choice 3:
        a weak spot shows, noise rarely reaches it within the tolerance).
    spot_tolerance_px : float
        Distance (detector pixels) within which a spot and a template spot coincide (model
        choice 1.5: the 1.5° library step moves spots at the detector edge of a 64-px
        pattern by up to 0.8 px, the polar bins by up to 0.5 px more).
    min_spot_match : float
        A crystalline pattern whose spots and best template agree less than this
        (``spot_match``, the geometric mean of the share of its spots' intensity that the
        template explains and the share of the template's intensity that it shows) is
        *crystalline, not indexed*. See
        :func:`~anodemap.diffraction.thresholds.assign_phases` for the measurement.
    seed : int
        Seed of the decoy rotations (they also depend on each pattern's content, so that
        results do not depend on how the scan is chunked).
    """

    n_azimuth: int = 240
    r_range: tuple[float, float] | None = None
    gamma: float | str = 0.5
    template_gamma: float = 0.5
    template_energy: float = 0.95
    smoothing: float = 0.0
    min_misorientation: float = 5.0
    scramble_band: int = 3
    decoy_segment: float = 3.0
    n_decoys: int = 2
    fdr: float = 0.05
    fpr: float = 1e-3
    amorphous_threshold: float | None = None
    peak_smoothing: float = 1.0
    peak_threshold: float | None = None
    bragg_z: float = 8.0
    spot_z: float = 8.0
    seen_z: float = 3.0
    spot_tolerance_px: float = 1.5
    min_spot_match: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.n_azimuth) < 12 or int(self.n_azimuth) % 2:
            raise AnodemapInputError(
                f"n_azimuth={self.n_azimuth}: use an even number of at least 12 bins"
            )
        if not (isinstance(self.gamma, str) and self.gamma == "log") and not (
            isinstance(self.gamma, int | float) and self.gamma > 0
        ):
            raise AnodemapInputError(f"gamma={self.gamma!r}: a positive number or 'log'")
        if not (0 < self.fdr < 1 and 0 < self.fpr < 1):
            raise AnodemapInputError(f"fdr={self.fdr}, fpr={self.fpr}: must be in (0, 1)")
        if not 0 < self.template_energy <= 1:
            raise AnodemapInputError(f"template_energy={self.template_energy}: must be in (0, 1]")
        if self.n_decoys < 1:
            raise AnodemapInputError(f"n_decoys={self.n_decoys}: must be >= 1")
        if self.scramble_band < 1:
            raise AnodemapInputError(f"scramble_band={self.scramble_band}: must be >= 1")


@dataclass(frozen=True)
class PolarGrid:
    """Polar sampling grid: radii in 1/Å and azimuths in radians.

    Examples
    --------
    >>> g = PolarGrid(r_min=0.2, r_step=0.01, n_r=50, n_azimuth=240)
    >>> round(float(g.radii[-1]), 3), g.angle_step_deg
    (0.69, 1.5)
    """

    r_min: float
    r_step: float
    n_r: int
    n_azimuth: int

    @property
    def radii(self) -> np.ndarray:
        return self.r_min + self.r_step * np.arange(self.n_r)

    @property
    def azimuths(self) -> np.ndarray:
        return 2 * np.pi * np.arange(self.n_azimuth) / self.n_azimuth

    @property
    def angle_step_deg(self) -> float:
        return 360.0 / self.n_azimuth


# --------------------------------------------------------------------------------------
# Prepared matcher
# --------------------------------------------------------------------------------------
@dataclass
class Matcher:
    """Template libraries prepared for one polar grid; the state the block kernel needs.

    Build it with :func:`prepare_matcher`. It is picklable (numpy arrays only), so it can be
    passed as a kernel keyword to :func:`anodemap._compute.map_pixels` on a cluster.
    """

    grid: PolarGrid
    scale: float
    params: MatchParameters
    phase_names: list[str]
    phase_starts: np.ndarray  # (n_phases + 1,) template offsets of each phase
    starts: np.ndarray  # (M + 1,) spot offsets of each template (all phases)
    spot_r: np.ndarray  # (n_spots,) radial bin
    spot_a: np.ndarray  # (n_spots,) azimuthal bin
    spot_w: np.ndarray  # (n_spots,) weight / template norm, float32
    spot_offset: np.ndarray  # (n_spots,) flat index r · 2 n_azimuth + a in a doubled image
    period: np.ndarray  # (M,) in-plane symmetry period in azimuthal bins
    nb_starts: np.ndarray  # (M + 1,) neighbour list offsets
    nb_idx: np.ndarray  # neighbour template indices (global)
    segment_bins: np.ndarray  # (n_bands,) decoy segment length in azimuthal bins
    euler: list[np.ndarray | None] = field(default_factory=list)
    spots_kept: np.ndarray | None = None  # (M,) spots inside the grid
    # orientation-aware reliability: template matrices g (sample -> crystal, φ1 of the
    # template), whether each phase has them, and each phase's crystal rotations
    template_matrices: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    oriented: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    symmetry: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    symmetry_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))

    @property
    def n_templates(self) -> int:
        return int(self.starts.size - 1)

    @property
    def n_phases(self) -> int:
        return len(self.phase_names)

    @property
    def has_orientations(self) -> bool:
        return all(e is not None for e in self.euler)

    def outputs(self) -> dict[str, OutputSpec]:
        """The per-pattern results of :func:`~anodemap.diffraction.matching.match_kernel`,
        for ``map_pixels``."""
        out = {
            "phase": OutputSpec((), np.int16),
            "crystal_phase": OutputSpec((), np.uint8),
            "template": OutputSpec((), np.int32),
            "angle": OutputSpec((), np.float64),
            "correlation": OutputSpec((), np.float64),
            "reliability": OutputSpec((), np.float64),
            "phase_reliability": OutputSpec((), np.float64),
            "phase_correlation": OutputSpec((self.n_phases,), np.float64),
            "decoy_correlation": OutputSpec((), np.float64),
            "spottiness": OutputSpec((), np.float64),
            "pair_peak": OutputSpec((), np.float64),
            "spots_explained": OutputSpec((), np.float64),
            "template_seen": OutputSpec((), np.float64),
            "spot_match": OutputSpec((), np.float64),
            "n_spots": OutputSpec((), np.int32),
            "amorphous_share": OutputSpec((), np.float64),
            "status": OutputSpec((), np.uint8),
        }
        if self.has_orientations:
            out["euler"] = OutputSpec((3,), np.float64)
        return out


def _default_r_range(
    libs: list[dict[str, Any]], scale: float, pattern_shape: tuple[int, int] | None
) -> tuple[float, float]:
    r_all = np.concatenate([lib["r"][lib["mask"]] for lib in libs])
    r_lo = 0.9 * float(r_all.min())
    r_hi = 1.03 * float(r_all.max())
    if pattern_shape is not None:
        r_hi = min(r_hi, (min(pattern_shape) / 2.0 - 1.0) * scale)
    return r_lo, r_hi


def prepare_matcher(
    libraries: Sequence[Any],
    scale: float,
    pattern_shape: tuple[int, int] | None = None,
    params: MatchParameters | None = None,
    **kwargs: Any,
) -> Matcher:
    """Bin template libraries onto the polar grid of the patterns.

    Parameters
    ----------
    libraries : sequence of template libraries
        One per crystalline phase, in label order (phase label k+1 for ``libraries[k]``).
        Each has ``r`` (1/Å), ``azimuth`` (rad), ``intensity`` arrays (M, S) and optionally
        ``mask``, ``euler``, ``beam_directions``, ``symmetry``, ``name``
        (:class:`SpotTemplates`).
    scale : float
        Detector calibration, 1/Å per pixel (the radial step of the polar grid).
    pattern_shape : (int, int), optional
        (ky, kx) of the patterns: limits the default radial range to the detector.
    params : MatchParameters, optional
        Matching parameters; keyword arguments override its fields.

    Returns
    -------
    Matcher

    Examples
    --------
    >>> import numpy as np
    >>> lib = SpotTemplates(r=np.array([[0.3, 0.5]]), azimuth=np.array([[0.0, 1.0]]),
    ...                     intensity=np.ones((1, 2)))
    >>> m = prepare_matcher([lib], scale=0.01, pattern_shape=(128, 128))
    >>> m.n_templates, m.grid.n_azimuth
    (1, 240)
    """
    params = params or MatchParameters()
    if kwargs:
        params = MatchParameters(**{**params.__dict__, **kwargs})
    if isinstance(libraries, SpotTemplates) or not isinstance(libraries, Sequence):
        libraries = [libraries]
    if len(libraries) == 0:
        raise AnodemapInputError("no template library given: pass at least one phase")
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise AnodemapInputError(
            f"scale={scale!r} 1/Å per pixel: the patterns need a positive reciprocal "
            "calibration (see anodemap.diffraction.calibration)"
        )
    libs = [_library_arrays(lib, k) for k, lib in enumerate(libraries)]
    if params.r_range is not None:
        r_lo, r_hi = map(float, params.r_range)
    else:
        r_lo, r_hi = _default_r_range(libs, scale, pattern_shape)
    r_lo = max(r_lo, scale)
    if not r_hi > r_lo:
        raise AnodemapInputError(
            f"empty radial range {r_lo:.4g}..{r_hi:.4g} 1/Å: the template spots lie outside "
            "the detector; check the calibration (scale) or pass r_range"
        )
    n_r = int(math.floor((r_hi - r_lo) / scale)) + 1
    n_az = int(params.n_azimuth)
    grid = PolarGrid(r_min=r_lo, r_step=scale, n_r=n_r, n_azimuth=n_az)

    starts = [0]
    sr_all, sa_all, sw_all, kept, dirs_all, phase_starts = [], [], [], [], [], [0]
    nb_lists: list[np.ndarray] = []
    offset = 0
    for k, lib in enumerate(libs):
        m_count = lib["r"].shape[0]
        rb = np.rint((lib["r"] - r_lo) / scale)
        ab = np.rint(np.mod(lib["azimuth"], 2 * np.pi) / (2 * np.pi / n_az)) % n_az
        use = lib["mask"] & (rb >= 0) & (rb < n_r)
        w = lib["intensity"] ** params.template_gamma
        t_idx, s_idx = np.nonzero(use)
        key = (t_idx.astype(np.int64) * n_r + rb[use].astype(np.int64)) * n_az + ab[use].astype(
            np.int64
        )
        uniq, inverse = np.unique(key, return_inverse=True)  # merge spots in one bin
        wsum = np.bincount(inverse, weights=w[t_idx, s_idx], minlength=uniq.size)
        t_of = uniq // (n_r * n_az)
        counts = np.bincount(t_of, minlength=m_count)
        if np.all(counts == 0):
            raise AnodemapInputError(
                f"library {k} ({lib['name']}): no template has a spot inside the radial "
                f"range {r_lo:.3g}..{r_hi:.3g} 1/Å; widen r_range or check the calibration"
            )
        # a template without a spot in range keeps Q = 0 (never chosen)
        if params.template_energy < 1.0:  # strongest spots first, up to the kept energy
            order = np.lexsort((-wsum, t_of))
            uniq, wsum, t_of = uniq[order], wsum[order], t_of[order]
            total = np.bincount(t_of, weights=wsum**2, minlength=m_count)
            cum = np.cumsum(wsum**2)
            first = np.concatenate([[0], np.cumsum(counts)[:-1]])
            f_t = first[t_of]
            before = cum - wsum**2 - (cum[f_t] - wsum[f_t] ** 2)
            keep = before < params.template_energy * total[t_of]
            uniq, wsum, t_of = uniq[keep], wsum[keep], t_of[keep]
            counts = np.bincount(t_of, minlength=m_count)
        norm = np.sqrt(np.bincount(t_of, weights=wsum**2, minlength=m_count))
        sr_all.append((uniq // n_az) % n_r)
        sa_all.append(uniq % n_az)
        sw_all.append(wsum / norm[t_of])
        kept.append(counts)
        starts.extend((offset + np.cumsum(counts)).tolist())
        offset = starts[-1]
        nb_lists.extend(_neighbours(lib, params.min_misorientation, phase_starts[-1]))
        phase_starts.append(phase_starts[-1] + m_count)
        dirs_all.append(lib["directions"])

    starts_a = np.asarray(starts, dtype=np.int64)
    sr = np.concatenate(sr_all).astype(np.int64)
    sa = np.concatenate(sa_all).astype(np.int64)
    sw = np.concatenate(sw_all).astype(np.float32)
    period = symmetry_period(sr, sa, sw, starts_a, n_r, n_az, _SYMMETRY_SELF_CORRELATION)
    nb_starts = np.zeros(len(nb_lists) + 1, dtype=np.int64)
    nb_starts[1:] = np.cumsum([len(x) for x in nb_lists])
    nb_idx = np.concatenate(nb_lists).astype(np.int64) if nb_starts[-1] else np.zeros(0, np.int64)
    band = int(params.scramble_band)
    mid = grid.radii[np.minimum(np.arange(0, n_r, band) + band // 2, n_r - 1)] / scale  # px
    seg = np.maximum(1, np.rint(params.decoy_segment / (mid * 2 * np.pi / n_az))).astype(np.int64)
    return Matcher(
        grid=grid,
        scale=scale,
        params=params,
        phase_names=[lib["name"] for lib in libs],
        phase_starts=np.asarray(phase_starts, dtype=np.int64),
        starts=starts_a,
        spot_r=sr,
        spot_a=sa,
        spot_w=sw,
        spot_offset=sr * (2 * n_az) + sa,
        period=period,
        nb_starts=nb_starts,
        nb_idx=nb_idx,
        segment_bins=np.minimum(seg, n_az // 2),
        euler=[lib["euler"] for lib in libs],
        spots_kept=np.concatenate(kept),
        **_orientation_tables(libs),
    )


def _orientation_tables(libs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Template orientation matrices and crystal rotations for the orientation reliability.

    A phase counts as oriented when its library gives Euler angles; its rotations are the
    library's ``symmetry`` (proper rotations of the crystal), else the identity.
    """
    from anodemap.diffraction.templates import orientation_matrix

    mats, oriented, syms, sym_starts = [], [], [], [0]
    for lib in libs:
        m_count = lib["r"].shape[0]
        has = lib["euler"] is not None
        oriented.append(has)
        mats.append(orientation_matrix(lib["euler"]) if has else np.zeros((m_count, 3, 3)))
        sym = lib["symmetry"] if lib["symmetry"] is not None else np.eye(3)[None]
        syms.append(sym)
        sym_starts.append(sym_starts[-1] + len(sym))
    return {
        "template_matrices": np.ascontiguousarray(np.concatenate(mats), dtype=np.float64),
        "oriented": np.asarray(oriented, dtype=np.bool_),
        "symmetry": np.ascontiguousarray(np.concatenate(syms), dtype=np.float64),
        "symmetry_starts": np.asarray(sym_starts, dtype=np.int64),
    }


def _neighbours(lib: dict[str, Any], min_mis_deg: float, offset: int) -> list[np.ndarray]:
    """Templates whose beam direction is within ``min_mis_deg`` (modulo symmetry)."""
    m_count = lib["r"].shape[0]
    dirs = lib["directions"]
    if dirs is None or min_mis_deg <= 0:
        return [np.zeros(0, np.int64) for _ in range(m_count)]
    from scipy.spatial import cKDTree

    d = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    sym = lib["symmetry"] if lib["symmetry"] is not None else np.eye(3)[None]
    # Laue group: the proper rotations and their products with the inversion (Friedel's
    # law makes the patterns of d and -d mirror images; a mirror-related template does not
    # count as a different solution -- model choice)
    sym = np.concatenate([sym, -sym])
    expanded = np.einsum("kij,mj->mki", sym, d).reshape(-1, 3)
    tree = cKDTree(expanded)
    chord = 2.0 * math.sin(math.radians(min_mis_deg) / 2.0)
    hits = tree.query_ball_point(d, chord)
    n_sym = sym.shape[0]
    out = []
    for m, h in enumerate(hits):
        u = np.unique(np.asarray(h, dtype=np.int64) // n_sym)
        out.append(offset + u[u != m])
    return out
