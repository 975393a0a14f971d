"""Registration of the maps of one region: HAADF survey, EELS and EDX spectrum images,
virtual images of a diffraction scan, each with its own pixel size, field of view,
scan rotation and drift (docs/registration.md).

One responsibility per module:

- :mod:`~anodemap.registration.transform`: the transform between two pixel grids;
- :mod:`~anodemap.registration.contrast`: what of an image is compared;
- :mod:`~anodemap.registration.ncc`: masked normalised cross-correlation;
- :mod:`~anodemap.registration.coarse`: rotation and shift, the first estimate;
- :mod:`~anodemap.registration.refine`: Gauss-Newton refinement to sub-pixel;
- :mod:`~anodemap.registration.quality`: the shifts left, tile by tile;
- :mod:`~anodemap.registration.register`: the steps together;
- :mod:`~anodemap.registration.resample`: maps into the reference frame, flagged
  where they have no value.

Examples
--------
>>> import numpy as np
>>> from scipy import ndimage
>>> rng = np.random.default_rng(0)
>>> survey = ndimage.gaussian_filter(rng.random((120, 120)), 2.0)
>>> truth = Transform.similarity(1.0, 3.0, (-30.0, -25.0))
>>> small = ndimage.map_coordinates(survey, truth.inverse().grid((60, 60)), order=3)
>>> reg = register(survey, small, reference_pixel_nm=1.0, moving_pixel_nm=1.0)
>>> round(reg.transform.rotation_deg, 2)
3.0
>>> values, inside = resample(small, reg.transform, survey.shape)
>>> ok = inside & np.isfinite(values)
>>> bool(np.corrcoef(values[ok], survey[ok])[0, 1] > 0.99)
True
"""

from anodemap.registration.register import Registration, register
from anodemap.registration.resample import OUTSIDE, resample, resample_labels
from anodemap.registration.transform import MODELS, Transform

__all__ = [
    "MODELS",
    "OUTSIDE",
    "Registration",
    "Transform",
    "register",
    "resample",
    "resample_labels",
]
