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
import re
import warnings
from pathlib import Path
from typing import Any

from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io._contiguous import is_unchunked_error, read_contiguous_hspy
from anodemap.io._damaged import check_blockfile, check_zspy, read_zspy_lazy
from anodemap.io._hyperspy_rules import dataset_from_reader
from anodemap.io.atomic import atomic_path
from anodemap.io.dataset import Dataset
from anodemap.io.kinds import Kind, describe

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
    return _plugins_for(path, write)[0]


def _plugins_for(path: Path, write: bool = False) -> list[dict[str, Any]]:
    """The rosettasciio plugins for a file's extension, the likeliest first.

    As HyperSpy chooses: a plugin named like the extension first (``.mrc``: MRC, not
    MRCZ, which needs the mrcz package), then one whose main extension it is.
    """
    ext = path.suffix.lower().lstrip(".")
    if not ext:
        raise AnodemapIOError(
            f"{path}: no file extension, so the format is unknown; rename the file with the "
            "extension of its format (e.g. .dm4, .hspy, .msa)"
        )
    found = []
    for p in _plugins():
        exts = [e.lower() for e in p["file_extensions"]]
        if ext in exts and not (write and not p.get("writes")):
            main = exts[p["default_extension"]] if isinstance(p["default_extension"], int) else ""
            found.append((p["name"].lower() != ext, main != ext, p))
    if not found:
        known = ", ".join(sorted(supported_extensions(write)))
        verb = "write" if write else "read"
        raise AnodemapIOError(f"{path}: cannot {verb} '.{ext}' files; formats known: {known}")
    found.sort(key=lambda t: t[:2])  # stable: rosettasciio's order among equals
    return [p for *_, p in found]


# pip names of packages that readers import under another name
_PIP_NAMES = {"skimage": "scikit-image", "PIL": "pillow", "yaml": "pyyaml"}


def _missing_package(err: ImportError) -> str:
    """The name of the package an ImportError says is missing."""
    name = getattr(err, "name", None)
    if not name:
        m = re.search(r"'([A-Za-z0-9_.\-]+)'", str(err))
        name = m.group(1) if m else str(err)
    return name.split(".")[0]


def _read(
    plugin: dict[str, Any], path: Path, lazy: bool, kwargs: dict[str, Any], shown: str = ""
) -> list:
    if lazy and plugin["name"] == "ZSPY" and path.is_dir() and not kwargs:
        return read_zspy_lazy(path, shown)  # a damaged chunk reported as such when read
    reader = importlib.import_module(plugin["api"]).file_reader
    try:
        return reader(str(path), lazy=lazy, **kwargs)
    except NotImplementedError:
        if not lazy:
            raise
        # formats without a lazy reader (e.g. MSA): read eagerly, they are small
        return reader(str(path), lazy=False, **kwargs)
    except ValueError as err:
        if lazy and plugin["name"] == "HSPY" and is_unchunked_error(err):
            return read_contiguous_hspy(path)
        raise


