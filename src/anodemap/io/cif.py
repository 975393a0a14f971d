"""CIF files (Crystallographic Information Framework, CIF 1.1 syntax): the first data block's
items and loops, as text.

What the items mean (a cell, symmetry operations, atom sites) is read by
:func:`anodemap.diffraction.crystal.read_cif`; this module knows only the syntax: data
names, ``loop_`` tables, quoted and semicolon-delimited values, comments, numbers with
standard uncertainties in brackets. The leading comment block is kept as the file's
``source`` (where anodemap's packaged structures state theirs).

Examples
--------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.cif"
>>> _ = p.write_text("# from a paper\\ndata_x\\n_cell_length_a 5.431(2)\\nloop_\\n_a _b\\n1 2 3 4\\n")
>>> block = read_cif_block(p)
>>> block.items, block.loops, block.source
({'_cell_length_a': '5.431(2)'}, [{'_a': ['1', '3'], '_b': ['2', '4']}], 'from a paper')
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from anodemap.errors import AnodemapInputError

__all__ = ["CifBlock", "CifError", "cif_float", "parse_cif", "read_cif_block"]


class CifError(AnodemapInputError):
    """A CIF file cannot be used as a crystal structure (the message names file and problem)."""


@dataclass(frozen=True)
class CifBlock:
    """The first data block of a CIF file.

    Attributes
    ----------
    items : dict of str to str
        Data names (lower case) outside loops to their values.
    loops : list of dict of str to list of str
        Each ``loop_`` table: data name (lower case) to its column of values.
    source : str
        The comment lines at the top of the file.
    """

    items: dict[str, str]
    loops: list[dict[str, list[str]]]
    source: str


def read_cif_block(path: str | Path) -> CifBlock:
    """The first data block of the CIF file ``path``.

    Raises
    ------
    CifError
        The file cannot be read, or its syntax is broken (the message names the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CifError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    items, loops = parse_cif(text, str(path))
    return CifBlock(items, loops, _leading_comment(text))


def _cif_tokens(text: str, path: str) -> list[tuple[str, int]]:
    """Split CIF text into (token, line number); semicolon text fields are one token."""
    tokens: list[tuple[str, int]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(";"):
            buf = [line[1:]]
            start = i + 1
            i += 1
            while i < len(lines) and not lines[i].startswith(";"):
                buf.append(lines[i])
                i += 1
            if i >= len(lines):
                raise CifError(f"{path}: line {start}: text field opened with ';' is never closed")
            tokens.append(("\n".join(buf), start))
            i += 1
            continue
        try:
            lex = shlex.shlex(line, posix=True)
            lex.whitespace_split = True
            lex.commenters = "#"
            lex.quotes = "'\""
            parts = list(lex)
        except ValueError as exc:
            raise CifError(f"{path}: line {i + 1}: {exc} in {line.strip()!r}") from exc
        tokens += [(p, i + 1) for p in parts]
        i += 1
    return tokens


def parse_cif(text: str, path: str) -> tuple[dict[str, str], list[dict[str, list[str]]]]:
    """Items and loops of the first data block of CIF ``text`` (``path`` names it in
    errors)."""
    tokens = _cif_tokens(text, path)
    items: dict[str, str] = {}
    loops: list[dict[str, list[str]]] = []
    i, n = 0, len(tokens)
    seen_data = False
    while i < n:
        tok, line = tokens[i]
        low = tok.lower()
        if low.startswith("data_"):
            if seen_data:
                break  # only the first data block
            seen_data = True
            i += 1
        elif low == "loop_":
            i += 1
            names = []
            while i < n and tokens[i][0].startswith("_"):
                names.append(tokens[i][0].lower())
                i += 1
            values = []
            while i < n:
                t = tokens[i][0]
                tl = t.lower()
                if t.startswith("_") or tl == "loop_" or tl.startswith("data_"):
                    break
                values.append(t)
                i += 1
            if not names:
                raise CifError(f"{path}: line {line}: 'loop_' without data names")
            if len(values) % len(names):
                raise CifError(
                    f"{path}: line {line}: loop of {', '.join(names)} has {len(values)} values, "
                    f"not a multiple of its {len(names)} columns (a missing or extra value)"
                )
            loops.append({nm: values[k :: len(names)] for k, nm in enumerate(names)})
        elif tok.startswith("_"):
            if i + 1 >= n:
                raise CifError(f"{path}: line {line}: data name {tok} has no value")
            items[low] = tokens[i + 1][0]
            i += 2
        else:
            i += 1  # global_, save frames etc. are ignored
    if not seen_data:
        raise CifError(f"{path}: no 'data_' block: is this a CIF file?")
    return items, loops


_UNCERTAINTY_RE = re.compile(r"\(\d+\)$")


def cif_float(value: str, what: str, path: str) -> float:
    """A CIF number without its standard uncertainty (``5.431(2)`` -> 5.431), or a clear
    error naming ``what`` in ``path``.

    Examples
    --------
    >>> cif_float("5.4310(3)", "_cell_length_a", "si.cif")
    5.431
    """
    v = _UNCERTAINTY_RE.sub("", value.strip())
    if v in {".", "?"}:
        raise CifError(f"{path}: {what} is not given ('{value}')")
    try:
        return float(v)
    except ValueError as exc:
        raise CifError(f"{path}: {what} = {value!r} is not a number") from exc


def _leading_comment(text: str) -> str:
    """The leading comment block of a CIF (where anodemap's data files state their source)."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line[1:].strip())
        elif line.strip():
            break
    return "\n".join(out).strip()
