"""TVIPS stream -> 4D: reading, scan reconstruction against simulated truth, .zspy/.blo."""

from __future__ import annotations

import os
import tracemalloc
import warnings

import numpy as np
import pytest

from anodemap.diffraction.scan import features as _features
from anodemap.diffraction.scan import geometry as _geometry
from anodemap.diffraction.scan import search as _search
from anodemap.diffraction.stream import (
    FRAME_HEADER_DTYPE,
    GENERAL_HEADER_DTYPE,
    TvipsRecording,
    blo_calibration,
    electron_wavelength,
    plan_to_dataset,
    reconstruct_scan,
    stream_to_file,
    write_blo,
)
from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io import Axis, Dataset, load
from anodemap.io import blockfile as _blockfile
from anodemap.synth.tvips import write_tvips_recording


def _sim(tmp_path, **kw):
    kw.setdefault("seed", 1)
    return write_tvips_recording(tmp_path / "scan", **kw)


# ----------------------------------------------------------------- reader
def test_reader_reads_parts_lazily_with_headers(tmp_path):
    sim = _sim(tmp_path, frames_per_part=30, frame_header_extra_bytes=4, scan_shape=(6, 8))
    rec = TvipsRecording(sim.paths[0])
    assert len(rec.parts) == len(sim.paths) == 1 + (sim.n_frames - 1) // 30
    assert rec.n_frames == sim.n_frames and rec.frame_shape == (32, 32)
    assert rec.dtype == np.uint16
    # a read across the part boundary gives consecutive frame counters and rotator indices
    headers, frames = rec.read(25, 35)
    assert frames.shape == (10, 32, 32)
    assert headers["num"].tolist() == list(range(25, 35))
    np.testing.assert_array_equal(headers["rotidx"], sim.rotidx[25:35])
    # scattered reads agree with the block read; -1 gives zeros
    picked = rec.read_frames([34, -1, 25])
    np.testing.assert_array_equal(picked[0], frames[9])
    np.testing.assert_array_equal(picked[2], frames[0])
    assert not picked[1].any()


def test_recording_frames_agree_with_rosettasciio(tmp_path):
    from rsciio.tvips import file_reader

    sim = _sim(tmp_path, frames_per_part=50, scan_shape=(4, 6))
    ours = TvipsRecording(sim.paths[0]).read(0, sim.n_frames)[1]
    theirs = file_reader(str(sim.paths[0]), lazy=False)[0]["data"]
    np.testing.assert_array_equal(ours, theirs)


def _write_raw_recording(path, frames, header_extra=0):
    """A one-part TVIPS recording of given frames (any pixel type), no scan positions."""
    n, h, w = frames.shape
    gh = np.zeros(1, GENERAL_HEADER_DTYPE)
    gh["size"], gh["version"], gh["dimx"], gh["dimy"] = 256, 2, w, h
    gh["bitsperpixel"] = 8 * frames.dtype.itemsize
    gh["frameheaderbytes"] = FRAME_HEADER_DTYPE.itemsize + header_extra
    fields = list(FRAME_HEADER_DTYPE.descr)
    if header_extra:
        fields.append(("_pad", f"V{header_extra}"))
    recs = np.zeros(n, fields + [("data", frames.dtype.newbyteorder("<"), (h, w))])
    recs["num"] = np.arange(n)
    recs["timestamp"] = 1_700_000_000 + np.arange(n) // 100
    recs["ms"] = (10 * np.arange(n)) % 1000
    recs["data"] = frames
    with open(path, "wb") as f:
        f.write(gh.tobytes())
        f.write(recs.tobytes())
    return path


def _numpy_features(frames, masks):
    """Per-frame features computed the plain way (exact integers)."""
    f = frames.reshape(len(frames), -1).astype(np.int64)
    det = f @ masks.astype(np.int64)
    total = f.sum(axis=1)
    sq = np.square(np.diff(f, axis=0)).sum(axis=1)
    change = np.concatenate([[np.inf], sq / np.maximum(total[1:] + total[:-1], 1.0)])
    return det, total, f.max(axis=1), change


@pytest.mark.parametrize(
    "kind", ["uint16 simulated, 3 parts", "uint8, odd header", "uint32 beyond float32"]
)
def test_fused_frame_features_equal_numpy(tmp_path, kind):
    rng = np.random.default_rng(3)
    if kind.startswith("uint16"):
        sim = _sim(tmp_path, scan_shape=(6, 9), frames_per_part=25, duplicates=(4,))
        rec = TvipsRecording(sim.paths[0])
    elif kind.startswith("uint8"):
        frames = rng.integers(0, 256, (41, 12, 10), dtype=np.uint8)
        # 61-byte frame headers: pixels not aligned; the kernels get a contiguous copy
        rec = TvipsRecording(_write_raw_recording(tmp_path / "u8_000.tvips", frames, 1))
    else:
        # sums above 2**24 are not exact in float32 (the former matmul's type)
        frames = rng.integers(0, 2**26, (23, 8, 8), dtype=np.uint32)
        rec = TvipsRecording(_write_raw_recording(tmp_path / "u32_000.tvips", frames))
    headers, frames = rec.read(0, rec.n_frames)
    # chunks of 7 frames: the change of each chunk's first frame needs the previous chunk
    feat = _features.frame_features(rec, chunk_frames=7, progress=False)
    masks = _features._detector_matrix(rec.frame_shape, feat.center, feat.bf_radius) > 0
    assert masks[:, 0].any() and masks[:, 1:].any()
    det, total, fmax, change = _numpy_features(frames, masks)
    np.testing.assert_array_equal(feat.detectors, det.astype(np.float32))
    np.testing.assert_array_equal(feat.total, total.astype(np.float64))
    np.testing.assert_array_equal(feat.fmax, fmax.astype(np.float64))
    np.testing.assert_array_equal(feat.change, change)
    np.testing.assert_array_equal(feat.rotidx, headers["rotidx"])
    np.testing.assert_array_equal(feat.time, headers["timestamp"] + headers["ms"] / 1000.0)
    if kind.startswith("uint32"):
        assert total.max() > 2**24


