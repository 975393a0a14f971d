"""Ring geometry of diffraction patterns: centre, elliptical distortion and the s-scale.

A pair distribution function turns every error of the scattering vector into an error
of r: a camera length 3 % off scales every interatomic distance by 3 %, and an
elliptical distortion of the projector lenses (1–2 % is common) smears each ring over a
range of s and broadens the peaks of G(r). This module measures both from the data:

- :func:`measure_ellipse` fits the radius of one diffuse or Debye–Scherrer ring of a
  (position-averaged) pattern as a function of azimuth,
  r(φ) = c₀ + c₁ cos φ + c₂ sin φ + c₃ cos 2φ + c₄ sin 2φ
  (linear least squares, outlying sectors rejected): (c₁, c₂) is the offset of the ring
  centre from the given centre, (c₃, c₄) the ellipse, whose semi-axes are
  a, b = c₀ ± √(c₃² + c₄²) along θ = ½ atan2(c₄, c₃) and θ + 90°;
- :func:`corrected_profile` averages a pattern over azimuth about the ring centre with
  the ellipse undone (each pixel's offset rotated by −θ and scaled by r̄/a and r̄/b,
  r̄ = √(ab), which keeps areas: an exact inverse of a linear distortion);
- :func:`check_s_scale` compares the positions of crystalline rings in I(s) with the
  reflections of a known phase (Si in these anodes) and gives the factor by which the
  s-axis must be multiplied, with its uncertainty.

The ring positions are found by a parabola through the maximum of each sector's
smoothed radial profile (sectors of 4° by default); for a broad amorphous ring this
needs the counts of an averaged pattern, not of one pattern.

Examples
--------
>>> import numpy as np
>>> yy, xx = np.mgrid[:128, :128] - 63.5
>>> u = xx * np.cos(0.5) + yy * np.sin(0.5)          # the long axis at 0.5 rad
>>> v = -xx * np.sin(0.5) + yy * np.cos(0.5)
>>> ring = np.exp(-0.5 * (np.hypot(u / 1.02, v) - 40) ** 2 / 3.0**2)
>>> e = measure_ellipse(ring, (63.5, 63.5), window_px=(30, 50))
>>> round(e.axis_ratio, 3), round(float(np.degrees(e.angle_rad)), 1)
(1.02, 28.6)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anodemap.errors import AnodemapInputError

__all__ = ["Ellipse", "ScaleCheck", "check_s_scale", "corrected_profile", "measure_ellipse"]


@dataclass(frozen=True)
class Ellipse:
    """A ring's centre and elliptical distortion, in detector pixels.

    Attributes
    ----------
    centre : (float, float)
        Ring centre (row, column).
    a, b : float
        Semi-major and semi-minor axes of the ring measured (px).
    angle_rad : float
        Direction of the major axis, from the column (x) axis towards the row (y) axis.
    residual_px : float
        RMS of the sectors' radii about the fitted ellipse.
    n_sectors : int
        Sectors used in the fit (after rejecting outliers).
    amplitude_sigma_px : float
        1σ of the ellipse's half-difference of axes (a − b)/2 and of each centre
        coordinate, from the residual: residual × √(2 / n_sectors).
    """

    centre: tuple[float, float]
    a: float
    b: float
    angle_rad: float
    residual_px: float
    n_sectors: int
    amplitude_sigma_px: float = 0.0

    @property
    def axis_ratio(self) -> float:
        """a / b (1 for a circle)."""
        return self.a / self.b

    @property
    def ellipticity(self) -> float:
        """(a − b) / (a + b)."""
        return (self.a - self.b) / (self.a + self.b)

    def summary(self) -> dict[str, float | int | list[float]]:
        """The numbers for ``summary.json``."""
        return {
            "centre_px": [float(self.centre[0]), float(self.centre[1])],
            "axis_ratio": float(self.axis_ratio),
            "ellipticity": float(self.ellipticity),
            "major_axis_angle_deg": float(np.degrees(self.angle_rad)),
            "ring_radius_px": float(math.sqrt(self.a * self.b)),
            "residual_px": float(self.residual_px),
            "n_sectors": int(self.n_sectors),
            "amplitude_sigma_px": float(self.amplitude_sigma_px),
        }


def _sector_radii(
    pattern: np.ndarray,
    centre: tuple[float, float],
    window_px: tuple[float, float],
    n_sectors: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and ring radius (px) of each sector whose maximum lies inside the window."""
    from scipy.ndimage import gaussian_filter1d, map_coordinates

    lo, hi = window_px
    r = np.arange(max(lo - 3.0, 0.0), hi + 3.0, 0.25)
    # each sector: 8 rays spread over its width, averaged
    phi = (np.arange(n_sectors * 8) + 0.5) * (2 * np.pi / (n_sectors * 8))
    rows = centre[0] + np.sin(phi)[:, None] * r[None, :]
    cols = centre[1] + np.cos(phi)[:, None] * r[None, :]
    rays = map_coordinates(pattern, [rows, cols], order=1, mode="constant", cval=np.nan)
    profiles = rays.reshape(n_sectors, 8, r.size).mean(axis=1)
    profiles = gaussian_filter1d(profiles, 4.0, axis=1)  # 1 px, against counting noise
    inside = (r >= lo) & (r <= hi)
    idx = np.flatnonzero(inside)
    radii = np.full(n_sectors, np.nan)
    for k in range(n_sectors):
        p = profiles[k]
        if not np.all(np.isfinite(p[idx[0] - 1 : idx[-1] + 2])):
            continue  # the sector leaves the detector
        j = idx[np.argmax(p[idx])]
        if j in (idx[0], idx[-1]):
            continue  # the maximum is the window's edge, not a ring
        y0, y1, y2 = p[j - 1], p[j], p[j + 1]
        den = y0 - 2 * y1 + y2
        radii[k] = r[j] + (0.5 * (y0 - y2) / den if den < 0 else 0.0) * (r[1] - r[0])
    sector_phi = (np.arange(n_sectors) + 0.5) * (2 * np.pi / n_sectors)
    ok = np.isfinite(radii)
    return sector_phi[ok], radii[ok]


