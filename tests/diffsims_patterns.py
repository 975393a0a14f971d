"""SPED patterns from an independent forward model: diffsims kinematics, orix orientations.

Nothing here comes from :mod:`anodemap.synth` or :mod:`anodemap.diffraction.templates`:
the spots are diffsims' (``SimulationGenerator.calculate_diffraction2d``: its own reciprocal
lattice, Lobato scattering factors, Ewald sphere, Lorentzian excitation-error shape factor,
precession by the Lorentzian approximation of Palatinus et al., Acta Cryst. B75 (2019)
512), the structures are our CIFs read by diffpy.structure, the orientations are orix
``Rotation`` objects. Only the detector (pixel grid, Gaussian spots, direct beam, diffuse
rings and background, Poisson noise) is drawn here.

Frames (each statement is checked in ``tests/diffraction/test_orientation_independent.py``)
---------------------------------------------------------------------------------
* orix and anodemap agree on Bunge Euler angles: ``Rotation.from_euler(radians(e))`` has
  the matrix of :func:`anodemap.diffraction.templates.orientation_matrix`, the passive
  rotation **sample → crystal** (``v_crystal = g @ v_sample``).
* anodemap's sample frame: ``X`` along the detector columns (kx), ``Y`` along the rows (ky),
  the beam travelling along ``+Z``.
* diffsims turns the reciprocal lattice into its lab frame as ``~R * h``
  (``v_lab = R^T v_crystal``) and excites the reflections near an Ewald sphere centred at
  ``(0, 0, +1/λ)``: they lie at ``z_lab ≈ +|g|²/(2K)``, so its beam travels along
  **−z_lab** (``k_out = k_in + g`` with ``|k_out| = |k_in|``).
* Hence the two frames are related by the 180° turn about x, ``(X, Y, Z) = (x, −y, −z)``:
  a grain of anodemap orientation ``g`` (the truth written out) is simulated with the
  diffsims rotation ``R = g · diag(1, −1, −1)`` and its spot ``(x, y)`` is drawn at
  ``(kx, ky) = (cx + x/scale, cy − y/scale)``.
* Drawing diffsims' ``(x, y)`` straight onto ``(kx, ky)`` with ``R = g`` instead draws the
  pattern of ``g · diag(−1, −1, 1)``, the grain turned by 180° about the beam: the excited
  spots lie on the other side of the Laue circle. Zone-axis patterns of 2-fold axes
  ([001], [011]) hide this; other axes and random orientations come out 20–60° off. That is
  what issue 14 (item 6) measured.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

STRUCTURES = Path(__file__).resolve().parents[1] / "src" / "anodemap" / "data" / "structures"

#: Debye-Waller B (Å²) per element, per phase: the values of our CIFs (diffsims takes them
#: per element, and its default is 0)
DEBYE_WALLER = {"Si": {"Si": 0.4632}, "Li15Si4": {"Li": 2.0, "Si": 0.8}}
#: space group numbers of the packaged phases
SPACE_GROUP = {"Si": 227, "Li15Si4": 220}

#: the detector of ``anodemap simulate diffraction`` at 64 × 64 (s = 1.4 1/Å at the edges)
SHAPE = (64, 64)
SCALE = 1.4 / 32  # 1/Å per pixel
#: diffsims' default cut-off and relrod width (1/Å), as pyxem's template libraries use it
MAX_EXCITATION_ERROR = 0.01

#: the 180° turn about x from anodemap's sample frame to diffsims' lab frame
FLIP_X = np.diag([1.0, -1.0, -1.0])


@cache
def diffsims_phase(name: str):
    """An orix ``Phase`` holding our CIF read by diffpy.structure (all atoms of the cell)."""
    from diffpy.structure import loadStructure
    from orix.crystal_map import Phase

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = loadStructure(str(STRUCTURES / f"{name}.cif"))
    return Phase(name=name, space_group=SPACE_GROUP[name], structure=structure)


def euler_for_axis(axis_crystal, tilt_deg: float, tilt_azimuth_deg: float, phi1_deg: float):
    """Bunge Euler angles (deg) of a grain whose beam direction is ``axis_crystal`` tilted.

    The beam direction (crystal frame) is the unit vector of ``axis_crystal`` turned by
    ``tilt_deg`` towards the azimuth ``tilt_azimuth_deg`` around it; ``phi1_deg`` is the
    in-plane angle. Checked with orix: ``Rotation * z`` is that direction.
    """
    from orix.quaternion import Rotation
    from orix.vector import Vector3d

    a = np.asarray(axis_crystal, dtype=float)
    a /= np.linalg.norm(a)
    ref = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(a, ref)
    u /= np.linalg.norm(u)
    v = np.cross(a, u)
    t, p = math.radians(tilt_deg), math.radians(tilt_azimuth_deg)
    d = math.cos(t) * a + math.sin(t) * (math.cos(p) * u + math.sin(p) * v)
    big = math.degrees(math.acos(float(np.clip(d[2], -1.0, 1.0))))
    phi2 = math.degrees(math.atan2(d[0], d[1])) % 360.0
    euler = np.array([phi1_deg % 360.0, big, phi2])
    beam = (Rotation.from_euler(np.radians(euler)) * Vector3d.zvector()).data[0]
    if not np.allclose(beam, d, atol=1e-9):
        raise AssertionError(f"beam direction {beam} != {d}")
    return euler


def random_euler(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` orientations uniform in SO(3) (normalised Gaussian quaternions), Bunge degrees."""
    from orix.quaternion import Rotation

    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.degrees(Rotation(q).to_euler()) % 360.0


