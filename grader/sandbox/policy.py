"""What a sandboxed child may see and inherit, in the order it is applied.

The grader runs as root (course staff's grading machine, CI); a child runs a student's code.
From the fork server to the student's first line, a child
1. keeps no descriptor of the server's: only 0 (``/dev/null``), 1 and 2 (its output file, in a
   folder of the grader's it cannot open by name) and its reply pipe (``forkserver``);
2. joins its own ``pids`` and ``memory`` cgroups, which every process it makes inherits and none
   can leave (``cgroup``): a cap on processes, a cap on memory that counts what rlimits miss
   (a memfd, its tmpfs folders), a way to kill everything it started;
3. enters new mount, network, IPC and pid namespaces: no interface but a downed loopback, no
   SysV shared memory left behind, no process of the machine in sight;
4. covers what it must not see with empty read-only tmpfs mounts: the labs (reference code,
   answers), the data sets (``--data-root``, gradelab's cache: test labels), the folder holding
   the other hand-ins, the results, and every top-level folder that is not the system's
   (``/home``, ``/root``, ``/work``, ``/mnt`` …);
5. gets private ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run/lock`` (tmpfs, gone with the
   namespace) and re-exposes, read-only, just what Python needs (the interpreter's prefix, the
   venv, gradelab's package), even where they sit under a covered or mode-700 folder;
6. works in a **size-capped tmpfs** (``disk_mb``, a cap on files too) holding the hand-in as the
   safe reader read it: nothing it writes reaches the machine's disk; the one file it shares
   with the grader, the progress line, is bound in and cannot be replaced;
7. forks twice: the first process stays outside the pid namespace and relays how the student's
   process ended (exit code or signal) to the fork server; the second is the namespace's init,
   mounts a private ``/proc`` (only the child's own processes, ``hidepid=2``) and reaps; the
   third runs the student's code (pid 2), so signals and limits behave as for any process;
8. drops to a **uid of its own** (leased from 210000–219999, never shared by two live children,
   across runs too: ``uids``), with no supplementary groups, ``no_new_privs``, ``RLIMIT_NPROC``
   and a parent-death signal, after setting its memory limit to what it holds plus ``memory_mb``.
Without root, or where the kernel refuses a step, the child runs with what could be applied
(rlimits at least), and the grader warns once with what is missing; the verdict never depends on
isolation being present.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import signal
import stat
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = 65534
CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWPID = 0x00020000, 0x40000000, 0x08000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG = 38, 1
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# Top-level folders a child keeps seeing: the system. Every other one (/home, /work, /root, /mnt,
# /srv …, where course material and other checkouts live) is covered, whatever gradelab knows of it.
SYSTEM = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc", "sys", "run", "var",
          "tmp", "boot", "opt", "snap", "nix"}
# Folders that can never be covered, even when asked to: the child could not start without them.
ESSENTIAL = {"/", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/etc", "/dev", "/proc", "/sys"}
WORK_FILES = 20_000  # inodes of the working folder: a cap on the number of files, not only their size


@dataclass
class IsolationPlan:
    """Grader → child: computed in the grader from paths it knows, applied by the child."""

    hide: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    private_tmp: list[str] = field(default_factory=list)
    uid: int | None = None          # leased for this child (``uids``); None: nobody
    network: bool = True            # isolate the network
    disk_mb: int = 256              # the working folder's tmpfs, and each private /tmp
    progress_file: str | None = None  # the grader's file, bound into the working folder's parent


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


def plan(hide: list[Path], *, uid: int | None = None, disk_mb: int = 256, progress_file: str | None = None,
         network: bool = True) -> IsolationPlan:
    """``hide``: folders the child must not see. The system's own folders (``/usr``, ``/etc`` …)
    are never covered: the child needs them to start."""
    keep = python_paths()
    private = [p for p in PRIVATE_TMP if os.path.isdir(p) and not os.path.islink(p)]
    covers = [str(Path(h).resolve()) for h in hide if Path(h).is_dir()]
    covers = [c for c in covers if c not in ESSENTIAL and not any(_under(c, t) for t in private)]
    covers += [str(top) for top in _top_level() if top.name not in SYSTEM]
    covers += [str(b) for k in keep if (b := _blocked_ancestor(Path(k))) is not None]
    return IsolationPlan(hide=sorted(set(covers), key=lambda p: (p.count("/"), p)), keep=keep,
                         private_tmp=private, uid=uid, network=network, disk_mb=disk_mb,
                         progress_file=progress_file)


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
    enc = lambda s: s.encode() if s is not None else None
    _check(_c().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


_in_pid_namespace = False  # there, a parent of pid 1 (the init) or 0 (outside) is no orphan's


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (the fork server, or the process above it)."""
    try:
        _c().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1 and not _in_pid_namespace:  # the parent died before the signal was armed
        os._exit(1)


def _oom_score(adj: int) -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write(str(adj))
    except OSError:
        pass


