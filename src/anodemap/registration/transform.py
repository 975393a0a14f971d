"""Transforms between the pixel grids of two maps of one region.

A :class:`Transform` maps a pixel position ``(row, column)`` of one map (the *fixed*
or reference map) to the position in another map (the *moving* map) that shows the
same point of the specimen: ``m = A @ p + t``. Rows and columns are pixel indices
(pixel centres at whole numbers). A similarity has
``A = s [[cos ρ, -sin ρ], [sin ρ, cos ρ]]`` (scale ``s``: moving pixels per fixed
pixel; ``ρ``: the moving scan's rotation relative to the fixed one, in the sense of
:mod:`anodemap.synth`'s scan rotation); an affine ``A`` adds the shear and stretch that
a linear drift of the specimen during the scan gives.

Examples
--------
>>> t = Transform.similarity(scale=0.5, rotation_deg=90.0, shift=(10.0, 0.0))
>>> t.apply([[2.0, 0.0]]).round(6).tolist()
[[10.0, 1.0]]
>>> round(t.scale, 6), round(t.rotation_deg, 6)
(0.5, 90.0)
>>> t.inverse().apply(t.apply([[3.0, 4.0]])).round(6).tolist()
[[3.0, 4.0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MODELS", "Transform", "within"]

#: The transform models: a similarity (scale, rotation, shift) or an affine map.
MODELS = ("similarity", "affine")


@dataclass(frozen=True)
class Transform:
    """``moving = matrix @ fixed + shift`` for pixel positions ``(row, column)``.

    Attributes
    ----------
    matrix : ndarray (2, 2)
    shift : ndarray (2,)
    """

    matrix: np.ndarray
    shift: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "matrix", np.asarray(self.matrix, dtype=float).reshape(2, 2))
        object.__setattr__(self, "shift", np.asarray(self.shift, dtype=float).reshape(2))

    # -- construction
    @classmethod
    def identity(cls) -> Transform:
        """The transform that changes nothing."""
        return cls(np.eye(2), np.zeros(2))

    @classmethod
    def similarity(
        cls, scale: float = 1.0, rotation_deg: float = 0.0, shift: Any = (0.0, 0.0)
    ) -> Transform:
        """A similarity: ``scale`` moving pixels per fixed pixel, the moving scan rotated
        by ``rotation_deg``, then shifted by ``shift`` (rows, columns)."""
        r = math.radians(rotation_deg)
        a = scale * np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
        return cls(a, np.asarray(shift, dtype=float))

    @classmethod
    def from_parameters(cls, params: Any, model: str, centre: Any = (0.0, 0.0)) -> Transform:
        """The transform of :meth:`parameters` (about the fixed-frame point ``centre``)."""
        p = np.asarray(params, dtype=float)
        c = np.asarray(centre, dtype=float)
        if model == "similarity":
            alpha, beta, ty, tx = p
            a = np.array([[alpha, -beta], [beta, alpha]])
        elif model == "affine":
            a = p[:4].reshape(2, 2)
            ty, tx = p[4:]
        else:
            raise ValueError(f"model {model!r}: one of {', '.join(MODELS)}")
        return cls(a, np.array([ty, tx]) - a @ c)

    def parameters(self, model: str, centre: Any = (0.0, 0.0)) -> np.ndarray:
        """The free parameters of ``model``, linear in the mapped position: similarity
        ``(s cos ρ, s sin ρ, row, column)``, affine ``(A11, A12, A21, A22, row, column)``,
        where (row, column) is the image of the fixed-frame point ``centre``. A
        similarity's parameters of an affine transform are its nearest similarity's."""
        c = np.asarray(centre, dtype=float)
        at_centre = self.matrix @ c + self.shift
        a = self.matrix
        if model == "similarity":
            alpha = 0.5 * (a[0, 0] + a[1, 1])
            beta = 0.5 * (a[1, 0] - a[0, 1])
            return np.array([alpha, beta, *at_centre])
        if model == "affine":
            return np.array([*a.ravel(), *at_centre])
        raise ValueError(f"model {model!r}: one of {', '.join(MODELS)}")

    @classmethod
    def from_axes(cls, fixed_axes: Any, moving_axes: Any) -> Transform:
        """The transform that the two maps' calibrated axes give (scale and offsets, no
        rotation): a point at the same stage position in both. Axes are ``(y, x)`` with
        ``scale``, ``offset`` in one length unit (:func:`anodemap.registration.frames.
        pixel_size_nm` converts)."""
        (fy, fx), (my, mx) = fixed_axes, moving_axes
        a = np.diag([fy.scale / my.scale, fx.scale / mx.scale])
        t = np.array([(fy.offset - my.offset) / my.scale, (fx.offset - mx.offset) / mx.scale])
        return cls(a, t)

    # -- use
    def apply(self, points: Any) -> np.ndarray:
        """Map points ``(..., 2)`` (row, column) of the fixed map into the moving map."""
        p = np.asarray(points, dtype=float)
        return p @ self.matrix.T + self.shift

    def grid(self, shape: tuple[int, int]) -> np.ndarray:
        """The moving-map positions ``(2, ny, nx)`` of every pixel of a fixed map of
        ``shape`` (as :func:`scipy.ndimage.map_coordinates` takes them)."""
        r, c = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        a, t = self.matrix, self.shift
        return np.stack([a[0, 0] * r + a[0, 1] * c + t[0], a[1, 0] * r + a[1, 1] * c + t[1]])

    def inverse(self) -> Transform:
        """The transform from the moving map back to the fixed one."""
        inv = np.linalg.inv(self.matrix)
        return Transform(inv, -inv @ self.shift)

    def then(self, other: Transform) -> Transform:
        """This transform followed by ``other`` (fixed → this's moving → other's moving)."""
        return Transform(other.matrix @ self.matrix, other.matrix @ self.shift + other.shift)

    # -- description
    @property
    def scale(self) -> float:
        """Moving pixels per fixed pixel (the square root of the area ratio)."""
        return float(math.sqrt(abs(np.linalg.det(self.matrix))))

    @property
    def rotation_deg(self) -> float:
        """The rotation of the nearest similarity, degrees (−180 to 180)."""
        a = self.matrix
        return float(math.degrees(math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])))

    def distortion(self) -> float:
        """How far the matrix is from a similarity: the largest relative difference of
        its singular values plus its skew (0 for a similarity)."""
        u, s, vt = np.linalg.svd(self.matrix)
        return float((s[0] - s[1]) / s.mean())

    def to_dict(self) -> dict[str, Any]:
        """Matrix, shift, scale and rotation, for JSON."""
        return {
            "matrix": self.matrix.tolist(),
            "shift_px": self.shift.tolist(),
            "scale": self.scale,
            "rotation_deg": self.rotation_deg,
            "anisotropy": self.distortion(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transform:
        """The transform :meth:`to_dict` wrote."""
        return cls(np.asarray(d["matrix"]), np.asarray(d["shift_px"]))


def within(coords: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Whether positions ``coords`` (2, ...) (rows, columns) lie on a map of ``shape``:
    within half a pixel of its outer pixels' centres."""
    ny, nx = shape[:2]
    r, c = coords[0], coords[1]
    return (r >= -0.5) & (r <= ny - 0.5) & (c >= -0.5) & (c <= nx - 0.5)
