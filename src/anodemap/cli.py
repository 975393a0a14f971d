"""Command line: each subcommand is one library call plus writing its outputs.

Examples
--------
$ anodemap simulate eels -o sim/
$ anodemap eels sim/eels.hspy -o results/ --deconvolve rl
$ anodemap demo -o demo_out/
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anodemap import __version__
from anodemap.analysis import analysis_names
from anodemap.analysis.options import add_options, number
from anodemap.errors import AnodemapError, AnodemapInputError

_LOGGER = logging.getLogger("anodemap")


def _log(msg: str) -> None:
    """One line for the user (the ``anodemap`` logger; on stderr from the command line)."""
    _LOGGER.info(msg)


class _ConsoleHandler(logging.Handler):
    """The ``anodemap`` logger's lines on the stderr of the moment, as ``[anodemap] ...``
    (looked up at each line: a test or a caller may have replaced sys.stderr)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"[anodemap] {record.getMessage()}", file=sys.stderr, flush=True)
        except Exception:  # a broken pipe must not end the run
            self.handleError(record)


def _console(args: argparse.Namespace) -> None:
    """Send the ``anodemap`` logger to stderr at the level -q/-v ask for (once)."""
    if not any(isinstance(h, _ConsoleHandler) for h in _LOGGER.handlers):
        _LOGGER.addHandler(_ConsoleHandler())
    if getattr(args, "quiet", False):
        _LOGGER.setLevel(logging.WARNING)
    elif getattr(args, "verbose", False):
        _LOGGER.setLevel(logging.DEBUG)
    else:
        _LOGGER.setLevel(logging.INFO)


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars unless --no-progress or --quiet (which says only warnings/errors)."""
    return not (args.no_progress or getattr(args, "quiet", False))


# ------------------------------------------------------------------ simulate
def _simulate_eels(outdir: Path, shape: tuple[int, int], seed: int, pixel_size: float) -> Path:
    """Simulate a spectrum image and write it with its truth maps; return the .hspy path."""
    from anodemap.eels.pipeline import eels_dataset
    from anodemap.io import Axis, save
    from anodemap.io.results import map_dataset, write_json
    from anodemap.synth import make_phantom, simulate_eels

    outdir.mkdir(parents=True, exist_ok=True)
    _log(f"simulating a {shape[0]} x {shape[1]} electrode (seed {seed})")
    phantom = make_phantom(shape, pixel_size_nm=pixel_size, seed=seed)
    sim = simulate_eels(phantom, seed=seed)
    ds = eels_dataset(
        sim.spectra,
        sim.energy,
        pixel_size_nm=pixel_size,
        title="Simulated Li_xSi electrode, low-loss EELS",
    )
    ds.set_meta("General.source", "anodemap.synth (simulated, ground truth beside it)")
    path = save(ds, outdir / "eels.hspy")
    truth_dir = outdir / "truth"
    truth_dir.mkdir(exist_ok=True)
    nav = [Axis("y", shape[0], pixel_size, 0.0, "nm"), Axis("x", shape[1], pixel_size, 0.0, "nm")]
    scalars: dict[str, Any] = {}
    for key, value in sim.truth.items():
        if hasattr(value, "shape") and tuple(value.shape) == shape:
            save(map_dataset(value, nav, key, ""), truth_dir / f"{key}.hspy")
        else:
            scalars[key] = value
    scalars["label_names"] = {str(k): v for k, v in phantom.label_names.items()}
    write_json(scalars, truth_dir / "truth.json")
    _log(f"wrote {path} and truth maps in {truth_dir}")
    return path


def _simulate_diffraction(
    outdir: Path,
    shape: tuple[int, int],
    seed: int,
    pixel_size: float,
    pattern_size: int = 64,
    precession: float = 0.4,
    *,
    zspy: bool = True,
    tvips: bool = False,
) -> dict[str, Any]:
    """Simulate a 4D (precession) diffraction dataset with its truth, write it.

    Writes ``sped.zspy`` (with ``zspy``) and, with ``tvips``, the same patterns as a TVIPS
    recording ``sped_000.tvips``, ... (:func:`anodemap.synth.tvips.record_scan`), and the
    truth maps in
    ``truth/``. Returns the paths written (``zspy``, ``tvips``: the first part, or None),
    ``truth_dir``, the pattern calibration ``scale`` (1/Å per pixel) and the
    recording's truth ``recording`` (a dict, or None).
    """
    import numpy as np

    from anodemap.io import Axis, save
    from anodemap.io.results import map_dataset, write_json
    from anodemap.synth import make_phantom
    from anodemap.synth.diffraction import (
        simulate_diffraction,
        to_dataset,
    )
    from anodemap.synth.tvips import record_scan

    outdir.mkdir(parents=True, exist_ok=True)
    _log(f"simulating {shape[0]} x {shape[1]} diffraction patterns (seed {seed})")
    phantom = make_phantom(shape, pixel_size_nm=pixel_size, seed=seed)
    sim = simulate_diffraction(
        phantom,
        pattern_shape=(pattern_size, pattern_size),
        precession_angle_deg=precession,
        seed=seed,
    )
    ds = to_dataset(sim)
    scale = float(ds.axes[2].scale)
    written: dict[str, Any] = {"zspy": None, "tvips": None, "scale": scale, "recording": None}
    if zspy:
        written["zspy"] = save(ds, outdir / "sped.zspy")
    from anodemap.synth.truth import write_diffraction_truth

    truth_dir = write_diffraction_truth(sim, outdir / "truth", pixel_size)
    written["truth_dir"] = truth_dir
    nav = [Axis("y", shape[0], pixel_size, 0.0, "nm"), Axis("x", shape[1], pixel_size, 0.0, "nm")]
    if tvips:
        rec = record_scan(np.asarray(ds.data), outdir / "sped", beam_energy_kev=sim.beam_energy_kev)
        save(
            map_dataset(rec.frame_of_pixel, nav, "Stream index of the frame at each position", ""),
            truth_dir / "frame_of_pixel.hspy",
        )
        truth = rec.as_dict()
        truth["reciprocal_pixel_size_per_angstrom"] = scale
        truth["scan_step_nm"] = float(pixel_size)
        truth["note"] = (
            "the header's pixelsize field is 0 (unknown): an integer in 1/nm cannot hold "
            "the calibration; pass it to anodemap stream as --reciprocal-pixel-size"
        )
        write_json(truth, truth_dir / "recording.json")
        written["tvips"], written["recording"] = rec.paths[0], truth
        _log(
            f"wrote the patterns as a TVIPS recording {rec.paths[0]} ({len(rec.paths)} parts, "
            f"{rec.n_frames} frames: {rec.first_frame} before the scan, "
            f"{rec.n_frames - 1 - rec.last_frame} after, serpentine lines with a "
            f"{rec.hysteresis}-frame hysteresis, {len(rec.duplicate_frames)} duplicated "
            f"frame(s), {len(rec.dropped)} dropped position(s)); convert it with: anodemap "
            f"stream {rec.paths[0]} -o scan.zspy --reciprocal-pixel-size {scale!r} "
            f"--scan-step {pixel_size:g}"
        )
    _log(f"wrote {written['zspy'] or written['tvips']} and truth maps in {truth_dir}")
    return written


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.modality == "study":
        from anodemap.synth.study import write_study

        study = write_study(
            Path(args.output),
            tuple(args.shape),
            args.seed,
            args.pixel_size,
            log=_log,
            pattern_shape=(args.pattern_size, args.pattern_size),
        )
        _log(f"wrote the study file {study}; run it with: anodemap run {study} -o OUT")
    elif args.modality == "region":
        from anodemap.synth.region import write_region_study

        if list(args.shape) != [64, 64] or args.pixel_size != 5.0:
            raise AnodemapInputError(
                "--shape/--scan-step: anodemap simulate region has views of its own (a 300 nm "
                "survey of 1.5 nm pixels, EELS of 3 nm, EDX of 4 nm: docs/registration.md); "
                "leave them out (--seed and --diffraction choose the rest)"
            )
        write_region_study(
            Path(args.output), seed=args.seed, diffraction=args.diffraction, log=_log
        )
    elif args.modality == "edx":
        from anodemap.synth.edx import write_edx_simulation

        write_edx_simulation(
            Path(args.output), tuple(args.shape), args.seed, args.pixel_size, log=_log
        )
    elif args.modality == "diffraction":
        _simulate_diffraction(
            Path(args.output),
            tuple(args.shape),
            args.seed,
            args.pixel_size,
            args.pattern_size,
            args.precession,
            tvips=args.tvips,
        )
    elif args.modality == "haadf":
        from anodemap.synth.haadf import write_haadf

        write_haadf(Path(args.output), tuple(args.shape), args.seed, args.pixel_size, log=_log)
    else:
        _simulate_eels(Path(args.output), tuple(args.shape), args.seed, args.pixel_size)
    return 0


# ------------------------------------------------------------------ analyses
def _context(args: argparse.Namespace) -> Any:
    """The analyses' context from the shared options (--scheduler, --no-progress, ...)."""
    from anodemap.analysis import Context
    from anodemap.io.outdir import command_line

    return Context(
        scheduler=getattr(args, "scheduler", None),
        progress=_progress(args),
        figures=not args.no_figures,
        log=_log,
        command_line=command_line(args),
    )


