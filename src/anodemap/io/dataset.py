"""A dataset is its array plus calibrated axes and metadata.

The structure is the one rosettasciio returns and writes (a "signal dictionary"),
so a dataset read from a file and written back as ``.hspy``/``.zspy`` loses
nothing, and HyperSpy opens the result with the right axes and units.

Convention: navigation (scan) axes come first in the array, signal axes last
(spectra have energy last; diffraction patterns are the last two axes).

Examples
--------
>>> import numpy as np
>>> from anodemap.io import Axis, Dataset
>>> ds = Dataset(
...     np.zeros((2, 3, 100), dtype="float32"),
...     axes=[Axis("y", 2, 5.0, 0.0, "nm"), Axis("x", 3, 5.0, 0.0, "nm"),
...           Axis("Energy loss", 100, 0.05, -5.0, "eV", navigate=False)],
... )
>>> ds.nav_shape, ds.sig_shape
((2, 3), (100,))
>>> ds.sig_axes[0].values[:3]
array([-5.  , -4.95, -4.9 ])
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError

__all__ = ["Axis", "Dataset"]

# Relative tolerance on channel spacing for an axis given as an array of values to
# count as uniform (model choice: well below any energy calibration uncertainty).
_UNIFORM_RTOL = 1e-6


@dataclass
class Axis:
    """One calibrated axis: ``value = offset + scale * index`` unless ``values`` is given.

    Parameters
    ----------
    name : str
        Axis name, e.g. ``"x"``, ``"Energy loss"``.
    size : int
        Number of points.
    scale, offset : float
        Calibration of a uniform axis.
    units : str
        Units, e.g. ``"nm"``, ``"eV"``, ``"1/Å"``.
    navigate : bool
        True for scan (navigation) axes, False for signal axes.
    values : ndarray, optional
        Explicit coordinates of a non-uniform axis (then scale/offset are ignored).

    Examples
    --------
    >>> Axis("Energy loss", 3, 0.5, -1.0, "eV", navigate=False).values
    array([-1. , -0.5,  0. ])
    """

    name: str
    size: int
    scale: float = 1.0
    offset: float = 0.0
    units: str = ""
    navigate: bool = True
    values_: np.ndarray | None = field(default=None, repr=False)

    @property
    def is_uniform(self) -> bool:
        """True when the axis is ``offset + scale * index``."""
        return self.values_ is None

    @property
    def values(self) -> np.ndarray:
        """Coordinates of every point."""
        if self.values_ is not None:
            return np.asarray(self.values_, dtype=float)
        return self.offset + self.scale * np.arange(self.size, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        """The axis as a rosettasciio/HyperSpy axis dictionary."""
        d: dict[str, Any] = {
            "name": self.name,
            "units": self.units,
            "navigate": bool(self.navigate),
            "is_binned": False,
            "size": int(self.size),
        }
        if self.values_ is None:
            d.update(_type="UniformDataAxis", scale=float(self.scale), offset=float(self.offset))
        else:
            d.update(_type="DataAxis", axis=np.asarray(self.values_, dtype=float))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], size: int | None = None) -> Axis:
        """Build from a rosettasciio axis dictionary (uniform or non-uniform)."""
        name = d.get("name")
        units = d.get("units")
        name = "" if _undefined(name) else str(name)
        units = "" if _undefined(units) else str(units)
        navigate = bool(d.get("navigate", True))
        if "axis" in d and d["axis"] is not None:
            values = np.asarray(d["axis"], dtype=float)
            ax = cls(name, int(values.size), 1.0, 0.0, units, navigate, values)
            return ax.uniformised()
        n = int(d.get("size", size if size is not None else 1))
        scale = float(d.get("scale", 1.0) if d.get("scale") is not None else 1.0)
        if scale == 0.0:
            # a zero step says the calibration is unknown (TVIPS frame times): read the
            # axis as uncalibrated rather than claim one unit per step
            scale, units = 1.0, ""
        return cls(name, n, scale, float(d.get("offset", 0.0) or 0.0), units, navigate)

    def uniformised(self) -> Axis:
        """Return a uniform axis if the explicit values are evenly spaced, else self."""
        if self.values_ is None or self.size < 2:
            if self.values_ is not None and self.size == 1:
                return Axis(self.name, 1, 1.0, float(self.values_[0]), self.units, self.navigate)
            return self
        v = np.asarray(self.values_, dtype=float)
        step = np.diff(v)
        scale = (v[-1] - v[0]) / (v.size - 1)
        if scale != 0 and np.all(np.abs(step - scale) <= _UNIFORM_RTOL * abs(scale)):
            return Axis(self.name, self.size, float(scale), float(v[0]), self.units, self.navigate)
        return self


def _undefined(value: Any) -> bool:
    """True for None and for traits' ``Undefined`` that some readers put in axes."""
    return value is None or str(value) == "<undefined>"


