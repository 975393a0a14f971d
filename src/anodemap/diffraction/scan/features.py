"""Per-frame features of a TVIPS recording: the numbers the scan search works on.

One pass over the recording in bounded chunks (:func:`frame_features`) gives, for every
frame, its rotator index and timestamp (from its header) and, from its pixels, tiny
virtual detectors (a bright-field disc and eight annular dark-field sectors around the
direct beam), its total, maximum and change from the frame before. The search
(:mod:`anodemap.diffraction.scan.search`) needs nothing else, so it holds a few numbers
per frame whatever the length of the recording.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anodemap.io.tvips import TvipsRecording

__all__ = ["Features", "Progress", "frame_features"]

# Raw bytes per chunk in the pass over the recording that computes the frame features
# (model choice: two such buffers stay in the processor cache while read and computed).
_FEATURE_CHUNK_BYTES = 2 * 2**20


def _kernels():
    """The numba kernels, imported (and compiled or loaded from cache) on first use."""
    from anodemap.diffraction.scan import _kernels as kernels

    return kernels


@dataclass
class Features:
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

    def head(self, n: int) -> Features:
        """The features of the first ``n`` frames (views), as a pass over them gives."""
        t = self.time[:n]
        if n and np.all(t == t[0]):
            t = np.full(n, np.nan)  # no timestamps recorded (so far)
        return Features(
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


def frame_features(
    rec: TvipsRecording,
    chunk_frames: int | None,
    progress: bool,
    on_chunk: Callable[[Features, int], None] | None = None,
) -> Features:
    """One pass over the recording in bounded chunks (one compiled pass per chunk).

    ``on_chunk(features, n_done)``, if given, is called after each chunk with the
    features filled so far (valid for the first ``n_done`` frames; see
    :meth:`Features.head`).

    Each chunk is read (the next one ahead, in a thread) into a buffer of raw records;
    a numba kernel (:func:`~anodemap.diffraction.scan._kernels.frame_features`, in
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
    feat = Features(rotidx, time, det, total, fmax, change, 0, center, bf_radius)
    if chunk_frames is None:
        chunk_frames = max(1, _FEATURE_CHUNK_BYTES // rec.record_dtype.itemsize)
    bar = Progress("reading frames", n) if progress else None
    for start, recs in rec.iter_records(chunk_frames):
        m = len(recs)
        sl = slice(start, start + m)
        rotidx[sl] = recs["rotidx"]
        time[sl] = recs["timestamp"].astype(np.float64) + recs["ms"].astype(np.float64) / 1000.0
        if start == 0:
            feat.mode = int(recs["mode"][0])
        flat, stride, off = rec.pixels(recs)
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


class Progress:
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
