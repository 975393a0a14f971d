"""The Li_xSi plasmon beside a Li2O/silicate plasmon (anodemap.eels.oxide_peak), on
spectra made here by a Poisson sum of Drude plasmons convolved with a Gaussian zero-loss
peak (not by anodemap's simulator, whose plasmon carries an angular factor and whose
oxide sits at one energy), and on the simulated region's truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from anodemap.eels import EELSParameters, analyse_eels, eels_dataset
from anodemap.eels.oxide_peak import fit_oxide_peak
from anodemap.eels.pipeline import process_spectra
from anodemap.eels.plasmon import fit_plasmon
from anodemap.status import Status

_DE = 0.05
_E = np.arange(-5.0, 75.0, _DE)
_N0 = int(np.argmin(np.abs(_E)))


def _drude(peak: float, gamma: float) -> np.ndarray:
    """Im(-1/eps) of the Drude model (Egerton 2011, eq. 3.43) whose maximum lies at
    ``peak`` eV, on the loss axis from 0, unit area."""

    def emax(ep: float) -> float:
        b = 2 * ep**2 - gamma**2
        return math.sqrt((b + math.sqrt(b * b + 12 * ep**4)) / 6)

    ep = brentq(lambda v: emax(v) - peak, peak, peak + 5)
    e = np.maximum(_E[_N0:], 1e-9)
    y = e * gamma * ep**2 / ((e**2 - ep**2) ** 2 + (e * gamma) ** 2)
    return y / (y.sum() * _DE)


def _spectra(single: np.ndarray, t: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` Poisson-noisy spectra of 3e5 electrons: the orders m = 0..5 of ``single``
    with weights e^-t t^m/m! (Egerton 2011, §3.7), convolved with a 0.8 eV Gaussian."""
    size = _E.size - _N0
    order = np.zeros(size)
    order[0] = 1.0 / _DE
    loss = math.exp(-t) * order
    for m in range(1, 6):
        order = np.convolve(order, single)[:size] * _DE
        loss = loss + math.exp(-t) * t**m / math.factorial(m) * order
    full = np.zeros_like(_E)
    full[_N0:] = loss
    k = np.arange(-60, 61) * _DE
    zlp = np.exp(-0.5 * (k / (0.8 / 2.3548)) ** 2)
    mean = np.convolve(full, zlp / zlp.sum(), mode="same") * 3e5 * _DE
    return rng.poisson(np.clip(mean, 0.0, None), size=(n, _E.size)).astype(float)


def _spectra_of(peak, gamma, t, share=0.0, oxide=(19.0, 5.0), n=12, seed=0):
    single = (1 - share) * _drude(peak, gamma)
    if share:
        single = single + share * _drude(*oxide)
    return _spectra(single, t, n, np.random.default_rng(seed))


def _fits(peak, gamma, t, share=0.0, oxide=(19.0, 5.0), n=12, seed=0):
    x = _spectra_of(peak, gamma, t, share, oxide, n, seed)
    maps, work, fit = process_spectra(x, _E, EELSParameters())
    return maps, fit, fit_oxide_peak(work, _E, fit), work


@pytest.mark.parametrize("peak,gamma", [(16.8, 3.2), (14.3, 4.0), (12.9, 4.4)])
@pytest.mark.parametrize("t", [0.5, 1.5])
def test_no_oxide_peak_where_there_is_no_oxide(peak, gamma, t):
    """Si to Li15Si4 (the paper's 12.74-16.83 eV) at t/λ 0.5 and 1.5: the score test
    for an oxide peak stays below the 5σ at which a pixel is refitted (measured: the
    largest z over the 12 trial peaks, median 1.2-1.8 per case, at most 4.0), so the
    one-peak result stays everywhere."""
    maps, fit, two, work = _fits(peak, gamma, t)
    assert (fit.status == Status.OK).all()
    assert not two.refitted.any() and not two.selected.any(), two.score_z
    assert np.median(two.score_z) < 2.5
    assert np.array_equal(maps["plasmon_energy"], fit.position)
    # refitted regardless of the score test, the oxide peak is seldom significant and
    # moves the energy by less than its 1σ (measured: 1 pixel of 72 at 3.2σ)
    forced = fit_oxide_peak(work, _E, fit, screen_sigma=-np.inf)
    assert forced.selected.sum() <= 1 and np.median(forced.significance) < 1.5
    moved = np.abs(forced.position - fit.position)[forced.selected]
    assert np.all(moved < fit.position_err[forced.selected])


