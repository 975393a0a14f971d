"""Say so when numba compiles a kernel (the first run after an install), and how long it took.

numba compiles each kernel the first time it runs and keeps the machine code in its
cache (``__pycache__`` beside the module, or ``$NUMBA_CACHE_DIR``); later runs load it
in milliseconds. A first run therefore spends up to a minute or more compiling, which a
progress bar at 0 % does not explain. numba announces each compilation with a
``numba:compile`` event (loading from the cache announces none): the listener here turns
the outermost of those into one line each, through the caller's logging function.

Examples
--------
>>> lines = []
>>> with compile_notice(lines.append):
...     pass
>>> lines
[]
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["compile_notice"]

# compilations shorter than this get no "compiled ... in" line (they are not what a
# user waits for)
_REPORT_S = 2.0


def _kernel_name(data: dict) -> str:
    dispatcher = data.get("dispatcher")
    func = getattr(dispatcher, "py_func", None)
    if func is None:
        return "a kernel"
    module = func.__module__.removeprefix("anodemap.")
    return f"{module}.{func.__name__}"


@contextlib.contextmanager
def compile_notice(log: Callable[[str], None]) -> Iterator[None]:
    """Within the block, log a line when an anodemap kernel starts compiling and when it
    is done (the first line says it happens on the first run only).

    Parameters
    ----------
    log : callable
        Takes one message string (e.g. the command line's logger).
    """
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - numba is a dependency
        yield
        return

    lock = threading.Lock()
    state = {"depth": 0, "announced": False, "t0": 0.0, "name": ""}

    class _Listener(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            with lock:
                state["depth"] += 1
                if state["depth"] != 1:
                    return
                name = _kernel_name(ev.data)
                if not name.startswith(("diffraction", "eels", "synth", "_compute")):
                    return
                state["t0"], state["name"] = time.perf_counter(), name
                first = not state["announced"]
                state["announced"] = True
            if first:
                log(
                    "compiling the numerical kernels (first run only; the machine code is "
                    "cached for later runs)"
                )
            log(f"compiling {name} ...")

        def on_end(self, ev: event.Event) -> None:
            with lock:
                state["depth"] -= 1
                if state["depth"] != 0 or not state["name"]:
                    return
                name, dt = state["name"], time.perf_counter() - state["t0"]
                state["name"] = ""
            if dt >= _REPORT_S:
                log(f"compiled {name} in {dt:.0f} s")

    listener = _Listener()
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)
