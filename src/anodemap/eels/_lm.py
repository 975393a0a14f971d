"""Levenberg–Marquardt least squares for many small fits, compiled with numba.

The solver behind :func:`anodemap.eels.plasmon.fit_plasmon`, kept apart from the
plasmon model so that the iteration, the normal equations and the Cholesky algebra can
be read (and reused) without the lineshapes. It minimises the weighted sum of squares
``χ² = Σ_k w_k (y_k − f_k(p))²`` of one spectrum from a starting point, with at most
12 parameters, analytic Jacobians supplied by the caller's model function, bounds by
projection and Marquardt's relative damping with Nielsen's update.

Calling convention
------------------
Everything the solver keeps between iterations (the buffers) and everything that
tunes it (the settings) travels as ONE record, an :data:`LMRecord` namedtuple of an
:data:`LMSettings` (scalars) and an :data:`LMWorkspace` (arrays). numba passes a
namedtuple like its fields one by one (a tuple argument is flattened into the
function's machine-level arguments), so bundling them costs nothing at run time, and a
field access is resolved when the code is compiled. The workspace is made once per
block of pixels (:func:`workspace`) and reused for every pixel; the settings are cheap
to rebuild for every call (a fit in stages changes ``npar`` and ``max_iter``).

The model is not part of the record either: :func:`make_levenberg_marquardt` binds a
jitted ``model(p, args, f, jac)`` and ``valid(p, args) -> bool`` into a solver
``levenberg_marquardt(args, y, w, rec)``, and the model's own data ``args`` (any numba
value, typically a namedtuple) pass through it untouched. The solver calls the model
directly (no function pointer), so the compiled code is the one a hand-written call
would give.

Caching caveat
--------------
The kernels are cached (``cache=True``), and numba invalidates a cached function only
when *its own* source file changes. The plasmon pixel loop (``plasmon._fit_block``)
calls into this module and is cached with it compiled in, so after editing this file
delete the ``.nbi``/``.nbc`` files in ``src/anodemap/eels/__pycache__`` (or touch
``plasmon.py``); an installed release is not affected (every file is replaced).

Examples
--------
Fit ``y = a·exp(−x/b)`` (two parameters; the Jacobian has the four rows of the
workspace, the unused ones stay zero):

>>> import numba
>>> import numpy as np
>>> from anodemap.eels._lm import LMRecord, LMSettings, make_levenberg_marquardt, workspace
>>> @numba.njit
... def decay(p, x, f, jac):
...     for k in range(x.size):
...         ex = np.exp(-x[k] / p[1])
...         f[k] = p[0] * ex
...         jac[0, k] = ex
...         jac[1, k] = p[0] * ex * x[k] / (p[1] * p[1])
>>> @numba.njit
... def positive_length(p, x):
...     return p[1] > 0.0
>>> fit_decay = make_levenberg_marquardt(decay, positive_length)
>>> x = np.linspace(0.0, 10.0, 50)
>>> y = 3.0 * np.exp(-x / 2.5)
>>> work = workspace(2, x.size)          # bounds: none (±inf) unless set
>>> work.p[:] = 1.0, 1.0                 # the start
>>> rec = LMRecord(LMSettings(npar=2, max_iter=100, tol=1e-6, final_step=0.0,
...                           take_final_step=False, n_check=2), work)
>>> status, n_iter, chi2 = fit_decay(x, y, np.ones_like(y), rec)
>>> int(status), [round(float(v), 6) for v in work.p]
(0, [3.0, 2.5])
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

from anodemap.status import Status

__all__ = [
    "FASTMATH",
    "LMRecord",
    "LMSettings",
    "LMWorkspace",
    "covariance",
    "jit_exact",
    "jit_fast",
    "make_levenberg_marquardt",
    "normal_equations",
    "workspace",
]

_OK = int(Status.OK)
_NOT_CONVERGED = int(Status.NOT_CONVERGED)

# Fast-math flags for the compiled loops: reassociation lets LLVM vectorise the sums;
# 'nnan'/'ninf' are deliberately left out so that NaN/inf checks keep working.
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}

# error_model="numpy": a division by zero gives inf/NaN instead of raising, which lets
# LLVM vectorise the loops (about 5x faster); every result is checked for finiteness.
# The iteration itself and its decisions are compiled without fast-math (`jit_exact`,
# `_jit_solver`), so that comparisons and the damping update are IEEE-exact.
jit_fast = numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
jit_exact = numba.njit(cache=True, nogil=True, error_model="numpy")
# The functions that take the record. numba's private option `_nrt=False` (no reference
# counting of the arrays taken out of the record) made the fit 1-4 % faster; it is not
# used: an undocumented option may change in any numba release, and the fit is a few
# percent of an EELS run.
_jit_fast_record = numba.njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")


# --------------------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------------------

LMSettings = namedtuple(
    "LMSettings", ["npar", "max_iter", "tol", "final_step", "take_final_step", "n_check"]
)
LMSettings.__doc__ = """Settings of one call of the solver (scalars).

