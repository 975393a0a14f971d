"""Scanning (precession) electron diffraction of the simulated electrode, with ground truth.

For every scan pixel of a :class:`~anodemap.synth.phantom.Phantom` the model builds the
expected pattern on a ``(ky, kx)`` detector calibrated in ``s = 1/d`` (1/Å) and then draws
counting noise. It stands for the paper's SPED/SNBD data (Ahmed et al., Methods: JEOL 3010
at 300 kV, NanoMegas P2010, 0.4° precession; beam about 4 nm without and 8 nm with
precession) and is the ground truth for :mod:`anodemap.diffraction`.

Physics (every number is a parameter, carries a source, or is labelled a model choice)
--------------------------------------------------------------------------------------
* **Crystals** (phantom label 1, c-Si; label 3, dendrite-like Li15Si4 + amorphous Li_xSi):
  kinematic spots of the grain's orientation (``Phantom.grain_euler_deg``, Bunge, orix
  convention) from :func:`anodemap.diffraction.templates.generate_templates`, i.e. the
  structure factors of the packaged CIFs with Peng et al. (1996) electron scattering factors
  and the excitation-error weight ``w`` averaged over the precession circle. The intensity
  of reflection g, as a probability per incident electron, is the kinematic integrated
  intensity ``(λ F_g / V_c)² t`` (Hirsch et al., *Electron Microscopy of Thin Crystals*,
  kinematical theory: rocking-curve integral of ``sin²(π t s)/(π s)²`` is ``t``) spread over
  the Gaussian rocking curve of width σ (the template's ``excitation_error_width``)::

      P_g = λ² t_c |F_g|² ⟨w⟩ / (V_c² σ √π)

  with ``t_c`` the crystalline share of the column thickness.
* **Amorphous material** (labels 2, 4, 5 and 6, the amorphous share of label 3): diffuse rings
  from explicit atomic models (see :func:`amorphous_model`), through the Debye scattering
  equation with the same electron scattering factors::

      dP/d²s = t_a ρ λ² I(s),   I(s) = (1/N) Σ_i Σ_j f_i f_j sin(2π s r_ij)/(2π s r_ij)

  per atom, so ring positions follow from the structure (a-Si: a continuous random network,
  :mod:`anodemap.synth.crn`; Li_xSi and the oxide: relaxed random packings with minimum
  distances).
* **Plural elastic scattering**, crudely (model choice): with ``P`` the sum of the kinematic
  probabilities above, the unscattered (direct-beam) fraction is ``exp(-P)`` and the
  scattered parts are scaled by ``(1 - exp(-P)) / P`` (Poisson statistics of independent
  scattering events); it keeps patterns of thick, strongly diffracting columns finite.
* **Inelastic / thermal diffuse background** (model choice): a fraction
  ``background · t/λ`` (at most 0.5) of the electrons is spread as
  ``1 / (1 + (s/s_b)²)^{3/2}`` with s_b = 0.1 1/Å around the beam.
* **Probe**: every spot and the direct beam is the convergent-beam disk of semi-angle α,
  radius ``α/λ`` in s, convolved with a Gaussian point-spread of ``psf_sigma_px`` (model
  choice: camera PSF plus residual precession blur). By default α is that of a
  diffraction-limited 4 nm probe, ``α = 1.22 λ / d`` (Airy disk diameter; paper: about 4 nm
  without precession).
* **Descan**: the whole pattern (beam, spots, rings) moves with a smooth drift of the beam
  across the scan (model choice: a random linear ramp plus a gentle bow, at most about
  ``descan_px`` pixels), returned as the truth ``center`` map.
* **Noise**: Poisson counting of ``dose`` electrons per pattern plus Gaussian read noise.

Truth and labels
----------------
``truth["phase"]`` uses the labels of ``anodemap diffraction``'s output,
``{0: "amorphous", 1: "Si", 2: "Li15Si4"}`` (:data:`PHASE_LABELS`); pores (only the direct
beam and the background reach the detector) are ``-1`` (:data:`PORE_LABEL`) and flagged in
``truth["pore"]``. Dendrite-like pixels are labelled Li15Si4 (spots on rings are crystalline
Li15Si4 with an amorphous share, as the issue asks).

Geometry: spot ``(s_x, s_y)`` of the templates lands at detector pixel
``(ky, kx) = (cy + s_y / scale, cx + s_x / scale)``, the convention of
:mod:`anodemap.diffraction.matching`; the in-plane angle of a pixel is the φ1 of its grain.

Examples
--------
>>> from anodemap.synth import make_phantom
>>> from anodemap.synth.diffraction import simulate_diffraction
>>> sim = simulate_diffraction(make_phantom((8, 8), seed=1), pattern_shape=(32, 32), seed=0)
>>> sim.patterns.shape, sim.patterns.dtype.name
((8, 8, 32, 32), 'float32')
>>> sorted(sim.truth["phase_labels"].items())
[(-1, 'pore'), (0, 'amorphous'), (1, 'Si'), (2, 'Li15Si4')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numba
import numpy as np
from scipy.spatial import cKDTree
from scipy.special import i0e

from anodemap.diffraction.calibration import electron_wavelength
from anodemap.diffraction.crystal import electron_scattering_factor, load_phase, lorentz_gamma
from anodemap.diffraction.templates import generate_templates, orientation_matrix
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset

from .phantom import Label, Phantom

__all__ = [
    "OXIDE_MODELS",
    "PHASE_LABELS",
    "PORE_LABEL",
    "AmorphousModel",
    "SimulatedDiffraction",
    "amorphous_model",
    "simulate_diffraction",
    "to_dataset",
]

#: Phase labels of the truth map, as in ``anodemap diffraction``'s ``summary.json``.
PHASE_LABELS: dict[int, str] = {0: "amorphous", 1: "Si", 2: "Li15Si4"}
#: Label of pore pixels in the truth phase map (no material: direct beam only).
PORE_LABEL = -1

# --------------------------------------------------------------------------------------
# Model numbers
# --------------------------------------------------------------------------------------
#: Default largest s (1/Å) at the edge of the inscribed detector circle (model choice:
#: covers the Si 220/311/400 and the first three a-Si rings, as SPED set-ups do).
DEFAULT_S_MAX = 1.4
#: Diameter of the nano-beam probe in nm that sets the convergence angle. Source: the paper's
#: Methods, "a beam diameter of approximately 4 nm was achieved without electron beam
#: precession"; α = 1.22 λ / d assumes a diffraction-limited probe (model choice).
_PROBE_DIAMETER_NM = 4.0
#: Inelastic mean free path used to turn the phantom's t/λ into a thickness (model choice,
#: of the order of the values for Si at 300 kV; it only sets absolute intensities).
_INELASTIC_MFP_NM = 150.0
#: Width of the inelastic/thermal diffuse background, 1/Å (model choice).
_BACKGROUND_WIDTH = 0.1
#: Most of the electrons that the background may take (model choice).
_BACKGROUND_MAX = 0.5
#: Radial step (px) of the per-pattern diffuse profile tables (model choice: 1/4 px).
_PROFILE_STEP_PX = 0.25
#: Compositions x (Li per Si) at which amorphous Li_xSi models are built; pixels interpolate
#: linearly in x between them (model choice).
_X_GRID = (0.0, 1.0, 2.0, 3.0, 3.75, 4.5)
#: Li15Si4 composition (Li per Si), from its formula.
X_LI15SI4 = 15.0 / 4.0
#: Density deficit of a-Si relative to c-Si: 1.8 % (J. S. Custer et al., Appl. Phys. Lett.
#: 64 (1994) 437, "Density of amorphous Si").
ASI_DENSITY_DEFICIT = 0.018
#: Oxide-rich boundary material: a lithium silicate of composition Li2SiO3 (model choice:
#: a Li2O-SiO2 mixture, paper: "Li2O and lithium-silicates") at 0.1004 atoms/Å³ (model
#: choice: 2.5 g/cm³, Li2SiO3 molar mass 89.96 g/mol, 6 atoms per formula unit).
OXIDE_COUNTS = {"Li": 2, "Si": 1, "O": 3}
OXIDE_DENSITY = 2.5 / 89.96 * 6 * 0.602214076  # atoms per Å³ (N_A = 6.02214076e23, exact)
#: The SiO_x surface layer of pristine Si (paper: "a thin SiO_x coating"), modelled as SiO2
#: (model choice: x = 2) at 2.2 g/cm³ (model choice: the commonly quoted density of vitreous
#: silica), molar mass 60.08 g/mol, 3 atoms per formula unit; distances from ``_OXIDE_DMIN``.
_SIO2_COUNTS = {"Si": 1, "O": 2}
_SIO2_DENSITY = 2.2 / 60.08 * 3 * 0.602214076  # atoms per Å³
#: Oxide materials that :func:`simulate_diffraction` can put in the oxide share.
OXIDE_MODELS = ("Li2SiO3", "SiO2")
#: Minimum interatomic distances (Å) of the random-packing models. Si-Si: the Si-Si bond of
#: the packaged c-Si structure (computed); Li-Si and Li-Li: the nearest distances in the
#: packaged Li15Si4 structure (computed); Si-O 1.62 Å: a-SiO2 (R. L. Mozzi and B. E. Warren,
#: J. Appl. Cryst. 2 (1969) 164); O-O: tetrahedral edge 1.62 √(8/3) (computed); Li-O 1.99,
#: Si-Si in the oxide 3.0, Li-Si in the oxide 2.6, Li-Li in the oxide 2.4: model choices.
_OXIDE_DMIN = {
    ("Si", "O"): 1.62,
    ("O", "O"): 1.62 * math.sqrt(8.0 / 3.0),
    ("Li", "O"): 1.99,
    ("Si", "Si"): 3.0,
    ("Li", "Si"): 2.6,
    ("Li", "Li"): 2.4,
}
#: Hard-core diameters are this fraction of the reference distances (model choice: keeps the
#: packing fraction of the relaxed random packings below jamming, so that they converge).
_PACKING_FACTOR = 0.92
#: Patterns per chunk when drawing the noise (memory bound; fixed so that a seed always
#: gives the same patterns).
_NOISE_CHUNK = 256


# --------------------------------------------------------------------------------------
# Amorphous structure models
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AmorphousModel:
    """An explicit periodic atomic model of an amorphous phase and its scattering.

    Attributes
    ----------
    name : str
        E.g. ``"a-Si"``, ``"a-Li2.00Si"``, ``"oxide Li2SiO3"``, ``"oxide SiO2"``.
    elements : tuple of str
        Element of each species index.
    types : ndarray of int, shape (n,)
        Species index of each atom.
    positions : ndarray, shape (n, 3)
        Cartesian positions in Å inside the periodic cube ``[0, box)³``.
    box : float
        Edge of the periodic cube, Å.
    density : float
        Number density, atoms per Å³.
    r : ndarray
        Centres of the pair-distance bins, Å (up to half the box).
    pair_histograms : dict of (int, int) to ndarray
        Ordered pair counts per bin and species pair, divided by the number of atoms.
    """

    name: str
    elements: tuple[str, ...]
    types: np.ndarray
    positions: np.ndarray
    box: float
    density: float
    r: np.ndarray
    pair_histograms: dict[tuple[int, int], np.ndarray] = field(repr=False)

    @property
    def concentrations(self) -> np.ndarray:
        """Atom fraction of each species."""
        return np.bincount(self.types, minlength=len(self.elements)) / len(self.types)

    def pdf(self) -> tuple[np.ndarray, np.ndarray]:
        """Total pair distribution function g(r) of the model (all pairs, unweighted).

        Returns
        -------
        r, g : ndarray
            Bin centres (Å) and g(r), which tends to 1 at large r.
        """
        h = sum(self.pair_histograms.values())
        dr = self.r[1] - self.r[0]
        return self.r, h / (self.density * 4.0 * np.pi * self.r**2 * dr)

    def intensity(self, s: np.ndarray, beam_energy_kev: float | None = None) -> np.ndarray:
        """Elastic electron intensity per atom, I(s) in Å² (Debye scattering equation).

        ``I(s) = Σ_a c_a f_a² + Σ_ab f_a f_b [ (1/N) Σ_{i∈a, j∈b, i≠j} sinc(2π s r_ij) W(r_ij)
        − c_a c_b ρ ∫ 4π r² sinc(2π s r) W(r) dr ]``: the pair sum runs over the periodic
        model up to half its box, the uniform-density term (integral up to the same r_max)
        removes the box's own small-angle scattering, and ``W(r) = sinc(π r / r_max)`` (Lorch
        window) suppresses truncation ripples (model choices of the standard finite-model
        calculation). ``f`` are Peng et al. (1996) electron scattering factors, times the
        relativistic γ when a beam energy is given. Below ``s = 1 / r_max`` the finite model
        carries no information; the result is clipped at zero.

        Parameters
        ----------
        s : array_like
            s = 1/d in 1/Å.
        beam_energy_kev : float, optional
            Beam energy for the relativistic factor γ (default: rest-mass amplitudes).

        Returns
        -------
        ndarray
            I(s) per atom in Å².

        Examples
        --------
        >>> m = amorphous_model(0.0)
        >>> s = np.linspace(0.1, 1.2, 221)
        >>> bool(0.28 < s[np.argmax(m.intensity(s))] < 0.33)   # first a-Si ring
        True
        """
        s = np.asarray(s, dtype=np.float64)
        gam = lorentz_gamma(beam_energy_kev) if beam_energy_kev is not None else 1.0
        f = [gam * electron_scattering_factor(el, s) for el in self.elements]
        c = self.concentrations
        r = self.r
        dr = r[1] - r[0]
        rmax = r[-1] + 0.5 * dr
        window = np.sinc(r / rmax)
        kernel = np.sinc(2.0 * s.reshape(-1, 1) * r.reshape(1, -1))  # sin(2πsr)/(2πsr)
        uniform = kernel @ (4.0 * np.pi * r**2 * dr * window) * self.density
        out = sum(c[a] * f[a] ** 2 for a in range(len(self.elements)))
        for (a, b), h in self.pair_histograms.items():
            out = out + f[a] * f[b] * (kernel @ (h * window) - c[a] * c[b] * uniform)
        return np.maximum(out.reshape(s.shape), 0.0)


def _min_image(v: np.ndarray, box: float) -> np.ndarray:
    return v - box * np.round(v / box)


def _random_packing(
    counts: dict[str, int], density: float, dmin: dict[tuple[str, str], float], seed: int
) -> tuple:
    """Random positions relaxed until no pair is closer than its hard-core diameter."""
    rng = np.random.default_rng(seed)
    elements = tuple(counts)
    types = np.repeat(np.arange(len(elements)), [counts[e] for e in elements])
    rng.shuffle(types)
    n = types.size
    box = (n / density) ** (1.0 / 3.0)
    pos = rng.uniform(0.0, box, (n, 3))
    table = np.zeros((len(elements), len(elements)))
    for a, ea in enumerate(elements):
        for b, eb in enumerate(elements):
            table[a, b] = _PACKING_FACTOR * dmin.get((ea, eb), dmin.get((eb, ea), 0.0))
    rcut = float(table.max())
    for _ in range(400):  # model choice: iteration cap (converges in < 200 for our models)
        pairs = cKDTree(pos, boxsize=box).query_pairs(rcut, output_type="ndarray")
        if not len(pairs):
            break
        v = _min_image(pos[pairs[:, 1]] - pos[pairs[:, 0]], box)
        dist = np.linalg.norm(v, axis=1)
        overlap = table[types[pairs[:, 0]], types[pairs[:, 1]]] - dist
        m = overlap > 0
        if not m.any() or overlap.max() < 0.005:  # model choice: 0.005 Å tolerance
            break
        step = (0.5 * overlap[m] / np.maximum(dist[m], 1e-6))[:, None] * v[m]
        disp = np.zeros_like(pos)
        np.add.at(disp, pairs[m, 1], step)
        np.add.at(disp, pairs[m, 0], -step)
        pos = (pos + disp) % box
    return pos, types, box, elements


def _histograms(pos: np.ndarray, types: np.ndarray, box: float, n_species: int, dr: float):
    rmax = 0.5 * box
    pairs = cKDTree(pos, boxsize=box).query_pairs(rmax, output_type="ndarray")
    dist = np.linalg.norm(_min_image(pos[pairs[:, 1]] - pos[pairs[:, 0]], box), axis=1)
    edges = np.arange(0.0, rmax + 0.5 * dr, dr)
    r = 0.5 * (edges[1:] + edges[:-1])
    n = len(pos)
    hist: dict[tuple[int, int], np.ndarray] = {}
    ta, tb = types[pairs[:, 0]], types[pairs[:, 1]]
    for a in range(n_species):
        for b in range(n_species):
            # ordered pairs (i in a, j in b): every unordered pair counts once for (a, b)
            # and once for (b, a)
            m = ((ta == a) & (tb == b)) | ((ta == b) & (tb == a))
            h = np.histogram(dist[m], edges)[0].astype(np.float64)
            hist[(a, b)] = h / n if a != b else 2.0 * h / n
    return r, hist


def _silicide_density(x: float) -> float:
    """Number density (atoms/Å³) of amorphous Li_xSi (model choice, see below).

    Volume per Si interpolated linearly in x between a-Si (c-Si volume per atom of the
    packaged structure, 1.8 % larger: Custer et al. 1994) and crystalline Li15Si4 (packaged
    structure), extrapolated beyond x = 3.75 (Vegard-like behaviour: model choice).
    """
    si = load_phase("Si")
    li = load_phase("Li15Si4")
    v_si = si.volume / 8.0 / (1.0 - ASI_DENSITY_DEFICIT)
    v_li = li.volume / 16.0
    return (1.0 + x) / (v_si + (v_li - v_si) * x / X_LI15SI4)


@lru_cache(maxsize=32)
def _cached_model(key: str, n_atoms: int, seed: int, dr: float) -> AmorphousModel:
    """The model, from the cache folder of :mod:`anodemap.diffraction._cache` when it was
    built before (relaxing the models of the demo's four states costs about 3 s a run),
    keyed on this module's source and the numpy and scipy that built it."""
    import scipy

    from anodemap.diffraction._cache import cached

    parts = (key, n_atoms, seed, dr, _source_digest(), np.__version__, scipy.__version__)
    return cached("amorphous", parts, lambda: _build_model(key, n_atoms, seed, dr))


@lru_cache(maxsize=1)
def _source_digest() -> str:
    """This module's source and the packaged a-Si network it reads."""
    import hashlib
    from importlib import resources
    from pathlib import Path

    from anodemap.synth.crn import DATA_FILE

    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(resources.files("anodemap.data").joinpath(DATA_FILE).read_bytes())
    return h.hexdigest()


def _build_model(key: str, n_atoms: int, seed: int, dr: float) -> AmorphousModel:
    si = load_phase("Si")
    bond = float(si.lattice_matrix[0, 0]) * math.sqrt(3.0) / 4.0  # c-Si bond, a√3/4
    if key == "oxide":
        total = sum(OXIDE_COUNTS.values())
        units = max(1, round(n_atoms / total))
        counts = {e: c * units for e, c in OXIDE_COUNTS.items()}
        pos, types, box, elements = _random_packing(counts, OXIDE_DENSITY, _OXIDE_DMIN, seed)
        density = OXIDE_DENSITY
        name = "oxide Li2SiO3"
    elif key == "SiO2":
        total = sum(_SIO2_COUNTS.values())
        units = max(1, round(n_atoms / total))
        counts = {e: c * units for e, c in _SIO2_COUNTS.items()}
        pos, types, box, elements = _random_packing(counts, _SIO2_DENSITY, _OXIDE_DMIN, seed)
        density = _SIO2_DENSITY
        name = "oxide SiO2"
    else:
        x = float(key)
        density = _silicide_density(x)
        if x == 0.0:  # the packaged continuous random network (n_atoms, seed: not used)
            from anodemap.synth.crn import load_asi_crn

            crn = load_asi_crn()
            pos, box = np.array(crn.positions), crn.box
            types = np.zeros(len(pos), dtype=np.int64)
            density = crn.density
            elements = ("Si",)
            name = "a-Si"
        else:
            li_nn = _li15si4_distances()
            n_si = max(1, round(n_atoms / (1.0 + x)))
            counts = {"Si": n_si, "Li": max(1, round(n_si * x))}
            dmin = {("Si", "Si"): bond, ("Li", "Si"): li_nn[0], ("Li", "Li"): li_nn[1]}
            pos, types, box, elements = _random_packing(counts, density, dmin, seed)
            name = f"a-Li{x:.2f}Si"
    r, hist = _histograms(pos, types, box, len(elements), dr)
    return AmorphousModel(name, tuple(elements), types, pos, box, density, r, hist)


@lru_cache(maxsize=1)
def _li15si4_distances() -> tuple[float, float]:
    """Nearest Li-Si and Li-Li distances (Å) of the packaged Li15Si4 structure."""
    c = load_phase("Li15Si4")
    el, frac, _, _ = c.unit_cell()
    xyz = (np.asarray(frac) @ c.lattice_matrix) % c.lattice_matrix[0, 0]
    box = float(c.lattice_matrix[0, 0])
    tree = cKDTree(xyz, boxsize=box)
    li = np.flatnonzero(el == "Li")
    d, j = tree.query(xyz[li], k=24)
    is_si = el[j] == "Si"
    valid = d > 0.1
    return float(d[valid & is_si].min()), float(d[valid & ~is_si].min())


def amorphous_model(
    composition: float | str, *, n_atoms: int = 1000, seed: int = 0
) -> AmorphousModel:
    """The explicit atomic model of an amorphous phase used by the simulator.

    Parameters
    ----------
    composition : float, "oxide" or "SiO2"
        x in Li_xSi (0 for a-Si), ``"oxide"`` for the oxygen-rich boundary material
        (a lithium silicate Li2SiO3, model choice), or ``"SiO2"`` for the SiO_x surface
        layer of pristine Si.
    n_atoms : int
        Model size (default 1000; model choice: a box of about 27 Å for a-Si).
    seed : int
        Seed of the random starting positions.

    Returns
    -------
    AmorphousModel

    Notes
    -----
    * a-Si (x = 0): the packaged continuous random network of 1000 atoms
      (:func:`anodemap.synth.crn.load_asi_crn`, docs/synth.md: Wooten-Winer-Weaire bond
      switches, Keating potential; computed once by ``tools/make_asi_crn.py``), whatever
      ``n_atoms`` and ``seed``: bonds 2.351 ± 0.098 Å, 100 % four-fold, pair peaks 2.345 and
      3.825 Å (a-Si: 2.35 and 3.84 Å, K. Laaziri et al., Phys. Rev. Lett. 82 (1999) 3460),
      density 1.8 % below c-Si (Custer et al. 1994). Its I(s) has its first maximum at
      s ≈ 0.30 1/Å, near a-Si's measured first sharp diffraction peak, Q ≈ 2 Å⁻¹ (s = Q/2π
      ≈ 0.32 1/Å), a little lower because f(s)² falls with s.
    * Li_xSi (x > 0): a relaxed random packing (a dense metallic-glass-like structure) with
      hard-core distances 0.92 × (Si-Si bond 2.352 Å, nearest Li-Si and Li-Li distances of the
      packaged Li15Si4 structure); density from :func:`_silicide_density`. Model choice.
    * oxide: a relaxed random packing of Li2SiO3 at 2.5 g/cm³ with the distances in
      ``_OXIDE_DMIN``. Model choice.
    * SiO2: a relaxed random packing of SiO2 at 2.2 g/cm³ with the same distances (no
      tetrahedral network: a crude model whose first rings are those of the Si-O and
      O-O distances). Model choice.

    Examples
    --------
    >>> m = amorphous_model(0.0)
    >>> m.name, m.elements, round(m.density, 4)
    ('a-Si', ('Si',), 0.049)
    """
    if isinstance(composition, str):
        word = composition.strip().lower()
        if word not in ("oxide", "sio2"):
            raise AnodemapInputError(
                f"composition={composition!r}: give x in Li_xSi (a number >= 0), 'oxide' or 'SiO2'"
            )
        key = "oxide" if word == "oxide" else "SiO2"
    else:
        x = float(composition)
        if not (math.isfinite(x) and 0.0 <= x <= 10.0):
            raise AnodemapInputError(f"composition x={composition!r} must lie in [0, 10]")
        key = repr(round(x, 6))
    if n_atoms < 100:
        raise AnodemapInputError(f"n_atoms={n_atoms!r}: use at least 100 atoms")
    return _cached_model(key, int(n_atoms), int(seed), 0.01)


# --------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------
@dataclass
class SimulatedDiffraction:
    """Result of :func:`simulate_diffraction`.

    Attributes
    ----------
    patterns : ndarray of float32, shape (ny, nx, ky, kx)
        Patterns in detector counts (electrons; the noise-free expectation if ``noise=False``).
    scale : float
        Detector calibration, 1/Å per pixel (both axes).
    center : (float, float)
        Nominal (undescanned) beam position ``(cy, cx)`` in pixels; the axes put s = 0 there.
    pixel_size_nm : float
        Scan step in nm.
    beam_energy_kev : float
        Beam energy (keV).
    precession_angle_deg : float
        Precession semi-angle (degrees; 0 = nano-beam diffraction).
    convergence_semiangle_mrad : float
        Probe convergence semi-angle (mrad).
    truth : dict
        Ground truth, maps of the scan shape ``(ny, nx)`` unless said otherwise:

        * ``phase`` (int8): 0 amorphous, 1 Si, 2 Li15Si4, -1 pore; ``phase_labels``;
        * ``pore`` (bool), ``labels`` (the phantom's classes), ``grain_id``;
        * ``euler_deg`` (ny, nx, 3): Bunge Euler angles of the crystal (orix convention), NaN
          where amorphous or pore; ``in_plane_angle_deg``: its φ1 (the rotation that takes
          the φ1 = 0 template onto the pattern), NaN likewise;
        * ``amorphous_fraction``: amorphous share of the column (oxide included): 1 for
          amorphous pixels, 0 for c-Si (without oxide), the set share for dendrite-like
          pixels, NaN in pores;
        * ``amorphous_intensity_share``: amorphous diffuse intensity / (amorphous + Bragg)
          on the detector, noise-free (NaN in pores or where nothing scatters);
        * ``center`` (ny, nx, 2): beam centre ``(ky, kx)`` in pixels (the descan truth);
        * ``descan_px`` (ny, nx, 2): ``center`` minus the nominal centre;
        * ``thickness_nm``, ``li_per_si``, ``oxide_fraction``;
        * ``bragg_probability``, ``amorphous_probability``: kinematic scattering
          probabilities of the spots and rings on the detector (before the plural-
          scattering scaling); ``direct_fraction``: share of the electrons in the direct beam;
        * ``n_spots``: spots of the pixel's crystal on the detector.
        * ``amorphous_model_weights`` (ny, nx, 7): the weight of each amorphous model's
          ρ I(s) in the pattern's diffuse intensity (probability per detector pixel per
          Å⁻¹), in the order of ``amorphous_model_keys`` (the x of the Li_xSi models of
          :func:`amorphous_model`, then ``"oxide"`` or ``"SiO2"``): the expected diffuse
          part of a pattern is Σ_k w_k ρ_k I_k(s) (the PDF truth,
          :mod:`anodemap.pdf.truth`).
    parameters : dict
        Every model parameter used.
    """

    patterns: np.ndarray
    scale: float
    center: tuple[float, float]
    pixel_size_nm: float
    beam_energy_kev: float
    precession_angle_deg: float
    convergence_semiangle_mrad: float
    truth: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    def axes(self) -> list[Axis]:
        """Scan axes ``y``, ``x`` in nm, then the pattern axes ``ky``, ``kx`` in 1/Å.

        Returns
        -------
        list of Axis
        """
        ny, nx, ky, kx = self.patterns.shape
        h = float(self.pixel_size_nm)
        return [
            Axis("y", ny, h, 0.0, "nm", navigate=True),
            Axis("x", nx, h, 0.0, "nm", navigate=True),
            Axis("ky", ky, self.scale, -self.center[0] * self.scale, "1/Å", navigate=False),
            Axis("kx", kx, self.scale, -self.center[1] * self.scale, "1/Å", navigate=False),
        ]


def to_dataset(sim: SimulatedDiffraction, title: str = "Simulated SPED") -> Dataset:
    """The simulated patterns as an anodemap :class:`~anodemap.io.Dataset`.

    Axes are calibrated (scan in nm, ``ky``/``kx`` in 1/Å with s = 0 at the nominal beam
    centre); metadata carry the signal type ``electron_diffraction``, the beam energy (keV),
    the precession angle (degrees, ``Acquisition_instrument.TEM.precession_angle``) and the
    convergence semi-angle (mrad, pyxem's ``Acquisition_instrument.TEM.convergence_angle``),
    and a scalar summary of the simulation under ``Simulation``. The truth maps are not
    stored in it.

    Examples
    --------
    >>> from anodemap.synth import make_phantom
    >>> sim = simulate_diffraction(make_phantom((8, 8), seed=2), pattern_shape=(32, 32))
    >>> ds = to_dataset(sim)
    >>> ds.signal_type, [a.units for a in ds.axes]
    ('electron_diffraction', ['nm', 'nm', '1/Å', '1/Å'])
    """
    ds = Dataset(sim.patterns, sim.axes())
    ds.set_meta("General.title", title)
    ds.set_meta("Signal.signal_type", "electron_diffraction")
    ds.set_meta("Signal.quantity", "Intensity (electrons)")
    ds.set_meta("Acquisition_instrument.TEM.beam_energy", float(sim.beam_energy_kev))
    ds.set_meta("Acquisition_instrument.TEM.precession_angle", float(sim.precession_angle_deg))
    ds.set_meta(
        "Acquisition_instrument.TEM.convergence_angle", float(sim.convergence_semiangle_mrad)
    )
    summary = {
        k: v
        for k, v in sim.parameters.items()
        if isinstance(v, (int, float, str, bool)) and v is not None
    }
    summary["generator"] = "anodemap.synth.diffraction.simulate_diffraction"
    ds.set_meta("Simulation", summary)
    return ds


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------
def _probe_profile(radius_px: float, sigma_px: float, step: float = 0.02) -> tuple:
    """Radial table of a uniform disk (radius R) convolved with a 2-D Gaussian (σ).

    ``P(d) = 1/(π R²) ∫_0^R (r/σ²) exp(-(d - r)²/(2σ²)) i0e(d r/σ²) dr`` (exact convolution in
    polar coordinates, ``i0e`` the scaled Bessel function), normalised so that its samples on
    the pixel grid sum to 1. Returns ``(table, step, half_width)`` in pixels.
    """
    half = radius_px + 5.0 * sigma_px
    d = np.arange(0.0, half + 2 * step, step)
    if radius_px < 1e-3:
        prof = np.exp(-0.5 * (d / sigma_px) ** 2)
    else:
        r = (np.arange(256) + 0.5) * (radius_px / 256)
        dd, rr = d[:, None], r[None, :]
        integrand = rr / sigma_px**2 * np.exp(-0.5 * ((dd - rr) / sigma_px) ** 2)
        integrand *= i0e(dd * rr / sigma_px**2)
        prof = integrand.sum(axis=1) * (radius_px / 256) / (np.pi * radius_px**2)
    # normalise on the pixel grid (average over sub-pixel offsets of the centre)
    n = int(math.ceil(half)) + 1
    grid = np.arange(-n, n + 1, dtype=np.float64)
    total = 0.0
    offs = (np.arange(4) + 0.5) / 4.0 - 0.5
    for oy in offs:
        for ox in offs:
            dist = np.hypot(grid[:, None] - oy, grid[None, :] - ox)
            total += np.interp(dist, d, prof, right=0.0).sum()
    prof = prof / (total / offs.size**2)
    return prof, step, half


@numba.njit(cache=True, parallel=True)
def _render(
    out,
    cy,
    cx,
    direct,
    profiles,
    prof_step,
    sp_start,
    sp_stop,
    sp_mult,
    spot_dy,
    spot_dx,
    spot_int,
    probe,
    probe_step,
    probe_half,
):  # pragma: no cover - compiled
    n, ky, kx = out.shape
    n_prof = profiles.shape[1]
    n_probe = probe.shape[0]
    for p in numba.prange(n):
        y0 = cy[p]
        x0 = cx[p]
        a = direct[p]
        for i in range(ky):
            for j in range(kx):
                d = math.sqrt((i - y0) ** 2 + (j - x0) ** 2)
                u = d / prof_step
                k = int(u)
                v = 0.0
                if k + 1 < n_prof:
                    t = u - k
                    v = profiles[p, k] * (1.0 - t) + profiles[p, k + 1] * t
                u = d / probe_step
                k = int(u)
                if a > 0.0 and k + 1 < n_probe:
                    t = u - k
                    v += a * (probe[k] * (1.0 - t) + probe[k + 1] * t)
                out[p, i, j] = v
        m = sp_mult[p]
        if m <= 0.0:
            continue
        for q in range(sp_start[p], sp_stop[p]):
            sy = y0 + spot_dy[q]
            sx = x0 + spot_dx[q]
            amp = m * spot_int[q]
            i0 = max(0, int(math.floor(sy - probe_half)))
            i1 = min(ky - 1, int(math.ceil(sy + probe_half)))
            j0 = max(0, int(math.floor(sx - probe_half)))
            j1 = min(kx - 1, int(math.ceil(sx + probe_half)))
            for i in range(i0, i1 + 1):
                for j in range(j0, j1 + 1):
                    u = math.sqrt((i - sy) ** 2 + (j - sx) ** 2) / probe_step
                    k = int(u)
                    if k + 1 < n_probe:
                        t = u - k
                        out[p, i, j] += amp * (probe[k] * (1.0 - t) + probe[k + 1] * t)


def _descan_map(rng: np.random.Generator, shape: tuple[int, int], amplitude: float) -> np.ndarray:
    """Smooth beam drift (ny, nx, 2) in px: random linear ramps plus a bow (model choice)."""
    ny, nx = shape
    v, u = np.meshgrid(
        (np.arange(ny) + 0.5) / ny - 0.5, (np.arange(nx) + 0.5) / nx - 0.5, indexing="ij"
    )
    out = np.empty((ny, nx, 2))
    for c in range(2):
        ang = rng.uniform(0.0, 2.0 * np.pi)
        ramp = u * math.cos(ang) + v * math.sin(ang)  # in [-0.71, 0.71]
        bow = 4.0 * (u**2 + v**2 - 1.0 / 6.0) * rng.choice([-1.0, 1.0])  # in [-0.67, 1.33]
        out[..., c] = amplitude * (1.1 * ramp + 0.15 * bow)
    return out


def _grain_spots(
    phase: str,
    euler: np.ndarray,
    *,
    beam_energy_kev: float,
    scale: float,
    s_max: float,
    precession_angle_deg: float,
    excitation_error_width: float,
    n_precession: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Spot positions (s_x, s_y) in 1/Å and kinematic intensities |F|²⟨w⟩ for each grain.

    The template of the grain's beam direction (φ1 = 0) is computed with
    :func:`generate_templates` and turned in plane by the angle that takes the template's
    orientation onto the grain's (φ1 for a regular Euler triple).
    """
    crystal = load_phase(phase)
    g = orientation_matrix(euler)
    dirs = g[:, :, 2]  # beam (sample +Z) in the crystal frame: g @ [0, 0, 1]
    lib = generate_templates(
        crystal,
        beam_energy_kv=beam_energy_kev,
        calibration=scale,
        precession_angle_deg=precession_angle_deg,
        s_max=s_max,
        excitation_error_width=excitation_error_width,
        max_spots=2000,
        min_relative_intensity=1e-4,
        n_precession=n_precession,
        directions=dirs,
    )
    g_t = orientation_matrix(lib.euler)
    # g = g_t · Rz(θ) with the passive rotation Rz(θ) = [[c, s, 0], [-s, c, 0], [0, 0, 1]]
    rz = np.einsum("nji,njk->nik", g_t, g)
    theta = np.arctan2(rz[:, 0, 1], rz[:, 0, 0])
    xy, inten, hkl = [], [], []
    for i in range(len(euler)):
        m = lib.mask[i]
        c, s = math.cos(theta[i]), math.sin(theta[i])
        x, y = lib.spots[i, m, 0].astype(np.float64), lib.spots[i, m, 1].astype(np.float64)
        xy.append(np.stack([c * x - s * y, s * x + c * y], axis=1))
        inten.append(lib.intensities[i, m].astype(np.float64))
        hkl.append(lib.hkl[i, m])
    return xy, inten, hkl


def _model_weights(
    scale: np.ndarray,
    silicide: np.ndarray,
    oxide: np.ndarray,
    k0: np.ndarray,
    wt: np.ndarray,
    shape: tuple[int, int],
) -> np.ndarray:
    """(ny, nx, len(_X_GRID) + 1) weight of each model's ρ I(s) in each pattern's diffuse
    intensity (probability per detector pixel per Å⁻¹ of ρ I): the Li_xSi models of
    ``_X_GRID`` (linear interpolation in x), then the oxide."""
    n = scale.size
    out = np.zeros((n, len(_X_GRID) + 1))
    rows = np.arange(n)
    np.add.at(out, (rows, k0), scale * silicide * (1.0 - wt))
    np.add.at(out, (rows, k0 + 1), scale * silicide * wt)
    out[:, -1] = scale * oxide
    return out.reshape(*shape, len(_X_GRID) + 1)


def simulate_diffraction(
    phantom: Phantom,
    *,
    pattern_shape: tuple[int, int] = (64, 64),
    reciprocal_pixel_size: float | None = None,
    beam_energy_kev: float = 300.0,
    precession_angle_deg: float = 0.4,
    convergence_semiangle_mrad: float | None = None,
    psf_sigma_px: float = 1.0,
    excitation_error_width: float = 0.01,
    n_precession: int = 36,
    amorphous_share: float | np.ndarray = 0.5,
    descan_px: float = 2.0,
    dose: float = 1.0e5,
    read_noise: float = 1.0,
    background: float = 0.05,
    inelastic_mfp_nm: float = _INELASTIC_MFP_NM,
    noise: bool = True,
    grain_euler_deg: np.ndarray | None = None,
    seed: int = 0,
    oxide_model: str = "Li2SiO3",
) -> SimulatedDiffraction:
    """Simulate a scanning (precession) electron diffraction dataset of a phantom.

    Parameters
    ----------
    phantom : Phantom
        The microstructure (:func:`anodemap.synth.make_phantom`).
    pattern_shape : (int, int)
        Detector pattern shape ``(ky, kx)``, e.g. (64, 64) or (128, 128).
    reciprocal_pixel_size : float, optional
        Calibration in 1/Å per detector pixel. Default: the inscribed circle reaches
        s = 1.4 1/Å (model choice), 0.04375 1/Å/px for 64 × 64.
    beam_energy_kev : float
        Beam energy; the paper's SPED: 300 kV.
    precession_angle_deg : float
        Precession semi-angle in degrees (paper: 0.4°); 0 gives nano-beam diffraction.
    convergence_semiangle_mrad : float, optional
        Probe convergence semi-angle. Default: diffraction-limited 4 nm probe (paper),
        α = 1.22 λ / d (0.60 mrad at 300 kV).
    psf_sigma_px : float
        Gaussian blur of every disk (camera PSF and residual precession blur; model choice).
    excitation_error_width : float
        σ (1/Å) of the Gaussian rocking curve (default 0.01, the templates' model choice).
    n_precession : int
        Precession azimuths averaged per reflection.
    amorphous_share : float or ndarray (ny, nx)
        Amorphous Li_xSi share of the material in dendrite-like (Li15Si4) pixels, 0..1
        (model choice 0.5: the paper describes "a variable mixture").
    descan_px : float
        Size of the smooth beam drift across the scan, pixels (0: none).
    dose : float
        Electrons per pattern (model choice 1e5).
    read_noise : float
        Standard deviation of the Gaussian read noise, electrons per pixel.
    background : float
        Share of the electrons in the diffuse background per unit t/λ (model choice 0.05).
    inelastic_mfp_nm : float
        Inelastic mean free path that turns the phantom's t/λ into nm (model choice 150).
    noise : bool
        Draw Poisson and read noise (False: the expectation).
    grain_euler_deg : ndarray (n_grains, 3), optional
        Orientations to use instead of ``phantom.grain_euler_deg``.
    seed : int
        Seed of the descan drift and the noise (the only randomness besides the fixed seeds
        of the amorphous models).
    oxide_model : {"Li2SiO3", "SiO2"}
        Material of the phantom's oxide share: the lithium silicate of lithiated electrodes
        (default) or the SiO2 of the pristine particles' SiO_x layer (see
        :func:`amorphous_model`).

    Returns
    -------
    SimulatedDiffraction

    Raises
    ------
    AnodemapInputError
        For parameters out of range (named in the message).

    Examples
    --------
    >>> from anodemap.synth import make_phantom
    >>> sim = simulate_diffraction(make_phantom((8, 8), seed=3), pattern_shape=(32, 32),
    ...                            precession_angle_deg=0.0, noise=False)
    >>> round(sim.scale, 4), sim.truth["center"].shape
    (0.0875, (8, 8, 2))
    """
    ky, kx = (int(pattern_shape[0]), int(pattern_shape[1]))
    if ky < 8 or kx < 8:
        raise AnodemapInputError(f"pattern_shape={pattern_shape!r}: use at least 8 x 8 pixels")
    if reciprocal_pixel_size is None:
        reciprocal_pixel_size = DEFAULT_S_MAX / (min(ky, kx) / 2.0)
    scale = float(reciprocal_pixel_size)
    checks = {
        "reciprocal_pixel_size": scale > 0,
        "beam_energy_kev": beam_energy_kev > 0,
        "precession_angle_deg": 0 <= precession_angle_deg < 10,
        "psf_sigma_px": psf_sigma_px > 0,
        "excitation_error_width": excitation_error_width > 0,
        "dose": dose > 0,
        "read_noise": read_noise >= 0,
        "background": background >= 0,
        "inelastic_mfp_nm": inelastic_mfp_nm > 0,
        "descan_px": descan_px >= 0,
        "n_precession": n_precession >= 1,
        "oxide_model": oxide_model in OXIDE_MODELS,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise AnodemapInputError(
            f"simulate_diffraction: parameter(s) out of range: {', '.join(bad)} "
            "(see the docstring for allowed values)"
        )
    ny, nx = phantom.shape
    n = ny * nx
    share = np.broadcast_to(np.asarray(amorphous_share, dtype=np.float64), (ny, nx))
    if np.any(~np.isfinite(share)) or share.min() < 0 or share.max() > 1:
        raise AnodemapInputError("amorphous_share must lie in [0, 1]")
    euler = np.asarray(
        phantom.grain_euler_deg if grain_euler_deg is None else grain_euler_deg, np.float64
    )
    if euler.shape != (phantom.n_grains, 3):
        raise AnodemapInputError(
            f"grain_euler_deg has shape {euler.shape}, expected ({phantom.n_grains}, 3)"
        )
    rng = np.random.default_rng(seed)
    lam = electron_wavelength(beam_energy_kev)
    if convergence_semiangle_mrad is None:
        convergence_semiangle_mrad = 1e3 * 1.22 * lam / (10.0 * _PROBE_DIAMETER_NM)
    alpha = float(convergence_semiangle_mrad) * 1e-3
    disk_radius_px = alpha / lam / scale

    # --- geometry -------------------------------------------------------------------
    center0 = ((ky - 1) / 2.0, (kx - 1) / 2.0)
    descan = _descan_map(rng, (ny, nx), float(descan_px))
    center = descan + np.asarray(center0)
    s_corner = scale * math.hypot(ky, kx) / 2.0 + scale * (descan_px + 2.0)
    s_max = s_corner + 0.05

    labels = phantom.labels
    pore = labels == Label.PORE
    ox = np.where(pore, 0.0, np.clip(phantom.oxide_fraction, 0.0, 1.0))
    t_nm = phantom.t_over_lambda * float(inelastic_mfp_nm)
    t_a = 10.0 * t_nm  # Å
    is_si = labels == Label.SI
    is_den = labels == Label.DENDRITE
    cryst = np.where(is_si, 1.0 - ox, 0.0) + np.where(is_den, (1.0 - share) * (1.0 - ox), 0.0)
    silicide = np.where(pore, 0.0, 1.0 - ox - cryst)  # amorphous Li_xSi volume share
    oxide = np.where(pore, 0.0, ox)

    # --- amorphous profiles: ρ I(s) per volume, interpolated in x -----------------------
    prof_r = np.arange(0.0, math.hypot(ky, kx) / 2.0 + descan_px + 4.0, _PROFILE_STEP_PX)
    s_r = prof_r * scale
    x = np.clip(phantom.li_per_si, _X_GRID[0], _X_GRID[-1])
    need = np.zeros(len(_X_GRID), dtype=bool)
    amorph_pix = silicide > 0
    if amorph_pix.any():
        xs = x[amorph_pix]
        idx = np.clip(np.searchsorted(_X_GRID, xs, side="right") - 1, 0, len(_X_GRID) - 2)
        need[idx] = True
        need[idx + 1] = True
    psi = np.zeros((len(_X_GRID), s_r.size))
    for k, xg in enumerate(_X_GRID):
        if need[k]:
            mdl = amorphous_model(xg)
            psi[k] = mdl.density * mdl.intensity(s_r, beam_energy_kev)
    psi_ox = np.zeros(s_r.size)
    if (oxide > 0).any():
        mdl = amorphous_model("oxide" if oxide_model == "Li2SiO3" else "SiO2")
        psi_ox = mdl.density * mdl.intensity(s_r, beam_energy_kev)
    # per-pixel interpolation weights in x
    xf = x.ravel()
    k0 = np.clip(np.searchsorted(_X_GRID, xf, side="right") - 1, 0, len(_X_GRID) - 2)
    grid = np.asarray(_X_GRID)
    wt = (xf - grid[k0]) / (grid[k0 + 1] - grid[k0])
    # diffuse probability per detector pixel: t λ² Ψ(s) × scale²
    fac = (t_a * lam**2 * scale**2).ravel()
    amorph = fac[:, None] * (
        silicide.ravel()[:, None] * ((1.0 - wt)[:, None] * psi[k0] + wt[:, None] * psi[k0 + 1])
        + oxide.ravel()[:, None] * psi_ox[None, :]
    )
    # detector pixels per radius bin (centre at the nominal centre): total on the detector
    yy, xx = np.mgrid[:ky, :kx]
    rr = np.hypot(yy - center0[0], xx - center0[1]) / _PROFILE_STEP_PX
    counts = np.bincount(np.rint(rr).astype(np.int64).ravel(), minlength=prof_r.size)
    p_amorph = amorph @ counts[: prof_r.size].astype(np.float64)

    # --- crystal spots per (phase, grain) -----------------------------------------------
    sp_start = np.zeros(n, dtype=np.int64)
    sp_stop = np.zeros(n, dtype=np.int64)
    sp_mult = np.zeros(n)
    p_bragg = np.zeros(n)
    n_spots = np.zeros(n, dtype=np.int32)
    dy_all: list[np.ndarray] = []
    dx_all: list[np.ndarray] = []
    int_all: list[np.ndarray] = []
    offset = 0
    gid = phantom.grain_id.ravel()
    cr = cryst.ravel()
    half_y, half_x = ky / 2.0 + 2.0, kx / 2.0 + 2.0
    for phase, mask in (("Si", is_si.ravel()), ("Li15Si4", is_den.ravel())):
        sel = mask & (cr > 0)
        if not sel.any():
            continue
        grains = np.unique(gid[sel])
        xy, inten, _ = _grain_spots(
            phase,
            euler[grains],
            beam_energy_kev=beam_energy_kev,
            scale=scale,
            s_max=s_max,
            precession_angle_deg=precession_angle_deg,
            excitation_error_width=excitation_error_width,
            n_precession=n_precession,
        )
        vc = load_phase(phase).volume
        # P_g = λ² t_c |F|²⟨w⟩ / (V_c² σ √π)
        base = lam**2 / (vc**2 * excitation_error_width * math.sqrt(math.pi))
        for gi, g in enumerate(grains):
            sx, sy = xy[gi][:, 0] / scale, xy[gi][:, 1] / scale
            keep = (np.abs(sy) < half_y) & (np.abs(sx) < half_x)
            dy_all.append(sy[keep])
            dx_all.append(sx[keep])
            int_all.append(inten[gi][keep])
            m = np.flatnonzero(sel & (gid == g))
            sp_start[m] = offset
            sp_stop[m] = offset + int(keep.sum())
            sp_mult[m] = base * t_a.ravel()[m] * cr[m]
            on_det = keep & (np.abs(sy) < ky / 2.0) & (np.abs(sx) < kx / 2.0)
            p_bragg[m] = sp_mult[m] * inten[gi][on_det].sum()
            n_spots[m] = int(on_det.sum())
            offset += int(keep.sum())
    spot_dy = np.concatenate(dy_all) if dy_all else np.zeros(0)
    spot_dx = np.concatenate(dx_all) if dx_all else np.zeros(0)
    spot_int = np.concatenate(int_all) if int_all else np.zeros(0)

    # --- plural scattering, background, direct beam --------------------------------------
    p_tot = p_bragg + p_amorph
    with np.errstate(invalid="ignore", divide="ignore"):
        sat = np.where(p_tot > 1e-12, -np.expm1(-p_tot) / p_tot, 1.0)
    f_bg = np.minimum(background * phantom.t_over_lambda.ravel(), _BACKGROUND_MAX)
    elastic = 1.0 - f_bg
    direct = elastic * np.exp(-p_tot)
    sb = _BACKGROUND_WIDTH
    bg_shape = scale**2 / (2.0 * np.pi * sb**2) / (1.0 + (s_r / sb) ** 2) ** 1.5
    profiles = (elastic * sat)[:, None] * amorph + f_bg[:, None] * bg_shape[None, :]
    sp_mult = sp_mult * elastic * sat

    probe, probe_step, probe_half = _probe_profile(disk_radius_px, float(psf_sigma_px))
    out = np.empty((n, ky, kx), dtype=np.float32)
    cen = center.reshape(n, 2)
    _render(
        out,
        np.ascontiguousarray(cen[:, 0]),
        np.ascontiguousarray(cen[:, 1]),
        direct,
        np.ascontiguousarray(profiles),
        _PROFILE_STEP_PX,
        sp_start,
        sp_stop,
        sp_mult,
        spot_dy,
        spot_dx,
        spot_int,
        probe,
        probe_step,
        probe_half,
    )
    # noise in fixed-size chunks of patterns (bounded temporaries, same stream every run)
    for start in range(0, n, _NOISE_CHUNK):
        block = out[start : start + _NOISE_CHUNK]
        expected = block * np.float64(dose)
        if noise:
            block[...] = rng.poisson(expected)
            if read_noise > 0:
                block += np.float32(read_noise) * rng.standard_normal(block.shape, dtype=np.float32)
        else:
            block[...] = expected
    patterns = out.reshape(ny, nx, ky, kx)

    # --- truth ---------------------------------------------------------------------------
    phase = np.zeros((ny, nx), dtype=np.int8)
    phase[is_si] = 1
    phase[is_den] = 2
    phase[is_den & (share >= 1.0)] = 0  # a dendrite pixel without crystal is amorphous
    phase[pore] = PORE_LABEL
    crystalline = (phase == 1) | (phase == 2)
    euler_map = np.where(crystalline[..., None], euler[phantom.grain_id], np.nan)
    amorph_frac = np.where(pore, np.nan, 1.0 - cryst)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_int = np.where(p_tot > 0, p_amorph / p_tot, np.nan).reshape(ny, nx)
    share_int[pore] = np.nan
    truth: dict[str, Any] = {
        "phase": phase,
        "phase_labels": {PORE_LABEL: "pore", **PHASE_LABELS},
        "pore": pore,
        "labels": labels.copy(),
        "grain_id": phantom.grain_id.copy(),
        "euler_deg": euler_map,
        "in_plane_angle_deg": np.where(crystalline, euler_map[..., 0] % 360.0, np.nan),
        "amorphous_fraction": amorph_frac,
        "amorphous_intensity_share": share_int,
        "center": center,
        "descan_px": descan,
        "thickness_nm": t_nm,
        "li_per_si": phantom.li_per_si.copy(),
        "oxide_fraction": oxide,
        "bragg_probability": p_bragg.reshape(ny, nx),
        "amorphous_probability": p_amorph.reshape(ny, nx),
        "direct_fraction": direct.reshape(ny, nx),
        "n_spots": n_spots.reshape(ny, nx),
        # what the PDF truth needs (anodemap.pdf.truth): the weight of each amorphous
        # model's ρ I(s) in each pattern's diffuse intensity, exactly as ``profiles`` mixes
        # them (thickness, volume share, x interpolation, plural-scattering factor)
        "amorphous_model_weights": _model_weights(
            (elastic * sat * fac), silicide.ravel(), oxide.ravel(), k0, wt, (ny, nx)
        ),
        "amorphous_model_keys": [*_X_GRID, "oxide" if oxide_model == "Li2SiO3" else "SiO2"],
    }
    params = {
        "pattern_shape": (ky, kx),
        "reciprocal_pixel_size": scale,
        "beam_energy_kev": float(beam_energy_kev),
        "wavelength_angstrom": lam,
        "precession_angle_deg": float(precession_angle_deg),
        "convergence_semiangle_mrad": float(convergence_semiangle_mrad),
        "disk_radius_px": disk_radius_px,
        "psf_sigma_px": float(psf_sigma_px),
        "excitation_error_width": float(excitation_error_width),
        "n_precession": int(n_precession),
        "amorphous_share": float(share.mean()),
        "descan_px": float(descan_px),
        "dose": float(dose),
        "read_noise": float(read_noise),
        "background": float(background),
        "inelastic_mfp_nm": float(inelastic_mfp_nm),
        "noise": bool(noise),
        "seed": int(seed),
        "phantom_seed": int(phantom.seed),
        "amorphous_models": {
            "a-Si": "tetrahedral network (Henderson-Herman relaxation), 1000 atoms, seed 0",
            "Li_xSi": f"relaxed random packings at x = {list(_X_GRID[1:])}, 1000 atoms, seed 0",
            "oxide": f"relaxed random packing of {oxide_model}, seed 0",
        },
    }
    return SimulatedDiffraction(
        patterns=patterns,
        scale=scale,
        center=center0,
        pixel_size_nm=float(phantom.pixel_size_nm),
        beam_energy_kev=float(beam_energy_kev),
        precession_angle_deg=float(precession_angle_deg),
        convergence_semiangle_mrad=float(convergence_semiangle_mrad),
        truth=truth,
        parameters=params,
    )
