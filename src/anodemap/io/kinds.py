"""What kind of data a dataset holds, in a microscopist's words, and what each command needs.

Every command reads with :func:`anodemap.io.load` and a *kind*: a function that says
why a dataset is not what the command needs (``None`` when it is). For a file with
several signals the one signal of the right kind is chosen; a dataset of the wrong
kind is refused with a sentence that says what it is and what the command needs,
e.g. "an EDX spectrum image (signal_type EDS_TEM), scan 64 × 64, 2048 channels
0–20 keV: anodemap eels needs a low-loss EELS spectrum image".

Examples
--------
>>> import numpy as np
>>> from anodemap.io import Axis, Dataset
>>> ds = Dataset(np.zeros((4, 5, 100)), [Axis("y", 4), Axis("x", 5),
...              Axis("Energy", 100, 0.01, 0.0, "keV", navigate=False)])
>>> ds.set_meta("Signal.signal_type", "EDS_TEM")
>>> describe(ds)
'an EDX spectrum image (signal_type EDS_TEM), scan 4 × 5, 100 channels 0–0.99 keV'
>>> lowloss_eels(ds)
'an EDX spectrum image (signal_type EDS_TEM), scan 4 × 5, 100 channels 0–0.99 keV: anodemap eels needs a low-loss EELS spectrum image'
"""

from __future__ import annotations

from collections.abc import Callable

from anodemap.io.dataset import Dataset

__all__ = ["Kind", "describe", "diffraction_scan", "edx_spectra", "image", "lowloss_eels"]

Kind = Callable[[Dataset], "str | None"]

_ENERGY_EV = {"ev": 1.0, "kev": 1e3, "mev": 1e-3}
# lengths that only real space uses (a camera-plane length in mm or cm is a diffraction
# calibration, so those are not in the list)
_REAL_SPACE = {"nm", "µm", "um", "μm", "å", "a", "angstrom", "pm"}
# the zero-loss search of anodemap eels reaches 10 eV (eels.zlp): an axis starting
# above that holds no zero-loss peak to align on or deconvolve with
_ZERO_LOSS_REACH_EV = 10.0
# plasmon peaks are 3-5 eV wide: channels wider than 1 eV cannot resolve one (model
# choice; low-loss spectra are recorded at 0.01-0.5 eV per channel, EDX at 5-20 eV)
_MAX_CHANNEL_EV = 1.0
# X-ray spectra: channels of 2 eV or more (EDX detectors record 5-20 eV per channel,
# EELS 0.01-1 eV), an axis that reaches 1 keV (model choices, for files that do not say
# EDS in their signal type, e.g. TIA's)
_MIN_XRAY_CHANNEL_EV = 2.0
_MIN_XRAY_TOP_EV = 1000.0
# patterns smaller than this cannot hold a direct beam and rings to match (model choice:
# the smallest simulated patterns we validate are 32 px)
_MIN_PATTERN_PX = 16


def _shape(shape: tuple[int, ...]) -> str:
    return " × ".join(str(int(n)) for n in shape)


def _energy_range(ds: Dataset) -> str:
    ax = ds.sig_axes[0]
    v = ax.values
    return f"{v[0]:.4g}–{v[-1]:.4g} {ax.units}"


def _series(ds: Dataset) -> str:
    """What a single navigation axis is: "tilt", "time", "line" (a scan) or "stack"."""
    ax = ds.nav_axes[0]
    units = ax.units.strip().lower()
    if units in ("deg", "°", "degree", "degrees", "rad"):
        return "tilt"
    if units in ("s", "ms", "µs", "us") or ax.name.strip().lower() == "time":
        return "time"
    if units in _REAL_SPACE:
        return "line"
    return "stack"


def _is_diffraction(ds: Dataset) -> bool:
    if ds.signal_type.lower().endswith("diffraction"):
        return True
    units = {a.units.strip().lower() for a in ds.sig_axes if a.units}
    return (
        bool(units)
        and not units & _REAL_SPACE
        and all("/" in u or u in ("mrad", "rad", "cm", "mm") for u in units)
    )


