"""What HyperSpy does to a rosettasciio signal dictionary after reading it.

rosettasciio readers return dictionaries that HyperSpy finishes in three steps
(``hyperspy.io.dict2signal``); a reader of our own must do the same to see the same
data, without depending on HyperSpy:

1. which axes are signal axes: the ``navigate`` flag of each axis when every axis has
   one; otherwise ``metadata.Signal.record_by`` ("spectrum": the last axis, "image": the
   last two); otherwise every axis is a signal axis;
2. the reader's ``post_process`` steps, functions that take and return a HyperSpy
   signal (the Gatan DM reader returns spectrum images energy-first and asks for
   ``to_signal1D`` then ``squeeze``). They are applied to a stand-in that knows the
   operations readers use; a step that asks for anything else is refused with a clear
   error rather than skipped;
3. the ``mapping``: values copied from ``original_metadata`` into ``metadata`` (beam
   energy, dates, stage tilts), each through the reader's conversion function.

Examples
--------
>>> import numpy as np
>>> d = {"data": np.zeros((2048, 2, 3)),
...      "axes": [{"name": "Energy loss", "size": 2048, "navigate": True},
...               {"name": "y", "size": 2, "navigate": False},
...               {"name": "x", "size": 3, "navigate": False}],
...      "post_process": [lambda s: s.to_signal1D(), lambda s: s.squeeze()]}
>>> ds = dataset_from_reader(d)
>>> ds.nav_shape, ds.sig_shape, ds.sig_axes[0].name
((2, 3), (2048,), 'Energy loss')
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from anodemap.errors import AnodemapIOError
from anodemap.io.dataset import Axis, Dataset, plain_tree

__all__ = ["dataset_from_reader"]


def dataset_from_reader(d: dict[str, Any]) -> Dataset:
    """A :class:`Dataset` from a rosettasciio dictionary, as HyperSpy would make it.

    Raises
    ------
    AnodemapIOError
        A post-processing step of the reader that anodemap cannot apply (the message
        names it); the caller adds the file name.
    """
    data = d["data"]
    metadata = plain_tree(copy.deepcopy(plain_tree(d.get("metadata") or {})))
    axes_d = list(d.get("axes") or [])
    ndim = len(data.shape)
    if len(axes_d) != ndim:
        axes_d = [{"size": int(n)} for n in data.shape]
    n_signal = _signal_dimension(axes_d, metadata, ndim)
    axes = []
    for i, (a, n) in enumerate(zip(axes_d, data.shape, strict=True)):
        ax = Axis.from_dict(a, n)
        axes.append(dataclasses.replace(ax, navigate=i < ndim - n_signal))
    ds = Dataset(data, axes, metadata, plain_tree(d.get("original_metadata") or {}))
    for step in d.get("post_process") or []:
        ds = _apply(step, ds)
    _apply_mapping(ds, d.get("mapping") or {})
    return ds


def _signal_dimension(axes_d: list[dict[str, Any]], metadata: dict[str, Any], ndim: int) -> int:
    """Number of signal axes by HyperSpy's rule (see the module docstring)."""
    if axes_d and all("navigate" in a for a in axes_d):
        return sum(1 for a in axes_d if not a["navigate"])
    record_by = (metadata.get("Signal") or {}).pop("record_by", None)
    if record_by == "spectrum":
        return min(1, ndim)
    if record_by == "image":
        return min(2, ndim)
    return ndim


class _Signal:
    """Stand-in for a HyperSpy signal in a reader's ``post_process`` steps.

    Only the operations rosettasciio readers use are known; they act on the array
    order, as HyperSpy's do.
    """

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def to_signal1D(self, optimize: bool = True) -> _Signal:  # noqa: N802 - HyperSpy's name
        # HyperSpy: the first axis of the array becomes the (last) signal axis, every
        # other axis navigates, in array order
        return self._signal_axes_first(1)

    def to_signal2D(self, optimize: bool = True) -> _Signal:  # noqa: N802 - HyperSpy's name
        return self._signal_axes_first(2)

    def _signal_axes_first(self, n: int) -> _Signal:
        ds = self.ds
        ndim = len(ds.axes)
        if ndim < n:
            raise AnodemapIOError(f"the reader asked for {n} signal axes of {ndim}")
        order = list(range(n, ndim)) + list(range(n))
        axes = [dataclasses.replace(ds.axes[i], navigate=k < ndim - n) for k, i in enumerate(order)]
        return _Signal(Dataset(ds.data.transpose(order), axes, ds.metadata, ds.original_metadata))

    def squeeze(self) -> _Signal:
        ds = self.ds
        keep = [i for i, a in enumerate(ds.axes) if a.size != 1]
        if len(keep) == len(ds.axes):
            return self
        if not keep:  # a single value: keep one axis, as numpy keeps a 0-d array apart
            keep = [len(ds.axes) - 1]
        drop = tuple(i for i in range(len(ds.axes)) if i not in keep)
        data = ds.data.squeeze(axis=drop)
        axes = [ds.axes[i] for i in keep]
        return _Signal(Dataset(data, axes, ds.metadata, ds.original_metadata))

    def __getattr__(self, name: str) -> Any:
        raise AnodemapIOError(
            f"the reader asks HyperSpy to apply '{name}' after reading, which anodemap "
            "does not know; open the file in HyperSpy and save it as .hspy, then use that"
        )


def _apply(step: Callable[[Any], Any], ds: Dataset) -> Dataset:
    out = step(_Signal(ds))
    if not isinstance(out, _Signal):
        raise AnodemapIOError(
            "a post-processing step of the reader returned something anodemap cannot "
            "use; open the file in HyperSpy and save it as .hspy, then use that"
        )
    return out.ds


def _apply_mapping(ds: Dataset, mapping: dict[str, Any]) -> None:
    """Copy ``original_metadata`` items into ``metadata`` as the reader's mapping says."""
    for source, (target, convert) in mapping.items():
        node: Any = ds.original_metadata
        for key in source.split("."):
            if not isinstance(node, dict) or key not in node:
                node = None
                break
            node = node[key]
        if node is None:
            continue
        try:
            value = convert(node) if convert is not None else node
        except Exception:  # noqa: S112 - a tag the reader cannot convert is left out
            continue  # (HyperSpy would not open the file at all)
        if value is not None:
            ds.set_meta(target, value)
