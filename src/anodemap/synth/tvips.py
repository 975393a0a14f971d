"""Simulated TVIPS video-stream recordings of a 4D-STEM scan, with known truth.

A recording is what a TVIPS camera writes while the beam scans: one general header in
the first part, then frame records (a frame header followed by the pixels), split
over ``NAME_000.tvips``, ``NAME_001.tvips``, ... parts. The layout follows
rosettasciio's TVIPS reader/writer (``rsciio/tvips/_api.py``): a 256-byte general
header of little-endian ``uint32`` fields, version 2 frame headers of
``frameheaderbytes`` bytes whose first 60 bytes are 15 four-byte fields, of which
``rotidx`` is the scan generator's position counter (1-based, 0 = no scan position;
the convention of rosettasciio's writer).

The simulation reproduces what a real recording holds besides the scan: frames
recorded before and after the scan (beam blanked, or beam parked at one spot),
positions recorded twice (duplicates), positions the camera missed (drops), and
serpentine (boustrophedon) scans whose reversed lines lag by a number of frames
(hysteresis). The patterns are simple synthetic diffraction patterns: a direct beam
whose intensity follows a smooth thickness field, and six spots whose orientation
changes from grain to grain of a Voronoi grain map, so that the content of
consecutive lines is similar and the content along a line has sharp features.

Serpentine convention (the same as rosettasciio's ``hysteresis``): line 0 is
recorded left to right; on odd lines the frames are recorded right to left and the
frame recorded ``j``-th on the line shows scan position ``x = (nx - 1 - j + h) % nx``.

Examples
--------
>>> import tempfile, pathlib
>>> from anodemap.synth.tvips import write_tvips_recording
>>> sim = write_tvips_recording(pathlib.Path(tempfile.mkdtemp()) / "scan",
...                             scan_shape=(4, 5), frame_shape=(16, 16), seed=1)
>>> sim.paths[0].name, sim.frame_of_pixel.shape
('scan_000.tvips', (4, 5))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anodemap.diffraction.stream import FRAME_HEADER_DTYPE, GENERAL_HEADER_DTYPE
from anodemap.errors import AnodemapInputError

__all__ = [
    "FRAME_HEADER_DTYPE",
    "GENERAL_HEADER_DTYPE",
    "SimulatedTvips",
    "compare_scan_with_truth",
    "record_scan",
    "render_patterns",
    "write_tvips_recording",
]

# Start time of simulated recordings, seconds since 1970 (model choice: 2023-11-14).
_T0 = 1_700_000_000


@dataclass
class SimulatedTvips:
    """A simulated recording and its truth.

    Attributes
    ----------
    paths : list of Path
        The parts written, ``NAME_000.tvips`` first.
    scan_shape : tuple of int
        ``(ny, nx)``.
    frame_shape : tuple of int
        ``(h, w)`` pixels of one frame.
    n_frames : int
        Frames in the whole recording (all parts).
    first_frame, last_frame : int
        Stream indices of the first and last frame that belong to the scan.
    serpentine : bool
        Odd lines recorded right to left.
    hysteresis : int
        Lag of the reversed lines, in frames (see the module docstring).
    frame_of_pixel : ndarray of int, shape (ny, nx)
        Stream index of the (first) frame recorded at each scan position; -1 where
        the position was dropped.
    duplicate_frames : list of int
        Stream indices of the extra frames recorded at a position already recorded.
    dropped : list of tuple of int
        Scan positions ``(y, x)`` with no frame.
    rotidx : ndarray of int
        The rotator index written in each frame header (all 0 with ``headers=False``).
    beam_energy_kev, reciprocal_pixel_size : float
        Calibrations written in the general header (``ht`` and ``pixelsize``).
    beam_center : tuple of float
        Direct-beam position (row, column) at the scan centre (NaN when the patterns
        were given).
    """

    paths: list[Path]
    scan_shape: tuple[int, int]
    frame_shape: tuple[int, int]
    n_frames: int
    first_frame: int
    last_frame: int
    serpentine: bool
    hysteresis: int
    frame_of_pixel: np.ndarray
    duplicate_frames: list[int] = field(default_factory=list)
    dropped: list[tuple[int, int]] = field(default_factory=list)
    rotidx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    beam_energy_kev: float = 200.0
    reciprocal_pixel_size: float = 0.1
    beam_center: tuple[float, float] = (0.0, 0.0)
    seed: int = 0

    def as_dict(self) -> dict:
        """The truth of the scan as JSON-friendly values (what ``anodemap stream`` finds).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> sim = write_tvips_recording(pathlib.Path(tempfile.mkdtemp()) / "s",
        ...                             scan_shape=(3, 4), frame_shape=(16, 16), drops=(5,))
        >>> sim.as_dict()["dropped"], sim.as_dict()["first_frame"]  # step 5: line 1, serpentine
        ([[1, 0]], 6)
        """
        return {
            "parts": [p.name for p in self.paths],
            "n_frames": int(self.n_frames),
            "frame_shape": [int(v) for v in self.frame_shape],
            "first_frame": int(self.first_frame),
            "last_frame": int(self.last_frame),
            "scan_shape": [int(v) for v in self.scan_shape],
            "serpentine": bool(self.serpentine),
            "hysteresis": int(self.hysteresis),
            "duplicate_frames": [int(v) for v in self.duplicate_frames],
            "dropped": [[int(y), int(x)] for y, x in self.dropped],
            "beam_energy_kev": float(self.beam_energy_kev),
            "seed": int(self.seed),
        }


def record_scan(
    patterns: np.ndarray,
    path: str | os.PathLike,
    *,
    beam_energy_kev: float = 300.0,
) -> SimulatedTvips:
    """Record a scan's patterns as the TVIPS video stream a camera would have written.

    What the recording holds besides the scan (model choices: what a conversion must cope
    with): 6 frames before the scan and 5 after (beam parked at the scan centre),
    serpentine lines whose reversed lines lag by 2 frames (none on lines of 4 positions
    or fewer), one position recorded twice (a third of the way through the scan) and one
    missed (two thirds), 3 parts, frame headers with the scan generator's position counter,
    ``ht`` the beam energy and ``pixelsize`` 0 (the header's integer field in 1/nm cannot
    hold a diffraction calibration, so none is written). See :func:`write_tvips_recording`
    for every other choice.

    Parameters
    ----------
    patterns : ndarray (ny, nx, h, w)
        The pattern at each scan position (e.g. a simulated electrode's); written as uint16.
    path : str or path-like
        Base name of the parts (``{path}_000.tvips``, ...).
    beam_energy_kev : float
        Written as ``ht`` (rounded to whole keV).

    Returns
    -------
    SimulatedTvips

    Examples
    --------
    >>> import tempfile, pathlib
    >>> pats = np.random.default_rng(0).poisson(5.0, (6, 8, 16, 16)).astype(float)
    >>> rec = record_scan(pats, pathlib.Path(tempfile.mkdtemp()) / "scan")
    >>> len(rec.paths), rec.n_frames, rec.dropped, len(rec.duplicate_frames)
    (3, 59, [(4, 0)], 1)
    """
    patterns = np.asarray(patterns)
    if patterns.ndim != 4:
        raise AnodemapInputError(
            f"patterns must be a 4D array (ny, nx, h, w), not of shape {patterns.shape}"
        )
    ny, nx = patterns.shape[:2]
    n = ny * nx
    n_frames = 6 + n + 5  # one duplicate and one drop: as many frames as positions
    return write_tvips_recording(
        path,
        patterns=patterns,
        n_before=6,
        n_after=5,
        serpentine=True,
        hysteresis=2 if nx > 4 else 0,
        duplicates=(n // 3,) if n >= 6 else (),
        drops=(2 * n // 3,) if n >= 6 else (),
        frames_per_part=-(-n_frames // 3),
        beam_energy_kev=int(round(beam_energy_kev)),
        pixelsize_per_nm=0,
    )


def compare_scan_with_truth(report: dict, truth: dict) -> dict:
    """What a stream conversion found about the scan, item by item against the truth.

    Parameters
    ----------
    report : dict
        The scan report of a conversion (``ScanPlan.as_dict()``, written by
        ``anodemap stream`` as ``OUT.scan.json``).
    truth : dict
        :meth:`SimulatedTvips.as_dict` of the recording.

    Returns
    -------
    dict
        ``items``: for each of first and last frame, scan shape, serpentine, hysteresis,
        number of duplicated frames and the dropped positions, ``found``, ``true`` and
        ``agrees``; ``all_agree``.

    Examples
    --------
    >>> truth = {"first_frame": 6, "last_frame": 29, "scan_shape": [4, 6], "serpentine": True,
    ...          "hysteresis": 2, "duplicate_frames": [], "dropped": []}
    >>> report = dict(truth, n_duplicate_frames=0, n_missing=0, missing=[], hysteresis=1)
    >>> cmp = compare_scan_with_truth(report, truth)
    >>> cmp["all_agree"], cmp["items"]["hysteresis"]["agrees"]
    (False, False)
    """
    missing = sorted(tuple(int(v) for v in p) for p in report.get("missing", []))
    if len(missing) < int(report.get("n_missing", len(missing))):
        missing = None  # the report lists only the first of many
    pairs = {
        "first_frame": (report["first_frame"], truth["first_frame"]),
        "last_frame": (report["last_frame"], truth["last_frame"]),
        "scan_shape": (list(report["scan_shape"]), list(truth["scan_shape"])),
        "serpentine": (bool(report["serpentine"]), bool(truth["serpentine"])),
        "hysteresis": (int(report["hysteresis"]), int(truth["hysteresis"])),
        "n_duplicate_frames": (
            int(report["n_duplicate_frames"]),
            len(truth["duplicate_frames"]),
        ),
        "dropped": (
            None if missing is None else [list(p) for p in missing],
            sorted([int(y), int(x)] for y, x in truth["dropped"]),
        ),
    }
    items = {
        k: {"found": found, "true": true, "agrees": found == true}
        for k, (found, true) in pairs.items()
    }
    return {"items": items, "all_agree": all(v["agrees"] for v in items.values())}


def _position_of_step(p: int, nx: int, serpentine: bool, hysteresis: int) -> tuple[int, int]:
    """Scan position (y, x) shown by the frame of acquisition step ``p``."""
    y, j = divmod(p, nx)
    if serpentine and y % 2 == 1:
        return y, (nx - 1 - j + hysteresis) % nx
    return y, j


class _Specimen:
    """The simulated specimen: grain map, spot orientations and thickness field."""

    def __init__(self, scan_shape, frame_shape, seed):
        ny, nx = scan_shape
        h, w = frame_shape
        rng = np.random.default_rng(seed)
        # Voronoi grains of about 12 scan pixels each (model choice: sharp features
        # along a line, similar content on consecutive lines).
        n_grains = max(2, ny * nx // 12)
        seeds = rng.uniform([0, 0], [ny, nx], size=(n_grains, 2))
        yy, xx = np.mgrid[0:ny, 0:nx]
        d2 = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
        self.grain = np.argmin(d2, axis=-1)
        self.angle = rng.uniform(0, np.pi / 3, n_grains)
        self.spot_amp = rng.uniform(0.2, 1.0, n_grains)
        # smooth thickness (in mean free paths) controls the direct beam
        self.thickness = (
            0.6
            + 0.3 * np.sin(2 * np.pi * xx / (1.7 * nx) + 0.4) * np.cos(2 * np.pi * yy / (1.3 * ny))
            + 0.1 * yy / max(ny - 1, 1)
        )
        self.center = (h / 2 + 0.3, w / 2 - 0.4)
        self.ny, self.nx, self.h, self.w = ny, nx, h, w


def render_patterns(spec: _Specimen, ys: np.ndarray, xs: np.ndarray, peak: float) -> np.ndarray:
    """Noise-free patterns (float64, shape ``(n, h, w)``) at scan positions ``(ys, xs)``.

    Direct beam (Gaussian, sigma 1.2 px) of peak ``peak * exp(-t)`` with a descan of
    up to 0.5 px across the scan, and six spots (sigma 1.0 px) at 0.28 of the frame
    width from the beam, rotated per grain (all model choices).
    """
    ys = np.asarray(ys)
    xs = np.asarray(xs)
    n = ys.size
    cy = spec.center[0] + 0.5 * (ys / max(spec.ny - 1, 1) - 0.5)
    cx = spec.center[1] + 0.5 * (xs / max(spec.nx - 1, 1) - 0.5)
    t = spec.thickness[ys, xs]
    g = spec.grain[ys, xs]
    ang = spec.angle[g][:, None] + np.arange(6)[None, :] * np.pi / 3
    radius = 0.28 * min(spec.h, spec.w)
    py = np.concatenate([cy[:, None], cy[:, None] + radius * np.sin(ang)], axis=1)
    px = np.concatenate([cx[:, None], cx[:, None] + radius * np.cos(ang)], axis=1)
    amp_spot = peak * 0.25 * spec.spot_amp[g] * (1 - np.exp(-t))
    amp = np.concatenate([(peak * np.exp(-t))[:, None], np.repeat(amp_spot[:, None], 6, 1)], 1)
    sig = np.array([1.2] + [1.0] * 6)
    ry = np.arange(spec.h)[None, None, :]
    rx = np.arange(spec.w)[None, None, :]
    gy = np.exp(-0.5 * ((ry - py[..., None]) / sig[None, :, None]) ** 2)
    gx = np.exp(-0.5 * ((rx - px[..., None]) / sig[None, :, None]) ** 2)
    out = np.einsum("ns,nsh,nsw->nhw", amp, gy, gx)
    return out.reshape(n, spec.h, spec.w) + 2.0  # flat background of 2 counts


def write_tvips_recording(
    path: str | os.PathLike,
    *,
    scan_shape: tuple[int, int] = (16, 20),
    frame_shape: tuple[int, int] = (32, 32),
    n_before: int = 6,
    n_after: int = 5,
    idle: str = "static",
    serpentine: bool = True,
    hysteresis: int = 2,
    duplicates: tuple[int, ...] = (),
    drops: tuple[int, ...] = (),
    frames_per_part: int | None = None,
    headers: bool = True,
    timestamps: bool = True,
    after_rotidx: str = "hold",
    frame_header_extra_bytes: int = 0,
    peak: float = 3000.0,
    beam_energy_kev: int = 200,
    pixelsize_per_nm: int = 1,
    frame_interval_ms: int = 10,
    seed: int = 0,
    patterns: np.ndarray | None = None,
) -> SimulatedTvips:
    """Write a simulated TVIPS recording of a scan, and return its truth.

    Parameters
    ----------
    path : str or path-like
        Base name; parts are written as ``{path}_000.tvips``, ``{path}_001.tvips``...
        (a trailing ``_000.tvips`` is accepted and stripped).
    scan_shape : (ny, nx)
        Scan positions.
    frame_shape : (h, w)
        Pixels per frame (uint16).
    n_before, n_after : int
        Frames recorded before and after the scan.
    idle : {"static", "blank"}
        What those frames show: the beam parked at the scan centre, or a blanked beam.
    serpentine : bool
        Odd lines recorded right to left.
    hysteresis : int
        Frames by which the reversed lines lag (serpentine only).
    duplicates : tuple of int
        Acquisition steps (0 .. ny*nx-1) recorded twice (the extra frame follows).
    drops : tuple of int
        Acquisition steps with no frame.
    frames_per_part : int, optional
        Frames per file part (default: all in one part).
    headers : bool
        Write the rotator index; False writes 0 in every frame (a camera not linked
        to the scan generator), so only the image content tells the scan.
    timestamps : bool
        Write frame times (``frame_interval_ms`` apart; a dropped frame leaves a gap).
    after_rotidx : {"hold", "zero"}
        Rotator index of the frames after the scan: held at the last position or 0.
    frame_header_extra_bytes : int
        Padding after the 60 bytes of named frame-header fields.
    peak : float
        Peak counts of the direct beam in vacuum.
    beam_energy_kev, pixelsize_per_nm : int
        Written in the general header as ``ht`` and ``pixelsize`` (rosettasciio reads
        ``pixelsize`` as the reciprocal pixel size in 1/nm for diffraction frames).
    frame_interval_ms : int
        Time between frames.
    seed : int
        Seed of the grain map and of the Poisson noise.
    patterns : ndarray (ny, nx, h, w), optional
        The pattern at each scan position (for example a simulated electrode from
        :func:`anodemap.synth.diffraction.simulate_diffraction`), written instead of the
        built-in specimen: rounded and clipped to uint16, without further noise, so the
        frame recorded at (y, x) is exactly ``patterns[y, x]`` so converted. The parked
        beam shows the pattern at the scan centre; a blanked beam dark counts.
        ``scan_shape`` and ``frame_shape`` are then those of the array.

    Returns
    -------
    SimulatedTvips

    Examples
    --------
    >>> import tempfile, pathlib
    >>> sim = write_tvips_recording(pathlib.Path(tempfile.mkdtemp()) / "s", scan_shape=(3, 4),
    ...                             frame_shape=(16, 16), duplicates=(5,), drops=(7,))
    >>> sim.n_frames == 3 * 4 + 1 - 1 + sim.first_frame + 5
    True
    """
    if patterns is not None:
        patterns = np.asarray(patterns)
        if patterns.ndim != 4:
            raise AnodemapInputError(
                f"patterns must be a 4D array (ny, nx, h, w), not of shape {patterns.shape}"
            )
        if not np.all(np.isfinite(patterns)):
            raise AnodemapInputError("patterns hold NaN or infinite values")
        scan_shape, frame_shape = patterns.shape[:2], patterns.shape[2:]
    ny, nx = (int(v) for v in scan_shape)
    h, w = (int(v) for v in frame_shape)
    if idle not in ("static", "blank"):
        raise AnodemapInputError(f"idle must be 'static' or 'blank', not {idle!r}")
    if after_rotidx not in ("hold", "zero"):
        raise AnodemapInputError(f"after_rotidx must be 'hold' or 'zero', not {after_rotidx!r}")
    base = str(path)
    if base.endswith(".tvips"):
        base = base[: -len(".tvips")]
    if base.endswith("_000"):
        base = base[: -len("_000")]
    Path(base).parent.mkdir(parents=True, exist_ok=True)
    hyst = int(hysteresis) if serpentine else 0
    rng = np.random.default_rng(seed)
    spec = _Specimen((ny, nx), (h, w), seed) if patterns is None else None

    # the frame sequence: (kind, y, x, rotidx, time slot)
    park = (ny // 2, nx // 2)
    ys: list[int] = []
    xs: list[int] = []
    blank: list[bool] = []
    rot: list[int] = []
    slot: list[int] = []
    frame_of_pixel = -np.ones((ny, nx), dtype=np.int64)
    dup_frames: list[int] = []
    dropped: list[tuple[int, int]] = []
    s = 0  # time slot (frame clock)
    for _ in range(n_before):
        ys.append(park[0]), xs.append(park[1]), blank.append(idle == "blank")
        rot.append(0), slot.append(s)
        s += 1
    first_frame = len(ys)
    drop_set, dup_set = set(drops), set(duplicates)
    for p in range(ny * nx):
        y, x = _position_of_step(p, nx, serpentine, hyst)
        if p in drop_set:
            dropped.append((y, x))
            s += 1
            continue
        frame_of_pixel[y, x] = len(ys)
        for k in range(2 if p in dup_set else 1):
            if k:
                dup_frames.append(len(ys))
            ys.append(y), xs.append(x), blank.append(False), rot.append(p + 1), slot.append(s)
            s += 1
    last_frame = len(ys) - 1
    for _ in range(n_after):
        ys.append(park[0]), xs.append(park[1]), blank.append(idle == "blank")
        rot.append(ny * nx if after_rotidx == "hold" else 0), slot.append(s)
        s += 1
    n_frames = len(ys)
    rot_arr = np.asarray(rot, dtype=np.int64) if headers else np.zeros(n_frames, np.int64)

    per_part = int(frames_per_part) if frames_per_part else n_frames
    header_bytes = FRAME_HEADER_DTYPE.itemsize + int(frame_header_extra_bytes)
    fields = list(FRAME_HEADER_DTYPE.descr)
    if frame_header_extra_bytes:
        fields.append(("extra", f"V{int(frame_header_extra_bytes)}"))
    fields.append(("data", "<u2", (h, w)))
    record = np.dtype(fields)

    gh = np.zeros(1, dtype=GENERAL_HEADER_DTYPE)
    gh["size"] = GENERAL_HEADER_DTYPE.itemsize
    gh["version"] = 2
    gh["dimx"], gh["dimy"], gh["bitsperpixel"] = w, h, 16
    gh["binx"] = gh["biny"] = 1
    gh["pixelsize"] = pixelsize_per_nm
    gh["ht"] = beam_energy_kev
    gh["frameheaderbytes"] = header_bytes
    gh["dummy"] = b"TVIPS " * 34

    paths: list[Path] = []
    batch = 256  # frames rendered at a time (bounded memory for long recordings)
    for part, start in enumerate(range(0, n_frames, per_part)):
        stop = min(start + per_part, n_frames)
        fn = Path(f"{base}_{part:03d}.tvips")
        paths.append(fn)
        with open(fn, "wb") as f:
            if part == 0:
                gh.tofile(f)
            for b0 in range(start, stop, batch):
                b1 = min(b0 + batch, stop)
                sel = slice(b0, b1)
                yb, xb = np.asarray(ys[sel]), np.asarray(xs[sel])
                dark = np.asarray(blank[sel])
                rec = np.zeros(b1 - b0, dtype=record)
                if patterns is None:
                    ideal = render_patterns(spec, yb, xb, peak)
                    ideal[dark] = 0.5  # blanked beam: dark counts only
                    rec["data"] = np.minimum(rng.poisson(ideal), 65535).astype("<u2")
                else:
                    given = np.clip(np.rint(patterns[yb, xb]), 0, 65535).astype("<u2")
                    given[dark] = rng.poisson(0.5, (int(dark.sum()), h, w))
                    rec["data"] = given
                rec["num"] = np.arange(b0, b1)
                rec["mode"] = 2
                rec["rotidx"] = rot_arr[sel]
                if timestamps:
                    ms_total = np.asarray(slot[sel], dtype=np.int64) * frame_interval_ms
                    rec["timestamp"] = _T0 + ms_total // 1000
                    rec["ms"] = ms_total % 1000
                rec.tofile(f)
    return SimulatedTvips(
        paths=paths,
        scan_shape=(ny, nx),
        frame_shape=(h, w),
        n_frames=n_frames,
        first_frame=first_frame,
        last_frame=last_frame,
        serpentine=bool(serpentine),
        hysteresis=hyst,
        frame_of_pixel=frame_of_pixel,
        duplicate_frames=dup_frames,
        dropped=dropped,
        rotidx=rot_arr,
        beam_energy_kev=float(beam_energy_kev),
        reciprocal_pixel_size=pixelsize_per_nm / 10.0,
        beam_center=spec.center if spec is not None else (float("nan"), float("nan")),
        seed=seed,
    )
