"""The scan's first and last frame from image content, where the headers say nothing.

Around the scan the beam is blanked (dark frames) or parked (the same pattern again and
again); :func:`scan_span` finds the frames between.
"""

from __future__ import annotations

import numpy as np

from anodemap.diffraction.scan.features import Features

__all__ = ["scan_span"]

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


def scan_span(feat: Features, lo: int, hi: int) -> tuple[int, int, int, int] | None:
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
