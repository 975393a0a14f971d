"""The O-rich boundary class from the EDX O/Si map of the same region.

A boundary (code 4) is *O-rich* (Li2O, lithium silicates; Ahmed et al., Fig. 1b-c and
3b: "O at pores and grain boundaries"). In a HAADF image alone it is told apart from
the grey only by brightness, and an oxide boundary with Li-rich silicide in it is about
as bright as the grey (docs/features.md, "The ceiling"). The EDX map measures the
quantity that defines the class, so where it covers the survey it decides it:

1. the O Kα and Si Kα net counts are brought onto the survey's grid through the
   registration (linear interpolation of each, then their ratio r = O/Si);
2. the cut: ``threshold`` as given (an O Kα/Si Kα net-count ratio), or ``"auto"``:
   Otsu's threshold of r over the covered pixels the HAADF found grey or boundary
   (the grains hold little O and the boundaries much: two modes). Auto needs an
   O-rich mode: at least ``min_o_rich`` of those pixels must hold O above 3σ of its
   own counting noise (noise alone gives 0.13 %), else the classes stay the HAADF's;
3. a covered pixel the HAADF found grey or boundary becomes boundary where r is above
   the cut and its O Kα is above ``sigmas`` × its 1σ; a HAADF boundary pixel below the
   cut takes its next most probable class of the HAADF rule (grey or dendrite-like).
   Pores, c-Si and dendrite-like pixels stay: the O of a pore's shell is in its
   partial pixels, c-Si is told by its brightness better than by its O, and the
   Li-rich threads border the oxide, whose O the 4 nm EDX pixels spread over them
   (taking them lost 0.02-0.04 dendrite-like IoU on the simulated region and gained
   the boundary nothing).

Outside the EDX map the classes are the HAADF's. Model choices: the 2σ per-pixel
guard (of 0, 2, 3σ on the simulated region: 0 and 2 alike, 3 lost 0.07-0.16 IoU of
the boundaries, whose O falls at their edges) and the 1 % O-rich mode.

Examples
--------
>>> import numpy as np
>>> labels = np.full((40, 40), 2, np.uint8); labels[:, 18:22] = 4
>>> si = np.full((40, 40), 60.0); o = np.full((40, 40), 1.0); o[:, 10:14] = 25.0
>>> rng = np.random.default_rng(0); o = o + rng.normal(0, 1, o.shape)
>>> out = o_rich_boundaries(labels, o, np.ones_like(o), si, np.ones((40, 40), bool))
>>> int((out.labels[:, 10:14] == 4).mean() * 100), int((out.labels[:, 18:22] == 4).sum())
(100, 0)
>>> out.summary["threshold"]["source"]
'auto (Otsu; 11.7 % O>3σ)'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap.features.classes import BOUNDARY, CLASS_NAMES, DENDRITE, GREY

__all__ = ["ORich", "decide_boundaries", "from_edx", "o_rich_boundaries", "o_rich_threshold"]

#: The classes an O-rich pixel may be taken from.
SWAPPABLE = (GREY, BOUNDARY)


@dataclass
class ORich:
    """The classes with the O-rich boundaries from EDX.

    Attributes
    ----------
    labels : ndarray of uint8
        The classes (the HAADF's outside the EDX map).
    ratio : ndarray of float64
        O Kα / Si Kα net counts on the survey's grid (NaN where none).
    changed : ndarray of bool
        Pixels whose class the O map changed.
    summary : dict
    """

    labels: np.ndarray
    ratio: np.ndarray
    changed: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)


def o_rich_threshold(
    ratio: np.ndarray,
    significant: np.ndarray,
    candidates: np.ndarray,
    min_o_rich: float = 0.01,
    *,
    where: str = "the EDX map",
    signal: str = "O",
) -> tuple[float | None, str]:
    """Otsu's cut of the O/Si ratio (or another O index) over ``candidates``, or None
    with the reason; ``significant``: the pixels whose O ``signal`` stands above 3σ of
    its noise, ``where``: the map, both for the reason.

    Examples
    --------
    >>> r = np.r_[np.zeros(900), np.full(100, 0.5)] + np.linspace(0, 0.05, 1000)
    >>> t, why = o_rich_threshold(r, r > 0.2, np.ones(1000, bool))
    >>> bool(0.04 < t < 0.5), why
    (True, 'auto (Otsu; 10.0 % O>3σ)')
    """
    from skimage.filters import threshold_otsu

    values = ratio[candidates & np.isfinite(ratio)]
    if values.size < 50:
        return None, f"only {values.size} material pixels under {where}"
    share = float(np.count_nonzero(significant & candidates)) / values.size
    if share < min_o_rich:
        return None, (
            f"no O-rich mode: {100 * share:.2f} % of the material under {where} holds "
            f"{signal} above 3σ (at least {100 * min_o_rich:g} % needed)"
        )
    lo, hi = np.percentile(values, [0.5, 99.5])  # a few wild ratios must not set the cut
    cut = float(threshold_otsu(np.clip(values, lo, hi)))
    return cut, f"auto (Otsu; {100 * share:.1f} % {signal}>3σ)"


def o_rich_boundaries(
    labels: np.ndarray,
    o_ka: np.ndarray,
    o_sigma: np.ndarray,
    si_ka: np.ndarray,
    covered: np.ndarray,
    *,
    probability: np.ndarray | None = None,
    threshold: float | str = "auto",
    sigmas: float = 2.0,
    min_o_rich: float = 0.01,
) -> ORich:
    """The boundary class decided by the O/Si ratio where the EDX map covers the survey.

    Parameters
    ----------
    labels : ndarray of uint8 (ny, nx)
        The HAADF's classes (:mod:`anodemap.features.classes`).
    o_ka, o_sigma, si_ka : ndarray (ny, nx)
        O Kα net counts, their 1σ and Si Kα net counts on the survey's grid (NaN: none).
    covered : ndarray of bool
        Survey pixels the EDX map covers.
    probability : ndarray (5, ny, nx), optional
        The HAADF rule's class probabilities: a boundary pixel without O takes the more
        probable of grey and dendrite-like (grey without them).
    threshold : float or "auto"
        The O Kα/Si Kα net-count ratio above which a pixel is O-rich.
    sigmas : float
        The O Kα of an O-rich pixel must exceed this many of its 1σ.
    min_o_rich : float
        For ``"auto"``: the share of material pixels with O above 3σ that makes an
        O-rich mode.

    Returns
    -------
    ORich
    """
    lab = np.asarray(labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(si_ka > 0, o_ka / si_ka, np.nan)
    usable = np.asarray(covered, bool) & np.isfinite(ratio) & np.isfinite(o_sigma)
    candidates = usable & np.isin(lab, SWAPPABLE)
    summary: dict[str, Any] = {
        "covered_pixels": int(np.count_nonzero(usable)),
        "classes_considered": [CLASS_NAMES[c] for c in SWAPPABLE],
        "sigmas": sigmas,
    }
    if threshold == "auto":
        significant = o_ka > 3.0 * o_sigma
        cut, source = o_rich_threshold(ratio, significant, candidates, min_o_rich)
    else:
        cut, source = float(threshold), "given (--o-rich)"
    summary["threshold"] = {"value": cut, "source": source, "units": "O Kα / Si Kα net counts"}
    if cut is None:
        summary["applied"] = False
        return ORich(lab.copy(), ratio, np.zeros(lab.shape, bool), summary)
    o_rich = candidates & (ratio > cut) & (o_ka > sigmas * o_sigma)
    out, changed, counts = decide_boundaries(lab, candidates, o_rich, usable, probability)
    summary.update(applied=True, **counts)
    return ORich(out, ratio, changed, summary)


def decide_boundaries(
    labels: np.ndarray,
    candidates: np.ndarray,
    o_rich: np.ndarray,
    usable: np.ndarray,
    probability: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The classes with the ``o_rich`` candidates boundary and the other candidates the
    HAADF called boundary its next class (the more probable of grey and dendrite-like by
    ``probability``, grey without it); the counts for a summary over ``usable``.

    Examples
    --------
    >>> lab = np.array([[2, 4, 4, 3]], np.uint8)
    >>> rich = np.array([[True, False, True, False]])
    >>> out, changed, n = decide_boundaries(lab, lab != 3, rich, np.ones(lab.shape, bool))
    >>> out.tolist(), n["to_boundary"], n["from_boundary"]
    ([[4, 2, 4, 3]], 1, 1)
    """
    lab = np.asarray(labels)
    out = lab.copy()
    poor = candidates & ~o_rich & (lab == BOUNDARY)
    if probability is not None:
        pick = np.where(probability[DENDRITE] > probability[GREY], DENDRITE, GREY)
    else:
        pick = np.full(lab.shape, GREY)
    out[poor] = pick[poor].astype(lab.dtype)
    out[o_rich] = BOUNDARY
    changed = out != lab
    counts = {
        "to_boundary": int(np.count_nonzero(changed & (out == BOUNDARY))),
        "from_boundary": int(np.count_nonzero(changed & (lab == BOUNDARY))),
        "boundary_pixels_before": int(np.count_nonzero(usable & (lab == BOUNDARY))),
        "boundary_pixels_after": int(np.count_nonzero(usable & (out == BOUNDARY))),
    }
    return out, changed, counts


def from_edx(
    labels: np.ndarray,
    probability: np.ndarray | None,
    edx: Any,
    registration: Any,
    threshold: float | str = "auto",
    sigmas: float = 2.0,
    log: Callable[[str], None] = lambda _: None,
) -> ORich | None:
    """:func:`o_rich_boundaries` with the O Kα and Si Kα maps of an EDX result
    (:class:`~anodemap.correlate.inputs.Modality`) put on the survey's grid by its
    ``registration``; None where the result has no O Kα or Si Kα map."""
    from anodemap.registration import resample

    layers = {layer.spec.quantity: layer for layer in edx.layers}
    if "O_Ka" not in layers or "Si_Ka" not in layers or layers["O_Ka"].sigma is None:
        log("EDX without O Kα and Si Kα maps: the boundary class stays the HAADF's")
        return None
    o, si = layers["O_Ka"], layers["Si_Ka"]
    t, shape = registration.transform, labels.shape
    o_survey, covered = resample(o.values, t, shape, o.valid)
    o_sigma = resample(o.sigma, t, shape, o.valid)[0]
    si_survey = resample(si.values, t, shape, si.valid)[0]
    found = o_rich_boundaries(
        labels,
        o_survey,
        o_sigma,
        si_survey,
        covered,
        probability=probability,
        threshold=threshold,
        sigmas=sigmas,
    )
    s = found.summary
    if s["applied"]:
        log(
            f"boundaries under the EDX map from its O/Si (cut {s['threshold']['value']:.3g}, "
            f"{s['threshold']['source']}): {s['to_boundary']} pixels became boundary, "
            f"{s['from_boundary']} HAADF boundary pixels without O left it"
        )
    else:
        log(f"boundary class stays the HAADF's: {s['threshold']['source']}")
    return found
