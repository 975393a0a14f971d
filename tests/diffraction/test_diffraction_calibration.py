"""Reciprocal-space calibration: units, wavelength, camera length, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anodemap.diffraction.calibration import (
    ReciprocalCalibration,
    calibrated_signal_axes,
    electron_wavelength,
    reciprocal_calibration,
    require_4d,
)
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset, load


def _ds(units: str, scale: float = 0.5, metadata: dict | None = None, shape=(2, 3, 16, 16)):
    axes = [
        Axis("y", shape[0], 10.0, 0.0, "nm"),
        Axis("x", shape[1], 10.0, 0.0, "nm"),
        Axis("ky", shape[2], scale, 0.0, units, navigate=False),
        Axis("kx", shape[3], scale, 0.0, units, navigate=False),
    ]
    return Dataset(np.zeros(shape, dtype=np.uint8), axes, metadata or {})


@pytest.mark.parametrize(
    ("kev", "published_nm"),
    # Williams & Carter, Transmission Electron Microscopy (2nd ed., 2009), Table 1.2:
    # relativistic wavelengths 0.00370, 0.00251 and 0.00197 nm (three significant figures).
    [(100.0, 0.00370), (200.0, 0.00251), (300.0, 0.00197)],
)
def test_wavelength_matches_published_values(kev, published_nm):
    assert electron_wavelength(kev) / 10 == pytest.approx(published_nm, abs=5e-6)


def test_wavelength_matches_formula_with_scipy_constants():
    sc = pytest.importorskip("scipy.constants")
    for kev in (60.0, 80.0, 120.0, 200.0, 300.0):
        e = kev * 1e3 * sc.e
        lam = sc.h / math.sqrt(2 * sc.m_e * e * (1 + e / (2 * sc.m_e * sc.c**2))) * 1e10
        # scipy >= 1.15 carries CODATA 2022 as we do; older CODATA differs by < 1e-9
        assert electron_wavelength(kev) == pytest.approx(lam, rel=1e-8)


def test_wavelength_refuses_nonsense():
    with pytest.raises(AnodemapInputError, match="beam_energy_kev"):
        electron_wavelength(-5)


@pytest.mark.parametrize(
    ("units", "factor"),
    [("1/Å", 1.0), ("1/A", 1.0), ("Å^-1", 1.0), ("1/nm", 0.1), ("nm^-1", 0.1), ("1/pm", 100.0)],
)
def test_reciprocal_units(units, factor):
    cal = reciprocal_calibration(_ds(units, 0.5))
    assert cal.scale == pytest.approx((0.5 * factor, 0.5 * factor))
    assert not cal.nominal


def test_angles_use_the_wavelength_from_metadata_or_argument():
    md = {"Acquisition_instrument": {"TEM": {"beam_energy": 300.0}}}
    cal = reciprocal_calibration(_ds("mrad", 0.25, md))
    assert cal.scale[0] == pytest.approx(0.25e-3 / electron_wavelength(300.0))
    assert cal.beam_energy_kev == 300.0
    cal = reciprocal_calibration(_ds("rad", 1e-3), beam_energy_kev=200.0)
    assert cal.scale[1] == pytest.approx(1e-3 / 0.0250793, rel=1e-5)


def test_angles_without_energy_are_refused():
    with pytest.raises(AnodemapInputError, match="beam_energy_kev"):
        reciprocal_calibration(_ds("mrad"))


def test_camera_plane_lengths_need_a_camera_length():
    ds = _ds("cm", 0.016, {"Acquisition_instrument": {"TEM": {"beam_energy": 200.0}}})
    with pytest.raises(AnodemapInputError, match="camera_length_mm"):
        reciprocal_calibration(ds)
    cal = reciprocal_calibration(ds, camera_length_mm=250.0)
    # s = r / (L λ): 0.16 mm / 250 mm / λ
    assert cal.scale[0] == pytest.approx(0.16 / 250.0 / electron_wavelength(200.0))
    assert not cal.nominal
    with pytest.raises(AnodemapInputError, match="not plausible"):
        reciprocal_calibration(ds, camera_length_mm=0.2)


@pytest.mark.parametrize("units", ["", "px", "pixels"])
def test_uncalibrated_patterns_are_refused_unless_scale_given(units):
    with pytest.raises(AnodemapInputError, match="scale="):
        reciprocal_calibration(_ds(units))
    cal = reciprocal_calibration(_ds(units), scale=0.012)
    assert cal.scale == (0.012, 0.012)
    assert "given" in cal.source


def test_other_units_are_refused():
    with pytest.raises(AnodemapInputError, match="scale="):
        reciprocal_calibration(_ds("eV"))
    with pytest.raises(AnodemapInputError, match="positive"):
        reciprocal_calibration(_ds("1/nm"), scale=-1)


def test_anisotropic_scale_and_conversions():
    cal = ReciprocalCalibration((0.010, 0.012), "given")
    with pytest.raises(AnodemapInputError, match="elliptical"):
        _ = cal.isotropic_scale
    cal = ReciprocalCalibration((0.02, 0.02), "given", beam_energy_kev=200.0)
    assert cal.to_pixels(0.5) == pytest.approx(25.0)
    assert cal.wavelength_angstrom == pytest.approx(electron_wavelength(200.0))
    axes = calibrated_signal_axes(cal, (65, 65), center=(30.0, 34.0))
    assert axes[0].units == "1/Å"
    assert axes[0].values[30] == pytest.approx(0.0)
    assert axes[1].values[34] == pytest.approx(0.0)
    assert cal.as_dict()["scale_inv_angstrom_per_px"] == [0.02, 0.02]


def test_rank_is_checked():
    assert require_4d(np.zeros((2, 3, 4, 4))) == (2, 3, 4, 4)
    with pytest.raises(AnodemapInputError, match=r"\(ny, nx, ky, kx\)"):
        require_4d(np.zeros((6, 4, 4)))
    stack = Dataset(np.zeros((6, 4, 4)))  # one scan axis only: a pattern stack
    stack.axes[1].navigate = False
    stack = Dataset(stack.data, stack.axes)
    with pytest.raises(AnodemapInputError, match="scan shape"):
        require_4d(stack)


def test_real_blockfile_is_calibrated_from_its_header(shared_blo):
    ds = load(shared_blo)
    assert ds.sig_axes[0].units == "cm"
    cal = reciprocal_calibration(ds)
    header = ds.original_metadata["blockfile_header"]
    # rosettasciio's description of the header: SDP = 100 × pixels per cm, camera length
    # in 0.1 mm, beam energy in V
    px_mm = 10 * 100.0 / float(header["SDP"])
    length_mm = 0.1 * float(header["Camera_length"])
    assert length_mm == pytest.approx(200.0)
    expected = px_mm / length_mm / electron_wavelength(float(header["Beam_energy"]) / 1e3)
    assert cal.scale == pytest.approx((expected, expected))
    assert cal.nominal
    assert "Camera_length" in cal.source
    # an explicit, measured calibration wins
    assert reciprocal_calibration(ds, scale=0.03).scale == (0.03, 0.03)
