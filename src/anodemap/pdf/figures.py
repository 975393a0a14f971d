"""Figures of the PDF analysis: I(s) and φ(s), G(r) with its bands, differences of regions.

Each function takes plain arrays (so that a :class:`~anodemap.plotting.FigureWorker` can
draw it in its own process) and writes one PNG.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> r = np.arange(0, 8, 0.01)
>>> curves = [("amorphous", r, np.sin(r), np.sin(r) - 0.1, np.sin(r) + 0.1, [2.35])]
>>> pdf_png(curves, pathlib.Path(tempfile.mkdtemp()) / "pdf.png").name
'pdf.png'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.plotting import TOL_COLOURS

__all__ = ["COLOURS", "differences_png", "pdf_png", "reduced_intensity_png"]

# Paul Tol's colour-blind-safe "bright" then "muted" schemes
COLOURS = TOL_COLOURS
_R_FROM = 1.0  # Å: below, G(r) holds only the errors of N and the termination ripples


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _offset(curves: Sequence[Any], lo: int, hi: int) -> float:
    """Vertical step between stacked curves: the largest span of any of them."""
    spans = [np.nanmax(c[hi]) - np.nanmin(c[lo]) for c in curves]
    return float(max(spans) * 0.75) if spans else 1.0


def _common_height(curves: list[Any]) -> tuple[list[Any], bool]:
    """Curves (name, r, G, low, high, peaks) whose band spans under a third of the
    largest scaled up by a round factor (1, 2 or 5 × 10^n), named "× k": a spotty
    crystalline region's G(r) is a hundred times an amorphous one's, which would
    otherwise show as a flat line."""
    from anodemap.plotting import nice_length

    spans = [float(np.nanmax(c[4]) - np.nanmin(c[3])) if c[1].size else 0.0 for c in curves]
    top = max(spans, default=0.0)
    out, scaled = [], False
    for c, span in zip(curves, spans, strict=True):
        if span <= 0 or span >= top / 3:
            out.append(c)
            continue
        k = nice_length(top / span)
        name = f"{c[0]} × {k:g}"
        out.append((name, c[1], c[2] * k, c[3] * k, c[4] * k, c[5]))
        scaled = True
    return out, scaled


def reduced_intensity_png(
    regions: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
) -> Path:
    """I(s) with the fitted N⟨f²⟩ + B, and φ(s), of each region.

    ``regions``: (name, s, I, N⟨f²⟩ + B, φ) per region; I is divided by the fitted N so
    that the regions share the axis (per atom, Å²).
    """
    from anodemap.plotting import save_figure

    fig = _figure(8.0, 3.2)
    ax_i, ax_p = fig.subplots(1, 2)
    for k, (name, s, intensity, fitted, phi) in enumerate(regions):
        colour = COLOURS[k % len(COLOURS)]
        n = float(np.nanmax(fitted)) if np.nanmax(fitted) > 0 else 1.0
        ax_i.semilogy(s, intensity / n, color=colour, lw=1.0, label=name)
        ax_i.semilogy(s, fitted / n, color=colour, lw=0.8, ls="--")
        ax_p.plot(s, phi, color=colour, lw=1.0, label=name)
    ax_i.set_xlabel("s = 1/d (1/Å)")
    ax_i.set_ylabel("I(s) / max(N⟨f²⟩ + B)")
    ax_i.set_title("I(s) (solid) and fitted N⟨f²⟩ + B (dashed)", fontsize=9)
    ax_p.axhline(0.0, color="0.6", lw=0.6)
    ax_p.set_xlabel("s = 1/d (1/Å)")
    ax_p.set_ylabel("φ(s) (1/Å)")
    ax_p.set_title("Reduced intensity φ(s)", fontsize=9)
    ax_p.legend(fontsize=7, frameon=False)
    return save_figure(fig, path)


def pdf_png(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[float]]],
    path: str | Path,
    level: float = 0.95,
) -> Path:
    """G(r) of each region with its pointwise band, stacked, the peak positions marked.

    ``curves``: (name, r, G, band low, band high, peak positions) per region.
    """
    from anodemap.plotting import save_figure

    fig = _figure(6.0, 1.2 + 1.1 * max(1, len(curves)))
    ax = fig.add_subplot()
    shown = [
        (c[0], *(np.asarray(x)[np.asarray(c[1]) >= _R_FROM] for x in c[1:5]), c[5]) for c in curves
    ]
    shown, scaled = _common_height(shown)
    step = _offset(shown, 3, 4)
    for k, (name, r, g, lo, hi, peaks) in enumerate(shown):
        colour = COLOURS[k % len(COLOURS)]
        base = -k * step
        ax.fill_between(r, base + lo, base + hi, color=colour, alpha=0.3, lw=0)
        ax.plot(r, base + g, color=colour, lw=1.0, label=name)
        ax.axhline(base, color="0.8", lw=0.5)
        for x in peaks:
            ax.plot(
                [x, x],
                [base + np.interp(x, r, hi), base + np.interp(x, r, hi) + 0.08 * step],
                color=colour,
                lw=1.0,
            )
        ax.text(r[-1], base + 0.15 * step, name, ha="right", va="bottom", fontsize=8, color=colour)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G(r) (1/Å²), offset per region" + (", × as marked" if scaled else ""))
    ax.set_title(
        f"G(r) with the pointwise {100 * level:g} % bootstrap band; ticks: peaks", fontsize=9
    )
    return save_figure(fig, path)


def differences_png(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path,
    total: int,
    level: float = 0.95,
) -> Path:
    """G_a(r) − G_b(r) of pairs of regions with the band of the difference, stacked.

    ``pairs``: (label, r, ΔG, band low, band high); ``total``: how many pairs there are
    (the title says when only the first are shown).
    """
    from anodemap.plotting import save_figure

    fig = _figure(6.0, 1.2 + 1.0 * max(1, len(pairs)))
    ax = fig.add_subplot()
    shown = [(c[0], *(np.asarray(x)[np.asarray(c[1]) >= _R_FROM] for x in c[1:5])) for c in pairs]
    step = _offset(shown, 3, 4)
    for k, (label, r, dg, lo, hi) in enumerate(shown):
        colour = COLOURS[k % len(COLOURS)]
        base = -k * step
        ax.fill_between(r, base + lo, base + hi, color=colour, alpha=0.3, lw=0)
        ax.plot(r, base + dg, color=colour, lw=1.0)
        ax.axhline(base, color="0.6", lw=0.6)
        ax.text(r[-1], base + 0.15 * step, label, ha="right", va="bottom", fontsize=8, color=colour)
    more = f" (the first {len(pairs)} of {total} pairs)" if total > len(pairs) else ""
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("ΔG(r) (1/Å²), offset per pair")
    ax.set_title(f"Differences of regions with their {100 * level:g} % band{more}", fontsize=9)
    return save_figure(fig, path)
