"""EDAX/TSL .ang orientation-map files, as orix, MTEX and OIM Analysis read them.

The layout (a ``#`` header with the phases and the square grid, then one row per scan
point: φ1 Φ φ2 in radians (Bunge), x y in µm, image quality, confidence index, phase
ID, detector signal, fit) is EDAX's; orix's ``io.plugins.ang`` documents the columns it
reads. Which of anodemap's maps fill IQ, CI, signal and fit is the caller's choice and is
stated in the header's note.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> rows = np.zeros((2, 10)); rows[:, 7] = 1
>>> p = write_ang_file(pathlib.Path(tempfile.mkdtemp()) / "m.ang", rows, {1: "Si"},
...                    step_um=(0.005, 0.005), shape=(1, 2))
>>> [line for line in p.read_text().splitlines() if "MaterialName" in line]
['# MaterialName  \\tSi']
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from anodemap.io.results import write_text

__all__ = ["write_ang_file"]

# φ1 Φ φ2, x y, IQ, CI, phase ID, signal, fit
_FORMATS = ["%.5f"] * 5 + ["%.3f", "%.3f", "%d", "%.3f", "%.4f"]


def write_ang_file(
    path: str | os.PathLike,
    rows: np.ndarray,
    phases: Mapping[int, str],
    *,
    step_um: tuple[float, float],
    shape: tuple[int, int],
    note: str = "",
    symmetry: int = 43,
) -> Path:
    """Write an .ang file (atomically).

    Parameters
    ----------
    path : path-like
    rows : ndarray, shape (n_points, 10)
        φ1, Φ, φ2 (rad), x, y (µm), IQ, CI, phase ID (0: none), signal, fit; row-major
        over the scan.
    phases : mapping of int to str
        Phase ID (1, 2, ...) to its name (written as material name and formula).
    step_um : (float, float)
        Scan step along y and x in µm.
    shape : (int, int)
        Rows and columns of the scan.
    note : str
        What the IQ, CI, signal and fit columns hold (written in the header).
    symmetry : int
        The TSL symmetry code of every phase (43: cubic m-3m, the Laue class of Si and
        Li15Si4).

    Returns
    -------
    Path
    """
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2 or rows.shape[1] != len(_FORMATS) or rows.shape[0] != shape[0] * shape[1]:
        raise ValueError(f"rows of shape {rows.shape} for a {shape} scan: expected (n, 10)")
    lines = [
        "# TEM_PIXperUM          1.000000",
        "# x-star 0",
        "# y-star 0",
        "# z-star 0",
        "# WorkingDistance 0",
        "#",
    ]
    for key, name in sorted(phases.items()):
        lines += [
            f"# Phase {key}",
            f"# MaterialName  \t{name}",
            f"# Formula     \t{name}",
            f"# Symmetry              {symmetry}",
            "#",
        ]
    ny, nx = shape
    lines += [
        "# GRID: SqrGrid",
        f"# XSTEP: {step_um[1]:.6f}",
        f"# YSTEP: {step_um[0]:.6f}",
        f"# NCOLS_ODD: {nx}",
        f"# NCOLS_EVEN: {nx}",
        f"# NROWS: {ny}",
        "#",
    ]
    if note:
        lines += [f"# written by anodemap: {note}", "#"]
    text = io.StringIO()
    text.write("\n".join(lines) + "\n")
    np.savetxt(text, rows, fmt=_FORMATS)
    return write_text(text.getvalue(), path)
