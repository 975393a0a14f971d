"""The parameters of the EDX analysis, with their command-line options.

Kept apart from :mod:`anodemap.edx.pipeline` so that the command line builds its
options without importing the numerical code.

Examples
--------
>>> EDXParameters().lines
('Si_Ka', 'O_Ka')
>>> EDXParameters(method="windows").method
'windows'
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from anodemap.analysis.options import number, option
from anodemap.errors import AnodemapInputError

__all__ = ["ARTEFACTS", "EDXParameters", "METHODS"]

METHODS = ("fit", "windows")


def _k_factors(words: list[str]) -> dict[str, float]:
    from anodemap.edx.quant import parse_k_factors

    return parse_k_factors(words)


def _pca(text: str) -> int | str:
    """``--pca``: a number of components or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(f"give a number of components >= 1 or auto, not {text}")
    return k


ARTEFACTS = ("escape", "sum")


def _artefacts(words: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for w in words:
        for item in str(w).split(","):
            item = item.strip().lower()
            if item in ("", "none"):
                continue
            if item not in ARTEFACTS:
                raise AnodemapInputError(
                    f"--artefacts {item}: choose from {', '.join(ARTEFACTS)} (or none)"
                )
            if item not in out:
                out.append(item)
    return tuple(out)


def _energy_range(words: list[float]) -> tuple[float, float]:
    lo, hi = (float(w) for w in words)
    if not 0 <= lo < hi:
        raise AnodemapInputError(f"--energy-range {lo:g} {hi:g}: give 0 <= LO < HI in eV")
    return (lo, hi)


@dataclass
class EDXParameters:
    """Parameters of the EDX analysis.

    Parameters
    ----------
    lines : tuple of str
        X-ray lines to map, named as exspy names them (``Si_Ka``, ``O_Ka``, ``Pt_La``),
        or elements (``Fe``: its main line of highest energy within the spectrum).
        Every line of each one's family (K, L or M lines of the element) is in the model.
    file_lines : bool
        Also map the lines (or elements) the file names (``Sample.xray_lines`` or
        ``Sample.elements``, as Esprit, Velox or exspy recorded them): lines left out
        of a fit bias the others where they overlap.
    method : {"fit", "windows"}
        Linear least squares of line families plus background over the whole map
        (:mod:`anodemap.edx.fit`), or window integration with background windows
        (:mod:`anodemap.edx.windows`, as exspy's ``get_lines_intensity``).
    fwhm_mn_ka_ev : float, optional
        The detector's FWHM at Mn Ka (eV); default: the file's value, else 130 eV.
    background : {"local", "polynomial"}
        Fit: a polynomial per segment around the lines, or one over the whole energy
        range (exspy's default model, with ``background_order`` 6).
    background_order : int
        Fit: the order of the background polynomial(s).
    window_fwhm : float
        Fit, local background: a line's segment reaches this many FWHM either side.
    energy_range_ev : (float, float), optional
        Fit: the channels fitted (eV); default from 150 eV to the end of the axis.
    weighting : {"poisson", "uniform"}
        Fit: Poisson weights from the map's mean spectrum, or none (ordinary least
        squares, as exspy's fit of a signal without a variance).
    integration_fwhm, background_offset_fwhm, background_width_fwhm : float
        Windows: the integration window's width, and where the background windows start
        and how wide they are, in FWHM of the line (exspy's defaults 2, 2, 1).
    pca : int or "auto", optional
        Poisson-weighted PCA denoising (Keenan & Kotula 2004, :mod:`anodemap.edx.denoise`)
        of the channels analysed, keeping this many components, or ``"auto"``: those above
        the Poisson noise's largest singular value (parallel analysis). Default: none.
        The 1σ maps after it are not Poisson 1σ of the counts (see the module).
    artefacts : tuple of str
        Fit: detector artefacts modelled as components with their own fitted amplitude:
        ``escape`` (Si Ka escape peaks, E - 1.740 keV, of lines above the Si K edge) and
        ``sum`` (pile-up peaks at E1 + E2 of the families' main lines). Default: none.
    bin : int
        Sum blocks of ``bin`` x ``bin`` scan pixels before the analysis (1: none).
    k_factors : dict of str to float, optional
        Cliff–Lorimer k-factors, one line per element (``{"Si_Ka": 1.0, "O_Ka": 1.9}``):
        atomic fractions are mapped from them.
    """

    lines: tuple[str, ...] = field(
        default=("Si_Ka", "O_Ka"),
        metadata=option(
            "--lines",
            "X-ray lines to map, as exspy names them (Si_Ka O_Ka Pt_La ...) or elements",
            nargs="+",
            metavar="LINE",
            convert=tuple,
        ),
    )
    file_lines: bool = field(
        default=True,
        metadata=option(
            "--file-lines",
            "also map the lines or elements the file names (Sample.xray_lines)",
            action=argparse.BooleanOptionalAction,
        ),
    )
    method: str = field(
        default="fit",
        metadata=option(
            "--method",
            "fit: linear least squares of the lines and a background over the whole map; "
            "windows: window integration with background windows (as exspy)",
            choices=METHODS,
        ),
    )
    fwhm_mn_ka_ev: float | None = field(
        default=None,
        metadata=option(
            "--fwhm-mn-ka",
            "the detector's FWHM at Mn Ka",
            unit="eV",
            parse=number(above=0, unit=" eV"),
            default_text="the file's value, else 130 eV",
        ),
    )
    background: str = field(
        default="local",
        metadata=option(
            "--background",
            "fit: a polynomial on each segment around the lines (local) or one over the "
            "whole energy range (polynomial, exspy's model)",
            choices=("local", "polynomial"),
        ),
    )
    background_order: int = field(
        default=2,
        metadata=option(
            "--background-order",
            "fit: order of the background polynomial(s)",
            parse=number(int, least=0),
            metavar="N",
        ),
    )
    window_fwhm: float = 2.5
    energy_range_ev: tuple[float, float] | None = field(
        default=None,
        metadata=option(
            "--energy-range",
            "fit: the energy range fitted",
            unit="eV",
            nargs=2,
            parse=number(least=0, unit=" eV"),
            metavar=("LO", "HI"),
            convert=_energy_range,
            default_text="150 eV to the end of the spectrum",
        ),
    )
    weighting: str = "poisson"
    integration_fwhm: float = 2.0
    background_offset_fwhm: float = 2.0
    background_width_fwhm: float = 1.0
    pca: int | str | None = field(
        default=None,
        metadata=option(
            "--pca",
            "Poisson-weighted PCA denoising (Keenan-Kotula) keeping N components, or auto "
            "(those above the Poisson noise level)",
            parse=_pca,
            metavar="N|auto",
            default_text="off",
        ),
    )
    artefacts: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "--artefacts",
            "fit: model detector artefacts as fitted components: escape (Si Ka escape "
            "peaks), sum (pile-up peaks)",
            nargs="+",
            metavar="escape|sum",
            convert=_artefacts,
            default_text="none",
        ),
    )
    bin: int = field(
        default=1,
        metadata=option(
            "--bin",
            "sum blocks of N x N scan pixels before the analysis",
            parse=number(int, least=1),
            metavar="N",
        ),
    )
    k_factors: dict[str, float] | None = field(
        default=None,
        metadata=option(
            "--k-factors",
            "Cliff-Lorimer k-factors, one line per element, for atomic-fraction maps "
            "(e.g. Si_Ka=1.0 O_Ka=1.9)",
            nargs="+",
            metavar="LINE=K",
            convert=_k_factors,
            default_text="none (no atomic fractions)",
        ),
    )

    def __post_init__(self) -> None:
        if isinstance(self.lines, str):
            self.lines = (self.lines,)
        self.lines = tuple(str(v) for v in self.lines)
        if not self.lines:
            raise ValueError("lines: give at least one X-ray line or element")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.weighting not in ("poisson", "uniform"):
            raise ValueError(f"weighting must be poisson or uniform, not {self.weighting!r}")
        if self.pca is not None and self.pca != "auto":
            if isinstance(self.pca, str):
                self.pca = _pca(self.pca)
            if int(self.pca) < 1:
                raise ValueError(
                    f"pca must be a number of components >= 1 or 'auto', not {self.pca}"
                )
            self.pca = int(self.pca)
        self.artefacts = _artefacts(
            [self.artefacts] if isinstance(self.artefacts, str) else list(self.artefacts)
        )
        if self.artefacts and self.method != "fit":
            raise AnodemapInputError(
                "--artefacts: escape and sum peaks are components of the fit; use them "
                "with --method fit"
            )
        if int(self.bin) < 1:
            raise ValueError(f"bin must be at least 1, not {self.bin}")
        if self.energy_range_ev is not None:
            self.energy_range_ev = _energy_range(list(self.energy_range_ev))
        if self.k_factors is not None:
            self.k_factors = {str(k): float(v) for k, v in dict(self.k_factors).items()}

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