def load_all(path: str | os.PathLike, *, lazy: bool = False, **reader_kwargs: Any) -> list[Dataset]:
    """Read every signal in a file, as HyperSpy shows them.

    The reader's dictionaries are finished as HyperSpy finishes them (signal axes,
    post-processing such as the Gatan DM spectrum-image transpose, metadata mapping:
    :mod:`anodemap.io._hyperspy_rules`), so shapes, axes and units are HyperSpy's.

    Parameters
    ----------
    path : str or path-like
        Any file rosettasciio reads (.dm3, .dm4, .msa, .hspy, .zspy, .emd, .blo, ...).
    lazy : bool
        Keep the data as dask arrays (read chunk by chunk when computed). Formats whose
        rosettasciio reader has no lazy mode (e.g. MSA) are read eagerly; an .hspy whose
        data are stored without chunks is read in blocks of rows.
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
        The format is unknown, a package its reader needs is not installed (named), the
        file cannot be read (permissions), or it is damaged: truncated, or a ``.zspy`` with
        chunks missing or cut short (:mod:`anodemap.io._damaged`; zarr would read a
        missing chunk as zeros). Lazy data read later report a chunk that cannot be
        decoded with the same kind of message.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    plugins = _plugins_for(path)
    if not os.access(path, os.R_OK):
        raise AnodemapIOError(f"{path}: cannot be read (permission denied)")
    if path.is_file() and path.stat().st_size == 0:
        raise AnodemapIOError(f"{path}: the file is empty")
    # read by its absolute path: lazy data keep it, and a dask cluster's workers, whose
    # working folder is not the caller's, open it again from there
    where = Path(os.path.abspath(path))
    if any(p["name"] == "ZSPY" for p in plugins):
        check_zspy(path)  # before reading: an eager read would fail in the codec
    failures = []
    dicts = None
    for plugin in plugins:
        try:
            dicts = _read(plugin, where, lazy, reader_kwargs, str(path))
            break
        except ImportError as err:
            name = _missing_package(err)
            raise AnodemapIOError(
                f"{path}: reading {plugin['name']} files like this one needs the Python "
                f"package '{name}', which is not installed; install it (pip install "
                f"{_PIP_NAMES.get(name, name)}) and run the command again"
            ) from err
        except AnodemapIOError:
            raise
        except Exception as err:  # readers raise anything from struct.error to KeyError
            failures.append((plugin, err))
    if dicts is None:
        plugin, err = failures[0]
        tried = (
            ""
            if len(failures) == 1
            else (" (also tried as " + ", ".join(p["name"] for p, _ in failures[1:]) + ")")
        )
        raise AnodemapIOError(
            f"{path}: could not be read as {plugin['name']}{tried} "
            f"({type(err).__name__}: {err}); the file may be truncated or corrupt"
        ) from err
    if not dicts:
        raise AnodemapIOError(f"{path}: the {plugin['name']} reader found no data in the file")
    if plugin["name"] == "Blockfile":
        check_blockfile(path, dicts)
    out = []
    for d in dicts:
        try:
            ds = dataset_from_reader(d)
        except AnodemapIOError as err:
            raise AnodemapIOError(f"{path}: {err}") from err
        if not ds.get_meta("General.original_filename"):
            ds.set_meta("General.original_filename", path.name)
        out.append(ds)
    return out


def load(
    path: str | os.PathLike,
    *,
    lazy: bool = False,
    signal: int | str | None = None,
    kind: Kind | None = None,
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
    signal : int or str, optional
        Which signal of a file that holds several: its number in the file (0, 1, ...)
        or its title (``--signal`` on the command line).
    kind : callable, optional
        What the caller needs (:mod:`anodemap.io.kinds`, e.g. ``kinds.lowloss_eels``):
        of a file's signals the one of this kind is chosen when there is exactly one,
        and a signal of another kind is refused with a sentence that says what it is.
    index : int, optional
        Same as an integer ``signal`` (kept for older callers).
    signal_type : str, optional
        Choose the signal whose ``Signal.signal_type`` matches (e.g. ``"EELS"``) when a
        file holds several and no signal is named.

    Returns
    -------
    Dataset

    Raises
    ------
    AnodemapIOError
        Several signals and no way to choose (the message lists them and names
        ``--signal``), or a named signal that is not in the file.
    AnodemapInputError
        The signal is not of the ``kind`` asked for (the message says what it is).

    Examples
    --------
    >>> from anodemap.io import kinds
    >>> ds = load("spectrum_image.dm4", lazy=True, kind=kinds.lowloss_eels)  # doctest: +SKIP
    >>> haadf = load("test_TEM.bcf", signal="HAADF")  # doctest: +SKIP
    """
    items = load_all(path, lazy=lazy, **reader_kwargs)
    if signal is None and index is not None:
        signal = index
    if signal is not None:
        chosen = _named_signal(path, items, signal)
    elif len(items) == 1:
        chosen = items[0]
    else:
        chosen = _choose(path, items, kind, signal_type)
    if kind is not None:
        why = kind(chosen)
        if why is not None:
            raise AnodemapInputError(f"{path}: {why}")
    return chosen


def _listing(items: list[Dataset]) -> str:
    return "; ".join(
        f"[{i}] {ds.title or '(untitled)'}: {describe(ds)}" for i, ds in enumerate(items)
    )


def _named_signal(path: Any, items: list[Dataset], signal: int | str) -> Dataset:
    key = str(signal).strip()
    if key.lstrip("-").isdigit():
        i = int(key)
        if -len(items) <= i < len(items):
            return items[i]
    else:
        match = [ds for ds in items if ds.title.strip().lower() == key.lower()]
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            raise AnodemapIOError(
                f"{path}: {len(match)} signals are titled '{key}' ({_listing(items)}); "
                "choose one by number with --signal N"
            )
    raise AnodemapIOError(
        f"{path}: has no signal '{key}'; it holds {len(items)}: {_listing(items)}. "
        "Choose one with --signal N (its number) or --signal TITLE"
    )


def _choose(path: Any, items: list[Dataset], kind: Kind | None, signal_type: str | None) -> Dataset:
    if kind is not None:
        fits = [ds for ds in items if kind(ds) is None]
        if len(fits) == 1:
            return fits[0]
        if not fits:
            needs = getattr(kind, "needs", "the command needs another kind of data")
            raise AnodemapInputError(
                f"{path}: {needs}; none of its {len(items)} signals is one ({_listing(items)})"
            )
        items_listed = [i for i, ds in enumerate(items) if kind(ds) is None]
    else:
        items_listed = list(range(len(items)))
    if signal_type is not None:
        match = [i for i in items_listed if items[i].signal_type.upper() == signal_type.upper()]
        if len(match) == 1:
            return items[match[0]]
    raise AnodemapIOError(
        f"{path}: holds {len(items)} signals ({_listing(items)}); choose one with "
        f"--signal N (its number) or --signal TITLE"
    )


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
        raise AnodemapIOError(f"{path}: exists, and is kept (overwrite=False)")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = importlib.import_module(plugin["api"]).file_writer
    kwargs: dict[str, Any] = {}
    if plugin["name"] in ("HSPY", "ZSPY"):
        kwargs["show_progressbar"] = False
    kwargs.update(writer_options or {})
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            # rosettasciio's .zspy store class, deprecated by zarr 2.18 for zarr 3: not
            # the user's to act on (the file is the standard nested layout)
            warnings.filterwarnings(
                "ignore", "The NestedDirectoryStore is deprecated", FutureWarning
            )
            writer(str(tmp), dataset.to_dict(), **kwargs)
    except Exception as err:
        if isinstance(err, AnodemapIOError):
            raise
        raise AnodemapIOError(
            f"{path}: could not be written ({type(err).__name__}: {err})"
        ) from err
    return path
