"""The PDF truth of a simulated diffraction scan (issue 17): the per-pattern weights of the
amorphous models and the models' pair distances, written beside the other truth maps.

Checked against the simulator's own numbers: the weights reproduce the truth's
``amorphous_probability`` (the diffuse scattering probability on the detector, computed
by the simulator from its profiles, before the plural-scattering factor) to 1e-10
relative, and the models read back from ``amorphous_models.json`` give I(s) bit for bit
equal to the simulator's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from anodemap.synth import make_phantom
from anodemap.synth.diffraction import _PROFILE_STEP_PX, amorphous_model, simulate_diffraction
from anodemap.synth.truth import MODEL_WEIGHTS, MODELS, read_amorphous_models
from anodemap.synth.truth import write_diffraction_truth as write


@pytest.fixture(scope="module")
def sim():
    return simulate_diffraction(make_phantom((12, 12), seed=4), pattern_shape=(32, 32), seed=4)


def test_weights_reproduce_the_simulators_amorphous_probability(sim, tmp_path):
    folder = write(sim, tmp_path / "truth", 5.0)
    weights, models = read_amorphous_models(folder)
    assert weights.shape == (12, 12, 7)
    ky, kx = sim.patterns.shape[2:]
    # the simulator's radial table and its detector pixels per radius bin (nominal centre)
    prof_r = np.arange(0.0, math.hypot(ky, kx) / 2.0 + 2.0 + 4.0, _PROFILE_STEP_PX)
    yy, xx = np.mgrid[:ky, :kx]
    rr = np.hypot(yy - (ky - 1) / 2.0, xx - (kx - 1) / 2.0) / _PROFILE_STEP_PX
    counts = np.bincount(np.rint(rr).astype(int).ravel(), minlength=prof_r.size)[: prof_r.size]
    psi = np.array(
        [
            m.density * m.intensity(prof_r * sim.scale, sim.beam_energy_kev) @ counts
            if m is not None
            else 0.0
            for m in models
        ]
    )
    t = sim.truth
    p_tot = t["bragg_probability"] + t["amorphous_probability"]
    # the weights carry the plural-scattering factor elastic·(1 − e^−p)/p; take it out
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = t["direct_fraction"] * np.expm1(p_tot) / p_tot
    material = t["amorphous_probability"] > 0
    assert material.sum() > 100
    got = (weights @ psi)[material] / factor[material]
    np.testing.assert_allclose(got, t["amorphous_probability"][material], rtol=1e-10)
    assert np.all(weights[~material] == 0)  # pores: no amorphous scattering
    # a model the scan does not use is listed as None, and has no weight
    for k, m in enumerate(models):
        assert (m is None) == (not np.any(weights[..., k] > 0))


def test_models_read_back_give_the_simulators_intensity(sim, tmp_path):
    folder = write(sim, tmp_path / "truth", 5.0)
    _, models = read_amorphous_models(folder)
    s = np.linspace(0.02, 1.6, 400)
    used = [
        (k, m)
        for k, m in zip(sim.truth["amorphous_model_keys"], models, strict=True)
        if m is not None
    ]
    assert len(used) >= 2
    for key, m in used:
        ref = amorphous_model(key)
        assert m.name == ref.name and m.density == ref.density
        assert np.array_equal(m.r, ref.r)
        assert np.array_equal(m.intensity(s, 300.0), ref.intensity(s, 300.0))


def test_the_pdf_truth_only_adds_files(sim, tmp_path):
    """The maps and truth.json are the same bytes with and without the PDF truth."""
    with_pdf = write(sim, tmp_path / "a", 5.0)
    truth = {
        k: v
        for k, v in sim.truth.items()
        if k not in ("amorphous_model_weights", "amorphous_model_keys")
    }
    old = type(sim)(**{**sim.__dict__, "truth": truth})
    without = write(old, tmp_path / "b", 5.0)
    names = {p.name for p in without.iterdir()}
    assert {p.name for p in with_pdf.iterdir()} == names | {MODEL_WEIGHTS, MODELS}
    for name in names:
        assert (with_pdf / name).read_bytes() == (without / name).read_bytes(), name