def cmd_analysis(args: argparse.Namespace) -> int:
    """``anodemap NAME INPUT -o OUTDIR``: the analysis NAME (anodemap.analysis) of INPUT."""
    from anodemap.analysis import get_analysis
    from anodemap.analysis.options import parameters_from_args

    analysis = get_analysis(args.analysis)
    analysis.run(
        args.input,
        args.output,
        parameters_from_args(analysis.Parameters, args),
        _context(args),
        files={name: getattr(args, name, None) for name in analysis.files},
        signal=args.signal,
        prepare=analysis.prepare_from_args(args),
    )
    return 0


# -------------------------------------------------------------------- stream
def cmd_stream(args: argparse.Namespace) -> int:
    from anodemap.diffraction.stream import stream_to_file
    from anodemap.io.outdir import command_line, output_files
    from anodemap.io.results import write_json

    # the outputs are checked and held before the recording is read (anodemap.io.outdir)
    held = output_files(args.output, inputs=[args.input], command_line=command_line(args), log=_log)
    with held as outs:
        _log(f"reading the recording {args.input}")
        plan = stream_to_file(
            args.input,
            outs,
            tuple(args.scan_shape) if args.scan_shape else None,
            first_frame=args.first_frame,
            last_frame=args.last_frame,
            serpentine=args.serpentine,
            hysteresis=args.hysteresis,
            use_headers=not args.no_headers,
            scan_step=args.scan_step,
            reciprocal_pixel_size=args.reciprocal_pixel_size,
            beam_energy=args.beam_energy,
            camera_length=args.camera_length,
            intensity_range=tuple(args.intensity_range) if args.intensity_range else None,
            allow_truncated=args.allow_truncated,
            progress=_progress(args),
            single_pass=not args.two_pass,
        )
        if not _progress(args):  # with progress, the library has said it before writing
            _log(plan.summary())
        sp = plan.scores.get("single_pass")
        if sp:
            _log(
                f"{sp['written_while_reading']} of {sp['blocks']} blocks of rows written while "
                f"reading, {sp['written_after']} after"
            )
        for out in outs:
            report = write_json(plan.as_dict(), out.with_name(out.name + ".scan.json"))
            _log(f"wrote {out} and the scan report {report}")
        return 0


