"""Tests of anodemap.electrochem.capacity against the paper's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.constants as const

from anodemap.electrochem import (
    FARADAY_C_PER_MOL,
    SI_MOLAR_MASS_G_PER_MOL,
    capacity_from_x,
    li_per_host,
)
from anodemap.errors import AnodemapInputError


def test_constants() -> None:
    # F = N_A·e exactly (SI 2019 / CODATA 2018)
    assert FARADAY_C_PER_MOL == pytest.approx(96485.33212, abs=1e-5)
    assert FARADAY_C_PER_MOL == pytest.approx(const.physical_constants["Faraday constant"][0])
    assert SI_MOLAR_MASS_G_PER_MOL == 28.0855


def test_paper_results() -> None:
    """Results: 3314 mAh/g ~ x 3.47 (first lithiation), 2537 mAh/g ~ x 2.66 (delithiation)."""
    assert round(float(li_per_host(3314.0)), 2) == 3.47
    assert round(float(li_per_host(2537.0)), 2) == 2.66
    np.testing.assert_allclose(li_per_host([3314.0, 2537.0]), [3.4728, 2.6585], atol=1e-4)


def test_paper_theoretical_capacities() -> None:
    """Introduction: q_th(Li15Si4) ≈ 3600 mAh/g, q_th(Li4.4Si) ≈ 4200 mAh/g."""
    q15 = float(capacity_from_x(15 / 4))
    q44 = float(capacity_from_x(4.4))
    assert q15 == pytest.approx(3579, abs=1) and abs(q15 - 3600) / 3600 < 0.01
    assert q44 == pytest.approx(4199, abs=1) and abs(q44 - 4200) / 4200 < 0.01


def test_round_trip_shapes_and_other_hosts() -> None:
    q = np.array([[0.0, 1000.0], [2000.0, np.nan]])
    x = li_per_host(q)
    assert x.shape == q.shape and np.isnan(x[1, 1])
    np.testing.assert_allclose(capacity_from_x(x), q)
    # another host (illustrative molar mass) and two electrons per carrier
    x2 = li_per_host(1000.0, molar_mass_g_mol=72.63, electrons_per_li=2)
    assert float(capacity_from_x(x2, 72.63, 2)) == pytest.approx(1000.0)
    assert float(x2) == pytest.approx(1000.0 * 3.6 * 72.63 / (2 * FARADAY_C_PER_MOL))


def test_invalid_inputs() -> None:
    with pytest.raises(AnodemapInputError, match="molar_mass"):
        li_per_host(1000.0, molar_mass_g_mol=0.0)
    with pytest.raises(AnodemapInputError, match="electrons_per_li"):
        li_per_host(1000.0, electrons_per_li=-1)
    with pytest.raises(AnodemapInputError, match=">= 0"):
        li_per_host(-5.0)
    with pytest.raises(AnodemapInputError, match=">= 0"):
        capacity_from_x(-0.1)
