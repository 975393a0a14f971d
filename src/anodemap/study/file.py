"""A study file: the states of an electrode, in order, and the datasets of each.

The format (TOML, docs/study.md, "The study file")::

    [study]
    name = "Si anode, all-solid-state cell"
    calibration = "lixsi.csv"            # optional: Li/Si calibration of every EELS dataset

    [parameters.diffraction]             # optional: defaults of an analysis's parameters
    precession_angle_deg = 0.4

    [[states]]
    name = "lithiated_1"                 # a folder name
    label = "1st lithiation"
    cycle = 1
    step = "lithiated"                   # pristine | lithiated | delithiated
    capacity_mAh_g = 3314                # optional: Li per Si from the capacity

      [[states.datasets]]
      path = "lith1/eels.dm4"            # relative to the study file
      kind = "eels"                      # optional: inferred from the file
      truth = "lith1/truth_eels"         # optional: simulated truth maps
      li_si_map = "eels"                 # optional (a diffraction dataset): the PDF takes
                                         # each region's composition from the Li/Si map
                                         # of this state's EELS dataset named so (same
                                         # scan grid), or of an EELS result path
      region = "A"                       # optional: joined with the state's other
                                         # datasets of region A (a HAADF survey of kind
                                         # features among them): OUT/STATE/regions/A/

      [[states.datasets]]
      path = "lith1/sped.zspy"           # a diffraction scan: diffraction, then pdf
      parameters = { phases = ["Si", "Li15Si4"], pdf = { composition = "Si:1 Li:2" } }

Everything is checked before any work starts (:func:`read_study`): an unknown key, a
missing file, an unknown kind, a name used twice, a parameter an analysis does not have
— each one clear error naming the study file and where in it.

Examples
--------
>>> import pathlib, tempfile
>>> from anodemap.eels import eels_dataset
>>> from anodemap.io import save
>>> from anodemap.synth import simulate_spectrum
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> sim = simulate_spectrum(2.0, 0.8, noise=False)
>>> _ = save(eels_dataset(sim.spectra[None, None], sim.energy), d / "a.hspy")
>>> _ = (d / "s.toml").write_text('''
... [study]
... name = "test"
... [[states]]
... name = "pristine"
... [[states.datasets]]
... path = "a.hspy"
... kind = "eels"
... ''')
>>> study = read_study(d / "s.toml")
>>> study.states[0].datasets[0].name, study.states[0].datasets[0].analyses
('a', ('eels',))
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anodemap.errors import AnodemapInputError

__all__ = ["Dataset", "Region", "State", "Study", "read_study"]

_STEPS = ("pristine", "lithiated", "delithiated")
# names become folder names: letters, digits, _ and - (and not . or ..)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

_STUDY_KEYS = {"name", "description", "calibration", "simulated"}
_STATE_KEYS = {"name", "label", "cycle", "step", "capacity_mAh_g", "datasets"}
_DATASET_KEYS = {"path", "kind", "name", "region", "truth", "parameters", "signal"}
# files an analysis reads besides its input, given per dataset (Analysis.files)
_FILE_KEYS = {"adf", "calibration", "li_si_map", "regions"}
_TOP_KEYS = {"study", "parameters", "states", "cycling"}
_CYCLING_KEYS = {"file"}


@dataclass(frozen=True)
class Dataset:
    """One dataset of a state: a file and the analyses that read it."""

    name: str
    path: Path
    kind: str
    analyses: tuple[str, ...]
    region: str | None = None
    truth: Path | None = None
    signal: int | str | None = None
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)


#: Dataset keys that may name another dataset of the same state instead of a file: the
#: result of that dataset's analysis (key -> the analysis) is given to this one's
#: (``li_si_map = "eels"``: the PDF's composition from the Li/Si map of that EELS dataset).
LINKS = {"li_si_map": "eels"}


@dataclass(frozen=True)
class Region:
    """The datasets of a state that share a ``region`` name: one area of the electrode
    seen by several instruments, joined by the analyses that read several kinds
    (``correlate``: the image's features with the EELS, EDX and diffraction maps).

    Attributes
    ----------
    name : str
        The ``region`` of its datasets.
    image : str
        The name of its image dataset (kind ``features``: the HAADF survey).
    datasets : dict of str to str
        Kind -> the name of the region's dataset of that kind (the image's included).
    """

    name: str
    image: str
    datasets: dict[str, str]


@dataclass(frozen=True)
class State:
    """One state of the electrode (pristine, after a (de)lithiation)."""

    name: str
    label: str
    cycle: int | None
    step: str | None
    capacity_mAh_g: float | None
    datasets: tuple[Dataset, ...]
    regions: tuple[Region, ...] = ()


@dataclass(frozen=True)
class Study:
    """A study file, read and checked."""

    name: str
    description: str | None
    file: Path
    states: tuple[State, ...]
    calibration: Path | None = None
    simulated: bool = False
    cycling: dict[str, Any] | None = None


def read_cycling(path: Path) -> dict[str, Any]:
    """A cycling table: CSV with a header line ``cycle,charge_mAh_g,discharge_mAh_g``
    (any column order, more columns ignored), lines starting with ``#`` skipped.

    Returns
    -------
    dict
        ``file`` and a list of numbers per column (an empty cell: None).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
    >>> lines = ["# from the paper, 3,314 mAh/g", "cycle,charge_mAh_g,discharge_mAh_g", "1,3314,2537"]
    >>> _ = p.write_text(chr(10).join(lines))
    >>> read_cycling(p)["discharge_mAh_g"]
    [2537.0]
    """
    import csv

    need = ("cycle", "charge_mAh_g", "discharge_mAh_g")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
    if not rows:
        raise AnodemapInputError(f"{path}: the cycling table is empty")
    header = [h.strip() for h in rows[0]]
    missing = [n for n in need if n not in header]
    if missing:
        raise AnodemapInputError(
            f"{path}: the cycling table's header needs the columns {', '.join(need)} "
            f"(missing {', '.join(missing)}; header: {','.join(header)})"
        )
    out: dict[str, Any] = {"file": str(path)}
    for name in need:
        col = header.index(name)
        values = []
        for i, row in enumerate(rows[1:], start=2):
            cell = row[col].strip() if col < len(row) else ""
            try:
                values.append(float(cell) if cell else None)
            except ValueError:
                raise AnodemapInputError(
                    f"{path}: row {i} of the table, column {name}: {cell!r} is not a number"
                ) from None
        out[name] = values
    return out


def _err(file: Path, where: str, message: str) -> AnodemapInputError:
    return AnodemapInputError(f"{file}: {where + ': ' if where else ''}{message}")


def _check_keys(file: Path, where: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _err(file, where, f"expected a table, not {type(table).__name__}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _err(
            file,
            where,
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (the keys "
            f"here are {', '.join(sorted(allowed))})",
        )
    return table


def _name(file: Path, where: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _err(
            file,
            where,
            f"{what} {value!r}: give a name of letters, digits, _ and - (it becomes a folder name)",
        )
    return value


def _file(file: Path, where: str, value: Any, key: str, *, folder: bool = False) -> Path:
    if not isinstance(value, str) or not value:
        raise _err(file, where, f"{key} must be a path (a string)")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (file.parent / path)
    path = Path(*path.parts)  # normalised, kept absolute when the file's folder is
    if not path.exists():
        raise _err(file, where, f"{key} = {value!r}: {path} does not exist")
    if folder and not path.is_dir():
        raise _err(file, where, f"{key} = {value!r}: {path} is not a folder")
    return path.resolve()


def _number(file: Path, where: str, value: Any, key: str, *, whole: bool = False) -> Any:
    ok = isinstance(value, int) if whole else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or value < 0:
        raise _err(
            file,
            where,
            f"{key} = {value!r}: give a {'whole number' if whole else 'number'} >= 0",
        )
    return value


def _kind(path: Path, signal: Any) -> str:
    """The analysis kind of a file: the first analysis that accepts its data."""
    from anodemap.analysis import analysis_names, get_analysis
    from anodemap.io import load_all

    items = load_all(path, lazy=True)
    if signal is not None and isinstance(signal, int) and 0 <= signal < len(items):
        items = [items[signal]]
    for name in analysis_names():
        analysis = get_analysis(name)
        if any(analysis.accepts(item) for item in items):
            return name
    from anodemap.io.kinds import describe

    what = "; ".join(describe(item) for item in items)
    raise AnodemapInputError(f"{what}: no analysis of anodemap reads it")


def _kinds() -> list[str]:
    """The kinds of dataset that some analysis reads (``eels``, ``diffraction``, ...)."""
    from anodemap.analysis import analysis_names, get_analysis

    return list(dict.fromkeys(get_analysis(n).reads or n for n in analysis_names()))


def _check_kind(path: Path, signal: Any, kind: str) -> None:
    """Refuse a file none of whose signals is data of ``kind`` (the analysis of that
    name says what it needs and what the file holds)."""
    from anodemap.analysis import get_analysis
    from anodemap.io import load_all
    from anodemap.io.kinds import describe

    items = load_all(path, lazy=True)
    if signal is not None and isinstance(signal, int) and 0 <= signal < len(items):
        items = [items[signal]]
    if not any(get_analysis(kind).accepts(item) for item in items):
        what = "; ".join(describe(item) for item in items)
        raise AnodemapInputError(f"{path.name} holds {what}, not data of this kind")


def read_study(path: str | Path) -> Study:
    """Read and check the study file ``path`` (see the module's description).

    Raises
    ------
    AnodemapInputError
        The file is not valid TOML, or anything in it is wrong (the message names the
        file, the state and dataset, and the key).
    FileNotFoundError
        The study file does not exist.
    """
    from anodemap.analysis import analyses_of, analysis_names, get_analysis

    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"{path}: no such study file")
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise _err(file, "", f"not a valid TOML file ({err})") from err
    except UnicodeDecodeError as err:
        raise _err(file, "", "not a text file (a study file is TOML, UTF-8)") from err
    _check_keys(file, "", doc, _TOP_KEYS)
    head = _check_keys(file, "[study]", doc.get("study", {}), _STUDY_KEYS)
    if not isinstance(head.get("name"), str) or not head["name"].strip():
        raise _err(file, "[study]", 'give the study a name (name = "...")')
    calibration = None
    if "calibration" in head:
        calibration = _file(file, "[study]", head["calibration"], "calibration")
    defaults = doc.get("parameters", {})
    _check_keys(file, "[parameters]", defaults, set(analysis_names()))
    for name, values in defaults.items():
        get_analysis(name).parameters(values, where=f"{file}: [parameters.{name}]")
    states_doc = doc.get("states")
    if not isinstance(states_doc, list) or not states_doc:
        raise _err(file, "", "no state: add at least one [[states]] table with its datasets")
    states: list[State] = []
    for i, sdoc in enumerate(states_doc):
        where = f"state {i + 1}"
        if isinstance(sdoc, dict) and isinstance(sdoc.get("name"), str):
            where = f"state {sdoc['name']!r}"
        _check_keys(file, where, sdoc, _STATE_KEYS)
        name = _name(file, f"state {i + 1}", sdoc.get("name"), "name")
        if any(s.name == name for s in states):
            raise _err(file, where, "a second state of this name; give each state its own")
        step = sdoc.get("step")
        if step is not None and step not in _STEPS:
            raise _err(file, where, f"step = {step!r}: give one of {', '.join(_STEPS)}")
        cycle = sdoc.get("cycle")
        if cycle is not None:
            cycle = _number(file, where, cycle, "cycle", whole=True)
        capacity = sdoc.get("capacity_mAh_g")
        if capacity is not None:
            capacity = float(_number(file, where, capacity, "capacity_mAh_g"))
        datasets: list[Dataset] = []
        for j, ddoc in enumerate(sdoc.get("datasets") or []):
            dwhere = f"{where}, dataset {j + 1}"
            _check_keys(file, dwhere, ddoc, _DATASET_KEYS | _FILE_KEYS)
            if "path" not in ddoc:
                raise _err(file, dwhere, 'give the dataset\'s file (path = "...")')
            dpath = _file(file, dwhere, ddoc["path"], "path")
            dname = _name(file, dwhere, ddoc.get("name", dpath.stem), "name")
            dwhere = f"{where}, dataset {dname!r}"
            if any(d.name == dname for d in datasets):
                raise _err(
                    file, dwhere, "a second dataset of this name in the state; give it a name"
                )
            signal = ddoc.get("signal")
            kind = ddoc.get("kind")
            if kind is None:
                try:
                    kind = _kind(dpath, signal)
                except AnodemapInputError as err:
                    raise _err(file, dwhere, f"{err} (give kind = ...)") from err
            else:
                kinds = _kinds()
                if kind not in kinds:
                    raise _err(file, dwhere, f"kind = {kind!r}: anodemap knows {', '.join(kinds)}")
                try:
                    _check_kind(dpath, signal, kind)
                except AnodemapInputError as err:
                    raise _err(file, dwhere, f"kind = {kind!r}: {err}") from err
            parameters = _dataset_parameters(
                defaults, ddoc.get("parameters") or {}, kind, f"{file}: {dwhere}, parameters"
            )
            files, links = {}, {}
            for key in sorted(_FILE_KEYS & set(ddoc)):
                readers = [a for a in analyses_of(kind) if key in get_analysis(a).files]
                if not readers:
                    raise _err(
                        file,
                        dwhere,
                        f"{key} = ...: no analysis of {kind} datasets reads a {key} file",
                    )
                if key in LINKS and _names_a_dataset(file, ddoc[key]):
                    links[key] = ddoc[key]  # checked once the state's datasets are read
                    continue
                files[key] = _file(file, dwhere, ddoc[key], key)
            truth = ddoc.get("truth")
            if truth is not None:
                truth = _file(file, dwhere, truth, "truth", folder=True)
            region = ddoc.get("region")
            if region is not None:
                region = _name(file, dwhere, region, "region")
            datasets.append(
                Dataset(
                    name=dname,
                    path=dpath,
                    kind=kind,
                    analyses=analyses_of(kind),
                    region=region,
                    truth=truth,
                    signal=signal,
                    parameters=parameters,
                    files=files,
                    links=links,
                )
            )
        label = sdoc.get("label", name)
        if not isinstance(label, str):
            raise _err(file, where, "label must be a string")
        _check_links(file, where, datasets)
        regions = _regions(file, where, datasets)
        states.append(State(name, label, cycle, step, capacity, tuple(datasets), regions))
    cycling = None
    if "cycling" in doc:
        cdoc = _check_keys(file, "[cycling]", doc["cycling"], _CYCLING_KEYS)
        cycling = read_cycling(_file(file, "[cycling]", cdoc.get("file"), "file"))
    description = head.get("description")
    return Study(
        name=head["name"],
        description=description if isinstance(description, str) else None,
        file=file,
        states=tuple(states),
        calibration=calibration,
        simulated=bool(head.get("simulated", False)),
        cycling=cycling,
    )


def _names_a_dataset(file: Path, value: Any) -> bool:
    """Whether a link key's value names a dataset (a name, and no file of that name
    beside the study file) rather than a file."""
    return (
        isinstance(value, str)
        and _NAME.fullmatch(value) is not None
        and not (file.parent / value).exists()
    )


def _check_links(file: Path, where: str, datasets: list[Dataset]) -> None:
    """Each link names another dataset of the state, of a kind whose analyses make the
    result the key takes."""
    from anodemap.analysis import analyses_of

    by_name = {d.name: d for d in datasets}
    for d in datasets:
        for key, target in d.links.items():
            other = by_name.get(target)
            need = LINKS[key]
            if other is None or other is d or need not in analyses_of(other.kind):
                names = ", ".join(repr(o.name) for o in datasets if need in analyses_of(o.kind))
                raise _err(
                    file,
                    f"{where}, dataset {d.name!r}",
                    f"{key} = {target!r}: not a {need} dataset of this state (its {need} "
                    f"datasets: {names or 'none'}); name one of them, or give the path of a "
                    f"{need} result",
                )


# the folder of a state's regions, beside its datasets' (OUT/STATE/regions/REGION/ANALYSIS)
REGIONS_FOLDER = "regions"


def region_analyses(kind: str) -> tuple[str, ...]:
    """The analyses of datasets of ``kind`` that join a region's datasets: those that
    read the results of analyses of other kinds (files named after another analysis
    that they do not require of their own dataset), e.g. ``correlate``.

    Examples
    --------
    >>> region_analyses("features"), region_analyses("eels")
    (('correlate',), ())
    """
    from anodemap.analysis import analyses_of, analysis_names, get_analysis

    names = set(analysis_names())
    return tuple(
        a
        for a in analyses_of(kind)
        if any(f in names and f not in get_analysis(a).requires for f in get_analysis(a).files)
    )


def _regions(file: Path, where: str, datasets: list[Dataset]) -> tuple[Region, ...]:
    """The regions of a state's datasets, checked: each has one image dataset (what its
    joining analyses read) and at most one dataset of each kind."""
    from anodemap.analysis import get_analysis

    names = dict.fromkeys(d.region for d in datasets if d.region is not None)
    if not names:
        return ()
    joiners = {k for d in datasets for k in region_analyses(d.kind)}
    image_kinds = sorted({get_analysis(a).reads or a for a in joiners}) or ["features"]
    if any(d.name == REGIONS_FOLDER for d in datasets):
        raise _err(
            file,
            f"{where}, dataset {REGIONS_FOLDER!r}",
            f"the name {REGIONS_FOLDER!r} is the folder of the state's regions; give the "
            'dataset another name (name = "...")',
        )
    regions = []
    for name in names:
        members = [d for d in datasets if d.region == name]
        by_kind: dict[str, str] = {}
        for d in members:
            if d.kind in by_kind:
                raise _err(
                    file,
                    f"{where}, region {name!r}",
                    f"two {d.kind} datasets ({by_kind[d.kind]!r} and {d.name!r}); a region "
                    "joins one dataset of each kind: give one of them another region name",
                )
            by_kind[d.kind] = d.name
        image = next((by_kind[k] for k in image_kinds if k in by_kind), None)
        if image is None:
            listed = ", ".join(f"{d.name!r} ({d.kind})" for d in members)
            raise _err(
                file,
                f"{where}, region {name!r}",
                f"no image dataset: its datasets {listed} are joined on the region's HAADF "
                f'survey; add it as a dataset with kind = "{image_kinds[0]}" and region = '
                f'"{name}" (or leave region out of these datasets)',
            )
        regions.append(Region(name, image, by_kind))
    return tuple(regions)


def _dataset_parameters(
    defaults: dict[str, Any], given: dict[str, Any], kind: str, where: str
) -> dict[str, dict[str, Any]]:
    """The parameters of every analysis that runs on a dataset of ``kind``: the study's
    ``[parameters.NAME]`` defaults, updated by the dataset's own ``parameters`` table —
    its plain keys for the analysis of the kind, its sub-tables named after another
    analysis of the kind (e.g. ``parameters.pdf`` of a diffraction dataset) for that
    one; each checked against the analysis's parameters."""
    from anodemap.analysis import analyses_of, get_analysis

    names = analyses_of(kind)
    others = {k for k, v in given.items() if k in names and k != kind and isinstance(v, dict)}
    out = {}
    for name in names:
        merged = dict(defaults.get(name, {}))
        if name == kind:
            merged.update({k: v for k, v in given.items() if k not in others})
        else:
            merged.update(given.get(name, {}) if name in others else {})
        label = where if name == kind else f"{where}.{name}"
        get_analysis(name).parameters(merged, where=label)
        out[name] = merged
    return out
