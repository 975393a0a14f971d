"""NanoMegas blockfiles (``.blo``): a writer that streams the patterns, and the calibration.

A blockfile holds a 2D scan of square 8-bit patterns and an 8-bit navigator (a virtual
bright field). :func:`write_blo` writes a 4D dataset with the layout of rosettasciio's
writer, byte for byte, converting and writing the patterns in blocks of scan rows so that
memory stays at a few blocks; :func:`blo_calibration` reads the reciprocal pixel size
back from a header (rosettasciio reads the rest).

Header units (those of rosettasciio's reader and writer): ``Beam_energy`` in V,
``Camera_length`` in units of 0.1 mm, and ``SDP`` such that a detector pixel is
``100 / SDP`` cm.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# one formula of the electron wavelength in the package (the diffraction calibration's)
from anodemap.constants import electron_wavelength
from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io.atomic import atomic_path

# blocks of scan rows of the size the stream reads and writes (about 8 MiB)
from anodemap.io.tvips import rows_per_block

__all__ = ["blo_calibration", "dask_progress", "write_blo"]

# The header counts the camera length in 0.1 mm (module docstring).
_BLO_CAMERA_LENGTH_UNIT_MM = 0.1
# Camera length written when none is known (model choice: that of test1.blo).
_BLO_DEFAULT_CAMERA_LENGTH_MM = 200.0


def blo_calibration(header: dict[str, Any]) -> dict[str, float | None]:
    """Reciprocal pixel size (1/Å), beam energy (keV) and camera length (mm) of a .blo header.

    ``s = (100 / SDP) [cm] / (L [cm] * λ [Å])``, with the header units of the module docstring.

    Parameters
    ----------
    header : dict
        ``original_metadata["blockfile_header"]`` of rosettasciio's reader.

    Examples
    --------
    >>> cal = blo_calibration({"SDP": 6226, "Camera_length": 2000, "Beam_energy": 200000})
    >>> round(cal["reciprocal_pixel_size"], 4), cal["beam_energy"], cal["camera_length"]
    (0.032, 200.0, 200.0)
    """
    sdp = float(header.get("SDP", 0) or 0)
    energy = float(header.get("Beam_energy", 0) or 0) / 1000.0
    cl_mm = float(header.get("Camera_length", 0) or 0) * _BLO_CAMERA_LENGTH_UNIT_MM
    s = None
    if sdp > 0 and energy > 0 and cl_mm > 0:
        s = (100.0 / sdp) / (cl_mm / 10.0 * electron_wavelength(energy))
    return {
        "reciprocal_pixel_size": s,
        "beam_energy": energy or None,
        "camera_length": cl_mm or None,
    }


def _to_uint8_formula(block: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The 8-bit rule of :func:`write_blo` in float32 arithmetic."""
    scaled = (block.astype(np.float32) - lo) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _uint8_lut(dtype: str, lo: float, hi: float) -> np.ndarray:
    """The 8-bit rule tabulated for every value of an 8- or 16-bit pixel type."""
    dt = np.dtype(dtype)
    return _to_uint8_formula(np.arange(2 ** (8 * dt.itemsize), dtype=dt), lo, hi)


