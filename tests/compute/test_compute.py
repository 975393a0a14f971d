"""The execution layer gives the same results in memory, lazily and on a cluster."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from anodemap._compute import OutputSpec, map_pixels
from anodemap.errors import AnodemapInputError


def _kernel(block, offset, *, scale=1.0):
    # block (n, E), offset (n,) -> a map value, a small vector per pixel, a status
    return {
        "total": block.sum(-1) * scale + offset,
        "head": block[:, :3] * 2.0,
        "status": (block[:, 0] > 0.5).astype(np.uint8),
    }


OUT = {"total": OutputSpec(), "head": OutputSpec((3,)), "status": OutputSpec((), np.uint8)}


def _expected(x, off, scale):
    return x.sum(-1) * scale + off, x[..., :3] * 2.0, (x[..., 0] > 0.5).astype(np.uint8)


@pytest.mark.parametrize("rows", [1, 2, 7, None])
def test_numpy_input_matches_direct(rows):
    rng = np.random.default_rng(1)
    x, off = rng.random((7, 5, 20)), rng.random((7, 5))
    out = map_pixels(
        _kernel,
        x,
        sig_ndim=1,
        outputs=OUT,
        extras=[off],
        kwargs={"scale": 3.0},
        rows_per_chunk=rows,
        progress=False,
    )
    total, head, status = _expected(x, off, 3.0)
    np.testing.assert_allclose(out["total"], total)
    np.testing.assert_allclose(out["head"], head)
    assert out["status"].dtype == np.uint8
    np.testing.assert_array_equal(out["status"], status)


def test_lazy_input_with_other_chunking():
    rng = np.random.default_rng(2)
    x, off = rng.random((9, 4, 30)), rng.random((9, 4))
    lazy = da.from_array(x, chunks=(4, 2, 10))
    out = map_pixels(
        _kernel,
        lazy,
        sig_ndim=1,
        outputs=OUT,
        extras=[da.from_array(off, chunks=2)],
        rows_per_chunk=3,
        progress=False,
    )
    np.testing.assert_allclose(out["total"], _expected(x, off, 1.0)[0])
    lazy_out = map_pixels(_kernel, lazy, sig_ndim=1, outputs=OUT, extras=[off], compute=False)
    assert isinstance(lazy_out["total"], da.Array)


def test_single_spectrum_and_line_scan():
    rng = np.random.default_rng(3)
    x = rng.random((6, 10))
    out = map_pixels(_kernel, x, sig_ndim=1, outputs=OUT, extras=[np.zeros(6)], progress=False)
    assert out["total"].shape == (6,) and out["head"].shape == (6, 3)
    one = map_pixels(
        _kernel, x[0], sig_ndim=1, outputs=OUT, extras=[np.float64(0.0)], progress=False
    )
    assert one["total"].shape == () and one["total"] == pytest.approx(x[0].sum())


def test_two_dimensional_signal():
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)

    def vbf(block):
        return {"sum": block.sum(axis=(-1, -2))}

    out = map_pixels(vbf, x, sig_ndim=2, outputs={"sum": OutputSpec()}, progress=False)
    np.testing.assert_allclose(out["sum"], x.sum(axis=(-1, -2)))


def test_bad_shapes():
    with pytest.raises(AnodemapInputError, match="scan shape"):
        map_pixels(_kernel, np.zeros((4, 5, 6)), sig_ndim=1, outputs=OUT, extras=[np.zeros((4, 4))])
    with pytest.raises(AnodemapInputError, match="fewer dimensions"):
        map_pixels(_kernel, np.zeros(5), sig_ndim=2, outputs=OUT)


def test_distributed_cluster_gives_same_maps(local_cluster_client):
    rng = np.random.default_rng(4)
    x, off = rng.random((8, 6, 25)), rng.random((8, 6))
    local = map_pixels(_kernel, x, sig_ndim=1, outputs=OUT, extras=[off], progress=False)
    remote = map_pixels(
        _kernel,
        x,
        sig_ndim=1,
        outputs=OUT,
        extras=[off],
        rows_per_chunk=2,
        client=local_cluster_client,
        progress=False,
    )
    for k in OUT:
        np.testing.assert_array_equal(local[k], remote[k])


def _pattern_sums(block, centres):
    return {"s": block.sum(axis=(1, 2), dtype=np.float64), "c": centres[:, 0] + centres[:, 1]}


@pytest.mark.parametrize("chunk_x, kept", [(16, True), (2, False)])
def test_input_chunks_kept_when_they_fit(chunk_x, kept):
    # 8 x 32 scan of 128 x 128 float32 patterns; chunks of half a row (8 MiB) are used
    # as they are (no regrouping copy), tiny chunks (1 MiB) are regrouped into rows
    rng = np.random.default_rng(1)
    eager = rng.random((8, 32, 128, 128), dtype=np.float32)
    lazy = da.from_array(eager, chunks=(8, chunk_x, 128, 128))
    centres = rng.random((8, 32, 2))
    outputs = {"s": OutputSpec(), "c": OutputSpec()}
    graph = map_pixels(
        _pattern_sums, lazy, sig_ndim=2, outputs=outputs, extras=[centres], compute=False
    )
    names = " ".join(str(k) for k in dict(graph["s"].__dask_graph__()))
    assert ("rechunk" not in names) is kept
    got = map_pixels(
        _pattern_sums, lazy, sig_ndim=2, outputs=outputs, extras=[centres], progress=False
    )
    np.testing.assert_allclose(got["s"], eager.sum(axis=(2, 3), dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(got["c"], centres.sum(axis=-1), rtol=1e-12)


def test_progress_lines_name_their_step(capsys):
    """In a log (stderr not a terminal) each quarter of the tasks is one line, named by
    progress_label; without a label the old wording stays."""
    from anodemap._compute import progress_label

    x = np.ones((8, 3, 4))
    with progress_label("sums"):
        map_pixels(_kernel, x, sig_ndim=1, outputs=OUT, extras=[np.zeros((8, 3))], rows_per_chunk=2)
    err = capsys.readouterr().err.splitlines()
    assert err == [f"[anodemap] sums: {p} %" for p in (25, 50, 75, 100)]
    map_pixels(_kernel, x, sig_ndim=1, outputs=OUT, extras=[np.zeros((8, 3))], rows_per_chunk=2)
    assert capsys.readouterr().err.splitlines()[-1] == "[anodemap] 100 % done"
