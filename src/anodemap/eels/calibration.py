"""Plasmon energy -> composition calibration (x in Li_xSi, or any host alloy).

A calibration is data: a CSV table of ``x,plasmon_energy_eV,source`` rows (``#`` lines are
comments that describe the table). :class:`Calibration` fits a smooth monotone curve
E(x) through the rows and inverts it pixel by pixel, with uncertainties.

The packaged default (``anodemap/data/lixsi_plasmon_calibration.csv``) holds the two end
points the paper states for Li_xSi (16.83 eV at x = 0 and 12.74 eV at x = 4.4, citing
Danet et al., Phys. Chem. Chem. Phys. 12 (2010) 220) and free-electron estimates for
crystalline phases whose structures we could verify, each labelled "computed"; the table
itself explains how. Danet et al.'s measured values are not reproduced; pass your own
table to use them, or a table for another alloy (Li-Ge, Li-Sn, Li-Al).

Curve forms
-----------
``"free_electron"`` (default for >= 3 rows): ``E(x) = sqrt((a + b·x) / (1 + c·x))``. A
free-electron plasmon has E² ∝ n = N(x)/V(x); with the valence electrons per host atom
N and the volume per host atom V both linear in x this is the form above, and it
flattens at high x as the paper's Figure S3 does. ``"quadratic"``:
``E = a + b·x + c·x²``. ``"linear"`` (used for 2 rows): ``E = a + b·x``.

Uncertainties
-------------
The rows carry no error bars, so each is given ``row_sigma_eV`` (default 0.1 eV, model
choice: the spread of plasmon energies reported for one phase across samples and
instruments is of this order) or the rms residual of the fit if that is larger; the
parameter covariance is ``σ² (JᵀJ)⁻¹``. For a measured energy E ± σ_E,
``σ_x = sqrt(σ_E² + σ_curve(x)²) / |dE/dx|``: it grows where the curve flattens.

Examples
--------
>>> from anodemap.eels.calibration import default_calibration
>>> cal = default_calibration()
>>> round(float(cal.energy(0.0)), 2), round(float(cal.energy(4.4)), 2)
(16.83, 12.74)
>>> x, x_err, status = cal.x_of_energy([16.0, 13.5, 20.0], [0.01, 0.01, 0.01])
>>> [int(s) for s in status]  # 20 eV is outside the calibrated range
[0, 0, 6]
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.status import Status

__all__ = [
    "CSV_HEADER",
    "DEFAULT_CALIBRATION_FILE",
    "DEFAULT_ROW_SIGMA_EV",
    "FORMS",
    "Calibration",
    "Inversion",
    "default_calibration",
    "load_calibration",
    "plot_calibration",
]

CSV_HEADER = ("x", "plasmon_energy_eV", "source")
DEFAULT_CALIBRATION_FILE = "lixsi_plasmon_calibration.csv"
# Model choice: uncertainty given to every table row when the table has none (see notes).
DEFAULT_ROW_SIGMA_EV = 0.1
# Model choice: a measured energy beyond the calibrated range by less than this many
# combined standard deviations (its own and the curve's at that end) is consistent with
# the end composition and is given x = x_min or x_max rather than flagged; e.g. pure Si
# measured at 16.9 ± 0.02 eV against the 16.83 ± 0.1 eV end point.
DEFAULT_END_TOLERANCE_SIGMA = 2.0
FORMS = ("free_electron", "quadratic", "linear")

_EQUATIONS = {
    "free_electron": "E(x) = sqrt(({a} + {b}*x) / (1 + {c}*x)) eV",
    "quadratic": "E(x) = {a} + {b}*x + {c}*x^2 eV",
    "linear": "E(x) = {a} + {b}*x eV",
}


class Inversion(NamedTuple):
    """Result of :meth:`Calibration.x_of_energy` (unpacks as ``x, x_err, status``)."""

    x: np.ndarray
    x_err: np.ndarray
    status: np.ndarray


def _model(form: str, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    if form == "free_electron":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt((p[0] + p[1] * x) / (1.0 + p[2] * x))
    if form == "quadratic":
        return p[0] + p[1] * x + p[2] * x * x
    return p[0] + p[1] * x


def _jacobian(form: str, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """∂E/∂p, shape (x.size, n_params)."""
    x = np.asarray(x, dtype=float)
    if form == "free_electron":
        den = 1.0 + p[2] * x
        num = p[0] + p[1] * x
        e = np.sqrt(num / den)
        half = 0.5 / e
        return np.stack([half / den, half * x / den, -half * num * x / den**2], axis=-1)
    if form == "quadratic":
        return np.stack([np.ones_like(x), x, x * x], axis=-1)
    return np.stack([np.ones_like(x), x], axis=-1)


def _slope(form: str, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dE/dx."""
    if form == "free_electron":
        den = 1.0 + p[2] * x
        num = p[0] + p[1] * x
        e = np.sqrt(num / den)
        return (p[1] - p[0] * p[2]) / (den * den) * 0.5 / e
    if form == "quadratic":
        return p[1] + 2.0 * p[2] * x
    return np.full_like(np.asarray(x, dtype=float), p[1])


