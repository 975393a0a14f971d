"""One execution layer: apply a per-block kernel over the scan with dask.

A *kernel* is a plain function that takes a block of pixels, shape
``(n, *signal_shape)``, plus optional per-pixel side arrays of shape ``(n, ...)``,
and returns a dict of named arrays each of shape ``(n, *out_shape)``. It knows
nothing about where it runs. :func:`map_pixels` cuts the data into chunks of
whole scan rows, runs the kernel on each chunk, and assembles the named result
maps. The same call runs in memory (numpy input, dask threads), out of core
(lazy input read chunk by chunk) or on a ``dask.distributed`` cluster (pass a
``Client``), with no change to the kernel — LiberTEM's split of algorithm and
executor is the model.

Examples
--------
>>> import numpy as np
>>> from anodemap._compute import OutputSpec, map_pixels
>>> def total(block):
...     return {"total": block.sum(axis=-1)}
>>> out = map_pixels(total, np.ones((4, 5, 10)), sig_ndim=1,
...                  outputs={"total": OutputSpec()}, progress=False)
>>> out["total"].shape, float(out["total"][0, 0])
((4, 5), 10.0)
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.callbacks import Callback

from anodemap._platform import usable_cores
from anodemap.errors import AnodemapInputError, AnodemapIOError

__all__ = [
    "OutputSpec",
    "cluster_result",
    "connect_cluster",
    "default_rows_per_chunk",
    "map_pixels",
    "progress_label",
    "usable_cores",
]

# Target size of one input chunk (model choice: large enough that per-task
# overhead is negligible, small enough that a few chunks per core fit in memory).
_TARGET_CHUNK_BYTES = 64 * 2**20
# Seconds to wait for a --scheduler to answer, then for its first worker (model choice: a
# scheduler answers within milliseconds on a network, within a second through a tunnel;
# dask's own default, 30 s, leaves a user with a wrong address waiting for nothing).
CONNECT_TIMEOUT_S = 5.0
# A cluster computation checks every this many seconds that the cluster still has workers,
# and gives up after this long without any (model choice: a worker restarted by its nanny
# rejoins within seconds; a minute without one is a cluster that has gone).
_POLL_S = 2.0
_NO_WORKER_WAIT_S = 60.0


@dataclass(frozen=True)
class OutputSpec:
    """Shape and dtype of one named per-pixel result.

    Parameters
    ----------
    shape : tuple of int
        Per-pixel shape: ``()`` for a map value, ``(E,)`` for a spectrum per pixel.
    dtype : numpy dtype
        Result dtype (the assembled map has this dtype).
    """

    shape: tuple[int, ...] = ()
    dtype: Any = np.float64

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))


def default_rows_per_chunk(shape: Sequence[int], nav_ndim: int, itemsize: int) -> int:
    """Number of leading scan rows per chunk so that a chunk is about 64 MiB."""
    if nav_ndim == 0:
        return 1
    row_bytes = itemsize * math.prod(shape[1:])
    return int(max(1, min(shape[0], _TARGET_CHUNK_BYTES // max(row_bytes, 1))))


def _chunks_fit(data: Any, nav_ndim: int) -> bool:
    """Whether a dask array's own chunks can be the blocks of :func:`map_pixels`.

    They can when the signal axes are whole in every chunk and the chunks hold between
    1/8 and 2 times the target size (about 8 to 128 MiB): then regrouping them into
    whole scan rows would only cost a copy of the data (measured on a 2 GB .zspy with
    chunks of half a row: 45 % of the time of a virtual image), while much smaller
    chunks would cost more in per-task overhead than the copy.
    """
    if any(len(c) != 1 for c in data.chunks[nav_ndim:]):
        return False
    itemsize = np.dtype(data.dtype).itemsize
    sig_bytes = itemsize * math.prod(data.shape[nav_ndim:])
    nav = data.chunks[:nav_ndim]
    first = sig_bytes * math.prod(c[0] for c in nav)  # the typical (leading) chunk
    largest = sig_bytes * math.prod(max(c) for c in nav)
    return _TARGET_CHUNK_BYTES / 8 <= first and largest <= 2 * _TARGET_CHUNK_BYTES


def chunked_view(data: Any, chunks: Any) -> Any:
    """A dask array over ``data`` in ``chunks``: for a numpy array, its chunks are views.

    ``dask.array.from_array`` copies a numpy array whole before cutting it (a guard
    against later changes to it): for the patterns of a diffraction run read into memory,
    one more copy of the input for every pass over them, which made the run's peak
    memory about 2.7 times its input. The chunks here are views of ``data``, which must
    not change until the computation is done. Other arrays go to ``from_array``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12.0).reshape(4, 3)
    >>> d = chunked_view(x, (2, 3))
    >>> d.chunks, float(d.sum().compute(scheduler="synchronous"))
    (((2, 2), (3,)), 66.0)
    """
    import itertools
    import uuid

    import dask.array as da
    from dask.array.core import normalize_chunks, slices_from_chunks

    if type(data) is not np.ndarray:
        return da.from_array(data, chunks=chunks)
    chunks = normalize_chunks(chunks, data.shape, dtype=data.dtype)
    name = f"anodemap-view-{uuid.uuid4().hex}"  # not a hash of the data: no pass over it
    keys = itertools.product([name], *(range(len(c)) for c in chunks))
    graph = {key: data[sl] for key, sl in zip(keys, slices_from_chunks(chunks), strict=True)}
    meta = np.empty((0,) * data.ndim, dtype=data.dtype)
    return da.Array(graph, name, chunks, meta=meta, dtype=data.dtype)


def _single_block(x: Any) -> Any:
    """The one block inside blockwise's nested lists (one level per contracted axis)."""
    while isinstance(x, list | tuple):
        if len(x) != 1:
            raise ValueError(f"expected one block along an axis that is not a scan axis: {x!r}")
        x = x[0]
    return x


