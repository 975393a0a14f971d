"""What the machine offers this process (no third-party imports: the stream's start-up
imports it)."""

from __future__ import annotations

import os
from typing import NamedTuple

__all__ = ["MemoryBudget", "describe_budget", "memory_budget", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one).

    Examples
    --------
    >>> usable_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity call here (not Linux)
        return max(1, os.cpu_count() or 1)


class MemoryBudget(NamedTuple):
    """Memory this process may still allocate, and the limit that sets it.

    Attributes
    ----------
    bytes : int or None
        The smallest headroom of the limits found; None where none could be read (not
        Linux).
    limit : str
        Which limit that is: ``"available memory"`` (``MemAvailable``), ``"cgroup"``
        (a container's or service's memory limit), ``"address space"`` (``RLIMIT_AS``,
        e.g. ``ulimit -v`` or ``prlimit --as``) or ``"unknown"``.
    limits : dict of str to int
        The headroom under every limit found, in bytes.
    """

    bytes: int | None
    limit: str
    limits: dict[str, int]


def memory_budget() -> MemoryBudget:
    """Bytes this process may still allocate before it runs out of memory.

    The smallest of:

    * the physical memory available (``MemAvailable`` of ``/proc/meminfo``: free memory
      plus what the kernel can reclaim, such as the page cache);
    * the headroom under the memory limit of the process's cgroup and of every cgroup
      above it (v2 ``memory.max`` less ``memory.current``; v1 ``memory.limit_in_bytes``
      less ``memory.usage_in_bytes``; each usage less its inactive page cache, which the
      kernel reclaims before it fails an allocation);
    * the headroom under the address-space limit ``RLIMIT_AS`` (its soft value less the
      process's present ``VmSize``). Address space is reserved by much that never touches
      memory (thread stacks, malloc arenas, LLVM's code memory), so under such a limit the
      budget is in address space, not in resident memory.

    Returns
    -------
    MemoryBudget
        ``bytes`` None where no limit could be read (not Linux).

    Examples
    --------
    >>> budget = memory_budget()
    >>> budget.bytes is None or budget.bytes == min(budget.limits.values())
    True
    """
    limits: dict[str, int] = {}
    available = _meminfo("MemAvailable")
    if available is not None:
        limits["available memory"] = available
    cgroup = _cgroup_headroom()
    if cgroup is not None:
        limits["cgroup"] = cgroup
    address = _address_space_headroom()
    if address is not None:
        limits["address space"] = address
    if not limits:
        return MemoryBudget(None, "unknown", limits)
    name = min(limits, key=limits.__getitem__)
    return MemoryBudget(max(0, limits[name]), name, limits)


# how the limits of memory_budget are named in messages
_LIMIT_NAMES = {
    "available memory": "the memory available on this machine",
    "cgroup": "the memory limit of its container or service (cgroup)",
    "address space": "its address-space limit (ulimit -v, prlimit --as)",
    "unknown": "no limit could be read",
}


def describe_budget(budget: MemoryBudget | None = None) -> str:
    """The budget in words, for messages: how much more this process may use, and why.

    Examples
    --------
    >>> describe_budget(MemoryBudget(1_500_000_000, "address space", {}))
    'this process may use 1.5 GB more (its address-space limit (ulimit -v, prlimit --as))'
    """
    budget = budget if budget is not None else memory_budget()
    if budget.bytes is None:
        return "the memory this process may use is not known here"
    name = _LIMIT_NAMES.get(budget.limit, budget.limit)
    return f"this process may use {budget.bytes / 1e9:.1f} GB more ({name})"


def _read_int(path: str) -> int | None:
    """The integer in a one-line file (None: absent, unreadable or ``max``)."""
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text)
    except (OSError, ValueError):
        return None


def _meminfo(key: str, path: str = "/proc/meminfo") -> int | None:
    """A ``/proc/meminfo`` value in bytes."""
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(":")
                if name == key:
                    return int(value.split()[0]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _stat_value(path: str, keys: tuple[str, ...]) -> int:
    """The first of ``keys`` found in a cgroup ``memory.stat`` file (0 if none)."""
    try:
        with open(path) as f:
            values = dict(line.split()[:2] for line in f if len(line.split()) >= 2)
    except OSError:
        return 0
    for key in keys:
        if key in values:
            try:
                return int(values[key])
            except ValueError:
                return 0
    return 0


# v1 writes "no limit" as a page-rounded LONG_MAX; anything above this is no limit
_NO_LIMIT = 2**60


def _cgroup_dirs() -> list[tuple[str, str]]:
    """(version, folder) of this process's memory cgroup and of every cgroup above it,
    innermost first, as mounted here."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mountinfo") as f:
            mounts = f.read().splitlines()
    except OSError:
        return []
    paths: dict[str, str] = {}  # version -> the cgroup's path
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "" and parts[0] == "0":
            paths.setdefault("v2", path)
        elif "memory" in controllers.split(","):
            paths["v1"] = path
    out: list[tuple[str, str]] = []
    for line in mounts:
        # ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, mountpoint, fstype, superopts = fields[3], fields[4], tail[0], tail[2]
        if fstype == "cgroup2" and "v2" in paths:
            version = "v2"
        elif fstype == "cgroup" and "memory" in superopts.split(",") and "v1" in paths:
            version = "v1"
        else:
            continue
        path = paths[version]
        if root != "/" and (path == root or path.startswith(root.rstrip("/") + "/")):
            path = path[len(root.rstrip("/")) :]  # a namespace: the mount starts there
        folder = os.path.join(mountpoint, path.lstrip("/"))
        if not os.path.isdir(folder):
            folder = mountpoint  # the cgroup's own folder is not visible: its root
        while True:
            out.append((version, folder))
            if os.path.normpath(folder) == os.path.normpath(mountpoint):
                break
            folder = os.path.dirname(folder)
    return out


def _cgroup_headroom() -> int | None:
    """The smallest headroom under the memory limits of this process's cgroups."""
    best: int | None = None
    for version, folder in _cgroup_dirs():
        if version == "v2":
            limit = _read_int(os.path.join(folder, "memory.max"))
            usage = _read_int(os.path.join(folder, "memory.current"))
            inactive = _stat_value(os.path.join(folder, "memory.stat"), ("inactive_file",))
        else:
            limit = _read_int(os.path.join(folder, "memory.limit_in_bytes"))
            usage = _read_int(os.path.join(folder, "memory.usage_in_bytes"))
            inactive = _stat_value(
                os.path.join(folder, "memory.stat"), ("total_inactive_file", "inactive_file")
            )
        if limit is None or limit >= _NO_LIMIT:
            continue
        room = limit - max(0, (usage or 0) - inactive)
        best = room if best is None else min(best, room)
    return best


def _address_space_headroom() -> int | None:
    """``RLIMIT_AS`` less the address space this process holds now (None: no limit)."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = _meminfo("VmSize", "/proc/self/status") or 0
    return int(soft) - used