# ----------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    """``anodemap run STUDY.toml -o OUT``: exit code 1 when an analysis failed."""
    from anodemap.study import read_study, run_study

    study = read_study(args.study)  # every check before any work
    n = sum(len(s.datasets) for s in study.states)
    _log(f"study {study.name!r}: {len(study.states)} states, {n} datasets ({args.study})")
    with _warmup(args, [a for s in study.states for d in s.datasets for a in d.analyses]) as warm:
        warm.offer_study(study)
        run = run_study(study, Path(args.output), _context(args), force=args.force, report=_report)
    return 1 if run["counts"]["failed"] else 0


def _warmup(args: argparse.Namespace, analyses: Sequence[str]) -> Any:
    """Helper processes that compile the kernels of ``analyses`` while the run starts,
    on a first run (:mod:`anodemap._warmup`); a context manager that stops them."""
    from anodemap._warmup import start

    return start(analyses, scheduler=getattr(args, "scheduler", None))


def _report(out: Path) -> None:
    """Build the report of a run folder (``OUT/report.html``, ``OUT/report.json``)."""
    from anodemap.report import build_report

    _, html = build_report(out)
    _log(f"report: {html}")


# ---------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    """``anodemap demo``: simulate a four-state study with its truth, run it, report it.

    The study (``OUT/study/``: each state's EELS and diffraction datasets, their truth
    and ``study.toml``) is made by :func:`anodemap.synth.study.write_study`, then run as
    ``anodemap run OUT/study/study.toml -o OUT`` would (``OUT/run.json``,
    ``OUT/STATE/DATASET/ANALYSIS/``, ``OUT/report.html``). Run again into the same
    folder, the simulation is made again (the same seed gives the same files) and the
    analyses whose inputs did not change are kept.
    """
    from anodemap.io.outdir import command_line, output_folder
    from anodemap.study import read_study, run_study

    out = Path(args.output)
    with (
        output_folder(out, command_line=command_line(args), log=_log),
        # on a first run the kernels compile in helpers while the study is simulated
        _warmup(args, ("eels", "diffraction")) as warm,
    ):
        study_file = _simulated_study(out / "study", args, warm.offer)
        study = read_study(study_file)
        warm.offer_study(study)  # a study kept from an earlier demo
        run = run_study(study, out, _context(args), report=_report)
    if (out / "report.html").exists():
        _log(f"open the report: {out / 'report.html'}")
    return 1 if run["counts"]["failed"] else 0


def _simulated_study(folder: Path, args: argparse.Namespace, on_dataset: Any = None) -> Path:
    """The demo's simulated study in ``folder``: made, or kept where an earlier demo made
    it with the same settings and the same anodemap (``.anodemap-simulation.json``);
    ``on_dataset(kind, path, parameters)`` is called as each dataset is written."""
    import json

    from anodemap.io.results import write_json
    from anodemap.study.run import content_key, source_hash
    from anodemap.synth.study import write_study

    made = {"shape": list(args.shape), "seed": args.seed, "scan_step_nm": args.pixel_size}
    key = content_key({**made, "source": source_hash()})
    stamp = folder / ".anodemap-simulation.json"
    study_file = folder / "study.toml"
    try:
        if json.loads(stamp.read_text())["key"] == key and study_file.is_file():
            _log(f"the simulated study in {folder} is up to date (same settings), kept")
            return study_file
    except (OSError, ValueError, KeyError, TypeError):
        pass
    stamp.unlink(missing_ok=True)
    study_file = write_study(
        folder, tuple(args.shape), args.seed, args.pixel_size, log=_log, on_dataset=on_dataset
    )
    write_json({"key": key, **made}, stamp)
    return study_file


# -------------------------------------------------------------------- parser
# the ranges of the command line's numbers (what a value outside would do: a negative
# count or an empty scan cannot run; a zero beam energy or length has no wavelength or
# calibration; a zero step would never end)
_COUNT = number(int, least=1)
_INDEX = number(int, least=0)
_NON_NEGATIVE = number(least=0)
_KEV = number(above=0, unit=" keV")
_MM = number(above=0, unit=" mm")
_NM = number(above=0, unit=" nm")
_PER_A = number(above=0, unit=" 1/Å per pixel")
_DEG = number(least=0, unit=" degrees")
# patterns smaller than this cannot hold a direct beam and rings (anodemap.io.kinds)
_PATTERN_PX = number(int, least=16, unit=" pixels")
# the simulated electrode's phantom needs this many pixels a side (anodemap.synth.phantom)
_PHANTOM_PX = number(int, least=8, unit=" x 8 pixels")


def _add_analysis_command(sub: Any, name: str) -> None:
    """The subcommand of the analysis ``name``, built from what it declares: its input,
    its parameters' options (anodemap.analysis.options), its files and dataset options,
    and the options every analysing command has."""
    from anodemap.analysis import get_analysis

    a = get_analysis(name)
    p = sub.add_parser(name, help=a.title, description=f"{a.title} ({a.data_kind}).")
    p.add_argument("input", help=a.input_help)
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    _add_signal_option(p)
    add_options(p, a.Parameters)
    for dest, (flag, metavar, text) in a.file_options.items():
        p.add_argument(flag, dest=dest, metavar=metavar, help=text)
    a.add_dataset_options(p)
    _add_shared_options(p)
    p.set_defaults(func=cmd_analysis, analysis=name)


def _add_shared_options(p: argparse.ArgumentParser, *, figures: bool = True) -> None:
    """The options every analysing command has, defined once."""
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask.distributed scheduler address, e.g. tcp://host:8786",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    if figures:
        p.add_argument("--no-figures", action="store_true", help="do not write PNG figures")
    _add_talk_options(p)


def _add_talk_options(p: argparse.ArgumentParser) -> None:
    """-q/--quiet and -v/--verbose: every command has them."""
    talk = p.add_mutually_exclusive_group()
    talk.add_argument(
        "-q", "--quiet", action="store_true", help="say nothing but warnings and errors"
    )
    talk.add_argument("-v", "--verbose", action="store_true", help="say more (debug messages)")


def _add_simulation_options(p: argparse.ArgumentParser) -> None:
    """Output, size, seed and scan step of a simulation (simulate, demo)."""
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--shape", nargs=2, type=_PHANTOM_PX, default=[64, 64], metavar=("NY", "NX"))
    p.add_argument("--seed", type=_INDEX, default=0)
    p.add_argument(
        "--scan-step",
        dest="pixel_size",
        type=_NM,
        default=5.0,
        metavar="NM",
        help="scan step, in nm (default 5)",
    )
    # the older name of --scan-step: accepted, not advertised
    p.add_argument(
        "--pixel-size",
        dest="pixel_size",
        type=_NM,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


def _add_signal_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--signal",
        metavar="N|TITLE",
        help="which signal of a file that holds several (e.g. a .bcf's HAADF and EDX): its "
        "number (0, 1, ...) or title; by default the one the command can use",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anodemap",
        description="Quantitative cryo-STEM analysis of battery anodes.",
    )
    parser.add_argument("--version", action="version", version=f"anodemap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a simulated electrode dataset with its truth")
    p.add_argument(
        "modality",
        choices=["eels", "diffraction", "edx", "haadf", "study", "region"],
        help="what to simulate: one EELS, diffraction, EDX or HAADF dataset of the simulated "
        "electrode with its truth, a four-state study (EELS and diffraction for each "
        "state, and its study file), or one region seen by a HAADF survey, EELS and EDX "
        "(and SPED with --diffraction) with its truth and study file",
    )
    _add_simulation_options(p)
    p.add_argument(
        "--pattern-size",
        type=_PATTERN_PX,
        default=64,
        help="diffraction: pattern size in pixels (square)",
    )
    p.add_argument(
        "--precession",
        type=_DEG,
        default=0.4,
        help="diffraction: precession semi-angle in degrees (0: nano-beam)",
    )
    p.add_argument(
        "--diffraction",
        action="store_true",
        help="region: also a scanning precession diffraction scan of the region (slower)",
    )
    p.add_argument(
        "--tvips",
        action="store_true",
        help="diffraction: also write the patterns as a TVIPS video stream (sped_000.tvips, "
        "...: frames before and after the scan, serpentine lines with hysteresis, a "
        "duplicated and a dropped frame) for anodemap stream",
    )
    _add_talk_options(p)
    p.set_defaults(func=cmd_simulate)

    for name in analysis_names():
        _add_analysis_command(sub, name)

    p = sub.add_parser("stream", help="TVIPS video stream -> rectangular 4D .zspy/.hspy or .blo")
    p.add_argument("input", help="first part of the recording, NAME_000.tvips")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        action="append",
        metavar="OUT",
        help="OUT.zspy, OUT.hspy or OUT.blo (NanoMegas blockfile, 8 bit); repeat it for "
        "several files from one search of the scan, e.g. -o OUT.zspy -o OUT.blo",
    )
    p.add_argument(
        "--scan-shape",
        nargs=2,
        type=_COUNT,
        metavar=("NY", "NX"),
        help="scan shape (default: found from the frame headers and content)",
    )
    p.add_argument("--first-frame", type=_INDEX, help="index of the first frame of the scan")
    p.add_argument("--last-frame", type=_INDEX, help="index of the last frame of the scan")
    p.add_argument(
        "--serpentine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serpentine scan (default: found from the content)",
    )
    p.add_argument("--hysteresis", type=number(int), help="line-to-line offset in frames")
    p.add_argument(
        "--no-headers",
        action="store_true",
        help="ignore the frame headers' rotator index; use the content only",
    )
    p.add_argument("--scan-step", type=_NM, metavar="NM", help="scan step in nm")
    p.add_argument(
        "--reciprocal-pixel-size",
        type=_PER_A,
        metavar="PER_A",
        help="detector calibration in 1/Å per pixel",
    )
    p.add_argument("--beam-energy", type=_KEV, metavar="KEV", help="beam energy in keV")
    p.add_argument("--camera-length", type=_MM, metavar="MM", help="camera length in mm")
    p.add_argument(
        "--two-pass",
        action="store_true",
        help=".zspy: find the scan, then read again to write (default: write while reading; "
        "the file is the same)",
    )
    p.add_argument(
        "--intensity-range",
        nargs=2,
        type=_NON_NEGATIVE,
        metavar=("LO", "HI"),
        help="counts mapped to 0 and 255 in a .blo (default 0 and the level 0.1 %% of the pixels "
        "outside the direct beam exceed)",
    )
    p.add_argument(
        "--allow-truncated",
        action="store_true",
        help="use the complete frames of a truncated last part",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    _add_talk_options(p)
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser(
        "demo",
        help="simulate a four-state study (pristine, 1st lithiation, 1st and 10th "
        "delithiation) with its truth, run it and write its report",
    )
    _add_simulation_options(p)
    _add_shared_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "run",
        help="every analysis of every dataset of a study (STUDY.toml), then its report",
        description="Run every analysis of every dataset of the states a study file names, "
        "each into OUT/STATE/DATASET/ANALYSIS/, keeping results whose input, parameters and "
        "code are unchanged; then OUT/run.json and the report (docs/study.md).",
    )
    p.add_argument("study", metavar="STUDY.toml", help="the study file")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument(
        "--force", action="store_true", help="run every analysis again, even those up to date"
    )
    _add_shared_options(p)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``anodemap`` command: its exit code (2: a clear error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # argparse has printed the usage error (2) or the help (0)
        return done.code if isinstance(done.code, int) else 2
    _console(args)
    import dask

    from anodemap._compile_notice import compile_notice
    from anodemap._compute import local_scheduler

    try:
        # dask work that names no scheduler (rosettasciio's writers, small reads) runs on
        # local threads: without a named scheduler dask imports dask.distributed (0.2 s)
        # to look for a client; a --scheduler cluster is always passed explicitly
        with (
            dask.config.set(scheduler=local_scheduler()),
            compile_notice(_log),
            warnings.catch_warnings(),
        ):
            # a warning is a line of the log, not a source location and a line of code
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except (AnodemapError, FileNotFoundError) as err:
        print(f"anodemap: error: {_naming_input(str(err), args)}", file=sys.stderr)
        return 2
    except MemoryError as err:
        print(
            f"anodemap: error: out of memory ({err or 'MemoryError'}); close other programs, "
            "run on a machine with more memory, or (anodemap diffraction) read the input "
            "chunk by chunk with --in-memory-gb 0",
            file=sys.stderr,
        )
        return 2
    except Exception as err:  # a case anodemap does not know: one clear line, not a traceback
        import os

        if os.environ.get("ANODEMAP_DEBUG"):
            raise
        print(
            f"anodemap: error: unexpected {type(err).__name__}: {_naming_input(str(err), args)}"
            " (anodemap does not know this case: please report it with the command line; "
            "ANODEMAP_DEBUG=1 shows where it arose)",
            file=sys.stderr,
        )
        return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning as a line of the command's log (``warnings.showwarning``)."""
    kind = "" if category is UserWarning else f" ({category.__name__})"
    _LOGGER.warning(f"WARNING{kind}: {message}")


