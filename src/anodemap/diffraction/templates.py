"""Kinematic template libraries for ASTAR-style phase and orientation mapping.

A library holds, for one phase, the kinematic spot pattern of every beam direction of a
near-uniform grid over the fundamental sector of the phase's Laue group, at in-plane
rotation φ1 = 0. The in-plane rotation is left to the matcher, which scans it as a shift
in azimuth (a template at φ1 is the φ1 = 0 template rotated counter-clockwise by φ1).

Geometry and conventions
------------------------
* Orientations are Bunge Euler angles (φ1, Φ, φ2) in **degrees**, passive, sample → crystal,
  as orix uses them (``orix.quaternion.Orientation.from_euler(np.radians(euler))``); the
  orientation matrix ``g`` maps sample coordinates to crystal Cartesian coordinates
  (a ∥ x, c* ∥ z, see :mod:`anodemap.diffraction.crystal`). ``quaternions`` follow orix
  (a ≥ 0). The beam travels along the sample +Z axis; its direction in the crystal frame is
  ``g @ [0, 0, 1] = (sin φ2 sin Φ, cos φ2 sin Φ, cos Φ)``. With the matcher's pattern
  axes, X runs along the pattern columns (kx) and Y along the rows (ky).
* Other programs' sample frames, measured on the same patterns
  (``tests/diffraction/test_orientation_independent.py``): diffsims' lab frame is (X, −Y, −Z) (its
  Ewald sphere is centred at +z/λ: its beam travels along −z), so a grain of orientation
  ``g`` here is diffsims' rotation ``g · diag(1, −1, −1)`` drawn with its y axis reversed;
  pyxem 0.21's ``get_orientation`` reports ``g · diag(−1, 1, −1)`` for it.
* Spot positions are the sample-frame (X, Y) components of the reciprocal vectors, in 1/Å
  (``s = 1/d``; the pattern is calibrated in angle/λ, so no gnomonic correction is made);
  ``azimuth = atan2(s_y, s_x)`` in radians, ``r = hypot(s_x, s_y)``.
* Mirrored templates: the Laue group includes the inversion, so the grid covers 1/48 of the
  sphere for m-3m. Patterns of the other half of a proper-rotation fundamental sector are the
  **mirror images** (s_y → -s_y) of these templates, not rotations of them (a crystal turned
  upside down gives the mirrored pattern). :meth:`TemplateLibrary.mirrored` returns them as
  proper orientations (beam -d, ``g' = g · diag(-1, 1, -1)``); a matcher must test them too
  (in polar coordinates: azimuth → -azimuth), or pass ``include_mirrored=True``.

Intensities
-----------
``I = |F|² · w(s_g)`` with the kinematic electron structure factor F (Å; relativistic
factor γ included) and the excitation error of the reflection for an incident wavevector
``k0`` of length ``K = 1/λ`` (relativistic λ)::

    s_g = -(k̂0 · g + |g|² / (2K))

* no precession: ``k̂0 = +Z``; ``w = exp(-(s_g/σ)²)`` ("gaussian", σ = ``excitation_error_width``)
  or ``w = sinc²(t s_g)`` ("sinc2", the kinematic rocking curve of a slab of thickness t);
* precession (Vincent & Midgley geometry, semi-angle φ): the beam is tilted by φ and turned
  about the optic axis with the pattern de-scanned; ``k̂0 = (sin φ cos ψ, sin φ sin ψ, cos φ)``
  and ``w`` is averaged over ``n_precession`` equally spaced azimuths ψ (numerical
  integration of the kinematic intensity over the precession circle).

The default σ = 0.01 1/Å is a **model choice**: it stands for what widens the Bragg
condition in a real nano-beam pattern (thickness, beam convergence, bending, dynamical
scattering), and is the same order as the 0.01 1/Å excitation-error cut-off of
diffsims/pyxem template libraries. It is a parameter; set it from the data.

Examples
--------
>>> from anodemap.diffraction.templates import generate_templates
>>> lib = generate_templates("Si", beam_energy_kv=300, calibration=0.01, step_deg=5.0)
>>> lib.phase, lib.spots.shape[0] == lib.n_templates, bool(lib.mask.any(axis=1).all())
('Si', True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from anodemap.diffraction.crystal import (
    Crystal,
    ReflectionList,
    electron_wavelength,
    load_phase,
)
from anodemap.errors import AnodemapInputError

__all__ = [
    "TemplateLibrary",
    "beam_directions",
    "euler_from_matrix",
    "euler_to_quaternion",
    "generate_templates",
    "misorientation_deg",
    "orientation_matrix",
    "zone_axis_template",
]

#: default width σ (1/Å) of the excitation-error weight exp(-(s_g/σ)²) (model choice, see above)
DEFAULT_EXCITATION_ERROR_WIDTH = 0.01
#: candidate widths σ (1/Å) of the orientation refinement's templates; it takes the one
#: whose templates fit the crystalline patterns best (the largest mean over the phases of
#: each phase's mean Q; ties keep the first, the default; ``matching.refine_orientations``).
#: The width stands for what widens the Bragg condition in the specimen (thickness,
#: bending, beam convergence). Measured (2026-12-07, ``docs/diffraction.md``): on diffsims
#: patterns (Lorentzian relrods with its default 0.01 1/Å cut-off) a fixed 0.01 found tilts
#: off a zone axis about 1.5 times too large (2° at 3-4°); 0.007 is chosen there (12 of 12
#: scans) and the median error near zone axes falls from 0.85-1.07° to 0.66-0.83°. On
#: anodemap's own patterns made with 0.01, 0.01 is chosen (12 of 12 electrodes); made with
#: 0.007, 0.007 in 3 of 5 (the choice leans to the default). A wider candidate (0.014) is
#: not offered: Si patterns favoured it on patterns made with 0.01 (48 × 48 electrode seed
#: 0: Si within 2° fell from 0.93 to 0.87).
REFINEMENT_EXCITATION_ERROR_WIDTHS = (DEFAULT_EXCITATION_ERROR_WIDTH, 0.007)
#: default largest s = 1/d (1/Å) when neither s_max nor a detector shape is given (model choice)
DEFAULT_S_MAX = 1.5
#: precession azimuths used to integrate the intensity over the precession circle (model choice)
DEFAULT_N_PRECESSION = 72
#: spots whose weight w falls below this are dropped (model choice)
_MIN_WEIGHT = 1e-3

_ORIX_SYMMETRY = {
    "m-3m": "Oh",
    "m-3": "Th",
    "6/mmm": "D6h",
    "6/m": "C6h",
    "-3m": "D3d",
    "-3": "S6",
    "4/mmm": "D4h",
    "4/m": "C4h",
    "mmm": "D2h",
    "2/m": "C2h",
    "-1": "Ci",
}


# --------------------------------------------------------------------------------------
# orientations
# --------------------------------------------------------------------------------------


def orientation_matrix(euler_deg: np.ndarray) -> np.ndarray:
    """Bunge orientation matrices g (sample → crystal) from Euler angles in degrees.

    Parameters
    ----------
    euler_deg : array_like, shape (..., 3)
        (φ1, Φ, φ2) in degrees.

    Returns
    -------
    ndarray, shape (..., 3, 3)
        ``v_crystal = g @ v_sample``.

    Examples
    --------
    >>> g = orientation_matrix([0.0, 0.0, 0.0])
    >>> g.tolist() == np.eye(3).tolist()
    True
    >>> np.round(orientation_matrix([0, 90, 0]) @ [0, 0, 1], 6).tolist()  # beam along crystal y
    [0.0, 1.0, 0.0]
    """
    e = np.radians(np.asarray(euler_deg, dtype=np.float64))
    c1, s1 = np.cos(e[..., 0]), np.sin(e[..., 0])
    c, s = np.cos(e[..., 1]), np.sin(e[..., 1])
    c2, s2 = np.cos(e[..., 2]), np.sin(e[..., 2])
    g = np.empty(e.shape[:-1] + (3, 3))
    g[..., 0, 0] = c1 * c2 - s1 * s2 * c
    g[..., 0, 1] = s1 * c2 + c1 * s2 * c
    g[..., 0, 2] = s2 * s
    g[..., 1, 0] = -c1 * s2 - s1 * c2 * c
    g[..., 1, 1] = -s1 * s2 + c1 * c2 * c
    g[..., 1, 2] = c2 * s
    g[..., 2, 0] = s1 * s
    g[..., 2, 1] = -c1 * s
    g[..., 2, 2] = c
    return g


def euler_from_matrix(g: np.ndarray) -> np.ndarray:
    """Bunge Euler angles in degrees, in [0, 360) × [0, 180] × [0, 360), from matrices g.

    Examples
    --------
    >>> e = np.array([[30.0, 40.0, 50.0]])
    >>> np.round(euler_from_matrix(orientation_matrix(e)), 9).tolist()
    [[30.0, 40.0, 50.0]]
    """
    g = np.asarray(g, dtype=np.float64)
    cphi = np.clip(g[..., 2, 2], -1.0, 1.0)
    big = np.arccos(cphi)
    sphi = np.sin(big)
    regular = sphi > 1e-9
    phi1 = np.where(
        regular, np.arctan2(g[..., 2, 0], -g[..., 2, 1]), np.arctan2(g[..., 0, 1], g[..., 0, 0])
    )
    phi2 = np.where(regular, np.arctan2(g[..., 0, 2], g[..., 1, 2]), 0.0)
    out = np.degrees(np.stack([phi1, big, phi2], axis=-1))
    out[..., 0] %= 360.0
    out[..., 2] %= 360.0
    return out


def euler_to_quaternion(euler_deg: np.ndarray) -> np.ndarray:
    """Unit quaternions (a, b, c, d), a ≥ 0, of Bunge Euler angles, in orix's convention.

    Examples
    --------
    >>> np.round(euler_to_quaternion([0, 0, 90]), 6).tolist()[::3]
    [0.707107, -0.707107]
    """
    e = np.radians(np.asarray(euler_deg, dtype=np.float64))
    sigma = 0.5 * (e[..., 0] + e[..., 2])
    delta = 0.5 * (e[..., 0] - e[..., 2])
    c, s = np.cos(0.5 * e[..., 1]), np.sin(0.5 * e[..., 1])
    q = np.stack(
        [c * np.cos(sigma), -s * np.cos(delta), -s * np.sin(delta), -c * np.sin(sigma)], -1
    )
    return np.where(q[..., :1] < 0, -q, q)


def misorientation_deg(
    euler_a_deg: np.ndarray, euler_b_deg: np.ndarray, symmetry: np.ndarray | Any
) -> np.ndarray:
    """Smallest rotation (degrees) between orientations, modulo the crystal's symmetry.

    The angle of ``S g_a g_b^T`` minimised over the proper rotations ``S`` of the Laue
    class (the symmetry a diffraction pattern fixes an orientation to, Friedel's law),
    with g the Bunge matrices of :func:`orientation_matrix` (sample -> crystal).

    Parameters
    ----------
    euler_a_deg, euler_b_deg : array_like, shape (..., 3)
        Bunge Euler angles in degrees (broadcast against each other). NaN angles give NaN.
    symmetry : Crystal, str or ndarray (n, 3, 3)
        A phase (its :meth:`~anodemap.diffraction.crystal.Crystal.point_group_rotations`)
        or the rotation matrices themselves, in the Cartesian crystal frame.

    Returns
    -------
    ndarray, shape (...)
        Angles in [0, 180] degrees.

    Examples
    --------
    >>> float(np.round(misorientation_deg([0, 0, 0], [0, 0, 95], "Si"), 6))  # 90 deg is symmetric
    5.0
    >>> float(np.round(misorientation_deg([10, 20, 30], [10, 20, 30], "Si"), 6))
    0.0
    """
    if isinstance(symmetry, np.ndarray):
        rots = np.asarray(symmetry, dtype=np.float64)
    else:
        rots = load_phase(symmetry).point_group_rotations(proper=True)
    if rots.ndim != 3 or rots.shape[1:] != (3, 3):
        raise ValueError(f"symmetry must be rotation matrices (n, 3, 3), not {rots.shape}")
    ga = orientation_matrix(euler_a_deg)
    gb = orientation_matrix(euler_b_deg)
    delta = ga @ np.swapaxes(gb, -1, -2)
    # trace(S @ delta) for every S; the largest trace is the smallest angle
    traces = np.einsum("kij,...ji->...k", rots, delta)
    cos = np.clip((traces.max(axis=-1) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def _euler_for_beam(directions: np.ndarray) -> np.ndarray:
    """Euler angles (φ1 = 0) whose beam direction in the crystal frame is ``directions``."""
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    big = np.degrees(np.arccos(np.clip(d[:, 2], -1, 1)))
    phi2 = np.degrees(np.arctan2(d[:, 0], d[:, 1]))
    phi2 = np.where(np.hypot(d[:, 0], d[:, 1]) < 1e-12, 0.0, phi2) % 360.0
    return np.stack([np.zeros(len(d)), big, phi2], axis=1)


# --------------------------------------------------------------------------------------
# beam directions over the fundamental sector
# --------------------------------------------------------------------------------------


def _cubic_triangle(step: float) -> np.ndarray:
    """Standard triangle [001]-[101]-[111] (z ≥ x ≥ y ≥ 0), rings of constant polar angle."""
    theta_max = math.atan(math.sqrt(2.0))  # [111]
    n_rings = max(1, math.ceil(theta_max / step))
    dirs = [np.array([0.0, 0.0, 1.0])]
    for i in range(1, n_rings + 1):
        theta = min(i * theta_max / n_rings, theta_max)
        # azimuth range (from +x towards +y) inside the triangle at this polar angle
        lo = 0.0
        if math.tan(theta) > 1.0:
            lo = math.acos(min(1.0, 1.0 / math.tan(theta)))
        hi = math.pi / 4
        # azimuth phi here is measured in the x-y plane from x; the triangle needs y <= x
        span = max(hi - lo, 0.0)
        n = max(1, math.ceil(span * math.sin(theta) / step)) if span > 1e-12 else 0
        phis = np.linspace(lo, hi, n + 1) if n else np.array([hi])
        st = math.sin(theta)
        ring = np.stack(
            [st * np.cos(phis), st * np.sin(phis), np.full_like(phis, math.cos(theta))], 1
        )
        dirs.append(ring)
    # the [101]-[111] edge (x = z) is crossed obliquely by the rings: sample it explicitly
    a, b = np.array([1.0, 0.0, 1.0]) / math.sqrt(2), np.array([1.0, 1.0, 1.0]) / math.sqrt(3)
    omega = math.acos(float(a @ b))
    t = np.linspace(0.0, 1.0, max(2, math.ceil(omega / step) + 1))[:, None]
    edge = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)
    out = np.vstack(dirs + [edge])
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    out = _unique_directions(out)
    # drop ring points that crowd an edge point (closer than step/3) to keep the grid even
    on_edge = np.abs(out[:, 0] - out[:, 2]) < 1e-9
    close = (out[~on_edge] @ out[on_edge].T).max(axis=1) > math.cos(step / 3)
    keep = np.ones(len(out), bool)
    keep[np.flatnonzero(~on_edge)[close]] = False
    return out[keep]


def _fibonacci_sphere(step: float) -> np.ndarray:
    n = max(50, int(math.ceil(4 * math.pi / (0.85 * step) ** 2)))
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _unique_directions(d: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    keys = np.round(d / tol).astype(np.int64)
    _, idx = np.unique(keys, axis=0, return_index=True)
    return d[np.sort(idx)]


def beam_directions(phase: Crystal | str, step_deg: float = 1.5) -> np.ndarray:
    """Near-uniform beam directions over the fundamental sector of the phase's Laue group.

    For the cubic Laue group m-3m (Si, Li15Si4) the sector is the standard stereographic
    triangle [001]–[101]–[111] (z ≥ x ≥ y ≥ 0), sampled on rings of constant polar angle
    ``step_deg`` apart with points ≤ ``step_deg`` apart along each ring (corners and edges
    included). Any other Laue group is sampled by keeping the points of a Fibonacci sphere
    grid that fall in the Dirichlet sector of a generic direction (one representative per
    symmetry orbit), plus the symmetry axes in it.

    Parameters
    ----------
    phase : Crystal or str
    step_deg : float
        Angular step in degrees.

    Returns
    -------
    ndarray, shape (n, 3)
        Unit vectors in the Cartesian crystal frame.

    Examples
    --------
    >>> d = beam_directions("Si", 5.0)
    >>> bool(np.all(d[:, 2] + 1e-9 >= d[:, 0])), bool(np.all(d[:, 0] + 1e-9 >= d[:, 1]))
    (True, True)
    """
    crystal = load_phase(phase)
    if not 0 < step_deg <= 30:
        raise AnodemapInputError(f"step_deg must be in (0, 30] degrees, got {step_deg!r}")
    step = math.radians(step_deg)
    if crystal.laue_group == "m-3m":
        return _cubic_triangle(step)
    rots = crystal.point_group_rotations(proper=True)
    ops = np.concatenate([rots, -rots])  # Laue group acting on directions
    w = np.array([0.1234, 0.3456, 0.9301])
    w /= np.linalg.norm(w)
    grid = _fibonacci_sphere(step)
    # symmetry axes (eigenvectors of rotations with eigenvalue 1) are added explicitly
    axes = []
    for r in rots:
        vals, vecs = np.linalg.eig(r)
        k = np.argmin(np.abs(vals - 1))
        if abs(np.trace(r) - 3) > 1e-6:
            v = np.real(vecs[:, k])
            axes += [v, -v]
    cand = np.vstack([grid] + ([np.asarray(axes)] if axes else []))
    score = np.einsum("nij,mj,i->mn", ops, cand, w)  # (gv)·w for every op
    keep = cand @ w >= score.max(axis=1) - 1e-9
    return _unique_directions(cand[keep])


# --------------------------------------------------------------------------------------
# the library
# --------------------------------------------------------------------------------------


@dataclass
class TemplateLibrary:
    """Kinematic spot templates of one phase over its orientation fundamental sector.

    Attributes
    ----------
    phase : str
        Phase name.
    beam_energy_kv, wavelength : float
        Beam energy (kV) and relativistic wavelength (Å).
    calibration : float
        Detector calibration, 1/Å per pixel.
    precession_angle_deg : float
        Precession semi-angle (0: none).
    excitation_error_width : float
        σ of the excitation-error weight, 1/Å.
    s_max : float
        Largest ``s = 1/d`` simulated, 1/Å.
    laue_group : str
        Laue class of the phase (symmetry of the library).
    beam_directions : ndarray, shape (n, 3)
        Beam direction in the Cartesian crystal frame for each template.
    euler : ndarray, shape (n, 3)
        Bunge Euler angles (φ1 = 0, Φ, φ2) in degrees.
    spots : ndarray of float32, shape (n, m, 2)
        (s_x, s_y) in 1/Å in the sample frame, padded with 0 where ``mask`` is False.
    intensities : ndarray of float32, shape (n, m)
        Kinematic intensity (Å², relative within the library), 0 where padded; each row is
        sorted strongest first.
    mask : ndarray of bool, shape (n, m)
    hkl : ndarray of int16, shape (n, m, 3)
        Miller indices of each spot.
    r, azimuth : ndarray of float32, shape (n, m)
        Polar coordinates of the spots: r in 1/Å, azimuth in radians (atan2(s_y, s_x)).
    mirrored_flag : bool
        True for a library made by :meth:`mirrored`.
    """

    phase: str
    beam_energy_kv: float
    wavelength: float
    calibration: float
    precession_angle_deg: float
    excitation_error_width: float
    s_max: float
    laue_group: str
    beam_directions: np.ndarray
    euler: np.ndarray
    spots: np.ndarray
    intensities: np.ndarray
    mask: np.ndarray
    hkl: np.ndarray
    r: np.ndarray
    azimuth: np.ndarray
    mirrored_flag: bool = False
    metadata: dict = field(default_factory=dict)

    @property
    def n_templates(self) -> int:
        """Number of templates (beam directions)."""
        return int(self.spots.shape[0])

    @property
    def max_spots(self) -> int:
        """Padded number of spots per template."""
        return int(self.spots.shape[1])

    @property
    def quaternions(self) -> np.ndarray:
        """Orientations as unit quaternions (orix convention), shape (n, 4)."""
        return euler_to_quaternion(self.euler)

    def orientation_matrices(self, phi1_deg: float = 0.0) -> np.ndarray:
        """Orientation matrices g (sample → crystal) with in-plane rotation ``phi1_deg``."""
        e = self.euler.copy()
        e[:, 0] = (e[:, 0] + phi1_deg) % 360.0
        return orientation_matrix(e)

    def euler_at(self, index: np.ndarray | int, phi1_deg: np.ndarray | float) -> np.ndarray:
        """Euler angles (degrees) of template(s) ``index`` turned in plane by ``phi1_deg``.

        The pattern of that orientation is the template rotated counter-clockwise (from +s_x
        towards +s_y) by ``phi1_deg``.
        """
        e = np.array(self.euler[np.asarray(index)], dtype=np.float64, copy=True)
        e[..., 0] = (e[..., 0] + np.asarray(phi1_deg)) % 360.0
        return e

    def rotated_spots(self, phi1_deg: float) -> np.ndarray:
        """Spot positions (n, m, 2) of all templates turned in plane by ``phi1_deg``."""
        a = math.radians(phi1_deg)
        c, s = math.cos(a), math.sin(a)
        x, y = self.spots[..., 0], self.spots[..., 1]
        return np.stack([c * x - s * y, s * x + c * y], axis=-1) * self.mask[..., None]

    def spots_in_pixels(self, center: tuple[float, float]) -> np.ndarray:
        """Spot positions in detector pixels (x, y) for a pattern centre (x0, y0).

        ``pixel = center + s / calibration``; the axes are those of the sample frame (how the
        detector image axes relate to it is a property of the acquisition).
        """
        return self.spots / self.calibration + np.asarray(center, dtype=np.float64)

    def mirrored(self) -> TemplateLibrary:
        """Templates of the other half of the proper-rotation sector (mirror images).

        Beam direction -d, orientation ``g' = g · diag(-1, 1, -1)`` (the specimen turned upside
        down): spots ``(s_x, -s_y)``, azimuth ``-azimuth``, indices ``-hkl``, intensities and
        excitation errors unchanged.
        """
        flip = np.diag([-1.0, 1.0, -1.0])
        g = orientation_matrix(self.euler) @ flip
        spots = self.spots.copy()
        spots[..., 1] *= -1
        return replace(
            self,
            beam_directions=-self.beam_directions,
            euler=euler_from_matrix(g),
            spots=spots,
            hkl=(-self.hkl).astype(self.hkl.dtype),
            azimuth=np.where(self.mask, -self.azimuth, 0.0).astype(self.azimuth.dtype),
            mirrored_flag=not self.mirrored_flag,
            metadata=dict(self.metadata),
        )

    def concatenate(self, other: TemplateLibrary) -> TemplateLibrary:
        """One library holding the templates of ``self`` then ``other`` (same phase)."""
        if other.phase != self.phase:
            raise AnodemapInputError("cannot concatenate template libraries of different phases")
        m = max(self.max_spots, other.max_spots)

        def pad(a: np.ndarray, fill=0) -> np.ndarray:
            w = [(0, 0), (0, m - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
            return np.pad(a, w, constant_values=fill)

        cat = {
            k: np.concatenate([pad(getattr(self, k)), pad(getattr(other, k))])
            for k in ("spots", "intensities", "mask", "hkl", "r", "azimuth")
        }
        return replace(
            self,
            beam_directions=np.concatenate([self.beam_directions, other.beam_directions]),
            euler=np.concatenate([self.euler, other.euler]),
            metadata=dict(self.metadata),
            **cat,
        )

    def to_orix(self, phi1_deg: float = 0.0):
        """The template orientations as an ``orix.quaternion.Orientation`` (needs orix)."""
        try:
            from orix.quaternion import Orientation, symmetry
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_orix needs orix: pip install orix") from exc
        e = self.euler.copy()
        e[:, 0] += phi1_deg
        sym = getattr(symmetry, _ORIX_SYMMETRY.get(self.laue_group, "C1"))
        return Orientation.from_euler(np.radians(e), symmetry=sym)

    def __repr__(self) -> str:
        return (
            f"TemplateLibrary({self.phase!r}, {self.n_templates} templates × {self.max_spots} "
            f"spots, {self.beam_energy_kv:g} kV, precession {self.precession_angle_deg:g}°, "
            f"s ≤ {self.s_max:g} 1/Å, Laue group {self.laue_group})"
        )


# --------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------


def _weights(
    gs: np.ndarray,
    s2: np.ndarray,
    k: float,
    sigma: float,
    precession: float,
    shape: str,
    thickness_a: float | None,
    n_psi: int,
) -> np.ndarray:
    """Excitation-error weight of reflections with sample-frame vectors ``gs`` (E, 3)."""

    def w_of(sg: np.ndarray) -> np.ndarray:
        if shape == "gaussian":
            return np.exp(-((sg / sigma) ** 2))
        return np.sinc(thickness_a * sg) ** 2

    if precession <= 0:
        return w_of(-(gs[:, 2] + s2 / (2 * k)))
    psi = (np.arange(n_psi) + 0.5) * (2 * np.pi / n_psi)
    sp, cp = math.sin(precession), math.cos(precession)
    kg = sp * (np.outer(gs[:, 0], np.cos(psi)) + np.outer(gs[:, 1], np.sin(psi)))
    kg += cp * gs[:, 2:3]
    return w_of(-(kg + s2[:, None] / (2 * k))).mean(axis=1)


def _simulate(
    refl: ReflectionList,
    g_mats: np.ndarray,
    k: float,
    sigma: float,
    precession: float,
    shape: str,
    thickness_a: float | None,
    n_psi: int,
    max_spots: int,
    min_relative_intensity: float,
    chunk: int = 128,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spots, intensities and reflection indices of each orientation (padded, -1 = none)."""
    G = refl.g
    s2 = refl.s**2
    F2 = refl.intensity
    n = len(g_mats)
    idx_out = np.full((n, max_spots), -1, dtype=np.int64)
    int_out = np.zeros((n, max_spots))
    xy_out = np.zeros((n, max_spots, 2))
    # which reflections can be excited at all: |s_g| reachable within the weight cut-off
    if shape == "gaussian":
        reach = sigma * math.sqrt(math.log(1 / _MIN_WEIGHT))
    else:
        reach = 3.0 / thickness_a
    for start in range(0, n, chunk):
        gm = g_mats[start : start + chunk]
        gs = G @ gm  # sample-frame components g^T h as rows, (C, N, 3)
        dev = np.abs(gs[..., 2] + s2 / (2 * k))
        cand = dev <= reach + np.sqrt(s2) * math.sin(precession) + 1e-12
        ci, ri = np.nonzero(cand)
        w = _weights(gs[ci, ri], s2[ri], k, sigma, precession, shape, thickness_a, n_psi)
        inten = np.zeros(cand.shape)
        inten[ci, ri] = F2[ri] * np.where(w >= _MIN_WEIGHT, w, 0.0)
        m = min(max_spots, inten.shape[1])
        top = np.argpartition(-inten, m - 1, axis=1)[:, :m]
        vals = np.take_along_axis(inten, top, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        rowmax = vals[:, :1]
        ok = (vals > 0) & (vals >= min_relative_intensity * rowmax)
        rows = np.arange(len(gm))[:, None]
        xy = gs[rows, top, :2]
        sl = slice(start, start + len(gm))
        idx_out[sl, :m] = np.where(ok, top, -1)
        int_out[sl, :m] = np.where(ok, vals, 0.0)
        xy_out[sl, :m] = np.where(ok[..., None], xy, 0.0)
    return xy_out, int_out, idx_out


def generate_templates(
    phase: Crystal | str,
    beam_energy_kv: float = 300.0,
    calibration: float = 0.01,
    precession_angle_deg: float = 0.0,
    step_deg: float = 1.5,
    *,
    s_max: float | None = None,
    detector_shape: tuple[int, int] | None = None,
    excitation_error_width: float = DEFAULT_EXCITATION_ERROR_WIDTH,
    shape_function: str = "gaussian",
    thickness_nm: float | None = None,
    max_spots: int = 150,
    min_relative_intensity: float = 1e-4,
    n_precession: int = DEFAULT_N_PRECESSION,
    directions: np.ndarray | None = None,
    include_mirrored: bool = False,
) -> TemplateLibrary:
    """Kinematic template library of a phase over its orientation fundamental sector.

    Parameters
    ----------
    phase : Crystal or str
        A :class:`~anodemap.diffraction.crystal.Crystal`, a packaged phase name
        (``"Si"``, ``"Li15Si4"``) or a CIF path.
    beam_energy_kv : float
        Accelerating voltage (kV); the paper's SPED/SNBD: 300 kV (JEOL 3010).
    calibration : float
        Detector calibration in 1/Å per pixel (stored; with ``detector_shape`` it sets s_max).
    precession_angle_deg : float
        Precession semi-angle in degrees (paper: 0.4° for SPED, 0 for SNBD).
    step_deg : float
        Angular step of the beam-direction grid, degrees.
    s_max : float, optional
        Largest ``s = 1/d`` (1/Å). Default: the inscribed circle of ``detector_shape`` at
        ``calibration``, else 1.5 1/Å (model choice).
    detector_shape : (int, int), optional
        Pattern shape (ny, nx) in pixels.
    excitation_error_width : float
        σ (1/Å) of the "gaussian" excitation-error weight (default 0.01, model choice).
    shape_function : {"gaussian", "sinc2"}
        Excitation-error weight; "sinc2" needs ``thickness_nm``.
    thickness_nm : float, optional
        Specimen thickness for "sinc2".
    max_spots : int
        Strongest spots kept per template (the padded width).
    min_relative_intensity : float
        Spots weaker than this fraction of the template's strongest spot are dropped.
    n_precession : int
        Precession azimuths for the numerical integration.
    directions : ndarray, shape (n, 3), optional
        Beam directions (Cartesian crystal frame) to use instead of the fundamental-sector grid.
    include_mirrored : bool
        Append the mirrored templates (see :meth:`TemplateLibrary.mirrored`).

    Returns
    -------
    TemplateLibrary

    Examples
    --------
    >>> lib = generate_templates("Li15Si4", 300, 0.01, precession_angle_deg=0.4, step_deg=4.0)
    >>> lib.n_templates > 10, lib.spots.shape[2]
    (True, 2)
    """
    crystal = load_phase(phase)
    if not beam_energy_kv > 0:
        raise AnodemapInputError(f"beam_energy_kv must be positive, got {beam_energy_kv!r}")
    if not calibration > 0:
        raise AnodemapInputError(
            f"calibration must be positive (1/Å per pixel), got {calibration!r}"
        )
    if not 0 <= precession_angle_deg < 10:
        raise AnodemapInputError(
            f"precession_angle_deg must be in [0, 10) degrees, got {precession_angle_deg!r}"
        )
    if shape_function not in {"gaussian", "sinc2"}:
        raise AnodemapInputError(
            f"shape_function must be 'gaussian' or 'sinc2', got {shape_function!r}"
        )
    thickness_a = None
    if shape_function == "sinc2":
        if thickness_nm is None or not thickness_nm > 0:
            raise AnodemapInputError("shape_function='sinc2' needs a positive thickness_nm")
        thickness_a = 10.0 * float(thickness_nm)
    if not excitation_error_width > 0:
        raise AnodemapInputError(
            f"excitation_error_width must be positive (1/Å), got {excitation_error_width!r}"
        )
    if max_spots < 1:
        raise AnodemapInputError(f"max_spots must be at least 1, got {max_spots!r}")
    if s_max is None:
        if detector_shape is not None:
            s_max = calibration * (min(detector_shape) / 2.0)
        else:
            s_max = DEFAULT_S_MAX
    wavelength = electron_wavelength(beam_energy_kv)
    k = 1.0 / wavelength
    refl = crystal.reflections(s_max, beam_energy_kv=beam_energy_kv)
    if directions is None:
        dirs = beam_directions(crystal, step_deg)
    else:
        dirs = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
        dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    euler = _euler_for_beam(dirs)
    g_mats = orientation_matrix(euler)
    xy, inten, idx = _simulate(
        refl,
        g_mats,
        k,
        float(excitation_error_width),
        math.radians(precession_angle_deg),
        shape_function,
        thickness_a,
        int(n_precession),
        int(max_spots),
        float(min_relative_intensity),
    )
    mask = idx >= 0
    width = max(1, int(mask.sum(axis=1).max())) if len(mask) else 1
    xy, inten, idx, mask = xy[:, :width], inten[:, :width], idx[:, :width], mask[:, :width]
    hkl = np.where(mask[..., None], refl.hkl[np.where(mask, idx, 0)], 0).astype(np.int16)
    r = np.hypot(xy[..., 0], xy[..., 1])
    az = np.where(mask, np.arctan2(xy[..., 1], xy[..., 0]), 0.0)
    lib = TemplateLibrary(
        phase=crystal.name,
        beam_energy_kv=float(beam_energy_kv),
        wavelength=wavelength,
        calibration=float(calibration),
        precession_angle_deg=float(precession_angle_deg),
        excitation_error_width=float(excitation_error_width),
        s_max=float(s_max),
        laue_group=crystal.laue_group,
        beam_directions=dirs,
        euler=euler,
        spots=xy.astype(np.float32),
        intensities=inten.astype(np.float32),
        mask=mask,
        hkl=hkl,
        r=r.astype(np.float32),
        azimuth=az.astype(np.float32),
        metadata={
            "step_deg": float(step_deg),
            "shape_function": shape_function,
            "thickness_nm": thickness_nm,
            "n_precession": int(n_precession),
            "n_reflections": len(refl),
            "structure_source": crystal.source,
        },
    )
    if include_mirrored:
        lib = lib.concatenate(lib.mirrored())
    return lib


def zone_axis_template(
    phase: Crystal | str,
    uvw: tuple[float, float, float],
    beam_energy_kv: float = 300.0,
    calibration: float = 0.01,
    precession_angle_deg: float = 0.0,
    **kwargs,
) -> TemplateLibrary:
    """A one-template library for the zone axis [uvw] (direct-lattice direction indices).

    Examples
    --------
    >>> lib = zone_axis_template("Si", (0, 0, 1), s_max=0.6)
    >>> sorted({tuple(abs(int(v)) for v in h) for h in lib.hkl[0][lib.mask[0]]})
    [(2, 2, 0)]
    """
    crystal = load_phase(phase)
    d = np.asarray(uvw, dtype=np.float64) @ crystal.lattice_matrix
    return generate_templates(
        crystal,
        beam_energy_kv,
        calibration,
        precession_angle_deg,
        directions=d[None, :],
        **kwargs,
    )
