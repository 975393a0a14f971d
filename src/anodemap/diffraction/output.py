"""Writing phase-mapping results: .hspy maps, orientations (.hspy and .ang), figures, summary.

Examples
--------
>>> from anodemap.diffraction.output import write_diffraction_results   # doctest: +SKIP
>>> write_diffraction_results(result, "phase_maps/")                    # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.io import Axis, Dataset, save
from anodemap.io.ang import write_ang_file
from anodemap.io.results import map_dataset, write_json, write_text

__all__ = [
    "averaged_patterns_figure",
    "compare_with_truth",
    "label_colours",
    "phase_map_figure",
    "phase_laue_classes",
    "to_crystal_map",
    "truth_comparison_figure",
    "write_ang",
    "write_averaged_patterns",
    "write_diffraction_results",
]

# map name -> (file stem, title, units)
_MAPS = {
    "phase": ("phase", "Label: vacuum, amorphous, a phase, ... (summary.json phase_labels)", ""),
    "correlation": ("correlation", "Correlation index Q", "Q (0 to 1)"),
    "reliability": ("reliability", "Orientation reliability 100(1 - Q2/Q1)", "%"),
    "phase_reliability": ("phase_reliability", "Phase reliability 100(1 - Q2/Q1)", "%"),
    "amorphous_share": (
        "amorphous_share",
        "Amorphous share of the pattern intensity",
        "share of the intensity (0 to 1)",
    ),
    "virtual_bf": ("virtual_bf", "Virtual bright field", "counts"),
    "virtual_adf": ("virtual_adf", "Virtual annular dark field", "counts"),
    "spot_match": (
        "spot_match",
        "Agreement of the spots with the best template (crystalline: not indexed below "
        "summary.json settings.labels.min_spot_match)",
        "agreement (0 to 1)",
    ),
    "scattered_fraction": (
        "scattered_fraction",
        "Counts outside the direct beam per count in it (vacuum below "
        "summary.json settings.labels.vacuum_scattered_fraction)",
        "counts outside / counts in the beam",
    ),
    "status": ("match_status", "Matching status (summary.json status_legend)", ""),
}

# How many of the map figures the figure worker draws (the rest: this process)
_WORKER_MAPS = 5

# Maps drawn over material patterns only (vacuum and patterns not analysed: no value)
_MATERIAL_ONLY = frozenset(
    {"correlation", "reliability", "phase_reliability", "amorphous_share", "spot_match"}
)

# Colours of the phase map by label (model choice, the colour-blind-safe Okabe-Ito
# palette): amorphous grey, then one colour per phase; vacuum black, crystalline not
# indexed reddish purple (used by no phase); patterns not analysed show plotting's
# no-value hatch.
_PHASE_COLOURS = ["#bbbbbb", "#0072b2", "#d55e00", "#009e73", "#e69f00", "#56b4e9", "#f0e442"]
_OTHER_COLOURS = {-2: "#cc79a7", -1: "#000000"}


def label_colours(phase_labels: dict[str, str]) -> list[tuple[int, str, str | None]]:
    """``(label, name, colour)`` for each label of a phase map, in label order.

    Vacuum black, crystalline not indexed reddish purple, amorphous grey, the phases in
    turn from the Okabe-Ito palette; ``None`` for "not analysed" (drawn with plotting's
    no-value hatch).

    Examples
    --------
    >>> [c for _, _, c in label_colours({"-1": "vacuum", "0": "amorphous", "1": "Si"})]
    ['#000000', '#bbbbbb', '#0072b2']
    """
    out = []
    for key, name in sorted(phase_labels.items(), key=lambda kv: int(kv[0])):
        k = int(key)
        if k >= 0:
            colour: str | None = _PHASE_COLOURS[k % len(_PHASE_COLOURS)]
        else:
            colour = _OTHER_COLOURS.get(k)
        out.append((k, name, colour))
    return out


def phase_laue_classes(result: Any) -> dict[str, str | None]:
    """Laue class of each label (``None`` for the labels that are no phase, and unknown ones).

    Orientations from diffraction patterns are determined modulo the Laue class (Friedel's
    law), so that is the symmetry their IPF colours and misorientations use.
    """
    from anodemap.diffraction.crystal import load_phase

    out: dict[str, str | None] = {}
    names = getattr(result.parameters, "phases", ())
    for key, name in result.phase_labels.items():
        if int(key) <= 0:  # amorphous, vacuum, not indexed, not analysed
            out[key] = None
            continue
        source = next((p for p in names if Path(str(p)).stem == name or p == name), name)
        try:
            out[key] = load_phase(source).laue_group
        except Exception:  # a phase we cannot reload: no symmetry to offer
            out[key] = None
    return out


def to_crystal_map(result: Any):
    """The orientation map as an orix ``CrystalMap`` (orix must be installed).

    Phase IDs are anodemap's labels for amorphous (0) and the phases (1, 2, ...); vacuum,
    crystalline-not-indexed and unanalysed pixels get orix's "not indexed" ID −1 (the
    label map ``phase.hspy`` tells them apart). Each crystalline phase
    gets the point group of its Laue class (the symmetry the orientations are determined
    modulo); amorphous pixels carry the identity rotation. Properties: ``correlation``
    (Q), ``reliability``, ``phase_reliability``, ``amorphous_share``, ``virtual_bf``,
    ``virtual_adf``. Coordinates are in the scan's units.

    Examples
    --------
    >>> xmap = to_crystal_map(result)           # doctest: +SKIP
    >>> xmap["Si"].orientations                   # doctest: +SKIP
    """
    try:
        from orix.crystal_map import CrystalMap, Phase, PhaseList
        from orix.quaternion import Rotation
    except ImportError as err:  # pragma: no cover - orix is a test extra
        raise ImportError(
            "to_crystal_map needs orix (pip install orix); orientations.ang, which "
            "anodemap always writes, opens in orix and MTEX without it"
        ) from err
    laue = phase_laue_classes(result)
    phase = np.asarray(result.maps["phase"]).reshape(-1).astype(int)
    status = np.asarray(result.maps["status"]).reshape(-1)
    euler = np.radians(np.nan_to_num(np.asarray(result.maps["euler"], float).reshape(-1, 3)))
    crystalline = phase > 0
    euler[~crystalline] = 0.0
    phase_id = np.where((status == 0) & (phase >= 0), phase, -1)
    phases = {}
    for key, name in sorted(result.phase_labels.items(), key=lambda kv: int(kv[0])):
        if int(key) < 0:
            continue
        phases[int(key)] = Phase(name, point_group=laue[key]) if laue[key] else Phase(name)
    nav = result.nav_axes
    ny, nx = (nav[0].size, nav[1].size) if len(nav) == 2 else (1, nav[-1].size)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    step_x = nav[-1].scale if nav else 1.0
    step_y = nav[0].scale if len(nav) == 2 else step_x
    prop = {
        key: np.nan_to_num(np.asarray(result.maps[key], float).reshape(-1))
        for key in (
            "correlation",
            "reliability",
            "phase_reliability",
            "amorphous_share",
            "virtual_bf",
            "virtual_adf",
        )
    }
    return CrystalMap(
        Rotation.from_euler(euler),
        phase_id=phase_id,
        x=xx.ravel() * step_x,
        y=yy.ravel() * step_y,
        phase_list=PhaseList(phases),
        prop=prop,
        scan_unit=(nav[-1].units or "px") if nav else "px",
    )


def write_ang(result: Any, path: str | os.PathLike) -> Path:
    """Write the orientation map as an EDAX/TSL .ang text file (orix and MTEX read it).

    Columns: φ1 Φ φ2 (radians, Bunge), x y (µm), image quality (virtual bright field),
    confidence index (orientation reliability / 100), phase ID (1.. as in
    ``phase_labels``; 0 for every other label: amorphous, vacuum, crystalline not indexed,
    not analysed), detector signal (virtual ADF) and fit (correlation index Q). Points
    without a phase get zero angles and a confidence index of -1.
    """
    path = Path(path)
    phase = np.asarray(result.maps["phase"]).reshape(-1)
    euler = np.radians(np.nan_to_num(np.asarray(result.maps["euler"]).reshape(-1, 3)))
    indexed = (phase > 0) & (np.asarray(result.maps["status"]).reshape(-1) == 0)
    euler[~indexed] = 0.0
    nav = result.nav_axes
    ny, nx = (nav[0].size, nav[1].size) if len(nav) == 2 else (1, nav[0].size)
    step_x = nav[-1].scale if nav else 1.0
    step_y = nav[0].scale if len(nav) == 2 else step_x
    to_um = 1e-3 if (nav and nav[-1].units == "nm") else 1.0
    yy, xx = np.mgrid[0:ny, 0:nx]
    cols = [
        euler[:, 0],
        euler[:, 1],
        euler[:, 2],
        xx.ravel() * step_x * to_um,
        yy.ravel() * step_y * to_um,
        np.nan_to_num(np.asarray(result.maps["virtual_bf"]).reshape(-1)),
        np.where(indexed, np.nan_to_num(result.maps["reliability"].reshape(-1)) / 100.0, -1.0),
        np.where(indexed, phase, 0),
        np.nan_to_num(np.asarray(result.maps["virtual_adf"]).reshape(-1)),
        np.nan_to_num(np.asarray(result.maps["correlation"]).reshape(-1)),
    ]
    phases = {int(k): name for k, name in result.phase_labels.items() if int(k) > 0}
    return write_ang_file(
        path,
        np.column_stack(cols),
        phases,
        step_um=(step_y * to_um, step_x * to_um),
        shape=(ny, nx),
        note="IQ = virtual bright field, CI = orientation reliability/100, SEM signal = "
        "virtual ADF, Fit = correlation index Q",
    )


def write_diffraction_results(
    result: Any, outdir: str | os.PathLike, figures: bool = True, *, worker: Any = None
):
    """Write every map of a :class:`~anodemap.diffraction.pipeline.DiffractionResult`.

    ``OUTDIR`` receives ``phase.hspy`` (integer labels: ``summary.json`` ``phase_labels``),
    ``correlation.hspy``, ``reliability.hspy``, ``phase_reliability.hspy``,
    ``amorphous_share.hspy``, ``virtual_bf.hspy``, ``virtual_adf.hspy``,
    ``spot_match.hspy``, ``scattered_fraction.hspy``, ``match_status.hspy``,
    ``orientations.hspy`` (Bunge Euler angles in degrees per pixel),
    ``orientations.ang``, ``beam_centre.hspy`` (the direct-beam centre (ky, kx) of each
    pattern, in detector pixels), PNG figures and ``summary.json`` (written last). With a
    :class:`~anodemap.plotting.FigureWorker` the map figures are drawn in its process
    while this one draws the phase and orientation maps.
    The averaged patterns of each phase (and of each region given) go to
    ``mean_patterns.hspy`` and their azimuthal averages I(s) to ``mean_profiles.hspy``
    and ``mean_profiles.csv`` (``region_*`` for the regions, with ``regions.hspy``);
    ``mean_patterns.png`` (``region_patterns.png``) shows them.

    The folder is held as one run's (:func:`anodemap.io.outdir.output_folder`; the
    command line holds it for its whole run): files of an earlier run that this one does
    not write are moved to ``OUTDIR/.previous-run/`` before ``summary.json`` is written,
    and the summary starts with ``input`` (path, size and SHA-256 of the input the
    command read; None from Python), ``anodemap_version`` and ``command_line``.
    """
    from anodemap.io.outdir import claim, output_folder

    outdir = Path(outdir)
    with output_folder(outdir) as folder:
        summary_path = outdir / "summary.json"
        folder.claim(["summary.json"])
        if summary_path.exists():
            summary_path.unlink()
        written = []
        for key, (stem, title, units) in _MAPS.items():
            if key not in result.maps:  # a result made before the map existed
                continue
            ds = map_dataset(result.maps[key], result.nav_axes, title, units)
            if key == "phase":
                ds.set_meta("Signal.phase_labels", result.phase_labels)
            if key == "status":
                from anodemap.status import describe

                codes = np.unique(np.asarray(result.maps[key])).tolist()
                ds.set_meta("Signal.status_legend", {str(c): describe(c) for c in codes})
            claim(outdir / f"{stem}.hspy")
            save(ds, outdir / f"{stem}.hspy")
            written.append(f"{stem}.hspy")
        euler = Dataset(
            np.asarray(result.maps["euler"], dtype=float),
            [*result.nav_axes, Axis("Euler angle (phi1, Phi, phi2)", 3, navigate=False)],
        )
        euler.set_meta("General.title", "Orientation, Bunge Euler angles (degrees), as orix")
        claim(outdir / "orientations.hspy")
        save(euler, outdir / "orientations.hspy")
        write_ang(result, outdir / "orientations.ang")
        written += ["orientations.hspy", "orientations.ang"]
        if "beam_centre" in result.maps:
            # the centre every pattern was analysed about: a PDF of the same scan takes
            # it from here rather than finding it again (anodemap.pdf.regions)
            centre = Dataset(
                np.asarray(result.maps["beam_centre"], dtype=np.float64),
                [*result.nav_axes, Axis("Direct-beam centre (ky, kx)", 2, navigate=False)],
            )
            centre.set_meta(
                "General.title", "Direct-beam centre (ky, kx), detector pixels from the corner"
            )
            claim(outdir / "beam_centre.hspy")
            save(centre, outdir / "beam_centre.hspy")
            written.append("beam_centre.hspy")
        if result.regions is not None:
            regions = map_dataset(result.regions, result.nav_axes, "Regions (0: in none)", "")
            claim(outdir / "regions.hspy")
            save(regions, outdir / "regions.hspy")
            written.append("regions.hspy")
        for kind, avg in getattr(result, "averages", {}).items():
            written += write_averaged_patterns(avg, outdir, _AVERAGE_STEMS[kind])
        if figures and len(result.nav_axes) == 2:
            written += _figures(result, outdir, worker)
        folder.retire_previous()
        summary = {**folder.provenance(), **result.summary()}
        summary["files"] = written
        write_json(summary, summary_path)
    return summary


def output_names() -> list[str]:
    """Every name :func:`write_diffraction_results` may write in its folder (for the
    checks before a run: an input of one of these names there would be replaced).

    Examples
    --------
    >>> names = output_names()
    >>> "phase.hspy" in names and "orientations.ang" in names and "summary.json" in names
    True
    """
    names = [f"{stem}{ext}" for stem, _, _ in _MAPS.values() for ext in (".hspy", ".png")]
    names += ["orientations.hspy", "orientations.ang", "regions.hspy", "phase.png"]
    names += ["beam_centre.hspy"]
    names += ["orientation_ipf_z.png", "summary.json"]
    for stem in _AVERAGE_STEMS.values():
        names += [f"{stem}_patterns.hspy", f"{stem}_profiles.hspy", f"{stem}_profiles.csv"]
        names.append(f"{stem}_patterns.png")
    return names


# Curves of regions: dark colours unlike the phases' ring marks (model choice, from Paul
# Tol's colour-blind-safe "muted" scheme, black first).
_REGION_COLOURS = ["#000000", "#882255", "#117733", "#332288", "#999933", "#44aa99", "#aa4499"]

# kind of AveragedPatterns -> stem of its files
_AVERAGE_STEMS = {"phases": "mean", "regions": "region"}


def write_averaged_patterns(avg: Any, outdir: str | os.PathLike, stem: str = "mean") -> list[str]:
    """Write :class:`~anodemap.diffraction.pipeline.AveragedPatterns`.

    ``{stem}_patterns.hspy``: the mean patterns, a stack (one per group) with signal axes
    in 1/Å (0 at the direct beam) and the group names and pattern counts in
    ``metadata.Signal``; ``{stem}_profiles.hspy``: I(s), s in 1/Å; ``{stem}_profiles.csv``:
    the same as text (a column per group).

    Returns
    -------
    list of str
        The names of the files written.
    """
    from anodemap.diffraction.calibration import ReciprocalCalibration, calibrated_signal_axes

    outdir = Path(outdir)
    n, ky, kx = avg.patterns.shape
    group = Axis("group", n, 1.0, 0.0, "", navigate=True)
    cal = ReciprocalCalibration(tuple(avg.scale), "")
    patterns = Dataset(
        np.asarray(avg.patterns, dtype=np.float64),
        [group, *calibrated_signal_axes(cal, (ky, kx))],
    )
    profiles = Dataset(
        np.asarray(avg.profiles, dtype=np.float64),
        [group, Axis("s", len(avg.s), float(avg.s[1] - avg.s[0]), float(avg.s[0]), "1/Å", False)],
    )
    what = "phase" if stem == "mean" else "region"
    for ds, title in (
        (patterns, f"Averaged pattern per {what} (descan-corrected)"),
        (profiles, f"Azimuthal average I(s) per {what} (about each pattern's own centre)"),
    ):
        ds.set_meta("General.title", title)
        ds.set_meta("Signal.quantity", "mean counts per pixel")
        ds.set_meta("Signal.group_names", list(avg.names))
        ds.set_meta("Signal.n_patterns", [int(v) for v in avg.n_patterns])
    from anodemap.io.outdir import claim

    claim(outdir, [f"{stem}_patterns.hspy", f"{stem}_profiles.hspy"])
    save(patterns, outdir / f"{stem}_patterns.hspy")
    save(profiles, outdir / f"{stem}_profiles.hspy")
    csv = outdir / f"{stem}_profiles.csv"
    header = "# " + ", ".join(
        f"{name}: {int(k)} patterns" for name, k in zip(avg.names, avg.n_patterns, strict=True)
    )
    columns = ",".join(["s (1/Å)", *[f'"{name}"' for name in avg.names]])
    text = io.StringIO()
    np.savetxt(
        text,
        np.column_stack([avg.s, np.asarray(avg.profiles).T]),
        delimiter=",",
        header=header[2:] + "\n" + columns,
        comments="",
        fmt="%.7g",
    )
    write_text(text.getvalue(), csv)
    return [f"{stem}_patterns.hspy", f"{stem}_profiles.hspy", f"{stem}_profiles.csv"]


def averaged_patterns_figure(
    avg: Any,
    phases: list[tuple[str, Any]] | None = None,
    curve_colours: list[str] | None = None,
):
    """The averaged patterns (log intensity, scale bar in 1/Å) and their I(s) in one figure.

    ``phases``: ``(name, phase)`` pairs (``phase`` as :func:`~anodemap.diffraction.crystal.
    load_phase` takes it) whose strongest rings are marked on the I(s) axis: the six of
    largest kinematic multiplicity × |F|² up to the largest s shown, as the paper's
    figures index the rings of averaged patterns. ``curve_colours``: colours of the
    groups' curves in turn (default: matplotlib's cycle); the marks take the phase-map
    colours.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from anodemap.diffraction.pipeline import AveragedPatterns
    >>> avg = AveragedPatterns(["a"], np.ones((1, 9, 9)), np.array([4]), np.arange(5) * 0.1,
    ...                        np.ones((1, 5)), (0.1, 0.1))
    >>> len(averaged_patterns_figure(avg, [("Si", "Si")]).axes)
    2
    """
    from matplotlib.figure import Figure

    from anodemap.diffraction.crystal import load_phase
    from anodemap.plotting import add_scalebar

    keep = [i for i, k in enumerate(avg.n_patterns) if k > 0]
    n = max(1, len(keep))
    # a fixed layout in inches: 2 in square patterns 2.2 in apart, then the I(s) axes
    # with 0.75 in for their labels (constrained layout cost as long to draw as the
    # rest of the figure)
    width, height = 2.2 * n + 3.6, 2.6
    fig = Figure(figsize=(width, height))
    colours = curve_colours or [f"C{k}" for k in range(10)]
    for j, i in enumerate(keep):
        ax = fig.add_axes(((0.1 + 2.2 * j) / width, 0.3 / height, 2.0 / width, 2.0 / height))
        img = np.log10(1.0 + np.clip(np.asarray(avg.patterns[i], float), 0, None))
        lo, hi = np.percentile(img, [1, 99.9])
        ax.imshow(img, cmap="inferno", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{avg.names[i]} (n = {int(avg.n_patterns[i])})", fontsize=8)
        add_scalebar(ax, float(avg.scale[1]), "1/Å", img.shape[1])
    ax = fig.add_axes(((2.2 * n + 0.75) / width, 0.5 / height, 2.7 / width, 1.8 / height))
    s = np.asarray(avg.s)
    # from s = 0.15 1/Å, past the direct beam's disc and tail (model choice: about three
    # beam radii with the paper's SPED set-up; the Si 111 ring is at 0.32 1/Å)
    start = int(np.searchsorted(s, 0.15))
    for i in keep:  # a group keeps its colour (a phase its phase-map colour) if one is empty
        ax.semilogy(
            s[start:],
            avg.profiles[i][start:],
            color=colours[i % len(colours)],
            lw=1.0,
            label=avg.names[i],
        )
    top = float(s[-1])
    for k, (name, spec) in enumerate(phases or []):
        refl = load_phase(spec).reflections(s_max=top)
        ss, inten = np.round(refl.s, 4), np.abs(refl.structure_factor) ** 2
        rings = {v: inten[ss == v].sum() for v in np.unique(ss)}
        best = sorted(rings, key=rings.get, reverse=True)[:6]
        colour = _PHASE_COLOURS[(k + 1) % len(_PHASE_COLOURS)]
        for v in best:
            ax.axvline(v, color=colour, lw=0.6, ls=":", alpha=0.8)
        if best:
            ax.plot([], [], color=colour, lw=0.6, ls=":", label=f"{name} rings")
    ax.set_xlabel("s = 1/d (1/Å)")
    ax.set_ylabel("mean counts per pixel")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("Azimuthal average I(s)", fontsize=8)
    return fig


def averaged_patterns_png(
    avg: Any, phases: list[tuple[str, Any]] | None, curve_colours: list[str] | None, path: Any
) -> Path:
    """:func:`averaged_patterns_figure` saved to ``path`` (a job for a FigureWorker)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from anodemap.plotting import save_figure

    return save_figure(averaged_patterns_figure(avg, phases, curve_colours), path)


