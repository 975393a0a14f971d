"""The linear model of an X-ray spectrum: line families plus a smooth background.

Every column of the design matrix is a fixed shape in energy whose amplitude is fitted:

- one column per line *family* (the K, L or M lines of one element): the Gaussians of
  its lines, each of the detector's width at its energy
  (:func:`anodemap.edx.resolution.fwhm_ev`), integrated over each channel, weighted by
  the table's weights relative to the main line (:mod:`anodemap.edx.lines`). Its
  amplitude is the area of the main line in counts: the net intensity of ``Si_Ka``;
- the background: with ``background="local"`` (default) a Legendre polynomial of order
  ``order`` on each *segment* of the spectrum around the lines (each line's energy
  ± ``window_fwhm`` FWHM, overlapping ones merged), and only the channels of the
  segments in the fit — the bremsstrahlung under a line is smooth over a few hundred eV,
  where no low-order polynomial follows it from 0.2 to 20 keV (absorption edges, the
  detector's window); with ``background="polynomial"`` one polynomial of order
  ``order`` over the whole energy range (exspy's default model: order 6);
- optionally (``artefacts``) the detector's artefacts, each with its own amplitude
  (:func:`artefact_peaks`): the Si escape peaks of a family (its lines above the Si K
  edge, each at E - E(Si Ka), in the family's ratios) and sum (pile-up) peaks at
  E1 + E2 of each pair of the families' main lines, Gaussians of the detector's width
  at their energy.

Examples
--------
>>> import numpy as np
>>> e = np.arange(0.0, 4000.0, 10.0)
>>> m = build_model(e, ["Si_Ka", "O_Ka"], 130.0)
>>> m.columns[:2], m.design.shape[1]
(['Si_Ka', 'O_Ka'], 8)
>>> round(float(m.design[:, 0].sum()), 3)   # Ka (area 1) + Kb (0.028)
1.028
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import legendre
from scipy.special import ndtr

from anodemap.edx.lines import XrayLine, family_of, xray_line
from anodemap.edx.resolution import fwhm_ev, sigma_ev
from anodemap.errors import AnodemapInputError

__all__ = [
    "ARTEFACT_KINDS",
    "Family",
    "LinearModel",
    "artefact_peaks",
    "build_model",
    "channel_edges",
    "family_key",
    "line_shape",
]

# The lowest energy fitted by default (eV): the detector's noise peak at 0 eV and its
# tail stay out (model choice: 150 eV is 3 FWHM of a 50 eV noise peak).
MIN_ENERGY_EV = 150.0
BACKGROUNDS = ("local", "polynomial")
ARTEFACT_KINDS = ("escape", "sum")
# The Si K absorption edge (eV; Deslattes et al., Rev. Mod. Phys. 75 (2003) 35, as
# xraylib gives it): photons above it can ionise the detector's Si K shell and lose a
# Si K photon (an escape peak at E - E(Si Ka)); those below cannot (Reed & Ware, J. Phys.
# E 5 (1972) 582; Goldstein et al., Scanning Electron Microscopy and X-ray
# Microanalysis, 3rd ed. (2003), section 7.2.7). Escape of Si Kb photons (a few % of
# the Si Ka escape) is not modelled.
SI_K_EDGE_EV = 1838.9


@dataclass(frozen=True)
class Family:
    """The lines of one element's K, L or M shell, fitted with one amplitude.

    Attributes
    ----------
    main : str
        Its main line (``Si_Ka``): the amplitude is this line's area.
    lines : tuple of XrayLine
        Its lines within the energy range, main line first.
    """

    main: str
    lines: tuple[XrayLine, ...]


@dataclass
class LinearModel:
    """A design matrix over the channels of a spectrum.

    Attributes
    ----------
    energy_ev : ndarray (n_channels,)
        The spectrum's channel centres.
    used : ndarray of int (n_used,)
        The channels in the fit.
    design : ndarray (n_used, n_columns)
        Counts per channel for unit amplitude of each column.
    columns : list of str
        The families' main lines, then ``background_0``, ``background_1``, ...
    families : list of Family
    segments : list of (float, float)
        The energy intervals fitted (eV).
    artefacts : dict of str to list of (float, float)
        The artefact columns, after the families (``escape_Fe_Ka``, ``sum_Si_Ka+Si_Ka``),
        each with its peaks (energy in eV, relative weight).
    """

    energy_ev: np.ndarray
    used: np.ndarray
    design: np.ndarray
    columns: list[str]
    families: list[Family]
    segments: list[tuple[float, float]]
    artefacts: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def n_peaks(self) -> int:
        """Columns of lines and artefacts (the background's come after them)."""
        return len(self.families) + len(self.artefacts)

    @property
    def n_families(self) -> int:
        return len(self.families)


def family_key(name: str) -> str:
    """The family (its main line's name) that line ``name`` belongs to.

    Examples
    --------
    >>> family_key("Fe_Kb"), family_key("Pt_Lb1")
    ('Fe_Ka', 'Pt_La')
    """
    return family_of(name)[0].name


def channel_edges(energy_ev: np.ndarray) -> np.ndarray:
    """Edges of channels centred on ``energy_ev`` (n + 1 values, midpoints inside)."""
    e = np.asarray(energy_ev, dtype=float)
    if e.size < 2:
        raise AnodemapInputError("an X-ray spectrum needs at least two channels")
    mid = 0.5 * (e[1:] + e[:-1])
    return np.concatenate([[e[0] - (mid[0] - e[0])], mid, [e[-1] + (e[-1] - mid[-1])]])


def line_shape(edges: np.ndarray, lines: Sequence[XrayLine], fwhm_mn_ka_ev: float) -> np.ndarray:
    """Counts per channel of a family of lines whose main line has area 1.

    Each line is a Gaussian of the detector's width, integrated over each channel.
    """
    return _peak_shape(edges, [(ln.energy_ev, ln.weight) for ln in lines], fwhm_mn_ka_ev)


def artefact_peaks(
    families: Sequence[Family], kinds: Sequence[str], lo: float, hi: float
) -> dict[str, list[tuple[float, float]]]:
    """The artefact peaks of ``families`` within ``lo``-``hi`` eV: name → its peaks
    as (energy in eV, relative weight).

    ``escape_<main line>``: each line of the family above the Si K edge, at
    E - E(Si Ka), with the line's weight (one escape fraction for the family, fitted).
    ``sum_<line>+<line>``: the sum of two main lines' energies (each pair once, a line
    with itself included).

    Examples
    --------
    >>> from anodemap.edx.lines import family_of
    >>> fams = [Family(n, tuple(family_of(n))) for n in ("Cu_Ka", "O_Ka")]
    >>> peaks = artefact_peaks(fams, ["escape", "sum"], 150.0, 20000.0)
    >>> sorted(peaks)
    ['escape_Cu_Ka', 'sum_Cu_Ka+Cu_Ka', 'sum_Cu_Ka+O_Ka', 'sum_O_Ka+O_Ka']
    >>> round(peaks["escape_Cu_Ka"][0][0] / 1e3, 3)
    6.301
    """
    out: dict[str, list[tuple[float, float]]] = {}
    for kind in kinds:
        if kind not in ARTEFACT_KINDS:
            raise AnodemapInputError(f"--artefacts {kind}: choose from {', '.join(ARTEFACT_KINDS)}")
    if "escape" in kinds:
        si_ka = xray_line("Si_Ka").energy_ev
        for f in families:
            peaks = [
                (ln.energy_ev - si_ka, ln.weight)
                for ln in f.lines
                if ln.energy_ev > SI_K_EDGE_EV and lo <= ln.energy_ev - si_ka <= hi
            ]
            if peaks:
                out[f"escape_{f.main}"] = peaks
    if "sum" in kinds:
        mains = [f.lines[0] for f in families]
        for i, a in enumerate(mains):
            for b in mains[i:]:
                if lo <= a.energy_ev + b.energy_ev <= hi:
                    out[f"sum_{a.name}+{b.name}"] = [(a.energy_ev + b.energy_ev, 1.0)]
    return out


def _peak_shape(edges: np.ndarray, peaks: Sequence[tuple[float, float]], fwhm_mn_ka_ev: float):
    """Gaussians of the detector's width at each energy, integrated over each channel."""
    out = np.zeros(edges.size - 1)
    for energy, weight in peaks:
        s = float(sigma_ev(energy, fwhm_mn_ka_ev))
        out += weight * np.diff(ndtr((edges - energy) / s))
    return out


def _segments(
    families: Sequence[Family],
    fwhm_mn_ka_ev: float,
    window_fwhm: float,
    lo: float,
    hi: float,
    extra: Sequence[float] = (),
) -> list[tuple[float, float]]:
    energies = [ln.energy_ev for f in families for ln in f.lines] + list(extra)
    spans = sorted(
        (
            e - window_fwhm * float(fwhm_ev(e, fwhm_mn_ka_ev)),
            e + window_fwhm * float(fwhm_ev(e, fwhm_mn_ka_ev)),
        )
        for e in energies
    )
    merged: list[list[float]] = []
    for a, b in spans:
        a, b = max(a, lo), min(b, hi)
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _legendre_columns(e: np.ndarray, a: float, b: float, order: int) -> np.ndarray:
    x = 2.0 * (e - a) / (b - a) - 1.0 if b > a else np.zeros_like(e)
    return legendre.legvander(x, order)


def build_model(
    energy_ev: np.ndarray,
    lines: Sequence[str],
    fwhm_mn_ka_ev: float,
    *,
    background: str = "local",
    order: int = 2,
    window_fwhm: float = 2.5,
    energy_range_ev: tuple[float, float] | None = None,
    families: dict[str, Sequence[XrayLine]] | None = None,
    artefacts: Sequence[str] = (),
) -> LinearModel:
    """The design matrix of ``lines`` (their families) and a background.

    Parameters
    ----------
    energy_ev : ndarray
        Channel centres in eV.
    lines : sequence of str
        Lines whose families are modelled (``Si_Ka``, ``Fe_Kb``, ...).
    fwhm_mn_ka_ev : float
        The detector's FWHM at Mn Ka (eV).
    background : {"local", "polynomial"}
        See the module's description.
    order : int
        Polynomial order of the background (per segment for ``"local"``).
    window_fwhm : float
        Half-width of a line's segment in FWHM of the line (``"local"``).
    energy_range_ev : (float, float), optional
        Channels outside are not fitted (default: from 150 eV to the end of the axis).
    families : dict of str to sequence of XrayLine, optional
        The lines of each family (main line name → its lines, main line first) instead of
        the table's, e.g. another table's energies and weights to compare with.
    artefacts : sequence of str
        Detector artefacts to model, each peak with its own amplitude: ``"escape"``,
        ``"sum"`` (:func:`artefact_peaks`). Default none.

    Returns
    -------
    LinearModel

    Raises
    ------
    AnodemapInputError
        An unknown line, a choice of background not known, or a model that the
        channels cannot determine (a line at the very end of the axis).
    """
    if background not in BACKGROUNDS:
        raise AnodemapInputError(
            f"--background {background!r}: choose one of {', '.join(BACKGROUNDS)}"
        )
    e = np.asarray(energy_ev, dtype=float)
    edges = channel_edges(e)
    lo = max(float(e.min()), MIN_ENERGY_EV) if energy_range_ev is None else energy_range_ev[0]
    hi = float(e.max()) if energy_range_ev is None else energy_range_ev[1]
    given = families or {}
    fams: list[Family] = []
    for name in lines:
        key = name if name in given else family_key(name)
        if any(f.main == key for f in fams):
            continue
        members = given[key] if key in given else family_of(key)
        inside = tuple(ln for ln in members if lo <= ln.energy_ev <= hi)
        if not inside or not inside[0].is_main:
            main = xray_line(key)
            raise AnodemapInputError(
                f"--lines: {main.name} at {main.energy_ev / 1e3:.4g} keV lies outside the "
                f"fitted energy range {lo / 1e3:.3g}-{hi / 1e3:.3g} keV"
            )
        fams.append(Family(key, inside))
    peaks = artefact_peaks(fams, tuple(artefacts), lo, hi)
    if background == "local":
        extra = [e for p in peaks.values() for e, _ in p]
        segments = _segments(fams, fwhm_mn_ka_ev, window_fwhm, lo, hi, extra)
    else:
        segments = [(lo, hi)]
    inside_seg = np.zeros(e.size, dtype=bool)
    for a, b in segments:
        inside_seg |= (e >= a) & (e <= b)
    used = np.flatnonzero(inside_seg)
    columns = [f.main for f in fams] + list(peaks)
    shapes = [line_shape(edges, f.lines, fwhm_mn_ka_ev) for f in fams]
    shapes += [_peak_shape(edges, p, fwhm_mn_ka_ev) for p in peaks.values()]
    blocks = [np.stack([v[used] for v in shapes], 1)]
    k = 0
    for a, b in segments:
        sel = (e[used] >= a) & (e[used] <= b)
        cols = np.zeros((used.size, order + 1))
        cols[sel] = _legendre_columns(e[used][sel], a, b, order)
        blocks.append(cols)
        columns += [f"background_{k + i}" for i in range(order + 1)]
        k += order + 1
    design = np.concatenate(blocks, axis=1)
    rank = np.linalg.matrix_rank(design)
    if rank < design.shape[1]:
        raise AnodemapInputError(
            f"the model of {', '.join(f.main for f in fams)} cannot be fitted: "
            f"{design.shape[1]} components over {used.size} channels are not independent "
            "(a line at the end of the spectrum, an artefact peak on a line, or a background "
            "order too high for its segment); lower --background-order, leave that line out "
            "of --lines or that artefact out of --artefacts"
        )
    return LinearModel(e, used, design, columns, fams, segments, peaks)