See :func:`make_levenberg_marquardt`.

Attributes
----------
npar : int
    Number of free parameters, 1 ... 12 (the first ``npar`` of the workspace).
max_iter : int
    Maximum number of damped steps (iterations).
tol : float
    Convergence: the Gauss–Newton step to the minimum moves each of the first
    ``n_check`` parameters by less than ``tol`` of its standard error.
final_step : float
    When that step is within ``final_step`` standard errors it is taken without a
    further model evaluation and the fit stops (``take_final_step`` only).
take_final_step : bool
    Whether the ``final_step`` shortcut may be used (unsafe in flat valleys).
n_check : int
    Number of leading parameters whose steps decide convergence; the others are
    nuisance parameters that may still drift along a flat valley.

Examples
--------
>>> LMSettings(npar=5, max_iter=100, tol=0.01, final_step=0.1, take_final_step=True,
...            n_check=3).tol
0.01
"""

LMWorkspace = namedtuple(
    "LMWorkspace",
    [
        "p",
        "trial",
        "step",
        "lower",
        "upper",
        "fixed",
        "f",
        "jac",
        "jtj",
        "jtr",
        "jtj_trial",
        "jtr_trial",
        "factor",
        "skip",
        "scale",
        "z",
        "col",
    ],
)
LMWorkspace.__doc__ = """Buffers of the solver, made by :func:`workspace`.

``P`` is the largest number of parameters the workspace serves, ``npad`` = 4, 8 or 12 (the
normal equations are summed in blocks of four Jacobian rows) and ``n`` the channels.

Attributes
----------
p : ndarray (P,)
    Parameters: the start on entry, the solution on return (the caller writes it).
lower, upper : ndarray (P,)
    Bounds (the caller writes them; ±inf for none). Parameters are projected onto
    them; one at its bound with the gradient pointing outwards is held for that step.
trial, step : ndarray (P,)
    Trial point and step.
fixed, skip : ndarray of bool (P,)
    Parameters held at a bound; parameters left out of the last factorisation.
f : ndarray (n,)
    Model values (written by the model function).
jac : ndarray (npad, n)
    Jacobian, one row per parameter (written by the model function; rows at and beyond
    ``npar`` are ignored).
jtj, jtr : ndarray (npad, npad), (npad,)
    JᵀWJ and JᵀW(y − f) at the current point (at the solution on return).
jtj_trial, jtr_trial : ndarray
    The same at the trial point.
factor, scale : ndarray (P, P), (P,)
    Cholesky factor of the scaled normal matrix and its scaling D = diag(JᵀWJ)^-½ from
    the last solve (the undamped convergence check when converged), for
    :func:`covariance`.
z, col : ndarray (P,)
    Scratch vectors.

Examples
--------
>>> work = workspace(5, 100)
>>> work.jac.shape, work.factor.shape
((8, 100), (5, 5))
"""

LMRecord = namedtuple("LMRecord", ["settings", "work"])
LMRecord.__doc__ = """The one record of a solver call (:func:`make_levenberg_marquardt`).

Attributes
----------
settings : LMSettings
work : LMWorkspace

