"""Diffraction intensities by Debye scattering from atomistic models, for the PDF tests.

An independent forward model: the intensity is summed over the model's pair distances
(Debye 1915), not built from the reduced intensity that anodemap.pdf inverts.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist

from anodemap.pdf import electron_scattering_factor

A_SI = 5.431  # Å, lattice parameter of diamond Si (the truth)
# first three neighbour distances of diamond Si: a√3/4, a/√2, a√11/4
R1, R2, R3 = A_SI * np.sqrt(3) / 4, A_SI / np.sqrt(2), A_SI * np.sqrt(11) / 4


def diamond_cluster(radius: float) -> np.ndarray:
    """Diamond-Si atoms within ``radius`` Å of a point off the lattice sites."""
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    basis = np.concatenate([fcc, fcc + 0.25])
    n = np.arange(-4, 5)
    cells = np.stack(np.meshgrid(n, n, n, indexing="ij"), -1).reshape(-1, 3)
    pos = ((cells[:, None, :] + basis[None]) * A_SI).reshape(-1, 3) - 0.125 * A_SI
    return pos[np.linalg.norm(pos, axis=1) <= radius]


def debye(pos: np.ndarray, s: np.ndarray, sigma_pair: float = 0.0) -> np.ndarray:
    """Debye intensity of Si atoms at ``pos`` (Å²), pair distances binned at 0.001 Å.

    ``sigma_pair`` (Å) damps the interference term by exp(-B s²), B = 2π²σ² (a Gaussian
    spread of every pair distance: a Debye-Waller-like factor).
    """
    d = pdist(pos)
    edges = np.arange(0.0, d.max() + 0.002, 0.001)
    h, _ = np.histogram(d, edges)
    rc = 0.5 * (edges[1:] + edges[:-1])
    m = h > 0
    f = electron_scattering_factor("Si", s)
    interference = 2.0 * (np.sinc(2.0 * np.outer(s, rc[m])) @ h[m])  # i ≠ j, both orders
    damping = np.exp(-2.0 * np.pi**2 * sigma_pair**2 * s**2)
    return f**2 * (len(pos) + interference * damping)
