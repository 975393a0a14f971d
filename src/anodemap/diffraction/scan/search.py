"""Find the scan in a TVIPS recording (:func:`reconstruct_scan`).

The headers are used where they say something (rotator index, timestamps), the image
content where they do not (:mod:`anodemap.diffraction.scan`); every finding can be given
instead. :func:`plan_from_features` makes the plan from the per-frame features of one
pass (:func:`~anodemap.diffraction.scan.features.frame_features`), so that the single-pass
conversion (:mod:`anodemap.diffraction._single_pass`) makes its provisional plans by the
same search as the final one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.diffraction.scan.features import Features, frame_features
from anodemap.diffraction.scan.geometry import (
    acquisition_map,
    autocorr_candidates,
    best_geometry,
    find_line_length,
)
from anodemap.diffraction.scan.plan import ScanPlan
from anodemap.diffraction.scan.span import scan_span
from anodemap.errors import AnodemapInputError
from anodemap.io.tvips import TvipsRecording

__all__ = ["check_overrides", "ny_nx", "plan_from_features", "reconstruct_scan"]


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
    scan_shape = check_overrides(rec, scan_shape, first_frame, last_frame)
    feat = frame_features(rec, chunk_frames, progress)
    return plan_from_features(
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


def check_overrides(rec, scan_shape, first_frame, last_frame) -> tuple[int, int] | None:
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


def plan_from_features(
    rec,
    feat: Features,
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
            span = scan_span(feat, lo, hi)
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
        s, serp, h = best_geometry(
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
                ac = autocorr_candidates(z, 16)
                near = {c + k for c in ac for k in (-2, -1, 0, 1, 2)}
                cands = [c for c in cands if c in near] or cands[:200]
        elif truncated:
            # no count to divide: every length near the content's strongest peaks (a scan
            # cut short has weaker peaks; the line-pair correlation decides among them)
            ac = autocorr_candidates(z, 16)
            cands = sorted({c + k for c in ac for k in (-2, -1, 0, 1, 2) if c + k >= 2})
        else:
            cands = autocorr_candidates(z)
        best, others = find_line_length(
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
    amap = acquisition_map(ny, nx, serp, h)
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
