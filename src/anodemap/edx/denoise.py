"""Poisson-weighted PCA of an EDX spectrum image (Keenan & Kotula 2004), as an operator.

The counts D (pixels x channels) are scaled as Keenan and Kotula scale them,
D_ij / (sqrt(a_i) sqrt(b_j)), with a_i the counts of pixel i and b_j those of channel j
(both over the channels analysed; a zero sum is taken as 1, as HyperSpy does), so that
Poisson noise becomes about uniform (variance 1 / total counts in every entry). The
scaled matrix's right singular vectors are the eigenvectors of its Gram matrix
Σ_i x_iᵀ x_i (channels x channels), accumulated chunk by chunk: one pass over the data,
memory of one chunk plus the Gram matrix, an exact (not randomized) SVD of the unfolded
matrix. HyperSpy's ``decomposition(normalize_poissonian_noise=True)`` (centre None, SVD)
computes the same factors.

Keeping k components and unscaling reconstructs pixel i as
ŷ_i = ((y_i / sqrt(b)) V_kᵀ V_k) sqrt(b): its own scale sqrt(a_i) cancels, so the
denoised spectrum is a fixed *linear* map of the pixel's own counts, ŷ = y P with
P = diag(1/sqrt(b)) V_kᵀ V_k diag(sqrt(b)). Any linear estimator applied to the
denoised spectra (the fit's H, the windows' matrix) is then one operator again (H Pᵀ),
and its 1σ is the Poisson variance of the pixel's raw counts propagated through it,
*given the components*: it leaves out the components' own noise (estimated from all
pixels) and the bias of what the k components cannot represent. It is not the Poisson
1σ of the raw counts: the denoised 1σ maps are smaller and correlated between pixels.

The number of components: given, or ``auto``: the components whose singular value lies
above the largest singular value of pure Poisson noise of the same matrix, measured
(Horn's parallel analysis, Horn 1965, with a Poisson null): a noise matrix with the
expectation a_i b_j / T (rank one, T the total counts) is drawn with a fixed seed, scaled
the same way, and its second singular value (its first is the rank-one mean) is the
noise level. A component needs ``AUTO_MARGIN`` times that level to be kept.

References
----------
.. [1] M. R. Keenan and P. G. Kotula, "Accounting for Poisson noise in the multivariate
   analysis of ToF-SIMS spectrum images", Surf. Interface Anal. 36 (2004) 203-212.
.. [2] J. L. Horn, "A rationale and test for the number of factors in factor
   analysis", Psychometrika 30 (1965) 179-185.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> shapes = np.abs(rng.normal(size=(2, 40))) + 0.1
>>> data = rng.poisson(rng.uniform(5, 50, (30, 30, 2)) @ shapes)
>>> pca = poisson_pca(data, np.arange(40), n_components="auto")
>>> pca.n_components
2
>>> pca.projector().shape
(40, 40)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AUTO_MARGIN", "PoissonPCA", "poisson_pca"]

# a component is signal when its singular value exceeds the Poisson noise's largest by
# this factor (model choice: the null's top singular value varies by about 1 % between
# seeds on 64 x 64 maps; 1.1 leaves room for that and for non-uniform noise)
AUTO_MARGIN = 1.1
_NULL_SEED = 20040203  # fixed: the same data give the same number of components
_CHUNK_BYTES = 16 * 2**20


@dataclass
class PoissonPCA:
    """The Keenan–Kotula PCA of a spectrum image over a set of channels.

    Attributes
    ----------
    channels : ndarray of int
        The channels analysed (indices into the spectrum).
    sqrt_b : ndarray (n_channels,)
        Square roots of the channels' total counts (1 where a channel has none).
    components : ndarray (n_channels, n_channels)
        Right singular vectors of the scaled matrix, one per row, strongest first.
    singular_values : ndarray (n_channels,)
        Of the scaled matrix, descending.
    n_components : int
        How many are kept.
    noise_level : float or None
        The largest singular value of the Poisson null (``auto``), else None.
    criterion : str
        ``"given"`` or ``"auto"`` (parallel analysis).
    """

    channels: np.ndarray
    sqrt_b: np.ndarray
    components: np.ndarray
    singular_values: np.ndarray
    n_components: int
    noise_level: float | None
    criterion: str

    def projector(self) -> np.ndarray:
        """P (n_channels x n_channels): denoised spectra = spectra[:, channels] @ P."""
        v = self.components[: self.n_components]
        return (v.T @ v) * (self.sqrt_b[None, :] / self.sqrt_b[:, None])

    def denoise(self, spectra: np.ndarray) -> np.ndarray:
        """The denoised spectra ``(n, n_channels)`` of the rows of ``spectra`` (all
        channels)."""
        return np.asarray(spectra, dtype=np.float64)[:, self.channels] @ self.projector()

    def summary(self) -> dict[str, Any]:
        """For ``summary.json``."""
        n = min(self.singular_values.size, max(2 * self.n_components, 10))
        return {
            "n_components": int(self.n_components),
            "criterion": self.criterion,
            "noise_singular_value": self.noise_level,
            "singular_values": [float(s) for s in self.singular_values[:n]],
            "n_channels": int(self.channels.size),
        }


def _blocks(data: Any, channels: np.ndarray):
    """Row blocks ``(n, n_channels)`` of float64 counts (NaN, infinite or negative as 0,
    as flagged pixels are elsewhere)."""
    ny, nx = data.shape[:2]
    rows = max(1, _CHUNK_BYTES // max(nx * channels.size * 8, 1))
    lazy = type(data).__module__.startswith("dask")
    for i in range(0, ny, rows):
        block = data[i : i + rows]
        if lazy:
            block = block[..., channels].compute()
            y = np.asarray(block, dtype=np.float64)
        else:
            y = np.asarray(block[..., channels], dtype=np.float64)
        y = y.reshape(-1, channels.size)
        bad = ~np.isfinite(y).all(axis=1) | (np.where(np.isfinite(y), y, 0.0) < 0).any(axis=1)
        y[bad] = 0.0
        yield y


def _gram(blocks, sqrt_b: np.ndarray) -> tuple[np.ndarray, float]:
    """Σ xᵀx of the scaled rows, and the total counts."""
    n = sqrt_b.size
    gram = np.zeros((n, n))
    total = 0.0
    for y in blocks:
        a = y.sum(axis=1)
        total += float(a.sum())
        x = y / (np.sqrt(np.where(a > 0, a, 1.0))[:, None] * sqrt_b[None, :])
        gram += x.T @ x
    return gram, total


def _eig(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, v = np.linalg.eigh(gram)
    order = np.argsort(w)[::-1]
    w, v = w[order], v[:, order]
    # a fixed sign (largest loading positive), as the result must not flip between runs
    flip = np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(v.shape[1])])
    v = v * np.where(flip == 0, 1.0, flip)[None, :]
    return np.sqrt(np.clip(w, 0.0, None)), v.T


def _null_level(pixel_counts: np.ndarray, b: np.ndarray) -> float:
    """Second singular value of a Poisson matrix with expectation a_i b_j / T."""
    rng = np.random.default_rng(_NULL_SEED)
    total = b.sum()
    share = b / total
    sqrt_b = np.sqrt(np.where(b > 0, b, 1.0))
    rows = max(1, _CHUNK_BYTES // max(b.size * 8, 1))

    def draws():
        for i in range(0, pixel_counts.size, rows):
            a = pixel_counts[i : i + rows]
            yield rng.poisson(a[:, None] * share[None, :]).astype(np.float64)

    gram, _ = _gram(draws(), sqrt_b)
    s, _ = _eig(gram)
    return float(s[1]) if s.size > 1 else 0.0


def poisson_pca(data: Any, channels: np.ndarray, n_components: int | str = "auto") -> PoissonPCA:
    """The Keenan–Kotula PCA of ``data`` (``(ny, nx, E)``, numpy or dask) over
    ``channels``, keeping ``n_components`` (an int, or ``"auto"``).

    Parameters
    ----------
    data : array (ny, nx, E)
        Counts; read twice in row blocks (channel sums, then the Gram matrix), three
        times with ``"auto"`` (pixel sums for the null).
    channels : ndarray of int
        The channels to analyse (those the fit or the windows use).
    n_components : int or "auto"

    Returns
    -------
    PoissonPCA

    Examples
    --------
    >>> d = np.random.default_rng(1).poisson(5.0, (10, 10, 8))
    >>> poisson_pca(d, np.arange(8), 1).projector().shape
    (8, 8)
    """
    channels = np.asarray(channels, dtype=int)
    b = np.zeros(channels.size)
    pixel_counts = []
    for y in _blocks(data, channels):
        b += y.sum(axis=0)
        pixel_counts.append(y.sum(axis=1))
    sqrt_b = np.sqrt(np.where(b > 0, b, 1.0))
    gram, _ = _gram(_blocks(data, channels), sqrt_b)
    s, v = _eig(gram)
    if n_components == "auto":
        level = _null_level(np.concatenate(pixel_counts), b)
        k = max(1, int(np.sum(s > AUTO_MARGIN * level)))
        criterion: str = "auto"
    else:
        k, level, criterion = int(n_components), None, "given"
        if not 1 <= k <= channels.size:
            from anodemap.errors import AnodemapInputError

            raise AnodemapInputError(
                f"--pca {k}: give 1 to {channels.size} components (the channels analysed), "
                "or --pca auto"
            )
    return PoissonPCA(channels, sqrt_b, v, s, k, level, criterion)
