"""A simulated four-state study of a Si anode, with ground truth for every dataset.

The study follows the states that Ahmed et al. imaged by cryo-STEM (the paper in
``/work/shared/paper``): the **pristine** electrode, the electrode after the **1st
lithiation**, after the **1st delithiation** and after the **10th delithiation**. For each
state :func:`state_phantom` makes a microstructure (a :class:`~anodemap.synth.Phantom`) and
:func:`write_study` simulates one low-loss EELS spectrum image and one precession
diffraction dataset of it, writes their ground truth beside them and a study file
(``study.toml``) that ``anodemap run`` reads.

What each state models (numbers quoted from the paper are marked "paper"; every other
number is a "model choice"; ``docs/study.md`` gives the paper's wording):

* ``pristine``: crystalline Si particles (Li/Si = 0 everywhere) with a thin SiO_x layer on
  their surfaces and boundaries (paper: "a thin SiO_x coating") and many pores (paper,
  Methods: electrode porosity "about 33%"; after the first lithiation the paper sees "a
  drastic reduction in porosity").
* ``lithiated_1``: exactly :func:`~anodemap.synth.make_phantom` (c-Si cores, grey Li_xSi
  with Li/Si about 1.8, dendrite-like Li15Si4 + Li_xSi threads with Li/Si 2.8-4.3,
  oxide-rich boundaries, few pores).
* ``delithiated_1``: predominantly amorphous Si with denser particle cores
  (:attr:`~anodemap.synth.Label.AMORPHOUS_SI`) and thread-like, less dense meshes near the
  grain boundaries (:attr:`~anodemap.synth.Label.THREAD`), rare crystalline Si, trace
  residual Li in the threads only, Li2O / silicates at the boundaries, partly recovered
  porosity. Plasmon maxima: mean 16.12 eV away from the boundaries, threads below 16 eV,
  none below 15.80 eV (paper).
* ``delithiated_10``: uniform amorphous Si, thread-like regions only at the grain
  boundaries, no crystalline Si, no Li outside the oxide. Plasmon maxima: mean 16.62 eV,
  none below 16.5 eV away from the boundaries (paper).

The plasmon energies of the delithiated states are not those of the composition
calibration at their (near-zero) Li content: amorphous Si is less dense than the
crystal, and the paper leaves open whether density or undetectable Li lowers the threads'
plasmon. They are carried by the phantom's
:attr:`~anodemap.synth.Phantom.plasmon_shift_eV` (offset from the calibration curve),
which :func:`~anodemap.synth.simulate_eels` adds; the Li/Si truth stays the composition.

Examples
--------
>>> from anodemap.synth.study import STATES, state_phantom
>>> STATES
('pristine', 'lithiated_1', 'delithiated_1', 'delithiated_10')
>>> ph = state_phantom("pristine", (16, 16), seed=0)
>>> float(ph.li_per_si.max())
0.0
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError

from .phantom import (
    ALL_LABEL_NAMES,
    T_MATERIAL_FACTOR,
    T_RANGE,
    Label,
    Phantom,
    make_phantom,
    smooth_noise,
)

__all__ = [
    "STATES",
    "STUDY_STATES",
    "StudyState",
    "grain_interior",
    "state_phantom",
    "state_seeds",
    "write_study",
]

_LOG = logging.getLogger(__name__)

STATES: tuple[str, ...] = ("pristine", "lithiated_1", "delithiated_1", "delithiated_10")
"""The states of the study, in order."""


@dataclass(frozen=True)
class StudyState:
    """What the study file says about one state.

    Attributes
    ----------
    name : str
        Folder name and key (one of :data:`STATES`).
    label : str
        Display name.
    cycle : int
        0 pristine, 1 first cycle, 10 tenth cycle.
    step : str
        ``"pristine"``, ``"lithiated"`` or ``"delithiated"``.
    capacity_mAh_g : float or None
        Specific capacity of that (dis)charge where the paper states one, else None.
    capacity_source : str or None
        Where the capacity comes from (the paper's words).
    """

    name: str
    label: str
    cycle: int
    step: str
    capacity_mAh_g: float | None = None
    capacity_source: str | None = None


STUDY_STATES: dict[str, StudyState] = {
    "pristine": StudyState("pristine", "Pristine", 0, "pristine"),
    "lithiated_1": StudyState(
        "lithiated_1",
        "1st lithiation",
        1,
        "lithiated",
        3314.0,
        "paper, Results: 'The cell was lithiated to a specific capacity of 3,314 mAh g⁻¹ "
        "(corresponding to Li_xSi with x ≈ 3.47)'",
    ),
    "delithiated_1": StudyState(
        "delithiated_1",
        "1st delithiation",
        1,
        "delithiated",
        2537.0,
        "paper, Results: 'achieving a reversible capacity of 2537 mAh g⁻¹ (x ≈ 2.66) after "
        "the first delithiation'",
    ),
    # The paper shows the 10th delithiation curve (Figure S1) but states no capacity.
    "delithiated_10": StudyState("delithiated_10", "10th delithiation", 10, "delithiated"),
}
"""Label, cycle, step and (where the paper gives it) capacity of each state."""

# --------------------------------------------------------------------------------------
# Model numbers
# --------------------------------------------------------------------------------------
# Pristine. Paper, Methods: the SE-free Si sheet electrodes had "a porosity of about
# 33%"; it is used as the projected pore area of the lamella (model choice: the lamella
# of 100-150 nm is taken to show the electrode's porosity in projection).
_PRISTINE_PORE_FRACTION = 0.33
# Paper: the particles "typically have a thin SiO_x coating on their surfaces". The
# oxide profile of make_phantom at half strength (model choice) keeps the oxide share of
# any column below 0.48, so that every material pixel stays crystalline Si (label SI) with
# an oxide share, as a column through a coated particle surface is.
_SIOX_SCALE = 0.5
# EELS of the SiO_x: paper, "The plasmon peaks for Li2O and SiO2 are located at 19 eV and
# 22 eV"; SiO_x is simulated as SiO2 (model choice), whose atom fractions are Li 0 and
# Si 1/3 by its formula.
_SIO2_PLASMON_EV = 22.0
_SIO2_SI_FRACTION = 1.0 / 3.0

# Delithiated states. Paper: after the 1st delithiation "the partial recovery of porosity";
# the pore fraction between the lithiated phantom's 0.04 and the pristine 0.33 is a model
# choice, and so is keeping it for the 10th delithiation (the paper gives no porosity).
_DELITH_PORE_FRACTION = 0.10

# 1st delithiation, plasmon maxima (eV):
_D1_BULK_MEAN_EV = 16.12  # paper, "The average plasmon peak position, excluding regions between grain boundaries, was found to be at 16.12 eV"
_D1_MIN_EV = 15.80  # paper, "with the lowest plasmon peak position recorded at 15.80 eV"
# paper, "Most of the structure exhibits plasmon peak positions typical of amorphous
# silicon (16.1 eV - 16.7 eV)": the range of the dense cores
_D1_CORE_RANGE_EV = (16.1, 16.7)
_D1_THREAD_MAX_EV = 15.99  # paper, "in the thread-like regions ... typically below 16 eV"
_D1_THREAD_EV = 15.90  # model choice: centre of the threads' values (15.80-15.99)
_D1_THREAD_SPREAD_EV = 0.05  # model choice: standard deviation of their smooth variation
_D1_CORE_SPREAD_EV = 0.08  # model choice: smooth variation of the denser cores
# Paper: "no significant lithium-K edge signals were detected in these areas" (threads) and
# "no detectable lithium is found within the bulk silicon structure". Trace Li/Si up to
# 0.03 in the threads (model choice: below what a Li-K map detects) and none elsewhere.
_D1_THREAD_LI_MAX = 0.03
# Paper: "Crystalline silicon is rarely found compared to silicon after first lithiation".
# Model choice: 1 % of the material stays crystalline, as small islands inside what were
# the c-Si cores of the lithiated phantom.
_D1_SI_SHARE = 0.01

# 10th delithiation, plasmon maxima (eV):
_D10_BULK_MEAN_EV = 16.62  # paper, "The map reveals an average plasmon peak position of 16.62 eV"
# paper, "with a minimum peak position at 16.5 eV, excluding grain boundaries"; the upper
# end is that of the paper's amorphous-Si range (16.1-16.7 eV)
_D10_CORE_RANGE_EV = (16.5, 16.7)
_D10_CORE_SPREAD_EV = 0.03  # model choice: "the bulk grain structure becoming more uniform" (paper)
_D10_BOUNDARY_EV = 16.45  # model choice: threads and oxide-rich boundaries (the paper excludes them and gives no value)
_D10_BOUNDARY_SPREAD_EV = 0.03  # model choice
_D10_BOUNDARY_RANGE_EV = (16.35, 16.5)  # model choice

# Inelastic "density" factors of the new classes for t/lambda (model choice, as in
# make_phantom): dense amorphous Si like c-Si (a-Si is 1.8 % less dense, Custer et al.,
# Appl. Phys. Lett. 64 (1994) 437), the thread-like mesh 10 % less dense.
_T_FACTOR = {
    **T_MATERIAL_FACTOR,
    Label.AMORPHOUS_SI: 1.0,
    Label.THREAD: 0.9,
}

# Precession semi-angle of the simulated SPED: paper, Methods, "0.4° electron beam
# precession" (the default of simulate_diffraction).
_PRECESSION_DEG = 0.4
# Detector pattern shape: the default of `anodemap simulate diffraction` (model choice).
_PATTERN_SHAPE = (64, 64)

# Seed streams per state (spawn keys of np.random.SeedSequence; fixed so that a study
# seed always gives the same files).
_STREAM_PHANTOM, _STREAM_EELS, _STREAM_DIFFRACTION = 0, 1, 2
_STREAM_STATE_FIELDS = 3  # the state's own random fields inside state_phantom


# --------------------------------------------------------------------------------------
# Phantoms
# --------------------------------------------------------------------------------------
def _check_state(state: str) -> int:
    if state not in STATES:
        raise AnodemapInputError(f"state={state!r}: choose one of {', '.join(STATES)}")
    return STATES.index(state)


def _state_rng(seed: int, state: str) -> np.random.Generator:
    """Generator of a state's own fields, independent of make_phantom's stream."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), _STREAM_STATE_FIELDS, STATES.index(state)])
    )


