"""Simulated STEM HAADF images of the shared phantom, with their truth.

The image is the phantom (:func:`anodemap.synth.make_phantom`) seen by an annular
detector: in each column the signal is the physical thickness times the sum over the
atoms per volume of ``Z**n`` (:func:`z_contrast`), recorded as Poisson counts on a scan
grid of its own (pixel size, field of view and rotation different from the phantom's,
i.e. from the EELS map's) that drifts and jitters line by line. The truth maps are
sampled at the very positions each pixel saw, so they lie on the image's grid.

Model (every number a model choice unless a source is named):

* ``n = 1.7`` (``z_exponent``): the Rutherford ``Z**2`` reduced by screening; exponents
  between about 1.5 and 2 are used for HAADF depending on the detector's inner angle.
  It is a model choice here, not a measurement of any detector.
* Atoms per volume: Li_xSi with the volume per Si interpolated linearly in x between Si
  and Li15Si4 (the packaged structures, ``anodemap/data/structures``; amorphous Si 1.8 %
  less dense than the crystal, Custer et al., Appl. Phys. Lett. 64 (1994) 437), the
  oxide-rich share as Li2SiO3 at 2.5 g/cm³: the material model of
  :mod:`anodemap.synth.diffraction`, shared so that the modalities agree.
* Physical thickness: the phantom's t/λ divided by its class's inelastic density factor
  (:data:`anodemap.synth.phantom.T_MATERIAL_FACTOR`), so the FIB wedge and the smooth
  thickness variation of the phantom are in the image, and t/λ from EELS divides them out.
* Pores: thin residue (the phantom's t/λ of 0.02-0.1) of grey Li_xSi (x = 1.8).
* Scan: slow drift (nm per line, the same for every line) and line jitter (each line
  shifted along x by a normal deviate, ``jitter_px`` pixels rms); a pixel's dwell time is
  ``1/nx`` of a line (no flyback time).

Examples
--------
>>> from anodemap.synth import make_phantom
>>> ph = make_phantom((48, 48), pixel_size_nm=5.0, seed=2)
>>> sim = simulate_haadf(ph, seed=2)
>>> sim.image.shape == sim.truth["labels"].shape, sim.pixel_size_nm
(True, 3.75)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from scipy import ndimage

from anodemap.errors import AnodemapInputError

from .phantom import T_MATERIAL_FACTOR, Label, Phantom

__all__ = [
    "SimulatedHAADF",
    "haadf_dataset",
    "simulate_haadf",
    "truth_scribbles",
    "write_haadf",
    "z_contrast",
]

#: Atomic numbers of the elements in the phantom's materials.
_Z = {"Li": 3, "O": 8, "Si": 14}
#: Li/Si of the residue in pores (model choice: the grey class's mean).
_PORE_RESIDUE_X = 1.8
#: Density factor of the classes of the delithiated states (model choice, as the study's
#: t/λ factors: the thread-like mesh 10 % less dense).
_DENSITY = {int(Label.THREAD): 0.9}
#: Thickness (t/λ) factors of the classes: the phantom's, 1 for the others.
_T_FACTOR = {int(k): v for k, v in T_MATERIAL_FACTOR.items()}


@dataclass
class SimulatedHAADF:
    """A simulated HAADF image and its truth.

    Attributes
    ----------
    image : ndarray of float32, shape (ny, nx)
        Detector counts (Poisson).
    pixel_size_nm : float
        The image's pixel size.
    truth : dict
        Maps on the image's grid: ``labels`` (phantom classes, uint8), ``t_over_lambda``,
        ``li_per_si``, ``oxide_fraction``, ``expected_counts`` (noise-free), and
        ``sample_y_nm``/``sample_x_nm`` (where each pixel looked, in the phantom's frame).
    view : dict
        The scan: centre (nm, phantom frame), rotation (degrees), drift (nm per line),
        jitter (px rms), counts scale, Z exponent, seed.
    label_names : dict of int to str
    """

    image: np.ndarray
    pixel_size_nm: float
    truth: dict[str, np.ndarray]
    view: dict[str, Any]
    label_names: dict[int, str] = field(default_factory=dict)


@cache
def _volumes_per_si() -> tuple[float, float]:
    """Volume per Si atom (Å³) of c-Si and of Li15Si4, from the packaged structures."""
    from anodemap.diffraction.crystal import load_phase

    return load_phase("Si").volume / 8.0, load_phase("Li15Si4").volume / 16.0


def z_contrast(
    li_per_si: np.ndarray, oxide_fraction: np.ndarray, crystalline: np.ndarray, n: float = 1.7
) -> np.ndarray:
    """HAADF signal per volume, ``Σ_i n_i Z_i**n`` (atoms/Å³), of Li_xSi mixed with oxide.

    Parameters
    ----------
    li_per_si : array
        x of the silicide.
    oxide_fraction : array
        Volume share (0-1) of the oxide (Li2SiO3).
    crystalline : array of bool
        Crystalline Si density where True (x should be 0 there), amorphous elsewhere.
    n : float
        The Z exponent (model choice).

    Examples
    --------
    >>> import numpy as np
    >>> s = z_contrast(np.array([0.0, 1.8, 3.5]), np.zeros(3), np.array([True, False, False]))
    >>> bool(s[0] > s[1] > s[2])
    True
    """
    from anodemap.synth.diffraction import (
        ASI_DENSITY_DEFICIT,
        OXIDE_COUNTS,
        OXIDE_DENSITY,
        X_LI15SI4,
    )

    x = np.asarray(li_per_si, dtype=float)
    v_si, v_li = _volumes_per_si()
    v0 = np.where(crystalline, v_si, v_si / (1.0 - ASI_DENSITY_DEFICIT))
    volume = v0 + (v_li - v_si) * x / X_LI15SI4
    silicide = (_Z["Si"] ** n + x * _Z["Li"] ** n) / volume
    atoms = sum(OXIDE_COUNTS.values())
    oxide = OXIDE_DENSITY / atoms * sum(c * _Z[e] ** n for e, c in OXIDE_COUNTS.items())
    f = np.clip(np.asarray(oxide_fraction, dtype=float), 0.0, 1.0)
    return (1.0 - f) * silicide + f * oxide


def _signal_per_thickness(phantom: Phantom, n: float) -> np.ndarray:
    """HAADF signal of each phantom pixel, relative to c-Si of t/λ = 1."""
    labels = phantom.labels.astype(int)
    pore = labels == int(Label.PORE)
    x = np.where(pore, _PORE_RESIDUE_X, phantom.li_per_si)
    f = np.where(pore, 0.0, phantom.oxide_fraction)
    s = z_contrast(x, f, labels == int(Label.SI), n)
    density = np.ones(labels.shape)
    t_factor = np.ones(labels.shape)
    for lab, value in _DENSITY.items():
        density[labels == lab] = value
    for lab, value in _T_FACTOR.items():
        t_factor[labels == lab] = value
    thickness = phantom.t_over_lambda / t_factor  # physical thickness, c-Si λ units
    reference = float(z_contrast(np.zeros(1), np.zeros(1), np.ones(1, bool), n)[0])
    return thickness * density * s / reference


def _default_view(phantom: Phantom, pixel_size_nm: float, rotation_deg: float, margin_nm: float):
    """The largest square scan of ``pixel_size_nm`` that fits inside the phantom when
    rotated by ``rotation_deg`` and kept ``margin_nm`` from its edges."""
    h = phantom.pixel_size_nm
    ny, nx = phantom.shape
    span = min(ny, nx) * h - 2.0 * margin_nm
    th = math.radians(rotation_deg)
    side = span / (abs(math.cos(th)) + abs(math.sin(th)))
    n = int(side // pixel_size_nm)
    if n < 8:
        raise AnodemapInputError(
            f"the phantom ({ny} x {nx} pixels of {h:g} nm) is too small for a HAADF scan of "
            f"{pixel_size_nm:g} nm pixels; make it larger"
        )
    return (n, n), (ny * h / 2.0, nx * h / 2.0)


def simulate_haadf(
    phantom: Phantom,
    *,
    pixel_size_nm: float | None = None,
    shape: tuple[int, int] | None = None,
    center_nm: tuple[float, float] | None = None,
    rotation_deg: float = 4.0,
    counts: float = 1000.0,
    z_exponent: float = 1.7,
    drift_nm_per_line: tuple[float, float] = (0.01, 0.02),
    jitter_px: float = 0.25,
    seed: int = 0,
) -> SimulatedHAADF:
    """A HAADF image of ``phantom`` on a scan grid of its own, with its truth.

    Parameters
    ----------
    phantom : Phantom
    pixel_size_nm : float, optional
        Default: 3/4 of the phantom's pixel (finer than the EELS map).
    shape : (int, int), optional
        Default: the largest square that fits inside the phantom, rotated, with a margin
        of 4 phantom pixels.
    center_nm : (float, float), optional
        Centre of the scan in the phantom's frame (y, x), nm; default its centre.
    rotation_deg : float
        Scan rotation relative to the phantom's axes (counter-clockwise, degrees).
    counts : float
        Expected counts of c-Si at t/λ = 1 (the dose; model choice: grey material of
        t/λ 0.75 then gets about 400 counts, 5 % noise).
    z_exponent : float
        The exponent n of ``Z**n`` (model choice).
    drift_nm_per_line : (float, float)
        Sample drift (y, x) during one scan line, nm.
    jitter_px : float
        Rms shift of each line along x, in pixels.
    seed : int
        Seed of the jitter and the Poisson noise.

    Returns
    -------
    SimulatedHAADF

    Raises
    ------
    AnodemapInputError
        A scan that reaches outside the phantom, or numbers out of range.
    """
    h = phantom.pixel_size_nm
    p = float(pixel_size_nm) if pixel_size_nm is not None else 0.75 * h
    if not (p > 0 and counts > 0 and jitter_px >= 0):
        raise AnodemapInputError("pixel_size_nm and counts must be > 0, jitter_px >= 0")
    auto_shape, auto_center = _default_view(phantom, p, rotation_deg, 4.0 * h)
    ny, nx = tuple(int(v) for v in (shape or auto_shape))
    cy, cx = center_nm if center_nm is not None else auto_center
    rng = np.random.default_rng(seed)

    i, j = np.meshgrid(np.arange(ny, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    time_lines = i + j / nx
    jitter = rng.normal(0.0, jitter_px, ny)[:, None] * p
    u = (i - (ny - 1) / 2.0) * p + drift_nm_per_line[0] * time_lines  # scan frame, nm
    v = (j - (nx - 1) / 2.0) * p + drift_nm_per_line[1] * time_lines + jitter
    th = math.radians(rotation_deg)
    y = cy + u * math.cos(th) + v * math.sin(th)
    x = cx - u * math.sin(th) + v * math.cos(th)
    coords = np.stack([y / h - 0.5, x / h - 0.5])  # phantom pixel k is centred at (k+0.5)h
    py, px = phantom.shape
    if (
        coords[0].min() < -0.5
        or coords[1].min() < -0.5
        or coords[0].max() > py - 0.5
        or (coords[1].max() > px - 0.5)
    ):
        raise AnodemapInputError(
            "the HAADF scan reaches outside the phantom: choose a smaller shape or pixel size"
        )

    def sample(values: np.ndarray, order: int) -> np.ndarray:
        return ndimage.map_coordinates(values, coords, order=order, mode="nearest")

    signal = _signal_per_thickness(phantom, z_exponent)
    expected = counts * np.maximum(sample(signal, 1), 0.0)
    image = rng.poisson(expected).astype(np.float32)
    truth = {
        "labels": sample(phantom.labels, 0).astype(np.uint8),
        "t_over_lambda": sample(phantom.t_over_lambda, 1),
        "li_per_si": sample(phantom.li_per_si, 1),
        "oxide_fraction": sample(phantom.oxide_fraction, 1),
        "expected_counts": expected,
        "sample_y_nm": y,
        "sample_x_nm": x,
    }
    view = {
        "center_nm": [float(cy), float(cx)],
        "rotation_deg": float(rotation_deg),
        "drift_nm_per_line": [float(d) for d in drift_nm_per_line],
        "jitter_px": float(jitter_px),
        "counts_c_si_t_over_lambda_1": float(counts),
        "z_exponent": float(z_exponent),
        "phantom_pixel_size_nm": float(h),
        "phantom_shape": [int(py), int(px)],
        "seed": int(seed),
    }
    return SimulatedHAADF(image, p, truth, view, dict(phantom.label_names))


def haadf_dataset(sim: SimulatedHAADF, title: str = "Simulated HAADF") -> Any:
    """The image as a :class:`~anodemap.io.Dataset` (calibrated nm axes, a Signal2D).

    Examples
    --------
    >>> from anodemap.synth import make_phantom
    >>> ds = haadf_dataset(simulate_haadf(make_phantom((40, 40), seed=0)))
    >>> ds.sig_axes[0].units, ds.sig_axes[0].scale, ds.sig_axes[0].offset
    ('nm', 3.75, 28.75)
    """
    from anodemap.io import Axis, Dataset

    ny, nx = sim.image.shape
    p = sim.pixel_size_nm
    # the stage position of the first pixel, as a microscope records it: the scan's
    # rotation and drift are not in it (registration finds them)
    cy, cx = sim.view["center_nm"]
    oy, ox = cy - (ny - 1) / 2.0 * p, cx - (nx - 1) / 2.0 * p
    ds = Dataset(
        sim.image,
        [Axis("y", ny, p, oy, "nm", navigate=False), Axis("x", nx, p, ox, "nm", navigate=False)],
    )
    ds.set_meta("General.title", title)
    ds.set_meta("Signal.quantity", "HAADF (counts)")
    ds.set_meta("General.source", "anodemap.synth.haadf (simulated, ground truth beside it)")
    return ds


def truth_scribbles(
    labels: np.ndarray, strokes: int = 8, length_px: int = 15, seed: int = 0
) -> np.ndarray:
    """Scribbles as a user would paint them, from a truth label map: ``strokes`` short
    straight strokes per class, inside the class (value: class code + 1, 0 unmarked;
    :mod:`anodemap.features.scribbles`).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((40, 40), np.uint8); labels[:, 20:] = 2
    >>> marks = truth_scribbles(labels, seed=1)
    >>> sorted(np.unique(marks).tolist()), bool(np.all(marks[:, :20] <= 1))
    ([0, 1, 3], True)
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(labels.shape, np.uint8)
    ny, nx = labels.shape
    for code in np.unique(labels):
        mask = labels == code
        inner = ndimage.binary_erosion(mask, iterations=1)
        pick = inner if inner.any() else mask
        where = np.flatnonzero(pick)
        for _ in range(strokes):
            y0, x0 = np.unravel_index(rng.choice(where), labels.shape)
            angle = rng.uniform(0.0, np.pi)
            t = np.arange(-(length_px // 2), length_px // 2 + 1)
            ys = np.clip(np.round(y0 + t * np.sin(angle)).astype(int), 0, ny - 1)
            xs = np.clip(np.round(x0 + t * np.cos(angle)).astype(int), 0, nx - 1)
            keep = pick[ys, xs]
            out[ys[keep], xs[keep]] = int(code) + 1
    return out


def write_haadf(
    outdir: Any, shape: tuple[int, int], seed: int, pixel_size_nm: float, log: Any = print
) -> Any:
    """Simulate the phantom of ``shape`` (EELS grid: ``pixel_size_nm``) and write its HAADF
    image ``haadf.hspy``, the truth maps on the image's grid and the phantom's t/λ map (as
    ``anodemap eels`` would measure it) in ``truth/``, and scribbles from the truth
    (``truth/scribbles.png``, for ``anodemap features --training``). Returns the image path.
    """
    from pathlib import Path

    from anodemap.io import Axis, save
    from anodemap.io.results import map_dataset, write_json
    from anodemap.synth import make_phantom

    outdir = Path(outdir)
    truth_dir = outdir / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    phantom = make_phantom(shape, pixel_size_nm=pixel_size_nm, seed=seed)
    sim = simulate_haadf(phantom, seed=seed)
    log(
        f"simulated a {sim.image.shape[0]} x {sim.image.shape[1]} HAADF image, "
        f"{sim.pixel_size_nm:g} nm pixels, of a {shape[0]} x {shape[1]} electrode of "
        f"{pixel_size_nm:g} nm pixels (seed {seed})"
    )
    ds = haadf_dataset(sim)
    path = save(ds, outdir / "haadf.hspy")
    axes = [Axis(a.name, a.size, a.scale, a.offset, a.units) for a in ds.axes]
    for key, value in sim.truth.items():
        save(
            map_dataset(value, axes, key, "nm" if key.endswith("_nm") else ""),
            truth_dir / f"{key}.hspy",
        )
    ph_axes = [
        Axis(n, k, pixel_size_nm, 0.0, "nm") for n, k in zip("yx", phantom.shape, strict=True)
    ]
    save(
        map_dataset(phantom.t_over_lambda, ph_axes, "t/λ", ""),
        truth_dir / "t_over_lambda_eels_grid.hspy",
    )
    from PIL import Image

    Image.fromarray(truth_scribbles(sim.truth["labels"], seed=seed)).save(
        truth_dir / "scribbles.png"
    )
    labels = sim.truth["labels"]
    counts = np.bincount(labels.ravel(), minlength=5)
    write_json(
        {
            "pixel_size_nm": sim.pixel_size_nm,
            "view": sim.view,
            "label_names": {str(k): v for k, v in sim.label_names.items()},
            "class_fractions": {str(k): float(c) / labels.size for k, c in enumerate(counts)},
            "porosity": float(counts[int(Label.PORE)]) / labels.size,
        },
        truth_dir / "truth.json",
    )
    log(f"wrote {path} and its truth in {truth_dir}")
    return path