def _block_kernel(
    block: np.ndarray,
    *extras: np.ndarray,
    kernel: Callable[..., Mapping[str, np.ndarray]],
    nav_ndim: int,
    outputs: Mapping[str, OutputSpec],
    kwargs: Mapping[str, Any],
) -> np.ndarray:
    """Flatten a chunk's scan axes, run the kernel, pack the named results.

    The chunk and the side inputs come as blockwise gives them without concatenation: in
    one list per axis that is not a scan axis, each of one block (those axes are whole
    in every chunk). Concatenating them instead (``concatenate=True``) made dask copy
    every chunk before the kernel saw it.
    """
    block = _single_block(block)
    extras = tuple(_single_block(e) for e in extras)
    nav_shape = block.shape[:nav_ndim]
    n = int(math.prod(nav_shape))
    flat = np.asarray(block).reshape((n,) + block.shape[nav_ndim:])
    flat_extras = [np.asarray(e).reshape((n,) + e.shape[nav_ndim:]) for e in extras]
    result = kernel(flat, *flat_extras, **kwargs)
    total = sum(spec.size for spec in outputs.values())
    packed = np.empty((n, total), dtype=np.float64)
    col = 0
    for name, spec in outputs.items():
        if name not in result:
            raise KeyError(f"kernel {kernel.__name__} did not return output {name!r}")
        value = np.asarray(result[name]).reshape(n, spec.size)
        packed[:, col : col + spec.size] = value
        col += spec.size
    return packed.reshape(nav_shape + (total,))