@pytest.mark.parametrize(
    "peak,gamma,share,oxide",
    [
        (16.8, 3.2, 0.4, (19.0, 5.0)),  # Si + Li2O: the hardest, 2.2 eV apart
        (16.8, 3.2, 0.6, (19.0, 5.0)),
        (16.8, 3.2, 0.4, (22.0, 5.0)),  # Si + SiO2
        (15.5, 3.6, 0.4, (20.5, 3.0)),  # a silicate, narrow
        (15.5, 3.6, 0.4, (20.5, 8.0)),  # a silicate, broad
        (14.3, 4.0, 0.4, (19.0, 5.0)),
        (12.9, 4.4, 0.4, (22.0, 5.0)),
    ],
)
def test_the_li_xsi_peak_is_found_beside_the_oxide(peak, gamma, share, oxide):
    """With 40-60 % of the single scattering in an oxide plasmon at 19-22 eV (the paper's
    Li2O and SiO2, refs. 41, 45) the one-peak fit is off by 0.15-2.1 eV here; where the
    oxide peak is kept the Li_xSi peak is within 0.06 eV (measured: within 0.04 eV on
    average), and it is kept in most pixels (a broad 8 eV oxide next to 16.8 eV Si is
    the case where it is kept least, 20-65 %: not tested)."""
    maps, fit, two, _ = _fits(peak, gamma, 1.0, share, oxide, n=16)
    one_err = np.abs(np.nanmean(fit.position) - peak)
    assert one_err > 0.1
    assert two.selected.mean() >= 0.75
    sel = two.selected & (two.status == Status.OK)
    err = maps["plasmon_energy"][sel] - peak
    assert abs(err.mean()) < 0.06 and np.all(np.abs(err) < 0.25), err
    # the errors say how far the energy may be off (pulls of order 1)
    pulls = err / maps["plasmon_energy_err"][sel]
    assert np.std(pulls) < 2.5
    assert np.all((two.oxide_energy[sel] >= 19.0) & (two.oxide_energy[sel] <= 22.0))


def test_off_is_the_one_peak_fit_and_pixels_without_a_peak_are_not_refitted():
    """``--oxide-peak off`` is the one-peak fit everywhere; pixels where the one-peak
    fit found no peak are not refitted, those where it did not converge are (two peaks
    of similar height side by side stop it: a narrow 3 eV oxide at 20.5 eV beside 15.5
    eV did in 12 of 16 pixels, which the two-peak fit then described)."""
    rng = np.random.default_rng(1)
    single = 0.6 * _drude(16.8, 3.2) + 0.4 * _drude(19.0, 5.0)
    x = _spectra(single, 1.0, 6, rng)
    ds = eels_dataset(x.reshape(2, 3, -1), _E, pixel_size_nm=1.0)
    off = analyse_eels(ds, EELSParameters(oxide_peak="off"), progress=False)
    auto = analyse_eels(ds, progress=False)
    assert (off.maps["oxide_peak_area"] == 0).all()
    assert np.isnan(off.maps["oxide_peak_energy"]).all()
    assert off.summary()["oxide_peak"]["n_pixels_two_peak"] == 0
    assert auto.summary()["oxide_peak"]["n_pixels_two_peak"] >= 4
    assert np.nanmean(off.maps["plasmon_energy"]) > 17.0
    assert abs(np.nanmean(auto.maps["plasmon_energy"]) - 16.8) < 0.1
    fit = fit_plasmon(x[:2], _E, window=(8.0, 25.0))
    fit.status[0] = Status.NO_SIGNAL
    fit.status[1] = Status.NOT_CONVERGED
    two = fit_oxide_peak(x[:2], _E, fit)
    assert two.status[0] == Status.NOT_CONVERGED and not two.selected[0]
    assert np.isnan(two.position[0])
    assert two.status[1] == Status.OK and two.selected[1]


def test_a_plasmon_above_the_oxide_range_is_not_refitted(exspy_lowloss_msa):
    """exspy's measured low-loss spectrum (a 31 eV plasmon, not Li_xSi): with its own
    window (--window auto: 18.8-42.8 eV, not below Si's 16.83 eV) the step is not run and
    said. A peak fitted at 22 eV or above is never refitted, whatever its score."""
    from anodemap.io import load

    ds = load(exspy_lowloss_msa)
    auto = analyse_eels(ds, EELSParameters(window="auto"), progress=False)
    said = auto.summary()["oxide_peak"]
    assert said["mode"].startswith("not run: the fit window 18.8-42.8 eV")
    assert said["n_pixels_two_peak"] == 0
    energy = np.arange(0.0, 60.0, 0.05)
    y = (
        np.random.default_rng(3)
        .poisson(3e4 * np.exp(-0.5 * ((energy - 24.0) / 3.0) ** 2) + 200.0)
        .astype(float)
    )
    fit = fit_plasmon(y[None], energy, window=(8.0, 35.0))
    assert fit.status[0] == Status.OK and fit.position[0] > 22.0
    two = fit_oxide_peak(y[None], energy, fit, screen_sigma=-np.inf)
    assert not two.refitted[0] and not two.selected[0]


def test_the_drude_lineshape_too():
    """--model drude: the same Li_xSi peak beside a Li2O plasmon (measured: 15.513 eV for
    15.5, the one-peak fit 16.39), and the fitted model drawn by model_spectrum."""
    x = _spectra_of(15.5, 3.6, 1.0, 0.4, (19.0, 5.0), n=8)
    maps, work, fit = process_spectra(x, _E, EELSParameters(model="drude"))
    two = fit_oxide_peak(work, _E, fit)
    assert two.selected.all() and np.nanmean(fit.position) > 16.2
    assert abs(np.mean(maps["plasmon_energy"]) - 15.5) < 0.05
    inside = (_E > 8) & (_E < 25)
    resid = (work - two.model_spectrum(_E))[:, inside] / np.sqrt(work[:, inside])
    assert abs(resid.mean()) < 0.1 and 0.8 < resid.std() < 1.2
