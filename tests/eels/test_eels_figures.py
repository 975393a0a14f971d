"""The EELS figures say what they show: status colours told apart and named, example
pixels located, the drift map centred on 0 eV, the calibration's points with their
uncertainty and sources."""

from __future__ import annotations

import itertools

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib.colors import to_rgb  # noqa: E402

from anodemap.eels import analyse_eels, eels_dataset  # noqa: E402
from anodemap.eels.calibration import default_calibration, plot_calibration  # noqa: E402
from anodemap.eels.output import (  # noqa: E402
    _STATUS_COLOURS,
    _map_options,
    plot_example_fits,
    status_figure,
)
from anodemap.status import Status  # noqa: E402
from anodemap.synth import make_phantom, simulate_eels  # noqa: E402

# Codes that can appear together in one status map (fit_status, li_si_status, li_k_status)
_SHARED = {
    "fit_status": [0, 1, 2, 3, 4, 5, 7],
    "li_si_status": [0, 1, 2, 3, 4, 5, 6, 7],
    "li_k_status": [0, 1, 3, 4, 5, 8, 9, 10],
}


@pytest.fixture(scope="module")
def small():
    sim = simulate_eels(make_phantom((16, 16), seed=2), seed=2)
    ds = eels_dataset(sim.spectra, sim.energy, pixel_size_nm=5.0)
    return ds, analyse_eels(ds, progress=False)


@pytest.mark.parametrize("name", sorted(_SHARED))
def test_status_colours_in_one_map_are_far_apart(name):
    # every code has a colour; any two codes of one map differ by at least 0.3 in RGB
    # (Euclidean, channels in 0-1; measured at least 0.31; the old "#e9c46a" and "#f4a261"
    # were 0.14 apart)
    assert set(_STATUS_COLOURS) == set(Status)
    for a, b in itertools.combinations(_SHARED[name], 2):
        ca, cb = (np.array(to_rgb(_STATUS_COLOURS[Status(c)])) for c in (a, b))
        assert np.linalg.norm(ca - cb) >= 0.3, (name, a, b)


def test_status_figure_names_every_code_present():
    status = np.array([[0, 0, 8], [9, 10, 3]], dtype=np.uint8)
    fig = status_figure(status, 5.0, "nm", "Li-K map status", "Li-K edge measured")
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)
    texts = [t.get_text().replace("\n", " ") for t in legend.get_texts()]
    assert len(texts) == 5
    assert texts[0].startswith("0: Li-K edge measured (2)")
    assert any(t.startswith("10: too thick") for t in texts)
    assert any("exponent" in t for t in texts)


def test_zero_loss_drift_map_is_centred_on_zero():
    values = np.array([[0.1, 0.4], [0.2, np.nan]])
    options = _map_options("zlp_position", values, "drift", "eV", "coolwarm", None)
    assert options["vmin"] == pytest.approx(-options["vmax"])
    assert options["vmax"] >= 0.39


def test_example_fits_locate_their_pixels_and_give_chi2(small):
    ds, result = small
    fig = plot_example_fits(ds, result)
    axes = fig.axes
    # first panel: the map with the pixels marked A, B, C
    assert axes[0].get_xlabel() == "column (x)" and axes[0].get_ylabel() == "row (y)"
    letters = sorted(t.get_text() for t in axes[0].texts)
    assert letters == ["A", "B", "C"]
    for ax, letter in zip(axes[1:], "ABC", strict=True):
        title = ax.get_title()
        assert title.startswith(f"{letter}: row ") and ", column " in title
        assert "nm" in title and "reduced χ² = " in title
        # the χ² in the title is the pixel's map value
        row = int(title.split("row ")[1].split(",")[0])
        col = int(title.split("column ")[1].split(" ")[0])
        chi2 = float(title.split("reduced χ² = ")[1])
        assert chi2 == pytest.approx(result.maps["reduced_chi2"][row, col], abs=0.006)


def test_calibration_plot_shows_row_uncertainty_and_sources():
    cal = default_calibration()
    ax = plot_calibration(cal)
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 2  # stated/measured rows and computed rows, drawn differently
    labels = [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]
    assert any(t.startswith("stated/measured (2)") and "Danet" in t for t in labels)
    assert any(t.startswith("computed (2)") and "Li15Si4" in t for t in labels)
    markers = {line.get_marker() for c in bars for line in c.lines[:1]}
    assert markers == {"o", "s"}
    assert "error bars: 1σ" in " ".join(t.get_text() for t in ax.texts)
