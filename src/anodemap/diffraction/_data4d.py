"""What the direct-beam, virtual-image and averaging functions share about their input.

The array behind a :class:`~anodemap.io.Dataset` (:func:`data_array`), the reciprocal
calibration of its patterns (:func:`resolve_calibration`), the scan rows per chunk of the
execution layer (:func:`chunk_rows`) and the patterns per batch inside a kernel
(:func:`batch_size`): what :mod:`anodemap.diffraction.beam`,
:mod:`anodemap.diffraction.virtual` and :mod:`anodemap.diffraction.averaging` all need,
kept below the three so that none of them imports another for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anodemap._compute import default_rows_per_chunk, usable_cores
from anodemap.diffraction.calibration import ReciprocalCalibration, reciprocal_calibration
from anodemap.errors import AnodemapInputError
from anodemap.io import Dataset

__all__ = ["batch_size", "chunk_rows", "data_array", "resolve_calibration"]


# Working-array budget inside a kernel, in float64 elements (model choice: 4 Mi elements =
# 32 MiB per temporary keeps a worker's peak memory small whatever the chunk size).
_BATCH_ELEMENTS = 4 * 2**20


def data_array(data: Any) -> Any:
    """The array of a :class:`~anodemap.io.Dataset`; any other input as it is."""
    return data.data if isinstance(data, Dataset) else data


def resolve_calibration(data: Any, calibration: Any) -> ReciprocalCalibration:
    """The ``calibration`` given (1/Å per pixel, one or (ky, kx)), else the Dataset's."""
    if isinstance(calibration, ReciprocalCalibration):
        return calibration
    if calibration is not None:
        sc = np.broadcast_to(np.asarray(calibration, dtype=float), (2,))
        if not np.all(np.isfinite(sc)) or np.any(sc <= 0):
            raise AnodemapInputError(f"calibration={calibration!r}: must be positive 1/Å per px")
        return ReciprocalCalibration((float(sc[0]), float(sc[1])), "given (1/Å per px)")
    if isinstance(data, Dataset):
        return reciprocal_calibration(data)
    raise AnodemapInputError(
        "the pattern is an array without a calibration; pass calibration=<1/Å per pixel> "
        "(or a ReciprocalCalibration), or a Dataset with calibrated signal axes"
    )


def chunk_rows(arr: Any, rows_per_chunk: int | None) -> int | None:
    """Scan rows per chunk: for a lazy input, rows that do not cut the chunks it already
    has; for one in memory, enough chunks to keep every core busy.

    A chunk boundary of the execution layer that falls inside a file's chunk makes two
    tasks read that chunk; taking the largest divisor of the input's row chunk that is
    not above the default size (about 64 MiB) reads every chunk once. An array in memory
    costs nothing to cut, and the kernels that use this run one chunk per thread: it is
    cut into at least two chunks per core (measured: direct-beam centres of 48 x 48
    patterns in memory 0.28 s in one chunk, 0.16 s in four, on two cores).
    """
    if rows_per_chunk is not None or len(arr.shape) != 4:
        return rows_per_chunk
    if getattr(arr, "chunks", None) is None:
        limit = default_rows_per_chunk(arr.shape, 2, np.dtype(arr.dtype).itemsize)
        return max(1, min(limit, int(arr.shape[0]) // (2 * usable_cores())))
    chunks = arr.chunks
    if len(chunks[1]) != 1 or len(set(chunks[0][:-1])) > 1:
        return None  # split along x, or irregular: let the execution layer rechunk
    rows_in = int(chunks[0][0])
    limit = default_rows_per_chunk(arr.shape, 2, np.dtype(arr.dtype).itemsize)
    return max(d for d in range(1, rows_in + 1) if rows_in % d == 0 and d <= max(limit, 1))


def batch_size(n_pixels: int) -> int:
    """Patterns of ``n_pixels`` values per batch inside a kernel (``_BATCH_ELEMENTS``)."""
    return max(1, _BATCH_ELEMENTS // max(1, n_pixels))