@dataclass
class Spots:
    """Kinematic spots of one grain: positions, diffsims intensities, indices."""

    xy: np.ndarray  # (n, 2) in 1/Å: (s_x, s_y) on the detector, s_x along kx, s_y along ky
    intensity: np.ndarray  # (n,)
    hkl: np.ndarray  # (n, 3)
    z: np.ndarray  # (n,) diffsims' lab z of each reflection, 1/Å


def diffsims_spots(
    phase: str,
    rotation_matrices: np.ndarray,
    *,
    precession_deg: float,
    beam_energy_kev: float = 300.0,
    s_max: float = 1.05 * 1.4 * math.sqrt(2.0),
    max_excitation_error: float = MAX_EXCITATION_ERROR,
) -> list[Spots]:
    """diffsims' spots for diffsims rotations (matrices, orix convention), in its lab frame.

    ``xy`` are diffsims' own lab ``(x, y)``: see :func:`grain_spots` for the detector.
    """
    from diffsims.generators.simulation_generator import SimulationGenerator
    from orix.quaternion import Rotation

    mats = np.asarray(rotation_matrices, dtype=float).reshape(-1, 3, 3)
    gen = SimulationGenerator(
        accelerating_voltage=beam_energy_kev,
        precession_angle=precession_deg,
        approximate_precession=True,
    )
    sim = gen.calculate_diffraction2d(
        diffsims_phase(phase),
        rotation=Rotation.from_matrix(mats),
        reciprocal_radius=s_max,
        with_direct_beam=False,
        max_excitation_error=max_excitation_error,
        debye_waller_factors=DEBYE_WALLER[phase],
    )
    coords = [sim.coordinates] if len(mats) == 1 else list(sim.coordinates)
    out = []
    for vec in coords:
        xyz = np.asarray(vec.data, dtype=float)
        inten = np.asarray(vec.intensity, dtype=float)
        keep = inten > 1e-6 * inten.max()
        out.append(
            Spots(
                xy=xyz[keep, :2].copy(),
                intensity=inten[keep],
                hkl=np.rint(np.asarray(vec.hkl)[keep]).astype(int),
                z=xyz[keep, 2].copy(),
            )
        )
    return out


def grain_spots(phase: str, euler_deg, *, precession_deg: float, **kwargs) -> list[Spots]:
    """Detector spots of grains of anodemap orientations ``euler_deg`` (n, 3), diffsims' model.

    Simulated with the diffsims rotation ``g · diag(1, −1, −1)`` and drawn at
    ``(s_x, s_y) = (x, −y)`` (module docstring).
    """
    from orix.quaternion import Rotation

    e = np.radians(np.asarray(euler_deg, dtype=float).reshape(-1, 3))
    g = Rotation.from_euler(e).to_matrix().reshape(-1, 3, 3)
    spots = diffsims_spots(phase, g @ FLIP_X, precession_deg=precession_deg, **kwargs)
    for s in spots:
        s.xy[:, 1] *= -1.0
    return spots


