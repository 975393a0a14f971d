"""Compile a run's numerical kernels in helper processes while it starts (first run only).

numba compiles each kernel on its first call and keeps the machine code on disk
(``cache=True``: ``__pycache__`` beside the module); a later process loads it in
milliseconds. The first run after an install therefore spends most of a minute
compiling, one kernel after another on one core, while a second core idles: the demo
simulates its study first (mostly numpy on one core), and the analyses leave gaps.

:func:`start` spawns one helper process for each compiled analysis a run needs (EELS,
diffraction) whose kernels are not in numba's cache yet. Once given a dataset of its kind
(:meth:`Warmup.offer`: the run's first, as soon as it exists), a helper runs its analysis
on a few scan rows of it: the run's reader, dtypes and code paths, so the kernels are
compiled for exactly the types the run will call them with (and the diffraction helper
writes the template libraries into their cache, :mod:`anodemap.diffraction._cache`). The
run goes on meanwhile. When it needs a kernel that a helper of its kind is still
compiling (or has not reached yet), it waits for that kernel and loads it from the
cache instead of compiling it a second time; a kernel the helper did not make (other
types, or the helper failed or finished without it) it compiles as always. Results do
not depend on any of this: the same source compiles to the same machine code in either
process.

Two processes and numba's cache
-------------------------------
numba writes each cache file under a temporary name and renames it, so a file is never
read half-written. Saving an entry is, however, a read-modify-write of the function's
index file followed by the data file: two processes saving *different* signatures of one
function at once can pick the same data-file name, and an index entry would then point
at the other signature's machine code; and a load between the index and the data write
could read an older data file of that name. While helpers run, every load and save of
numba's cache in the run and in its helpers is therefore made under one file lock
(``fcntl.flock``; saves exclusive, loads shared): :func:`_guard_numba_cache`.

Helpers say nothing on the terminal (what they make is the cache); the run logs their
progress at debug level (``-v``) and, once, that it is compiling when it first waits.
``ANODEMAP_WARMUP=off`` turns the helpers off. Where ``fcntl`` is missing (Windows) or
the kernels run on a dask cluster (``--scheduler``), no helper is started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Warmup", "start"]

_LOG = logging.getLogger("anodemap")

# Each compiled analysis: the package whose kernels its helper compiles (the run waits
# only for kernels of a package whose helper is still at work), and the kernels that
# cost most to compile, whose presence in numba's cache says the helper is not needed.
_PACKAGES = {"eels": "anodemap.eels.", "diffraction": "anodemap.diffraction."}
_MARKERS = {
    "eels": (
        ("anodemap.eels.plasmon", "_fit_block"),
        ("anodemap.eels._edge_kernels", "edge_fit_kernel"),
    ),
    "diffraction": (
        ("anodemap.diffraction.matching_kernels", "search_kernel"),
        ("anodemap.diffraction.matching_kernels", "spot_kernel"),
        ("anodemap.diffraction.matching_kernels", "polar_kernel"),
        ("anodemap.diffraction.virtual", "_ring_level_kernel"),
    ),
}

# Scan rows a helper analyses (model choice: the middle rows of a scan hold material, and
# a few hundred pixels pass every step of an analysis in well under a second once the
# kernels are compiled).
_ROWS = 4

# Helpers run at a lower priority: the run is the critical path, a helper matters only
# when the run waits for it (and then the run's core is free). The helper whose kernels
# the run needs first comes before the next (niceness 10, then 15: of a core they share,
# about three quarters to the first).
_NICE = (10, 15)

# Longest wait for one kernel (s): a helper that hangs must not hold the run forever
# (normally a wait ends when the kernel is saved, or the helper ends, in seconds).
_MAX_WAIT_S = 300.0

# How often a helper looks whether the run that started it is still there (s).
_PARENT_POLL_S = 0.5

_OFF = {"0", "off", "no", "false"}


# ----------------------------------------------------------------------------- lock
class _FileLock:
    """An inter-process readers-writer lock on a file (``fcntl.flock``: each hold opens
    the file anew, so that threads exclude each other too). A thread that holds it gets
    it again at once, whichever side it asks for: the outer hold decides (numba's cache
    is never loaded while saved in one thread, so no hold here is ever upgraded)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self._local = threading.local()

    @contextlib.contextmanager
    def _held(self, how: int) -> Iterator[None]:
        import fcntl

        if getattr(self._local, "depth", 0):  # held by this thread already
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, how)
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def shared(self) -> contextlib.AbstractContextManager[None]:
        import fcntl

        return self._held(fcntl.LOCK_SH)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        import fcntl

        return self._held(fcntl.LOCK_EX)