def _retarget_thickness(base: Phantom, labels: np.ndarray) -> np.ndarray:
    """t/lambda of ``base`` with the material factors of the new ``labels``.

    make_phantom multiplies a smooth thickness by a per-class factor; here that factor is
    divided out and the new class's put in (pores keep their thin residue).
    """
    old = np.ones(base.shape)
    new = np.ones(base.shape)
    for lab, fac in _T_FACTOR.items():
        old[base.labels == lab] = fac
        new[labels == lab] = fac
    pore = labels == Label.PORE
    t = np.clip(base.t_over_lambda / old * new, *T_RANGE)
    t[pore] = base.t_over_lambda[pore]
    return t


def grain_interior(phantom: Phantom) -> np.ndarray:
    """Material pixels away from the grain boundaries (the paper's "excluding grain boundaries").

    Pixels that are neither pore nor oxide-rich boundary (:attr:`Label.OXIDE_GB`) nor in
    the phantom's grain-boundary band (:attr:`Phantom.boundary`). The paper's average
    plasmon energies of the delithiated states exclude the boundaries; the study's
    plasmon levels are set on these pixels.

    Parameters
    ----------
    phantom : Phantom

    Returns
    -------
    ndarray of bool, shape (ny, nx)

    Examples
    --------
    >>> from anodemap.synth import make_phantom
    >>> m = grain_interior(make_phantom((32, 32), seed=0))
    >>> m.dtype.name, bool(0.3 < m.mean() < 0.95)
    ('bool', True)
    """
    return (phantom.labels != Label.PORE) & (phantom.labels != Label.OXIDE_GB) & ~phantom.boundary