def _naming_input(message: str, args: argparse.Namespace) -> str:
    """The message with the input file in front, where it does not name it already."""
    source = getattr(args, "input", None)
    if not source or str(source) in message or Path(str(source)).name in message:
        return message
    head = message.split(": ", 1)[0]
    if len(head) < 4096 and Path(head).exists():  # names a file of its own (a part, -o)
        return message
    return f"{source}: {message}"


def run() -> None:
    """The ``anodemap`` console command: :func:`main`, then a quick exit.

    Every result is complete when :func:`main` returns (written under temporary names
    and renamed, summary last; helper processes and cluster clients closed), so the
    interpreter's own teardown (garbage collection and finalisation of numba, dask and
    matplotlib: about 0.5 s) is skipped: the standard streams are flushed and the process
    ends with main's exit code. Where another thread is still running, the normal exit
    is taken.
    """
    code = main()
    exit_now(code)


def exit_now(code: int) -> None:
    """Flush the standard streams and end the process without the interpreter's teardown
    (normal ``sys.exit`` when threads other than daemons are still running)."""
    import os
    import threading

    _close_dask_pools()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if others:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to write
            pass
    os._exit(int(code))


def _close_dask_pools() -> None:
    """Shut down the thread pools of dask's local scheduler (idle once main returns)."""
    threaded = sys.modules.get("dask.threaded")
    if threaded is None:
        return
    pools = [getattr(threaded, "default_pool", None)]
    for per_thread in list(getattr(threaded, "pools", {}).values()):
        pools += list(per_thread.values())
    for pool in pools:
        if pool is not None:
            try:
                pool.shutdown(wait=True)
            except Exception:  # noqa: S110 - a pool that cannot shut down keeps the normal exit
                pass


if __name__ == "__main__":  # pragma: no cover
    run()
