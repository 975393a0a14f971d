"""Writing EELS results: calibrated .hspy maps, figures and summary.json.

Examples
--------
>>> from anodemap.eels.output import write_eels_results
>>> paths = write_eels_results(result, "results/")   # doctest: +SKIP
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.io import Axis, save
from anodemap.io.results import map_dataset, write_json
from anodemap.io.scan_images import MAX_IMAGES, image_names, image_stems
from anodemap.status import Status, describe, legend

__all__ = [
    "map_dataset",
    "output_names",
    "write_eels_results",
    "write_json",
    "compare_with_truth",
    "truth_figure",
    "compare_li_k",
    "compare_oxide_index",
    "plot_example_fits",
    "status_figure",
]

# Maps written as .hspy, with the file names the command line promises.
_FILES = {
    "plasmon_energy": "plasmon_energy",
    "plasmon_energy_err": "plasmon_energy_uncertainty",
    "plasmon_fwhm": "plasmon_fwhm",
    "plasmon_fwhm_err": "plasmon_fwhm_uncertainty",
    "plasmon_area": "plasmon_area",
    "reduced_chi2": "reduced_chi2",
    "li_si_ratio": "li_si_ratio",
    "li_si_uncertainty": "li_si_uncertainty",
    "li_si_calibration_uncertainty": "li_si_calibration_uncertainty",
    "fit_status": "fit_status",
    "li_si_status": "li_si_status",
    "li_k_status": "li_k_status",
    "thickness": "thickness",
    "loss_peak_energy": "loss_peak_energy",
    "li2o_window": "li2o_window",
    "oxide_index": "oxide_index",
    "oxide_peak_area": "oxide_peak_area",
    "oxide_peak_energy": "oxide_peak_energy",
    "oxide_peak_significance": "oxide_peak_significance",
    "li_k": "li_k",
    "li_k_err": "li_k_uncertainty",
    "li_k_fraction": "li_k_fraction",
    "li_k_fraction_err": "li_k_fraction_uncertainty",
    "li_k_background_exponent": "li_k_background_exponent",
    "zlp_position": "zlp_position",
}

# Truth oxide share from which a pixel is oxide-rich: the simulator's boundary class
# threshold (anodemap.synth.phantom, a model choice there).
_OXIDE_RICH = 0.3

_STATUS_MAPS = ("fit_status", "li_si_status", "li_k_status")
# What status 0 means in each status map's legend
_OK_MEANING = {
    "fit_status": "converged",
    "li_si_status": "Li/Si given",
    "li_k_status": "Li-K edge measured",
}

# Figures: map name -> (colour map, which pixels to show: "li_si" (a Li/Si value),
# "plasmon" (a converged plasmon fit), "li_k" (Li-K status OK) or None (every finite one))
_FIGURES = {
    "plasmon_energy": ("viridis", "plasmon"),
    "li_si_ratio": ("magma", "li_si"),
    "li_si_uncertainty": ("cividis", "li_si"),
    "li_si_calibration_uncertainty": ("cividis", "li_si"),
    "plasmon_fwhm": ("viridis", "plasmon"),
    "thickness": ("gray", None),
    "li2o_window": ("inferno", None),
    "oxide_index": ("inferno", None),
    "oxide_peak_area": ("inferno", "plasmon"),
    "li_k": ("inferno", "li_k"),
    "li_k_fraction": ("inferno", "li_k"),
    "zlp_position": ("coolwarm", None),
}

# Status colours, one per code, so that the codes that can share a map differ clearly
# (qualitative colours of P. Tol, https://personal.sron.nl/~pault/, "bright" and "muted"
# schemes); grey is kept for "no signal" (pores, vacuum) and black for invalid input.
_STATUS_COLOURS = {
    Status.OK: "#228833",  # green
    Status.NOT_CONVERGED: "#EE6677",  # red
    Status.PEAK_OUTSIDE_WINDOW: "#CCBB44",  # yellow
    Status.NO_SIGNAL: "#BBBBBB",  # grey
    Status.INVALID_INPUT: "#000000",  # black
    Status.NO_ZERO_LOSS: "#AA3377",  # purple
    Status.OUTSIDE_CALIBRATION: "#4477AA",  # blue
    Status.STRONGEST_PEAK_OUTSIDE_WINDOW: "#66CCEE",  # cyan
    Status.BACKGROUND_NO_COUNTS: "#009988",  # teal (far from the red of NOT_CONVERGED)
    Status.BACKGROUND_EXPONENT: "#332288",  # indigo
    Status.TOO_THICK: "#DDCC77",  # sand (never in a map with yellow)
    # the diffraction codes never occur in an EELS map; coloured so that any status map
    # can be drawn
    Status.VACUUM: "#111111",  # near black
    Status.NOT_INDEXED: "#CC79A7",  # reddish purple, as the diffraction phase map
}


def _pixel_size(nav_axes: list[Axis]) -> tuple[float | None, str]:
    if not nav_axes:
        return None, ""
    ax = nav_axes[-1]
    if ax.units and ax.is_uniform:
        return float(ax.scale), ax.units
    return None, ""


def output_names() -> list[str]:
    """Every name :func:`write_eels_results` may write in its folder (for the checks
    before a run: an input of one of these names there would be replaced).

    Examples
    --------
    >>> names = output_names()
    >>> "li_si_ratio.hspy" in names and "overview.png" in names and "summary.json" in names
    True
    """
    figures = [f"{_FILES[k]}.png" for k in (*_FIGURES, *_STATUS_MAPS)]
    extra = ["overview.png", "calibration.png", "example_fits.png", "summary.json"]
    images = [f"{stem}.hspy" for stem in image_stems()]
    return [*(f"{f}.hspy" for f in _FILES.values()), *images, *figures, *extra]


def write_eels_results(
    result: Any,
    outdir: str | os.PathLike,
    figures: bool = True,
    *,
    worker: Any = None,
    dataset: Any = None,
) -> dict:
    """Write every map of an :class:`~anodemap.eels.pipeline.EELSResult`.

    Parameters
    ----------
    result : EELSResult
    outdir : path
        Created if needed. Receives ``<map>.hspy`` files, ``<map>.png`` figures,
        ``overview.png``, ``calibration.png`` and ``summary.json`` (written last, so a
        folder with a summary is complete).
    figures : bool
        Also write PNG figures.
    worker : anodemap.plotting.FigureWorker, optional
        Draw the map figures in this helper process (the command line starts one
        before reading the data); by default they are drawn here.
    dataset : Dataset, optional
        The analysed spectra; given, ``example_fits.png`` shows the fits of a few
        pixels (:func:`plot_example_fits`).

    Returns
    -------
    dict
        The summary written to summary.json: with ``input`` (path, size and SHA-256 of
        the input the command read; None from Python), ``anodemap_version`` and
        ``command_line`` first (:meth:`anodemap.io.outdir.OutputFolder.provenance`).

    Notes
    -----
    The folder is held as one run's (:func:`anodemap.io.outdir.output_folder`; the
    command line holds it for its whole run): files of an earlier run that this one does
    not write are moved to ``OUTDIR/.previous-run/`` before ``summary.json`` is written.
    """
    from anodemap.io.outdir import output_folder

    outdir = Path(outdir)
    with output_folder(outdir) as folder:
        summary_path = outdir / "summary.json"
        images = list(getattr(result, "images", []) or [])[:MAX_IMAGES]
        stems = image_names(images)
        hspy = [f"{f}.hspy" for f in _FILES.values()] + [f"{s}.hspy" for s in stems]
        folder.claim([*hspy, "summary.json"])
        if summary_path.exists():  # a stale summary must not vouch for new, partial files
            summary_path.unlink()
        for key, fname in _FILES.items():
            title, units = result.titles.get(key, (key, ""))
            ds = map_dataset(result.maps[key], result.nav_axes, title, units)
            if key in _STATUS_MAPS:
                ds.set_meta("Signal.status_legend", legend())
            ds.set_meta("General.source", result.source)
            save(ds, outdir / f"{fname}.hspy")
        for stem, image in zip(stems, images, strict=True):
            save(image, outdir / f"{stem}.hspy")
        written = sorted(hspy)
        if figures:
            written += _write_figures(result, outdir, worker, dataset)
        folder.retire_previous()
        summary = {**folder.provenance(), **result.summary()}
        summary["images"] = {stem: im.title for stem, im in zip(stems, images, strict=True)}
        summary["files"] = written
        write_json(summary, summary_path)
    return summary


def _write_figures(result: Any, outdir: Path, worker: Any = None, dataset: Any = None) -> list[str]:
    """The PNG figures; with a :class:`~anodemap.plotting.FigureWorker` the map figures
    are drawn in its process while this one draws the calibration and example fits."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from anodemap.io.outdir import claim
    from anodemap.plotting import FigureWorker, map_png, save_figure

    if result.maps["fit_status"].ndim == 0:
        return []
    own = worker is None
    worker = worker if worker is not None else FigureWorker(processes=0)
    size, units = _pixel_size(result.nav_axes)
    masks = _masks(result)
    jobs = []
    for key, (cmap, shown) in _FIGURES.items():
        title, unit = result.titles[key]
        options = _map_options(key, np.asarray(result.maps[key]), title, unit, cmap, masks[shown])
        options.update(pixel_size=size, units=units or "nm")
        path = outdir / f"{_FILES[key]}.png"
        claim(path)  # here: the helper process that draws it records nothing
        jobs.append(worker.submit(map_png, np.asarray(result.maps[key]), path, **options))
    for key in _STATUS_MAPS:
        claim(outdir / f"{_FILES[key]}.png")
        jobs.append(
            worker.submit(
                _status_png,
                np.asarray(result.maps[key]),
                outdir / f"{_FILES[key]}.png",
                size,
                units,
                result.titles[key][0],
                _OK_MEANING[key],
            )
        )
    overview = {}
    for key in _OVERVIEW:
        cmap, shown = _FIGURES[key]
        overview[key] = (np.asarray(result.maps[key]), result.titles[key], cmap, masks[shown])
    from anodemap.eels.calibration import plot_calibration

    # this process: the overview, calibration and example fits (about as long to draw
    # as the worker's maps)
    names = [_overview_png(overview, outdir / "overview.png", size, units).name]
    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.subplots()
    plot_calibration(result.calibration, ax=ax)
    names.append(save_figure(fig, outdir / "calibration.png").name)
    if dataset is not None:
        fig = plot_example_fits(dataset, result)
        if fig is not None:
            names.append(save_figure(fig, outdir / "example_fits.png").name)
    names += [worker.result(job).name for job in jobs]
    if own:
        worker.close()
    return names


