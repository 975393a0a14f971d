"""The Levenberg–Marquardt solver of anodemap.eels._lm beyond 8 parameters (the oxide
peak's fit has 9-10): its normal equations against numpy's, and a fit of three
Gaussians (9 parameters) to exact data recovered."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from anodemap.eels._lm import (
    LMRecord,
    LMSettings,
    make_levenberg_marquardt,
    normal_equations,
    workspace,
)


@pytest.mark.parametrize("npar", [3, 6, 9, 12])
def test_the_normal_equations_are_numpys(npar):
    rng = np.random.default_rng(npar)
    n = 50
    work = workspace(npar, n)
    assert work.jac.shape == (4 * ((npar + 3) // 4), n)
    work.jac[:npar] = rng.normal(size=(npar, n))
    y, w, f = rng.normal(size=n), rng.uniform(0.5, 2.0, n), rng.normal(size=n)
    chi2 = normal_equations(y, w, f, work.jac, npar, work.jtj, work.jtr)
    j = work.jac[:npar]
    np.testing.assert_allclose(work.jtj[:npar, :npar], (j * w) @ j.T, rtol=1e-12)
    np.testing.assert_allclose(work.jtr[:npar], (j * w) @ (y - f), rtol=1e-12)
    assert chi2 == pytest.approx(np.sum(w * (y - f) ** 2), rel=1e-12)


@numba.njit
def _three_gaussians(p, x, f, jac):
    for k in range(x.size):
        f[k] = 0.0
    for g in range(3):
        a, c, s = p[3 * g], p[3 * g + 1], p[3 * g + 2]
        for k in range(x.size):
            d = (x[k] - c) / s
            ex = np.exp(-0.5 * d * d)
            f[k] += a * ex
            jac[3 * g, k] = ex
            jac[3 * g + 1, k] = a * ex * d / s
            jac[3 * g + 2, k] = a * ex * d * d / s


@numba.njit
def _widths_positive(p, x):
    return p[2] > 0.0 and p[5] > 0.0 and p[8] > 0.0


def test_nine_parameters_are_fitted():
    x = np.linspace(0.0, 30.0, 300)
    truth = np.array([5.0, 8.0, 1.5, 3.0, 15.0, 2.0, 4.0, 22.0, 1.0])
    y = np.zeros_like(x)
    _three_gaussians(truth, x, y, np.zeros((12, x.size)))
    fit = make_levenberg_marquardt(_three_gaussians, _widths_positive)
    work = workspace(9, x.size)
    work.p[:] = [4.0, 7.5, 1.2, 2.5, 15.5, 2.5, 3.5, 21.5, 1.3]
    rec = LMRecord(LMSettings(9, 200, 1e-6, 0.0, False, 9), work)
    status, _, chi2 = fit(x, y, np.ones_like(y), rec)
    assert status == 0 and chi2 < 1e-12
    np.testing.assert_allclose(work.p, truth, rtol=1e-6)
