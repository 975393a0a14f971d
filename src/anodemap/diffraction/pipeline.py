"""Phase and orientation mapping of a 4D (precession) diffraction dataset, in one call.

Steps: reciprocal calibration -> direct-beam centre of every pattern (descan) ->
virtual bright-field and annular dark-field images, and the share scattered outside the
direct beam (vacuum) -> kinematic template libraries of the phases -> matching
(correlation index Q, orientation and phase reliability) and labels decided pattern by
pattern: vacuum, amorphous, a phase, crystalline but not indexed. Every per-pattern
step runs through the execution layer (:mod:`anodemap._compute`), so the same call runs
in memory, lazily and on a dask.distributed cluster.

Examples
--------
>>> from anodemap.io import load                                      # doctest: +SKIP
>>> from anodemap.diffraction.pipeline import analyse_diffraction     # doctest: +SKIP
>>> result = analyse_diffraction(load("sped.zspy", lazy=True))         # doctest: +SKIP
>>> result.summary()["phase_fractions"]                                 # doctest: +SKIP
{'crystalline, not indexed': 0.0, 'amorphous': 0.67, 'Si': 0.16, 'Li15Si4': 0.17}
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap._compute import progress_label
from anodemap._platform import describe_budget, memory_budget, usable_cores
from anodemap.diffraction.parameters import DiffractionParameters
from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io import Axis, Dataset
from anodemap.io.regions import check_regions

__all__ = [
    "AveragedPatterns",
    "DiffractionParameters",
    "DiffractionResult",
    "analyse_diffraction",
]

# Metadata paths where readers and our simulator put the beam energy (keV) and the
# precession angle (degrees). pyxem's "rocking_angle" is in mrad, not degrees, so it is
# not read: pass --precession for such files.
_BEAM_ENERGY_KEYS = ("Acquisition_instrument.TEM.beam_energy",)
_PRECESSION_KEYS = ("Acquisition_instrument.TEM.precession_angle",)


@dataclass
class AveragedPatterns:
    """Position-averaged patterns of groups of scan positions, and their I(s).

    Descan-corrected: every pattern is shifted by whole pixels so that its direct beam
    lies on the pattern middle before it is averaged; the profiles bin every pattern's
    pixels by their distance from its own sub-pixel centre and pool the bins over the
    group (:func:`anodemap.diffraction.virtual.averaged_patterns`).

    Attributes
    ----------
    names : list of str
        One per group (a phase name, or ``"region N"``).
    patterns : ndarray (n_groups, ky, kx)
        Mean counts per pixel; NaN for a group without patterns.
    n_patterns : ndarray of int (n_groups,)
        Scan positions averaged.
    s : ndarray (n_bins,)
        s = 1/d in 1/Å of the profiles' bins.
    profiles : ndarray (n_groups, n_bins)
        Mean counts per pixel at s (azimuthal average).
    scale : (float, float)
        1/Å per pattern pixel.
    """

    names: list[str]
    patterns: np.ndarray
    n_patterns: np.ndarray
    s: np.ndarray
    profiles: np.ndarray
    scale: tuple[float, float]


@dataclass
class DiffractionResult:
    """Maps from :func:`analyse_diffraction` (scan order, shape ``nav_shape``).

    ``averages["phases"]`` holds the averaged pattern and I(s) of the indexed patterns
    of each phase, ``averages["regions"]`` those of the regions given, if any
    (:class:`AveragedPatterns`); ``regions`` the label map given (0: in none).
    """

    maps: dict[str, np.ndarray]
    nav_axes: list[Axis]
    phase_labels: dict[str, str]
    calibration: dict[str, Any]
    parameters: DiffractionParameters
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    averages: dict[str, AveragedPatterns] = field(default_factory=dict)
    regions: np.ndarray | None = None

    def summary(self) -> dict[str, Any]:
        """Numbers for summary.json: labels and fractions, calibration, settings.

        Phase fractions are over the *material* patterns: every pattern analysed except
        vacuum (amorphous, each phase, crystalline not indexed); ``n_vacuum`` and
        ``n_not_analysed`` count the others.
        """
        from anodemap.status import Status, describe

        phase = self.maps["phase"]
        material = _material(phase)
        n_material = int(material.sum())
        share = self.maps["amorphous_share"]
        crystalline = phase > 0
        status = np.asarray(self.maps["status"])
        codes = sorted(int(v) for v in np.unique(status))
        return {
            "source": self.source,
            "n_patterns": int(phase.size),
            "n_material": n_material,
            "n_vacuum": int(np.count_nonzero(phase == _LABEL_VACUUM)),
            "n_not_analysed": int(np.count_nonzero(phase == _LABEL_NOT_ANALYSED)),
            "n_indexed": int(np.count_nonzero(crystalline)),
            "phase_labels": self.phase_labels,
            "phase_fractions": _fractions(phase, material, self.phase_labels),
            "phase_fractions_over": "material patterns (n_material): all but vacuum and "
            "patterns not analysed",
            "status_counts": {
                Status(c).name.lower(): int(np.count_nonzero(status == c)) for c in codes
            },
            "status_legend": {str(c): describe(c) for c in codes},
            "mean_amorphous_share_of_crystalline_patterns": float(np.mean(share[crystalline]))
            if crystalline.any()
            else None,
            "median_correlation_index": float(np.median(self.maps["correlation"][material]))
            if n_material
            else None,
            "calibration": self.calibration,
            "settings": self.settings,
            "parameters": self.parameters.as_dict(),
            "averaged_patterns": {
                kind: [
                    {"name": name, "n_patterns": int(n)}
                    for name, n in zip(avg.names, avg.n_patterns, strict=True)
                ]
                for kind, avg in self.averages.items()
            },
            "regions": self._region_summary(),
        }

    def _region_summary(self) -> list[dict[str, Any]] | None:
        """Per region given: its size, phase fractions (over its material patterns) and
        the mean amorphous share of its crystalline patterns (the paper's regions i, ii)."""
        if self.regions is None:
            return None
        phase, share = self.maps["phase"], self.maps["amorphous_share"]
        material = _material(phase)
        out = []
        for r in np.unique(self.regions[self.regions > 0]).tolist():
            inside = self.regions == r
            cryst = inside & (phase > 0)
            out.append(
                {
                    "region": r,
                    "n_patterns": int(inside.sum()),
                    "n_material": int((inside & material).sum()),
                    "n_vacuum": int((inside & (phase == _LABEL_VACUUM)).sum()),
                    "phase_fractions": _fractions(phase, inside & material, self.phase_labels),
                    "mean_amorphous_share_of_crystalline_patterns": float(np.mean(share[cryst]))
                    if cryst.any()
                    else None,
                }
            )
        return out


# the labels of anodemap.diffraction.matching (not imported at module load: numba)
_LABEL_NOT_ANALYSED, _LABEL_NOT_INDEXED, _LABEL_VACUUM = -3, -2, -1


def _material(phase: np.ndarray) -> np.ndarray:
    """Patterns of the specimen: analysed and not vacuum."""
    return (phase != _LABEL_VACUUM) & (phase != _LABEL_NOT_ANALYSED)


def _fractions(phase: np.ndarray, among: np.ndarray, labels: dict[str, str]) -> dict:
    """Share of ``among`` with each material label (amorphous, phases, not indexed)."""
    n = int(among.sum())
    return {
        name: (float(np.count_nonzero(phase[among] == int(k)) / n) if n else None)
        for k, name in sorted(labels.items(), key=lambda kv: int(kv[0]))
        if int(k) not in (_LABEL_VACUUM, _LABEL_NOT_ANALYSED)
    }


def _meta_float(dataset: Dataset, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = dataset.get_meta(key)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
    return None


def analyse_diffraction(
    dataset: Dataset,
    parameters: DiffractionParameters | None = None,
    *,
    client: Any = None,
    progress: bool = True,
    regions: np.ndarray | None = None,
    log: Callable[[str], None] | None = None,
) -> DiffractionResult:
    """Phase, orientation, reliability and virtual-image maps of a 4D dataset.

    Also the averaged pattern and I(s) of each phase's indexed patterns and, if
    ``regions`` is given, of each region (:class:`AveragedPatterns`, in
    ``result.averages``; one more pass over the data for each).

    Parameters
    ----------
    dataset : Dataset
        Shape (ny, nx, ky, kx) (or a line scan (n, ky, kx)), calibrated or with
        ``parameters.scale`` given. Lazy data are read into memory once when they are
        at most ``parameters.in_memory_gb`` and the run fits in the memory this process
        may use (:func:`anodemap._platform.memory_budget`: available memory, cgroup
        limit, ``RLIMIT_AS``); else, and always with a ``client``, they stay lazy and
        are read chunk by chunk in every pass. A run that reads into memory and runs
        out of memory all the same is run again out of core. The maps are the same
        either way, bit for bit.
    parameters : DiffractionParameters, optional
    client : dask.distributed.Client, optional
    progress : bool
    regions : ndarray of int, shape ``nav_shape``, optional
        Regions of the scan to average and report on (``summary()["regions"]``): 0 where
        in none, each other value a region.
    log : callable, optional
        Takes the lines said to the user (how the patterns are read); default: the
        ``anodemap`` logger. An analysis passes its context's log (in a study, prefixed
        with the state and dataset).

    Returns
    -------
    DiffractionResult

    Raises
    ------
    AnodemapError
        Also when the memory runs out (numpy's ``MemoryError``, a decompression filter
        that cannot allocate) out of core: the message says how much memory the process
        may use and what to do.
    """
    log = log or _note
    kwargs = {"client": client, "progress": progress, "regions": regions, "log": log}
    reading = {"allow_in_memory": True, "in_memory": False}
    try:
        return _analyse_diffraction(dataset, parameters, reading=reading, **kwargs)
    except MemoryError as err:
        if not reading["in_memory"]:
            raise _out_of_memory(err, dataset, reading) from err
    except OSError as err:
        if not _memory_filter_failure(err):
            raise
        if not reading["in_memory"]:
            raise _out_of_memory(err, dataset, reading) from err
    # out of memory with the patterns in memory: they are freed with the exception (a
    # new try, outside the handler that held it) and the run done again out of core
    log(
        "ran out of memory with the patterns in memory; running again, reading them chunk "
        "by chunk in every pass (--in-memory-gb 0 does so from the start)"
    )
    reading = {"allow_in_memory": False, "in_memory": False}
    try:
        return _analyse_diffraction(dataset, parameters, reading=reading, **kwargs)
    except MemoryError as err:
        raise _out_of_memory(err, dataset, reading) from err
    except OSError as err:
        if not _memory_filter_failure(err):
            raise
        raise _out_of_memory(err, dataset, reading) from err


def _memory_filter_failure(err: OSError) -> bool:
    """An HDF5 read whose decompression filter failed: under a memory limit, the filter
    could not allocate its buffer (a damaged chunk fails the same way)."""
    return "filter returned failure" in str(err)


def _out_of_memory(err: BaseException, dataset: Dataset, reading: dict) -> Exception:
    """The clear error of a run that ran out of memory out of core: what ran out, how much
    the process may use, and what to do on the command line."""
    from anodemap.errors import AnodemapError

    what = (
        "a compressed chunk of the input could not be decoded (HDF5: filter returned "
        "failure during read): the memory ran out, or the chunk is damaged"
        if isinstance(err, OSError)
        else f"out of memory ({err})"
    )
    return AnodemapError(
        f"{what}; the patterns were read chunk by chunk, and the kernels' working memory "
        f"on {usable_cores()} cores did not fit: {describe_budget()}. Give the process "
        "more memory (raise ulimit -v or the container's limit, close other programs) or "
        "run it on fewer cores (taskset -c 0 anodemap diffraction ...: less working "
        "memory, same maps)"
    )


def _analyse_diffraction(
    dataset: Dataset,
    parameters: DiffractionParameters | None,
    *,
    client: Any,
    progress: bool,
    regions: np.ndarray | None,
    reading: dict,
    log: Callable[[str], None],
) -> DiffractionResult:
    """:func:`analyse_diffraction`; ``reading`` says whether the patterns may be read into
    memory (``allow_in_memory``) and, once they are, that they were (``in_memory``)."""
    from anodemap.diffraction.calibration import reciprocal_calibration
    from anodemap.diffraction.crystal import load_phase
    from anodemap.diffraction.matching import match_patterns
    from anodemap.diffraction.templates import (
        REFINEMENT_EXCITATION_ERROR_WIDTHS,
    )
    from anodemap.diffraction.virtual import (
        Annulus,
        Disk,
        find_direct_beam,
        mask_pixels,
        ring_level,
        scattered_fraction,
        scattered_fraction_noise,
        scattering_masks,
        virtual_images,
    )

    p = parameters or DiffractionParameters()
    if len(dataset.sig_shape) != 2 or not 1 <= len(dataset.nav_shape) <= 2:
        raise AnodemapInputError(
            f"expected a 4D diffraction dataset (scan axes, then two pattern axes), got "
            f"scan shape {dataset.nav_shape} and signal shape {dataset.sig_shape}"
        )
    _check_parameters(p)
    if regions is not None:
        regions = check_regions(regions, tuple(int(v) for v in dataset.nav_shape))
    # a value given is the one used (and recorded), whatever the file says; a file's 0 or
    # negative beam energy is no beam energy
    energy = p.beam_energy_kev
    if energy is None:
        energy = _meta_float(dataset, _BEAM_ENERGY_KEYS)
        energy = energy if energy is not None and energy > 0 else None
    cal = reciprocal_calibration(
        dataset, scale=p.scale, beam_energy_kev=energy, camera_length_mm=p.camera_length_mm
    )
    if energy is None:
        energy = cal.beam_energy_kev
    if energy is None:
        raise AnodemapInputError(
            "the beam energy is not in the file's metadata; pass it (--beam-energy KEV; "
            "beam_energy_kev in a study file's parameters or in Python): the templates need "
            "the wavelength"
        )
    # a value given and not used is said, not dropped without a word
    unused = {}
    if p.camera_length_mm is not None and cal.camera_length_mm is None:
        unused["camera_length_mm"] = (
            f"--camera-length {p.camera_length_mm:g} is not used: the calibration "
            f"({cal.source}) needs no camera length"
        )
        warnings.warn(unused["camera_length_mm"], stacklevel=2)
    precession = p.precession_angle_deg
    if precession is None:
        precession = _meta_float(dataset, _PRECESSION_KEYS) or 0.0
    scale = cal.isotropic_scale
    data = dataset.data
    pattern_shape = tuple(int(v) for v in dataset.sig_shape)

    from anodemap.diffraction.libraries import refinement_matchers, template_libraries

    try:  # every phase read first: an unknown one named as the command line has it
        for name in p.phases:
            load_phase(name)
    except (AnodemapInputError, AnodemapIOError) as err:
        raise type(err)(f"--phases {' '.join(map(str, p.phases))}: {err}") from err
    libraries_of = (p.phases, energy, scale, precession, pattern_shape)

    def build_matcher():
        return template_libraries(
            *libraries_of, p.step_deg, n_decoys=p.n_decoys, cache=p.template_cache
        )

    if not (math.isfinite(p.vacuum_scattered_fraction) and p.vacuum_scattered_fraction >= 0):
        raise AnodemapInputError(
            f"vacuum_scattered_fraction={p.vacuum_scattered_fraction}: must be >= 0 (0: no "
            "pattern is taken for vacuum)"
        )
    refine = p.refine_step_deg  # None or 0: no refinement (checked by _check_parameters)

    def build_refiners():
        return refinement_matchers(
            *libraries_of, refine, n_decoys=p.n_decoys, cache=p.template_cache
        )

    # the template libraries do not depend on the data: built in a thread while the
    # data are read and the direct beam and the virtual images are found, and the
    # refinement's while the patterns are matched (numpy releases the GIL for most of both)
    with ThreadPoolExecutor(max_workers=1) as pool:
        templates = pool.submit(build_matcher)
        refiners = pool.submit(build_refiners) if refine else None
        data = _in_memory(data, p.in_memory_gb, client, progress, reading, log)
        with progress_label("direct-beam centres"):
            beam = find_direct_beam(data, client=client, progress=progress)
        centres = beam.filled()
        r_bf = p.bf_radius_px or float(np.nanmedian(beam.radius)) + 1.0
        if p.adf_range_px is not None:
            adf = p.adf_range_px
        else:
            cy, cx = np.nanmedian(centres.reshape(-1, 2), axis=0)
            edge = min(cy, cx, pattern_shape[0] - 1 - cy, pattern_shape[1] - 1 - cx)
            adf = (2.0 * r_bf, max(2.0 * r_bf + 1.0, float(edge)))
        # the vacuum criterion's masks do not follow the user's bright field and ADF
        r_beam = float(np.nanmedian(beam.radius)) + 1.0
        vacuum_masks = scattering_masks(r_beam, centres, pattern_shape)
        masks = {"bf": Disk(r_bf), "adf": Annulus(*adf)}
        masks |= {k: v for k, v in vacuum_masks.items() if k != "floor"}
        with progress_label("virtual images"):
            images = virtual_images(data, masks, center=beam, client=client, progress=progress)
            floor, noise = ring_level(
                data, vacuum_masks["floor"], center=beam, spread=True, client=client
            )
        n_px = tuple(mask_pixels(vacuum_masks[k], centres, pattern_shape) for k in vacuum_masks)
        scattered = scattered_fraction(images["beam"], images["scattered"], floor, n_px[:2])
        scattered_noise = scattered_fraction_noise(images["beam"], floor, noise, n_px)
        # vacuum: next to nothing scattered, and measured well enough to say so (noise
        # gate at twice the threshold: about 1e3 electrons per pattern or fewer)
        vac_thr = p.vacuum_scattered_fraction
        decidable = scattered_noise < 2.0 * vac_thr
        vacuum = (scattered < vac_thr) & decidable & (vac_thr > 0)
        saturated = _saturated_patterns(data)
        libraries, matcher = templates.result()
        with progress_label("template matching"):
            out = match_patterns(
                data,
                centres,
                libraries,
                scale,
                matcher=matcher,
                vacuum=vacuum,
                client=client,
                progress=progress,
            )
        euler = np.asarray(out["euler"], dtype=float)
        reliability = np.asarray(out["reliability"], dtype=float)
        phase = np.asarray(out["phase"]).astype(np.int16)
        moved: dict[str, dict[str, int]] = {}
        refine_width = None
        if refiners is not None and np.any(phase > 0):
            from anodemap.diffraction.matching import refine_orientations
            from anodemap.diffraction.templates import misorientation_deg

            first = euler
            with progress_label("orientation refinement"):
                euler, reliability, choice = refine_orientations(
                    data,
                    centres,
                    phase,
                    refiners.result(),
                    euler,
                    reliability,
                    client=client,
                    progress=progress,
                    return_choice=True,
                )
            refine_width = REFINEMENT_EXCITATION_ERROR_WIDTHS[choice]
            # how many orientations the refinement moved: where the first match was off
            for k, name in enumerate(p.phases):
                sel = phase == k + 1
                if sel.any():
                    angle = misorientation_deg(first[sel], euler[sel], load_phase(name))
                    moved[name] = {
                        "patterns": int(sel.sum()),
                        "moved_over_2deg": int((angle > 2.0).sum()),
                    }
        status = np.asarray(out["status"]).astype(np.uint8)
        names = dict(out["phase_names"])
        # averaged: amorphous (group 0), the phases (1, 2, ...), then crystalline not
        # indexed; vacuum and patterns not analysed in none
        n_ph = len(p.phases)
        group_of = np.where(phase >= 0, phase, -1)
        group_of = np.where(phase == _LABEL_NOT_INDEXED, n_ph + 1, group_of)
        groups = {
            "phases": (
                group_of,
                [names[str(k)] for k in range(n_ph + 1)] + [names[str(_LABEL_NOT_INDEXED)]],
            )
        }
        if regions is not None:
            values = np.unique(regions[regions > 0])
            rank = np.searchsorted(values, regions)
            groups["regions"] = (
                np.where(regions > 0, rank, -1),
                [f"region {v}" for v in values],
            )
        with progress_label("averaged patterns"):
            averages = {
                kind: _averaged(data, labels, group_names, centres, cal.scale, client, progress)
                for kind, (labels, group_names) in groups.items()
            }
    maps = {
        "phase": phase,
        "correlation": np.asarray(out["correlation"], dtype=float),
        "reliability": reliability,
        "phase_reliability": np.asarray(out["phase_reliability"], dtype=float),
        "euler": euler,
        "amorphous_share": np.asarray(out["amorphous_share"], dtype=float),
        "spottiness": np.asarray(out["spottiness"], dtype=float),
        "pair_peak": np.asarray(out["pair_peak"], dtype=float),
        "spot_match": np.asarray(out["spot_match"], dtype=float),
        "scattered_fraction": np.asarray(scattered, dtype=float),
        "status": status,
        "virtual_bf": np.asarray(images["bf"], dtype=float),
        "virtual_adf": np.asarray(images["adf"], dtype=float),
        "beam_centre": np.asarray(centres, dtype=float),
    }
    settings = {
        "beam_energy_kev": energy,
        "precession_angle_deg": precession,
        "virtual_bf_radius_px": r_bf,
        # the labels' criteria (anodemap.diffraction.matching.assign_phases)
        "labels": {
            "vacuum_scattered_fraction": float(p.vacuum_scattered_fraction),
            "vacuum_beam_radius_px": r_beam,
            "vacuum_scattered_annulus_px": [
                float(masks["scattered"].inner),
                float(masks["scattered"].outer),
            ],
            "vacuum_floor_ring_px": [
                float(vacuum_masks["floor"].inner),
                float(vacuum_masks["floor"].outer),
            ],
            # patterns whose scattered fraction is too noisy to call vacuum (they are
            # matched as specimen: a pore among them comes out amorphous)
            "vacuum_undecidable_patterns": int(np.count_nonzero(~decidable)),
            # patterns reaching the top of an integer type: a saturated beam inflates the
            # scattered fraction, and vacuum may then be missed
            "saturated_patterns": saturated,
            "bragg_z": float(matcher.params.bragg_z),
            # the scan-relative routes' thresholds (None: the route called nothing, as in
            # a scan without an amorphous null)
            "amorphous_threshold": _finite(out["amorphous_threshold"]),
            "peak_threshold": _finite(out["peak_threshold"]),
            "min_spot_match": float(matcher.params.min_spot_match),
        },
        # patterns whose brightest disk was a Bragg disk: the beam taken from the descan
        # of the neighbours (find_direct_beam)
        "direct_beam_outshone_by_bragg_disk": int(np.count_nonzero(beam.outshone))
        if beam.outshone is not None
        else 0,
        "virtual_adf_radii_px": list(adf),
        "templates_per_phase": {lib.phase: int(len(lib.euler)) for lib in libraries},
        "orientation_refinement_step_deg": float(refine) if refine else None,
        "orientation_refinement_moved": moved,
        # the templates' excitation-error width (1/Å) that fitted the patterns best
        "orientation_refinement_excitation_error_width": refine_width,
        "euler_convention": "Bunge (phi1, Phi, phi2) in degrees, passive, as orix",
    }
    if unused:
        settings["parameters_not_used"] = unused
    return DiffractionResult(
        maps,
        list(dataset.nav_axes),
        names,
        cal.as_dict(),
        p,
        settings,
        source=dataset.title,
        averages=averages,
        regions=regions,
    )


# Each parameter's command-line option, named in messages with the Python name.
_OPTIONS = {
    "step_deg": "--step",
    "scale": "--reciprocal-pixel-size",
    "beam_energy_kev": "--beam-energy",
    "camera_length_mm": "--camera-length",
    "precession_angle_deg": "--precession",
    "n_decoys": "--decoys",
    "refine_step_deg": "--refine-step",
    "in_memory_gb": "--in-memory-gb",
}


def _check_parameters(p: DiffractionParameters) -> None:
    """Refuse parameters out of range, naming the command-line option (and the Python name).

    Raises
    ------
    AnodemapInputError
        A number that is not finite or out of its range, or no phase.
    """

    def refuse(name: str, value: Any, rule: str) -> None:
        option = _OPTIONS.get(name)
        given = f"{option} {value} ({name})" if option else f"{name}={value!r}"
        raise AnodemapInputError(f"{given}: {rule}")

    def number(name: str, value: Any, *, above: float | None = None, least: float | None = None):
        try:
            v = float(value)
        except (TypeError, ValueError):
            refuse(name, value, "must be a number")
        if not math.isfinite(v):
            refuse(name, value, "must be a finite number")
        if above is not None and not v > above:
            refuse(name, value, f"must be greater than {above:g}")
        if least is not None and not v >= least:
            refuse(name, value, f"must be at least {least:g}")

    if not p.phases:
        raise AnodemapInputError("no phase given: name at least one with --phases (phases)")
    number("step_deg", p.step_deg, above=0)
    for name in ("scale", "beam_energy_kev", "camera_length_mm", "bf_radius_px"):
        if getattr(p, name) is not None:
            number(name, getattr(p, name), above=0)
    for name in ("precession_angle_deg", "refine_step_deg"):
        if getattr(p, name) is not None:
            number(name, getattr(p, name), least=0)
    if p.in_memory_gb is not None:
        number("in_memory_gb", p.in_memory_gb, least=0)
    try:
        whole = float(p.n_decoys) == int(p.n_decoys) >= 1
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        refuse("n_decoys", p.n_decoys, "must be a whole number, at least 1")
    if p.adf_range_px is not None:
        lo, hi = (float(v) for v in p.adf_range_px)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
            refuse("adf_range_px", p.adf_range_px, "must be (inner, outer) px, 0 <= inner < outer")


def _finite(value: float) -> float | None:
    """``value`` as a float, or None where it is not finite (JSON has no infinity)."""
    return float(value) if math.isfinite(value) else None


def _saturated_patterns(data: Any) -> int | None:
    """Patterns whose largest count is the top of their integer type (None: floats)."""
    dtype = np.dtype(data.dtype)
    if not np.issubdtype(dtype, np.integer):
        return None
    top = np.iinfo(dtype).max
    peak = data.max(axis=(-2, -1))
    if hasattr(peak, "compute"):
        peak = peak.compute()
    return int(np.count_nonzero(np.asarray(peak) >= top))


# Reading into memory: what a run needs beyond the input itself, whichever way it reads
# (bytes of address space, the budget's unit under RLIMIT_AS, which resident memory never
# exceeds): the kernels' working arrays on every core (chunks of about 64 MiB, one per
# thread), the compiled matching kernels and the address space that threads and their
# malloc arenas reserve after the read. Measured on 2 cores (docs/diffraction.md,
# "Memory"): a run's largest address space less the address space held when the choice
# is made, less the input, was 0.68-0.76 GB for inputs of 0.27-1.07 GB. Model choice:
# 0.4 GB plus 0.25 GB per core (0.9 GB on 2 cores), and the input plus a tenth.
_RUN_RESERVE_BYTES = int(0.4e9)
_RUN_RESERVE_PER_CORE = int(0.25e9)
_INPUT_MARGIN = 1.1


def _in_memory_need(nbytes: int) -> int:
    """Bytes (of address space) a run that reads ``nbytes`` into memory needs beyond what
    the process holds when it decides."""
    return int(_INPUT_MARGIN * nbytes + _RUN_RESERVE_BYTES + _RUN_RESERVE_PER_CORE * usable_cores())


def _note(message: str) -> None:
    """One line for the user, to the ``anodemap`` logger (the command line prints its
    lines on stderr)."""
    logging.getLogger("anodemap").info(message)


def _in_memory(
    data: Any,
    limit_gb: float,
    client: Any,
    progress: bool,
    reading: dict | None = None,
    log: Callable[[str], None] = _note,
) -> Any:
    """``data`` read into memory when it is lazy, local, at most ``limit_gb`` GB and fits
    in the memory the process may use (:func:`anodemap._platform.memory_budget`); else
    ``data`` itself, read chunk by chunk in every pass. Says which.

    The patterns are written chunk by chunk into one array allocated first, so the read
    holds the input once (plus a chunk per thread), not once in chunks and once joined.
    Where the allocation or the read runs out of memory all the same, the run goes on
    out of core. ``reading["allow_in_memory"]`` False keeps them out of core;
    ``reading["in_memory"]`` is set True once they are read into memory.
    """
    import dask.array as da

    reading = reading if reading is not None else {}
    if not isinstance(data, da.Array) or client is not None:
        return data
    if not reading.get("allow_in_memory", True):
        return data
    size = f"{data.nbytes / 1e9:.2f} GB"
    if not data.nbytes <= limit_gb * 1e9:
        log(
            f"reading the patterns chunk by chunk in every pass: the input ({size}) is larger "
            f"than --in-memory-gb {limit_gb:g}"
        )
        return data
    budget = memory_budget()
    need = _in_memory_need(data.nbytes)
    if budget.bytes is not None and need > budget.bytes:
        log(
            f"reading the patterns chunk by chunk in every pass: in memory this input "
            f"({size}) would need about {need / 1e9:.1f} GB, and {describe_budget(budget)}"
        )
        return data
    from anodemap._compute import local_scheduler, progress_context

    # one file chunk: read in this thread, where the codec may use its own threads
    # (measured 2x faster on a one-chunk .zspy than in a dask worker thread)
    scheduler = local_scheduler("synchronous" if data.npartitions == 1 else "threads")
    log(f"reading the patterns ({size}) into memory once")
    out = None
    try:
        out = np.empty(data.shape, dtype=data.dtype)
        with progress_label("reading into memory"), progress_context(progress):
            da.store(data, out, lock=False, scheduler=scheduler)
    except MemoryError:
        out = None
        log(
            "the patterns did not fit in memory after all: reading them chunk by chunk in "
            "every pass instead"
        )
        return data
    reading["in_memory"] = True
    return out


def _averaged(
    data: Any,
    labels: np.ndarray,
    names: list[str],
    centres: np.ndarray,
    scale: tuple[float, float],
    client: Any,
    progress: bool,
) -> AveragedPatterns:
    """Descan-corrected mean pattern and I(s) of each group of scan positions."""
    from anodemap.diffraction.averaging import averaged_patterns

    if len(data.shape) == 3:  # a line scan: one row of a 2D scan
        data, labels, centres = data[None], labels[None], centres[None]
    means, counts, profile = averaged_patterns(
        data,
        labels,
        len(names),
        center=centres,
        calibration=scale,
        client=client,
        progress=progress,
    )
    means[counts == 0] = np.nan
    return AveragedPatterns(
        list(names), means, counts.astype(np.int64), profile.s, profile.intensity, tuple(scale)
    )