Examples
--------
>>> rec = LMRecord(LMSettings(3, 100, 0.01, 0.1, True, 3), workspace(3, 50))
>>> rec.settings.npar, rec.work.p.shape
(3, (3,))
"""


@jit_exact
def workspace(npar, n):
    """A fresh :data:`LMWorkspace` for up to ``npar`` parameters and ``n`` channels.

    Parameters
    ----------
    npar : int
        Largest number of parameters (1 ... 12).
    n : int
        Number of channels (data points).

    Returns
    -------
    LMWorkspace
        ``jac`` and the normal-equation buffers zeroed, the others uninitialised.

    Examples
    --------
    >>> work = workspace(4, 10)
    >>> work.jac.shape, work.jtj.shape, work.skip.dtype
    ((4, 10), (4, 4), dtype('bool'))
    """
    npad = 4 * ((npar + 3) // 4)  # Jacobian rows padded with zeros for normal_equations
    return LMWorkspace(
        np.empty(npar),
        np.empty(npar),
        np.empty(npar),
        np.full(npar, -np.inf),
        np.full(npar, np.inf),
        np.zeros(npar, dtype=np.bool_),
        np.empty(n),
        np.zeros((npad, n)),
        np.zeros((npad, npad)),
        np.zeros(npad),
        np.zeros((npad, npad)),
        np.zeros(npad),
        np.empty((npar, npar)),
        np.zeros(npar, dtype=np.bool_),
        np.empty(npar),
        np.empty(npar),
        np.empty(npar),
    )


# --------------------------------------------------------------------------------------
# Normal equations
# --------------------------------------------------------------------------------------


@jit_fast
def _ne_diag4(y, w, f, jac, a0, jtj, jtr):
    """Rows/columns a0..a0+3 of JᵀWJ (lower triangle) and JᵀW(y − f); returns χ².

    One fused pass over the channels with the 15 sums in registers (2-3x faster than
    one pass per matrix element).
    """
    j0 = jac[a0]
    j1 = jac[a0 + 1]
    j2 = jac[a0 + 2]
    j3 = jac[a0 + 3]
    s00 = s10 = s11 = s20 = s21 = s22 = s30 = s31 = s32 = s33 = 0.0
    g0 = g1 = g2 = g3 = 0.0
    chi2 = 0.0
    for k in range(y.size):
        wk = w[k]
        r = y[k] - f[k]
        wr = wk * r
        chi2 += wr * r
        c0 = j0[k]
        c1 = j1[k]
        c2 = j2[k]
        c3 = j3[k]
        g0 += c0 * wr
        g1 += c1 * wr
        g2 += c2 * wr
        g3 += c3 * wr
        b1 = wk * c1
        b2 = wk * c2
        b3 = wk * c3
        s00 += wk * c0 * c0
        s10 += b1 * c0
        s11 += b1 * c1
        s20 += b2 * c0
        s21 += b2 * c1
        s22 += b2 * c2
        s30 += b3 * c0
        s31 += b3 * c1
        s32 += b3 * c2
        s33 += b3 * c3
    i = a0
    jtr[i] = g0
    jtr[i + 1] = g1
    jtr[i + 2] = g2
    jtr[i + 3] = g3
    jtj[i, i] = s00
    jtj[i + 1, i] = s10
    jtj[i + 1, i + 1] = s11
    jtj[i + 2, i] = s20
    jtj[i + 2, i + 1] = s21
    jtj[i + 2, i + 2] = s22
    jtj[i + 3, i] = s30
    jtj[i + 3, i + 1] = s31
    jtj[i + 3, i + 2] = s32
    jtj[i + 3, i + 3] = s33
    return chi2


@jit_fast
def _ne_off4(w, jac, a0, b0, jtj):
    """The 4x4 block (a0..a0+3, b0..b0+3) of JᵀWJ in one fused pass."""
    j0 = jac[a0]
    j1 = jac[a0 + 1]
    j2 = jac[a0 + 2]
    j3 = jac[a0 + 3]
    k0 = jac[b0]
    k1 = jac[b0 + 1]
    k2 = jac[b0 + 2]
    k3 = jac[b0 + 3]
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0.0
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = 0.0
    for k in range(w.size):
        wk = w[k]
        a0_ = wk * j0[k]
        a1 = wk * j1[k]
        a2 = wk * j2[k]
        a3 = wk * j3[k]
        c0 = k0[k]
        c1 = k1[k]
        c2 = k2[k]
        c3 = k3[k]
        s00 += a0_ * c0
        s01 += a0_ * c1
        s02 += a0_ * c2
        s03 += a0_ * c3
        s10 += a1 * c0
        s11 += a1 * c1
        s12 += a1 * c2
        s13 += a1 * c3
        s20 += a2 * c0
        s21 += a2 * c1
        s22 += a2 * c2
        s23 += a2 * c3
        s30 += a3 * c0
        s31 += a3 * c1
        s32 += a3 * c2
        s33 += a3 * c3
    jtj[a0, b0] = s00
    jtj[a0, b0 + 1] = s01
    jtj[a0, b0 + 2] = s02
    jtj[a0, b0 + 3] = s03
    jtj[a0 + 1, b0] = s10
    jtj[a0 + 1, b0 + 1] = s11
    jtj[a0 + 1, b0 + 2] = s12
    jtj[a0 + 1, b0 + 3] = s13
    jtj[a0 + 2, b0] = s20
    jtj[a0 + 2, b0 + 1] = s21
    jtj[a0 + 2, b0 + 2] = s22
    jtj[a0 + 2, b0 + 3] = s23
    jtj[a0 + 3, b0] = s30
    jtj[a0 + 3, b0 + 1] = s31
    jtj[a0 + 3, b0 + 2] = s32
    jtj[a0 + 3, b0 + 3] = s33


@jit_fast
def normal_equations(y, w, f, jac, npar, jtj, jtr):
    """Fill ``jtj`` = JᵀWJ, ``jtr`` = JᵀW(y − f); return χ² = Σ w (y − f)².

    Parameters
    ----------
    y, w, f : ndarray (n,)
        Data, weights (1/σ²) and model values.
    jac : ndarray (4, n), (8, n) or (12, n)
        Jacobian; sums involving rows at and beyond ``npar`` are computed in the same
        pass but never used.
    npar : int
        Number of parameters.
    jtj, jtr : ndarray (npad, npad), (npad,)
        Outputs, ``npad = jac.shape[0]``; ``jtj`` is made symmetric.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> jac = np.zeros((4, 3)); jac[0] = 1.0; jac[1] = [0.0, 1.0, 2.0]
    >>> jtj, jtr = np.zeros((4, 4)), np.zeros(4)
    >>> chi2 = normal_equations(np.array([1.0, 2.0, 4.0]), np.ones(3), np.ones(3), jac,
    ...                         2, jtj, jtr)
    >>> float(chi2), jtj[:2, :2].tolist(), jtr[:2].tolist()
    (10.0, [[3.0, 3.0], [3.0, 5.0]], [4.0, 7.0])
    """
    chi2 = _ne_diag4(y, w, f, jac, 0, jtj, jtr)
    if npar > 4:
        _ne_off4(w, jac, 4, 0, jtj)
        _ne_diag4(y, w, f, jac, 4, jtj, jtr)
    if npar > 8:
        _ne_off4(w, jac, 8, 0, jtj)
        _ne_off4(w, jac, 8, 4, jtj)
        _ne_diag4(y, w, f, jac, 8, jtj, jtr)
    npad = jac.shape[0]
    for a in range(npad):
        for b in range(a):
            jtj[b, a] = jtj[a, b]
    return chi2


# --------------------------------------------------------------------------------------
# Damped solve (Cholesky of the scaled normal matrix)
# --------------------------------------------------------------------------------------


@jit_fast
def _factor_scaled(jtj, npar, lam, work, skip, d, fixed):
    """Cholesky factor (lower, in ``work``) of D(JᵀWJ)D + λI with D = diag(JᵀWJ)^-½.

    Scaling to unit diagonal makes λ Marquardt's relative damping and the pivots
    comparable. Parameters in ``fixed`` (held at a bound) and those the data do not
    determine (zero diagonal, or a pivot below 1e-10 once the others are accounted for:
    model choice) are marked in ``skip`` and turned into independent unit rows, so that
    they receive no step and no covariance.
    """
    for a in range(npar):
        skip[a] = fixed[a] or not (jtj[a, a] > 0.0)
        d[a] = 0.0 if skip[a] else 1.0 / np.sqrt(jtj[a, a])
    for a in range(npar):
        for b in range(a):
            work[a, b] = jtj[a, b] * d[a] * d[b]
        work[a, a] = 1.0 + lam
    for j in range(npar):
        if skip[j]:
            for k in range(j):
                work[j, k] = 0.0
            work[j, j] = 1.0
            for i in range(j + 1, npar):
                work[i, j] = 0.0
            continue
        sj = work[j, j]
        for k in range(j):
            sj -= work[j, k] * work[j, k]
        if not (sj > 1e-10):
            skip[j] = True
            d[j] = 0.0
            for k in range(j):
                work[j, k] = 0.0
            work[j, j] = 1.0
            for i in range(j + 1, npar):
                work[i, j] = 0.0
            continue
        piv = np.sqrt(sj)
        work[j, j] = piv
        inv = 1.0 / piv
        for i in range(j + 1, npar):
            t = work[i, j]
            for k in range(j):
                t -= work[i, k] * work[j, k]
            work[i, j] = t * inv


@jit_fast
def _solve_factored(work, npar, b, x):
    """Solve (L Lᵀ) x = b with the factor L in ``work``."""
    for i in range(npar):
        t = b[i]
        for k in range(i):
            t -= work[i, k] * x[k]
        x[i] = t / work[i, i]
    for i in range(npar - 1, -1, -1):
        t = x[i]
        for k in range(i + 1, npar):
            t -= work[k, i] * x[k]
        x[i] = t / work[i, i]


# The inner kernels take the arrays they use one by one, not the record: a call that
# is not inlined passes every field of a namedtuple (seven words per array), which
# made the solver 10 % slower when _solve_damped took the whole workspace (measured).
@jit_fast
def _solve_damped(jtj, jtr, npar, lam, work, skip, d, z, dp, fixed):
    """Levenberg–Marquardt step: (JᵀWJ + λ·diag(JᵀWJ)) dp = JᵀW r (see _factor_scaled)."""
    _factor_scaled(jtj, npar, lam, work, skip, d, fixed)
    for a in range(npar):
        z[a] = jtr[a] * d[a]
    _solve_factored(work, npar, z, dp)
    for a in range(npar):
        dp[a] *= d[a]


@jit_fast
def _inverse_diag(work, npar, a, x):
    """Diagonal element a of (L Lᵀ)⁻¹ = ‖L⁻¹ e_a‖², with the factor L in ``work``."""
    tot = 0.0
    for i in range(a):
        x[i] = 0.0
    for i in range(a, npar):
        t = 1.0 if i == a else 0.0
        for k in range(a, i):
            t -= work[i, k] * x[k]
        x[i] = t / work[i, i]
        tot += x[i] * x[i]
    return tot


@_jit_fast_record
def covariance(rec, ncols, cov):
    """Columns 0..ncols-1 of the covariance (JᵀWJ)⁻¹ at a converged solution.

    Uses the factor of the last (undamped) convergence check, which a converged call of
    the solver leaves in ``rec.work``; multiply by the reduced χ² for errors when the
    weights are relative (``scipy.optimize.curve_fit``'s ``absolute_sigma=False``).

    Parameters
    ----------
    rec : LMRecord
        The record of the converged call (``rec.settings.npar`` parameters).
    ncols : int
        Number of leading columns wanted.
    cov : ndarray (P, P)
        Output; entries of parameters left out of the factor (held at a bound or not
        determined by the data) are NaN.

    Examples
    --------
    After the module example, ``covariance(rec, 2, cov)`` gives the covariance of
    ``a`` and ``b``; here with a factor written by hand:

    >>> import numpy as np
    >>> rec = LMRecord(LMSettings(2, 10, 0.01, 0.0, False, 2), workspace(2, 3))
    >>> rec.work.factor[:] = [[2.0, 0.0], [0.0, 1.0]]   # L of D·JᵀWJ·D = diag(4, 1)
    >>> rec.work.scale[:] = 1.0
    >>> rec.work.skip[:] = False
    >>> cov = np.empty((2, 2))
    >>> covariance(rec, 2, cov)
    >>> cov.tolist()
    [[0.25, 0.0], [0.0, 1.0]]
    """
    work = rec.work
    npar = rec.settings.npar
    skip = work.skip
    d = work.scale
    z = work.z
    col = work.col
    for b in range(ncols):
        for a in range(npar):
            z[a] = 1.0 if a == b else 0.0
        _solve_factored(work.factor, npar, z, col)
        for a in range(npar):
            if skip[a] or skip[b]:
                cov[a, b] = np.nan
            else:
                cov[a, b] = col[a] * d[a] * d[b]


# --------------------------------------------------------------------------------------
# The iteration
# --------------------------------------------------------------------------------------


# Not cached (nor could it be: its closure holds the model's dispatchers, whose pickles
# differ between processes). A cached caller such as plasmon._fit_block keeps the
# compiled solver inside its own cached machine code, so nothing is recompiled.
_jit_solver = numba.njit(cache=False, nogil=True, error_model="numpy")


def make_levenberg_marquardt(model, valid):
    """The Levenberg–Marquardt iteration compiled for one model.

    The model functions are bound here, as constants of the compiled solver, rather than
    passed as arguments: a jitted function passed as a value is compiled in as the
    address of a Python object, which numba cannot cache; bound like this the solver
    calls them directly, as a hand-written call would.

    Parameters
    ----------
    model : numba-jitted function
        ``model(p, args, f, jac)``: writes the model values ``f`` (n,) and the Jacobian
        ``jac`` (npad, n), ``jac[a, k] = ∂f_k/∂p_a`` for ``a < npar``, at ``p``.
    valid : numba-jitted function
        ``valid(p, args) -> bool``: whether a trial point lies in the region where the
        model is sane (model choices of the caller); a trial outside is rejected like an
        uphill step. The start point is evaluated without this check.

    Returns
    -------
    callable
        ``levenberg_marquardt(args, y, w, rec) -> (status, n_iter, chi2)``, a jitted
        function (compiled on first use) that may be called from jitted code or Python.

    Examples
    --------
    See the module docstring (an exponential decay fitted to exact data).
    """

    @_jit_solver
    def levenberg_marquardt(args, y, w, rec):
        """Minimise χ² = Σ w (y − model(p))² from the start ``rec.work.p`` (updated in place).

        Parameters
        ----------
        args : any numba value
            The model's own data, passed through to ``model`` and ``valid``.
        y, w : ndarray (n,)
            Data and weights (1/σ²).
        rec : LMRecord
            Settings and workspace: the start in ``rec.work.p``, bounds in
            ``rec.work.lower``/``upper`` (see :data:`LMSettings`, :data:`LMWorkspace`).

        Returns
        -------
        status : int
            :class:`anodemap.status.Status` OK or NOT_CONVERGED (iteration limit, no
            downhill step at any damping, or a non-finite χ² at the start).
        n_iter : int
            Damped steps taken.
        chi2 : float
            χ² at the solution.

        Notes
        -----
        On return ``rec.work.jtj`` holds JᵀWJ at the solution and, when converged,
        ``factor``/``skip``/``scale`` its scaled Cholesky factor (from the last
        convergence check), for :func:`covariance`. Steps that leave the ``valid`` region
        are rejected like uphill steps; bounded parameters are projected onto their
        bounds. The model is evaluated at one place in the loop (the start point is the
        first "trial"), which keeps the compiled code small.
        """
        st = rec.settings
        work = rec.work
        npar = st.npar
        max_iter = st.max_iter
        tol = st.tol
        final_step = st.final_step
        p = work.p
        pt = work.trial
        dp = work.step
        blo = work.lower
        bhi = work.upper
        fixed = work.fixed
        jtj = work.jtj
        jtr = work.jtr
        jtj_t = work.jtj_trial
        jtr_t = work.jtr_trial
        skip = work.skip
        factor = work.factor
        dsc = work.scale
        z = work.z
        col = work.col
        fbuf = work.f
        jbuf = work.jac
        n = y.size
        dof = max(n - npar, 1)
        lam = 1e-3  # model choice: initial damping (Marquardt 1963 uses 1e-2 ... 1e-3)
        nu = 2.0
        status = _NOT_CONVERGED
        it = 0
        # Bounds, enforced by projection (a parameter at its bound with the gradient
        # pointing outwards is held fixed for that step).
        for a in range(npar):
            pt[a] = min(max(p[a], blo[a]), bhi[a])
        chi2 = np.inf
        first = True
        while True:
            if not first:
                for a in range(npar):
                    fixed[a] = (p[a] <= blo[a] and jtr[a] < 0.0) or (
                        p[a] >= bhi[a] and jtr[a] > 0.0
                    )
                # Converged when the Gauss-Newton step to the minimum moves each of the
                # first n_check parameters (the plasmon's area, position, width) by less
                # than `tol` of its standard error; the others (t/λ, the background) are
                # nuisance parameters that may still drift along a flat valley without
                # changing the result. When that step is within `final_step` standard
                # errors it is in the quadratic regime: take it and stop without
                # evaluating the model again (saves one evaluation).
                _solve_damped(jtj, jtr, npar, 0.0, factor, skip, dsc, z, dp, fixed)
                redc = max(chi2 / dof, 1e-300)
                worst = 0.0
                tiny = True  # steps at rounding level (noise-free data: χ² ≈ 0)
                for a in range(st.n_check):
                    if skip[a]:
                        continue
                    var_a = _inverse_diag(factor, npar, a, col) / jtj[a, a]
                    worst = max(worst, dp[a] * dp[a] / (var_a * redc))
                    tiny = tiny and abs(dp[a]) <= 1e-10 * abs(p[a])
                if worst <= tol * tol or tiny:
                    status = _OK
                    break
                if st.take_final_step and worst <= final_step * final_step:
                    pred = 0.0
                    for a in range(npar):
                        pt[a] = min(max(p[a] + dp[a], blo[a]), bhi[a])
                        pred += (pt[a] - p[a]) * jtr[a]
                    if valid(pt, args):
                        for a in range(npar):
                            p[a] = pt[a]
                        chi2 = max(chi2 - pred, 0.0)
                        status = _OK
                        break
                if it >= max_iter:
                    break
                it += 1
                _solve_damped(jtj, jtr, npar, lam, factor, skip, dsc, z, dp, fixed)
                for a in range(npar):
                    pt[a] = min(max(p[a] + dp[a], blo[a]), bhi[a])
            chi2_t = np.inf
            if first or valid(pt, args):
                model(pt, args, fbuf, jbuf)
                chi2_t = normal_equations(y, w, fbuf, jbuf, npar, jtj_t, jtr_t)
            if first or chi2_t <= chi2:
                if first:
                    if not np.isfinite(chi2_t):
                        break
                    first = False
                else:
                    # Nielsen's damping update (Madsen, Nielsen & Tingleff 2004, "Methods for
                    # non-linear least squares problems", eq. 3.16) from the gain ratio ρ of
                    # actual to predicted χ² decrease (predicted: 2·dpᵀg − dpᵀ(JᵀWJ)dp).
                    pred = 0.0
                    for a in range(npar):
                        q = 0.0
                        for b in range(npar):
                            q += jtj[a, b] * (pt[b] - p[b])
                        pred += (pt[a] - p[a]) * (2.0 * jtr[a] - q)
                    rho = (chi2 - chi2_t) / pred if pred > 0.0 else 0.0
                    lam = max(lam * max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), 1e-12)
                    nu = 2.0
                for a in range(npar):
                    p[a] = pt[a]
                    jtr[a] = jtr_t[a]
                    for b in range(npar):
                        jtj[a, b] = jtj_t[a, b]
                chi2 = chi2_t
            else:
                lam *= nu
                nu *= 2.0
                if lam > 1e12:
                    break  # no downhill step at any damping, yet not at a minimum
        return status, it, chi2

    return levenberg_marquardt