_OVERVIEW = (
    "plasmon_energy",
    "li_si_ratio",
    "li_si_uncertainty",
    "thickness",
    "li2o_window",
    "li_k",
)


def _masks(result: Any) -> dict[str | None, np.ndarray | None]:
    """Pixels each figure shows (see ``_FIGURES``)."""
    return {
        "li_si": np.asarray(result.valid),
        "plasmon": np.asarray(result.plasmon_valid),
        "li_k": np.asarray(result.maps["li_k_status"] == Status.OK),
        None: None,
    }


def _map_options(
    key: str, values: np.ndarray, title: str, unit: str, cmap: str, valid: np.ndarray | None
) -> dict[str, Any]:
    """:func:`anodemap.plotting.plot_map` options of one map figure.

    The zero-loss position is a drift around 0 eV: its diverging colour map is centred
    there (limits ±the 99th percentile of |position|).
    """
    options: dict[str, Any] = {"title": title, "label": unit, "cmap": cmap, "valid": valid}
    if key == "zlp_position":
        finite = np.abs(values[np.isfinite(values)])
        half = float(np.percentile(finite, 99)) if finite.size else 1.0
        half = half if half > 0 else 1.0
        options.update(vmin=-half, vmax=half, label="eV (colours centred at 0 eV)")
    return options


