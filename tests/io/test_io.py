"""Files in and out: round trips, HyperSpy compatibility, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io import Axis, Dataset, load, load_all, save, supported_extensions


def _cube() -> Dataset:
    rng = np.random.default_rng(0)
    ds = Dataset(
        rng.random((3, 4, 50)).astype("float32"),
        [
            Axis("y", 3, 5.0, 10.0, "nm"),
            Axis("x", 4, 5.0, 0.0, "nm"),
            Axis("Energy loss", 50, 0.1, -1.0, "eV", navigate=False),
        ],
    )
    ds.set_meta("Signal.signal_type", "EELS")
    ds.set_meta("General.title", "cube")
    return ds


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_round_trip_keeps_axes_and_metadata(tmp_path, ext):
    ds = _cube()
    path = save(ds, tmp_path / f"cube.{ext}")
    for lazy in (False, True):
        back = load(path, lazy=lazy)
        assert back.is_lazy == lazy
        np.testing.assert_array_equal(np.asarray(back.data), ds.data)
        for a, b in zip(back.axes, ds.axes, strict=True):
            assert (a.name, a.size, a.scale, a.offset, a.units, a.navigate) == (
                b.name,
                b.size,
                b.scale,
                b.offset,
                b.units,
                b.navigate,
            )
        assert back.signal_type == "EELS" and back.title == "cube"
    # no temporary file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"cube.{ext}"]


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_hyperspy_opens_what_we_write(tmp_path, ext):
    hs = pytest.importorskip("hyperspy.api")
    path = save(_cube(), tmp_path / f"cube.{ext}")
    s = hs.load(path)
    am = s.axes_manager
    assert s.axes_manager.navigation_shape == (4, 3)
    assert am.signal_axes[0].units == "eV"
    assert am.signal_axes[0].offset == pytest.approx(-1.0)
    assert am.signal_axes[0].scale == pytest.approx(0.1)
    assert am.navigation_axes[1].offset == pytest.approx(10.0)
    assert s.metadata.Signal.signal_type == "EELS"


def test_to_hyperspy_matches_axes():
    pytest.importorskip("hyperspy.api")
    s = _cube().to_hyperspy()
    assert s.data.shape == (3, 4, 50)
    assert s.axes_manager.signal_axes[0].name == "Energy loss"


def test_reads_real_msa_with_calibration(exspy_lowloss_msa):
    # MSA has no lazy reader: lazy=True falls back to reading it eagerly
    assert not load(exspy_lowloss_msa, lazy=True).is_lazy
    ds = load(exspy_lowloss_msa)
    assert ds.sig_shape == (2048,)
    ax = ds.sig_axes[0]
    assert ax.units == "eV" and ax.scale == pytest.approx(0.2) and ax.offset == pytest.approx(-40.0)
    assert ds.signal_type == "EELS"


def test_reads_real_blo(shared_blo):
    ds = load(shared_blo)
    # 3 rows x 2 columns of 12.8 nm steps (shared/data/README.md), 144 x 144 uint8 patterns
    assert ds.nav_shape == (3, 2) and ds.sig_shape == (144, 144)
    assert [a.scale for a in ds.nav_axes] == pytest.approx([12.8, 12.8])
    assert ds.nav_axes[0].units == "nm"
    assert ds.data.dtype == np.uint8


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.dm4"):
        load(tmp_path / "nothere.dm4")


def test_unknown_extension(tmp_path):
    p = tmp_path / "data.xyz123"
    p.write_bytes(b"abc")
    with pytest.raises(AnodemapIOError, match=r"data\.xyz123.*cannot read"):
        load(p)


def test_empty_and_truncated_files(tmp_path):
    empty = tmp_path / "empty.dm4"
    empty.write_bytes(b"")
    with pytest.raises(AnodemapIOError, match="empty"):
        load(empty)
    good = save(_cube(), tmp_path / "cube.hspy")
    truncated = tmp_path / "truncated.hspy"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(AnodemapIOError, match="truncated.hspy.*truncated or corrupt"):
        load(truncated)
    garbage = tmp_path / "garbage.dm3"
    garbage.write_bytes(b"\x00\x01" * 300)
    with pytest.raises(AnodemapIOError, match="garbage.dm3"):
        load(garbage)


def test_failed_write_leaves_nothing(tmp_path):
    class Bad(Dataset):
        def to_dict(self):
            raise RuntimeError("boom")

    ds = _cube()
    bad = Bad(ds.data, ds.axes, ds.metadata)
    with pytest.raises(AnodemapIOError, match="could not be written"):
        save(bad, tmp_path / "x.hspy")
    assert list(tmp_path.iterdir()) == []


def test_axes_must_match_data():
    with pytest.raises(AnodemapInputError, match="size 5"):
        Dataset(np.zeros((3, 4)), [Axis("y", 3), Axis("x", 5, navigate=False)])


def test_signal_axes_are_moved_last():
    ds = Dataset(np.zeros((7, 3)), [Axis("E", 7, navigate=False), Axis("x", 3)])
    assert ds.data.shape == (3, 7) and ds.sig_shape == (7,)


def test_nonuniform_axis_detected_and_uniform_values_collapsed():
    uni = Axis.from_dict({"name": "E", "axis": np.arange(5) * 0.5 + 1, "navigate": False})
    assert uni.is_uniform and uni.scale == pytest.approx(0.5) and uni.offset == pytest.approx(1)
    non = Axis.from_dict({"name": "E", "axis": np.array([0, 1, 3, 7.0]), "navigate": False})
    assert not non.is_uniform


def test_load_all_and_index(tmp_path):
    path = save(_cube(), tmp_path / "c.hspy")
    assert len(load_all(path)) == 1
    with pytest.raises(AnodemapIOError, match="no signal .3.*--signal"):
        load(path, index=3)


def test_supported_extensions_include_instrument_formats():
    ext = supported_extensions()
    for e in ("dm3", "dm4", "msa", "hspy", "zspy", "emd", "blo", "tvips", "bcf"):
        assert e in ext
    assert "hspy" in supported_extensions(write=True)


def test_writer_options_reach_rosettasciio(tmp_path):
    h5py = pytest.importorskip("h5py")
    ds = _cube()
    save(ds, tmp_path / "gz.hspy")
    save(ds, tmp_path / "raw.hspy", writer_options={"compression": None})
    with h5py.File(tmp_path / "gz.hspy") as f:
        assert f["Experiments/cube/data"].compression == "gzip"
    with h5py.File(tmp_path / "raw.hspy") as f:
        assert f["Experiments/cube/data"].compression is None
    np.testing.assert_array_equal(load(tmp_path / "raw.hspy").data, ds.data)
