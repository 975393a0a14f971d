"""Result files shared by the analyses: per-pixel maps as datasets, JSON summaries.

Examples
--------
>>> import numpy as np
>>> from anodemap.io import Axis
>>> ds = map_dataset(np.zeros((2, 3)), [Axis("y", 2, 5.0, units="nm"), Axis("x", 3, 5.0, units="nm")], "t/λ", "")
>>> [a.navigate for a in ds.axes], ds.data.shape
([False, False], (2, 3))
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.io.atomic import atomic_path
from anodemap.io.dataset import Axis, Dataset

__all__ = ["map_dataset", "write_json", "write_text"]


def write_json(data: Any, path: str | os.PathLike) -> Path:
    """Write JSON atomically: under a temporary name unique to this process and call,
    then renamed, so that two writers never rename each other's files.

    In an output folder that this process holds (:func:`anodemap.io.outdir.output_folder`)
    the file is recorded as this run's.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> p = write_json({"n": np.int64(3)}, pathlib.Path(tempfile.mkdtemp()) / "s.json")
    >>> json.loads(p.read_text())
    {'n': 3}
    """
    return write_text(json.dumps(data, indent=2, default=_json_default) + "\n", path)


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` (UTF-8) atomically: under a temporary name unique to this process
    and call, then renamed; recorded as this run's in an output folder this process
    holds (:func:`anodemap.io.outdir.claim`). The one atomic text writer of anodemap.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> write_text("a,b\\n", pathlib.Path(tempfile.mkdtemp()) / "t.csv").read_text()
    'a,b\\n'
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def map_dataset(values: np.ndarray, nav_axes: list[Axis], title: str, units: str) -> Dataset:
    """A per-pixel map as a Dataset whose scan axes become its signal axes.

    A 2-D map opens in HyperSpy as a Signal2D image, a line-scan profile as a
    Signal1D; a single spectrum's value is stored as a one-point profile.
    """
    values = np.asarray(values)
    if values.ndim == 0:
        values = values[None]
        axes = [Axis("pixel", 1, navigate=False)]
    else:
        axes = [
            Axis(a.name, a.size, a.scale, a.offset, a.units, navigate=False, values_=a.values_)
            for a in nav_axes
        ]
    ds = Dataset(values, axes)
    ds.set_meta("General.title", title)
    ds.set_meta("Signal.quantity", f"{title} ({units})" if units else title)
    return ds
