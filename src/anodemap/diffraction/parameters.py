"""The parameters of the phase and orientation analysis, with their command-line options.

Kept apart from :mod:`anodemap.diffraction.pipeline` so that the command line builds
its options without importing the numerical code.

Examples
--------
>>> DiffractionParameters().step_deg
1.5
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from anodemap.analysis.options import number, option

__all__ = ["DiffractionParameters"]


@dataclass
class DiffractionParameters:
    """Parameters of :func:`analyse_diffraction`.

    Parameters
    ----------
    phases : tuple of str
        Phase names known to :func:`anodemap.diffraction.crystal.load_phase`, or CIF paths.
    step_deg : float
        Angular step of the template libraries (degrees).
    scale : float, optional
        Detector calibration in 1/Å per pixel (default: from the file's axes).
    beam_energy_kev, camera_length_mm, precession_angle_deg : float, optional
        Override what the file says. The precession angle defaults to the metadata's, else 0.
    bf_radius_px : float, optional
        Virtual bright-field radius (default: the measured direct-beam radius + 1 px).
    adf_range_px : (float, float), optional
        Virtual annular dark-field radii (default: 2 × the bright-field radius to the
        largest full circle).
    n_decoys : int
        Decoys per pattern for the amorphous criterion (see
        :class:`anodemap.diffraction.matching.MatchParameters`).
    refine_step_deg : float, optional
        Angular step of the libraries of the orientation refinement (degrees; None or 0:
        no refinement). After the phases are decided at ``step_deg``, the patterns called
        crystalline are matched again against a library of their own phase at this finer
        step, and their orientation and orientation reliability are taken from that match
        (model choice 1.0: on simulated electrodes it takes the share of correctly phased
        pixels within 2° of the truth from 0.43 to 0.93 (Si) on the benchmark electrode,
        and a Li15Si4 grain from 0.05 to 0.95, for about a tenth of the command's time).
    template_cache : bool
        Keep the prepared template libraries on disk and reuse them when the same
        phases, beam energy, calibration, precession, step and pattern size come again
        (:mod:`anodemap.diffraction._cache`: ``~/.cache/anodemap`` or
        ``$ANODEMAP_CACHE_DIR``); False builds them every time.
    vacuum_scattered_fraction : float
        A pattern without Bragg spots is vacuum (a pore) when the counts outside the direct
        beam (from twice its radius to the detector's edge), less the detector's floor
        measured on its outermost ring, are less than this fraction of the counts in the
        beam (:func:`anodemap.diffraction.virtual.scattered_fraction`; 0: no vacuum), and
        the fraction's noise is less than twice it (else undecidable: the pattern is matched
        as specimen). Model choice 0.01, measured on six simulated electrodes (32 × 32
        seeds 3, 0, 7; 48 × 48 seeds 0, 11; 64 × 64 seed 0; 1e5 electrons per pattern):
        pores -0.003 to 0.004 (0.005 recorded as unsigned integers, read noise clipped at
        0), material 0.067 and more; a light-element crystal (Li2O simulated in place of
        Si) 0.015 and more; at 1e4 electrons the pores' noise reaches ±0.03 (57 % of them
        found, no material called vacuum), at 1e3 no pattern is decidable. A saturated beam
        inflates the fraction: vacuum is then missed, never invented
        (``settings.labels.saturated_patterns`` counts patterns reaching the top of an
        integer type).
    in_memory_gb : float
        A lazy dataset up to this size (GB of its array) is read into memory once at the
        start instead of once per pass (centres, virtual images, matching, refinement,
        averaged patterns) when the run fits in the memory this process may use (the
        input, plus about 0.4 GB and 0.25 GB per core for the kernels; measured in
        docs/diffraction.md, "Memory"); a larger one, one that does not fit, or any
        with a ``client``, stays out of core (model choice 2 GB: a few times that fits
        on a workstation with the kernels' working memory; 0: always out of core).
    """

    phases: tuple[str, ...] = field(
        default=("Si", "Li15Si4"),
        metadata=option(
            "--phases",
            "phase names (Si, Li15Si4) or CIF files",
            nargs="+",
            metavar="PHASE",
            convert=tuple,
        ),
    )
    step_deg: float = field(
        default=1.5,
        metadata=option(
            "--step",
            "step of the template library",
            unit="degrees",
            parse=number(above=0, unit=" degrees"),
            metavar="DEG",
        ),
    )
    scale: float | None = field(
        default=None,
        metadata=option(
            "--reciprocal-pixel-size",
            "detector calibration",
            unit="1/Å per pixel",
            parse=number(above=0, unit=" 1/Å per pixel"),
            metavar="PER_A",
            aliases=("--calibration",),
            default_text="from the file",
        ),
    )
    beam_energy_kev: float | None = field(
        default=None,
        metadata=option(
            "--beam-energy",
            "beam energy",
            unit="keV",
            parse=number(above=0, unit=" keV"),
            default_text="from the file",
        ),
    )
    camera_length_mm: float | None = field(
        default=None,
        metadata=option(
            "--camera-length",
            "camera length",
            unit="mm",
            parse=number(above=0, unit=" mm"),
            default_text="from the file",
        ),
    )
    precession_angle_deg: float | None = field(
        default=None,
        metadata=option(
            "--precession",
            "precession semi-angle",
            unit="degrees",
            parse=number(least=0, unit=" degrees"),
            metavar="DEG",
            default_text="from the file, else 0",
        ),
    )
    bf_radius_px: float | None = None
    adf_range_px: tuple[float, float] | None = None
    n_decoys: int = field(
        default=2,
        metadata=option(
            "--decoys",
            "decoys per pattern for the amorphous criterion (each costs about a third of "
            "the matching time)",
            parse=number(int, least=1),
            metavar="N",
        ),
    )
    refine_step_deg: float | None = field(
        default=1.0,
        metadata=option(
            "--refine-step",
            "step of the orientation refinement: crystalline patterns matched again against "
            "a finer library of their own phase (0: none)",
            unit="degrees",
            parse=number(least=0, unit=" degrees"),
            metavar="DEG",
        ),
    )
    template_cache: bool = field(
        default=True,
        metadata=option(
            "--template-cache",
            "keep template libraries in the user cache folder",
            action=argparse.BooleanOptionalAction,
        ),
    )
    vacuum_scattered_fraction: float = 0.01
    in_memory_gb: float = field(
        default=2.0,
        metadata=option(
            "--in-memory-gb",
            "read an input of up to this size into memory once when the run fits in the "
            "memory this process may use (available memory, container limit, ulimit -v); "
            "else chunk by chunk in every pass (0: always)",
            unit="GB",
            parse=number(least=0, unit=" GB"),
            metavar="GB",
        ),
    )

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