@dataclass(frozen=True)
class _Table:
    x: np.ndarray
    energy: np.ndarray
    sources: tuple[str, ...]
    comments: tuple[str, ...]


def _where(path: str | None) -> str:
    return f"calibration table {path}" if path else "calibration table"


def _validate(
    x: Any, energy: Any, sources: Sequence[str] | None, path: str | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    where = _where(path)
    try:
        xa = np.asarray(x, dtype=np.float64).ravel()
        ea = np.asarray(energy, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise AnodemapInputError(f"{where}: x and energies must be numbers ({exc})") from None
    if xa.size != ea.size:
        raise AnodemapInputError(
            f"{where}: {xa.size} x values but {ea.size} energies; give one energy per x"
        )
    if xa.size < 2:
        raise AnodemapInputError(
            f"{where}: needs at least 2 rows (x, plasmon_energy_eV), found {xa.size}"
        )
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ea))):
        raise AnodemapInputError(f"{where}: every x and energy must be a finite number")
    if np.any(ea <= 0):
        raise AnodemapInputError(f"{where}: plasmon energies must be positive (eV)")
    src = tuple(str(s) for s in sources) if sources is not None else ("",) * xa.size
    if len(src) != xa.size:
        raise AnodemapInputError(f"{where}: {len(src)} sources for {xa.size} rows")
    order = np.argsort(xa, kind="stable")
    xa, ea = xa[order], ea[order]
    src = tuple(src[i] for i in order)
    if np.any(np.diff(xa) == 0):
        dup = xa[1:][np.diff(xa) == 0][0]
        raise AnodemapInputError(f"{where}: x = {dup:g} appears twice; give one row per x")
    de = np.diff(ea)
    if not (np.all(de < 0) or np.all(de > 0)):
        raise AnodemapInputError(
            f"{where}: plasmon energies must change monotonically with x (all decreasing "
            f"or all increasing) for the calibration to be invertible; got "
            f"{', '.join(f'{a:g}->{b:g} eV' for a, b in zip(ea[:-1], ea[1:], strict=True))}"
        )
    return xa, ea, src


