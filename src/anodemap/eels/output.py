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
from anodemap.status import Status, legend

__all__ = [
    "map_dataset",
    "write_eels_results",
    "write_json",
    "compare_with_truth",
    "plot_example_fits",
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
    "thickness": "thickness",
    "li2o_window": "li2o_window",
    "li_k": "li_k",
    "zlp_position": "zlp_position",
}

# Figures: map name -> (colour map, use valid-fit mask)
_FIGURES = {
    "plasmon_energy": ("viridis", True),
    "li_si_ratio": ("magma", True),
    "li_si_uncertainty": ("cividis", True),
    "li_si_calibration_uncertainty": ("cividis", True),
    "plasmon_fwhm": ("viridis", True),
    "thickness": ("gray", False),
    "li2o_window": ("inferno", False),
    "li_k": ("inferno", False),
    "zlp_position": ("coolwarm", False),
}


def _pixel_size(nav_axes: list[Axis]) -> tuple[float | None, str]:
    if not nav_axes:
        return None, ""
    ax = nav_axes[-1]
    if ax.units and ax.is_uniform:
        return float(ax.scale), ax.units
    return None, ""


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
        The summary written to summary.json.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    summary_path = outdir / "summary.json"
    if summary_path.exists():  # a stale summary must not vouch for new, partial files
        summary_path.unlink()
    for key, fname in _FILES.items():
        title, units = result.titles.get(key, (key, ""))
        ds = map_dataset(result.maps[key], result.nav_axes, title, units)
        if key == "fit_status":
            ds.set_meta("Signal.status_legend", legend())
        ds.set_meta("General.source", result.source)
        save(ds, outdir / f"{fname}.hspy")
    written = sorted(f"{f}.hspy" for f in _FILES.values())
    if figures:
        written += _write_figures(result, outdir, worker, dataset)
    summary = result.summary()
    summary["files"] = written
    write_json(summary, summary_path)
    return summary


def _write_figures(result: Any, outdir: Path, worker: Any = None, dataset: Any = None) -> list[str]:
    """The PNG figures; with a :class:`~anodemap.plotting.FigureWorker` the map figures
    are drawn in its process while this one draws the calibration and example fits."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from anodemap.plotting import FigureWorker, map_png, save_figure

    if result.maps["fit_status"].ndim == 0:
        return []
    own = worker is None
    worker = worker if worker is not None else FigureWorker(processes=0)
    size, units = _pixel_size(result.nav_axes)
    valid = np.asarray(result.valid)
    jobs = []
    for key, (cmap, use_valid) in _FIGURES.items():
        title, unit = result.titles[key]
        options = {
            "pixel_size": size,
            "units": units or "nm",
            "title": title,
            "label": unit,
            "cmap": cmap,
            "valid": valid if use_valid else None,
        }
        path = outdir / f"{_FILES[key]}.png"
        jobs.append(worker.submit(map_png, np.asarray(result.maps[key]), path, **options))
    jobs.append(
        worker.submit(
            _status_png,
            np.asarray(result.maps["fit_status"]),
            outdir / "fit_status.png",
            size,
            units,
        )
    )
    overview = {}
    for key in _OVERVIEW:
        cmap, use_valid = _FIGURES[key]
        overview[key] = (np.asarray(result.maps[key]), result.titles[key], cmap, use_valid)
    from anodemap.eels.calibration import plot_calibration

    # this process: the overview, calibration and example fits (about as long to draw
    # as the worker's maps)
    names = [_overview_png(overview, valid, outdir / "overview.png", size, units).name]
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
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


def _overview_png(
    maps: dict, valid: np.ndarray, path: Path, size: float | None, units: str
) -> Path:
    """Six maps in one figure; ``maps[key] = (values, (title, unit), cmap, use_valid)``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from anodemap.plotting import map_figure, plot_map, save_figure

    shape = next(iter(maps.values()))[0].shape
    fig, panels = map_figure(shape, 2, 3)
    for (ax, cax), (values, (title, unit), cmap, use_valid) in zip(
        panels, maps.values(), strict=True
    ):
        plot_map(
            values,
            pixel_size=size,
            units=units or "nm",
            title=title,
            label=unit,
            cmap=cmap,
            valid=valid if use_valid else None,
            ax=ax,
            cax=cax,
        )
    return save_figure(fig, path)


