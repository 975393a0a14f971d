"""Reading an EDX spectrum image with the images recorded beside it, and its metadata.

A Bruker .bcf or a Velox .emd holds the spectrum image and the HAADF (or other) image of
the same scan: :func:`load_edx` returns the spectra as an :class:`EDXDataset` that
keeps those images, so that they are written with the maps.

Examples
--------
>>> ds = load_edx("test_TEM.bcf")                      # doctest: +SKIP
>>> [im.title for im in ds.images]                     # doctest: +SKIP
['HAADF']
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.io import Dataset
from anodemap.io.scan_images import ScanDataset, images_of_scan

__all__ = [
    "EDXDataset",
    "beam_energy_kev",
    "energy_axis_ev",
    "file_lines",
    "fwhm_mn_ka_from_file",
    "load_edx",
]

_TO_EV = {"ev": 1.0, "kev": 1e3}


class EDXDataset(ScanDataset):
    """An EDX spectrum image and the images of the same scan read with it
    (:class:`anodemap.io.scan_images.ScanDataset`)."""


def load_edx(path: str | Path, *, signal: int | str | None = None) -> EDXDataset:
    """The EDX spectra of ``path`` (lazy) with the images of the same scan.

    Raises
    ------
    AnodemapInputError
        The signal chosen (or the file's only one) is not X-ray spectra (the message says
        what it is and names ``--signal`` where the file holds several).
    """
    from anodemap.io import kinds, load_all
    from anodemap.io.files import load

    items = load_all(path, lazy=True)
    ds = load(path, lazy=True, signal=signal, kind=kinds.edx_spectra, signal_type="EDS_TEM")
    images = images_of_scan(items, ds.nav_shape)
    return EDXDataset(ds.data, ds.axes, ds.metadata, ds.original_metadata, images)


def _instrument(ds: Dataset) -> dict[str, Any]:
    root = ds.get_meta("Acquisition_instrument", {}) or {}
    for key in ("TEM", "SEM"):
        if isinstance(root.get(key), dict):
            return root[key]
    return {}


def fwhm_mn_ka_from_file(ds: Dataset) -> float | None:
    """The detector's FWHM at Mn Ka (eV) the file records, or None."""
    value = (_instrument(ds).get("Detector", {}) or {}).get("EDS", {}) or {}
    value = value.get("energy_resolution_MnKa")
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def beam_energy_kev(ds: Dataset) -> float | None:
    """The beam energy (keV) the file records, or None."""
    try:
        v = float(_instrument(ds).get("beam_energy"))
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def file_lines(ds: Dataset) -> list[str]:
    """The X-ray lines or elements the file names (``Sample.xray_lines``, else
    ``Sample.elements``), as the acquisition software or exspy recorded them."""
    sample = ds.get_meta("Sample", {}) or {}
    for key in ("xray_lines", "elements"):
        value = sample.get(key)
        if value is not None and len(value):
            return [str(v) for v in np.atleast_1d(value)]
    return []


def energy_axis_ev(ds: Dataset) -> np.ndarray:
    """The channel energies of the spectra in eV (the axis is in eV or keV)."""
    ax = ds.sig_axes[0]
    return ax.values * _TO_EV[ax.units.strip().lower()]