_GUARD: dict[str, Any] = {}


def _guard_numba_cache(
    lock: _FileLock,
    waiter: Callable[[Any], bool] | None = None,
    saved: Callable[[Any], None] | None = None,
) -> Callable[[], None]:
    """Make every load and save of numba's on-disk cache in this process under ``lock``;
    the function that undoes it.

    ``waiter(py_func)``, called when a load finds nothing, may wait for another process
    to save that function; it returns True if it waited (the load is then tried again).
    ``saved(py_func)`` is called once a function's machine code is in the cache (not
    when it is compiled: numba saves after its compile event has ended).
    numba's ``Cache.load_overload``/``save_overload`` (the per-function cache every
    ``cache=True`` dispatcher holds) are wrapped for the whole class, so that the
    functions a kernel calls, compiled with it, are covered too.
    """
    from numba.core.caching import Cache

    if _GUARD:
        raise RuntimeError("numba's cache is guarded already in this process")
    load, save = Cache.load_overload, Cache.save_overload

    def load_overload(self: Any, sig: Any, target_context: Any) -> Any:
        with lock.shared():
            data = load(self, sig, target_context)
        func = getattr(self, "_py_func", None)
        if data is None and waiter is not None and func is not None and waiter(func):
            with lock.shared():
                data = load(self, sig, target_context)
        return data

    def save_overload(self: Any, sig: Any, data: Any) -> None:
        with lock.exclusive():
            save(self, sig, data)
        func = getattr(self, "_py_func", None)
        if saved is not None and func is not None:
            saved(func)

    Cache.load_overload, Cache.save_overload = load_overload, save_overload
    _GUARD.update(load=load, save=save)

    def undo() -> None:
        if _GUARD:
            Cache.load_overload, Cache.save_overload = _GUARD.pop("load"), _GUARD.pop("save")

    return undo


def _cached(kind: str) -> bool:
    """Whether numba's cache holds the marker kernels of ``kind`` for the present source
    (on any doubt: False, and a helper is started)."""
    import importlib

    try:
        for module, name in _MARKERS[kind]:
            dispatcher = getattr(importlib.import_module(module), name)
            # numba's per-function index: empty when absent or made from other source
            if not dispatcher._cache._cache_file._load_index():
                return False
    except Exception:  # another numba's internals: assume cold (a helper costs seconds)
        return False
    return True


