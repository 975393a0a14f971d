"""Shared fixtures: data paths, optional peers (exspy/HyperSpy) and a dask cluster."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            f"{package} is not installed (install the test extra: pip install -e '.[test]')"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{package} is installed but does not ship {'/'.join(parts)}")
    return path


@pytest.fixture
def exspy_lowloss_msa() -> Path:
    """exspy's real measured low-loss spectrum (shipped inside the exspy package)."""
    return _package_file("exspy", "tests", "components", "lowloss_spectrum.msa")


@pytest.fixture
def shared_blo() -> Path:
    path = SHARED_DATA / "test1.blo"
    if not path.exists():
        pytest.skip(f"shared test data not found at {path}")
    return path


@pytest.fixture(scope="session")
def local_cluster_client():
    """A dask.distributed LocalCluster with two worker processes (no network beyond loopback)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    )
    # not the global default: other tests (and HyperSpy) must keep the local scheduler
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
