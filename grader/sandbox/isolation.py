"""Isolation of a sandboxed child, without Docker: what the grader plans, what the child applies.

As root (course staff's grading machine, CI), a child
- enters a new mount namespace and a new network namespace (no interface but a downed loopback);
- covers what it must not see with empty read-only tmpfs mounts: the labs (reference code,
  answers, test data), the folder holding the other hand-ins, the results folder, and every
  top-level folder that is not the system's (``/home``, ``/root``, ``/work``, ``/mnt`` …);
- gets private ``/tmp``, ``/var/tmp`` and ``/dev/shm`` (tmpfs, discarded with the namespace), with
  its own working directory bound back in, so it cannot leave files on the machine;
- re-exposes, read-only, just what Python needs (the interpreter's prefix, the venv, gradelab's
  package), even where they sit under a covered or private (mode 700) folder;
- drops to an unprivileged user (``nobody``), with no supplementary groups, ``no_new_privs`` set
  and a process-count limit.
Without root, or where the kernel refuses namespaces, the child runs with rlimits only, and the
grader warns once (``IsolationReport``); the verdict never depends on isolation being present.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = 65534
CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG = 38, 1
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")
# Top-level folders a child keeps seeing: the system. Every other one (/home, /work, /root, /mnt,
# /srv …, where course material and other checkouts live) is covered, whatever gradelab knows of it.
SYSTEM = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc", "sys", "run", "var",
          "tmp", "boot", "opt", "snap", "nix"}


@dataclass
class IsolationPlan:
    """Grader → child: computed in the grader from paths it knows, applied by the child."""

    hide: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    private_tmp: list[str] = field(default_factory=list)
    uid: int = NOBODY
    gid: int = NOBODY
    network: bool = True   # isolate the network
    tmp_size_mb: int = 256


def _world_traversable(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IXOTH)
    except OSError:
        return False


def _blocked_ancestor(path: Path) -> Path | None:
    """The highest folder above ``path`` that others may not enter (e.g. a mode-700 /root)."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not _world_traversable(parent):
            return parent
    return None


@functools.cache
def python_paths() -> list[str]:
    """What a child running as another user must still read: the interpreter, the venv, gradelab."""
    import grader

    paths = {Path(sys.base_prefix), Path(sys.prefix), Path(grader.__file__).resolve().parent}
    return sorted(str(p.resolve()) for p in paths if p.exists())


def _top_level() -> list[Path]:
    try:
        return [p for p in Path("/").iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def plan(hide: list[Path], *, network: bool = True) -> IsolationPlan:
    """``hide``: folders the child must not see. Top-level folders (``/``, ``/usr`` …) are never
    covered: the child needs the system's libraries."""
    keep = python_paths()
    private = [p for p in PRIVATE_TMP if os.path.isdir(p)]
    covers = [str(Path(h).resolve()) for h in hide if Path(h).exists() and Path(h).is_dir()]
    covers = [c for c in covers if len(Path(c).parts) > 2 and not any(_under(c, t) for t in private)]
    covers += [str(top) for top in _top_level() if top.name not in SYSTEM]
    covers += [str(b) for k in keep if (b := _blocked_ancestor(Path(k))) is not None]
    return IsolationPlan(hide=sorted(set(covers), key=lambda p: (p.count("/"), p)), keep=keep,
                         private_tmp=private, network=network)


# --- child side --------------------------------------------------------------------------------

_libc = None


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_c().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def die_with_parent() -> None:
    """SIGKILL this process when its parent (the forkserver) dies."""
    import signal

    try:
        _c().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(1)


def apply(plan: IsolationPlan, workdir: str, max_processes: int) -> list[str]:
    """Isolate this (child) process. Returns what could not be done, in words; never raises."""
    missing: list[str] = []
    if os.geteuid() != 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
        return ["not running as root: no namespaces, no privilege drop (rlimits only)"]
    namespaces = False
    try:
        _check(_c().unshare(CLONE_NEWNS | (CLONE_NEWNET if plan.network else 0)), "unshare")
        namespaces = True
    except OSError as exc:
        try:
            _check(_c().unshare(CLONE_NEWNS), "unshare")
            namespaces = True
            missing.append(f"no network namespace ({exc.strerror}): the child can reach the network")
        except OSError as exc2:
            missing.append(f"no mount or network namespace ({exc2.strerror}): the child sees the whole "
                           "filesystem its user may read, and the network")
    if namespaces:
        try:
            _cover_and_rebind(plan, workdir)
        except OSError as exc:
            missing.append(f"filesystem isolation incomplete ({exc})")
    try:
        for root, dirs, files in os.walk(workdir):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), plan.uid, plan.gid)
        os.chown(workdir, plan.uid, plan.gid)
        os.setgroups([])
        os.setgid(plan.gid)
        os.setuid(plan.uid)
    except OSError as exc:
        missing.append(f"could not drop privileges ({exc.strerror})")
    die_with_parent()  # changing credentials cleared it
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
        _c().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except (OSError, ValueError) as exc:
        missing.append(f"process limit not set ({exc})")
    return missing


def _cover_and_rebind(plan: IsolationPlan, workdir: str) -> None:
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    keep = [*plan.keep, workdir]
    # Every folder to bring back is opened before anything is covered: afterwards its path is gone.
    fds = {path: os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in keep if os.path.isdir(path)}
    covers = [(p, False) for p in plan.hide] + [(p, True) for p in plan.private_tmp]
    for cover, scratch in sorted(covers, key=lambda c: (c[0].count("/"), c[0])):
        if not os.path.isdir(cover):
            continue  # already covered by a shallower mount
        mode = "1777" if scratch else "755"
        size = f"{plan.tmp_size_mb}m" if scratch else "1m"
        _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={size}")
        for path, fd in fds.items():
            if _under(path, cover) and path != cover:
                os.makedirs(path, exist_ok=True)
                _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
                if path != workdir:
                    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, None)
        if not scratch:
            _mount(None, cover, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    for fd in fds.values():
        os.close(fd)