# ---------------------------------------------------------------------------- helper
def _kernel_name(func: Any) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _watch_parent(parent_pid: int) -> None:
    """End this helper as soon as the run that started it is gone (also after kill -9,
    which leaves the helper to init)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="anodemap-warmup-parent", daemon=True).start()


def _rows(dataset: Any, n: int) -> Any:
    """``dataset`` cut to ``n`` scan rows about its middle (the first navigation axis;
    contiguous blocks stay contiguous)."""
    from anodemap.io import Dataset

    if not dataset.nav_shape or dataset.nav_shape[0] <= n:
        return dataset
    r0 = (dataset.nav_shape[0] - n) // 2
    ax = dataset.axes[0]
    values = None if ax.values_ is None else ax.values_[r0 : r0 + n]
    first = dataclasses.replace(ax, size=n, offset=ax.offset + r0 * ax.scale, values_=values)
    return Dataset(
        dataset.data[r0 : r0 + n],
        [first, *dataset.axes[1:]],
        dataset.metadata,
        dataset.original_metadata,
    )


def _exercise(
    kind: str, path: str, parameters: Mapping[str, Any], files: Mapping[str, Any], signal: Any
) -> None:
    """Run the analysis ``kind`` on a few rows of the dataset at ``path``: every kernel
    it calls is compiled (or loaded) on the way."""
    from anodemap.analysis import Context, get_analysis

    analysis = get_analysis(kind)
    dataset = _rows(analysis.load(Path(path), signal=signal), _ROWS)
    context = Context(progress=False, figures=False, log=lambda _message: None)
    analysis.analyse(dataset, analysis.parameters(dict(parameters)), context, dict(files))


def _helper_main(kind: str, conn: Any, lock_path: str, parent_pid: int, nice: int) -> None:
    """A helper process: compile the kernels of ``kind`` on the dataset it is sent.

    Sends ``("compiled", name, seconds)`` for every anodemap function it compiled, once
    it is saved in numba's cache, then ``("done", seconds)`` or ``("failed", message)``.
    """
    import warnings

    _watch_parent(parent_pid)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(nice)
    # nothing on the run's terminal: what a helper makes is the cache
    with contextlib.suppress(OSError):
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
    warnings.simplefilter("ignore")
    sending = threading.Lock()

    def send(message: tuple) -> None:
        with sending, contextlib.suppress(OSError, ValueError):
            conn.send(message)

    # how long each function took to compile (numba's compile event), said when saved
    took: dict[str, float] = {}

    def saved(func: Any) -> None:
        name = _kernel_name(func)
        if name.startswith("anodemap."):
            send(("compiled", name, took.pop(name, float("nan"))))

    _guard_numba_cache(_FileLock(lock_path), saved=saved)
    from numba.core import event

    class _Timer(event.Listener):
        def on_start(self, ev: Any) -> None:
            ev.data["anodemap_t0"] = time.perf_counter()

        def on_end(self, ev: Any) -> None:
            func = getattr(ev.data.get("dispatcher"), "py_func", None)
            if func is not None:
                t0 = ev.data.get("anodemap_t0", time.perf_counter())
                took[_kernel_name(func)] = time.perf_counter() - t0

    event.register("numba:compile", _Timer())
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return
    if message[0] != "dataset":
        return
    t0 = time.perf_counter()
    try:
        _exercise(kind, *message[1:])
    except BaseException as err:  # the run compiles what is missing itself
        send(("failed", f"{type(err).__name__}: {err}"))
        return
    send(("done", time.perf_counter() - t0))


# ------------------------------------------------------------------------------ run
@dataclasses.dataclass
class _Helper:
    kind: str
    process: Any
    conn: Any
    offered: bool = False
    finished: bool = False
    outcome: str = "running"
    compiled: set[str] = dataclasses.field(default_factory=set)
    started: float = dataclasses.field(default_factory=time.perf_counter)


class Warmup:
    """The helper processes of one run (made by :func:`start`); a context manager that
    stops them at its end.

    Examples
    --------
    >>> with Warmup([], None) as warm:  # no helper: offers are ignored
    ...     warm.offer("eels", "spectra.hspy")
    >>> warm.kinds
    []
    """

    def __init__(self, helpers: list[_Helper], lock: _FileLock | None) -> None:
        self._helpers = {h.kind: h for h in helpers}
        self._lock = lock
        self._state = threading.RLock()
        self._announced = False
        self._undo: Callable[[], None] | None = None
        if helpers and lock is not None:
            try:
                self._undo = _guard_numba_cache(lock, self._wait_for)
            except (ImportError, AttributeError, RuntimeError) as err:
                # another numba's cache internals: no helpers, the run compiles as always
                _LOG.debug(f"warm-up: off ({type(err).__name__}: {err})")
                for h in helpers:
                    h.process.terminate()
                self._helpers = {}

    @property
    def kinds(self) -> list[str]:
        """The analyses whose kernels are being compiled."""
        return list(self._helpers)

    def offer(
        self,
        kind: str,
        path: str | os.PathLike,
        parameters: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        signal: Any = None,
    ) -> None:
        """Give the helper of ``kind`` (if any, and not given one yet) the dataset at
        ``path`` (complete on disk), read with ``signal`` and analysed with
        ``parameters`` and ``files`` as the run will."""
        with self._state:
            helper = self._helpers.get(kind)
            if helper is None or helper.offered or helper.finished:
                return
            files = {k: str(v) for k, v in (files or {}).items() if v is not None}
            try:
                helper.conn.send(("dataset", str(path), dict(parameters or {}), files, signal))
            except (OSError, ValueError):
                helper.finished = True
                return
            helper.offered = True
            _LOG.debug(f"warm-up: compiling the {kind} kernels on {path}, in the background")

    def offer_study(self, study: Any) -> None:
        """Offer each helper the study's first dataset of its kind (as ``run`` reads and
        analyses it: its signal, parameters and files)."""
        from anodemap.analysis import get_analysis

        for state in study.states:
            for ds in state.datasets:
                for name in ds.analyses:
                    if name not in self._helpers:
                        continue
                    allowed = get_analysis(name).files
                    given = {"calibration": study.calibration, **ds.files}
                    files = {k: v for k, v in given.items() if k in allowed and v is not None}
                    self.offer(name, ds.path, ds.parameters.get(name, {}), files, ds.signal)

    # -- waiting for a kernel (numba's cache load, in any thread of the run)
    def _wait_for(self, func: Any) -> bool:
        name = _kernel_name(func)
        helper = next(
            (h for k, h in self._helpers.items() if func.__module__.startswith(_PACKAGES[k])),
            None,
        )
        if helper is None:
            return False
        waited = False
        deadline = time.monotonic() + _MAX_WAIT_S
        t0 = time.perf_counter()
        while True:
            self._pump(0.0)
            with self._state:
                if not helper.offered or helper.finished or name in helper.compiled:
                    break
                if not waited:
                    waited = True
                    if not self._announced:
                        self._announced = True
                        _LOG.info(
                            "waiting for the numerical kernels, compiled in the background "
                            "(first run only; the machine code is cached for later runs)"
                        )
                    _LOG.debug(f"warm-up: waiting for {name}, compiling in the background")
            if time.monotonic() > deadline:
                break
            self._pump(0.25)
        if waited:
            _LOG.debug(f"warm-up: {name} ready after {time.perf_counter() - t0:.1f} s")
        return waited

    def _pump(self, timeout: float) -> None:
        """Read the helpers' messages, after waiting up to ``timeout`` s for one."""
        from multiprocessing.connection import wait

        with self._state:
            live = [h for h in self._helpers.values() if not h.finished]
        if not live:
            return
        if timeout > 0:
            with contextlib.suppress(OSError, ValueError):
                wait([h.conn for h in live] + [h.process.sentinel for h in live], timeout)
        with self._state:
            for h in live:
                if not h.finished:
                    self._read(h)

    def _read(self, helper: _Helper) -> None:
        try:
            while helper.conn.poll():
                message = helper.conn.recv()
                if message[0] == "compiled":
                    helper.compiled.add(message[1])
                    _LOG.debug(f"warm-up: compiled {message[1]} in {message[2]:.1f} s")
                elif message[0] == "done":
                    helper.finished, helper.outcome = True, "done"
                    _LOG.debug(
                        f"warm-up: {helper.kind} kernels ready "
                        f"{time.perf_counter() - helper.started:.0f} s after the start"
                    )
                elif message[0] == "failed":
                    helper.finished, helper.outcome = True, f"failed: {message[1]}"
                    _LOG.debug(f"warm-up: the {helper.kind} helper stopped: {message[1]}")
        except (EOFError, OSError):
            helper.finished = True
        if not helper.finished and not helper.process.is_alive() and not helper.conn.poll():
            helper.finished = True
        if helper.finished and helper.outcome == "running":
            helper.outcome = f"ended (exit code {helper.process.exitcode})"

    def wait(self, timeout: float | None = None) -> dict[str, str]:
        """Wait until every helper given a dataset has finished (at most ``timeout`` s);
        how each ended: ``"done"``, ``"failed: ..."``, ``"ended (exit code N)"``, or
        ``"running"`` / ``"no dataset"`` when it has not."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._pump(0.0)
            with self._state:
                busy = [h for h in self._helpers.values() if h.offered and not h.finished]
                if not busy or (deadline is not None and time.monotonic() > deadline):
                    return {
                        k: h.outcome if h.offered else "no dataset"
                        for k, h in self._helpers.items()
                    }
            self._pump(0.25)

    def close(self) -> None:
        """Stop the helpers (a helper still compiling is ended between two cache writes,
        under the lock's exclusive side) and give numba's cache back its own functions."""
        with self._state:
            helpers, self._helpers = list(self._helpers.values()), {}
        for h in helpers:
            with contextlib.suppress(OSError, ValueError):
                h.conn.send(("stop",))
        running = [h for h in helpers if h.process.is_alive()]
        if running and self._lock is not None:
            with self._lock.exclusive():
                for h in running:
                    h.process.terminate()
                for h in running:
                    h.process.join(5.0)
        for h in helpers:
            h.process.join(5.0)
            with contextlib.suppress(OSError):
                h.conn.close()
        if self._undo is not None:
            self._undo()
            self._undo = None
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._lock.path)
            self._lock = None

    def __enter__(self) -> Warmup:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def start(kinds: Iterable[str], *, scheduler: str | None = None) -> Warmup:
    """Start a helper process for each of ``kinds`` (analysis names) whose kernels are
    not in numba's cache; the :class:`Warmup` that holds them (with no helper where none
    is needed or possible).

    Parameters
    ----------
    kinds : iterable of str
        The analyses the run will do (those without compiled kernels are passed over).
    scheduler : str, optional
        A dask cluster's address: the kernels are compiled on its workers, no helper.
    """
    wanted = [k for k in dict.fromkeys(kinds) if k in _PACKAGES]
    if (
        not wanted
        or scheduler
        or _GUARD  # another run of this process has helpers (one guard per process)
        or os.environ.get("ANODEMAP_WARMUP", "").strip().lower() in _OFF
        or sys.platform == "win32"
    ):
        return Warmup([], None)
    from numba.core import config

    if config.DISABLE_JIT:  # nothing is compiled (NUMBA_DISABLE_JIT=1)
        return Warmup([], None)
    try:  # the numba internals the lock wraps (numba >= 0.49); else no helper
        from numba.core.caching import Cache

        Cache.load_overload, Cache.save_overload  # noqa: B018
    except (ImportError, AttributeError):
        return Warmup([], None)
    wanted = [k for k in wanted if not _cached(k)]
    if not wanted:
        return Warmup([], None)
    helpers: list[_Helper] = []
    lock_path = None
    try:
        import fcntl  # noqa: F401 - the lock needs it
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # the run may hold threads: no fork
        fd, lock_path = tempfile.mkstemp(prefix="anodemap-numba-", suffix=".lock")
        os.close(fd)
        for i, kind in enumerate(wanted):
            ours, theirs = ctx.Pipe()
            process = ctx.Process(
                target=_helper_main,
                args=(kind, theirs, lock_path, os.getpid(), _NICE[min(i, len(_NICE) - 1)]),
                name=f"anodemap-warmup-{kind}",
                daemon=True,
            )
            process.start()
            theirs.close()
            helpers.append(_Helper(kind, process, ours))
    except Exception as err:  # no helper processes here (sandbox, no semaphores)
        _LOG.debug(f"warm-up: no helper process ({type(err).__name__}: {err})")
        for h in helpers:  # none of them has a dataset yet: nothing half-done
            h.process.terminate()
        if lock_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
        return Warmup([], None)
    _LOG.debug(f"warm-up: compiling the {', '.join(wanted)} kernels in helper processes")
    return Warmup(helpers, _FileLock(lock_path))