def render(
    spots: Spots | None,
    rng: np.random.Generator,
    *,
    shape=SHAPE,
    scale: float = SCALE,
    dose: float = 1.0e5,
    bragg_share: float = 0.15,
    amorphous_share: float = 0.05,
    spot_sigma_px: float = 1.0,
    centre_jitter_px: float = 0.5,
) -> np.ndarray:
    """One pattern: direct beam, Gaussian spots, diffuse rings and background, Poisson noise.

    Shares of the ``dose`` (electrons per pattern; model choices): ``bragg_share`` in the
    spots (split by their diffsims intensities, also those falling off the detector),
    ``amorphous_share`` in two diffuse rings at s = 0.32 and 0.55 1/Å (about the first two
    maxima of amorphous Si), 5 % in a broad background ``1/(1 + (s/0.1)²)^{3/2}``, the rest
    in the direct beam (a Gaussian of σ = 1 px), whose centre moves by up to
    ``centre_jitter_px``.
    """
    ky, kx = shape
    cy = (ky - 1) / 2 + rng.uniform(-centre_jitter_px, centre_jitter_px)
    cx = (kx - 1) / 2 + rng.uniform(-centre_jitter_px, centre_jitter_px)
    yy, xx = np.mgrid[:ky, :kx].astype(float)
    s = np.hypot(yy - cy, xx - cx) * scale
    img = np.zeros(shape)

    def add(part: np.ndarray, share: float) -> None:
        img[...] += dose * share * part / part.sum()

    add(1.0 / (1.0 + (s / 0.1) ** 2) ** 1.5, 0.05)
    rings = np.exp(-0.5 * ((s - 0.32) / 0.05) ** 2) + 0.5 * np.exp(-0.5 * ((s - 0.55) / 0.06) ** 2)
    add(rings, amorphous_share)
    rest = 1.0 - 0.05 - amorphous_share
    if spots is not None and len(spots.intensity):
        py = cy + spots.xy[:, 1] / scale
        px = cx + spots.xy[:, 0] / scale
        w = spots.intensity / spots.intensity.sum()
        norm = dose * bragg_share / (2 * np.pi * spot_sigma_px**2)
        for y0, x0, a in zip(py, px, w, strict=True):
            i0, i1 = max(0, int(y0) - 4), min(ky, int(y0) + 6)
            j0, j1 = max(0, int(x0) - 4), min(kx, int(x0) + 6)
            if i0 >= i1 or j0 >= j1:
                continue
            d2 = (yy[i0:i1, j0:j1] - y0) ** 2 + (xx[i0:i1, j0:j1] - x0) ** 2
            img[i0:i1, j0:j1] += norm * a * np.exp(-0.5 * d2 / spot_sigma_px**2)
        rest -= bragg_share
    add(np.exp(-0.5 * ((yy - cy) ** 2 + (xx - cx) ** 2)), rest)
    return rng.poisson(img).astype(np.float32)


@dataclass
class Grain:
    phase: str
    euler: np.ndarray
    kind: str  # "zone" or "random"
    axis: tuple | None = None
    tilt_deg: float = 0.0


#: low-index zone axes of the grains near zone axes
ZONE_AXES = {
    "Si": [(0, 0, 1), (0, 1, 1), (1, 1, 1)],
    "Li15Si4": [(0, 0, 1), (0, 1, 1), (1, 1, 1), (0, 1, 2), (1, 1, 2), (1, 1, 3)],
}


def grains_near_zone_axes_and_random(
    rng: np.random.Generator,
    tilts_deg=(0.5, 1.5, 2.5),
    n_random: int = 8,
    axes: dict | None = None,
) -> list[Grain]:
    """Of each phase: a grain per zone axis and tilt (tilted towards a random azimuth, random
    in-plane angle), and ``n_random`` grains of uniformly random orientation."""
    grains: list[Grain] = []
    for phase, ax_list in (axes or ZONE_AXES).items():
        for ax in ax_list:
            for tilt in tilts_deg:
                e = euler_for_axis(ax, tilt, rng.uniform(0, 360), rng.uniform(0, 360))
                grains.append(Grain(phase, e, "zone", ax, float(tilt)))
        for e in random_euler(rng, n_random):
            grains.append(Grain(phase, e, "random"))
    return grains


