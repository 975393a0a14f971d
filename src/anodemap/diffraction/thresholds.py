"""The amorphous / crystalline decision of the matcher: thresholds from the data, labels.

Which patterns show Bragg spots is decided over the whole scan: the spottiness threshold
of the decoy test (:func:`amorphous_threshold`: knockoff+ and a logistic null), the
threshold of the Friedel-pair peak (:func:`peak_threshold`: a Gumbel null), both derived
from the matched patterns unless given (:func:`decision_thresholds`), and the labels of
the phase map that follow (:func:`assign_phases`, codes in :func:`phase_label_names`).
The statistics are described in :mod:`anodemap.diffraction.matching`, which re-exports
every public name of this module. Plain numpy: the labels and the thresholds load
without numba.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.status import Status

if TYPE_CHECKING:  # for annotations only: the matcher's module loads numba
    from anodemap.diffraction.matcher import MatchParameters

__all__ = [
    "LABEL_AMORPHOUS",
    "LABEL_NOT_ANALYSED",
    "LABEL_NOT_INDEXED",
    "LABEL_VACUUM",
    "amorphous_threshold",
    "assign_phases",
    "decision_thresholds",
    "peak_threshold",
    "phase_label_names",
]


def amorphous_threshold(
    spottiness: Any, fdr: float = 0.05, fpr: float = 1e-3, *, crystalline: Any = None
) -> float:
    """Spottiness threshold of the crystalline class, derived from the data.

    Under the null (no crystal spots) the spottiness ``L = ln(Q / Q_decoy)`` is symmetric
    about 0, and only null patterns give ``L < 0`` -- except crystals that another test
    already calls crystalline (``crystalline``; e.g. a grain with one Friedel pair, whose
    decoys can match better than the pattern): their L count as discoveries above the
    threshold but not on the null's side below 0. Two controls, the stricter wins:

    * **false-discovery rate** (knockoff+, Barber & Candès, Ann. Stat. 43 (2015) 2055): the
      smallest ``c > 0`` among the ``|L|`` with ``(1 + #{L <= -c}) / #{L >= c} <= fdr``;
      ``inf`` (all amorphous) when none qualifies, e.g. with fewer than ``1/fdr``
      crystalline patterns in all (then pass a threshold, or more patterns);
    * **false-positive rate per amorphous pattern**: Q and Q_decoy are maxima over many
      template rotations, close to Gumbel-distributed, and the difference of two Gumbel
      variables is logistic, so the null is modelled as logistic with scale
      ``s = mean(|L| : L < 0) / (2 ln 2)`` and ``c = s ln((1 - fpr) / fpr)``. Used when at
      least 10 patterns have ``L < 0`` (model choice), else only the FDR rule applies.

    Parameters
    ----------
    spottiness : array_like
        Spottiness of the patterns (NaN ignored).
    fdr : float
        Target false-discovery rate of the crystalline class (model choice 0.05).
    fpr : float
        Target probability that an amorphous pattern is called crystalline (model choice
        1e-3).
    crystalline : array_like of bool, optional
        Patterns known to be crystalline by another test (same shape as ``spottiness``).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> null = rng.logistic(0, 0.03, 500)           # amorphous: symmetric about 0
    >>> crystal = rng.normal(0.8, 0.1, 500)         # crystalline: well above 0
    >>> c = amorphous_threshold(np.concatenate([null, crystal]))
    >>> 0.15 < c < 0.3
    True
    """
    values = np.asarray(spottiness, dtype=np.float64).ravel()
    known = (
        np.zeros(values.shape, bool)
        if crystalline is None
        else np.broadcast_to(np.asarray(crystalline, bool).ravel(), values.shape)
    )
    finite = np.isfinite(values)
    values, known = values[finite], known[finite]
    if not 0 < fdr < 1 or not 0 < fpr < 1:
        raise AnodemapInputError(f"fdr={fdr}, fpr={fpr}: both must be between 0 and 1")
    cands = np.unique(np.abs(values[(values != 0) & ~(known & (values < 0))]))
    if cands.size == 0:
        return math.inf
    pos = np.sort(values[values > 0])
    neg = np.sort(-values[(values < 0) & ~known])
    n_pos = pos.size - np.searchsorted(pos, cands, side="left")  # L >= c
    n_neg = neg.size - np.searchsorted(neg, cands, side="left")  # L <= -c
    ok = (1.0 + n_neg) / np.maximum(n_pos, 1) <= fdr
    c_fdr = float(cands[np.argmax(ok)]) if ok.any() else math.inf
    if neg.size < 10:
        return c_fdr
    scale = float(neg.mean()) / (2.0 * math.log(2.0))
    return max(c_fdr, scale * math.log((1.0 - fpr) / fpr))


# peak_threshold: largest step between its quantiles (each in units of a Gumbel's), over
# the first (f/20 to f/10), still taken as one Gumbel distribution (model choice: 6 keeps the
# false-positive rate of pure Gumbel samples and finds the null of 15 % of the values
# under crystals; 10 and 15 missed more crystals close to the null).
_GUMBEL_STEP_RATIO = 6.0


def peak_threshold(pair_peak: Any, fpr: float = 1e-3, min_patterns: int = 20) -> float:
    """Threshold of the Friedel-pair peak statistic, from its null distribution in the data.

    ``pair_peak`` should hold the patterns not already called crystalline (by the decoy
    test): amorphous ones and crystals with too few spots for the decoy test. For a
    pattern without spots the statistic is a maximum over many nearly independent pairs,
    close to Gumbel-distributed; location μ and scale β are fitted to two quantiles of the
    values, those the null would have at 1/4 and 1/2 (``β = (q50 - q25) / ln(ln 4 / ln 2)``,
    ``μ = q50 + β ln ln 2``), and the threshold is the null's ``1 - fpr`` quantile,
    ``μ - β ln(-ln(1 - fpr))``.

    Which quantiles: the null's, if at least a fraction ``f`` of the values are null and
    lie below the crystals', are the values' quantiles ``f/4`` and ``f/2``. ``f`` starts
    at 1 and is halved while the values below ``f/2`` do not look like one Gumbel
    distribution: of the steps between the quantiles ``f/20``, ``f/10``, ``f/4`` and
    ``f/2``, each divided by a Gumbel's, one is more than six times the first (model
    choice; where the quantiles cross from the null into the crystals, a step is hundreds
    of times too large). If no fraction of at least ``min_patterns`` values passes, all
    the values are used, as if all were null. So a scan where most of these patterns are
    crystals with one strong Friedel pair (a large grain off its zone axes) still gets the
    null of its amorphous minority, down to about 15 % of the patterns; the plain fit to
    all the values put the threshold above most crystals from about half. Measured on
    Gumbel samples (β = 0.4) alone, the false-positive rate stays that of the plain fit:
    0.0011-0.0013 for 300-1000 values, 0.002-0.007 for 30-100, where the quantiles
    themselves are noisy. With fewer than ``min_patterns`` values in all it returns
    ``inf`` (this route then calls nothing crystalline).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> null = rng.gumbel(2.0, 0.4, 800)
    >>> c = peak_threshold(np.concatenate([null, rng.uniform(8, 500, 150)]))
    >>> bool(4.0 < c < 6.5 and (null > c).mean() < 0.01)
    True
    >>> c = peak_threshold(np.concatenate([null[:200], rng.uniform(300, 1500, 600)]))
    >>> bool(4.0 < c < 8.0)    # crystals the majority: still the null's threshold
    True
    """
    values = np.asarray(pair_peak, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if not 0 < fpr < 1:
        raise AnodemapInputError(f"fpr={fpr}: must be between 0 and 1")
    if values.size < min_patterns:
        return math.inf
    probs = np.array([0.05, 0.1, 0.25, 0.5])
    # the steps between those quantiles of a Gumbel distribution, in units of β
    gumbel_steps = np.diff(-np.log(-np.log(probs)))
    f = 1.0
    while values.size * f >= min_patterns:
        q = np.quantile(values, probs * f)
        steps = np.diff(q) / gumbel_steps
        if steps.max() <= _GUMBEL_STEP_RATIO * steps[0]:
            break
        f /= 2.0
    else:  # no fraction looks like one Gumbel: all the values, as if all were null
        f = 1.0
    q25, q50 = np.quantile(values, [0.25 * f, 0.5 * f])
    beta = (q50 - q25) / math.log(math.log(4.0) / math.log(2.0))
    if not beta > 0:
        return math.inf
    mu = q50 + beta * math.log(math.log(2.0))
    return float(mu - beta * math.log(-math.log1p(-fpr)))


def decision_thresholds(
    results: Mapping[str, Any], p: MatchParameters, pool: Any = None
) -> tuple[float, float]:
    """Spottiness and pair-peak thresholds: given in ``p``, else derived from ``results``
    (over the patterns matched, and of those only ``pool`` when given: the specimen's)."""
    ok = np.asarray(results["status"]) == Status.OK
    if pool is not None:
        ok = ok & np.broadcast_to(np.asarray(pool, bool), ok.shape)
    spot = np.asarray(results["spottiness"])
    pair = np.asarray(results["pair_peak"])
    thr = p.amorphous_threshold
    if thr is None:
        # patterns whose Friedel pair stands out from all the patterns' null do not
        # belong on the null's side of the decoy test (their decoys may match better)
        known = pair[ok] >= peak_threshold(pair[ok], p.fpr)
        thr = amorphous_threshold(spot[ok], p.fdr, p.fpr, crystalline=known)
    peak_thr = p.peak_threshold
    if peak_thr is None:
        pool = ok & ~(spot >= thr)
        peak_thr = peak_threshold(pair[pool], p.fpr)
    return float(thr), float(peak_thr)


#: Label of the phase map: a pattern that could not be analysed (its ``status`` says why).
LABEL_NOT_ANALYSED = -3
#: Label of the phase map: Bragg spots, but no given phase reproduces them.
LABEL_NOT_INDEXED = -2
#: Label of the phase map: vacuum (a pore), next to nothing scattered by a specimen.
LABEL_VACUUM = -1
#: Label of the phase map: diffuse rings, no Bragg spots. The given phases follow: 1, 2, ...
LABEL_AMORPHOUS = 0


def phase_label_names(phases: Sequence[str]) -> dict[str, str]:
    """Name of every label of the phase map, keyed by the label as a string.

    The codes are stable: -3 not analysed (the status says why), -2 crystalline but not
    indexed, -1 vacuum, 0 amorphous, then the given phases 1, 2, ... in order.

    Examples
    --------
    >>> phase_label_names(["Si", "Li15Si4"])["-2"], phase_label_names(["Si"])["1"]
    ('crystalline, not indexed', 'Si')
    """
    names = {
        str(LABEL_NOT_ANALYSED): "not analysed",
        str(LABEL_NOT_INDEXED): "crystalline, not indexed",
        str(LABEL_VACUUM): "vacuum",
        str(LABEL_AMORPHOUS): "amorphous",
    }
    return names | {str(k + 1): str(name) for k, name in enumerate(phases)}


def assign_phases(
    results: Mapping[str, Any],
    threshold: float,
    peak_threshold: float | None = None,
    *,
    bragg_z: float | None = None,
    min_spot_match: float | None = None,
    vacuum: Any = None,
) -> dict[str, Any]:
    """Labels from matching results: vacuum, amorphous, a phase, or crystalline not indexed.

    For each pattern whose status is OK:

    1. **vacuum** (-1, status ``VACUUM``) where ``vacuum`` is True (decided from the
       intensity scattered outside the direct beam, before any matching:
       :func:`anodemap.diffraction.virtual.scattered_fraction`) and the pattern has no
       Bragg spots (below: a faint crystal of light elements is specimen);
    2. **crystalline** (Bragg spots) where ``pair_peak >= bragg_z`` (absolute: a Friedel
       pair of spots far above the rings' own noise, whatever the rest of the scan), or by
       the scan-relative routes ``spottiness >= threshold`` (the decoy test) or
       ``pair_peak >= peak_threshold`` (the Friedel-pair null of the scan). A scan of
       crystals alone has no amorphous null: the relative routes then call nothing, the
       absolute one all its crystals. Otherwise **amorphous** (0);
    3. a crystalline pattern is **its best phase** (``crystal_phase``, 1, 2, ...) unless
       its spots and best template disagree, ``spot_match < min_spot_match`` (NaN, a
       pattern without spots of ``spot_z``, never disagrees): then **crystalline, not
       indexed** (-2, status ``NOT_INDEXED``).

    Measured for ``min_spot_match`` (model choice 0.5, ``MatchParameters``): over the
    3611 patterns with ``pair_peak >= bragg_z`` of six simulated electrodes (32 × 32 seeds
    3, 0, 7; 48 × 48 seeds 0, 11; 64 × 64 seed 0; 1.5° libraries) the right phase agrees at
    0.665 or more (Li15Si4; Si 0.764), the real zone axes of ``test1.blo`` (neither Si nor
    Li15Si4) at 0.26-0.36, spots on rings that no template has at 0. Spots that fall within
    ``spot_tolerance_px`` of a phase's reflections are explained by it: on 64-px patterns
    (0.044 1/Å per px) grains of Cu or Li2O simulated in place of Si were mostly indexed as
    Si (agreement 0.9), and random spot sets on the rings of a phase agree at 0.5-0.75.

    Patterns whose status is not OK get -3 (not analysed) and keep their status.

    Parameters
    ----------
    results : mapping
        ``crystal_phase``, ``spottiness``, ``status`` and optionally ``pair_peak`` and
        ``spot_match`` (as :func:`~anodemap.diffraction.matching.match_kernel` returns
        them).
    threshold : float
        Spottiness threshold (:func:`amorphous_threshold`).
    peak_threshold : float, optional
        Scan-relative pair-peak threshold (:func:`peak_threshold`).
    bragg_z : float, optional
        Absolute pair-peak threshold (``MatchParameters.bragg_z``).
    min_spot_match : float, optional
        ``MatchParameters.min_spot_match``; None: every crystalline pattern is indexed.
    vacuum : array_like of bool, optional
        Patterns of vacuum (same shape as the maps).

    Returns
    -------
    dict
        ``results`` with ``phase`` (int16 labels) and ``status`` replaced, and the
        thresholds used.

    Examples
    --------
    >>> import numpy as np
    >>> r = {"crystal_phase": np.array([1, 2, 2]), "spottiness": np.array([0.5, 0.01, 0.0]),
    ...      "pair_peak": np.array([3.0, 2.0, 40.0]), "status": np.zeros(3, np.uint8)}
    >>> assign_phases(r, 0.1)["phase"].tolist()
    [1, 0, 0]
    >>> assign_phases(r, 0.1, 6.0)["phase"].tolist()
    [1, 0, 2]
    >>> out = assign_phases(r | {"spot_match": np.array([0.9, np.nan, 0.1])}, 0.1, 6.0,
    ...                     bragg_z=8.0, min_spot_match=0.5, vacuum=[False, True, False])
    >>> out["phase"].tolist(), [Status(v).name for v in out["status"]]
    ([1, -1, -2], ['OK', 'VACUUM', 'NOT_INDEXED'])
    """
    cp = np.asarray(results["crystal_phase"])
    spot = np.asarray(results["spottiness"])
    status = np.array(results["status"], dtype=np.uint8, copy=True)
    ok = status == Status.OK
    pair = np.asarray(results["pair_peak"]) if "pair_peak" in results else None
    bragg = np.zeros(ok.shape, bool)
    if bragg_z is not None and pair is not None:
        bragg = pair >= bragg_z
    vac = np.zeros(ok.shape, bool)
    if vacuum is not None:  # a pattern with Bragg spots is specimen, however faint
        vac = ok & np.broadcast_to(np.asarray(vacuum, bool), ok.shape) & ~bragg
    material = ok & ~vac
    crystalline = (spot >= threshold) | bragg
    out = {**results, "amorphous_threshold": float(threshold)}
    if peak_threshold is not None and pair is not None:
        crystalline = crystalline | (pair >= peak_threshold)
        out["peak_threshold"] = float(peak_threshold)
    if bragg_z is not None:
        out["bragg_z"] = float(bragg_z)
    unexplained = np.zeros(ok.shape, bool)
    if min_spot_match is not None and "spot_match" in results:
        # only patterns with Bragg spots far above the noise show enough of them to say
        # that a template misses some (weak patterns show few of its spots anyway)
        unexplained = bragg & (np.asarray(results["spot_match"]) < min_spot_match)
        out["min_spot_match"] = float(min_spot_match)
    phase = np.where(material & crystalline, cp, LABEL_AMORPHOUS).astype(np.int16)
    phase[material & unexplained] = LABEL_NOT_INDEXED
    phase[vac] = LABEL_VACUUM
    phase[~ok] = LABEL_NOT_ANALYSED
    status[vac] = Status.VACUUM
    status[material & unexplained] = Status.NOT_INDEXED
    out["phase"] = phase
    out["status"] = status
    return out