def _level_for_mean(
    values: np.ndarray,
    core: np.ndarray,
    variation: np.ndarray,
    target: float,
    lo: float,
    hi: float,
) -> float:
    """Level L so that ``values`` with ``clip(L + variation, lo, hi)`` on ``core`` has mean ``target``.

    ``values`` (1-D, the pixels that count) holds the fixed values of the other pixels.
    The mean grows monotonically with L, so bisection finds it; where the range cannot
    reach the target, the nearest end is returned.
    """
    if not core.any():
        return float(np.clip(target, lo, hi))

    def mean_at(level: float) -> float:
        v = values.copy()
        v[core] = np.clip(level + variation[core], lo, hi)
        return float(v.mean())

    a, b = lo - 3.0 * float(np.abs(variation).max()) - 1.0, hi + 1.0
    for _ in range(60):  # bisection to well below 1e-6 eV
        m = 0.5 * (a + b)
        if mean_at(m) < target:
            a = m
        else:
            b = m
    return 0.5 * (a + b)


def _pristine(shape: tuple[int, int], pixel_size_nm: float, seed: int) -> Phantom:
    base = make_phantom(shape, pixel_size_nm, seed, pore_fraction=_PRISTINE_PORE_FRACTION)
    pore = base.labels == Label.PORE
    labels = np.where(pore, Label.PORE, Label.SI).astype(np.uint8)
    oxide = np.where(pore, 0.0, _SIOX_SCALE * base.oxide_fraction)
    return dataclasses.replace(
        base,
        labels=labels,
        li_per_si=np.zeros(base.shape),
        oxide_fraction=oxide,
        t_over_lambda=_retarget_thickness(base, labels),
        label_names=dict(ALL_LABEL_NAMES),
    )