def measure_ellipse(
    pattern: np.ndarray,
    centre: Sequence[float],
    *,
    window_px: tuple[float, float],
    n_sectors: int = 90,
    iterations: int = 3,
) -> Ellipse:
    """Centre and elliptical distortion of the ring whose maximum lies in ``window_px``.

    Parameters
    ----------
    pattern : ndarray (ky, kx)
        A pattern with a ring (an averaged pattern: a single one is too noisy for a
        diffuse ring).
    centre : (float, float)
        A first estimate of the centre (row, column), e.g. the direct beam's.
    window_px : (float, float)
        Radii (px) between which the ring's maximum lies in every direction.
    n_sectors : int
        Azimuthal sectors (90: 4° each).
    iterations : int
        Refits about the new centre (the sectors are re-cut each time).

    Returns
    -------
    Ellipse

    Raises
    ------
    AnodemapInputError
        Fewer than 12 sectors show a maximum inside the window.
    """
    pattern = np.asarray(pattern, dtype=float)
    cy, cx = (float(centre[0]), float(centre[1]))
    for _ in range(max(int(iterations), 1)):
        phi, radii = _sector_radii(pattern, (cy, cx), window_px, int(n_sectors))
        keep = np.ones(phi.size, bool)
        for _ in range(3):  # reject sectors crossed by a Bragg spot or a defect
            if keep.sum() < 12:
                raise AnodemapInputError(
                    f"only {int(keep.sum())} of {n_sectors} sectors show a ring maximum "
                    f"between {window_px[0]:g} and {window_px[1]:g} px: no ring to measure "
                    "the distortion on"
                )
            design = np.column_stack(
                [np.ones_like(phi), np.cos(phi), np.sin(phi), np.cos(2 * phi), np.sin(2 * phi)]
            )
            coef, *_ = np.linalg.lstsq(design[keep], radii[keep], rcond=None)
            resid = radii - design @ coef
            mad = 1.4826 * np.median(np.abs(resid[keep])) + 1e-9
            new = np.abs(resid) <= 3.5 * mad
            if np.array_equal(new, keep):
                break
            keep = new
        # a ring about (cy + dy, cx + dx) seen from (cy, cx): r ≈ r0 + dx cos φ + dy sin φ
        cx, cy = cx + coef[1], cy + coef[2]
    c0, c3, c4 = coef[0], coef[3], coef[4]
    amp = math.hypot(c3, c4)
    residual = float(np.sqrt(np.mean(resid[keep] ** 2)))
    return Ellipse(
        centre=(cy, cx),
        a=float(c0 + amp),
        b=float(c0 - amp),
        angle_rad=float(0.5 * math.atan2(c4, c3)),
        residual_px=residual,
        n_sectors=int(keep.sum()),
        # least squares over evenly spread sectors: each cos/sin coefficient has the
        # variance residual^2 * 2/n
        amplitude_sigma_px=residual * math.sqrt(2.0 / keep.sum()),
    )


