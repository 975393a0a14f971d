"""Images recorded with a spectrum image: the simultaneous HAADF/ADF of the same scan.

A Velox ``.emd`` or a Bruker ``.bcf`` holds the spectra and the image(s) taken pixel by
pixel with them; DigitalMicrograph writes the simultaneous ADF to a file of its own. An
analysis of the spectra keeps those images beside its maps (``haadf.hspy``,
``adf.hspy``, ``image_1.hspy``, ...): they are what the maps are registered by onto a
survey image (:mod:`anodemap.correlate`), and what a microscopist checks them against.

Examples
--------
>>> import numpy as np
>>> from anodemap.io import Axis, Dataset
>>> adf = Dataset(np.zeros((4, 5)), [Axis("y", 4, navigate=False), Axis("x", 5, navigate=False)])
>>> adf.set_meta("General.title", "HAADF")
>>> image_names([adf])
['haadf']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anodemap.errors import AnodemapInputError
from anodemap.io.dataset import Dataset

__all__ = [
    "MAX_IMAGES",
    "ScanDataset",
    "image_names",
    "image_stems",
    "images_of_scan",
    "read_scan_image",
]

#: At most this many images are kept with a spectrum image (a file may hold many frames).
MAX_IMAGES = 8


@dataclass
class ScanDataset(Dataset):
    """A spectrum image and the images of the same scan read with it.

    Attributes
    ----------
    images : list of Dataset
        Images (HAADF, ADF, BF, ...) whose shape is the scan's, in the file's order.
    """

    images: list[Dataset] = field(default_factory=list)


def images_of_scan(items: list[Dataset], nav_shape: tuple[int, ...]) -> list[Dataset]:
    """The single images among ``items`` (the signals of one file) whose shape is the
    scan's ``nav_shape`` (2-D scans only: a line scan has no image)."""
    nav = tuple(nav_shape)
    if len(nav) != 2:
        return []
    return [
        im for im in items if len(im.sig_shape) == 2 and not im.nav_shape and im.sig_shape == nav
    ]


def image_names(images: list[Dataset]) -> list[str]:
    """File stems of the images kept with a spectrum image: ``haadf`` for the (first)
    image titled HAADF, ``adf`` for the first other one titled ADF or DF, ``image_1``,
    ``image_2``, ... for the rest (at most :data:`MAX_IMAGES`)."""
    names: list[str] = []
    k = 0
    for im in images[:MAX_IMAGES]:
        title = im.title.lower()
        if "haadf" in title and "haadf" not in names:
            names.append("haadf")
        elif ("adf" in title or title.split()[:1] == ["df"]) and "adf" not in names:
            names.append("adf")
        else:
            k += 1
            names.append(f"image_{k}")
    return names


def image_stems() -> list[str]:
    """Every stem :func:`image_names` may give (for the checks before a run)."""
    return ["haadf", "adf", *(f"image_{k}" for k in range(1, MAX_IMAGES + 1))]


def read_scan_image(path: str | Path, nav_shape: tuple[int, ...], option: str) -> Dataset:
    """The image in the file ``path`` (given with ``option``) recorded with a scan of
    ``nav_shape``: its one image of that shape.

    Raises
    ------
    AnodemapInputError
        No image of the scan's shape in the file, or several (the message says which
        shapes it holds and what to give instead).
    """
    from anodemap.io import load_all

    if len(nav_shape) != 2:  # a single spectrum or a line scan has no image of its scan
        shape = " x ".join(map(str, nav_shape)) or "a single spectrum"
        raise AnodemapInputError(
            f"{option} {path}: the spectra are {shape}, not a 2-D scan: an image recorded "
            f"with them has no scan to match; leave {option} out"
        )
    items = load_all(path, lazy=False)
    found = images_of_scan(items, nav_shape)
    if not found:
        shapes = ", ".join(f"{d.title or 'untitled'} {d.nav_shape + d.sig_shape}" for d in items)
        raise AnodemapInputError(
            f"{option} {path}: no image of the scan's {nav_shape[0]} x {nav_shape[1]} pixels "
            f"in it (it holds {shapes}); give the image recorded with this spectrum image"
        )
    if len(found) > 1:
        titles = ", ".join(repr(d.title) for d in found)
        raise AnodemapInputError(
            f"{option} {path}: {len(found)} images of the scan's shape ({titles}); save the "
            "one recorded with the spectra on its own and give that file"
        )
    return found[0]
