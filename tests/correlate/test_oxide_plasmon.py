"""The O-rich boundary class from the EELS 42 eV oxide index
(anodemap.correlate.oxide_plasmon): the index on spectra made here by a Poisson sum of
Drude plasmons (not by anodemap's simulator or its EELS fit), and the class rule on
index maps drawn here; the simulated region's numbers are in test_correlate.py."""

from __future__ import annotations

import math

import numpy as np

from anodemap.correlate.oxide_plasmon import oxide_plasmon_boundaries
from anodemap.eels.oxide_index import oxide_index
from anodemap.features.classes import BOUNDARY, BRIGHT, DENDRITE, GREY, PORE

_DE = 0.05
_E = np.arange(_DE / 2, 150.0, _DE)


def _index_of(ep: float, gamma: float, t: float) -> float:
    """W / (A t/λ) of a plural-scattering spectrum: the single scattering a Drude
    loss function Im(-1/ε) of plasmon energy ``ep`` and width ``gamma`` (unit area), the
    m-th order its m-fold self-convolution times (t/λ)^m / m! (Egerton, EELS in the
    Electron Microscope, 3rd ed., §3.7), up to m = 5, with I_0 = 1: A = t/λ."""
    single = _E * gamma * ep**2 / ((_E**2 - ep**2) ** 2 + (_E * gamma) ** 2)
    single /= single.sum() * _DE
    total, order = np.zeros_like(_E), single.copy()
    for m in range(1, 6):
        total += t**m / math.factorial(m) * order
        order = np.convolve(order, single)[: _E.size] * _DE
    window = (_E >= 40.0) & (_E <= 44.0)
    return float(oxide_index(total[window].sum() * _DE, t, 1.0, t, True))  # A = I_0 t


def test_the_index_tells_oxide_from_silicide_at_any_usual_thickness():
    """Li2O (19 eV) and SiO2 (22 eV) first plasmons (the paper's) against Li_xSi
    (12.7-16.8 eV): over t/λ 0.5-1.5 the oxides' lowest index is 1.3 times the
    silicides' highest (measured 0.097 against 0.075; at t/λ 1, 0.097 against 0.057 for
    15 eV), and the oxides' own changes by under 7 %. Thicker, the silicide's third
    plasmon (3 × 13-15 eV) reaches the window: at t/λ = 2, Li15Si4 (12.7 eV) reads
    0.084, near Li2O's 0.099 - the limit the docs state."""
    thick = (0.5, 0.75, 1.0, 1.25, 1.5)
    silicide = [_index_of(ep, 4.0, t) for ep in (12.7, 15.0, 16.8) for t in thick]
    for ep in (19.0, 22.0):
        oxide = [_index_of(ep, 5.0, t) for t in thick]
        assert min(oxide) > 1.25 * max(silicide), (ep, oxide, silicide)
        assert max(oxide) / min(oxide) < 1.1
    assert _index_of(19.0, 5.0, 1.0) > 1.6 * _index_of(15.0, 4.0, 1.0)
    assert _index_of(12.7, 4.0, 2.0) > 0.7 * _index_of(19.0, 5.0, 2.0)  # the stated limit


def test_the_index_is_nan_where_a_map_has_no_value():
    q = oxide_index(
        np.array([50.0, 50.0, 50.0, np.nan, 50.0]),
        np.array([1000.0, 0.0, 1000.0, 1000.0, 1000.0]),
        np.array([1000.0, 1000.0, 1000.0, 1000.0, 500.0]),  # the last: A = 2 I_0 t/λ
        np.array([1.0, 1.0, 1.0, 1.0, 1.0]),
        np.array([True, True, False, True, True]),
    )
    assert q[0] == 0.05 and np.isnan(q[1:]).all()


def _map(oxide: float, seed: int = 0):
    """A 60 x 60 grey map with an oxide band in columns 20-25 that the HAADF missed
    (its boundary class in columns 40-43 holds no oxide), a pore and c-Si; index 0.05
    with 0.01 noise, ``oxide`` in the band."""
    rng = np.random.default_rng(seed)
    labels = np.full((60, 60), GREY, np.uint8)
    labels[:, 40:44] = BOUNDARY
    labels[5:10, 5:10] = PORE
    labels[50:58, 50:58] = BRIGHT
    q = np.full(labels.shape, 0.05)
    q[:, 20:26] = oxide
    return labels, q + rng.normal(0.0, 0.01, labels.shape)


def test_the_oxide_band_becomes_boundary_and_the_one_without_leaves_it():
    labels, q = _map(0.15)
    prob = np.zeros((5, *labels.shape))
    prob[GREY] = 0.6
    prob[DENDRITE, :, 42:44] = 0.9
    out = oxide_plasmon_boundaries(labels, q, np.ones(labels.shape, bool), probability=prob)
    s = out.summary
    assert s["applied"] and s["threshold"]["source"].startswith("auto (Otsu;")
    assert 0.07 < s["threshold"]["value"] < 0.13
    assert (out.labels[:, 20:26] == BOUNDARY).mean() > 0.99
    assert np.all(out.labels[:, 40:42] == GREY) and np.all(out.labels[:, 42:44] == DENDRITE)
    assert np.all(out.labels[labels == PORE] == PORE)
    assert np.all(out.labels[labels == BRIGHT] == BRIGHT)
    assert (out.labels[:, 30:38] == GREY).mean() > 0.99
    assert s["to_boundary"] == int((out.changed & (out.labels == BOUNDARY)).sum())


def test_without_an_oxide_mode_the_classes_stay():
    """The index at its silicide level everywhere: under 1 % of the pixels lie 3 robust
    widths above the median, so Otsu's split of the noise is not used."""
    labels, q = _map(0.05)
    out = oxide_plasmon_boundaries(labels, q, np.ones(labels.shape, bool))
    assert not out.summary["applied"]
    assert "no O-rich mode" in out.summary["threshold"]["source"]
    assert "the EELS map" in out.summary["threshold"]["source"]
    np.testing.assert_array_equal(out.labels, labels)


def test_a_given_cut_and_the_eels_field_of_view():
    labels, q = _map(0.15)
    covered = np.zeros(labels.shape, bool)
    covered[:30] = True
    out = oxide_plasmon_boundaries(labels, q, covered, threshold=0.1)
    assert out.summary["threshold"]["source"] == "given (--eels-oxide)"
    assert (out.labels[:30, 20:26] == BOUNDARY).all()
    np.testing.assert_array_equal(out.labels[30:], labels[30:])


def test_the_option_is_checked_on_the_command_line(capsys):
    from anodemap.cli import main

    code = main(["correlate", "x.hspy", "-o", "y", "--features", "f", "--eels-oxide", "no"])
    assert code == 2
    assert "argument --eels-oxide: give auto, off or an oxide index" in capsys.readouterr().err
