"""Compiled kernels of :func:`anodemap.eels.windows.edge_fit` (numba).

Apart from :mod:`anodemap.eels.windows`, which the command line imports for its
options and which must not pull in numba.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["edge_fit_kernel", "hac_variance"]

# Compiled loops: reassociation lets LLVM vectorise the sums (as in anodemap.eels._lm);
# NaN/inf checks keep working ('nnan'/'ninf' left out); a division by zero gives inf/NaN.
_jit = numba.njit(
    cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp", "nsz"}, error_model="numpy"
)


@_jit
def _solve3(m, v):
    """Solve the 3 x 3 symmetric system ``m d = v`` (Cramer); NaN if singular."""
    c00 = m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]
    c01 = m[1, 2] * m[2, 0] - m[1, 0] * m[2, 2]
    c02 = m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]
    det = m[0, 0] * c00 + m[0, 1] * c01 + m[0, 2] * c02
    out = np.empty(3)
    inv = np.empty((3, 3))
    if not abs(det) > 0.0:
        out[:] = np.nan
        inv[:] = np.nan
        return out, inv
    inv[0, 0] = c00
    inv[1, 0] = c01
    inv[2, 0] = c02
    inv[0, 1] = m[0, 2] * m[2, 1] - m[0, 1] * m[2, 2]
    inv[1, 1] = m[0, 0] * m[2, 2] - m[0, 2] * m[2, 0]
    inv[2, 1] = m[0, 1] * m[2, 0] - m[0, 0] * m[2, 1]
    inv[0, 2] = m[0, 1] * m[1, 2] - m[0, 2] * m[1, 1]
    inv[1, 2] = m[0, 2] * m[1, 0] - m[0, 0] * m[1, 2]
    inv[2, 2] = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    inv /= det
    for i in range(3):
        out[i] = inv[i, 0] * v[0] + inv[i, 1] * v[1] + inv[i, 2] * v[2]
    return out, inv


@_jit
def _chi2(y, x, h, amp, r, b, g):
    """Sum of squared residuals of ``amp exp(-r x) + b h``; ``g`` receives exp(-r x)."""
    acc = 0.0
    for i in range(y.shape[0]):
        g[i] = math.exp(-r * x[i])
        d = y[i] - amp * g[i] - b * h[i]
        acc += d * d
    return acc


@_jit
def _hac_one(u, e, seg, lags, n_par):
    """Newey–West variance of ``sum(u * y)`` from the residuals ``e`` (Bartlett weights
    to ``lags`` channels, pairs within one segment), with the ``n / (n - n_par)``
    degrees-of-freedom factor."""
    n = u.shape[0]
    acc = 0.0
    for i in range(n):
        z = u[i] * e[i]
        acc += z * z
        for lag in range(1, lags + 1):
            j = i + lag
            if j >= n or seg[j] != seg[i]:
                break
            acc += 2.0 * (1.0 - lag / (lags + 1.0)) * z * u[j] * e[j]
    return acc * n / max(n - n_par, 1)


@_jit
def hac_variance(u, resid, seg, lags, n_par, out):
    for p in range(u.shape[0]):
        out[p] = _hac_one(u[p], resid[p], seg, lags, n_par)


@_jit
def edge_fit_kernel(y, x, h, seg, start, lags, amp_out, r_out, b_out, var_out, ok_out, resid, infl):
    """Least squares of ``A exp(-r x) + B h`` for every row of ``y`` (Levenberg–Marquardt
    from ``r = start``, with A and B solved exactly at the start); the residuals, the
    influence of each channel on B (``B = sum(infl * y)`` to first order) and the
    Newey–West variance of B from the residuals.

    ``exp(-r x)`` is computed once per trial step and kept for the next Jacobian (the
    exponentials are most of the cost)."""
    n_pix, n = y.shape
    jtj = np.empty((3, 3))
    jtr = np.empty(3)
    damped = np.empty((3, 3))
    g = np.empty(n)
    g_try = np.empty(n)
    u = np.empty(n)
    for p in range(n_pix):
        yp = y[p]
        r = start[p]
        # A, B at the start: the linear least squares at fixed r
        sgg = sgh = shh = sgy = shy = 0.0
        for i in range(n):
            g[i] = math.exp(-r * x[i])
            sgg += g[i] * g[i]
            sgh += g[i] * h[i]
            shh += h[i] * h[i]
            sgy += g[i] * yp[i]
            shy += h[i] * yp[i]
        det = sgg * shh - sgh * sgh
        amp = (sgy * shh - shy * sgh) / det if det > 0 else 0.0
        b = (shy * sgg - sgy * sgh) / det if det > 0 else 0.0
        chi = 0.0
        for i in range(n):
            d = yp[i] - amp * g[i] - b * h[i]
            chi += d * d
        lam = 1e-3
        done = False
        for _ in range(100):
            jtj[:] = 0.0
            jtr[:] = 0.0
            for i in range(n):
                j0, j1, j2 = g[i], -amp * x[i] * g[i], h[i]
                d = yp[i] - amp * g[i] - b * h[i]
                jtj[0, 0] += j0 * j0
                jtj[0, 1] += j0 * j1
                jtj[0, 2] += j0 * j2
                jtj[1, 1] += j1 * j1
                jtj[1, 2] += j1 * j2
                jtj[2, 2] += j2 * j2
                jtr[0] += j0 * d
                jtr[1] += j1 * d
                jtr[2] += j2 * d
            jtj[1, 0] = jtj[0, 1]
            jtj[2, 0] = jtj[0, 2]
            jtj[2, 1] = jtj[1, 2]
            stepped = False
            while lam < 1e12:
                # element by element: a slice assignment compiles numba's shape check with
                # its error message (3 of the kernel's 5 s of compiling)
                for k in range(3):
                    for m in range(3):
                        damped[k, m] = jtj[k, m]
                for k in range(3):
                    damped[k, k] *= 1.0 + lam
                step, _inv = _solve3(damped, jtr)
                if not np.isfinite(step[0] + step[1] + step[2]):
                    lam *= 10.0
                    continue
                # an exponent far outside any pre-edge background ends the search
                r_new = min(max(r + step[1], -20.0), 40.0)
                chi_new = _chi2(yp, x, h, amp + step[0], r_new, b + step[2], g_try)
                if chi_new <= chi:
                    # converged when r moves by far less than its noise (~0.1; a step of
                    # 1e-3 moves the Li-K counts by < 0.5 count, against a noise of ~50)
                    small = abs(step[1]) < 1e-3 and chi - chi_new <= 1e-5 * chi
                    amp += step[0]
                    r = r_new
                    b += step[2]
                    chi = chi_new
                    g, g_try = g_try, g
                    lam = max(lam * 0.1, 1e-12)
                    stepped = True
                    done = small
                    break
                lam *= 10.0
            if not stepped:
                # no downhill step at any damping: the minimum, to rounding (a singular
                # problem shows in the covariance below, which is then NaN)
                done = True
            if done:
                break
        # covariance row of B (undamped), its influence on each channel, residuals
        _step, inv = _solve3(jtj, jtr)
        for i in range(n):
            u[i] = inv[2, 0] * g[i] + inv[2, 1] * (-amp * x[i] * g[i]) + inv[2, 2] * h[i]
            infl[p, i] = u[i] if math.isfinite(u[i]) else 0.0
            resid[p, i] = yp[i] - amp * g[i] - b * h[i]
        amp_out[p] = amp
        r_out[p] = r
        b_out[p] = b
        var_out[p] = _hac_one(u, resid[p], seg, lags, 3)
        ok_out[p] = done and np.isfinite(b) and np.isfinite(var_out[p])