def _status_png(status: np.ndarray, path: Path, size: float | None, units: str) -> Path:
    """The fit-status map with the meaning of each code beside its colour."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.colors import BoundaryNorm, ListedColormap

    from anodemap.plotting import add_scalebar, map_figure, save_figure

    codes = list(Status)
    colors = ["#2a9d8f", "#e9c46a", "#f4a261", "#bbbbbb", "#e76f51", "#264653", "#9b5de5"]
    cmap = ListedColormap(colors[: len(codes)])
    norm = BoundaryNorm(np.arange(len(codes) + 1) - 0.5, cmap.N)
    if status.ndim == 1:
        status = status[None]
    # room right of the colour bar for the status names
    fig, [(ax, cax)] = map_figure(status.shape, cbar_label_inches=1.8)
    im = ax.imshow(status, cmap=cmap, norm=norm, interpolation="nearest")
    cb = fig.colorbar(im, cax=cax, ticks=range(len(codes)))
    lg = legend()
    cb.ax.set_yticklabels([textwrap.fill(lg[str(int(c))], 30) for c in codes], fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("Fit status", fontsize=10)
    if size:
        add_scalebar(ax, size, units, status.shape[1])
    return save_figure(fig, path)


def compare_with_truth(result: Any, truth: dict[str, np.ndarray]) -> dict[str, Any]:
    """Errors of the maps against simulated ground truth.

    ``truth`` holds ``plasmon_peak_eV``, ``li_per_si``, ``t_over_lambda`` and ``labels``
    maps (as :func:`anodemap.synth.simulate_eels` returns them), optionally
    ``oxide_fraction`` and ``t_over_lambda_in_window``.

    Plasmon and Li/Si errors are given over all valid material pixels, and again over
    the pixels with no Li2O/silicate (``oxide_free``: truth oxide fraction 0). The truth ``plasmon_peak_eV`` is the Li_xSi component alone, so at grain
    boundaries rich in Li2O/silicates (plasmon near 20 eV) a one-peak fit measures a
    mixture, not that number. The log-ratio thickness only sees the recorded energy
    range, so it is compared with ``t_over_lambda_in_window`` (the exact t/λ of the
    scattering inside that range) when the truth has it.
    """
    material = result.valid & np.isfinite(truth["plasmon_peak_eV"])
    oxide = truth.get("oxide_fraction")
    oxide_free = material if oxide is None else material & (oxide == 0)
    t_fit = result.maps["thickness"]
    t_true = truth.get("t_over_lambda_in_window", truth["t_over_lambda"])
    has_t = np.isfinite(t_fit)
    dt_rel = (t_fit[has_t] - t_true[has_t]) / t_true[has_t]

    def stats(v: np.ndarray) -> dict[str, float | None]:
        if v.size == 0:
            return {"median": None, "median_abs": None, "rms": None}
        return {
            "median": float(np.median(v)),
            "median_abs": float(np.median(np.abs(v))),
            "rms": float(np.sqrt(np.mean(v**2))),
        }

    def errors(mask: np.ndarray) -> dict[str, Any]:
        de = result.maps["plasmon_energy"][mask] - truth["plasmon_peak_eV"][mask]
        dx = result.maps["li_si_ratio"][mask] - truth["li_per_si"][mask]
        pulls = de / result.maps["plasmon_energy_err"][mask]
        return {
            "n_compared": int(mask.sum()),
            "plasmon_energy_error_eV": stats(de),
            "li_si_error": stats(dx),
            "plasmon_energy_pull_std": float(np.std(pulls)) if pulls.size else None,
            "mean_li_si_fitted": float(np.mean(result.maps["li_si_ratio"][mask]))
            if mask.any()
            else None,
            "mean_li_si_true": float(np.mean(truth["li_per_si"][mask])) if mask.any() else None,
        }

    out = errors(material)
    out["thickness_relative_error"] = stats(dt_rel)
    out["oxide_free"] = errors(oxide_free)
    return out


def plot_example_fits(dataset: Any, result: Any, n_examples: int = 3):
    """Spectra of a few valid pixels with their fitted plasmon model.

    The pixels chosen are those at the 10th, 50th and 90th percentile of Li/Si (fewer if
    fewer pixels are valid), so the figure shows the range of the map. Each is reprocessed
    exactly as in the map (alignment, deconvolution) and drawn with the fit window, the
    fitted model and the 42 eV and Li-K windows.

    Parameters
    ----------
    dataset : Dataset
        The spectra the result was computed from.
    result : EELSResult
    n_examples : int

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no pixel is valid.
    """
    from matplotlib.figure import Figure

    from anodemap.eels.pipeline import energy_axis, process_spectra

    x = np.asarray(result.maps["li_si_ratio"], dtype=float)
    flat_x = x.reshape(-1)
    valid = np.flatnonzero(np.isfinite(flat_x))
    if valid.size == 0:
        return None
    order = valid[np.argsort(flat_x[valid])]
    picks = sorted(
        {int(order[int(q * (order.size - 1))]) for q in np.linspace(0.1, 0.9, n_examples)}
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
    # a fixed layout: constrained layout costs more than drawing the log axes themselves
    fig = Figure(figsize=(4.6 * len(picks), 3.6))
    axes = fig.subplots(1, len(picks), squeeze=False)
    fig.subplots_adjust(
        left=0.6 / fig.get_figwidth(),
        right=1 - 0.15 / fig.get_figwidth(),
        bottom=0.15,
        top=0.9,
        wspace=0.2,
    )
    show = (energy >= 0.5 * p.window[0]) & (energy <= max(p.li_k_window[1] + 5, p.window[1]))
    for ax, i, w, m in zip(axes[0], picks, work, model, strict=True):
        ax.plot(energy[show], w[show], color="0.2", lw=1, label="spectrum")
        inside = (energy >= p.window[0]) & (energy <= p.window[1])
        ax.plot(energy[inside], m[inside], color="C3", lw=1.2, label="fit (in its window)")
        ax.axvspan(*p.window, color="C0", alpha=0.08, label="fit window")
        ax.axvspan(*p.li2o_window, color="C2", alpha=0.15, label="Li2O/silicate")
        ax.axvspan(*p.li_k_window, color="C1", alpha=0.15, label="Li-K")
        idx = np.unravel_index(i, nav_shape) if nav_shape else ()
        e_p = result.maps["plasmon_energy"].reshape(-1)[i]
        ax.set_title(
            f"pixel {tuple(int(v) for v in idx)}: E_p = {e_p:.2f} eV, Li/Si = {flat_x[i]:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("energy loss (eV)")
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(np.nanmax(w[show]) * 1e-3, 1e-3))
    axes[0][0].set_ylabel("counts" + (" (deconvolved)" if p.deconvolve != "none" else ""))
    axes[0][0].legend(fontsize=7)
    return fig
