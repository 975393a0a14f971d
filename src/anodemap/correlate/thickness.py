"""The feature classes under the EELS map found again with its t/λ as the thickness term.

HAADF intensity is about thickness × composition; ``anodemap features`` takes the
thickness out with a t/λ map where it is given one on the image's own grid, else with
the envelope of the grey class (docs/features.md, step 2). In a region the EELS map of
the same area has a t/λ map, but on another grid, rotated and drifting; once the
correlate has registered it, the survey can be classified again with that t/λ put on
its grid. Under the EELS map the classes are then:

- pores and c-Si as ``anodemap features`` found them (with the envelope): the EELS
  map's 3 nm pixels, interpolated at a pore's edge, read a low t/λ there and shrink the
  pores, and c-Si is told by brightness either way;
- grey, dendrite-like and boundary by the same rule with the registered t/λ (a pixel
  either run calls pore or c-Si keeps the envelope's class).

Outside the EELS map the classes stay those of ``anodemap features``. Only the
unsupervised rule is run again (a trained forest's classes are kept), and not when the
features were already found with a t/λ map.

Measured on the simulated region (seeds 0/1/2, under the EELS map, IoU envelope →
with the registered t/λ): grey 0.82/0.76/0.82 → 0.85/0.82/0.84, dendrite-like
0.65/0.67/0.80 → 0.74/0.81/0.81, boundary 0.51/0.35/0.67 → 0.69/0.57/0.69; pores and
c-Si unchanged (docs/registration.md).

Examples
--------
>>> from anodemap.correlate.thickness import keep_envelope
>>> import numpy as np
>>> env = np.array([[0, 2], [1, 2]]); tl = np.array([[2, 0], [3, 4]])
>>> keep_envelope(env, tl, np.ones((2, 2), bool)).tolist()
[[0, 2], [1, 4]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from anodemap.features.classes import BRIGHT, PORE

__all__ = ["Reclassified", "from_eels", "keep_envelope", "with_eels_thickness"]


@dataclass
class Reclassified:
    """The classes with the registered t/λ under the EELS map."""

    labels: np.ndarray
    probability: np.ndarray | None
    summary: dict[str, Any] = field(default_factory=dict)


def keep_envelope(envelope: np.ndarray, with_t: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The classes with t/λ under ``covered``, but pores and c-Si (of either) the
    envelope's; the envelope's elsewhere."""
    either = np.isin(envelope, (PORE, BRIGHT)) | np.isin(with_t, (PORE, BRIGHT))
    return np.where(covered & ~either, with_t, envelope).astype(envelope.dtype)


def _features_parameters(found: dict[str, Any]) -> Any:
    """The features result's parameters (its ``summary.json``); a name this version
    does not know (a result of another version) is left out."""
    from anodemap.analysis import get_analysis

    features = get_analysis("features")
    names = {f.name for f in fields(features.Parameters)}
    known = {k: v for k, v in found.items() if k in names}
    return features.parameters(known, where="the --features result's summary.json")


def with_eels_thickness(
    image: np.ndarray,
    axes: list[Any],
    labels: np.ndarray,
    probability: np.ndarray | None,
    features_summary: dict[str, Any],
    t_over_lambda: np.ndarray,
    covered: np.ndarray,
    log: Callable[[str], None] = lambda _: None,
) -> Reclassified:
    """The survey's classes found again under the EELS map with its t/λ.

    Parameters
    ----------
    image : ndarray (ny, nx)
        The HAADF survey.
    axes : list of Axis
        Its axes in nm (those ``anodemap features`` calibrated).
    labels, probability : ndarray
        The classes of ``anodemap features`` and their probabilities (5, ny, nx; may be
        None).
    features_summary : dict
        The features result's ``summary.json`` (its parameters, mode, thickness term).
    t_over_lambda : ndarray (ny, nx)
        The EELS t/λ on the survey's grid (NaN outside the map).
    covered : ndarray of bool
        Survey pixels the EELS map covers.
    log : callable

    Returns
    -------
    Reclassified
        ``summary["applied"]`` False (with ``reason``) where nothing was done.
    """
    from anodemap.features.segment import segment

    mode = features_summary.get("mode")
    term = str(features_summary.get("thickness_term") or "")
    reason = None
    if mode is None:
        reason = "the features result does not say how its classes were found"
    elif mode != "unsupervised":
        reason = f"the features are the {mode} mode's (a trained forest is not run again)"
    elif term.startswith("t/λ"):
        reason = "the features were found with a t/λ map already"
    elif not (covered & np.isfinite(t_over_lambda)).any():
        reason = "the EELS map has no t/λ on any survey pixel"
    if reason is not None:
        log(f"classes under the EELS map kept: {reason}")
        return Reclassified(labels, probability, {"applied": False, "reason": reason})
    p = _features_parameters(features_summary.get("parameters") or {})
    p.pore_trials = 0  # the detection limit is the features result's; not measured again
    usable = covered & np.isfinite(t_over_lambda)
    t_map = np.where(usable, t_over_lambda, 0.0)  # 0: a hole, filled from around it
    again = segment(image, axes, p, thickness=(t_map, axes))
    out = keep_envelope(labels, again.labels, usable)
    prob = probability
    if probability is not None:
        take = usable & (out == again.labels) & ~np.isin(out, (PORE, BRIGHT))
        prob = np.where(take[None], again.probability, probability)
    changed = int(np.count_nonzero(out != labels))
    log(
        f"classes under the EELS map found again with its t/λ: {changed} of "
        f"{int(usable.sum())} covered survey pixels changed class"
    )
    return Reclassified(
        out,
        prob,
        {"applied": True, "covered_pixels": int(usable.sum()), "changed_pixels": changed},
    )


def from_eels(
    image: np.ndarray,
    axes: list[Any],
    labels: np.ndarray,
    probability: np.ndarray | None,
    features_summary: dict[str, Any],
    eels: Any,
    registration: Any,
    log: Callable[[str], None] = lambda _: None,
) -> Reclassified | None:
    """:func:`with_eels_thickness` with the t/λ map of an EELS result
    (:class:`~anodemap.correlate.inputs.Modality`) put on the survey's grid by its
    ``registration``; None where the result has no t/λ map."""
    from anodemap.registration import resample

    layer = next((x for x in eels.layers if x.spec.quantity == "t_over_lambda"), None)
    if layer is None:
        return None
    t, covered = resample(layer.values, registration.transform, labels.shape, layer.valid)
    return with_eels_thickness(image, axes, labels, probability, features_summary, t, covered, log)
