"""Feature segmentation of HAADF images as an analysis of the contract
(:mod:`anodemap.analysis.base`).

``anodemap features INPUT -o OUT [--training SCRIBBLES] [--thickness TLAMBDA.hspy]``:
read an image (DM, Velox EMD, TIA, TIFF, MRC, the HAADF of a .bcf, .hspy), divide out
its thickness term, classify its pixels (:func:`anodemap.features.segment.segment`) and
write the labels, probabilities, regions, figures and ``summary.json``.

Examples
--------
>>> from anodemap.analysis import get_analysis
>>> a = get_analysis("features")
>>> a.files, a.file_options["training"][0]
(('training', 'thickness'), '--training')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anodemap.analysis.base import Analysis, Context
from anodemap.features.parameters import FeaturesParameters

__all__ = ["FeaturesAnalysis", "FeaturesResult"]


@dataclass
class FeaturesResult:
    """What :meth:`FeaturesAnalysis.analyse` gives: the segmentation and the image."""

    segmentation: Any
    image: Any

    @property
    def maps(self) -> dict[str, Any]:
        """The per-pixel maps written as ``.hspy``, by name."""
        seg = self.segmentation
        return {
            "labels": seg.labels,
            "probability": seg.probability,
            "uncertainty": seg.uncertainty,
            "normalised": seg.normalised,
        }


class FeaturesAnalysis(Analysis):
    """Pores, bright, grey, dendrite-like and boundary classes of a HAADF image."""

    name = "features"
    title = "feature classes of a HAADF image: pores, bright, grey, dendrite-like, boundaries"
    data_kind = "HAADF, ADF or BF image"
    Parameters = FeaturesParameters
    files = ("training", "thickness")
    version = "1"
    input_help = "image or image series (any rosettasciio format; a .bcf's HAADF)"
    file_options = {
        "training": (
            "--training",
            "SCRIBBLES",
            "scribble map (.npy, .png, .tif, .hspy; one value per pixel: 0 unmarked, 1 pore, "
            "2 bright, 3 grey, 4 dendrite-like, 5 boundary): trains a random forest "
            "instead of the unsupervised rule",
        ),
        "thickness": (
            "--thickness",
            "TLAMBDA",
            "t/λ map of the same region (thickness.hspy of anodemap eels), placed by "
            "its calibrated axes: divides the thickness out of the HAADF contrast",
        ),
    }

    # -- reading
    def add_dataset_options(self, parser: Any) -> None:
        from anodemap.analysis.options import number

        parser.add_argument(
            "--scan-step",
            type=number(above=0, unit=" nm"),
            metavar="NM",
            help="pixel size of the image, in nm (default: from the file)",
        )

    def prepare_from_args(self, args: Any) -> Callable[[Any], Any] | None:
        step = getattr(args, "scan_step", None)
        return None if step is None else (lambda ds: _with_pixel_size(ds, step))

    def load(self, path: Path, *, signal: int | str | None = None) -> Any:
        from anodemap.io import kinds, load

        return load(path, lazy=True, signal=signal, kind=kinds.image)

    def accepts(self, dataset: Any) -> bool:
        from anodemap.io import kinds

        return kinds.image(dataset) is None

    # -- analysing
    def analyse(
        self, dataset: Any, parameters: Any, context: Context, files: Mapping[str, Any]
    ) -> Any:
        import numpy as np

        from anodemap.features.segment import segment

        p = parameters
        image = _one_image(dataset, p.frame)
        axes = dataset.sig_axes
        scribbles = thickness = None
        if files.get("training"):
            from anodemap.features.scribbles import read_scribbles

            scribbles = read_scribbles(files["training"], image.shape)
        if files.get("thickness"):
            thickness = _thickness_map(Path(files["thickness"]), axes, p.min_thickness)
        context.log(
            f"image {image.shape[0]} x {image.shape[1]} px"
            + (f", {axes[0].scale:g} {axes[0].units} per px" if axes[0].units else "")
            + ("; trainable mode" if scribbles is not None else "; unsupervised classes")
        )
        t0 = time.perf_counter()
        seg = segment(
            np.asarray(image, dtype=float),
            axes,
            p,
            thickness=thickness,
            scribbles=scribbles,
            log=context.log,
        )
        context.log(f"segmented in {time.perf_counter() - t0:.1f} s")
        seg.summary["input_image"] = {
            "title": dataset.title,
            "frame": p.frame,
            "shape": list(image.shape),
            "axes": [
                {"name": a.name, "scale": a.scale, "offset": a.offset, "units": a.units}
                for a in axes
            ],
        }
        return FeaturesResult(seg, np.asarray(image, dtype=np.float32))

    def write(
        self, result: Any, outdir: Path, context: Context, dataset: Any, worker: Any
    ) -> dict[str, Any]:
        from anodemap.features.output import write_features

        seg, image = result.segmentation, result.image
        return write_features(
            seg,
            image,
            outdir,
            figures=context.figures,
            worker=worker,
            source=f"anodemap features of {dataset.get_meta('General.original_filename', '')}",
        )

    def output_names(self) -> list[str]:
        from anodemap.features.output import output_names

        return output_names()

    def describe(self, summary: Mapping[str, Any], context: Context) -> None:
        f = summary["class_fractions"]
        por = summary["porosity"]
        context.log(
            "classes over all pixels: "
            + ", ".join(f"{name} {100 * v:.1f} %" for name, v in f.items())
        )
        context.log(
            f"{porosity_text(por)} (area fraction, all pixels); "
            f"{sum(summary['regions']['count_per_class'].values())} connected regions in "
            "regions.csv"
        )

    def compare_with_truth(
        self, result: Any, truth_dir: Path, outdir: Path, context: Context
    ) -> dict[str, Any]:
        """Per-class recall, precision and IoU against ``truth_dir/labels.hspy`` (as
        ``anodemap simulate haadf`` writes it); ``truth_comparison.json``."""
        import numpy as np

        from anodemap.features.truth import compare
        from anodemap.io import load
        from anodemap.io.results import write_json

        seg = result.segmentation
        truth = np.asarray(load(truth_dir / "labels.hspy").data)
        comparison = compare(seg.labels, truth, seg.summary["porosity"])
        write_json(comparison, outdir / "truth_comparison.json")
        context.log(
            f"against the truth: {100 * comparison['accuracy']:.1f} % of pixels right; porosity "
            f"{100 * comparison['porosity']['error']:+.2f} % (absolute)"
        )
        return comparison


def porosity_text(por: Mapping[str, Any]) -> str:
    """The porosity for the console: ``± 1σ``, or, where no pore was found, below the
    detection limit (a single pore of the limit's size).

    Examples
    --------
    >>> porosity_text({"fraction": 0.0, "uncertainty": 0.0, "detection_limit": {
    ...     "porosity": 2e-4, "diameter_nm": 5.0, "diameter_px": 2.0}})
    'porosity 0 %: no pore found; the smallest pore found at this noise is 5 nm across (2 px; one such pore: 0.020 % of the image)'
    """
    lim = por.get("detection_limit") or {}
    text = f"porosity {100 * por['fraction']:.2f} ± {100 * por['uncertainty']:.2f} %"
    if lim.get("porosity") is not None:
        size = (
            f"{lim['diameter_nm']:.3g} nm across ({lim['diameter_px']:.3g} px"
            if lim.get("diameter_nm")
            else f"{lim['diameter_px']:.3g} px across ("
        )
        sep = "; " if lim.get("diameter_nm") else ""
        tail = f"{size}{sep}one such pore: {100 * lim['porosity']:.3f} % of the image)"
        if por["fraction"] == 0:
            return f"porosity 0 %: no pore found; the smallest pore found at this noise is {tail}"
        return f"{text}; smallest pore found at this noise {tail}"
    if por["fraction"] == 0 and lim:
        return "porosity 0 %: no pore found, and no injected pore up to the largest tried"
    return text


def _one_image(dataset: Any, frame: int | None) -> Any:
    """The image to segment: the dataset's one image, or image ``frame`` of a series."""
    import numpy as np

    from anodemap.errors import AnodemapInputError

    data = dataset.data
    if not dataset.nav_shape:
        if frame not in (None, 0):
            raise AnodemapInputError(f"--frame {frame}: the file holds one image (--frame 0)")
        return data
    n = int(np.prod(dataset.nav_shape))
    if frame is None:
        ax = dataset.nav_axes[0]
        hint = ""
        if ax.units.strip().lower() in ("deg", "°", "degree", "degrees"):
            zero = int(np.argmin(np.abs(ax.values)))
            hint = f"; the image at {ax.values[zero]:g}° is --frame {zero}"
        raise AnodemapInputError(
            f"a series of {n} images: anodemap features segments one; choose it with "
            f"--frame N (0-{n - 1}){hint}"
        )
    if frame >= n:
        raise AnodemapInputError(f"--frame {frame}: the series holds {n} images (0-{n - 1})")
    return data.reshape((n, *dataset.sig_shape))[frame]


def _thickness_map(
    path: Path, image_axes: list[Any], min_thickness: float
) -> tuple[Any, list[Any]]:
    """The t/λ map of ``--thickness`` and its two axes, checked able to serve the image."""
    import numpy as np

    from anodemap.errors import AnodemapError, AnodemapInputError, AnodemapIOError
    from anodemap.features.thickness import resample_to_image, thickness_term
    from anodemap.io import load

    where = f"--thickness {path}"
    if not path.is_file():
        raise AnodemapIOError(f"{where}: no such file (give thickness.hspy of anodemap eels)")
    try:
        ds = load(path)
    except AnodemapError as err:
        raise AnodemapIOError(f"{where}: {err}") from err
    data = np.squeeze(np.asarray(ds.data, dtype=float))
    axes = [a for a in ds.axes if a.size > 1]
    if data.ndim != 2 or len(axes) != 2:
        raise AnodemapInputError(
            f"{where}: a map of shape {np.shape(ds.data)}; give a 2-D t/λ map "
            "(thickness.hspy of anodemap eels)"
        )
    try:  # refused here, before anything is computed, with the option named
        resample_to_image(thickness_term(data, min_thickness), axes, image_axes)
    except AnodemapInputError as err:
        raise AnodemapInputError(f"{where}: {err}") from err
    return data, axes


def _with_pixel_size(ds: Any, step: float) -> Any:
    """The dataset with its image (signal) axes in nm, ``step`` apart (``--scan-step``)."""
    import dataclasses

    axes = [
        a if a.navigate else dataclasses.replace(a, scale=float(step), offset=0.0, units="nm")
        for a in ds.axes
    ]
    return dataclasses.replace(ds, axes=axes)