def _delithiated(
    state: str, shape: tuple[int, int], pixel_size_nm: float, seed: int, calibration: Any
) -> Phantom:
    base = make_phantom(shape, pixel_size_nm, seed, pore_fraction=_DELITH_PORE_FRACTION)
    rng = _state_rng(seed, state)
    gsize_px = 100.0 / base.pixel_size_nm  # make_phantom's default grain size, 100 nm
    old = base.labels
    pore = old == Label.PORE
    oxide_gb = old == Label.OXIDE_GB
    labels = np.full(base.shape, Label.AMORPHOUS_SI, dtype=np.uint8)
    li = np.zeros(base.shape)
    target = np.zeros(base.shape)  # plasmon maximum (eV) of the silicide
    # Correlation lengths of the random fields below, in grain diameters: model choices
    # (slow variation of the cores, finer of the threads' Li and plasmon).
    if state == "delithiated_1":
        # The sheet-like dendrite threads of the lithiated phantom, near the boundaries and
        # reaching into the grains, become the thread-like meshes (paper, Figure 4b: "the
        # areas near grain boundaries typically display a thread-like irregular mesh").
        thread = old == Label.DENDRITE
        # islands: the former c-Si pixels where a smooth random field is highest
        island = smooth_noise(rng, base.shape, 0.1 * gsize_px)
        was_si = np.flatnonzero(old == Label.SI)
        n_si = min(was_si.size, int(_D1_SI_SHARE * np.count_nonzero(~pore)))
        si = np.zeros(base.shape, dtype=bool)
        si.flat[was_si[np.argsort(-island.flat[was_si], kind="stable")[:n_si]]] = True
        labels[thread] = Label.THREAD
        labels[si] = Label.SI
        u = np.clip(0.5 + 0.3 * smooth_noise(rng, base.shape, 0.1 * gsize_px), 0.0, 1.0)
        li[thread] = _D1_THREAD_LI_MAX * u[thread]
        low = np.clip(
            _D1_THREAD_EV + _D1_THREAD_SPREAD_EV * smooth_noise(rng, base.shape, 0.05 * gsize_px),
            _D1_MIN_EV,
            _D1_THREAD_MAX_EV,
        )
        # model choice: the delithiated silicide mixed into the oxide-rich boundaries has the
        # threads' plasmon (the paper's averages exclude the boundaries)
        target[thread | oxide_gb] = low[thread | oxide_gb]
        variation = _D1_CORE_SPREAD_EV * smooth_noise(rng, base.shape, 0.3 * gsize_px)
        core_range, bulk_mean = _D1_CORE_RANGE_EV, _D1_BULK_MEAN_EV
    else:
        # Thread-like regions "now predominantly visible at the grain boundaries" (paper):
        # model choice, the whole boundary band outside the oxide; no crystalline Si ("No
        # traces of crystalline silicon were detected").
        thread = base.boundary & ~pore & ~oxide_gb
        labels[thread] = Label.THREAD
        low = np.clip(
            _D10_BOUNDARY_EV
            + _D10_BOUNDARY_SPREAD_EV * smooth_noise(rng, base.shape, 0.05 * gsize_px),
            *_D10_BOUNDARY_RANGE_EV,
        )
        target[thread | oxide_gb] = low[thread | oxide_gb]
        variation = _D10_CORE_SPREAD_EV * smooth_noise(rng, base.shape, 0.3 * gsize_px)
        core_range, bulk_mean = _D10_CORE_RANGE_EV, _D10_BULK_MEAN_EV
    labels[oxide_gb] = Label.OXIDE_GB
    labels[pore] = Label.PORE

    e_cal = np.asarray(calibration.energy(li), dtype=float)
    si = labels == Label.SI
    target[si] = e_cal[si]  # residual c-Si: the calibration's Si end point, no offset
    # The dense cores' level is set so that the mean over the grain interiors is the
    # paper's (model choice: one level plus a smooth variation, clipped to the paper's range).
    # (the pixels of grain_interior() of the new phantom)
    interior = (labels != Label.PORE) & (labels != Label.OXIDE_GB) & ~base.boundary
    core = labels == Label.AMORPHOUS_SI
    level = _level_for_mean(
        target[interior], core[interior], variation[interior], bulk_mean, *core_range
    )
    target[core] = np.clip(level + variation[core], *core_range)
    shift = np.where(pore, 0.0, target - e_cal)

    return dataclasses.replace(
        base,
        labels=labels,
        li_per_si=li,
        oxide_fraction=base.oxide_fraction.copy(),
        t_over_lambda=_retarget_thickness(base, labels),
        label_names=dict(ALL_LABEL_NAMES),
        plasmon_shift_eV=shift,
    )


