"""Real image files (../shared/data/real) through the io layer's image kind, with the
calibration HyperSpy reads, and ``anodemap features`` on each: a result or a plain
one-line refusal.

None of these files shows a battery anode (a needle tilt series, nanoparticles, a .bcf
test map): the classes they get are not checked, only that the command works on them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset, kinds, load, save

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"

# file -> (the title of its image signal in HyperSpy, or None for the only signal)
IMAGES = {
    "etspy/HAADF.dm3": None,
    "etspy/HAADF.mrc": None,
    "hyperspy/fei_emd_image.emd": None,
    "hyperspy/test_TEM.bcf": "HAADF",
    "hyperspy/fei_SI_SuperX-HAADF_10frames_10x50.emd": "HAADF",
}


def _path(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real test data not found at {path}")
    return path


def _hyperspy(path: Path, title: str | None):
    hs = pytest.importorskip("hyperspy.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.load(path)
    signals = s if isinstance(s, list) else [s]
    if title is None:
        assert len(signals) == 1
        return signals[0]
    (match,) = [x for x in signals if x.metadata.General.title == title]
    return match


def _units(value) -> str:
    return "" if str(value) == "<undefined>" else str(value)


def _assert_axes_as_hyperspy(ds: Dataset, s) -> None:
    assert ds.data.shape == s.data.shape
    assert ds.sig_shape == tuple(reversed(s.axes_manager.signal_shape))
    assert ds.nav_shape == tuple(reversed(s.axes_manager.navigation_shape))
    for ax, hax in zip(ds.axes, s.axes_manager._axes, strict=True):
        assert ax.size == hax.size and ax.navigate == hax.navigate
        assert ax.units == _units(hax.units)
        assert ax.scale == pytest.approx(hax.scale) and ax.offset == pytest.approx(hax.offset)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_each_real_image_opens_with_hyperspys_calibration(name):
    """The image kind picks the image of each file (the HAADF beside a .bcf's or an
    EMD's EDX spectra without --signal) with HyperSpy's shape, axes and units."""
    path = _path(name)
    ds = load(path, kind=kinds.image)
    assert kinds.image(ds) is None
    _assert_axes_as_hyperspy(ds, _hyperspy(path, IMAGES[name]))
    assert {a.units for a in ds.sig_axes} <= {"nm", "µm"}  # real-space, calibrated
    np.testing.assert_array_equal(np.asarray(ds.data), _hyperspy(path, IMAGES[name]).data)


def test_a_tiff_image_keeps_its_calibration(tmp_path):
    """TIFF (written by rosettasciio with its nm calibration) reads as HyperSpy reads it."""
    img = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64)
    axes = [Axis("y", 48, 0.8, 0.0, "nm", False), Axis("x", 64, 0.8, 0.0, "nm", False)]
    path = save(Dataset(img, axes), tmp_path / "haadf.tif")
    ds = load(path, kind=kinds.image)
    _assert_axes_as_hyperspy(ds, _hyperspy(path, None))
    assert [(a.scale, a.units) for a in ds.sig_axes] == [(pytest.approx(0.8), "nm")] * 2


@pytest.mark.parametrize(
    "name, why",
    [
        ("hyperspy/EELS_SI.dm4", "needs an image"),
        ("hyperspy/test_diffraction_pattern.dm3", "diffraction patterns"),
        ("hyperspy/16x16-diffraction_imagel_5x5x256x256_EDS.emi", "none of its 2 signals"),
    ],
)
def test_what_is_not_an_image_is_refused_in_words(name, why):
    with pytest.raises(AnodemapInputError, match=why):
        load(_path(name), kind=kinds.image)


# the result of anodemap features on each file, and the words of a refusal
RUNS = {
    ("hyperspy/fei_emd_image.emd",): "ok",
    ("hyperspy/test_TEM.bcf",): "ok",
    ("hyperspy/fei_SI_SuperX-HAADF_10frames_10x50.emd",): "ok",
    ("etspy/HAADF.dm3",): "the image at 0° is --frame 45",
    ("etspy/HAADF.dm3", "--frame", "45"): "ok",
    ("etspy/HAADF.mrc",): "choose it with --frame N (0-76)",
    ("etspy/HAADF.mrc", "--frame", "38"): "ok",
    ("etspy/HAADF.mrc", "--frame", "77"): "the series holds 77 images",
    ("hyperspy/EELS_SI.dm4",): "needs an image",
}


@pytest.mark.parametrize("args", sorted(RUNS), ids=lambda a: " ".join(a))
def test_anodemap_features_on_each_real_file(args, tmp_path, capsys):
    path = _path(args[0])
    out = tmp_path / "out"
    code = main(["features", str(path), *args[1:], "-o", str(out), "--no-figures", "-q"])
    err = capsys.readouterr().err
    expected = RUNS[args]
    if expected == "ok":
        assert code == 0, err
        summary = json.loads((out / "summary.json").read_text())
        assert sum(summary["class_pixels"].values()) == summary["n_pixels"]
        assert summary["pixel_size_nm"] > 0  # every real image here is calibrated
        return
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("anodemap: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert expected in errors[0] and path.name in errors[0], errors[0]
    assert not (out / "summary.json").exists()


def test_bcf_haadf_in_nm_and_scan_step_overrides(tmp_path):
    """The .bcf's HAADF (µm in the file) is written in nm; --scan-step sets the pixel."""
    path = _path("hyperspy/test_TEM.bcf")
    out = tmp_path / "a"
    assert main(["features", str(path), "-o", str(out), "--no-figures", "-q"]) == 0
    size = json.loads((out / "summary.json").read_text())["pixel_size_nm"]
    hs_scale = _hyperspy(path, "HAADF").axes_manager.signal_axes[0].scale  # µm
    assert size == pytest.approx(1000 * hs_scale)
    labels = load(out / "labels.hspy")
    assert [a.units for a in labels.axes] == ["nm", "nm"]
    out2 = tmp_path / "b"
    step = ["--scan-step", "2"]
    assert main(["features", str(path), "-o", str(out2), "--no-figures", "-q", *step]) == 0
    assert json.loads((out2 / "summary.json").read_text())["pixel_size_nm"] == 2.0
