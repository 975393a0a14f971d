"""Figures for papers: maps with a scale bar and a labelled colour bar.

Matplotlib only, Agg backend when writing files, so figures are made on
machines without a screen.

Examples
--------
>>> import numpy as np
>>> from anodemap.plotting import nice_length
>>> nice_length(137.0)
100.0
>>> nice_length(0.3)
0.2
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "nice_length",
    "map_figure",
    "plot_map",
    "save_figure",
    "add_scalebar",
    "show_no_value",
    "no_value_handle",
    "legend_no_value",
    "map_png",
    "FigureWorker",
    "import_in_background",
    "TOL_COLOURS",
]

# Paul Tol's colour-blind-safe "bright" scheme without its grey, then his "muted" one
# (https://personal.sron.nl/~pault/): lines of states and regions
TOL_COLOURS = (
    "#4477AA",
    "#EE6677",
    "#228833",
    "#CCBB44",
    "#66CCEE",
    "#AA3377",
    "#332288",
    "#117733",
    "#999933",
    "#882255",
)


def nice_length(target: float) -> float:
    """Largest 1, 2 or 5 × 10^n not above ``target`` (for scale bars)."""
    if not np.isfinite(target) or target <= 0:
        return 1.0
    exp = math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        value = m * 10.0**exp
        if value <= target * (1 + 1e-9):
            return float(f"{value:.12g}")
    return float(f"{10.0**exp:.12g}")


def add_scalebar(ax: Any, pixel_size: float, units: str, n_pixels_x: int, color: str = "white"):
    """Draw a scale bar of a nice length (about a fifth of the width) in the lower left.

    ``pixel_size`` is in ``units`` per pixel; nm bars of 1000 nm or more are shown in µm.
    The bar and its label sit on a translucent dark box, so they read on light and dark
    maps alike.
    """
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    width = pixel_size * n_pixels_x
    length = nice_length(width / 5)
    label_value, label_units = length, units
    if units == "nm" and length >= 1000:
        label_value, label_units = length / 1000, "µm"
    label = f"{label_value:g} {label_units}".strip()
    bar = AnchoredSizeBar(
        ax.transData,
        length / pixel_size,
        label,
        "lower left",
        pad=0.4,
        color=color,
        frameon=True,
        sep=4,
        borderpad=0.3,
        # a fixed share of the map's width: the same thickness on a 3 x 2 scan as on a
        # 256 x 256 one (a floor in pixels made a block of a tiny map)
        size_vertical=n_pixels_x / 80,
        fontproperties=FontProperties(size=9, weight="bold"),
    )
    bar.patch.set(facecolor="black", alpha=0.55, edgecolor="none")
    ax.add_artist(bar)
    return bar


# Pixels without a value (NaN, or flagged by a status map) show the axes background: a
# grey hatch on white. A pattern cannot be mistaken for a colour of any colour map, and
# it is named in a legend entry of the map (:func:`no_value_handle`).
_NO_VALUE_HATCH = "////"
_NO_VALUE_EDGE = "0.35"


def show_no_value(ax: Any) -> None:
    """Make the axes background the no-value pattern (masked pixels let it through)."""
    ax.patch.set_facecolor("white")
    ax.patch.set_hatch(_NO_VALUE_HATCH)
    ax.patch.set_edgecolor(_NO_VALUE_EDGE)
    ax.patch.set_linewidth(0.0)


def no_value_handle(label: str = "no value") -> Any:
    """A legend entry for the no-value pattern of :func:`show_no_value`."""
    from matplotlib.patches import Patch

    return Patch(
        facecolor="white",
        edgecolor=_NO_VALUE_EDGE,
        hatch=_NO_VALUE_HATCH,
        linewidth=0.0,
        label=label,
    )


def legend_no_value(ax: Any, label: str = "no value") -> Any:
    """Name the no-value pattern in a small legend in the lower right of a map."""
    leg = ax.legend(
        handles=[no_value_handle(label)],
        loc="lower right",
        fontsize=7,
        handlelength=1.4,
        handleheight=1.1,
        borderpad=0.3,
        framealpha=0.85,
    )
    return leg


# Fixed page layout of map figures, in inches. Laying the axes out by hand (rather than
# with matplotlib's constrained layout) makes the colour bar exactly as tall as the map
# and costs nothing at drawing time: constrained layout measured ~40 % of the time to
# write a map figure.
_MAP_INCHES = 3.6  # the longer side of a map's image box
_PAD = 0.12  # around everything
_TITLE = 0.32  # above each panel, for its title
_CBAR_GAP, _CBAR_W, _CBAR_LABEL = 0.1, 0.14, 0.95  # colour bar: gap, bar, ticks + label


def map_figure(
    shape: tuple[int, ...],
    nrows: int = 1,
    ncols: int = 1,
    *,
    size: float = _MAP_INCHES,
    colorbar: bool = True,
    cbar_label_inches: float = _CBAR_LABEL,
):
    """A figure of ``nrows × ncols`` map panels, each with its own colour-bar axes.

    Each panel's image box has the aspect ratio of ``shape`` (clamped to 1:4), its longer
    side ``size`` inches, so the map fills it and the colour bar beside it has the map's
    height. Line scans (1-D shapes) get a plot box of 1:2.5.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the maps (or ``(n,)`` for a line scan).
    nrows, ncols : int
        Grid of panels.
    size : float
        Longer side of each image box in inches.
    colorbar : bool
        Reserve a colour-bar axes beside each panel.
    cbar_label_inches : float
        Width kept right of each colour bar for its tick labels and label.

    Returns
    -------
    fig : matplotlib.figure.Figure
    panels : list of (Axes, Axes or None)
        ``(ax, cax)`` per panel, row by row.

    Examples
    --------
    >>> fig, panels = map_figure((64, 128), 1, 2)
    >>> len(panels), bool(fig.get_size_inches()[0] > 2 * 3.6)
    (2, True)
    """
    from matplotlib.figure import Figure

    if len(shape) >= 2 and shape[0] > 0 and shape[1] > 0:
        aspect = min(max(shape[0] / shape[1], 0.25), 4.0)  # height / width
    else:
        aspect = 0.4
    w_img, h_img = (size, size * aspect) if aspect <= 1 else (size / aspect, size)
    colorbar = colorbar and len(shape) >= 2  # a profile has no colour bar
    w_cb = (_CBAR_GAP + _CBAR_W + cbar_label_inches) if colorbar else 0.0
    w_cell = w_img + w_cb + _PAD
    h_cell = h_img + _TITLE + _PAD
    if len(shape) < 2:  # a profile needs room for its axis labels
        w_cell += 0.7
        h_cell += 0.45
    fig_w = _PAD + ncols * w_cell
    fig_h = _PAD + nrows * h_cell
    fig = Figure(figsize=(fig_w, fig_h))
    panels = []
    for r in range(nrows):
        for c in range(ncols):
            x0 = _PAD + c * w_cell + (0.7 if len(shape) < 2 else 0.0)
            y0 = fig_h - (r + 1) * h_cell + (0.45 if len(shape) < 2 else 0.0)
            ax = fig.add_axes((x0 / fig_w, y0 / fig_h, w_img / fig_w, h_img / fig_h))
            cax = None
            if colorbar:
                xc = x0 + w_img + _CBAR_GAP
                cax = fig.add_axes((xc / fig_w, y0 / fig_h, _CBAR_W / fig_w, h_img / fig_h))
            panels.append((ax, cax))
    return fig, panels


def plot_map(
    values: np.ndarray,
    *,
    pixel_size: float | None = None,
    units: str = "nm",
    title: str = "",
    label: str = "",
    cmap: str = "viridis",
    valid: np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    ax: Any = None,
    cax: Any = None,
    no_value_label: str = "no value",
    center: float | None = None,
    categories: dict[int, str] | None = None,
):
    """Show a map with a colour bar and (when calibrated) a scale bar.

    Parameters
    ----------
    values : ndarray, shape (ny, nx) or (n,)
        The map; a 1-D line scan is drawn as a profile.
    pixel_size : float, optional
        Scan step in ``units`` per pixel; no scale bar if None.
    valid : ndarray of bool, optional
        Pixels to show; the others (and NaN pixels) show the no-value pattern, a grey
        hatch named in a legend entry (``no_value_label``).
    vmin, vmax : float, optional
        Colour limits; default the given percentiles of the valid pixels.
    no_value_label : str
        Legend text of the no-value pattern (shown only where a pixel has no value).
    center : float, optional
        For a diverging colour map: the value at its middle colour (e.g. 0 eV); the
        limits are made symmetric about it.
    categories : dict of int to str, optional
        A label map's codes and names: one colour per code from ``cmap`` and the names
        on the colour bar instead of a continuous scale.
    ax, cax : matplotlib Axes, optional
        Draw into these (e.g. a panel of :func:`map_figure`); without ``ax`` a new
        one-panel :func:`map_figure` is made. Without ``cax`` the colour bar takes its
        room from ``ax``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_map(np.arange(12.0).reshape(3, 4), pixel_size=5.0, title="demo", label="eV")
    >>> fig.axes[1].get_ylabel()
    'eV'
    >>> fig = plot_map(np.array([[0, 1], [2, 1]]), categories={0: "a", 1: "b", 2: "c"})
    >>> [t.get_text() for t in fig.axes[1].get_yticklabels()]
    ['a', 'b', 'c']
    """
    import matplotlib

    values = np.asarray(values, dtype=float)
    if ax is None:
        fig, [(ax, cax)] = map_figure(values.shape)
    else:
        fig = ax.figure
    show = np.isfinite(values) if valid is None else (np.asarray(valid) & np.isfinite(values))
    finite = values[show]
    if vmin is None:
        vmin = float(np.percentile(finite, percentiles[0])) if finite.size else 0.0
    if vmax is None:
        vmax = float(np.percentile(finite, percentiles[1])) if finite.size else 1.0
    if center is not None:
        half = max(abs(vmax - center), abs(center - vmin))
        vmin, vmax = center - half, center + half
    if categories:
        lo, hi = min(categories), max(categories)
        vmin, vmax = lo - 0.5, hi + 0.5
    if vmax <= vmin:
        vmax = vmin + (abs(vmin) * 1e-3 or 1.0)
    if values.ndim == 1:
        x = np.arange(values.size) * (pixel_size or 1.0)
        ax.plot(x, np.where(show, values, np.nan), "-", color="C0")
        ax.set_xlabel(f"position ({units})" if pixel_size else "pixel")
        ax.set_ylabel(label)
    else:
        cm = matplotlib.colormaps[cmap]
        if categories:
            cm = cm.resampled(max(categories) - min(categories) + 1)
        cm = cm.with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
        show_no_value(ax)
        im = ax.imshow(
            np.ma.masked_where(~show, values),
            cmap=cm,
            vmin=vmin,
            vmax=vmax,
            interpolation="nearest",
        )
        if cax is not None:
            cb = fig.colorbar(im, cax=cax)
        else:
            cb = fig.colorbar(im, ax=ax, shrink=0.9)
        cb.set_label(label)
        if categories:
            cb.set_ticks(sorted(categories), labels=[categories[k] for k in sorted(categories)])
        ax.set_xticks([])
        ax.set_yticks([])
        if pixel_size:
            add_scalebar(ax, pixel_size, units, values.shape[1])
        if not show.all():
            legend_no_value(ax, no_value_label)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a figure atomically (temporary name, then rename) and close it.

    PNGs are written with light zlib compression (level 1): files about 2 % larger,
    written in a third less time than at the default level 6. The temporary name holds
    the process id and a random part, so that two processes (a run and its figure
    helper, or two runs) never rename each other's files; in an output folder that this
    process holds (:func:`anodemap.io.outdir.output_folder`) the figure is recorded as
    this run's.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> fig, _ = map_figure((4, 4))
    >>> save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "empty.png").name
    'empty.png'
    """
    from anodemap.io.atomic import atomic_path

    path = Path(path)
    kwargs: dict[str, Any] = {"dpi": dpi}
    if path.suffix.lower() == ".png":
        kwargs["pil_kwargs"] = {"compress_level": 1}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
        if getattr(fig.canvas, "manager", None) is not None:  # a pyplot figure: release it
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path


