"""Inverse pole figure (IPF) colours of orientation maps, as ASTAR and EBSD software draw them.

An IPF map colours each pixel by the crystal direction that lies along a chosen sample
direction (by default the beam, sample Z), reduced into the fundamental sector of the
crystal's Laue group. For the cubic Laue class m-3m (Si, Fd-3m; Li15Si4, I-43d) the sector
is the standard stereographic triangle [001]-[101]-[111], coloured red-green-blue at its
corners.

Conventions: Euler angles are Bunge (φ1, Φ, φ2) in degrees and passive, as in orix and
the .ang files anodemap writes: the matrix ``g = Rz(φ2) Rx(Φ) Rz(φ1)`` takes sample
coordinates to crystal coordinates, so the crystal direction along sample Z is the third
column of ``g``, ``(sin φ2 sin Φ, cos φ2 sin Φ, cos Φ)``.

The colour key is the simple linear one: for a direction ``(h, k, l)`` in the sector
(``l >= h >= k >= 0``, unit length) the colour is ``(l - h, h - k, k)`` scaled so its largest
component is 1 (a choice; TSL/orix keys shade the interior differently, the corners and
edges agree).

Examples
--------
>>> import numpy as np

from anodemap.diffraction.templates import orientation_matrix
>>> from anodemap.diffraction.ipf import ipf_colours, sample_direction_in_crystal
>>> d = sample_direction_in_crystal(np.array([[0.0, 0.0, 0.0], [0.0, 45.0, 0.0]]))
>>> np.round(d, 3)
array([[0.   , 0.   , 1.   ],
       [0.   , 0.707, 0.707]])
>>> np.round(ipf_colours(d), 3)
array([[1., 0., 0.],
       [0., 1., 0.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anodemap.diffraction.templates import orientation_matrix

__all__ = [
    "sample_direction_in_crystal",
    "reduce_to_cubic_sector",
    "ipf_colours",
    "ipf_key_image",
    "draw_ipf_key",
    "SUPPORTED_LAUE",
]

#: Laue classes with an IPF colour key here.
SUPPORTED_LAUE = ("m-3m",)


def sample_direction_in_crystal(
    euler_deg: np.ndarray, direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """The crystal direction (unit vector, crystal Cartesian frame) along a sample direction.

    Parameters
    ----------
    euler_deg : ndarray, shape (..., 3)
        Bunge Euler angles (φ1, Φ, φ2) in degrees, passive (as orix).
    direction : 3 floats
        The sample direction; default Z, the beam direction of a scan.

    Returns
    -------
    ndarray, shape (..., 3)
        NaN where the angles are not finite.
    """
    d = np.asarray(direction, dtype=float)
    d = d / np.linalg.norm(d)
    v = orientation_matrix(euler_deg) @ d
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def reduce_to_cubic_sector(vectors: np.ndarray) -> np.ndarray:
    """Map directions into the m-3m standard triangle ``l >= h >= k >= 0``.

    The 48 operations of m-3m permute the Cartesian components and change their signs,
    so the symmetric equivalent in the sector is the sorted absolute values.

    Parameters
    ----------
    vectors : ndarray, shape (..., 3)

    Returns
    -------
    ndarray, shape (..., 3)
        ``(h, k, l)`` with ``l >= h >= k >= 0``.
    """
    a = np.sort(np.abs(np.asarray(vectors, dtype=float)), axis=-1)  # k <= h <= l
    return np.stack([a[..., 1], a[..., 0], a[..., 2]], axis=-1)


def ipf_colours(vectors: np.ndarray, laue: str = "m-3m") -> np.ndarray:
    """RGB colours (0..1) of crystal directions: red [001], green [101], blue [111].

    Parameters
    ----------
    vectors : ndarray, shape (..., 3)
        Crystal directions (e.g. from :func:`sample_direction_in_crystal`).
    laue : str
        Laue class; only ``"m-3m"`` has a key here.

    Returns
    -------
    ndarray, shape (..., 3)
        NaN for non-finite directions.
    """
    if laue not in SUPPORTED_LAUE:
        raise ValueError(f"no IPF colour key for Laue class {laue!r}; have {SUPPORTED_LAUE}")
    v = np.asarray(vectors, dtype=float)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    h, k, l_ = np.moveaxis(reduce_to_cubic_sector(v), -1, 0)
    rgb = np.stack([l_ - h, h - k, k], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rgb = rgb / rgb.max(axis=-1, keepdims=True)
    return np.clip(rgb, 0.0, 1.0)


def ipf_key_image(size: int = 200, laue: str = "m-3m") -> tuple[np.ndarray, tuple[float, ...]]:
    """The colour key: the standard triangle in stereographic projection as an RGBA image.

    Returns
    -------
    rgba : ndarray, shape (size, size, 4)
        Transparent outside the triangle; row 0 at the top.
    extent : (x0, x1, y0, y1)
        For ``imshow(..., extent=extent)``, in stereographic coordinates (X = h/(1+l),
        Y = k/(1+l)); [001] at (0, 0), [101] at (0.414, 0), [111] at (0.366, 0.366).
    """
    x_max = np.sqrt(2.0) - 1.0  # [101]
    y_max = 1.0 / (1.0 + np.sqrt(3.0))  # [111]
    xs = np.linspace(0.0, x_max, size)
    ys = np.linspace(y_max, 0.0, size)
    X, Y = np.meshgrid(xs, ys)
    r2 = X**2 + Y**2
    # inverse stereographic projection from the south pole
    d = np.stack([2 * X, 2 * Y, 1.0 - r2], axis=-1) / (1.0 + r2)[..., None]
    h, k, l_ = d[..., 0], d[..., 1], d[..., 2]
    inside = (k >= -1e-9) & (h >= k - 1e-9) & (l_ >= h - 1e-9)
    rgba = np.zeros((size, size, 4))
    rgba[..., :3] = ipf_colours(d, laue)
    rgba[..., 3] = inside
    rgba[~inside, :3] = 1.0
    return rgba, (0.0, float(x_max), 0.0, float(y_max))


def draw_ipf_key(ax: Any, laue: str = "m-3m", direction_label: str = "Z") -> None:
    """Draw the colour key with its corner labels into ``ax`` (no frame, equal aspect)."""
    rgba, extent = ipf_key_image(laue=laue)
    ax.imshow(rgba, extent=extent, origin="upper", interpolation="bilinear")
    x101, y111 = extent[1], extent[3]
    kw = {"fontsize": 7, "ha": "center", "va": "top"}
    ax.text(0.0, -0.02, "001", **kw)
    ax.text(x101, -0.02, "101", **kw)
    ax.text(y111, y111 + 0.01, "111", fontsize=7, ha="center", va="bottom")
    ax.set_title(f"IPF-{direction_label}", fontsize=8)
    ax.set_xlim(-0.05, x101 + 0.05)
    ax.set_ylim(-0.08, y111 + 0.08)
    ax.set_aspect("equal")
    ax.axis("off")
