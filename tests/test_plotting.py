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
