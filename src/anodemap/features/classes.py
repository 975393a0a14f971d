"""The feature classes of a HAADF image of a lithiated Si anode (Ahmed et al., Fig. 2b).

The codes are those of the simulated phantom's labels (:class:`anodemap.synth.Label`),
so a label map compares with the simulated truth value for value.

Examples
--------
>>> CLASS_NAMES[PORE], len(CLASSES)
('pore', 5)
>>> [CLASS_NAMES[c] for c in BY_INTENSITY]
['pore', 'dendrite-like', 'grey', 'boundary', 'bright']
"""

from __future__ import annotations

__all__ = [
    "BOUNDARY",
    "BRIGHT",
    "BY_INTENSITY",
    "CLASSES",
    "CLASS_COLOURS",
    "CLASS_DESCRIPTIONS",
    "CLASS_NAMES",
    "DENDRITE",
    "GREY",
    "PORE",
]

PORE = 0
"""Pores (paper's feature 4): the darkest mode, little or no material in the column."""
BRIGHT = 1
"""Bright contrast (feature 2): unlithiated crystalline Si."""
GREY = 2
"""Grey contrast (feature 3), the majority: moderately lithiated Li_xSi."""
DENDRITE = 3
"""Dark grey, dendrite-like (feature 1): sheet-like high-Li regions."""
BOUNDARY = 4
"""Grain boundaries: bands brighter than the grey (Li2O / lithium silicates)."""

CLASSES = (PORE, BRIGHT, GREY, DENDRITE, BOUNDARY)

CLASS_NAMES = {
    PORE: "pore",
    BRIGHT: "bright",
    GREY: "grey",
    DENDRITE: "dendrite-like",
    BOUNDARY: "boundary",
}

CLASS_DESCRIPTIONS = {
    PORE: "pore (4)",
    BRIGHT: "bright, c-Si (2)",
    GREY: "grey, Li_xSi (3)",
    DENDRITE: "dendrite-like (1)",
    BOUNDARY: "boundary, O-rich",
}

# the classes from the darkest to the brightest in a thickness-normalised HAADF image
BY_INTENSITY = (PORE, DENDRITE, GREY, BOUNDARY, BRIGHT)

# colours of the outlines and the label map (the paper's Fig. 2b: green 1, red 2, dark
# blue 3, orange 4; boundaries in magenta)
CLASS_COLOURS = {
    PORE: "#ff8c00",
    BRIGHT: "#e31a1c",
    GREY: "#1f3fbf",
    DENDRITE: "#2ca02c",
    BOUNDARY: "#d62fd6",
}
