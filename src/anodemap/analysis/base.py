"""The analysis contract: what every analysis of anodemap declares and how it is run.

An :class:`Analysis` declares its name, the kind of data it reads, the parameters it
takes (one dataclass), the files besides its input that it may read (a calibration, a
region mask) and the analyses of the same dataset whose results it requires. It is
run through one :class:`Context` (dask client, progress, log, figures) by
:meth:`Analysis.run`, which holds the output folder (:mod:`anodemap.io.outdir`),
reads the input, analyses, writes the maps, figures and ``summary.json`` and, where a
simulated truth is given, compares the maps with it. The command line (``anodemap
eels``, ``anodemap diffraction``) and a study (``anodemap run``) both go through it.

Examples
--------
>>> from anodemap.analysis import get_analysis
>>> a = get_analysis("eels")
>>> a.name, a.data_kind
('eels', 'low-loss EELS spectrum image')
>>> a.parameters({"rl_iterations": 10}).rl_iterations
10
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import threading
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from anodemap.errors import AnodemapInputError

__all__ = ["Analysis", "Context", "Outcome"]


def _stderr_log(message: str) -> None:
    print(f"[anodemap] {message}", file=sys.stderr, flush=True)


@dataclass
class Context:
    """How an analysis runs: where it computes, what it says and whether it draws.

    Attributes
    ----------
    client : distributed.Client, optional
        A dask.distributed client; None computes on this machine, or on ``scheduler``.
    scheduler : str, optional
        The address of a dask scheduler (``--scheduler``) to connect to once the output
        folder is held (:meth:`Analysis.run`); its workers are checked able to read the
        input first.
    progress : bool
        Progress bars on stderr.
    figures : bool
        Draw the figures (PNG) beside the maps.
    log : callable
        Takes one line for the user (the command line prints it on stderr).
    command_line : str, optional
        Recorded in ``summary.json`` as the command that made the folder.
    figure_worker : anodemap.plotting.FigureWorker, optional
        The helper process that draws figures, shared by the analyses of a study run
        (:func:`anodemap.study.run_study`); None: each :meth:`Analysis.run` starts its
        own.
    """

    client: Any = None
    scheduler: str | None = None
    progress: bool = True
    figures: bool = True
    log: Callable[[str], None] = _stderr_log
    command_line: str | None = None
    figure_worker: Any = None


@dataclass
class Outcome:
    """What :meth:`Analysis.run` returns.

    Attributes
    ----------
    result : object
        The analysis's result object (maps, axes, summary).
    summary : dict
        The content of ``summary.json``.
    outdir : Path
        The folder written.
    truth : dict or None
        The comparison with the simulated truth (``truth_comparison.json``), if any.
    """

    result: Any
    summary: dict[str, Any]
    outdir: Path
    truth: dict[str, Any] | None = None


class Analysis:
    """Base of every analysis. Subclasses set the class attributes and implement
    :meth:`load`, :meth:`analyse`, :meth:`write` and, optionally, :meth:`describe`,
    :meth:`compare_with_truth`.

    Attributes
    ----------
    name : str
        Its command (``anodemap NAME``) and its folder name in a study run.
    title : str
        One line for help texts.
    data_kind : str
        The kind of data it reads, in a microscopist's words.
    Parameters : type
        The dataclass of its parameters (defaults in one place: its fields).
    files : tuple of str
        Names of the files besides the input it may read (e.g. ``calibration``).
    reads : str
        The kind of dataset it reads, named by the analysis that defines the kind (a
        study runs every analysis that reads a dataset's kind; default: its own name).
    requires : tuple of str
        Names of analyses of the same dataset whose results it needs. The output folder
        of each is given to :meth:`run` in ``files`` under the required analysis's name
        (a study: its folder beside this one; the command line: the option that
        :attr:`file_options` declares for it), checked to hold a complete result of the
        same input, and reaches :meth:`analyse` in ``files``.
    version : str
        Changed when the analysis's results change on purpose (part of a study's
        content key, with the package's version and source).
    input_help : str
        What the command's INPUT is (``anodemap NAME INPUT -o OUTDIR``).
    file_options : dict of str to (str, str, str)
        For each of :attr:`files`, its command-line option: (flag, metavar, help).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    data_kind: ClassVar[str] = ""
    Parameters: ClassVar[type] = object
    files: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[str] = "1"
    input_help: ClassVar[str] = "the input file"
    file_options: ClassVar[dict[str, tuple[str, str, str]]] = {}

    # -- what each analysis implements
    def load(self, path: Path, *, signal: int | str | None = None) -> Any:
        """The dataset of ``path`` that this analysis reads (lazy)."""
        raise NotImplementedError

    def accepts(self, dataset: Any) -> bool:
        """Whether ``dataset`` is of the kind this analysis reads."""
        raise NotImplementedError

    def analyse(
        self, dataset: Any, parameters: Any, context: Context, files: Mapping[str, Any]
    ) -> Any:
        """The result of the analysis of ``dataset``."""
        raise NotImplementedError

    def write(
        self, result: Any, outdir: Path, context: Context, dataset: Any, worker: Any
    ) -> dict[str, Any]:
        """Write maps, figures and ``summary.json`` into ``outdir``; return the summary."""
        raise NotImplementedError

    def output_names(self) -> list[str]:
        """Every name :meth:`write` may write in its folder."""
        raise NotImplementedError

    def describe(self, summary: Mapping[str, Any], context: Context) -> None:
        """Say the main numbers of ``summary`` to the user (``context.log``)."""

    def compare_with_truth(
        self, result: Any, truth_dir: Path, outdir: Path, context: Context
    ) -> dict[str, Any]:
        """Compare the maps with a simulated truth; write ``truth_comparison.json``."""
        raise AnodemapInputError(f"anodemap {self.name} has no comparison with a truth")

    def add_dataset_options(self, parser: Any) -> None:
        """Add the command's options that change how the input is read (none here)."""

    def prepare_from_args(self, args: Any) -> Callable[[Any], Any] | None:
        """What those options do to the dataset read (:meth:`run`'s ``prepare``)."""
        return None

    # -- shared
    def parameters(self, values: Mapping[str, Any] | None = None, *, where: str = "") -> Any:
        """The parameters dataclass from ``values`` (a study file's table), checked.

        Unknown names are refused with the valid ones listed; lists become tuples where
        the field is a tuple.

        Parameters
        ----------
        values : mapping, optional
            Field names to values; missing fields keep their defaults.
        where : str
            Where the values come from, for messages (e.g. ``"study.toml, state
            pristine, dataset eels"``).
        """
        values = dict(values or {})
        fields = {f.name: f for f in dataclasses.fields(self.Parameters)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise AnodemapInputError(
                f"{where + ': ' if where else ''}unknown {self.name} parameter"
                f"{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; the parameters of "
                f"{self.name} are {', '.join(sorted(fields))}"
            )
        hints = typing.get_type_hints(self.Parameters)
        for key, value in values.items():
            if isinstance(value, list) and "tuple" in str(hints.get(key, "")):
                values[key] = tuple(value)
        try:
            return self.Parameters(**values)
        except (TypeError, ValueError) as err:
            raise AnodemapInputError(
                f"{where + ': ' if where else ''}{self.name} parameters: {err}"
            ) from err

    def run(
        self,
        path: str | Path,
        outdir: str | Path,
        parameters: Any = None,
        context: Context | None = None,
        *,
        files: Mapping[str, Any] | None = None,
        signal: int | str | None = None,
        truth: str | Path | None = None,
        dataset: Any = None,
        prepare: Callable[[Any], Any] | None = None,
    ) -> Outcome:
        """Analyse the file ``path`` into the folder ``outdir``, held as one run's.

        Parameters
        ----------
        path : path-like
            The input file.
        outdir : path-like
            The output folder (made if needed; refused when another run holds it).
        parameters : dataclass, optional
            Default: the defaults of :attr:`Parameters`.
        context : Context, optional
        files : mapping, optional
            The files of :attr:`files` given (None or absent: not given).
        signal : int or str, optional
            Which signal of a file with several (``--signal``).
        truth : path-like, optional
            A folder of simulated truth maps: the maps are compared with it.
        dataset : Dataset, optional
            The dataset already read from ``path`` (then not read again).
        prepare : callable, optional
            Applied to the dataset read, before the analysis (e.g. the command line's
            ``--scan-step`` sets the scan axes).

        Returns
        -------
        Outcome
        """
        from anodemap.io.outdir import output_folder
        from anodemap.plotting import FigureWorker

        context = context or Context()
        parameters = parameters if parameters is not None else self.Parameters()
        files = {k: v for k, v in (files or {}).items() if v is not None}
        path, outdir = Path(path), Path(outdir)
        required = {
            name: required_result(self, name, files.get(name), path) for name in self.requires
        }
        comparison = ["truth_comparison.json", "truth_comparison.png"] if truth else []
        with output_folder(
            outdir,
            inputs=[path, *files.values()],
            writes=[*self.output_names(), *comparison],
            command_line=context.command_line,
            log=context.log,
        ) as folder:
            for name, made_from in required.items():
                same_input(self, name, files[name], made_from, folder.provenance()["input"])
            # an earlier comparison must not sit beside this run's maps until rewritten
            folder.discard(comparison)
            # started first, the figure process imports matplotlib while this one reads
            # and computes; a study run's (context.figure_worker) is kept for the next
            shared = context.figure_worker if context.figures else None
            with (
                contextlib.nullcontext(shared)
                if shared is not None
                else FigureWorker(processes=1 if context.figures else 0)
            ) as worker:
                if dataset is None:
                    context.log(f"reading {path}")
                    dataset = self.load(path, signal=signal)
                if prepare is not None:
                    dataset = prepare(dataset)
                with connected(context, [path]) as ctx:
                    result = self.analyse(dataset, parameters, ctx, files)
                with _DRAWING:
                    summary = self.write(result, outdir, context, dataset, worker)
            self.describe(summary, context)
            compared = None
            if truth:
                with _DRAWING:
                    compared = self.compare_with_truth(result, Path(truth), outdir, context)
            context.log(f"results in {outdir}")
        return Outcome(result, summary, outdir, compared)


# Writing maps and drawing figures, one analysis at a time in this process: analyses of a
# study may run in threads at once on a cluster (anodemap.study.run), and matplotlib is
# not thread-safe; their computations run at once, their writing in turn.
_DRAWING = threading.Lock()


@contextlib.contextmanager
def connected(context: Context, inputs: Sequence[Path]) -> Iterator[Context]:
    """``context`` with a client of its ``scheduler`` (connected and checked able to read
    ``inputs``, closed after), or ``context`` as it is when it has a client or no
    scheduler."""
    if context.client is not None or not context.scheduler:
        yield context
        return
    from anodemap._compute import connect_cluster

    context.log(f"connecting to the dask scheduler at {context.scheduler}")
    client = connect_cluster(context.scheduler, reads=inputs)
    try:
        yield dataclasses.replace(context, client=client)
    finally:
        client.close()


def _fix(analysis: Analysis, name: str, path: Path) -> str:
    flag = analysis.file_options.get(name, (f"--{name}",))[0]
    return f"run anodemap {name} {path} -o DIR first, then give {flag} DIR"


def required_result(
    analysis: Analysis, name: str, folder: Any, path: Path
) -> dict[str, Any] | None:
    """Check that ``folder`` holds a complete result of the analysis ``name`` (its
    ``summary.json``, written last); return the input record it was made from.

    Raises
    ------
    AnodemapInputError
        No folder given, or no readable ``summary.json`` in it: one line that names the
        option and says what to run.
    """
    flag = analysis.file_options.get(name, (f"--{name}",))[0]
    if folder is None:
        raise AnodemapInputError(
            f"anodemap {analysis.name} needs the result of anodemap {name} of the same "
            f"input ({flag} DIR, not given); {_fix(analysis, name, path)}"
        )
    summary = Path(folder) / "summary.json"
    try:
        record = json.loads(summary.read_text(encoding="utf-8")).get("input")
    except (OSError, ValueError, AttributeError):
        raise AnodemapInputError(
            f"{flag} {folder}: no readable summary.json there, so no complete result of "
            f"anodemap {name}; {_fix(analysis, name, path)}"
        ) from None
    return record if isinstance(record, dict) else None


def same_input(
    analysis: Analysis,
    name: str,
    folder: Any,
    made_from: dict[str, Any] | None,
    record: dict[str, Any] | None,
) -> None:
    """Refuse a required result made from another input than ``record`` (compared by
    the hash both records hold; a result made from Python records none: not checked)."""
    if not made_from or not record:
        return
    for key in ("sha256", "sha256_head_tail"):
        if made_from.get(key) and record.get(key):
            if made_from[key] != record[key]:
                flag = analysis.file_options.get(name, (f"--{name}",))[0]
                raise AnodemapInputError(
                    f"{flag} {folder}: the anodemap {name} result of "
                    f"{made_from.get('path')}, not of {record.get('path')} (their contents "
                    f"differ); {_fix(analysis, name, Path(str(record.get('path'))))}"
                )
            return


def field_names(parameters: type) -> Sequence[str]:
    """The field names of a parameters dataclass.

    Examples
    --------
    >>> from anodemap.eels.pipeline import EELSParameters
    >>> "rl_iterations" in field_names(EELSParameters)
    True
    """
    return [f.name for f in dataclasses.fields(parameters)]