def contain(plan: IsolationPlan, workdir: str, stage: Callable[[str], None], *, max_processes: int,
            memory_cgroup: str | None, memory_mb: int, keep_fds: tuple[int, ...] = ()) -> list[str]:
    """Isolate this (child) process as the module says; ``stage(workdir)`` writes the hand-in into
    the working folder once it exists. Returns, in the process that will run the student's code,
    what could not be done, in words; never raises. ``keep_fds``: descriptors the relaying
    processes close (the reply pipe), so that the grader sees the end of the reply when the
    student's process ends."""
    missing: list[str] = []
    if os.geteuid() != 0:
        stage(workdir)
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
        return ["not running as root: no namespaces, no privilege drop, no tmpfs folder (rlimits only)"]
    _oom_score(-1000)  # the processes that relay are never the ones the memory cgroup kills
    namespaces = _unshare(plan, missing)
    if "mount" in namespaces:
        try:
            _build_filesystem(plan, workdir)
        except OSError as exc:
            missing.append(f"filesystem isolation incomplete ({exc})")
    else:
        os.makedirs(workdir, exist_ok=True)
    if "pid" in namespaces:
        _fork_into_pid_namespace(missing, keep_fds)  # returns in the student's process, pid 2
    try:
        stage(workdir)
    except OSError as exc:
        missing.append(f"the hand-in could not be written to the working folder ({exc})")
    _oom_score(0)
    if memory_cgroup:
        from grader.sandbox.cgroup import limit_memory_from_here

        if not limit_memory_from_here(memory_cgroup, memory_mb):
            missing.append("the memory limit could not be set from the child's size")
    uid = plan.uid if plan.uid is not None else NOBODY
    if plan.uid is None:
        missing.append("no uid of its own: the child runs as nobody, like children of other runs")
    try:
        for root, dirs, files in os.walk(workdir):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), uid, uid)
        os.chown(workdir, uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    except OSError as exc:
        missing.append(f"could not drop privileges ({exc.strerror})")
    die_with_parent()  # changing credentials cleared it
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
        _c().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except (OSError, ValueError) as exc:
        missing.append(f"process limit not set ({exc})")
    return missing


def _unshare(plan: IsolationPlan, missing: list[str]) -> set[str]:
    """Each namespace on its own, so that one the kernel refuses costs only itself."""
    entered = set()
    wanted = [("mount", CLONE_NEWNS, "no mount namespace: the child sees the whole filesystem its user may read"),
              ("ipc", CLONE_NEWIPC, "no IPC namespace: SysV shared memory could outlive the child"),
              ("pid", CLONE_NEWPID, "no pid namespace: the child sees every process of the machine")]
    if plan.network:
        wanted.insert(1, ("network", CLONE_NEWNET, "no network namespace: the child can reach the network"))
    for name, flag, consequence in wanted:
        try:
            _check(_c().unshare(flag), "unshare")
            entered.add(name)
        except OSError as exc:
            missing.append(f"{consequence} ({exc.strerror})")
    return entered


def _build_filesystem(plan: IsolationPlan, workdir: str) -> None:
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    # Everything to bring back is opened before anything is covered: afterwards its path is gone.
    fds = {path: os.open(path, os.O_RDONLY | os.O_DIRECTORY) for path in plan.keep if os.path.isdir(path)}
    progress = plan.progress_file
    progress_fd = os.open(progress, os.O_RDONLY | os.O_NOFOLLOW) if progress else None
    covers = [(p, False) for p in plan.hide] + [(p, True) for p in plan.private_tmp]
    for cover, scratch in sorted(covers, key=lambda c: (c[0].count("/"), c[0])):
        if not os.path.isdir(cover):
            continue  # already covered by a shallower mount
        options = f"mode=1777,size={plan.disk_mb}m" if scratch else "mode=755,size=1m"
        _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, options)
        for path, fd in fds.items():
            if _under(path, cover) and path != cover:
                os.makedirs(path, exist_ok=True)
                _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
                _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC, None)
        if not scratch:
            _mount(None, cover, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    for fd in fds.values():
        os.close(fd)
    # The working folder: a tmpfs of its own, capped in bytes and in files, owned by the child's uid.
    uid = plan.uid if plan.uid is not None else NOBODY
    os.makedirs(workdir, exist_ok=True)
    _mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV,
           f"mode=700,uid={uid},gid={uid},size={plan.disk_mb}m,nr_inodes={WORK_FILES}")
    if progress_fd is not None:
        assert progress is not None
        same = False
        try:
            same = os.stat(progress, follow_symlinks=False).st_ino == os.fstat(progress_fd).st_ino
        except OSError:
            os.close(os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        if not same:
            _mount(f"/proc/self/fd/{progress_fd}", progress, None, MS_BIND, None)
        os.close(progress_fd)


def _fork_into_pid_namespace(missing: list[str], keep_fds: tuple[int, ...]) -> None:
    """After ``unshare(CLONE_NEWPID)`` only this process's children are in the new namespace.
    This process relays; its child is the namespace's init; the init's child returns from here
    and runs the student's code. Two processes that never run student code stand between it and
    the fork server, so how it ended reaches the grader exactly (a signal, an exit code)."""
    status_r, status_w = os.pipe()
    init = os.fork()
    if init:
        os.close(status_w)
        for fd in keep_fds:
            os.close(fd)
        _relay(init, status_r)
    os.close(status_r)
    global _in_pid_namespace
    _in_pid_namespace = True
    die_with_parent()
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    except OSError as exc:
        missing.append(f"no private /proc ({exc.strerror}): the child can read other processes' command lines")
    student = os.fork()
    if student:
        for fd in keep_fds:
            os.close(fd)
        _init(student, status_w)
    os.close(status_w)
    die_with_parent()


def _init(student: int, status_w: int) -> None:
    """The pid namespace's init: reap whatever ends (orphans are re-parented here), and when the
    student's process ends, pass its wait status on and exit, which ends every process left in
    the namespace."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == student:
            os.write(status_w, struct.pack("!i", status))
            os._exit(0)


def _relay(init: int, status_r: int) -> None:
    """Outside the pid namespace: end the way the student's process ended."""
    while True:
        try:
            _, status = os.waitpid(init, 0)
            break
        except ChildProcessError:
            os._exit(70)
    data = os.read(status_r, 4)
    if len(data) == 4:
        status = struct.unpack("!i", data)[0]
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        os._exit(code)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        signal.signal(-code, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [-code])
    except (OSError, ValueError):
        pass  # SIGKILL: neither caught nor blocked anyway
    os.kill(os.getpid(), -code)
    os._exit(128 - code)
