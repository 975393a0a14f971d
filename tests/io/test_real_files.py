"""Real instrument files (../shared/data): read as HyperSpy reads them, and every
command either works on each or refuses it in plain words.

The files and what they hold are listed in ../shared/data/README.md. The tests skip,
saying why, where that folder is absent.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from anodemap.cli import main
from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io import kinds, load, load_all

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL = SHARED / "real"


def _files() -> list[str]:
    """Every file a user would open (not the .ser parts an .emi names, nor .rawtlt)."""
    if not REAL.exists():
        return []
    out = [
        str(p.relative_to(SHARED))
        for p in sorted(REAL.glob("*/*"))
        if not re.search(r"_\d\.ser$|\.rawtlt$|_split_00[1-9]\.tvips$", p.name)
    ]
    return [*out, "test1.blo"]


FILES = _files()


def _path(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (see ../shared/data/README.md)")
    return path


def _hs_signals(path: Path) -> list:
    hs = pytest.importorskip("hyperspy.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.load(path)
    return s if isinstance(s, list) else [s]


@pytest.mark.skipif(not FILES, reason=f"real test data not found under {REAL}")
@pytest.mark.parametrize("name", FILES)
def test_read_as_hyperspy_reads(name):
    """Shapes, axes (name, size, scale, offset, units, navigation) and signal type of
    every signal are HyperSpy's."""
    path = _path(name)
    ours = load_all(path)
    theirs = _hs_signals(path)
    assert len(ours) == len(theirs)
    for ds, s in zip(ours, theirs, strict=True):
        am = s.axes_manager
        assert ds.data.shape == s.data.shape
        # HyperSpy lists navigation axes x first; the array (and anodemap) y first
        assert ds.nav_shape == tuple(reversed(am.navigation_shape))
        assert ds.sig_shape == tuple(reversed(am.signal_shape))
        for ax, hax in zip(ds.axes, [a for a in am._axes], strict=True):
            hax_name = "" if str(hax.name) == "<undefined>" else str(hax.name)
            hax_units = "" if str(hax.units) == "<undefined>" else str(hax.units)
            assert (ax.name, ax.size, ax.navigate) == (hax_name, hax.size, hax.navigate)
            if hax.scale == 0:  # unknown step (TVIPS frame time): uncalibrated, not 0
                assert (ax.scale, ax.units) == (1.0, "")
            else:
                assert ax.units == hax_units and ax.scale == pytest.approx(hax.scale)
            assert ax.offset == pytest.approx(hax.offset)
        assert ds.signal_type == (s.metadata.Signal.get_item("signal_type") or "")
        np.testing.assert_array_equal(np.asarray(ds.data[(0,) * ds.data.ndim]), s.data.flat[0])


def test_gatan_dm4_spectrum_image_is_a_2x2_scan_of_spectra():
    ds = load(_path("real/hyperspy/EELS_SI.dm4"), lazy=True)
    assert ds.nav_shape == (2, 2) and ds.sig_shape == (2048,)
    e = ds.sig_axes[0]
    assert (e.units, e.offset, e.scale) == ("eV", pytest.approx(300.0), pytest.approx(1.0))
    # the reader's metadata mapping applied, as in HyperSpy
    assert ds.get_meta("Acquisition_instrument.TEM.beam_energy") == pytest.approx(
        _hs_signals(_path("real/hyperspy/EELS_SI.dm4"))[0].metadata.get_item(
            "Acquisition_instrument.TEM.beam_energy"
        )
    )


def test_mrc_reads_without_the_mrcz_package():
    # .mrc belongs to the MRC reader (the MRCZ reader also lists it, and needs mrcz)
    ds = load(_path("real/etspy/HAADF.mrc"))
    assert ds.nav_shape == (77,) and ds.sig_shape == (256, 256)


def test_several_signals_chosen_by_number_title_or_kind():
    path = _path("real/hyperspy/test_TEM.bcf")
    with pytest.raises(AnodemapIOError, match=r"holds 2 signals.*\[0\] HAADF.*\[1\] EDX.*--signal"):
        load(path)
    assert load(path, signal=0).title == "HAADF"
    assert load(path, signal="edx").signal_type == "EDS_TEM"
    assert load(path, signal="1").sig_shape == (2048,)
    with pytest.raises(AnodemapIOError, match=r"no signal 'EELS'.*--signal N"):
        load(path, signal="EELS")
    emi = _path("real/hyperspy/16x16-diffraction_imagel_5x5x256x256_EDS.emi")
    # of EDS and diffraction, the only 4D scan of patterns is the one a diffraction needs
    assert load(emi, kind=kinds.diffraction_scan).sig_shape == (256, 256)
    with pytest.raises(AnodemapInputError, match="needs a scan of diffraction patterns"):
        load(emi, signal=0, kind=kinds.diffraction_scan)


def test_a_missing_reader_package_is_named_not_called_corruption(monkeypatch):
    import builtins
    import importlib.util

    real_import = builtins.__import__

    def no_sparse(name, *args, **kwargs):
        if name == "sparse" or name.startswith("sparse."):
            raise ModuleNotFoundError("No module named 'sparse'", name="sparse")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sparse)
    real_find_spec = importlib.util.find_spec  # what rosettasciio's EMD reader asks
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sparse" else real_find_spec(name, *a),
    )
    path = _path("real/hyperspy/fei_SI_SuperX-HAADF_10frames_10x50.emd")
    with pytest.raises(AnodemapIOError) as err:
        load_all(path)
    assert "needs the Python package 'sparse'" in str(err.value)
    assert "corrupt" not in str(err.value)