def map_pixels(
    kernel: Callable[..., Mapping[str, np.ndarray]],
    data: Any,
    *,
    sig_ndim: int,
    outputs: Mapping[str, OutputSpec],
    extras: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    rows_per_chunk: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    compute: bool = True,
) -> dict[str, Any]:
    """Apply a block kernel to every pixel of ``data`` and return named result maps.

    Parameters
    ----------
    kernel : callable
        ``kernel(block, *extras, **kwargs) -> {name: array (n, *shape)}`` with ``block``
        of shape ``(n, *signal_shape)``. Must be a module-level function (picklable) to
        run on a distributed cluster.
    data : ndarray or dask.array.Array
        Shape ``(*nav_shape, *signal_shape)``; scan axes first.
    sig_ndim : int
        Number of trailing signal axes (1 for spectra, 2 for diffraction patterns).
    outputs : mapping of str to OutputSpec
        The named results the kernel returns and their per-pixel shapes.
    extras : sequence of arrays
        Per-pixel side inputs, each of shape ``(*nav_shape, ...)``.
    kwargs : mapping
        Keyword arguments passed to every kernel call (parameters, shared arrays).
    rows_per_chunk : int, optional
        Scan rows per chunk (default: about 64 MiB of input per chunk).
    client : dask.distributed.Client, optional
        Run on this cluster instead of the local threads.
    scheduler : str, optional
        Local dask scheduler ("threads", "synchronous", "processes"); default threads.
    num_workers : int, optional
        Local worker threads.
    progress : bool
        Show a progress bar on stderr.
    compute : bool
        If False, return lazy dask arrays.

    Returns
    -------
    dict of str to ndarray
        One array per output, shape ``(*nav_shape, *spec.shape)``.
    """
    import dask.array as da

    kwargs = dict(kwargs or {})
    shape = tuple(data.shape)
    nav_ndim = len(shape) - sig_ndim
    if nav_ndim < 0:
        raise AnodemapInputError(
            f"data of shape {shape} has fewer dimensions than the {sig_ndim} signal axes expected"
        )
    squeeze = nav_ndim == 0
    if squeeze:  # a single spectrum / pattern: give it a scan axis of length 1
        data = data[None]
        extras = [np.asarray(e)[None] for e in extras]
        shape = (1,) + shape
        nav_ndim = 1
    nav_shape = shape[:nav_ndim]
    if math.prod(nav_shape) == 0:
        raise AnodemapInputError(f"data of shape {shape} have no pixels")
    itemsize = np.dtype(data.dtype).itemsize
    rows = rows_per_chunk or default_rows_per_chunk(shape, nav_ndim, itemsize)
    rows = int(max(1, min(rows, shape[0])))
    chunks = (rows,) + shape[1:]
    if isinstance(data, da.Array) and rows_per_chunk is None and _chunks_fit(data, nav_ndim):
        darr = data  # the input's own chunks: every chunk read once, no copy to regroup
    elif isinstance(data, da.Array):
        # a local run names the rechunk method, so that dask does not import
        # dask.distributed to look for a client (it would choose "p2p" with one)
        darr = data.rechunk(chunks, method=None if client is not None else "tasks")
    else:
        darr = chunked_view(data, chunks)
    nav_chunks = darr.chunks[:nav_ndim]
    dextras = []
    for e in extras:
        e_shape = tuple(e.shape)
        if e_shape[:nav_ndim] != nav_shape:
            raise AnodemapInputError(
                f"side input of shape {e_shape} does not match the scan shape {nav_shape}"
            )
        e_chunks = nav_chunks + tuple((n,) for n in e_shape[nav_ndim:])
        dextras.append(
            e.rechunk(e_chunks) if isinstance(e, da.Array) else da.from_array(e, chunks=e_chunks)
        )
    total = sum(spec.size for spec in outputs.values())
    # blockwise with explicit index labels: scan axes shared by data and side inputs,
    # signal axes contracted (they are single chunks), one packed output axis added.
    nav_idx = tuple(f"n{i}" for i in range(nav_ndim))
    args: list[Any] = [darr, nav_idx + tuple(f"s{i}" for i in range(sig_ndim))]
    for k, e in enumerate(dextras):
        args += [e, nav_idx + tuple(f"e{k}_{j}" for j in range(e.ndim - nav_ndim))]
    packed = da.blockwise(
        _block_kernel,
        nav_idx + ("out",),
        *args,
        new_axes={"out": total},
        concatenate=False,  # the blocks as they are: concatenating one block copies it
        dtype=np.float64,
        meta=np.empty((0,) * (nav_ndim + 1), dtype=np.float64),
        kernel=kernel,
        nav_ndim=nav_ndim,
        outputs=dict(outputs),
        kwargs=kwargs,
    )
    if compute:
        packed = _compute(packed, client, scheduler, num_workers, progress)
    out: dict[str, Any] = {}
    col = 0
    for name, spec in outputs.items():
        part = packed[..., col : col + spec.size]
        col += spec.size
        part = part.reshape(nav_shape + spec.shape)
        if np.dtype(spec.dtype) != np.float64:
            part = part.astype(spec.dtype)
        out[name] = part[0] if squeeze else part
    return out


