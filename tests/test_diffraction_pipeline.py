"""The `anodemap diffraction` command and library call, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.diffraction.pipeline import DiffractionParameters, analyse_diffraction
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset, load

EXPECTED = [
    "phase.hspy",
    "correlation.hspy",
    "reliability.hspy",
    "phase_reliability.hspy",
    "virtual_bf.hspy",
    "virtual_adf.hspy",
    "orientations.hspy",
    "orientations.ang",
    "summary.json",
    "phase.png",
]


def test_real_blo_loads_indexes_and_converts(shared_blo, tmp_path):
    """A real NanoMegas file (not silicon): it must load, be indexed and converted."""
    hs = pytest.importorskip("hyperspy.api")
    out = tmp_path / "blo"
    assert main(["diffraction", str(shared_blo), "-o", str(out), "--no-progress"]) == 0
    for name in EXPECTED:
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["phase_labels"] == {"0": "amorphous", "1": "Si", "2": "Li15Si4"}
    assert summary["n_patterns"] == 6
    assert summary["calibration"]["scale_inv_angstrom_per_px"][0] > 0
    phase = hs.load(out / "phase.hspy")
    assert phase.data.shape == (3, 2)
    assert phase.axes_manager.signal_axes[0].units == "nm"
    assert phase.axes_manager.signal_axes[0].scale == pytest.approx(12.8)
    vbf = load(out / "virtual_bf.hspy").data
    assert np.all(np.asarray(vbf) > 0)
    orient = load(out / "orientations.hspy")
    assert orient.data.shape == (3, 2, 3)


def test_ang_file_opens_in_orix(shared_blo, tmp_path):
    orix_io = pytest.importorskip("orix.io")
    out = tmp_path / "blo"
    assert (
        main(["diffraction", str(shared_blo), "-o", str(out), "--no-progress", "--no-figures"]) == 0
    )
    xmap = orix_io.load(out / "orientations.ang")
    assert xmap.shape == (3, 2)


def test_wrong_rank_and_uncalibrated_patterns_are_clear_errors():
    axes = [
        Axis("y", 4),
        Axis("x", 5),
        Axis("ky", 16, navigate=False),
        Axis("kx", 16, navigate=False),
    ]
    uncalibrated = Dataset(np.zeros((4, 5, 16, 16)), axes)
    with pytest.raises(AnodemapInputError, match="not calibrated.*scale="):
        analyse_diffraction(
            uncalibrated, DiffractionParameters(beam_energy_kev=300), progress=False
        )
    spectra = Dataset(np.zeros((2, 2, 50)))
    with pytest.raises(AnodemapInputError, match="4D diffraction"):
        analyse_diffraction(spectra, progress=False)
    single = Dataset(
        np.zeros((16, 16)), [Axis("ky", 16, navigate=False), Axis("kx", 16, navigate=False)]
    )
    with pytest.raises(AnodemapInputError, match="4D diffraction"):
        analyse_diffraction(single, progress=False)
