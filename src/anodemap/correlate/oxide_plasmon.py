"""The O-rich boundary class from the EELS map's second plasmon of Li2O and silicates.

The paper maps Li2O and lithium silicates at grain boundaries by the 42 ± 2 eV window
of the Richardson–Lucy deconvolved low-loss spectra (Ahmed et al., Fig. S4b, S8c,
S10e): the first plasmons of Li2O (19 eV) and SiO2 (22 eV) overlap those of Li_xSi
(12.7–16.8 eV) and the silicates between them, but their second plasmons (about 38–44
eV) lie above the silicide's (25–34 eV). Where the EELS map covers the survey the
boundary class is decided by it, as :mod:`anodemap.correlate.oxygen` decides it by the
EDX O/Si:

1. the oxide index ``W / (A · t/λ)`` that ``anodemap eels`` writes
   (``oxide_index.hspy``, :mod:`anodemap.eels.oxide_index`): the window's counts ``W``
   over the first plasmon's area ``A`` times the log-ratio thickness, nearly free of the
   thickness up to t/λ of about 1.5 (none where the fit is not the first plasmon's);
2. the index is brought onto the survey's grid through the registration;
3. the cut: Otsu's threshold of the index over the covered pixels the classes call
   grey or boundary, when they hold an O-rich mode (at least 1 % of them more than 3
   robust widths — 1.4826 × the median absolute deviation — above their median; noise
   alone gives 0.13 %), or a given index;
4. as for the EDX: a grey or boundary pixel above the cut is boundary, a boundary pixel
   below it takes its next class (:func:`anodemap.correlate.oxygen.decide_boundaries`);
   pores, c-Si and dendrite-like pixels keep theirs.

Measured on the simulated region (seeds 0/1/2; docs/registration.md): the index
follows the truth's oxide share with a correlation of 0.94–0.95 over the EELS map
(the window's raw counts 0.47–0.65, ``W/A`` 0.83–0.90); under the EELS map the boundary
IoU rises from 0.74/0.64/0.76 to 0.82/0.80/0.87, and where EELS and EDX maps overlap the
index (3 nm pixels) gives better boundaries than the O/Si (4 nm): 0.87/0.86/0.90
against 0.82/0.77/0.86, so the correlate lets the finer map decide where both cover.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> index = 0.04 + rng.normal(0, 0.01, (40, 40)); index[:, 10:14] += 0.08
>>> labels = np.full((40, 40), 2, np.uint8); labels[:, 20:24] = 4
>>> out = oxide_plasmon_boundaries(labels, index, np.ones((40, 40), bool))
>>> int((out.labels[:, 10:14] == 4).mean() * 100), int((out.labels[:, 20:24] == 4).sum())
(100, 0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from anodemap.features.classes import CLASS_NAMES

from .oxygen import SWAPPABLE, ORich, decide_boundaries, o_rich_threshold

__all__ = ["from_eels_oxide", "oxide_plasmon_boundaries"]

#: Robust widths above the candidates' median for a pixel to count towards an O-rich
#: mode (as the EDX's O above 3σ).
_MODE_WIDTHS = 3.0


def oxide_plasmon_boundaries(
    labels: np.ndarray,
    index: np.ndarray,
    covered: np.ndarray,
    *,
    probability: np.ndarray | None = None,
    threshold: float | str = "auto",
    min_o_rich: float = 0.01,
) -> ORich:
    """The boundary class decided by the oxide index where the EELS map covers the
    survey.

    Parameters
    ----------
    labels : ndarray of uint8 (ny, nx)
        The classes so far (:mod:`anodemap.features.classes`).
    index : ndarray (ny, nx)
        :func:`anodemap.eels.oxide_index.oxide_index` on the survey's grid (NaN: none).
    covered : ndarray of bool
        Survey pixels the EELS map covers.
    probability : ndarray (5, ny, nx), optional
        The HAADF rule's class probabilities, for a boundary pixel without oxide.
    threshold : float or "auto"
        The index above which a pixel is O-rich.
    min_o_rich : float
        For ``"auto"``: the share of candidates in the O-rich mode that makes one.

    Returns
    -------
    ORich
        With the index on the survey's grid as ``ratio``.
    """
    lab = np.asarray(labels)
    q = np.asarray(index, float)
    usable = np.asarray(covered, bool) & np.isfinite(q)
    candidates = usable & np.isin(lab, SWAPPABLE)
    summary: dict[str, Any] = {
        "covered_pixels": int(np.count_nonzero(usable)),
        "classes_considered": [CLASS_NAMES[c] for c in SWAPPABLE],
    }
    if threshold == "auto":
        values = q[candidates]
        centre = float(np.median(values)) if values.size else 0.0
        width = 1.4826 * float(np.median(np.abs(values - centre))) if values.size else 0.0
        significant = q > centre + _MODE_WIDTHS * width
        cut, source = o_rich_threshold(
            q, significant, candidates, min_o_rich, where="the EELS map", signal="index"
        )
    else:
        cut, source = float(threshold), "given (--eels-oxide)"
    summary["threshold"] = {
        "value": cut,
        "source": source,
        "units": "42 eV window / (first plasmon area × t/λ)",
    }
    if cut is None:
        summary["applied"] = False
        return ORich(lab.copy(), q, np.zeros(lab.shape, bool), summary)
    o_rich = candidates & (q > cut)
    out, changed, counts = decide_boundaries(lab, candidates, o_rich, usable, probability)
    summary.update(applied=True, **counts)
    return ORich(out, q, changed, summary)


def from_eels_oxide(
    labels: np.ndarray,
    probability: np.ndarray | None,
    eels: Any,
    registration: Any,
    threshold: float | str = "auto",
    log: Callable[[str], None] = lambda _: None,
) -> ORich | None:
    """:func:`oxide_plasmon_boundaries` with the index of an EELS result
    (:class:`~anodemap.correlate.inputs.Modality`; its ``oxide_index.hspy``) put on the
    survey's grid by its ``registration``; None where the result has no such map."""
    from anodemap.registration import resample

    layers = {layer.spec.quantity: layer for layer in eels.layers}
    if "oxide_index" not in layers:
        log(
            "EELS result without oxide_index.hspy (of an older anodemap eels: run it again): "
            "the boundary class under its map is not decided by the 42 eV oxide window"
        )
        return None
    q = layers["oxide_index"].values
    survey, covered = resample(q, registration.transform, labels.shape, np.isfinite(q))
    found = oxide_plasmon_boundaries(
        labels, survey, covered, probability=probability, threshold=threshold
    )
    s = found.summary
    if s["applied"]:
        log(
            f"boundaries under the EELS map from its 42 eV oxide index (cut "
            f"{s['threshold']['value']:.3g}, {s['threshold']['source']}): {s['to_boundary']} "
            f"pixels became boundary, {s['from_boundary']} boundary pixels without it left it"
        )
    else:
        log(f"boundary class under the EELS map kept: {s['threshold']['source']}")
    return found
