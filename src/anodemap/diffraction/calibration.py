"""Reciprocal-space calibration of 4D-STEM datasets: 1/Å per detector pixel.

A diffraction dataset's two signal axes (ky, kx) carry a scale and units. This module
turns them into the scattering vector per pixel, **s = 1/d in 1/Å** (q = 2πs where a
formula needs it), from whatever the file holds:

- reciprocal lengths (``1/Å``, ``1/A``, ``Å^-1``, ``1/nm``, ``nm^-1``, ``1/pm``, ``1/m``):
  converted directly, read as s = 1/d (the HyperSpy/pyxem convention; a file that stores
  q = 2π/d must be given an explicit ``scale``);
- scattering angles (``rad``, ``mrad``, ``µrad``): s = α/λ with the relativistic electron
  wavelength λ of the beam energy;
- lengths on the camera plane (``m``, ``cm``, ``mm``, ``µm``; NanoMegas ``.blo`` files
  store ``cm``): α = r/L with the camera length L, then s = α/λ.

Both conversions from angles and lengths are paraxial (model choice): the exact forms
s = 2 sin(α/2)/λ and α = arctan(r/L) differ from the linear ones by a relative
-α²/24 and -α²/3, i.e. below 1e-4 and 1e-3 at α = 50 mrad, beyond any pattern
recorded for phase mapping. An uncalibrated pattern (units ``""`` or ``"px"``) is
refused unless ``scale`` is passed.

The wavelength and the physical constants (CODATA 2022) are in :mod:`anodemap.constants`.

Examples
--------
>>> import numpy as np
>>> from anodemap.io import Axis, Dataset
>>> from anodemap.diffraction.calibration import electron_wavelength, reciprocal_calibration
>>> round(electron_wavelength(200.0), 6)   # Å at 200 keV
0.025079
>>> ds = Dataset(np.zeros((2, 3, 64, 64)), axes=[
...     Axis("y", 2, 5.0, 0.0, "nm"), Axis("x", 3, 5.0, 0.0, "nm"),
...     Axis("ky", 64, 0.2, 0.0, "1/nm", navigate=False),
...     Axis("kx", 64, 0.2, 0.0, "1/nm", navigate=False)])
>>> [round(v, 6) for v in reciprocal_calibration(ds).scale]   # 1/Å per pixel
[0.02, 0.02]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from anodemap.constants import electron_wavelength
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset

__all__ = [
    "ReciprocalCalibration",
    "calibrated_signal_axes",
    "electron_wavelength",
    "reciprocal_calibration",
    "require_4d",
]

# Reciprocal-length units -> factor to 1/Å.
_RECIPROCAL = {
    "1/a": 1.0,
    "a^-1": 1.0,
    "a-1": 1.0,
    "1/nm": 0.1,
    "nm^-1": 0.1,
    "nm-1": 0.1,
    "1/pm": 100.0,
    "pm^-1": 100.0,
    "1/m": 1e-10,
    "m^-1": 1e-10,
}
# Angle units -> factor to rad.
_ANGLE = {"rad": 1.0, "mrad": 1e-3, "urad": 1e-6}
# Length units on the camera plane -> factor to mm.
_LENGTH = {"m": 1e3, "cm": 10.0, "mm": 1.0, "um": 1e-3}
_UNCALIBRATED = {"", "px", "pixel", "pixels", "pix", "a.u.", "au"}

# Camera lengths below this are taken as a unit error (model choice: TEM camera lengths
# are tens of mm to a few metres; 1 mm is far below any of them).
_MIN_CAMERA_LENGTH_MM = 1.0
# Relative tolerance on equal ky/kx scales for `isotropic_scale` (model choice: a 1 %
# difference is far above the rounding of stored calibrations and below a real
# elliptical distortion worth correcting).
_ISOTROPY_RTOL = 0.01


@dataclass(frozen=True)
class ReciprocalCalibration:
    """Scattering vector per detector pixel, s = 1/d in 1/Å.

    Parameters
    ----------
    scale : (float, float)
        1/Å per pixel along (ky, kx), the last two array axes.
    source : str
        Where the calibration came from (written into result metadata).
    beam_energy_kev, camera_length_mm : float, optional
        The values used in the conversion, when one was needed.
    nominal : bool
        True when the calibration rests on the microscope's nominal camera length rather
        than a measurement on a standard (then expect errors of a few percent).

    Examples
    --------
    >>> cal = ReciprocalCalibration((0.01, 0.01), "given")
    >>> cal.isotropic_scale, cal.to_pixels(0.5)
    (0.01, 50.0)
    """

    scale: tuple[float, float]
    source: str
    beam_energy_kev: float | None = None
    camera_length_mm: float | None = None
    nominal: bool = False

    @property
    def wavelength_angstrom(self) -> float | None:
        """Electron wavelength in Å, if the beam energy is known."""
        return None if self.beam_energy_kev is None else electron_wavelength(self.beam_energy_kev)

    @property
    def isotropic_scale(self) -> float:
        """The common 1/Å per pixel of both axes (error if they differ by > 1 %)."""
        sy, sx = self.scale
        if abs(sy - sx) > _ISOTROPY_RTOL * max(abs(sy), abs(sx)):
            raise AnodemapInputError(
                f"the detector calibration differs between ky ({sy:g} 1/Å/px) and kx "
                f"({sx:g} 1/Å/px); correct the elliptical distortion first, or give one "
                "calibration with --reciprocal-pixel-size PER_A (scale= in Python)"
            )
        return 0.5 * (sy + sx)

    def to_pixels(self, s: float) -> float:
        """Convert a scattering vector s (1/Å) to a radius in pixels."""
        return float(s) / self.isotropic_scale

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary for result metadata / summary.json."""
        return {
            "scale_inv_angstrom_per_px": list(self.scale),
            "source": self.source,
            "beam_energy_kev": self.beam_energy_kev,
            "camera_length_mm": self.camera_length_mm,
            "nominal": self.nominal,
        }


