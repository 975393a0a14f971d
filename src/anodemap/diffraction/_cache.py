"""On-disk cache of prepared template libraries (kinematic templates + their matcher).

Building the libraries of two phases at the default steps (1.5° for the phases, 1.0°
for the orientation refinement) costs about 3.5 CPU-seconds, a third of the whole
`anodemap diffraction` command on a 2 × 2 k-pattern scan. They depend only on the
phases, the beam energy, the calibration, the precession angle, the step, the pattern
size and the matcher's parameters, all of which repeat from scan to scan of a session,
so they are kept in a cache folder and read back (about 0.05 s) when asked for again.

The key is a SHA-256 of everything the libraries are made from: those settings, the
crystal structures themselves (a changed CIF is a new key), the anodemap version and the
source code of the modules that build them (`calibration`, `crystal`, `libraries`,
`matcher`, `matching_kernels`, `templates`: an edit of the simulation or of the matcher
is a new key; an edit of the analysis's driver, `pipeline`, is not). A file that cannot be read is built anew and written again; files are
written under a temporary name and renamed, so that an interrupted run leaves no file
that looks complete.

Folder: ``$ANODEMAP_CACHE_DIR``, else ``$XDG_CACHE_HOME/anodemap``, else
``~/.cache/anodemap``; the templates are under ``templates/`` (and the simulator's relaxed
amorphous models, :func:`anodemap.synth.diffraction.amorphous_model`, under
``amorphous/``). ``ANODEMAP_CACHE_DIR=off``
(or ``DiffractionParameters(template_cache=False)``, ``--no-template-cache``) turns the
cache off. Deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anodemap.io.atomic import atomic_path

__all__ = ["cache_dir", "cached"]

_OFF = {"", "0", "off", "no", "none", "false"}


def cache_dir() -> Path | None:
    """The cache folder (not created), or None when the cache is turned off.

    Examples
    --------
    >>> import os
    >>> os.environ["ANODEMAP_CACHE_DIR"] = "off"
    >>> cache_dir() is None
    True
    >>> del os.environ["ANODEMAP_CACHE_DIR"]
    """
    env = os.environ.get("ANODEMAP_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "anodemap"


def _source_digest() -> str:
    """Digest of the code that builds the libraries (and of the package version)."""
    from anodemap import __version__

    # the modules that build the libraries and their matcher, not the driver that asks
    # for them (an edit of pipeline.py leaves the cached libraries valid)
    from anodemap.diffraction import (
        calibration,
        crystal,
        libraries,
        matcher,
        matching_kernels,
        templates,
    )

    h = hashlib.sha256(__version__.encode())
    for module in (calibration, crystal, libraries, matcher, matching_kernels, templates):
        h.update(Path(module.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def key_of(*parts: Any) -> str:
    """SHA-256 of the pickled ``parts`` and the building code (:func:`_source_digest`)."""
    h = hashlib.sha256(_source_digest().encode())
    h.update(pickle.dumps(parts, protocol=5))
    return h.hexdigest()


def cached(kind: str, parts: tuple, build: Callable[[], Any], enabled: bool = True) -> Any:
    """``build()``, or its result from the cache when the same ``parts`` were built before.

    Parameters
    ----------
    kind : str
        Sub-folder (e.g. ``"templates"``).
    parts : tuple
        Everything the result depends on besides the code (picklable).
    build : callable
        Makes the result (picklable) when it is not cached.
    enabled : bool
        False: build, and neither read nor write the cache.
    """
    folder = cache_dir() if enabled else None
    if folder is None:
        return build()
    path = folder / kind / f"{key_of(kind, parts)}.pkl"
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # absent, unreadable, or from other versions of numpy: build anew
        pass
    value = build()
    # a read-only or full disk: the result is still returned
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, record=False) as tmp, open(tmp, "wb") as f:
            pickle.dump(value, f, protocol=5)
    return value
