"""Cliff–Lorimer quantification: atomic fractions from net line intensities and k-factors.

For a thin specimen the weight fractions c_i of the elements are in the ratio of their
net line intensities times their k-factors, c_i ∝ k_i I_i, summing to 1; the atomic
fractions follow by dividing by the atomic weights A_i, x_i ∝ c_i / A_i (Cliff and
Lorimer, J. Microsc. 103 (1975) 203). The k-factors are the user's (measured on
standards, or from the acquisition software): anodemap has no k-factors of its own.

The 1σ of x_i propagates the 1σ of the intensities, taken as independent: with
q_i = k_i I_i / A_i and S = sum q, dx_i/dI_j = (δ_ij - x_i) q_j / (S I_j).

Examples
--------
>>> import numpy as np
>>> x, s = atomic_fractions({"Si_Ka": np.array([100.0]), "O_Ka": np.array([40.0])},
...                         {"Si_Ka": np.array([10.0]), "O_Ka": np.array([5.0])},
...                         {"Si_Ka": 1.0, "O_Ka": 2.0})
>>> round(float(x["Si"][0] + x["O"][0]), 12)
1.0
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from anodemap.edx.lines import atomic_weight, xray_line
from anodemap.errors import AnodemapInputError

__all__ = ["atomic_fractions", "parse_k_factors"]


def parse_k_factors(words: list[str]) -> dict[str, float]:
    """``--k-factors Si_Ka=1.0 O_Ka=1.9`` as a mapping (each line checked).

    Examples
    --------
    >>> parse_k_factors(["Si_Ka=1", "O_Ka=1.9"])
    {'Si_Ka': 1.0, 'O_Ka': 1.9}
    """
    out: dict[str, float] = {}
    for word in words:
        name, sep, value = str(word).partition("=")
        try:
            k = float(value)
        except ValueError:
            k = float("nan")
        if not sep or not np.isfinite(k) or k <= 0:
            raise AnodemapInputError(
                f"--k-factors: {word!r} is not LINE=K with K > 0; give e.g. --k-factors "
                "Si_Ka=1.0 O_Ka=1.9"
            )
        out[xray_line(name.strip()).name] = k
    return out


def atomic_fractions(
    intensity: Mapping[str, np.ndarray],
    sigma: Mapping[str, np.ndarray],
    k_factors: Mapping[str, float],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Atomic fractions (0..1) per element and their 1σ, per pixel.

    Parameters
    ----------
    intensity, sigma : mapping of line name to ndarray
        Net intensities and their 1σ (maps of one shape).
    k_factors : mapping of line name to float
        One line per element; those lines must be in ``intensity``.

    Returns
    -------
    fractions, uncertainties : dict of element to ndarray
    """
    missing = [n for n in k_factors if n not in intensity]
    if missing:
        raise AnodemapInputError(
            f"--k-factors: {', '.join(missing)} not among the lines mapped; add "
            f"{' '.join(missing)} to --lines"
        )
    elements = [xray_line(n).element for n in k_factors]
    if len(set(elements)) != len(elements):
        raise AnodemapInputError("--k-factors: give one line per element")
    q = {}
    for name, k in k_factors.items():
        q[name] = (
            k * np.asarray(intensity[name], dtype=float) / atomic_weight(xray_line(name).element)
        )
    total = sum(q.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        x = {n: q[n] / total for n in q}
        var = {n: np.zeros_like(total) for n in q}
        for j in q:
            # dq_j/dI_j = q_j / I_j = k_j / A_j
            dq = k_factors[j] / atomic_weight(xray_line(j).element)
            s2 = (dq * np.asarray(sigma[j], dtype=float)) ** 2
            for i in q:
                d = ((1.0 if i == j else 0.0) - x[i]) / total
                var[i] = var[i] + d * d * s2
    fractions = {xray_line(n).element: x[n] for n in q}
    errors = {xray_line(n).element: np.sqrt(var[n]) for n in q}
    return fractions, errors
