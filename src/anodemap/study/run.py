"""``anodemap run``: every analysis of every dataset of a study, then its report.

Each analysis of each dataset writes its own folder ``OUT/STATE/DATASET/ANALYSIS/``
(what ``anodemap eels`` or ``anodemap diffraction`` writes, with
``truth_comparison.json`` for a simulated dataset). A folder is kept as it is when its
*content key* — the input's size and SHA-256, the parameters, the files it reads, the
truth, the analysis's version and anodemap's version and source — is the one it was
written with (``.anodemap-key.json``, written after ``summary.json``): a rerun with
nothing changed only checks. A dataset that fails is reported and the others go on.
``OUT/run.json`` (schema ``anodemap.run/1``, docs/study.md) lists every state, dataset
and analysis with its status, and the report is built from it.

Examples
--------
>>> from anodemap.study.run import content_key
>>> len(content_key({"analysis": "eels"}))
64
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from anodemap.analysis import Context, get_analysis
from anodemap.analysis.base import connected
from anodemap.errors import AnodemapError
from anodemap.study.file import LINKS, REGIONS_FOLDER, Region, Study, region_analyses

__all__ = ["KEY_NAME", "RUN_SCHEMA", "content_key", "run_study"]

RUN_SCHEMA = "anodemap.run/1"
# Datasets analysed at once on a dask.distributed cluster (model choice: enough to keep
# a cluster's workers busy while one dataset is read, written or drawn here; each holds
# its own result in this process's memory).
PARALLEL_DATASETS = 4
KEY_NAME = ".anodemap-key.json"


@cache
def source_hash() -> str:
    """SHA-256 of anodemap's own files (code and data): any change to them reruns.

    Examples
    --------
    >>> len(source_hash())
    64
    """
    import anodemap

    root = Path(anodemap.__file__).parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in (".py", ".csv", ".json", ".cif", ".j2", ".html", ".css"):
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()


def content_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 of ``parts`` as canonical JSON (sorted keys; anything else as text)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _identity(path: Path | None) -> dict[str, Any] | None:
    """What identifies a file or folder's content (not its place or name)."""
    from anodemap.io.outdir import input_record

    if path is None:
        return None
    record = input_record(path) or {}
    keep = {k: v for k, v in record.items() if k not in ("path", "modified", "hashed")}
    if "sha256_head_tail" in record:  # a changed middle of a large file shows in its time
        keep["modified"] = record.get("modified")
    return keep


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return (
        text
        if isinstance(err, AnodemapError | FileNotFoundError)
        else (f"{type(err).__name__}: {text}")
    )