def _figures(result: Any, outdir: Path, worker: Any = None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from anodemap.io.outdir import claim
    from anodemap.plotting import FigureWorker, map_png, save_figure

    ax_x = result.nav_axes[-1]
    size = ax_x.scale if ax_x.units else None
    units = ax_x.units or "nm"
    own = worker is None
    worker = worker if worker is not None else FigureWorker(processes=0)
    jobs = []
    # the averaged patterns first, drawn by the worker: (name shown, what load_phase
    # reads) of the crystalline phases, in label order, for the rings marked
    rings = [
        (result.phase_labels[str(k + 1)], spec) for k, spec in enumerate(result.parameters.phases)
    ]
    # the phases' averages: amorphous, the phases, crystalline not indexed, each in its
    # phase-map colour
    by_name = {name: c for _, name, c in label_colours(result.phase_labels)}
    for kind, avg in getattr(result, "averages", {}).items():
        if np.any(avg.n_patterns > 0):
            colours = (
                [by_name.get(name) or "0.3" for name in avg.names]
                if kind == "phases"
                else _REGION_COLOURS
            )
            path = outdir / f"{_AVERAGE_STEMS[kind]}_patterns.png"
            claim(path)  # here: the helper process that draws it records nothing
            jobs.append(worker.submit(averaged_patterns_png, avg, rings, colours, path))
    # the maps: the worker's first five (after the averaged patterns) take about as long
    # as this process's three with the phase and orientation maps (measured: one
    # averaged-pattern figure about 0.3 s, a map 0.1-0.2 s, the phase and IPF maps about
    # 0.3 s each)
    names = []
    # values of the matching mean nothing where there is no specimen or no pattern
    from anodemap.diffraction.thresholds import LABEL_NOT_ANALYSED, LABEL_VACUUM

    phase_map = np.asarray(result.maps["phase"])
    material = (phase_map != LABEL_VACUUM) & (phase_map != LABEL_NOT_ANALYSED)
    for k, (key, cmap_name) in enumerate(
        (
            ("virtual_bf", "gray"),
            ("virtual_adf", "gray"),
            ("amorphous_share", "cividis"),
            ("correlation", "viridis"),
            ("reliability", "magma"),
            ("phase_reliability", "magma"),
            ("spot_match", "viridis"),
            ("scattered_fraction", "cividis"),
        )
    ):
        if key not in result.maps:
            continue
        stem, title, unit = _MAPS[key]
        options = {"pixel_size": size, "units": units, "title": title, "label": unit}
        if key in _MATERIAL_ONLY:
            options |= {"valid": material, "no_value_label": "vacuum, not analysed"}
        args = (np.asarray(result.maps[key]), outdir / f"{stem}.png")
        if k < _WORKER_MAPS:
            claim(args[1])
            jobs.append(worker.submit(map_png, *args, cmap=cmap_name, **options))
        else:
            names.append(map_png(*args, cmap=cmap_name, **options).name)
    fig = phase_map_figure(result.maps["phase"], result.phase_labels, size, units)
    save_figure(fig, outdir / "phase.png")
    names.append("phase.png")
    ipf = _ipf_figure(result, size, units)
    if ipf is not None:
        save_figure(ipf, outdir / "orientation_ipf_z.png")
        names.append("orientation_ipf_z.png")
    names += [worker.result(job).name for job in jobs]
    if own:
        worker.close()
    return names


def _draw_labels(ax: Any, phase: np.ndarray, phase_labels: dict[str, str]) -> list[Any]:
    """Draw a label map on ``ax`` in :func:`label_colours`; legend handles of the labels
    shown (every phase, and the other labels where they occur)."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    from anodemap.plotting import no_value_handle, show_no_value

    phase = np.asarray(phase)
    entries = label_colours(phase_labels)
    codes = [k for k, _, c in entries if c is not None]
    colours = [c for _, _, c in entries if c is not None]
    index = np.full(phase.shape, -1, np.int64)
    for j, k in enumerate(codes):
        index[phase == k] = j
    show_no_value(ax)  # not analysed (and any label without a colour): the hatch
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(len(colours) + 1) - 0.5, cmap.N)
    ax.imshow(np.ma.masked_less(index, 0), cmap=cmap, norm=norm, interpolation="nearest")
    handles = []
    for k, name, c in entries:
        present = bool(np.any(phase == k))
        if c is None:
            if present:
                handles.append(no_value_handle(_wrap(f"{name} (see match_status)")))
        elif k > 0 or present:
            handles.append(Patch(facecolor=c, edgecolor="0.5", linewidth=0.5, label=_wrap(name)))
    return handles


def _wrap(text: str, width: int = 14) -> str:
    """A legend label in lines of about ``width`` characters (legends sit beside maps)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def _legend_beside(ax: Any, handles: list) -> None:
    """A legend right of a map, where a colour bar would be (not over the map)."""
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        fontsize=8,
        frameon=False,
    )


