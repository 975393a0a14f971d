"""Every analysis of the contract gives the same maps in memory, read lazily and on a
dask LocalCluster of two worker processes (issue 16)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from anodemap.analysis import Context, analysis_names, get_analysis
from anodemap.cli import _simulate_diffraction, _simulate_eels
from anodemap.synth.edx import write_edx_simulation
from anodemap.synth.haadf import write_haadf

# small, quick parameters per analysis (the modes are compared, not the defaults)
_QUICK = {
    "eels": {"rl_iterations": 5},
    "diffraction": {"phases": ("Si",), "step_deg": 5.0, "refine_step_deg": 0.0},
    "pdf": {"n_boot": 50},
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    found = {
        "eels": _simulate_eels(root / "e", (10, 10), 5, 5.0),
        "diffraction": _simulate_diffraction(root / "d", (10, 10), 5, 5.0)["zspy"],
        "edx": write_edx_simulation(root / "x", (10, 10), 5, 5.0),
        # a HAADF image of a 24 x 24 phantom (10 x 10 is too small for its scan)
        "features": write_haadf(root / "h", (24, 24), 5, 5.0, log=lambda _: None),
    }
    # the results that an analysis requires (a PDF: the diffraction result of its input)
    diffraction = get_analysis("diffraction")
    quiet = Context(progress=False, figures=False, log=lambda _: None)
    params = diffraction.parameters(_QUICK["diffraction"])
    diffraction.run(found["diffraction"], root / "diffraction_result", params, quiet)
    found["diffraction result"] = root / "diffraction_result"
    # (the statistics per feature: the features result of the HAADF image)
    get_analysis("features").run(found["features"], root / "features_result", context=quiet)
    found["features result"] = root / "features_result"
    return found


def _maps(result) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in result.maps.items()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], what: str) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if np.issubdtype(a[key].dtype, np.integer) or a[key].dtype == bool:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{what}: {key}")
        else:  # another chunking sums in another order
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, err_msg=f"{what}: {key}")


@pytest.mark.parametrize("name", analysis_names())
def test_an_analysis_gives_the_same_maps_in_memory_lazily_and_on_a_cluster(
    name, inputs, local_cluster_client
):
    analysis = get_analysis(name)
    params = analysis.parameters(_QUICK.get(name, {}))
    quiet = Context(progress=False, figures=False, log=lambda _: None)
    lazy = analysis.load(inputs[analysis.reads or name])
    files = {r: inputs[f"{r} result"] for r in analysis.requires}
    assert lazy.is_lazy
    eager = dataclasses.replace(lazy, data=np.asarray(lazy.data.compute()))
    ref = _maps(analysis.analyse(eager, params, quiet, files))
    assert ref, f"{name}: no maps to compare"
    _same(ref, _maps(analysis.analyse(lazy, params, quiet, files)), f"{name}, lazy")
    on_cluster = dataclasses.replace(quiet, client=local_cluster_client)
    _same(ref, _maps(analysis.analyse(lazy, params, on_cluster, files)), f"{name}, cluster")