def run_study(
    study: Study,
    out: str | Path,
    context: Context | None = None,
    *,
    force: bool = False,
    report: Callable[[Path], Any] | None = None,
) -> dict[str, Any]:
    """Run every analysis of every dataset of ``study`` into ``out``.

    Parameters
    ----------
    study : Study
        As :func:`anodemap.study.file.read_study` returns it.
    out : path-like
        The run's folder (held as one run's: :func:`anodemap.io.outdir.output_folder`).
    context : Context, optional
        Shared by every analysis (client or scheduler, progress, figures, log).
    force : bool
        Run every analysis again, even where its folder is up to date.
    report : callable, optional
        Called with ``out`` once ``run.json`` is written (builds the report).

    Returns
    -------
    dict
        The content of ``run.json``.
    """
    from anodemap import __version__
    from anodemap.io.outdir import input_record, output_folder, records_kept
    from anodemap.io.results import write_json

    context = context or Context()
    out = Path(out)
    log = context.log
    inputs = [d.path for s in study.states for d in s.datasets]
    started = _stamp()
    with (
        records_kept(),  # the inputs do not change during the run: each hashed once
        output_folder(
            out,
            inputs=[study.file, *inputs],
            writes=["run.json", "report.html", "report.json", *(s.name for s in study.states)],
            command_line=context.command_line,
            log=log,
        ) as folder,
        connected(context, inputs) as ctx,
        _SharedFigures(ctx.figures and ctx.figure_worker is None) as figures,
    ):
        folder.claim(["run.json", "report.html", "report.json", *(s.name for s in study.states)])
        chains = _run_datasets(study, out, ctx, force, figures)
        _run_linked(study, out, ctx, force, chains, figures)
        regions = _run_regions(study, out, ctx, force, chains, figures)
        states = []
        counts = {"done": 0, "skipped": 0, "failed": 0}
        for state in study.states:
            entries = []
            for ds in state.datasets:
                analyses = chains[state.name, ds.name]
                for entry in analyses.values():
                    counts[entry["status"]] += 1
                entries.append(
                    {
                        "name": ds.name,
                        "path": str(ds.path),
                        "kind": ds.kind,
                        "region": ds.region,
                        "analyses": analyses,
                    }
                )
            for region in regions[state.name]:
                for entry in region["analyses"].values():
                    counts[entry["status"]] += 1
            states.append(
                {
                    "name": state.name,
                    "label": state.label,
                    "cycle": state.cycle,
                    "step": state.step,
                    "capacity_mAh_g": state.capacity_mAh_g,
                    "li_per_si_from_capacity": _li_per_si(state.capacity_mAh_g),
                    "datasets": entries,
                    "regions": regions[state.name],
                }
            )
        record = input_record(study.file) or {}
        run = {
            "schema": RUN_SCHEMA,
            "anodemap_version": __version__,
            "study": {
                "name": study.name,
                "description": study.description,
                "file": str(study.file),
                "sha256": record.get("sha256"),
                "simulated": study.simulated,
            },
            "started": started,
            "finished": _stamp(),
            "counts": counts,
            "states": states,
            "cycling": study.cycling,
        }
        write_json(run, out / "run.json")
        log(
            f"study {study.name!r}: {counts['done']} analyses run, {counts['skipped']} up to "
            f"date, {counts['failed']} failed ({out / 'run.json'})"
        )
        if report is not None:
            report(out)
    return run


