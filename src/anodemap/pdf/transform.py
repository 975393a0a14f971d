"""Reduced intensity φ(s), reduced pair distribution G(r) and its first peaks.

Conventions (anodemap's, see ``docs/pdf.md``): ``s = 1/d`` in 1/Å (``q = 2πs``), r in Å.
The electron reduced density function route of Cockayne and McKenzie [1]_ [2]_:

* reduced intensity, from the azimuthally averaged elastic intensity I(s) of N atoms::

      φ(s) = s · (I(s) − N⟨f²⟩(s) − B(s)) / (N ⟨f⟩(s)²)

  with ⟨f⟩, ⟨f²⟩ the composition averages of the electron scattering factors
  (:mod:`anodemap.pdf.scattering`), N (a scale: atoms × dose × detector gain) and the smooth
  background B(s) (none, a constant or a straight line) fitted by linear least squares so
  that ``N⟨f²⟩ + B`` matches I(s) at high s, where I(s) oscillates about it;
* reduced pair distribution function::

      G(r) = 8π ∫ φ(s) sin(2π s r) ds  =  4π r [ρ(r) − ρ₀]

  (the same as ``G(r) = (2/π) ∫ q [S(q) − 1] sin(q r) dq`` with q = 2πs), optionally with the
  Lorch window ``L(s) = sin(π s/s_max)/(π s/s_max)`` [3]_ under the integral.

References
----------
.. [1] D. J. H. Cockayne and D. R. McKenzie, "Electron diffraction analysis of
       polycrystalline and amorphous thin films", Acta Cryst. A44 (1988) 870-878.
.. [2] D. J. H. Cockayne, "The study of nanovolumes of amorphous materials using electron
       scattering", Annu. Rev. Mater. Res. 37 (2007) 159-187.
.. [3] E. Lorch, "Neutron diffraction by germania, silica and radiation-damaged silica
       glasses", J. Phys. C 2 (1969) 229-237.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.pdf.scattering import (
    mean_scattering_factors,
    parse_composition,
    scattering_source,
)

__all__ = [
    "DAMPINGS",
    "Peak",
    "ReducedIntensity",
    "damping_window",
    "find_peaks",
    "lorch_window",
    "pair_distribution",
    "reduced_intensity",
]

Fit = Literal["scale", "scale+constant", "scale+linear"]
Damping = Literal["lorch", "hann"] | None
#: The damping windows :func:`damping_window` knows (None: no window).
DAMPINGS = ("lorch", "hann", None)

#: Fraction of the s range, at its high end, over which N and the background are fitted
#: (model choice: the upper half, where the oscillations of φ are weak; cf. [2]).
DEFAULT_FIT_FRACTION = 0.5


@dataclass(frozen=True)
class ReducedIntensity:
    """Result of :func:`reduced_intensity`; every choice made is kept for the summary.

    Attributes
    ----------
    s : ndarray
        s = 1/d in 1/Å, the samples inside ``s_range``.
    phi : ndarray
        Reduced intensity φ(s) in 1/Å (dimension of s; f cancels).
    n_atoms : float
        Fitted normalisation N (intensity units per Å² of ⟨f²⟩).
    background : tuple of float
        Polynomial coefficients of B(s), lowest order first (intensity units, per 1/Å^k).
    mean_f, mean_f2 : ndarray
        ⟨f⟩(s) in Å and ⟨f²⟩(s) in Å² on ``s``.
    composition : dict
        Atom fractions used.
    s_range, fit_range : tuple of float
        The s interval kept and the one the fit used, 1/Å.
    fit : str
        Background model: ``"scale"``, ``"scale+constant"`` or ``"scale+linear"``.
    """

    s: np.ndarray
    phi: np.ndarray
    n_atoms: float
    background: tuple[float, ...]
    mean_f: np.ndarray
    mean_f2: np.ndarray
    composition: dict[str, float]
    s_range: tuple[float, float]
    fit_range: tuple[float, float]
    fit: str

    def summary(self) -> dict[str, Any]:
        """The choices and fitted numbers as JSON-ready values."""
        return {
            "composition": dict(self.composition),
            "s_range_inv_angstrom": list(self.s_range),
            "fit_range_inv_angstrom": list(self.fit_range),
            "fit": self.fit,
            "n_atoms": self.n_atoms,
            "background_coefficients": list(self.background),
            "scattering_factors": scattering_source(),
        }


def _as_1d(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise AnodemapInputError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def reduced_intensity(
    s: np.ndarray,
    intensity: np.ndarray,
    composition: Mapping[str, float] | str,
    *,
    s_range: tuple[float, float] | None = None,
    fit: Fit = "scale+constant",
    fit_range: tuple[float, float] | None = None,
) -> ReducedIntensity:
    """Reduced intensity φ(s) of an azimuthally averaged electron diffraction pattern.

    ``φ(s) = s · (I(s) − N⟨f²⟩(s) − B(s)) / (N ⟨f⟩(s)²)`` (Cockayne and McKenzie 1988;
    Cockayne 2007, Annu. Rev. Mater. Res. 37:159), with N and the background B fitted by
    linear least squares to ``I ≈ N⟨f²⟩ + B`` over ``fit_range``, so that φ oscillates about
    zero at high s. The relativistic factor γ² of f_e is absorbed in N.

    Parameters
    ----------
    s : array_like, shape (n,)
        s = 1/d in 1/Å, increasing.
    intensity : array_like, shape (n,)
        Azimuthal average I(s) (any linear unit: counts, electrons).
    composition : mapping or str
        Element → amount, e.g. ``{"Si": 1, "Li": 3.5}`` or ``"Si:1 Li:3.5"``.
    s_range : (float, float), optional
        s interval kept, 1/Å (default: all samples with s > 0). Exclude the direct beam and
        the beam stop at low s, and the noise floor at high s.
    fit : {"scale+constant", "scale", "scale+linear"}
        Background model B(s): none, a constant (default: the usual allowance for the
        inelastic and incoherent background that survives energy filtering), or a line.
    fit_range : (float, float), optional
        s interval of the fit (default: the upper half of ``s_range``).

    Returns
    -------
    ReducedIntensity
        φ(s) on the kept s and the fitted numbers.

    Examples
    --------
    >>> from anodemap.pdf import mean_scattering_factors
    >>> s = np.linspace(0.1, 2.0, 400)
    >>> f, f2 = mean_scattering_factors({"Si": 1}, s)
    >>> I = 100.0 * (f2 + 0.2 * f**2 * np.sinc(2 * s * 2.35)) + 3.0  # weak shell + background
    >>> ri = reduced_intensity(s, I, {"Si": 1})
    >>> round(ri.n_atoms), round(ri.background[0], 1)   # N = 100, B = 3 to within 1 %
    (99, 3.1)
    """
    s = _as_1d("s", s)
    intensity = _as_1d("intensity", intensity)
    if s.shape != intensity.shape:
        raise AnodemapInputError(
            f"s and intensity differ in length ({s.size} and {intensity.size})"
        )
    if np.any(np.diff(s) <= 0):
        raise AnodemapInputError("s must be strictly increasing (s = 1/d in 1/Å)")
    fractions = parse_composition(composition)
    lo, hi = (float(s[s > 0][0]), float(s[-1])) if s_range is None else map(float, s_range)
    keep = (s >= lo) & (s <= hi) & (s > 0)
    if keep.sum() < 8:
        raise AnodemapInputError(
            f"s_range ({lo}, {hi}) 1/Å holds {keep.sum()} samples; give a wider --s-range"
        )
    flo, fhi = (lo + DEFAULT_FIT_FRACTION * (hi - lo), hi) if fit_range is None else fit_range
    sk, ik = s[keep], intensity[keep]
    mean_f, mean_f2 = mean_scattering_factors(fractions, sk)
    in_fit = (sk >= flo) & (sk <= fhi)
    degree = {"scale": -1, "scale+constant": 0, "scale+linear": 1}.get(fit)
    if degree is None:
        raise AnodemapInputError(
            f"fit={fit!r} is not one of 'scale', 'scale+constant', 'scale+linear'"
        )
    if in_fit.sum() < degree + 4:
        raise AnodemapInputError(f"fit_range ({flo}, {fhi}) 1/Å holds too few samples")
    # design matrix: ⟨f²⟩ then 1, s; columns scaled to unit norm because ⟨f²⟩ (≈0.01-1 Å²)
    # and 1 differ by orders of magnitude and the fit must not depend on units
    columns = [mean_f2] + [sk**k for k in range(degree + 1)]
    design = np.stack([c[in_fit] for c in columns], axis=1)
    norms = np.linalg.norm(design, axis=0)
    coef, *_ = np.linalg.lstsq(design / norms, ik[in_fit], rcond=None)
    coef = coef / norms
    n_atoms = float(coef[0])
    if not n_atoms > 0:
        raise AnodemapInputError(
            "the fitted normalisation N is not positive: the pattern does not follow "
            "⟨f²⟩ at high s; check the composition, the s calibration or --s-range"
        )
    background = np.zeros_like(sk)
    for k, c in enumerate(coef[1:]):
        background += c * sk**k
    phi = sk * (ik - n_atoms * mean_f2 - background) / (n_atoms * mean_f**2)
    return ReducedIntensity(
        s=sk,
        phi=phi,
        n_atoms=n_atoms,
        background=tuple(float(c) for c in coef[1:]),
        mean_f=mean_f,
        mean_f2=mean_f2,
        composition=fractions,
        s_range=(lo, hi),
        fit_range=(float(flo), float(fhi)),
        fit=fit,
    )


def lorch_window(s: np.ndarray, s_max: float) -> np.ndarray:
    """Lorch (1969) damping ``sin(π s/s_max)/(π s/s_max)``, 0 at s_max.

    Examples
    --------
    >>> lorch_window(np.array([0.0, 1.0, 2.0]), 2.0).round(3).tolist()
    [1.0, 0.637, 0.0]
    """
    return np.sinc(np.asarray(s, dtype=np.float64) / s_max)


def damping_window(s: np.ndarray, damping: Damping, s_max: float | None = None) -> np.ndarray:
    """The damping window W(s) put under the G(r) integral.

    ``"lorch"``: Lorch (1969) ``sin(π s/s_max)/(π s/s_max)``; ``"hann"``: the raised cosine
    ``(1 + cos(π s/s_max))/2`` (Blackman and Tukey 1958; it damps harder: broader peaks,
    weaker ripples); None: W = 1. Both windows reach 0 at ``s_max`` (default: the last s).

    Examples
    --------
    >>> damping_window(np.array([0.0, 1.0, 2.0]), "hann").tolist()
    [1.0, 0.5, 0.0]
    >>> damping_window(np.array([0.0, 1.0]), None).tolist()
    [1.0, 1.0]
    """
    s = np.asarray(s, dtype=np.float64)
    top = float(s[-1]) if s_max is None else float(s_max)
    if damping == "lorch":
        return lorch_window(s, top)
    if damping == "hann":
        return 0.5 * (1.0 + np.cos(np.pi * np.clip(s / top, 0.0, 1.0)))
    if damping is None:
        return np.ones_like(s)
    raise AnodemapInputError(f"damping={damping!r} is not one of 'lorch', 'hann', None")


def pair_distribution(
    s: np.ndarray,
    phi: np.ndarray,
    r: np.ndarray,
    *,
    damping: Damping = "lorch",
    s_max: float | None = None,
) -> np.ndarray:
    """Reduced pair distribution function ``G(r) = 8π ∫ φ(s) W(s) sin(2π s r) ds``.

    With s = 1/d this equals ``4π r [ρ(r) − ρ₀]`` (1/Å²), the same function as
    ``(2/π) ∫ q[S(q) − 1] sin(qr) dq`` with q = 2πs. The integral is the trapezoidal rule on
    the given samples of s (which need not be uniform).

    Parameters
    ----------
    s, phi : array_like, shape (n,)
        s = 1/d (1/Å) and φ(s) from :func:`reduced_intensity`.
    r : array_like, shape (m,)
        Distances in Å at which G is evaluated (e.g. ``np.arange(0, 10, 0.005)``).
    damping : {"lorch", "hann", None}
        Window W(s) (:func:`damping_window`): Lorch (default; it trades resolution for
        suppressed termination ripples, which otherwise show as false peaks beside sharp
        shells), the raised cosine, or none (W = 1).
    s_max : float, optional
        s at which the window reaches zero (default: the last s).

    Returns
    -------
    ndarray, shape (m,)
        G(r) in 1/Å².

    Examples
    --------
    >>> s = np.linspace(0.0, 2.0, 801)
    >>> phi = np.sin(2 * np.pi * s * 2.35) / (2 * np.pi * 2.35)   # one shell at 2.35 Å
    >>> r = np.arange(0.0, 6.0, 0.01)
    >>> float(r[np.argmax(pair_distribution(s, phi, r))])
    2.35
    """
    s = _as_1d("s", s)
    phi = _as_1d("phi", phi)
    r = _as_1d("r", r)
    if s.shape != phi.shape:
        raise AnodemapInputError(f"s and phi differ in length ({s.size} and {phi.size})")
    weight = phi * damping_window(s, damping, s_max)
    # trapezoid weights once, then one matrix product per block of r (bounded memory)
    ds = np.diff(s)
    w = np.zeros_like(s)
    w[:-1] += 0.5 * ds
    w[1:] += 0.5 * ds
    weight = weight * w
    out = np.empty_like(r)
    for start in range(0, r.size, 1024):
        rb = r[start : start + 1024]
        out[start : start + 1024] = np.sin(2.0 * np.pi * np.outer(rb, s)) @ weight
    return 8.0 * np.pi * out


@dataclass(frozen=True)
class Peak:
    """One peak of G(r).

    Attributes
    ----------
    r_angstrom : float
        Position from a quadratic fit to the top of the peak, Å.
    height : float
        G at that position (1/Å²).
    fwhm_angstrom : float
        Full width where G falls to half the height (linear interpolation between
        samples); NaN when a neighbouring peak keeps G above half height.
    """

    r_angstrom: float
    height: float
    fwhm_angstrom: float

    def as_dict(self) -> dict[str, float]:
        """The keys of the peak table in ``summary.json``."""
        return asdict(self)


def _parabola(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``c2 x² + c1 x + c0`` through at least three points: the normal
    equations by Cramer's rule in plain floats (``np.polyfit``'s answer without its
    overhead, which dominated the peak search of the bootstrap's resamples)."""
    h = float(np.max(np.abs(x))) or 1.0
    us, ys = (x / h).tolist(), y.tolist()  # of order 1: well-conditioned
    p0, p1, p2, p3, p4, q0, q1, q2 = float(len(us)), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for u, v in zip(us, ys, strict=True):
        u2 = u * u
        p1, p2, p3, p4 = p1 + u, p2 + u2, p3 + u2 * u, p4 + u2 * u2
        q0, q1, q2 = q0 + v, q1 + v * u, q2 + v * u2

    def det(
        a: float, b: float, c: float, d: float, e: float, f: float, g: float, i: float, j: float
    ) -> float:
        return a * (e * j - f * i) - b * (d * j - f * g) + c * (d * i - e * g)

    m = det(p4, p3, p2, p3, p2, p1, p2, p1, p0)
    c2 = det(q2, p3, p2, q1, p2, p1, q0, p1, p0) / m
    c1 = det(p4, q2, p2, p3, q1, p1, p2, q0, p0) / m
    c0 = det(p4, p3, q2, p3, p2, q1, p2, p1, q0) / m
    return c2 / h**2, c1 / h, c0


