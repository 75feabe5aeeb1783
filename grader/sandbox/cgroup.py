"""Cgroups per child: ``pids`` (a cap on its processes, and a way to find every one of them) and
``memory`` (a cap on every page it makes: heap, a memfd, files in its tmpfs folders).

A process group is not enough to end a child: a grandchild that calls ``setsid()`` (a daemon)
leaves it. Membership of a cgroup is inherited by every descendant and cannot be left without
privileges, so killing the cgroup's members reaps them all.

An rlimit is not enough to bound memory: ``RLIMIT_AS`` counts address space, not memory — pages
held in a memfd or written to a tmpfs are counted by neither it nor ``RLIMIT_DATA``, and torch's
own reservations make any address-space limit a guess. The memory cgroup counts what the child
really holds, with swap off (``memory.memsw.limit_in_bytes`` or ``memory.swap.max``, and a
swappiness of 0), and its OOM kill is recorded (``oom_kill``), so a child killed for memory is
reported as such and not guessed from a SIGKILL.

cgroup v1 (one hierarchy per controller, ``/sys/fs/cgroup/pids``, ``/sys/fs/cgroup/memory``) and
v2 (one unified hierarchy with both controllers) are both handled. Where a controller cannot be
used (not root, not mounted, not enabled), the sandbox falls back to ``RLIMIT_NPROC`` and the
process group, and to ``RLIMIT_AS`` (``RLIMIT_DATA`` on a GPU), and the grader says so once.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_ROOT = Path("/sys/fs/cgroup")
_PREFIX = "gradelab"
_counter = itertools.count()
_bases: dict[str, Path | None] = {}
# Pages the child holds before the student's module is imported (its copies of the fork server's
# pages): the child itself lowers the limit to what it holds then plus the check's memory.
SETUP_HEADROOM_MB = 1024


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _v2_enabled(controller: str) -> bool:
    if controller not in _read(_ROOT / "cgroup.controllers").split():
        return False
    if controller not in _read(_ROOT / "cgroup.subtree_control").split():
        try:
            _write(_ROOT / "cgroup.subtree_control", f"+{controller}")
        except OSError:
            return False
    return True


def _probe(controller: str) -> Path | None:
    """Where this process may make cgroups of ``controller``: the v1 hierarchy's root, or v2's."""
    candidates = []
    if (_ROOT / controller / "cgroup.procs").exists():
        candidates.append(_ROOT / controller)
    if (_ROOT / "cgroup.procs").exists() and _v2_enabled(controller):
        candidates.append(_ROOT)
    for base in candidates:
        test = base / f"{_PREFIX}-probe-{os.getpid()}"
        try:
            test.mkdir()
            if controller == "pids":
                _write(test / "pids.max", "8")
            else:
                _write(test / MemoryFiles.of(base).limit, str(64 << 20))
            return base
        except OSError:
            continue
        finally:
            try:
                test.rmdir()
            except OSError:
                pass
    return None


def base(controller: str) -> Path | None:
    """Where per-child cgroups of ``controller`` are made; ``None`` when they cannot be. Probed
    once per process; cgroups left by graders that died are reaped on the way."""
    if controller not in _bases:
        _bases[controller] = found = _probe(controller)
        if found is not None:
            reap_stale(found)
    return _bases[controller]


def available() -> Path | None:
    """Where per-child pids cgroups are made (kept for callers that only need to know whether
    processes can be contained)."""
    return base("pids")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _members(path: Path) -> list[int]:
    return [int(p) for p in _read(path / "cgroup.procs").split()]


def _kill_and_remove(path: Path, timeout_s: float = 5.0) -> int:
    """SIGKILL every member until none is left, then remove the cgroup. Returns how many were killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        pids = _members(path)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            log.warning("processes %s in %s survived SIGKILL", pids, path)
            break
        time.sleep(0.002)
    for _ in range(2000):  # the kernel frees the cgroup once its last member is reaped
        try:
            path.rmdir()
            break
        except FileNotFoundError:
            break
        except OSError:
            time.sleep(0.001)
    return len(killed)


def reap_stale(root: Path) -> int:
    """Kill and remove the cgroups of graders that died without cleaning up (``kill -9``)."""
    reaped = 0
    for path in root.glob(f"{_PREFIX}-*-*"):
        try:
            owner = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if owner != os.getpid() and not _alive(owner):
            reaped += _kill_and_remove(path, timeout_s=2.0)
    return reaped