def state_phantom(
    state: str,
    shape: tuple[int, int] = (64, 64),
    pixel_size_nm: float = 5.0,
    seed: int = 0,
    *,
    calibration: Any = None,
) -> Phantom:
    """The microstructure of one state of the study, with ground truth.

    Every state starts from :func:`~anodemap.synth.make_phantom` with the same shape,
    pixel size and seed (the grains, boundaries, oxide and thickness of the lithiated
    model); the pristine and delithiated states change its classes, composition, pores and
    plasmon offsets as the module docstring describes.

    Parameters
    ----------
    state : str
        One of :data:`STATES`.
    shape : tuple of int
        Scan shape ``(ny, nx)`` (at least 8 x 8).
    pixel_size_nm : float
        Scan step in nm.
    seed : int
        Seed of :func:`make_phantom` and of the state's own random fields.
    calibration : object with ``energy(x)``, optional
        Li/Si -> plasmon energy curve against which the delithiated states' plasmon
        offsets are set (default ``anodemap.eels.calibration.default_calibration()``);
        simulate their EELS with the same calibration.

    Returns
    -------
    Phantom
        ``lithiated_1`` is exactly ``make_phantom(shape, pixel_size_nm, seed)``. The other
        states carry :data:`~anodemap.synth.phantom.ALL_LABEL_NAMES` as label names; the
        delithiated ones a :attr:`~anodemap.synth.Phantom.plasmon_shift_eV` map.

    Notes
    -----
    Label use per state: pristine: pore, c-Si (the SiO_x layer is the oxide share of c-Si
    pixels); 1st delithiation: pore, dense amorphous Si, thread-like amorphous Si, oxide-
    rich boundary, rare c-Si; 10th delithiation: the same without c-Si.

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.synth import Label, make_phantom
    >>> ph = state_phantom("lithiated_1", (16, 16), seed=3)
    >>> bool(np.array_equal(ph.labels, make_phantom((16, 16), seed=3).labels))
    True
    >>> d10 = state_phantom("delithiated_10", (32, 32), seed=3)
    >>> bool(np.any(d10.labels == Label.SI)), float(d10.li_per_si.max())
    (False, 0.0)
    """
    _check_state(state)
    shape = (int(shape[0]), int(shape[1]))
    if state == "lithiated_1":
        return make_phantom(shape, pixel_size_nm, seed)
    if state == "pristine":
        return _pristine(shape, pixel_size_nm, seed)
    if calibration is None:
        from anodemap.eels.calibration import default_calibration

        calibration = default_calibration()
    return _delithiated(state, shape, pixel_size_nm, seed, calibration)


def state_seeds(seed: int, state: str) -> dict[str, int]:
    """Seeds that :func:`write_study` uses for one state: phantom, EELS and diffraction.

    Derived from the study ``seed`` and the state's position in :data:`STATES` with
    :class:`numpy.random.SeedSequence`, so that the states are not copies of each other
    and one study seed always gives the same files.

    Parameters
    ----------
    seed : int
        The study seed (>= 0).
    state : str
        One of :data:`STATES`.

    Returns
    -------
    dict
        ``{"phantom": int, "eels": int, "diffraction": int}``.

    Examples
    --------
    >>> s = state_seeds(0, "pristine")
    >>> sorted(s), s == state_seeds(0, "pristine"), s == state_seeds(1, "pristine")
    (['diffraction', 'eels', 'phantom'], True, False)
    """
    index = _check_state(state)
    if int(seed) < 0:
        raise AnodemapInputError(f"seed={seed!r} must be >= 0")
    out = {}
    for key, stream in (
        ("phantom", _STREAM_PHANTOM),
        ("eels", _STREAM_EELS),
        ("diffraction", _STREAM_DIFFRACTION),
    ):
        ss = np.random.SeedSequence([int(seed), index, stream])
        out[key] = int(ss.generate_state(1, dtype=np.uint32)[0])
    return out


