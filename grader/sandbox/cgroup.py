"""A ``pids`` cgroup per child: a cap on its processes, and a way to find every one of them.

A process group is not enough: a grandchild that calls ``setsid()`` (a daemon) leaves it and
would outlive the check. Membership of a cgroup is inherited by every descendant and cannot be
left without privileges, so killing the cgroup's members reaps them all. Where no cgroup can be
created (not root, no pids controller), the sandbox falls back to RLIMIT_NPROC and the process
group, and the grader says so once.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

_V1 = Path("/sys/fs/cgroup/pids")
_V2 = Path("/sys/fs/cgroup")
_counter = itertools.count()
_root: Path | None | bool = False  # False: not probed yet


def _probe_root() -> Path | None:
    candidates = []
    if (_V1 / "cgroup.procs").exists():
        candidates.append(_V1)
    if "pids" in _read(_V2 / "cgroup.controllers").split():
        candidates.append(_V2)
    for base in candidates:
        test = base / f"gradelab-probe-{os.getpid()}"
        try:
            test.mkdir()
            (test / "pids.max").write_text("8")
            test.rmdir()
            return base
        except OSError:
            try:
                test.rmdir()
            except OSError:
                pass
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def available() -> Path | None:
    """Where per-child cgroups can be made; ``None`` when they cannot."""
    global _root
    if _root is False:
        _root = _probe_root()
        if _root is not None:
            reap_stale(_root)
    return _root  # type: ignore[return-value]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def reap_stale(root: Path) -> int:
    """Kill and remove the cgroups of graders that died without cleaning up (``kill -9``)."""
    reaped = 0
    for path in root.glob("gradelab-*-*"):
        try:
            owner = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if owner != os.getpid() and not _alive(owner):
            group = PidsCgroup.__new__(PidsCgroup)
            group.path = path
            reaped += group.kill_all_and_remove(timeout_s=2.0)
    return reaped


class PidsCgroup:
    """Created by the grader before the child starts; the child joins it as its first act."""

    def __init__(self, max_processes: int) -> None:
        root = available()
        self.path: Path | None = None
        if root is None:
            return
        path = root / f"gradelab-{os.getpid()}-{next(_counter)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_processes))
            self.path = path
        except OSError as exc:
            log.warning("could not create a pids cgroup (%s); falling back to RLIMIT_NPROC", exc)

    def members(self) -> list[int]:
        if self.path is None:
            return []
        return [int(p) for p in _read(self.path / "cgroup.procs").split()]

    def kill_all_and_remove(self, timeout_s: float = 5.0) -> int:
        """SIGKILL every member until none is left, then remove the cgroup. Returns how many were killed."""
        if self.path is None:
            return 0
        killed: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while True:
            pids = self.members()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                log.warning("processes %s in %s survived SIGKILL", pids, self.path)
                break
            time.sleep(0.005)
        for _ in range(200):  # the kernel frees the cgroup once its last member is reaped
            try:
                self.path.rmdir()
                break
            except OSError:
                time.sleep(0.01)
        return len(killed)


def join(path: str | None) -> bool:
    """Child side: move this process into the cgroup (before it runs any student code)."""
    if not path:
        return False
    try:
        with open(os.path.join(path, "cgroup.procs"), "w") as fh:
            fh.write(str(os.getpid()))
        return True
    except OSError:
        return False
