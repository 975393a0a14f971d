"""The parameters of the feature segmentation, with their command-line options.

Kept apart from the numerical code so that the command line builds its options
without importing it.

Examples
--------
>>> FeaturesParameters().smoothing_px
0.7
>>> FeaturesParameters(background="none").background
'none'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anodemap.analysis.options import number, option

__all__ = ["FeaturesParameters"]


@dataclass
class FeaturesParameters:
    """Parameters of ``anodemap features`` (docs/features.md says how each was chosen).

    Parameters
    ----------
    smoothing_px : float
        Gaussian σ (px) of the smoothing before the grey, dendrite-like, boundary and
        bright thresholds (pores are decided unsmoothed). Model choice: of 0.7, 1 and
        1.5 px, 0.7 gave the best mean IoU on the simulated electrode (1000 counts per
        c-Si column) with the best thresholds.
    dark_sigmas, boundary_sigmas : float
        Dendrite-like below the grey level by more than ``dark_sigmas`` grey widths,
        boundary above it by more than ``boundary_sigmas``. Model choices: the best
        thresholds on the simulated electrode lay at 1.9-2.6 and 2.6-3.9 widths.
    grow_dark_sigmas, grow_boundary_sigmas : float or None
        Hysteresis (Canny): a dendrite-like (boundary) region grows into the connected
        pixels beyond ``grow_dark_sigmas`` (``grow_boundary_sigmas``) grey widths from
        the grey level; None: no growing. Model choices: boundary 2.5 (of 2-3 widths, the
        best mean IoU on the simulated electrode); dendrite-like none: 1.5 widths gained
        0-0.02 IoU on the electrode with a t/λ map but lost 0.02-0.05 with the grey
        envelope and 0.16 on the simulated region's survey (1.5 nm pixels; it grew
        into the grey).
    dark_reference_nm : float or None
        Gaussian σ of the local grey reference of the rule's last step
        (:func:`anodemap.features.unsupervised.split_dark`): a grey or dendrite-like
        pixel is dendrite-like where it lies ``dark_local_sigmas`` local grey widths below
        the grey around it. None: no such step. Model choice: 8 nm (a few thread widths
        of about 9 nm, under the grey's Li/Si correlation length of about 20 nm) raised
        the dendrite-like IoU on all nine simulated cases of docs/features.md (electrode
        seeds 1-3 with t/λ and with the envelope, region survey seeds 0-2) by 0.05-0.16
        and had the best smallest gain of 6-12 nm (each within 0.012 of it on the
        electrode). In nm, not px: a fixed 3-6 px lost up to 0.22 at 3.75 nm pixels.
    dark_local_sigmas : float
        That cut, in widths of the grey about its local reference (their spread, at least
        the noise; about half the global grey width). Model choice: 2.5 of 2.25-3.5
        widths: the best smallest gain over the nine cases (2.75 gave a larger mean, a
        smaller smallest gain).
    min_dark_area_nm2 : float
        Dark regions (8-connected) of this step smaller than this stay grey: noise
        specks, not threads. Model choice: 10 nm² (4.4 px of 1.5 nm) of 0-40 nm²: at least
        as good on each of the nine cases as none, +0.024 IoU on the region survey seed 0.
    pore_shell_nm : float
        Pixels within this distance of a pore, neither pore nor bright, are boundary: the
        O-rich shell that lines pores (paper, Fig. 3b: O at pores). Their values are
        partial pixels of void and shell, no guide to the class. Model choice: 6 nm
        (3.2 px) was best of 4.3-7 nm on the simulated electrode (3 px on an image
        without a length calibration); 0 switches it off.
    pore_ratio, bright_ratio : float
        A darkest mode below ``pore_ratio`` x the grey level is pores; a brightest mode
        above ``bright_ratio`` x the grey level is crystalline Si (model choices: a pore
        holds under half a column of material; c-Si is about 2 x Li1.8Si in the
        Z-contrast model).
    background : {"envelope", "none"}
        Without a t/λ map: divide the thickness out by the envelope of the grey class
        (:func:`anodemap.features.thickness.envelope_term`), or not at all.
    background_scale_nm : float
        Gaussian σ of that envelope, nm (20 px for an uncalibrated image). Model choice:
        about 40 nm (0.4 grain) was best on average of 19-75 nm on the simulated electrode.
    min_thickness : float
        t/λ below this in the ``--thickness`` map is a hole (pore, vacuum): filled from
        the material around it (anodemap eels's ``min_thickness``).
    black_level : float, optional
        Detector counts of zero signal, subtracted first. Default: 0, or the image's
        minimum where it holds negative values (an offset is then certain).
    frame : int, optional
        Which image of a series (tilt or time series, stack) to segment.
    min_region_px : int
        Connected regions smaller than this are not listed in ``regions.csv`` (they keep
        their class in the label map and the fractions).
    feature_scales_px : tuple of float
        Scales (Gaussian σ, px) of the trainable mode's features. Model choice: with 8
        strokes of 15 px per class on the simulated electrode, (0.5, 1, 2) classified
        1.5-3.5 % more pixels right than (1, 2, 4, 8), whose widest features let the
        forest learn the strokes' neighbourhoods rather than their classes.
    n_trees : int
        Trees of the trainable mode's random forest.
    seed : int
        The random forest's seed.
    """

    smoothing_px: float = field(
        default=0.7,
        metadata=option(
            "--smoothing",
            "Gaussian smoothing before the thresholds",
            unit="px",
            parse=number(least=0, unit=" px"),
        ),
    )
    dark_sigmas: float = 2.0
    boundary_sigmas: float = 3.0
    grow_dark_sigmas: float | None = None
    grow_boundary_sigmas: float | None = 2.5
    dark_reference_nm: float | None = 8.0
    dark_local_sigmas: float = 2.5
    min_dark_area_nm2: float = 10.0
    pore_shell_nm: float = field(
        default=6.0,
        metadata=option(
            "--pore-shell",
            "pixels this close to a pore (and not pore or c-Si) are boundary: the O-rich "
            "shell that lines pores (unsupervised mode; 0: none)",
            unit="nm",
            parse=number(least=0, unit=" nm"),
        ),
    )
    pore_ratio: float = 0.5
    bright_ratio: float = 1.3
    background: str = field(
        default="envelope",
        metadata=option(
            "--background",
            "without --thickness: divide the thickness out by the envelope of the grey "
            "class, or not",
            choices=("envelope", "none"),
        ),
    )
    background_scale_nm: float = field(
        default=40.0,
        metadata=option(
            "--background-scale",
            "Gaussian σ of the grey envelope (thickness varies slower than this)",
            unit="nm",
            parse=number(above=0, unit=" nm"),
        ),
    )
    min_thickness: float = 0.1
    black_level: float | None = field(
        default=None,
        metadata=option(
            "--black-level",
            "detector counts of zero signal, subtracted first",
            unit="counts",
            parse=number(),
            metavar="COUNTS",
            default_text="0, or the image's minimum if it is negative",
        ),
    )
    frame: int | None = field(
        default=None,
        metadata=option(
            "--frame",
            "which image of a series (tilt, time series, stack) to segment: its index",
            parse=number(int, least=0),
            metavar="N",
        ),
    )
    min_region_px: int = field(
        default=4,
        metadata=option(
            "--min-region",
            "smallest connected region listed in regions.csv",
            unit="px",
            parse=number(int, least=1, unit=" px"),
        ),
    )
    pore_trials: int = field(
        default=8,
        metadata=option(
            "--pore-trials",
            "places tried per diameter when measuring the pore detection limit by "
            "injecting pores (unsupervised mode; 0: not measured)",
            parse=number(int, least=0),
            metavar="N",
        ),
    )
    feature_scales_px: tuple[float, ...] = (0.5, 1.0, 2.0)
    n_trees: int = field(
        default=100,
        metadata=option(
            "--trees",
            "trees of the random forest (--training)",
            parse=number(int, least=1),
            metavar="N",
        ),
    )
    seed: int = field(
        default=0,
        metadata=option(
            "--seed",
            "seed of the random forest (--training)",
            parse=number(int, least=0),
            metavar="N",
        ),
    )

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
