"""``anodemap correlate``: the modalities of one region registered on its HAADF survey
and tabulated per feature, as an analysis of the contract (:mod:`anodemap.analysis.base`).

``anodemap correlate HAADF -o OUT --features DIR [--eels DIR] [--edx DIR]
[--diffraction DIR] [--reference haadf|eels|edx|diffraction]``: HAADF is the image that
``anodemap features`` classified (its result, ``--features``, is required and checked to
be of this very image); the other folders are the results of ``anodemap eels``,
``anodemap edx`` and ``anodemap diffraction`` of the same region.

Examples
--------
>>> from anodemap.analysis import get_analysis
>>> a = get_analysis("correlate")
>>> a.reads, a.requires, a.files
('features', ('features',), ('features', 'eels', 'edx', 'diffraction'))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anodemap.analysis.base import Analysis, Context
from anodemap.correlate.parameters import CorrelateParameters

__all__ = ["CorrelateAnalysis"]


def _folder_help(name: str, what: str) -> str:
    return f"the folder anodemap {name} wrote for this region: {what}"


class CorrelateAnalysis(Analysis):
    """Registration of a region's modalities and their statistics per feature."""

    name = "correlate"
    title = (
        "register the EELS, EDX and diffraction maps of a region on its HAADF survey and "
        "tabulate them per feature class and region"
    )
    data_kind = "HAADF survey image classified by anodemap features"
    Parameters = CorrelateParameters
    files = ("features", "eels", "edx", "diffraction")
    reads = "features"
    requires = ("features",)
    version = "2"
    input_help = "the HAADF image that anodemap features classified"
    file_options = {
        "features": (
            "--features",
            "DIR",
            _folder_help("features", "the feature classes and regions of this image (required)"),
        ),
        "eels": (
            "--eels",
            "DIR",
            _folder_help("eels", "Li/Si, plasmon energy and t/λ (registered by its t/λ map)"),
        ),
        "edx": (
            "--edx",
            "DIR",
            _folder_help("edx", "O Kα and Si Kα (registered by its HAADF, else its counts)"),
        ),
        "diffraction": (
            "--diffraction",
            "DIR",
            _folder_help("diffraction", "phases (registered by its virtual ADF)"),
        ),
    }

    def load(self, path: Path, *, signal: int | str | None = None) -> Any:
        from anodemap.analysis import get_analysis

        return get_analysis("features").load(path, signal=signal)

    def accepts(self, dataset: Any) -> bool:
        from anodemap.analysis import get_analysis

        return get_analysis("features").accepts(dataset)

    def analyse(
        self, dataset: Any, parameters: Any, context: Context, files: Mapping[str, Any]
    ) -> Any:
        import numpy as np

        from anodemap.correlate.inputs import read_features, read_modality
        from anodemap.correlate.pipeline import correlate

        features = read_features(files["features"])
        frame = features["summary"].get("input_image", {}).get("frame")
        data = np.asarray(dataset.data, dtype=float)
        if dataset.nav_shape:
            data = data.reshape((-1, *dataset.sig_shape))[frame or 0]
        modalities = [
            read_modality(name, files[name], self.file_options[name][0])
            for name in ("eels", "edx", "diffraction")
            if files.get(name)
        ]
        if not modalities:
            context.log("no --eels, --edx or --diffraction result given: areas and counts only")
        return correlate(
            data,
            features["axes"],  # as anodemap features calibrated them (--scan-step included)
            features,
            modalities,
            parameters,
            log=context.log,
        )

    def write(
        self, result: Any, outdir: Path, context: Context, dataset: Any, worker: Any
    ) -> dict[str, Any]:
        from anodemap.correlate.output import write_correlation

        return write_correlation(result, outdir, figures=context.figures, worker=worker)

    def output_names(self) -> list[str]:
        from anodemap.correlate.output import output_names

        return output_names()

    def describe(self, summary: Mapping[str, Any], context: Context) -> None:
        for key, how in (("li_si_per_class", ""), ("li_si_unmixed_per_class", ", unmixed")):
            for row in summary.get(key, []):
                if row["value"] is None:
                    why = row.get("note") or f"no value ({row['flagged']} pixels flagged)"
                    context.log(f"Li/Si {row['group']}{how}: {why}")
                    continue
                counted = (
                    f"{row['effective_pixels']:.0f} pixel-equivalents"
                    if "effective_pixels" in row
                    else f"{row['counted']} pixels counted, {row['flagged']} flagged"
                )
                context.log(
                    f"Li/Si {row['group']}{how}: {row['value']:.2f} ± {row['se'] or 0:.2f} "
                    f"({counted})"
                )

    def compare_with_truth(
        self, result: Any, truth_dir: Path, outdir: Path, context: Context
    ) -> dict[str, Any]:
        """Each map's per-class means against the truth of the survey in ``truth_dir``
        (``labels.hspy``, ``li_per_si.hspy``: ``truth/haadf`` of ``anodemap simulate
        region``); ``truth_comparison.json`` (:mod:`anodemap.correlate.truth`)."""
        from anodemap.correlate.truth import compare_with_truth
        from anodemap.io.results import write_json

        comparison = compare_with_truth(result, truth_dir)
        write_json(comparison, outdir / "truth_comparison.json")
        for quantity, q in comparison["quantities"].items():
            for group, row in q["groups"].items():
                if row["error_same_pixels"] is None:
                    continue
                context.log(
                    f"against the truth, {quantity} {group}: {row['measured']:.2f} vs "
                    f"{row['truth_same_pixels']:.2f} over the same pixels "
                    f"({row['error_same_pixels']:+.2f})"
                )
        return comparison
