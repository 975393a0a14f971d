"""Import hygiene: light modules stay light, the package's names still resolve."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_calibration_does_not_pull_in_the_pipeline() -> None:
    """The figure worker imports the calibration; numba, scipy.fft and dask must not follow."""
    code = (
        "import sys, anodemap.eels.calibration\n"
        "heavy = [m for m in ('numba', 'scipy.fft', 'scipy.optimize', 'dask',"
        " 'anodemap.eels.pipeline') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_package_names_resolve_lazily() -> None:
    import anodemap.eels as eels
    from anodemap.eels import analyse_eels, default_calibration
    from anodemap.eels.pipeline import analyse_eels as direct

    assert analyse_eels is direct
    assert default_calibration().form == "free_electron"
    assert set(eels.__all__) == set(eels._WHERE)  # every exported name has a home
    assert set(eels.__all__) <= set(dir(eels))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = eels.not_a_name
