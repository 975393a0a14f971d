"""Exceptions raised by anodemap.

They all derive from :class:`AnodemapError`, and from the built-in exception a
user would expect (``ValueError`` for bad input, ``OSError`` for files), so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class AnodemapError(Exception):
    """Base class of anodemap's errors."""


class AnodemapInputError(AnodemapError, ValueError):
    """Input data or a parameter cannot be analysed as given (the message says why)."""


class AnodemapIOError(AnodemapError, OSError):
    """A file cannot be read or written (the message names the file and the reason)."""
