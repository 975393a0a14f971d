"""EDX maps of a whole spectrum image: net line intensities, their 1σ, status.

:func:`analyse_edx` chooses the lines (those asked for and those the file names), builds
the linear model (:mod:`anodemap.edx.model`) or the windows (:mod:`anodemap.edx.windows`),
and applies them to every pixel chunk by chunk (:func:`anodemap._compute.map_pixels`):
in memory, from a lazy file or on a dask cluster alike. Memory stays bounded by chunks
of about 64 MiB of spectra, except where the reader gives the whole map as one block (a
Bruker .bcf is decoded whole by rosettasciio): that block is read once and kept, in its
own compact integer type, for the two passes (mean spectrum, then maps).

Examples
--------
>>> from anodemap.synth.edx import simulate_edx, edx_dataset
>>> from anodemap.synth import make_phantom
>>> sim = simulate_edx(make_phantom((8, 8), seed=1), seed=1)
>>> result = analyse_edx(edx_dataset(sim), progress=False)
>>> sorted(result.lines), result.maps["Si_Ka"].shape
(['O_Ka', 'Si_Ka'], (8, 8))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap._compute import OutputSpec, local_scheduler, map_pixels, progress_label
from anodemap.edx.lines import resolve_lines, xray_line
from anodemap.edx.parameters import EDXParameters
from anodemap.edx.reading import (
    beam_energy_kev,
    energy_axis_ev,
    file_lines,
    fwhm_mn_ka_from_file,
)
from anodemap.edx.resolution import DEFAULT_FWHM_MN_KA_EV
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset
from anodemap.status import Status, counts

__all__ = ["EDXResult", "analyse_edx", "bin_scan"]

_CHUNK_BYTES = 2 * 2**20


@dataclass
class EDXResult:
    """The maps of an EDX analysis and what they were made with.

    Attributes
    ----------
    maps : dict of str to ndarray
        ``LINE`` (net counts), ``LINE_uncertainty`` (1σ), ``status``, ``counts`` (counts in
        the channels analysed), ``reduced_chi2`` (fit), ``EL_atomic_percent`` and its
        ``_uncertainty`` (with k-factors).
    titles : dict of str to (str, str)
        Title and units of each map.
    nav_axes : list of Axis
        The maps' scan axes (binned where ``bin`` > 1).
    lines : list of str
        The lines mapped.
    energy_ev, mean_spectrum : ndarray
        The energy axis and the map's mean spectrum (counts per pixel).
    mean_model : dict of str to ndarray
        The fit of the mean spectrum: ``total``, ``background`` and each family (fit), or
        empty (windows).
    windows : dict
        The windows of each line (windows method).
    """

    maps: dict[str, np.ndarray]
    titles: dict[str, tuple[str, str]]
    nav_axes: list[Axis]
    lines: list[str]
    method: str
    parameters: dict[str, Any]
    energy_ev: np.ndarray
    mean_spectrum: np.ndarray
    fwhm_mn_ka_ev: float
    fwhm_source: str
    families: dict[str, list[str]] = field(default_factory=dict)
    mean_model: dict[str, np.ndarray] = field(default_factory=dict)
    windows: dict[str, Any] = field(default_factory=dict)
    segments_ev: list[tuple[float, float]] = field(default_factory=list)
    beam_energy_kev: float | None = None
    source: str = ""
    pca: dict[str, Any] = field(default_factory=dict)
    artefacts: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Numbers over all pixels, for ``summary.json``."""
        status = self.maps["status"]
        ok = status == int(Status.OK)
        out: dict[str, Any] = {
            "method": self.method,
            "lines": list(self.lines),
            "families": self.families,
            "n_pixels": int(status.size),
            "n_ok": int(ok.sum()),
            "status_counts": counts(status, (Status.OK, Status.NO_SIGNAL, Status.INVALID_INPUT)),
            "fwhm_mn_ka_eV": self.fwhm_mn_ka_ev,
            "fwhm_mn_ka_source": self.fwhm_source,
            "beam_energy_kev": self.beam_energy_kev,
            "scan_shape": list(status.shape),
            "parameters": self.parameters,
            "net_counts": {},
        }
        if self.segments_ev:
            out["fit_segments_eV"] = [[round(a, 2), round(b, 2)] for a, b in self.segments_ev]
        if self.windows:
            out["windows_eV"] = self.windows
        if self.artefacts:
            out["artefacts"] = self.artefacts
        if self.pca:
            out["pca"] = {
                **self.pca,
                "uncertainty": "1σ after Poisson-weighted PCA is not the Poisson 1σ of the "
                "counts: it is their Poisson noise propagated through the fixed projection "
                "onto the kept components (components' own noise and truncation bias left "
                "out); maps and 1σ are correlated between pixels",
            }
        for name in self.lines:
            v, s = self.maps[name][ok], self.maps[f"{name}_uncertainty"][ok]
            out["net_counts"][name] = {
                "energy_keV": round(xray_line(name).energy_ev / 1e3, 5),
                "total": float(np.sum(v)) if v.size else None,
                "total_uncertainty": float(np.sqrt(np.sum(s * s))) if v.size else None,
                "mean": float(np.mean(v)) if v.size else None,
                "median": float(np.median(v)) if v.size else None,
                "median_uncertainty": float(np.median(s)) if v.size else None,
                "fraction_above_3_sigma": float(np.mean(v > 3 * s)) if v.size else None,
            }
        chi2 = self.maps.get("reduced_chi2")
        if chi2 is not None and ok.any():
            out["reduced_chi2_median"] = float(np.median(chi2[ok]))
        fractions = {k: v for k, v in self.maps.items() if k.endswith("_atomic_percent")}
        if fractions:
            out["atomic_percent_mean"] = {
                k.split("_")[0]: float(np.nanmean(v[ok])) if ok.any() else None
                for k, v in fractions.items()
            }
        return out


