"""Atomic writes: every file or folder store anodemap writes appears whole or not at all.

A writer writes under a hidden temporary name beside the target, unique to the process
and the call (``.NAME.partial-PID-RANDOM.EXT``: the pid tells a later run's cleanup,
:mod:`anodemap.io.outdir`, whether the writer is still alive), and renames it onto the
target when complete; on any error the temporary is removed. :func:`atomic_path` is the
one way anodemap does this, for text, figures, maps, folder stores (.zspy) and caches.

Examples
--------
>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "peaks.csv"
>>> with atomic_path(target) as tmp:
...     _ = tmp.write_text("r,G\\n")
>>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
('r,G\\n', ['peaks.csv'])
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "remove_path", "replace_path", "temporary_path"]


def temporary_path(path: str | os.PathLike) -> Path:
    """A hidden temporary name beside ``path``, unique to this process and call.

    The pid in the name tells the cleanup of a later run whether the writer is still
    alive; the random part keeps two writers in one process apart.

    Examples
    --------
    >>> import os
    >>> tmp = temporary_path("out/overview.png")
    >>> tmp.name.startswith(f".overview.partial-{os.getpid()}-"), tmp.suffix
    (True, '.png')
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.partial-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, record: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` under; rename it onto ``path`` when the
    block ends without error, remove it otherwise.

    Parameters
    ----------
    path : path-like
        The target (a file, or a folder store such as .zspy), in an existing folder.
    record : bool
        Record ``path`` as this run's in the output folder this process holds
        (:func:`anodemap.io.outdir.claim`); False for files outside output folders
        (caches, the folder's own bookkeeping).
    """
    path = Path(path)
    if record:
        from anodemap.io.outdir import claim

        claim(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        replace_path(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def remove_path(p: Path) -> None:
    """Remove a file or a folder store, if present."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def replace_path(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` onto ``path``; a folder store replaces an existing one through a
    backup name (``.NAME.old-RANDOM``), removed after."""
    if tmp.is_dir() and path.exists():
        backup = path.with_name(f".{path.name}.old-{secrets.token_hex(4)}")
        os.replace(path, backup)
        os.replace(tmp, path)
        remove_path(backup)
    else:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
