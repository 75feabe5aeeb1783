"""The grader side of the sandbox: a ``Sandbox`` runs each probe in a fresh child forked from
its own torch-preloaded fork server, and is closed by the run that opened it.

Why a child per probe: a check that hangs, crashes or corrupts the interpreter (monkey-patching
torch, say) cannot touch the next check. Why a fork server: ``import torch`` costs seconds, a
fork from a server that already imported it costs tens of milliseconds.

The reply is read from a pipe with a deadline, byte by byte count, never unpickled; the child's
whole process group is killed when the probe ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from grader import interrupts
from grader.errors import SandboxError
from grader.lab.manifest import Limits
from grader.sandbox import codec, policy
from grader.sandbox.cgroup import ChildCgroups
from grader.sandbox.forkserver import Child, ForkServer, wait_for_exit
from grader.sandbox.job import LOG_NAME, PROGRESS_NAME, WORK_NAME, ChildJob, Request
from grader.sandbox.replies import (
    ChildReply,
    IsolationReport,
    ProbeFailure,
    ProbeStatus,
    Stage,
    format_error,
)
from grader.sandbox.staging import Staged
from grader.sandbox.uids import UidLease
from grader.sandbox.untrusted import clean_text, clean_tree

log = logging.getLogger(__name__)
LOAD_GRACE = 1.0  # a starved child may get up to this many times its wall time again (``Deadline``)

MAX_REPLY_BYTES = 512 * 1024 * 1024
# USER and LOGNAME: a child runs under a uid no passwd entry names, and getpass.getuser() (which
# torch's CUDA code asks for a cache folder) reads these first, rather than raise for the uid.
_CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "USER": "gradelab-child", "LOGNAME": "gradelab-child"}
_PROCESS_PREFIX = "gradelab-"
_MAX_RETIRING = 4
RELAYS = 2  # processes of a child that never run student code: the relay and the pid namespace's init


def _remove_stale_workdirs() -> None:
    """Working directories of graders that were killed outright (their pid is in the name)."""
    for path in Path(tempfile.gettempdir()).glob(f"{_PROCESS_PREFIX}*-*"):
        try:
            owner = int(path.name.removeprefix(_PROCESS_PREFIX).split("-")[0])
            os.kill(owner, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


@dataclass
class ProbeReply:
    value: Any
    duration_s: float
    log_tail: str


class Deadline:
    """A probe's wall-time deadline that does not depend on the machine's load: when it passes,
    the time the child's threads spent runnable but waiting for a CPU (the kernel's own record,
    ``/proc/<pid>/task/<tid>/schedstat``) is added, up to ``cap_s`` in all. A child that sleeps
    or loops is stopped on time; one starved by other work on the machine gets the seconds it
    was denied, so a verdict (a timeout, or the out-of-memory it was heading for) is the same on
    a busy machine as on an idle one."""

    def __init__(self, at: float, groups: ChildCgroups | None = None, cap_s: float = 0.0) -> None:
        self.at, self.groups, self.cap_s = at, groups, cap_s
        self.granted = 0.0
        self._baseline = _run_delays(groups) if groups is not None else {}

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def extend(self) -> bool:
        """Past the deadline: add the child's waiting time not yet granted; False when none is left."""
        if self.groups is None or self.granted >= self.cap_s:
            return False
        delays = _run_delays(self.groups)
        starved = max((d - self._baseline.get(t, 0) for t, d in delays.items()), default=0) / 1e9
        extra = min(starved, self.cap_s) - self.granted
        if extra < 0.05:
            return False
        self.granted += extra
        self.at = time.monotonic() + extra
        return True


def _run_delays(groups: ChildCgroups) -> dict[str, int]:
    """Nanoseconds each thread of the child's processes waited on a run queue (schedstat's
    second field)."""
    out = {}
    for pid in groups.members():
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                fields = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
                out[tid] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    return out


