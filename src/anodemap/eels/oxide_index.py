"""The oxide index: the 42 eV Li2O/silicate window made free of the thickness.

The paper maps Li2O and lithium silicates with the counts in the 42 ± 2 eV window of
the Richardson–Lucy deconvolved low-loss spectra (Ahmed et al., Fig. S4b, S8c, S10e):
the first plasmons of Li2O (19 eV) and SiO2 (22 eV) lie beside those of Li_xSi
(12.7–16.8 eV), but their second plasmons (38–44 eV) lie above the silicide's (25–34
eV). Those counts grow with the thickness too ("bright regions qualitatively show
relatively higher amounts"). In a Poisson sum of plural scattering the second order is
``(t/λ)/2`` times the first (Egerton, *EELS in the Electron Microscope*, 3rd ed., 2011,
§3.7), so

    index = W / (A · t/λ)

with ``W`` the window's counts, ``A`` the first plasmon's fitted area and ``t/λ`` the
log-ratio thickness is about the share of the self-convolved plasmon that falls in the
window: a property of the material, nearly free of the thickness up to t/λ of about
1.5. In sums of Drude plasmons (tests/correlate/test_oxide_plasmon.py, made there, not
by anodemap's simulator) Li2O and SiO2 read 0.097–0.16 over t/λ 0.5–1.5 and Li_xSi at
most 0.075; thicker, the silicide's third plasmon (3 × 13–15 eV) falls in the window
too (Li15Si4 0.084 against Li2O's 0.099 at t/λ = 2), so the index is for the thin
lamellae valence EELS needs anyway.

It needs the plasmon fit: where a one-peak fit of mixed plasmons fails (the
oxide-richest pixels: share above about 0.58 on the simulated region), or where the
strongest loss peak lies outside the fit window (the fit then describes a weaker
feature: the real low-loss spectrum of exspy read 1.7), there is none.
Measured on the simulated region (seeds 0/1/2), Pearson correlation with the truth's
oxide share 0.94/0.95/0.95 over the pixels with a value (the window's counts alone
0.47/0.51/0.65). Tried and not kept: ``W / (I_0 (t/λ)²)`` with the zero-loss counts
``I_0``, which needs no fit (the same in a pure Poisson-Drude model): 0.89/0.92/0.94,
and its O-rich pixels (share >= 0.3) read 1.7-1.8 times the oxide-free ones against
3.4-3.8 times - the second order of a mixture grows as the oxide share squared.

Examples
--------
>>> import numpy as np
>>> oxide_index(np.array([60.0, 1.0]), np.array([1000.0, 0.0]), np.array([1.5, 1.0]),
...             np.array([True, True])).round(3).tolist()
[0.04, nan]
"""

from __future__ import annotations

import numpy as np

__all__ = ["oxide_index"]


def oxide_index(
    window: np.ndarray, area: np.ndarray, t_over_lambda: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """``W / (A · t/λ)`` (module description); NaN where ``valid`` is False (no first
    plasmon fitted) or any input is missing or not positive.

    Parameters
    ----------
    window : ndarray
        Counts in the 42 ± 2 eV window of the deconvolved spectra.
    area : ndarray
        The first plasmon's fitted area (counts).
    t_over_lambda : ndarray
        Log-ratio thickness.
    valid : ndarray of bool
        Pixels whose first plasmon was fitted.

    Returns
    -------
    ndarray of float64
    """
    w, a, t = (np.asarray(x, float) for x in (window, area, t_over_lambda))
    ok = np.asarray(valid, bool) & np.isfinite(w) & np.isfinite(a) & np.isfinite(t)
    ok &= (a > 0) & (t > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, w / np.where(ok, a * t, 1.0), np.nan)