def _half_crossing(r: np.ndarray, g: np.ndarray, i: int, half: float, step: int) -> float:
    """r where G first drops below ``half`` walking from sample i by ``step``; NaN if a
    rise (another peak) or the array end comes first."""
    seg = g[i::step] if step > 0 else g[i::-1]
    stop = (seg[1:] < half) | (seg[1:] > seg[:-1])  # below half, or climbing a neighbour
    if not stop.any():
        return float("nan")
    m = int(np.argmax(stop))  # samples m (inside) and m + 1 (the first below, or higher)
    if not seg[m + 1] < half:
        return float("nan")
    j, k = i + step * m, i + step * (m + 1)
    return float(r[j] + (r[k] - r[j]) * (g[j] - half) / (g[j] - g[k]))


def find_peaks(
    r: np.ndarray,
    g: np.ndarray,
    n: int = 3,
    *,
    r_min: float = 1.0,
    min_height_fraction: float = 0.05,
    top_fraction: float = 0.9,
) -> list[Peak]:
    """The first ``n`` peaks of G(r), in order of r.

    Candidates are the positive local maxima beyond ``r_min`` whose height exceeds
    ``min_height_fraction`` of the largest; each is refined by a least-squares parabola
    through the samples around the maximum that stay above ``top_fraction`` of it (at least
    the maximum and its two neighbours), which removes the grid quantisation.

    Parameters
    ----------
    r, g : array_like, shape (m,)
        Uniformly or non-uniformly spaced r (Å, increasing) and G(r).
    n : int
        Number of peaks returned (fewer if fewer are found).
    r_min : float
        Peaks closer than this (Å) are ignored (termination ripples and the errors of N
        live near r = 0; the shortest bond in the anode materials, O-H, is about 0.96 Å:
        lower r_min for hydroxides).
    min_height_fraction : float
        Relative height threshold for a candidate.
    top_fraction : float
        Samples above this fraction of the peak maximum enter the parabola.

    Returns
    -------
    list of Peak

    Examples
    --------
    >>> r = np.arange(0.0, 6.0, 0.01)
    >>> g = np.exp(-((r - 2.353) / 0.1) ** 2 / 2) + 0.5 * np.exp(-((r - 3.84) / 0.15) ** 2 / 2)
    >>> [round(p.r_angstrom, 3) for p in find_peaks(r, g, n=2)]
    [2.353, 3.84]
    >>> round(find_peaks(r, g, n=1)[0].fwhm_angstrom, 2)   # 2.3548 σ = 0.235
    0.24
    """
    r = _as_1d("r", r)
    g = _as_1d("G", g)
    if r.shape != g.shape:
        raise AnodemapInputError(f"r and G differ in length ({r.size} and {g.size})")
    inner = np.arange(1, g.size - 1)
    is_max = (g[inner] > g[inner - 1]) & (g[inner] >= g[inner + 1]) & (r[inner] >= r_min)
    cand = inner[is_max & (g[inner] > 0)]
    if cand.size == 0:
        return []
    cand = cand[g[cand] >= min_height_fraction * g[cand].max()]
    peaks: list[Peak] = []
    for i in cand[:n]:
        lo = i - 1
        while lo > 0 and g[lo - 1] >= top_fraction * g[i] and g[lo - 1] <= g[lo]:
            lo -= 1
        hi = i + 1
        while hi < g.size - 1 and g[hi + 1] >= top_fraction * g[i] and g[hi + 1] <= g[hi]:
            hi += 1
        x = r[lo : hi + 1] - r[i]  # centred: a well-conditioned fit
        c2, c1, c0 = _parabola(x, g[lo : hi + 1])
        if c2 < 0:
            dx = float(np.clip(-c1 / (2.0 * c2), x[0], x[-1]))
            pos, height = float(r[i]) + dx, float(c0 + c1 * dx + c2 * dx * dx)
        else:  # flat top: keep the sample
            pos, height = float(r[i]), float(g[i])
        half = 0.5 * height
        left = _half_crossing(r, g, i, half, -1)
        right = _half_crossing(r, g, i, half, +1)
        peaks.append(Peak(pos, height, right - left))
    return peaks
