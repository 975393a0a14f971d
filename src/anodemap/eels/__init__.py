"""Low-loss EELS: zero-loss peak, thickness, deconvolution, plasmon fit, Li/Si.

Kernels (plain functions on arrays of spectra ``(..., E)``) live in the submodules;
:func:`analyse_eels` runs them all, fused, over a whole spectrum image.

Examples
--------
>>> from anodemap.io import load                                   # doctest: +SKIP
>>> from anodemap.eels import analyse_eels, write_eels_results     # doctest: +SKIP
>>> result = analyse_eels(load("si_lowloss.dm4", lazy=True))        # doctest: +SKIP
>>> write_eels_results(result, "results/")                          # doctest: +SKIP
"""

from anodemap.eels.calibration import Calibration, default_calibration, load_calibration
from anodemap.eels.output import compare_with_truth, write_eels_results
from anodemap.eels.pipeline import (
    EELSParameters,
    EELSResult,
    analyse_eels,
    eels_dataset,
    energy_axis,
)

__all__ = [
    "Calibration",
    "EELSParameters",
    "EELSResult",
    "analyse_eels",
    "compare_with_truth",
    "default_calibration",
    "eels_dataset",
    "energy_axis",
    "load_calibration",
    "write_eels_results",
]
