"""Tests of anodemap.eels.calibration: the packaged table, the curve, inversion, validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.constants as const

from anodemap.eels.calibration import (
    CSV_HEADER,
    Calibration,
    default_calibration,
    load_calibration,
    plot_calibration,
)
from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.status import Status


def _free_electron_ev(electrons_per_cell: float, cell_volume_A3: float) -> float:
    """ħω_p = ħ·sqrt(n e²/(ε0 m_e)) in eV for n electrons per cell volume."""
    n = electrons_per_cell / (cell_volume_A3 * 1e-30)
    return const.hbar * np.sqrt(n * const.e**2 / (const.epsilon_0 * const.m_e)) / const.e


def test_default_table_contents_and_sources() -> None:
    cal = default_calibration()
    assert cal is default_calibration()  # cached
    assert cal.x.tolist() == [0.0, 3.75, 4.25, 4.4]
    # the two end points stated in the paper (Results), and only those, are "stated"
    stated = {
        x: e
        for x, e, s in zip(cal.x, cal.energy_table, cal.sources, strict=True)
        if s.startswith("stated")
    }
    assert stated == {0.0: 16.83, 4.4: 12.74}
    computed = [s for s in cal.sources if s.startswith("computed")]
    assert len(computed) == 2 and all("not measured" in s for s in computed)
    assert any("Danet" in c for c in cal.comments)
    assert cal.x_range == (0.0, 4.4)


def test_computed_rows_follow_the_documented_free_electron_recipe() -> None:
    """Recompute the computed rows from the lattice parameters given in the table."""
    a_si = const.physical_constants["lattice parameter of silicon"][0] * 1e10
    e_si = _free_electron_ev(8 * 4, a_si**3)  # 8 Si, 4 valence electrons each
    e_li15si4 = _free_electron_ev(4 * (15 + 4 * 4), 10.6322**3)  # Z = 4
    v17 = 18.7259**3
    e_li17si4 = _free_electron_ev(20 * (17 + 4 * 4), v17)  # Z = 20
    v_per_si_15, v_per_si_17 = 10.6322**3 / 16, v17 / 80
    v_44 = v_per_si_17 + (v_per_si_17 - v_per_si_15) / 0.5 * 0.15  # linear in x to 4.4
    e_44 = _free_electron_ev(8.4, v_44)
    assert e_si == pytest.approx(16.596, abs=1e-3)
    slope = (16.83 - 12.74) / (e_si - e_44)
    mapped = {3.75: 16.83 + slope * (e_li15si4 - e_si), 4.25: 16.83 + slope * (e_li17si4 - e_si)}
    cal = default_calibration()
    for x, e in mapped.items():
        row = cal.energy_table[cal.x == x][0]
        assert row == pytest.approx(e, abs=0.006)  # the table rounds to 0.01 eV


def test_fit_reproduces_rows_and_reports_itself() -> None:
    cal = default_calibration()
    assert cal.form == "free_electron"
    assert np.max(np.abs(cal.residuals)) < 0.01
    assert np.all(np.abs(cal.residuals) <= cal.sigma_rows_eV)
    assert cal.energy(0.0) == pytest.approx(16.83, abs=0.005)
    assert cal.energy(4.4) == pytest.approx(12.74, abs=0.005)
    assert np.all(np.diff(cal.energy(np.linspace(0, 4.4, 200))) < 0)  # monotone
    assert np.isnan(cal.energy(5.0)) and np.isfinite(cal.energy(5.0, extrapolate=True))
    d = cal.to_dict()
    json.dumps(d)  # serialisable for summary.json
    assert d["equation"].startswith("E(x) = sqrt(")
    assert set(d["coefficients"]) == {"a", "b", "c"}
    assert np.array(d["covariance"]).shape == (3, 3)
    assert [r["kind"] for r in d["rows"]] == [
        "stated/measured",
        "computed",
        "computed",
        "stated/measured",
    ]
    assert all(abs(r["residual_eV"]) < 0.01 for r in d["rows"])
    assert d["x_range"] == [0.0, 4.4]
    assert len(d["sources"]) == 4


def test_round_trip_and_vectorised_inversion() -> None:
    cal = default_calibration()
    x = np.linspace(0.0, 4.4, 45).reshape(5, 9)
    back = cal.x_of_energy(cal.energy(x), np.full(x.shape, 0.02))
    assert back.x.shape == x.shape and back.status.shape == x.shape
    np.testing.assert_allclose(back.x, x, atol=1e-7)
    assert np.all(back.status == Status.OK)
    assert np.all(back.x_err > 0)
    # the paper's numbers: x = 3.47 (first lithiation) lies in the flat, high-x part
    assert float(cal.energy(3.47)) < 13.1


def test_outside_range_and_invalid_energies_are_flagged() -> None:
    cal = default_calibration()
    # the end points are uncertain by the curve's σ (0.1 eV rows): energies within 2σ
    # combined of an end are consistent with it (pure Si measured slightly above 16.83)
    s_end = float(cal.energy_uncertainty(0.0))
    assert s_end == pytest.approx(0.1, abs=0.01)
    x, x_err, status = cal.x_of_energy(
        [20.0, 12.0, np.nan, 16.9, 16.83 + 2.5 * s_end, 12.70, 16.0],
        [0.01, 0.01, 0.01, 0.02, 0.001, 0.01, np.nan],
    )
    assert status.tolist() == [
        Status.OUTSIDE_CALIBRATION,
        Status.OUTSIDE_CALIBRATION,
        Status.INVALID_INPUT,
        Status.OK,  # 0.07 eV above the Si end point: x = 0
        Status.OUTSIDE_CALIBRATION,  # 2.5σ above it
        Status.OK,  # just below the Li-rich end: x = 4.4
        Status.OK,  # an unknown energy error counts as zero
    ]
    assert np.isnan(x[[0, 1, 2, 4]]).all() and np.isnan(x_err[[0, 1, 2, 4]]).all()
    assert x[3] == pytest.approx(0.0, abs=1e-9) and x[5] == pytest.approx(4.4, abs=1e-6)
    assert int(cal.x_of_energy(17.2).status) == Status.OUTSIDE_CALIBRATION
    strict = cal.x_of_energy(16.9, 0.02, end_tolerance_sigma=0.0)
    assert int(strict.status) == Status.OUTSIDE_CALIBRATION


def test_uncertainty_grows_where_the_curve_flattens() -> None:
    cal = default_calibration()
    xs = np.linspace(0.0, 4.4, 23)
    # the energy-error part sigma_E/|dE/dx| grows monotonically with x (flattening)
    energy_part = 0.02 / np.abs(cal.slope(xs))
    assert np.all(np.diff(energy_part) > 0)
    assert cal.uncertainty(4.4, 0.02) > cal.uncertainty(0.0, 0.02)
    # with a densely tabulated curve its own uncertainty is small and the total grows too
    dense_x = np.linspace(0, 4.4, 12)
    dense = Calibration.from_arrays(dense_x, cal.energy(dense_x), row_sigma_eV=0.01)
    total = dense.uncertainty(xs, 0.02)
    assert np.all(np.diff(total) > 0)
    # the inversion reports the same number
    inv = dense.x_of_energy(dense.energy(3.0), 0.02)
    assert float(inv.x_err) == pytest.approx(float(dense.uncertainty(3.0, 0.02)), rel=1e-6)
    # and the curve's own uncertainty enters: without sigma_E x_err is still > 0
    assert float(cal.x_of_energy(cal.energy(2.0)).x_err) > 0


def _write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x,energy,source\n0,16,a\n1,15,b\n", "header must be exactly"),
        ("# only comments\n", "no header"),
        ("x,plasmon_energy_eV,source\n0,16.8,a\n", "at least 2 rows"),
        ("x,plasmon_energy_eV,source\n0,16.8,a\n1,abc,b\n", "must be numbers"),
        ("x,plasmon_energy_eV,source\n0,16.8,a\n1,nan,b\n", "finite"),
        ("x,plasmon_energy_eV,source\n0,16.8,a\n1,15,b\n2,15.5,c\n", "monotonically"),
        ("x,plasmon_energy_eV,source\n0,16.8,a\n0,15,b\n", "appears twice"),
        ("x,plasmon_energy_eV,source\n0,16.8,a\n1,15,\n", "source is empty"),
        ("x,plasmon_energy_eV,source\n0,16.8,a,b\n1,15,c\n", "expected 3 fields"),
        ("x,plasmon_energy_eV,source\n0,16.8,a\n1,-15,b\n", "positive"),
    ],
)
def test_bad_tables_give_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text, "bad_table.csv")
    with pytest.raises(AnodemapInputError, match=message) as info:
        load_calibration(path)
    assert "bad_table.csv" in str(info.value)


def test_missing_file_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(AnodemapIOError, match="nope.csv"):
        load_calibration(tmp_path / "nope.csv")


def test_user_table_for_another_alloy(tmp_path: Path) -> None:
    # Illustrative numbers for a test (not data): a Li_xGe-like free-electron curve.
    xs = [0.0, 1.0, 2.0, 3.0, 3.75]
    es = [16.2, 14.6, 13.6, 12.9, 12.5]
    lines = ["# test table: illustrative numbers, not measurements", ",".join(CSV_HEADER)]
    lines += [f'{x},{e},"test value, not data"' for x, e in zip(xs, es, strict=True)]
    cal = load_calibration(_write(tmp_path, "\n".join(lines) + "\n", "lige.csv"))
    assert cal.name == "lige.csv" and cal.path.endswith("lige.csv")
    assert cal.comments == ("test table: illustrative numbers, not measurements",)
    assert np.max(np.abs(cal.residuals)) < 0.1
    x, _, status = cal.x_of_energy(cal.energy([0.5, 2.5]), 0.01)
    np.testing.assert_allclose(x, [0.5, 2.5], atol=1e-7)
    assert np.all(status == Status.OK)
    # two rows: a straight line through them
    two = Calibration.from_arrays([0.0, 1.0], [10.0, 12.0], ["a", "b"])
    assert two.form == "linear" and two.equation == "E(x) = 10 + 2*x eV"
    assert float(two.x_of_energy(11.0).x) == pytest.approx(0.5)
    # energies may also rise with x
    assert not two.decreasing
    # an explicit quadratic form
    quad = Calibration.from_arrays(xs, es, form="quadratic")
    assert quad.form == "quadratic" and np.max(np.abs(quad.residuals)) < 0.1
    with pytest.raises(AnodemapInputError, match="form"):
        Calibration.from_arrays(xs, es, form="cubic")


def test_plot_calibration_draws_points_curve_and_equation() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cal = default_calibration()
    ax = plot_calibration(cal)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "fitted curve" in labels
    assert any(t.startswith("stated/measured") for t in labels)
    assert any(t.startswith("computed") for t in labels)
    assert any(t.get_text().startswith(cal.equation) for t in ax.texts)
    fig, own = plt.subplots()
    assert plot_calibration(cal, ax=own, band=False) is own
    plt.close("all")


@pytest.mark.parametrize(
    ("x", "e"),
    [
        ([0.0, 1.0, 2.0], [16.0, 15.0, 14.5]),
        ([0.0, 0.5, 1.7, 3.75, 4.4], [16.8, 16.1, 15.2, 13.4, 12.7]),
        ([0.0, 1.0, 2.5, 3.25, 4.4], [16.83, 15.6, 14.2, 13.5, 12.74]),
    ],
)
def test_own_least_squares_matches_scipy(x: list[float], e: list[float]) -> None:
    """The free-electron curve is fitted without scipy.optimize; same optimum as scipy's LM."""
    from scipy import optimize

    from anodemap.eels import calibration as calmod

    xa, ea = np.asarray(x), np.asarray(e)
    b0, a0 = np.polyfit(xa, ea * ea, 1)
    p0 = np.array([a0, b0, 0.0])
    ref = optimize.least_squares(
        lambda p: calmod._model("free_electron", p, xa) - ea,
        p0,
        jac=lambda p: calmod._jacobian("free_electron", p, xa),
        method="lm",
        xtol=1e-14,
        ftol=1e-14,
    )
    ours = calmod._fit("free_electron", xa, ea)  # the path Calibration takes
    cost_ref = float(np.sum(ref.fun**2))
    cost_ours = float(np.sum((calmod._model("free_electron", ours, xa) - ea) ** 2))
    assert cost_ours <= cost_ref * (1 + 1e-9) + 1e-24
    grid = np.linspace(xa.min(), xa.max(), 50)
    np.testing.assert_allclose(
        calmod._model("free_electron", ours, grid),
        calmod._model("free_electron", ref.x, grid),
        atol=1e-6,
    )