def local_scheduler(name: str | None = None) -> Any:
    """dask's local scheduler function of that name ("threads" by default).

    Passing the function rather than its name keeps dask from importing
    dask.distributed (about 0.2 s) to look for a client that a local run does not use.

    Examples
    --------
    >>> import dask.array as da
    >>> int(da.ones(4, chunks=2).sum().compute(scheduler=local_scheduler("synchronous")))
    4
    """
    name = (name or "threads").lower()
    if name in ("threads", "threading"):
        from dask.threaded import get
    elif name in ("synchronous", "sync", "single-threaded"):
        from dask.local import get_sync as get
    elif name in ("processes", "multiprocessing"):
        from dask.multiprocessing import get
    else:
        raise ValueError(
            f"scheduler must be threads, synchronous or processes, not {name!r}; "
            "a dask.distributed cluster is passed as client= (--scheduler ADDRESS on the "
            "command line)"
        )
    return get


def connect_cluster(
    address: str, *, reads: Sequence[Any] = (), timeout: float = CONNECT_TIMEOUT_S
) -> Any:
    """A ``dask.distributed`` client of the scheduler at ``address``, checked for use.

    Fails within about ``timeout`` seconds, with a message that names the address and
    ``--scheduler`` and says what to do, when the scheduler cannot be reached, when it
    has no worker, or when a worker cannot read one of ``reads`` (the input files, which
    the workers open themselves, by their absolute paths).

    Parameters
    ----------
    address : str
        The scheduler's address, e.g. ``tcp://host:8786``.
    reads : sequence of path-like
        Files the workers will read.
    timeout : float
        Seconds to wait for the scheduler, then for a first worker.

    Returns
    -------
    distributed.Client

    Raises
    ------
    AnodemapIOError
        The scheduler or its workers cannot be used (the message says why).
    """
    try:
        from distributed import Client
    except ImportError as err:
        raise AnodemapInputError(
            f"--scheduler {address}: running on a dask cluster needs the Python package "
            "'distributed', which is not installed (pip install distributed); leave out "
            "--scheduler to run on this machine"
        ) from err
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except ValueError as err:
        raise AnodemapInputError(
            f"--scheduler {address}: not an address of a dask scheduler ({err}); give it as "
            "dask scheduler prints it, e.g. tcp://10.0.0.5:8786"
        ) from err
    except Exception as err:  # OSError (timed out), garbage replies from another service
        raise AnodemapIOError(
            f"--scheduler {address}: the dask scheduler at {address} could not be reached "
            f"within {timeout:g} s ({type(err).__name__}: {err}); check that it is running "
            "('dask scheduler' prints its address, e.g. tcp://HOST:8786) and reachable from "
            "this machine, or leave out --scheduler to run here"
        ) from err
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except Exception as err:
            raise AnodemapIOError(
                f"--scheduler {address}: the dask scheduler at {address} has no worker "
                f"(none joined within {timeout:g} s); start some ('dask worker {address}') "
                "or leave out --scheduler to run here"
            ) from err
        paths = [os.path.abspath(os.fspath(p)) for p in reads]
        if paths:
            answers = client.run(_unreadable, paths)
            for worker, bad in sorted(answers.items()):
                if bad:
                    raise AnodemapIOError(
                        f"--scheduler {address}: the worker {worker} cannot read "
                        f"{', '.join(bad)}; the workers open the input themselves, at the same "
                        "absolute path: put it on a file system that every worker mounts "
                        "there, or leave out --scheduler to run here"
                    )
    except BaseException:
        client.close()
        raise
    return client


def _unreadable(paths: Sequence[str]) -> list[str]:
    """The paths of ``paths`` this process cannot read (run on each worker)."""
    return [p for p in paths if not os.access(p, os.R_OK)]


