"""The scan plan: how the frames of a recording fill the rectangular scan (:class:`ScanPlan`).

Made by :func:`anodemap.diffraction.scan.search.reconstruct_scan`; it says what was found
and how, as text (:meth:`ScanPlan.summary`) and as JSON-able values
(:meth:`ScanPlan.as_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.io.tvips import TvipsRecording

__all__ = ["ScanPlan"]


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
        Lag of the reversed lines in frames (the serpentine convention of
        :mod:`anodemap.diffraction.scan`).
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
