"""The image's axes in nm: the pixel size that areas and the scale bar use.

Examples
--------
>>> from anodemap.io import Axis
>>> axes = to_nm([Axis("y", 4, 0.002, 0.0, "µm", False), Axis("x", 4, 0.002, 0.0, "µm", False)])
>>> [(a.scale, a.units) for a in axes]
[(2.0, 'nm'), (2.0, 'nm')]
>>> pixel_size_nm(axes)
2.0
"""

from __future__ import annotations

from anodemap.errors import AnodemapInputError
from anodemap.io import Axis

__all__ = ["is_calibrated", "pixel_size_nm", "to_nm"]

# nm per unit of the real-space lengths that readers write
_NM_PER = {
    "nm": 1.0,
    "µm": 1e3,
    "μm": 1e3,
    "um": 1e3,
    "micron": 1e3,
    "å": 0.1,
    "angstrom": 0.1,
    "a": 0.1,
    "pm": 1e-3,
    "mm": 1e6,
    "m": 1e9,
}


def is_calibrated(axes: list[Axis]) -> bool:
    """Whether both axes are real-space lengths (a unit from µm to pm)."""
    return all(a.units.strip().lower() in _NM_PER for a in axes)


def to_nm(axes: list[Axis]) -> list[Axis]:
    """The two image axes as signal axes in nm (uncalibrated ones kept in pixels)."""
    out = []
    for a in axes:
        factor = _NM_PER.get(a.units.strip().lower())
        if factor is None or not a.is_uniform:
            out.append(Axis(a.name or "", a.size, 1.0, 0.0, "", navigate=False))
        else:
            out.append(
                Axis(a.name, a.size, a.scale * factor, a.offset * factor, "nm", navigate=False)
            )
    return out


def pixel_size_nm(axes: list[Axis]) -> float | None:
    """The pixel size in nm (None for an uncalibrated image); non-square pixels refused."""
    if not is_calibrated(axes):
        return None
    sy, sx = (abs(float(a.scale)) for a in to_nm(axes))
    if abs(sy - sx) > 1e-3 * max(sy, sx):
        raise AnodemapInputError(
            f"pixels of {sy:g} nm x {sx:g} nm: anodemap features needs square pixels; "
            "resample the image, or set one pixel size with --scan-step NM"
        )
    return sy
