"""The report's comparison figures, drawn from ``report.json``'s content alone.

Each function takes the part of the report it shows and returns PNG bytes, or None
when there is nothing to draw (the page then says why, from the same content). One
colour per state throughout (``state["colour"]``, Paul Tol's colour-blind-safe
"bright" scheme) and one marker per step; phases keep the colours of the phase maps
(:func:`anodemap.diffraction.output.label_colours`: Okabe-Ito).

Examples
--------
>>> from anodemap.report.figures import phase_fraction_figure
>>> png = phase_fraction_figure(report["comparison"]["phase_fractions"], report["states"])  # doctest: +SKIP
"""

from __future__ import annotations

import io
import re
import textwrap
from typing import Any

from anodemap.plotting import TOL_COLOURS

__all__ = [
    "STATE_COLOURS",
    "capacity_figure",
    "cycle_figure",
    "cycling_figure",
    "distribution_figure",
    "phase_colours",
    "phase_fraction_figure",
]

# P. Tol's "bright" scheme without its grey, then the "muted" one for studies with more
# states
STATE_COLOURS = TOL_COLOURS
_STEP_MARKERS = {"pristine": "s", "lithiated": "v", "delithiated": "o"}
_OTHER_MARKER = "D"
# the phase maps' colours by name (anodemap.diffraction.output: Okabe-Ito)
_AMORPHOUS, _NOT_INDEXED = "#bbbbbb", "#cc79a7"
_PHASE_CYCLE = ("#0072b2", "#d55e00", "#009e73", "#e69f00", "#56b4e9", "#f0e442")
_STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 150,
}


def phase_colours(phases: list[str]) -> dict[str, str]:
    """Colour of each phase name: amorphous grey, not indexed purple, phases in turn.

    Examples
    --------
    >>> phase_colours(["amorphous", "Si", "Li15Si4", "crystalline, not indexed"])["Li15Si4"]
    '#d55e00'
    """
    out, i = {}, 0
    for name in phases:
        if name == "amorphous":
            out[name] = _AMORPHOUS
        elif name == "crystalline, not indexed":
            out[name] = _NOT_INDEXED
        else:
            out[name] = _PHASE_CYCLE[i % len(_PHASE_CYCLE)]
            i += 1
    return out


def _chem(name: str) -> str:
    """Digits of a formula as subscripts (Li15Si4 -> Li$_{15}$Si$_{4}$)."""
    return re.sub(r"(?<=[A-Za-z)])(\d+)", r"$_{\1}$", name)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, pil_kwargs={"compress_level": 6})
    return buf.getvalue()


