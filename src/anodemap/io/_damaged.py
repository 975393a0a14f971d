"""Damaged input files found as such: chunks missing or cut short, files shorter than stated.

A damaged file must never become a silent wrong result: zarr reads a missing chunk of a
``.zspy`` as its fill value (zeros), rosettasciio's eager blockfile reader pads a ``.blo``
shorter than its header says with zeros, and a chunk cut short fails deep inside the
codec (``RuntimeError: error during blosc decompression``) in the middle of a run. Here,
when a file is opened:

- :func:`check_zspy`: the chunk files of each dataset of a ``.zspy`` against the chunk
  grid of its array (a listing of the store, no data read), and the length of each
  Blosc-compressed chunk against the length its 16-byte header states (a truncated
  chunk), or of each uncompressed chunk against the chunk's size;
- :func:`check_blockfile`: the length of a ``.blo`` against the one its header states;
- :func:`read_zspy_lazy`: rosettasciio's lazy ``.zspy`` reading, with every chunk read
  through :class:`ChunkReporting`, which turns a chunk that cannot be decoded (damaged in
  a way the checks above cannot see) into an error naming the file and the chunk.

Each finding is an :class:`~anodemap.errors.AnodemapIOError` that names the file and the
damaged part and says the file is damaged.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapIOError

__all__ = ["ChunkReporting", "check_blockfile", "check_zspy", "read_zspy_lazy"]

# Chunks named in a message, at most (the count says how many more there are).
_NAMED = 3
# What to do about a damaged file (the same advice everywhere).
_ADVICE = (
    "the file is damaged: copy it again from where it was written (or write it again); "
    "anodemap does not analyse a damaged file"
)


def _region(index: tuple[int, ...], chunks: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """The array region of a chunk, as slices (``[8:12, 4:8, :, :]``)."""
    parts = []
    for i, c, n in zip(index, chunks, shape, strict=True):
        lo, hi = i * c, min((i + 1) * c, n)
        parts.append(":" if (lo, hi) == (0, n) else f"{lo}:{hi}")
    return "[" + ", ".join(parts) + "]"


def _chunk_key(index: tuple[int, ...], separator: str) -> str:
    return separator.join(str(i) for i in index)


def _present_chunks(folder: Path, ndim: int, separator: str) -> dict[tuple[int, ...], Path]:
    """The chunk files of an array stored in ``folder``, by chunk index."""
    found: dict[tuple[int, ...], Path] = {}
    if separator == "/":
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d.isdigit()]
            rel = Path(root).relative_to(folder).parts
            if len(rel) != ndim - 1:
                continue
            for name in files:
                if name.isdigit():
                    found[tuple(int(v) for v in (*rel, name))] = Path(root) / name
    else:
        for entry in os.scandir(folder):
            parts = entry.name.split(separator)
            if entry.is_file() and len(parts) == ndim and all(p.isdigit() for p in parts):
                found[tuple(int(p) for p in parts)] = Path(entry.path)
    return found


def _cut_short(chunk: Path, meta: dict[str, Any], chunk_bytes: int) -> str | None:
    """Why a chunk file is shorter than it says (Blosc header) or than a raw chunk, or None."""
    size = chunk.stat().st_size
    compressor = meta.get("compressor") or None
    if compressor is None and not meta.get("filters"):
        return None if size == chunk_bytes else f"{size} bytes instead of {chunk_bytes}"
    if compressor is not None and compressor.get("id") == "blosc":
        with open(chunk, "rb") as f:
            head = f.read(16)
        if len(head) < 16:
            return f"{size} bytes, shorter than the 16-byte Blosc header"
        stated = int.from_bytes(head[12:16], "little")  # cbytes: the compressed length
        if stated and size < stated:
            return f"{size} bytes of the {stated} its Blosc header states"
    return None


def check_zspy(path: Path) -> None:
    """Refuse a ``.zspy`` store with a missing or truncated chunk in a signal's data.

    Parameters
    ----------
    path : Path
        The ``.zspy`` folder (a zip store is not checked).

    Raises
    ------
    AnodemapIOError
        Naming the file, the damaged chunks (key in the store and array region) and
        saying that the file is damaged.
    """
    if not path.is_dir():
        return
    for zarray in sorted(path.rglob(".zarray")):
        folder = zarray.parent
        if folder.name != "data":  # the signals' data; metadata arrays are small and spare
            continue
        try:
            meta = json.loads(zarray.read_text())
            shape = tuple(int(v) for v in meta["shape"])
            chunks = tuple(int(v) for v in meta["chunks"])
            itemsize = np.dtype(meta["dtype"]).itemsize
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not an array this check understands: the reader will say
        if not shape or 0 in shape or len(chunks) != len(shape):
            continue
        separator = meta.get("dimension_separator") or "."
        grid = tuple(math.ceil(n / c) for n, c in zip(shape, chunks, strict=True))
        present = _present_chunks(folder, len(shape), separator)
        total = math.prod(grid)
        name = folder.relative_to(path).as_posix()
        if len(present) < total:
            missing = [i for i in np.ndindex(*grid) if i not in present]
            listed = "; ".join(
                f"{name}/{_chunk_key(i, '/')} (array region {_region(i, chunks, shape)})"
                for i in missing[:_NAMED]
            )
            more = f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else ""
            raise AnodemapIOError(
                f"{path}: {len(missing)} of the {total} chunks of its data are missing: "
                f"{listed}{more}; they would read as zeros. {_ADVICE[0].upper()}{_ADVICE[1:]}"
            )
        chunk_bytes = itemsize * math.prod(chunks)
        short = []
        for index, chunk in sorted(present.items()):
            why = _cut_short(chunk, meta, chunk_bytes)
            if why:
                short.append((index, why))
        if short:
            listed = "; ".join(
                f"{name}/{_chunk_key(i, '/')} (array region {_region(i, chunks, shape)}): {why}"
                for i, why in short[:_NAMED]
            )
            more = f" and {len(short) - _NAMED} more" if len(short) > _NAMED else ""
            raise AnodemapIOError(
                f"{path}: {len(short)} chunk(s) of its data are truncated: {listed}{more}. "
                f"{_ADVICE[0].upper()}{_ADVICE[1:]}"
            )


def check_blockfile(path: Path, dicts: list[dict[str, Any]]) -> None:
    """Refuse a ``.blo`` shorter than its header states (its patterns cut off).

    rosettasciio reads the rest lazily past the end (``mmap length is greater than file
    size`` during the analysis) or, eagerly, pads it with zeros.

    Raises
    ------
    AnodemapIOError
        Naming the file, how much of it is there and that it is damaged.
    """
    for d in dicts:
        header = (d.get("original_metadata") or {}).get("blockfile_header") or {}
        try:
            ny, nx, side = (int(header[k]) for k in ("NY", "NX", "DP_SZ"))
            offset = int(header["Data_offset_2"])
        except (KeyError, TypeError, ValueError):
            continue
        record = 6 + side * side  # each pattern follows a 6-byte record header
        stated = offset + ny * nx * record
        size = path.stat().st_size
        if size < stated:
            whole = max(0, size - offset) // record
            raise AnodemapIOError(
                f"{path}: truncated: its header describes a {ny} x {nx} scan of {side} x "
                f"{side} patterns ({stated} bytes), but the file ends after {size} bytes "
                f"({whole} of the {ny * nx} patterns complete); {_ADVICE}"
            )


class ChunkReporting:
    """A zarr array whose chunks, read one by one (as dask reads them), report damage.

    A chunk that cannot be read or decoded raises an :class:`AnodemapIOError` naming the
    file, the chunk and its array region, and whether its file looks complete (a chunk
    whose bytes are corrupt) or not (cut short since the file was opened).

    Parameters
    ----------
    array : zarr.Array
    path : Path
        The ``.zspy`` store (absolute: a cluster's worker looks there for the chunk).
    shown : str, optional
        The store as the user named it, for messages (default ``path``).
    """

    def __init__(self, array: Any, path: Path, shown: str | None = None) -> None:
        self._array = array
        self._path = Path(path)
        self._shown = shown or str(path)
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self.chunks = tuple(array.chunks)
        self.ndim = len(self.shape)

    def __dask_tokenize__(self) -> Any:
        return ("anodemap.ChunkReporting", str(self._path), self._array.path, self.shape)

    def __getitem__(self, index: Any) -> Any:
        try:
            return self._array[index]
        except MemoryError:
            raise
        except Exception as err:
            raise AnodemapIOError(self._message(index, err)) from err

    def _message(self, index: Any, err: BaseException) -> str:
        what = f"({type(err).__name__}: {err})"
        try:  # dask reads one chunk per call, as a tuple of slices
            keys = index if isinstance(index, tuple) else (index,)
            starts = [(k.start or 0) if isinstance(k, slice) else int(k) for k in keys]
            starts += [0] * (self.ndim - len(starts))
            chunk = tuple(s // c for s, c in zip(starts, self.chunks, strict=True))
        except (TypeError, ValueError):
            return f"{self._shown}: a chunk of its data cannot be read {what}; {_ADVICE}"
        separator = getattr(self._array, "_dimension_separator", None) or "."
        key = f"{self._array.path}/{_chunk_key(chunk, separator)}"
        looks = (
            "its file is missing"
            if not (self._path / key).exists()
            else "its file is there, so its bytes are corrupt"
        )
        return (
            f"{self._shown}: the chunk {key} (array region "
            f"{_region(chunk, self.chunks, self.shape)}) cannot be read {what}; {looks}: "
            f"{_ADVICE}"
        )


def read_zspy_lazy(path: Path, shown: str | None = None) -> list[dict[str, Any]]:
    """rosettasciio's lazy ``.zspy`` reading, every signal's data read through
    :class:`ChunkReporting`; opened read-only (rosettasciio opens read-write).

    ``path`` is where to read (absolute, for a cluster), ``shown`` the name in messages.
    """
    import zarr
    from rsciio.zspy._api import ZspyReader

    class _Reader(ZspyReader):
        def _read_array(self, group: Any, dataset_key: str) -> Any:
            data = super()._read_array(group, dataset_key)
            if dataset_key == "data" and isinstance(data, zarr.Array):
                return ChunkReporting(data, path, shown)
            return data

    return _Reader(zarr.open(str(path), mode="r")).read(lazy=True)
