"""The parameters of ``anodemap correlate``, with their command-line options.

Examples
--------
>>> p = CorrelateParameters()
>>> p.reference, p.model, p.contrast
('haadf', 'affine', 'auto')
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from anodemap.analysis.options import number, option

__all__ = ["CorrelateParameters", "MODALITIES"]


def _cut(text: str, what: str) -> float | str:
    word = str(text).strip().lower()
    if word in ("auto", "off"):
        return word
    try:
        value = float(word)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"give auto, off or {what} above 0, not {text}")
    return value


def o_rich_cut(text: str) -> float | str:
    """``--o-rich``: ``auto``, ``off`` or an O Kα/Si Kα net-count ratio above 0."""
    return _cut(text, "an O Kα/Si Kα net-count ratio")


def eels_oxide_cut(text: str) -> float | str:
    """``--eels-oxide``: ``auto``, ``off`` or an oxide index above 0
    (:mod:`anodemap.correlate.oxide_plasmon`)."""
    return _cut(text, "an oxide index (42 eV window / (plasmon area × t/λ))")


#: The modalities of a region, the HAADF survey first.
MODALITIES = ("haadf", "eels", "edx", "diffraction")


@dataclass
class CorrelateParameters:
    """Parameters of ``anodemap correlate`` (docs/registration.md says how each was
    chosen).

    Parameters
    ----------
    reference : {"haadf", "eels", "edx", "diffraction"}
        The frame every map is resampled into (the HAADF survey: the feature classes'
        own frame).
    model : {"affine", "similarity"}
        The transform between two maps. Model choice: affine, because every map of a
        scan drifts a little (the shear and stretch it gives are held near a similarity
        within 2 %); on the simulated region it halved the error of a similarity.
    contrast : {"auto", "intensity", "inverted", "gradient"}
        What of the images is compared (auto: intensity or inverted, whichever matches
        better; the gradient magnitude where neither matches clearly).
    max_rotation_deg : float
        Scan rotations between the maps up to this are searched.
    highpass_px : float
        Variations slower than a Gaussian of this σ (pixels of the coarser map) are taken
        out before comparing (model choice: 2; of 0, 2, 3, 4 the best on the simulated
        region; without it the thickness wedge matches anywhere).
    min_overlap : float
        Share of the smaller field of view that must overlap the HAADF survey.
    footprint : {"point", "cell"}
        What a map pixel saw, for the unmixed per-class means
        (:mod:`anodemap.correlate.unmix`): one point (a probe finer than the pixel; the
        default, as a focused STEM probe and the simulated region) or its whole cell.
    unmix_shares : {"soft", "hard"}
        ``soft``: in the unmixed means (``point`` footprint) a survey pixel called grey
        or dendrite-like counts for both by the features' probabilities of the two
        (``probability.hspy``; :func:`anodemap.correlate.unmix.class_shares`): their
        1-px edges, which intensity tells apart poorly, are partial. ``hard``: wholly for
        its class. Without probabilities, or with ``cell``, hard.
    o_rich : "auto", "off" or float
        Where an EDX map covers the survey, the boundary class is the O-rich pixels: O
        Kα/Si Kα net counts above this ratio (``auto``: Otsu's cut of the ratio, when
        the map has an O-rich mode; :mod:`anodemap.correlate.oxygen`); ``off`` keeps
        the HAADF's classes everywhere.
    o_rich_sigmas : float
        An O-rich pixel's O Kα must exceed this many of its 1σ (model choice: 2).
    eels_thickness : bool
        Under the EELS map, classify the survey again with the EELS t/λ registered on
        its grid as the thickness term (:mod:`anodemap.correlate.thickness`); pores and
        c-Si stay those of ``anodemap features``.
    eels_oxide : "auto", "off" or float
        Where an EELS map covers the survey, the boundary class is the pixels whose
        oxide index (the 42 eV window of Li2O and silicates over the first plasmon's
        area × t/λ; :mod:`anodemap.correlate.oxide_plasmon`) is above this (``auto``:
        Otsu's cut, when the map has an O-rich mode); ``off`` leaves it. Where EDX
        and EELS maps both cover a pixel, the finer map decides.
    """

    reference: str = field(
        default="haadf",
        metadata=option(
            "--reference",
            "the frame every map is resampled into",
            choices=("haadf", "eels", "edx", "diffraction"),
        ),
    )
    model: str = field(
        default="affine",
        metadata=option(
            "--model",
            "transform between the maps: affine (drift during a scan) or similarity",
            choices=("affine", "similarity"),
        ),
    )
    contrast: str = field(
        default="auto",
        metadata=option(
            "--contrast",
            "what the registration compares: intensity, inverted intensity, gradient "
            "magnitude, or the one that matches best",
            choices=("auto", "intensity", "inverted", "gradient"),
        ),
    )
    max_rotation_deg: float = field(
        default=10.0,
        metadata=option(
            "--max-rotation",
            "largest scan rotation between the maps searched",
            unit="degrees",
            parse=number(least=0, unit=" degrees"),
        ),
    )
    footprint: str = field(
        default="point",
        metadata=option(
            "--footprint",
            "what a map pixel saw, for the unmixed per-class means: one point (a fine "
            "probe) or its whole cell",
            choices=("point", "cell"),
        ),
    )
    unmix_shares: str = field(
        default="soft",
        metadata=option(
            "--unmix-shares",
            "for the unmixed per-class means, share a survey pixel called grey or "
            "dendrite-like between the two by the features' class probabilities (soft), "
            "or count it wholly for its class (hard)",
            choices=("soft", "hard"),
        ),
    )
    o_rich: float | str = field(
        default="auto",
        metadata=option(
            "--o-rich",
            "under the EDX map, the boundary class = pixels of O Kα/Si Kα net counts "
            "above this ratio; auto: Otsu's cut of the ratio; off: the HAADF's classes",
            parse=o_rich_cut,
            metavar="auto|off|RATIO",
        ),
    )
    eels_thickness: bool = field(
        default=True,
        metadata=option(
            "--eels-thickness",
            "under the EELS map, find the grey, dendrite-like and boundary classes again "
            "with its registered t/λ as the thickness term (unsupervised features only)",
            action=argparse.BooleanOptionalAction,
        ),
    )
    eels_oxide: float | str = field(
        default="auto",
        metadata=option(
            "--eels-oxide",
            "under the EELS map, the boundary class = pixels of oxide index (42 eV window "
            "/ (first plasmon area × t/λ)) above this; auto: Otsu's cut; off: not by EELS",
            parse=eels_oxide_cut,
            metavar="auto|off|INDEX",
        ),
    )
    highpass_px: float = 2.0
    min_overlap: float = 0.5
    o_rich_sigmas: float = 2.0

    def __post_init__(self) -> None:
        for name, parse in (("o_rich", o_rich_cut), ("eels_oxide", eels_oxide_cut)):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, float):
                try:
                    setattr(self, name, parse(str(value)))
                except argparse.ArgumentTypeError as err:
                    raise ValueError(f"{name}: {err}") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