def describe(ds: Dataset) -> str:
    """One phrase that says what a dataset holds: kind, signal type, shape, calibration.

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.io import Axis, Dataset
    >>> describe(Dataset(np.zeros((8, 8)), [Axis("y", 8, 1.0, 0.0, "nm", False),
    ...                                      Axis("x", 8, 1.0, 0.0, "nm", False)]))
    'an image 8 × 8 (nm)'
    """
    st = ds.signal_type
    typed = f" (signal_type {st})" if st else ""
    sig, nav = ds.sig_shape, ds.nav_shape
    if len(sig) == 1:
        what = "EDX " if st.upper().startswith("EDS") else "EELS " if st.upper() == "EELS" else ""
        channels = f"{sig[0]} channels" + (f" {_energy_range(ds)}" if ds.sig_axes[0].units else "")
        if not nav:
            return f"a single {what}spectrum{typed}, {channels}"
        return f"{_article(what + 'spectrum image')}{typed}, scan {_shape(nav)}, {channels}"
    if len(sig) == 2:
        units = sorted({a.units for a in ds.sig_axes if a.units})
        unit = f" ({', '.join(units)})" if units else ""
        noun = "diffraction pattern" if _is_diffraction(ds) else "image"
        if not nav:
            return f"{_article(noun)} {_shape(sig)}{unit}{typed}"
        if len(nav) == 1:
            series = _series(ds)
            unit_nav = ds.nav_axes[0].units
            lead = {
                "tilt": f"a tilt series ({unit_nav}) of",
                "time": "a time series of",
                "line": "a line scan of",
                "stack": "a stack of",
            }[series]
            return f"{lead} {nav[0]} {noun}s {_shape(sig)}{unit}{typed}"
        return f"a {len(ds.data.shape)}D dataset{typed}: scan {_shape(nav)}, {noun}s {_shape(sig)}{unit}"
    if not sig:
        return f"{len(ds.data.shape)}D data of shape {_shape(ds.data.shape)} without signal axes"
    return f"a dataset{typed} with {len(sig)} signal axes {_shape(sig)}"


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeio" or noun.startswith("EDX") else "a ") + noun


def _refuse(ds: Dataset, needs: str) -> str:
    return f"{describe(ds)}: {needs}"


def _needs(text: str) -> Callable[[Kind], Kind]:
    """Attach what a kind needs, for messages that list a file's signals."""

    def mark(kind: Kind) -> Kind:
        kind.needs = text  # type: ignore[attr-defined]
        return kind

    return mark


@_needs("anodemap eels needs a low-loss EELS spectrum image")
def lowloss_eels(ds: Dataset) -> str | None:
    """Why ``ds`` is not a low-loss EELS spectrum (image) for ``anodemap eels``, or None."""
    needs = lowloss_eels.needs  # type: ignore[attr-defined]
    st = ds.signal_type.upper()
    if st.startswith("EDS"):
        return _refuse(ds, needs)
    if len(ds.sig_shape) != 1:
        return _refuse(ds, needs + " (spectra: one energy axis)")
    ax = ds.sig_axes[0]
    factor = _ENERGY_EV.get(ax.units.strip().lower())
    if factor is None:
        return _refuse(
            ds,
            needs + f"; its signal axis is in '{ax.units or 'no units'}', not an energy "
            "(calibrate it in eV)",
        )
    width = abs(float(ax.scale)) * factor
    if ax.is_uniform and width > _MAX_CHANNEL_EV:
        return _refuse(
            ds,
            needs + f"; its channels are {width:.4g} eV wide, too coarse for plasmons "
            "3–5 eV wide (X-ray spectra have channels this wide: for EDX, this is the "
            "wrong command)",
        )
    start = float(ax.values.min()) * factor
    if start > _ZERO_LOSS_REACH_EV:
        return _refuse(
            ds,
            "no zero-loss peak (the energy axis starts at "
            f"{start:.4g} eV): anodemap eels needs low-loss spectra that include the "
            "zero-loss peak at 0 eV",
        )
    return None


