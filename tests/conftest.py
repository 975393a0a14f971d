"""Shared fixtures: data paths, optional peers (exspy/HyperSpy) and a dask cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import exspy_file

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _template_cache(tmp_path_factory):
    """Template libraries cached in a folder of the test session, not the user's home
    (anodemap.diffraction._cache); subprocesses inherit it."""
    import os

    old = os.environ.get("ANODEMAP_CACHE_DIR")
    os.environ["ANODEMAP_CACHE_DIR"] = str(tmp_path_factory.mktemp("anodemap-cache"))
    yield
    if old is None:
        os.environ.pop("ANODEMAP_CACHE_DIR", None)
    else:
        os.environ["ANODEMAP_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def sim():
    """The 32 x 32 simulated spectrum image of seed 3 (EELS tests share it)."""
    from anodemap.synth import make_phantom, simulate_eels

    return simulate_eels(make_phantom((32, 32), seed=3), seed=3)


@pytest.fixture(scope="session")
def result(sim):
    """``analyse_eels`` of :func:`sim` with the default parameters."""
    from anodemap.eels.pipeline import analyse_eels, eels_dataset

    return analyse_eels(eels_dataset(sim.spectra, sim.energy, pixel_size_nm=5.0), progress=False)


@pytest.fixture
def exspy_lowloss_msa() -> Path:
    """exspy's real measured low-loss spectrum (shipped inside the exspy package)."""
    return exspy_file("tests", "components", "lowloss_spectrum.msa")


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