def phase_map_figure(
    phase: np.ndarray, phase_labels: dict[str, str], size: float | None, units: str = "nm"
):
    """The label map (vacuum, amorphous, each phase, crystalline not indexed) with its
    legend beside it and a scale bar (``size``: scan step in ``units``; None: no bar).

    Examples
    --------
    >>> import numpy as np
    >>> labels = {"-1": "vacuum", "0": "amorphous", "1": "Si"}
    >>> fig = phase_map_figure(np.array([[-1, 0], [1, 1]]), labels, 5.0)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['vacuum', 'amorphous', 'Si']
    """
    from anodemap.plotting import add_scalebar, map_figure

    phase = np.asarray(phase)
    # the legend goes where a colour bar would be, beside the map rather than over it
    fig, [(ax, cax)] = map_figure(phase.shape, cbar_label_inches=1.3)
    cax.remove()
    handles = _draw_labels(ax, phase, phase_labels)
    _legend_beside(ax, handles)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("Phase map", fontsize=10)
    if size:
        add_scalebar(ax, size, units, phase.shape[1])
    return fig


# Orientation reliability from which the IPF map shows full colour (model choice, as
# ASTAR overlays the reliability; 10 is where orientations are trusted, see
# compare_with_truth)
_IPF_FULL_RELIABILITY = 20.0