def cluster_result(client: Any, future: Any) -> Any:
    """The result of a ``dask.distributed`` future, or a clear error when the cluster is lost.

    A scheduler that goes away cancels the future (``FutureCancelledError``); workers that
    all go away leave it waiting for ever. Both become an :class:`AnodemapIOError` that
    names the scheduler's address and ``--scheduler``, the second after
    ``_NO_WORKER_WAIT_S`` seconds without a worker.
    """
    import asyncio
    import concurrent.futures
    import time

    from anodemap.errors import AnodemapError

    address = getattr(getattr(client, "scheduler", None), "address", None) or "(unknown)"
    lost: tuple[type[BaseException], ...] = (
        asyncio.CancelledError,
        concurrent.futures.CancelledError,
    )
    with contextlib.suppress(ImportError):
        from distributed.comm.core import CommClosedError

        lost += (CommClosedError,)
    since = None
    while True:
        try:
            return future.result(timeout=_POLL_S)
        except TimeoutError:
            pass
        except AnodemapError:  # raised by a task (a damaged file): already clear
            raise
        except lost as err:
            raise AnodemapIOError(
                f"--scheduler {address}: the dask cluster was lost during the computation "
                f"({type(err).__name__}: {err or 'cancelled'}); check the scheduler and its "
                "workers and run the command again, or leave out --scheduler to run here"
            ) from err
        except Exception as err:
            if type(err).__name__ != "KilledWorker" and not isinstance(err, OSError):
                raise  # a task's own error: as it would be raised here
            raise AnodemapIOError(
                f"--scheduler {address}: a worker of the dask cluster failed "
                f"({type(err).__name__}: {err}); a worker killed while running a task is "
                "often out of memory; check the workers' logs, or leave out --scheduler to "
                "run here"
            ) from err
        try:
            n_workers = len(client.scheduler_info().get("workers", {}))
        except Exception:  # the scheduler gone: the next result() says so
            continue
        if n_workers:
            since = None
            continue
        since = since if since is not None else time.monotonic()
        if time.monotonic() - since > _NO_WORKER_WAIT_S:
            with contextlib.suppress(Exception):
                future.cancel()
            raise AnodemapIOError(
                f"--scheduler {address}: the dask cluster has had no worker for "
                f"{_NO_WORKER_WAIT_S:g} s, so the computation cannot go on; start workers "
                f"('dask worker {address}') and run the command again, or leave out "
                "--scheduler to run here"
            )


def _compute(
    packed: Any, client: Any, scheduler: str | None, num_workers: int | None, progress: bool
):
    if client is not None:
        future = client.compute(packed)
        if progress:
            from distributed import progress as dprogress

            with contextlib.suppress(Exception):
                dprogress(future, notebook=False)
        return np.asarray(cluster_result(client, future))
    with progress_context(progress):
        return np.asarray(
            packed.compute(scheduler=local_scheduler(scheduler), num_workers=num_workers)
        )


_LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("anodemap_progress", default="")


@contextlib.contextmanager
def progress_label(label: str) -> Iterator[None]:
    """Name the step whose progress the computations inside report (``[anodemap] LABEL: 50 %``).

    Examples
    --------
    >>> import numpy as np
    >>> with progress_label("sums"):
    ...     out = map_pixels(lambda b: {"t": b.sum(-1)}, np.ones((2, 3, 4)), sig_ndim=1,
    ...                      outputs={"t": OutputSpec()}, progress=False)
    """
    token = _LABEL.set(label)
    try:
        yield
    finally:
        _LABEL.reset(token)


def progress_context(progress: bool) -> Any:
    """The progress display of one local dask computation (a context manager).

    On a terminal dask's bar, in a log one line per quarter of the tasks; either is
    preceded by the label of :func:`progress_label` where one is set.
    """
    if not progress:
        return contextlib.nullcontext()
    label = _LABEL.get()
    if sys.stderr.isatty():
        from dask.diagnostics import ProgressBar

        if label:
            print(f"[anodemap] {label}", file=sys.stderr, flush=True)
        return ProgressBar(out=sys.stderr, minimum=1.0)
    return _LineProgress(label)


class _LineProgress(Callback):
    """Progress for logs (stderr not a terminal): one line at each quarter of the tasks."""

    def __init__(self, label: str = "") -> None:
        super().__init__()
        self._label = f"{label}: " if label else ""

    def _start_state(self, dsk, state):
        self._total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self._done = 0
        self._next = 0.25

    def _posttask(self, key, result, dsk, state, worker_id):
        self._done += 1
        while self._next <= 1.0 and self._done / max(self._total, 1) >= self._next:
            pct = int(self._next * 100)
            text = f"{self._label}{pct} %" if self._label else f"{pct} % done"
            print(f"[anodemap] {text}", file=sys.stderr, flush=True)
            self._next += 0.25