def _figure(width: float, height: float, **kwargs: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def distribution_figure(dist: dict[str, Any], states: list[dict[str, Any]]) -> bytes | None:
    """Histograms of one quantity, one row per state, on shared axes.

    Each row shows the share of the state's valid pixels per bin, its median (line)
    and quartiles (bar above), and how many pixels it covers; a state without values
    keeps its row with the reason written in it. The share axis is shared and
    square-root scaled, so that a state piled into one bin does not flatten the others.
    """
    import matplotlib
    import numpy as np
    from matplotlib.ticker import FixedLocator

    edges = dist["bin_edges"]
    if edges is None:
        return None
    rows = dist["states"]
    colour = {s["name"]: s["colour"] for s in states}
    with matplotlib.rc_context(_STYLE):
        fig = _figure(6.4, 0.7 + 1.05 * len(rows))
        axes = fig.subplots(len(rows), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
        top = max(
            (100 * max(r["counts"]) / r["n_valid"] for r in rows if r["counts"] and r["n_valid"]),
            default=1.0,
        )
        axes[0].set_yscale("function", functions=(np.sqrt, np.square))
        axes[0].set_ylim(0, 1.25 * top)
        ticks = [t for t in (0, 5, 25, 50, 100) if t <= 1.25 * top]
        if len(ticks) < 3:  # every state spread thin
            ticks = [t for t in (0, 1, 2, 5, 10, 20) if t <= 1.25 * top]
        axes[0].yaxis.set_major_locator(FixedLocator(ticks))
        for ax, r in zip(axes, rows, strict=True):
            ax.set_ylabel(textwrap.fill(r["label"], 14), rotation=0, ha="right", va="center")
            if not r["counts"] or not r["n_valid"]:
                ax.text(
                    0.5,
                    0.5,
                    textwrap.fill(r["note"] or "no valid pixel", 90),
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="0.25",
                )
                # this row only (set_yticks would empty every row of the shared axis)
                ax.tick_params(axis="y", left=False, labelleft=False)
                ax.spines["left"].set_visible(False)
                continue
            share = [100 * c / r["n_valid"] for c in r["counts"]]
            ax.stairs(share, edges, fill=True, color=colour[r["state"]], alpha=0.85)
            s = r["stats"]
            ax.axvline(s["median"], color="black", lw=1.2)
            ax.plot(
                [s["p25"], s["p75"]], [1.12 * top] * 2, color="black", lw=3, solid_capstyle="butt"
            )
            ax.text(
                1.0,
                0.97,
                f"n = {r['n_valid']} of {r['n_pixels']} pixels",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7.5,
            )
        axes[-1].set_xlabel(dist["axis_label"])
        fig.supylabel(
            "share of the state's valid pixels per bin (%, square-root scale)", fontsize=8
        )
        fig.suptitle(
            f"{dist['title']} per state: bars, median (line), quartiles (bar above)", fontsize=9
        )
        return _png(fig)


def phase_fraction_figure(fractions: dict[str, Any], states: list[dict[str, Any]]) -> bytes | None:
    """Stacked bars of the phase fractions of each state (share of material patterns)."""
    import matplotlib

    rows = fractions["states"]
    if not any(r["n_material"] for r in rows):
        return None
    colours = phase_colours(fractions["phases"])
    with matplotlib.rc_context(_STYLE):
        fig = _figure(1.6 + 1.0 * len(rows) + 1.6, 3.4)
        ax = fig.subplots()
        for i, r in enumerate(rows):
            if not r["n_material"]:
                ax.text(
                    i,
                    50,
                    "no\nphase\nmap",
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="0.25",
                )
                continue
            bottom = 0.0
            share = {f["phase"]: f["fraction"] or 0.0 for f in r["fractions"]}
            for name in fractions["phases"]:
                h = 100 * share.get(name, 0.0)
                ax.bar(
                    i,
                    h,
                    bottom=bottom,
                    width=0.65,
                    color=colours[name],
                    edgecolor="white",
                    linewidth=0.5,
                    label=_chem(name) if i == _first(rows) else None,
                )
                bottom += h
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(
            [
                textwrap.fill(r["label"], 12)
                + (f"\nn = {r['n_material']}" if r["n_material"] else "")
                for r in rows
            ]
        )
        ax.set_ylim(0, 100)
        ax.set_ylabel("share of the material patterns (%)")
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(
            handles[::-1],
            labels[::-1],
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            frameon=False,
            title="phase",
        )
        return _png(fig)


def _first(rows: list[dict[str, Any]]) -> int:
    return next(i for i, r in enumerate(rows) if r["n_material"])


def cycle_figure(rows: list[dict[str, Any]], states: list[dict[str, Any]]) -> bytes | None:
    """Crystalline fraction and mean plasmon energy (± std) of each state against cycle."""
    import matplotlib
    from matplotlib.lines import Line2D

    have = [r for r in rows if r["cycle"] is not None]
    if not any(
        r["crystalline_fraction"] is not None or r["plasmon_energy_mean_eV"] is not None
        for r in have
    ):
        return None
    colour = {s["name"]: s["colour"] for s in states}
    with matplotlib.rc_context(_STYLE):
        fig = _figure(6.4, 3.0)
        left, right = fig.subplots(1, 2, sharex=True)
        panels = (
            (
                left,
                "crystalline_fraction",
                100.0,
                None,
                "crystalline fraction (%)",
                "indexed phases (Si, Li15Si4, ...)",
            ),
            (
                right,
                "plasmon_energy_mean_eV",
                1.0,
                "plasmon_energy_std_eV",
                "mean plasmon energy (eV)",
                "error bars: standard deviation over the pixels",
            ),
        )
        for ax, key, scale, err, ylabel, title in panels:
            pts = [r for r in have if r[key] is not None]
            if not pts:
                ax.text(
                    0.5,
                    0.5,
                    "no state has this value",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="0.25",
                )
            ax.plot(
                [r["cycle"] for r in pts],
                [scale * r[key] for r in pts],
                color="0.7",
                lw=0.8,
                zorder=1,
            )
            for r in pts:
                ax.errorbar(
                    r["cycle"],
                    scale * r[key],
                    yerr=None if err is None or r[err] is None else r[err],
                    marker=_STEP_MARKERS.get(r["step"], _OTHER_MARKER),
                    ms=7,
                    color=colour[r["state"]],
                    mec="black",
                    mew=0.6,
                    capsize=3,
                    zorder=2,
                )
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("cycle")
            if key == "crystalline_fraction":
                top = max((100 * r[key] for r in pts), default=0.0)
                ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
            else:
                ax.margins(y=0.12)
        cycles = sorted({r["cycle"] for r in have})
        left.set_xticks(cycles)
        pad = max(0.6, 0.06 * (cycles[-1] - cycles[0]))
        left.set_xlim(cycles[0] - pad, cycles[-1] + pad)
        # the legend names the states drawn (the page lists the others)
        have = [
            r
            for r in have
            if r["crystalline_fraction"] is not None or r["plasmon_energy_mean_eV"] is not None
        ]
        handles = [
            Line2D(
                [],
                [],
                ls="none",
                marker=_STEP_MARKERS.get(r["step"], _OTHER_MARKER),
                color=colour[r["state"]],
                mec="black",
                mew=0.6,
                ms=7,
                label=r["label"],
            )
            for r in have
        ]
        fig.legend(
            handles=handles, loc="outside lower center", ncols=min(4, len(handles)), frameon=False
        )
        return _png(fig)


def capacity_figure(rows: list[dict[str, Any]], states: list[dict[str, Any]]) -> bytes | None:
    """Measured mean Li/Si (± std) against the Li/Si the capacity implies."""
    import matplotlib

    pts = [r for r in rows if r["expected_li_si"] is not None and r["measured_mean"] is not None]
    if not pts:
        return None
    colour = {s["name"]: s["colour"] for s in states}
    with matplotlib.rc_context(_STYLE):
        fig = _figure(4.2, 4.6)
        ax = fig.subplots()
        top = max(4.4, *(r["expected_li_si"] for r in pts), *(r["measured_mean"] for r in pts))
        ax.plot([0, top], [0, top], "k--", lw=0.8, label="measured = from the capacity")
        for r in pts:
            bound = r["step"] == "delithiated"
            ax.errorbar(
                r["expected_li_si"],
                r["measured_mean"],
                yerr=r["measured_std"],
                marker="<" if bound else "v",
                ms=8,
                color=colour[r["state"]],
                mec="black",
                mew=0.6,
                capsize=3,
                ls="none",
                label=r["label"] + (" (capacity: upper bound)" if bound else ""),
            )
        ax.set_xlim(0, 1.05 * top)
        ax.set_ylim(0, 1.05 * top)
        ax.set_aspect("equal")
        ax.set_xlabel("Li/Si from the capacity (Li per Si)")
        ax.set_ylabel("Li/Si measured, mean ± std (Li per Si)")
        fig.legend(loc="outside lower center", frameon=False)
        return _png(fig)


def cycling_figure(cycling: dict[str, Any] | None) -> bytes | None:
    """Specific capacity per cycle (charge and discharge), Li per Si on the right."""
    import matplotlib

    from anodemap.electrochem import li_per_host

    if not cycling or not cycling.get("cycle"):
        return None
    with matplotlib.rc_context(_STYLE):
        fig = _figure(5.0, 3.0)
        ax = fig.subplots()
        for key, marker, col in (
            ("charge_mAh_g", "o", "#4477AA"),
            ("discharge_mAh_g", "s", "#EE6677"),
        ):
            values = cycling.get(key) or []
            pairs = [
                (c, v) for c, v in zip(cycling["cycle"], values, strict=False) if v is not None
            ]
            if pairs:
                ax.plot(
                    *zip(*pairs, strict=True),
                    marker=marker,
                    ms=4,
                    lw=1,
                    color=col,
                    label=key.split("_")[0],
                )
        ax.set_xlabel("cycle")
        ax.set_ylabel("specific capacity (mAh per g of Si)")
        ax.set_ylim(bottom=0)
        # linear in the capacity: plain arithmetic, as matplotlib may ask for any value
        per_mah_g = float(li_per_host(1.0))
        sec = ax.secondary_yaxis(
            "right", functions=(lambda q: q * per_mah_g, lambda x: x / per_mah_g)
        )
        sec.set_ylabel("Li per Si")
        ax.spines["right"].set_visible(True)
        ax.legend(frameon=False)
        return _png(fig)
