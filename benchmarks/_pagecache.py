"""Page-cache helper shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def drop_page_cache(paths: Iterable[Path]) -> bool:
    """Write back and drop these files' pages from the OS page cache (``posix_fadvise``).

    Folders are walked. Only these files are dropped, so the interpreter and libraries
    start as on a user's second run. Returns False where the OS offers no such call.
    """
    try:
        for path in paths:
            files = (
                [p for p in Path(path).rglob("*") if p.is_file()] if Path(path).is_dir() else [path]
            )
            for p in files:
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.fdatasync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
        return True
    except (OSError, AttributeError):
        return False