# --------------------------------------------------------------------------------------
# Simulator options per state
# --------------------------------------------------------------------------------------
def _eels_options(state: str) -> dict[str, Any]:
    """Options of simulate_eels for a state (the pristine oxide is SiO2, no Li)."""
    if state == "pristine":
        return {
            "oxide_peak_eV": _SIO2_PLASMON_EV,
            "oxide_li_fraction": 0.0,
            "oxide_si_fraction": _SIO2_SI_FRACTION,
        }
    return {}


def _diffraction_options(state: str) -> dict[str, Any]:
    """Options of simulate_diffraction for a state."""
    opts: dict[str, Any] = {"precession_angle_deg": _PRECESSION_DEG}
    if state == "pristine":
        opts["oxide_model"] = "SiO2"
    return opts


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
def _nav(shape: tuple[int, int], pixel_size_nm: float) -> list[Any]:
    from anodemap.io import Axis

    return [
        Axis("y", shape[0], pixel_size_nm, 0.0, "nm"),
        Axis("x", shape[1], pixel_size_nm, 0.0, "nm"),
    ]


def _write_eels(
    folder: Path, state: str, phantom: Phantom, seed: int, calibration: Any
) -> tuple[Path, Path, dict[str, Any]]:
    """EELS spectrum image ``eels.hspy`` and its truth in ``truth_eels/``.

    The truth layout is that of ``anodemap simulate eels``: one ``KEY.hspy`` per truth
    map of the scan shape, the scalars and the label names in ``truth.json``.
    """
    from anodemap.eels.pipeline import eels_dataset
    from anodemap.io import save
    from anodemap.io.results import map_dataset, write_json

    from .eels import simulate_eels

    sim = simulate_eels(phantom, calibration=calibration, seed=seed, **_eels_options(state))
    info = STUDY_STATES[state]
    ds = eels_dataset(
        sim.spectra,
        sim.energy,
        pixel_size_nm=phantom.pixel_size_nm,
        title=f"Simulated Si electrode, {info.label}, low-loss EELS",
    )
    ds.set_meta("General.source", "anodemap.synth.study (simulated, ground truth beside it)")
    # uncompressed: rosettasciio's default gzip took 0.5 s to write (a fifth of the
    # simulation of a state) and 0.1 s to read for every analysis, to save a third of 33 MB
    path = save(ds, folder / "eels.hspy", writer_options={"compression": None})
    truth_dir = folder / "truth_eels"
    truth_dir.mkdir(exist_ok=True)
    nav = _nav(phantom.shape, phantom.pixel_size_nm)
    scalars: dict[str, Any] = {}
    for key, value in sim.truth.items():
        if hasattr(value, "shape") and tuple(value.shape) == phantom.shape:
            save(map_dataset(np.asarray(value), nav, key, ""), truth_dir / f"{key}.hspy")
        else:
            scalars[key] = value
    scalars["label_names"] = {str(k): v for k, v in phantom.label_names.items()}
    scalars["state"] = state
    write_json(scalars, truth_dir / "truth.json")
    return path, truth_dir, sim.truth


def _write_diffraction(
    folder: Path, state: str, phantom: Phantom, seed: int, pattern_shape: tuple[int, int]
) -> tuple[Path, Path, dict[str, Any]]:
    """Precession diffraction ``sped.zspy`` and its truth in ``truth_sped/``.

    The truth layout is that of ``anodemap simulate diffraction``: the phase, amorphous
    share, label, grain and in-plane angle maps, ``euler_deg.hspy`` (three values per
    pixel), and ``truth.json`` with the phase labels, the pore label and the parameters.
    """
    from anodemap.io import save

    from .diffraction import simulate_diffraction, to_dataset
    from .truth import write_diffraction_truth

    sim = simulate_diffraction(
        phantom, pattern_shape=pattern_shape, seed=seed, **_diffraction_options(state)
    )
    info = STUDY_STATES[state]
    ds = to_dataset(sim, title=f"Simulated SPED, Si electrode, {info.label}")
    path = save(ds, folder / "sped.zspy")
    truth_dir = write_diffraction_truth(
        sim,
        folder / "truth_sped",
        phantom.pixel_size_nm,
        {"label_names": {str(k): v for k, v in phantom.label_names.items()}, "state": state},
    )
    return path, truth_dir, sim.truth


