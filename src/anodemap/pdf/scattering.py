"""Electron scattering factors for PDF normalisation (Lobato & Van Dyck 2014).

The elastic electron scattering factor of a neutral atom is evaluated from the
parameterisation of Lobato and Van Dyck (2014), five terms per element::

    f_e(s) = Σ_{i=1..5} a_i (2 + b_i s²) / (1 + b_i s²)²

with ``s = 1/d = 2 sin θ / λ`` in 1/Å (Lobato's ``g``; anodemap's ``s``; no ``s/2`` and no
``q = 2πs`` inside), ``a_i`` in Å, ``b_i`` in Å², ``f_e`` in Å. The amplitudes are the
non-relativistic (rest-mass) ones; the relativistic factor γ cancels in the reduced
intensity because the normalisation N is fitted (see :mod:`anodemap.pdf.transform`).

The coefficients are data, not code: ``anodemap/data/electron_scattering_factors_lobato2014.json``
holds them with their source and how they were transcribed. Only the elements stored there
are available (H, Li, B, C, N, O, F, Na, Al, Si, P, S, Cl, Ni, Cu); add an element by adding
its published coefficients to that file.

:func:`anodemap.diffraction.crystal.electron_scattering_factor` is a different, independent
parameterisation (Peng et al. 1996, used for Bragg intensities); the two agree to a few
per cent for s ≤ 2 1/Å (tested).

References
----------
.. [1] I. Lobato and D. Van Dyck, "An accurate parameterization for scattering factors,
       electron densities and electrostatic potentials for neutral atoms that obey all
       physical constraints", Acta Cryst. A70 (2014) 636-649.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError

__all__ = [
    "electron_scattering_factor",
    "mean_scattering_factors",
    "parse_composition",
    "scattering_elements",
    "scattering_source",
]

_DATA_FILE = "electron_scattering_factors_lobato2014.json"


@cache
def _table() -> dict[str, Any]:
    text = resources.files("anodemap").joinpath("data", _DATA_FILE).read_text("utf-8")
    return json.loads(text)


def scattering_elements() -> tuple[str, ...]:
    """Element symbols with tabulated Lobato & Van Dyck coefficients.

    Examples
    --------
    >>> {"Li", "O", "Si"} <= set(scattering_elements())
    True
    """
    return tuple(_table()["elements"])


def scattering_source() -> str:
    """The literature source of the stored coefficients (for summaries and reports).

    Examples
    --------
    >>> scattering_source().startswith("I. Lobato and D. Van Dyck")
    True
    """
    return str(_table()["source"])


def _coefficients(element: str) -> tuple[np.ndarray, np.ndarray]:
    # charges ("Li+") are read as the neutral atom: the table holds neutral atoms only
    el = re.sub(r"[0-9+\-]+$", "", element.strip())
    elements = _table()["elements"]
    if el not in elements:
        raise AnodemapInputError(
            f"no electron scattering factor tabulated for element {element!r}; available: "
            f"{', '.join(elements)}. Add its Lobato & Van Dyck (2014) coefficients to "
            f"anodemap/data/{_DATA_FILE} (with the source) or give a composition of these."
        )
    row = elements[el]
    return np.asarray(row["a"], dtype=np.float64), np.asarray(row["b"], dtype=np.float64)


def electron_scattering_factor(element: str, s: np.ndarray | float) -> np.ndarray:
    """Elastic electron scattering factor f_e(s) of a neutral atom, in Å (rest mass).

    Parameters
    ----------
    element : str
        Element symbol, e.g. ``"Si"``; a charge suffix (``"Li+"``) is ignored.
    s : array_like
        Scattering vector ``s = 1/d`` in 1/Å.

    Returns
    -------
    ndarray
        f_e(s) in Å, same shape as ``s``. Multiply by γ = m/m0 for a moving electron.

    Examples
    --------
    >>> round(float(electron_scattering_factor("Si", 0.0)), 3)   # 2 Σ a_i
    5.836
    >>> f = electron_scattering_factor("Li", [0.0, 0.5, 1.0])
    >>> bool(f[0] > f[1] > f[2] > 0)
    True
    """
    a, b = _coefficients(element)
    s2 = np.asarray(s, dtype=np.float64)[..., None] ** 2
    bs2 = b * s2
    return (a * (2.0 + bs2) / (1.0 + bs2) ** 2).sum(axis=-1)


def parse_composition(composition: Mapping[str, float] | str) -> dict[str, float]:
    """Atom fractions from ``{"Si": 1, "Li": 3.5}`` or ``"Si:1 Li:3.5"``.

    Parameters
    ----------
    composition : mapping or str
        Element → amount (any positive scale), or the CLI form ``"El:amount ..."``.

    Returns
    -------
    dict
        Element → atom fraction, summing to 1, elements with zero amount dropped.

    Examples
    --------
    >>> parse_composition("Si:1 Li:3")
    {'Si': 0.25, 'Li': 0.75}
    """
    if isinstance(composition, str):
        items: dict[str, float] = {}
        for token in composition.replace(",", " ").split():
            el, sep, amount = token.partition(":")
            try:
                items[el] = float(amount) if sep else 1.0
            except ValueError:
                raise AnodemapInputError(
                    f"composition {composition!r}: {token!r} is not 'Element:amount' "
                    "(e.g. --composition Si:1 Li:3.5)"
                ) from None
    else:
        items = {str(k): float(v) for k, v in composition.items()}
    if any(v < 0 or not np.isfinite(v) for v in items.values()):
        raise AnodemapInputError(f"composition {composition!r}: amounts must be finite and >= 0")
    total = sum(items.values())
    if total <= 0:
        raise AnodemapInputError(f"composition {composition!r} is empty; give e.g. Si:1")
    for el in items:
        _coefficients(el)  # fail early, naming the element
    return {k: v / total for k, v in items.items() if v > 0}


def mean_scattering_factors(
    composition: Mapping[str, float] | str, s: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Composition averages ⟨f⟩(s) and ⟨f²⟩(s) in Å and Å².

    Parameters
    ----------
    composition : mapping or str
        See :func:`parse_composition`.
    s : array_like
        s = 1/d in 1/Å.

    Returns
    -------
    mean_f, mean_f2 : ndarray
        ``Σ c_a f_a(s)`` and ``Σ c_a f_a(s)²`` with atom fractions ``c_a``.

    Examples
    --------
    >>> f, f2 = mean_scattering_factors({"Si": 1}, 0.5)
    >>> bool(np.isclose(f**2, f2))   # one element: ⟨f⟩² = ⟨f²⟩
    True
    """
    fractions = parse_composition(composition)
    s = np.asarray(s, dtype=np.float64)
    mean_f = np.zeros_like(s)
    mean_f2 = np.zeros_like(s)
    for el, c in fractions.items():
        f = electron_scattering_factor(el, s)
        mean_f = mean_f + c * f
        mean_f2 = mean_f2 + c * f**2
    return mean_f, mean_f2
