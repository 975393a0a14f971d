"""EDX spectrum images of the simulated electrode, with their truth.

The phantom's columns (:mod:`anodemap.synth.phantom`) emit Si Ka/Kb and O Ka lines on a
bremsstrahlung background, broadened by the detector and counted with Poisson noise.
Lithium, whose K emission (about 50 eV) no usual EDX detector records, adds nothing but
dilution. Every number here is a model choice made to resemble a cryo-EDX map of the
paper's electrode (Fig. 3b: Si everywhere, O at pores and grain boundaries), not a
measurement:

- Si atoms per column ∝ t (1 - f_ox) / (1 + 0.75 x) + 0.25 t f_ox: t the relative
  thickness, f_ox the oxide share, x = Li/Si, whose silicide holds fewer Si atoms per
  volume (Li15Si4, x = 3.75, has 3.8 times the volume of its Si: 1 + 0.75 x); the
  oxide (Li2O, lithium silicates) holds a quarter as much Si;
- O atoms per column ∝ t f_ox;
- line counts: ``si_counts`` Si Ka counts from a column of c-Si at t/λ = 1, ``o_counts``
  O Ka from a column of pure oxide at t/λ = 1 (O Ka is weaker: a lower fluorescence
  yield and more absorption in the detector window); the family's other lines follow
  from the line table (Si Kb: 2.8 % of Si Ka);
- background: Kramers' bremsstrahlung, ∝ Z̄ t (E0 - E) / E, times a detector
  efficiency that falls below 1 keV (window absorption, exp(-(0.3 keV / E)^3)) and above
  10 keV (a 0.45 mm Si crystal becomes transparent, 1 - exp(-(14 keV / E)^3)), with
  ``background_counts`` counts per 10 eV channel at 2 keV for c-Si at t/λ = 1;
- the detector: Gaussian lines of the width of :func:`anodemap.edx.resolution.fwhm_ev`
  (``fwhm_mn_ka_ev`` at Mn Ka), integrated over each channel; Poisson counting;
- optional (all off by default, leaving the spectra as they were): ``extra_lines``, lines
  of other elements with the same counts in every pixel (e.g. Cu of a grid); Si escape
  peaks, a share ``escape_fraction`` of every line above the Si K edge moved to
  E - E(Si Ka) (the same share for every line: a model choice; real fractions fall with
  energy); sum (pile-up) peaks of each pair of main lines, N_ab = ``pileup`` N_a N_b
  (twice for a ≠ b: either order), ``pileup`` being the pile-up resolving time over
  the dwell time, each sum event taking one count from each of its two lines.

The truth maps are the expected (noise-free) net counts of each line, ``Si_Ka`` and
``O_Ka`` (the area of the line in counts, as ``anodemap edx`` measures it: after escape
and pile-up losses), those of the extra lines and of each artefact peak (``escape_Cu_Ka``,
``sum_Si_Ka+Si_Ka``), the expected bremsstrahlung counts and the phantom's fields.

Examples
--------
>>> from anodemap.synth import make_phantom
>>> sim = simulate_edx(make_phantom((16, 16), seed=0), seed=0)
>>> sim.spectra.shape, sim.spectra.dtype
((16, 16, 2048), dtype('uint16'))
>>> sorted(k for k in sim.truth if k.endswith("_Ka"))
['O_Ka', 'Si_Ka']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.synth.phantom import Label, Phantom

__all__ = ["SimulatedEDX", "edx_dataset", "simulate_edx", "write_edx_simulation"]

# model choices (module description)
_SI_PER_VOLUME_EXPANSION = 0.75
_SI_IN_OXIDE = 0.25
_WINDOW_EDGE_KEV = 0.3
_TRANSPARENCY_KEV = 14.0
_Z = {"Si": 14.0, "O": 8.0, "Li": 3.0}


@dataclass
class SimulatedEDX:
    """A simulated EDX spectrum image and its truth.

    Attributes
    ----------
    spectra : ndarray (ny, nx, E) of uint16
        Counts.
    energy_ev : ndarray (E,)
        Channel centres (eV).
    truth : dict
        Truth maps ``(ny, nx)`` (``Si_Ka``, ``O_Ka``, ``bremsstrahlung``, ``labels``,
        ``t_over_lambda``, ``oxide_fraction``, ``li_per_si``) and scalars.
    """

    spectra: np.ndarray
    energy_ev: np.ndarray
    truth: dict[str, Any]
    pixel_size_nm: float
    fwhm_mn_ka_ev: float
    beam_energy_kev: float
    expected: np.ndarray | None = field(default=None, repr=False)


def _efficiency(e_kev: np.ndarray) -> np.ndarray:
    e = np.maximum(e_kev, 1e-3)
    return np.exp(-((_WINDOW_EDGE_KEV / e) ** 3)) * (1.0 - np.exp(-((_TRANSPARENCY_KEV / e) ** 3)))


def bremsstrahlung_shape(energy_ev: np.ndarray, beam_energy_kev: float) -> np.ndarray:
    """Kramers' continuum times the detector efficiency, per channel, scaled to 1 at 2 keV.

    Examples
    --------
    >>> float(bremsstrahlung_shape(np.array([2000.0]), 200.0)[0])
    1.0
    """
    e = np.asarray(energy_ev, dtype=float) / 1e3

    def raw(x):
        x = np.asarray(x, dtype=float)
        k = np.where(x > 0, (beam_energy_kev - x) / np.maximum(x, 1e-3), 0.0)
        return np.clip(k, 0.0, None) * _efficiency(x)

    return raw(e) / raw(np.array([2.0]))[0]


def simulate_edx(
    phantom: Phantom,
    *,
    seed: int = 0,
    n_channels: int = 2048,
    channel_ev: float = 10.0,
    offset_ev: float = 0.0,
    fwhm_mn_ka_ev: float = 130.0,
    beam_energy_kev: float = 200.0,
    si_counts: float = 200.0,
    o_counts: float = 60.0,
    background_counts: float = 0.3,
    noise: bool = True,
    extra_lines: Mapping[str, float] | None = None,
    escape_fraction: float = 0.0,
    pileup: float = 0.0,
) -> SimulatedEDX:
    """Simulate the EDX spectrum image of ``phantom`` (see the module's description).

    Parameters
    ----------
    phantom : Phantom
    seed : int
        Seed of the Poisson noise.
    n_channels, channel_ev, offset_ev : int, float, float
        The energy axis: ``offset_ev + channel_ev * i`` (channel centres).
    fwhm_mn_ka_ev : float
        Detector resolution at Mn Ka (eV).
    beam_energy_kev : float
    si_counts, o_counts : float
        Si Ka and O Ka counts of a c-Si and a pure-oxide column at t/λ = 1.
    background_counts : float
        Bremsstrahlung counts per 10 eV at 2 keV for c-Si at t/λ = 1.
    noise : bool
        Poisson counts (False: the expected counts, rounded to no integer).
    extra_lines : mapping of str to float, optional
        Main lines of other elements (``{"Cu_Ka": 50.0}``) and their counts in every
        pixel (their families' other lines follow the table).
    escape_fraction : float
        Share of each line above the Si K edge recorded in its Si escape peak.
    pileup : float
        Pile-up resolving time over the dwell time (sum peaks), per count.

    Returns
    -------
    SimulatedEDX
    """
    from anodemap.edx.lines import family_of
    from anodemap.edx.model import channel_edges, line_shape

    energy = offset_ev + channel_ev * np.arange(n_channels, dtype=float)
    edges = channel_edges(energy)
    t = np.asarray(phantom.t_over_lambda, dtype=float)
    f_ox = np.asarray(phantom.oxide_fraction, dtype=float)
    x = np.asarray(phantom.li_per_si, dtype=float)
    si = t * (1.0 - f_ox) / (1.0 + _SI_PER_VOLUME_EXPANSION * x) + _SI_IN_OXIDE * t * f_ox
    o = t * f_ox
    li = si * x + 2.0 * o  # Li2O and silicates: about two Li per O (model choice)
    atoms = si + o + li
    zbar = np.where(
        atoms > 0, (_Z["Si"] * si + _Z["O"] * o + _Z["Li"] * li) / np.maximum(atoms, 1e-12), 0.0
    )
    mass = si * 28.09 + o * 16.0 + li * 6.94
    si_ka = si_counts * si
    o_ka = o_counts * o
    brems = background_counts * (channel_ev / 10.0) * (zbar / _Z["Si"]) * (mass / 28.09)
    shapes = {
        "Si_Ka": line_shape(edges, family_of("Si_Ka"), fwhm_mn_ka_ev),
        "O_Ka": line_shape(edges, family_of("O_Ka"), fwhm_mn_ka_ev),
    }
    cont = bremsstrahlung_shape(energy, beam_energy_kev)
    artefacts: dict[str, np.ndarray] = {}
    if extra_lines or escape_fraction or pileup:
        amps = {"Si_Ka": si_ka, "O_Ka": o_ka}
        for name, value in (extra_lines or {}).items():
            amps[name] = np.full(t.shape, float(value))
            shapes[name] = line_shape(edges, family_of(name), fwhm_mn_ka_ev)
        shapes, amps, artefacts = _artefacts(
            edges, fwhm_mn_ka_ev, shapes, amps, escape_fraction, pileup
        )
        si_ka, o_ka = amps["Si_Ka"], amps["O_Ka"]
        expected = brems[..., None] * cont
        for name, amp in {**amps, **artefacts}.items():
            expected = expected + amp[..., None] * shapes[name]
    else:
        expected = (
            si_ka[..., None] * shapes["Si_Ka"]
            + o_ka[..., None] * shapes["O_Ka"]
            + brems[..., None] * cont
        )
    if noise:
        rng = np.random.default_rng(seed)
        spectra = rng.poisson(expected).astype(np.uint16)
    else:
        spectra = expected
    truth: dict[str, Any] = {
        "Si_Ka": si_ka,
        "O_Ka": o_ka,
        "bremsstrahlung": brems * cont.sum(),
        "labels": np.asarray(phantom.labels),
        "t_over_lambda": t,
        "oxide_fraction": f_ox,
        "li_per_si": x,
        "pore_label": int(Label.PORE),
        "fwhm_mn_ka_eV": fwhm_mn_ka_ev,
        "beam_energy_kev": beam_energy_kev,
        "seed": seed,
        "model": "anodemap.synth.edx (Si Ka/Kb, O Ka on Kramers bremsstrahlung; Poisson)",
    }
    if extra_lines or escape_fraction or pileup:
        truth.update({k: v for k, v in amps.items() if k not in truth})
        truth.update(artefacts)
        truth["escape_fraction"] = escape_fraction
        truth["pileup"] = pileup
    return SimulatedEDX(
        spectra, energy, truth, phantom.pixel_size_nm, fwhm_mn_ka_ev, beam_energy_kev, expected
    )


def _artefacts(
    edges: np.ndarray,
    fwhm_mn_ka_ev: float,
    shapes: dict[str, np.ndarray],
    amps: dict[str, np.ndarray],
    escape_fraction: float,
    pileup: float,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Escape and sum peaks: the families' shapes and counts after their losses, and the
    artefacts' shapes (added to ``shapes``) and counts."""
    from anodemap.edx.lines import family_of, xray_line
    from anodemap.edx.model import SI_K_EDGE_EV, line_shape

    shapes, amps, out = dict(shapes), dict(amps), {}
    if pileup:
        names = list(amps)
        emitted = dict(amps)
        for i, a in enumerate(names):
            for b in names[i:]:
                key = f"sum_{a}+{b}"
                n = pileup * emitted[a] * emitted[b] * (1.0 if a == b else 2.0)
                out[key] = n
                amps[a] = amps[a] - n
                amps[b] = amps[b] - n
                energy = xray_line(a).energy_ev + xray_line(b).energy_ev
                shapes[key] = line_shape(edges, [_Peak(energy)], fwhm_mn_ka_ev)
    if escape_fraction:
        si_ka = xray_line("Si_Ka").energy_ev
        for name in list(amps):
            lines = family_of(name)
            above = [ln for ln in lines if ln.energy_ev > SI_K_EDGE_EV]
            if not above:
                continue
            kept = [_Peak(ln.energy_ev, ln.weight * (1.0 - escape_fraction)) for ln in above]
            below = [_Peak(ln.energy_ev, ln.weight) for ln in lines if ln not in above]
            scale = 1.0 - escape_fraction if lines[0] in above else 1.0
            # the family's shape for its main line's recorded area (after escape)
            shapes[name] = line_shape(edges, kept + below, fwhm_mn_ka_ev) / scale
            amps[name] = amps[name] * scale
            escaped = [_Peak(ln.energy_ev - si_ka, ln.weight) for ln in above]
            shapes[f"escape_{name}"] = line_shape(edges, escaped, fwhm_mn_ka_ev)
            out[f"escape_{name}"] = amps[name] / scale * escape_fraction
    return shapes, amps, out


@dataclass(frozen=True)
class _Peak:
    """A peak for :func:`anodemap.edx.model.line_shape` (energy in eV, weight)."""

    energy_ev: float
    weight: float = 1.0


def edx_dataset(sim: SimulatedEDX, title: str = "Simulated Li_xSi electrode, EDX"):
    """The simulated spectra as a calibrated EDS_TEM dataset (energy in keV, as EDX
    files have it), with the beam energy, the detector's resolution and the lines."""
    from anodemap.io import Axis, Dataset

    ny, nx, ne = sim.spectra.shape
    step = sim.pixel_size_nm
    e = sim.energy_ev
    axes = [
        Axis("y", ny, step, 0.0, "nm"),
        Axis("x", nx, step, 0.0, "nm"),
        Axis("Energy", ne, float(e[1] - e[0]) / 1e3, float(e[0]) / 1e3, "keV", navigate=False),
    ]
    ds = Dataset(sim.spectra, axes)
    ds.set_meta("General.title", title)
    ds.set_meta("Signal.signal_type", "EDS_TEM")
    ds.set_meta("Acquisition_instrument.TEM.beam_energy", float(sim.beam_energy_kev))
    ds.set_meta(
        "Acquisition_instrument.TEM.Detector.EDS.energy_resolution_MnKa", float(sim.fwhm_mn_ka_ev)
    )
    ds.set_meta("Sample.elements", ["O", "Si"])
    ds.set_meta("Sample.xray_lines", ["O_Ka", "Si_Ka"])
    ds.set_meta("General.source", "anodemap.synth (simulated, ground truth beside it)")
    return ds


def write_edx_simulation(
    outdir: str | Path,
    shape: tuple[int, int] = (64, 64),
    seed: int = 0,
    pixel_size_nm: float = 5.0,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Simulate and write ``OUTDIR/edx.hspy`` with its truth in ``OUTDIR/truth/``
    (``anodemap simulate edx``); return the spectrum image's path."""
    from anodemap.io import Axis, save
    from anodemap.io.results import map_dataset, write_json
    from anodemap.synth import make_phantom

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    log(f"simulating {shape[0]} x {shape[1]} EDX spectra (seed {seed})")
    phantom = make_phantom(shape, pixel_size_nm=pixel_size_nm, seed=seed)
    sim = simulate_edx(phantom, seed=seed)
    path = save(edx_dataset(sim), outdir / "edx.hspy")
    truth_dir = outdir / "truth"
    truth_dir.mkdir(exist_ok=True)
    nav = [
        Axis("y", shape[0], pixel_size_nm, 0.0, "nm"),
        Axis("x", shape[1], pixel_size_nm, 0.0, "nm"),
    ]
    units = {"Si_Ka": "counts", "O_Ka": "counts", "bremsstrahlung": "counts"}
    scalars: dict[str, Any] = {}
    for key, value in sim.truth.items():
        if isinstance(value, np.ndarray) and value.shape == tuple(shape):
            save(map_dataset(value, nav, key, units.get(key, "")), truth_dir / f"{key}.hspy")
        else:
            scalars[key] = value
    scalars["label_names"] = {str(k): v for k, v in phantom.label_names.items()}
    write_json(scalars, truth_dir / "truth.json")
    log(f"wrote {path} and truth maps in {truth_dir}")
    return path
