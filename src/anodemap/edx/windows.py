"""Net line intensities by window integration, with background windows either side.

The simple alternative to the fit (``--method windows``), defined as exspy defines it,
so that the numbers agree with ``get_lines_intensity(background_windows=
estimate_background_windows())``:

- the integration window of a line at E is E ± ``integration_fwhm`` / 2 FWHM;
- its background windows are ``background_width_fwhm`` FWHM wide, starting
  ``background_offset_fwhm`` FWHM below and above E; where the upper background window
  of one line starts beyond the lower one of the next, both lines take the lower window
  of the first and the upper window of the second;
- the net intensity is the counts in the integration window less the mean counts per
  channel of the two background windows times the window's channels (a flat background,
  the same as a straight line through the two windows when they are symmetric).

Windows are cut at channels as HyperSpy's ``isig[a:b]`` cuts them: from the channel
closest to a up to, not including, the channel closest to b. Each net intensity is one
linear combination of the channels, so its Poisson variance is the same combination of
the counts with the coefficients squared: the 1σ map. As in the fit
(:mod:`anodemap.edx.fit`), a channel's variance is at least a tenth of what the pixel's
counts would give there with the shape of the mean spectrum (a window without counts
has a Poisson variance that its zero counts do not show).

Examples
--------
>>> import numpy as np
>>> e = np.arange(0.0, 4000.0, 10.0)
>>> w = line_windows(e, ["Si_Ka"], 130.0)
>>> w.matrix.shape, [round(v) for v in w.integration[0]]
((400, 1), [1659, 1820])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anodemap.edx.lines import xray_line
from anodemap.edx.resolution import fwhm_ev
from anodemap.status import Status

__all__ = ["LineWindows", "line_windows", "windows_kernel"]


@dataclass
class LineWindows:
    """The windows of each line and the matrix that applies them.

    Attributes
    ----------
    lines : list of str
    integration : ndarray (n_lines, 2)
        Integration windows in eV.
    background : ndarray (n_lines, 4)
        Lower window (two values), upper window (two values), in eV.
    matrix : ndarray (n_channels, n_lines)
        Net intensity = counts @ matrix.
    """

    lines: list[str]
    integration: np.ndarray
    background: np.ndarray
    matrix: np.ndarray


def _index(energy_ev: np.ndarray, value: float) -> int:
    """The channel closest to ``value`` (HyperSpy's ``value2index``), within the axis."""
    return int(np.argmin(np.abs(energy_ev - value)))


def line_windows(
    energy_ev: np.ndarray,
    lines: Sequence[str],
    fwhm_mn_ka_ev: float,
    *,
    integration_fwhm: float = 2.0,
    background_offset_fwhm: float = 2.0,
    background_width_fwhm: float = 1.0,
    energies_ev: Sequence[float] | None = None,
) -> LineWindows:
    """The integration and background windows of ``lines`` on an energy axis (eV).

    ``energies_ev`` gives the lines' energies instead of the table's (e.g. another
    table's, to compare with)."""
    e = np.asarray(energy_ev, dtype=float)
    if energies_ev is None:
        energies = np.array([xray_line(n).energy_ev for n in lines])
    else:
        energies = np.asarray(energies_ev, dtype=float)
    widths = np.asarray(fwhm_ev(energies, fwhm_mn_ka_ev), dtype=float)
    half = integration_fwhm * widths / 2.0
    integration = np.stack([energies - half, energies + half], axis=1)
    off, w = background_offset_fwhm * widths, background_width_fwhm * widths
    bg = np.stack([energies - off - w, energies - off, energies + off, energies + off + w], 1)
    order = np.argsort(bg[:, 0], kind="stable")
    for ia, ib in zip(order[:-1], order[1:], strict=True):
        if bg[ia, 2] > bg[ib, 0]:  # overlapping: share the outer windows
            merged = np.concatenate([bg[ia, :2], bg[ib, 2:]])
            bg[ia] = merged
            bg[ib] = merged
    matrix = np.zeros((e.size, len(lines)))
    for j in range(len(lines)):
        i0, i1 = (_index(e, v) for v in integration[j])
        b0, b1, b2, b3 = (_index(e, v) for v in bg[j])
        matrix[i0:i1, j] += 1.0
        n_bg = (b1 - b0) + (b3 - b2)
        factor = (i1 - i0) / n_bg if n_bg else 0.0
        for lo, hi in ((b0, b1), (b2, b3)):
            if hi > lo:
                matrix[lo:hi, j] -= factor
            else:  # a window narrower than a channel: that one channel (as exspy)
                matrix[lo, j] -= factor
    return LineWindows(list(lines), integration, bg, matrix)


def windows_kernel(
    block: np.ndarray, *, matrix: np.ndarray, mean_spectrum: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Net intensities and their 1σ for a block of spectra ``(n, E)``.

    Returns
    -------
    dict
        ``amplitude`` and ``sigma`` (n, n_lines), ``counts`` and ``status`` (n,).
    """
    from anodemap.edx.fit import FLOOR_SHARE, pixel_status

    used = np.flatnonzero(np.any(matrix != 0, axis=1))
    y = np.asarray(block)[:, used].astype(np.float64)
    status = pixel_status(y)
    ok = status == int(Status.OK)
    y[~ok] = 0.0
    m = matrix[used]
    net = y @ m
    if mean_spectrum is None:
        shape = np.full(used.size, 1.0 / used.size)
    else:
        mean = np.maximum(np.asarray(mean_spectrum, dtype=float)[used], 0.0)
        shape = mean / mean.sum() if mean.sum() > 0 else np.full(used.size, 1.0 / used.size)
    floor = FLOOR_SHARE * y.sum(axis=1)[:, None] * shape[None, :]
    var = np.maximum(y, floor) @ (m * m)
    return {
        "amplitude": np.where(ok[:, None], net, np.nan),
        "sigma": np.where(ok[:, None], np.sqrt(var), np.nan),
        "counts": np.where(status == int(Status.INVALID_INPUT), np.nan, y.sum(axis=1)),
        "status": status,
    }