def test_unchunked_hdf5_opens_lazily(tmp_path):
    """Data stored contiguously (as other software writes 4D data) open lazily, in
    blocks of rows."""
    h5py = pytest.importorskip("h5py")
    from anodemap.io import Dataset, save

    data = np.arange(4 * 5 * 8 * 8, dtype="float32").reshape(4, 5, 8, 8)
    path = save(Dataset(data), tmp_path / "c.hspy")
    with h5py.File(path, "r+") as f:
        key = next(k for k in f["Experiments"])
        node = f["Experiments"][key]
        attrs = dict(node["data"].attrs)
        del node["data"]
        dset = node.create_dataset("data", data=data)  # no chunks
        for k, v in attrs.items():
            dset.attrs[k] = v
        assert dset.chunks is None
    ds = load(path, lazy=True)
    assert ds.is_lazy
    np.testing.assert_array_equal(ds.data.compute(), data)


# ---------------------------------------------------------------- commands
# What each command must do with each file: "ok" (exit 0), or the words its refusal
# must contain. Files not named for a command must be refused with the file's name.
EXPECTED = {
    "eels": {
        "real/exspy/lowloss_spectrum.msa": "ok",
        "real/exspy/coreloss_spectrum.msa": "no zero-loss peak",
        "real/hyperspy/EELS_SI.dm4": "no zero-loss peak",
        "real/hyperspy/test_TEM.bcf": "none of its 2 signals",
        "real/exspy/EDS_TEM_FePt_nanoparticles.hspy": "EDX spectrum",
        "real/hyperspy/fei_SI_SuperX-HAADF_10frames_10x50.emd": "none of its 2 signals",
        "real/hyperspy/16x16-diffraction_imagel_5x5x256x256_EDS.emi": "none of its 2 signals",
    },
    "diffraction": {
        "test1.blo": "ok",
        "real/hyperspy/16x16-diffraction_imagel_5x5x256x256_EDS.emi": "--beam-energy",
        "real/hyperspy/128x128x5-diffraction_preview.emi": "--beam-energy",
        "real/hyperspy/test_tvips_2233_000.tvips": "anodemap stream",
        "real/hyperspy/test_tvips_2345_000.tvips": "anodemap stream",
        "real/hyperspy/test_diffraction_pattern.dm3": "not a scan",
        "real/etspy/HAADF.dm3": "tilt series",
    },
    "stream": {
        "real/hyperspy/test_tvips_2233_000.tvips": "ok",
        "real/hyperspy/test_tvips_2345_000.tvips": "--scan-shape NY NX",
        "real/hyperspy/test_tvips_2345_split_000.tvips": "--scan-shape NY NX",
    },
}

# advice in terms of Python arguments (name=...) that the command line does not take
_PYTHON_ADVICE = re.compile(r"\b(?:pass|with|choose one with) [a-z_]+=|\b[a-z]+_[a-z_]+=")


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.skipif(not FILES, reason=f"real test data not found under {REAL}")
@pytest.mark.parametrize("command", sorted(EXPECTED))
@pytest.mark.parametrize("name", FILES)
def test_every_command_works_or_refuses_plainly(command, name, tmp_path, capsys):
    path = _path(name)
    out = tmp_path / ("scan.zspy" if command == "stream" else "out")
    code, err = _run(
        [command, str(path), "-o", str(out), "--no-progress"]
        + (["--no-figures"] if command != "stream" else []),
        capsys,
    )
    expected = EXPECTED[command].get(name)
    if expected == "ok":
        assert code == 0, err
        assert (out / "summary.json").exists() if command != "stream" else out.exists()
        return
    assert code == 2, f"expected a refusal, got exit {code}:\n{err}"
    message = err.strip().splitlines()[-1]
    assert message.startswith("anodemap: error: "), err
    assert "Traceback" not in err
    assert not _PYTHON_ADVICE.search(message), message
    assert str(path) in message or path.name in message, message
    if expected is not None:
        assert expected in message, message
    assert not (out / "summary.json").exists()


@pytest.mark.parametrize(
    "name",
    [
        "real/hyperspy/128x128x5-diffraction_preview.emi",
        "real/hyperspy/16x16-diffraction_imagel_5x5x256x256_EDS.emi",
    ],
)
def test_tia_diffraction_with_the_beam_energy_refused_for_want_of_a_beam(name, tmp_path, capsys):
    """Given the beam energy the file lacks, the TIA diffraction signals (a stack of 5
    run as a line of 5; a 5 x 5 scan chosen beside its EDX signal) are analysed up to
    the direct beam, which they do not show: a plain refusal."""
    path = _path(name)
    code, err = _run(
        ["diffraction", str(path), "-o", str(tmp_path / "o"), "--beam-energy", "200"]
        + ["--no-progress", "--no-figures"],
        capsys,
    )
    message = err.strip().splitlines()[-1]
    # these frames hold noise around zero counts (dark-subtracted, negative values) and
    # no direct beam: looked at, pattern by pattern
    assert code == 2, err
    assert "no direct beam found" in message and path.name in message, err
    assert not _PYTHON_ADVICE.search(message), message
    assert not (tmp_path / "o" / "summary.json").exists()
