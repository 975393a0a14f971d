"""Physical constants and the relativistic electron wavelength, shared by every layer.

Constants are CODATA 2022 (P. J. Mohr, D. B. Newell, B. N. Taylor and E. Tiesinga,
Rev. Mod. Phys. 97, 025002 (2025); https://physics.nist.gov/cuu/Constants/); h, e and c
are exact in the SI since 2019. They live here, below io and the analyses, so that a file
format (the NanoMegas .blo stores a camera length) and an analysis use one wavelength.

Examples
--------
>>> from anodemap.constants import electron_wavelength
>>> round(electron_wavelength(200.0), 6)   # Å at 200 keV
0.025079
"""

from __future__ import annotations

import math

from anodemap.errors import AnodemapInputError

__all__ = [
    "ELECTRON_MASS",
    "ELEMENTARY_CHARGE",
    "PLANCK_CONSTANT",
    "SPEED_OF_LIGHT",
    "electron_wavelength",
]

# CODATA 2022. Exact in the 2019 SI: h, e, c.
PLANCK_CONSTANT = 6.62607015e-34  # J s
ELEMENTARY_CHARGE = 1.602176634e-19  # C
SPEED_OF_LIGHT = 299792458.0  # m / s
ELECTRON_MASS = 9.1093837139e-31  # kg, CODATA 2022, relative uncertainty 3.1e-10


def electron_wavelength(beam_energy_kev: float) -> float:
    """Relativistic electron wavelength in Å for a beam energy in keV.

    λ = h / sqrt(2 m₀ e V (1 + e V / (2 m₀ c²))), CODATA 2022 constants.

    Parameters
    ----------
    beam_energy_kev : float
        Kinetic energy e·V of the electrons in keV (the accelerating voltage in kV).

    Returns
    -------
    float
        Wavelength in Å.

    Examples
    --------
    >>> round(electron_wavelength(300.0), 6)
    0.019687
    """
    energy = float(beam_energy_kev)
    if not math.isfinite(energy) or energy <= 0:
        raise AnodemapInputError(
            f"beam energy {beam_energy_kev!r} keV is not a positive number; give the beam "
            "energy in keV with --beam-energy KEV (beam_energy_kev), e.g. 200 for a 200 kV "
            "microscope"
        )
    e_joule = energy * 1e3 * ELEMENTARY_CHARGE
    m0 = ELECTRON_MASS
    p = math.sqrt(2.0 * m0 * e_joule * (1.0 + e_joule / (2.0 * m0 * SPEED_OF_LIGHT**2)))
    return PLANCK_CONSTANT / p * 1e10
