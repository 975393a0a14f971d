"""Per-class means that account for mixed map pixels: a partial-volume correction by
linear unmixing.

A map pixel (EELS 3 nm, EDX 4 nm) is coarser than the survey's (1.5 nm) in which the
feature classes were found; at a thin thread or a boundary it sees a mix of classes, and
the class of the one survey pixel its centre lies in (the pixel-majority statistics of
:mod:`anodemap.correlate.statistics`) tells only part of it. Here each map pixel ``k``
gets the share ``s_kc`` of every class ``c`` in what it saw (:func:`class_shares`), and
the per-class means ``μ_c`` are the least-squares solution of

    value_k ≈ Σ_c s_kc · μ_c

(:func:`unmix`). This is the geometric transfer matrix of partial-volume correction in
PET (Rousset, Ma & Evans 1998, J Nucl Med 39:904-911), written per pixel rather than per
region, and the linear mixing model of spectral unmixing (Keshava & Mustard 2002, IEEE
Signal Process. Mag. 19:44-57) with the class shares known and the class "endmember"
values unknown.

Two footprints give the shares:

- ``point`` (default): the probe is finer than the pixel and samples one point per
  pixel (as the simulated region's maps do, and a focused STEM probe does). The share
  is the probability of each class at the sample point: the survey's one-hot classes
  interpolated bilinearly between the survey pixels' centres at the map pixel's centre
  (optionally smoothed by a Gaussian of ``sigma_px`` first, for a registration's 1σ;
  the correlate does not: on the simulated region it made the means worse). Given the
  segmentation's own class probabilities, classes it tells apart poorly (the correlate:
  grey and dendrite-like) can share each survey pixel by them instead of one-hot. A pixel of class ``c`` gives ``μ_c`` on average, so
  ``E[value | s] = Σ_c s_c μ_c`` holds exactly where the shares are the true
  probabilities.
- ``cell``: the pixel integrates over its cell (a probe scanned within the pixel, or
  broadened by the specimen): the share is the fraction of the survey pixels whose
  centres fall in the map pixel's cell (through the registration). The linear model
  assumes that a mixed pixel's value is the share-weighted mean of its classes' values,
  which holds for counts (EDX net counts) and only approximately for a ratio derived
  from a spectrum (Li/Si from a plasmon shift).

Classes are reported as not estimable (NaN, ``estimable`` False) where the map's
counted pixels hold less than ``min_pixels`` pixel-equivalents of them, or where the map
flags most of their share (no value there: Li/Si in pores); the shares of the other
classes are then renormalised to 1 (the pixels that carry a value saw them). Flagged
pixels are left out. Uncertainties: from the fit (the residual scatter, reduced χ²) and
a block bootstrap over the map (blocks of ``block`` pixels, resampled with replacement,
explicit seed): neighbouring pixels vary together, so the fit's is a lower bound.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> s = rng.dirichlet((1.0, 1.0), size=(20, 20))          # two classes, mixed pixels
>>> v = s @ np.array([1.0, 3.0]) + rng.normal(0, 0.01, (20, 20))
>>> u = unmix(v, np.ones((20, 20), bool), s, min_pixels=5)
>>> [round(float(x), 2) for x in u.mean]
[1.0, 3.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from anodemap.correlate.statistics import MAX_FLAGGED_SHARE
from anodemap.registration import Transform
from anodemap.registration.transform import within

__all__ = ["FOOTPRINTS", "Unmixed", "class_shares", "unmix", "unmixed_rows"]

#: What a map pixel saw (module description).
FOOTPRINTS = ("point", "cell")


def class_shares(
    labels: np.ndarray,
    classes: tuple[int, ...],
    to_survey: Transform,
    shape: tuple[int, int],
    *,
    footprint: str = "point",
    sigma_px: float = 0.0,
    probability: np.ndarray | None = None,
    soft: tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """The share of each class in what each pixel of a map saw.

    Parameters
    ----------
    labels : ndarray (ny, nx)
        The classes on the survey's grid.
    classes : tuple of int
        The class codes, in the order of the shares' last axis.
    to_survey : Transform
        Map pixel → survey pixel (the inverse of the registration).
    shape : (int, int)
        The map's shape.
    footprint : {"point", "cell"}
    sigma_px : float
        1σ of a mapped position, survey pixels (``point``: the classes are smoothed by
        it).
    probability : ndarray (n_codes, ny, nx), optional
        Per-pixel class probabilities on the survey's grid, indexed by class code
        (``point`` only). With ``soft``, a survey pixel labelled one of the ``soft``
        classes is shared among them by these probabilities (renormalised over them)
        instead of counting wholly for its label: at a 1-px edge between two classes
        that intensity alone tells apart poorly, the label is a coin toss that the
        probability states.
    soft : tuple of int
        The class codes shared by ``probability``.

    Returns
    -------
    shares : ndarray (my, mx, len(classes))
        Summing to 1 where known; 0 elsewhere.
    known : ndarray of bool (my, mx)
        Map pixels whose footprint lies in the survey.

    Examples
    --------
    >>> lab = np.zeros((8, 8), int); lab[:, 4:] = 1
    >>> half = Transform(np.eye(2) * 2.0, np.array([0.5, 0.5]))  # 2 survey px per pixel
    >>> s, known = class_shares(lab, (0, 1), half, (4, 4), footprint="cell")
    >>> s[0, :, 1].tolist(), bool(known.all())
    ([0.0, 0.0, 1.0, 1.0], True)
    >>> s, _ = class_shares(lab, (0, 1), Transform(np.eye(2), np.array([0.0, 3.5])), (1, 1))
    >>> s[0, 0].tolist()
    [0.5, 0.5]
    >>> prob = np.stack([np.full((8, 8), 0.8), np.full((8, 8), 0.2)])  # unsure everywhere
    >>> s, _ = class_shares(lab, (0, 1), Transform(np.eye(2), np.array([0.0, 1.0])), (1, 1),
    ...                     probability=prob, soft=(0, 1))
    >>> s[0, 0].round(2).tolist()
    [0.8, 0.2]
    >>> s, _ = class_shares(lab, (0, 1), Transform(np.eye(2), np.array([0.0, 1.0])), (1, 1),
    ...                     probability=0 * prob, soft=(0, 1))   # no say: the label
    >>> s[0, 0].tolist()
    [1.0, 0.0]
    """
    lab = np.asarray(labels)
    if footprint == "cell":
        return _cell_shares(lab, classes, to_survey, shape)
    coords = to_survey.grid(shape)
    known = within(coords, lab.shape)
    shares = np.zeros((*shape, len(classes)))
    shared = np.isin(lab, soft) if probability is not None and soft else None
    if shared is not None:
        total = sum(probability[c] for c in soft)
        # a pixel the probabilities give none of the soft classes keeps its label
        shared &= total > 0
        total = np.where(total > 0, total, 1.0)
    for i, c in enumerate(classes):
        onehot = (lab == c).astype(float)
        if shared is not None and c in soft:
            onehot = np.where(shared, probability[c] / total, onehot)
        if sigma_px > 0:
            onehot = ndimage.gaussian_filter(onehot, sigma_px, mode="nearest")
        shares[..., i] = ndimage.map_coordinates(onehot, coords, order=1, mode="nearest")
    total = shares.sum(-1, keepdims=True)
    shares = np.where(total > 0, shares / np.where(total > 0, total, 1.0), 0.0)
    shares[~known] = 0.0
    return shares, known


def _cell_shares(
    lab: np.ndarray, classes: tuple[int, ...], to_survey: Transform, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each survey pixel counted in the map pixel its centre falls in."""
    ij = np.stack(np.indices(lab.shape), -1).reshape(-1, 2).astype(float)
    where = to_survey.inverse().apply(ij)
    cell = np.rint(where).astype(np.int64)
    ok = (cell[:, 0] >= 0) & (cell[:, 0] < shape[0]) & (cell[:, 1] >= 0) & (cell[:, 1] < shape[1])
    flat = cell[ok, 0] * shape[1] + cell[ok, 1]
    codes = lab.reshape(-1)[ok]
    counts = np.zeros((shape[0] * shape[1], len(classes)))
    for i, c in enumerate(classes):
        counts[:, i] = np.bincount(flat[codes == c], minlength=counts.shape[0])
    total = counts.sum(-1, keepdims=True)
    shares = np.where(total > 0, counts / np.where(total > 0, total, 1.0), 0.0)
    # a map pixel no survey pixel centre fell in (the survey's edge): its cell is not known
    known = total[:, 0] > 0
    return shares.reshape(*shape, len(classes)), known.reshape(shape)


