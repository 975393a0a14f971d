"""Single-pass TVIPS -> ``.zspy`` conversion (private; used by ``stream_to_file``).

The two-pass conversion reads a recording once to find the scan and again to write it,
so on a fast disk it takes the time of the first pass *plus* that of gathering,
compressing and writing. Here the scan rows are written while the first pass is still
reading:

1. After a prefix of the recording (:data:`PREFIX_MIN_FRAMES`, or a sixteenth of the
   frames if more; doubled after each failure) a provisional plan is made from the
   features read so far, by the same search as the final one
   (:func:`~anodemap.diffraction.scan.search.plan_from_features` with ``prefix=True``).
   It is taken only with clear evidence (line-pair correlation of at least
   :data:`MIN_CORRELATION` and a local peak), or when the user gave the line length.
2. From then on, the acquisition step of each frame read is tracked as the final plan
   will derive it (rotator index, timestamps or frame count), and each block of scan
   rows whose frames have all been read (and one line more) is gathered from the page
   cache, where the pass has just put the frames, compressed and stored by writer
   threads, while the pass reads on.
3. When the pass ends, the plan is made from all frames exactly as
   :func:`~anodemap.diffraction.scan.search.reconstruct_scan` makes it. Every block written
   is checked against it: a block whose frame indices equal the plan's holds exactly
   what the two-pass conversion would write there. Blocks that differ, and those not
   yet written, are written then.

The file is therefore the two-pass conversion's, whatever the provisional plan found;
a wrong guess costs at most the time of the second pass. The data array is created
and filled here through zarr in the layout rosettasciio's ``.zspy`` writer gives it
(same group, shape, chunks, codec; whole chunks are encoded with the codec and written
to their files directly, as zarr writes them, partial ones through zarr); rosettasciio
then writes everything else (axes, metadata) with ``write_dataset=False`` and
consolidates the metadata. The store is written under a temporary name and renamed
when complete.
"""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from anodemap._platform import usable_cores
from anodemap.diffraction.scan import features, search
from anodemap.diffraction.scan.dataset import plan_dataset
from anodemap.diffraction.scan.geometry import acquisition_rows
from anodemap.errors import AnodemapInputError, AnodemapIOError
from anodemap.io.tvips import rows_per_block

# Model choices: the first provisional plan after 1024 frames or a sixteenth of the
# recording (whichever is more; about 4 lines of a 256-wide scan at the least), accepted
# at a line-pair correlation of 0.5 or more at a local peak (the final plan calls 0.3
# weak). One block more in flight than writer threads: one waits while the others run.
PREFIX_MIN_FRAMES = 1024
MIN_CORRELATION = 0.5


def _writer_threads() -> int:
    """Writer threads: the cores this process may use less one (the reading pass), 2 to 8.

    Compressing is most of the work of a conversion (LZ4 + bit shuffle at about 1.5 GB/s
    per core against 1-2 GB/s read from the disk of this project's 2-core VM), so the
    writers are as many as the cores allow. Model choice: at least 2 (on 2 cores, 1, 2
    and 3 writers were measured and 2 was best), at most 8 (each holds about 3.5 blocks
    of buffers).
    """
    return max(2, min(8, usable_cores() - 1))


_WRITERS = _writer_threads()
_IN_FLIGHT = _WRITERS + 1


class _PrefixView:
    """The first ``n_frames`` frames of a recording, as the plan code sees a recording."""

    def __init__(self, rec, n_frames: int) -> None:
        self.parts = rec.parts
        self.header = rec.header
        self.frame_shape = rec.frame_shape
        self.dtype = rec.dtype
        self.n_frames = int(n_frames)


