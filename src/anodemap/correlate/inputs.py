"""What ``anodemap correlate`` reads: the result folders of the other analyses of one
region, each as the image it is registered by and the maps it brings.

Each modality is registered by the image its data offer:

- the HAADF survey: the input image itself (the frame of the feature classes);
- EELS: the t/λ map (``thickness.hspy``). A spectrum image has no ADF image in
  anodemap's EELS result; t/λ rises with thickness and density as HAADF does (both are
  dark in pores, both follow the lamella's wedge), while the zero-loss intensity falls
  with it and the plasmon energy follows the composition, not the outlines;
- EDX: the HAADF (or other image) recorded with the spectra, kept by ``anodemap edx``
  (``haadf.hspy``, ``image_1.hspy``), else the X-ray counts (``counts.hspy``: thickness
  and mass, as HAADF);
- a diffraction scan: its virtual annular dark field (``virtual_adf.hspy``).

Examples
--------
>>> sorted(MAPS)
['diffraction', 'edx', 'eels']
>>> [layer.quantity for layer in MAPS["eels"]]
['li_si', 'plasmon_energy', 't_over_lambda', 'oxide_index']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.io import Axis

__all__ = ["IMAGES", "MAPS", "Layer", "LayerSpec", "Modality", "read_features", "read_modality"]


@dataclass(frozen=True)
class LayerSpec:
    """A map of a result folder and how it is counted.

    Attributes
    ----------
    file : str
        Its file in the folder (``li_si_ratio.hspy``).
    quantity : str
        Its name in the statistics (``li_si``).
    title, units : str
    kind : {"value", "label"}
        Values are interpolated, labels (phases) taken from the nearest pixel.
    status : str, optional
        The status map that says which pixels carry a value (``anodemap.status``: OK
        and the warnings that keep a value).
    sigma, systematic : str, optional
        Maps of its 1σ, and of its systematic (calibration) 1σ.
    optional : bool
        A result of an older version may lack it: then it is not read.
    """

    file: str
    quantity: str
    title: str
    units: str
    kind: str = "value"
    status: str | None = None
    sigma: str | None = None
    systematic: str | None = None
    optional: bool = False


#: The maps each modality brings, as its analysis writes them.
MAPS: dict[str, tuple[LayerSpec, ...]] = {
    "eels": (
        LayerSpec(
            "li_si_ratio.hspy",
            "li_si",
            "Li/Si",
            "Li per Si",
            status="li_si_status.hspy",
            sigma="li_si_uncertainty.hspy",
            systematic="li_si_calibration_uncertainty.hspy",
        ),
        LayerSpec(
            "plasmon_energy.hspy",
            "plasmon_energy",
            "plasmon energy",
            "eV",
            status="fit_status.hspy",
            sigma="plasmon_energy_uncertainty.hspy",
        ),
        LayerSpec("thickness.hspy", "t_over_lambda", "t/λ", "t/λ"),
        # the 42 eV oxide index (anodemap.eels.oxide_index): the O-rich boundaries
        LayerSpec("oxide_index.hspy", "oxide_index", "oxide index (42 eV)", "", optional=True),
    ),
    "edx": (
        LayerSpec(
            "O_Ka.hspy",
            "O_Ka",
            "O Kα",
            "counts",
            status="status.hspy",
            sigma="O_Ka_uncertainty.hspy",
        ),
        LayerSpec(
            "Si_Ka.hspy",
            "Si_Ka",
            "Si Kα",
            "counts",
            status="status.hspy",
            sigma="Si_Ka_uncertainty.hspy",
        ),
    ),
    "diffraction": (
        LayerSpec("phase.hspy", "phase", "phase", "", kind="label", status="match_status.hspy"),
    ),
}

# the image each modality is registered by, in order of preference: the simultaneous
# HAADF/ADF recorded with the spectra (anodemap.io.scan_images) where the result has it
IMAGES = {
    "eels": ("haadf.hspy", "adf.hspy", "thickness.hspy"),
    "edx": ("haadf.hspy", "adf.hspy", "image_1.hspy", "counts.hspy"),
    "diffraction": ("virtual_adf.hspy",),
}


@dataclass
class Layer:
    """One map of a modality, read."""

    spec: LayerSpec
    values: np.ndarray
    valid: np.ndarray
    sigma: np.ndarray | None = None
    systematic: np.ndarray | None = None
    legend: dict[str, str] | None = None


@dataclass
class Modality:
    """A modality of the region: its registration image and its maps, on its grid."""

    name: str
    folder: Path | None
    image: np.ndarray
    image_name: str
    pixel_nm: float
    axes: list[Axis]
    layers: list[Layer] = field(default_factory=list)
    statuses: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def _fail(option: str, folder: Path, why: str, name: str) -> AnodemapInputError:
    return AnodemapInputError(
        f"{option} {folder}: {why}; give the folder that anodemap {name} wrote "
        f"(anodemap {name} FILE -o DIR, then {option} DIR)"
    )


def _summary(folder: Path, option: str, name: str) -> dict[str, Any]:
    try:
        found = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _fail(option, folder, "no readable summary.json there", name) from None
    if not isinstance(found, dict):
        raise _fail(option, folder, "its summary.json is not a result's", name)
    return found


def _map(folder: Path, file: str, option: str, name: str) -> tuple[np.ndarray, list[Axis]]:
    """A 2-D map of the folder and its two axes in nm (square pixels)."""
    from anodemap.errors import AnodemapError
    from anodemap.features.calibration import is_calibrated, to_nm
    from anodemap.io import load

    path = folder / file
    if not path.exists():
        raise _fail(option, folder, f"no {file} there (is it a result of anodemap {name}?)", name)
    try:
        ds = load(path)
    except AnodemapError as err:
        raise _fail(option, folder, f"{file} cannot be read ({err})", name) from err
    data = np.asarray(ds.data)
    axes = [a for a in ds.axes if not a.navigate] or list(ds.axes)
    if data.ndim != 2 or len(axes) != 2:
        raise _fail(option, folder, f"{file} is not a 2-D map (shape {data.shape})", name)
    if not is_calibrated(axes):
        raise AnodemapInputError(
            f"{option} {folder}: {file} has no calibrated length axes (units "
            f"{axes[0].units!r}); give its input a pixel size and run anodemap {name} again"
        )
    nm = to_nm(axes)
    sy, sx = abs(nm[0].scale), abs(nm[1].scale)
    if abs(sy - sx) > 0.01 * max(sy, sx):
        raise AnodemapInputError(
            f"{option} {folder}: pixels of {sy:g} x {sx:g} nm; anodemap correlate needs square "
            "pixels (resample the input and run its analysis again)"
        )
    return data, nm


def read_modality(name: str, folder: str | Path, option: str) -> Modality:
    """The registration image and the maps of the result folder ``folder`` of the
    analysis ``name`` (``eels``, ``edx``, ``diffraction``), checked.

    Raises
    ------
    AnodemapInputError
        Not a complete result of that analysis (one line naming ``option``).
    """
    from anodemap.status import WARNINGS, Status

    folder = Path(folder)
    if not folder.is_dir():
        raise _fail(option, folder, "no such folder", name)
    summary = _summary(folder, option, name)
    image_file = next((f for f in IMAGES[name] if (folder / f).exists()), IMAGES[name][-1])
    image, axes = _map(folder, image_file, option, name)
    shape = image.shape
    good = {int(Status.OK), *(int(s) for s in WARNINGS)}
    mod = Modality(
        name,
        folder,
        np.asarray(image, float),
        image_file,
        abs(axes[0].scale),
        axes,
        summary=summary,
    )
    for spec in MAPS[name]:
        if spec.optional and not (folder / spec.file).exists():
            continue
        values, _ = _map(folder, spec.file, option, name)
        if values.shape != shape:
            raise _fail(option, folder, f"{spec.file} and {image_file} differ in shape", name)
        valid = np.isfinite(values) if values.dtype.kind == "f" else np.ones(shape, bool)
        if spec.status:
            status, _ = _map(folder, spec.status, option, name)
            mod.statuses[spec.status.removesuffix(".hspy")] = status
            valid &= np.isin(status, list(good))
        layer = Layer(spec, values, valid)
        if spec.sigma:
            layer.sigma = np.asarray(_map(folder, spec.sigma, option, name)[0], float)
        if spec.systematic:
            layer.systematic = np.asarray(_map(folder, spec.systematic, option, name)[0], float)
        if spec.kind == "label":
            layer.legend = {str(k): str(v) for k, v in (summary.get("phase_labels") or {}).items()}
        mod.layers.append(layer)
    return mod


def read_features(folder: str | Path, option: str = "--features") -> dict[str, Any]:
    """The classes of the features result: ``labels`` (ny, nx), their ``axes`` (nm), the
    ``regions`` rows of ``regions.csv``, the summary and the class ``probability``
    (5, ny, nx; None where the folder has none).

    Raises
    ------
    AnodemapInputError
        Not a complete features result (one line naming ``option``).
    """
    import csv

    folder = Path(folder)
    summary = _summary(folder, option, "features")
    labels, axes = _map(folder, "labels.hspy", option, "features")
    try:
        with open(folder / "regions.csv", encoding="utf-8", newline="") as fh:
            regions = list(csv.DictReader(fh))
    except OSError:
        raise _fail(option, folder, "no readable regions.csv there", "features") from None
    probability = None
    if (folder / "probability.hspy").exists():  # the HAADF rule's, for classes to fall back on
        from anodemap.io import load

        found = np.asarray(load(folder / "probability.hspy").data, float)
        if found.shape == (5, *labels.shape):
            probability = found
    return {
        "labels": labels.astype(np.uint8),
        "axes": axes,
        "regions": regions,
        "summary": summary,
        "probability": probability,
    }