@dataclass
class MemoryFiles:
    """The names of the memory controller's files in one hierarchy."""

    limit: str
    swap_limit: str | None
    usage: str
    events: str  # holds the "oom_kill N" line

    @classmethod
    def of(cls, base: Path) -> MemoryFiles:
        if base == _ROOT:  # v2
            return cls(limit="memory.max", swap_limit="memory.swap.max", usage="memory.current", events="memory.events")
        return cls(limit="memory.limit_in_bytes", swap_limit="memory.memsw.limit_in_bytes",
                   usage="memory.usage_in_bytes", events="memory.oom_control")


class ChildCgroups:
    """Made by the grader before the child starts (limits written, nobody inside); the child joins
    each as its first act, and the grader kills whatever is left in them when the check ends."""

    def __init__(self, max_processes: int, memory_mb: int) -> None:
        self.paths: dict[str, Path] = {}
        self.missing: list[str] = []
        name = f"{_PREFIX}-{os.getpid()}-{next(_counter)}"
        pids, memory = base("pids"), base("memory")
        if pids is not None:
            self._make("pids", pids / name, {"pids.max": str(max_processes)})
        if "pids" not in self.paths:
            self.missing.append("no pids cgroup: a daemonised grandchild could outlive its check")
        if memory is not None:
            files = MemoryFiles.of(memory)
            limit = (memory_mb + SETUP_HEADROOM_MB) << 20
            settings = {files.limit: str(limit)}
            path = memory / name
            if files.swap_limit is None:
                pass  # this hierarchy does not account swap
            elif memory == _ROOT:
                settings[files.swap_limit] = "0"
            elif (memory / files.swap_limit).exists():  # absent where swap is not accounted
                settings[files.swap_limit] = str(limit)
            self._make("memory", path, settings)
            if memory != _ROOT and "memory" in self.paths:
                try:  # v1 without memsw: at least keep the child's pages out of swap
                    _write(path / "memory.swappiness", "0")
                except OSError:
                    pass
        if "memory" not in self.paths:
            self.missing.append("no memory cgroup: memory is bounded by an rlimit, which does not count "
                                "a memfd or files in the child's tmpfs folders")

    def _make(self, controller: str, path: Path, settings: dict[str, str]) -> None:
        try:
            path.mkdir(exist_ok=True)  # v2: both controllers share one folder
            for file, value in settings.items():
                _write(path / file, value)
            self.paths[controller] = path
        except OSError as exc:
            log.warning("could not set up a %s cgroup (%s)", controller, exc)

    @property
    def join_paths(self) -> list[str]:
        """What the child writes its pid into (once per folder)."""
        return sorted({str(p) for p in self.paths.values()})

    @property
    def memory_path(self) -> str | None:
        return str(self.paths["memory"]) if "memory" in self.paths else None

    def members(self) -> list[int]:
        return sorted({pid for path in self.paths.values() for pid in _members(path)})

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this child for exceeding its memory limit."""
        path = self.paths.get("memory")
        if path is None:
            return False
        for line in _read(path / MemoryFiles.of(path.parent).events).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    def kill_all_and_remove(self, timeout_s: float = 5.0) -> int:
        killed = 0
        for path in dict.fromkeys(self.paths.values()):
            killed += _kill_and_remove(path, timeout_s)
        return killed


# --- child side --------------------------------------------------------------------------------

def join(paths: list[str]) -> bool:
    """Move this process into each cgroup (before it runs any student code)."""
    joined = bool(paths)
    for path in paths:
        try:
            _write(Path(path) / "cgroup.procs", str(os.getpid()))
        except OSError:
            joined = False
    return joined


def limit_memory_from_here(path: str | None, memory_mb: int) -> bool:
    """Child side, still privileged: the memory limit becomes what the cgroup holds now plus
    ``memory_mb``, so the student's code gets exactly that much more, whatever setting up cost."""
    if not path:
        return False
    folder = Path(path)
    files = MemoryFiles.of(folder.parent)
    try:
        limit = int(_read(folder / files.usage).split()[0]) + (memory_mb << 20)
        current = int(_read(folder / files.limit).split()[0]) if files.limit != "memory.max" else None
        if files.swap_limit and files.limit != "memory.max" and (folder / files.swap_limit).exists():
            # v1 refuses memsw below the memory limit: lower the memory limit first, then memsw.
            order = [files.limit, files.swap_limit] if current is None or limit <= current else \
                [files.swap_limit, files.limit]
            for name in order:
                _write(folder / name, str(limit))
        else:
            _write(folder / files.limit, str(limit))
        return True
    except (OSError, ValueError, IndexError):
        return False
