"""The simulator's amorphous-silicon structure: a packaged continuous random network.

The network (1000 Si atoms in a periodic cube, every atom bonded to four others) was built
once by ``tools/make_asi_crn.py`` with the bond-switching method of Wooten, Winer and
Weaire (Phys. Rev. Lett. 54 (1985) 1392) as made fast by Barkema and Mousseau (Phys. Rev.
B 62 (2000) 4985), relaxed with the Keating potential, and is read here from
``anodemap/data/a_si_crn_1000.json``: nothing is built at run time. It is a computed
model, not a measured structure; its statistics, stored with it, are compared with
published a-Si numbers in ``tests/synth/test_asi_crn.py`` and in docs/synth.md.

Examples
--------
>>> from anodemap.synth.crn import load_asi_crn
>>> crn = load_asi_crn()
>>> crn.positions.shape, crn.bonds.shape
((1000, 3), (2000, 2))
>>> round(crn.box, 2), round(crn.density, 4)
(27.32, 0.049)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from anodemap.errors import AnodemapIOError

__all__ = ["DATA_FILE", "AsiCrn", "load_asi_crn"]

#: The packaged network, under ``anodemap/data``.
DATA_FILE = "a_si_crn_1000.json"


@dataclass(frozen=True)
class AsiCrn:
    """A periodic amorphous-Si network (read-only arrays).

    Attributes
    ----------
    positions : ndarray, shape (n, 3)
        Cartesian positions in Å inside the periodic cube ``[0, box)³``.
    box : float
        Edge of the periodic cube, Å.
    bonds : ndarray of int, shape (2 n, 2)
        The network's bonds as atom-index pairs ``i < j`` (four per atom).
    seed : int
        Seed of the run that built it.
    metadata : dict
        Provenance (method, potential and its parameters with sources, schedule,
        references) and the statistics the builder measured on these positions.
    """

    positions: np.ndarray
    box: float
    bonds: np.ndarray
    seed: int
    metadata: dict[str, Any] = field(repr=False)

    @property
    def density(self) -> float:
        """Number density, atoms per Å³."""
        return len(self.positions) / self.box**3


@cache
def load_asi_crn() -> AsiCrn:
    """The packaged amorphous-Si continuous random network.

    Returns
    -------
    AsiCrn
        Positions (Å), box (Å), bonds, seed and provenance; the same object on every call
        (its arrays are read-only).

    Raises
    ------
    AnodemapIOError
        When the packaged file is missing or damaged (a broken installation).

    Examples
    --------
    >>> crn = load_asi_crn()
    >>> crn.metadata["note"][:40]
    "computed by anodemap's tools/make_asi_cr"
    """
    ref = resources.files("anodemap").joinpath("data", DATA_FILE)
    try:
        doc = json.loads(ref.read_text("utf-8"))
        pos = np.asarray(doc["positions_A"], dtype=np.float64)
        bonds = np.asarray(doc["bonds"], dtype=np.int64)
        box = float(doc["box_A"])
        seed = int(doc["seed"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnodemapIOError(
            f"{ref}: cannot read the packaged a-Si network ({exc}); reinstall anodemap "
            "(pip install --force-reinstall anodemap)"
        ) from None
    if pos.ndim != 2 or pos.shape[1] != 3 or bonds.shape != (2 * len(pos), 2):
        raise AnodemapIOError(
            f"{ref}: positions {pos.shape} and bonds {bonds.shape} do not form a four-fold "
            "network; reinstall anodemap (pip install --force-reinstall anodemap)"
        )
    pos.flags.writeable = False
    bonds.flags.writeable = False
    meta = {k: v for k, v in doc.items() if k not in ("positions_A", "bonds")}
    return AsiCrn(pos, box, bonds, seed, meta)
