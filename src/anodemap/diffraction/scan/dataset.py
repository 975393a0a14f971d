"""The rectangular 4D dataset of a scan plan: lazy, read from the recording chunk by chunk.

Axes ``y``, ``x``, ``ky``, ``kx``, calibrated where the plan knows the calibration; the
plan's findings go into the metadata (``Stream``), the TVIPS header into the original
metadata.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.diffraction.scan.plan import ScanPlan
from anodemap.io.tvips import TvipsRecording, rows_per_block

__all__ = ["plan_dataset", "plan_to_dataset"]


def _read_rows(recording: TvipsRecording, index: np.ndarray, release: bool = False) -> np.ndarray:
    """One output chunk: the frames of ``index`` (rows, nx), zeros where -1."""
    frames = recording.read_frames(index.ravel(), release=release)
    return frames.reshape(index.shape + recording.frame_shape)


def plan_to_dataset(plan: ScanPlan, *, rows_per_chunk: int | None = None, release: bool = False):
    """The rectangular 4D dataset of a plan, lazy (dask), read chunk by chunk when computed.

    Axes: ``y``, ``x`` (nm if the scan step is known, else uncalibrated), ``ky``, ``kx``
    (1/Å with zero on the direct beam, if the reciprocal pixel size is known).

    Parameters
    ----------
    plan : ScanPlan
    rows_per_chunk : int, optional
        Scan rows per chunk (default about 8 MiB per chunk).
    release : bool
        Each chunk's frames leave the page cache once read
        (:meth:`~anodemap.io.tvips.TvipsRecording.release`), for a dataset computed once
        (a conversion).

    Returns
    -------
    anodemap.io.Dataset

    Examples
    --------
    >>> ds = plan_to_dataset(reconstruct_scan("scan_000.tvips"))  # doctest: +SKIP
    >>> ds.data.shape  # doctest: +SKIP
    (16, 20, 32, 32)
    """
    import dask.array as da

    rec = plan.recording or TvipsRecording(plan.source[0])
    ny, nx = plan.scan_shape
    h, w = plan.frame_shape
    rows = int(rows_per_chunk or rows_per_block((ny, nx, h, w), rec.dtype.itemsize))
    name = f"tvips-scan-{uuid.uuid4().hex}"
    dsk = {}
    starts = list(range(0, ny, rows))
    for i, r0 in enumerate(starts):
        index = plan.frame_index[r0 : r0 + rows].copy()
        dsk[(name, i, 0, 0, 0)] = (_read_rows, rec, index, release)
    chunks = (tuple(min(rows, ny - r0) for r0 in starts), (nx,), (h,), (w,))
    data = da.Array(dsk, name, chunks=chunks, dtype=rec.dtype)
    return plan_dataset(plan, data)


def plan_dataset(plan: ScanPlan, data: Any):
    """A plan's 4D data (any array of shape ``scan + frame``) with its axes and metadata."""
    from anodemap.io import Axis, Dataset

    ny, nx = plan.scan_shape
    h, w = plan.frame_shape
    cal = plan.calibration
    step = cal.get("scan_step")
    nav_units, nav_scale = ("nm", step) if step else ("", 1.0)
    s = cal.get("reciprocal_pixel_size")
    cy, cx = plan.beam_center
    if s:
        sig = [
            Axis("ky", h, s, -cy * s, "1/Å", navigate=False),
            Axis("kx", w, s, -cx * s, "1/Å", navigate=False),
        ]
    else:
        sig = [
            Axis("ky", h, 1.0, 0.0, "", navigate=False),
            Axis("kx", w, 1.0, 0.0, "", navigate=False),
        ]
    axes = [Axis("y", ny, nav_scale, 0.0, nav_units), Axis("x", nx, nav_scale, 0.0, nav_units)]
    md: dict[str, Any] = {
        "General": {
            "title": Path(plan.source[0]).name,
            "original_filename": Path(plan.source[0]).name,
        },
        "Signal": {"signal_type": "diffraction"},
        "Stream": plan.as_dict(),
    }
    if cal.get("start_time") is not None:
        t0 = _dt.datetime.fromtimestamp(cal["start_time"], _dt.UTC)
        md["General"].update(
            date=t0.date().isoformat(), time=t0.time().isoformat(), time_zone="UTC"
        )
    if cal.get("beam_energy") is not None:
        md["Acquisition_instrument"] = {"TEM": {"beam_energy": cal["beam_energy"]}}
    om = {"tvips_header": {k: v for k, v in plan.header.items() if k != "dummy"}}
    return Dataset(data, axes + sig, md, om)
