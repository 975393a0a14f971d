"""Output folders: one run's at a time, naming their input, without leftovers.

A command that writes a folder of results (``anodemap eels``, ``diffraction``, ``demo``)
runs inside :func:`output_folder`, which

1. checks the output before anything is read or computed: ``-o`` names a folder (not a
   file), the folder can be created and written in, roughly enough space is free, and
   no input of the run lies where the run would write a file or move one aside;
2. takes the folder's lock, ``OUTDIR/.anodemap.lock``: a file created atomically
   (``O_CREAT | O_EXCL``) that holds the run's pid, host, start time and command line. A
   second run into the folder refuses at once and names the run that holds it; a lock
   whose process has ended (on this host) is taken over;
3. removes the leftovers of interrupted runs: hidden temporary files and folders
   (``.NAME.partial*``) and backups of replaced folder stores (``.NAME.old-*``);
4. lets the writers :meth:`~OutputFolder.claim` each name just before writing it (the
   claims are kept in ``OUTDIR/.anodemap-outputs.json``, so that a run killed half-way
   is known to the next one), and, just before ``summary.json`` is written,
   :meth:`~OutputFolder.retire_previous` moves the files of an earlier run that this run
   did not write into ``OUTDIR/.previous-run/``: a summary never sits beside another
   run's maps;
5. removes the lock when the run ends, also on an error or Ctrl-C.

``summary.json`` then names its input (:func:`input_record`: path, size, SHA-256), the
anodemap version and the command line (:meth:`OutputFolder.provenance`).
:func:`output_files` does the checks and takes a lock for commands that write files, not
a folder (``anodemap stream``).

Examples
--------
>>> import json, tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "results"
>>> with output_folder(out, log=None) as folder:
...     folder.claim(["values.txt"])
...     _ = (out / "values.txt").write_text("1 2 3")
...     (out / ".anodemap.lock").exists()
True
>>> (out / ".anodemap.lock").exists()
False
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anodemap.errors import AnodemapIOError
from anodemap.io.atomic import atomic_path, temporary_path

__all__ = [
    "LOCK_NAME",
    "MANIFEST_NAME",
    "PREVIOUS_RUN",
    "OutputFolder",
    "active_folder",
    "claim",
    "command_line",
    "input_record",
    "output_files",
    "output_folder",
    "records_kept",
    "temporary_path",
]

LOCK_NAME = ".anodemap.lock"
MANIFEST_NAME = ".anodemap-outputs.json"
PREVIOUS_RUN = ".previous-run"

# Inputs up to this size are hashed whole; larger ones by their first and last MiB
# (reading a 1 GB file again would cost seconds, the head and tail a millisecond).
FULL_HASH_BYTES = 64 * 2**20
_HEAD_TAIL = 2**20

# A lock file that cannot be parsed (its writer died between creating and filling it)
# counts as held for this long after it was last written, then as stale.
_UNREADABLE_LOCK_S = 60.0

# Temporary names: .NAME.partial-PID-RANDOM.EXT (anodemap's own writers), and the older
# .NAME.partial[-RANDOM][.EXT] and .NAME.RANDOM.partial; backups .NAME.old-RANDOM.
_LEFTOVER = re.compile(r"^\..+(\.partial|\.old-[0-9a-f]+$)")
_PID_IN_NAME = re.compile(r"\.partial-(\d+)-[0-9a-f]{8}")

Log = Callable[[str], None]


def _stderr_log(msg: str) -> None:
    print(f"[anodemap] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------- the input
def input_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """What identifies an input: absolute path, size, modification time, SHA-256.

    A file up to 64 MiB is hashed whole (``sha256``); a larger one by its size, its
    first and its last MiB (``sha256_head_tail``: a changed header, end or length shows,
    a changed middle does not), so that the record costs milliseconds for any input. A
    folder store (``.zspy``) is hashed over its files in the order of their relative
    paths: each file's path and size, then the contents (whole up to 64 MiB in all,
    else the first and last MiB of the contents). ``hashed`` says which.

    Returns None for a path that does not exist (the reader reports it).

    Within :func:`records_kept` (a study run, whose inputs do not change while it runs
    and which names each in several records: its content key, the provenance of each
    folder it writes) a file's record is made once.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.msa"
    >>> _ = p.write_bytes(b"abc")
    >>> r = input_record(p)
    >>> r["size_bytes"], r["sha256"][:12], r["hashed"]
    (3, 'ba7816bf8f01', 'the whole file')
    """
    path = Path(os.path.abspath(path))
    try:
        st = path.stat()
    except OSError:
        return None
    files: list[Path] = []
    stats: list[os.stat_result] = []
    if path.is_dir():
        files = sorted(
            (p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).parts
        )
        stats = [p.stat() for p in files]
    kept = _KEPT["records"]
    # kept by what a write changes too, should an input be replaced all the same
    seen = (str(path), _written(st), *(_written(f) for f in stats))
    if kept is not None and seen in kept:
        return dict(kept[seen])
    record = _input_record(path, st, files, stats)
    if kept is not None:
        kept[seen] = dict(record)
    return record


# input_record's records while records_kept() is active (a run's inputs are few)
_KEPT: dict[str, Any] = {"depth": 0, "records": None}
_KEPT_LOCK = threading.Lock()


@contextlib.contextmanager
def records_kept() -> Iterator[None]:
    """Within the block, :func:`input_record` reads and hashes each input once.

    For a run whose inputs do not change while it runs (a study run: the inputs'
    records are made again for every analysis and folder of the run). A record is kept
    by the input's path and what a write changes (device, inode, size, modification and
    status-change times), and the records are dropped when the outermost block ends.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.msa"
    >>> _ = p.write_bytes(b"abc")
    >>> with records_kept():
    ...     input_record(p) == input_record(p)
    True
    """
    with _KEPT_LOCK:
        _KEPT["depth"] += 1
        if _KEPT["records"] is None:
            _KEPT["records"] = {}
    try:
        yield
    finally:
        with _KEPT_LOCK:
            _KEPT["depth"] -= 1
            if _KEPT["depth"] == 0:
                _KEPT["records"] = None


def _written(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _input_record(
    path: Path, st: os.stat_result, files: list[Path], stats: list[os.stat_result]
) -> dict[str, Any]:
    """:func:`input_record` of ``path`` (stat ``st``), read and hashed; for a folder,
    ``files`` are its files in order and ``stats`` theirs."""
    record: dict[str, Any] = {"path": str(path)}
    if path.is_dir():
        sizes = [f.st_size for f in stats]
        total = sum(sizes)
        h = hashlib.sha256()
        for p, size in zip(files, sizes, strict=True):
            h.update(f"{p.relative_to(path).as_posix()}\0{size}\0".encode())
        if total <= FULL_HASH_BYTES:
            for p in files:
                h.update(p.read_bytes())
            key, hashed = "sha256", "every file: its path, size and content"
        else:
            _head_tail_of_files(h, files, sizes)
            key = "sha256_head_tail"
            hashed = "every file's path and size, the first and last MiB of the contents"
        mtime = max([st.st_mtime, *(f.st_mtime for f in stats)])
        record.update(kind="folder", files=len(files), size_bytes=total)
    else:
        size = st.st_size
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            if size <= FULL_HASH_BYTES:
                for block in iter(lambda: fh.read(2**22), b""):
                    h.update(block)
                key, hashed = "sha256", "the whole file"
            else:
                h.update(str(size).encode() + b"\0")
                h.update(fh.read(_HEAD_TAIL))
                fh.seek(size - _HEAD_TAIL)
                h.update(fh.read(_HEAD_TAIL))
                key, hashed = "sha256_head_tail", "the size, the first and the last MiB"
        mtime = st.st_mtime
        record.update(kind="file", size_bytes=size)
    record["modified"] = datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")
    record[key] = h.hexdigest()
    record["hashed"] = hashed
    return record


def _head_tail_of_files(h: Any, files: list[Path], sizes: list[int]) -> None:
    """Feed the first and last MiB of the files' concatenated contents to ``h``."""
    left = _HEAD_TAIL
    for p, size in zip(files, sizes, strict=True):
        if left <= 0:
            break
        with open(p, "rb") as fh:
            block = fh.read(min(size, left))
        h.update(block)
        left -= len(block)
    tail: list[bytes] = []
    left = _HEAD_TAIL
    for p, size in zip(reversed(files), reversed(sizes), strict=True):
        if left <= 0:
            break
        n = min(size, left)
        with open(p, "rb") as fh:
            fh.seek(size - n)
            tail.append(fh.read(n))
        left -= n
    for block in reversed(tail):
        h.update(block)


