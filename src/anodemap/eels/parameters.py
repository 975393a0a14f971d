"""The parameters of the low-loss EELS analysis, with their command-line options.

Kept apart from :mod:`anodemap.eels.pipeline` so that the command line builds its
options without importing the numerical code.

Examples
--------
>>> EELSParameters().rl_iterations
15
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from anodemap.analysis.options import WindowAction, number, option, window_value
from anodemap.eels import windows as _win

__all__ = ["Deconvolution", "EELSParameters"]

Deconvolution = Literal["rl", "fourier-log", "none"]


@dataclass
class EELSParameters:
    """Parameters of the low-loss analysis (the defaults are the paper's workflow).

    Parameters
    ----------
    window : (float, float) or "auto"
        Plasmon fit window in eV, or ``"auto"``: found around the strongest loss peak of
        the scan's summed spectra (:func:`anodemap.eels.fit_window.auto_window`).
    model : {"lorentzian", "drude"}
        Plasmon lineshape.
    background : str, optional
        Background model under the plasmon (default: that of
        :func:`anodemap.eels.plasmon.fit_plasmon`).
    deconvolve : {"rl", "fourier-log", "none"}
        Zero-loss deconvolution applied before the energy-window maps (and before the
        plasmon fit if ``fit_deconvolved``). Richardson–Lucy runs only over the energy
        range of the window maps (with a 3 eV margin), with the boundary-aware update
        of :func:`anodemap.eels.deconvolution.richardson_lucy_range`; Fourier-log runs
        on the whole axis.
    rl_iterations : int
        Richardson–Lucy iterations.
    fit_deconvolved : bool
        Fit the plasmon on the deconvolved spectra (Richardson–Lucy or Fourier-log over
        the whole axis, which then also feed the window maps) instead of the aligned
        ones. The default fits the aligned spectra: the paper deconvolved for the
        second-plasmon and Li-K maps and names no deconvolution for its NLLS plasmon
        fit, whose model here holds the plural scattering and a background. Measured
        on the simulated electrode (256 x 256) both meet the accuracy targets: median
        |ΔE_p| 0.0125 eV (aligned) against 0.0122 eV (Richardson–Lucy), median
        |ΔLi/Si| 0.014 against 0.015. With Fourier-log the fit is worse (0.023 eV on
        32 x 32).
    oxide_peak : {"auto", "off"}
        ``"auto"``: where a Li2O/silicate plasmon (19-22 eV, the paper's) lies beside the
        Li_xSi one, the Li_xSi energy (and Li/Si) comes from a fit with both peaks
        (:mod:`anodemap.eels.oxide_peak`: refitted where a score test for an oxide peak
        reaches 5σ or the one-peak fit did not converge, the two-peak result kept where
        the oxide peak's fitted area is >= 3σ). ``"off"``: the paper's one-peak fit
        everywhere, which reads Li/Si low at oxide-rich grain boundaries.
    zlp_method : {"mirror", "model"}
        How the zero-loss peak of each aligned spectrum is extracted.
    li2o_window, li_k_window, li_k_background : (float, float)
        Energy windows in eV for the Li2O/silicate and Li-K maps (the Li-K background
        window is where the power law is fitted, below the edge).
    li_k_method : {"fit", "window"}
        Where the Li-K counts in ``li_k_window`` come from
        (:func:`anodemap.eels.windows.edge_fit`): ``"fit"``, the edge of a power law
        plus the hydrogenic Li-K edge fitted together over ``li_k_background`` and
        ``li_k_edge_fit`` (less noisy: it uses every channel of the edge); ``"window"``,
        the counts in the window above the power law of the background window (the
        paper's map). See docs/eels.md, "The Li-K map", for how each measures against
        the simulated truth.
    li_k_edge_fit : (float, float)
        Energies above the Li-K onset that the fit sees, in eV; the end is cut to the
        axis less the Fourier-log taper (:data:`anodemap.eels.windows.LI_K_EDGE_FIT_EV`).
    beam_energy_kev, collection_angle_mrad : float, optional
        Incident energy (keV) and spectrometer collection semi-angle β (mrad) for the
        shape of the hydrogenic Li-K edge (``li_k_method="fit"``). Default: the file's
        metadata (``Acquisition_instrument.TEM.beam_energy`` and
        ``...TEM.Detector.EELS.collection_angle``, HyperSpy's), else 200 keV (the
        paper's) and 10 mrad (a model choice; the paper does not give β). Between 5 and
        50 mrad, 80 and 300 keV the shape over 57-75 eV changes by at most 5 %.
    li_k_exponent_range : (float, float)
        Power-law exponents r of the Li-K background outside this range flag the pixel
        (``BACKGROUND_EXPONENT``); see :data:`anodemap.eels.windows.POWER_LAW_EXPONENT_RANGE`.
    li_k_max_thickness : float
        Pixels with t/λ above this are flagged ``TOO_THICK`` in the Li-K map. Model
        choice, measured on simulated spectra recorded to 75 eV (the default axis): the
        noise-free Li-K counts after Fourier-log are within 5 % of the truth up to
        t/λ = 1.5 and fail beyond (14 % low at 1.8 for Li/Si = 1.8, thousands of counts
        off in pure Si): the plural scattering beyond the end of the axis, which
        Fourier-log cannot see, then reaches the Li-K region. A longer axis allows more
        (145 eV: within 4 % at t/λ = 2).
    thickness_method : {"threshold", "zlp"}
        ``I_0`` of the log-ratio: counts below ``threshold_fwhm`` × the zero-loss FWHM
        (robust to an asymmetric zero-loss peak), or the extracted zero-loss peak's area.
    threshold_fwhm : float
        Zero-loss threshold for ``thickness_method="threshold"``, in zero-loss FWHMs above
        0 eV (model choice: 2 FWHM holds >99.9 % of a Gaussian core and stays below the
        onset of the first plasmon).
    min_thickness : float
        Pixels with t/λ below this are flagged NO_SIGNAL (vacuum, pores). Model choice:
        0.1 lies between the simulated pores (0.05) and the thinnest material (0.3), and
        below 0.1 the first plasmon holds under 10 % of the counts.
    zlp_search : (float, float)
        Where to look for the zero-loss peak, in eV.
    """

    window: tuple[float, float] | str = field(
        default=(8.0, 25.0),
        metadata=option(
            "--window",
            "plasmon fit window, or 'auto': around the strongest loss peak of the summed spectra",
            unit="eV",
            nargs="+",
            metavar="LO HI | auto",
            action=WindowAction,
            convert=window_value,
        ),
    )
    model: str = field(
        default="lorentzian",
        metadata=option("--model", "plasmon lineshape", choices=("lorentzian", "drude")),
    )
    background: str | None = None
    deconvolve: Deconvolution = field(
        default="rl",
        metadata=option(
            "--deconvolve",
            "zero-loss deconvolution before the window maps (rl: Richardson-Lucy)",
            choices=("rl", "fourier-log", "none"),
        ),
    )
    rl_iterations: int = field(
        default=15,
        metadata=option(
            "--iterations", "Richardson-Lucy iterations", parse=number(int, least=1), metavar="N"
        ),
    )
    fit_deconvolved: bool = False
    oxide_peak: str = field(
        default="auto",
        metadata=option(
            "--oxide-peak",
            "fit a Li2O/silicate plasmon (19-22 eV) beside the Li_xSi one where it is there "
            "(a 5-sigma score test, then its fitted area >= 3 sigma), so that Li/Si at "
            "oxide-rich boundaries is not read low (auto), or fit one peak everywhere (off: "
            "the paper's fit)",
            choices=("auto", "off"),
        ),
    )
    zlp_method: str = "mirror"
    li2o_window: tuple[float, float] = _win.LI2O_WINDOW_EV
    li_k_window: tuple[float, float] = _win.LI_K_WINDOW_EV
    li_k_background: tuple[float, float] = _win.LI_K_BACKGROUND_EV
    li_k_method: str = field(
        default="fit",
        metadata=option(
            "--li-k-method",
            "Li-K counts in 58-62 eV: from a power law and the hydrogenic edge fitted "
            "together (fit), or the window's counts above the power law (window: the paper's)",
            choices=("fit", "window"),
        ),
    )
    li_k_edge_fit: tuple[float, float] = _win.LI_K_EDGE_FIT_EV
    beam_energy_kev: float | None = field(
        default=None,
        metadata=option(
            "--beam-energy",
            "beam energy, for the shape of the Li-K edge",
            unit="keV",
            parse=number(above=0, unit=" keV"),
            default_text="from the file, else 200",
        ),
    )
    collection_angle_mrad: float | None = field(
        default=None,
        metadata=option(
            "--collection-angle",
            "spectrometer collection semi-angle, for the shape of the Li-K edge",
            unit="mrad",
            parse=number(above=0, unit=" mrad"),
            default_text="from the file, else 10",
        ),
    )
    li_k_exponent_range: tuple[float, float] = _win.POWER_LAW_EXPONENT_RANGE
    li_k_max_thickness: float = 1.5
    thickness_method: str = "threshold"
    threshold_fwhm: float = 2.0
    min_thickness: float = 0.1
    zlp_search: tuple[float, float] = (-10.0, 10.0)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
