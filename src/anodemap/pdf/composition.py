"""The composition of each PDF region from a Li/Si map of the same scan (``--li-si-map``).

``anodemap eels`` writes ``li_si_ratio.hspy`` (Li per Si at every scan position) and
``li_si_status.hspy`` (0 where the value is given, a reason code elsewhere). A PDF region's
composition is then Si:1 Li:x with x the mean Li/Si over the region's patterns whose
status is 0 (and whose value is finite); how many those are is recorded. The map must be
of the same scan grid as the diffraction scan (the EELS and SPED scans of one area at the
same step, as in the simulated study): its shape must equal the scan's and, where both
axes are calibrated in a length unit, its step must agree to 1 %.

Examples
--------
>>> import numpy as np
>>> li = LiSiMap(np.array([[1.0, 3.0], [np.nan, 2.0]]), np.array([[True, True], [True, False]]),
...              "li_si_ratio.hspy")
>>> li.region_mean(np.ones((2, 2), bool))
(2.0, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError

__all__ = ["LiSiMap", "read_li_si_map"]

_VALUE = "li_si_ratio.hspy"
_STATUS = "li_si_status.hspy"
#: Relative difference of scan steps accepted as "the same grid" (model choice: 1 %).
_STEP_TOLERANCE = 0.01


@dataclass(frozen=True)
class LiSiMap:
    """Li per Si at every scan position and which values are valid.

    Attributes
    ----------
    values : ndarray (ny, nx)
        Li/Si.
    valid : ndarray of bool (ny, nx)
        Status 0 (Li/Si given) and a finite value.
    source : str
        The file read.
    """

    values: np.ndarray
    valid: np.ndarray
    source: str

    def region_mean(self, pixels: np.ndarray) -> tuple[float | None, int]:
        """Mean Li/Si over the valid values of ``pixels`` and how many they are.

        Returns ``(None, 0)`` when none of them has a value.
        """
        ok = pixels & self.valid & np.isfinite(self.values)
        n = int(ok.sum())
        return (float(np.mean(self.values[ok])), n) if n else (None, 0)


def _steps_nm(axes: Any) -> list[float | None]:
    """Each axis's step in nm, None where it is not a length."""
    from anodemap.features.calibration import to_nm

    return [abs(a.scale) if a.units == "nm" else None for a in to_nm(list(axes))]


def read_li_si_map(path: str | Path, nav_shape: tuple[int, ...], nav_axes: Any = None) -> LiSiMap:
    """Read ``--li-si-map``: an ``anodemap eels`` result folder or its ``li_si_ratio.hspy``.

    Parameters
    ----------
    path : path-like
        The folder (``li_si_ratio.hspy`` and ``li_si_status.hspy`` in it) or the map file
        (its ``li_si_status.hspy`` beside it is used when present; otherwise every finite
        value counts as valid).
    nav_shape : tuple of int
        The diffraction scan's shape (ny, nx).
    nav_axes : sequence of Axis, optional
        The diffraction scan's navigation axes, to check the step.

    Returns
    -------
    LiSiMap

    Raises
    ------
    AnodemapInputError
        Missing file, or a map of another grid (one line naming ``--li-si-map``).
    """
    from anodemap.io import load

    path = Path(path)
    value_file = path / _VALUE if path.is_dir() else path
    if not value_file.is_file():
        raise AnodemapInputError(
            f"--li-si-map {path}: no {_VALUE} there; give the folder anodemap eels wrote "
            "or its li_si_ratio.hspy"
        )
    try:
        ds = load(value_file)
    except (OSError, ValueError) as err:
        raise AnodemapInputError(f"--li-si-map {value_file}: cannot read it ({err})") from None
    values = np.asarray(ds.data, dtype=np.float64)
    shape = tuple(int(v) for v in nav_shape)
    if values.shape != shape:
        raise AnodemapInputError(
            f"--li-si-map {value_file}: a {values.shape[0] if values.ndim else 0} x "
            f"{values.shape[-1] if values.ndim else 0} map, but the diffraction scan is "
            f"{shape[0]} x {shape[-1]}: give the Li/Si map of the same scan grid"
        )
    if nav_axes is not None:
        mine, theirs = _steps_nm(ds.axes[: values.ndim]), _steps_nm(nav_axes)
        for a, b in zip(mine, theirs, strict=False):
            if a and b and abs(a - b) > _STEP_TOLERANCE * max(a, b):
                raise AnodemapInputError(
                    f"--li-si-map {value_file}: scan step {a:g} nm, but the diffraction "
                    f"scan's is {b:g} nm: give the Li/Si map of the same scan grid"
                )
    status_file = value_file.with_name(_STATUS)
    valid = np.isfinite(values)
    if status_file.is_file():
        status = np.asarray(load(status_file).data)
        if status.shape == values.shape:
            valid &= status == 0
    return LiSiMap(values, valid, str(value_file))