def command_line(args: Any = None) -> str | None:
    """The command line of this run, as a shell would take it.

    ``args.argv`` where the caller set it (the demo for the commands it runs); else
    ``sys.argv`` when this process is the ``anodemap`` command (or ``python -m
    anodemap``); else (``main`` called
    from Python) the command rebuilt from the parsed options, every option spelled out.

    Examples
    --------
    >>> import argparse
    >>> ns = argparse.Namespace(command="eels", input="a b.hspy", output="out", window=["8", "25"],
    ...                         no_figures=True, no_progress=False, signal=None)
    >>> command_line(ns)
    "anodemap eels 'a b.hspy' -o out --window 8 25 --no-figures"
    """
    argv = getattr(args, "argv", None)
    program = ["anodemap"]
    if argv is None and Path(sys.argv[0]).name == "anodemap":
        argv = sys.argv[1:]
    elif argv is None and Path(sys.argv[0]).parts[-2:] == ("anodemap", "__main__.py"):
        argv, program = sys.argv[1:], ["python", "-m", "anodemap"]
    if argv is not None:
        return shlex.join([*program, *map(str, argv)])
    if args is None:
        return None
    words = ["anodemap"]
    # func and analysis are set by the parser itself (set_defaults), not options
    values = {k: v for k, v in vars(args).items() if k not in ("func", "argv", "analysis")}
    for key in ("command", "modality", "input"):
        if values.get(key) is not None:
            words.append(str(values.pop(key)))
    for key, value in values.items():
        flag = "-o" if key == "output" else "--" + key.replace("_", "-")
        if value is None or value is False:
            if value is False and key == "serpentine":
                words.append("--no-serpentine")
            continue
        if value is True:
            words.append(flag)
        elif key == "output" and isinstance(value, list | tuple):
            for v in value:  # stream: -o repeated
                words += [flag, str(v)]
        elif isinstance(value, list | tuple):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