@_needs("anodemap diffraction needs a scan of diffraction patterns (4D: scan, pattern)")
def diffraction_scan(ds: Dataset) -> str | None:
    """Why ``ds`` is not a scan of diffraction patterns for ``anodemap diffraction``."""
    needs = diffraction_scan.needs  # type: ignore[attr-defined]
    st = ds.signal_type.upper()
    if st.startswith("EDS") or st == "EELS" or len(ds.sig_shape) == 1:
        return _refuse(ds, needs)
    if len(ds.sig_shape) != 2:
        return _refuse(ds, needs)
    if not ds.nav_shape:
        return _refuse(ds, needs + "; this is one pattern or image, not a scan")
    series = _series(ds) if len(ds.nav_shape) == 1 else "scan"
    if series == "time":
        return _refuse(
            ds,
            needs + "; a camera's video stream must be cut into the scan first: "
            "anodemap stream RECORDING_000.tvips -o SCAN.zspy",
        )
    if series == "tilt":
        return _refuse(ds, needs)
    if len(ds.nav_shape) > 2:
        return _refuse(ds, needs + " with one or two scan axes")
    units = {a.units.strip().lower() for a in ds.sig_axes}
    if units & _REAL_SPACE:
        return _refuse(
            ds, needs + f"; its pattern axes are real-space lengths ({', '.join(sorted(units))})"
        )
    if min(ds.sig_shape) < _MIN_PATTERN_PX:
        return _refuse(ds, needs + f" of at least {_MIN_PATTERN_PX} × {_MIN_PATTERN_PX} pixels")
    return None


@_needs("anodemap edx needs an EDX spectrum image (X-ray spectra, energy axis in eV or keV)")
def edx_spectra(ds: Dataset) -> str | None:
    """Why ``ds`` is not X-ray spectra (a spectrum image, line scan or one spectrum) for
    ``anodemap edx``, or None: signal type EDS_TEM/EDS_SEM, or no signal type and an
    energy axis with X-ray channels (at least 2 eV wide, reaching 1 keV)."""
    needs = edx_spectra.needs  # type: ignore[attr-defined]
    st = ds.signal_type.upper()
    if len(ds.sig_shape) != 1:
        return _refuse(ds, needs)
    ax = ds.sig_axes[0]
    factor = _ENERGY_EV.get(ax.units.strip().lower())
    if factor is None or factor < 1.0:
        return _refuse(
            ds, needs + f"; its signal axis is in '{ax.units or 'no units'}', not eV or keV"
        )
    if st.startswith("EDS"):
        return None
    if st:
        return _refuse(ds, needs)
    width = abs(float(ax.scale)) * factor
    top = float(ax.values.max()) * factor
    if width < _MIN_XRAY_CHANNEL_EV or top < _MIN_XRAY_TOP_EV:
        return _refuse(
            ds,
            needs + f"; its channels ({width:.3g} eV wide, up to {top:.4g} eV) are not those "
            "of X-ray spectra (for EELS, anodemap eels)",
        )
    return None


# images smaller than this hold too few pixels for a grey level and its spread (model
# choice, anodemap.features)
_MIN_IMAGE_PX = 8


@_needs("anodemap features needs an image (HAADF, ADF or BF: two real-space axes)")
def image(ds: Dataset) -> str | None:
    """Why ``ds`` is not an image or an image series (tilt, time, stack) for ``anodemap
    features``, or None: two signal axes in a real-space unit or uncalibrated, not a
    diffraction pattern's, at most one series axis, at least 8 × 8 pixels."""
    needs = image.needs  # type: ignore[attr-defined]
    st = ds.signal_type.upper()
    if st.startswith("EDS") or st == "EELS" or len(ds.sig_shape) != 2:
        return _refuse(ds, needs)
    if _is_diffraction(ds):
        return _refuse(ds, needs + "; these are diffraction patterns (reciprocal-space axes)")
    if len(ds.nav_shape) > 1:
        return _refuse(ds, needs + " or a series of images, not a scan of patterns")
    if min(ds.sig_shape) < _MIN_IMAGE_PX:
        return _refuse(ds, needs + f" of at least {_MIN_IMAGE_PX} × {_MIN_IMAGE_PX} pixels")
    return None
