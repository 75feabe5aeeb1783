"""What a test may look at and kill on a shared machine: only what it started. Two suites (or a
real grading job) on one machine run children in the same leased uid range and Ray workers with
the same process title; a test counts or kills a process only when it is its own: a descendant of
the test's process, or a sandbox child whose cgroups were made by this process, one of its
descendants, or a grader that is gone (its leftovers are nobody else's)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from grader.sandbox.uids import FIRST_UID, LAST_UID

_OWNER = re.compile(r"/gradelab-(\d+)-\d+")


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and parentheses


def descends_from(pid: int, ancestor: int) -> bool:
    seen = set()
    while pid and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        parent = parent_of(pid)
        if parent is None:
            return False
        pid = parent
    return False


def _uid(pid: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _owners(pid: str) -> set[int]:
    """The grader processes that made the cgroups this process is in."""
    try:
        return {int(m) for m in _OWNER.findall(Path(f"/proc/{pid}/cgroup").read_text())}
    except OSError:
        return set()


def _someone_elses(owner: int) -> bool:
    """A live grader that is neither this process nor one of its descendants."""
    return owner != os.getpid() and Path(f"/proc/{owner}").exists() and not descends_from(owner, os.getpid())


def own_child_uid_processes() -> list[str]:
    """Processes running as a sandbox child's uid that this test process is answerable for, as
    "uid pid cmdline" lines: those of another live grader (another suite, a real grading job)
    are left out."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        uid = _uid(pid)
        if uid is None or not FIRST_UID <= uid <= LAST_UID:
            continue
        owners = _owners(pid)
        if owners and all(_someone_elses(o) for o in owners):
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found.append(f"{uid} {pid} {cmd}")
    return found
