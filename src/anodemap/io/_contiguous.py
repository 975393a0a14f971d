"""Lazy reading of .hspy files whose data are stored contiguously (not chunked).

rosettasciio's lazy .hspy reader wraps the HDF5 dataset with ``dask.array.from_array(ds,
chunks=ds.chunks)``; a dataset written without chunking (as other software writes 4D
data) has ``chunks=None`` and dask refuses it. Here the same reader is used with the
data wrapped first, in blocks of whole rows along the first axis (contiguous storage
is in C order, so such a block is one contiguous read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["read_contiguous_hspy", "is_unchunked_error"]

# Target size of one block of a contiguous dataset (model choice: large enough that the
# per-block overhead of dask is small, small enough for several blocks per core in memory).
_BLOCK_BYTES = 64 * 2**20


def is_unchunked_error(err: BaseException) -> bool:
    """True for dask's refusal of an HDF5 dataset without chunks."""
    return isinstance(err, ValueError) and "must specify a chunks" in str(err)


def _blocks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    row = itemsize
    for n in shape[1:]:
        row *= int(n)
    rows = max(1, min(int(shape[0]), _BLOCK_BYTES // max(row, 1)))
    return (rows, *shape[1:])


def read_contiguous_hspy(path: Path) -> list[dict[str, Any]]:
    """rosettasciio's lazy .hspy reading, with unchunked datasets given blocks.

    Returns the reader's list of signal dictionaries; the file stays open for the lazy
    arrays, as rosettasciio's own lazy reading leaves it.
    """
    import dask.array as da
    import h5py
    from rsciio.hspy._api import HyperspyReader

    class _Reader(HyperspyReader):
        def _read_array(self, group: Any, dataset_key: str) -> Any:
            data = super()._read_array(group, dataset_key)
            if isinstance(data, h5py.Dataset) and data.chunks is None and data.ndim > 0:
                return da.from_array(data, chunks=_blocks(data.shape, data.dtype.itemsize))
            return data

    f = h5py.File(path, mode="r")
    try:
        return _Reader(f).read(lazy=True)
    except BaseException:
        f.close()
        raise