def require_4d(data: Any, what: str = "data") -> tuple[int, int, int, int]:
    """Check that ``data`` (array or :class:`Dataset`) is a 4D-STEM dataset.

    A 4D-STEM dataset has two scan axes and two signal axes, ``(ny, nx, ky, kx)``.

    Raises
    ------
    AnodemapInputError
        For any other rank, naming the shape and what to do.

    Examples
    --------
    >>> import numpy as np
    >>> require_4d(np.zeros((2, 3, 8, 8)))
    (2, 3, 8, 8)
    """
    if isinstance(data, Dataset):
        if len(data.sig_axes) != 2 or len(data.nav_axes) != 2:
            raise AnodemapInputError(
                f"{what}: expected a 4D-STEM dataset with 2 scan and 2 diffraction axes, "
                f"got scan shape {data.nav_shape} and signal shape {data.sig_shape}; a "
                "pattern stack needs its scan shape (reshape to (ny, nx, ky, kx); convert a "
                "TVIPS recording with anodemap stream --scan-shape NY NX)"
            )
        return tuple(int(n) for n in data.data.shape)  # type: ignore[return-value]
    shape = tuple(int(n) for n in getattr(data, "shape", ()))
    if len(shape) != 4:
        raise AnodemapInputError(
            f"{what}: expected a 4D-STEM array (scan y, scan x, ky, kx), got {len(shape)} "
            f"dimensions {shape}; reshape a pattern stack (n, ky, kx) to its scan shape "
            "(ny, nx, ky, kx) first, e.g. data.reshape(ny, nx, ky, kx)"
        )
    return shape  # type: ignore[return-value]


def _norm_units(units: str) -> str:
    u = str(units).strip().lower().replace(" ", "")
    for a, b in (("å", "a"), ("angstrom", "a"), ("ang", "a"), ("µ", "u"), ("μ", "u")):
        u = u.replace(a, b)
    return u.replace("⁻¹", "^-1").replace("**", "^")