def _undistorted_radius(
    shape: tuple[int, int], ellipse: Ellipse | None, centre: Sequence[float]
) -> np.ndarray:
    """Each pixel's distance (px) from the centre with the ellipse undone."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    if ellipse is None:
        return np.hypot(yy - centre[0], xx - centre[1])
    dy, dx = yy - ellipse.centre[0], xx - ellipse.centre[1]
    c, s = math.cos(ellipse.angle_rad), math.sin(ellipse.angle_rad)
    u = dx * c + dy * s  # along the major axis
    v = -dx * s + dy * c
    mean = math.sqrt(ellipse.a * ellipse.b)
    return np.hypot(u * mean / ellipse.a, v * mean / ellipse.b)


def corrected_profile(
    pattern: np.ndarray,
    scale: float,
    *,
    ellipse: Ellipse | None = None,
    centre: Sequence[float] | None = None,
    bin_width: float | None = None,
    s_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthal average I(s) of one pattern with the ring distortion undone.

    Parameters
    ----------
    pattern : ndarray (ky, kx)
    scale : float
        1/Å per pixel as calibrated (of the geometric mean radius of the ellipse).
    ellipse : Ellipse, optional
        From :func:`measure_ellipse`; its centre is used. None: circles about ``centre``.
    centre : (float, float), optional
        Used when ``ellipse`` is None (default: the middle of the pattern).
    bin_width : float, optional
        In 1/Å (default: ``scale``, one pixel).
    s_scale : float
        Factor on the s-axis (:func:`check_s_scale`'s ``factor``).

    Returns
    -------
    s, intensity : ndarray
        Bin centres (1/Å) up to the largest full ring, and the mean counts per pixel.

    Examples
    --------
    >>> s, i = corrected_profile(np.ones((65, 65)), 0.01)
    >>> round(float(s[-1]), 2), float(i[10])
    (0.32, 1.0)
    """
    pattern = np.asarray(pattern, dtype=float)
    if centre is None:
        centre = ((pattern.shape[0] - 1) / 2, (pattern.shape[1] - 1) / 2)
    radius = _undistorted_radius(pattern.shape, ellipse, centre)
    ref = ellipse.centre if ellipse is not None else centre
    edge = min(ref[0], pattern.shape[0] - 1 - ref[0], ref[1], pattern.shape[1] - 1 - ref[1])
    if ellipse is not None:
        edge *= math.sqrt(ellipse.a * ellipse.b) / ellipse.a  # the shortest undistorted edge
    s_pix = radius * scale * s_scale
    width = float(bin_width) if bin_width is not None else scale * s_scale
    n_bins = int(math.floor(edge * scale * s_scale / width)) + 1
    # each pixel's counts split linearly between the two nearest bin centres
    pos = s_pix / width
    k0 = np.floor(pos).astype(np.int64).ravel()
    f = (pos - np.floor(pos)).ravel()
    x = pattern.ravel()
    good = np.isfinite(x)
    k0, f, x = k0[good], f[good], x[good]
    size = n_bins + 2
    lo = np.minimum(k0, n_bins + 1)
    hi = np.minimum(k0 + 1, n_bins + 1)
    num = np.bincount(lo, x * (1 - f), size) + np.bincount(hi, x * f, size)
    den = np.bincount(lo, 1 - f, size) + np.bincount(hi, f, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        intensity = num[:n_bins] / den[:n_bins]
    return np.arange(n_bins) * width, intensity


@dataclass(frozen=True)
class ScaleCheck:
    """The s-scale of a profile checked against a phase's reflections.

    Attributes
    ----------
    factor : float
        Multiply the s-axis (or the calibration, 1/Å per pixel) by this.
    uncertainty : float
        1σ of ``factor`` (spread of the reflections' ratios / √n; NaN with one).
    reflections : list of dict
        Per reflection used: ``hkl``, ``s_expected``, ``s_found`` (1/Å).
    phase : str
    """

    factor: float
    uncertainty: float
    reflections: list[dict[str, object]]
    phase: str

    def summary(self) -> dict[str, object]:
        """The numbers for ``summary.json``."""
        return {
            "phase": self.phase,
            "s_scale_factor": float(self.factor),
            "s_scale_factor_sigma": float(self.uncertainty),
            "camera_length_error_percent": float((1.0 / self.factor - 1.0) * 100.0),
            "reflections": self.reflections,
        }


def check_s_scale(
    s: np.ndarray,
    intensity: np.ndarray,
    phase: str = "Si",
    *,
    n_rings: int = 4,
    search: float = 0.05,
    min_contrast: float = 0.02,
) -> ScaleCheck | None:
    """The factor that puts the crystalline rings of I(s) on a phase's reflections.

    The strongest ``n_rings`` distinct reflections of ``phase`` (kinematic |F|² times
    multiplicity) are looked for within ±``search`` (relative) of their s; each found
    ring's position is the maximum of a parabola through the profile's highest samples,
    measured above the straight line joining the window's ends. Rings weaker than
    ``min_contrast`` of the profile there are not used.

    Parameters
    ----------
    s, intensity : ndarray
        An azimuthally averaged profile (s in 1/Å).
    phase : str
        A packaged phase name or a CIF path (:func:`anodemap.diffraction.crystal.load_phase`).
    n_rings : int
    search : float
        Half-width of each search window, relative to the expected s.
    min_contrast : float

    Returns
    -------
    ScaleCheck or None
        None when fewer than two rings are found (no crystalline rings of the phase:
        the scale cannot be checked on these data).
    """
    from anodemap.diffraction.crystal import electron_scattering_factor, load_phase

    s = np.asarray(s, dtype=float)
    intensity = np.asarray(intensity, dtype=float)
    crystal = load_phase(phase)
    top = float(np.nanmax(s[np.isfinite(intensity)])) / (1 + search)
    refl = crystal.reflections(s_max=top)
    # rings: reflections grouped by s, strength = sum of |F|^2 over the group
    key = np.round(refl.s, 6)
    rings = []
    for value in np.unique(key):
        m = key == value
        hkl = sorted(abs(int(h)) for h in refl.hkl[m][0])
        rings.append((float(np.sum(np.abs(refl.structure_factor[m]) ** 2)), float(value), hkl))
    rings = sorted(rings, reverse=True)[: int(n_rings)]
    # I(s) / <f^2>(s): the rings of the interference function, not pulled towards low s by
    # the steep fall of the atomic scattering (a 1 % shift of a broad ring otherwise)
    f2 = np.zeros_like(s)
    for site in crystal.sites:
        f2 += site.occupancy * electron_scattering_factor(site.element, s) ** 2
    reduced = intensity / np.where(f2 > 0, f2, np.nan)
    found = []
    step = float(np.median(np.diff(s)))
    for _, s0, hkl in sorted(rings, key=lambda t: t[1]):
        half = max(search * s0, 6 * step)  # at least six samples either side
        w = (s >= s0 - half) & (s <= s0 + half) & np.isfinite(reduced)
        if w.sum() < 7:
            continue
        x, y = s[w], reduced[w]
        base = y[0] + (y[-1] - y[0]) * (x - x[0]) / (x[-1] - x[0])
        above = y - base
        j = int(np.argmax(above))
        if j < 1 or j > x.size - 2 or above[j] < min_contrast * np.abs(base[j]):
            continue
        y0, y1, y2 = above[j - 1 : j + 2]
        if min(y0, y2) > 0:  # a Gaussian through the three highest samples
            y0, y1, y2 = np.log(y0), np.log(y1), np.log(y2)
        den = y0 - 2 * y1 + y2
        peak = x[j] + (0.5 * (y0 - y2) / den * step if den < 0 else 0.0)
        found.append({"hkl": hkl, "s_expected": s0, "s_found": float(peak)})
    if len(found) < 2:
        return None
    ratios = np.array([f["s_expected"] / f["s_found"] for f in found])
    factor = float(np.mean(ratios))
    sigma = float(np.std(ratios, ddof=1) / math.sqrt(ratios.size))
    return ScaleCheck(factor, sigma, found, crystal.name)