def map_png(values: np.ndarray, path: str | os.PathLike, **plot_options: Any) -> Path:
    """:func:`plot_map` of ``values`` saved to ``path`` (one job for a :class:`FigureWorker`).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = map_png(np.eye(4), pathlib.Path(d) / "eye.png", pixel_size=2.0, title="I")
    ...     p.stat().st_size > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    return save_figure(plot_map(values, **plot_options), path)


def import_in_background() -> Any:
    """Import matplotlib's drawing modules in a thread; the thread, to ``join()`` before
    drawing.

    A long computation on every core still leaves gaps (scheduling, reading) that the
    import fills, instead of costing its time on one core afterwards. Only imports run
    there, nothing is drawn, so no matplotlib object is shared between threads.
    """
    import threading

    def imports() -> None:
        with contextlib.suppress(Exception):  # an import error shows where it is used
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.figure  # noqa: F401
            import mpl_toolkits.axes_grid1.anchored_artists  # noqa: F401

    thread = threading.Thread(target=imports, name="anodemap-import-matplotlib", daemon=True)
    thread.start()
    return thread


# How often a figure helper process looks whether its parent is still there (s): it ends
# within about this long of its parent, also when the parent was killed (SIGKILL).
_PARENT_POLL_S = 0.5


def _watch_parent(parent_pid: int, interval: float = _PARENT_POLL_S) -> None:
    """End this (helper) process as soon as ``parent_pid`` is no longer its parent.

    The initializer of :class:`FigureWorker`'s process. A parent that exits normally stops
    its helper, but one killed outright (``kill -9``, the out-of-memory killer) cannot:
    the helper is handed to init and would live on. So a daemon thread of the helper
    compares ``os.getppid()`` with the parent's pid every ``interval`` seconds (a changed
    parent is a dead one; on Linux the signal ``prctl(PR_SET_PDEATHSIG)`` would be sent
    when the *thread* that started the helper ends, which need not be the parent's end)
    and ends the process at once (``os._exit``: no clean-up of a half-drawn figure, whose
    temporary file the next run into the folder removes).
    """
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="anodemap-watch-parent", daemon=True).start()


def _warm_up() -> None:
    """Import matplotlib and draw once (fonts, Agg), so that the first real job is fast."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    ax = fig.subplots()
    ax.set_title("warm-up")
    ax.imshow(np.zeros((2, 2)))
    fig.colorbar(ax.images[0], ax=ax).set_label("x")
    fig.savefig(io.BytesIO(), format="png")


