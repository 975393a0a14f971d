"""TVIPS recordings (``NAME_000.tvips``, ``NAME_001.tvips``, ...), read lazily frame by frame.

A TVIPS camera records a scan as a stream of frames, split over parts. This module reads
the frames and their headers (:class:`TvipsRecording`); how the scan is found in the
stream is :mod:`anodemap.diffraction.scan`, and
:func:`anodemap.diffraction.stream.stream_to_file` converts a recording.

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
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError, AnodemapIOError

__all__ = ["FRAME_HEADER_DTYPE", "GENERAL_HEADER_DTYPE", "TvipsRecording", "rows_per_block"]

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

    def pixels(self, recs: np.ndarray) -> tuple[np.ndarray, int, int]:
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
            flat, stride, off = self.pixels(recs)
            local = np.where((idx >= a) & (idx < b), idx - a, -1)
            _gather_kernel()(flat, stride, off, npix, local, flat_out)
            if release:
                self.release(a, b - a)
        return out

    def iter_chunks(self, chunk_frames: int | None = None):
        """Yield ``(start, headers, frames)`` over the whole recording in chunks."""
        n = int(chunk_frames or max(1, _CHUNK_BYTES // self.record_dtype.itemsize))
        for start in range(0, self.n_frames, n):
            headers, frames = self.read(start, start + n)
            yield start, headers, frames

    def iter_records(self, chunk_frames: int | None = None):
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


def _gather_frames(flat, rec_stride, data_offset, n_pixels, local, out):
    """Copy frames of a read buffer into their places in an output block (a numba kernel).

    Parameters
    ----------
    flat : 1D contiguous array of the pixel type
        The read records viewed as pixels (:meth:`TvipsRecording.pixels`): frame ``k``'s
        pixels are ``flat[k * rec_stride + data_offset + p]``, ``0 <= p < n_pixels``.
    rec_stride, data_offset : int
        In elements of the pixel type.
    n_pixels : int
    local : 1D int64 array (n_out,)
        Frame in the buffer for each output frame; negative: leave it unchanged.
    out : 2D contiguous array (n_out, n_pixels) of the pixel type
    """
    # the inner loop runs over slices (not ``flat[base + p]``), which lets LLVM drop
    # numba's negative-index check and vectorise it (about 10x)
    for j in range(local.size):
        k = local[j]
        if k < 0:
            continue
        base = k * rec_stride + data_offset
        src = flat[base : base + n_pixels]
        dst = out[j]
        for p in range(n_pixels):
            dst[p] = src[p]


@functools.cache
def _gather_kernel():
    """:func:`_gather_frames` compiled by numba on first use (or loaded from its cache).

    Compiled on first use, not at import: importing numba takes about 0.3 s, which a
    program that reads only headers, or imports this module for its dtypes, need not
    pay. The kernel releases the GIL, so threads gather frames at once.
    """
    import numba

    return numba.njit(nogil=True, cache=True)(_gather_frames)


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


def rows_per_block(shape: tuple[int, ...], itemsize: int) -> int:
    """Scan rows per block of about :data:`_CHUNK_BYTES` (8 MiB) of an array of ``shape``.

    The blocks of whole scan rows in which a recording's scan is read, converted and
    written.

    Examples
    --------
    >>> rows_per_block((100, 50, 32, 32), 2)  # 100 kB per row of 50 uint16 frames
    81
    """
    row_bytes = int(np.prod(shape[1:])) * itemsize
    return int(max(1, min(shape[0], _CHUNK_BYTES // max(row_bytes, 1))))
