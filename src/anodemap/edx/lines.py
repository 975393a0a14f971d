"""X-ray lines: energies and relative weights, from ``anodemap/data/xray_lines.csv``.

The table is data, not code: line energies, radiative rates, fluorescence yields and
Coster–Kronig probabilities from xraylib (Schoonjans et al. 2011), with the weights of
the lines of one family (K, L or M of one element) relative to its main line (Ka, La,
Ma) computed from them for 200 keV electrons; the file's header says how, and
``tools/make_xray_lines.py`` made it. Lines are named as exspy names them: ``Si_Ka``,
``O_Ka``, ``Fe_Kb``, ``Pt_La``, ``Pt_Ma``, ...

Examples
--------
>>> si = xray_line("Si_Ka")
>>> si.element, round(si.energy_ev, 1), si.family
('Si', 1739.8, 'K')
>>> [ln.name for ln in family_of("Si_Ka")]
['Si_Ka', 'Si_Kb']
>>> main_line("Pt", (0.0, 20000.0))
'Pt_La'
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from anodemap.errors import AnodemapInputError

__all__ = [
    "DATA_FILE",
    "XrayLine",
    "all_lines",
    "atomic_weight",
    "element_lines",
    "family_of",
    "main_line",
    "resolve_lines",
    "xray_line",
]

DATA_FILE = "xray_lines.csv"
_MAIN = {"K": "Ka", "L": "La", "M": "Ma"}


@dataclass(frozen=True)
class XrayLine:
    """One X-ray line of the table.

    Attributes
    ----------
    element : str
        Chemical symbol.
    z : int
        Atomic number.
    family : {"K", "L", "M"}
        The shell whose ionisation gives the line.
    line : str
        Siegbahn name as exspy uses it (``Ka``, ``Lb1``, ``Ma``, ...).
    energy_ev : float
        Line energy in eV (a weighted mean where the name covers several transitions).
    weight : float
        Intensity relative to the main line of the family (computed; see the file).
    """

    element: str
    z: int
    family: str
    line: str
    energy_ev: float
    weight: float

    @property
    def name(self) -> str:
        """``Element_Line``, e.g. ``Si_Ka``."""
        return f"{self.element}_{self.line}"

    @property
    def is_main(self) -> bool:
        """Whether this is the main line of its family (Ka, La or Ma)."""
        return self.line == _MAIN[self.family]


@cache
def _table() -> tuple[dict[str, tuple[XrayLine, ...]], dict[str, float]]:
    text = resources.files("anodemap").joinpath("data", DATA_FILE).read_text("utf-8")
    rows = csv.DictReader(io.StringIO("".join(ln for ln in text.splitlines(True) if ln[:1] != "#")))
    lines: dict[str, list[XrayLine]] = {}
    weights: dict[str, float] = {}
    for r in rows:
        el = r["element"]
        lines.setdefault(el, []).append(
            XrayLine(
                el,
                int(r["Z"]),
                r["family"],
                r["line"],
                1e3 * float(r["energy_keV"]),
                float(r["weight"]),
            )
        )
        weights[el] = float(r["atomic_weight"])
    return {k: tuple(v) for k, v in lines.items()}, weights


def all_lines() -> tuple[XrayLine, ...]:
    """Every line of the table, element by element (Li to Am).

    Examples
    --------
    >>> len({ln.element for ln in all_lines()})
    93
    """
    return tuple(ln for lines in _table()[0].values() for ln in lines)


def element_lines(element: str) -> tuple[XrayLine, ...]:
    """Every line of ``element`` in the table (K, then L, then M family).

    Raises
    ------
    AnodemapInputError
        ``element`` is not a chemical symbol of the table (Li to Am).
    """
    table, _ = _table()
    found = table.get(element) or table.get(element.capitalize())
    if found is None:
        close = difflib.get_close_matches(element.capitalize(), list(table), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise AnodemapInputError(
            f"--lines: {element!r} is not an element of the X-ray line table "
            f"(anodemap/data/{DATA_FILE}: Li to Am){hint}"
        )
    return found


def atomic_weight(element: str) -> float:
    """Standard atomic weight of ``element`` (g/mol; xraylib's table).

    Examples
    --------
    >>> atomic_weight("Si")
    28.09
    """
    return _table()[1][element_lines(element)[0].element]


def xray_line(name: str) -> XrayLine:
    """The line called ``name`` (``Element_Line``, as exspy names lines).

    Raises
    ------
    AnodemapInputError
        Not a line of the table (the message lists the element's lines).
    """
    element, sep, line = name.partition("_")
    if not sep:
        raise AnodemapInputError(
            f"--lines: {name!r} is not a line name; name lines as Element_Line, e.g. Si_Ka, "
            "O_Ka, Pt_La, or give an element (Si) for its main line"
        )
    for ln in element_lines(element):
        if ln.line.lower() == line.lower():
            return ln
    known = ", ".join(ln.name for ln in element_lines(element))
    raise AnodemapInputError(
        f"--lines: {name!r} is not in the X-ray line table; the lines of {element} are {known}"
    )


def family_of(name: str) -> tuple[XrayLine, ...]:
    """The lines of the family of line ``name`` (same element and shell), main line first.

    Examples
    --------
    >>> [ln.line for ln in family_of("Fe_Kb")]
    ['Ka', 'Kb']
    """
    line = xray_line(name)
    fam = [ln for ln in element_lines(line.element) if ln.family == line.family]
    return tuple(sorted(fam, key=lambda ln: not ln.is_main))


def main_line(element: str, energy_range_ev: Sequence[float]) -> str:
    """The line to map for ``element``: of its main lines (Ka, La, Ma) inside the
    spectrum's energy range, the one of highest energy (as exspy chooses).

    Raises
    ------
    AnodemapInputError
        No main line of the element lies inside the range.
    """
    lo, hi = float(energy_range_ev[0]), float(energy_range_ev[1])
    mains = [ln for ln in element_lines(element) if ln.is_main and lo <= ln.energy_ev <= hi]
    if not mains:
        raise AnodemapInputError(
            f"--lines: no main line of {element} (Ka, La, Ma) lies within the spectrum's "
            f"energy range {lo / 1e3:.3g}-{hi / 1e3:.3g} keV; choose another element or line"
        )
    return max(mains, key=lambda ln: ln.energy_ev).name


def resolve_lines(items: Iterable[str], energy_range_ev: Sequence[float]) -> list[str]:
    """Line names from lines and elements (an element gives its :func:`main_line`),
    without repeats, in the order given; every line checked to lie in the range.

    Examples
    --------
    >>> resolve_lines(["Si", "O_Ka", "Si_Ka"], (100.0, 20000.0))
    ['Si_Ka', 'O_Ka']
    """
    out: list[str] = []
    lo, hi = float(energy_range_ev[0]), float(energy_range_ev[1])
    for item in items:
        item = str(item).strip()
        name = main_line(item, (lo, hi)) if "_" not in item else xray_line(item).name
        line = xray_line(name)
        if not lo <= line.energy_ev <= hi:
            raise AnodemapInputError(
                f"--lines: {name} at {line.energy_ev / 1e3:.4g} keV lies outside the spectrum's "
                f"energy range {lo / 1e3:.3g}-{hi / 1e3:.3g} keV; leave it out of --lines"
            )
        if name not in out:
            out.append(name)
    return out
