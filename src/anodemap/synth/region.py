"""The modalities of one simulated region, each recorded on a scan grid of its own,
with the transforms between them and the truth's per-feature means.

One phantom (:func:`anodemap.synth.make_phantom`, finer than every map) is seen by a
HAADF survey (:func:`anodemap.synth.haadf.simulate_haadf`: drift, line jitter), a
low-loss EELS spectrum image (:func:`anodemap.synth.simulate_eels`) and an EDX spectrum
image (:func:`anodemap.synth.edx.simulate_edx`), each with its own pixel size, field of
view, scan rotation, drift and an error of its recorded stage position. EELS and EDX
see the phantom sampled at their pixels' positions (:func:`view_phantom`: each pixel
the phantom pixel it lies in). What each pixel of each map saw is known, so the
position in any map of any point of another is known (:func:`true_positions`): the
truth of a registration.

The default views are model choices (not an instrument's): a 300 nm survey of 1.5 nm
pixels rotated by 4°, an EELS map of 64 × 64 pixels of 3 nm rotated by −1.5° and an
EDX map of 50 × 50 pixels of 4 nm rotated by +2°, both inside the survey, drifting by
a few hundredths of a nm per line, their recorded stage positions 10-15 nm off.

Examples
--------
>>> from anodemap.synth import make_phantom
>>> ph = make_phantom((40, 40), pixel_size_nm=2.0, seed=0)
>>> v = ScanView((10, 12), 3.0, (40.0, 40.0), rotation_deg=5.0)
>>> small = view_phantom(ph, v)
>>> small.labels.shape, small.pixel_size_nm
((10, 12), 3.0)
>>> pos = np.stack(v.positions(), axis=-1)
>>> bool(np.allclose(v.pixel_of(pos), np.stack(np.indices((10, 12)), axis=-1)))
True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from anodemap.errors import AnodemapInputError
from anodemap.synth.phantom import Label, Phantom

__all__ = [
    "DEFAULT_VIEWS",
    "DIFFRACTION_VIEW",
    "REGION_NAME",
    "ScanView",
    "feature_means",
    "true_positions",
    "view_haadf",
    "view_phantom",
    "write_region",
    "write_region_study",
]


@dataclass(frozen=True)
class ScanView:
    """A scan grid in the phantom's frame (nm; as :func:`~anodemap.synth.haadf.
    simulate_haadf` lays its scan).

    Attributes
    ----------
    shape : (int, int)
    pixel_size_nm : float
    center_nm : (float, float)
        The scan's centre (y, x) in the phantom's frame.
    rotation_deg : float
        Scan rotation against the phantom's axes.
    drift_nm_per_line : (float, float)
        Specimen drift (y, x) during one scan line (linear in time).
    stage_error_nm : (float, float)
        Error of the stage position recorded in the file's axes (y, x).
    """

    shape: tuple[int, int]
    pixel_size_nm: float
    center_nm: tuple[float, float]
    rotation_deg: float = 0.0
    drift_nm_per_line: tuple[float, float] = (0.0, 0.0)
    stage_error_nm: tuple[float, float] = (0.0, 0.0)

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(y, x)_phantom = M @ (row, column) + k."""
        ny, nx = self.shape
        p = self.pixel_size_nm
        dy, dx = self.drift_nm_per_line
        # scan frame: u = (i - (ny-1)/2) p + dy (i + j/nx), v = (j - (nx-1)/2) p + dx (...)
        s = np.array([[p + dy, dy / nx], [dx, p + dx / nx]])
        s0 = np.array([-(ny - 1) / 2.0 * p, -(nx - 1) / 2.0 * p])
        th = math.radians(self.rotation_deg)
        rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]])
        return rot @ s, rot @ s0 + np.asarray(self.center_nm, float)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each pixel looked: (y, x) in nm, phantom frame, arrays of ``shape``."""
        m, k = self._affine()
        i, j = np.indices(self.shape, dtype=float)
        return m[0, 0] * i + m[0, 1] * j + k[0], m[1, 0] * i + m[1, 1] * j + k[1]

    def pixel_of(self, points_nm: np.ndarray) -> np.ndarray:
        """The (row, column) of this scan that looked at phantom points ``(..., 2)``."""
        m, k = self._affine()
        return (np.asarray(points_nm, float) - k) @ np.linalg.inv(m).T

    def axes(self) -> list[Any]:
        """The scan axes a microscope records: pixel size, and the stage position of the
        first pixel (centre − half the field, plus the stage error; no rotation)."""
        from anodemap.io import Axis

        ny, nx = self.shape
        p = self.pixel_size_nm
        cy, cx = self.center_nm
        ey, ex = self.stage_error_nm
        return [
            Axis("y", ny, p, cy - (ny - 1) / 2.0 * p + ey, "nm"),
            Axis("x", nx, p, cx - (nx - 1) / 2.0 * p + ex, "nm"),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
        }


#: The default views of a 288 × 288 phantom of 1.25 nm pixels (model choices).
DEFAULT_VIEWS = {
    "haadf": ScanView((200, 200), 1.5, (180.0, 180.0), 4.0, (0.01, 0.02)),
    "eels": ScanView((64, 64), 3.0, (205.0, 150.0), -1.5, (0.02, -0.03), (8.0, -12.0)),
    "edx": ScanView((50, 50), 4.0, (160.0, 205.0), 2.0, (-0.02, 0.02), (-10.0, 6.0)),
}
#: A scanning precession diffraction scan of the region (written when asked for:
#: ``write_region(..., diffraction=True)``; its patterns take longest to simulate).
DIFFRACTION_VIEW = ScanView((40, 40), 5.0, (185.0, 175.0), 3.0, (0.01, 0.02), (5.0, 5.0))


def view_haadf(phantom: Phantom, view: ScanView, *, seed: int, jitter_px: float = 0.25) -> Any:
    """The HAADF forward model (:func:`anodemap.synth.haadf.simulate_haadf`) over the scan
    of ``view``: the survey of a region, or the simultaneous ADF of a spectrum image
    (``jitter_px=0``: recorded pixel by pixel with the spectra, at their positions)."""
    from anodemap.synth.haadf import simulate_haadf

    return simulate_haadf(
        phantom,
        pixel_size_nm=view.pixel_size_nm,
        shape=view.shape,
        center_nm=view.center_nm,
        rotation_deg=view.rotation_deg,
        drift_nm_per_line=view.drift_nm_per_line,
        jitter_px=jitter_px,
        seed=seed,
    )


def view_phantom(phantom: Phantom, view: ScanView) -> Phantom:
    """The phantom as the scan ``view`` sees it: a phantom on the scan's grid, each
    pixel the phantom pixel its position lies in (a probe much finer than the pixels:
    it sees one column, classes and values alike)."""
    y, x = view.positions()
    h = phantom.pixel_size_nm
    coords = np.stack([y / h - 0.5, x / h - 0.5])  # phantom pixel k is centred at (k+0.5)h
    py, px = phantom.shape
    if (
        coords[0].min() < -0.5
        or coords[1].min() < -0.5
        or coords[0].max() > py - 0.5
        or (coords[1].max() > px - 0.5)
    ):
        raise AnodemapInputError(
            f"the scan of {view.shape[0]} x {view.shape[1]} pixels of {view.pixel_size_nm:g} nm "
            f"reaches outside the phantom ({py} x {px} pixels of {h:g} nm): make it smaller"
        )

    def sample(values: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(values, coords, order=0, mode="nearest")

    shift = phantom.plasmon_shift_eV
    return dataclasses.replace(
        phantom,
        labels=sample(phantom.labels).astype(np.uint8),
        li_per_si=sample(phantom.li_per_si),
        oxide_fraction=sample(phantom.oxide_fraction),
        t_over_lambda=sample(phantom.t_over_lambda),
        grain_id=sample(phantom.grain_id).astype(np.int32),
        boundary=sample(phantom.boundary.astype(np.uint8)).astype(bool),
        boundary_distance_nm=sample(phantom.boundary_distance_nm),
        pixel_size_nm=float(view.pixel_size_nm),
        plasmon_shift_eV=None if shift is None else sample(shift),
    )


def true_positions(reference_yx_nm: np.ndarray, moving: ScanView) -> np.ndarray:
    """The (row, column) in the map of scan ``moving`` of every point a reference map's
    pixels saw (``(..., 2)``, phantom frame, nm): the truth of a registration."""
    return moving.pixel_of(reference_yx_nm)


def _nearest(phantom: Phantom, values: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    h = phantom.pixel_size_nm
    i = np.clip(np.round(y / h - 0.5).astype(int), 0, phantom.shape[0] - 1)
    j = np.clip(np.round(x / h - 0.5).astype(int), 0, phantom.shape[1] - 1)
    return values[i, j]


def feature_means(
    phantom: Phantom, y_nm: np.ndarray, x_nm: np.ndarray, within: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """The truth per class at the points ``(y_nm, x_nm)`` (each the phantom pixel it
    lies in): pixel count, mean Li/Si (pores: 0, the phantom's value), t/λ and oxide
    share, over the points where ``within`` holds."""
    lab = _nearest(phantom, phantom.labels, y_nm, x_nm)
    fields = {
        "li_per_si": _nearest(phantom, phantom.li_per_si, y_nm, x_nm),
        "t_over_lambda": _nearest(phantom, phantom.t_over_lambda, y_nm, x_nm),
        "oxide_fraction": _nearest(phantom, phantom.oxide_fraction, y_nm, x_nm),
    }
    keep = np.ones(lab.shape, bool) if within is None else np.asarray(within, bool)
    out: dict[str, dict[str, float]] = {}
    groups = {phantom.label_names[int(c)]: lab == c for c in phantom.label_names}
    groups["material (all but pores)"] = lab != int(Label.PORE)
    groups["all pixels"] = np.ones(lab.shape, bool)
    for name, mask in groups.items():
        m = mask & keep
        n = int(m.sum())
        row: dict[str, float] = {"pixels": n}
        for key, v in fields.items():
            row[key] = float(v[m].mean()) if n else float("nan")
        out[name] = row
    return out


def _inside(view: ScanView, yx: np.ndarray) -> np.ndarray:
    from anodemap.registration.transform import within

    return within(np.moveaxis(view.pixel_of(yx), -1, 0), view.shape)


def _write_own_truth(
    name: str, sim: Any, folder: Path, axes: list[Any], label_names: dict[int, str]
) -> None:
    """A modality's truth as its simulator gives it (what ``anodemap NAME``'s comparison
    with a truth reads: ``plasmon_peak_eV``, ``O_Ka``, ``phase``, ...), in ``folder``."""
    from anodemap.io import save
    from anodemap.io.results import map_dataset, write_json

    if name == "diffraction":
        from anodemap.synth.truth import write_diffraction_truth

        write_diffraction_truth(sim, folder, axes[0].scale)
        return
    shape = (axes[0].size, axes[1].size)
    scalars: dict[str, Any] = {}
    for key, value in sim.truth.items():
        if isinstance(value, np.ndarray) and value.shape == shape:
            save(map_dataset(value, axes, key, ""), folder / f"{key}.hspy")
        elif not isinstance(value, np.ndarray):
            scalars[key] = value
    scalars["label_names"] = {str(k): v for k, v in label_names.items()}
    write_json(scalars, folder / "truth.json")


def write_region(
    outdir: str | Path,
    *,
    shape: tuple[int, int] = (288, 288),
    pixel_size_nm: float = 1.25,
    seed: int = 0,
    views: dict[str, ScanView] | None = None,
    diffraction: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Path]:
    """Simulate one region and write ``haadf.hspy``, ``eels.hspy``, ``edx.hspy`` (and,
    with ``diffraction``, a scanning precession diffraction scan ``sped.zspy`` of 48 ×
    48-pixel patterns) with their truth in ``truth/``: ``region.json`` (the views, the phantom, the truth's
    per-feature means in the HAADF frame over all its pixels and within each map's
    field of view) and, per modality, ``truth/MODALITY/`` maps on its own grid (classes,
    Li/Si, t/λ, oxide share, where each pixel looked: ``sample_y_nm``, ``sample_x_nm``).

    Returns
    -------
    dict of str to Path
        The file of each modality.
    """
    from anodemap.eels.pipeline import eels_dataset
    from anodemap.io import Axis, save
    from anodemap.io.results import map_dataset, write_json
    from anodemap.synth import make_phantom, simulate_eels
    from anodemap.synth.edx import edx_dataset, simulate_edx
    from anodemap.synth.haadf import haadf_dataset

    outdir = Path(outdir)
    views = dict(DEFAULT_VIEWS if views is None else views)
    if diffraction:
        views.setdefault("diffraction", DIFFRACTION_VIEW)
    truth_dir = outdir / "truth"
    phantom = make_phantom(shape, pixel_size_nm=pixel_size_nm, seed=seed)
    log(
        f"simulating a region of {shape[0]} x {shape[1]} pixels of {pixel_size_nm:g} nm (seed {seed})"
    )
    hsim = view_haadf(phantom, views["haadf"], seed=seed)
    files = {"haadf": save(haadf_dataset(hsim), outdir / "haadf.hspy")}
    ref_yx = np.stack([hsim.truth["sample_y_nm"], hsim.truth["sample_x_nm"]], axis=-1)
    grids: dict[str, dict[str, np.ndarray]] = {
        "haadf": {
            "labels": hsim.truth["labels"],
            "sample_y_nm": ref_yx[..., 0],
            "sample_x_nm": ref_yx[..., 1],
        }
    }
    sims: dict[str, Any] = {}  # each modality's simulation (its own truth maps)
    if "eels" in views:
        v = views["eels"]
        esim = sims["eels"] = simulate_eels(view_phantom(phantom, v), seed=seed + 1)
        ds = eels_dataset(esim.spectra, esim.energy, title="Simulated region, low-loss EELS")
        ds = dataclasses.replace(ds, axes=[*v.axes(), ds.axes[-1]])
        ds.set_meta("General.source", "anodemap.synth.region (simulated, ground truth beside it)")
        files["eels"] = save(ds, outdir / "eels.hspy")
    if "edx" in views:
        v = views["edx"]
        xsim = sims["edx"] = simulate_edx(view_phantom(phantom, v), seed=seed + 2)
        ds = edx_dataset(xsim, title="Simulated region, EDX")
        ds = dataclasses.replace(ds, axes=[*v.axes(), ds.axes[-1]])
        files["edx"] = save(ds, outdir / "edx.hspy")
    if "diffraction" in views:
        from anodemap.synth.diffraction import simulate_diffraction, to_dataset

        v = views["diffraction"]
        dsim = sims["diffraction"] = simulate_diffraction(
            view_phantom(phantom, v), pattern_shape=(48, 48), seed=seed + 3
        )
        ds = to_dataset(dsim, title="Simulated region, SPED")
        ds = dataclasses.replace(ds, axes=[*v.axes(), *ds.axes[2:]])
        files["diffraction"] = save(ds, outdir / "sped.zspy")
    for name in ("eels", "edx", "diffraction"):
        if name in views:
            small = view_phantom(phantom, views[name])
            y, x = views[name].positions()
            grids[name] = {
                "labels": small.labels,
                "li_per_si": small.li_per_si,
                "t_over_lambda": small.t_over_lambda,
                "oxide_fraction": small.oxide_fraction,
                "sample_y_nm": y,
                "sample_x_nm": x,
            }
    # the survey's truth as the other maps': the phantom pixel each pixel's position lies
    # in (classes and values alike; the HAADF simulator's own truth interpolates values)
    for key in ("li_per_si", "t_over_lambda", "oxide_fraction"):
        grids["haadf"][key] = _nearest(phantom, getattr(phantom, key), *ref_yx.transpose(2, 0, 1))
    grids["haadf"]["labels"] = _nearest(phantom, phantom.labels, *ref_yx.transpose(2, 0, 1))
    for name, maps in grids.items():
        folder = truth_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        shape_ = maps["labels"].shape
        p = views[name].pixel_size_nm
        axes = [Axis(n, k, p, 0.0, "nm") for n, k in zip("yx", shape_, strict=True)]
        if name in sims:  # the layout anodemap simulate eels|edx|diffraction writes
            _write_own_truth(name, sims[name], folder, axes, phantom.label_names)
        for key, value in maps.items():
            unit = "nm" if key.endswith("_nm") else ""
            save(map_dataset(value, axes, key, unit), folder / f"{key}.hspy")
    means = {"all": feature_means(phantom, ref_yx[..., 0], ref_yx[..., 1])}
    for name in ("eels", "edx", "diffraction"):
        if name in views:
            inside = _inside(views[name], ref_yx)
            means[f"within_{name}"] = feature_means(phantom, ref_yx[..., 0], ref_yx[..., 1], inside)
    write_json(
        {
            "reference": "haadf",
            "views": {k: v.to_dict() for k, v in views.items()},
            "haadf_jitter_px": float(hsim.view["jitter_px"]),
            "phantom": {"shape": list(shape), "pixel_size_nm": pixel_size_nm, "seed": seed},
            "label_names": {str(k): v for k, v in phantom.label_names.items()},
            "feature_means_haadf_frame": means,
            "note": "feature means over the HAADF pixels (the phantom pixel each saw); "
            "within_MODALITY: those inside that map's field of view",
        },
        truth_dir / "region.json",
    )
    log(f"wrote {', '.join(str(p) for p in files.values())} and the truth in {truth_dir}")
    return files


#: The region's name in the study file that :func:`write_region_study` writes.
REGION_NAME = "A"


def write_region_study(
    outdir: str | Path,
    *,
    seed: int = 0,
    diffraction: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> Path:
    """Simulate one region (:func:`write_region`) and write ``study.toml`` beside it: one
    state (the 1st lithiation, whose phantom it is) with the HAADF survey (kind
    ``features``), EELS, EDX (and SPED) datasets of one region, each with its truth, so
    that ``anodemap run OUTDIR/study.toml -o OUT`` segments the survey, analyses every
    map and joins them in ``OUT/lithiated_1/regions/A/correlate/``.

    Returns
    -------
    Path
        The study file (written last).

    Examples
    --------
    >>> path = write_region_study("region/", seed=0)   # doctest: +SKIP
    >>> path.name                                      # doctest: +SKIP
    'study.toml'
    """
    from anodemap.io.results import write_text

    outdir = Path(outdir)
    files = write_region(outdir, seed=seed, diffraction=diffraction, log=log)
    kinds = {"haadf": "features", "eels": "eels", "edx": "edx", "diffraction": "diffraction"}
    lines = [
        "# written by anodemap simulate region (anodemap.synth.region.write_region_study)",
        "[study]",
        f'name = "Simulated region, seed {seed}"',
        'description = "One region of the simulated 1st-lithiation electrode seen by a HAADF '
        "survey, low-loss EELS, EDX"
        + (" and SPED" if diffraction else "")
        + ', each with its own pixel size, rotation and drift (docs/registration.md)"',
        "simulated = true",
        "",
        "[[states]]",
        'name = "lithiated_1"',
        'label = "1st lithiation (simulated region)"',
        "cycle = 1",
        'step = "lithiated"',
    ]
    for modality, path in files.items():
        lines += [
            "",
            "  [[states.datasets]]",
            f'  path = "{path.relative_to(outdir).as_posix()}"',
            f'  kind = "{kinds[modality]}"',
            f'  name = "{modality}"',
            f'  region = "{REGION_NAME}"',
            f'  truth = "truth/{modality}"',
        ]
    study = write_text("\n".join(lines) + "\n", outdir / "study.toml")
    log(f"wrote the study file {study}; run it with: anodemap run {study} -o OUT")
    return study
