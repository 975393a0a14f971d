"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package; skip the test if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (pip install -e '.[test]'): no comparison")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        pytest.skip(f"this {package} version does not ship {'/'.join(parts)}")
    return path


def exspy_file(*parts: str) -> Path:
    """A data file shipped inside exspy (real and simulated spectra of its own tests)."""
    return package_file("exspy", *parts)


def hs_load(path: Path):
    """Load with HyperSpy, quietly; skip if HyperSpy is absent."""
    hs = pytest.importorskip("hyperspy.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hs.load(path)