class _Speculation:
    """Writes blocks of scan rows during the feature pass (the ``on_chunk`` hook)."""

    def __init__(
        self, rec, group, chunk_rows: int | None, compressor, plan_kw: dict, root: Path
    ) -> None:
        self.rec = rec
        self.group = group  # the zarr group that receives "data"
        self.root = root  # the directory of the (nested directory) store
        self.chunk_rows = chunk_rows
        self.compressor = compressor
        self.kw = plan_kw
        n = rec.n_frames
        self.next_try = max(PREFIX_MIN_FRAMES, n // 16)
        self.stopped = False  # no more provisional writes (a guess failed or a surprise)
        self.attempts: list[dict[str, Any]] = []
        self.geom: tuple[int, bool, int] | None = None  # nx, serpentine, hysteresis
        self.mode = ""  # how steps are derived: "headers", "timestamps" or "count"
        self.lo = 0  # content modes: the frame of step 0
        self.tau = 0.0
        self.done = 0  # frames whose steps are tracked
        self.pos = np.full(0, -1, np.int64)  # headers/timestamps: frame of each step
        self.max_step = -1
        self.last_rot = 0
        self.last_step = -1
        self.written: dict[int, np.ndarray] = {}  # block -> frame indices written
        self.next_block = 0
        self.arr = None
        self.chunk_dir: Path | None = None  # where the chunk files of "data" go
        self.rows = 0
        self.pool = ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="anodemap-w")
        self.futures: set[Future] = set()
        self.local = threading.local()
        self.error: BaseException | None = None  # a writer's (raised at the end)
        self.failure = ""  # why writing ahead stopped, if it failed

    # ---------------------------------------------------------------- hook
    def __call__(self, feat, n_done: int) -> None:
        if self.stopped or self.error is not None:
            return
        self._reap(block=False)
        try:
            if self.geom is None:
                if n_done >= self.next_try or n_done == self.rec.n_frames:
                    self._try_plan(feat, n_done)
                if self.geom is None:
                    return
            self._track(feat, n_done)
            self._submit_ready()
        except Exception as err:  # noqa: BLE001
            # the writing ahead is an optimisation: whatever goes wrong in it, the end
            # (finish) writes what the final plan says; the report keeps the reason
            self.stopped = True
            self.failure = f"{type(err).__name__}: {err}"

    def _try_plan(self, feat, n_done: int) -> None:
        kw = dict(self.kw)
        scan_shape = kw.pop("scan_shape")
        ff, lf = kw.get("first_frame"), kw.get("last_frame")
        self.next_try = 2 * max(n_done, 1)
        if self.next_try > self.rec.n_frames // 2 + 1:
            self.stopped = True  # no usable prefix: the two-pass way
        if ff is not None and ff >= n_done:
            return  # the user's first frame is not read yet
        if lf is not None and lf >= n_done:
            kw["last_frame"] = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan = search.plan_from_features(
                    _PrefixView(self.rec, n_done),
                    feat.head(n_done),
                    scan_shape,
                    prefix=True,
                    **kw,
                )
        except (AnodemapInputError, ValueError, IndexError):
            self.attempts.append({"frames": n_done, "accepted": False})
            return
        sc = plan.scores
        corr = float(sc.get("line_pair_correlation", -np.inf))
        prom = sc.get("peak_prominence")
        by_user = plan.found_by.get("line_length") == "user"
        ok = by_user or (corr >= MIN_CORRELATION and prom is not None and prom > 0)
        ny, nx = plan.scan_shape
        ok = ok and (by_user or ny >= 4) and nx >= 2
        self.attempts.append(
            {"frames": n_done, "accepted": bool(ok), "nx": int(nx), "correlation": corr}
        )
        if not ok:
            return
        dd = plan.found_by.get("duplicates_drops", "")
        self.mode = (
            "headers" if dd == "headers" else ("timestamps" if "timestamps" in dd else "count")
        )
        self.geom = (int(nx), bool(plan.serpentine), int(plan.hysteresis))
        self.lo = int(plan.first_frame)
        if self.mode == "timestamps":
            t = feat.time[self.lo : n_done]
            self.tau = float(np.median(np.diff(t)))
        elif self.mode == "headers":
            lo_user = ff if ff is not None else 0
            self.done = lo_user
        if self.mode != "headers":
            self.done = self.lo
        self._create_array(ny_guess=self._rows_bound())

    def _rows_bound(self) -> int:
        nx = self.geom[0]
        n_left = self.rec.n_frames - (0 if self.mode == "headers" else self.lo)
        return max(1, -(-n_left // nx))

    def _chunk_rows(self, ny: int, nx: int) -> int:
        """Rows per chunk of an ``(ny, nx)`` scan: the two-pass rule (``plan_to_dataset``)."""
        h, w = self.rec.frame_shape
        return int(self.chunk_rows or rows_per_block((ny, nx, h, w), self.rec.dtype.itemsize))

    def _create_array(self, ny_guess: int) -> None:
        nx = self.geom[0]
        h, w = self.rec.frame_shape
        self.rows = self._chunk_rows(ny_guess, nx)
        self.arr = _create_data(
            self.group, (ny_guess, nx, h, w), self.rows, self.rec.dtype, self.compressor
        )
        plain = not self.arr.filters and self.arr.order == "C"
        nested = getattr(self.arr, "_dimension_separator", None) == "/"
        self.chunk_dir = self.root.joinpath(*self.arr.path.split("/")) if plain and nested else None

    # ------------------------------------------------------------ tracking
    def _track(self, feat, n_done: int) -> None:
        a, b = self.done, n_done
        if b <= a:
            return
        lf = self.kw.get("last_frame")
        if lf is not None:
            b = min(b, int(lf) + 1)
        if self.mode == "headers":
            r = feat.rotidx[a:b]
            frames = np.arange(a, b)
            valid = r > 0
            r, frames = r[valid], frames[valid]
            if r.size:
                if np.any(np.diff(np.concatenate([[self.last_rot], r])) < 0):
                    self.stopped = True  # the rotator index restarts: the final plan decides
                    return
                self.last_rot = int(r[-1])
                steps = r - 1
                top = int(steps.max())
                if top >= self.pos.size:
                    grow = max(top + 1, 2 * self.pos.size)
                    self.pos = np.concatenate([self.pos, np.full(grow - self.pos.size, -1)])
                uniq, first = np.unique(steps, return_index=True)
                free = self.pos[uniq] < 0
                self.pos[uniq[free]] = frames[first[free]]
                self.max_step = max(self.max_step, top)
        elif self.mode == "timestamps":
            t = feat.time
            f0 = max(a, self.lo)
            if f0 == self.lo:
                self._set_step(self.lo, 0)
                f0 += 1
            if b > f0:
                dt = t[f0:b] - t[f0 - 1 : b - 1]
                if not np.all(dt > 0):
                    self.stopped = True
                    return
                gap = np.maximum(np.rint(dt / self.tau).astype(np.int64), 1)
                steps = self.last_step + np.cumsum(gap)
                for_frames = np.arange(f0, b)
                if steps[-1] >= self.pos.size:
                    grow = max(int(steps[-1]) + 1, 2 * self.pos.size)
                    self.pos = np.concatenate([self.pos, np.full(grow - self.pos.size, -1)])
                self.pos[steps] = for_frames
                self.last_step = int(steps[-1])
                self.max_step = self.last_step
        else:
            self.max_step = b - 1 - self.lo
        self.done = n_done

    def _set_step(self, frame: int, step: int) -> None:
        if step >= self.pos.size:
            self.pos = np.concatenate([self.pos, np.full(max(step + 1, 1024), -1)])
        self.pos[step] = frame
        self.last_step = step
        self.max_step = max(self.max_step, step)

    def block_index(self, b: int) -> np.ndarray:
        """Frame index (rows, nx) of block ``b`` under the provisional geometry."""
        nx, serp, h = self.geom
        r0 = b * self.rows
        steps = acquisition_rows(np.arange(r0, r0 + self.rows), nx, serp, h)
        if self.mode == "count":
            return self.lo + steps
        idx = np.full(steps.shape, -1, np.int64)
        inside = steps < self.pos.size
        idx[inside] = self.pos[steps[inside]]
        return idx

    def _submit_ready(self) -> None:
        nx = self.geom[0]
        while len(self.futures) < _IN_FLIGHT:
            b = self.next_block
            r1 = (b + 1) * self.rows
            if r1 > self.arr.shape[0] or (r1 + 1) * nx - 1 > self.max_step:
                return  # its frames (and one line more) are not all read yet
            idx = self.block_index(b)
            if self.mode == "count" and idx.max() >= self.done:
                return
            self.futures.add(self.pool.submit(self._write, b, idx))
            self.written[b] = idx
            self.next_block += 1

    # ------------------------------------------------------------- writing
    def _write(self, b: int, idx: np.ndarray) -> None:
        """Gather the frames of block ``b`` and store them (a writer thread)."""
        rows, nx = idx.shape
        h, w = self.rec.frame_shape
        key = (rows, nx)
        buf = getattr(self.local, "buf", None)
        if buf is None or buf[0] != key:
            # reused block by block (fresh pages are costly to fault in); the read
            # buffer is that of the frames plus a half (read_frames allocates its own
            # for a longer run of frames)
            out = np.empty((rows * nx, h, w), self.rec.dtype)
            scratch = np.empty(int(1.5 * rows * nx) * self.rec.record_dtype.itemsize, np.uint8)
            buf = self.local.buf = (key, out, scratch)
        _, out, scratch = buf
        # the frames are read for the last time (unless a block must be written again):
        # their pages are freed for what is read and written next (TvipsRecording.release)
        self.rec.read_frames(idx.ravel(), out=out, scratch=scratch, release=True)
        r0 = b * self.rows
        if self.chunk_dir is not None and rows == self.rows and r0 + rows <= self.arr.shape[0]:
            # a whole chunk: encoded and stored as zarr stores it (the codec on the
            # C-ordered block, file <array>/<b>/0/0/0 of the nested store), without
            # zarr's copy of the block and its temporary file per chunk (about 3 ms of
            # the 10 ms of an 8 MiB chunk); the store is renamed into place only whole
            path = self.chunk_dir.joinpath(str(b), *["0"] * (self.arr.ndim - 1))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.compressor.encode(out))
        else:
            self.arr[r0 : r0 + rows] = out.reshape(rows, nx, h, w)

    def _reap(self, block: bool) -> None:
        if not self.futures:
            return
        done, _ = wait(self.futures, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for f in done:
            self.futures.discard(f)
            err = f.exception()
            if err is not None and self.error is None:
                self.error = err
                self.stopped = True

    def drain(self) -> None:
        while self.futures:
            self._reap(block=True)
        if self.error is not None:
            raise self.error

    # ------------------------------------------------------------ the end
    def finish(self, plan, progress: bool) -> dict[str, Any]:
        """Make the array hold exactly ``plan``'s frames; what was kept and rewritten."""
        self.drain()
        ny, nx = plan.scan_shape
        h, w = plan.frame_shape
        kept = 0
        if self.arr is not None and self.geom[0] == nx and self.rows == self._chunk_rows(ny, nx):
            if self.arr.shape[0] != ny:
                # first to whole blocks, which drops a chunk the new last block would
                # only partly cover (rewritten below from the fill value, as the
                # two-pass conversion writes it), then to the scan's rows
                self.arr.resize((ny // self.rows * self.rows, nx, h, w))
                self.arr.resize((ny, nx, h, w))
        else:
            if self.arr is not None:
                del self.group["data"]
            self.geom = (nx, plan.serpentine, plan.hysteresis)
            self.written = {}
            self._create_array(ny_guess=ny)
        rows = self.rows
        n_blocks = -(-ny // rows)
        todo = []
        for b in range(n_blocks):
            r0, r1 = b * rows, min((b + 1) * rows, ny)
            want = plan.frame_index[r0:r1]
            got = self.written.get(b)
            if got is not None and got.shape == want.shape and np.array_equal(got, want):
                kept += 1
            else:
                todo.append((b, want))
        bar = features.Progress("writing", len(todo)) if progress and todo else None
        for k, (b, want) in enumerate(todo):
            while len(self.futures) >= _IN_FLIGHT:
                self._reap(block=True)
                if self.error is not None:
                    raise self.error
            self.futures.add(self.pool.submit(self._write, b, want))
            if bar:
                bar.update(k)
        self.drain()
        if bar:
            bar.update(len(todo))
            bar.close()
        return {
            "blocks": n_blocks,
            "written_while_reading": kept,
            "written_after": len(todo),
            "provisional_plans": self.attempts,
            "writer_threads": _WRITERS,
            **({"stopped_by": self.failure} if self.failure else {}),
        }

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _group_name(title: str) -> str:
    """The experiment group rosettasciio's hierarchical writers give a signal title."""
    return (title or "__unnamed__").replace("/", "-")


def _create_data(group, shape, rows: int, dtype, compressor):
    """The ``data`` array as rosettasciio's zspy writer creates it (chunks of whole rows)."""
    if "data" in group:
        del group["data"]
    chunks = (rows,) + tuple(int(v) for v in shape[1:])
    return group.create_dataset(
        "data", shape=shape, chunks=chunks, dtype=dtype, compressor=compressor
    )


def stream_to_zspy(
    rec,
    out: Path,
    scan_shape,
    plan_kw: dict,
    *,
    calibration_kw: dict,
    rows_per_chunk: int | None,
    compressor,
    progress: bool,
):
    """Find the scan and write the ``.zspy`` in one pass (module docstring).

    Returns
    -------
    ScanPlan
        With ``plan.scores["single_pass"]``: blocks kept from the pass and rewritten.
    """
    import zarr

    from anodemap.io.atomic import remove_path, replace_path, temporary_path

    if compressor is None:
        import numcodecs

        # rosettasciio's choice when its zspy writer is given none (file_writer's
        # documented default), so that compressor=None means the same on both paths
        compressor = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)

    tmp = temporary_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # zarr 2.18 deprecates the store class for zarr 3 (as in anodemap.io.save)
        warnings.filterwarnings("ignore", "The NestedDirectoryStore is deprecated", FutureWarning)
        store = zarr.storage.NestedDirectoryStore(str(tmp))
    try:
        root = zarr.open_group(store=store, mode="w")
        group = root.require_group("Experiments").require_group(_group_name(rec.parts[0].name))
        spec = _Speculation(
            rec, group, rows_per_chunk, compressor, dict(plan_kw, scan_shape=scan_shape), tmp
        )
        try:
            feat = features.frame_features(rec, None, progress, on_chunk=spec)
            plan = search.plan_from_features(rec, feat, scan_shape, **plan_kw, **calibration_kw)
            if progress:
                print(plan.summary(), file=__import__("sys").stderr)
            report = spec.finish(plan, progress)
        finally:
            spec.close()
        ds = plan_dataset(plan, group["data"])
        d = ds.to_dict()
        d["attributes"]["_lazy"] = True  # as the two-pass conversion saves it
        from rsciio.zspy import file_writer

        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", "The NestedDirectoryStore is deprecated", FutureWarning
            )
            file_writer(
                str(tmp), d, write_dataset=False, compressor=compressor, show_progressbar=False
            )
        replace_path(tmp, out)
        # how the file was written is not part of it (the two-pass file is the same)
        plan.scores["single_pass"] = report
    except BaseException as err:
        remove_path(tmp)
        if isinstance(err, AnodemapInputError | AnodemapIOError | KeyboardInterrupt):
            raise
        if isinstance(err, OSError):
            raise AnodemapIOError(f"{out}: could not be written ({err})") from err
        raise
    return plan
