"""Feature segmentation of HAADF images: pores, bright (crystalline Si), grey
(moderately lithiated), dendrite-like and boundaries (Ahmed et al., Fig. 2b).

One responsibility per module:

========================  =============================================================
``classes``               the class codes, names and colours
``parameters``            :class:`FeaturesParameters` (and the command-line options)
``calibration``           the image's axes in nm
``thickness``             the thickness term: a t/λ map on the image's grid, or the
                          envelope of the grey class
``unsupervised``          the default rule: thresholds measured on the image's histogram
``texture``               per-pixel features (intensity, variance, structure tensor)
``scribbles``             reading the scribble map of the trainable mode
``trainable``             a random forest trained on the scribbles
``regions``               connected regions, their size and shape; the porosity
``detection``             the pore detection limit, measured by injecting pores
``segment``               the steps in order: :func:`segment`
``truth``                 comparison with a truth label map
``output``, ``figures``   files and figures; ``analysis``: ``anodemap features``
========================  =============================================================

Examples
--------
>>> from anodemap.features import segment, FeaturesParameters
>>> FeaturesParameters().background
'envelope'
"""

from __future__ import annotations

from typing import Any

# names imported when first used: the command line reads the parameters without numpy
_WHERE = {
    "FeaturesParameters": "parameters",
    "Segmentation": "segment",
    "segment": "segment",
    "compare": "truth",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'anodemap.features' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"anodemap.features.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = ["FeaturesParameters", "Segmentation", "compare", "segment"]
