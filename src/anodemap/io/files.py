"""Reading and writing files, through rosettasciio for every format it knows.

Reading gives :class:`~anodemap.io.Dataset` objects that keep the calibrated
axes and the metadata; ``lazy=True`` keeps the data as a dask array that is read
chunk by chunk when computed. Writing ``.hspy``/``.zspy`` is atomic: the file is
written under a temporary name beside the target and renamed when complete, so
an interrupted run never leaves a half-written file that looks complete.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from anodemap.io import Dataset, load, save
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ramp.hspy"
>>> save(Dataset(np.arange(12.0).reshape(3, 4)), path)
PosixPath('...ramp.hspy')
>>> load(path).data.shape
(3, 4)
"""

from __future__ import annotations

import importlib
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

from anodemap.errors import AnodemapIOError
from anodemap.io.dataset import Dataset

__all__ = ["load", "load_all", "save", "supported_extensions"]


def _plugins() -> list[dict[str, Any]]:
    from rsciio import IO_PLUGINS

    return IO_PLUGINS


def supported_extensions(write: bool = False) -> dict[str, str]:
    """Map of file extension (lower case, no dot) to rosettasciio plugin name.

    Parameters
    ----------
    write : bool
        Only formats that rosettasciio can write.
    """
    out: dict[str, str] = {}
    for p in _plugins():
        if write and not p.get("writes"):
            continue
        for ext in p["file_extensions"]:
            out.setdefault(ext.lower(), p["name"])
    return out


def _plugin_for(path: Path, write: bool = False) -> dict[str, Any]:
    ext = path.suffix.lower().lstrip(".")
    if not ext:
        raise AnodemapIOError(
            f"{path}: no file extension, so the format is unknown; rename the file with the "
            "extension of its format (e.g. .dm4, .hspy, .msa)"
        )
    for p in _plugins():
        if ext in (e.lower() for e in p["file_extensions"]):
            if write and not p.get("writes"):
                continue
            return p
    known = ", ".join(sorted(supported_extensions(write)))
    verb = "write" if write else "read"
    raise AnodemapIOError(f"{path}: cannot {verb} '.{ext}' files; formats known: {known}")


def load_all(path: str | os.PathLike, *, lazy: bool = False, **reader_kwargs: Any) -> list[Dataset]:
    """Read every signal in a file.

    Parameters
    ----------
    path : str or path-like
        Any file rosettasciio reads (.dm3, .dm4, .msa, .hspy, .zspy, .emd, .blo, ...).
    lazy : bool
        Keep the data as dask arrays (read chunk by chunk when computed). Formats whose
        rosettasciio reader has no lazy mode (e.g. MSA) are read eagerly.
    **reader_kwargs
        Passed on to the rosettasciio reader (e.g. ``scan_shape`` for TVIPS).

    Returns
    -------
    list of Dataset

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    AnodemapIOError
        The format is unknown, or the file is truncated or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    plugin = _plugin_for(path)
    if path.is_file() and path.stat().st_size == 0:
        raise AnodemapIOError(f"{path}: the file is empty")
    reader = importlib.import_module(plugin["api"]).file_reader
    try:
        try:
            dicts = reader(str(path), lazy=lazy, **reader_kwargs)
        except NotImplementedError:
            if not lazy:
                raise
            # formats without a lazy reader (e.g. MSA): read eagerly, they are small
            dicts = reader(str(path), lazy=False, **reader_kwargs)
    except Exception as err:  # readers raise anything from struct.error to KeyError
        raise AnodemapIOError(
            f"{path}: could not be read as {plugin['name']} "
            f"({type(err).__name__}: {err}); the file may be truncated or corrupt"
        ) from err
    if not dicts:
        raise AnodemapIOError(f"{path}: the {plugin['name']} reader found no data in the file")
    out = []
    for d in dicts:
        ds = Dataset.from_dict(d)
        if not ds.get_meta("General.original_filename"):
            ds.set_meta("General.original_filename", path.name)
        out.append(ds)
    return out


def load(
    path: str | os.PathLike,
    *,
    lazy: bool = False,
    index: int | None = None,
    signal_type: str | None = None,
    **reader_kwargs: Any,
) -> Dataset:
    """Read one signal from a file.

    Parameters
    ----------
    path : str or path-like
        Any file rosettasciio reads.
    lazy : bool
        Keep the data as a dask array.
    index : int, optional
        Which signal, for files that hold several.
    signal_type : str, optional
        Choose the signal whose ``Signal.signal_type`` matches (e.g. ``"EELS"``) when a
        file holds several and ``index`` is not given.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load("spectrum_image.dm4", lazy=True)  # doctest: +SKIP
    """
    items = load_all(path, lazy=lazy, **reader_kwargs)
    if index is not None:
        if not -len(items) <= index < len(items):
            raise AnodemapIOError(
                f"{path}: holds {len(items)} signals; index {index} is out of range"
            )
        return items[index]
    if len(items) == 1:
        return items[0]
    if signal_type is not None:
        match = [ds for ds in items if ds.signal_type.upper() == signal_type.upper()]
        if len(match) == 1:
            return match[0]
    listing = "; ".join(
        f"[{i}] {ds.title or '(untitled)'} {tuple(ds.data.shape)} {ds.signal_type or ''}".strip()
        for i, ds in enumerate(items)
    )
    raise AnodemapIOError(f"{path}: holds {len(items)} signals ({listing}); choose one with index=")


def save(
    dataset: Dataset,
    path: str | os.PathLike,
    *,
    overwrite: bool = True,
    writer_options: dict[str, Any] | None = None,
) -> Path:
    """Write a dataset atomically; the format follows the extension (.hspy, .zspy, ...).

    The file is first written under a hidden temporary name in the same folder and
    renamed to ``path`` only when complete.

    Parameters
    ----------
    dataset : Dataset
    path : str or path-like
    overwrite : bool
        Replace an existing file.
    writer_options : dict, optional
        Passed to rosettasciio's writer of the format, e.g. ``{"compression": None}``
        for an uncompressed .hspy (rosettasciio's default there is gzip, which costs
        more to read than the analysis of a low-loss spectrum image).

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    plugin = _plugin_for(path, write=True)
    if path.exists() and not overwrite:
        raise AnodemapIOError(f"{path}: exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
    writer = importlib.import_module(plugin["api"]).file_writer
    kwargs: dict[str, Any] = {}
    if plugin["name"] in ("HSPY", "ZSPY"):
        kwargs["show_progressbar"] = False
    kwargs.update(writer_options or {})
    try:
        with warnings.catch_warnings():
            # rosettasciio's .zspy store class, deprecated by zarr 2.18 for zarr 3: not
            # the user's to act on (the file is the standard nested layout)
            warnings.filterwarnings(
                "ignore", "The NestedDirectoryStore is deprecated", FutureWarning
            )
            writer(str(tmp), dataset.to_dict(), **kwargs)
        _replace(tmp, path)
    except Exception as err:
        _remove(tmp)
        if isinstance(err, AnodemapIOError):
            raise
        raise AnodemapIOError(
            f"{path}: could not be written ({type(err).__name__}: {err})"
        ) from err
    return path


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()


def _replace(tmp: Path, path: Path) -> None:
    """Rename tmp onto path; directories (.zspy stores) go through a backup name."""
    if tmp.is_dir() and path.exists():
        backup = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(path, backup)
        os.replace(tmp, path)
        _remove(backup)
    else:
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
