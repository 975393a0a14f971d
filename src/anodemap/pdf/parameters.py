"""The parameters of the PDF analysis (``anodemap pdf``), with their command-line options.

Kept apart from the numerical code so that the command line builds its options without
importing it.

Examples
--------
>>> p = PDFParameters()
>>> p.composition, p.damping, p.s_range
('Si:1', 'lorch', None)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from anodemap.analysis.options import number, option

__all__ = ["PDFParameters", "composition_word"]


def composition_word(text: str) -> str:
    """An argparse ``type=`` for one ``ELEMENT:AMOUNT`` word of ``--composition``.

    Examples
    --------
    >>> composition_word("Li:3.5")
    'Li:3.5'
    >>> composition_word("Li")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: 'Li': give ELEMENT:AMOUNT, e.g. Si:1 Li:3.5
    """
    from anodemap.pdf.scattering import parse_composition

    element, sep, _ = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: give ELEMENT:AMOUNT, e.g. Si:1 Li:3.5")
    try:
        parse_composition(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None
    return text


@dataclass
class PDFParameters:
    """Parameters of the PDF analysis (:class:`anodemap.pdf.analysis.PDFAnalysis`).

    Parameters
    ----------
    composition : str
        Atom amounts of the material, ``"Si:1 Li:3.5"`` (normalised to fractions). Li
        scatters weakly: it changes the heights of G(r), barely its positions
        (``docs/pdf.md``: Si analysed as Li3.75Si moves r1 by 0.0006 Å).
    s_range : (float, float), optional
        s interval of I(s) used, 1/Å. Default from the data: from twice the direct-beam
        radius the diffraction analysis measured (past the beam's disc and the start of
        its tail) to the largest full circle around the centres of 99 % of the material
        patterns (the detector's edge in s with the file's calibration).
    damping : {"lorch", "hann", "none"}
        Window under the G(r) integral (:func:`anodemap.pdf.damping_window`).
    fit : {"scale+constant", "scale", "scale+linear"}
        Background under N⟨f²⟩ fitted over the upper half of the s range.
    r_max_angstrom, r_step_angstrom : float
        The r grid of G(r): 0 to r_max in steps of r_step, Å.
    n_peaks : int
        Peaks of each region's G(r) in the peak table.
    n_boot : int
        Bootstrap resamples of each region's patterns.
    seed : int
        Seed of the first region's resampling; region k uses ``seed + k`` (regions are
        resampled independently, so that they can be compared).
    min_patterns : int
        A region with fewer material patterns is listed as not analysed (model choice
        20: percentile intervals from fewer run narrow; 40 give 18/20 coverage).
    s_reference : str
        Phase class or region whose mean I(s) holds crystalline Si rings: their positions
        against the Si reflections (:func:`anodemap.diffraction.rings.check_s_scale`) give
        a factor on the s-axis, applied when at least three rings agree to 0.3 % (model
        choice: what the check reaches on Debye-scattered Si on a fine detector; on
        64-pixel patterns of single grains it is off by 10-25 % and is not applied);
        ``"none"``: no check.
    termination_correction : bool
        Subtract the termination bias estimated from a model of the peaks and add its
        systematic half-width to the intervals (:mod:`anodemap.pdf.termination`).
    ring_correction : bool
        Measure the centre and elliptical distortion of the strongest ring of the
        material patterns' mean (:func:`anodemap.diffraction.rings.measure_ellipse`) and
        undo them in every pattern's I(s).
    density : float, optional
        Mass density of the material in g/cm³: with it, the first-shell coordination
        number N₁ of every region (:mod:`anodemap.pdf.coordination`; within −1 to +4 %
        on a bulk a-Si network, as good as the density; for a mixture a weighted sum of
        partial coordination numbers).
    beam_radii : float
        Default lower end of the s range in direct-beam radii (model choice 2).
    in_memory_gb : float
        A lazy dataset up to this size (GB) is read into memory once for the two passes
        (beam centres and I(s)); larger, or on a cluster, it is read chunk by chunk.
    """

    composition: str = field(
        default="Si:1",
        metadata=option(
            "--composition",
            "atom amounts of the material, ELEMENT:AMOUNT words (Li changes the heights of "
            "G(r), barely its positions)",
            parse=composition_word,
            nargs="+",
            metavar="EL:N",
            convert=" ".join,
        ),
    )
    s_range: tuple[float, float] | None = field(
        default=None,
        metadata=option(
            "--s-range",
            "s interval of I(s) used",
            unit="1/Å",
            parse=number(least=0, unit=" 1/Å"),
            nargs=2,
            metavar=("LO", "HI"),
            convert=tuple,
            default_text="from twice the direct-beam radius to the detector's edge",
        ),
    )
    damping: str = field(
        default="lorch",
        metadata=option(
            "--damping",
            "window under the G(r) integral",
            choices=("lorch", "hann", "none"),
        ),
    )
    fit: str = "scale+constant"
    r_max_angstrom: float = field(
        default=10.0,
        metadata=option(
            "--r-max", "largest r of G(r)", unit="Å", parse=number(above=1, unit=" Å"), metavar="R"
        ),
    )
    r_step_angstrom: float = 0.01
    n_peaks: int = 3
    n_boot: int = field(
        default=200,
        metadata=option(
            "--bootstrap",
            "bootstrap resamples of each region's patterns",
            parse=number(int, least=20),
            metavar="N",
        ),
    )
    seed: int = field(
        default=0,
        metadata=option(
            "--seed",
            "seed of the resampling (region k: seed + k)",
            parse=number(int, least=0),
            metavar="N",
        ),
    )
    min_patterns: int = field(
        default=20,
        metadata=option(
            "--min-patterns",
            "least material patterns in a region for its PDF",
            parse=number(int, least=2),
            metavar="N",
        ),
    )
    termination_correction: bool = field(
        default=True,
        metadata=option(
            "--termination-correction",
            "subtract the termination bias of the peak positions estimated from a model "
            "of the peaks, its size added to the intervals",
            action=argparse.BooleanOptionalAction,
        ),
    )
    ring_correction: bool = field(
        default=True,
        metadata=option(
            "--ring-correction",
            "measure the ring centre and elliptical distortion on the mean of the material "
            "patterns and undo them in every pattern's I(s)",
            action=argparse.BooleanOptionalAction,
        ),
    )
    s_reference: str = field(
        default="Si",
        metadata=option(
            "--s-reference",
            "phase class or region (e.g. 'region 2') whose mean I(s) is checked against "
            "the Si reflections to correct the s-scale (camera length); none: no check",
            metavar="NAME",
        ),
    )
    density: float | None = field(
        default=None,
        metadata=option(
            "--density",
            "mass density of the material: with it, the first-shell coordination number of "
            "every region with its interval (docs/pdf.md: how far to trust it)",
            unit="g/cm³",
            parse=number(above=0, unit=" g/cm³"),
            metavar="RHO",
        ),
    )
    beam_radii: float = 2.0
    in_memory_gb: float = 2.0

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