# --------------------------------------------------------------------- the lock
def _host() -> str:
    return socket.gethostname()


def _process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks after boot (Linux), to tell a pid
    reused by another process from the one that took a lock; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _pid_alive(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` of this host runs (a zombie does not; nor does another
    process that got the same pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat[stat.rfind(")") + 2 :].split()[0] in ("Z", "X"):
            return False
    except OSError:
        pass
    now = _process_start(pid)
    return start is None or now is None or now == start


def _read_lock(path: Path) -> dict[str, Any] | None:
    """The lock's content; {} while it cannot be parsed; None once it is gone."""
    for _ in range(10):  # a lock just created is written a moment later
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            info = json.loads(text)
            if isinstance(info, dict):
                return info
        except ValueError:
            pass
        time.sleep(0.02)
    return {}


def _stale(info: dict[str, Any], path: Path) -> bool:
    """Whether the run that wrote lock ``info`` has ended, as far as this host can tell."""
    if not info:
        try:
            return time.time() - path.stat().st_mtime > _UNREADABLE_LOCK_S
        except OSError:
            return True
    if info.get("host") != _host():
        return False  # another machine's run: nothing here can tell whether it still runs
    try:
        pid = int(info.get("pid", -1))
    except (TypeError, ValueError):
        return True
    return not _pid_alive(pid, info.get("pid_start"))


def _take_over(path: Path, info: dict[str, Any]) -> bool:
    """Remove the stale lock ``info`` at ``path``; False where another run got there
    first. Takers lock the stale file itself (flock) so that two of them never both
    remove it, and check that the path still holds the lock they judged."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except (ImportError, OSError):  # no flock here: the checks below remain
            pass
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return False
        except FileNotFoundError:
            return True
        try:
            now = json.loads(os.read(fd, 1 << 16).decode(errors="replace"))
        except ValueError:
            now = {}
        if now != info:  # rewritten since it was judged: judge again
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)


def _describe_holder(info: dict[str, Any]) -> str:
    if not info:
        return "a run whose lock file cannot be read yet"
    where = "this host" if info.get("host") == _host() else f"host {info.get('host')}"
    text = f"pid {info.get('pid')} on {where}, started {info.get('started')}"
    if info.get("command_line"):
        text += f": {info['command_line']}"
    return text


def _busy(what: str, lock: Path, info: dict[str, Any], option: str, doing: str) -> AnodemapIOError:
    other_host = bool(info) and info.get("host") != _host()
    advice = (
        f"wait for it to end, or choose another place with {option}. If that run is "
        f"no longer running"
        + (" (anodemap cannot tell from this machine)" if other_host else "")
        + f", remove {lock} and run again"
    )
    return AnodemapIOError(
        f"{what}: another anodemap run is {doing} ({_describe_holder(info)}); {advice}"
    )


def _unwritable(path: Path, err: OSError, option: str) -> AnodemapIOError:
    if err.errno == errno.EROFS:
        why = "is on a read-only file system"
    elif err.errno in (errno.EACCES, errno.EPERM):
        why = "cannot be written (permission denied)"
    elif err.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "cannot be written: no space left on its file system"
    else:
        why = f"cannot be written ({err.strerror or err})"
    return AnodemapIOError(f"{path}: {why}; choose a folder you can write in with {option}")


class _Lock:
    """A lock file created with O_EXCL; see :func:`output_folder`."""

    def __init__(
        self,
        path: Path,
        what: str,
        option: str,
        command: str | None,
        log: Log | None,
        doing: str = "writing into this folder",
    ):
        self.path, self.what, self.option, self.doing = path, what, option, doing
        self.info = {
            "pid": os.getpid(),
            "pid_start": _process_start(os.getpid()),
            "host": _host(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command_line": command,
            "token": secrets.token_hex(8),
        }
        self.log = log

    def acquire(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        info: dict[str, Any] = {}
        for _ in range(50):
            try:
                fd = os.open(self.path, flags, 0o644)
            except FileExistsError:
                found = _read_lock(self.path)
                if found is None:
                    continue  # released meanwhile: try again
                info = found
                if not _stale(info, self.path):
                    raise _busy(self.what, self.path, info, self.option, self.doing) from None
                if _take_over(self.path, info):
                    if self.log:
                        self.log(
                            f"{self.what}: took over the lock of an earlier run that ended "
                            f"without releasing it ({_describe_holder(info)})"
                        )
                    continue
                time.sleep(0.02)  # another run is taking it over: look again
                continue
            except OSError as err:
                raise _unwritable(self.path.parent, err, self.option) from err
            try:
                os.write(fd, (json.dumps(self.info, indent=1) + "\n").encode())
            except OSError as err:
                os.close(fd)
                self.path.unlink(missing_ok=True)
                raise _unwritable(self.path.parent, err, self.option) from err
            os.close(fd)
            return
        raise _busy(self.what, self.path, info, self.option, self.doing)

    def release(self) -> None:
        info = _read_lock(self.path)
        if info and info.get("token") == self.info["token"]:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def live_others(self) -> bool:
        """Whether another live anodemap lock (e.g. of a stream writing a file here) is
        in the same folder."""
        for p in self.path.parent.glob(".*anodemap.lock"):
            if p == self.path:
                continue
            info = _read_lock(p)
            if info is not None and not _stale(info, p):
                return True
        return False


# --------------------------------------------------------------- the folder
@dataclass
class OutputFolder:
    """One run's hold on an output folder (made by :func:`output_folder`).

    Attributes
    ----------
    path : Path
        The folder.
    claimed : set of str
        Names this run has written or is writing in the folder.
    previous : set of str
        Names an earlier run wrote here and this run has not claimed (yet).
    """

    path: Path
    option: str = "-o"
    log: Log | None = _stderr_log
    claimed: set[str] = field(default_factory=set)
    previous: set[str] = field(default_factory=set)
    _inputs: list[list[Path]] = field(default_factory=list)
    _records: list[dict[str, Any] | None] = field(default_factory=list)
    _commands: list[str | None] = field(default_factory=list)
    _old_summary: bytes | None = None
    _pid: int = field(default_factory=os.getpid)
    _lock: _Lock | None = None
    _created: list[Path] = field(default_factory=list)

    # -- what the writers call
    def claim(self, names: Iterable[str]) -> None:
        """Record that this run writes ``names`` in the folder; call before writing them.

        The record is on disk before the files are, so that a run killed half-way
        leaves a list of what it wrote for the next run to clean up.

        Raises
        ------
        AnodemapIOError
            A name is that of an input of the run (it would be overwritten).
        """
        names = [str(n) for n in names]
        inputs = self.inputs()
        for name in names if inputs else ():
            target = Path(os.path.realpath(self.path / name))
            for inp in inputs:
                if inp == target or target in inp.parents:
                    raise AnodemapIOError(
                        f"{_given(inp)}: is an input of this run, and the run would write "
                        f"{self.path / name} over it; choose another folder with {self.option}"
                    )
        new = set(names) - self.claimed
        if new:
            self.claimed |= new
            self.previous -= new
            self._save_manifest()

    def discard(self, names: Iterable[str]) -> None:
        """Claim ``names`` and remove their files now (written again later in the run:
        until then, an earlier run's version must not sit beside this run's results)."""
        names = list(names)
        self.claim(names)
        for name in names:
            _remove(self.path / name)

    def retire_previous(self) -> list[str]:
        """Move the files of earlier runs that this run did not write aside.

        Called just before ``summary.json`` is written: every file of an earlier run
        (listed in its ``summary.json`` or in the claims it left) that this run has not
        claimed goes to ``OUTDIR/.previous-run/``, with that run's ``summary.json``.
        The folder keeps one earlier run's files: they are moved, not deleted, so that an
        ``-o`` that named the wrong folder costs no earlier result; a later run that moves
        files aside replaces them.

        Returns
        -------
        list of str
            The names moved aside.
        """
        stale = sorted(
            n for n in self.previous if (self.path / n).exists() or (self.path / n).is_symlink()
        )
        self.previous = set()
        if stale:
            aside = self.path / PREVIOUS_RUN
            try:
                if aside.exists():
                    old = self.path / f".{PREVIOUS_RUN.lstrip('.')}.old-{secrets.token_hex(4)}"
                    os.replace(aside, old)
                    _remove(old)
                aside.mkdir()
                for name in stale:
                    os.replace(self.path / name, aside / name)
                if self._old_summary is not None and not (aside / "summary.json").exists():
                    (aside / "summary.json").write_bytes(self._old_summary)
            except OSError as err:
                raise AnodemapIOError(
                    f"{self.path}: the files of an earlier run ({', '.join(stale)}) could not "
                    f"be moved to {aside} ({err.strerror or err}); move or remove them and run "
                    f"again, or choose another folder with {self.option}"
                ) from err
            if self.log:
                shown = ", ".join(stale[:6]) + (
                    f" and {len(stale) - 6} more" if len(stale) > 6 else ""
                )
                self.log(
                    f"{self.path}: {len(stale)} file{'s' if len(stale) != 1 else ''} of an "
                    f"earlier run that this run does not write ({shown}) moved to {aside}, "
                    "with that run's summary.json"
                )
        self._save_manifest()
        return stale

    def provenance(self) -> dict[str, Any]:
        """``input`` (:func:`input_record` of the run's input), ``anodemap_version`` and
        ``command_line``, for ``summary.json``."""
        from anodemap import __version__

        record = next((r for r in reversed(self._records) if r is not None), None)
        command = next((c for c in reversed(self._commands) if c is not None), None)
        return {"input": record, "anodemap_version": __version__, "command_line": command}

    def inputs(self) -> list[Path]:
        """Every input given to this folder's run (resolved paths)."""
        return [p for group in self._inputs for p in group]

    # -- internals
    def _save_manifest(self) -> None:
        names = sorted(self.claimed | self.previous)
        path = self.path / MANIFEST_NAME
        try:
            with atomic_path(path, record=False) as tmp:
                tmp.write_text(json.dumps({"files": names}, indent=1) + "\n")
        except OSError as err:
            raise _unwritable(self.path, err, self.option) from err

    def _known_files(self) -> None:
        """The files of earlier runs: in the claims a run left, in summary.json's list."""
        names: set[str] = set()
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            names |= set(json.loads((self.path / MANIFEST_NAME).read_text())["files"])
        summary = self.path / "summary.json"
        with contextlib.suppress(OSError):
            self._old_summary = summary.read_bytes()
        if self._old_summary is not None:
            names.add("summary.json")
            with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
                names |= set(json.loads(self._old_summary)["files"])
        # only plain names of visible files: a damaged list must not move anything else
        self.previous = {
            n
            for n in names
            if isinstance(n, str) and n and "/" not in n and "\\" not in n and not n.startswith(".")
        }

    def _remove_leftovers(self) -> None:
        """Remove the temporary files and backups of interrupted runs."""
        if self._lock is not None and self._lock.live_others():
            return  # another command writes a file here: its temporaries are alive
        removed = []
        for p in self.path.iterdir():
            if not _LEFTOVER.match(p.name):
                continue
            m = _PID_IN_NAME.search(p.name)
            if m and int(m.group(1)) != os.getpid() and _pid_alive(int(m.group(1)), None):
                continue
            _remove(p)
            removed.append(p.name)
        if removed and self.log:
            self.log(
                f"{self.path}: removed {len(removed)} temporary file"
                f"{'s' if len(removed) != 1 else ''} left by an interrupted run "
                f"({', '.join(sorted(removed)[:4])}{', ...' if len(removed) > 4 else ''})"
            )

    def _finish(self, ok: bool) -> None:
        manifest = self.path / MANIFEST_NAME
        if ok and self.claimed:
            listed: set[str] = set()
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                listed = set(json.loads((self.path / "summary.json").read_text())["files"])
            if (self.claimed | self.previous) <= listed | {"summary.json"}:
                with contextlib.suppress(OSError):
                    manifest.unlink()  # summary.json lists every file: no other record
        if self._lock is not None:
            self._lock.release()
        for d in reversed(self._created):  # a run that wrote nothing leaves no folder
            with contextlib.suppress(OSError):
                d.rmdir()


_ACTIVE: dict[str, OutputFolder] = {}


def active_folder(path: str | os.PathLike) -> OutputFolder | None:
    """The folder this process holds at ``path`` (None if none, or in a forked helper
    process: only the process that holds the lock records what is written)."""
    folder = _ACTIVE.get(os.path.realpath(path))
    if folder is None or folder._pid != os.getpid():
        return None
    return folder


def claim(path: str | os.PathLike, names: Iterable[str] | None = None) -> None:
    """:meth:`OutputFolder.claim` ``names`` (default: ``path``'s own name, in its parent)
    in the folder this process holds; nothing where it holds none.

    Examples
    --------
    >>> claim("/tmp/nowhere/x.png")  # no run holds the folder: nothing to record
    """
    path = Path(path)
    if names is None:
        path, names = path.parent, [path.name]
    folder = active_folder(path)
    if folder is not None:
        folder.claim(names)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _resolved_inputs(inputs: Iterable[Any]) -> list[Path]:
    """The inputs as real paths (links followed); each remembers how it was given, for the
    messages (:data:`_GIVEN`)."""
    out = []
    for p in inputs:
        if p in (None, ""):
            continue
        real = Path(os.path.realpath(p))
        _GIVEN.setdefault(real, str(p))
        out.append(real)
    return out


# real path of an input -> the path as the command line gave it
_GIVEN: dict[Path, str] = {}


def _given(real: Path) -> str:
    return _GIVEN.get(real, str(real))


def _make_folder(path: Path, option: str) -> list[Path]:
    """Create ``path`` and its missing parents; the folders created, outermost first."""
    missing = []
    p = path
    while not p.exists() and not p.is_symlink():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir() and p.exists() or (p.is_symlink() and not p.exists()):
        which = "exists and is a file, not a folder" if p.is_file() else "is not a folder"
        if p == path:
            raise AnodemapIOError(
                f"{path}: {which}; {option} names the folder for the results (a new "
                "folder, or an existing one)"
            )
        raise AnodemapIOError(
            f"{path}: cannot be made, {p} {which}; choose another folder with {option}"
        )
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise _unwritable(d.parent, err, option) from err
    return list(reversed(missing))


def _check_space(path: Path, needed: int | None, option: str) -> None:
    if not needed:
        return
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return
    if free < needed:
        raise AnodemapIOError(
            f"{path}: only {_size(free)} free on its file system, and the results need "
            f"about {_size(needed)}; free some space or choose another place with {option}"
        )


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _input_size(p: Path) -> int:
    with contextlib.suppress(OSError):
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return p.stat().st_size
    return 0


def _check_inputs(folder: OutputFolder, inputs: list[Path], writes: Iterable[str]) -> None:
    """Refuse where an input would be overwritten or moved aside by the run."""
    out = Path(os.path.realpath(folder.path))
    writes = set(writes) | {"summary.json"}
    for inp in inputs:
        if inp == out or inp in out.parents:
            what = "is the input" if inp == out else f"is inside the input {_given(inp)}"
            raise AnodemapIOError(
                f"{folder.path}: {what}; the results must not be written into it: choose "
                f"a folder outside it with {folder.option}"
            )
        if out not in inp.parents:
            continue
        first = inp.relative_to(out).parts[0]
        if first in writes:
            why = f"where this command writes {first}: the input would be replaced"
        elif first in folder.previous:
            why = (
                f"where an earlier anodemap run wrote {first}, which this run does not "
                f"write and would move to {folder.path / PREVIOUS_RUN}"
            )
        elif first == PREVIOUS_RUN:
            why = f"in {PREVIOUS_RUN}, where anodemap keeps an earlier run's files"
        else:
            continue
        raise AnodemapIOError(
            f"{_given(inp)}: is in the output folder {folder.path}, {why}; copy the input "
            f"elsewhere or choose another folder with {folder.option}"
        )


@contextlib.contextmanager
def output_folder(
    path: str | os.PathLike,
    *,
    inputs: Sequence[Any] = (),
    writes: Iterable[str] = (),
    command_line: str | None = None,
    needed_bytes: int | None = None,
    option: str = "-o",
    log: Log | None = _stderr_log,
) -> Iterator[OutputFolder]:
    """Hold ``path`` as this run's output folder (see the module's description).

    Within one process the folder can be entered again (the demo enters its folder,
    then the EELS command it runs enters it with the input): the inner entry adds its
    inputs and command line and shares the lock.

    Parameters
    ----------
    path : path
        The output folder; created (with its parents) if needed.
    inputs : sequence of path
        The run's inputs; the first is recorded in ``summary.json``
        (:meth:`OutputFolder.provenance`), none may be overwritten or moved aside. None
        items are skipped.
    writes : iterable of str
        The names the run may write in the folder, to refuse before the analysis an
        input that one of them would replace.
    command_line : str, optional
        Recorded in the lock and in ``summary.json`` (:func:`command_line`).
    needed_bytes : int, optional
        Free space the run needs; default: 16 MiB plus a twentieth of the inputs' size
        (maps and figures are a few percent of the data they come from).
    option : str
        The command-line option that named ``path`` (for the messages).
    log : callable, optional
        Takes the messages for the user (taking over a stale lock, removing leftovers,
        moving an earlier run's files aside); None: silent.

    Yields
    ------
    OutputFolder

    Raises
    ------
    AnodemapIOError
        ``path`` is a file, cannot be created or written, lacks space, holds an input
        the run would replace, or another run holds it; the message names the folder,
        the option and what to do.
    """
    path = Path(path)
    key = os.path.realpath(path)
    folder = _ACTIVE.get(key)
    if folder is not None and folder._pid == os.getpid():
        new_inputs = _resolved_inputs(inputs)
        _check_inputs(folder, new_inputs, writes)
        folder._inputs.append(new_inputs)
        folder._records.append(input_record(new_inputs[0]) if new_inputs else None)
        folder._commands.append(command_line)
        try:
            yield folder
        finally:
            folder._inputs.pop()
            folder._records.pop()
            folder._commands.pop()
        return

    folder = OutputFolder(path=path, option=option, log=log)
    resolved = _resolved_inputs(inputs)
    # before the folder is made: -o inside a folder store that is the input
    _check_inputs(folder, resolved, writes)
    folder._created = _make_folder(path, option)
    ok = False
    try:
        if needed_bytes is None:
            needed_bytes = 16 * 2**20 + sum(_input_size(p) for p in resolved) // 20
        _check_space(path, needed_bytes, option)
        folder._lock = _Lock(path / LOCK_NAME, str(path), option, command_line, log)
        folder._lock.acquire()
        folder._known_files()
        _check_inputs(folder, resolved, writes)  # now with the earlier run's files
        folder._remove_leftovers()
        folder._inputs.append(resolved)
        folder._records.append(input_record(resolved[0]) if resolved else None)
        folder._commands.append(command_line)
        _ACTIVE[os.path.realpath(path)] = folder
        try:
            yield folder
            ok = True
        finally:
            _ACTIVE.pop(os.path.realpath(path), None)
    finally:
        folder._finish(ok)


# ------------------------------------------------------------------ files
@contextlib.contextmanager
def output_files(
    paths: Sequence[str | os.PathLike],
    *,
    inputs: Sequence[Any] = (),
    command_line: str | None = None,
    needed_bytes: int | None = None,
    option: str = "-o",
    log: Log | None = _stderr_log,
) -> Iterator[list[Path]]:
    """Check and lock output files (not a folder), for the whole run.

    Each output is checked before anything is read: it is not an existing folder
    (``.zspy`` stores excepted: they are folders), nor an input, nor inside one; its
    folder can be created and written in; roughly enough space is free. Each gets a lock
    ``.NAME.anodemap.lock`` beside it (a second run writing the same file refuses), and
    the temporary files an interrupted run left for it are removed.

    Parameters
    ----------
    paths : sequence of path
        The output files.
    inputs : sequence of path
        The run's inputs (None skipped).
    command_line : str, optional
        Recorded in the locks (:func:`command_line`).
    needed_bytes : int, optional
        Free space the outputs need in all; default: a quarter of the inputs' size.
    option, log
        As for :func:`output_folder`.

    Yields
    ------
    list of Path
        ``paths`` as Paths.
    """
    given = [Path(p) for p in paths]
    outs = list({os.path.realpath(p): p for p in given}.values())  # one lock each
    resolved = _resolved_inputs(inputs)
    for out in outs:
        real = Path(os.path.realpath(out))
        for inp in resolved:
            if real == inp or inp in real.parents:
                what = "is the input" if real == inp else f"is inside the input {_given(inp)}"
                raise AnodemapIOError(
                    f"{out}: {what}, which the run would overwrite; name another output "
                    f"with {option}"
                )
        if out.is_dir() and out.suffix.lower() != ".zspy":
            raise AnodemapIOError(
                f"{out}: exists and is a folder; {option} names the output file: give "
                "another name, or remove the folder"
            )
    created: list[Path] = []
    locks: list[_Lock] = []
    try:
        for parent in dict.fromkeys(out.parent for out in outs):
            created += _make_folder(parent, option)
        if needed_bytes is None:
            needed_bytes = sum(_input_size(p) for p in resolved) // 4
        for parent in dict.fromkeys(out.parent for out in outs):
            _check_space(parent, needed_bytes, option)
        for out in outs:
            lock_path = out.with_name(f".{out.name}{LOCK_NAME}")
            lock = _Lock(lock_path, str(out), option, command_line, log, "writing this file")
            lock.acquire()
            locks.append(lock)
            # this run holds the file's lock: its temporaries left here are of dead runs
            for p in out.parent.glob(f".{out.stem}.partial*{out.suffix}"):
                m = _PID_IN_NAME.search(p.name)
                if not (m and _pid_alive(int(m.group(1)), None)):
                    _remove(p)
            for p in out.parent.glob(f".{out.name}.*"):
                if _LEFTOVER.match(p.name) and not p.name.endswith(LOCK_NAME):
                    m = _PID_IN_NAME.search(p.name)
                    if not (m and _pid_alive(int(m.group(1)), None)):
                        _remove(p)
        yield given
    finally:
        for lock in locks:
            lock.release()
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
