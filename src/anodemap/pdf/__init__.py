"""Pair distribution functions of amorphous regions from electron diffraction (issue 17).

The core of the electron reduced density function (eRDF) route, on plain arrays:

* :func:`electron_scattering_factor`, :func:`mean_scattering_factors` — Lobato & Van Dyck
  (2014) electron scattering factors, stored as data with their source;
* :func:`reduced_intensity` — φ(s) with N and a smooth background fitted at high s;
* :func:`pair_distribution` — G(r) = 8π ∫ φ(s) W(s) sin(2π s r) ds, W a damping window
  (:func:`damping_window`: Lorch, raised cosine or none);
* :func:`find_peaks` — the first peaks of G(r): position, height, FWHM;
* :func:`bootstrap_pdf`, :func:`compare_regions` — G(r) of a region from its patterns with a
  bootstrap band and peak intervals, and the difference of two regions with its intervals;
* :func:`termination_corrections` — the bias of the peak positions from the finite s range
  and the damping, estimated from a model of the peaks, with its systematic term.

The command ``anodemap pdf`` (:mod:`anodemap.pdf.analysis`) runs them over the phase classes
and regions of a diffraction result.

s = 1/d in 1/Å throughout, r in Å. See ``docs/pdf.md`` for the formulas and validation.

Examples
--------
>>> import numpy as np
>>> from anodemap.pdf import (
...     find_peaks, mean_scattering_factors, pair_distribution, reduced_intensity)
>>> s = np.linspace(0.05, 2.0, 800)
>>> f, f2 = mean_scattering_factors("Si:1", s)
>>> I = 50.0 * (f2 + 4 * f**2 * np.sinc(2 * s * 2.352) * np.exp(-0.02 * s**2))
>>> ri = reduced_intensity(s, I, "Si:1", fit="scale")
>>> r = np.arange(0.0, 6.0, 0.005)
>>> round(find_peaks(r, pair_distribution(ri.s, ri.phi, r), n=1)[0].r_angstrom, 2)
2.35
"""

from anodemap.pdf.bootstrap import (
    BootstrapPDF,
    PeakDifference,
    PeakInterval,
    RegionComparison,
    bootstrap_pdf,
    compare_regions,
)
from anodemap.pdf.scattering import (
    electron_scattering_factor,
    mean_scattering_factors,
    parse_composition,
    scattering_elements,
    scattering_source,
)
from anodemap.pdf.termination import TerminationCorrection, termination_corrections
from anodemap.pdf.transform import (
    Peak,
    ReducedIntensity,
    damping_window,
    find_peaks,
    lorch_window,
    pair_distribution,
    reduced_intensity,
)

__all__ = [
    "BootstrapPDF",
    "Peak",
    "PeakDifference",
    "PeakInterval",
    "ReducedIntensity",
    "RegionComparison",
    "TerminationCorrection",
    "bootstrap_pdf",
    "compare_regions",
    "damping_window",
    "electron_scattering_factor",
    "find_peaks",
    "lorch_window",
    "mean_scattering_factors",
    "pair_distribution",
    "parse_composition",
    "reduced_intensity",
    "scattering_elements",
    "scattering_source",
    "termination_corrections",
]