def _overview_png(maps: dict, path: Path, size: float | None, units: str) -> Path:
    """Six maps in one figure; ``maps[key] = (values, (title, unit), cmap, shown)``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from anodemap.plotting import map_figure, plot_map, save_figure

    shape = next(iter(maps.values()))[0].shape
    fig, panels = map_figure(shape, 2, 3)
    for (ax, cax), (key, (values, (title, unit), cmap, shown)) in zip(
        panels, maps.items(), strict=True
    ):
        options = _map_options(key, values, title, unit, cmap, shown)
        plot_map(values, pixel_size=size, units=units or "nm", ax=ax, cax=cax, **options)
    return save_figure(fig, path)


def _status_png(
    status: np.ndarray,
    path: Path,
    size: float | None,
    units: str,
    title: str = "Fit status",
    ok_meaning: str = "converged",
) -> Path:
    """:func:`status_figure` saved to ``path`` (a job for the figure worker)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from anodemap.plotting import save_figure

    return save_figure(status_figure(status, size, units, title, ok_meaning), path)


def status_figure(
    status: np.ndarray,
    size: float | None = None,
    units: str = "nm",
    title: str = "Fit status",
    ok_meaning: str = "converged",
):
    """A status map: one colour per code present, with a legend naming each code.

    Every code in the map is in the legend (its number, meaning and pixel count), in
    the colours of ``_STATUS_COLOURS`` (one per code; codes that can share a map have
    clearly different colours).

    Parameters
    ----------
    status : ndarray of uint8, shape (ny, nx) or (n,)
    size : float, optional
        Scan step for a scale bar.
    units : str
    title : str
    ok_meaning : str
        What code 0 means in this map (e.g. "converged", "Li/Si given").

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from anodemap.plotting import add_scalebar, map_figure

    status = np.asarray(status)
    if status.ndim == 1:
        status = status[None]
    present = [Status(int(c)) for c in np.unique(status)]
    index = np.zeros(status.shape, dtype=int)
    for i, code in enumerate(present):
        index[status == int(code)] = i
    cmap = ListedColormap([_STATUS_COLOURS[c] for c in present])
    # room right of the map for the legend
    fig, [(ax, cax)] = map_figure(status.shape, cbar_label_inches=2.3)
    ax.imshow(index, cmap=cmap, vmin=-0.5, vmax=len(present) - 0.5, interpolation="nearest")
    cax.axis("off")
    handles = [
        Patch(
            facecolor=_STATUS_COLOURS[c],
            edgecolor="0.3",
            label=textwrap.fill(
                f"{int(c)}: {ok_meaning if c == Status.OK else describe(c)} "
                f"({int(np.count_nonzero(status == int(c)))})",
                34,
            ),
        )
        for c in present
    ]
    cax.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(0.0, 0.5),
        fontsize=7,
        frameon=False,
        title="code: meaning (pixels)",
        title_fontsize=7,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    if size:
        add_scalebar(ax, size, units, status.shape[1])
    return fig


def compare_with_truth(result: Any, truth: dict[str, np.ndarray]) -> dict[str, Any]:
    """Errors of the maps against simulated ground truth.

    ``truth`` holds ``plasmon_peak_eV``, ``li_per_si``, ``t_over_lambda`` and ``labels``
    maps (as :func:`anodemap.synth.simulate_eels` returns them), optionally
    ``oxide_fraction``, ``t_over_lambda_in_window``, ``li_k_counts`` and
    ``li_k_fraction``. With ``oxide_fraction`` the oxide index is compared too
    (:func:`compare_oxide_index`).

    Plasmon and Li/Si errors are given over all valid material pixels, again over the
    pixels with no Li2O/silicate (``oxide_free``: truth oxide fraction 0) and over the
    oxide-rich ones (``oxide_rich``: fraction >= 0.3, the simulator's boundary class).
    The truth ``plasmon_peak_eV`` is the Li_xSi component alone, so at grain boundaries
    rich in Li2O/silicates (plasmon near 20 eV) a one-peak fit measures a mixture, not
    that number (``--oxide-peak auto`` fits the oxide peak beside it). The log-ratio thickness only sees the recorded energy range, so it is
    compared with ``t_over_lambda_in_window`` (the exact t/λ of the scattering inside
    that range) when the truth has it.

    The Li-K maps (``li_k``) are compared over **all** material pixels: how many are
    flagged (and why), the Spearman rank correlation with the truth Li/Si over the
    pixels with a value and over all material pixels (a flagged pixel counted as a
    failure: given the map's median, no information), the same over the oxide-free
    pixels, and, where the truth has them, the counts' errors against the exact Li-K
    counts of the simulation and the correlation that the exact counts themselves reach
    (the edge also sees the Li of Li2O/silicates, and the counts the column's
    thickness, so even a perfect map does not rank as Li/Si does).
    """
    material = result.valid & np.isfinite(truth["plasmon_peak_eV"])
    oxide = truth.get("oxide_fraction")
    oxide_free = material if oxide is None else material & (oxide == 0)
    t_fit = result.maps["thickness"]
    t_true = truth.get("t_over_lambda_in_window", truth["t_over_lambda"])
    has_t = np.isfinite(t_fit)
    dt_rel = (t_fit[has_t] - t_true[has_t]) / t_true[has_t]

    def errors(mask: np.ndarray) -> dict[str, Any]:
        de = result.maps["plasmon_energy"][mask] - truth["plasmon_peak_eV"][mask]
        dx = result.maps["li_si_ratio"][mask] - truth["li_per_si"][mask]
        pulls = de / result.maps["plasmon_energy_err"][mask]
        return {
            "n_compared": int(mask.sum()),
            "plasmon_energy_error_eV": _error_stats(de),
            "li_si_error": _error_stats(dx),
            "plasmon_energy_pull_std": float(np.std(pulls)) if pulls.size else None,
            "mean_li_si_fitted": float(np.mean(result.maps["li_si_ratio"][mask]))
            if mask.any()
            else None,
            "mean_li_si_true": float(np.mean(truth["li_per_si"][mask])) if mask.any() else None,
        }

    out = errors(material)
    out["thickness_relative_error"] = _error_stats(dt_rel)
    out["oxide_free"] = errors(oxide_free)
    if oxide is not None:
        # the simulator's boundary class threshold (anodemap.synth.phantom)
        out["oxide_rich"] = errors(material & (oxide >= _OXIDE_RICH))
    out["li_k"] = compare_li_k(result, truth)
    index = compare_oxide_index(result, truth)
    if index is not None:
        out["oxide_index"] = index
    return out


def compare_oxide_index(result: Any, truth: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The oxide index (:mod:`anodemap.eels.oxide_index`) against the truth's oxide share
    over **all** material pixels (not pores in the truth): how many have a value, the
    Pearson and Spearman correlations over those, and the index's median where the
    truth holds no oxide and where it holds a share of 0.3 or more (the simulator's
    O-rich boundary class); None where the truth has no oxide share.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> ox = np.array([0.0, 0.0, 0.2, 0.5, 0.8, 0.0])
    >>> q = np.array([0.04, 0.05, 0.07, 0.12, 0.15, np.nan])
    >>> r = SimpleNamespace(maps={"oxide_index": q})
    >>> c = compare_oxide_index(r, {"oxide_fraction": ox, "plasmon_peak_eV": np.ones(6)})
    >>> c["n_with_value"], c["median_oxide_free"], c["median_oxide_rich"]
    (5, 0.045, 0.135)
    """
    oxide = truth.get("oxide_fraction")
    q = result.maps.get("oxide_index")
    if oxide is None or q is None:
        return None
    material = np.isfinite(truth["plasmon_peak_eV"])  # NaN in the truth's pores
    has = material & np.isfinite(q)
    a, b = q[has], oxide[has]
    pearson = float(np.corrcoef(a, b)[0, 1]) if a.size > 2 and np.ptp(a) and np.ptp(b) else None

    def median(mask: np.ndarray) -> float | None:
        return float(np.median(q[mask])) if mask.any() else None

    return {
        "n_material": int(material.sum()),
        "n_with_value": int(has.sum()),
        "pearson_vs_oxide_fraction": pearson,
        "spearman_vs_oxide_fraction": _spearman(a, b),
        "median_oxide_free": median(has & (oxide == 0)),
        "median_oxide_rich": median(has & (oxide >= _OXIDE_RICH)),
    }


def _error_stats(v: np.ndarray) -> dict[str, float | None]:
    if v.size == 0:
        return {"median": None, "median_abs": None, "rms": None}
    return {
        "median": float(np.median(v)),
        "median_abs": float(np.median(np.abs(v))),
        "rms": float(np.sqrt(np.mean(v**2))),
    }


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (ties get their mean rank); None for < 3 values, or
    where either side is constant (a pristine electrode's Li/Si: no ranking to follow).

    Examples
    --------
    >>> round(_spearman(np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 5])), 6)
    0.8
    >>> _spearman(np.array([1.0, 2, 3]), np.zeros(3)) is None
    True
    """
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic
    return float(rho) if np.isfinite(rho) else None


def compare_li_k(result: Any, truth: dict[str, np.ndarray]) -> dict[str, Any]:
    """The Li-K part of :func:`compare_with_truth` (see there).

    Besides the rank correlations, where the truth has the exact edge counts and the
    result a 1σ map (``li_k_err``, ``li_k_fraction_err``): the errors in units of their
    1σ (``normalised_error_vs_exact_truth``: their spread, and the shares within 1σ
    and 2σ; 1, 0.68 and 0.95 for an honest 1σ without bias).
    """
    material = truth["labels"] != 0
    li_si = np.asarray(truth["li_per_si"], dtype=float)
    status = result.maps["li_k_status"]
    ok = material & (status == Status.OK)
    oxide = truth.get("oxide_fraction")
    flagged = material & ~ok
    out: dict[str, Any] = {
        "n_material": int(material.sum()),
        "n_with_value": int(ok.sum()),
        "n_flagged": int(flagged.sum()),
        "fraction_flagged": float(flagged.sum() / max(int(material.sum()), 1)),
        "flagged_by_status": {
            s.name.lower(): int(np.count_nonzero(status[flagged] == int(s)))
            for s in Status
            if np.any(status[flagged] == int(s))
        },
    }
    for key in ("li_k", "li_k_fraction"):
        values = np.asarray(result.maps[key], dtype=float)
        filled = np.where(ok, values, np.nanmedian(values[ok]) if ok.any() else 0.0)
        entry: dict[str, Any] = {
            "spearman_vs_li_si_pixels_with_value": _spearman(values[ok], li_si[ok]),
            "spearman_vs_li_si_all_material_flagged_as_failures": _spearman(
                filled[material], li_si[material]
            ),
        }
        if oxide is not None:
            free = material & (oxide == 0)
            entry["spearman_vs_li_si_oxide_free_all"] = _spearman(filled[free], li_si[free])
            entry["n_oxide_free"] = int(free.sum())
        exact = truth.get("li_k_counts" if key == "li_k" else "li_k_fraction")
        if exact is not None:
            exact = np.asarray(exact, dtype=float)
            entry["spearman_of_the_exact_truth_vs_li_si"] = _spearman(
                exact[material], li_si[material]
            )
            entry["spearman_vs_exact_truth_all_material"] = _spearman(
                filled[material], exact[material]
            )
            entry["error_vs_exact_truth"] = _error_stats(values[ok] - exact[ok])
            has_li = ok & (exact > 0)
            entry["relative_error_vs_exact_truth"] = _error_stats(
                (values[has_li] - exact[has_li]) / exact[has_li]
            )
            sigma = result.maps.get(f"{key}_err")
            if sigma is not None:
                z = (values[ok] - exact[ok]) / np.asarray(sigma, dtype=float)[ok]
                z = z[np.isfinite(z)]
                entry["normalised_error_vs_exact_truth"] = (
                    {
                        "n": int(z.size),
                        "std": float(np.std(z)),
                        "within_1_sigma": float(np.mean(np.abs(z) < 1)),
                        "within_2_sigma": float(np.mean(np.abs(z) < 2)),
                    }
                    if z.size
                    else None
                )
        out[key] = entry
    return out


def _pixel_label(idx: tuple[int, ...], nav_axes: list[Axis]) -> str:
    """``row 43, column 13 (y = 215 nm, x = 65 nm)``: scan indices and calibrated position."""
    if not idx:
        return "single spectrum"
    names = ("row", "column") if len(idx) == 2 else ("index",) * len(idx)
    text = ", ".join(f"{n} {i}" for n, i in zip(names, idx, strict=True))
    if len(nav_axes) == len(idx) and all(ax.units and ax.is_uniform for ax in nav_axes):
        pos = ", ".join(
            f"{'yx'[k] if len(idx) == 2 else 'x'} = {ax.offset + i * ax.scale:g} {ax.units}"
            for k, (ax, i) in enumerate(zip(nav_axes, idx, strict=True))
        )
        text += f" ({pos})"
    return text


def plot_example_fits(dataset: Any, result: Any, n_examples: int = 3):
    """Spectra of a few valid pixels with their fitted plasmon model, and where they are.

    The pixels chosen are those at the 10th, 50th and 90th percentile of Li/Si (fewer if
    fewer pixels are valid; of the plasmon energy where no pixel has a Li/Si), so the
    figure shows the range of the map. Each is reprocessed exactly as in the map
    (alignment, deconvolution) and drawn with the fit window, the fitted model (with its
    oxide peak, dashed, where the Li_xSi peak came from the fit with one), its reduced χ²
    and the 42 eV and Li-K windows. The first panel shows the Li/Si (or
    plasmon energy) map with the pixels marked A, B, C; each spectrum's title names its
    letter and its scan position as row and column (and y, x in calibrated units).

    Parameters
    ----------
    dataset : Dataset
        The spectra the result was computed from.
    result : EELSResult
    n_examples : int

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no pixel has a converged fit.
    """
    from matplotlib.figure import Figure

    from anodemap.eels.oxide_peak import fit_oxide_peak, holds_oxide_range
    from anodemap.eels.pipeline import _fixed_window, energy_axis, process_spectra

    key = "li_si_ratio" if np.any(result.valid) else "plasmon_energy"
    x = np.asarray(result.maps[key], dtype=float)
    flat_x = x.reshape(-1)
    valid = np.flatnonzero(np.isfinite(flat_x))
    if valid.size == 0:
        return None
    order = valid[np.argsort(flat_x[valid])]
    picks = sorted(
        {int(order[int(q * (order.size - 1))]) for q in np.linspace(0.1, 0.9, n_examples)},
        key=lambda i: flat_x[i],
    )
    nav_shape = tuple(dataset.nav_shape)
    data = dataset.data
    rows = [data[np.unravel_index(i, nav_shape)] if nav_shape else data for i in picks]
    if any(hasattr(r, "dask") for r in rows):  # lazy: read all picks in one pass
        import dask

        from anodemap._compute import local_scheduler

        rows = list(dask.compute(*rows, scheduler=local_scheduler()))
    spectra = np.stack([np.asarray(r) for r in rows])
    energy = energy_axis(dataset)
    p = result.parameters
    _maps, work, fit = process_spectra(spectra, energy, p)
    model = fit.model_spectrum(energy)
    oxide = np.full_like(model, np.nan)
    if p.oxide_peak != "off" and holds_oxide_range(_fixed_window(p.window)):
        # where the Li_xSi peak came from the fit with the oxide peak: draw that fit
        two = fit_oxide_peak(work, energy, fit)
        use = two.selected[:, None]
        model = np.where(use, two.model_spectrum(energy), model)
        oxide = np.where(use, two.model_spectrum(energy, oxide_only=True), np.nan)
    letters = "ABCDEFGHIJ"
    with_map = x.ndim == 2
    n_panels = len(picks) + (1 if with_map else 0)
    # a fixed layout: constrained layout costs more than drawing the log axes themselves
    fig = Figure(figsize=(4.6 * n_panels, 3.8))
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    fig.subplots_adjust(
        left=0.6 / fig.get_figwidth(),
        right=1 - 0.15 / fig.get_figwidth(),
        bottom=0.15,
        top=0.86,
        wspace=0.25,
    )
    if with_map:
        _mark_example_pixels(axes[0], x, picks, letters, result.titles.get(key, (key, ""))[0])
        spectra_axes = axes[1:]
    else:
        spectra_axes = axes
    lo, hi = p.window
    show = (energy >= 0.5 * lo) & (energy <= max(p.li_k_window[1] + 5, hi))
    for n, (ax, i, w, m, ox) in enumerate(
        zip(spectra_axes, picks, work, model, oxide, strict=True)
    ):
        ax.plot(energy[show], w[show], color="0.2", lw=1, label="spectrum")
        inside = (energy >= lo) & (energy <= hi)
        ax.plot(energy[inside], m[inside], color="C3", lw=1.2, label="fit (in its window)")
        if np.isfinite(ox).any():
            ax.plot(energy[inside], ox[inside], color="C3", lw=1, ls="--", label="its oxide peak")
        ax.axvspan(lo, hi, color="C0", alpha=0.08, label="fit window")
        ax.axvspan(*p.li2o_window, color="C2", alpha=0.15, label="Li$_2$O/silicate, 42 eV")
        ax.axvspan(*p.li_k_window, color="C1", alpha=0.15, label="Li-K, 60 eV")
        idx = tuple(int(v) for v in np.unravel_index(i, nav_shape)) if nav_shape else ()
        e_p = result.maps["plasmon_energy"].reshape(-1)[i]
        chi2 = result.maps["reduced_chi2"].reshape(-1)[i]
        li = result.maps["li_si_ratio"].reshape(-1)[i]
        li_text = f"Li/Si = {li:.2f}" if np.isfinite(li) else "no Li/Si"
        ax.set_title(
            f"{letters[n]}: {_pixel_label(idx, result.nav_axes)}\n"
            f"E$_p$ = {e_p:.2f} eV, {li_text}, reduced χ² = {chi2:.2f}",
            fontsize=8.5,
        )
        ax.set_xlabel("energy loss (eV)")
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(np.nanmax(w[show]) * 1e-3, 1e-3))
    spectra_axes[0].set_ylabel("counts" + (" (deconvolved)" if p.fit_deconvolved else ""))
    spectra_axes[0].legend(fontsize=7)
    return fig


def _mark_example_pixels(ax: Any, values: np.ndarray, picks: list[int], letters: str, title: str):
    """The map with the example pixels circled and lettered (row = y down, column = x)."""
    finite = values[np.isfinite(values)]
    vmin, vmax = np.percentile(finite, (1, 99)) if finite.size else (0.0, 1.0)
    ax.imshow(values, cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
    for n, i in enumerate(picks):
        r, c = np.unravel_index(i, values.shape)
        ax.plot(c, r, "o", mfc="none", mec="cyan", ms=9, mew=1.5)
        ax.annotate(
            letters[n],
            (c, r),
            xytext=(5, 5),
            textcoords="offset points",
            color="cyan",
            fontsize=10,
            fontweight="bold",
        )
    ax.set_title(f"example pixels on: {title}", fontsize=8.5)
    ax.set_xlabel("column (x)")
    ax.set_ylabel("row (y)")


def truth_figure(result: Any, truth: dict[str, np.ndarray]) -> Any:
    """Li/Si maps of the truth and of the result side by side, and fitted against truth.

    Returns the figure (save it with :func:`anodemap.plotting.save_figure`).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from anodemap.plotting import map_figure, plot_map

    size = result.nav_axes[-1].scale
    fig, panels = map_figure(np.shape(truth["li_per_si"]), 1, 3)
    axs = [ax for ax, _ in panels]
    panels[2][1].remove()  # the scatter plot has no colour bar
    plot_map(
        truth["li_per_si"],
        pixel_size=size,
        title="Li/Si, truth",
        label="Li/Si",
        cmap="magma",
        vmin=0,
        vmax=4.4,
        ax=axs[0],
        cax=panels[0][1],
    )
    plot_map(
        result.maps["li_si_ratio"],
        pixel_size=size,
        title="Li/Si, fitted",
        label="Li/Si",
        cmap="magma",
        vmin=0,
        vmax=4.4,
        valid=result.valid,
        ax=axs[1],
        cax=panels[1][1],
    )
    ok = result.valid & np.isfinite(truth["plasmon_peak_eV"])
    axs[2].plot(truth["li_per_si"][ok], result.maps["li_si_ratio"][ok], ".", ms=2, alpha=0.4)
    axs[2].plot([0, 4.4], [0, 4.4], "k--", lw=1)
    axs[2].set_xlabel("Li/Si, truth")
    axs[2].set_ylabel("Li/Si, fitted")
    axs[2].set_title("Fitted against truth", fontsize=10)
    # leave room below and left of the scatter plot for its axis labels
    box = axs[2].get_position()
    axs[2].set_position(
        (box.x0 + 0.12 * box.width, box.y0 + 0.14 * box.height, 0.86 * box.width, 0.86 * box.height)
    )
    return fig
