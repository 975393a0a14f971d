"""anodemap: quantitative cryo-STEM analysis of battery anodes.

Subpackages: :mod:`anodemap.io` (files), :mod:`anodemap.eels` (low-loss EELS),
:mod:`anodemap.synth` (simulated electrode with ground truth),
:mod:`anodemap.electrochem` (capacity and Li per host atom).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("anodemap")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