def _beam_energy(dataset: Dataset, beam_energy_kev: float | None) -> tuple[float | None, str]:
    if beam_energy_kev is not None:
        return float(beam_energy_kev), "given"
    value = dataset.get_meta("Acquisition_instrument.TEM.beam_energy")
    if value not in (None, "", 0):  # HyperSpy metadata convention: keV
        return float(value), "metadata Acquisition_instrument.TEM.beam_energy (keV)"
    header = (dataset.original_metadata or {}).get("blockfile_header") or {}
    if header.get("Beam_energy"):  # NanoMegas header field in V (rosettasciio's layout)
        return float(header["Beam_energy"]) * 1e-3, "blockfile header Beam_energy (V)"
    return None, ""


def _camera_length(dataset: Dataset, camera_length_mm: float | None) -> tuple[float | None, str]:
    if camera_length_mm is not None:
        return float(camera_length_mm), "given"
    header = (dataset.original_metadata or {}).get("blockfile_header") or {}
    if header.get("Camera_length"):
        # rosettasciio's description of the NanoMegas header: Camera_length in units of
        # 0.1 mm ("[10 * mm]", rsciio/blockfile/_api.py); it is the nominal value.
        return float(header["Camera_length"]) * 0.1, "blockfile header Camera_length (0.1 mm)"
    value = dataset.get_meta("Acquisition_instrument.TEM.camera_length")
    if value not in (None, "", 0):  # HyperSpy metadata convention: mm
        return float(value), "metadata Acquisition_instrument.TEM.camera_length (mm)"
    return None, ""


