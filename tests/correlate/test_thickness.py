"""The classes under the EELS map found again with its t/λ (anodemap.correlate.thickness):
when nothing is done; the gains on the simulated region are in test_correlate.py."""

from __future__ import annotations

import numpy as np

from anodemap.correlate.thickness import keep_envelope
from anodemap.features.classes import BOUNDARY, BRIGHT, DENDRITE, GREY, PORE


def test_no_eels_t_over_lambda_under_the_survey_keeps_the_classes():
    from anodemap.correlate.thickness import with_eels_thickness

    labels = np.full((20, 20), GREY, np.uint8)
    summary = {"mode": "unsupervised", "thickness_term": "envelope", "parameters": {}}
    nan = np.full(labels.shape, np.nan)
    out = with_eels_thickness(
        np.ones((20, 20)), [], labels, None, summary, nan, np.ones(labels.shape, bool)
    )
    assert not out.summary["applied"] and "no t/λ" in out.summary["reason"]
    assert out.labels is labels
    trained = with_eels_thickness(
        np.ones((20, 20)), [], labels, None, {**summary, "mode": "trainable"}, nan, nan > 0
    )
    assert "trainable mode" in trained.summary["reason"]


def test_pores_and_c_si_of_either_run_keep_the_envelope_class():
    env = np.array([[PORE, GREY, GREY, BRIGHT]], np.uint8)
    with_t = np.array([[GREY, PORE, DENDRITE, BOUNDARY]], np.uint8)
    out = keep_envelope(env, with_t, np.ones(env.shape, bool))
    assert out.tolist() == [[PORE, GREY, DENDRITE, BRIGHT]]
    assert keep_envelope(env, with_t, np.zeros(env.shape, bool)).tolist() == env.tolist()
