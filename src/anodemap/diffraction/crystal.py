"""Crystal structures, electron scattering factors and kinematic structure factors.

A phase is data: a CIF file (``anodemap/data/structures/<name>.cif`` for the packaged
phases Si and Li15Si4, or any CIF a user supplies). :func:`read_cif` reads the cell, the
symmetry operations listed in the file and the atom sites, and :class:`Crystal` expands
them to the full unit cell. Nothing is derived from a Hermann–Mauguin symbol: a CIF must
list its operations (``_space_group_symop_operation_xyz`` or ``_symmetry_equiv_pos_as_xyz``).

Conventions
-----------
* Cartesian crystal frame: **a ∥ x, c* ∥ z** (b in the x–y plane), the default of orix.
* Reciprocal vectors without 2π: ``g = h a* + k b* + l c*``, ``|g| = 1/d``. anodemap's
  scattering vector is ``s = 1/d`` in 1/Å.
* Electron scattering factors are the five-Gaussian fits of Peng et al., Acta Cryst. A52
  (1996) 257, in ``anodemap/data/electron_scattering_factors.csv``. They are written in
  Peng's variable ``sin(θ)/λ = 1/(2d) = s/2``; the functions here take ``s = 1/d`` and
  convert. The fit for ``sin(θ)/λ <= 2 1/Å`` is used where it applies (``s <= 4 1/Å``),
  the wider fit beyond.
* Kinematic structure factor (unit Å)::

      F(g) = γ Σ_j occ_j f_j(|g|/2) exp(-B_j |g|²/4) exp(2πi h·r_j)

  with the Debye–Waller factor ``exp(-B sin²θ/λ²)``, ``B = 8π² U``, and the relativistic
  factor ``γ = 1 + eV/(m0 c²)`` (the scattering amplitude scales with the electron mass)
  when a beam energy is given, else γ = 1. γ scales all intensities of a pattern equally:
  it matters for absolute intensities only; the Ewald-sphere geometry uses the
  relativistic wavelength (:func:`electron_wavelength`).

Examples
--------
>>> from anodemap.diffraction.crystal import load_phase
>>> si = load_phase("Si")
>>> round(float(si.d_spacing([1, 1, 1])[0]), 4)
3.1356
>>> refl = si.reflections(s_max=0.6)
>>> sorted({tuple(sorted(abs(int(i)) for i in h)) for h in refl.hkl})
[(0, 2, 2), (1, 1, 1)]
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from anodemap.constants import electron_wavelength
from anodemap.errors import AnodemapInputError
from anodemap.io.cif import CifError, cif_float, read_cif_block
from anodemap.io.results import write_text

__all__ = [
    "AtomSite",
    "CifError",
    "Crystal",
    "ReflectionList",
    "available_phases",
    "electron_scattering_factor",
    "electron_wavelength",
    "format_symop",
    "lorentz_gamma",
    "load_phase",
    "parse_symop",
    "read_cif",
    "scattering_elements",
    "structure_path",
    "write_cif",
]

# CODATA 2018 exact / recommended values (SI)
_H = 6.62607015e-34  # Planck constant, J s (exact)
_C = 299792458.0  # speed of light, m/s (exact)
_E = 1.602176634e-19  # elementary charge, C (exact)
_ME = 9.1093837015e-31  # electron rest mass, kg (CODATA 2018)
_MEC2_EV = _ME * _C**2 / _E  # 510998.95 eV

#: B (Å²) used for an atom site whose CIF gives no displacement parameter (model choice:
#: a typical room-temperature value for light elements; a warning says when it is used).
DEFAULT_B_ISO = 0.5

_FIT_LIMIT_SIN_THETA_OVER_LAMBDA = 2.0  # the "s0-2" fit of Peng et al. 1996 is valid up to here


# --------------------------------------------------------------------------------------
# electron optics
# --------------------------------------------------------------------------------------


def lorentz_gamma(beam_energy_kv: float) -> float:
    """Relativistic factor ``γ = m/m0 = 1 + eV/(m0 c²)`` of the beam electrons.

    Examples
    --------
    >>> round(lorentz_gamma(300.0), 4)
    1.5871
    """
    return 1.0 + float(beam_energy_kv) * 1e3 / _MEC2_EV


# --------------------------------------------------------------------------------------
# scattering factors
# --------------------------------------------------------------------------------------


@cache
def _scattering_table() -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    text = (
        resources.files("anodemap")
        .joinpath("data", "electron_scattering_factors.csv")
        .read_text(encoding="utf-8")
    )
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    table: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for row in csv.DictReader(lines):
        a = np.array([float(row[f"a{i}"]) for i in range(1, 6)])
        b = np.array([float(row[f"b{i}"]) for i in range(1, 6)])
        table[(row["element"], row["fit"])] = (a, b)
    return table


def scattering_elements() -> list[str]:
    """Elements for which electron scattering factors are tabulated.

    Examples
    --------
    >>> {"Li", "O", "Si"} <= set(scattering_elements())
    True
    """
    return sorted({el for el, _ in _scattering_table()})


def electron_scattering_factor(element: str, s: np.ndarray | float) -> np.ndarray:
    """Elastic electron scattering factor f_e of a neutral atom, in Å (rest mass).

    Parameters
    ----------
    element : str
        Element symbol (``"Li"``, ``"Si"``, ...); charges such as ``"Li+"`` are read as the
        neutral atom.
    s : array_like
        Scattering vector ``s = 1/d`` in 1/Å (Peng's variable is ``s/2 = sin θ/λ``).

    Returns
    -------
    ndarray
        f_e(s) in Å; multiply by :func:`lorentz_gamma` for a moving electron.

    Examples
    --------
    >>> round(float(electron_scattering_factor("Si", 0.0)), 4)  # sum of the a_i
    5.8268
    >>> bool(electron_scattering_factor("Li", 1.0) < electron_scattering_factor("Li", 0.5))
    True
    """
    el = _element_symbol(element)
    table = _scattering_table()
    if (el, "s0-2") not in table:
        raise AnodemapInputError(
            f"no electron scattering factor tabulated for element {element!r}; "
            f"available: {', '.join(scattering_elements())}. Add a row to "
            "anodemap/data/electron_scattering_factors.csv (with its source) to use it."
        )
    q = np.asarray(s, dtype=np.float64) / 2.0  # sin(theta)/lambda
    q2 = q[..., None] ** 2
    a, b = table[(el, "s0-2")]
    low = (a * np.exp(-b * q2)).sum(axis=-1)
    if np.any(q > _FIT_LIMIT_SIN_THETA_OVER_LAMBDA):
        a6, b6 = table[(el, "s0-6")]
        high = (a6 * np.exp(-b6 * q2)).sum(axis=-1)
        low = np.where(q > _FIT_LIMIT_SIN_THETA_OVER_LAMBDA, high, low)
    return low


_ELEMENT_RE = re.compile(r"^([A-Z][a-z]?)")


def _element_symbol(text: str) -> str:
    """Element symbol at the start of a type symbol or label ("Si", "Li1", "O2-", "si")."""
    t = text.strip()
    if t[:1].islower():
        t = t[0].upper() + t[1:]
    m = _ELEMENT_RE.match(t)
    if not m:
        raise AnodemapInputError(f"cannot read an element symbol from {text!r}")
    return m.group(1)


# --------------------------------------------------------------------------------------
# symmetry operations
# --------------------------------------------------------------------------------------

_TERM_RE = re.compile(r"([+-]?)([^+-]+)")


def parse_symop(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse a symmetry operation such as ``"-x+1/2, y, z+1/4"``.

    Returns
    -------
    rotation : ndarray, shape (3, 3)
        Acts on fractional coordinates: ``r' = rotation @ r + translation``.
    translation : ndarray, shape (3,)

    Examples
    --------
    >>> R, t = parse_symop("-y+1/4, x+3/4, -z+1/4")
    >>> R.astype(int).tolist(), t.tolist()
    ([[0, -1, 0], [1, 0, 0], [0, 0, -1]], [0.25, 0.75, 0.25])
    >>> R, t = parse_symop("x-y,x,z+1/6")
    >>> R.astype(int).tolist()
    [[1, -1, 0], [1, 0, 0], [0, 0, 1]]
    """
    parts = [p.strip() for p in text.strip().strip("'\"").lower().replace(" ", "").split(",")]
    if len(parts) != 3 or not all(parts):
        raise AnodemapInputError(f"symmetry operation {text!r} does not have three components")
    rot = np.zeros((3, 3))
    trans = np.zeros(3)
    axes = {"x": 0, "y": 1, "z": 2}
    for i, expr in enumerate(parts):
        pos = 0
        for m in _TERM_RE.finditer(expr):
            if m.start() != pos:
                raise AnodemapInputError(f"cannot parse {expr!r} in symmetry operation {text!r}")
            pos = m.end()
            sign = -1.0 if m.group(1) == "-" else 1.0
            term = m.group(2)
            var = [c for c in term if c in axes]
            if len(var) > 1:
                raise AnodemapInputError(f"cannot parse {term!r} in symmetry operation {text!r}")
            if var:
                coef_txt = term.replace(var[0], "").replace("*", "")
                coef = _number(coef_txt) if coef_txt else 1.0
                rot[i, axes[var[0]]] += sign * coef
            else:
                try:
                    trans[i] += sign * _number(term)
                except ValueError as exc:
                    raise AnodemapInputError(
                        f"cannot parse {term!r} in symmetry operation {text!r}"
                    ) from exc
        if pos != len(expr):
            raise AnodemapInputError(f"cannot parse {expr!r} in symmetry operation {text!r}")
    if abs(abs(np.linalg.det(rot)) - 1.0) > 1e-6:
        raise AnodemapInputError(f"symmetry operation {text!r} is not an isometry (det != ±1)")
    return rot, trans


def _number(txt: str) -> float:
    if "/" in txt:
        num, den = txt.split("/")
        return float(num) / float(den)
    return float(txt)


def format_symop(rotation: np.ndarray, translation: np.ndarray) -> str:
    """Write a symmetry operation as ``"-x+1/2,y,z+1/4"`` (inverse of :func:`parse_symop`).

    Examples
    --------
    >>> import numpy as np
    >>> format_symop(np.diag([-1.0, 1.0, 1.0]), np.array([0.5, 0.0, 0.25]))
    '-x+1/2,y,z+1/4'
    """
    out = []
    for i in range(3):
        terms = ""
        for j, v in enumerate("xyz"):
            c = rotation[i, j]
            if abs(c) < 1e-9:
                continue
            sign = "-" if c < 0 else "+"
            mag = "" if abs(abs(c) - 1) < 1e-9 else f"{abs(c):g}*"
            terms += f"{sign}{mag}{v}"
        t = translation[i] % 1.0
        if abs(t) > 1e-9 and abs(t - 1) > 1e-9:
            frac = _fraction(t)
            terms += f"+{frac}"
        out.append(terms.lstrip("+") or "0")
    return ",".join(out)


def _fraction(t: float) -> str:
    for den in (2, 3, 4, 6, 8, 12):
        num = t * den
        if abs(num - round(num)) < 1e-6:
            return f"{round(num)}/{den}"
    return f"{t:.6f}"


# --------------------------------------------------------------------------------------
# structures
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtomSite:
    """One site of the asymmetric unit.

    Attributes
    ----------
    label : str
        Site label from the CIF (``"Li1"``).
    element : str
        Element symbol used for the scattering factor.
    frac : tuple of float
        Fractional coordinates.
    occupancy : float
        Site occupancy (1 for a fully occupied site).
    b_iso : float
        Isotropic Debye–Waller B in Å² (``B = 8π² U_iso``).
    """

    label: str
    element: str
    frac: tuple[float, float, float]
    occupancy: float = 1.0
    b_iso: float = DEFAULT_B_ISO


@dataclass(frozen=True)
class ReflectionList:
    """Reflections of a crystal up to a maximum scattering vector.

    Attributes
    ----------
    hkl : ndarray of int, shape (n, 3)
        Miller indices.
    g : ndarray, shape (n, 3)
        Reciprocal vectors in the Cartesian crystal frame (a ∥ x, c* ∥ z), 1/Å, no 2π.
    s : ndarray, shape (n,)
        ``|g| = 1/d`` in 1/Å.
    structure_factor : ndarray of complex, shape (n,)
        Kinematic electron structure factor F in Å (see the module docstring).
    """

    hkl: np.ndarray
    g: np.ndarray
    s: np.ndarray
    structure_factor: np.ndarray

    @property
    def d(self) -> np.ndarray:
        """Interplanar spacings in Å."""
        return 1.0 / self.s

    @property
    def intensity(self) -> np.ndarray:
        """Kinematic intensity ``|F|²`` in Å²."""
        return np.abs(self.structure_factor) ** 2

    def __len__(self) -> int:
        return len(self.s)


@dataclass(frozen=True)
class Crystal:
    """A crystal structure: cell, symmetry operations and the asymmetric unit.

    Build one with :func:`read_cif` or :func:`load_phase`; ``sites`` hold the asymmetric
    unit and :meth:`unit_cell` expands them with ``symops``.

    Attributes
    ----------
    name : str
        Phase name used in maps and reports (``"Si"``, ``"Li15Si4"``).
    cell : tuple of float
        ``(a, b, c, alpha, beta, gamma)`` in Å and degrees.
    rotations, translations : ndarray
        Symmetry operations on fractional coordinates, shapes (n_ops, 3, 3) and (n_ops, 3),
        including lattice centring.
    sites : tuple of AtomSite
        The asymmetric unit.
    space_group : str
        Hermann–Mauguin symbol as written in the file (informative only).
    source : str
        Where the structure comes from (the CIF's comments or file name).

    Examples
    --------
    >>> li15si4 = load_phase("Li15Si4")
    >>> elements, frac, occ, b = li15si4.unit_cell()
    >>> int((elements == "Li").sum()), int((elements == "Si").sum())
    (60, 16)
    >>> li15si4.laue_group
    'm-3m'
    """

    name: str
    cell: tuple[float, float, float, float, float, float]
    rotations: np.ndarray
    translations: np.ndarray
    sites: tuple[AtomSite, ...]
    space_group: str = ""
    source: str = ""
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __repr__(self) -> str:
        a, b, c, al, be, ga = self.cell
        return (
            f"Crystal({self.name!r}, {self.space_group or '?'!r}, a={a:g} b={b:g} c={c:g} Å, "
            f"α={al:g} β={be:g} γ={ga:g}°, {len(self.sites)} sites, "
            f"{len(self.rotations)} symmetry operations)"
        )

    def __post_init__(self) -> None:
        a, b, c, al, be, ga = (float(v) for v in self.cell)
        if min(a, b, c) <= 0 or not all(0 < x < 180 for x in (al, be, ga)):
            raise AnodemapInputError(f"phase {self.name!r}: impossible cell {self.cell}")
        object.__setattr__(self, "cell", (a, b, c, al, be, ga))
        rot = np.asarray(self.rotations, dtype=np.float64).reshape(-1, 3, 3)
        tr = np.asarray(self.translations, dtype=np.float64).reshape(-1, 3)
        if len(rot) != len(tr) or len(rot) == 0:
            raise AnodemapInputError(f"phase {self.name!r}: no symmetry operations")
        object.__setattr__(self, "rotations", rot)
        object.__setattr__(self, "translations", tr)
        if not self.sites:
            raise AnodemapInputError(f"phase {self.name!r}: no atom sites")

    # ---- lattice -----------------------------------------------------------------
    @property
    def lattice_matrix(self) -> np.ndarray:
        """Rows a, b, c in Cartesian Å (a ∥ x, b in the x–y plane, c* ∥ z)."""
        a, b, c, al, be, ga = self.cell
        al, be, ga = np.radians([al, be, ga])
        cx = c * np.cos(be)
        cy = c * (np.cos(al) - np.cos(be) * np.cos(ga)) / np.sin(ga)
        cz = math.sqrt(max(c * c - cx * cx - cy * cy, 0.0))
        return np.array(
            [[a, 0.0, 0.0], [b * np.cos(ga), b * np.sin(ga), 0.0], [cx, cy, cz]], dtype=np.float64
        )

    @property
    def reciprocal_matrix(self) -> np.ndarray:
        """Rows a*, b*, c* in Cartesian 1/Å (no 2π): ``g = hkl @ reciprocal_matrix``."""
        return np.linalg.inv(self.lattice_matrix).T

    @property
    def volume(self) -> float:
        """Unit-cell volume in Å³."""
        return float(abs(np.linalg.det(self.lattice_matrix)))

    def with_cell(self, *lengths: float, name: str | None = None) -> Crystal:
        """The same structure with other cell lengths (angles kept), e.g. at another temperature.

        Examples
        --------
        >>> si = load_phase("Si").with_cell(5.4310205)
        >>> round(si.cell[0], 7)
        5.4310205
        """
        a, b, c, al, be, ga = self.cell
        if len(lengths) == 1:
            scale = lengths[0] / a
            a, b, c = a * scale, b * scale, c * scale
        elif len(lengths) == 3:
            a, b, c = lengths
        else:
            raise AnodemapInputError("with_cell takes one length (isotropic scale) or three")
        return replace(self, cell=(a, b, c, al, be, ga), name=name or self.name, _cache={})

    def d_spacing(self, hkl: np.ndarray | list) -> np.ndarray:
        """Interplanar spacing d (Å) of the planes ``hkl`` (shape (..., 3)).

        Examples
        --------
        >>> si = load_phase("Si")
        >>> [round(float(d), 4) for d in si.d_spacing([[1, 1, 1], [2, 2, 0], [3, 1, 1]])]
        [3.1356, 1.9201, 1.6375]
        """
        g = np.asarray(hkl, dtype=np.float64).reshape(-1, 3) @ self.reciprocal_matrix
        return 1.0 / np.linalg.norm(g, axis=1)

    # ---- symmetry ----------------------------------------------------------------
    def point_group_rotations(self, proper: bool = True) -> np.ndarray:
        """Cartesian rotation matrices of the crystal's Laue group (point group + inversion).

        Parameters
        ----------
        proper : bool
            Only the proper rotations (det +1), the symmetry relevant to orientations.

        Returns
        -------
        ndarray, shape (n, 3, 3)
            Matrices acting on Cartesian column vectors of the crystal frame.
        """
        key = ("pg", proper)
        if key not in self._cache:
            A = self.lattice_matrix.T  # columns a, b, c: r_cart = A @ r_frac
            Ainv = np.linalg.inv(A)
            mats = A @ self.rotations @ Ainv
            mats = np.concatenate([mats, -mats])  # Laue group: add inversion
            mats = np.round(mats, 6)
            uniq = np.unique(mats.reshape(len(mats), 9), axis=0).reshape(-1, 3, 3)
            if proper:
                uniq = uniq[np.linalg.det(uniq) > 0]
            self._cache[key] = uniq
        return self._cache[key]

    @property
    def laue_group(self) -> str:
        """Name of the Laue class (``"m-3m"``, ``"m-3"``, ``"6/mmm"``, ...)."""
        rots = self.point_group_rotations(proper=True)
        n = len(rots)
        traces = np.round(np.trace(rots, axis1=1, axis2=2)).astype(int)
        has4, has6 = bool(np.any(traces == 1)), bool(np.any(traces == 2))
        names = {1: "-1", 2: "2/m", 3: "-3", 8: "4/mmm", 24: "m-3m"}
        if n in names:
            return names[n]
        if n == 4:
            return "4/m" if has4 else "mmm"
        if n == 6:
            return "6/m" if has6 else "-3m"
        if n == 12:
            return "6/mmm" if has6 else "m-3"
        return f"unknown ({n} rotations)"

    # ---- atoms -------------------------------------------------------------------
    def unit_cell(self, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All atoms of the unit cell, from the asymmetric unit and the symmetry operations.

        Parameters
        ----------
        tol : float
            Two images closer than ``tol`` Å are the same atom (special positions).

        Returns
        -------
        elements : ndarray of str, shape (n,)
        frac : ndarray, shape (n, 3)
            Fractional coordinates in [0, 1).
        occupancy : ndarray, shape (n,)
        b_iso : ndarray, shape (n,)
            Debye–Waller B in Å².
        """
        key = ("cell", tol)
        if key in self._cache:
            return self._cache[key]
        A = self.lattice_matrix
        els, fr, occ, bis = [], [], [], []
        for site in self.sites:
            p = np.asarray(site.frac, dtype=np.float64)
            images = np.einsum("nij,j->ni", self.rotations, p) + self.translations
            images %= 1.0
            kept: list[np.ndarray] = []
            for im in images:
                if kept:
                    diff = np.asarray(kept) - im
                    diff -= np.round(diff)
                    if np.min(np.linalg.norm(diff @ A, axis=1)) < tol:
                        continue
                kept.append(im)
            els += [site.element] * len(kept)
            fr += kept
            occ += [site.occupancy] * len(kept)
            bis += [site.b_iso] * len(kept)
        out = (
            np.asarray(els),
            np.round(np.asarray(fr), 12) % 1.0,
            np.asarray(occ, dtype=np.float64),
            np.asarray(bis, dtype=np.float64),
        )
        self._cache[key] = out
        return out

    # ---- diffraction -------------------------------------------------------------
    def structure_factor(
        self, hkl: np.ndarray | list, beam_energy_kv: float | None = None
    ) -> np.ndarray:
        """Kinematic electron structure factor F(hkl) in Å.

        ``F = γ Σ_j occ_j f_j(s) exp(-B_j s²/4) exp(2πi hkl·r_j)`` with ``s = 1/d``;
        ``γ = 1`` unless ``beam_energy_kv`` is given.

        Examples
        --------
        >>> si = load_phase("Si")
        >>> F = si.structure_factor([[2, 0, 0], [1, 1, 1], [2, 2, 2]])
        >>> [round(abs(complex(f)), 6) for f in F][::2]  # 200 and 222: forbidden
        [0.0, 0.0]
        """
        hkl = np.asarray(hkl, dtype=np.float64).reshape(-1, 3)
        els, frac, occ, b = self.unit_cell()
        s = np.linalg.norm(hkl @ self.reciprocal_matrix, axis=1)
        out = np.zeros(len(hkl), dtype=np.complex128)
        gamma = 1.0 if beam_energy_kv is None else lorentz_gamma(beam_energy_kv)
        chunk = max(1, 2_000_000 // max(len(els), 1))
        for start in range(0, len(hkl), chunk):
            sl = slice(start, start + chunk)
            phase = np.exp(2j * np.pi * (hkl[sl] @ frac.T))  # (n, atoms)
            amp = np.empty((len(s[sl]), len(els)))
            for el in np.unique(els):
                cols = els == el
                f = electron_scattering_factor(str(el), s[sl])
                amp[:, cols] = f[:, None]
            amp *= occ * np.exp(-np.outer(s[sl] ** 2 / 4.0, b))
            out[sl] = gamma * (amp * phase).sum(axis=1)
        return out

    def reflections(
        self,
        s_max: float,
        beam_energy_kv: float | None = None,
        min_intensity: float = 1e-8,
    ) -> ReflectionList:
        """All reflections with ``0 < 1/d <= s_max`` whose kinematic |F|² is not zero.

        Systematic absences are not looked up in a table: they come out of the structure
        factor (|F|² below ``min_intensity`` times the strongest reflection is dropped).

        Parameters
        ----------
        s_max : float
            Largest ``s = 1/d`` in 1/Å.
        beam_energy_kv : float, optional
            Beam energy for the relativistic factor of F.
        min_intensity : float
            Relative |F|² below which a reflection counts as absent.

        Examples
        --------
        >>> refl = load_phase("Si").reflections(s_max=0.8)
        >>> sorted({tuple(sorted(abs(int(i)) for i in h)) for h in refl.hkl})
        [(0, 0, 4), (0, 2, 2), (1, 1, 1), (1, 1, 3)]
        """
        if not s_max > 0:
            raise AnodemapInputError(f"s_max must be positive (1/Å), got {s_max!r}")
        lengths = np.linalg.norm(self.lattice_matrix, axis=1)
        hmax = np.floor(s_max * lengths + 1e-9).astype(int)
        grids = [np.arange(-m, m + 1) for m in hmax]
        hkl = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, 3)
        hkl = hkl[np.any(hkl != 0, axis=1)]
        g = hkl @ self.reciprocal_matrix
        s = np.linalg.norm(g, axis=1)
        keep = s <= s_max * (1 + 1e-12)
        hkl, g, s = hkl[keep], g[keep], s[keep]
        F = self.structure_factor(hkl, beam_energy_kv=beam_energy_kv)
        inten = np.abs(F) ** 2
        if len(inten):
            ok = inten > min_intensity * inten.max()
            hkl, g, s, F = hkl[ok], g[ok], s[ok], F[ok]
        order = np.lexsort((hkl[:, 2], hkl[:, 1], hkl[:, 0], np.round(s, 9)))
        return ReflectionList(
            hkl=hkl[order].astype(np.int64), g=g[order], s=s[order], structure_factor=F[order]
        )


# --------------------------------------------------------------------------------------
# CIF
# --------------------------------------------------------------------------------------


_SYMOP_KEYS = (
    "_space_group_symop_operation_xyz",
    "_symmetry_equiv_pos_as_xyz",
    "_space_group_symop.operation_xyz",
    "_symmetry_equiv.pos_as_xyz",
)


def read_cif(path: str | Path, name: str | None = None) -> Crystal:
    """Read a crystal structure from a CIF file.

    Reads the cell (``_cell_length_*``, ``_cell_angle_*``), the symmetry operations listed
    in the file (``_space_group_symop_operation_xyz`` or ``_symmetry_equiv_pos_as_xyz``; a
    file without them is accepted only if its space group is P1) and the atom sites
    (``_atom_site_fract_x/y/z``, ``_atom_site_type_symbol`` or the label,
    ``_atom_site_occupancy``, ``_atom_site_U_iso_or_equiv`` or ``_atom_site_B_iso_or_equiv``).
    Only the first data block is read. Anisotropic displacement parameters are not used.

    Parameters
    ----------
    path : str or Path
        The CIF file.
    name : str, optional
        Phase name; default ``_chemical_formula_sum`` without spaces, else the file stem.

    Returns
    -------
    Crystal

    Raises
    ------
    CifError
        With the file name and what is missing or malformed.

    Examples
    --------
    >>> from anodemap.diffraction.crystal import read_cif, structure_path
    >>> si = read_cif(structure_path("Si"))
    >>> si.name, si.cell[0], len(si.rotations)
    ('Si', 5.431, 192)
    """
    path = Path(path)
    block = read_cif_block(path)
    items, loops = block.items, block.loops

    cell = []
    for key in (
        "_cell_length_a",
        "_cell_length_b",
        "_cell_length_c",
        "_cell_angle_alpha",
        "_cell_angle_beta",
        "_cell_angle_gamma",
    ):
        if key not in items:
            raise CifError(f"{path}: {key} is missing: the unit cell is not defined")
        cell.append(cif_float(items[key], key, str(path)))

    # symmetry operations
    ops_txt: list[str] | None = None
    for lp in loops:
        for key in _SYMOP_KEYS:
            if key in lp:
                ops_txt = lp[key]
                break
        if ops_txt is not None:
            break
    sg = ""
    for key in (
        "_space_group_name_h-m_alt",
        "_symmetry_space_group_name_h-m",
        "_space_group.name_h-m_alt",
    ):
        if key in items:
            sg = items[key].strip()
            break
    if ops_txt is None:
        if sg.replace(" ", "").upper() == "P1":
            ops_txt = ["x,y,z"]
        else:
            raise CifError(
                f"{path}: the file lists no symmetry operations (a "
                "_space_group_symop_operation_xyz or _symmetry_equiv_pos_as_xyz loop); "
                f"anodemap does not derive them from the space-group symbol {sg or '(none)'!r}. "
                "Export the CIF with its symmetry operations (VESTA, Mercury, pymatgen, ICSD "
                "and COD files have them)."
            )
    rots, trans = [], []
    for op in ops_txt:
        try:
            r, t = parse_symop(op)
        except AnodemapInputError as exc:
            raise CifError(f"{path}: {exc}") from exc
        rots.append(r)
        trans.append(t)

    # atom sites
    site_loop = next((lp for lp in loops if "_atom_site_fract_x" in lp), None)
    if site_loop is None:
        raise CifError(
            f"{path}: no atom sites (an _atom_site_ loop with _atom_site_fract_x/y/z) found"
        )
    for key in ("_atom_site_fract_y", "_atom_site_fract_z"):
        if key not in site_loop:
            raise CifError(f"{path}: atom-site loop lacks {key}")
    labels = site_loop.get("_atom_site_label")
    types = site_loop.get("_atom_site_type_symbol")
    nsite = len(site_loop["_atom_site_fract_x"])
    if labels is None and types is None:
        raise CifError(
            f"{path}: atom sites have neither _atom_site_label nor _atom_site_type_symbol"
        )
    sites = []
    for k in range(nsite):
        label = labels[k] if labels is not None else types[k]
        el_txt = types[k] if types is not None else label
        try:
            element = _element_symbol(el_txt)
            electron_scattering_factor(element, 0.0)
        except AnodemapInputError as exc:
            raise CifError(f"{path}: atom site {label!r}: {exc}") from exc
        frac = tuple(
            cif_float(site_loop[f"_atom_site_fract_{ax}"][k], f"{label} fract_{ax}", str(path))
            for ax in "xyz"
        )
        occ = 1.0
        if "_atom_site_occupancy" in site_loop and site_loop["_atom_site_occupancy"][k] not in {
            ".",
            "?",
        }:
            occ = cif_float(site_loop["_atom_site_occupancy"][k], f"{label} occupancy", str(path))
        b_iso = None
        for key, factor in (
            ("_atom_site_b_iso_or_equiv", 1.0),
            ("_atom_site_u_iso_or_equiv", 8.0 * math.pi**2),
        ):
            if key in site_loop and site_loop[key][k] not in {".", "?"}:
                b_iso = factor * cif_float(site_loop[key][k], f"{label} {key}", str(path))
                break
        if b_iso is None:
            warnings.warn(
                f"{path}: atom site {label!r} has no U_iso or B_iso; using B = {DEFAULT_B_ISO} Å² "
                "(model choice)",
                stacklevel=2,
            )
            b_iso = DEFAULT_B_ISO
        if b_iso < 0:
            raise CifError(f"{path}: atom site {label!r} has a negative displacement parameter")
        sites.append(AtomSite(label, element, frac, occ, b_iso))

    if name is None:
        formula = items.get("_chemical_formula_sum", "")
        name = re.sub(r"\s+", "", formula) if formula not in {"", "?", "."} else path.stem
        name = re.sub(r"(?<=[A-Za-z])1(?![0-9])", "", name)  # "Si1" -> "Si"
    source = block.source or str(path)
    try:
        return Crystal(
            name=name,
            cell=tuple(cell),
            rotations=np.asarray(rots),
            translations=np.asarray(trans),
            sites=tuple(sites),
            space_group=sg,
            source=source,
        )
    except AnodemapInputError as exc:
        raise CifError(f"{path}: {exc}") from exc


def write_cif(crystal: Crystal, path: str | Path, comment: str | None = None) -> Path:
    """Write a crystal to a CIF file that :func:`read_cif` (and VESTA, orix, diffsims) read.

    Parameters
    ----------
    crystal : Crystal
    path : str or Path
    comment : str, optional
        Comment lines written at the top (default: ``crystal.source``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> si = load_phase("Si")
    >>> p = write_cif(si, pathlib.Path(tempfile.mkdtemp()) / "si.cif")
    >>> read_cif(p).cell == si.cell
    True
    """
    path = Path(path)
    a, b, c, al, be, ga = crystal.cell
    lines = [f"# {ln}" for ln in (comment if comment is not None else crystal.source).splitlines()]
    lines += [
        f"data_{re.sub(r'[^A-Za-z0-9_]', '_', crystal.name)}",
        f"_chemical_formula_sum '{crystal.name}'",
        f"_space_group_name_H-M_alt '{crystal.space_group or '?'}'",
        f"_cell_length_a {a:.6f}",
        f"_cell_length_b {b:.6f}",
        f"_cell_length_c {c:.6f}",
        f"_cell_angle_alpha {al:.4f}",
        f"_cell_angle_beta {be:.4f}",
        f"_cell_angle_gamma {ga:.4f}",
        "",
        "loop_",
        "_space_group_symop_operation_xyz",
    ]
    lines += [
        f"'{format_symop(r, t)}'"
        for r, t in zip(crystal.rotations, crystal.translations, strict=True)
    ]
    lines += [
        "",
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_occupancy",
        "_atom_site_B_iso_or_equiv",
    ]
    for s in crystal.sites:
        x, y, z = s.frac
        lines.append(
            f"{s.label} {s.element} {x:.8f} {y:.8f} {z:.8f} {s.occupancy:.6f} {s.b_iso:.6f}"
        )
    return write_text("\n".join(lines) + "\n", path)


# --------------------------------------------------------------------------------------
# packaged phases
# --------------------------------------------------------------------------------------


def available_phases() -> list[str]:
    """Names of the phases shipped with anodemap (files in ``anodemap/data/structures``).

    Examples
    --------
    >>> {"Si", "Li15Si4"} <= set(available_phases())
    True
    """
    folder = resources.files("anodemap").joinpath("data", "structures")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".cif"))


def structure_path(name: str) -> Path:
    """Path of a packaged structure file (``"Si"`` -> ``.../data/structures/Si.cif``)."""
    folder = resources.files("anodemap").joinpath("data", "structures")
    p = folder.joinpath(f"{name}.cif")
    if not p.is_file():
        raise AnodemapInputError(
            f"no packaged phase {name!r}; packaged phases: {', '.join(available_phases())}. "
            "Pass a CIF file path to use another phase."
        )
    return Path(str(p))


def load_phase(name_or_path: str | Path | Crystal) -> Crystal:
    """A packaged phase by name (``"Si"``, ``"Li15Si4"``) or a phase from a CIF path.

    Examples
    --------
    >>> load_phase("Si").space_group
    'F d -3 m'
    """
    if isinstance(name_or_path, Crystal):
        return name_or_path
    p = Path(name_or_path)
    if p.suffix.lower() == ".cif" or p.exists():
        return read_cif(p)
    return _load_packaged(str(name_or_path))


@cache
def _load_packaged(name: str) -> Crystal:
    return read_cif(structure_path(name), name=name)