@dataclass
class Scan:
    """A scan of diffsims grains and amorphous pixels, with its truth."""

    patterns: np.ndarray  # (ny, nx, ky, kx) float32 counts
    scale: float
    beam_energy_kev: float
    precession_deg: float
    grain_id: np.ndarray  # (ny, nx) index into grains, -1 amorphous
    grains: list[Grain] = field(default_factory=list)

    def _per_pixel(self, values: list, empty) -> np.ndarray:
        table = np.array(values + [empty], dtype=object if isinstance(empty, str) else float)
        return table[np.where(self.grain_id < 0, len(self.grains), self.grain_id)]

    @property
    def phase(self) -> np.ndarray:
        """Truth phase name per pixel ('' amorphous)."""
        return self._per_pixel([g.phase for g in self.grains], "")

    @property
    def euler(self) -> np.ndarray:
        """Truth Bunge Euler angles (deg) per pixel (NaN amorphous)."""
        return self._per_pixel([list(g.euler) for g in self.grains], [np.nan] * 3)

    @property
    def kind(self) -> np.ndarray:
        """'zone', 'random' or '' (amorphous) per pixel."""
        return self._per_pixel([g.kind for g in self.grains], "")

    def dataset(self):
        """An anodemap Dataset: calibrated axes (1/Å), beam energy and precession angle."""
        from anodemap.io import Axis, Dataset

        ny, nx, ky, kx = self.patterns.shape
        s = self.scale
        axes = [
            Axis("y", ny, 1.0, 0.0, "nm", navigate=True),
            Axis("x", nx, 1.0, 0.0, "nm", navigate=True),
            Axis("ky", ky, s, -s * (ky - 1) / 2, "1/Å", navigate=False),
            Axis("kx", kx, s, -s * (kx - 1) / 2, "1/Å", navigate=False),
        ]
        ds = Dataset(self.patterns, axes)
        ds.set_meta("General.title", "diffsims SPED")
        ds.set_meta("Signal.signal_type", "electron_diffraction")
        ds.set_meta("Acquisition_instrument.TEM.beam_energy", float(self.beam_energy_kev))
        ds.set_meta("Acquisition_instrument.TEM.precession_angle", float(self.precession_deg))
        return ds


def make_scan(
    grains: list[Grain],
    *,
    precession_deg: float,
    seed: int = 0,
    pixels_per_grain: int = 2,
    amorphous_pixels: int | None = None,
    beam_energy_kev: float = 300.0,
) -> Scan:
    """A scan: each grain's pixels in a row (same spots, own spot strength 0.7–1.3 × and own
    noise), then amorphous pixels (as many as crystalline ones by default: the amorphous
    criterion compares the scan's patterns with each other)."""
    rng = np.random.default_rng(seed)
    spots: list[Spots | None] = [None] * len(grains)
    for phase in sorted({g.phase for g in grains}):
        idx = [i for i, g in enumerate(grains) if g.phase == phase]
        sims = grain_spots(
            phase,
            np.array([grains[i].euler for i in idx]),
            precession_deg=precession_deg,
            beam_energy_kev=beam_energy_kev,
        )
        for i, s in zip(idx, sims, strict=True):
            spots[i] = s
    n_cryst = len(grains) * pixels_per_grain
    n_am = n_cryst if amorphous_pixels is None else amorphous_pixels
    ids = np.concatenate([np.repeat(np.arange(len(grains)), pixels_per_grain), -np.ones(n_am, int)])
    nx = 8
    ny = math.ceil(len(ids) / nx)
    ids = np.concatenate([ids, -np.ones(ny * nx - len(ids), int)]).reshape(ny, nx)
    patterns = np.empty((ny, nx) + SHAPE, np.float32)
    for iy in range(ny):
        for ix in range(nx):
            gid = ids[iy, ix]
            if gid < 0:
                patterns[iy, ix] = render(None, rng, amorphous_share=0.2)
            else:
                strength = 0.15 * rng.uniform(0.7, 1.3)
                patterns[iy, ix] = render(spots[gid], rng, bragg_share=strength)
    return Scan(patterns, SCALE, beam_energy_kev, precession_deg, ids, grains)
