"""The ADF/HAADF image recorded with an EELS spectrum image (issue 18 item 1): kept beside
the maps (from the input file, or `--adf` for a file of its own), refused in one line
when it is not the scan's, and used by `anodemap correlate` to register the EELS maps.

The ADF of the simulated region's EELS scan is simulated by the HAADF forward model
(anodemap.synth.haadf, Z-contrast x thickness with Poisson noise) over the EELS scan's
own positions; the registration is checked against where every pixel truly looked.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.io import load, save


def _run(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """The simulated region of seed 1 and an ADF image of its EELS scan."""
    from anodemap.synth import make_phantom
    from anodemap.synth.haadf import haadf_dataset
    from anodemap.synth.region import DEFAULT_VIEWS, view_haadf, write_region

    root = tmp_path_factory.mktemp("eels_adf")
    files = write_region(root, seed=1)
    truth = json.loads((root / "truth" / "region.json").read_text())
    phantom = make_phantom(
        tuple(truth["phantom"]["shape"]),
        pixel_size_nm=truth["phantom"]["pixel_size_nm"],
        seed=1,
    )
    v = DEFAULT_VIEWS["eels"]
    sim = view_haadf(phantom, v, seed=11, jitter_px=0.0)
    # the EELS scan's own positions: the ADF was recorded pixel by pixel with the spectra
    y, x = v.positions()
    assert np.allclose(sim.truth["sample_y_nm"], y) and np.allclose(sim.truth["sample_x_nm"], x)
    adf = haadf_dataset(sim, title="ADF")
    files["adf"] = save(adf, root / "eels_adf.hspy")
    return root, files


def test_the_adf_is_kept_beside_the_maps(region, tmp_path):
    root, files = region
    out = tmp_path / "eels"
    code = _run("eels", files["eels"], "--adf", files["adf"], "-o", out, "-q", "--no-figures")
    assert code == 0
    kept = load(out / "adf.hspy")
    np.testing.assert_array_equal(np.asarray(kept.data), np.asarray(load(files["adf"]).data))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == {"adf": "ADF"} and "adf.hspy" in summary["files"]


def test_an_image_of_another_shape_is_refused_naming_the_option(region, tmp_path, capsys):
    root, files = region
    code = _run("eels", files["eels"], "--adf", files["haadf"], "-o", tmp_path / "o", "-q")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--adf" in err[0] and "no image of the scan's" in err[0] and "Traceback" not in err[0]


def test_images_in_the_input_file_are_kept(region, monkeypatch):
    """A file that holds the spectra and the HAADF of the same scan (a Velox .emd): the
    image comes with the spectra; an image of another shape does not."""
    import anodemap.io as io
    from anodemap.analysis import get_analysis

    root, files = region
    spectra = load(files["eels"], lazy=True)
    adf = load(files["adf"])
    adf.set_meta("General.title", "HAADF")
    survey = load(files["haadf"])  # another shape: not this scan's
    monkeypatch.setattr(io, "load_all", lambda path, lazy=False: [spectra, survey, adf])
    ds = get_analysis("eels").load(files["eels"])
    assert [im.title for im in ds.images] == ["HAADF"]


def test_correlate_registers_the_eels_maps_by_the_adf(region, tmp_path):
    """With the ADF kept, the EELS maps are registered by it (not by t/λ), within half an
    EELS pixel of the truth over the survey pixels the EELS scan saw."""
    from anodemap.correlate.inputs import read_modality
    from anodemap.registration import register
    from anodemap.synth.region import DEFAULT_VIEWS

    root, files = region
    out = tmp_path / "eels"
    assert _run("eels", files["eels"], "--adf", files["adf"], "-o", out, "-q", "--no-figures") == 0
    mod = read_modality("eels", out, "--eels")
    assert mod.image_name == "adf.hspy"
    survey = np.asarray(load(files["haadf"]).data, float)
    v = DEFAULT_VIEWS["eels"]
    reg = register(survey, mod.image, reference_pixel_nm=1.5, moving_pixel_nm=v.pixel_size_nm)
    ref_yx = np.stack(
        [load(root / "truth" / "haadf" / f"sample_{a}_nm.hspy").data for a in "yx"], -1
    )
    true = v.pixel_of(ref_yx)
    ij = np.stack(np.indices(survey.shape), -1).astype(float)
    inside = (
        (true >= 0).all(-1) & (true[..., 0] <= v.shape[0] - 1) & (true[..., 1] <= v.shape[1] - 1)
    )
    err = np.linalg.norm(reg.transform.apply(ij) - true, axis=-1)[inside]
    assert np.sqrt(np.mean(err**2)) < 0.5, (np.sqrt(np.mean(err**2)), err.max())


def test_an_image_for_a_single_spectrum_is_refused(exspy_lowloss_msa, region, tmp_path, capsys):
    """A real single spectrum (exspy's low-loss .msa) has no scan for an image."""
    _, files = region
    code = _run("eels", exspy_lowloss_msa, "--adf", files["adf"], "-o", tmp_path / "o", "-q")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--adf" in err[0] and "not a 2-D scan" in err[0] and "unexpected" not in err[0]