def _read_table(text: str, path: str | None) -> _Table:
    where = _where(path)
    comments: list[str] = []
    data_lines: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(stripped[1:].strip())
            continue
        data_lines.append((lineno, line))
    if not data_lines:
        raise AnodemapInputError(
            f"{where}: no header and no rows; the first non-comment line must be "
            f"'{','.join(CSV_HEADER)}'"
        )
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in data_lines))))
    header = tuple(h.strip() for h in rows[0])
    if header != CSV_HEADER:
        raise AnodemapInputError(
            f"{where} (line {data_lines[0][0]}): header must be exactly "
            f"'{','.join(CSV_HEADER)}', found '{','.join(header)}'"
        )
    xs: list[float] = []
    es: list[float] = []
    srcs: list[str] = []
    for (lineno, _), row in zip(data_lines[1:], rows[1:], strict=True):
        if len(row) != 3:
            raise AnodemapInputError(
                f"{where} (line {lineno}): expected 3 fields (x, plasmon_energy_eV, source), "
                f"found {len(row)}; quote a source that contains commas"
            )
        try:
            xv, ev = float(row[0]), float(row[1])
        except ValueError:
            raise AnodemapInputError(
                f"{where} (line {lineno}): x and plasmon_energy_eV must be numbers, "
                f"found {row[0]!r}, {row[1]!r}"
            ) from None
        if not (math.isfinite(xv) and math.isfinite(ev)):
            raise AnodemapInputError(f"{where} (line {lineno}): x and energy must be finite")
        if not row[2].strip():
            raise AnodemapInputError(
                f"{where} (line {lineno}): the source is empty; say where the value comes "
                "from (a reference, 'measured ...', or 'computed: ...')"
            )
        xs.append(xv)
        es.append(ev)
        srcs.append(row[2].strip())
    xa, ea, src = _validate(xs, es, srcs, path)
    return _Table(xa, ea, src, tuple(comments))


def _fit(form: str, x: np.ndarray, e: np.ndarray) -> np.ndarray:
    if form == "linear":
        b, a = np.polyfit(x, e, 1)
        return np.array([a, b])
    if form == "quadratic":
        c, b, a = np.polyfit(x, e, 2)
        return np.array([a, b, c])
    # free_electron: start from E² linear in x (c = 0), then least squares on E.
    b0, a0 = np.polyfit(x, e * e, 1)
    p0 = np.array([a0, b0, 0.0])

    return _levenberg_marquardt(form, p0, x, e)