class _SharedFigures:
    """One figure process for the analyses of a run (:class:`anodemap.plotting.FigureWorker`),
    started when the first analysis runs (a run that keeps every folder starts none):
    about 0.7 s of a core for each analysis that started its own."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._worker: Any = None
        self._lock = threading.Lock()

    def context(self, context: Context) -> Context:
        """``context`` with the shared figure process (started now if not yet)."""
        if not self._enabled:
            return context
        with self._lock:
            if self._worker is None:
                from anodemap.plotting import FigureWorker

                self._worker = FigureWorker(processes=1)
        return dataclasses.replace(context, figure_worker=self._worker)

    def __enter__(self) -> _SharedFigures:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None


def _run_datasets(
    study: Study,
    out: Path,
    context: Context,
    force: bool,
    figures: _SharedFigures | None = None,
) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Every analysis of every dataset, each dataset's in order of their requirements;
    on a cluster, up to ``PARALLEL_DATASETS`` datasets at once (their chunks share the
    workers; their writing and figures here take turns), else one after the other."""
    jobs = [(state.name, ds) for state in study.states for ds in state.datasets]

    def chain(job: tuple[str, Any], ctx: Context) -> dict[str, dict[str, Any]]:
        state, ds = job
        done: dict[str, dict[str, Any]] = {}
        # a dataset of a region leaves its joining analyses (correlate) to the region's;
        # an analysis that reads another dataset's result (links) runs after every dataset
        later = (region_analyses(ds.kind) if ds.region is not None else ()) + _linked(ds)
        for name in ds.analyses:  # in order: what an analysis requires runs before it
            if name not in later:
                done[name] = _run_one(study, state, ds, name, out, ctx, force, done, figures)
        return done

    at_once = min(PARALLEL_DATASETS, len(jobs)) if context.client is not None else 1
    if at_once <= 1:
        done = [chain(job, context) for job in jobs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        context.log(f"{len(jobs)} datasets, up to {at_once} at once on the cluster")
        quiet = dataclasses.replace(context, progress=False)  # bars of several would mix
        with ThreadPoolExecutor(max_workers=at_once) as pool:
            done = list(pool.map(lambda job: chain(job, quiet), jobs))
    return {(state, ds.name): result for (state, ds), result in zip(jobs, done, strict=True)}


def _linked(ds: Any) -> tuple[str, ...]:
    """The analyses of ``ds`` that read a result its links name (``li_si_map``)."""
    return tuple(a for a in ds.analyses if set(ds.links) & set(get_analysis(a).files))


def _run_linked(
    study: Study,
    out: Path,
    context: Context,
    force: bool,
    chains: dict[tuple[str, str], dict[str, dict[str, Any]]],
    figures: _SharedFigures | None = None,
) -> None:
    """The analyses that read another dataset's result (a dataset's ``links``: the PDF
    of ``li_si_map = "eels"``), after every dataset's own, each given that result's
    folder (``files[KEY]``, its key part of its own); a failed one is left out and said
    (the analysis runs without it). Their entries join their dataset's in ``chains``."""
    for state in study.states:
        for ds in state.datasets:
            own = chains[state.name, ds.name]
            for name in _linked(ds):
                joined, left_out = _links(state.name, ds, name, chains)
                done = _run_one(
                    study, state.name, ds, name, out, context, force, own, figures, joined=joined
                )
                if left_out:
                    done["left_out"] = left_out
                own[name] = done


def _links(
    state: str, ds: Any, name: str, chains: dict[tuple[str, str], dict[str, dict[str, Any]]]
) -> tuple[dict[str, tuple[str, dict[str, Any]]], dict[str, str]]:
    """The results that the links of ``ds`` name and the analysis ``name`` reads: key ->
    (dataset, its run.json entry) for those done or kept; and why each other is left out."""
    joined, left_out = {}, {}
    for key, target in ds.links.items():
        if key not in get_analysis(name).files:
            continue
        entry = chains[state, target].get(LINKS[key])
        if entry is not None and entry.get("status") in ("done", "skipped"):
            joined[key] = (target, entry)
        else:
            why = entry.get("error") if entry else "not run"
            left_out[key] = f"the {LINKS[key]} result of dataset {target!r}: {why}"
    return joined, left_out


def _run_regions(
    study: Study,
    out: Path,
    context: Context,
    force: bool,
    chains: dict[tuple[str, str], dict[str, dict[str, Any]]],
    figures: _SharedFigures | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The joining analyses of every region (``correlate``), after every dataset's own:
    each is run as an analysis of the region's image dataset into
    ``OUT/STATE/regions/REGION/ANALYSIS/``, given the folders of the results of the
    region's other datasets (``files["eels"]``, ...) that it reads; their keys are part
    of its own (a changed EELS result reruns it). A result that failed is left out and
    said (``left_out``); the region's other results are still joined. Then, for a
    region with a diffraction dataset, its PDF by feature class (:data:`BY_FEATURE`)
    into ``OUT/STATE/regions/REGION/pdf/``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for state in study.states:
        by_name = {d.name: d for d in state.datasets}
        entries = []
        for region in state.regions:
            image = by_name[region.image]
            own = chains[state.name, image.name]
            analyses = {}
            for name in region_analyses(image.kind):
                joined, left_out = _joined(state.name, region, by_name, chains, name)
                entry = _run_one(
                    study,
                    state.name,
                    image,
                    name,
                    out,
                    context,
                    force,
                    own,
                    figures,
                    joined=joined,
                    folder=out / state.name / REGIONS_FOLDER / region.name / name,
                )
                if left_out:
                    entry["left_out"] = left_out
                analyses[name] = entry
            for name, (kind, joiner, _) in BY_FEATURE.items():
                if kind in region.datasets and joiner in analyses:
                    target = by_name[region.datasets[kind]]
                    analyses[name] = _run_by_feature(
                        study,
                        state.name,
                        region,
                        target,
                        name,
                        analyses,
                        out,
                        context,
                        force,
                        chains,
                        figures,
                    )
            entries.append(
                {
                    "name": region.name,
                    "image": region.image,
                    "datasets": dict(region.datasets),
                    "analyses": analyses,
                }
            )
        found[state.name] = entries
    return found


#: Analyses of a region's dataset run again with the feature classes as their regions:
#: analysis -> (the kind of dataset it reads, the region's analysis that writes the
#: classes on that dataset's grid, that file). The PDF of each feature class
#: (``anodemap pdf SCAN --regions labels_diffraction.hspy`` of the region's correlate).
BY_FEATURE = {"pdf": ("diffraction", "correlate", "labels_diffraction.hspy")}


def _run_by_feature(
    study: Study,
    state: str,
    region: Region,
    ds: Any,
    name: str,
    analyses: dict[str, dict[str, Any]],
    out: Path,
    context: Context,
    force: bool,
    chains: dict[tuple[str, str], dict[str, dict[str, Any]]],
    figures: _SharedFigures | None,
) -> dict[str, Any]:
    """The analysis ``name`` of the region's dataset ``ds`` by feature class, into
    ``OUT/STATE/regions/REGION/NAME/``: given what the dataset's own gets (the results
    it requires, its links, its truth) and, as its ``regions``, the classes' file of
    the region's analysis that writes them (:data:`BY_FEATURE`; its key is part of its
    own: a changed correlate result reruns it). Not run, and said, when that analysis
    failed; ``analyses``: the region's analyses run so far."""
    _, joiner, labels = BY_FEATURE[name]
    folder = out / state / REGIONS_FOLDER / region.name / name
    source = analyses[joiner]
    if source.get("status") not in ("done", "skipped"):
        context.log(f"{folder.relative_to(out).as_posix()}: not run: the {joiner} failed")
        return {
            "folder": folder.relative_to(out).as_posix(),
            "status": "failed",
            "error": f"not run: it needs the {joiner} result of region {region.name!r}, which "
            f"failed: {source.get('error')}",
            "seconds": 0.0,
            "key": None,
            "truth_comparison": None,
        }
    joined, left_out = _links(state, ds, name, chains)
    # the classes are the region's: a regions file of the dataset's own is not read
    joined["regions"] = (region.name, {**source, "folder": f"{source['folder']}/{labels}"})
    own = dataclasses.replace(ds, files={k: v for k, v in ds.files.items() if k != "regions"})
    entry = _run_one(
        study,
        state,
        own,
        name,
        out,
        context,
        force,
        chains[state, ds.name],
        figures,
        joined=joined,
        folder=folder,
    )
    # which dataset it analysed and by which classes (run.json, the report)
    entry["dataset"] = ds.name
    entry["regions"] = joined["regions"][1]["folder"]
    if left_out:
        entry["left_out"] = left_out
    return entry


def _joined(
    state: str,
    region: Region,
    by_name: dict[str, Any],
    chains: dict[tuple[str, str], dict[str, dict[str, Any]]],
    name: str,
) -> tuple[dict[str, tuple[str, dict[str, Any]]], dict[str, str]]:
    """The results of the region's datasets that the analysis ``name`` reads: result name
    -> (dataset, its run.json entry) for those done or kept; and why each other one that
    the region has is left out."""
    from anodemap.analysis import get_analysis

    analysis = get_analysis(name)
    joined, left_out = {}, {}
    for ds_name in region.datasets.values():
        if ds_name == region.image:
            continue
        for result, entry in chains[state, ds_name].items():
            if result not in analysis.files or result in analysis.requires:
                continue
            if entry.get("status") in ("done", "skipped"):
                joined[result] = (ds_name, entry)
            else:
                left_out[result] = (
                    f"the {result} result of dataset {ds_name!r} failed: {entry.get('error')}"
                )
    return joined, left_out


def _li_per_si(capacity: float | None) -> float | None:
    if capacity is None:
        return None
    from anodemap.electrochem import li_per_host

    return float(li_per_host(capacity))


def _run_one(
    study: Study,
    state: str,
    ds: Any,
    name: str,
    out: Path,
    context: Context,
    force: bool,
    earlier: dict[str, dict[str, Any]] | None = None,
    figures: _SharedFigures | None = None,
    *,
    joined: dict[str, tuple[str, dict[str, Any]]] | None = None,
    folder: Path | None = None,
) -> dict[str, Any]:
    """Run (or keep) one analysis of one dataset; its entry in ``run.json``.

    ``earlier``: the entries of the analyses of the dataset run before it; the folder of
    each that it requires is given to it (``files[NAME]``), and that result's key is part
    of its own (a changed diffraction result reruns the PDF). ``figures``: the run's
    figure process, given to an analysis that runs. ``joined``: for a region's analysis,
    the results of the region's other datasets it reads (result name -> (dataset, its
    entry)), given as ``files`` and keyed as required results are; ``folder``: where
    it writes (default ``OUT/STATE/DATASET/ANALYSIS``).
    """
    from anodemap import __version__
    from anodemap.io.results import write_json

    analysis = get_analysis(name)
    folder = folder if folder is not None else out / state / ds.name / name
    rel = folder.relative_to(out).as_posix()
    # the dataset's truth is its own analysis's, a region's analysis's (its image's truth:
    # the survey's maps) and that of an analysis of its result (a PDF: the simulated
    # diffraction's amorphous models)
    truth = (
        ds.truth if name == ds.kind or joined is not None or ds.kind in analysis.requires else None
    )
    # the study's calibration for every dataset, unless the dataset names its own files
    given = {"calibration": study.calibration, **ds.files}
    files = {k: v for k, v in given.items() if k in analysis.files and v is not None}
    required = {r: (earlier or {}).get(r) or {} for r in analysis.requires}
    entry: dict[str, Any] = {
        "folder": rel,
        "status": "failed",
        "error": None,
        "seconds": 0.0,
        "key": None,
        "truth_comparison": None,
    }
    label = rel
    t0 = time.perf_counter()
    try:
        for r, e in required.items():
            if e.get("status") not in ("done", "skipped"):
                raise AnodemapError(
                    f"not run: it needs the {r} result of this dataset, which failed or is missing"
                )
        parameters = analysis.parameters(ds.parameters.get(name, {}))
        key = content_key(
            {
                "analysis": name,
                "analysis_version": analysis.version,
                "anodemap_version": __version__,
                "source": source_hash(),
                "input": _identity(ds.path),
                "signal": ds.signal,
                "parameters": dataclasses.asdict(parameters),
                "files": {k: _identity(Path(v)) for k, v in files.items() if v is not None},
                "truth": _identity(truth),
                "figures": context.figures,
                "requires": {r: e.get("key") for r, e in required.items()},
                # (absent for a dataset's own analyses: their keys stay as they were)
                **(
                    {"joined": {r: [d, e.get("key")] for r, (d, e) in joined.items()}}
                    if joined is not None
                    else {}
                ),
            }
        )
        entry["key"] = key
        if not force and _up_to_date(folder, key):
            entry["status"] = "skipped"
            context.log(f"{label}: up to date, kept ({rel})")
        else:
            context.log(f"{label}: {analysis.title}")
            (folder / KEY_NAME).unlink(missing_ok=True)
            if figures is not None:
                context = figures.context(context)
            analysis.run(
                ds.path,
                folder,
                parameters,
                dataclasses.replace(context, log=_prefixed(context.log, label)),
                files={
                    **files,
                    **{r: out / e["folder"] for r, e in required.items()},
                    **{r: out / e["folder"] for r, (_, e) in (joined or {}).items()},
                },
                signal=ds.signal,
                truth=truth,
            )
            write_json({"key": key, "written": _stamp()}, folder / KEY_NAME)
            entry["status"] = "done"
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # one dataset's failure is reported; the others go on
        entry["error"] = _one_line(err)
        context.log(f"{label}: FAILED: {entry['error']}")
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    if (folder / "truth_comparison.json").exists() and entry["status"] != "failed":
        entry["truth_comparison"] = f"{rel}/truth_comparison.json"
    return entry


def _up_to_date(folder: Path, key: str) -> bool:
    """Whether ``folder`` holds a complete result written with ``key``."""
    try:
        written = json.loads((folder / KEY_NAME).read_text())
    except (OSError, ValueError):
        return False
    return written.get("key") == key and (folder / "summary.json").is_file()


def _prefixed(log: Callable[[str], None], label: str) -> Callable[[str], None]:
    def say(message: str) -> None:
        log(f"{label}: {message}")

    return say