def _ipf_figure(result: Any, size: float | None, units: str):
    """Orientation map coloured by the IPF along the beam (sample Z), with its key.

    Crystalline pixels of a phase with an IPF key (Laue class m-3m) are coloured by
    orientation and shaded by their orientation reliability (full colour at >= 20 %,
    darker below, as ASTAR overlays the reliability); crystalline phases without a key
    dark grey. The other labels take their phase-map colours (amorphous light grey,
    vacuum black, crystalline not indexed reddish purple; not analysed: the no-value
    hatch), named in a legend under the key.
    """
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    from anodemap.diffraction.ipf import (
        SUPPORTED_LAUE,
        draw_ipf_key,
        ipf_colours,
        sample_direction_in_crystal,
    )
    from anodemap.plotting import add_scalebar, map_figure, no_value_handle, show_no_value

    phase = np.asarray(result.maps["phase"])
    if phase.ndim != 2:
        return None
    laue = phase_laue_classes(result)
    status = np.asarray(result.maps["status"])
    rgb = np.ones(phase.shape + (4,))
    handles = []
    for k, name, colour in label_colours(result.phase_labels):
        here = phase == k
        if k > 0 or not here.any():
            continue
        if colour is None:
            rgb[here, 3] = 0.0  # the axes' no-value hatch shows through
            handles.append(no_value_handle(name))
            continue
        rgb[here, :3] = 0.8 if k == 0 else to_rgb(colour)
        handles.append(Patch(facecolor=rgb[here][0, :3], edgecolor="0.5", lw=0.5, label=name))
    coloured = np.zeros(phase.shape, bool)
    for key, group in laue.items():
        here = (status == 0) & (phase == int(key))
        if int(key) <= 0 or not here.any():
            continue
        if group not in SUPPORTED_LAUE:
            rgb[here, :3] = 0.35
            continue
        d = sample_direction_in_crystal(np.asarray(result.maps["euler"], float)[here])
        rgb[here, :3] = np.nan_to_num(ipf_colours(d, group), nan=0.35)
        coloured |= here
    if not coloured.any():
        return None
    rel = np.nan_to_num(np.asarray(result.maps["reliability"], float))
    shade = np.clip(0.35 + 0.65 * rel / _IPF_FULL_RELIABILITY, 0.35, 1.0)
    rgb[coloured, :3] *= shade[coloured, None]
    fig, [(ax, cax)] = map_figure(phase.shape, cbar_label_inches=0.7)
    cax.remove()
    show_no_value(ax)
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        "Orientation, IPF along the beam (Z); darker where the\n"
        f"orientation reliability is below {_IPF_FULL_RELIABILITY:g} (35 % brightness at 0)",
        fontsize=8,
    )
    if size:
        add_scalebar(ax, size, units, phase.shape[1])
    box = ax.get_position()
    key_ax = fig.add_axes(
        (box.x1 + 0.01, box.y1 - 0.32 * box.height, 0.2 * box.width, 0.3 * box.height)
    )
    draw_ipf_key(key_ax, "m-3m")
    keyed = [result.phase_labels[k] for k, g in laue.items() if int(k) > 0 and g == "m-3m"]
    key_ax.set_title(f"IPF-Z, m-3m\n({', '.join(keyed)})", fontsize=8)
    if handles:
        key_ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.15),
            borderaxespad=0.0,
            fontsize=7,
            frameon=False,
        )
    return fig


