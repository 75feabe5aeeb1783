"""A fork server of gradelab's own: one process that imported torch once and forks a child per
job, owned by the run that started it and closed with it.

Why not ``multiprocessing``'s forkserver: it is a process-wide singleton, it pickles the job, it
re-runs the grader's ``__main__`` in every child unless patched globally, and its children
inherit its descriptors (its "alive" pipe, the resource tracker's) — one byte written to the
alive pipe by a hand-in killed the server, and the next honest hand-in paid with a timeout.

Protocol, over a Unix socket pair (the grader's end ``ForkServer``, the server's end ``serve``):
- the server imports what it preloads, then sends ``ready``;
- per job the grader sends a one-byte request with three descriptors: the read end of a job
  pipe, the write end of the reply pipe, and the write end of a status pipe; the server forks,
  answers with the child's pid, keeps the status pipe and closes the rest;
- the child keeps only the job and reply pipes (moved to descriptors 3 and 4) and closes every
  other descriptor before it reads its job;
- when the server reaps the child it writes the exit code (negative: the signal) to the status
  pipe, so the grader can say how a child died without being its parent.
The server exits when its socket closes: the grader ended, however it ended.
"""

from __future__ import annotations

import errno
import fcntl
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.errors import SandboxError

JOB_FD, REPLY_FD = 3, 4  # where a child finds its two pipes
_REQUEST = b"J"


@dataclass
class Child:
    """A forked child as the grader holds it: its pid and the grader's ends of its pipes."""

    pid: int
    reply_fd: int
    status_fd: int
    job_fd: int = -1
    _exitcode: int | None = None
    _writer: threading.Thread | None = None

    def exitcode(self, timeout: float = 0.0) -> int | None:
        """The child's exit code once the server has reaped it (``None`` while it runs)."""
        if self._exitcode is None and self.status_fd >= 0:
            ready, _, _ = select.select([self.status_fd], [], [], timeout)
            if ready:
                data = os.read(self.status_fd, 4)
                self._exitcode = struct.unpack("!i", data)[0] if len(data) == 4 else None
        return self._exitcode

    def kill(self) -> None:
        """SIGKILL the child's process group and the child, unless it is known to be gone (its pid
        may then belong to another process)."""
        if self.exitcode() is not None:
            return
        for kill in (os.killpg, os.kill):
            try:
                kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def send(self, message: bytes) -> None:
        """Write a message (a u64 length, then the bytes) to the child's job pipe in the
        background: a large one (training data, a hand-in's files) does not fit in a pipe's
        buffer, and the grader must meanwhile read replies against its deadline. Each message
        waits for the one before, so their bytes never interleave (the job, then the first
        request, are sent back to back)."""
        fd, before = self.job_fd, self._writer

        def write() -> None:
            if before is not None:
                before.join()
            try:
                view = memoryview(struct.pack("!Q", len(message)) + message)
                while view:
                    view = view[os.write(fd, view):]
            except OSError:
                pass  # the child died before reading it (or was closed): its exit code says why

        self._writer = threading.Thread(target=write, name=f"gradelab-job-{self.pid}", daemon=True)
        self._writer.start()

    def end_requests(self) -> None:
        """Close the job pipe (once what was sent is written): a child waiting for its next
        request exits."""
        if self._writer is not None:
            self._writer.join(1)  # a child that stopped reading is killed anyway
        if self.job_fd >= 0:
            os.close(self.job_fd)
            self.job_fd = -1

    def close(self) -> None:
        self.end_requests()
        for fd in (self.reply_fd, self.status_fd):
            if fd >= 0:
                os.close(fd)
        self.reply_fd = self.status_fd = -1


