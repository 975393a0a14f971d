"""Scribbles: a few pixels of each class marked by hand, for the trainable mode.

A scribble map holds one value per pixel of the image: 0 where nothing is marked and
the class code + 1 elsewhere (1 pore, 2 bright, 3 grey, 4 dendrite-like, 5 boundary:
:mod:`anodemap.features.classes`). It is read from ``.npy``, an 8- or 16-bit grey or
palette image (``.png``, ``.bmp``, ``.gif``, ``.tif``) or any map rosettasciio reads
(``.hspy``, ...), e.g. painted in Fiji or napari over the image.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     f = pathlib.Path(d) / "s.npy"
...     np.save(f, np.array([[0, 1], [3, 0]]))
...     read_scribbles(f, (2, 2)).tolist()
[[0, 1], [3, 0]]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.features.classes import CLASS_NAMES, CLASSES

__all__ = ["OPTION", "read_scribbles", "scribble_legend"]

OPTION = "--training"


def scribble_legend() -> str:
    """The values of a scribble map, in words."""
    return ", ".join(f"{c + 1} {CLASS_NAMES[c]}" for c in CLASSES)


def _fail(path: Path, why: str, error: type = AnodemapInputError) -> Exception:
    return error(f"{OPTION} {path}: {why}")


def _read_array(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix in (".png", ".bmp", ".gif", ".tif", ".tiff"):
        from PIL import Image

        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I", "I;16", "I;16B", "1"):
                raise _fail(
                    path,
                    f"a {img.mode} colour image; save the scribbles as grey levels or a "
                    f"palette image ({scribble_legend()}; 0 unmarked)",
                )
            return np.asarray(img).astype(np.int64)
    from anodemap.io import load

    return np.asarray(load(path).data)


def read_scribbles(path: Any, shape: tuple[int, int]) -> np.ndarray:
    """The scribble map of ``path`` for an image of ``shape``, checked.

    Raises
    ------
    AnodemapIOError
        The file is missing or cannot be read (the message names ``--training``).
    AnodemapInputError
        Its shape is not the image's, its values are not 0-5, or no class is marked
        twice... (each message names ``--training`` and says what to do).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(
            path, "no such file (give a scribble map: .npy, .png, .tif or .hspy)", AnodemapIOError
        )
    try:
        arr = _read_array(path)
    except AnodemapInputError:
        raise
    except Exception as err:  # numpy, Pillow and the readers raise their own kinds
        raise _fail(
            path,
            f"cannot be read as a scribble map ({type(err).__name__}: {err})",
            AnodemapIOError,
        ) from err
    arr = np.squeeze(arr)
    if arr.dtype.names or arr.ndim != 2:
        raise _fail(path, f"a {arr.ndim}-D array, not a map of one value per pixel")
    if tuple(arr.shape) != tuple(shape):
        raise _fail(
            path,
            f"{arr.shape[0]} x {arr.shape[1]} pixels, but the image is {shape[0]} x "
            f"{shape[1]}; paint the scribbles on this image",
        )
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise _fail(path, "values must be whole numbers 0-5")
    bad = (arr < 0) | (arr > len(CLASSES)) | (arr != np.round(arr))
    if bad.any():
        raise _fail(
            path,
            f"holds values other than 0-5 (e.g. {arr[bad].flat[0]:g}): 0 unmarked, "
            f"{scribble_legend()}",
        )
    arr = arr.astype(np.int64)
    marked = np.unique(arr[arr > 0])
    if marked.size < 2:
        raise _fail(
            path,
            f"marks {marked.size} class{'es' if marked.size != 1 else ''}; mark at least "
            f"two ({scribble_legend()}; 0 unmarked)",
        )
    return arr
