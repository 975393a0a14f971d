"""Electrochemistry helpers: specific capacity <-> Li content of the host.

Examples
--------
>>> from anodemap.electrochem import li_per_host
>>> round(float(li_per_host(3314.0)), 2)  # the paper's first lithiation
3.47
"""

from anodemap.electrochem.capacity import (
    COULOMB_PER_MAH,
    FARADAY_C_PER_MOL,
    SI_MOLAR_MASS_G_PER_MOL,
    capacity_from_x,
    li_per_host,
)

__all__ = [
    "COULOMB_PER_MAH",
    "FARADAY_C_PER_MOL",
    "SI_MOLAR_MASS_G_PER_MOL",
    "capacity_from_x",
    "li_per_host",
]
