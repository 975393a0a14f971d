"""The template libraries of a diffraction analysis, built or read from the cache.

Everything the libraries are made of is an argument here: the phases' structures, the
beam energy, the detector calibration, the precession angle, the pattern size, the
template step and the matcher's settings. The template cache
(:mod:`anodemap.diffraction._cache`) keys them on those values and on the source of the
modules that build them — this one, the template simulation and the matcher — so that
editing the analysis's driver (:mod:`anodemap.diffraction.pipeline`) does not make every
cached library stale.

Examples
--------
>>> libraries, matcher = template_libraries(("Si",), 300.0, 0.04375, 0.4, (64, 64), 10.0,
...                                         n_decoys=2, cache=False)
>>> libraries[0].n_templates > 0
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["refinement_matchers", "structure_key", "template_libraries"]


def structure_key(crystal: Any) -> tuple:
    """What a phase's templates are made of: its name, cell, symmetry and atom sites
    (not the values it has cached on the way, so that the key does not depend on use)."""
    return (
        crystal.name,
        tuple(float(v) for v in crystal.cell),
        np.asarray(crystal.rotations, dtype=float).tobytes(),
        np.asarray(crystal.translations, dtype=float).tobytes(),
        tuple(
            (
                s.label,
                s.element,
                tuple(float(v) for v in s.frac),
                float(s.occupancy),
                float(s.b_iso),
            )
            for s in crystal.sites
        ),
        crystal.space_group,
    )


def _made_of(phases, energy, scale, precession, pattern_shape, n_decoys) -> tuple:
    """The key parts common to every library of a run (besides the code)."""
    from anodemap.diffraction.crystal import load_phase
    from anodemap.diffraction.matching import MatchParameters

    return (
        tuple(structure_key(load_phase(name)) for name in phases),
        float(energy),
        float(scale),
        float(precession),
        tuple(pattern_shape),
        MatchParameters(n_decoys=n_decoys),
    )


def _library(name, energy, scale, precession, pattern_shape, step, width=None) -> Any:
    from anodemap.diffraction.crystal import load_phase
    from anodemap.diffraction.templates import DEFAULT_EXCITATION_ERROR_WIDTH, generate_templates

    return generate_templates(
        load_phase(name),
        energy,
        scale,
        precession,
        step,
        detector_shape=pattern_shape,
        include_mirrored=True,
        excitation_error_width=DEFAULT_EXCITATION_ERROR_WIDTH if width is None else width,
    )


def template_libraries(
    phases: tuple[str, ...],
    energy: float,
    scale: float,
    precession: float,
    pattern_shape: tuple[int, int],
    step: float,
    *,
    n_decoys: int,
    cache: bool = True,
) -> tuple[list[Any], Any]:
    """The template library of every phase at ``step`` degrees and their matcher.

    Returns
    -------
    (list of SpotTemplates, Matcher)
    """
    from anodemap.diffraction._cache import cached
    from anodemap.diffraction.matching import prepare_matcher

    made_of = _made_of(phases, energy, scale, precession, pattern_shape, n_decoys)

    def build():
        libraries = [
            _library(name, energy, scale, precession, pattern_shape, step) for name in phases
        ]
        return libraries, prepare_matcher(libraries, scale, pattern_shape, n_decoys=n_decoys)

    return cached("templates", (*made_of, float(step)), build, cache)


def refinement_matchers(
    phases: tuple[str, ...],
    energy: float,
    scale: float,
    precession: float,
    pattern_shape: tuple[int, int],
    step: float,
    *,
    n_decoys: int,
    cache: bool = True,
) -> list[list[Any]]:
    """Per phase, one matcher at the finer ``step`` for each candidate excitation-error
    width of the orientation refinement (which picks one from the data); no decoys are
    searched (``n_decoys=1`` is only the matcher's smallest valid setting)."""
    from anodemap.diffraction._cache import cached
    from anodemap.diffraction.matching import prepare_matcher
    from anodemap.diffraction.templates import REFINEMENT_EXCITATION_ERROR_WIDTHS

    made_of = _made_of(phases, energy, scale, precession, pattern_shape, n_decoys)
    widths = REFINEMENT_EXCITATION_ERROR_WIDTHS

    def build():
        return [
            [
                prepare_matcher(
                    [_library(name, energy, scale, precession, pattern_shape, step, w)],
                    scale,
                    pattern_shape,
                    n_decoys=1,
                )
                for w in widths
            ]
            for name in phases
        ]

    return cached("templates", (*made_of, "refine", float(step), tuple(widths)), build, cache)