def _toml(value: Any) -> str:
    """A TOML value: strings as basic strings (JSON escapes are valid TOML), numbers as-is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _write_text(path: Path, text: str) -> Path:
    """Write ``text`` atomically (:func:`anodemap.io.results.write_text`)."""
    from anodemap.io.results import write_text

    return write_text(text, path)


def _cycling_csv() -> str:
    """The paper's cycle-1 capacities: the only cycling numbers it states."""
    lit = STUDY_STATES["lithiated_1"].capacity_mAh_g
    delit = STUDY_STATES["delithiated_1"].capacity_mAh_g
    return (
        "# Specific capacities stated in the paper (Ahmed et al., Results): lithiated to\n"
        "# 3,314 mAh g⁻¹, 'a reversible capacity of 2537 mAh g⁻¹ ... after the first\n"
        "# delithiation'. Charge = lithiation of the Si electrode and discharge =\n"
        "# delithiation, as the paper's supplement words it ('after the first discharge'\n"
        "# for the delithiated electrode). The paper gives no other cycle's numbers\n"
        "# (Figure S1 shows curves only), so this table has one row; nothing is simulated.\n"
        "cycle,charge_mAh_g,discharge_mAh_g\n"
        f"1,{lit:g},{delit:g}\n"
    )


def _study_toml(
    entries: list[dict[str, Any]], shape: tuple[int, int], seed: int, pixel_size_nm: float
) -> str:
    from anodemap import __version__

    lines = [
        "# Simulated four-state study of a micro-Si anode (all-solid-state battery), written",
        f"# by anodemap.synth.study.write_study (anodemap {__version__}): shape {shape[0]} x "
        f"{shape[1]}, {pixel_size_nm:g} nm per pixel, study seed {seed}.",
        "# Every dataset is simulated from a phantom; its ground truth lies in the folder",
        "# named by `truth`. What each state models, and which numbers come from the paper",
        "# (Ahmed et al., cryo-STEM of Si anodes), is in docs/study.md.",
        "",
        "[study]",
        f"name = {_toml('Simulated Si anode, all-solid-state battery (four states)')}",
        "description = "
        + _toml(
            "Pristine, 1st lithiation, 1st delithiation and 10th delithiation of a "
            "micro-Si electrode, simulated after Ahmed et al.: one low-loss EELS spectrum "
            "image and one precession electron diffraction dataset per state, with ground "
            "truth."
        ),
        "simulated = true",
        "",
        "[parameters.diffraction]",
        "# the simulator's precession semi-angle; paper, Methods: '0.4° electron beam precession'",
        f"precession_angle_deg = {_toml(_PRECESSION_DEG)}",
        "",
        "[cycling]",
        "# the paper's cycle-1 capacities only (one row; see the file's header)",
        f"file = {_toml('cycling.csv')}",
    ]
    for e in entries:
        info: StudyState = e["info"]
        lines += [
            "",
            "[[states]]",
            f"name = {_toml(info.name)}",
            f"label = {_toml(info.label)}",
            f"cycle = {_toml(info.cycle)}",
            f"step = {_toml(info.step)}",
        ]
        if info.capacity_mAh_g is not None:
            lines += [f"# {info.capacity_source}", f"capacity_mAh_g = {_toml(info.capacity_mAh_g)}"]
        for d in e["datasets"]:
            lines += [
                "",
                "  [[states.datasets]]",
                f"  path = {_toml(d['path'])}",
                f"  kind = {_toml(d['kind'])}",
                f"  name = {_toml(d['name'])}",
                f"  truth = {_toml(d['truth'])}",
            ]
            if d["kind"] == "diffraction":  # the EELS scan of the same phantom, same grid
                lines += [
                    "  # the PDF's composition from the Li/Si map of the same area",
                    '  li_si_map = "eels"',
                ]
    return "\n".join(lines) + "\n"