def _levenberg_marquardt(
    form: str, p: np.ndarray, x: np.ndarray, e: np.ndarray, max_iter: int = 200
) -> np.ndarray:
    """Least squares of ``_model(form, p, x) - e`` by Levenberg–Marquardt.

    A few parameters and a handful of table rows: a plain damped Gauss–Newton loop
    (Marquardt's diagonal scaling) converges in a few steps and spares the command
    the import of ``scipy.optimize`` (a quarter of a second).
    """
    # Damping starts at 1e-3 and moves by factors of 10 (Marquardt's usual choices);
    # the stops are relative changes of 1e-14, as the scipy call this replaces used.
    p = np.asarray(p, dtype=float).copy()
    r = _model(form, p, x) - e
    cost = float(r @ r)
    lam = 1e-3
    for _ in range(max_iter):
        jac = _jacobian(form, p, x)
        jtj = jac.T @ jac
        g = jac.T @ r
        if not np.all(np.isfinite(jtj)) or float(np.max(np.abs(g))) <= 1e-15 * max(cost, 1e-300):
            break
        improved = False
        while lam < 1e16:
            a = jtj + lam * np.diag(np.maximum(np.diag(jtj), 1e-300))
            try:
                step = np.linalg.solve(a, -g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            trial = p + step
            rt = _model(form, trial, x) - e
            ct = float(rt @ rt) if np.all(np.isfinite(rt)) else math.inf
            if ct < cost:
                improved = True
                break
            lam *= 10.0
        if not improved:
            break
        small = float(np.max(np.abs(step) / (np.abs(p) + 1e-12))) < 1e-14
        done = cost - ct <= 1e-14 * cost
        p, r, cost = trial, rt, ct
        lam = max(lam / 10.0, 1e-12)
        if small or done:
            break
    return p


@dataclass
class Calibration:
    """A fitted plasmon energy -> composition calibration.

    Build it with :meth:`from_csv`, :meth:`from_arrays` or :func:`load_calibration`.

    Parameters
    ----------
    x, energy : array_like
        Table rows: composition x (e.g. Li per Si) and plasmon energy (eV).
    sources : sequence of str, optional
        Where each row comes from.
    form : {"auto", "free_electron", "quadratic", "linear"}
        Curve through the rows; "auto" is linear for 2 rows, free_electron otherwise
        (quadratic if the free-electron fit is not monotone over the table).
    row_sigma_eV : float
        Uncertainty given to each row (see module notes).
    name : str
        A label (the file name for tables read from disk).
    comments : sequence of str
        The table's comment lines.
    path : str, optional
        The file the table came from.

    Examples
    --------
    >>> cal = Calibration.from_arrays([0, 1, 2], [16.0, 15.0, 14.5], name="toy")
    >>> cal.form
    'free_electron'
    >>> float(cal.x_of_energy(15.0).x).__round__(3)
    1.0
    """

    x: np.ndarray
    energy_table: np.ndarray
    sources: tuple[str, ...] = ()
    form: str = "auto"
    row_sigma_eV: float = DEFAULT_ROW_SIGMA_EV
    name: str = ""
    comments: tuple[str, ...] = ()
    path: str | None = None
    params: np.ndarray = field(init=False)
    covariance: np.ndarray = field(init=False)
    sigma_rows_eV: float = field(init=False)

    def __post_init__(self) -> None:
        xa, ea, src = _validate(
            self.x, self.energy_table, self.sources or None, self.path or self.name or None
        )
        self.x, self.energy_table, self.sources = xa, ea, src
        if not (np.isfinite(self.row_sigma_eV) and self.row_sigma_eV >= 0):
            raise AnodemapInputError(f"row_sigma_eV must be >= 0, got {self.row_sigma_eV}")
        forms = FORMS if self.form == "auto" else (self.form,)
        if self.form not in ("auto", *FORMS):
            raise AnodemapInputError(f"form={self.form!r} is not one of auto, {', '.join(FORMS)}")
        if self.form == "auto":
            forms = ("linear",) if xa.size == 2 else ("free_electron", "quadratic")
        need = {"free_electron": 3, "quadratic": 3, "linear": 2}
        problems = []
        for form in forms:
            if xa.size < need[form]:
                problems.append(f"{form} needs at least {need[form]} rows")
                continue
            p = _fit(form, xa, ea)
            if self._monotone(form, p, xa[0], xa[-1]):
                self.form, self.params = form, p
                break
            problems.append(f"the {form} fit is not monotone over x = {xa[0]:g}..{xa[-1]:g}")
        else:
            raise AnodemapInputError(
                f"{_where(self.path or self.name or None)}: no usable calibration curve "
                f"({'; '.join(problems)}); try another form or check the rows"
            )
        resid = _model(self.form, self.params, xa) - ea
        npar = self.params.size
        dof = xa.size - npar
        s2 = float(resid @ resid) / dof if dof > 0 else 0.0
        self.sigma_rows_eV = float(math.sqrt(max(self.row_sigma_eV**2, s2)))
        jac = _jacobian(self.form, self.params, xa)
        self.covariance = self.sigma_rows_eV**2 * np.linalg.pinv(jac.T @ jac)

    @staticmethod
    def _monotone(form: str, p: np.ndarray, x0: float, x1: float) -> bool:
        grid = np.linspace(x0, x1, 401)
        e = _model(form, p, grid)
        if not np.all(np.isfinite(e)):
            return False
        s = _slope(form, p, grid)
        return bool(np.all(s < 0) or np.all(s > 0))

    # ---- constructors -----------------------------------------------------------------

    @classmethod
    def from_csv(cls, path: str | Path, **kwargs: Any) -> Calibration:
        """Read and validate a ``x,plasmon_energy_eV,source`` table (see module notes).

        Raises
        ------
        AnodemapIOError
            The file cannot be read.
        AnodemapInputError
            The table is invalid (the message names the file, the line and the problem).
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise AnodemapIOError(f"cannot read calibration table {p}: {exc}") from None
        table = _read_table(text, str(p))
        kwargs.setdefault("name", p.name)
        return cls(
            table.x,
            table.energy,
            table.sources,
            comments=table.comments,
            path=str(p),
            **kwargs,
        )

    @classmethod
    def from_arrays(
        cls, x: Any, energy: Any, sources: Sequence[str] | None = None, **kwargs: Any
    ) -> Calibration:
        """Build a calibration from arrays of x and plasmon energies (eV)."""
        return cls(np.asarray(x, float), np.asarray(energy, float), tuple(sources or ()), **kwargs)

    # ---- the curve -------------------------------------------------------------------

    @property
    def x_range(self) -> tuple[float, float]:
        """Calibrated x range (the table's first and last x)."""
        return float(self.x[0]), float(self.x[-1])

    @property
    def energy_range(self) -> tuple[float, float]:
        """Calibrated plasmon energy range (eV), lowest first."""
        e = _model(self.form, self.params, np.array(self.x_range))
        return float(e.min()), float(e.max())

    @property
    def decreasing(self) -> bool:
        """True if the energy falls as x grows (as for Li_xSi)."""
        return bool(_slope(self.form, self.params, np.array([self.x[0]]))[0] < 0)

    @property
    def equation(self) -> str:
        """The fitted curve as text, e.g. ``E(x) = sqrt((... + ...*x) / (1 + ...*x)) eV``."""
        p = self.params
        fmt = {"a": f"{p[0]:.6g}", "b": f"{p[1]:.6g}"}
        if p.size > 2:
            fmt["c"] = f"{p[2]:.6g}"
        return _EQUATIONS[self.form].format(**fmt).replace("+ -", "- ")

    def energy(self, x: Any, *, extrapolate: bool = False) -> np.ndarray:
        """Plasmon energy (eV) of composition ``x``; NaN outside the table unless ``extrapolate``."""
        xa = np.asarray(x, dtype=np.float64)
        e = _model(self.form, self.params, xa)
        if not extrapolate:
            lo, hi = self.x_range
            e = np.where((xa >= lo) & (xa <= hi), e, np.nan)
        return e

    def slope(self, x: Any) -> np.ndarray:
        """dE/dx (eV per unit x) of the fitted curve."""
        return _slope(self.form, self.params, np.asarray(x, dtype=np.float64))

    def energy_uncertainty(self, x: Any) -> np.ndarray:
        """1-σ uncertainty (eV) of the fitted curve at ``x``, from the parameter covariance."""
        xa = np.asarray(x, dtype=np.float64)
        g = _jacobian(self.form, self.params, xa.ravel())
        var = np.einsum("ni,ij,nj->n", g, self.covariance, g)
        return np.sqrt(np.maximum(var, 0.0)).reshape(xa.shape)

    def uncertainty(self, x: Any, energy_err: Any = 0.0) -> np.ndarray:
        """σ_x = sqrt(σ_E² + σ_curve(x)²) / |dE/dx| at composition ``x``.

        Examples
        --------
        >>> cal = default_calibration()
        >>> bool(cal.uncertainty(4.4, 0.02) > cal.uncertainty(0.0, 0.02))  # flatter at high x
        True
        """
        xa = np.asarray(x, dtype=np.float64)
        se = np.asarray(energy_err, dtype=np.float64)
        return np.sqrt(se**2 + self.energy_uncertainty(xa) ** 2) / np.abs(self.slope(xa))

    def x_of_energy(
        self,
        energy: Any,
        energy_err: Any = None,
        *,
        end_tolerance_sigma: float = DEFAULT_END_TOLERANCE_SIGMA,
    ) -> Inversion:
        """Composition x for plasmon energies (vectorised inverse of the curve).

        Parameters
        ----------
        energy : array_like
            Plasmon energies (eV), any shape.
        energy_err : array_like, optional
            Their 1-σ uncertainties (eV); without them ``x_err`` holds only the curve's
            own uncertainty.
        end_tolerance_sigma : float
            Energies beyond the calibrated range by less than this many combined standard
            deviations, sqrt(energy_err² + σ_curve(end)²), are consistent with the end
            point: they get the table's end x instead of being flagged.

        Returns
        -------
        Inversion
            ``(x, x_err, status)``, arrays of the shape of ``energy``; status is
            ``Status.OK``, ``Status.OUTSIDE_CALIBRATION`` (x and x_err NaN) or
            ``Status.INVALID_INPUT`` (energy not finite).

        Examples
        --------
        >>> cal = default_calibration()
        >>> x, x_err, status = cal.x_of_energy(cal.energy(2.0), 0.01)
        >>> round(float(x), 6), int(status)
        (2.0, 0)
        """
        e = np.asarray(energy, dtype=np.float64)
        se = np.zeros_like(e) if energy_err is None else np.asarray(energy_err, np.float64)
        se = np.broadcast_to(se, e.shape)
        emin, emax = self.energy_range
        finite = np.isfinite(e)
        se0 = np.where(np.isfinite(se), np.abs(se), 0.0)
        s0, s1 = self.energy_uncertainty(np.array(self.x_range))  # curve σ at both ends
        s_emin, s_emax = (s1, s0) if self.decreasing else (s0, s1)
        k = float(end_tolerance_sigma)
        tol_lo = k * np.sqrt(se0**2 + s_emin**2)
        tol_hi = k * np.sqrt(se0**2 + s_emax**2)
        inside = finite & (e >= emin - tol_lo) & (e <= emax + tol_hi)
        ec = np.clip(np.where(inside, e, 0.5 * (emin + emax)), emin, emax)
        # Dense monotone table, linear interpolation, then two Newton steps.
        xg = np.linspace(self.x[0], self.x[-1], 2049)
        eg = _model(self.form, self.params, xg)
        if eg[0] > eg[-1]:
            xg, eg = xg[::-1], eg[::-1]
        x = np.interp(ec, eg, xg)
        lo, hi = self.x_range
        for _ in range(2):
            x = np.clip(
                x - (_model(self.form, self.params, x) - ec) / _slope(self.form, self.params, x),
                lo,
                hi,
            )
        x_err = self.uncertainty(x, np.where(np.isfinite(se), se, 0.0))
        status = np.where(
            inside,
            int(Status.OK),
            np.where(finite, int(Status.OUTSIDE_CALIBRATION), int(Status.INVALID_INPUT)),
        ).astype(np.uint8)
        x = np.where(inside, x, np.nan)
        x_err = np.where(inside, x_err, np.nan)
        return Inversion(x, x_err, status)

    # ---- reporting -------------------------------------------------------------------

    @property
    def residuals(self) -> np.ndarray:
        """Fitted minus table energy for every row (eV)."""
        return _model(self.form, self.params, self.x) - self.energy_table

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description for summary.json (equation, coefficients, rows, ...)."""
        names = ("a", "b", "c")[: self.params.size]
        fitted = _model(self.form, self.params, self.x)
        return {
            "name": self.name,
            "path": self.path,
            "form": self.form,
            "equation": self.equation,
            "coefficients": {n: float(v) for n, v in zip(names, self.params, strict=True)},
            "covariance": self.covariance.tolist(),
            "row_sigma_eV": float(self.sigma_rows_eV),
            "x_range": list(self.x_range),
            "energy_range_eV": list(self.energy_range),
            "rows": [
                {
                    "x": float(xv),
                    "plasmon_energy_eV": float(ev),
                    "fitted_eV": float(fv),
                    "residual_eV": float(fv - ev),
                    "source": s,
                    "kind": _kind(s),
                }
                for xv, ev, fv, s in zip(
                    self.x, self.energy_table, fitted, self.sources, strict=True
                )
            ],
            "sources": sorted(set(self.sources)),
            "comments": list(self.comments),
        }


def _kind(source: str) -> str:
    """'computed' for rows whose source starts with 'computed', else 'stated/measured'."""
    return "computed" if source.strip().lower().startswith("computed") else "stated/measured"


def load_calibration(path: str | Path | None = None, **kwargs: Any) -> Calibration:
    """Load a calibration table; ``None`` gives the packaged Li_xSi default.

    Examples
    --------
    >>> cal = load_calibration()
    >>> cal.name
    'lixsi_plasmon_calibration.csv'
    """
    if path is not None:
        return Calibration.from_csv(path, **kwargs)
    ref = resources.files("anodemap").joinpath("data", DEFAULT_CALIBRATION_FILE)
    text = ref.read_text(encoding="utf-8")
    table = _read_table(text, f"anodemap/data/{DEFAULT_CALIBRATION_FILE}")
    kwargs.setdefault("name", DEFAULT_CALIBRATION_FILE)
    return Calibration(
        table.x,
        table.energy,
        table.sources,
        comments=table.comments,
        path=f"anodemap/data/{DEFAULT_CALIBRATION_FILE}",
        **kwargs,
    )


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The packaged Li_xSi calibration (loaded once and cached; do not modify it)."""
    return load_calibration()


def plot_calibration(cal: Calibration, ax: Any = None, *, band: bool = True) -> Any:
    """Figure like the paper's Figure S3: table points, fitted curve, equation.

    Stated/measured rows are filled circles, computed rows open squares, each group in
    the legend with the sources of its rows; the error bars are the 1σ given to every
    row in the fit (``sigma_rows_eV``: the table has no uncertainty column, so this is
    the model choice ``row_sigma_eV`` or the scatter of the residuals, whichever is
    larger, as the legend says). The shaded band is the curve's ±1σ.

    Parameters
    ----------
    cal : Calibration
    ax : matplotlib Axes, optional
        Drawn into a new figure when omitted.
    band : bool
        Draw the ±1σ band of the curve.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_calibration(default_calibration())
    >>> ax.get_xlabel()
    'x in Li$_x$Si (Li per Si)'
    """
    import textwrap

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.6))
    xs = np.linspace(cal.x[0], cal.x[-1], 300)
    es = cal.energy(xs)
    ax.plot(xs, es, color="C0", lw=1.5, label="fitted curve")
    if band:
        s = cal.energy_uncertainty(xs)
        ax.fill_between(xs, es - s, es + s, color="C0", alpha=0.2, lw=0, label="curve ±1σ")
    kinds = np.array([_kind(s) for s in cal.sources])
    sigma = float(cal.sigma_rows_eV)
    for kind, marker, face, colour in (
        ("stated/measured", "o", "C1", "C1"),
        ("computed", "s", "none", "C3"),
    ):
        sel = kinds == kind
        if not np.any(sel):
            continue
        sources = sorted(
            {_short_source(s) for s, k in zip(cal.sources, kinds, strict=True) if k == kind}
        )
        label = textwrap.fill(f"{kind} ({int(sel.sum())}): " + "; ".join(sources), 58)
        ax.errorbar(
            cal.x[sel],
            cal.energy_table[sel],
            yerr=sigma,
            ls="none",
            marker=marker,
            mfc=face,
            mec=colour,
            ecolor=colour,
            color=colour,
            ms=7,
            capsize=3,
            label=label,
        )
    ax.set_xlabel("x in Li$_x$Si (Li per Si)")
    ax.set_ylabel("plasmon energy (eV)")
    ax.text(
        0.03,
        0.04,
        f"{cal.equation}\nerror bars: 1σ = {sigma:.2f} eV per row, as in the fit "
        "(the table gives none)",
        transform=ax.transAxes,
        fontsize=7.5,
        va="bottom",
        ha="left",
    )
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    return ax


def _short_source(source: str) -> str:
    """A source for a legend: its text before the first parenthesis (with the work it
    cites, if it says "citing ..."), without a leading "computed:"."""
    head, _, rest = source.strip().partition(" (")
    if len(head) < 12:
        head, rest = source.strip(), ""
    if "citing" in rest:
        head += " (citing " + rest.split("citing", 1)[1].split(")")[0].strip() + ")"
    if head.lower().startswith("computed:"):
        head = head[len("computed:") :].strip()
    return head
