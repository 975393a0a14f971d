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
>>> sorted(p.name for p in folder.iterdir())[:4]       # the PDF truth: amorphous_model*
['amorphous_fraction.hspy', 'amorphous_intensity_share.hspy', 'amorphous_model_weights.hspy', 'amorphous_models.json']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_amorphous_models", "write_diffraction_truth"]

#: The PDF truth: each pattern's weight of every amorphous model, and the models' pair
#: distances (new files; the maps above are written as before).
MODEL_WEIGHTS = "amorphous_model_weights.hspy"
MODELS = "amorphous_models.json"

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
    if "amorphous_model_weights" in sim.truth:
        _write_models(sim, folder, nav)
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


def _write_models(sim: Any, folder: Path, nav: list[Any]) -> None:
    """The PDF truth: ``amorphous_model_weights.hspy`` (scan × model) and
    ``amorphous_models.json`` (each used model's composition, density and pair-distance
    counts, from which :meth:`AmorphousModel.intensity` gives I(s) exactly as the
    simulator computed it)."""
    from anodemap.io import Axis, Dataset, save
    from anodemap.io.results import write_json
    from anodemap.synth.diffraction import amorphous_model

    weights = np.asarray(sim.truth["amorphous_model_weights"], dtype=np.float64)
    keys = list(sim.truth["amorphous_model_keys"])
    save(
        Dataset(weights, [*nav, Axis("model", len(keys), navigate=False)]),
        folder / MODEL_WEIGHTS,
    )
    models = []
    for k, key in enumerate(keys):
        if not np.any(weights[..., k] > 0):
            models.append(None)  # not in this scan
            continue
        m = amorphous_model(key)
        n = len(m.types)
        pairs = []
        for (a, b), h in m.pair_histograms.items():
            if a > b:
                continue
            # the histograms are ordered-pair counts / n (twice for a == b): back to counts
            counts = np.rint(h * n / (2.0 if a == b else 1.0)).astype(np.int64)
            last = int(np.flatnonzero(counts)[-1]) + 1 if counts.any() else 0
            pairs.append({"a": int(a), "b": int(b), "counts": counts[:last].tolist()})
        models.append(
            {
                "key": key,
                "name": m.name,
                "elements": list(m.elements),
                "atoms": np.bincount(m.types, minlength=len(m.elements)).tolist(),
                "density_per_cubic_angstrom": m.density,
                "box_angstrom": m.box,
                "r_bin_angstrom": round(float(m.r[1] - m.r[0]), 12),  # the 0.01 Å it was built with
                "n_bins": int(m.r.size),
                "pair_counts": pairs,
            }
        )
    write_json(
        {
            "keys": keys,
            "models": models,
            "weights": MODEL_WEIGHTS,
            "how": "the expected diffuse intensity of pattern p is Σ_k w[p, k] ρ_k I_k(s), "
            "w from amorphous_model_weights.hspy (probability per detector pixel per 1/Å of "
            "ρ I), ρ_k the model's number density, I_k(s) its Debye intensity per atom "
            "(anodemap.synth.diffraction.AmorphousModel.intensity at the beam energy of "
            "truth.json) from the unordered pair counts per bin of r_bin_angstrom "
            "(read_amorphous_models)",
        },
        folder / MODELS,
    )


def read_amorphous_models(folder: Path) -> tuple[np.ndarray, list[Any]]:
    """The per-pattern model weights and the models of a diffraction truth folder.

    Parameters
    ----------
    folder : Path
        A truth folder written by :func:`write_diffraction_truth`.

    Returns
    -------
    weights : ndarray, shape (ny, nx, n_models)
    models : list of AmorphousModel or None
        In the order of the weights' last axis; None for a model the scan does not use.
        Only the composition, density and pair histograms are kept (no positions).

    Raises
    ------
    FileNotFoundError
        When the folder has no PDF truth (written before it existed).

    Examples
    --------
    >>> w, models = read_amorphous_models(folder)            # doctest: +SKIP
    >>> [m.name for m in models if m is not None]            # doctest: +SKIP
    ['a-Li2.00Si', 'a-Li3.00Si', 'oxide Li2SiO3']
    """
    import json

    from anodemap.io import load
    from anodemap.synth.diffraction import AmorphousModel

    folder = Path(folder)
    meta = json.loads((folder / MODELS).read_text())
    weights = np.asarray(load(folder / meta["weights"]).data, dtype=np.float64)
    models: list[Any] = []
    for m in meta["models"]:
        if m is None:
            models.append(None)
            continue
        atoms = np.asarray(m["atoms"], dtype=np.int64)
        n = int(atoms.sum())
        dr = float(m["r_bin_angstrom"])
        nb = int(m["n_bins"])
        hist: dict[tuple[int, int], np.ndarray] = {}
        for pc in m["pair_counts"]:
            a, b = int(pc["a"]), int(pc["b"])
            h = np.zeros(nb)
            h[: len(pc["counts"])] = pc["counts"]
            # as the simulator's histograms: ordered pairs per atom (twice for a == b)
            hist[(a, b)] = 2.0 * h / n if a == b else h / n
            if a != b:
                hist[(b, a)] = h / n
        # bin centres as the simulator computes them (same floats)
        edges = np.arange(0.0, (nb + 0.5) * dr, dr)[: nb + 1]
        r = 0.5 * (edges[1:] + edges[:-1])
        hist = dict(sorted(hist.items()))  # the simulator's order: the same sums
        models.append(
            AmorphousModel(
                m["name"],
                tuple(m["elements"]),
                np.repeat(np.arange(atoms.size), atoms),
                np.zeros((0, 3)),
                float(m["box_angstrom"]),
                float(m["density_per_cubic_angstrom"]),
                r,
                hist,
            )
        )
    return weights, models