def compare_with_truth(
    maps: dict[str, np.ndarray],
    phase_labels: dict[str, str],
    truth: dict[str, np.ndarray],
    truth_labels: dict[str, str],
    *,
    reliability_threshold: float = 10.0,
    phases: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Labels and orientations of a phase map against simulated ground truth.

    Phases are matched by name (a truth label whose name the map does not have is never
    right); the truth's pores (negative labels: no material) are right where the map says
    *vacuum*. Orientations are compared on crystalline pixels whose phase is right, as the
    misorientation modulo the phase's Laue class
    (:func:`~anodemap.diffraction.templates.misorientation_deg`), over all of them and
    over those whose orientation reliability reaches ``reliability_threshold``.

    Parameters
    ----------
    maps : dict
        ``phase`` (integer labels), ``euler`` (..., 3) Bunge angles in degrees,
        ``reliability`` (%); optionally ``amorphous_share``. As in
        :class:`~anodemap.diffraction.pipeline.DiffractionResult` ``.maps``, or as read
        back from ``phase.hspy``, ``orientations.hspy`` and ``reliability.hspy``.
    phase_labels : dict
        Label (as a string) -> name of the map (``summary.json``'s ``phase_labels``;
        ``"vacuum"`` names the label of vacuum).
    truth : dict
        ``phase`` (negative: pore, no material), ``euler_deg``; optionally
        ``amorphous_intensity_share``, as :func:`anodemap.synth.diffraction.simulate_diffraction`
        returns them.
    truth_labels : dict
        Label -> name of the truth's phases (a negative label, if given, is a pore
        whatever its name).
    reliability_threshold : float
        Orientation reliability (%) from which an orientation counts as reliable (model
        choice 10: the level at which the project's orientation target is tested).
    phases : dict, optional
        Phase name -> :class:`~anodemap.diffraction.crystal.Crystal` or CIF path, for
        the symmetry of phases that are not packaged (default: each name loaded as a
        packaged phase).

    Returns
    -------
    dict
        ``n_pixels``, ``n_material_pixels``, ``n_pore_pixels``; ``phase_accuracy`` (over
        material pixels: a material pixel called vacuum is wrong), ``label_accuracy`` (over
        all pixels, pores right when vacuum); ``vacuum`` (``recall``: the share of the
        pores called vacuum, ``precision``: the share of the pixels called vacuum that are
        pores, ``n_called_vacuum``); ``recall`` and ``precision`` per phase over material
        pixels; ``confusion`` (truth name -> found name -> pixels, pores as ``"pore"``);
        ``pores_called_crystalline``, ``pores_called_amorphous``; ``orientation`` (per
        phase: ``all_right_phase`` and ``reliable``, each with ``n``, ``median_deg``,
        ``within_2deg``) and, where the truth has it, the mean amorphous share of the
        pixels found as each crystalline phase against the simulated one.

    Examples
    --------
    >>> labels = {"-1": "vacuum", "0": "amorphous", "1": "Si"}
    >>> truth = {"phase": np.array([[0, 1], [1, -1]]), "euler_deg": np.zeros((2, 2, 3))}
    >>> maps = {"phase": np.array([[0, 1], [0, -1]]), "euler": np.zeros((2, 2, 3)),
    ...         "reliability": np.full((2, 2), 50.0)}
    >>> cmp = compare_with_truth(maps, labels, truth, {"0": "amorphous", "1": "Si"})
    >>> round(cmp["phase_accuracy"], 3), cmp["recall"]["Si"], cmp["vacuum"]["recall"]
    (0.667, 0.5, 1.0)
    >>> cmp["orientation"]["Si"]["reliable"]["n"]
    1
    """
    from anodemap.diffraction.templates import misorientation_deg

    found = np.asarray(maps["phase"]).astype(np.int64)
    true = np.asarray(truth["phase"]).astype(np.int64)
    if found.shape != true.shape:
        raise ValueError(f"phase map {found.shape} and truth {true.shape} differ in shape")
    # the truth's labels in the map's numbering, by name; -99: a name the map has not
    by_name = {name: int(k) for k, name in phase_labels.items()}
    names = {int(k): n for k, n in truth_labels.items() if int(k) >= 0}
    true_in_map = np.full(true.shape, -99, np.int64)
    for k, name in names.items():
        true_in_map[true == k] = by_name.get(name, -99)
    material = true >= 0
    pore = ~material
    vacuum_label = by_name.get("vacuum")
    called_vacuum = (
        (found == vacuum_label) if vacuum_label is not None else np.zeros(found.shape, bool)
    )
    right = material & (found == true_in_map)
    found_names = {int(k): n for k, n in phase_labels.items()}

    def frac(num: np.ndarray, den: np.ndarray) -> float | None:
        n = int(den.sum())
        return float((num & den).sum() / n) if n else None

    def counts(where: np.ndarray) -> dict[str, int]:
        return {
            found_names.get(int(f), str(int(f))): int(c)
            for f, c in zip(*np.unique(found[where], return_counts=True), strict=True)
        }

    recall, precision, confusion = {}, {}, {}
    for k, name in names.items():
        t = true == k
        recall[name] = frac(right, t)
        confusion[name] = counts(t)
    if pore.any():
        confusion["pore"] = counts(pore)
    for f, name in found_names.items():
        if f >= 0:
            precision[name] = frac(right, material & (found == f))
    amorphous = [int(k) for k, n in phase_labels.items() if n == "amorphous"]
    crystalline_call = found > 0
    out: dict[str, Any] = {
        "n_pixels": int(true.size),
        "n_material_pixels": int(material.sum()),
        "n_pore_pixels": int(pore.sum()),
        "phase_accuracy": frac(right, material),
        "label_accuracy": frac(right | (pore & called_vacuum), np.ones(true.shape, bool)),
        "vacuum": {
            "recall": frac(called_vacuum, pore),
            "precision": frac(pore, called_vacuum),
            "n_called_vacuum": int(called_vacuum.sum()),
        },
        "recall": recall,
        "precision": precision,
        "confusion": confusion,
        "pores_called_crystalline": int((pore & crystalline_call).sum()),
        "pores_called_amorphous": int((pore & np.isin(found, amorphous)).sum()),
        "orientation": {"reliability_threshold": float(reliability_threshold)},
    }
    euler_found = np.asarray(maps["euler"], dtype=np.float64)
    euler_true = np.asarray(truth["euler_deg"], dtype=np.float64)
    reliability = np.asarray(maps["reliability"], dtype=np.float64)

    def angles(mask: np.ndarray, name: str) -> dict[str, Any]:
        n = int(mask.sum())
        if not n:
            return {"n": 0, "median_deg": None, "within_2deg": None}
        a = misorientation_deg(euler_found[mask], euler_true[mask], (phases or {}).get(name, name))
        ok = np.isfinite(a)
        return {
            "n": n,
            "median_deg": float(np.median(a[ok])) if ok.any() else None,
            "within_2deg": float(np.mean(a[ok] < 2.0)) if ok.any() else None,
        }

    share = truth.get("amorphous_intensity_share")
    for k, name in names.items():
        if name == "amorphous" or name not in by_name or by_name[name] <= 0:
            continue
        here = right & (true == k)
        out["orientation"][name] = {
            "all_right_phase": angles(here, name),
            "reliable": angles(here & (reliability >= reliability_threshold), name),
        }
        if share is not None and "amorphous_share" in maps and here.any():
            out.setdefault("amorphous_share", {})[name] = {
                "found_mean": float(np.nanmean(np.asarray(maps["amorphous_share"])[here])),
                "simulated_intensity_share_mean": float(np.mean(np.asarray(share)[here])),
            }
    return out


def truth_comparison_figure(
    maps: dict[str, np.ndarray],
    phase_labels: dict[str, str],
    truth: dict[str, np.ndarray],
    truth_labels: dict[str, str],
    pixel_size: float,
    units: str = "nm",
):
    """Truth and found label maps side by side, and the misorientation of the found
    orientations where the phase is right.

    The truth's pores are drawn as vacuum, in the map's colours (:func:`label_colours`),
    so a pore found as vacuum looks the same in both panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from anodemap.diffraction.templates import misorientation_deg
    from anodemap.plotting import add_scalebar, map_figure, plot_map

    by_name = {name: int(k) for k, name in phase_labels.items()}
    true = np.asarray(truth["phase"]).astype(np.int64)
    found = np.asarray(maps["phase"]).astype(np.int64)
    # the truth in the map's labels: pores as vacuum, a name the map has not as not analysed
    true_in_map = np.full(true.shape, by_name.get("vacuum", -3), np.int64)
    for k, name in truth_labels.items():
        if int(k) >= 0:
            true_in_map[true == int(k)] = by_name.get(name, -3)
    fig, panels = map_figure(true.shape, 1, 3)
    handles: list[Any] = []
    for (ax, cax), values, title in (
        (panels[0], true_in_map, "Truth (pores as vacuum)"),
        (panels[1], found, "Found"),
    ):
        cax.remove()
        shown = _draw_labels(ax, values, phase_labels)
        handles += [h for h in shown if h.get_label() not in {g.get_label() for g in handles}]
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=10)
        add_scalebar(ax, pixel_size, units, true.shape[1])
    _legend_beside(panels[1][0], handles)
    angle = np.full(true.shape, np.nan)
    for k, name in truth_labels.items():
        code = by_name.get(name)
        if code is None or code <= 0:
            continue
        here = (true == int(k)) & (found == code)
        if here.any():
            angle[here] = misorientation_deg(
                np.asarray(maps["euler"])[here], np.asarray(truth["euler_deg"])[here], name
            )
    plot_map(
        angle,
        pixel_size=pixel_size,
        units=units,
        title="Misorientation where the phase is right",
        label="degrees (10 and above: top colour)",
        cmap="viridis",
        vmin=0.0,
        vmax=10.0,
        ax=panels[2][0],
        cax=panels[2][1],
        no_value_label="phase not right, or no phase",
    )
    return fig
