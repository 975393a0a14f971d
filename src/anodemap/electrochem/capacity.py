"""Convert a specific capacity (mAh per gram of host) to x in Li_xHost and back.

One Li per host atom stores one electron, so a capacity q (mAh/g of host) is
``x = q · 3.6 C/mAh · M / (F · z)`` Li per host atom, with M the host's molar mass
(g/mol), F the Faraday constant and z the electrons per Li (1). The capacity is per gram
of the *host* (the paper computes it from the measured mass of the silicon layer, Results),
not per gram of the lithiated alloy.

Examples
--------
>>> from anodemap.electrochem.capacity import li_per_host, capacity_from_x
>>> round(float(li_per_host(2537.0)), 2)  # the paper's first delithiation
2.66
>>> round(float(capacity_from_x(3.75)))  # Li15Si4
3579
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError

__all__ = [
    "COULOMB_PER_MAH",
    "FARADAY_C_PER_MOL",
    "SI_MOLAR_MASS_G_PER_MOL",
    "li_per_host",
    "capacity_from_x",
]

# Faraday constant F = N_A · e, exact in the SI since 2019 (CODATA 2018: N_A =
# 6.02214076e23 /mol, e = 1.602176634e-19 C, both exact): 96485.33212... C/mol.
FARADAY_C_PER_MOL = 6.02214076e23 * 1.602176634e-19
# 1 mAh = 1e-3 A · 3600 s = 3.6 C (definition).
COULOMB_PER_MAH = 3.6
# Silicon: standard atomic weight 28.0855(3) (IUPAC Standard atomic weights 1995, Pure
# Appl. Chem. 68 (1996) 2339; the current IUPAC interval is [28.084, 28.086]).
SI_MOLAR_MASS_G_PER_MOL = 28.0855


def _check(molar_mass_g_mol: float, electrons_per_li: float) -> None:
    if not (np.isfinite(molar_mass_g_mol) and molar_mass_g_mol > 0):
        raise AnodemapInputError(
            f"molar_mass_g_mol must be a positive molar mass of the host in g/mol, "
            f"got {molar_mass_g_mol}"
        )
    if not (np.isfinite(electrons_per_li) and electrons_per_li > 0):
        raise AnodemapInputError(f"electrons_per_li must be positive, got {electrons_per_li}")


def li_per_host(
    capacity_mAh_g: Any,
    molar_mass_g_mol: float = SI_MOLAR_MASS_G_PER_MOL,
    electrons_per_li: float = 1.0,
) -> np.ndarray:
    """Li per host atom (x in Li_xSi) for a specific capacity in mAh per gram of host.

    Parameters
    ----------
    capacity_mAh_g : array_like
        Specific capacity, mAh/g of host (>= 0; NaN passes through).
    molar_mass_g_mol : float
        Molar mass of the host (default Si, 28.0855 g/mol). Use the host's standard
        atomic weight for Li-Ge, Li-Sn, Li-Al alloys.
    electrons_per_li : float
        Electrons transferred per Li (1 for Li+).

    Returns
    -------
    ndarray
        x = q · 3.6 C/mAh · M / (F · electrons_per_li).

    Examples
    --------
    >>> round(float(li_per_host(3314.0)), 3)
    3.473
    """
    _check(molar_mass_g_mol, electrons_per_li)
    q = np.asarray(capacity_mAh_g, dtype=np.float64)
    if np.any(q < 0):
        raise AnodemapInputError("capacity_mAh_g must be >= 0 (mAh per gram of host)")
    return q * COULOMB_PER_MAH * molar_mass_g_mol / (FARADAY_C_PER_MOL * electrons_per_li)


def capacity_from_x(
    x: Any,
    molar_mass_g_mol: float = SI_MOLAR_MASS_G_PER_MOL,
    electrons_per_li: float = 1.0,
) -> np.ndarray:
    """Specific capacity (mAh per gram of host) of Li_xHost; the inverse of :func:`li_per_host`.

    Examples
    --------
    >>> round(float(capacity_from_x(4.4)))  # Li4.4Si, "about 4200 mAh/g" in the paper
    4199
    """
    _check(molar_mass_g_mol, electrons_per_li)
    xa = np.asarray(x, dtype=np.float64)
    if np.any(xa < 0):
        raise AnodemapInputError("x (Li per host atom) must be >= 0")
    return xa * FARADAY_C_PER_MOL * electrons_per_li / (COULOMB_PER_MAH * molar_mass_g_mol)
