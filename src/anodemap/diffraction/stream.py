"""TVIPS video stream -> rectangular 4D dataset -> chunked ``.zspy`` or NanoMegas ``.blo``.

A TVIPS camera records a scan as a stream of frames, split over ``NAME_000.tvips``,
``NAME_001.tvips``, ... parts. The stream holds more than the scan: frames before and
after it (beam blanked or parked), positions recorded twice, positions the camera
missed, and, for serpentine scans, reversed lines that lag by a few frames. This
module reads the stream lazily, reconstructs the scan (:func:`reconstruct_scan`,
every finding overridable), and writes the rectangular dataset chunk by chunk
(:func:`stream_to_file`).

The work is shared out by responsibility: the reader of the recording is
:mod:`anodemap.io.tvips`, the search of the scan the package
:mod:`anodemap.diffraction.scan`, the blockfile writer :mod:`anodemap.io.blockfile`,
and the writing of a ``.zspy`` while the recording is read
:mod:`anodemap.diffraction._single_pass`. This module drives them, and offers their
public names under the names it always had.

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

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.diffraction._single_pass import stream_to_zspy
from anodemap.diffraction.calibration import electron_wavelength
from anodemap.diffraction.scan.dataset import plan_to_dataset
from anodemap.diffraction.scan.plan import ScanPlan
from anodemap.diffraction.scan.search import check_overrides, reconstruct_scan
from anodemap.diffraction.scan.search import ny_nx as ny_nx  # public here before the split
from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io.blockfile import blo_calibration, dask_progress, write_blo
from anodemap.io.tvips import FRAME_HEADER_DTYPE, GENERAL_HEADER_DTYPE, TvipsRecording

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
        rec = TvipsRecording(input_path, allow_truncated=allow_truncated)
        shape = check_overrides(rec, scan_shape, first_frame, last_frame)
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
    ds = plan_to_dataset(plan, rows_per_chunk=rows_per_chunk, release=True)
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
        with dask_progress(progress):
            _save_zspy(ds, out, _zspy_compressor(compressor))
    else:
        from anodemap.io import save

        with dask_progress(progress):
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