def reciprocal_calibration(
    dataset: Dataset,
    *,
    scale: float | Sequence[float] | None = None,
    beam_energy_kev: float | None = None,
    camera_length_mm: float | None = None,
) -> ReciprocalCalibration:
    """The reciprocal-space calibration (1/Å per pixel) of a diffraction dataset.

    Parameters
    ----------
    dataset : Dataset
        A dataset whose last two axes are the diffraction pattern (ky, kx).
    scale : float or (float, float), optional
        The calibration in 1/Å per pixel, measured on a standard; overrides the file.
    beam_energy_kev : float, optional
        Beam energy for angular or camera-plane units (default: the metadata
        ``Acquisition_instrument.TEM.beam_energy`` or the ``.blo`` header).
    camera_length_mm : float, optional
        Camera length for camera-plane units such as the ``cm`` of ``.blo`` files
        (default: the ``.blo`` header, read as 0.1 mm units following rosettasciio's
        description of the format, or ``Acquisition_instrument.TEM.camera_length`` in mm).
        Nominal camera lengths are approximate: pass ``scale`` for quantitative work.

    Returns
    -------
    ReciprocalCalibration

    Raises
    ------
    AnodemapInputError
        Uncalibrated axes (units ``""``/``"px"``) without ``scale``; angular or length
        units without the beam energy or camera length needed to convert them; units that
        are not a reciprocal length, angle or length.

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.io import Axis, Dataset
    >>> ax = [Axis("y", 1, 1.0), Axis("x", 1, 1.0),
    ...       Axis("ky", 32, 0.5, 0.0, "mrad", False), Axis("kx", 32, 0.5, 0.0, "mrad", False)]
    >>> cal = reciprocal_calibration(Dataset(np.zeros((1, 1, 32, 32)), ax), beam_energy_kev=200)
    >>> round(cal.scale[0], 5)
    0.01994
    """
    sig = dataset.sig_axes
    if len(sig) != 2:
        raise AnodemapInputError(
            f"expected diffraction patterns (two signal axes), got signal shape {dataset.sig_shape}"
        )
    if scale is not None:
        sc = np.broadcast_to(np.asarray(scale, dtype=float), (2,))
        if not np.all(np.isfinite(sc)) or np.any(sc <= 0):
            raise AnodemapInputError(
                f"--reciprocal-pixel-size {scale!r} (scale= in Python): must be positive (1/Å per pixel)"
            )
        return ReciprocalCalibration((float(sc[0]), float(sc[1])), "given (scale=, 1/Å per px)")
    units = {_norm_units(a.units) for a in sig}
    names = ", ".join(f"{a.name!r} [{a.units!r}]" for a in sig)
    if len(units) != 1:
        raise AnodemapInputError(f"the diffraction axes {names} have different units")
    (unit,) = units
    if not all(a.is_uniform for a in sig):
        raise AnodemapInputError(f"the diffraction axes {names} are not uniform")
    px = [abs(float(a.scale)) for a in sig]
    if unit in _UNCALIBRATED:
        raise AnodemapInputError(
            f"the diffraction pattern is not calibrated (axes {names}); give the "
            "calibration measured on a standard with --reciprocal-pixel-size PER_A (1/Å per pixel; "
            "scale= in Python), or calibrate the file's signal axes in 1/Å, 1/nm or mrad"
        )
    if unit in _RECIPROCAL:
        f = _RECIPROCAL[unit]
        return ReciprocalCalibration((px[0] * f, px[1] * f), f"signal axes in {sig[0].units}")
    if unit in _ANGLE or unit in _LENGTH:
        energy, e_src = _beam_energy(dataset, beam_energy_kev)
        if energy is None:
            raise AnodemapInputError(
                f"the diffraction axes {names} are in {sig[0].units}; converting to 1/Å "
                "needs the beam energy: pass --beam-energy KEV (beam_energy_kev), or the "
                "calibration --reciprocal-pixel-size PER_A (1/Å per pixel; scale= in Python)"
            )
        lam = electron_wavelength(energy)
        if unit in _ANGLE:
            f = _ANGLE[unit] / lam
            return ReciprocalCalibration(
                (px[0] * f, px[1] * f),
                f"signal axes in {sig[0].units}, s = α/λ at {energy:g} keV ({e_src})",
                beam_energy_kev=energy,
            )
        length, l_src = _camera_length(dataset, camera_length_mm)
        if length is None:
            raise AnodemapInputError(
                f"the diffraction axes {names} are lengths on the camera plane; converting "
                "to 1/Å needs the camera length: pass --camera-length MM (camera_length_mm) "
                "or the calibration measured on a standard, --reciprocal-pixel-size PER_A (1/Å per "
                "pixel; scale= in Python)"
            )
        if not math.isfinite(length) or length < _MIN_CAMERA_LENGTH_MM:
            raise AnodemapInputError(
                f"camera length {length:g} mm ({l_src}) is not plausible; pass "
                "--camera-length MM (camera_length_mm) or --reciprocal-pixel-size PER_A (1/Å per "
                "pixel; scale= in Python)"
            )
        f = _LENGTH[unit] / length / lam
        return ReciprocalCalibration(
            (px[0] * f, px[1] * f),
            f"signal axes in {sig[0].units}, s = r/(L λ) with L = {length:g} mm ({l_src}) "
            f"at {energy:g} keV ({e_src})",
            beam_energy_kev=energy,
            camera_length_mm=length,
            nominal=camera_length_mm is None,
        )
    raise AnodemapInputError(
        f"the diffraction axes {names} have units that are not a reciprocal length, an "
        "angle or a camera-plane length; give the calibration with --reciprocal-pixel-size PER_A "
        "(1/Å per pixel; scale= in Python)"
    )


def calibrated_signal_axes(
    calibration: ReciprocalCalibration,
    shape: tuple[int, int],
    center: tuple[float, float] | None = None,
    names: tuple[str, str] = ("ky", "kx"),
) -> list[Axis]:
    """Signal axes in 1/Å with s = 0 at ``center`` (pixel coordinates, default the middle).

    Examples
    --------
    >>> cal = ReciprocalCalibration((0.02, 0.02), "given")
    >>> [a.offset for a in calibrated_signal_axes(cal, (5, 5))]
    [-0.04, -0.04]
    """
    if center is None:
        center = ((shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0)
    return [
        Axis(name, int(n), float(sc), -float(c) * float(sc), "1/Å", navigate=False)
        for name, n, sc, c in zip(names, shape, calibration.scale, center, strict=True)
    ]