def test_gather_reads_frames_in_any_order(tmp_path):
    sim = _sim(tmp_path, scan_shape=(5, 7), frames_per_part=11)
    rec = TvipsRecording(sim.paths[0])
    frames = rec.read(0, rec.n_frames)[1]
    rng = np.random.default_rng(0)
    # scattered (several reads), repeated, missing, across parts
    idx = rng.integers(-1, rec.n_frames, 60)
    idx[:3] = [rec.n_frames - 1, 0, -1]
    got = rec.read_frames(idx)
    ok = idx >= 0
    np.testing.assert_array_equal(got[ok], frames[idx[ok]])
    assert not got[~ok].any()
    with pytest.raises(AnodemapInputError, match="beyond"):
        rec.read_frames([rec.n_frames])


def _resident_pages(path) -> np.ndarray | None:
    """Which pages of a file are in the page cache (1) or not (0): Linux ``mincore``."""
    import ctypes
    import mmap
    import sys

    if not sys.platform.startswith("linux"):
        return None
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        first = ctypes.c_char.from_buffer(m)
        vec = (ctypes.c_ubyte * -(-size // mmap.PAGESIZE))()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        ok = libc.mincore(ctypes.addressof(first), size, vec) == 0
        del first
        return np.frombuffer(vec, np.uint8) & 1 if ok else None
    finally:
        m.close()


def _uncached(path) -> None:
    """Write back and drop a file's pages (those of a file just written may stay)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.fixture
def page_cache(tmp_path):
    """Skip unless tmp_path's file system drops pages on request and mincore tells."""
    probe = tmp_path / "probe.bin"
    probe.write_bytes(b"x" * (64 * 4096))
    _uncached(probe)
    probe.read_bytes()
    cached = _resident_pages(probe)
    _uncached(probe)
    res = _resident_pages(probe)
    if res is None or not cached.all() or res.any():
        pytest.skip("this file system or OS keeps pages on POSIX_FADV_DONTNEED (or no mincore)")


def test_release_drops_exactly_the_pages_of_the_frames(tmp_path, page_cache):
    # the conversion frees the pages of frames it has read for the last time
    sim = _sim(tmp_path, scan_shape=(6, 16), frame_shape=(64, 64), frames_per_part=10**6)
    rec = TvipsRecording(sim.paths[0])
    part = rec.parts[0]
    _uncached(part)
    frames = rec.read(0, rec.n_frames)[1]  # everything read: all pages cached
    assert _resident_pages(part).all()
    got = rec.read_frames(np.arange(20, 40), release=True)
    np.testing.assert_array_equal(got, frames[20:40])
    res = _resident_pages(part)
    page, rsize = os.sysconf("SC_PAGESIZE"), rec.record_dtype.itemsize
    a, b = rec.offsets[0] + 20 * rsize, rec.offsets[0] + 40 * rsize
    inside = np.arange(-(-a // page), b // page)  # pages wholly inside frames 20..39
    assert inside.size >= 30 and not res[inside].any()
    assert res[: a // page].all() and res[-(-b // page) :].all()  # neighbours stay
    np.testing.assert_array_equal(rec.read_frames(np.arange(20, 40)), frames[20:40])
    rec.release(rec.n_frames - 3, 100)  # clipped at the end of the recording
    assert not _resident_pages(part)[-2:].any()


def test_uint8_table_equals_formula():
    # the table is the formula on every pixel value, so both agree element by element
    for dtype in (np.uint8, np.uint16):
        values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(-1, 16)
        for lo, hi in ((0.0, 1881.0), (3.5, 200.25), (0.0, 65535.0)):
            np.testing.assert_array_equal(
                _blockfile._to_uint8(values, lo, hi), _blockfile._to_uint8_formula(values, lo, hi)
            )
    v32 = np.array([0, 5, 2**20, 2**31], np.uint32)
    assert _blockfile._to_uint8(v32, 0.0, 2.0**20).tolist() == [0, 0, 255, 255]


def test_mean_of_columns_has_numpys_bits():
    rng = np.random.default_rng(5)
    for k in (3, 8, 9, 12, 20):
        x = (rng.normal(size=(40, 33, k)) * 10.0 ** rng.uniform(-3, 3, (40, 33, k))).astype(
            np.float32
        )
        x[rng.random(x.shape) < 0.01] = np.nan
        got = _geometry._mean_of_columns([x[..., j] for j in range(k)])
        np.testing.assert_array_equal(got, x.mean(axis=-1))


# ---------------------------------------------------------- reconstruction
CASES = {
    "headers serpentine": dict(),
    "headers flyback": dict(serpentine=False),
    "headers duplicates drops parts": dict(
        duplicates=(0, 3, 50, 101), drops=(7, 200), frames_per_part=100
    ),
    "headers reset after scan, tall scan": dict(
        scan_shape=(20, 16), after_rotidx="zero", duplicates=(318,)
    ),
    "content serpentine": dict(headers=False),
    "content flyback": dict(headers=False, serpentine=False),
    "content blanked beam, negative hysteresis": dict(headers=False, idle="blank", hysteresis=-3),
    "content drops from timestamps": dict(headers=False, drops=(30, 77)),
    "content no timestamps": dict(
        headers=False, timestamps=False, scan_shape=(12, 25), hysteresis=4
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reconstruction_recovers_truth(tmp_path, case):
    kw = CASES[case]
    sim = _sim(tmp_path, **kw)
    plan = reconstruct_scan(sim.paths[0])
    assert plan.scan_shape == sim.scan_shape
    assert plan.serpentine == sim.serpentine
    assert plan.hysteresis == sim.hysteresis
    assert plan.first_frame == sim.first_frame
    # every output pixel holds the frame recorded there (first of duplicates), -1 if dropped
    np.testing.assert_array_equal(plan.frame_index, sim.frame_of_pixel)
    assert sorted(plan.missing) == sorted(sim.dropped)
    expected = "headers" if kw.get("headers", True) else "content"
    assert plan.found_by["start_end"] == expected
    assert plan.found_by["line_length"] == "content"
    if kw.get("headers", True):
        assert sorted(plan.duplicate_frames.tolist()) == sorted(sim.duplicate_frames)
    # report: human-readable and JSON-able
    text = plan.summary()
    assert f"{sim.scan_shape[0]} x {sim.scan_shape[1]}" in text
    d = plan.as_dict()
    assert d["frames_before_scan"] == sim.first_frame and d["n_missing"] == len(sim.dropped)
    import json

    json.dumps(d)


@pytest.mark.parametrize(("shape", "size", "seed"), [((20, 20), 32, 1), ((24, 24), 64, 0)])
def test_line_length_on_a_simulated_electrode(tmp_path, shape, size, seed):
    """The simulated electrode's patterns change slowly along a line (large amorphous
    regions), so frames two apart agree better than frames a line apart; lines of two
    frames must still not win over the true line length (they did, as 200 x 2 and
    288 x 2, while only the frame after was the left neighbour of length 2)."""
    from anodemap.synth import make_phantom
    from anodemap.synth.diffraction import simulate_diffraction, to_dataset

    sim = simulate_diffraction(
        make_phantom(shape, seed=seed), pattern_shape=(size, size), seed=seed
    )
    n = shape[0] * shape[1]
    rec = write_tvips_recording(
        tmp_path / "e",
        patterns=np.asarray(to_dataset(sim).data),
        duplicates=(n // 3,),
        drops=(2 * n // 3,),
        seed=seed,
    )
    plan = reconstruct_scan(rec.paths[0])
    assert (plan.scan_shape, plan.serpentine, plan.hysteresis) == (shape, True, 2)
    np.testing.assert_array_equal(plan.frame_index, rec.frame_of_pixel)
    assert plan.scores["peak_prominence"] > 0


def test_overrides_win(tmp_path):
    sim = _sim(tmp_path)
    plan = reconstruct_scan(sim.paths[0], (20, 16), serpentine=False)
    assert plan.scan_shape == (20, 16) and not plan.serpentine and plan.hysteresis == 0
    assert plan.found_by["line_length"] == "user" and plan.found_by["serpentine"] == "user"
    plan = reconstruct_scan(sim.paths[0], serpentine=True, hysteresis=3)
    assert plan.scan_shape == (16, 20) and plan.serpentine and plan.hysteresis == 3
    assert plan.found_by["hysteresis"] == "user"
    # content mode: a user start frame and shape define the frames used
    sim2 = _sim(tmp_path / "b", headers=False)
    plan = reconstruct_scan(sim2.paths[0], (16, 20), first_frame=sim2.first_frame + 1)
    assert plan.first_frame == sim2.first_frame + 1
    assert plan.found_by["start_end"] == "user"
    # calibrations given by the user win over the header
    plan = reconstruct_scan(sim.paths[0], beam_energy=300.0, reciprocal_pixel_size=0.0123)
    assert plan.calibration["beam_energy"] == 300.0
    assert plan.calibration["reciprocal_pixel_size_source"] == "user"


# ------------------------------------------------------------ bad input
def test_scan_shape_that_does_not_fit(tmp_path):
    sim = _sim(tmp_path)
    with pytest.raises(AnodemapInputError, match=r"--scan-shape 16 21 .*320 positions"):
        reconstruct_scan(sim.paths[0], (16, 21))
    sim2 = _sim(tmp_path / "b", headers=False)
    with pytest.raises(AnodemapInputError, match=r"--scan-shape 40 40 needs 1600 frames"):
        reconstruct_scan(sim2.paths[0], (40, 40))
    with pytest.raises(AnodemapInputError, match="--first-frame 9999 is outside"):
        reconstruct_scan(sim2.paths[0], first_frame=9999)


def test_missing_and_truncated_parts_are_named(tmp_path):
    sim = _sim(tmp_path, frames_per_part=100)
    assert len(sim.paths) == 4
    with pytest.raises(AnodemapInputError, match="scan_001.tvips.*pass the first part"):
        TvipsRecording(sim.paths[1])
    # truncated last part
    last = sim.paths[-1]
    raw = last.read_bytes()
    last.write_bytes(raw[:-100])
    with pytest.raises(AnodemapIOError, match=r"scan_003\.tvips.*truncated"):
        TvipsRecording(sim.paths[0])
    with pytest.warns(UserWarning, match="incomplete frame is skipped"):
        rec = TvipsRecording(sim.paths[0], allow_truncated=True)
    assert rec.n_frames == sim.n_frames - 1
    # missing middle part
    sim.paths[1].unlink()
    with pytest.raises(AnodemapIOError, match=r"scan_001\.tvips: part missing"):
        TvipsRecording(sim.paths[0])
    with pytest.raises(FileNotFoundError, match="nope_000.tvips"):
        TvipsRecording(tmp_path / "nope_000.tvips")
    # header-only first part
    short = tmp_path / "short_000.tvips"
    short.write_bytes(b"\0" * 100)
    with pytest.raises(AnodemapIOError, match="short_000.tvips.*truncated"):
        TvipsRecording(short)


# ---------------------------------------------------------------- writing
def test_stream_to_zspy_round_trip(tmp_path):
    sim = _sim(tmp_path, duplicates=(5,), drops=(9,), frames_per_part=90)
    out = tmp_path / "out.zspy"
    plan = stream_to_file(sim.paths[0], out, scan_step=2.5, progress=False, rows_per_chunk=4)
    ds = load(out, lazy=True)
    assert ds.data.shape == (16, 20, 32, 32) and ds.data.dtype == np.uint16
    assert ds.data.chunks[0] == (4, 4, 4, 4)  # written chunk by chunk
    names = [a.name for a in ds.axes]
    assert names == ["y", "x", "ky", "kx"]
    assert ds.axes[0].units == "nm" and ds.axes[0].scale == pytest.approx(2.5)
    assert ds.axes[2].units == "1/Å" and ds.axes[2].scale == pytest.approx(0.1)
    assert ds.get_meta("Acquisition_instrument.TEM.beam_energy") == pytest.approx(200.0)
    assert ds.get_meta("Stream.scan_shape") == [16, 20]
    data = np.asarray(ds.data)
    frames = TvipsRecording(sim.paths[0]).read(0, sim.n_frames)[1]
    ok = sim.frame_of_pixel >= 0
    np.testing.assert_array_equal(data[ok], frames[sim.frame_of_pixel[ok]])
    assert not data[~ok].any()  # dropped position: zeros, listed in the report
    assert plan.missing == sim.dropped


def test_zspy_compressor(tmp_path):
    import json

    sim = _sim(tmp_path)
    codecs = {}
    for name, comp in (("default", "default"), ("rsciio", None)):
        out = tmp_path / f"{name}.zspy"
        stream_to_file(sim.paths[0], out, progress=False, compressor=comp)
        meta = json.loads((out / ".zmetadata").read_text())["metadata"]
        (zarray,) = [v for k, v in meta.items() if k.endswith("data/.zarray")]
        codecs[name] = zarray["compressor"]
        np.testing.assert_array_equal(
            np.asarray(load(out).data)[sim.frame_of_pixel >= 0],
            TvipsRecording(sim.paths[0]).read_frames(sim.frame_of_pixel[sim.frame_of_pixel >= 0]),
        )
    assert codecs["default"]["cname"] == "lz4" and codecs["default"]["shuffle"] == 2
    assert codecs["rsciio"]["cname"] == "zstd" and codecs["rsciio"]["shuffle"] == 1
    with pytest.raises(AnodemapInputError, match="compressor='fast'"):
        stream_to_file(sim.paths[0], tmp_path / "x.zspy", progress=False, compressor="fast")


def _tree(path):
    return {str(f.relative_to(path)): f.read_bytes() for f in path.rglob("*") if f.is_file()}


@pytest.fixture
def early_speculation(monkeypatch):
    """Provisional plans from 64 frames on, and a hook call every 25 frames.

    (The defaults wait for 1024 frames and read 2 MiB between calls: longer than the
    small simulated recordings.)
    """
    from anodemap.diffraction import _single_pass

    monkeypatch.setattr(_single_pass, "PREFIX_MIN_FRAMES", 64)
    rec_bytes = 32 * 32 * 2 + FRAME_HEADER_DTYPE.itemsize
    monkeypatch.setattr(_features, "_FEATURE_CHUNK_BYTES", 25 * rec_bytes)
    return _single_pass


@pytest.mark.parametrize("case", list(CASES))
def test_single_pass_zspy_is_the_two_pass_file(tmp_path, case, early_speculation):
    """Written while reading, the store is byte for byte the two-pass one."""
    sim = _sim(tmp_path, **CASES[case])
    kw = dict(progress=False, rows_per_chunk=3, scan_step=1.5)
    two = stream_to_file(sim.paths[0], tmp_path / "two.zspy", single_pass=False, **kw)
    one = stream_to_file(sim.paths[0], tmp_path / "one.zspy", **kw)
    assert _tree(tmp_path / "one.zspy") == _tree(tmp_path / "two.zspy")
    np.testing.assert_array_equal(one.frame_index, two.frame_index)
    rep = one.scores["single_pass"]
    assert rep["blocks"] == -(-sim.scan_shape[0] // 3)
    assert rep["written_while_reading"] + rep["written_after"] == rep["blocks"]
    assert rep["writer_threads"] >= 2
    # the small recording is read in about 13 calls: a plan is accepted on the way and
    # the first blocks are written from it (the rest may come after: threads)
    assert any(a["accepted"] for a in rep["provisional_plans"])
    assert rep["written_while_reading"] >= 1
    assert "single_pass" not in two.scores
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []


@pytest.mark.parametrize("cores, writers", [(1, 2), (2, 2), (4, 3), (9, 8), (64, 8)])
def test_writer_threads_follow_the_cores(monkeypatch, cores, writers):
    from anodemap.diffraction import _single_pass

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert _single_pass._writer_threads() == writers


@pytest.mark.parametrize("how", ["single pass", "two passes", "blo"])
def test_conversion_leaves_the_scan_out_of_the_page_cache(
    tmp_path, page_cache, early_speculation, how
):
    """Frames read for the last time are released (a bounded share of the page cache)."""
    sim = _sim(tmp_path, scan_shape=(24, 32), frame_shape=(64, 64), frames_per_part=10**6)
    part = sim.paths[0]
    _uncached(part)
    out = tmp_path / ("out.blo" if how == "blo" else "out.zspy")
    plan = stream_to_file(
        part,
        out,
        progress=False,
        rows_per_chunk=3,
        scan_step=1.0,
        single_pass=how == "single pass",
    )
    res = _resident_pages(part)
    rec = TvipsRecording(part)
    page, rsize = os.sysconf("SC_PAGESIZE"), rec.record_dtype.itemsize
    used = plan.frame_index[plan.frame_index >= 0]
    first = (rec.offsets[0] + used.min() * rsize) // page
    last = (rec.offsets[0] + (used.max() + 1) * rsize) // page
    # the scan's pages are gone but for a few (the .blo's 256 sampled frames, frames at
    # block edges); a conversion that kept them would leave all of them cached
    assert res[first:last].mean() < 0.05


@pytest.mark.parametrize("wrong", ["hysteresis", "line length"])
def test_single_pass_wrong_guess_is_rewritten(tmp_path, monkeypatch, early_speculation, wrong):
    """A provisional plan that is wrong costs a rewrite, never a wrong file."""
    real = _search.plan_from_features

    def misled(*args, prefix=False, **kw):
        plan = real(*args, prefix=prefix, **kw)
        if prefix and wrong == "hysteresis":
            plan.hysteresis += 1
        elif prefix:
            plan.scan_shape = (plan.scan_shape[0], plan.scan_shape[1] + 1)
        return plan

    monkeypatch.setattr(_search, "plan_from_features", misled)
    sim = _sim(tmp_path, hysteresis=2)
    kw = dict(progress=False, rows_per_chunk=2)
    stream_to_file(sim.paths[0], tmp_path / "two.zspy", single_pass=False, **kw)
    one = stream_to_file(sim.paths[0], tmp_path / "one.zspy", **kw)
    assert _tree(tmp_path / "one.zspy") == _tree(tmp_path / "two.zspy")
    rep = one.scores["single_pass"]
    assert rep["provisional_plans"][-1]["accepted"]
    # every block holds an odd (serpentine) line, shifted by the wrong hysteresis
    assert rep["written_while_reading"] == 0 and rep["written_after"] == rep["blocks"] == 8
    np.testing.assert_array_equal(
        np.asarray(load(tmp_path / "one.zspy").data)[sim.frame_of_pixel >= 0],
        TvipsRecording(sim.paths[0]).read_frames(sim.frame_of_pixel[sim.frame_of_pixel >= 0]),
    )


def test_single_pass_survives_a_failure_of_the_writing_ahead(
    tmp_path, monkeypatch, early_speculation
):
    def broken(self, feat, n_done):
        raise RuntimeError("tracking broke")

    monkeypatch.setattr(early_speculation._Speculation, "_track", broken)
    sim = _sim(tmp_path)
    stream_to_file(sim.paths[0], tmp_path / "two.zspy", progress=False, single_pass=False)
    one = stream_to_file(sim.paths[0], tmp_path / "one.zspy", progress=False)
    assert _tree(tmp_path / "one.zspy") == _tree(tmp_path / "two.zspy")
    rep = one.scores["single_pass"]
    assert rep["stopped_by"] == "RuntimeError: tracking broke"
    assert rep["written_while_reading"] == 0 and rep["written_after"] == rep["blocks"]


def test_single_pass_failed_write_leaves_nothing(tmp_path, monkeypatch, early_speculation):
    sim = _sim(tmp_path)
    out = tmp_path / "out.zspy"
    real = early_speculation._Speculation._write

    def failing(self, b, idx):
        if b == 1:
            raise OSError(28, "No space left on device")
        return real(self, b, idx)

    monkeypatch.setattr(early_speculation._Speculation, "_write", failing)
    with pytest.raises(AnodemapIOError, match=r"out\.zspy: could not be written.*No space"):
        stream_to_file(sim.paths[0], out, progress=False, rows_per_chunk=2)
    assert list(tmp_path.glob("*.zspy")) == [] and list(tmp_path.glob(".out*")) == []
    # an existing file stays as it was
    stream_to_file(sim.paths[0], out, progress=False, rows_per_chunk=2, single_pass=False)
    before = _tree(out)
    with pytest.raises(AnodemapIOError):
        stream_to_file(sim.paths[0], out, progress=False, rows_per_chunk=2)
    assert _tree(out) == before


def test_stream_to_blo_round_trip(tmp_path):
    from rsciio.blockfile import file_reader

    sim = _sim(tmp_path, scan_shape=(8, 10))
    out = tmp_path / "out.blo"
    plan = stream_to_file(sim.paths[0], out, scan_step=3.0, progress=False)
    d = file_reader(str(out))[0]
    assert d["data"].shape == (8, 10, 32, 32) and d["data"].dtype == np.uint8
    hdr = d["original_metadata"]["blockfile_header"]
    assert hdr["SX"] == pytest.approx(3.0) and hdr["Beam_energy"] == 200000
    cal = blo_calibration(hdr)
    # SDP is an integer: relative precision 1 / (2 SDP)
    assert cal["reciprocal_pixel_size"] == pytest.approx(0.1, rel=0.5 / hdr["SDP"] + 1e-9)
    # stated 8-bit rule: 0 -> 0, hi -> 255, linear, with hi the level that 0.1 % of
    # the pixels outside the direct beam exceed (from 80 sampled frames: all of them)
    used = plan.scores["blo_intensity_range"]
    assert used["lo"] == 0.0 and "0.1%" in used["rule"]
    hi = used["hi"]
    frames = TvipsRecording(sim.paths[0]).read_frames(plan.frame_index.ravel())
    expected = np.clip(np.rint(frames.astype(np.float32) * 255 / hi), 0, 255)
    np.testing.assert_array_equal(d["data"].reshape(-1, 32, 32), expected.astype(np.uint8))
    cy, cx = plan.beam_center
    yy, xx = np.mgrid[:32, :32]
    near_beam = np.hypot(yy - cy, xx - cx) <= plan.bf_radius + 3  # the beam's descan
    outside = frames[:, ~near_beam]
    assert 0.0005 < (outside > hi).mean() < 0.002  # about 0.1 % saturate there
    assert np.all(frames[:, near_beam].max(axis=1) > hi)  # the direct beam saturates
    # the navigator is the virtual bright field, scaled to 0..255
    nav = np.frombuffer(out.read_bytes()[4096 : 4096 + 80], np.uint8).reshape(8, 10)
    assert np.corrcoef(nav.ravel(), plan.vbf.ravel())[0, 1] > 0.999
    hs = pytest.importorskip("hyperspy.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = hs.load(out)
    assert s.axes_manager.navigation_shape == (10, 8)
    assert s.axes_manager.signal_shape == (32, 32)


def _blo_signal(data, note="a note"):
    axes = [
        {"name": "y", "size": data.shape[0], "scale": 2.0, "offset": 0.0, "units": "nm"},
        {"name": "x", "size": data.shape[1], "scale": 2.0, "offset": 0.0, "units": "nm"},
        {"name": "ky", "size": data.shape[2], "scale": 0.01, "offset": 0.0, "units": "cm"},
        {"name": "kx", "size": data.shape[3], "scale": 0.01, "offset": 0.0, "units": "cm"},
    ]
    for i, a in enumerate(axes):
        a["navigate"] = i < 2
    return {
        "data": data,
        "axes": axes,
        "metadata": {"General": {"title": "t"}, "Signal": {}},
        "original_metadata": {"blockfile_header": {"Note": note, "Beam_energy": 200000}},
        "attributes": {"_lazy": False},
    }


@pytest.mark.parametrize("shape", [(5, 7, 16, 16), (1, 3, 8, 8), (9, 2, 4, 4)])
def test_streamed_blo_is_rosettasciios_file_byte_for_byte(tmp_path, shape):
    import dask.array as da
    from rsciio.blockfile import file_writer

    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, shape, dtype=np.uint8)
    nav = rng.integers(0, 256, shape[:2], dtype=np.uint8)
    theirs, ours = tmp_path / "rsciio.blo", tmp_path / "ours.blo"
    file_writer(str(theirs), _blo_signal(data), navigator=nav, show_progressbar=False)
    # rows in blocks of 2: records written block by block at their offsets
    lazy = da.from_array(data, chunks=(2, -1, -1, -1))
    _blockfile._write_blockfile(ours, _blo_signal(lazy), nav, False)
    assert ours.read_bytes() == theirs.read_bytes()


def test_real_blo_rewritten_with_our_writer(shared_blo, tmp_path):
    """Read NanoMegas' test1.blo, write it again with write_blo, compare everything."""
    from rsciio.blockfile import file_reader

    orig = file_reader(str(shared_blo))[0]
    hdr = orig["original_metadata"]["blockfile_header"]
    cal = blo_calibration(hdr)
    assert cal["beam_energy"] == 200.0 and cal["camera_length"] == 200.0
    s = cal["reciprocal_pixel_size"]
    assert 0.02 < s < 0.05  # 144 px span about +-2.3 1/Å, the range of SPED
    ny, nx, h, w = orig["data"].shape
    ds = Dataset(
        orig["data"],
        [
            Axis("y", ny, hdr["SY"], 0.0, "nm"),
            Axis("x", nx, hdr["SX"], 0.0, "nm"),
            Axis("ky", h, s, 0.0, "1/Å", navigate=False),
            Axis("kx", w, s, 0.0, "1/Å", navigate=False),
        ],
        {"Acquisition_instrument": {"TEM": {"beam_energy": 200.0}}},
    )
    raw = shared_blo.read_bytes()
    nav = np.frombuffer(raw[4096 : 4096 + ny * nx], np.uint8).reshape(ny, nx)
    out = write_blo(ds, tmp_path / "again.blo", navigator=nav, camera_length=200.0)
    back = file_reader(str(out))[0]
    bh = back["original_metadata"]["blockfile_header"]
    np.testing.assert_array_equal(back["data"], orig["data"])
    for key in ("NX", "NY", "DP_SZ", "SX", "SY", "Beam_energy", "Camera_length", "SDP"):
        assert bh[key] == hdr[key], key
    assert bh["Data_offset_1"] == hdr["Data_offset_1"]
    # The patterns follow the navigator: NanoMegas pads to the next multiple of 16
    # (4102 -> 4112 here); rosettasciio's writer adds offset % 16 (4102 -> 4108). Both
    # files are read through the header's offset; the difference is rosettasciio's.
    assert hdr["Data_offset_2"] % 16 == 0
    assert bh["Data_offset_2"] >= bh["Data_offset_1"] + nx * ny
    assert out.read_bytes()[4096 : 4096 + ny * nx] == raw[4096 : 4096 + ny * nx]
    assert back["axes"][2]["scale"] == pytest.approx(orig["axes"][2]["scale"])


def test_blo_rejects_bad_input(tmp_path):
    ds = Dataset(np.zeros((2, 3, 8, 6), np.uint8))
    with pytest.raises(AnodemapInputError, match="square patterns"):
        write_blo(ds, tmp_path / "x.blo")
    with pytest.raises(AnodemapInputError, match="2D scan of 2D patterns"):
        write_blo(Dataset(np.zeros((3, 8, 8), np.uint8)), tmp_path / "y.blo")
    sim = _sim(tmp_path, scan_shape=(4, 5))
    with pytest.raises(AnodemapInputError, match="output must be"):
        stream_to_file(sim.paths[0], tmp_path / "out.tif", progress=False)


def test_wavelength_200kv():
    # 0.02508 Å at 200 kV (e.g. Williams & Carter, Table 1.1)
    assert electron_wavelength(200.0) == pytest.approx(0.02508, abs=1e-5)


# ------------------------------------------------------------------ memory
def _peak_bytes(tmp_path, scan_shape):
    sim = write_tvips_recording(
        tmp_path / f"m{scan_shape[0]}", scan_shape=scan_shape, frame_shape=(64, 64), seed=2
    )
    tracemalloc.start()
    plan = reconstruct_scan(sim.paths[0], chunk_frames=64)
    ds = plan_to_dataset(plan, rows_per_chunk=2)
    total = ds.data.sum(dtype=np.float64).compute(scheduler="synchronous")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total > 0
    return peak, sim.n_frames * 64 * 64 * 2


def _peak_write_bytes(tmp_path, scan_shape, ext, single_pass):
    sim = write_tvips_recording(
        tmp_path / f"w{scan_shape[0]}", scan_shape=scan_shape, frame_shape=(64, 64), seed=2
    )
    out = tmp_path / f"w{scan_shape[0]}{ext}"
    kw = dict(progress=False, rows_per_chunk=2, single_pass=single_pass)
    stream_to_file(sim.paths[0], out, **kw)  # kernels and imports outside the measurement
    tracemalloc.start()
    stream_to_file(sim.paths[0], out, **kw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, sim.n_frames * 64 * 64 * 2


@pytest.mark.parametrize("ext, single_pass", [(".zspy", True), (".zspy", False), (".blo", False)])
def test_conversion_memory_does_not_grow_with_recording_length(
    tmp_path, monkeypatch, ext, single_pass
):
    from anodemap.diffraction import _single_pass

    # both recordings written while read from their first lines on; two writer threads
    # (as on 2 to 3 cores), so that the budget below does not depend on the machine
    monkeypatch.setattr(_single_pass, "PREFIX_MIN_FRAMES", 256)
    monkeypatch.setattr(_single_pass, "_WRITERS", 2)
    monkeypatch.setattr(_single_pass, "_IN_FLIGHT", 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uncalibrated scan step
        small, _ = _peak_write_bytes(tmp_path, (16, 64), ext, single_pass)
        large, large_bytes = _peak_write_bytes(tmp_path, (64, 64), ext, single_pass)
    # 4x more frames (and lines), the same line: the peak grows by the per-frame
    # numbers, not by the frames (33.6 MB more here). A writer thread's buffers
    # (a block of rows, 2 lines of 64 frames = 1 MiB; its read buffer, 1.5 blocks;
    # its compressed chunk) are made when it first writes: whether the second
    # writer held them at the small run's peak depends on timing, hence the slack
    block = 2 * 64 * 64 * 64 * 2
    slack = 3.5 * block if single_pass else 0
    assert large < small + 200 * 64 * 64 + 2**20 + slack
    # what it holds: the feature pass's read buffers (this chunk and the next) and
    # the two writers' buffers, 3.5 blocks each; a fraction of the recording
    assert large < 2 * _features._FEATURE_CHUNK_BYTES + 2 * 3.5 * block + 2**20
    assert large < 0.4 * large_bytes


_BLO_RSS_SCRIPT = """
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np, dask.array as da
from anodemap.io import Axis, Dataset
from anodemap.diffraction.stream import write_blo

def status(key):
    line = [s for s in open("/proc/self/status") if s.startswith(key)][0]
    return int(line.split()[1]) * 1024

ny, nx, n = 128, 256, 32
data = da.ones((ny, nx, n, n), dtype=np.uint8, chunks=(8, nx, n, n)) * np.uint8(7)
axes = [Axis("y", ny, 1.0, 0.0, "nm"), Axis("x", nx, 1.0, 0.0, "nm"),
        Axis("ky", n, 0.01, 0.0, "1/A", navigate=False),
        Axis("kx", n, 0.01, 0.0, "1/A", navigate=False)]
ds = Dataset(data, axes, {"Acquisition_instrument": {"TEM": {"beam_energy": 200.0}}})
nav = np.zeros((ny, nx), np.uint8)
write_blo(ds, sys.argv[1] + "/warm.blo", navigator=nav)
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM)
r0 = status("VmRSS")
write_blo(ds, sys.argv[1] + "/out.blo", navigator=nav)
print(status("VmHWM") - r0)
"""


def test_blo_writing_resident_memory_is_bounded(tmp_path):
    """Peak resident memory while writing a 32 MiB .blo stays far below the file's size.

    (rosettasciio's writer fills a memory map of the whole file, whose pages count as
    resident: its peak grows by the size of the file.)
    """
    import subprocess
    import sys

    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak memory")
    run = subprocess.run(
        [sys.executable, "-c", _BLO_RSS_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    growth = int(run.stdout.split()[-1])
    assert (tmp_path / "out.blo").stat().st_size > 32 * 2**20
    # a few 2 MiB chunks in flight on dask's threads: usually ~0.1 MiB of growth (pages
    # reused), but 8.0 MiB once in CI, when a thread's allocator took fresh pages; a
    # memory map of the file (rosettasciio) grows by all of its 32 MiB
    assert growth < 16 * 2**20, f"peak resident memory grew by {growth / 2**20:.1f} MiB"


def test_peak_memory_does_not_grow_with_recording_length(tmp_path):
    small, small_bytes = _peak_bytes(tmp_path, (16, 16))
    large, large_bytes = _peak_bytes(tmp_path, (64, 64))
    assert large_bytes > 12 * small_bytes
    # 16x more frames: peak allocation grows by no more than the per-frame numbers
    # (about 100 bytes per frame), not with the frames themselves
    assert large < small + 200 * 64 * 64 + 2**20
    assert large < 0.2 * large_bytes


def test_recording_of_given_patterns(tmp_path):
    """write_tvips_recording(patterns=...) records exactly those patterns (as uint16)."""
    rng = np.random.default_rng(5)
    patterns = rng.gamma(2.0, 30.0, (5, 6, 16, 16)).astype(np.float32)
    patterns[1, 2, 0, 0] = 70000.0  # clipped to the 16-bit range
    sim = write_tvips_recording(
        tmp_path / "p", patterns=patterns, duplicates=(4,), drops=(9,), idle="blank"
    )
    assert sim.scan_shape == (5, 6) and sim.frame_shape == (16, 16)
    ok = sim.frame_of_pixel >= 0
    got = TvipsRecording(sim.paths[0]).read_frames(sim.frame_of_pixel[ok])
    want = np.clip(np.rint(patterns[ok]), 0, 65535).astype(np.uint16)
    np.testing.assert_array_equal(got, want)
    # (random patterns have no content to find the geometry from: given)
    plan = reconstruct_scan(sim.paths[0], (5, 6), serpentine=True, hysteresis=2)
    np.testing.assert_array_equal(plan.frame_index, sim.frame_of_pixel)
    with pytest.raises(AnodemapInputError, match="4D array"):
        write_tvips_recording(tmp_path / "q", patterns=patterns[0])
    bad = patterns.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(AnodemapInputError, match="NaN"):
        write_tvips_recording(tmp_path / "r", patterns=bad)


def test_a_last_line_like_the_parked_beam_is_reported(tmp_path):
    """From the content alone, a last line whose patterns equal the parked beam's (a line
    through vacuum, say) cannot be told from the idle frames after the scan: it is taken
    for them, and the report says so and how to give the end instead of a silent short
    scan."""
    from anodemap.synth import make_phantom
    from anodemap.synth.diffraction import simulate_diffraction, to_dataset

    ny, nx = 20, 20
    sim = simulate_diffraction(make_phantom((ny, nx), seed=1), pattern_shape=(32, 32), seed=1)
    patterns = np.asarray(to_dataset(sim).data)
    plans = {}
    for case in ("plain", "last line parked"):
        pats = patterns.copy()
        if case != "plain":
            pats[-1] = pats[ny // 2, nx // 2]  # the parked beam's pattern (scan centre)
        rec = write_tvips_recording(
            tmp_path / case.replace(" ", "_"), patterns=pats, headers=False, n_after=5
        )
        plans[case] = (rec, reconstruct_scan(rec.paths[0]))
    rec, plan = plans["plain"]
    assert plan.scan_shape == (ny, nx) and plan.scores["idle_frames"]["after"] == 5
    assert not any("parked beam" in w for w in plan.warnings)
    rec, plan = plans["last line parked"]
    assert plan.scan_shape == (ny - 1, nx)  # the ambiguity itself
    assert plan.scores["idle_frames"]["after"] >= nx
    note = [w for w in plan.warnings if "parked beam" in w]
    assert note and "--last-frame" in note[0] and "warning: " + note[0] in plan.summary()
    # given the end, the scan is whole again
    whole = reconstruct_scan(rec.paths[0], last_frame=rec.first_frame + ny * nx - 1)
    assert whole.scan_shape == (ny, nx)
