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


def debye_scan(
    intensities: list[np.ndarray],
    s: np.ndarray,
    labels: np.ndarray,
    *,
    size: int = 96,
    scale: float = 0.045,
    counts_at_edge: float = 30.0,
    descan_px: float = 1.5,
    seed: int = 0,
    calibration_error: float = 1.0,
    ellipse: tuple[float, float] | None = None,
):
    """A 4D scan whose pattern at each position is ``intensities[labels[y, x]]`` (I(s) on
    ``s``) drawn on a ``size`` x ``size`` detector of ``scale`` 1/Å per pixel around a
    direct beam that moves by up to ``descan_px``, with Poisson noise (``counts_at_edge``
    expected counts per pixel at the detector's edge). The axes say ``calibration_error`` x
    ``scale`` (a camera length off by that factor). ``ellipse`` = (axis ratio, angle of
    the major axis in degrees): each ring drawn as an ellipse of that ratio and the same
    area (a projector-lens distortion). Returns an anodemap Dataset with calibrated axes
    and a 300 keV beam, and the true centres."""
    from anodemap.io import Axis, Dataset

    rng = np.random.default_rng(seed)
    ny, nx = labels.shape
    mid = (size - 1) / 2.0
    centres = mid + rng.uniform(-descan_px, descan_px, (ny, nx, 2))
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    edge = mid * scale
    data = np.empty((ny, nx, size, size), np.float32)
    for iy in range(ny):
        for ix in range(nx):
            cy, cx = centres[iy, ix]
            if ellipse is None:
                sr = np.hypot(yy - cy, xx - cx) * scale
            else:
                t = np.radians(ellipse[1])
                u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
                v = (yy - cy) * np.cos(t) - (xx - cx) * np.sin(t)
                sr = np.hypot(u / np.sqrt(ellipse[0]), v * np.sqrt(ellipse[0])) * scale
            prof = intensities[labels[iy, ix]]
            lam = np.interp(sr, s, prof) / np.interp(edge, s, prof) * counts_at_edge
            # a direct beam of a fifth of the scattered counts (a specimen, not vacuum)
            beam = lam.sum() / 5.0 / (2 * np.pi * 1.5**2) * np.exp(-0.5 * (sr / scale / 1.5) ** 2)
            data[iy, ix] = rng.poisson(lam + beam)
    cal = scale * calibration_error
    axes = [
        Axis("y", ny, 5.0, 0.0, "nm"),
        Axis("x", nx, 5.0, 0.0, "nm"),
        Axis("ky", size, cal, -mid * cal, "1/Å", navigate=False),
        Axis("kx", size, cal, -mid * cal, "1/Å", navigate=False),
    ]
    ds = Dataset(data, axes)
    ds.set_meta("Signal.signal_type", "electron_diffraction")
    ds.set_meta("Acquisition_instrument.TEM.beam_energy", 300.0)
    return ds, centres