@dataclass
class Unmixed:
    """The per-class means of one map by linear unmixing.

    Attributes
    ----------
    mean, se_fit, se_bootstrap, map_sigma : ndarray (n_classes,)
        NaN for a class not estimable. ``se_fit``: from the fit's residual scatter;
        ``se_bootstrap``: block bootstrap; ``map_sigma``: from the map's own 1σ alone.
    effective_pixels : ndarray (n_classes,)
        The class's share summed over the pixels counted.
    flagged_share : ndarray (n_classes,)
        The share of the class's pixel-equivalents that the map flags.
    estimable : ndarray of bool (n_classes,)
    spread : ndarray (n_classes, 4)
        std, 5th, 50th and 95th percentile of the values of the nearly pure pixels of
        each class (share at least ``pure_share`` of :func:`unmix`).
    pixels, counted, flagged : int
        Map pixels in the survey, those fitted, those left out (no value).
    rms_residual : float
        RMS of value − Σ share · mean over the pixels fitted.
    """

    mean: np.ndarray
    se_fit: np.ndarray
    se_bootstrap: np.ndarray
    map_sigma: np.ndarray
    effective_pixels: np.ndarray
    flagged_share: np.ndarray
    estimable: np.ndarray
    spread: np.ndarray
    pixels: int
    counted: int
    flagged: int
    rms_residual: float