def bin_scan(data: Any, factor: int) -> Any:
    """Sum blocks of ``factor`` x ``factor`` scan pixels (trailing rows and columns that
    do not fill a block are dropped); lazy data stay lazy.

    Examples
    --------
    >>> bin_scan(np.ones((5, 4, 3)), 2).compute().shape
    (2, 2, 3)
    """
    if factor == 1:
        return data
    ny, nx = data.shape[0] // factor, data.shape[1] // factor
    if ny == 0 or nx == 0:
        raise AnodemapInputError(
            f"--bin {factor}: the scan {data.shape[0]} x {data.shape[1]} is smaller than one "
            "block; choose a smaller --bin"
        )
    import dask.array as da

    from anodemap._compute import chunked_view

    cut = data[: ny * factor, : nx * factor]
    if not type(cut).__module__.startswith("dask"):  # blocks of rows, views of the data
        rows = max(factor, (2**26 // max(cut[0].nbytes * 8, 1)) // factor * factor)
        cut = chunked_view(np.asarray(cut), (rows, *cut.shape[1:]))
    elif cut.chunks[0][0] % factor:
        cut = cut.rechunk({0: max(factor, cut.chunks[0][0] // factor * factor)})
    return da.coarsen(np.sum, cut.astype(np.float64), {0: factor, 1: factor}, trim_excess=True)


def _scan_2d(dataset: Dataset) -> tuple[Any, list[Axis]]:
    """The spectra as ``(ny, nx, E)`` and the two scan axes (a line scan is one row, a
    single spectrum one pixel)."""
    data, nav = dataset.data, dataset.nav_axes
    if len(nav) == 0:
        return data[None, None], [Axis("y", 1, navigate=True), Axis("x", 1, navigate=True)]
    if len(nav) == 1:
        return data[None], [Axis("y", 1, nav[0].scale, 0.0, nav[0].units), nav[0]]
    if len(nav) > 2:
        raise AnodemapInputError(
            f"a spectrum image with {len(nav)} scan axes: anodemap edx maps one or two; "
            "choose one frame of a series first"
        )
    return data, list(nav)


def _binned_axes(axes: list[Axis], factor: int) -> list[Axis]:
    out = []
    for a in axes:
        n = a.size // factor
        if factor == 1:
            out.append(a)
        else:  # a block's position is the mean of its pixels' positions
            off = a.offset + a.scale * (factor - 1) / 2.0
            out.append(Axis(a.name, n, a.scale * factor, off, a.units, True))
    return out


def _materialise(data: Any) -> Any:
    """A lazy array read as one block anyway (a .bcf) is read once, kept as it is."""
    if type(data).__module__.startswith("dask") and data.npartitions == 1:
        return np.asarray(data.compute(scheduler=local_scheduler("threads")))
    return data


def _mean_spectrum(data: Any, client: Any) -> np.ndarray:
    """Counts per pixel of each channel (a NaN or infinite count, flagged in its pixel,
    counts as 0 here: the weights of the other pixels stay finite)."""
    if not type(data).__module__.startswith("dask"):
        if np.issubdtype(data.dtype, np.integer):  # no copy of the data
            return data.sum(axis=(0, 1), dtype=np.float64) / (data.shape[0] * data.shape[1])
        total = np.zeros(data.shape[-1])
        for row in data:  # a row at a time: no float copy of the whole map
            x = np.asarray(row, dtype=np.float64)
            total += np.where(np.isfinite(x), x, 0.0).sum(axis=0)
        return total / (data.shape[0] * data.shape[1])
    import dask.array as da

    n = data.shape[0] * data.shape[1]
    if np.issubdtype(data.dtype, np.integer):  # summed in float64 without a float copy
        mean = data.sum(axis=(0, 1), dtype=np.float64) / n
    else:
        x = data.astype(np.float64)
        mean = da.where(da.isfinite(x), x, 0.0).sum(axis=(0, 1)) / n
    if client is not None:
        from anodemap._compute import cluster_result

        return np.asarray(cluster_result(client, client.compute(mean)))
    return np.asarray(mean.compute(scheduler=local_scheduler("threads")))


def choose_lines(dataset: Dataset, p: EDXParameters, energy: np.ndarray) -> list[str]:
    """The lines to map: ``p.lines``, then the file's (with ``p.file_lines``)."""
    lo, hi = float(energy.min()), float(energy.max())
    if p.energy_range_ev is not None:
        lo, hi = max(lo, p.energy_range_ev[0]), min(hi, p.energy_range_ev[1])
    wanted = list(p.lines)
    if p.file_lines:
        for item in file_lines(dataset):
            try:
                wanted += resolve_lines([item], (lo, hi))
            except AnodemapInputError:
                continue  # a line of the file outside this range: not mapped
    return resolve_lines(wanted, (lo, hi))


def analyse_edx(
    dataset: Dataset,
    parameters: EDXParameters | None = None,
    *,
    client: Any = None,
    progress: bool = True,
) -> EDXResult:
    """Net intensity maps of X-ray lines with their 1σ (and atomic fractions).

    Parameters
    ----------
    dataset : Dataset
        X-ray spectra (a spectrum image, line scan or one spectrum; energy in eV or keV).
    parameters : EDXParameters, optional
    client : dask.distributed.Client, optional
    progress : bool

    Returns
    -------
    EDXResult
    """
    from anodemap.edx.fit import FitOperator, fit_kernel
    from anodemap.edx.model import build_model
    from anodemap.edx.windows import line_windows, windows_kernel

    p = parameters or EDXParameters()
    energy = energy_axis_ev(dataset)
    from_file = fwhm_mn_ka_from_file(dataset)
    if p.fwhm_mn_ka_ev is not None:
        fwhm, fwhm_source = float(p.fwhm_mn_ka_ev), "parameter"
    elif from_file is not None:
        fwhm, fwhm_source = from_file, "file"
    else:
        fwhm, fwhm_source = DEFAULT_FWHM_MN_KA_EV, "default"
    lines = choose_lines(dataset, p, energy)
    data, nav = _scan_2d(dataset)
    data = _materialise(bin_scan(data, int(p.bin)))
    nav = _binned_axes(nav, int(p.bin))
    mean = _mean_spectrum(data, client)
    n_pix = int(np.prod(data.shape[:2]))
    result = EDXResult(
        maps={},
        titles={},
        nav_axes=nav,
        lines=lines,
        method=p.method,
        parameters=p.as_dict(),
        energy_ev=energy,
        mean_spectrum=mean,
        fwhm_mn_ka_ev=fwhm,
        fwhm_source=fwhm_source,
        beam_energy_kev=beam_energy_kev(dataset),
        source=str(dataset.get_meta("General.original_filename", "") or ""),
    )
    if p.method == "fit":
        model = build_model(
            energy,
            lines,
            fwhm,
            background=p.background,
            order=int(p.background_order),
            window_fwhm=p.window_fwhm,
            energy_range_ev=p.energy_range_ev,
            artefacts=p.artefacts,
        )
        op = FitOperator.from_mean(model, mean, weighting=p.weighting, floor=1.0 / n_pix)
        h = op.h
        if p.pca is not None:  # the fit of the denoised spectra: one operator again
            h = h @ _pca(result, data, model.used, p.pca).projector().T
        kernel, kwargs = (
            fit_kernel,
            {
                "used": model.used,
                "h": h,
                "design": model.design,
                "h2": h * h,
                "shape": op.shape,
            },
        )
        n_out = model.design.shape[1]
        families = {f.main: [ln.name for ln in f.lines] for f in model.families}
        result.families = families
        result.segments_ev = model.segments
        result.mean_model = _mean_model(model, op.mean_fit)
        result.artefacts = _artefact_summary(model, op.mean_fit)
        # a line's net counts: its weight in its family times the family's amplitude
        col = {f.main: i for i, f in enumerate(model.families)}
        pick = [
            (col[_family(n)], xray_line(n).weight / xray_line(_family(n)).weight) for n in lines
        ]
        outputs = {
            "amplitude": OutputSpec((n_out,)),
            "sigma": OutputSpec((n_out,)),
            "reduced_chi2": OutputSpec(),
            "counts": OutputSpec(),
            "status": OutputSpec((), np.uint8),
        }
    else:
        win = line_windows(
            energy,
            lines,
            fwhm,
            integration_fwhm=p.integration_fwhm,
            background_offset_fwhm=p.background_offset_fwhm,
            background_width_fwhm=p.background_width_fwhm,
        )
        matrix = win.matrix
        if p.pca is not None:  # the windows of the denoised spectra
            used = np.flatnonzero(np.any(matrix != 0, axis=1))
            matrix = matrix.copy()
            matrix[used] = _pca(result, data, used, p.pca).projector() @ matrix[used]
        kernel, kwargs = windows_kernel, {"matrix": matrix, "mean_spectrum": mean}
        pick = [(j, 1.0) for j in range(len(lines))]
        result.windows = {
            n: {
                "integration": [round(float(v), 2) for v in win.integration[j]],
                "background": [round(float(v), 2) for v in win.background[j]],
            }
            for j, n in enumerate(lines)
        }
        outputs = {
            "amplitude": OutputSpec((len(lines),)),
            "sigma": OutputSpec((len(lines),)),
            "counts": OutputSpec(),
            "status": OutputSpec((), np.uint8),
        }
    # the kernels hold a few float64 copies of a chunk's analysed channels: chunks of
    # about 2 MiB of those keep the peak near the data's own size (model choice)
    n_used = model.used.size if p.method == "fit" else int(np.any(win.matrix != 0, 1).sum())
    rows = max(1, _CHUNK_BYTES // max(data.shape[1] * n_used * 8, 1))
    with progress_label("spectra"):
        out = map_pixels(
            kernel,
            data,
            sig_ndim=1,
            outputs=outputs,
            kwargs=kwargs,
            rows_per_chunk=rows,
            client=client,
            progress=progress,
        )
    _fill_maps(result, out, pick, p)
    return result


def _pca(result: EDXResult, data: Any, channels: np.ndarray, n: int | str) -> Any:
    """The Poisson-weighted PCA of the channels analysed, recorded in the result."""
    from anodemap.edx.denoise import poisson_pca

    pca = poisson_pca(data, channels, n)
    result.pca = pca.summary()
    return pca


def _artefact_summary(model: Any, x: np.ndarray) -> dict[str, Any]:
    """Each artefact of the fit: its peaks and its counts in the mean spectrum (an escape
    peak also as a fraction of its family's main line)."""
    out: dict[str, Any] = {}
    nf = model.n_families
    col = {f.main: i for i, f in enumerate(model.families)}
    for j, (name, peaks) in enumerate(model.artefacts.items()):
        amp = float(x[nf + j])
        item: dict[str, Any] = {
            "energies_keV": [round(e / 1e3, 5) for e, _ in peaks],
            "mean_counts_per_pixel": amp,
        }
        if name.startswith("escape_"):
            parent = float(x[col[name.removeprefix("escape_")]])
            item["fraction_of_parent"] = amp / parent if parent > 0 else None
        out[name] = item
    return out


def _family(name: str) -> str:
    from anodemap.edx.model import family_key

    return family_key(name)


def _mean_model(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """The fit of the mean spectrum on the whole axis (NaN outside the fitted channels)."""
    full = {}
    nf = model.n_peaks
    parts = {name: model.design[:, i] * x[i] for i, name in enumerate(model.columns[:nf])}
    parts["background"] = model.design[:, nf:] @ x[nf:]
    parts["total"] = model.design @ x
    for key, v in parts.items():
        arr = np.full(model.energy_ev.size, np.nan)
        arr[model.used] = v
        full[key] = arr
    return full


def _fill_maps(
    result: EDXResult, out: dict[str, Any], pick: list[tuple[int, float]], p: EDXParameters
) -> None:
    maps, titles = result.maps, result.titles
    for name, (j, w) in zip(result.lines, pick, strict=True):
        maps[name] = np.asarray(out["amplitude"][..., j]) * w
        maps[f"{name}_uncertainty"] = np.asarray(out["sigma"][..., j]) * w
        e = xray_line(name).energy_ev / 1e3
        titles[name] = (f"{name} net intensity ({e:.3f} keV, {p.method})", "counts")
        titles[f"{name}_uncertainty"] = (f"{name} net intensity, 1σ", "counts")
    maps["status"] = np.asarray(out["status"]).astype(np.uint8)
    titles["status"] = ("EDX status", "")
    maps["counts"] = np.asarray(out["counts"])
    titles["counts"] = ("counts in the channels analysed", "counts")
    if "reduced_chi2" in out:
        maps["reduced_chi2"] = np.asarray(out["reduced_chi2"])
        titles["reduced_chi2"] = ("reduced χ² of the fit (Pearson)", "")
    if p.k_factors:
        from anodemap.edx.quant import atomic_fractions

        fr, err = atomic_fractions(
            {n: maps[n] for n in result.lines},
            {n: maps[f"{n}_uncertainty"] for n in result.lines},
            p.k_factors,
        )
        for el in fr:
            maps[f"{el}_atomic_percent"] = 100.0 * fr[el]
            maps[f"{el}_atomic_percent_uncertainty"] = 100.0 * err[el]
            titles[f"{el}_atomic_percent"] = (f"{el}, Cliff-Lorimer", "at.%")
            titles[f"{el}_atomic_percent_uncertainty"] = (f"{el}, Cliff-Lorimer, 1σ", "at.%")