def write_study(
    outdir: str | os.PathLike,
    shape: tuple[int, int] = (64, 64),
    seed: int = 0,
    pixel_size_nm: float = 5.0,
    *,
    log: Callable[[str], None] | None = None,
    pattern_shape: tuple[int, int] = _PATTERN_SHAPE,
    on_dataset: Callable[[str, Path, dict[str, Any]], Any] | None = None,
) -> Path:
    """Simulate the four-state study and write it with its ground truth and study file.

    For each state of :data:`STATES` (seeds from :func:`state_seeds`):

    * ``STATE/eels.hspy``: low-loss EELS spectrum image
      (:func:`~anodemap.synth.simulate_eels` of :func:`state_phantom`), truth maps and
      ``truth.json`` in ``STATE/truth_eels/``;
    * ``STATE/sped.zspy``: precession electron diffraction, 0.4° (paper, Methods)
      (:func:`~anodemap.synth.diffraction.simulate_diffraction`), truth in
      ``STATE/truth_sped/``;

    then ``cycling.csv`` (the paper's cycle-1 capacities, one row) and, last,
    ``study.toml``, which names every dataset with its truth folder. Every file is written
    under a temporary name and renamed when complete.

    Parameters
    ----------
    outdir : path-like
        Folder of the study (made if missing; files of an earlier study are replaced).
    shape : tuple of int
        Scan shape ``(ny, nx)`` of every dataset (at least 8 x 8).
    seed : int
        Study seed (>= 0).
    pixel_size_nm : float
        Scan step in nm.
    log : callable, optional
        Called with one line per step (default: this module's logger, level INFO).
    pattern_shape : tuple of int
        Diffraction pattern shape ``(ky, kx)`` (default 64 x 64).
    on_dataset : callable, optional
        Called as ``on_dataset(kind, path, parameters)`` once each dataset is complete on
        disk (kind ``"eels"`` or ``"diffraction"``; the parameters the study file gives
        that kind; for a spectrum image from the thread that writes it): the demo hands
        the first ones to the processes that compile the kernels meanwhile
        (:mod:`anodemap._warmup`).

    Returns
    -------
    Path
        The study file, ``outdir / "study.toml"``.

    Notes
    -----
    The pristine state's oxide is simulated as SiO2 (EELS: plasmon at 22 eV, paper; no
    Li-K share; diffraction: an amorphous SiO2 model); the other states' as the lithium
    silicate of the simulators' defaults. All EELS use the packaged calibration.

    Examples
    --------
    >>> import tempfile, tomllib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_study(folder, shape=(8, 8), pattern_shape=(16, 16))
    ...     study = tomllib.loads(path.read_text(encoding="utf-8"))
    >>> [s["name"] for s in study["states"]]
    ['pristine', 'lithiated_1', 'delithiated_1', 'delithiated_10']
    """
    from anodemap.eels.calibration import default_calibration

    say = log if log is not None else _LOG.info
    out = Path(outdir)
    shape = (int(shape[0]), int(shape[1]))
    pattern_shape = (int(pattern_shape[0]), int(pattern_shape[1]))
    if not pixel_size_nm > 0:
        raise AnodemapInputError(f"pixel_size_nm={pixel_size_nm!r} must be positive")
    out.mkdir(parents=True, exist_ok=True)
    calibration = default_calibration()
    entries: list[dict[str, Any]] = []

    def eels_of(folder: Path, state: str, phantom: Phantom, seed: int) -> tuple[Path, Path]:
        eels_path, eels_truth, _ = _write_eels(folder, state, phantom, seed, calibration)
        if on_dataset is not None:
            on_dataset("eels", eels_path, {})
        return eels_path, eels_truth

    # A state's spectrum image is simulated and written in a thread while its diffraction
    # is simulated here: the two share only the phantom (read, never changed) and their
    # own seeds, and each lets the other run while numpy works (about 1 s of the 9 s
    # that the four states take on 2 cores; the same files either way).
    with ThreadPoolExecutor(max_workers=1) as eels_thread:
        for state in STATES:
            seeds = state_seeds(seed, state)
            folder = out / state
            folder.mkdir(exist_ok=True)
            say(
                f"simulating {state}: {shape[0]} x {shape[1]} pixels "
                f"(phantom seed {seeds['phantom']})"
            )
            phantom = state_phantom(
                state, shape, pixel_size_nm, seeds["phantom"], calibration=calibration
            )
            eels = eels_thread.submit(eels_of, folder, state, phantom, seeds["eels"])
            sped_path, sped_truth, _ = _write_diffraction(
                folder, state, phantom, seeds["diffraction"], pattern_shape
            )
            eels_path, eels_truth = eels.result()
            say(f"wrote {eels_path} and {eels_truth}")
            say(f"wrote {sped_path} and {sped_truth}")
            if on_dataset is not None:  # with the study file's [parameters.diffraction]
                on_dataset("diffraction", sped_path, {"precession_angle_deg": _PRECESSION_DEG})
            entries.append(
                {
                    "info": STUDY_STATES[state],
                    "datasets": [
                        {
                            "path": f"{state}/eels.hspy",
                            "kind": "eels",
                            "name": "eels",
                            "truth": f"{state}/truth_eels",
                        },
                        {
                            "path": f"{state}/sped.zspy",
                            "kind": "diffraction",
                            "name": "sped",
                            "truth": f"{state}/truth_sped",
                        },
                    ],
                }
            )
    _write_text(out / "cycling.csv", _cycling_csv())
    path = _write_text(out / "study.toml", _study_toml(entries, shape, seed, pixel_size_nm))
    say(f"wrote {path}")
    return path
