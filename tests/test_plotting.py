"""Figure helpers: the helper process that draws figures, and its fallbacks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from anodemap.plotting import FigureWorker, map_png


def _pid() -> int:
    return os.getpid()


def _die_unless(pid: int) -> str:
    """Kill the process running the job, unless it is the process ``pid``."""
    if os.getpid() != pid:
        os._exit(3)
    return "redone here"


def test_worker_draws_in_another_process(tmp_path):
    with FigureWorker(processes=1) as worker:
        other = worker.result(worker.submit(_pid))
        job = worker.submit(map_png, np.arange(12.0).reshape(3, 4), tmp_path / "m.png")
        path = worker.result(job)
    assert other != os.getpid()
    assert path == tmp_path / "m.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*partial*"))  # written atomically


def test_job_of_a_dead_worker_is_redone_here():
    with FigureWorker(processes=1) as worker:
        assert worker.result(worker.submit(_die_unless, os.getpid())) == "redone here"
        # the worker is gone; later jobs run here
        assert worker.result(worker.submit(_pid)) == os.getpid()


def test_error_of_a_job_is_raised_not_swallowed(tmp_path):
    with FigureWorker(processes=1) as worker:
        job = worker.submit(map_png, np.ones((2, 2)), tmp_path / "no" / "such" / "dir.png")
        with pytest.raises(FileNotFoundError):
            worker.result(job)


def test_inline_worker_runs_jobs_here(tmp_path):
    with FigureWorker(processes=0) as worker:
        assert worker.result(worker.submit(_pid)) == os.getpid()


def test_no_value_pixels_are_hatched_and_named_in_a_legend():
    from anodemap.plotting import plot_map

    values = np.arange(16.0).reshape(4, 4)
    values[1, 2] = np.nan
    fig = plot_map(values, pixel_size=1.0, cmap="cividis", no_value_label="fit failed")
    ax = fig.axes[0]
    # NaN pixels are transparent over a hatched background, not a grey of the colour map
    assert ax.patch.get_hatch() and ax.images[0].cmap.get_bad()[3] == 0.0
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fit failed"]
    # without a missing pixel there is no legend
    assert plot_map(np.ones((3, 3)) * np.arange(3)).axes[0].get_legend() is None


def test_diverging_map_is_centred():
    from anodemap.plotting import plot_map

    fig = plot_map(np.linspace(-0.2, 1.0, 16).reshape(4, 4), cmap="RdBu_r", center=0.0)
    lo, hi = fig.axes[0].images[0].get_clim()
    assert lo == pytest.approx(-hi) and hi > 0.9