class FigureWorker:
    """Draws figures in a helper process while the caller goes on with other work.

    Matplotlib draws in Python under the GIL, so figures written one after another
    cost their full time on one core (2–3 s for the dozen figures of a spectrum-image
    analysis). A worker started early imports matplotlib while the caller is still
    reading and computing, and then draws its share of the figures while the caller
    draws the rest. Jobs are plain functions of arrays (e.g. :func:`map_png`). If the
    helper process cannot be started or dies, jobs run in the calling process
    instead, so a figure is never lost to the worker; an error raised by a job itself
    is raised again by :meth:`result`.

    The process is forked when the caller has no other threads (the start of a
    command-line run) and spawned otherwise. It ends with the caller, also when the
    caller is killed outright (``kill -9``): it looks for its parent twice a second
    (:func:`_watch_parent`).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d, FigureWorker(processes=0) as worker:
    ...     job = worker.submit(map_png, np.eye(3), pathlib.Path(d) / "m.png")
    ...     worker.result(job).name
    'm.png'
    """

    def __init__(self, processes: int = 1) -> None:
        self._pool: Any = None
        self._jobs: dict[Any, tuple] = {}
        if processes <= 0:
            return
        try:
            import multiprocessing as mp
            import threading
            from concurrent.futures import ProcessPoolExecutor

            method = (
                "fork"
                if "fork" in mp.get_all_start_methods() and threading.active_count() == 1
                else "spawn"
            )
            self._pool = ProcessPoolExecutor(
                processes,
                mp_context=mp.get_context(method),
                initializer=_watch_parent,  # ends with this process, also on kill -9
                initargs=(os.getpid(),),
            )
            self._pool.submit(_warm_up)  # starts the process now
        except Exception:  # no helper process here (sandbox, no semaphores): draw inline
            self._pool = None

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in the helper process; a future of its result."""
        from concurrent.futures import Future

        if self._pool is not None:
            try:
                fut = self._pool.submit(fn, *args, **kwargs)
                self._jobs[fut] = (fn, args, kwargs)  # to redo it here if the worker dies
                return fut
            except Exception:
                self._drop_pool()
        fut = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as err:
            fut.set_exception(err)
        return fut

    def result(self, fut: Any) -> Any:
        """The result of a submitted job (redone in this process if the worker died)."""
        from concurrent.futures.process import BrokenProcessPool

        job = self._jobs.pop(fut, None)
        try:
            return fut.result()
        except BrokenProcessPool:
            if job is None:
                raise
            self._drop_pool()
            fn, args, kwargs = job
            return fn(*args, **kwargs)

    def _drop_pool(self) -> None:
        """Give up the helper process (broken): later jobs run in this process."""
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Wait for the jobs and stop the helper process."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> FigureWorker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
