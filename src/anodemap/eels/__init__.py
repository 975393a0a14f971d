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

from typing import TYPE_CHECKING, Any

# Names are resolved on first use (PEP 562), so that importing one light submodule
# (``anodemap.eels.calibration`` in the figure worker, say) does not import the
# numba kernels, scipy.fft and dask through the pipeline.
_WHERE = {
    "Calibration": "calibration",
    "default_calibration": "calibration",
    "load_calibration": "calibration",
    "compare_with_truth": "output",
    "write_eels_results": "output",
    "EELSParameters": "pipeline",
    "EELSResult": "pipeline",
    "analyse_eels": "pipeline",
    "eels_dataset": "pipeline",
    "energy_axis": "pipeline",
}

if TYPE_CHECKING:  # pragma: no cover
    from anodemap.eels.calibration import Calibration, default_calibration, load_calibration
    from anodemap.eels.output import compare_with_truth, write_eels_results
    from anodemap.eels.pipeline import (
        EELSParameters,
        EELSResult,
        analyse_eels,
        eels_dataset,
        energy_axis,
    )


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'anodemap.eels' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"anodemap.eels.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


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