def _to_uint8(block: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``clip(round(255 (I - lo) / (hi - lo)), 0, 255)`` as uint8.

    8- and 16-bit integer pixels go through a table of the rule evaluated on every
    possible value (the same numbers as the formula, element by element, at the speed
    of a table look-up); other types through the formula.
    """
    block = np.asarray(block)
    if block.dtype.kind == "u" and block.dtype.itemsize <= 2:
        lut = _uint8_lut(block.dtype.str, float(lo), float(hi))
        out = np.empty(block.shape, np.uint8)
        _lut_kernel()(np.ascontiguousarray(block).reshape(-1), lut, out.reshape(-1))
        return out
    return _to_uint8_formula(block, lo, hi)


_BLO_MAGIC = 0x55AA


def _blo_record_dtype(h: int, w: int) -> np.dtype:
    """A blockfile pattern record: magic ``0x55AA``, serial number, 8-bit pixels."""
    return np.dtype([("MAGIC", "<u2"), ("ID", "<u4"), ("IMG", "u1", (h, w))])


class _BloRecordWriter:
    """Writes blocks of whole scan rows as blockfile records at their place in a file.

    A target for :func:`dask.array.store` (and for plain loops): ``writer[ys] = block``
    with ``block`` of shape ``(rows, nx, h, w)`` uint8 builds the records of those rows
    and writes them with ``os.pwrite`` (no shared file position, so threads may write
    different rows at once). Memory: one block of records.
    """

    def __init__(self, fd: int, offset: int, shape: tuple[int, int, int, int]) -> None:
        self.fd, self.offset, self.shape = fd, int(offset), tuple(shape)
        self.dtype = _blo_record_dtype(shape[2], shape[3])

    def __setitem__(self, key, block: np.ndarray) -> None:
        key = key if isinstance(key, tuple) else (key,)
        _, nx, h, w = self.shape
        for k, size in zip(key[1:], self.shape[1:], strict=False):
            if k.indices(size) != (0, size, 1):
                raise ValueError("blockfile records are written in whole scan rows")
        y0 = key[0].indices(self.shape[0])[0]
        block = np.asarray(block)
        n = block.shape[0] * nx
        recs = np.empty(n, self.dtype)
        recs["MAGIC"] = _BLO_MAGIC
        recs["ID"] = np.arange(y0 * nx, y0 * nx + n, dtype=np.uint32)
        recs["IMG"] = block.reshape(n, h, w)
        buf = memoryview(recs.view(np.uint8))
        pos = self.offset + y0 * nx * self.dtype.itemsize
        done = 0
        while done < len(buf):
            done += os.pwrite(self.fd, buf[done:], pos + done)


def write_blo(
    dataset,
    path: str | os.PathLike,
    *,
    navigator: np.ndarray | None = None,
    intensity_range: tuple[float, float] | None = None,
    camera_length: float | None = None,
    note: str = "",
    progress: bool = False,
    overwrite: bool = True,
) -> Path:
    """Write a 4D dataset as a NanoMegas blockfile (``.blo``), atomically.

    The patterns are written as 8-bit: ``uint8 = clip(round(255 (I - lo) / (hi - lo)),
    0, 255)`` with ``(lo, hi) = intensity_range``, by default ``(0, max)`` of the data
    (zero stays zero, nothing saturates; uint8 data are written unchanged). The
    navigator (virtual bright field) is scaled from its minimum to its maximum. The
    reciprocal calibration (signal axes in 1/Å) is written as a detector-plane pixel size
    (``SDP``) at a camera length (``camera_length`` in mm, default 200 mm, model choice)
    for the beam energy in ``metadata.Acquisition_instrument.TEM.beam_energy``;
    :func:`blo_calibration` inverts this. The header is rosettasciio's; the file has
    the layout of rosettasciio's writer, byte for byte, but the patterns are converted
    and written in blocks of scan rows (dask threads), so memory stays at a few blocks
    whatever the size of the scan (:func:`_write_blockfile`).

    Parameters
    ----------
    dataset : anodemap.io.Dataset
        Shape ``(ny, nx, n, n)`` (square patterns), lazy or not.
    path : str or path-like
        Output ``.blo``.
    navigator : ndarray (ny, nx), optional
        Virtual bright field; default the sum of each pattern. Scaled from its minimum
        to its maximum onto 0..255, unless it is uint8 already.
    intensity_range : (lo, hi), optional
        Intensities mapped to 0 and 255 (default the data's 0 and maximum). The maximum
        is usually the direct beam, which leaves weak rings below one 8-bit level;
        :func:`~anodemap.diffraction.stream.stream_to_file` therefore saturates the direct
        beam by default (:data:`~anodemap.diffraction.stream.BLO_SATURATED_FRACTION`); pass such a range here too.
    camera_length : float, optional
        mm.
    note : str
        Text for the header's note field.
    progress : bool
        Show rosettasciio's progress bar.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path

    Examples
    --------
    >>> write_blo(plan_to_dataset(plan), "scan.blo")  # doctest: +SKIP
    PosixPath('scan.blo')
    """
    import dask.array as da

    path = Path(path)
    if path.exists() and not overwrite:
        raise AnodemapIOError(f"{path}: exists, and is kept (overwrite=False)")
    data = dataset.data
    if data.ndim != 4:
        raise AnodemapInputError(
            f"{path}: a blockfile holds a 2D scan of 2D patterns; the data have shape "
            f"{tuple(data.shape)}"
        )
    ny, nx, h, w = data.shape
    if h != w:
        raise AnodemapInputError(
            f"{path}: blockfiles need square patterns; these are {h} x {w} (crop them first)"
        )
    if max(ny, nx) > 65535 or h > 65535:
        raise AnodemapInputError(f"{path}: blockfile sizes are 16-bit; shape {data.shape}")
    if not isinstance(data, da.Array):
        data = da.from_array(data, chunks=(rows_per_block(data.shape, 1), -1, -1, -1))
    elif any(len(c) > 1 for c in data.chunks[1:]):
        data = data.rechunk({1: -1, 2: -1, 3: -1})  # records are written in whole rows
    if intensity_range is None and np.dtype(data.dtype) == np.uint8:
        u8 = data
        rule = "uint8 data written unchanged"
    else:
        if intensity_range is None:
            from anodemap._compute import local_scheduler

            hi = float(data.max().compute(scheduler=local_scheduler()))
            lo = 0.0
        else:
            lo, hi = (float(v) for v in intensity_range)
        if not hi > lo:
            raise AnodemapInputError(
                f"--intensity-range {lo:g} {hi:g} (intensity_range) for {path}: the upper limit "
                "must exceed the lower"
            )
        u8 = data.map_blocks(_to_uint8, lo, hi, dtype=np.uint8)
        rule = f"uint8 = clip(round(255*(I - {lo:g})/({hi:g} - {lo:g})), 0, 255)"
    if navigator is None:
        from anodemap._compute import local_scheduler

        navigator = u8.sum(axis=(-2, -1), dtype=np.float64).compute(scheduler=local_scheduler())
    nav_in = np.asarray(navigator)
    if nav_in.shape != (ny, nx):
        raise AnodemapInputError(
            f"navigator of shape {nav_in.shape} does not match the scan {(ny, nx)} of {path}"
        )
    if nav_in.dtype == np.uint8:
        nav_u8 = nav_in  # already 8-bit: written unchanged
    else:
        nav = np.nan_to_num(nav_in.astype(np.float64))
        span = nav.max() - nav.min()
        nav_u8 = (
            np.rint(255 * (nav - nav.min()) / span) if span > 0 else np.zeros((ny, nx))
        ).astype(np.uint8)

    # calibrations
    nav_ax = dataset.nav_axes
    sig_ax = dataset.sig_axes
    notes = [note] if note else []
    step = nav_ax[0].scale if nav_ax[0].units == "nm" else None
    if step is None:
        notes.append("scan step not calibrated (1 nm written)")
        warnings.warn(
            f"{path}: the scan step is unknown; 1 nm per pixel is written (pass --scan-step NM; "
            "scan_step in Python)",
            stacklevel=2,
        )
    tem = dataset.get_meta("Acquisition_instrument.TEM", {}) or {}
    energy = tem.get("beam_energy")
    s = sig_ax[-1].scale if sig_ax[-1].units in ("1/Å", "1/A", "1/angstrom") else None
    if s is None and sig_ax[-1].units in ("1/nm",):
        s = sig_ax[-1].scale / 10.0
    cl_mm = float(camera_length or tem.get("camera_length") or _BLO_DEFAULT_CAMERA_LENGTH_MM)
    sdp = 0
    if s and energy:
        lam = electron_wavelength(float(energy))
        d_cm = s * (cl_mm / 10.0) * lam
        sdp = round(100.0 / d_cm)
        if not 100 <= sdp <= 65535 and camera_length is None:
            # model choice: move the nominal camera length so SDP keeps 4 digits
            cl_mm *= (100.0 / d_cm) / 6000.0
            sdp = round(100.0 / (s * (cl_mm / 10.0) * lam))
        if not 1 <= sdp <= 65535:
            raise AnodemapInputError(
                f"{path}: reciprocal pixel size {s} 1/Å at camera length {cl_mm} mm gives a "
                f"blockfile SDP of {sdp}, outside 1..65535; pass another camera length with "
                "--camera-length MM (camera_length)"
            )
        notes.append(f"reciprocal pixel size {s:.6g} 1/A")
    else:
        notes.append("diffraction pixel size not calibrated")
        warnings.warn(
            f"{path}: the pattern calibration (1/Å) or beam energy is unknown; the blockfile "
            "holds no diffraction calibration",
            stacklevel=2,
        )
    notes.append(rule)
    # rosettasciio computes SDP = 100 / scale and stores it as an integer by truncation;
    # a scale of 100 / (SDP + 0.5) makes that truncation give exactly SDP.
    sig_scale = 100.0 / (sdp + 0.5) if sdp else 1.0
    header = {
        "Beam_energy": int(round(float(energy) * 1000)) if energy else 0,
        "Camera_length": int(round(cl_mm / _BLO_CAMERA_LENGTH_UNIT_MM)) if sdp else 0,
        "Note": "\r\n".join(notes)[:3000],
    }
    t0 = _meta_datetime(dataset)
    if t0 is not None:
        # serial date: days since 1899-12-30 (the convention of rosettasciio's reader)
        header["Acquisition_time"] = (
            t0 - _dt.datetime(1899, 12, 30, tzinfo=_dt.UTC)
        ).total_seconds() / 86400.0
    signal = {
        "data": u8,
        "axes": [
            {
                "name": "y",
                "size": ny,
                "scale": float(step or 1.0),
                "offset": 0.0,
                "units": "nm",
                "navigate": True,
            },
            {
                "name": "x",
                "size": nx,
                "scale": float(step or 1.0),
                "offset": 0.0,
                "units": "nm",
                "navigate": True,
            },
            {
                "name": "ky",
                "size": h,
                "scale": sig_scale,
                "offset": 0.0,
                "units": "cm",
                "navigate": False,
            },
            {
                "name": "kx",
                "size": w,
                "scale": sig_scale,
                "offset": 0.0,
                "units": "cm",
                "navigate": False,
            },
        ],
        "metadata": {"General": {"title": dataset.title}, "Signal": {}},
        "original_metadata": {"blockfile_header": header},
        "attributes": {"_lazy": True},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            _write_blockfile(tmp, signal, nav_u8, progress)
            if not sdp:
                # uncalibrated: SDP = 0, which rosettasciio's reader takes as "scale 1"
                _write_header_field(tmp, "SDP", 0)
    except Exception as err:
        if isinstance(err, AnodemapInputError | AnodemapIOError):
            raise
        raise AnodemapIOError(
            f"{path}: could not be written ({type(err).__name__}: {err})"
        ) from err
    return path


def _write_blockfile(path: Path, signal: dict, nav_u8: np.ndarray, progress: bool) -> None:
    """Write a blockfile: rosettasciio's header, then the patterns streamed in row blocks.

    The layout is that of rosettasciio's writer (``rsciio.blockfile.file_writer``; the
    header is built by its ``get_header_from_signal``): header, note, zeros up to
    ``Data_offset_1``, the 8-bit navigator, zeros up to ``Data_offset_2``, then one
    record per pattern (magic ``0x55AA``, serial number, pixels). rosettasciio's writer
    fills the records through a memory map of the whole output, whose written pages
    count in the process's resident memory, so its peak memory grows with the file;
    here each block of rows is converted, framed and written with ``os.pwrite`` by the
    dask task that computed it (:class:`_BloRecordWriter`), so memory stays at a few
    blocks. ``signal["data"]`` is a uint8 dask array chunked in whole scan rows.
    """
    import dask.array as da
    from rsciio.blockfile._api import get_header_from_signal

    u8 = signal["data"]
    header, note = get_header_from_signal(signal, endianness="<")
    off1, off2 = int(header["Data_offset_1"][0]), int(header["Data_offset_2"][0])
    with open(path, "wb") as f:
        header.tofile(f)
        f.write(note.encode()[: max(0, off1 - f.tell())])
        f.write(b"\0" * (off1 - f.tell()))
        np.ascontiguousarray(nav_u8, dtype="<u1").tofile(f)
        if f.tell() > off2:
            raise AnodemapInputError(f"{path}: navigator larger than the scan")
        f.write(b"\0" * (off2 - f.tell()))
        f.flush()
        writer = _BloRecordWriter(f.fileno(), off2, u8.shape)
        with dask_progress(progress):
            # threads: the writer holds this process's file descriptor
            da.store(u8, writer, lock=False, scheduler="threads")
        end = off2 + u8.shape[0] * u8.shape[1] * writer.dtype.itemsize
        f.truncate(end)


def _write_header_field(path: Path, name: str, value: int) -> None:
    """Overwrite one field of a written blockfile header (for the 'uncalibrated' SDP = 0)."""
    from rsciio.blockfile._api import get_header_dtype_list

    dt = np.dtype(get_header_dtype_list())
    off = dt.fields[name][1]
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(np.asarray(value, dtype=dt.fields[name][0]).tobytes())


def _meta_datetime(dataset) -> _dt.datetime | None:
    date, time = dataset.get_meta("General.date"), dataset.get_meta("General.time")
    if not date:
        return None
    try:
        t = _dt.datetime.fromisoformat(f"{date}T{time or '00:00:00'}")
    except ValueError:
        return None
    return t.replace(tzinfo=_dt.UTC) if t.tzinfo is None else t


def _apply_lut(block, lut, out):
    """``out[i] = lut[block[i]]`` over flat contiguous arrays (the 8-bit conversion; a
    numba kernel)."""
    for i in range(block.size):
        out[i] = lut[block[i]]


@functools.cache
def _lut_kernel():
    """:func:`_apply_lut` compiled by numba on first use (or loaded from its cache); not
    at import, which would import numba (about 0.3 s). It releases the GIL: dask threads
    convert blocks at once."""
    import numba

    return numba.njit(nogil=True, cache=True)(_apply_lut)


class dask_progress:
    """dask's progress bar on a terminal, nothing otherwise."""

    def __init__(self, on: bool) -> None:
        self.cm = None
        if on and sys.stderr.isatty():
            from dask.diagnostics import ProgressBar

            self.cm = ProgressBar(out=sys.stderr, minimum=1.0)

    def __enter__(self):
        if self.cm:
            self.cm.__enter__()
        return self

    def __exit__(self, *exc):
        if self.cm:
            return self.cm.__exit__(*exc)
        return False
