"""Simulated silicon electrode with ground truth: phantom and forward models.

Examples
--------
>>> import numpy as np
>>> from anodemap.synth import make_phantom, simulate_eels
>>> class Cal:  # stand-in for anodemap.eels.calibration.default_calibration()
...     def energy(self, x):
...         return 16.83 - (16.83 - 12.74) * np.asarray(x) / 4.4
>>> ph = make_phantom((16, 16), seed=0)
>>> sim = simulate_eels(ph, calibration=Cal(), n_channels=800)
>>> sim.spectra.shape
(16, 16, 800)
"""

from .eels import (
    SimulatedEELS,
    drude_ep_for_peak,
    plasmon_lineshape,
    plasmon_width,
    simulate_eels,
    simulate_spectrum,
)
from .phantom import LABEL_NAMES, Label, Phantom, make_phantom

__all__ = [
    "LABEL_NAMES",
    "Label",
    "Phantom",
    "SimulatedEELS",
    "drude_ep_for_peak",
    "make_phantom",
    "plasmon_lineshape",
    "plasmon_width",
    "simulate_eels",
    "simulate_spectrum",
]
