"""Energy resolution of an X-ray detector: the line width as a function of energy.

The FWHM of a line at energy E follows from the FWHM at Mn Ka (5895 eV), the figure a
detector is specified by, through Fiori and Newbury's relation

    FWHM(E)^2 = FWHM(Mn Ka)^2 + 2.5 eV * (E - E(Mn Ka)),

where 2.5 eV = 8 ln2 F eps (Fano factor F about 0.115, eps = 3.8 eV per electron-hole
pair in Si): the electronic noise is the same at every energy, the charge statistics
grow with E. A detector better than the Fano limit at Mn Ka (below 121.4 eV) has no
room for electronic noise in this relation; its width is then taken as the Fano limit,
FWHM(E)^2 = 2.5 eV * E, rather than an imaginary number.

References
----------
C. E. Fiori and D. E. Newbury, Scanning Electron Microscopy 1978/I, 401-422.
J. I. Goldstein et al., Scanning Electron Microscopy and X-ray Microanalysis, 3rd ed.
(Springer, 2003), p. 315.

Examples
--------
>>> round(float(fwhm_ev(MN_KA_EV, 130.0)), 6)
130.0
>>> round(float(fwhm_ev(1739.8, 130.0)), 1)   # Si Ka
80.7
"""

from __future__ import annotations

import numpy as np

from anodemap.edx.lines import xray_line

__all__ = ["DEFAULT_FWHM_MN_KA_EV", "FANO_EV", "MN_KA_EV", "fwhm_ev", "sigma_ev"]

# Fiori & Newbury's constant (eV): 8 ln 2 x Fano factor x energy per electron-hole pair
FANO_EV = 2.5
# Mn Ka from the line table (xraylib: KL2 and KL3 weighted)
MN_KA_EV = xray_line("Mn_Ka").energy_ev
# What a file that does not say its resolution is taken to have: a typical silicon
# drift detector (model choice; exspy's default too). Give --fwhm-mn-ka where known.
DEFAULT_FWHM_MN_KA_EV = 130.0
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def fwhm_ev(energy_ev, fwhm_mn_ka_ev: float = DEFAULT_FWHM_MN_KA_EV):
    """FWHM in eV of a line at ``energy_ev`` for a detector of ``fwhm_mn_ka_ev`` at Mn Ka.

    Parameters
    ----------
    energy_ev : float or ndarray
        Line energies in eV.
    fwhm_mn_ka_ev : float
        The detector's FWHM at Mn Ka in eV.

    Returns
    -------
    float or ndarray
    """
    noise2 = max(float(fwhm_mn_ka_ev) ** 2 - FANO_EV * MN_KA_EV, 0.0)
    return np.sqrt(noise2 + FANO_EV * np.maximum(np.asarray(energy_ev, dtype=float), 0.0))


def sigma_ev(energy_ev, fwhm_mn_ka_ev: float = DEFAULT_FWHM_MN_KA_EV):
    """The Gaussian standard deviation (eV) of a line at ``energy_ev`` (FWHM / 2.3548)."""
    return fwhm_ev(energy_ev, fwhm_mn_ka_ev) / _FWHM_PER_SIGMA