def _solve(a: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    sw = np.sqrt(w)
    return np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)[0]


def unmix(
    values: np.ndarray,
    valid: np.ndarray,
    shares: np.ndarray,
    *,
    sigma: np.ndarray | None = None,
    known: np.ndarray | None = None,
    weighted: bool = False,
    min_pixels: float = 20.0,
    max_flagged_share: float = MAX_FLAGGED_SHARE,
    pure_share: float = 0.9,
    block: int = 8,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> Unmixed:
    """The per-class means of the map ``values`` by least squares on the class
    ``shares`` (module description).

    Parameters
    ----------
    values : ndarray (my, mx)
    valid : ndarray of bool (my, mx)
        Pixels with a usable value.
    shares : ndarray (my, mx, n_classes)
        :func:`class_shares`.
    sigma : ndarray (my, mx), optional
        The map's per-pixel 1σ: propagated into ``map_sigma``; with ``weighted``, also
        the weights 1/σ² (pixels without a finite positive σ then left out).
    known : ndarray of bool, optional
        Map pixels whose shares are known (default: where they sum to more than 0).
    weighted : bool
        Weight by 1/σ². Off by default: unbiased only where σ does not vary with the
        value within a class, and the EELS Li/Si 1σ rises with Li/Si (correlation
        0.45-0.54 within the dendrite-like class of the simulated region), which
        pulled the weighted dendrite-like mean 1.3-2.0 low (docs/registration.md).
    min_pixels : float
        A class with fewer pixel-equivalents among the pixels fitted is not estimable
        (model choice: 20, the PDF's --min-patterns; not tuned).
    max_flagged_share : float
        A class more of whose pixel-equivalents than this the map flags is not
        estimable (the map has no value there).
    pure_share : float
        The spread (``std``, ``p05``, ``median``, ``p95``) of a class is that of the
        pixels with at least this share of it.
    block, n_bootstrap, seed
        The block bootstrap: blocks of ``block`` × ``block`` pixels, resamples, seed
        (model choices: 8 pixels, longer than the correlation of neighbouring pixels'
        errors at a thread's width; 200 resamples; not tuned).

    Returns
    -------
    Unmixed
    """
    v = np.asarray(values, float)
    s = np.asarray(shares, float)
    n_classes = s.shape[-1]
    known = s.sum(-1) > 0 if known is None else np.asarray(known, bool) & (s.sum(-1) > 0)
    use = known & np.asarray(valid, bool) & np.isfinite(v)
    sig = None if sigma is None else np.asarray(sigma, float)
    w_map = np.ones(v.shape)
    if weighted and sig is not None:
        good = np.isfinite(sig) & (sig > 0)
        use &= good
        w_map = np.where(good, 1.0 / np.where(good, sig, 1.0) ** 2, 0.0)
    left_out = known & ~use
    eff = s[use].sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        flagged_share = s[left_out].sum(0) / (eff + s[left_out].sum(0))
    estimable = (eff >= min_pixels) & ~(flagged_share > max_flagged_share)
    nan = np.full(n_classes, np.nan)
    out = Unmixed(
        mean=nan.copy(),
        se_fit=nan.copy(),
        se_bootstrap=nan.copy(),
        map_sigma=nan.copy(),
        effective_pixels=eff,
        flagged_share=flagged_share,
        estimable=estimable.copy(),
        spread=np.full((n_classes, 4), np.nan),
        pixels=int(known.sum()),
        counted=0,
        flagged=int(left_out.sum()),
        rms_residual=float("nan"),
    )
    cols = np.flatnonzero(estimable)
    if not cols.size:
        return out
    total = s[..., cols].sum(-1)
    use &= total > 0  # a pixel that saw only classes not estimable tells none of them
    out.counted = int(use.sum())
    a = s[..., cols][use] / total[use][:, None]  # renormalised: the pixel saw these
    y, w = v[use], w_map[use]
    mu = _solve(a, y, w)
    resid = y - a @ mu
    chi2 = float(np.sum(w * resid**2) / max(len(y) - len(cols), 1))
    inv = np.linalg.pinv((a * w[:, None]).T @ a)
    out.mean[cols] = mu
    out.se_fit[cols] = np.sqrt(np.clip(np.diag(inv) * chi2, 0, None))
    if sig is not None:
        # (AᵀWA)⁻¹ AᵀW diag(σ²) WA (AᵀWA)⁻¹: the map's own noise through the fit
        aw = a * w[:, None]
        meat = (aw * np.nan_to_num(sig[use], nan=0.0)[:, None] ** 2).T @ aw
        out.map_sigma[cols] = np.sqrt(np.clip(np.diag(inv @ meat @ inv), 0, None))
    out.rms_residual = float(np.sqrt(np.mean(resid**2)))
    out.se_bootstrap[cols] = _block_bootstrap(use, a, y, w, block, n_bootstrap, seed)
    for i, c in enumerate(cols):
        pure = a[:, i] >= pure_share
        if pure.sum() >= 2:
            out.spread[c] = (y[pure].std(ddof=1), *np.percentile(y[pure], (5, 50, 95)))
    return out


def _block_bootstrap(
    use: np.ndarray, a: np.ndarray, y: np.ndarray, w: np.ndarray, block: int, n: int, seed: int
) -> np.ndarray:
    """The spread of the fitted means over resamples of the map's blocks."""
    rows, cols = np.nonzero(use)
    ids = (rows // block) * (-(-use.shape[1] // block)) + cols // block
    _, inverse = np.unique(ids, return_inverse=True)
    n_blocks = int(inverse.max()) + 1
    if n_blocks < 2 or n < 2:
        return np.full(a.shape[1], np.nan)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(n_blocks + 1))
    members = [order[bounds[k] : bounds[k + 1]] for k in range(n_blocks)]
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(n):
        pick = np.concatenate([members[k] for k in rng.integers(0, n_blocks, n_blocks)])
        found.append(_solve(a[pick], y[pick], w[pick]))
    return np.std(np.asarray(found), axis=0, ddof=1)


def unmixed_rows(
    m: Any,
    shares: np.ndarray,
    known: np.ndarray,
    names: list[str],
    coverage: list[float],
    **options: Any,
) -> list[dict[str, Any]]:
    """The rows of ``feature_statistics.csv`` of the unmixed per-class means of the map
    ``m`` (a :class:`~anodemap.correlate.statistics.Measured` of values): quantity
    ``QUANTITY_unmixed``, one row per class of ``names`` (the shares' order), with the
    class's share of the survey the map covers (``coverage``).

    ``se`` is the block bootstrap's (neighbouring pixels vary together: the fit's own,
    ``se_fit``, was 3-5 times smaller for the dendrite-like class on the simulated
    region); ``effective_pixels`` the class's pixel-equivalents; ``note`` why a class
    has no value; ``systematic`` the share-weighted mean calibration 1σ.

    Examples
    --------
    >>> from anodemap.correlate.statistics import Measured
    >>> s = np.zeros((6, 6, 2)); s[:, :3, 0] = 1; s[:, 3:, 1] = 1
    >>> v = np.where(s[..., 0] > 0, 1.0, 2.0)
    >>> rows = unmixed_rows(Measured("x", "", v, np.ones((6, 6), bool)), s,
    ...                     np.ones((6, 6), bool), ["a", "b"], [1.0, 1.0], min_pixels=5)
    >>> [(r["group"], r["quantity"], round(r["value"], 3)) for r in rows]
    [('a', 'x_unmixed', 1.0), ('b', 'x_unmixed', 2.0)]
    """
    u = unmix(m.values, m.valid, shares, sigma=m.sigma, known=known, **options)
    use = known & np.asarray(m.valid, bool)
    rows = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {
            "group_kind": "class",
            "group": name,
            "class": name,
            "region": None,
            "quantity": f"{m.quantity}_unmixed",
            "units": m.units,
            "pixels": int((known & (shares[..., i] > 0)).sum()),
            "flagged": int((known & ~use & (shares[..., i] > 0)).sum()),
            "counted": int((use & (shares[..., i] > 0)).sum()),
            "effective_pixels": float(u.effective_pixels[i]),
            "coverage": coverage[i],
            "value": float(u.mean[i]),
            "se": float(u.se_bootstrap[i]),
            "se_fit": float(u.se_fit[i]),
            "map_sigma": float(u.map_sigma[i]),
            "systematic": float("nan"),
            **dict(zip(("std", "p05", "median", "p95"), map(float, u.spread[i]), strict=True)),
            "note": "",
        }
        if not u.estimable[i]:
            row["note"] = _why_not(
                u,
                i,
                options.get("min_pixels", 20.0),
                options.get("max_flagged_share", MAX_FLAGGED_SHARE),
            )
        elif m.systematic is not None:
            weight = shares[..., i] * use
            sys_ = np.asarray(m.systematic, float)
            ok = weight > 0
            ok &= np.isfinite(sys_)
            if ok.any():
                row["systematic"] = float(np.average(sys_[ok], weights=weight[ok]))
        rows.append(row)
    return rows


def _why_not(u: Unmixed, i: int, min_pixels: float, max_flagged: float) -> str:
    if np.isfinite(u.flagged_share[i]) and u.flagged_share[i] > max_flagged:
        return (
            f"not estimable: the map has no value in {100 * u.flagged_share[i]:.0f} % of "
            "this class's share"
        )
    return (
        f"not estimable: {u.effective_pixels[i]:.1f} pixel-equivalents of this class "
        f"(fewer than {min_pixels:g})"
    )
