"""The correlation of one region: every modality registered on the HAADF survey, its
maps brought into the reference frame, and tabulated per feature class and region.

Examples
--------
>>> from anodemap.correlate.parameters import CorrelateParameters
>>> CorrelateParameters().reference
'haadf'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anodemap.correlate.inputs import Modality
from anodemap.correlate.oxide_plasmon import from_eels_oxide
from anodemap.correlate.oxygen import from_edx
from anodemap.correlate.parameters import CorrelateParameters
from anodemap.correlate.regions import check_regions, class_groups, region_map
from anodemap.correlate.statistics import (
    Group,
    Measured,
    fraction_rows,
    ratio_row,
    value_row,
)
from anodemap.correlate.thickness import from_eels
from anodemap.correlate.unmix import class_shares, unmixed_rows
from anodemap.errors import AnodemapInputError
from anodemap.features.classes import CLASS_NAMES, CLASSES, DENDRITE, GREY
from anodemap.io import Axis
from anodemap.registration import Registration, Transform, register, resample_labels
from anodemap.registration import resample as resample_values

__all__ = ["CorrelateResult", "correlate"]

# diffraction labels that phase fractions leave out (docs/diffraction.md)
_NOT_COUNTED = {"vacuum", "not analysed"}
# the phase map's code for a pixel outside the scan
_PHASE_OUTSIDE = -4


@dataclass
class CorrelateResult:
    """The maps in the reference frame, the registrations and the statistics.

    Attributes
    ----------
    reference : str
    axes : list of Axis
        The reference frame's axes (nm).
    maps : dict of str to ndarray
        Every map in the reference frame (written as ``NAME.hspy``).
    meta : dict
        Title, units and legend of each map.
    registrations : dict of str to Registration
        Each modality on the HAADF survey.
    transforms : dict of str to Transform
        Reference pixel → pixel of each modality (``haadf`` included).
    rows : list of dict
        The statistics (:data:`anodemap.correlate.statistics.COLUMNS`).
    summary : dict
    images : dict of str to ndarray
        Each modality's registration image in the reference frame.
    survey_labels : ndarray, optional
        The feature classes on the HAADF survey's own grid.
    survey_cover : dict of str to ndarray
        Per modality, the survey pixels its map covers (the HAADF survey's grid).
    haadf_labels : ndarray, optional
        The classes of ``anodemap features`` (``survey_labels`` before they were found
        again with the EELS t/λ under its map and the EDX O/Si and the EELS oxide index
        decided the boundaries under theirs).
    regions : list of dict
        The connected regions of ``survey_labels`` (``regions.csv``).
    scan_labels : dict of str to (ndarray, list of Axis)
        Per modality whose scan is analysed again by region (``diffraction``: the PDFs
        of the feature classes), the survey's classes on that scan's own grid and its
        axes (nm): written as ``labels_NAME.hspy``.
    """

    reference: str
    axes: list[Axis]
    maps: dict[str, np.ndarray]
    meta: dict[str, dict[str, Any]]
    registrations: dict[str, Registration]
    transforms: dict[str, Transform]
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    images: dict[str, np.ndarray] = field(default_factory=dict)
    survey_labels: np.ndarray | None = None
    survey_cover: dict[str, np.ndarray] = field(default_factory=dict)
    haadf_labels: np.ndarray | None = None
    regions: list[dict[str, Any]] = field(default_factory=list)
    scan_labels: dict[str, tuple[np.ndarray, list[Axis]]] = field(default_factory=dict)


#: The modalities whose own grid gets the feature classes (``labels_NAME.hspy``): a
#: diffraction scan's PDFs by feature class (``anodemap pdf SCAN --regions``) need them
#: on the scan's grid.
SCAN_LABELS = ("diffraction",)


def _register_all(
    image: np.ndarray, pixel_nm: float, modalities: list[Modality], p: CorrelateParameters, log
) -> dict[str, Registration]:
    regs = {}
    for m in modalities:
        log(f"registering {m.name} ({m.image_name}, {m.pixel_nm:g} nm pixels) on the HAADF")
        try:
            r = register(
                image,
                m.image,
                reference_pixel_nm=pixel_nm,
                moving_pixel_nm=m.pixel_nm,
                contrast=p.contrast,
                model=p.model,
                max_rotation_deg=p.max_rotation_deg,
                min_overlap=p.min_overlap,
                highpass_px=p.highpass_px,
            )
        except AnodemapInputError as err:
            raise AnodemapInputError(
                f"--{m.name} {m.folder}: its {m.image_name} and the HAADF survey: {err}; give "
                "the results of this region, or a larger --max-rotation"
            ) from err
        d = r.to_dict()
        log(
            f"{m.name}: rotation {r.transform.rotation_deg:+.2f}°, scale x "
            f"{d['scale_over_calibration']:.4f} of the calibrations, residual "
            f"{d['residual_nm']:.2f} nm, position 1σ {d['uncertainty_nm']:.2f} nm "
            f"({r.contrast}; {d['quality']})"
        )
        if d["quality"] == "poor":
            log(
                f"WARNING: {m.name} registered poorly (see registration.png); its statistics "
                "may mix the classes"
            )
        regs[m.name] = r
    return regs


def _layers_in_frame(
    m: Modality, t: Transform, shape: tuple[int, int]
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """The maps of modality ``m`` in the reference frame (pixel → ``t`` → its pixel)."""
    maps: dict[str, np.ndarray] = {}
    meta: dict[str, dict[str, Any]] = {}
    stem = m.image_name.removesuffix(".hspy")
    maps[f"{m.name}_{stem}"] = resample_values(m.image, t, shape)[0]
    meta[f"{m.name}_{stem}"] = {"title": f"{m.name} {stem} (registration image)", "units": ""}
    for name, status in m.statuses.items():
        maps[f"{m.name}_{name}"] = resample_labels(status.astype(np.uint8), t, shape)[0]
        meta[f"{m.name}_{name}"] = {"title": f"{m.name} {name}", "units": "", "status": True}
    for layer in m.layers:
        spec = layer.spec
        key = f"{m.name}_{spec.file.removesuffix('.hspy')}"
        if spec.kind == "label":
            codes = np.asarray(layer.values, np.int16)
            maps[key] = resample_labels(codes, t, shape, outside=_PHASE_OUTSIDE)[0]
            legend = {**(layer.legend or {}), str(_PHASE_OUTSIDE): "outside the scan"}
            meta[key] = {"title": f"{m.name} {spec.title}", "units": "", "legend": legend}
            continue
        maps[key] = resample_values(layer.values, t, shape, layer.valid)[0]
        meta[key] = {"title": f"{m.name} {spec.title}", "units": spec.units}
        if layer.sigma is not None:
            maps[f"{key}_uncertainty"] = resample_values(layer.sigma, t, shape, layer.valid)[0]
            meta[f"{key}_uncertainty"] = {"title": f"{m.name} {spec.title} 1σ", "units": spec.units}
    return maps, meta


def _measured(m: Modality) -> list[Measured]:
    """The maps of ``m`` as the statistics count them (on its own grid)."""
    out = []
    for layer in m.layers:
        spec = layer.spec
        out.append(
            Measured(
                spec.quantity,
                spec.units,
                layer.values,
                layer.valid,
                layer.sigma,
                layer.systematic,
                layer.legend if spec.kind == "label" else None,
            )
        )
    return out


def _group_rows(head: dict[str, Any], measured: list[Measured], mask: np.ndarray) -> list[dict]:
    rows: list[dict[str, Any]] = []
    by_quantity = {m.quantity: m for m in measured}
    for m in measured:
        if m.legend is not None:
            rows += [{**head, **r} for r in fraction_rows(m, mask, _NOT_COUNTED)]
        else:
            rows.append({**head, **value_row(m, mask)})
    if "O_Ka" in by_quantity and "Si_Ka" in by_quantity:
        rows.append({**head, **ratio_row(by_quantity["O_Ka"], by_quantity["Si_Ka"], mask, "o_si")})
    return rows


def _statistics(
    labels: np.ndarray,
    ids: np.ndarray,
    regions: list[dict[str, str]],
    pixel_nm: float,
    modalities: list[Modality],
    regs: dict[str, Registration],
    footprint: str = "point",
    probability: np.ndarray | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Areas in the survey; each map's statistics on its own pixels, by the class of
    each pixel's centre and unmixed (:mod:`anodemap.correlate.unmix`; grey and
    dendrite-like shared by ``probability`` where given). Also the survey pixels each
    modality's map covers."""
    everywhere = np.ones(labels.shape, bool)
    survey = class_groups(labels, everywhere)
    survey += [
        Group("region", f"region {k}", r["class"], k, ids == k) for k, r in enumerate(regions, 1)
    ]
    frames = []
    for m in modalities:
        back = regs[m.name].transform.inverse()  # its pixel -> HAADF pixel
        lab_m, known = resample_labels(labels, back, m.image.shape)
        ids_m, _ = resample_labels(ids, back, m.image.shape, outside=0)
        cover = resample_values(m.image, regs[m.name].transform, labels.shape)[1]
        frames.append((m, lab_m, ids_m, known, cover, _measured(m)))
    rows: list[dict[str, Any]] = []
    counts = {}
    for r in regions:
        counts[r["class"]] = counts.get(r["class"], 0) + 1
    for g in survey:
        head = {"group_kind": g.kind, "group": g.name, "class": g.class_name, "region": g.region}
        n = int(g.mask.sum())
        area = {"pixels": n, "coverage": 1.0}
        rows.append({**head, **area, "quantity": "area", "units": "nm²", "value": n * pixel_nm**2})
        rows.append(
            {**head, **area, "quantity": "area_fraction", "units": "", "value": n / labels.size}
        )
        if g.kind == "class":
            rows.append(
                {**head, **area, "quantity": "regions", "units": "", "value": counts.get(g.name, 0)}
            )
        for _m, lab_m, ids_m, known, cover, measured in frames:
            covered = float((g.mask & cover).sum()) / n if n else 0.0
            if g.kind == "region":
                if not covered:
                    continue
                mask = ids_m == g.region
            elif g.name == "all pixels":
                mask = known
            elif g.name.startswith("material"):
                mask = known & (lab_m != 0)
            else:
                mask = known & (lab_m == _code(g.class_name))
            rows += [{**r, "coverage": covered} for r in _group_rows(head, measured, mask)]
    rows += _unmixed(labels, frames, regs, footprint, probability)
    return rows, {f[0].name: f[4] for f in frames}


# The classes whose shares the features' probabilities split (--unmix-shares soft): the
# two that intensity alone tells apart poorly, at the 1-px edges of the threads.
_SOFT_CLASSES = (GREY, DENDRITE)


def _unmixed(
    labels: np.ndarray,
    frames: list[tuple],
    regs: dict[str, Registration],
    footprint: str,
    probability: np.ndarray | None,
) -> list[dict[str, Any]]:
    """Each value map's per-class means by linear unmixing of its pixels' class shares."""
    names = [CLASS_NAMES[c] for c in CLASSES]
    rows: list[dict[str, Any]] = []
    for m, _lab, _ids, _known, cover, measured in frames:
        back = regs[m.name].transform.inverse()
        shares, known = class_shares(
            labels,
            CLASSES,
            back,
            m.image.shape,
            footprint=footprint,
            probability=probability,
            soft=_SOFT_CLASSES if probability is not None else (),
        )
        coverage = []
        for c in CLASSES:
            n = int((labels == c).sum())
            coverage.append(float(((labels == c) & cover).sum()) / n if n else 0.0)
        for one in measured:
            if one.legend is None:
                rows += unmixed_rows(one, shares, known, names, coverage)
    return rows


# said beside every Li/Si of the boundary class (docs/registration.md, "Measured"):
# with the oxide's plasmon fitted beside the Li_xSi one (anodemap eels --oxide-peak
# auto), and without it
_O_RICH_LI_SI = (
    "O-rich: Li/Si of the Li_xSi plasmon, fitted beside the Li2O/silicate plasmon where "
    "that was seen (anodemap eels --oxide-peak auto)"
)
_O_RICH_LI_SI_ONE_PEAK = (
    "O-rich: Li/Si from a one-peak plasmon fit, which the oxide's plasmon in these pixels "
    "lowers (by 0.15-0.2 on the simulated region with the true classes); anodemap eels "
    "--oxide-peak auto fits it beside the Li_xSi one"
)


def _note_o_rich_li_si(rows: list[dict[str, Any]], modalities: list[Modality]) -> None:
    """Say beside the boundary class's Li/Si how the oxide's plasmon was dealt with."""
    eels = next((m for m in modalities if m.name == "eels"), None)
    if eels is None:
        return
    oxide_peak = (eels.summary.get("oxide_peak") or {}).get("mode")
    note = _O_RICH_LI_SI if oxide_peak == "auto" else _O_RICH_LI_SI_ONE_PEAK
    for row in rows:
        if row.get("class") == "boundary" and row["quantity"] in ("li_si", "li_si_unmixed"):
            row["note"] = "; ".join(n for n in (row.get("note"), note) if n)


def _code(class_name: str) -> int:
    return next(c for c, n in CLASS_NAMES.items() if n == class_name)


def _paper_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's statements (Ahmed et al., first lithiation, Fig. 3c-d) beside ours:
    a class's from its unmixed mean (``li_si_unmixed``: on the simulated region it
    takes the mixed pixels at thin threads into account, where the class of a pixel's
    centre misses a share of them; docs/registration.md), the pixel-majority mean
    where the class is not estimable; the average over all pixels from all pixels."""
    statements = (
        ("dendrite-like", "Li/Si 2.8-4.3 in dendrite-like regions (range)"),
        ("bright", "no Li in the bright (c-Si) regions"),
        ("grey", "Li/Si about 1.8 in the grey regions"),
        ("all pixels", "Li/Si about 2.2 on average, pores included"),
    )
    out = []
    for group, text in statements:
        found = {
            r["quantity"]: r
            for r in rows
            if r["group"] == group
            and r["quantity"] in ("li_si", "li_si_unmixed")
            and r["group_kind"] in ("class", "all")
        }
        unmixed = found.get("li_si_unmixed")
        if unmixed is not None and np.isfinite(unmixed["value"]):
            out.append({**unmixed, "group_kind": "paper", "paper": text})
        elif "li_si" in found:
            out.append({**found["li_si"], "group_kind": "paper", "paper": text})
    return out


def correlate(
    image: np.ndarray,
    image_axes: list[Axis],
    features: dict[str, Any],
    modalities: list[Modality],
    parameters: CorrelateParameters,
    *,
    log: Callable[[str], None] = lambda _: None,
    where: str = "--features",
) -> CorrelateResult:
    """Register ``modalities`` on the HAADF ``image`` and tabulate their maps per feature.

    Parameters
    ----------
    image : ndarray (ny, nx)
        The HAADF survey the features were found in.
    image_axes : list of Axis
        Its axes in nm.
    features : dict
        :func:`anodemap.correlate.inputs.read_features` of its features result.
    modalities : list of Modality
        The other modalities (:func:`~anodemap.correlate.inputs.read_modality`).
    parameters : CorrelateParameters
    log : callable
        Takes a line for the user.
    where : str
        The features result's option, for messages.

    Returns
    -------
    CorrelateResult
    """
    p = parameters
    labels = features["labels"]
    if labels.shape != image.shape:
        raise AnodemapInputError(
            f"{where}: its labels are {labels.shape[0]} x {labels.shape[1]} pixels, the image "
            f"{image.shape[0]} x {image.shape[1]}: the features result of another image; run "
            "anodemap features on this image first"
        )
    by_name = {m.name: m for m in modalities}
    if p.reference != "haadf" and p.reference not in by_name:
        raise AnodemapInputError(
            f"--reference {p.reference}: no {p.reference} result given (--{p.reference} DIR)"
        )
    pixel_nm = abs(image_axes[0].scale)
    regs = _register_all(image, pixel_nm, modalities, p, log)
    min_area = int(features["summary"].get("parameters", {}).get("min_region_px", 1))
    ids, found = region_map(labels, min_area)
    check_regions(found, features["regions"], where)
    haadf_labels = labels
    probability = features.get("probability")
    thick = None
    if "eels" in by_name and p.eels_thickness:
        thick = from_eels(
            image,
            image_axes,
            labels,
            probability,
            features["summary"],
            by_name["eels"],
            regs["eels"],
            log,
        )
        if thick is not None and thick.summary.get("applied"):
            labels, probability = thick.labels, thick.probability
    o_rich = eels_oxide = None
    cuts = {"edx": p.o_rich, "eels": p.eels_oxide}
    # the finer map decides where both cover, so it goes last (on the simulated region
    # the EELS index's 3 nm pixels found the boundaries better than the EDX's 4 nm)
    steps = sorted(
        (n for n in cuts if n in by_name and cuts[n] != "off"), key=lambda n: -by_name[n].pixel_nm
    )
    for name in steps:
        if name == "edx":
            step = o_rich = from_edx(
                labels, probability, by_name["edx"], regs["edx"], p.o_rich, p.o_rich_sigmas, log
            )
        else:
            step = eels_oxide = from_eels_oxide(
                labels, probability, by_name["eels"], regs["eels"], p.eels_oxide, log
            )
        if step is not None and step.summary.get("applied"):
            labels = step.labels
    if labels is not haadf_labels:
        ids, found = region_map(labels, min_area)
    # reference pixel -> pixel of each modality
    if p.reference == "haadf":
        shape, ref_pixel, axes = image.shape, pixel_nm, image_axes
        to_haadf = Transform.identity()
    else:
        ref = by_name[p.reference]
        shape, ref_pixel, axes = ref.image.shape, ref.pixel_nm, ref.axes
        to_haadf = regs[p.reference].transform.inverse()
    transforms = {
        "haadf": to_haadf,
        **{m.name: to_haadf.then(regs[m.name].transform) for m in modalities},
    }
    transforms[p.reference] = Transform.identity()  # exactly: its maps are kept as they are
    maps = {
        "labels": resample_labels(labels, to_haadf, shape)[0],
        "regions": resample_labels(ids, to_haadf, shape, outside=0)[0],
    }
    meta = {
        "labels": {
            "title": "feature class (255: outside the HAADF survey)"
            + "".join(
                f", {said}"
                for step, said in (
                    (thick, "found again with the EELS t/λ under its map"),
                    (o_rich, "boundaries from the EDX O/Si under its map"),
                    (eels_oxide, "boundaries from the EELS 42 eV oxide index under its map"),
                )
                if step is not None and step.summary.get("applied")
            ),
            "units": "",
            # the class names by code: anodemap pdf --regions labels.hspy names its regions
            "legend": {
                **{str(c): CLASS_NAMES[c] for c in CLASSES},
                "255": "outside the HAADF survey",
            },
        },
        "regions": {"title": "connected region of regions.csv (0: none listed)", "units": ""},
    }
    images = {"haadf": resample_values(image, to_haadf, shape)[0]}
    cover = []
    for m in modalities:
        more, more_meta = _layers_in_frame(m, transforms[m.name], shape)
        maps.update(more)
        meta.update(more_meta)
        images[m.name], inside = resample_values(m.image, transforms[m.name], shape)
        cover.append(inside)
    if cover:
        maps["coverage"] = np.stack(cover).astype(np.uint8)
        meta["coverage"] = {
            "title": "1 where each modality's map covers the pixel",
            "units": "",
            "legend": {str(i): m.name for i, m in enumerate(modalities)},
        }
    if "edx_O_Ka" in maps and "edx_Si_Ka" in maps:
        with np.errstate(divide="ignore", invalid="ignore"):
            si = maps["edx_Si_Ka"]
            maps["edx_o_si"] = np.where(si > 0, maps["edx_O_Ka"] / si, np.nan)
        meta["edx_o_si"] = {"title": "O Kα / Si Kα net counts", "units": ""}
    soft = probability if p.unmix_shares == "soft" and p.footprint == "point" else None
    rows, survey_cover = _statistics(
        labels, ids, found, pixel_nm, modalities, regs, p.footprint, soft
    )
    rows += _paper_rows(rows)
    _note_o_rich_li_si(rows, modalities)
    summary = {
        "reference": p.reference,
        "reference_pixel_nm": ref_pixel,
        "reference_shape": list(shape),
        "modalities": [m.name for m in modalities],
        "registration_images": {m.name: m.image_name for m in modalities},
        "registration": {k: r.to_dict() for k, r in regs.items()},
        "transforms_from_reference": {k: t.to_dict() for k, t in transforms.items()},
        "statistics": "each map on its own pixels, in the class of the survey pixel each "
        "lies in; QUANTITY_unmixed: per-class means by least squares on each pixel's class "
        f"shares ({p.footprint} footprint; docs/registration.md)",
        "parameters": p.as_dict(),
        "o_rich": o_rich.summary if o_rich is not None else None,
        "eels_oxide": eels_oxide.summary if eels_oxide is not None else None,
        "unmix_shares": (
            "soft: grey and dendrite-like shared by the features' probabilities"
            if soft is not None
            else "hard: each survey pixel counts for its class"
            + ("" if p.unmix_shares == "hard" else " (no probability given, or --footprint cell)")
        ),
        "oxide_steps": steps,
        "eels_thickness": thick.summary if thick is not None else None,
    }
    frame_axes = [Axis(a.name, a.size, a.scale, a.offset, "nm", navigate=False) for a in axes]
    # each scan pixel takes the class of the survey pixel its centre lies in (as the
    # statistics count its values), 255 outside the survey
    scan_labels = {
        name: (
            resample_labels(labels, regs[name].transform.inverse(), by_name[name].image.shape)[0],
            by_name[name].axes,
        )
        for name in SCAN_LABELS
        if name in by_name
    }
    return CorrelateResult(
        p.reference,
        frame_axes,
        maps,
        meta,
        regs,
        transforms,
        rows,
        summary,
        images,
        survey_labels=labels,
        survey_cover=survey_cover,
        haadf_labels=haadf_labels,
        regions=found,
        scan_labels=scan_labels,
    )