def _read_exact(fd: int, n: int, deadline: float | Deadline, on_wait: Any = None) -> bytes:
    if not isinstance(deadline, Deadline):
        deadline = Deadline(deadline)
    chunks, got = [], 0
    while got < n:
        remaining = deadline.remaining()
        if remaining <= 0:
            if deadline.extend():
                continue
            raise TimeoutError
        wake = interrupts.wakeup_fd()  # Ctrl-C or SIGTERM: the wait ends now, not at the deadline
        ready, _, _ = select.select([fd] if wake is None else [fd, wake], [], [],
                                    min(remaining, 0.5) if on_wait else remaining)
        if wake is not None and wake in ready:
            interrupts.check()
            ready.remove(wake)
        if not ready:
            if on_wait and deadline.remaining() > 0:
                on_wait()
            continue
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_reply(fd: int, deadline: float | Deadline, on_wait: Any = None) -> bytes:
    """One message (a u64 length, then the bytes), read with a deadline and a size cap."""
    if not isinstance(deadline, Deadline):
        deadline = Deadline(deadline)
    (size,) = struct.unpack("!Q", _read_exact(fd, 8, deadline, on_wait))
    if size > MAX_REPLY_BYTES:
        raise codec.CodecError(f"reply of {size} bytes refused")
    return _read_exact(fd, size, deadline, on_wait)


def _progress_reader(path: Path, on_progress: Any) -> Any:
    """Polls the line a harness writes after each epoch ("epoch epochs loss") for a progress bar."""
    last = [""]

    def poll() -> None:
        text = _read_child_file(path, 100, from_end=False)[0]
        if text != last[0]:
            last[0] = text
            parts = text.split()
            try:
                on_progress(int(parts[0]), int(parts[1]), float(parts[2]))
            except (IndexError, ValueError):
                pass
    return poll


