"""Low-loss EELS forward model of a lithiated silicon electrode, with ground truth.

Per pixel the model builds

* a single-scattering distribution (SSD) ``S1(E)`` on a loss grid ``E >= 0``: the Li_xSi
  bulk plasmon (Drude loss function times the dipole angular collection factor), an
  Li2O / lithium-silicate plasmon weighted by the oxide share, a Li-K edge weighted by
  the Li content and a weak Si-L2,3 edge;
* plural scattering by the Poisson (Fourier-log) model: with ``S1`` normalised to unit
  area, ``FT(J) = FT(Z) * exp(t/lambda * (FT(S1) - 1))``, so that
  ``ln(I_total / I_zlp) = t/lambda`` holds exactly over the whole loss range. The FFT
  works on exponentially damped sequences (``x[k] * exp(-alpha k)``), which turns the
  circular convolution into the linear one up to ``exp(-12)`` of wrapped intensity;
* a zero-loss peak ``Z`` (split-Gaussian core with detector tails, evaluated
  analytically at its sub-channel position) that drifts across the scan;
* Poisson counting noise, a detector gain and Gaussian read noise.

Units: energies in eV, angles in mrad, counts in detector counts.

Every number that is not a parameter carries its source or the words "model choice".
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from scipy import fft as sp_fft
from scipy.special import erf

from anodemap.errors import AnodemapInputError

from .phantom import Label, Phantom

__all__ = [
    "Calibration",
    "SimulatedEELS",
    "drude_ep_for_peak",
    "plasmon_lineshape",
    "plasmon_width",
    "simulate_eels",
    "simulate_spectrum",
]

# --------------------------------------------------------------------------------------
# Physical constants and model numbers
# --------------------------------------------------------------------------------------
_M0C2_EV = 510998.95  # electron rest energy in eV (CODATA 2018)

# Drude width (FWHM of Im(-1/eps), parameter Gamma) of the Li_xSi plasmon.
# c-Si: 3.2 eV, measured plasmon half-width of Si in International Tables for
# Crystallography Vol. C, Table 4.3.4.4 (after Raether 1980). The increase with Li
# content (amorphous, disordered alloys) is a model choice: +0.3 eV per Li.
_SI_PLASMON_WIDTH_EV = 3.2  # ITC Vol. C Table 4.3.4.4 (Raether 1980)
_WIDTH_SLOPE_EV_PER_LI = 0.3  # model choice

# Li2O / lithium-silicate plasmon. The paper (Ahmed et al., citing its refs. 41 and 45)
# places the Li2O plasmon at 19 eV and the SiO2 plasmon at 22 eV; the mixture is put
# midway (model choice). Its width is a model choice.
_OXIDE_PEAK_EV = 20.5  # model choice between Li2O 19 eV and SiO2 22 eV (paper)
_OXIDE_WIDTH_EV = 5.0  # model choice

# Core-loss edges (hydrogenic-like sawtooth: broadened step times a power-law decay).
_LI_K_ONSET_EV = 54.7  # Li 1s binding energy, X-ray Data Booklet (LBNL) Table 1-1
_SI_L3_ONSET_EV = 99.42  # Si 2p3/2 binding energy, X-ray Data Booklet Table 1-1
_SI_L2_ONSET_EV = 99.82  # Si 2p1/2 binding energy, X-ray Data Booklet Table 1-1
_EDGE_ONSET_WIDTH_EV = 1.0  # model choice (onset broadening incl. near-edge structure)
_EDGE_POWER_LAW = 3.0  # model choice (post-edge decay (E/E_onset)^-r), Si-L2,3
# Li-K post-edge decay, computed: the energy-differential cross-section of the hydrogenic
# K-shell model (Egerton, EELS in the Electron Microscope, 3rd ed. 2011, sec. 3.6.1;
# his SIGMAK3 program) for Li at 200 keV and beta = 10 mrad, integrated over the
# collection angle, falls as (E/E_K)^-3.5 at 56-62 eV and ^-3.6 at 62-80 eV (evaluated
# with exspy 0.3's HydrogenicGOS, an implementation of that model); (E/E_K)^-3.6 follows
# it within 2 % at 56-100 eV (tests/synth/test_synth.py compares the two).
_LI_K_POWER_LAW = 3.6  # computed (hydrogenic K shell, see above), not measured
# Li-K share of the single scattering per Li atom (li_k_strength), computed, not
# measured: the hydrogenic Li-K cross-section at 200 keV, beta = 10 mrad, integrated over
# 55-200 eV is 8.3e-20 cm^2 (same model and tool as above); the total inelastic
# cross-section per atom, 1/(n lambda) with lambda from the formula of Malis, Cheng &
# Egerton (1988; Egerton 2011 eq. 5.2), is 1.6e-18 cm^2 in Si (n = 5.0e22 cm^-3,
# lambda = 125 nm) and 1.0e-18 cm^2 in Li15Si4 (n = 6.2e22 cm^-3 from a = 10.685 A,
# 76 atoms per cell; lambda = 159 nm). The ratio, 0.052 (dilute Li in Si) to 0.082
# (Li15Si4), is taken as 0.065 for every composition (model choice within that range).
_LI_K_STRENGTH = 0.065
# Si-L2,3 share per Si atom: model choice (the edge lies beyond the default recorded axis).
_SI_L_STRENGTH = 0.01
# The paper's Li-K integration window, 60 +- 2 eV (Figures S8b, S10d): the truth map
# ``li_k_counts`` holds the Li-K edge counts of the single-scattering distribution in it.
_LI_K_TRUTH_WINDOW_EV = (58.0, 62.0)
# Atom fraction of Li and Si in the oxide mixture (Li2O: 2/3 Li; silicates less): model
# choice.
_OXIDE_LI_FRACTION = 0.5  # model choice
_OXIDE_SI_FRACTION = 0.2  # model choice

# Zero-loss peak: split-Gaussian core plus a Pearson-VII (m = 2) tail that stands for the
# camera point-spread function. Shape numbers are model choices.
_ZLP_TAIL_WIDTH_FWHM = 1.0  # model choice: tail half-width in units of the ZLP FWHM
_ZLP_HALF_SUPPORT_EV = 8.0  # model choice: the ZLP is truncated (and renormalised) at +-8 eV

# Upper end of the support of S1 (model choice: the low-loss region plus the Si-L2,3 edge;
# it is extended to the window end for longer windows). Together with the exponential
# damping (exp(-_DAMPING) suppression of wrapped-around intensity) this sets the FFT grid.
_MAX_LOSS_EV = 200.0
_DAMPING = 12.0


class Calibration(Protocol):
    """Anything with ``energy(x) -> plasmon peak energy (eV)`` for x = Li per Si."""

    def energy(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - protocol
        """Plasmon peak (maximum) energy in eV of Li_xSi."""
        ...


@dataclass
class SimulatedEELS:
    """Result of :func:`simulate_eels` or :func:`simulate_spectrum`.

    Attributes
    ----------
    spectra : ndarray of float32, shape (ny, nx, E) or (E,)
        Simulated spectra in detector counts (noise-free expectation if ``noise=False``).
    energy : ndarray of float64, shape (E,)
        Energy-loss axis in eV, ``offset + scale * arange(E)``.
    offset, scale : float
        Axis calibration in eV.
    truth : dict
        Ground truth. Maps have the scan shape (0-d arrays for a single spectrum):
        ``plasmon_peak_eV`` (maximum of the Li_xSi plasmon in the SSD, equal to
        ``calibration.energy(li_per_si)``; NaN in pores), ``drude_ep_eV``,
        ``drude_width_eV`` (NaN in pores), ``li_per_si``, ``oxide_fraction``,
        ``t_over_lambda`` (exact ``ln(I_total/I_zlp)`` over the whole loss range),
        ``t_over_lambda_in_window`` (the same ratio restricted to the recorded window),
        ``zlp_shift_eV`` (position of the ZLP maximum), ``zlp_centroid_eV``,
        ``zlp_counts`` and ``total_counts`` (noise-free counts in the window, in
        electrons), ``li_k_counts`` (noise-free counts of the Li-K edge in the
        single-scattering distribution ``I0 t/lambda S1(E)`` inside the paper's window
        58-62 eV, in detector counts: what a background-subtracted Li-K map of
        deconvolved spectra measures), ``li_k_fraction`` (the same as a share of the
        single scattering, ``li_k_counts / (I0 t/lambda)``), ``labels``; scalars: every
        model parameter used.
    ssd : ndarray of float32 or None
        If requested, the noise-free single-scattering distribution on the same axis,
        in electrons per channel: ``I0 * t/lambda * S1(E)`` with ``I0`` the zero-loss
        intensity, i.e. what an ideal Fourier-log deconvolution returns. Zero for E < 0.
    pixel_size_nm : float or None
        Scan step of the phantom (None for a single spectrum).
    """

    spectra: np.ndarray
    energy: np.ndarray
    offset: float
    scale: float
    truth: dict[str, Any] = field(default_factory=dict)
    ssd: np.ndarray | None = None
    pixel_size_nm: float | None = None

    def axes(self) -> list[dict[str, Any]]:
        """Axes in the rosettasciio / HyperSpy dictionary form.

        Returns
        -------
        list of dict
            Navigation axes (``y``, ``x`` in nm) followed by the signal axis
            (``Energy loss`` in eV).
        """
        out: list[dict[str, Any]] = []
        if self.spectra.ndim == 3:
            ps = self.pixel_size_nm if self.pixel_size_nm is not None else 1.0
            for name, size in zip(("y", "x"), self.spectra.shape[:2], strict=True):
                out.append(
                    {
                        "name": name,
                        "size": int(size),
                        "scale": float(ps),
                        "offset": 0.0,
                        "units": "nm",
                        "navigate": True,
                    }
                )
        out.append(
            {
                "name": "Energy loss",
                "size": int(self.energy.size),
                "scale": float(self.scale),
                "offset": float(self.offset),
                "units": "eV",
                "navigate": False,
            }
        )
        return out


# --------------------------------------------------------------------------------------
# Line shapes
# --------------------------------------------------------------------------------------
def _kinematics(beam_energy_keV: float) -> tuple[float, float]:
    """Relativistic factor gamma and T = m0 v^2 / 2 (eV) of the incident electron."""
    e0 = beam_energy_keV * 1e3
    gamma = 1.0 + e0 / _M0C2_EV
    beta2 = 1.0 - 1.0 / gamma**2
    return gamma, 0.5 * _M0C2_EV * beta2


def _angular_scale_eV(beam_energy_keV: float, collection_angle_mrad: float | None) -> float:
    """``c = 2 gamma T beta`` so that ``(beta/theta_E)^2 = (c/E)^2``; inf without aperture.

    theta_E = E / (2 gamma T) = E / (gamma m0 v^2) is the characteristic inelastic
    scattering angle (Egerton, *Electron Energy-Loss Spectroscopy in the Electron
    Microscope*, 3rd ed., chapter 3).
    """
    if collection_angle_mrad is None or not np.isfinite(collection_angle_mrad):
        return np.inf
    gamma, t_ev = _kinematics(beam_energy_keV)
    return 2.0 * gamma * t_ev * collection_angle_mrad * 1e-3


def _angular_factor(energy: np.ndarray, c: float) -> np.ndarray:
    """ln(1 + (beta/theta_E)^2): Lorentzian angular distribution integrated to beta (Egerton)."""
    e = np.asarray(energy, dtype=float)
    if not np.isfinite(c):
        return np.ones_like(e)
    with np.errstate(divide="ignore"):
        return np.log1p((c / np.maximum(e, 1e-12)) ** 2)


def plasmon_width(li_per_si: np.ndarray | float) -> np.ndarray:
    """Drude width Gamma (eV) of the Li_xSi plasmon used by the simulator.

    ``Gamma = 3.2 eV + 0.3 eV * x``: 3.2 eV is the measured plasmon half-width of
    crystalline Si (International Tables for Crystallography Vol. C, Table 4.3.4.4, after
    Raether 1980); the linear increase with x is a model choice.

    Parameters
    ----------
    li_per_si : array_like
        x in Li_xSi.

    Returns
    -------
    ndarray
        Width in eV.

    Examples
    --------
    >>> from anodemap.synth.eels import plasmon_width
    >>> float(plasmon_width(0.0))
    3.2
    """
    return _SI_PLASMON_WIDTH_EV + _WIDTH_SLOPE_EV_PER_LI * np.asarray(li_per_si, dtype=float)


def plasmon_lineshape(
    energy: np.ndarray,
    ep: np.ndarray | float,
    width: np.ndarray | float,
    *,
    beam_energy_keV: float = 200.0,
    collection_angle_mrad: float | None = 10.0,
) -> np.ndarray:
    """Single-scattering plasmon line shape (not normalised).

    ``Im(-1/eps(E)) * ln(1 + (beta/theta_E)^2)`` with the Drude loss function
    ``Im(-1/eps) = E * Gamma * Ep^2 / ((E^2 - Ep^2)^2 + (E * Gamma)^2)``.

    Parameters
    ----------
    energy : array_like
        Energy loss in eV (broadcast against ``ep`` and ``width``).
    ep : array_like
        Drude plasmon energy Ep in eV.
    width : array_like
        Drude damping Gamma in eV (FWHM of the loss function for Gamma << Ep).
    beam_energy_keV : float
        Incident energy.
    collection_angle_mrad : float or None
        Spectrometer collection semi-angle beta; None omits the angular factor.

    Returns
    -------
    ndarray
        Line shape values.

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.synth.eels import plasmon_lineshape
    >>> e = np.linspace(0.01, 40, 4000)
    >>> bool(15 < e[np.argmax(plasmon_lineshape(e, 16.9, 3.2))] < 16.9)
    True
    """
    e = np.asarray(energy, dtype=float)
    ep = np.asarray(ep, dtype=float)
    g = np.asarray(width, dtype=float)
    c = _angular_scale_eV(beam_energy_keV, collection_angle_mrad)
    drude = e * g * ep**2 / ((e**2 - ep**2) ** 2 + (e * g) ** 2)
    return drude * _angular_factor(e, c)


def drude_ep_for_peak(
    peak_eV: np.ndarray | float,
    width: np.ndarray | float,
    *,
    beam_energy_keV: float = 200.0,
    collection_angle_mrad: float | None = 10.0,
) -> np.ndarray:
    """Drude Ep that puts the maximum of :func:`plasmon_lineshape` at ``peak_eV``.

    Setting d/dE ln(lineshape) = 0 at E = E* gives a quadratic in D = E*^2 - Ep^2,
    ``h D^2 - 4 E* D + E* G^2 (h E* - 2) = 0`` with ``h = 1/E* + A'(E*)/A(E*)`` and A the
    angular factor; its negative root is taken in a cancellation-free form. Without the
    angular factor (h = 1/E*) this reduces to ``Ep^2 = sqrt(4 E*^4 + E*^2 G^2) - E*^2``,
    i.e. the familiar ``Ep - E* ~ G^2 / (8 E*)``.

    Parameters
    ----------
    peak_eV : array_like
        Wanted position of the line-shape maximum (eV).
    width : array_like
        Drude Gamma (eV).
    beam_energy_keV : float
        Incident energy.
    collection_angle_mrad : float or None
        Collection semi-angle; None for no angular factor.

    Returns
    -------
    ndarray
        Ep in eV (NaN where ``peak_eV`` is NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.synth.eels import drude_ep_for_peak, plasmon_lineshape
    >>> ep = drude_ep_for_peak(16.83, 3.2)
    >>> e = np.linspace(16.0, 17.5, 150001)
    >>> bool(abs(e[np.argmax(plasmon_lineshape(e, ep, 3.2))] - 16.83) < 1e-4)
    True
    """
    e = np.asarray(peak_eV, dtype=float)
    g = np.asarray(width, dtype=float)
    c = _angular_scale_eV(beam_energy_keV, collection_angle_mrad)
    if np.isfinite(c):
        a = np.log1p((c / e) ** 2)
        da = -2.0 * c**2 / (e * (e**2 + c**2))
        h = 1.0 / e + da / a
    else:
        h = 1.0 / e
    const = e * g**2 * (h * e - 2.0)  # negative for h E < 2
    d = 2.0 * const / (4.0 * e + np.sqrt(16.0 * e**2 - 4.0 * h * const))
    return np.sqrt(e**2 - d)


def _edge_shape(loss: np.ndarray, onset: float, power: float = _EDGE_POWER_LAW) -> np.ndarray:
    """Sawtooth core-loss edge: broadened step times ``(E/onset)^-power``.

    The step's Gaussian broadening (``_EDGE_ONSET_WIDTH_EV``) is a model choice; the
    decay exponent is computed for Li-K (``_LI_K_POWER_LAW``) and a model choice for
    Si-L2,3.
    """
    step = 0.5 * (1.0 + erf((loss - onset) / (np.sqrt(2.0) * _EDGE_ONSET_WIDTH_EV)))
    return step * (np.maximum(loss, onset) / onset) ** (-power)


@lru_cache(maxsize=16)
def _zlp_unit_fwhm(asymmetry: float, tail_fraction: float) -> float:
    """FWHM of the ZLP shape with left sigma 1 (numerical, cached)."""
    x = np.linspace(-8.0, 8.0 * max(asymmetry, 1.0), 400001)
    y = _zlp_shape(x, 1.0, asymmetry, tail_fraction, None)
    half = 0.5 * y.max()
    above = np.nonzero(y >= half)[0]
    i0, i1 = above[0], above[-1]
    # linear interpolation of both half-maximum crossings
    xl = x[i0 - 1] + (half - y[i0 - 1]) * (x[i0] - x[i0 - 1]) / (y[i0] - y[i0 - 1])
    xr = x[i1] + (half - y[i1]) * (x[i1 + 1] - x[i1]) / (y[i1 + 1] - y[i1])
    return float(xr - xl)


def _zlp_shape(
    e: np.ndarray,
    sigma_left: float,
    asymmetry: float,
    tail_fraction: float,
    tail_width: float | None,
) -> np.ndarray:
    """ZLP shape (unit area in the continuum), maximum at E = 0.

    Split Gaussian (sigma_left for E < 0, asymmetry * sigma_left for E > 0) plus a
    Pearson-VII (m = 2) tail of the same centre for the camera point spread. All shape
    choices are model choices.
    """
    sl = sigma_left
    sr = asymmetry * sigma_left
    sig = np.where(e < 0, sl, sr)
    core = np.exp(-0.5 * (e / sig) ** 2) * (2.0 / (np.sqrt(2.0 * np.pi) * (sl + sr)))
    if tail_width is None:
        tail_width = _ZLP_TAIL_WIDTH_FWHM * 2.3548 * 0.5 * (sl + sr)
    # Pearson VII with m = 2: (1 + (E/w)^2)^-2 has area pi w / 2.
    tail = (1.0 + (e / tail_width) ** 2) ** -2 / (0.5 * np.pi * tail_width)
    return (1.0 - tail_fraction) * core + tail_fraction * tail


# --------------------------------------------------------------------------------------
# The forward model
# --------------------------------------------------------------------------------------
@dataclass
class _Grid:
    """Energy grids of the computation.

    The FFT grid has ``n_fft`` samples; sample ``k`` of a spectrum lies at
    ``e_start + k * scale`` and sample ``m`` of a loss distribution at ``m * scale`` (so
    the zero-loss delta is sample 0). The recorded window is ``[n_pre, n_pre + n_channels)``.
    """

    offset: float
    scale: float
    n_channels: int
    n_pre: int  # padded channels below the window
    n_fft: int
    max_loss: float  # upper end of the support of S1 (eV)

    @property
    def e_start(self) -> float:
        return self.offset - self.n_pre * self.scale

    @property
    def window_energy(self) -> np.ndarray:
        return self.offset + self.scale * np.arange(self.n_channels)


def _make_grid(
    offset: float, scale: float, n_channels: int, max_loss_eV: float, zlp_low_eV: float
) -> _Grid:
    """Grid whose first sample lies below ``zlp_low_eV`` (lowest ZLP support energy)."""
    if not scale > 0:
        raise AnodemapInputError(f"energy_scale={scale!r} must be positive")
    if n_channels < 16:
        raise AnodemapInputError(f"n_channels={n_channels!r}: need at least 16 channels")
    n_pre = max(0, int(np.ceil((offset - zlp_low_eV) / scale - 1e-9)) + 1)
    e_start = offset - n_pre * scale
    max_loss = max(float(max_loss_eV), offset + n_channels * scale)
    n_needed = int(np.ceil((max_loss - e_start) / scale)) + 2
    n_fft = sp_fft.next_fast_len(n_needed, real=True)
    return _Grid(offset, scale, n_channels, n_pre, n_fft, max_loss)


@dataclass
class _ZLP:
    """Analytic zero-loss peak, truncated to +-_ZLP_HALF_SUPPORT_EV around its maximum."""

    fwhm: float
    asymmetry: float
    tail_fraction: float
    sigma_left: float = field(init=False)
    centroid_offset: float = field(init=False)

    def __post_init__(self) -> None:
        self.sigma_left = self.fwhm / _zlp_unit_fwhm(self.asymmetry, self.tail_fraction)
        e = np.linspace(-_ZLP_HALF_SUPPORT_EV, _ZLP_HALF_SUPPORT_EV, 320001)
        z = self(e)
        self.centroid_offset = float(np.sum(z * e) / np.sum(z))

    def __call__(self, e: np.ndarray) -> np.ndarray:
        z = _zlp_shape(e, self.sigma_left, self.asymmetry, self.tail_fraction, None)
        return np.where(np.abs(e) <= _ZLP_HALF_SUPPORT_EV, z, 0.0)


@dataclass
class _Model:
    """Precomputed, pixel-independent parts of the forward model."""

    grid: _Grid
    zlp: _ZLP
    beam_energy_keV: float
    collection_angle_mrad: float | None
    oxide_peak_eV: float
    oxide_width_eV: float
    loss_sq: np.ndarray = field(init=False)
    plasmon_num: np.ndarray = field(init=False)  # E * A(E) on the loss grid, 0 off support
    damp: np.ndarray = field(init=False)  # exp(-alpha m)
    undamp_window: np.ndarray = field(init=False)  # exp(+alpha k) on the window samples
    comp_f: dict[str, np.ndarray] = field(init=False)  # damped, unit-area components
    window_sq: np.ndarray = field(init=False)  # window energies squared
    window_num: np.ndarray = field(init=False)  # E * A(E) at window energies (0 for E <= 0)
    comp_window: dict[str, np.ndarray] = field(init=False)  # unit-area components at window
    oxide_ep: float = field(init=False)
    zlp_band: int = field(init=False)  # samples covering the ZLP support

    def __post_init__(self) -> None:
        g = self.grid
        n = g.n_fft
        m = np.arange(n)
        loss = m * g.scale
        support = loss <= g.max_loss
        c = _angular_scale_eV(self.beam_energy_keV, self.collection_angle_mrad)
        num = np.where(support & (loss > 0), loss * _angular_factor(loss, c), 0.0)
        self.loss_sq = loss**2
        self.plasmon_num = num
        # Exponential window against wrap-around: the circular convolution of damped
        # sequences equals the damped linear convolution, and whatever wraps around is
        # suppressed by exp(-alpha * n_fft) (standard trick for causal FFT convolution).
        alpha = _DAMPING / n
        self.damp = np.exp(-alpha * m)
        self.undamp_window = np.exp(alpha * (g.n_pre + np.arange(g.n_channels)))

        e_w = g.window_energy
        on_w = (e_w > 0) & (e_w <= g.max_loss)
        self.window_sq = e_w**2
        self.window_num = np.where(on_w, np.abs(e_w) * _angular_factor(np.abs(e_w), c), 0.0)

        self.oxide_ep = float(
            drude_ep_for_peak(
                self.oxide_peak_eV,
                self.oxide_width_eV,
                beam_energy_keV=self.beam_energy_keV,
                collection_angle_mrad=self.collection_angle_mrad,
            )
        )
        ep2, g2 = self.oxide_ep**2, self.oxide_width_eV**2

        def _shapes(e: np.ndarray, num_: np.ndarray, on: np.ndarray) -> dict[str, np.ndarray]:
            sq = e**2
            si_l = (2.0 * _edge_shape(e, _SI_L3_ONSET_EV) + _edge_shape(e, _SI_L2_ONSET_EV)) / 3.0
            return {
                "oxide": num_ / ((sq - ep2) ** 2 + sq * g2),
                "li_k": np.where(on, _edge_shape(e, _LI_K_ONSET_EV, _LI_K_POWER_LAW), 0.0),
                "si_l": np.where(on, si_l, 0.0),  # L3:L2 = 2:1 statistical weights
            }

        grid_shapes = _shapes(loss, num, support & (loss > 0))
        window_shapes = _shapes(np.abs(e_w), self.window_num, on_w)
        norms = {k: v.sum() for k, v in grid_shapes.items()}
        self.comp_f = {k: sp_fft.rfft(v / norms[k] * self.damp) for k, v in grid_shapes.items()}
        self.comp_window = {k: v / norms[k] for k, v in window_shapes.items()}
        self.zlp_band = int(np.ceil(2.0 * _ZLP_HALF_SUPPORT_EV / g.scale)) + 2

    def zlp_samples(self, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Analytic ZLP of each pixel on its band of grid samples, unit sum.

        Returns the first grid index of each band and the ``(b, zlp_band)`` values.
        """
        g = self.grid
        j0 = np.floor((shift - _ZLP_HALF_SUPPORT_EV - g.e_start) / g.scale).astype(np.int64)
        idx = j0[:, None] + np.arange(self.zlp_band)[None, :]
        z = self.zlp(g.e_start + idx * g.scale - shift[:, None])
        z /= z.sum(axis=1, keepdims=True)
        return j0, z


def _forward_block(
    model: _Model,
    ep: np.ndarray,
    width: np.ndarray,
    weights: dict[str, np.ndarray],
    t: np.ndarray,
    shift: np.ndarray,
    want_ssd: bool,
    workers: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Noise-free spectra (per electron) of a block of pixels, on the window.

    Returns J on the window (the sum over all energies is 1), the share of the ZLP inside
    the window and optionally S1 on the window (unit area over the loss grid, 0 for
    E <= 0).
    """
    g = model.grid
    b = t.size
    n = g.n_fft
    w_si = weights["silicide"]
    s1_f = np.zeros((b, n // 2 + 1), dtype=np.complex128)
    ssd = np.zeros((b, g.n_channels)) if want_ssd else None
    has_si = w_si > 0
    if np.any(has_si):
        ep2 = (ep[has_si] ** 2)[:, None]
        g2 = (width[has_si] ** 2)[:, None]
        den = model.loss_sq[None, :] - ep2
        den *= den
        den += model.loss_sq[None, :] * g2
        p = np.divide(model.plasmon_num[None, :], den, out=den)
        norm = p.sum(axis=1)
        p *= model.damp[None, :]
        p *= (w_si[has_si] / norm)[:, None]
        s1_f[has_si] = sp_fft.rfft(p, axis=1, workers=workers)
        del p, den
        if ssd is not None:
            dw = model.window_sq[None, :] - ep2
            dw *= dw
            dw += model.window_sq[None, :] * g2
            ssd[has_si] = model.window_num[None, :] / dw * (w_si[has_si] / norm)[:, None]
    for name in ("oxide", "li_k", "si_l"):
        s1_f += weights[name][:, None] * model.comp_f[name][None, :]
        if ssd is not None:
            ssd += weights[name][:, None] * model.comp_window[name][None, :]

    # Zero-loss peak: analytic at its (sub-channel) position, damped like everything else.
    j0, z = model.zlp_samples(shift)
    idx = j0[:, None] + np.arange(z.shape[1])[None, :]
    lo, hi = g.n_pre, g.n_pre + g.n_channels
    zlp_in_window = np.sum(np.where((idx >= lo) & (idx < hi), z, 0.0), axis=1)
    zfull = np.zeros((b, n))
    np.put_along_axis(zfull, idx, z * model.damp[idx], axis=1)
    z_f = sp_fft.rfft(zfull, axis=1, workers=workers)
    del zfull

    expo = s1_f
    expo -= 1.0
    expo *= t[:, None]
    np.exp(expo, out=expo)
    expo *= z_f
    j = sp_fft.irfft(expo, n=n, axis=1, workers=workers)[:, lo:hi]
    j *= model.undamp_window[None, :]
    return j, zlp_in_window, ssd


def _component_weights(
    li: np.ndarray,
    ox: np.ndarray,
    is_pore: np.ndarray,
    li_k_strength: float,
    si_l_strength: float,
    oxide_li_fraction: float = _OXIDE_LI_FRACTION,
    oxide_si_fraction: float = _OXIDE_SI_FRACTION,
) -> dict[str, np.ndarray]:
    """Weights of the SSD components (Li_xSi plasmon, oxide plasmon, Li-K, Si-L); sum 1.

    Pores hold only a thin oxide-like residue (model choice: passivation layer, paper).
    Edge strengths scale with the atom fractions of Li and Si (model choice); those of
    the oxide are ``oxide_li_fraction`` and ``oxide_si_fraction``.
    """
    f = np.where(is_pore, 1.0, np.clip(ox, 0.0, 1.0))
    li_frac_silicide = li / (1.0 + li)
    si_frac_silicide = 1.0 / (1.0 + li)
    a_li = li_k_strength * ((1.0 - f) * li_frac_silicide + f * oxide_li_fraction)
    a_si = si_l_strength * ((1.0 - f) * si_frac_silicide + f * oxide_si_fraction)
    norm = 1.0 + a_li + a_si
    return {
        "silicide": (1.0 - f) / norm,
        "oxide": f / norm,
        "li_k": a_li / norm,
        "si_l": a_si / norm,
    }


def _simulate(
    li: np.ndarray,
    ox: np.ndarray,
    t: np.ndarray,
    shift: np.ndarray,
    is_pore: np.ndarray,
    *,
    calibration: Calibration | None,
    energy_offset: float,
    energy_scale: float,
    n_channels: int,
    beam_energy_keV: float,
    collection_angle_mrad: float | None,
    zlp_fwhm: float,
    zlp_asymmetry: float,
    zlp_tail_fraction: float,
    counts: float,
    gain: float,
    read_noise: float,
    oxide_peak_eV: float,
    oxide_width_eV: float,
    li_k_strength: float,
    si_l_strength: float,
    noise: bool,
    return_ssd: bool,
    rng_seed: np.random.SeedSequence,
    block_pixels: int,
    max_loss_eV: float,
    n_threads: int | None,
    oxide_li_fraction: float = _OXIDE_LI_FRACTION,
    oxide_si_fraction: float = _OXIDE_SI_FRACTION,
    peak_shift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any], _Grid]:
    """Common code path of :func:`simulate_eels` and :func:`simulate_spectrum`.

    ``peak_shift`` (eV, the scan shape, or None) moves the Li_xSi plasmon maximum from the
    calibration energy of each pixel's composition (pores excepted).
    """
    if calibration is None:
        try:
            from anodemap.eels.calibration import default_calibration
        except ImportError as exc:  # pragma: no cover - depends on the other module
            raise ImportError(
                "simulate_eels(calibration=None) needs anodemap.eels.calibration."
                "default_calibration(); pass calibration=<object with .energy(x)> instead"
            ) from exc
        calibration = default_calibration()
    if not counts > 0:
        raise AnodemapInputError(f"counts={counts!r} must be positive (electrons per spectrum)")
    if zlp_fwhm <= 0 or zlp_asymmetry <= 0 or not 0 <= zlp_tail_fraction < 1:
        raise AnodemapInputError(
            "zlp_fwhm and zlp_asymmetry must be > 0, zlp_tail_fraction in [0, 1)"
        )

    shape = li.shape
    li_f = li.ravel().astype(float)
    ox_f = ox.ravel().astype(float)
    t_f = t.ravel().astype(float)
    sh_f = shift.ravel().astype(float)
    pore_f = is_pore.ravel()
    if np.any(t_f < 0) or not np.all(np.isfinite(t_f)):
        raise AnodemapInputError("t_over_lambda must be finite and >= 0")
    if np.any(li_f < 0) or not np.all(np.isfinite(li_f)):
        raise AnodemapInputError("li_per_si must be finite and >= 0")
    if not np.all(np.isfinite(sh_f)):
        raise AnodemapInputError("ZLP shifts must be finite")
    if not (0.0 <= oxide_li_fraction <= 1.0 and 0.0 <= oxide_si_fraction <= 1.0):
        raise AnodemapInputError(
            f"oxide_li_fraction={oxide_li_fraction!r} and oxide_si_fraction="
            f"{oxide_si_fraction!r} must lie in [0, 1] (atom fractions in the oxide)"
        )

    zlp = _ZLP(float(zlp_fwhm), float(zlp_asymmetry), float(zlp_tail_fraction))
    grid = _make_grid(
        float(energy_offset),
        float(energy_scale),
        int(n_channels),
        max_loss_eV,
        float(sh_f.min()) - _ZLP_HALF_SUPPORT_EV,
    )
    model = _Model(grid, zlp, beam_energy_keV, collection_angle_mrad, oxide_peak_eV, oxide_width_eV)

    peak = np.asarray(calibration.energy(np.where(pore_f, 0.0, li_f)), dtype=float).reshape(
        li_f.shape
    )
    if peak_shift is not None:
        shift_f = np.broadcast_to(np.asarray(peak_shift, dtype=float), shape).ravel()
        if not np.all(np.isfinite(shift_f[~pore_f])):
            raise AnodemapInputError("plasmon_shift_eV must be finite outside pores")
        peak = peak + np.where(pore_f, 0.0, shift_f)
    width = plasmon_width(li_f)
    ep = drude_ep_for_peak(
        peak, width, beam_energy_keV=beam_energy_keV, collection_angle_mrad=collection_angle_mrad
    )
    weights = _component_weights(
        li_f, ox_f, pore_f, li_k_strength, si_l_strength, oxide_li_fraction, oxide_si_fraction
    )

    npix = li_f.size
    spectra = np.empty((npix, grid.n_channels), dtype=np.float32)
    ssd_out = np.empty((npix, grid.n_channels), dtype=np.float32) if return_ssd else None
    total = np.empty(npix)
    zlp_frac = np.empty(npix)
    starts = list(range(0, npix, max(1, int(block_pixels))))
    child_seeds = rng_seed.spawn(len(starts))
    if n_threads is None:
        n_threads = min(os.cpu_count() or 1, 8)
    n_threads = max(1, min(int(n_threads), len(starts)))

    def _run(start: int, ss: np.random.SeedSequence) -> None:
        # Each block writes a disjoint slice of the outputs and has its own RNG stream,
        # so the result does not depend on the number of threads.
        sl = slice(start, min(start + block_pixels, npix))
        j, zlp_frac[sl], s1 = _forward_block(
            model,
            ep[sl],
            width[sl],
            {k: v[sl] for k, v in weights.items()},
            t_f[sl],
            sh_f[sl],
            return_ssd,
            1 if n_threads > 1 else (os.cpu_count() or 1),
        )
        lam = np.maximum(j, 0.0)
        lam *= counts
        total[sl] = lam.sum(axis=1)
        if noise:
            rng = np.random.default_rng(ss)
            out = rng.poisson(lam).astype(np.float32)
            if gain != 1.0:
                out *= np.float32(gain)
            if read_noise > 0:
                out += np.float32(read_noise) * rng.standard_normal(out.shape, dtype=np.float32)
            spectra[sl] = out
        else:
            spectra[sl] = lam * gain
        if ssd_out is not None and s1 is not None:
            i0_counts = counts * np.exp(-t_f[sl])
            ssd_out[sl] = s1 * (i0_counts * t_f[sl])[:, None]

    if n_threads == 1:
        for start, ss in zip(starts, child_seeds, strict=True):
            _run(start, ss)
    else:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            for fut in [pool.submit(_run, a, b) for a, b in zip(starts, child_seeds, strict=True)]:
                fut.result()

    zlp_counts = counts * np.exp(-t_f) * zlp_frac
    # Li-K edge counts of the single-scattering distribution I0 t/lambda S1(E) inside the
    # paper's window (fractional end channels), in detector counts
    e_w = grid.window_energy
    lo_w, hi_w = _LI_K_TRUTH_WINDOW_EV
    in_window = (
        np.clip(
            np.minimum(e_w + grid.scale / 2, hi_w) - np.maximum(e_w - grid.scale / 2, lo_w),
            0.0,
            None,
        )
        / grid.scale
    )
    li_k_share = weights["li_k"] * float(np.sum(model.comp_window["li_k"] * in_window))
    li_k_counts = counts * gain * np.exp(-t_f) * t_f * li_k_share
    nan = np.nan
    truth: dict[str, Any] = {
        "li_per_si": li_f.reshape(shape),
        "oxide_fraction": ox_f.reshape(shape),
        "t_over_lambda": t_f.reshape(shape),
        "t_over_lambda_in_window": np.log(total / zlp_counts).reshape(shape),
        "zlp_shift_eV": sh_f.reshape(shape),
        "zlp_centroid_eV": (sh_f + zlp.centroid_offset).reshape(shape),
        "plasmon_peak_eV": np.where(pore_f, nan, peak).reshape(shape),
        "drude_ep_eV": np.where(pore_f, nan, ep).reshape(shape),
        "drude_width_eV": np.where(pore_f, nan, width).reshape(shape),
        "zlp_counts": zlp_counts.reshape(shape),
        "li_k_counts": li_k_counts.reshape(shape),
        "li_k_fraction": li_k_share.reshape(shape),
        "total_counts": total.reshape(shape),
        "beam_energy_keV": float(beam_energy_keV),
        "collection_angle_mrad": collection_angle_mrad,
        "zlp_fwhm_eV": float(zlp_fwhm),
        "zlp_asymmetry": float(zlp_asymmetry),
        "zlp_tail_fraction": float(zlp_tail_fraction),
        "counts": float(counts),
        "gain": float(gain),
        "read_noise": float(read_noise),
        "oxide_peak_eV": float(oxide_peak_eV),
        "oxide_width_eV": float(oxide_width_eV),
        "oxide_drude_ep_eV": model.oxide_ep,
        "li_k_onset_eV": _LI_K_ONSET_EV,
        "li_k_power_law": _LI_K_POWER_LAW,
        "li_k_window_eV": list(_LI_K_TRUTH_WINDOW_EV),
        "si_l3_onset_eV": _SI_L3_ONSET_EV,
        "li_k_strength": float(li_k_strength),
        "si_l_strength": float(si_l_strength),
        "noise": bool(noise),
    }
    # Only where they differ from the defaults, so that the truth of a default simulation
    # (and what is written from it) stays as it was.
    if oxide_li_fraction != _OXIDE_LI_FRACTION or oxide_si_fraction != _OXIDE_SI_FRACTION:
        truth["oxide_li_fraction"] = float(oxide_li_fraction)
        truth["oxide_si_fraction"] = float(oxide_si_fraction)
    if peak_shift is not None:
        truth["plasmon_shift_eV"] = np.where(pore_f, nan, shift_f).reshape(shape)
    spectra = spectra.reshape(*shape, grid.n_channels)
    if ssd_out is not None:
        ssd_out = ssd_out.reshape(*shape, grid.n_channels)
    return spectra, ssd_out, truth, grid


def _scan_drift(
    shape: tuple[int, int],
    drift_eV: float,
    jitter_eV: float,
    zlp_offset_eV: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """ZLP position per pixel: offset + ramp and slow wobble in scan time + jitter.

    The scan is row-major, so time runs along x then y. Amplitudes are parameters;
    the functional form (linear ramp plus one slow sine) is a model choice.
    """
    ny, nx = shape
    tau = (np.arange(ny * nx, dtype=float) / max(ny * nx - 1, 1)).reshape(ny, nx)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    smooth = drift_eV * ((tau - 0.5) + 0.2 * np.sin(2.0 * np.pi * 1.5 * tau + phase))
    return zlp_offset_eV + smooth + jitter_eV * rng.standard_normal((ny, nx))


def simulate_eels(
    phantom: Phantom,
    *,
    calibration: Calibration | None = None,
    energy_offset: float = -5.0,
    energy_scale: float = 0.05,
    n_channels: int = 1600,
    beam_energy_keV: float = 200.0,
    collection_angle_mrad: float | None = 10.0,
    zlp_fwhm: float = 0.9,
    zlp_asymmetry: float = 1.2,
    zlp_tail_fraction: float = 0.04,
    drift_eV: float = 0.6,
    jitter_eV: float = 0.02,
    zlp_offset_eV: float = 0.0,
    counts: float = 3e5,
    gain: float = 1.0,
    read_noise: float = 3.0,
    oxide_peak_eV: float = _OXIDE_PEAK_EV,
    oxide_width_eV: float = _OXIDE_WIDTH_EV,
    li_k_strength: float = _LI_K_STRENGTH,
    si_l_strength: float = _SI_L_STRENGTH,
    oxide_li_fraction: float = _OXIDE_LI_FRACTION,
    oxide_si_fraction: float = _OXIDE_SI_FRACTION,
    noise: bool = True,
    return_ssd: bool = False,
    seed: int = 0,
    block_pixels: int = 256,
    max_loss_eV: float = _MAX_LOSS_EV,
    n_threads: int | None = None,
) -> SimulatedEELS:
    """Simulate a low-loss EELS spectrum image of a phantom.

    Parameters
    ----------
    phantom : Phantom
        Microstructure from :func:`anodemap.synth.make_phantom`.
    calibration : object with ``energy(x)``, optional
        Maps Li per Si to the plasmon peak energy (eV); defaults to
        ``anodemap.eels.calibration.default_calibration()``.
    energy_offset, energy_scale : float
        Energy of the first channel and channel width in eV.
    n_channels : int
        Number of recorded channels.
    beam_energy_keV : float
        Incident energy (the paper's EELS: 200 kV, JEOL 2200FS).
    collection_angle_mrad : float or None
        Spectrometer collection semi-angle beta (10 mrad is a model choice; the paper does
        not state it). None removes the angular factor.
    zlp_fwhm : float
        FWHM of the zero-loss peak in eV (the shape's full FWHM, tails included).
    zlp_asymmetry : float
        Ratio of the high-loss to the low-loss Gaussian width of the ZLP core (model
        choice; source and spectrometer dependent).
    zlp_tail_fraction : float
        Area share of the Pearson-VII tail standing for the camera point spread.
    drift_eV : float
        Amplitude of the smooth ZLP drift over the whole scan (ramp plus wobble).
    jitter_eV : float
        Standard deviation of the pixel-to-pixel ZLP jitter.
    zlp_offset_eV : float
        Constant ZLP offset (miscalibrated spectrometer).
    counts : float
        Expected electrons per spectrum over the whole loss range (the recorded window
        holds slightly fewer; see ``truth["total_counts"]``).
    gain : float
        Detector counts per electron.
    read_noise : float
        Gaussian read noise per channel (counts, standard deviation).
    oxide_peak_eV, oxide_width_eV : float
        Maximum position and Drude width of the Li2O / silicate plasmon.
    li_k_strength, si_l_strength : float
        Share of the SSD carried by the Li-K and Si-L2,3 edges for pure Li or pure Si
        atoms (scaled by the atom fractions). The Li-K default, 0.065, is computed from
        the hydrogenic Li-K and the total inelastic cross-sections per atom (0.052 in Si
        to 0.082 in Li15Si4; see ``_LI_K_STRENGTH``); the Si-L default is a model choice.
    oxide_li_fraction, oxide_si_fraction : float
        Atom fractions of Li and Si in the oxide (they scale its Li-K and Si-L2,3 edges).
        Defaults 0.5 and 0.2 (model choice: a Li2O / lithium-silicate mixture); e.g. 0 and
        1/3 for SiO2 (the oxide of pristine Si, by its formula). Written into the truth
        only when they differ from the defaults.
    noise : bool
        If False, return the noise-free expectation (``gain * electrons``).
    return_ssd : bool
        Also return the noise-free single-scattering distribution.
    seed : int
        Seed for drift, jitter and noise.
    block_pixels : int
        Pixels processed at once per thread; the working memory per thread is roughly
        ``block_pixels * 6 * n_fft * 8`` bytes (about 45 MB for 256 pixels and the
        default axis), on top of the float32 output.
    n_threads : int or None
        Threads working on blocks in parallel (default: CPU count, at most 8). The
        result does not depend on it.
    max_loss_eV : float
        Upper end (eV) of the single-scattering distribution; losses beyond it are not
        modelled (extended to the window end when the window is longer). It sets, with
        the window, the FFT length, and thus what ``t_over_lambda`` counts as "total".

    Returns
    -------
    SimulatedEELS
        Spectra ``(ny, nx, n_channels)`` as float32 and the ground truth.

    Notes
    -----
    The plasmon Drude energy of each pixel is chosen such that the maximum of the
    single-scattering Li_xSi plasmon (Drude loss function times the angular factor)
    lies exactly at ``calibration.energy(x)``; this is ``truth["plasmon_peak_eV"]``.
    A phantom with a :attr:`~anodemap.synth.Phantom.plasmon_shift_eV` map moves it to
    ``calibration.energy(x) + plasmon_shift_eV`` (e.g. amorphous Si, less dense than the
    crystal) and adds that map to the truth as ``plasmon_shift_eV`` (NaN in pores).
    In oxide-rich boundary pixels the total SSD also holds the oxide plasmon, so its
    overall maximum is pulled towards higher energy. Pores carry a thin oxide-like
    residue only and have NaN plasmon truth.

    With the default 80 eV window the log-ratio thickness from the recorded window
    (``truth["t_over_lambda_in_window"]``) is slightly lower than ``t_over_lambda``
    because higher plasmons and the edges extend beyond the window.

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.synth import make_phantom, simulate_eels
    >>> class Cal:
    ...     def energy(self, x):
    ...         return 16.83 - (16.83 - 12.74) * np.asarray(x) / 4.4
    >>> sim = simulate_eels(make_phantom((8, 8), seed=0), calibration=Cal(), n_channels=400)
    >>> sim.spectra.shape, sim.spectra.dtype.name
    ((8, 8, 400), 'float32')
    """
    ss = np.random.SeedSequence(seed)
    ss_drift, ss_noise = ss.spawn(2)
    shift = _scan_drift(
        phantom.shape, drift_eV, jitter_eV, zlp_offset_eV, np.random.default_rng(ss_drift)
    )
    is_pore = phantom.labels == Label.PORE
    spectra, ssd, truth, grid = _simulate(
        phantom.li_per_si,
        phantom.oxide_fraction,
        phantom.t_over_lambda,
        shift,
        is_pore,
        calibration=calibration,
        energy_offset=energy_offset,
        energy_scale=energy_scale,
        n_channels=n_channels,
        beam_energy_keV=beam_energy_keV,
        collection_angle_mrad=collection_angle_mrad,
        zlp_fwhm=zlp_fwhm,
        zlp_asymmetry=zlp_asymmetry,
        zlp_tail_fraction=zlp_tail_fraction,
        counts=counts,
        gain=gain,
        read_noise=read_noise,
        oxide_peak_eV=oxide_peak_eV,
        oxide_width_eV=oxide_width_eV,
        li_k_strength=li_k_strength,
        si_l_strength=si_l_strength,
        noise=noise,
        return_ssd=return_ssd,
        rng_seed=ss_noise,
        block_pixels=block_pixels,
        max_loss_eV=max_loss_eV,
        n_threads=n_threads,
        oxide_li_fraction=oxide_li_fraction,
        oxide_si_fraction=oxide_si_fraction,
        peak_shift=phantom.plasmon_shift_eV,
    )
    truth["labels"] = phantom.labels.copy()
    truth["drift_eV"] = float(drift_eV)
    truth["jitter_eV"] = float(jitter_eV)
    truth["seed"] = seed
    truth["phantom_seed"] = phantom.seed
    energy = grid.offset + grid.scale * np.arange(grid.n_channels)
    return SimulatedEELS(
        spectra=spectra,
        energy=energy,
        offset=grid.offset,
        scale=grid.scale,
        truth=truth,
        ssd=ssd,
        pixel_size_nm=phantom.pixel_size_nm,
    )


def simulate_spectrum(
    li_per_si: float,
    t_over_lambda: float,
    *,
    oxide_fraction: float = 0.0,
    zlp_shift_eV: float = 0.0,
    pore: bool = False,
    calibration: Calibration | None = None,
    energy_offset: float = -5.0,
    energy_scale: float = 0.05,
    n_channels: int = 1600,
    beam_energy_keV: float = 200.0,
    collection_angle_mrad: float | None = 10.0,
    zlp_fwhm: float = 0.9,
    zlp_asymmetry: float = 1.2,
    zlp_tail_fraction: float = 0.04,
    counts: float = 3e5,
    gain: float = 1.0,
    read_noise: float = 3.0,
    oxide_peak_eV: float = _OXIDE_PEAK_EV,
    oxide_width_eV: float = _OXIDE_WIDTH_EV,
    li_k_strength: float = _LI_K_STRENGTH,
    si_l_strength: float = _SI_L_STRENGTH,
    oxide_li_fraction: float = _OXIDE_LI_FRACTION,
    oxide_si_fraction: float = _OXIDE_SI_FRACTION,
    noise: bool = True,
    return_ssd: bool = False,
    seed: int = 0,
    max_loss_eV: float = _MAX_LOSS_EV,
) -> SimulatedEELS:
    """Simulate one low-loss spectrum with the same model as :func:`simulate_eels`.

    Parameters
    ----------
    li_per_si : float
        x in Li_xSi.
    t_over_lambda : float
        Relative thickness.
    oxide_fraction : float
        Share of Li2O / silicate in the column.
    zlp_shift_eV : float
        Position of the ZLP maximum.
    pore : bool
        Treat the pixel as a pore (thin oxide-like residue only).
    calibration, energy_offset, energy_scale, n_channels, beam_energy_keV, \
collection_angle_mrad, zlp_fwhm, zlp_asymmetry, zlp_tail_fraction, counts, gain, \
read_noise, oxide_peak_eV, oxide_width_eV, li_k_strength, si_l_strength, \
oxide_li_fraction, oxide_si_fraction, noise, return_ssd, seed, max_loss_eV
        As in :func:`simulate_eels`.

    Returns
    -------
    SimulatedEELS
        ``spectra`` of shape ``(n_channels,)``; truth values are 0-d arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.synth import simulate_spectrum
    >>> class Cal:
    ...     def energy(self, x):
    ...         return 16.83 - (16.83 - 12.74) * np.asarray(x) / 4.4
    >>> sim = simulate_spectrum(1.8, 0.8, calibration=Cal(), noise=False)
    >>> log_ratio = float(np.log(sim.spectra.sum() / sim.truth["zlp_counts"]))
    >>> bool(abs(log_ratio - 0.8) < 0.03)  # less the scattering beyond the 75 eV axis
    True
    >>> bool(abs(log_ratio - sim.truth["t_over_lambda_in_window"]) < 1e-6)
    True
    """
    one = np.ones((1, 1))
    spectra, ssd, truth, grid = _simulate(
        one * li_per_si,
        one * oxide_fraction,
        one * t_over_lambda,
        one * zlp_shift_eV,
        np.full((1, 1), bool(pore)),
        calibration=calibration,
        energy_offset=energy_offset,
        energy_scale=energy_scale,
        n_channels=n_channels,
        beam_energy_keV=beam_energy_keV,
        collection_angle_mrad=collection_angle_mrad,
        zlp_fwhm=zlp_fwhm,
        zlp_asymmetry=zlp_asymmetry,
        zlp_tail_fraction=zlp_tail_fraction,
        counts=counts,
        gain=gain,
        read_noise=read_noise,
        oxide_peak_eV=oxide_peak_eV,
        oxide_width_eV=oxide_width_eV,
        li_k_strength=li_k_strength,
        si_l_strength=si_l_strength,
        noise=noise,
        return_ssd=return_ssd,
        rng_seed=np.random.SeedSequence(seed),
        block_pixels=1,
        max_loss_eV=max_loss_eV,
        n_threads=1,
        oxide_li_fraction=oxide_li_fraction,
        oxide_si_fraction=oxide_si_fraction,
    )
    for k, v in truth.items():
        if isinstance(v, np.ndarray) and v.shape == (1, 1):
            truth[k] = v.reshape(())
    truth["labels"] = np.asarray(Label.PORE if pore else 0, dtype=np.uint8)
    truth["seed"] = seed
    energy = grid.offset + grid.scale * np.arange(grid.n_channels)
    return SimulatedEELS(
        spectra=spectra.reshape(grid.n_channels),
        energy=energy,
        offset=grid.offset,
        scale=grid.scale,
        truth=truth,
        ssd=None if ssd is None else ssd.reshape(grid.n_channels),
    )