@dataclass
class Dataset:
    """An array with calibrated axes and metadata, navigation axes first.

    Parameters
    ----------
    data : ndarray or dask.array.Array
        The data; lazy (dask) arrays are kept lazy.
    axes : list of Axis
        One per array dimension, in array order. If omitted, uncalibrated axes are
        made with every axis but the last navigating.
    metadata, original_metadata : dict
        HyperSpy-style metadata trees (``General.title``, ``Signal.signal_type``...).
    """

    data: Any
    axes: list[Axis] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    original_metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ndim = len(self.data.shape)
        if not self.axes:
            self.axes = [
                Axis(f"axis{i}", int(n), navigate=i < ndim - 1)
                for i, n in enumerate(self.data.shape)
            ]
        if len(self.axes) != ndim:
            raise AnodemapInputError(
                f"dataset has {ndim} dimensions {tuple(self.data.shape)} but {len(self.axes)} axes"
            )
        for i, (ax, n) in enumerate(zip(self.axes, self.data.shape, strict=True)):
            if ax.size != n:
                raise AnodemapInputError(
                    f"axis {i} ({ax.name!r}) has size {ax.size} but the data have {n} points there"
                )
        nav = [a.navigate for a in self.axes]
        if any(nav[i] < nav[i + 1] for i in range(len(nav) - 1)):
            order = [i for i, a in enumerate(self.axes) if a.navigate] + [
                i for i, a in enumerate(self.axes) if not a.navigate
            ]
            self.data = self.data.transpose(order)
            self.axes = [self.axes[i] for i in order]

    # ----------------------------------------------------------------- shape
    @property
    def nav_axes(self) -> list[Axis]:
        """Navigation (scan) axes, in array order."""
        return [a for a in self.axes if a.navigate]

    @property
    def sig_axes(self) -> list[Axis]:
        """Signal axes, in array order."""
        return [a for a in self.axes if not a.navigate]

    @property
    def nav_shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.nav_axes)

    @property
    def sig_shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.sig_axes)

    @property
    def is_lazy(self) -> bool:
        """True when the data are a dask array."""
        return type(self.data).__module__.startswith("dask")

    def as_scan_2d(self) -> Dataset:
        """The dataset with a two-axis scan: a line scan or a stack gets a first scan
        axis of one row, so that maps are (1, n); a 2D scan is returned as it is.

        Examples
        --------
        >>> import numpy as np
        >>> Dataset(np.zeros((5, 8, 8)), [Axis("x", 5), Axis("ky", 8, navigate=False),
        ...         Axis("kx", 8, navigate=False)]).as_scan_2d().nav_shape
        (1, 5)
        """
        if len(self.nav_axes) != 1:
            return self
        row = Axis("y", 1, self.nav_axes[0].scale, 0.0, self.nav_axes[0].units)
        return Dataset(self.data[None], [row, *self.axes], self.metadata, self.original_metadata)

    # -------------------------------------------------------------- metadata
    def get_meta(self, path: str, default: Any = None) -> Any:
        """Metadata item by dotted path, e.g. ``"Signal.signal_type"``."""
        node: Any = self.metadata
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node

    def set_meta(self, path: str, value: Any) -> None:
        """Set a metadata item by dotted path, creating the branches."""
        keys = path.split(".")
        node = self.metadata
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    @property
    def title(self) -> str:
        return str(self.get_meta("General.title", "") or "")

    @property
    def signal_type(self) -> str:
        return str(self.get_meta("Signal.signal_type", "") or "")

    # ----------------------------------------------------------- conversion
    def to_dict(self) -> dict[str, Any]:
        """The rosettasciio signal dictionary (what its writers take)."""
        md = copy.deepcopy(self.metadata)
        md.setdefault("General", {}).setdefault("title", "")
        md.setdefault("Signal", {}).setdefault("signal_type", "")
        return {
            "data": self.data,
            "axes": [a.to_dict() for a in self.axes],
            "metadata": md,
            "original_metadata": copy.deepcopy(self.original_metadata),
            "attributes": {"_lazy": self.is_lazy},
            "tmp_parameters": {},
            "learning_results": {},
            "package_info": {"package": "", "package_version": ""},
            "models": {},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Dataset:
        """Build from a rosettasciio signal dictionary, as HyperSpy would (signal axes,
        the reader's post-processing and metadata mapping:
        :func:`anodemap.io._hyperspy_rules.dataset_from_reader`)."""
        from anodemap.io._hyperspy_rules import dataset_from_reader

        return dataset_from_reader(d)

    def to_hyperspy(self):
        """Convert to a HyperSpy signal (needs HyperSpy, an optional dependency).

        Examples
        --------
        >>> import numpy as np
        >>> s = Dataset(np.zeros((4, 10))).to_hyperspy()  # doctest: +SKIP
        """
        try:
            import hyperspy.api as hs
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "to_hyperspy() needs HyperSpy: pip install hyperspy (anodemap itself does not)"
            ) from err
        d = self.to_dict()
        for key in _WRITER_ONLY_KEYS:
            d.pop(key)
        s = hs.signals.BaseSignal(**d)
        s = s.transpose(signal_axes=len(self.sig_axes)) if self.sig_axes else s.T
        st = self.signal_type
        if st:
            s.set_signal_type(st)
        if self.is_lazy:
            s = s.as_lazy()
        return s


# Keys the rosettasciio hierarchical writers need that a HyperSpy signal does not take.
_WRITER_ONLY_KEYS = ("attributes", "tmp_parameters", "learning_results", "package_info", "models")


def plain_tree(tree: Any) -> Any:
    """Metadata trees from readers can be DictionaryTreeBrowser-like; make plain dicts."""
    if hasattr(tree, "as_dictionary"):
        tree = tree.as_dictionary()
    if isinstance(tree, dict):
        return {k: plain_tree(v) for k, v in tree.items()}
    return tree
