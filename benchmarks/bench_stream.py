"""Benchmark: TVIPS stream -> 4D conversion, against the reading speed and rosettasciio.

One command (not a test):

    python benchmarks/bench_stream.py                       # 128 x 128 scan, 128 x 128 frames
    python benchmarks/bench_stream.py --scan 64 64 --repeat 1   # quick look

It writes a simulated TVIPS recording (``anodemap.synth.write_tvips_recording``: frames
before and after the scan, serpentine lines with hysteresis, several ``_NNN.tvips``
parts) and measures, each in a fresh process, median of ``--repeat`` runs:

1. the reading limit: ``cat`` of all parts to /dev/null, and a plain Python read in
   8 MiB blocks that releases the pages behind it as the conversion does (the faster
   of the two is the limit), the recording's pages dropped from the page cache first
   (``posix_fadvise``; the program's own files stay cached, as on a user's second run),
   else from the cache (said in the output); and the start-up of the command
   (interpreter and imports), which conversions are also given without;
2. ``anodemap stream REC_000.tvips -o OUT.zspy`` (the scan found from headers and
   content; written while reading), the same with ``--two-pass`` (found, then read
   again to write) and ``-o OUT.blo`` (two passes): wall time, peak memory (VmHWM) and
   CPU time (user + system, all threads: how many cores the conversion keeps busy);
3. rosettasciio's TVIPS reader through HyperSpy, as users do it with the scan given by
   hand (``scan_shape``, ``scan_start_frame``, ``winding_scan_axis="x"``, ``hysteresis``),
   lazily, saved as ``.zspy``;

and whether the two hold the same patterns (rows 1.. of the scan: rosettasciio's winding
convention reverses the first line, these recordings the second). Results are printed and written
to ``benchmarks/results/stream.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _pagecache import drop_page_cache

HERE = Path(__file__).resolve().parent

_HWM = (
    "hwm=[l for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
    "print('MAXRSS_KB',hwm.split()[1])"
)


# the `anodemap` command's exit, after main and the memory report
_EXIT = ";from anodemap.cli import exit_now;exit_now(r)"
_PARTS: list[Path] = []  # the recording's files, whose pages each cold run drops


def _run(code: str, args: list[str], cold: bool) -> tuple[float, int, float]:
    """Wall time, peak memory and CPU time (user + system, all threads) of a fresh process."""
    import resource

    if cold:
        drop_page_cache(_PARTS)
    tail = _EXIT if "anodemap.cli" in code else ""
    cmd = [sys.executable, "-c", code + ";" + _HWM + tail, *args]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} ... failed:\n{res.stderr[-3000:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return dt, int(res.stdout.split("MAXRSS_KB")[1].split()[0]) * 1024, cpu


def _median_run(code: str, args: list[str], cold: bool, repeat: int, clean: Path | None):
    """Medians of ``repeat`` runs: wall time, peak memory, CPU time."""
    times, peaks, cpus = [], [], []
    for _ in range(repeat):
        if clean is not None and clean.exists():
            import shutil

            shutil.rmtree(clean) if clean.is_dir() else clean.unlink()
        t, m, c = _run(code, args, cold)
        times.append(t)
        peaks.append(m)
        cpus.append(c)
    return statistics.median(times), statistics.median(peaks), statistics.median(cpus)


# The fastest plain read of the recording this benchmark knows: 8 MiB reads in order,
# each part's pages released from the page cache behind the reader (as the conversion
# releases them), no computing. On a VM whose fresh memory is costly to touch, this is
# faster than `cat` (which keeps every page cached). Its time includes the interpreter's
# start-up (about 0.03 s here), as `cat`'s includes its own.
_READ_RELEASE_CODE = (
    "import os,sys;b=bytearray(8<<20);m=memoryview(b)\n"
    "for p in sys.argv[1:]:\n"
    " fd=os.open(p,os.O_RDONLY);pos=done=0\n"
    " while (k:=os.readv(fd,[m])):\n"
    "  pos+=k\n"
    "  if pos-done>=8<<20: os.posix_fadvise(fd,done,pos-done,os.POSIX_FADV_DONTNEED);done=pos\n"
    " os.close(fd)\n"
)
_READ_RELEASE = f"exec({_READ_RELEASE_CODE!r})"  # one statement: _run appends its own


def _entry(t: float, peak: int, cpu: float, mb: float) -> dict:
    """One conversion's figures; ``cpu_cores``: CPU time over wall time (cores kept busy)."""
    return {
        "s": t,
        "MB_per_s": mb / t,
        "peak_MB": peak / 1e6,
        "cpu_s": cpu,
        "cpu_s_per_GB": cpu / (mb / 1e3),
        "cpu_cores": cpu / t,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scan", nargs=2, type=int, default=[128, 128])
    ap.add_argument("--frame", nargs=2, type=int, default=[128, 128])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="where the recording is written")
    args = ap.parse_args(argv)

    from anodemap.synth.tvips import write_tvips_recording

    scan, frame = tuple(args.scan), tuple(args.frame)
    n_before, hysteresis = 6, 2
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        print(f"writing a recording: scan {scan}, frames {frame} ...", flush=True)
        truth = write_tvips_recording(
            tmp / "rec",
            scan_shape=scan,
            frame_shape=frame,
            n_before=n_before,
            hysteresis=hysteresis,
            frames_per_part=max(1000, (scan[0] * scan[1]) // 3),
        )
        parts = sorted(tmp.glob("rec_*.tvips"))
        size = sum(p.stat().st_size for p in parts)
        first = str(parts[0])
        _PARTS[:] = parts
        cold = drop_page_cache(parts)
        state = (
            "cold (the recording's pages dropped before each run)" if cold else "warm (page cache)"
        )
        print(f"{len(parts)} parts, {size / 1e6:.0f} MB; runs {state}", flush=True)

        reads = []
        for _ in range(args.repeat):
            if cold:
                drop_page_cache(parts)
            t0 = time.perf_counter()
            subprocess.run(["cat", *map(str, parts)], stdout=subprocess.DEVNULL, check=True)
            reads.append(time.perf_counter() - t0)
        t_read = statistics.median(reads)
        t_rel, _, _ = _median_run(_READ_RELEASE, list(map(str, parts)), cold, args.repeat, None)
        t_limit = min(t_read, t_rel)

        stream = "import sys;from anodemap.cli import main;r=main(sys.argv[1:])"
        # start-up: the interpreter, the modules the command uses (its kernels, the
        # writers) and its exit, without reading (the kernels' first-call loading from
        # numba's cache is not included, so this is a lower bound)
        startup = (
            "import dask.array, numcodecs, rsciio.zspy._api, rsciio.blockfile._api;"
            "import anodemap.diffraction.stream, anodemap.diffraction.scan._kernels;"
            "from anodemap.cli import exit_now;exit_now(0)"
        )
        startups = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", startup], check=True)
            startups.append(time.perf_counter() - t0)
        t_start = statistics.median(startups)
        out_z, out_b = tmp / "am.zspy", tmp / "am.blo"
        t_z, m_z, c_z = _median_run(
            stream, ["stream", first, "-o", str(out_z), "--no-progress"], cold, args.repeat, out_z
        )
        out_2 = tmp / "am2.zspy"
        t_2, m_2, c_2 = _median_run(
            stream,
            ["stream", first, "-o", str(out_2), "--no-progress", "--two-pass"],
            cold,
            args.repeat,
            out_2,
        )
        t_b, m_b, c_b = _median_run(
            stream, ["stream", first, "-o", str(out_b), "--no-progress"], cold, args.repeat, out_b
        )
        rs_code = (
            "import sys;import hyperspy.api as hs;hs.set_log_level('ERROR');"
            "s=hs.load(sys.argv[1],lazy=True,scan_shape=(int(sys.argv[3]),int(sys.argv[4])),"
            "scan_start_frame=int(sys.argv[5]),winding_scan_axis='x',"
            "hysteresis=int(sys.argv[6]));s.save(sys.argv[2],overwrite=True)"
        )
        out_r = tmp / "rs.zspy"
        rs_args = [first, str(out_r), str(scan[0]), str(scan[1]), str(n_before), str(hysteresis)]
        t_r, m_r, c_r = _median_run(rs_code, rs_args, cold, args.repeat, out_r)

        # Agreement. rosettasciio's winding scan reverses the first line of the scan, the
        # recordings here (and anodemap's reading) the second: started one line later,
        # rosettasciio's rows are anodemap's rows 1.. (the timing run above reads it all).
        import hyperspy.api as hs

        from anodemap.io import load

        hs.set_log_level("ERROR")
        a = np.asarray(load(out_z).data)[1:]
        r = hs.load(
            first,
            lazy=True,
            scan_shape=(scan[0] - 1, scan[1]),
            scan_start_frame=n_before + scan[1],
            winding_scan_axis="x",
            hysteresis=hysteresis,
        )
        r = np.asarray(r.data)
        same = (
            float(np.mean(np.all(a.reshape(*a.shape[:2], -1) == r.reshape(*r.shape[:2], -1), -1)))
            if a.shape == r.shape
            else None
        )
        truth_rows = truth.scan_shape
        # written while reading or in a second pass: the same store, file for file
        files_z = sorted(p.relative_to(out_z) for p in out_z.rglob("*") if p.is_file())
        files_2 = sorted(p.relative_to(out_2) for p in out_2.rglob("*") if p.is_file())
        same_store = files_z == files_2 and all(
            (out_z / f).read_bytes() == (out_2 / f).read_bytes() for f in files_z
        )

    mb = size / 1e6
    out = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "scan": list(scan),
        "frame": list(frame),
        "recording_MB": mb,
        "cache": state,
        "read_MB_per_s": mb / t_read,
        "cat_s": t_read,
        "read_release_s": t_rel,
        "reading_limit_s": t_limit,
        "anodemap_zspy": _entry(t_z, m_z, c_z, mb),
        "anodemap_zspy_two_pass": _entry(t_2, m_2, c_2, mb),
        "anodemap_blo": _entry(t_b, m_b, c_b, mb),
        "rosettasciio_zspy_scan_given": _entry(t_r, m_r, c_r, mb),
        "ratio_anodemap_zspy_to_rosettasciio": t_r / t_z,
        "fraction_of_read_speed_zspy": t_limit / t_z,
        "fraction_of_cat_speed_zspy": t_read / t_z,
        "startup_s": t_start,
        "anodemap_zspy_MB_per_s_after_startup": mb / (t_z - t_start),
        "anodemap_blo_MB_per_s_after_startup": mb / (t_b - t_start),
        "fraction_of_read_speed_zspy_after_startup": t_limit / (t_z - t_start),
        "fraction_identical_patterns_vs_rosettasciio": same,
        "single_pass_store_equals_two_pass": same_store,
        "truth_scan_shape": list(truth_rows),
    }
    print(json.dumps(out, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "stream.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