class ForkServer:
    """The grader's handle on its fork server. ``start`` returns at once (the server imports
    in the background, so a CLI can start it before its own imports); ``spawn`` waits for it,
    and starts a fresh server when the current one has died, so its death is never charged to a
    hand-in; ``close`` ends it."""

    def __init__(self, preload: Sequence[str] = ("grader.sandbox.worker",), ready_timeout: float = 300.0) -> None:
        self.preload = tuple(preload)
        self.ready_timeout = ready_timeout
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._log: int | None = None  # the server's stderr: an unlinked file, so a kill -9 leaves nothing
        self._ready = False
        self._lock = threading.Lock()
        self.restarts = 0
        self.spawned = 0  # children forked so far (benchmarks and tests count them)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> ForkServer:
        with self._lock:
            if self._proc is None:
                self._launch()
        return self

    def _launch(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd, log = tempfile.mkstemp(prefix="gradelab-forkserver-", suffix=".log")
        os.unlink(log)  # the server writes to it and we read it through descriptors only
        # The server imports the same gradelab as the grader (a checkout's, not whatever is installed).
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, *(p for p in sys.path if p)]))
        code = f"from grader.sandbox.forkserver import serve; serve({theirs.fileno()}, {list(self.preload)!r})"
        try:
            # -P: no working directory on sys.path, which would come before PYTHONPATH (another
            # checkout's grader/ in the working directory would be imported instead).
            self._proc = subprocess.Popen([sys.executable, "-P", "-c", code], pass_fds=[theirs.fileno()], env=env,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=fd,
                                          start_new_session=True)
        finally:
            theirs.close()
        self._sock, self._log, self._ready = ours, fd, False

    def wait_ready(self) -> None:
        """Block until the server has imported what it preloads (starting it if needed)."""
        self.start()
        with self._lock:
            self._wait_ready()

    def _wait_ready(self) -> None:
        if self._ready:
            return
        assert self._sock is not None
        self._sock.settimeout(self.ready_timeout)
        try:
            message = self._sock.recv(64)
        except OSError:
            message = b""
        finally:
            self._sock.settimeout(None)
        if message != b"ready":
            raise SandboxError(f"the sandbox's fork server did not start: {self._stderr_tail() or 'no output'}")
        self._ready = True

    def _stderr_tail(self) -> str:
        try:
            if self._log is None:
                return ""
            size = os.fstat(self._log).st_size
            return os.pread(self._log, 2000, max(0, size - 2000)).decode(errors="replace").strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()  # the server sees end of file and exits
        if self._proc is not None:
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            os.close(self._log)
        self._proc = self._sock = self._log = None
        self._ready = False

    def kill(self) -> None:
        """End the server at once (from a signal handler: takes no lock, waits for nothing); its
        children die with it (their parent-death signal)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> ForkServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- children ----------------------------------------------------------------------------

    def spawn(self, job: bytes) -> Child:
        """Fork a child that reads ``job`` and runs it. A server found dead is replaced first; one
        that dies while asked is replaced once more before the sandbox gives up."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                self._replace()
            elif self._proc is None:
                self._launch()
            try:
                self._wait_ready()
                child = self._fork()
            except (OSError, EOFError):
                self._replace()
                try:
                    self._wait_ready()
                    child = self._fork()
                except (OSError, EOFError):
                    raise SandboxError("the sandbox's fork server stopped answering, twice: "
                                       f"{self._stderr_tail() or 'no output'}") from None
        child.send(job)
        self.spawned += 1
        return child

    def _replace(self) -> None:
        self._stop()
        self.restarts += 1
        self._launch()

    def _fork(self) -> Child:
        assert self._sock is not None
        job_r, job_w = os.pipe()
        reply_r, reply_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            socket.send_fds(self._sock, [_REQUEST], [job_r, reply_w, status_w])
            answer = self._sock.recv(64)
            if not answer:
                raise EOFError
            pid = int(json.loads(answer)["pid"])
        except BaseException:
            for fd in (job_w, reply_r, status_r):
                os.close(fd)
            raise
        finally:
            for fd in (job_r, reply_w, status_w):
                os.close(fd)
        return Child(pid=pid, reply_fd=reply_r, status_fd=status_r, job_fd=job_w)


def read_message(fd: int = JOB_FD) -> bytes | None:
    """Child side: the next message the grader wrote to the job pipe; ``None`` once it is closed."""
    def exact(n: int) -> bytes | None:
        chunks, got = [], 0
        while got < n:
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                if got == 0 and n == 8:
                    return None
                raise EOFError("the grader closed the job pipe mid-message")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    header = exact(8)
    if header is None:
        return None
    (size,) = struct.unpack("!Q", header)
    return exact(size)


# -- the server's side ----------------------------------------------------------------------

def serve(fd: int, preload: Sequence[str], entry: str = "grader.sandbox.worker:child_main") -> None:
    """The fork server's main loop (runs in its own interpreter, started by ``ForkServer``).
    ``entry`` (``module:function``) is what each child runs: named, not imported here, so the
    worker can use this module without a circle."""
    sock = socket.socket(fileno=fd)
    for name in preload:
        importlib.import_module(name)
    module, function = entry.split(":")
    run_child = getattr(importlib.import_module(module), function)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    statuses: dict[int, int] = {}
    sock.send(b"ready")
    while True:
        try:
            readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
        except InterruptedError:  # pragma: no cover  (PEP 475 retries; kept for clarity)
            continue
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap(statuses)
        if sock.fileno() not in readable:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(sock, 16, 3)
        except OSError:
            break
        if not message:
            break  # the grader is gone
        if len(fds) != 3:
            for extra in fds:
                os.close(extra)
            continue
        job_r, reply_w, status_w = fds
        pid = os.fork()
        if pid == 0:
            _become_child(job_r, reply_w, run_child)
        os.close(job_r)
        os.close(reply_w)
        statuses[pid] = status_w
        sock.send(json.dumps({"pid": pid}).encode())
        _reap(statuses)
    for status_w in statuses.values():
        os.close(status_w)
    os._exit(0)


def _become_child(job_r: int, reply_w: int, run_child: Callable[[], None]) -> None:
    """In the forked child: keep the two pipes (as 3 and 4), close everything else the server
    had open, then run. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        # Move the pipes above the two targets first, so neither dup2 closes the other pipe.
        job_r, reply_w = fcntl.fcntl(job_r, fcntl.F_DUPFD, 10), fcntl.fcntl(reply_w, fcntl.F_DUPFD, 10)
        os.dup2(job_r, JOB_FD)
        os.dup2(reply_w, REPLY_FD)
        os.closerange(REPLY_FD + 1, _max_fd())
        run_child()
    except BaseException:
        pass
    os._exit(70)


def _max_fd() -> int:
    try:
        return max(int(name) for name in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return os.sysconf("SC_OPEN_MAX")


def _reap(statuses: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        status_w = statuses.pop(pid, None)
        if status_w is not None:
            try:
                os.write(status_w, struct.pack("!i", os.waitstatus_to_exitcode(status)))
            except OSError as exc:  # the grader stopped waiting
                if exc.errno != errno.EPIPE:
                    raise
            finally:
                os.close(status_w)


def wait_for_exit(child: Child, timeout: float) -> int | None:
    """The child's exit code, waiting up to ``timeout`` seconds for the server to reap it."""
    deadline = time.monotonic() + timeout
    while True:
        code = child.exitcode(max(0.0, min(0.1, deadline - time.monotonic())))
        if code is not None or time.monotonic() >= deadline:
            return code
