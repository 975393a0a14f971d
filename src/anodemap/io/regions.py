"""Region label maps: which scan positions belong to which user region (``--regions``).

A region map holds one value per scan position: 0 in no region, each other value a
region, named by its value, or by the map's legend where it has one (a map written by
anodemap, e.g. ``anodemap correlate``'s feature classes: :func:`region_names`). The analyses that average or compare regions (diffraction,
pair distribution functions) read it through :func:`load_regions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError, AnodemapIOError

__all__ = ["check_regions", "inside", "load_regions", "region_names"]


def load_regions(path: Any, nav_shape: tuple[int, ...]) -> np.ndarray:
    """Read a region label map (``--regions FILE``) from a file.

    ``.npy``; ``.png``, ``.bmp``, ``.gif`` (grey levels, or the palette indices of an
    indexed image); or a map rosettasciio reads (``.hspy``, ``.zspy``, ``.tif``, ...). One
    value per scan position: 0 in no region, each other value a region (named by its
    value). A colour image is refused unless its three channels are equal.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = pathlib.Path(d) / "r.npy"
    ...     np.save(f, np.array([[0, 1], [2, 2]]))
    ...     load_regions(f, (2, 2)).tolist()
    [[0, 1], [2, 2]]
    """
    path = Path(path)
    if not path.is_file():
        raise AnodemapIOError(f"{path}: region file not found (--regions FILE)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".png", ".bmp", ".gif"):
            arr = _grey_image(path)
        else:
            from anodemap.io import load

            arr = np.asarray(load(path).data)
    except AnodemapInputError:
        raise
    except (OSError, ValueError) as exc:
        raise AnodemapIOError(f"{path}: cannot read the region map ({exc})") from exc
    if arr.dtype.names:  # rosettasciio's RGB(A): grey only if its colour channels agree
        channels = [arr[n].astype(np.int64) for n in arr.dtype.names if n.upper() in "RGB"]
        if not channels or any(np.any(c != channels[0]) for c in channels[1:]):
            raise AnodemapInputError(f"{path}: {_COLOUR_REGIONS}")
        arr = channels[0]
    try:
        return check_regions(arr, tuple(int(v) for v in nav_shape))
    except AnodemapInputError as exc:
        raise AnodemapInputError(f"{path}: {exc}") from exc


def region_names(path: Any) -> dict[int, str]:
    """The names of the values of a region map that carries a legend (``Signal.legend``
    of an ``.hspy``/``.zspy`` written by anodemap: value -> name), else ``{}``.

    A value named ``outside ...`` (positions the map does not cover) is named so that
    :func:`anodemap.io.regions.inside` can drop it.

    Examples
    --------
    >>> region_names("regions.png")
    {}
    """
    path = Path(path)
    if path.suffix.lower() not in (".hspy", ".zspy", ".hdf5", ".h5"):
        return {}
    from anodemap.io import load

    try:
        legend = load(path, lazy=True).get_meta("Signal.legend", None)
    except (OSError, ValueError, AnodemapInputError):
        return {}
    if not isinstance(legend, dict):
        return {}
    names = {}
    for key, name in legend.items():
        try:
            names[int(key)] = str(name)
        except (TypeError, ValueError):
            continue
    return names


def inside(regions: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """``regions`` with the values its legend names ``outside ...`` set to 0 (in no
    region).

    Examples
    --------
    >>> inside(np.array([[1, 255]]), {1: "grey", 255: "outside the survey"}).tolist()
    [[1, 0]]
    """
    out = np.asarray(regions).copy()
    for value, name in names.items():
        if name.lower().startswith("outside"):
            out[out == value] = 0
    return out


_COLOUR_REGIONS = (
    "a colour image; save the regions as grey levels or as an indexed (palette) image "
    "(0: in no region, any other value: a region)"
)


def _grey_image(path: Any) -> np.ndarray:
    """Grey levels or palette indices of an 8/16-bit image (Pillow, matplotlib's own)."""
    from PIL import Image

    with Image.open(path) as img:
        if img.mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr"):
            rgb = np.asarray(img.convert("RGB")).astype(np.int64)
            if np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 0] != rgb[..., 2]):
                raise AnodemapInputError(f"{path}: {_COLOUR_REGIONS}")
            return rgb[..., 0]
        return np.asarray(img).astype(np.int64)  # L, I, I;16, P (palette indices), 1


def check_regions(regions: Any, nav_shape: tuple[int, ...]) -> np.ndarray:
    """A region label map as int64 (0: in no region, other values: regions), or a clear
    error.

    Examples
    --------
    >>> check_regions([[True, False]], (1, 2)).tolist()
    [[1, 0]]
    """
    arr = np.asarray(regions)
    if arr.ndim == 1 and len(nav_shape) == 2 and arr.size == nav_shape[0] * nav_shape[1]:
        arr = arr.reshape(nav_shape)
    if tuple(arr.shape) != tuple(nav_shape):
        raise AnodemapInputError(
            f"region map of shape {tuple(arr.shape)}: the scan is {tuple(nav_shape)}"
        )
    if arr.dtype == bool:
        arr = arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise AnodemapInputError("region map: expected integer labels (0: in no region)")
    if np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise AnodemapInputError(
            "region map: labels must be whole numbers >= 0 (0: in no region, 1, 2, ...: regions)"
        )
    arr = arr.astype(np.int64)
    if not arr.any():
        raise AnodemapInputError("region map: no scan position is in a region (all 0)")
    return arr
