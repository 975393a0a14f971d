"""TVIPS video stream -> rectangular 4D dataset -> chunked ``.zspy`` or NanoMegas ``.blo``.

A TVIPS camera records a scan as a stream of frames, split over ``NAME_000.tvips``,
``NAME_001.tvips``, ... parts. The stream holds more than the scan: frames before and
after it (beam blanked or parked), positions recorded twice, positions the camera
missed, and, for serpentine scans, reversed lines that lag by a few frames. This
module reads the stream lazily, reconstructs the scan (:func:`reconstruct_scan`,
every finding overridable), and writes the rectangular dataset chunk by chunk
(:func:`stream_to_file`).

Why a reader of our own: rosettasciio (0.15) reads the TVIPS layout, and this module
follows its documented field layout (``rsciio/tvips/_api.py``), but its reader does not
return the per-frame headers (rotator index, timestamps) together with the unreshaped
frame stack (they are used internally only for ``scan_shape="auto"``, which assumes a
square scan), it silently stops at the first missing part, and it memory-maps every
part so that reading all frame headers touches every page of the recording. The small
reader here (:class:`TvipsRecording`) reads frame records with explicit seeks in
bounded chunks, checks that the parts are numbered without gaps and hold whole frames,
and names the file when they do not.

Format facts used (from rosettasciio's TVIPS reader/writer): the first part starts with
a general header of ``size`` bytes (256; 13 little-endian ``uint32`` fields and padding);
version 2 frame records are a frame header of ``frameheaderbytes`` bytes, whose first 60
bytes are 15 four-byte fields (``num``, ``timestamp`` [s since 1970], ``ms``, ...,
``rotidx``, ...), followed by ``dimy x dimx`` pixels of ``bitsperpixel``; later parts have
no general header. ``rotidx`` is the scan generator's step counter: 1-based, 0 for
frames recorded with no scan position (the convention of rosettasciio's writer).

What is found and how (:func:`reconstruct_scan`):

* frame headers: scan start and end, duplicated positions (the same ``rotidx`` again;
  the first frame is kept) and dropped positions (``rotidx`` values skipped);
* image content, from tiny per-frame virtual detectors (a bright-field disc and eight
  annular dark-field sectors around the direct beam, computed in one pass over the
  frames in bounded chunks): the scan start and end where headers say nothing (frames
  that differ from their neighbours by no more than noise, or that are dark, are
  idle), the line length (local peak of the correlation of frames one line apart), and
  serpentine scanning and its hysteresis (best correlation of each line with the
  mirrored, shifted next line);
* frame timestamps: dropped frames where headers carry no ``rotidx`` (gaps of two or more
  frame intervals).

Serpentine convention (that of rosettasciio's ``hysteresis``): line 0 is kept as
recorded; on odd lines the frame recorded ``j``-th shows position
``x = (nx - 1 - j + h) % nx``, so the ``h`` frames that wrap around are placed at the
other end of the line.

Examples
--------
>>> import tempfile, pathlib
>>> from anodemap.synth.tvips import write_tvips_recording
>>> from anodemap.diffraction.stream import reconstruct_scan
>>> sim = write_tvips_recording(pathlib.Path(tempfile.mkdtemp()) / "scan", seed=0)
>>> plan = reconstruct_scan(sim.paths[0])
>>> plan.scan_shape, plan.serpentine, plan.hysteresis
((16, 20), True, 2)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import math
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.diffraction.calibration import electron_wavelength
from anodemap.errors import AnodemapInputError, AnodemapIOError

__all__ = [
    "FRAME_HEADER_DTYPE",
    "BLO_SATURATED_FRACTION",
    "GENERAL_HEADER_DTYPE",
    "ZSPY_COMPRESSOR",
    "ScanPlan",
    "TvipsRecording",
    "blo_calibration",
    "electron_wavelength",
    "plan_to_dataset",
    "reconstruct_scan",
    "stream_to_file",
    "write_blo",
]

# ------------------------------------------------------------------ format
# Field layout of the TVIPS recorder headers, as documented in rosettasciio's reader
# (rsciio/tvips/_api.py); little endian.
GENERAL_HEADER_DTYPE = np.dtype(
    [
        ("size", "<u4"),
        ("version", "<u4"),
        ("dimx", "<u4"),
        ("dimy", "<u4"),
        ("bitsperpixel", "<u4"),
        ("offsetx", "<u4"),
        ("offsety", "<u4"),
        ("binx", "<u4"),
        ("biny", "<u4"),
        ("pixelsize", "<u4"),
        ("ht", "<u4"),
        ("magtotal", "<u4"),
        ("frameheaderbytes", "<u4"),
        ("dummy", "S204"),
    ]
)
FRAME_HEADER_DTYPE = np.dtype(
    [
        ("num", "<u4"),
        ("timestamp", "<u4"),
        ("ms", "<u4"),
        ("LUTidx", "<u4"),
        ("fcurrent", "<f4"),
        ("mag", "<u4"),
        ("mode", "<u4"),
        ("stagex", "<f4"),
        ("stagey", "<f4"),
        ("stagez", "<f4"),
        ("stagea", "<f4"),
        ("stageb", "<f4"),
        ("rotidx", "<u4"),
        ("temperature", "<f4"),
        ("objective", "<f4"),
    ]
)

_PART_RE = re.compile(r"^(?P<base>.+)_(?P<num>\d{3})\.tvips$", re.IGNORECASE)

# Raw bytes per chunk of frames in the reconstruction pass and per output chunk
# (model choice: small against memory, large against per-read overhead).
_CHUNK_BYTES = 8 * 2**20
# Raw bytes per chunk in the pass over the recording that computes the frame features
# (model choice: two such buffers stay in the processor cache while read and computed).
_FEATURE_CHUNK_BYTES = 2 * 2**20
# Codec of the .zspy written by stream_to_file (numcodecs.Blosc arguments). Model choice,
# measured on simulated 16-bit recordings (single thread): rosettasciio's default (zstd
# level 1, byte shuffle) compresses 5.3x at about 250 MB/s; zstd with bit shuffle
# 5.2x at 760 MB/s; lz4 with bit shuffle 4.7x at 1.5 GB/s and decompresses 2x faster.
# Bit shuffle + LZ4 is what detector data are stored with elsewhere (HDF5 "bslz4" of
# hybrid-pixel detectors); it keeps the conversion at the speed of reading.
ZSPY_COMPRESSOR = {"cname": "lz4", "clevel": 5, "shuffle": 2}  # 2: numcodecs.Blosc.BITSHUFFLE

# Model choice for the 8-bit .blo: counts from 0 to the level that 0.1 % of the pixels
# outside the direct beam exceed (the direct beam and the strongest spots saturate, as
# in NanoMegas recordings). Measured on a simulated 24 x 24 electrode (seed 3, 0.4 degree
# precession) streamed through a TVIPS recording: phases recovered from the .blo 0.85
# with 0 .. maximum (the direct beam, 14 200 counts: one 8-bit level is 56 counts and the
# amorphous rings vanish), 1.00 at this level (440 counts), 0.90 at 0.01 %, 0.78 at 1 %.
BLO_SATURATED_FRACTION = 1e-3
# Largest gap (frames) bridged by one read when gathering scattered frames (model choice).
_READ_GAP = 8


class TvipsRecording:
    """A TVIPS recording (all ``_NNN.tvips`` parts), read lazily frame by frame.

    Parameters
    ----------
    path : str or path-like
        The first part, ``NAME_000.tvips``; the others are found beside it.
    allow_truncated : bool
        A part whose size is not a whole number of frames is an error (naming the
        part); with True the incomplete last frame of such a part is skipped with a
        warning (a recording interrupted while writing).

    Attributes
    ----------
    parts : list of Path
    frames_per_part : list of int
    n_frames : int
    frame_shape : tuple of int
        ``(dimy, dimx)``.
    dtype : numpy.dtype
        Pixel type (``uint8``, ``uint16`` or ``uint32``).
    header : dict
        The general header fields.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from anodemap.synth.tvips import write_tvips_recording
    >>> sim = write_tvips_recording(pathlib.Path(tempfile.mkdtemp()) / "r", scan_shape=(3, 4),
    ...                             frame_shape=(16, 16), frames_per_part=7)
    >>> rec = TvipsRecording(sim.paths[0])
    >>> len(rec.parts), rec.n_frames, rec.frame_shape
    (4, 23, (16, 16))
    >>> headers, frames = rec.read(5, 9)
    >>> frames.shape, headers["rotidx"].tolist()
    ((4, 16, 16), [0, 1, 2, 3])
    """

    def __init__(self, path: str | os.PathLike, *, allow_truncated: bool = False) -> None:
        path = Path(path)
        m = _PART_RE.match(path.name)
        if m is None:
            raise AnodemapInputError(
                f"{path}: not the name of a TVIPS recording part; expected NAME_000.tvips"
            )
        if int(m["num"]) != 0:
            raise AnodemapInputError(
                f"{path}: part {m['num']} of a recording; pass the first part "
                f"{m['base']}_000.tvips (the others are found beside it)"
            )
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        self.parts = _find_parts(path, m["base"])
        size0 = self.parts[0].stat().st_size
        if size0 < GENERAL_HEADER_DTYPE.itemsize:
            raise AnodemapIOError(
                f"{self.parts[0]}: {size0} bytes, shorter than the TVIPS general header "
                f"({GENERAL_HEADER_DTYPE.itemsize} bytes); the file is truncated"
            )
        gh = np.fromfile(self.parts[0], dtype=GENERAL_HEADER_DTYPE, count=1)[0]
        self.header = {
            k: (gh[k].decode("latin1", "replace") if k == "dummy" else int(gh[k]))
            for k in GENERAL_HEADER_DTYPE.names
        }
        if self.header["version"] != 2:
            raise AnodemapIOError(
                f"{self.parts[0]}: TVIPS recorder version {self.header['version']}; only "
                "version 2 (the one rosettasciio documents) is supported"
            )
        bits = self.header["bitsperpixel"]
        if bits not in (8, 16, 32):
            raise AnodemapIOError(f"{self.parts[0]}: {bits} bits per pixel is not supported")
        fh = self.header["frameheaderbytes"]
        if fh < FRAME_HEADER_DTYPE.itemsize:
            raise AnodemapIOError(
                f"{self.parts[0]}: frame header of {fh} bytes, shorter than the "
                f"{FRAME_HEADER_DTYPE.itemsize} bytes of its named fields; not a TVIPS v2 file"
            )
        self.frame_shape = (self.header["dimy"], self.header["dimx"])
        if min(self.frame_shape) < 1:
            raise AnodemapIOError(f"{self.parts[0]}: frame size {self.frame_shape} is empty")
        self.dtype = np.dtype(f"<u{bits // 8}")
        fields = list(FRAME_HEADER_DTYPE.descr)
        if fh > FRAME_HEADER_DTYPE.itemsize:
            fields.append(("_pad", f"V{fh - FRAME_HEADER_DTYPE.itemsize}"))
        fields.append(("data", self.dtype, self.frame_shape))
        self.record_dtype = np.dtype(fields)
        self.offsets: list[int] = []
        self.frames_per_part: list[int] = []
        # the parts cut short (allow_truncated): the scan plan then says the recording is
        # incomplete, and does not take the frames left for a whole scan
        self.truncated: list[str] = []
        rsize = self.record_dtype.itemsize
        for i, p in enumerate(self.parts):
            off = self.header["size"] if i == 0 else 0
            nbytes = p.stat().st_size - off
            n, rest = divmod(nbytes, rsize)
            if rest:
                msg = (
                    f"{p}: {nbytes} bytes of frames is {n} whole frames and {rest} bytes of an "
                    f"incomplete frame ({rsize} bytes per frame); the file is truncated"
                )
                if not allow_truncated:
                    raise AnodemapIOError(
                        msg + "; pass --allow-truncated (allow_truncated in Python) to use the "
                        "complete frames (a scan cut short is then found from what is left, "
                        "and said so)"
                    )
                warnings.warn(msg + "; the incomplete frame is skipped", stacklevel=2)
                self.truncated.append(str(p))
            self.offsets.append(off)
            self.frames_per_part.append(n)
        self._starts = np.concatenate([[0], np.cumsum(self.frames_per_part)]).astype(np.int64)
        self.n_frames = int(self._starts[-1])
        if self.n_frames == 0:
            raise AnodemapIOError(f"{self.parts[0]}: the recording holds no frames")

    def __repr__(self) -> str:
        return (
            f"TvipsRecording({str(self.parts[0])!r}, parts={len(self.parts)}, "
            f"frames={self.n_frames}, frame_shape={self.frame_shape}, dtype={self.dtype})"
        )

    @property
    def frame_bytes(self) -> int:
        """Bytes of pixels per frame."""
        return int(self.dtype.itemsize * self.frame_shape[0] * self.frame_shape[1])

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame headers and frames ``start <= i < stop`` (in stream order, across parts).

        Returns
        -------
        headers : structured ndarray, shape (n,)
            Fields of :data:`FRAME_HEADER_DTYPE`.
        frames : ndarray, shape (n, dimy, dimx)
        """
        start, stop = max(0, int(start)), min(int(stop), self.n_frames)
        n = max(0, stop - start)
        recs = self._read_records(start, n, np.empty(n * self.record_dtype.itemsize, np.uint8))
        headers = np.empty(n, dtype=FRAME_HEADER_DTYPE)
        for name in FRAME_HEADER_DTYPE.names:
            headers[name] = recs[name]
        return headers, np.ascontiguousarray(recs["data"])

    def _read_records(
        self, start: int, n: int, buf: np.ndarray, files: dict | None = None
    ) -> np.ndarray:
        """Read the records of frames ``start .. start + n - 1`` into ``buf``; their view.

        ``buf`` is a uint8 array of at least ``n`` records; the frames are read straight
        into it (one system call per part touched, no intermediate copy). ``files``
        (part index -> open unbuffered file) keeps the parts open across calls: a pass
        over the recording then reads each part as one sequential stream, which the
        operating system reads ahead (a file opened anew for every chunk starts its
        read-ahead anew: measured 2.9 times slower from disk).
        """
        rsize = self.record_dtype.itemsize
        view = memoryview(buf)[: n * rsize]
        got = 0
        for part, local, count in self._spans(start, start + n):
            want = count * rsize
            dest = view[got * rsize : got * rsize + want]
            done = 0
            f = files.get(part) if files is not None else None
            own = f is None
            if own:
                f = open(self.parts[part], "rb", buffering=0)  # noqa: SIM115
                if files is not None:
                    files[part] = f
                    own = False
                    with contextlib.suppress(AttributeError, OSError):
                        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            try:
                pos = self.offsets[part] + local * rsize
                if f.tell() != pos:
                    f.seek(pos)
                while done < want:
                    k = f.readinto(dest[done:])
                    if not k:
                        raise AnodemapIOError(
                            f"{self.parts[part]}: ended while reading frame {local} of this "
                            "part; the file was truncated or changed while reading"
                        )
                    done += k
            finally:
                if own:
                    f.close()
            got += count
        return buf[: n * rsize].view(self.record_dtype)

    def _spans(self, start: int, stop: int):
        """``(part, first frame in the part, frame count)`` covering frames ``start:stop``."""
        i = start
        while i < stop:
            part = int(np.searchsorted(self._starts, i, side="right") - 1)
            local = i - int(self._starts[part])
            count = min(stop - i, self.frames_per_part[part] - local)
            yield part, local, count
            i += count

    def release(self, start: int, n: int) -> None:
        """Let the OS drop frames ``start .. start + n - 1`` from its page cache.

        ``posix_fadvise(POSIX_FADV_DONTNEED)`` per part touched: the pages wholly inside
        those frames are freed, so that their memory serves what is read and written
        next. A conversion then holds a bounded share of the page cache, however long
        the recording, and reuses memory already in use instead of taking fresh memory
        (in a virtual machine, memory touched for the first time or handed back to the
        host is costly: on this project's VM a cold read of 2.15 GB took 1.1-1.5 s with
        the pages released behind the reader and 3.7-4.7 s without). Frames read again
        come from the disk. Where the OS has no such call, nothing happens.
        """
        code = getattr(os, "POSIX_FADV_DONTNEED", None)
        if code is None:
            return
        start, stop = max(0, int(start)), min(int(start) + int(n), self.n_frames)
        rsize = self.record_dtype.itemsize
        for part, local, count in self._spans(start, stop):
            try:
                fd = os.open(self.parts[part], os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, self.offsets[part] + local * rsize, count * rsize, code)
                finally:
                    os.close(fd)
            except OSError:
                return  # advice only (a file gone away is reported by the reads)

    def _pixels(self, recs: np.ndarray) -> tuple[np.ndarray, int, int]:
        """The pixels of read records for the kernels: ``(flat, record_stride, offset)``.

        Frame ``i``'s pixels are ``flat[i * record_stride + offset :][:n_pixels]``: a view
        of the records when the header size is a whole number of pixels (TVIPS writes it
        so), else a contiguous copy of the frames.
        """
        rsize, item = self.record_dtype.itemsize, self.dtype.itemsize
        off = self.record_dtype.fields["data"][1]
        base = recs.view(np.uint8)
        if rsize % item == 0 and off % item == 0 and base.ctypes.data % item == 0:
            return base.view(self.dtype), rsize // item, off // item
        npix = self.frame_shape[0] * self.frame_shape[1]
        return np.ascontiguousarray(recs["data"]).reshape(-1), npix, 0

    def read_frames(
        self,
        indices: Any,
        out: np.ndarray | None = None,
        scratch: np.ndarray | None = None,
        release: bool = False,
    ) -> np.ndarray:
        """Frames at arbitrary stream indices (``-1`` gives a frame of zeros).

        Nearby indices are read together, so an index list in roughly stream order
        (a chunk of scan rows) costs a few sequential reads; the frames are copied from
        the read buffer to their places by a compiled gather.

        ``out`` (C-contiguous, ``(len(indices),) + frame_shape``, the pixel type) and
        ``scratch`` (uint8, the read buffer) may be given to reuse memory from call to
        call: a fresh large block is new pages, each faulted in when first written
        (costly in a virtual machine). ``release``: the frames' pages are dropped from
        the page cache once copied (:meth:`release`), for frames read for the last time.

        Examples
        --------
        >>> rec.read_frames([7, -1, 6]).shape  # doctest: +SKIP
        (3, 32, 32)
        """
        idx = np.asarray(indices, dtype=np.int64).ravel()
        shape = (idx.size,) + self.frame_shape
        if out is None:
            # np.empty, not np.zeros: a large calloc'ed block is fresh pages, faulted in
            # one by one while filled; the frames left without a source are zeroed below
            out = np.empty(shape, dtype=self.dtype)
        elif out.shape != shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous {self.dtype} array of shape {shape}")
        out[idx < 0] = 0
        if np.any(idx >= self.n_frames):
            raise AnodemapInputError(
                f"frame index {int(idx.max())} is beyond the {self.n_frames} frames of "
                f"{self.parts[0]}"
            )
        want = np.unique(idx[idx >= 0])
        if want.size == 0:
            return out
        breaks = np.nonzero(np.diff(want) > _READ_GAP)[0]
        lo = want[np.concatenate([[0], breaks + 1])]
        hi = want[np.concatenate([breaks, [want.size - 1]])] + 1
        need = int((hi - lo).max()) * self.record_dtype.itemsize
        buf = scratch if scratch is not None and scratch.size >= need else np.empty(need, np.uint8)
        npix = self.frame_shape[0] * self.frame_shape[1]
        flat_out = out.reshape(idx.size, npix)
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            recs = self._read_records(a, b - a, buf)
            flat, stride, off = self._pixels(recs)
            local = np.where((idx >= a) & (idx < b), idx - a, -1)
            _kernels().gather_frames(flat, stride, off, npix, local, flat_out)
            if release:
                self.release(a, b - a)
        return out

    def iter_chunks(self, chunk_frames: int | None = None):
        """Yield ``(start, headers, frames)`` over the whole recording in chunks."""
        n = int(chunk_frames or max(1, _CHUNK_BYTES // self.record_dtype.itemsize))
        for start in range(0, self.n_frames, n):
            headers, frames = self.read(start, start + n)
            yield start, headers, frames

    def _iter_records(self, chunk_frames: int | None = None):
        """Yield ``(start, records)`` over the recording, reading the next chunk ahead.

        Two buffers alternate: while the caller works on one chunk, a thread reads the
        next into the other, so reading overlaps computing. A chunk's records are valid
        until the next one is requested.
        """
        from concurrent.futures import ThreadPoolExecutor

        n = int(chunk_frames or max(1, _CHUNK_BYTES // self.record_dtype.itemsize))
        n = max(1, min(n, self.n_frames))
        bufs = [np.empty(n * self.record_dtype.itemsize, np.uint8) for _ in range(2)]
        starts = list(range(0, self.n_frames, n))

        files: dict = {}

        def job(k: int) -> np.ndarray:
            s = starts[k]
            return self._read_records(s, min(n, self.n_frames - s), bufs[k % 2], files)

        with contextlib.ExitStack() as stack, ThreadPoolExecutor(max_workers=1) as pool:
            stack.callback(lambda: [f.close() for f in files.values()])
            pending = pool.submit(job, 0)
            for k, s in enumerate(starts):
                recs = pending.result()
                if k + 1 < len(starts):
                    pending = pool.submit(job, k + 1)
                yield s, recs


def _kernels():
    """The numba kernels, imported (and compiled or loaded from cache) on first use."""
    from anodemap.diffraction import _stream_kernels

    return _stream_kernels


def _find_parts(first: Path, base: str) -> list[Path]:
    """All parts ``base_NNN.tvips`` beside ``first``; a gap in the numbering is an error."""
    folder = first.parent
    stem = Path(base).name
    found: dict[int, Path] = {}
    for p in folder.iterdir():
        m = _PART_RE.match(p.name)
        if m and m["base"] == stem and p.is_file():
            found[int(m["num"])] = p
    last = max(found)
    missing = [n for n in range(last + 1) if n not in found]
    if missing:
        names = ", ".join(f"{stem}_{n:03d}.tvips" for n in missing)
        raise AnodemapIOError(
            f"{folder / (stem + f'_{missing[0]:03d}.tvips')}: part missing from the recording "
            f"(missing: {names}; present up to {stem}_{last:03d}.tvips); restore it, or move the "
            "later parts away to convert only the frames before the gap"
        )
    return [found[n] for n in range(last + 1)]


# --------------------------------------------------------------- features
@dataclass
class _Features:
    """Per-frame numbers from one pass over the recording (tiny next to the frames)."""

    rotidx: np.ndarray  # int64
    time: np.ndarray  # float64 seconds (NaN if absent)
    detectors: np.ndarray  # float32 (n, k): BF disc, then ADF sectors
    total: np.ndarray  # float64
    fmax: np.ndarray  # float64
    change: np.ndarray  # float64: sum (F_t - F_{t-1})^2 / (total_t + total_{t-1})
    mode: int
    center: tuple[float, float]
    bf_radius: float

    def head(self, n: int) -> _Features:
        """The features of the first ``n`` frames (views), as a pass over them gives."""
        t = self.time[:n]
        if n and np.all(t == t[0]):
            t = np.full(n, np.nan)  # no timestamps recorded (so far)
        return _Features(
            self.rotidx[:n],
            t,
            self.detectors[:n],
            self.total[:n],
            self.fmax[:n],
            self.change[:n],
            self.mode,
            self.center,
            self.bf_radius,
        )


def _beam_center(rec: TvipsRecording, n_sample: int = 64) -> tuple[tuple[float, float], float]:
    """Direct-beam centre (row, col) and half-maximum radius from a mean of sampled frames."""
    idx = np.unique(np.linspace(0, rec.n_frames - 1, min(n_sample, rec.n_frames)).astype(int))
    mean = rec.read_frames(idx).astype(np.float64).mean(axis=0)
    mean = mean - np.median(mean)
    # 3 x 3 box sum, edges mirrored (scipy.ndimage.uniform_filter's "reflect", times 9;
    # written out: importing scipy.ndimage costs 0.25 s of the command's start-up)
    pad = np.pad(mean, 1, mode="symmetric")
    h, w = mean.shape
    smooth = sum(pad[i : i + h, j : j + w] for i in range(3) for j in range(3))
    cy, cx = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    y0, y1, x0, x1 = max(cy - 2, 0), min(cy + 3, h), max(cx - 2, 0), min(cx + 3, w)
    win = np.clip(mean[y0:y1, x0:x1], 0, None)
    if win.sum() > 0:
        yy, xx = np.mgrid[y0:y1, x0:x1]
        cy, cx = float((yy * win).sum() / win.sum()), float((xx * win).sum() / win.sum())
    rr = np.hypot(*np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij"))
    peak = mean[int(round(cy)), int(round(cx))]
    r_hm = 1.0
    for r in np.arange(0.5, min(h, w) / 4, 0.5):
        ring = mean[(rr >= r - 0.5) & (rr < r + 0.5)]
        if ring.size and ring.mean() < 0.5 * peak:
            r_hm = float(r)
            break
    return (float(cy), float(cx)), r_hm


def _detector_matrix(shape, center, bf_radius, n_sectors: int = 8) -> np.ndarray:
    """Masks (h*w, 1 + n_sectors): a bright-field disc and annular dark-field sectors."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    dy, dx = yy - center[0], xx - center[1]
    rr = np.hypot(dy, dx)
    phi = np.mod(np.arctan2(dy, dx), 2 * np.pi)
    r_in, r_out = 2 * bf_radius, 0.48 * min(h, w)  # model choice: annulus out to the edge
    if r_out <= r_in:
        r_in = bf_radius
    masks = [rr <= bf_radius]
    annulus = (rr >= r_in) & (rr <= r_out)
    for k in range(n_sectors):
        sector = (phi >= 2 * np.pi * k / n_sectors) & (phi < 2 * np.pi * (k + 1) / n_sectors)
        masks.append(annulus & sector)
    return np.stack([m.ravel() for m in masks], axis=1).astype(np.float32)


def _frame_features(
    rec: TvipsRecording,
    chunk_frames: int | None,
    progress: bool,
    on_chunk: Callable[[_Features, int], None] | None = None,
) -> _Features:
    """One pass over the recording in bounded chunks (one compiled pass per chunk).

    ``on_chunk(features, n_done)``, if given, is called after each chunk with the
    features filled so far (valid for the first ``n_done`` frames; see
    :meth:`_Features.head`).

    Each chunk is read (the next one ahead, in a thread) into a buffer of raw records;
    a numba kernel (:func:`~anodemap.diffraction._stream_kernels.frame_features`, in
    parallel over frames) takes the pixels from it in their native type and returns
    exact integer sums per detector, totals, maxima and squared frame-to-frame changes;
    the last frame of each chunk is kept for the change of the next chunk's first frame.
    """
    center, r_hm = _beam_center(rec)
    bf_radius = max(1.5, 1.5 * r_hm)  # model choice: disc 1.5x the half-maximum radius
    masks = _detector_matrix(rec.frame_shape, center, bf_radius)
    run_start, run_stop, run_det = _kernels().runs_of_masks(masks > 0)
    n = rec.n_frames
    k = masks.shape[1]
    npix = rec.frame_shape[0] * rec.frame_shape[1]
    rotidx = np.zeros(n, np.int64)
    time = np.full(n, np.nan)
    det = np.zeros((n, k), np.float32)
    total = np.zeros(n)
    fmax = np.zeros(n)
    change = np.full(n, np.inf)
    prev = np.zeros(0, rec.dtype)
    prev_total = 0.0
    feat = _Features(rotidx, time, det, total, fmax, change, 0, center, bf_radius)
    if chunk_frames is None:
        chunk_frames = max(1, _FEATURE_CHUNK_BYTES // rec.record_dtype.itemsize)
    bar = _Progress("reading frames", n) if progress else None
    for start, recs in rec._iter_records(chunk_frames):
        m = len(recs)
        sl = slice(start, start + m)
        rotidx[sl] = recs["rotidx"]
        time[sl] = recs["timestamp"].astype(np.float64) + recs["ms"].astype(np.float64) / 1000.0
        if start == 0:
            feat.mode = int(recs["mode"][0])
        flat, stride, off = rec._pixels(recs)
        sums = np.zeros((m, k), np.int64)
        tot, mx, sq = _kernels().frame_features(
            flat, stride, off, m, npix, run_start, run_stop, run_det, prev, sums
        )
        det[sl] = sums
        tot = tot.astype(np.float64)
        total[sl] = tot
        fmax[sl] = mx
        tots = np.concatenate([[prev_total], tot])
        denom = np.maximum(tots[1:] + tots[:-1], 1.0)
        ch = sq / denom
        if start == 0:
            ch[0] = np.inf  # no frame before the first
        change[sl] = ch
        last = (m - 1) * stride + off
        prev = flat[last : last + npix].copy()
        prev_total = float(tot[-1])
        if bar:
            bar.update(start + m)
        if on_chunk is not None:
            on_chunk(feat, start + m)
    if bar:
        bar.close()
    if np.all(time == time[0]):
        time[:] = np.nan  # no timestamps recorded
    return feat


class _Progress:
    """Percentage progress on stderr (a bar on a terminal, quarter lines in logs)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.tty = label, max(int(total), 1), sys.stderr.isatty()
        self.next = 0.25

    def update(self, done: int) -> None:
        frac = done / self.total
        if self.tty:
            print(f"\r[anodemap] {self.label}: {100 * frac:5.1f} %", end="", file=sys.stderr)
        else:
            while frac >= self.next <= 1.0:
                print(f"[anodemap] {self.label}: {int(100 * self.next)} %", file=sys.stderr)
                self.next += 0.25

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


# ------------------------------------------------------------------- plan
@dataclass
class ScanPlan:
    """How the frames of a recording fill the rectangular scan, and how that was found.

    Attributes
    ----------
    source : list of str
        The recording's parts.
    n_frames : int
        Frames in the recording.
    frame_shape : tuple of int
    dtype : str
        Pixel type of the frames.
    first_frame, last_frame : int
        Stream indices of the first and last frame used by the scan.
    scan_shape : tuple of int
        ``(ny, nx)``.
    serpentine : bool
    hysteresis : int
        Lag of the reversed lines in frames (module docstring).
    frame_index : ndarray of int, shape (ny, nx)
        Stream index of the frame at each scan position; -1 where none was recorded
        (the output holds a frame of zeros there, and :attr:`missing` lists it).
    duplicate_frames : ndarray of int
        Stream indices of frames within the scan not used because their position was
        already recorded.
    missing : list of tuple of int
        Scan positions ``(y, x)`` with no frame.
    found_by : dict of str to str
        For each finding (``"start_end"``, ``"duplicates_drops"``, ``"line_length"``,
        ``"serpentine"``, ``"hysteresis"``): ``"headers"``, ``"content"``,
        ``"timestamps"`` or ``"user"``.
    scores : dict
        Correlation scores behind the content findings (best and runner-up).
    vbf : ndarray, shape (ny, nx)
        Virtual bright field (sum in the disc of :attr:`bf_radius` around
        :attr:`beam_center`), NaN where no frame.
    frame_max : float
        Largest pixel value among the frames used (for 8-bit scaling).
    beam_center : tuple of float
        Direct-beam (row, column) of the mean pattern.
    bf_radius : float
        Radius of the virtual bright-field disc in pixels.
    calibration : dict
        ``beam_energy`` (keV), ``reciprocal_pixel_size`` (1/Å), ``scan_step`` (nm),
        ``frame_time`` (s), each with ``*_source``; None where unknown.
    header : dict
        The TVIPS general header.
    warnings : list of str
    """

    source: list[str]
    n_frames: int
    frame_shape: tuple[int, int]
    dtype: str
    first_frame: int
    last_frame: int
    scan_shape: tuple[int, int]
    serpentine: bool
    hysteresis: int
    frame_index: np.ndarray
    duplicate_frames: np.ndarray
    missing: list[tuple[int, int]]
    found_by: dict[str, str]
    scores: dict[str, Any]
    vbf: np.ndarray
    frame_max: float
    beam_center: tuple[float, float]
    bf_radius: float
    calibration: dict[str, Any]
    header: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    recording: TvipsRecording | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The findings as plain JSON-able values (no per-pixel arrays)."""
        return {
            "source": list(self.source),
            "n_frames": int(self.n_frames),
            "frame_shape": list(self.frame_shape),
            "dtype": self.dtype,
            "first_frame": int(self.first_frame),
            "last_frame": int(self.last_frame),
            "frames_before_scan": int(self.first_frame),
            "frames_after_scan": int(self.n_frames - 1 - self.last_frame),
            "scan_shape": list(self.scan_shape),
            "serpentine": bool(self.serpentine),
            "hysteresis": int(self.hysteresis),
            "n_duplicate_frames": int(len(self.duplicate_frames)),
            "n_missing": len(self.missing),
            "missing": [list(p) for p in self.missing[:1000]],
            "found_by": dict(self.found_by),
            "scores": _plain(self.scores),
            "beam_center": [float(v) for v in self.beam_center],
            "bf_radius": float(self.bf_radius),
            "frame_max": float(self.frame_max),
            "calibration": _plain(self.calibration),
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """Human-readable report of what was found."""
        ny, nx = self.scan_shape
        by = self.found_by
        cal = self.calibration
        lines = [
            f"TVIPS recording {Path(self.source[0]).name}: {len(self.source)} part(s), "
            f"{self.n_frames} frames of {self.frame_shape[0]}x{self.frame_shape[1]} {self.dtype}",
            f"  scan frames {self.first_frame}..{self.last_frame} ({self.first_frame} before, "
            f"{self.n_frames - 1 - self.last_frame} after) [{by.get('start_end')}]",
            f"  scan shape {ny} x {nx} (lines x positions per line) [{by.get('line_length')}]",
            f"  {'serpentine' if self.serpentine else 'flyback (raster)'} scan "
            f"[{by.get('serpentine')}], hysteresis {self.hysteresis} frames "
            f"[{by.get('hysteresis')}]",
            f"  {len(self.duplicate_frames)} duplicated frame(s) skipped, {len(self.missing)} "
            f"position(s) without a frame (filled with zeros) [{by.get('duplicates_drops')}]",
            f"  direct beam at ({self.beam_center[0]:.1f}, {self.beam_center[1]:.1f}) px, "
            f"virtual bright field disc radius {self.bf_radius:.1f} px",
        ]
        for key, unit in (
            ("beam_energy", "keV"),
            ("reciprocal_pixel_size", "1/Å"),
            ("scan_step", "nm"),
            ("frame_time", "s"),
        ):
            v = cal.get(key)
            txt = "unknown" if v is None else f"{v:.6g} {unit}"
            lines.append(f"  {key.replace('_', ' ')}: {txt} [{cal.get(key + '_source')}]")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _acquisition_rows(rows: np.ndarray, nx: int, serpentine: bool, hysteresis: int) -> np.ndarray:
    """Acquisition step of each scan position of the given scan rows, (len(rows), nx)."""
    rows = np.asarray(rows, dtype=np.int64)
    j = np.arange(nx, dtype=np.int64)
    jj = np.broadcast_to(j, (rows.size, nx))
    if serpentine:
        # on odd lines the frame j-th on the line shows x = (nx - 1 - j + h) % nx
        odd = (rows % 2 == 1)[:, None]
        jj = np.where(odd, (nx - 1 - j + hysteresis) % nx, j)
    return rows[:, None] * nx + jj


def _acquisition_map(ny: int, nx: int, serpentine: bool, hysteresis: int) -> np.ndarray:
    """Acquisition step of each scan position (ny, nx), the inverse of the frame order."""
    return _acquisition_rows(np.arange(ny), nx, serpentine, hysteresis)


def _mean_of_columns(cols: list[np.ndarray]) -> np.ndarray:
    """``np.stack(cols, -1).mean(axis=-1)`` with the same bits, without the stack.

    numpy sums a short contiguous last axis pairwise: eight partial sums combined as
    ``((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7))``, then the rest one by one
    (fewer than eight: one by one). Doing those additions column by column gives the
    same numbers several times faster than a reduction over an axis of nine.
    """
    k = len(cols)
    if 8 <= k < 16:
        c = cols
        s = ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]))
        for extra in c[8:]:
            s = s + extra
    else:
        s = np.stack(cols, axis=-1).sum(axis=-1)
    return s / s.dtype.type(k)


def _line_pairs_score(cols: list[np.ndarray], n: int, nx: int, serpentine: bool, h: int) -> float:
    """Mean correlation of the frames at (y, x) and (y + 1, x) for one scan geometry.

    ``cols`` are the standardised features of the acquisition steps, one array per
    virtual detector.
    """
    ny = n // nx
    if ny < 2 or nx < 2:
        return -np.inf
    ys = np.unique(np.linspace(0, ny - 2, min(ny - 1, 64)).astype(int))  # at most 64 pairs
    a = _acquisition_rows(ys, nx, serpentine, h)
    b = _acquisition_rows(ys + 1, nx, serpentine, h)
    prod = _mean_of_columns([c[a] * c[b] for c in cols])  # NaN where a position is missing
    good = np.isfinite(prod)
    return float(prod[good].mean()) if good.any() else -np.inf


def _line_pair_scores(z: np.ndarray, n: int, nx: int, serpentine: bool, hs) -> list[float]:
    """:func:`_line_pairs_score` for each hysteresis in ``hs`` (the same numbers).

    With 8 to 15 detectors (the stream's 1 + 8) the pairs' products come from one
    compiled call for all ``hs``; otherwise from :func:`_line_pairs_score` one by one.
    """
    hs = np.asarray(list(hs), dtype=np.int64)
    ny = n // nx
    k = z.shape[1]
    if ny < 2 or nx < 2:
        return [-np.inf] * hs.size
    if not (8 <= k < 16 and z.dtype == np.float32):
        cols = [np.ascontiguousarray(z[:, c]) for c in range(k)]
        return [_line_pairs_score(cols, n, nx, serpentine, int(h)) for h in hs]
    ys = np.unique(np.linspace(0, ny - 2, min(ny - 1, 64)).astype(int)).astype(np.int64)
    prod = np.empty((hs.size, ys.size * nx), np.float32)
    _kernels().line_pair_products(np.ascontiguousarray(z), nx, ys, bool(serpentine), hs, prod)
    out = []
    for p in prod:
        good = np.isfinite(p)  # NaN where a position is missing
        out.append(float(p[good].mean()) if good.any() else -np.inf)
    return out


def _best_geometry(z: np.ndarray, n: int, nx: int, max_h: int | None, serp_fixed, h_fixed):
    """Best (score, serpentine, h) for a line length; each part may be fixed by the user."""
    best = (-np.inf, False, 0)
    serps = [serp_fixed] if serp_fixed is not None else [False, True]
    for serp in serps:
        if not serp:
            hs = [0]
        elif h_fixed is not None:
            hs = [int(h_fixed)]
        else:
            hmax = min(nx // 4, 16) if max_h is None else int(max_h)
            hs = list(range(-hmax, hmax + 1))
        for h, s in zip(hs, _line_pair_scores(z, n, nx, serp, hs), strict=True):
            if s > best[0] + 1e-12 or (abs(s - best[0]) <= 1e-12 and abs(h) < abs(best[2])):
                best = (s, serp, h)
    return best


def _autocorr_candidates(z: np.ndarray, n_peaks: int = 8) -> list[int]:
    """Line-length candidates from local peaks of the feature autocorrelation."""
    zz = np.nan_to_num(z)
    n = zz.shape[0]
    nfft = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(zz, nfft, axis=0)
    ac = np.fft.irfft((f * f.conj()).real.sum(axis=1), nfft)[:n]
    ac = ac / np.maximum(n - np.arange(n), 1)
    lags = np.arange(3, n // 2)
    if lags.size == 0:
        return []
    peak = (ac[lags] > ac[lags - 1]) & (ac[lags] >= ac[lags + 1])
    cand = lags[peak]
    cand = cand[np.argsort(-ac[cand])][:n_peaks]
    out = set()
    for c in cand:
        out.add(int(c))
        if c % 2 == 0:
            out.add(int(c // 2))  # serpentine scans peak at two lines
    return sorted(out)


def _find_line_length(z, n, candidates, max_h, serp_fixed, h_fixed, exact: bool):
    """Choose the line length by the local peak of the line-pair correlation."""
    cache: dict[int, tuple] = {}

    def geom(L):
        if L not in cache:
            if L == 1:  # "lines" of one frame: consecutive frames (NaN: a missing position)
                prod = _mean_of_columns([z[:-1, c] * z[1:, c] for c in range(z.shape[1])])
                good = np.isfinite(prod)
                cache[L] = (float(prod[good].mean()) if good.any() else -np.inf, False, 0)
            else:
                cache[L] = _best_geometry(z, n, L, max_h, serp_fixed, h_fixed)
        return cache[L]

    rows = []
    for L in candidates:
        if L < 2 or n // L < 2 or (exact and n % L):
            continue
        s, serp, h = geom(L)
        # local peak: frames one line apart must agree better than one frame off (for
        # lines of 2, one frame off is the next frame: on a specimen whose content
        # changes slowly along the line, frames 2 apart agree well without being a line
        # apart, but the next frame agrees better still)
        neighbours = [geom(L2)[0] for L2 in (L - 1, L + 1) if L2 >= 1 and n // L2 >= 2]
        prominence = s - max(neighbours) if neighbours else s
        rows.append((s, prominence, L, serp, h))
    if not rows:
        return None, []
    peaked = [r for r in rows if r[1] > 0] or rows
    peaked.sort(key=lambda r: (-r[0], r[2]))
    return peaked[0], peaked[1:3]


# Content-based idle detection (model choices): a frame is dark (beam blanked) below 20 %
# of the median total intensity; frames are "the same" when their virtual detectors
# differ from the run's first frame by at most 9 times the noise variance expected for
# identical frames (3 sigma); a run of at least 5 such frames at either end of the
# recording is idle (beam parked), shorter runs are taken as part of the scan.
_DARK_FRACTION = 0.2
_SAME_FRAME_NOISE = 9.0
_MIN_IDLE_RUN = 5


def _static_run(det: np.ndarray, gain: float) -> int:
    """Number of leading frames whose detectors equal the first frame's up to noise."""
    ref = det[0]
    d = np.square(det - ref) / (gain * np.maximum(det + ref, 1.0))
    same = d.mean(axis=1) <= _SAME_FRAME_NOISE
    return int(np.argmin(same)) if not same.all() else int(same.size)


def _scan_span(feat: _Features, lo: int, hi: int) -> tuple[int, int, int, int] | None:
    """First and last frame of the scan from image content (blanked or parked beam), and
    how many bright frames before and after them were taken as the parked beam."""
    total = feat.total
    bright = total > _DARK_FRACTION * np.median(total[lo : hi + 1])
    idx = np.nonzero(bright[lo : hi + 1])[0]
    if idx.size == 0:
        return None
    s, e = lo + int(idx[0]), lo + int(idx[-1])
    # detector gain from the per-pixel change of consecutive frames (median: most
    # consecutive frames differ by little more than noise)
    pix = feat.change[bright & np.isfinite(feat.change)]
    gain = float(np.median(pix)) if pix.size else 1.0
    det = feat.detectors.astype(np.float64)
    before = after = 0
    k = _static_run(det[s : e + 1], gain)
    if _MIN_IDLE_RUN <= k < e - s + 1:
        s += k
        before = k
    k = _static_run(det[s : e + 1][::-1], gain)
    if _MIN_IDLE_RUN <= k < e - s + 1:
        e -= k
        after = k
    return s, e, before, after


def reconstruct_scan(
    source: str | os.PathLike | TvipsRecording,
    scan_shape: tuple[int, int] | None = None,
    *,
    first_frame: int | None = None,
    last_frame: int | None = None,
    serpentine: bool | None = None,
    hysteresis: int | None = None,
    use_headers: bool = True,
    max_hysteresis: int | None = None,
    scan_step: float | None = None,
    reciprocal_pixel_size: float | None = None,
    beam_energy: float | None = None,
    chunk_frames: int | None = None,
    progress: bool = False,
    allow_truncated: bool = False,
) -> ScanPlan:
    """Find how the frames of a TVIPS recording fill a rectangular scan.

    Every finding can be given instead (it then wins and is reported as ``"user"``).

    Parameters
    ----------
    source : str, path-like or TvipsRecording
        The first part ``NAME_000.tvips``.
    scan_shape : (ny, nx), optional
        Lines and positions per line.
    first_frame, last_frame : int, optional
        Stream indices of the scan's first and last frame.
    serpentine : bool, optional
        Odd lines recorded in reverse.
    hysteresis : int, optional
        Lag of the reversed lines in frames (serpentine only).
    use_headers : bool
        Use the rotator index (if the headers carry one); False uses content only.
    max_hysteresis : int, optional
        Largest hysteresis tried (default a quarter line, at most 16 frames).
    scan_step : float, optional
        Scan step in nm (TVIPS headers do not record it).
    reciprocal_pixel_size : float, optional
        Pattern pixel size in 1/Å (default from the header's ``pixelsize`` read as 1/nm,
        as rosettasciio does for diffraction frames).
    beam_energy : float, optional
        keV (default the header's ``ht``).
    chunk_frames : int, optional
        Frames per read in the pass over the recording (default about 2 MiB).
    progress : bool
        Report progress of the pass on stderr.
    allow_truncated : bool
        Skip an incomplete last frame of a part instead of failing.

    Returns
    -------
    ScanPlan

    Raises
    ------
    AnodemapInputError
        A scan shape or frame range that does not fit the frames (the message names it).
    AnodemapIOError
        Missing or truncated parts (the message names the file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from anodemap.synth.tvips import write_tvips_recording
    >>> sim = write_tvips_recording(pathlib.Path(tempfile.mkdtemp()) / "s", headers=False)
    >>> plan = reconstruct_scan(sim.paths[0])
    >>> plan.first_frame == sim.first_frame, plan.found_by["line_length"]
    (True, 'content')
    """
    rec = (
        source
        if isinstance(source, TvipsRecording)
        else TvipsRecording(source, allow_truncated=allow_truncated)
    )
    scan_shape = _check_overrides(rec, scan_shape, first_frame, last_frame)
    feat = _frame_features(rec, chunk_frames, progress)
    return _plan_from_features(
        rec,
        feat,
        scan_shape,
        first_frame=first_frame,
        last_frame=last_frame,
        serpentine=serpentine,
        hysteresis=hysteresis,
        use_headers=use_headers,
        max_hysteresis=max_hysteresis,
        scan_step=scan_step,
        reciprocal_pixel_size=reciprocal_pixel_size,
        beam_energy=beam_energy,
    )


def _check_overrides(rec, scan_shape, first_frame, last_frame) -> tuple[int, int] | None:
    """Validate the user's scan shape and frame range against the recording."""
    n_total = rec.n_frames
    for name, v in (("--first-frame", first_frame), ("--last-frame", last_frame)):
        if v is not None and not 0 <= int(v) < n_total:
            raise AnodemapInputError(
                f"{name} {v} is outside the {n_total} frames (0..{n_total - 1}) of {rec.parts[0]}"
            )
    if scan_shape is not None:
        scan_shape = tuple(int(v) for v in scan_shape)
        if len(scan_shape) != 2 or min(scan_shape) < 1:
            raise AnodemapInputError(
                f"--scan-shape {scan_shape}: must be two positive integers NY NX"
            )
    return scan_shape


def ny_nx(shape: tuple[int, ...]) -> str:
    """A scan shape as the command line takes it: ``"NY NX"``."""
    return " ".join(str(int(v)) for v in shape)


def _plan_from_features(
    rec,
    feat: _Features,
    scan_shape: tuple[int, int] | None,
    *,
    first_frame: int | None = None,
    last_frame: int | None = None,
    serpentine: bool | None = None,
    hysteresis: int | None = None,
    use_headers: bool = True,
    max_hysteresis: int | None = None,
    scan_step: float | None = None,
    reciprocal_pixel_size: float | None = None,
    beam_energy: float | None = None,
    prefix: bool = False,
) -> ScanPlan:
    """The scan plan from the per-frame features (:func:`reconstruct_scan` after its pass).

    ``prefix=True``: the features are those of the recording's first ``rec.n_frames``
    frames only (a provisional plan while the pass is still reading): the line length
    is then searched among the content's autocorrelation peaks, not among the divisors
    of the positions counted so far, and shapes are not checked against the frame count.
    """
    n_total = rec.n_frames
    found: dict[str, str] = {}
    notes: list[str] = []
    idle: dict[str, int] = {}  # frames taken for the parked beam (content only)
    # a recording cut short (allow_truncated): the positions left are not a whole scan, so
    # the shape is not taken from their count, and the positions not recorded are filled
    cut = [Path(p).name for p in getattr(rec, "truncated", None) or []]
    truncated = bool(cut) and not prefix
    lo = int(first_frame) if first_frame is not None else 0
    hi = int(last_frame) if last_frame is not None else n_total - 1
    if hi < lo:
        raise AnodemapInputError(f"--last-frame {hi} is before --first-frame {lo}")
    r = feat.rotidx
    in_range = np.zeros(n_total, bool)
    in_range[lo : hi + 1] = True
    has_rot = use_headers and np.any(np.diff(r[in_range]) > 0)
    dup_frames = np.zeros(0, np.int64)

    if has_rot:
        # positions from the rotator index: rotidx k (1-based) is acquisition step k - 1
        valid = in_range & (r > 0)
        cand = np.nonzero(valid)[0]
        # the scan is the first run in which rotidx does not decrease
        dec = np.nonzero(np.diff(r[cand]) < 0)[0]
        if dec.size:
            cand = cand[: dec[0] + 1]
            notes.append(
                f"the rotator index restarts at frame {int(np.nonzero(valid)[0][dec[0] + 1])}; "
                "only the first scan was used (pass --first-frame to choose another)"
            )
        steps = r[cand] - 1
        uniq, first_pos = np.unique(steps, return_index=True)
        pos_frame_full = -np.ones(int(steps.max()) + 1, np.int64)
        pos_frame_full[uniq] = cand[first_pos]
        dup_mask = np.ones(cand.size, bool)
        dup_mask[first_pos] = False
        dup_frames = cand[dup_mask]
        n_pos = pos_frame_full.size
        found["start_end"] = "headers"
        found["duplicates_drops"] = "headers"
        pos_frame = pos_frame_full
    else:
        if first_frame is None or last_frame is None:
            span = _scan_span(feat, lo, hi)
            if span is None:
                raise AnodemapInputError(
                    f"{rec.parts[0]}: no frames with a scanning beam were found; pass "
                    "--first-frame and --scan-shape NY NX"
                )
            if first_frame is None:
                lo = span[0]
                idle["before"] = span[2]
            if last_frame is None:
                hi = span[1]
                idle["after"] = span[3]
        found["start_end"] = (
            "user" if first_frame is not None and last_frame is not None else "content"
        )
        if scan_shape is not None and last_frame is None:
            hi = lo + scan_shape[0] * scan_shape[1] - 1  # the user's shape sets the end
        frames = np.arange(lo, min(hi, n_total - 1) + 1)
        steps = np.arange(frames.size)
        t = feat.time[frames]
        found["duplicates_drops"] = "not determined (no rotator index)"
        if frames.size > 2 and np.all(np.isfinite(t)):
            dt = np.diff(t)
            tau = float(np.median(dt))
            if tau >= 1e-3 and np.all(dt > 0):  # millisecond timestamps resolve the frames
                gap = np.maximum(np.rint(dt / tau).astype(np.int64), 1)
                steps = np.concatenate([[0], np.cumsum(gap)])
                found["duplicates_drops"] = "timestamps (drops only)"
        n_pos = int(steps[-1]) + 1
        pos_frame = -np.ones(n_pos, np.int64)
        pos_frame[steps] = frames
        if scan_shape is not None and not prefix and not truncated:
            need = scan_shape[0] * scan_shape[1]
            if need > n_pos and lo + need - 1 >= n_total:
                raise AnodemapInputError(
                    f"--scan-shape {ny_nx(scan_shape)} needs {need} frames from frame {lo}, but "
                    f"{rec.parts[0]} holds {n_total} frames ({n_total - lo} from frame {lo}); "
                    "check --scan-shape and --first-frame"
                )
    if first_frame is not None or last_frame is not None:
        found["start_end"] = "user" if not has_rot else "headers within user range"

    # standardised virtual-detector features of each acquisition step
    z = np.full((n_pos, feat.detectors.shape[1]), np.nan, np.float32)
    ok = pos_frame >= 0
    z[ok] = feat.detectors[pos_frame[ok]]
    mu = np.nanmean(z, axis=0)
    sd = np.nanstd(z, axis=0)
    z = (z - mu) / np.where(sd > 0, sd, 1.0)

    scores: dict[str, Any] = {}
    if scan_shape is not None:
        ny, nx = scan_shape
        if truncated and ny * nx > n_pos:
            notes.append(
                f"the recording is truncated ({', '.join(cut)}): {ny * nx - n_pos} of the "
                f"{ny * nx} positions of the given scan shape {ny} x {nx} were not recorded; "
                "they are filled with zeros and listed as missing"
            )
        elif ny * nx != n_pos and not prefix:
            if has_rot:
                raise AnodemapInputError(
                    f"--scan-shape {ny} {nx} has {ny * nx} positions, but the rotator index of "
                    f"{rec.parts[0]} counts {n_pos} positions; pass a shape with NY x NX = "
                    f"{n_pos}, or --no-headers to ignore the rotator index"
                )
            if ny * nx < n_pos:
                notes.append(f"{n_pos - ny * nx} frame(s) after the given scan shape are not used")
        found["line_length"] = "user"
        s, serp, h = _best_geometry(
            z, min(n_pos, ny * nx), nx, max_hysteresis, serpentine, hysteresis
        )
        if ny < 2:
            serp = bool(serpentine) if serpentine is not None else False
            h = int(hysteresis) if (hysteresis is not None and serp) else 0
        scores["line_pair_correlation"] = s
    else:
        exact = has_rot and not prefix and not truncated
        if exact:
            cands = [d for d in range(2, n_pos // 2 + 1) if n_pos % d == 0]
            if len(cands) > 200:  # many divisors: keep those near the content's peaks
                ac = _autocorr_candidates(z, 16)
                near = {c + k for c in ac for k in (-2, -1, 0, 1, 2)}
                cands = [c for c in cands if c in near] or cands[:200]
        elif truncated:
            # no count to divide: every length near the content's strongest peaks (a scan
            # cut short has weaker peaks; the line-pair correlation decides among them)
            ac = _autocorr_candidates(z, 16)
            cands = sorted({c + k for c in ac for k in (-2, -1, 0, 1, 2) if c + k >= 2})
        else:
            cands = _autocorr_candidates(z)
        best, others = _find_line_length(
            z, n_pos, cands, max_hysteresis, serpentine, hysteresis, exact
        )
        if best is None:
            raise AnodemapInputError(
                f"{rec.parts[0]}: could not find the line length from {n_pos} scan positions; "
                "give the scan shape: --scan-shape NY NX"
            )
        s, prom, nx, serp, h = best
        # a truncated recording: every line begun is a line of the scan (its missing end
        # filled); lines never begun cannot be counted
        ny = -(-n_pos // nx) if truncated else n_pos // nx
        found["line_length"] = "content"
        scores["line_pair_correlation"] = s
        scores["peak_prominence"] = prom
        scores["runners_up"] = [
            {"nx": o[2], "serpentine": o[3], "hysteresis": o[4], "correlation": o[0]}
            for o in others
        ]
        if s < 0.3 or prom <= 0:  # model choice: weak evidence
            notes.append(
                f"line length {nx} found with weak evidence (correlation {s:.2f}, prominence "
                f"{prom:.2f}); check it, and give the scan shape with --scan-shape NY NX "
                "(scan_shape) if it is wrong"
            )
        if truncated:
            second = (
                f"; next best line length {others[0][2]} (correlation {others[0][0]:.2f})"
                if others
                else ""
            )
            notes.append(
                f"the recording is truncated ({', '.join(cut)}): the scan shape {ny} x {nx} "
                f"is found from the {n_pos} positions recorded before the cut, not from the "
                f"scan that was set up: the line length {nx} from the content (line-pair "
                f"correlation {s:.2f}, peak prominence {prom:.2f}{second}), {ny} lines begun"
                + (
                    f", the last {ny * nx - n_pos} position(s) of the last line filled with "
                    "zeros and listed as missing"
                    if ny * nx > n_pos
                    else ""
                )
                + "; the scan may have had more lines: if you know its shape, give it with "
                "--scan-shape NY NX"
            )
            scores["truncated"] = {"parts": cut, "positions_recorded": int(n_pos)}
        elif not exact and n_pos % nx:
            notes.append(
                f"{n_pos} scan frames are not a whole number of lines of {nx}; the last "
                f"{n_pos % nx} frame(s) are not used"
            )
    for end, k in idle.items():
        # a parked beam is one pattern; so may be a whole line through vacuum or a
        # uniform region, and from the content alone the two look the same
        if k >= nx:
            which = "first" if end == "before" else "last"
            notes.append(
                f"{k} frames {end} the scan are alike and were taken for the parked beam; "
                f"they are {k // nx} line(s) or more of {nx}: if the scan's {which} line "
                f"looks like the parked beam, pass --{which}-frame N ({which}_frame) or "
                "--scan-shape NY NX (scan_shape)"
            )
    if idle:
        scores["idle_frames"] = dict(idle)
    found["serpentine"] = "user" if serpentine is not None else "content"
    found["hysteresis"] = (
        "user" if hysteresis is not None else ("content" if serp else "not applicable")
    )
    serp = bool(serp)
    h = int(h) if serp else 0
    npos_used = ny * nx
    if pos_frame.size < npos_used:  # positions after the last frame: missing
        pos_frame = np.concatenate([pos_frame, -np.ones(npos_used - pos_frame.size, np.int64)])
    amap = _acquisition_map(ny, nx, serp, h)
    frame_index = pos_frame[amap]
    used = frame_index[frame_index >= 0]
    if used.size == 0:
        raise AnodemapInputError(f"{rec.parts[0]}: no frame falls inside the scan")
    missing = [(int(y), int(x)) for y, x in zip(*np.nonzero(frame_index < 0), strict=True)]
    if missing:
        notes.append(f"{len(missing)} scan position(s) have no frame and are filled with zeros")
    vbf = np.full((ny, nx), np.nan)
    vbf[frame_index >= 0] = feat.detectors[used, 0]
    first_used, last_used = int(used.min()), int(used.max())
    if dup_frames.size:
        dup_frames = dup_frames[(dup_frames >= first_used) & (dup_frames <= last_used)]

    calib = _calibration(rec, feat, used, scan_step, reciprocal_pixel_size, beam_energy)
    return ScanPlan(
        source=[str(p) for p in rec.parts],
        n_frames=n_total,
        frame_shape=rec.frame_shape,
        dtype=str(rec.dtype),
        first_frame=first_used,
        last_frame=last_used,
        scan_shape=(int(ny), int(nx)),
        serpentine=serp,
        hysteresis=h,
        frame_index=frame_index,
        duplicate_frames=dup_frames,
        missing=missing,
        found_by=found,
        scores=scores,
        vbf=vbf,
        frame_max=float(feat.fmax[used].max()),
        beam_center=feat.center,
        bf_radius=feat.bf_radius,
        calibration=calib,
        header=rec.header,
        warnings=notes,
        recording=rec,
    )


def _calibration(rec, feat, used, scan_step, reciprocal_pixel_size, beam_energy) -> dict:
    """Calibrations from the headers, each overridable, with its source."""
    cal: dict[str, Any] = {}
    if beam_energy is not None:
        cal["beam_energy"], cal["beam_energy_source"] = float(beam_energy), "user"
    elif rec.header["ht"] > 0:
        ht = rec.header["ht"]
        # rosettasciio reads/writes ``ht`` as the beam energy in kV; a value above 1000
        # can only be volts (model choice)
        cal["beam_energy"] = ht / 1000.0 if ht > 1000 else float(ht)
        cal["beam_energy_source"] = "header ht"
    else:
        cal["beam_energy"], cal["beam_energy_source"] = None, "unknown"
    if reciprocal_pixel_size is not None:
        cal["reciprocal_pixel_size"] = float(reciprocal_pixel_size)
        cal["reciprocal_pixel_size_source"] = "user"
    elif rec.header["pixelsize"] > 0 and feat.mode == 2:
        cal["reciprocal_pixel_size"] = rec.header["pixelsize"] / 10.0
        cal["reciprocal_pixel_size_source"] = (
            "header pixelsize read as 1/nm per pixel (rosettasciio's reading; an integer)"
        )
    else:
        cal["reciprocal_pixel_size"], cal["reciprocal_pixel_size_source"] = None, "unknown"
    if scan_step is not None:
        cal["scan_step"], cal["scan_step_source"] = float(scan_step), "user"
    else:
        cal["scan_step"], cal["scan_step_source"] = None, "unknown (not in TVIPS headers)"
    t = feat.time[np.sort(used)]
    if t.size > 1 and np.all(np.isfinite(t)):
        cal["frame_time"] = float(np.median(np.diff(t)))
        cal["frame_time_source"] = "frame timestamps"
        cal["start_time"] = float(t[0])
    else:
        cal["frame_time"], cal["frame_time_source"] = None, "unknown"
    return cal


# ------------------------------------------------------------ 4D dataset
def _read_rows(recording: TvipsRecording, index: np.ndarray, release: bool = False) -> np.ndarray:
    """One output chunk: the frames of ``index`` (rows, nx), zeros where -1."""
    frames = recording.read_frames(index.ravel(), release=release)
    return frames.reshape(index.shape + recording.frame_shape)


def plan_to_dataset(plan: ScanPlan, *, rows_per_chunk: int | None = None):
    """The rectangular 4D dataset of a plan, lazy (dask), read chunk by chunk when computed.

    Axes: ``y``, ``x`` (nm if the scan step is known, else uncalibrated), ``ky``, ``kx``
    (1/Å with zero on the direct beam, if the reciprocal pixel size is known).

    Parameters
    ----------
    plan : ScanPlan
    rows_per_chunk : int, optional
        Scan rows per chunk (default about 8 MiB per chunk).

    Returns
    -------
    anodemap.io.Dataset

    Examples
    --------
    >>> ds = plan_to_dataset(reconstruct_scan("scan_000.tvips"))  # doctest: +SKIP
    >>> ds.data.shape  # doctest: +SKIP
    (16, 20, 32, 32)
    """
    return _plan_to_dataset(plan, rows_per_chunk, release=False)


def _plan_to_dataset(plan: ScanPlan, rows_per_chunk: int | None, release: bool):
    """:func:`plan_to_dataset`; ``release``: each chunk's frames leave the page cache
    once read (:meth:`TvipsRecording.release`), for a dataset computed once (a
    conversion)."""
    import dask.array as da

    rec = plan.recording or TvipsRecording(plan.source[0])
    ny, nx = plan.scan_shape
    h, w = plan.frame_shape
    rows = int(rows_per_chunk or _rows_per_block((ny, nx, h, w), rec.dtype.itemsize))
    name = f"tvips-scan-{uuid.uuid4().hex}"
    dsk = {}
    starts = list(range(0, ny, rows))
    for i, r0 in enumerate(starts):
        index = plan.frame_index[r0 : r0 + rows].copy()
        dsk[(name, i, 0, 0, 0)] = (_read_rows, rec, index, release)
    chunks = (tuple(min(rows, ny - r0) for r0 in starts), (nx,), (h,), (w,))
    data = da.Array(dsk, name, chunks=chunks, dtype=rec.dtype)
    return _plan_dataset(plan, data)


def _plan_dataset(plan: ScanPlan, data: Any):
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


# -------------------------------------------------------------- blockfile
_BLO_CAMERA_LENGTH_UNIT_MM = 0.1
# Camera length written when none is known (model choice: that of test1.blo).
_BLO_DEFAULT_CAMERA_LENGTH_MM = 200.0


def blo_calibration(header: dict[str, Any]) -> dict[str, float | None]:
    """Reciprocal pixel size (1/Å), beam energy (keV) and camera length (mm) of a .blo header.

    ``s = (100 / SDP) [cm] / (L [cm] * λ [Å])``, with the header units described above.

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
        _kernels().apply_lut(np.ascontiguousarray(block).reshape(-1), lut, out.reshape(-1))
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
        :func:`stream_to_file` therefore saturates the direct beam by default
        (:data:`BLO_SATURATED_FRACTION`); pass such a range here too.
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
        data = da.from_array(data, chunks=(_rows_per_block(data.shape, 1), -1, -1, -1))
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
    tmp = path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        _write_blockfile(tmp, signal, nav_u8, progress)
        if not sdp:
            # uncalibrated: SDP = 0, which rosettasciio's reader takes as "scale 1"
            _write_header_field(tmp, "SDP", 0)
        os.replace(tmp, path)
    except Exception as err:
        if tmp.exists():
            tmp.unlink()
        if isinstance(err, AnodemapInputError | AnodemapIOError):
            raise
        raise AnodemapIOError(
            f"{path}: could not be written ({type(err).__name__}: {err})"
        ) from err
    return path


def _rows_per_block(shape: tuple[int, ...], itemsize: int) -> int:
    """Scan rows per block of about :data:`_CHUNK_BYTES`."""
    row_bytes = int(np.prod(shape[1:])) * itemsize
    return int(max(1, min(shape[0], _CHUNK_BYTES // max(row_bytes, 1))))


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
        with _dask_progress(progress):
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


# ------------------------------------------------------------------ driver
def stream_to_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike | Sequence[str | os.PathLike],
    scan_shape: tuple[int, int] | None = None,
    *,
    first_frame: int | None = None,
    last_frame: int | None = None,
    serpentine: bool | None = None,
    hysteresis: int | None = None,
    use_headers: bool = True,
    scan_step: float | None = None,
    reciprocal_pixel_size: float | None = None,
    beam_energy: float | None = None,
    camera_length: float | None = None,
    intensity_range: tuple[float, float] | None = None,
    rows_per_chunk: int | None = None,
    compressor: Any = "default",
    allow_truncated: bool = False,
    overwrite: bool = True,
    progress: bool = True,
    single_pass: bool = True,
) -> ScanPlan:
    """Convert a TVIPS recording into a rectangular 4D ``.zspy``/``.hspy`` or ``.blo`` file.

    One pass over the frames finds the scan (:func:`reconstruct_scan`; every argument
    below that is given overrides the finding), a second pass writes the dataset chunk
    by chunk (threads: each reads the frames of its scan rows, puts them in scan
    order and compresses or converts them). For ``.zspy`` the two passes are one by
    default: rows are written while the recording is still being read, from a
    provisional plan of the frames read so far, and checked against the final plan
    when the reading ends (what differs is written again, so the file is the same).
    Memory is bounded by a few chunks (about 8 MiB of frames each) plus a few numbers
    per frame, whatever the recording's length.

    Parameters
    ----------
    input_path : str or path-like
        ``NAME_000.tvips`` (the other parts are found beside it).
    output_path : str or path-like, or a sequence of them
        ``.zspy`` (chunked, lazy writing), ``.hspy``, or ``.blo`` (8-bit NanoMegas
        blockfile with virtual bright field and calibrations). Several outputs (e.g. a
        ``.zspy`` and a ``.blo``) are written from one search of the scan: a ``.zspy``
        first, while the recording is read, then each other one in a pass of its own.
    scan_shape : (ny, nx), optional
        Found when not given.
    first_frame, last_frame, serpentine, hysteresis, use_headers
        See :func:`reconstruct_scan`.
    scan_step : float, optional
        nm per scan step (TVIPS headers do not record it).
    reciprocal_pixel_size : float, optional
        1/Å per pattern pixel.
    beam_energy : float, optional
        keV.
    camera_length : float, optional
        mm, written to ``.blo`` with the reciprocal calibration (:func:`write_blo`).
    intensity_range : (lo, hi), optional
        ``.blo`` only: counts mapped to 0 and 255. Default: 0 and the level that 0.1 % of
        the pixels outside the direct beam exceed (:data:`BLO_SATURATED_FRACTION`; the
        direct beam saturates); ``plan.scores["blo_intensity_range"]`` says what was used.
    rows_per_chunk : int, optional
        Scan rows per output chunk (default about 8 MiB of frames per chunk).
    compressor : "default", None or numcodecs codec
        ``.zspy`` only. ``"default"``: Blosc with the settings of
        :data:`ZSPY_COMPRESSOR` (LZ4 after bit shuffle: about 10 % larger than
        rosettasciio's default, compressed about 6x and read about 2x faster);
        ``None``: rosettasciio's default (Blosc zstd level 1, byte shuffle); or any
        numcodecs codec, e.g. ``numcodecs.Blosc("zstd", 1, numcodecs.Blosc.BITSHUFFLE)``
        (the size of rosettasciio's default at 3x its speed).
    allow_truncated : bool
        Skip an incomplete last frame of a part instead of failing.
    overwrite : bool
        Replace an existing output.
    progress : bool
        Progress on stderr.
    single_pass : bool
        ``.zspy`` only: write while reading (above); False reads the recording twice.
        ``plan.scores["single_pass"]`` says how many blocks of rows were written while
        reading and how many after.

    Returns
    -------
    ScanPlan
        What was found and used (``plan.summary()`` for the report).

    Examples
    --------
    >>> plan = stream_to_file("scan_000.tvips", "scan.zspy")  # doctest: +SKIP
    >>> print(plan.summary())  # doctest: +SKIP
    """
    _check_numbers(scan_step, reciprocal_pixel_size, beam_energy, camera_length, intensity_range)
    outs = _output_paths(output_path, overwrite)
    plan_kw = dict(
        first_frame=first_frame,
        last_frame=last_frame,
        serpentine=serpentine,
        hysteresis=hysteresis,
        use_headers=use_headers,
    )
    cal_kw = dict(
        scan_step=scan_step, reciprocal_pixel_size=reciprocal_pixel_size, beam_energy=beam_energy
    )
    write_kw = dict(
        intensity_range=intensity_range,
        camera_length=camera_length,
        rows_per_chunk=rows_per_chunk,
        compressor=compressor,
        progress=progress,
    )
    if outs[0].suffix.lower() == ".zspy" and single_pass:
        from anodemap.diffraction._single_pass import stream_to_zspy

        rec = TvipsRecording(input_path, allow_truncated=allow_truncated)
        shape = _check_overrides(rec, scan_shape, first_frame, last_frame)
        plan = stream_to_zspy(
            rec,
            outs[0],
            shape,
            plan_kw,
            calibration_kw=cal_kw,
            rows_per_chunk=rows_per_chunk,
            compressor=_zspy_compressor(compressor),
            progress=progress,
        )
        rest = outs[1:]
    else:
        plan = reconstruct_scan(
            input_path,
            scan_shape,
            **plan_kw,
            **cal_kw,
            progress=progress,
            allow_truncated=allow_truncated,
        )
        if progress:
            print(plan.summary(), file=sys.stderr)
        rest = outs
    for out in rest:
        _write_planned(plan, out, **write_kw)
    return plan


def _check_numbers(scan_step, reciprocal_pixel_size, beam_energy, camera_length, intensity_range):
    """Refuse calibrations and an intensity range out of range before anything is read,
    naming the command-line option (and the Python name)."""
    for option, name, value in (
        ("--scan-step", "scan_step", scan_step),
        ("--reciprocal-pixel-size", "reciprocal_pixel_size", reciprocal_pixel_size),
        ("--beam-energy", "beam_energy", beam_energy),
        ("--camera-length", "camera_length", camera_length),
    ):
        if value is not None and not (math.isfinite(float(value)) and float(value) > 0):
            raise AnodemapInputError(f"{option} {value} ({name}): must be a positive number")
    if intensity_range is not None:
        lo, hi = (float(v) for v in intensity_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise AnodemapInputError(
                f"--intensity-range {lo:g} {hi:g} (intensity_range): give two finite counts, "
                "LO < HI"
            )


def _output_paths(output_path: Any, overwrite: bool) -> list[Path]:
    """The outputs of :func:`stream_to_file`, checked before anything is read; a
    ``.zspy`` first (it can be written while the recording is read)."""
    many = isinstance(output_path, list | tuple)
    outs = [Path(p) for p in (output_path if many else [output_path])]
    if not outs:
        raise AnodemapInputError("no output given: name a .zspy, .hspy or .blo file")
    for out in outs:
        if out.suffix.lower() not in (".zspy", ".hspy", ".blo"):
            raise AnodemapInputError(
                f"{out}: output must be .zspy, .hspy or .blo (the format follows the extension)"
            )
        if out.exists() and not overwrite:
            raise AnodemapIOError(f"{out}: exists, and is kept (overwrite=False)")
    resolved = [p.resolve() for p in outs]
    if len(set(resolved)) < len(resolved):
        raise AnodemapInputError(
            "the same output is named twice: " + ", ".join(str(p) for p in outs)
        )
    return sorted(outs, key=lambda p: p.suffix.lower() != ".zspy")  # stable


def _write_planned(
    plan: ScanPlan,
    out: Path,
    *,
    intensity_range: tuple[float, float] | None,
    camera_length: float | None,
    rows_per_chunk: int | None,
    compressor: Any,
    progress: bool,
) -> None:
    """Write the scan of ``plan`` to ``out`` in one more pass over the recording."""
    ext = out.suffix.lower()
    # read once, so the recording's pages are released behind the writing
    ds = _plan_to_dataset(plan, rows_per_chunk, release=True)
    if ext == ".blo":
        if intensity_range is not None:
            lo_hi, rule = intensity_range, "given"
        elif np.dtype(plan.dtype) == np.uint8:
            lo_hi, rule = None, "uint8 frames written unchanged"
        else:
            lo_hi, rule = _blo_range(plan, plan.recording or TvipsRecording(plan.source[0]))
        plan.scores["blo_intensity_range"] = {
            "lo": None if lo_hi is None else float(lo_hi[0]),
            "hi": None if lo_hi is None else float(lo_hi[1]),
            "rule": rule,
        }
        write_blo(
            ds,
            out,
            navigator=plan.vbf,
            intensity_range=lo_hi,
            camera_length=camera_length,
            note=f"anodemap stream from {Path(plan.source[0]).name}",
            progress=progress and sys.stderr.isatty(),
        )
    elif ext == ".zspy":
        with _dask_progress(progress):
            _save_zspy(ds, out, _zspy_compressor(compressor))
    else:
        from anodemap.io import save

        with _dask_progress(progress):
            save(ds, out)


def _blo_range(plan: ScanPlan, rec: TvipsRecording, n_sample: int = 256):
    """Default ``(lo, hi)`` of a streamed ``.blo`` (:data:`BLO_SATURATED_FRACTION`), rule.

    From up to ``n_sample`` scan frames spread over the scan (model choice: 256 frames
    give about 10^6 pixels of 64 x 64 patterns, 1000 above the level; a read of 8 MiB
    of 128 x 128 uint16 frames); in each, the pixels within the bright-field radius
    + 1 px of its brightest pixel (its direct beam, wherever the descan put it) are
    left out.
    """
    idx = plan.frame_index[plan.frame_index >= 0].ravel()
    if idx.size == 0:
        hi = max(plan.frame_max, 1.0)
        return (0.0, hi), "0 .. maximum of the recording's frames (no scan frames)"
    pick = idx[np.unique(np.linspace(0, idx.size - 1, min(n_sample, idx.size)).astype(int))]
    frames = rec.read_frames(pick)
    n, h, w = frames.shape
    py, px = np.divmod(frames.reshape(n, -1).argmax(axis=1), w)
    r = plan.bf_radius + 1.0
    yy = np.arange(h)[None, :, None] - py[:, None, None]
    xx = np.arange(w)[None, None, :] - px[:, None, None]
    vals = frames[yy * yy + xx * xx > r * r]
    hi = 0.0
    if vals.size:
        k = min(int(vals.size * (1.0 - BLO_SATURATED_FRACTION)), vals.size - 1)
        hi = float(np.partition(vals, k)[k])
    if not hi > 0:
        hi = max(plan.frame_max, 1.0)
        return (0.0, hi), "0 .. maximum of the scan frames (no signal outside the direct beam)"
    return (0.0, hi), (
        f"0 .. the level {BLO_SATURATED_FRACTION:.1%} of the pixels outside the direct beam "
        f"exceed ({pick.size} frames sampled)"
    )


def _zspy_compressor(compressor: Any):
    """The codec for a ``.zspy`` written by :func:`stream_to_file`.

    ``"default"``: :data:`ZSPY_COMPRESSOR`; ``None``: rosettasciio's default (Blosc
    zstd level 1, byte shuffle); a numcodecs codec: that codec.
    """
    if isinstance(compressor, str):
        if compressor != "default":
            raise AnodemapInputError(
                f"compressor={compressor!r}: pass 'default', None (rosettasciio's choice) or "
                "a numcodecs codec"
            )
        import numcodecs

        return numcodecs.Blosc(**ZSPY_COMPRESSOR)
    return compressor


def _save_zspy(dataset, path: Path, compressor) -> Path:
    """Write a ``.zspy`` atomically (:func:`anodemap.io.save`) with the given codec."""
    from anodemap.io import save

    return save(dataset, path, writer_options={"compressor": compressor})


class _dask_progress:
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