def _read_child_file(path: Path, limit_bytes: int, from_end: bool) -> tuple[str, int]:
    """At most ``limit_bytes`` of a file the child could have replaced, and the file's size.

    The child owns its working directory: where the grader expects a file it may have put a
    symlink (to a file only the grader may read, which would then land in the report), a FIFO
    (whose opening would block the grader) or a device. Only a regular file is read, never
    following a link, never blocking; anything else reads as empty."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return "", 0
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "", 0
        if from_end:
            os.lseek(fd, max(0, info.st_size - limit_bytes), os.SEEK_SET)
        data = os.read(fd, limit_bytes)
    except OSError:
        return "", 0
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace"), info.st_size


def _tail(path: Path, limit_bytes: int) -> str:
    """The end of what the child printed, as text safe to show anywhere (``untrusted``)."""
    text, size = _read_child_file(path, limit_bytes, from_end=True)
    text = clean_text(text)
    return (f"[… {size - limit_bytes} earlier bytes of output dropped …]\n" + text) if size > limit_bytes else text


def _death_message(exitcode: int | None, limits: Limits, oom: bool | None = None) -> tuple[ProbeStatus, str]:
    """(status, message) for a child that ended without a reply. ``oom``: whether its memory
    cgroup recorded an OOM kill (``None``: no memory cgroup, so a SIGKILL is most likely memory)."""
    if oom:
        return ProbeStatus.error, f"ran out of memory: killed at the memory limit ({limits.memory_mb} MiB)"
    if exitcode is None:
        return ProbeStatus.error, "the process ended without answering"
    if exitcode == -signal.SIGXCPU:
        return ProbeStatus.timeout, f"CPU time limit exceeded ({limits.cpu_s:g} s of CPU)"
    if exitcode == -signal.SIGSEGV:
        return ProbeStatus.error, "crashed with a segmentation fault (SIGSEGV)"
    if exitcode == -signal.SIGKILL and oom is None:
        return ProbeStatus.error, (f"was killed (SIGKILL), most likely for exceeding the memory limit "
                                   f"({limits.memory_mb} MiB)")
    if exitcode == -signal.SIGKILL:
        return ProbeStatus.error, "was killed (SIGKILL)"
    if exitcode == -signal.SIGABRT:
        return ProbeStatus.error, "aborted (SIGABRT)"
    if exitcode < 0:
        return ProbeStatus.error, f"was killed by signal {signal.Signals(-exitcode).name}"
    return ProbeStatus.error, (f"ended the process (exit code {exitcode}) before answering: "
                               "sys.exit() or os._exit() in a submission ends the check")


# Who provides a run's sandbox. Unset (production): each run starts a fork server of its own and
# closes it with the run. Set with ``sharing``: a caller that makes many runs in one process (the
# test suite; a notebook grading hand-ins one by one) hands each run a warm sandbox it keeps; a run
# then settles its children when it closes (their uids, cgroups and folders given back) and leaves
# the server up.
_PROVIDER: ContextVar[Callable[[tuple[str, ...]], Sandbox] | None] = ContextVar("sandbox_provider", default=None)


@contextlib.contextmanager
def sharing(provider: Callable[[tuple[str, ...]], Sandbox]) -> Iterator[None]:
    """Runs opened in this context (this thread) take their sandbox from ``provider`` (called with
    the fork server's preload list) instead of starting one."""
    token = _PROVIDER.set(provider)
    try:
        yield
    finally:
        _PROVIDER.reset(token)


def sandbox_for(preload: Sequence[str]) -> tuple[Sandbox, bool]:
    """A sandbox for a run, and whether the run owns it (closes it) or only settles it."""
    provider = _PROVIDER.get()
    if provider is not None:
        return provider(tuple(preload)), False
    return Sandbox(preload), True


@contextlib.contextmanager
def opened(preload: Sequence[str]) -> Iterator[Sandbox]:
    """A sandbox for the length of a ``with``: the provided one (settled at the end), else a new one
    (closed at the end)."""
    sandbox, owned = sandbox_for(preload)
    try:
        yield sandbox
    finally:
        sandbox.close() if owned else sandbox.settle()


class Sandbox:
    """Runs probes on hand-ins in limited, isolated children. One per run: it owns the fork
    server (started on ``start`` or the first probe, ended on ``close``) and says once what
    isolation this machine could not give."""

    def __init__(self, preload: Sequence[str] = ("grader.sandbox.worker",), *, child_per_probe: bool = False) -> None:
        self.server = ForkServer(preload)
        # True: every probe in a child of its own, as gradelab did before one child served a
        # hand-in (the benchmark compares the two; nothing else sets it).
        self.child_per_probe = child_per_probe
        self._warned: set[str] = set()
        self._cleaned = False
        self._retiring: list[threading.Thread] = []

    def start(self) -> Sandbox:
        """Start the fork server now, in the background (its imports take seconds)."""
        if not self._cleaned:
            _remove_stale_workdirs()
            self._cleaned = True
        self.server.start()
        return self

    def warm(self) -> Sandbox:
        """Start the fork server and wait until its imports are done (benchmarks, a server's
        workers: the first hand-in should not pay for them)."""
        self.start()
        self.server.wait_ready()
        return self

    def close(self) -> None:
        self.settle()
        self.server.close()

    def settle(self) -> None:
        """Wait until every finished child is gone: its processes reaped, its cgroups removed,
        its uid given back."""
        while self._retiring:
            self._retiring.pop().join()

    def _retire(self, child: Child | None, groups: ChildCgroups, lease: UidLease) -> None:
        """End a child in the background. Its processes (three, each the size of the fork server)
        take tens of milliseconds to be torn down by the kernel: the next child need not wait for
        that, only its uid and cgroups must, and they are given back once nothing is left."""
        def retire() -> None:
            if child is not None:
                wait_for_exit(child, 5)  # its end is the end of its pid namespace: all in it are gone
                child.close()
            groups.kill_all_and_remove()  # what is left: daemons of a child without a pid namespace
            lease.release()

        self._retiring = [t for t in self._retiring if t.is_alive()]
        while len(self._retiring) >= _MAX_RETIRING:
            self._retiring.pop(0).join()
        thread = threading.Thread(target=retire, name="gradelab-retire", daemon=True)
        thread.start()
        self._retiring.append(thread)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warn(self, missing: Any) -> None:
        """Say once per run, in the grader's log, what isolation this machine could not give."""
        for item in missing if isinstance(missing, list) else []:
            if isinstance(item, str) and item not in self._warned:
                self._warned.add(item)
                log.warning("sandbox: %s", item)

    def session(self, handin: Staged, module_file: str, limits: Limits, hide: list[Path] | None = None,
                gpu: bool = False) -> ChildSession:
        """A child for one hand-in's probes: it imports the student's module once and answers
        probe after probe (``ChildSession.call``) under ``limits``' memory, threads and processes;
        each call brings its own wall and CPU time. Close it when the hand-in is graded.

        ``handin``: as the safe reader read it (``staging.Staged``);
        ``module_file``: the module's path in it; ``hide``: folders the child must not see (the
        labs, the other hand-ins, the results); ``gpu``: the child may use CUDA, so its memory is
        bounded in a way CUDA can live with."""
        self.start()
        return ChildSession(self, handin, module_file, limits, list(hide or []), gpu)

    def run_probe(self, handin: Staged, module_file: str, probe: str, payload: dict[str, Any], limits: Limits,
                  hide: list[Path] | None = None, on_progress: Any = None, gpu: bool = False) -> ProbeReply:
        """Run one probe on a hand-in in a fresh, limited, isolated child; return its raw value."""
        with self.session(handin, module_file, limits, hide, gpu) as child:
            return child.call(probe, payload, limits, on_progress)


def _settled_out_of_memory(groups: ChildCgroups) -> bool:
    """After a child was killed at its wall time: whether the kernel's record says it ran out of
    memory (OOM-killed, stalled in an OOM, or its memory reached the limit before the wall time
    fired: reclaim slows such a child down on a busy machine). The kernel's counters are the
    verdict, not which limit the grader saw fire first."""
    return groups.held_at_limit()


class _Refused(Exception):
    """The child could not isolate itself and ran no student code (its own words)."""


class ChildSession:
    """One hand-in's child, as the grader holds it. A probe that crashes the child, hangs past its
    wall time or runs out of memory ends that child; the next probe starts a fresh one (a new
    import), so a fault costs only the checks that needed the probe that caused it."""

    def __init__(self, sandbox: Sandbox, handin: Staged, module_file: str, limits: Limits, hide: list[Path],
                 gpu: bool) -> None:
        self.sandbox, self.handin, self.module_file = sandbox, handin, module_file
        self.limits, self.hide, self.gpu = limits, hide, gpu
        self.children = 0  # started so far (one, unless a probe ended one)
        self._child: Child | None = None
        self._folder: Path | None = None
        self._groups: ChildCgroups | None = None
        self._lease: UidLease | None = None
        self._isolation_read = False
        self._refusals: list[str] = []  # what isolation failed, per child that refused to run the code

    def __enter__(self) -> ChildSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the child (it leaves its request loop when its job pipe closes; it is killed all the
        same) and give back its folder, cgroups and uid."""
        child, self._child = self._child, None
        if self._folder is None:
            return
        if child is not None:
            child.end_requests()
            child.kill()
        shutil.rmtree(self._folder, ignore_errors=True)  # the child's mounts are in its namespace only
        assert self._groups is not None and self._lease is not None
        self.sandbox._retire(child, self._groups, self._lease)
        self._folder = self._groups = self._lease = None

    def _start(self) -> None:
        limits, handin = self.limits, self.handin
        # The grader's folder for this child: its output file, its progress line and the empty
        # mount point of its working folder. The child sees the working folder (a tmpfs of its
        # own) and the progress line; the output file it only holds as descriptors 1 and 2.
        folder = Path(tempfile.mkdtemp(prefix=f"{_PROCESS_PREFIX}{os.getpid()}-"))
        workdir, log_file, progress = folder / WORK_NAME, folder / LOG_NAME, folder / PROGRESS_NAME
        workdir.mkdir()
        self._folder, self._lease = folder, UidLease()
        self._groups = ChildCgroups(limits.max_processes + RELAYS, limits.memory_mb)
        self.sandbox.warn(self._groups.missing)
        for path in (log_file, progress):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        if self._lease.uid is not None:
            os.chown(progress, self._lease.uid, self._lease.uid)
        env = dict(_CHILD_ENV, HOME=str(workdir), TMPDIR=str(workdir), PROGRESS_FILE=str(progress))
        if "CUDA_VISIBLE_DEVICES" in os.environ:  # a worker's GPU (--jobs on a GPU machine)
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        plan = policy.plan([*self.hide, Path(handin.source).resolve().parent], uid=self._lease.uid,
                           disk_mb=limits.disk_mb, progress_file=str(progress))
        job = ChildJob(workdir=str(workdir), log_file=str(log_file), module_file=self.module_file,
                       files=dict(handin.files), memory_mb=limits.memory_mb, threads=limits.threads,
                       max_processes=limits.max_processes, env=env, isolation=plan, cgroups=self._groups.join_paths,
                       memory_cgroup=self._groups.memory_path, gpu=self.gpu)
        self._child = self.sandbox.server.spawn(job.encode())
        self._isolation_read = False
        self.children += 1

    def call(self, probe: str, payload: dict[str, Any], limits: Limits, on_progress: Any = None) -> ProbeReply:
        """One probe, answered by this hand-in's child (started first if it has none): its raw
        value, or a ``ProbeFailure`` saying how the student's code failed to give one. A child
        that could not isolate itself ran nothing: a fresh one is tried once, then
        ``SandboxError`` names what failed (every later call of this hand-in says it at once)."""
        while True:
            if len(self._refusals) >= 2:
                raise SandboxError(f"the sandbox could not isolate this hand-in's code, so it was not run "
                                   f"(tried twice): {self._refusals[-1]}")
            try:
                return self._call(probe, payload, limits, on_progress)
            except _Refused as refused:
                self._refusals.append(str(refused))
                log.warning("sandbox: refused to run %s: %s", self.module_file, refused)

    def _call(self, probe: str, payload: dict[str, Any], limits: Limits, on_progress: Any = None) -> ProbeReply:
        if self._child is None:
            self.close()
            self._start()
        child, folder, groups = self._child, self._folder, self._groups
        assert child is not None and folder is not None and groups is not None
        log_file, progress = folder / LOG_NAME, folder / PROGRESS_NAME
        started = time.monotonic()  # the server's (re)start is not the hand-in's time
        deadline = Deadline(started + limits.wall_s, groups, cap_s=LOAD_GRACE * limits.wall_s)
        tail = lambda: _tail(log_file, limits.output_kb * 1024)
        child.send(Request(probe=probe, payload=payload, cpu_s=limits.cpu_s).encode())
        try:
            poll = _progress_reader(progress, on_progress) if on_progress else None
            if not self._isolation_read:
                report = IsolationReport.parse(_read_reply(child.reply_fd, deadline, poll))  # before any student code
                self.sandbox.warn(report.isolation_missing)
                self._isolation_read = True
                if report.isolation_refused is not None:
                    self._end()
                    raise _Refused(report.isolation_refused)
            raw = _read_reply(child.reply_fd, deadline, poll)
            if poll:
                poll()  # the last epoch, when it ended between two polls
        except TimeoutError:
            out_of_memory = bool(groups.memory_path) and _settled_out_of_memory(groups)  # before the kill
            self._end()
            if out_of_memory or (groups.memory_path and _settled_out_of_memory(groups)):
                raise ProbeFailure(ProbeStatus.error, f"ran out of memory: stopped at the memory limit "
                                   f"({limits.memory_mb} MiB)", out_of_memory=True, log_tail=tail()) from None
            raise ProbeFailure(ProbeStatus.timeout, f"did not finish within the {limits.wall_s:g} s wall-time limit",
                               log_tail=tail()) from None
        except codec.CodecError as exc:  # a length no reply can have: the child wrote on its own pipe
            self._end()
            raise ProbeFailure(ProbeStatus.error, f"sent back a reply the grader cannot read ({exc})",
                               log_tail=tail()) from None
        except (EOFError, struct.error):
            exitcode = wait_for_exit(child, 5)
            oom = groups.out_of_memory() if groups.memory_path else None
            self._end()
            status, message = _death_message(exitcode, limits, oom)
            raise ProbeFailure(status, message, out_of_memory=bool(oom) or (oom is None and exitcode == -signal.SIGKILL),
                               log_tail=tail()) from None
        try:
            reply = ChildReply.model_validate(clean_tree(codec.decode(raw)))
        except codec.CodecError as exc:
            self._end()
            raise ProbeFailure(ProbeStatus.error, f"sent back a reply the grader cannot read ({exc})") from None
        except ValidationError:
            self._end()
            raise ProbeFailure(ProbeStatus.error, "sent back a malformed reply", log_tail=tail()) from None
        if not reply.ok:
            error = reply.error
            if reply.stage == Stage.import_:
                self._end()  # the child ends after an import failure
            raise ProbeFailure(ProbeStatus.error, format_error(error), stage=reply.stage, error=error,
                               log_tail=tail(), out_of_memory=bool(error and error.out_of_memory))
        return ProbeReply(value=reply.value, duration_s=time.monotonic() - started, log_tail=tail())

    def _end(self) -> None:
        """This child is done for (it crashed, hung, or cannot be trusted to frame its replies):
        the next call starts a fresh one."""
        if self._child is not None:
            self._child.kill()
        self._child = None
