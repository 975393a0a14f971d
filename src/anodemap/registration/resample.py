"""Maps of one region resampled into the frame of a reference map.

Every pixel of the reference frame gets the value the other map shows at the same
point of the specimen (the registration's transform): class labels and status codes
from the nearest pixel, values by linear interpolation over the neighbours that carry a
value (a flagged neighbour gives nothing and takes nothing). Reference pixels outside
the other map, and those whose nearest pixel of it is flagged, are flagged in turn:
never filled.

Examples
--------
>>> import numpy as np
>>> from anodemap.registration.transform import Transform, within
>>> values = np.arange(12.0).reshape(3, 4); values[1, 1] = np.nan
>>> out, inside = resample(values, Transform.similarity(1.0, 0.0, (0.0, 0.5)), (3, 5))
>>> inside.tolist()[0], out[0, :2].tolist()
([True, True, True, True, False], [0.5, 1.5])
>>> bool(np.isnan(out[1, 1]) or np.isnan(out[1, 0]))   # next to the flagged pixel
True
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from anodemap.registration.transform import Transform, within

__all__ = ["OUTSIDE", "resample", "resample_labels"]

#: The code of a reference pixel outside the other map in a resampled label/status map.
OUTSIDE = 255


def resample(
    values: np.ndarray,
    transform: Transform,
    shape: tuple[int, int],
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A value map into the reference frame, by linear interpolation.

    Parameters
    ----------
    values : ndarray (my, mx)
        The map (NaN: no value).
    transform : Transform
        Reference pixel → pixel of ``values``.
    shape : (int, int)
        The reference frame.
    valid : ndarray of bool, optional
        Pixels of ``values`` that carry a value (default: the finite ones).

    Returns
    -------
    resampled : ndarray of float64, shape ``shape``
        NaN outside the map and where its nearest pixel has no value.
    inside : ndarray of bool
        Reference pixels inside the map's field of view.
    """
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) if valid is None else (np.asarray(valid, bool) & np.isfinite(v))
    coords = transform.grid(shape)
    inside = within(coords, v.shape)
    near = ndimage.map_coordinates(ok.astype(np.uint8), coords, order=0, mode="nearest") > 0
    weight = ndimage.map_coordinates(ok.astype(float), coords, order=1, mode="nearest")
    total = ndimage.map_coordinates(np.where(ok, v, 0.0), coords, order=1, mode="nearest")
    out = np.full(shape, np.nan)
    keep = inside & near & (weight > 0)
    out[keep] = total[keep] / weight[keep]
    return out, inside


def resample_labels(
    labels: np.ndarray, transform: Transform, shape: tuple[int, int], outside: int = OUTSIDE
) -> tuple[np.ndarray, np.ndarray]:
    """A label or status map into the reference frame: the nearest pixel's code,
    ``outside`` (:data:`OUTSIDE`, 255) outside the map; the map's integer type kept.

    Returns
    -------
    resampled : ndarray
    inside : ndarray of bool
    """
    lab = np.asarray(labels)
    coords = transform.grid(shape)
    inside = within(coords, lab.shape)
    out = ndimage.map_coordinates(lab.astype(np.int64), coords, order=0, mode="nearest")
    return np.where(inside, out, outside).astype(lab.dtype), inside
