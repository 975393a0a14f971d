"""Truth files of simulated datasets: the layout every simulated dataset's truth has.

A truth folder holds one ``.hspy`` map per quantity over the scan and ``truth.json``
with the scalars and label names. ``anodemap simulate`` and the simulated study
(:mod:`anodemap.synth.study`) write them here; the analyses' ``compare_with_truth`` read
them.

Examples
--------
>>> import tempfile, pathlib
>>> from anodemap.synth import make_phantom
>>> from anodemap.synth.diffraction import simulate_diffraction
>>> sim = simulate_diffraction(make_phantom((8, 8), seed=1), pattern_shape=(32, 32), seed=1)
>>> folder = write_diffraction_truth(sim, pathlib.Path(tempfile.mkdtemp()) / "truth", 5.0)
>>> sorted(p.name for p in folder.iterdir())[:3]
['amorphous_fraction.hspy', 'amorphous_intensity_share.hspy', 'euler_deg.hspy']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_diffraction_truth"]

# the truth maps of a simulated diffraction scan (anodemap.synth.diffraction)
_DIFFRACTION_MAPS = (
    "phase",
    "amorphous_fraction",
    "amorphous_intensity_share",
    "labels",
    "grain_id",
    "in_plane_angle_deg",
)


def write_diffraction_truth(
    sim: Any, folder: Path, scan_step_nm: float, extra: dict[str, Any] | None = None
) -> Path:
    """Write the truth of a simulated diffraction scan into ``folder``.

    Parameters
    ----------
    sim : SimulatedDiffraction
        As :func:`anodemap.synth.diffraction.simulate_diffraction` returns it.
    folder : Path
        Made if needed.
    scan_step_nm : float
        The scan step of the maps' axes.
    extra : dict, optional
        More entries of ``truth.json``.

    Returns
    -------
    Path
        ``folder``.
    """
    from anodemap.io import Axis, Dataset, save
    from anodemap.io.results import map_dataset, write_json
    from anodemap.synth.diffraction import PHASE_LABELS, PORE_LABEL

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ny, nx = np.asarray(sim.truth["phase"]).shape
    nav = [Axis("y", ny, scan_step_nm, 0.0, "nm"), Axis("x", nx, scan_step_nm, 0.0, "nm")]
    for key in _DIFFRACTION_MAPS:
        save(map_dataset(np.asarray(sim.truth[key]), nav, key, ""), folder / f"{key}.hspy")
    euler = Dataset(
        np.asarray(sim.truth["euler_deg"], dtype=float),
        [*nav, Axis("Euler angle (phi1, Phi, phi2)", 3, navigate=False)],
    )
    save(euler, folder / "euler_deg.hspy")
    write_json(
        {
            "phase_labels": {str(k): v for k, v in PHASE_LABELS.items()},
            "pore_label": PORE_LABEL,
            "parameters": sim.parameters,
            **(extra or {}),
        },
        folder / "truth.json",
    )
    return folder
