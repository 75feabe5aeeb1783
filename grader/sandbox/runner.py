"""The grader side of the sandbox: a ``Sandbox`` runs each probe in a fresh child forked from
its own torch-preloaded fork server, and is closed by the run that opened it.

Why a child per probe: a check that hangs, crashes or corrupts the interpreter (monkey-patching
torch, say) cannot touch the next check. Why a fork server: ``import torch`` costs seconds, a
fork from a server that already imported it costs tens of milliseconds.

The reply is read from a pipe with a deadline, byte by byte count, never unpickled; the child's
whole process group is killed when the probe ends, whatever happened.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import ValidationError

from grader.intake.reader import HandIn, read_hand_in
from grader.lab.manifest import Limits
from grader.sandbox import codec, policy
from grader.sandbox.cgroup import ChildCgroups
from grader.sandbox.forkserver import Child, ForkServer, wait_for_exit
from grader.sandbox.job import LOG_NAME, PROGRESS_NAME, WORK_NAME, ChildJob
from grader.sandbox.replies import ChildReply, IsolationReport, ProbeFailure, ProbeStatus, format_error
from grader.sandbox.uids import UidLease
from grader.sandbox.untrusted import clean_text, clean_tree

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 512 * 1024 * 1024
_CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
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


def _read_exact(fd: int, n: int, deadline: float, on_wait: Any = None) -> bytes:
    chunks, got = [], 0
    while got < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5) if on_wait else remaining)
        if not ready:
            if on_wait and time.monotonic() < deadline:
                on_wait()
                continue
            raise TimeoutError
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_reply(fd: int, deadline: float, on_wait: Any = None) -> bytes:
    """One message (a u64 length, then the bytes), read with a deadline and a size cap."""
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


class Sandbox:
    """Runs probes on hand-ins in limited, isolated children. One per run: it owns the fork
    server (started on ``start`` or the first probe, ended on ``close``) and says once what
    isolation this machine could not give."""

    def __init__(self, preload: Sequence[str] = ("grader.sandbox.worker",)) -> None:
        self.server = ForkServer(preload)
        self._warned: set[str] = set()
        self._cleaned = False
        self._retiring: list[threading.Thread] = []

    def start(self) -> "Sandbox":
        """Start the fork server now, in the background (its imports take seconds)."""
        if not self._cleaned:
            _remove_stale_workdirs()
            self._cleaned = True
        self.server.start()
        return self

    def warm(self) -> "Sandbox":
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

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warn(self, missing: Any) -> None:
        """Say once per run, in the grader's log, what isolation this machine could not give."""
        for item in missing if isinstance(missing, list) else []:
            if isinstance(item, str) and item not in self._warned:
                self._warned.add(item)
                log.warning("sandbox: %s", item)

    def run_probe(self, handin: HandIn | Path, module_file: str, probe: str, payload: dict[str, Any], limits: Limits,
                  hide: list[Path] | None = None, on_progress: Any = None, gpu: bool = False) -> ProbeReply:
        """Run one probe on a hand-in in a fresh, limited, isolated child; return its raw value.

        ``handin``: as the safe reader read it (a path is read here: tests, benchmarks);
        ``module_file``: the module's path in it; ``hide``: folders the child must not see (the
        labs, the other hand-ins, the results); ``gpu``: the child may use CUDA, so its memory is
        bounded in a way CUDA can live with."""
        if not isinstance(handin, HandIn):
            handin = read_hand_in(Path(handin), module_name=module_file)
        self.start()
        # The grader's folder for this child: its output file, its progress line and the empty
        # mount point of its working folder. The child sees the working folder (a tmpfs of its
        # own) and the progress line; the output file it only holds as descriptors 1 and 2.
        folder = Path(tempfile.mkdtemp(prefix=f"{_PROCESS_PREFIX}{os.getpid()}-"))
        workdir, log_file, progress = folder / WORK_NAME, folder / LOG_NAME, folder / PROGRESS_NAME
        workdir.mkdir()
        child = None
        lease = UidLease()
        groups = ChildCgroups(limits.max_processes + RELAYS, limits.memory_mb)
        self.warn(groups.missing)
        try:
            for path in (log_file, progress):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            if lease.uid is not None:
                os.chown(progress, lease.uid, lease.uid)
            env = dict(_CHILD_ENV, HOME=str(workdir), TMPDIR=str(workdir), PROGRESS_FILE=str(progress))
            plan = policy.plan([*(hide or []), Path(handin.source).resolve().parent], uid=lease.uid,
                               disk_mb=limits.disk_mb, progress_file=str(progress))
            job = ChildJob(workdir=str(workdir), log_file=str(log_file), module_file=module_file, probe=probe,
                           files=handin.files, payload=payload, memory_mb=limits.memory_mb, cpu_s=limits.cpu_s,
                           threads=limits.threads, max_processes=limits.max_processes, env=env, isolation=plan,
                           cgroups=groups.join_paths, memory_cgroup=groups.memory_path, gpu=gpu)
            child = self.server.spawn(job.encode())
            started = time.monotonic()  # the server's (re)start is not the hand-in's time
            deadline = started + limits.wall_s
            tail = lambda: _tail(log_file, limits.output_kb * 1024)  # noqa: E731
            try:
                poll = _progress_reader(progress, on_progress) if on_progress else None
                report = _read_reply(child.reply_fd, deadline, poll)  # sent before any student code ran
                raw = _read_reply(child.reply_fd, deadline, poll)
                if poll:
                    poll()  # the last epoch, when it ended between two polls
            except TimeoutError:
                child.kill()
                raise ProbeFailure(ProbeStatus.timeout, f"did not finish within the {limits.wall_s:g} s wall-time limit",
                                   log_tail=tail()) from None
            except codec.CodecError as exc:  # a length no reply can have: the child wrote on its own pipe
                raise ProbeFailure(ProbeStatus.error, f"sent back a reply the grader cannot read ({exc})",
                                   log_tail=tail()) from None
            except (EOFError, struct.error):
                exitcode = wait_for_exit(child, 5)
                oom = groups.oom_killed() if groups.memory_path else None
                status, message = _death_message(exitcode, limits, oom)
                raise ProbeFailure(status, message, out_of_memory=bool(oom) or (oom is None and exitcode == -signal.SIGKILL),
                                   log_tail=tail()) from None
            self.warn(IsolationReport.parse(report).isolation_missing)
            try:
                reply = ChildReply.model_validate(clean_tree(codec.decode(raw)))
            except codec.CodecError as exc:
                raise ProbeFailure(ProbeStatus.error, f"sent back a reply the grader cannot read ({exc})") from None
            except ValidationError:
                raise ProbeFailure(ProbeStatus.error, "sent back a malformed reply", log_tail=tail()) from None
            if not reply.ok:
                error = reply.error
                raise ProbeFailure(ProbeStatus.error, format_error(error), stage=reply.stage, error=error,
                                   log_tail=tail(), out_of_memory=bool(error and error.out_of_memory))
            return ProbeReply(value=reply.value, duration_s=time.monotonic() - started, log_tail=tail())
        finally:
            if child is not None:
                child.kill()
            shutil.rmtree(folder, ignore_errors=True)  # the child's mounts are in its namespace only
            self._retire(child, groups, lease)
