"""The grader side of the sandbox: one child per probe, forked from a torch-preloaded server.

Why a child per probe: a check that hangs, crashes or corrupts the interpreter (monkey-patching
torch, say) cannot touch the next check. Why a forkserver: ``import torch`` costs seconds, a
fork from a server that already imported it costs tens of milliseconds.

The reply is read from a pipe with a deadline, byte by byte count, never unpickled; the child's
whole process group is killed when the probe ends, whatever happened.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.spawn as mp_spawn
import os
import select
import shutil
import signal
import stat
import struct
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from grader.lab.manifest import Limits
from grader.sandbox import codec, isolation
from grader.sandbox.cgroup import PidsCgroup
from grader.sandbox.worker import LOG_NAME, ChildJob, child_main

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 512 * 1024 * 1024
_CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_context: Any = None


def _noop() -> None:
    pass


_PROCESS_PREFIX = "gradelab-"


def _without_main(get_preparation_data: Any) -> Any:
    """Children never need the grader's ``__main__``: re-running it (the CLI script, a bench
    script) would cost every child the CLI's imports and run its top-level code again."""

    def prepare(name: str) -> dict[str, Any]:
        data = get_preparation_data(name)
        if name.startswith(_PROCESS_PREFIX):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    prepare.gradelab = True  # type: ignore[attr-defined]
    return prepare


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


def context() -> Any:
    """The forkserver context, started and warm: its server has imported torch.

    The first child pays for the server's imports; doing that here, outside any deadline,
    keeps the cost off the first student's wall-time budget.
    """
    global _context
    if _context is None:
        _remove_stale_workdirs()
        if not getattr(mp_spawn.get_preparation_data, "gradelab", False):
            mp_spawn.get_preparation_data = _without_main(mp_spawn.get_preparation_data)
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["grader.sandbox.worker"])
        warm = ctx.Process(target=_noop, name=f"{_PROCESS_PREFIX}warmup")
        warm.start()
        warm.join()
        _context = ctx
    return _context


class ProbeFailure(Exception):
    """Student code did not produce a reply. ``status`` is 'error' or 'timeout'."""

    def __init__(self, status: str, message: str, *, stage: str = "probe", error: dict | None = None,
                 log_tail: str = "", out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.stage = stage
        self.error = error or {}
        self.log_tail = log_tail
        self.out_of_memory = out_of_memory


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
    """One message in ``Connection.send_bytes`` framing, read with a deadline and a size cap."""
    (size,) = struct.unpack("!i", _read_exact(fd, 4, deadline, on_wait))
    if size == -1:
        (size,) = struct.unpack("!Q", _read_exact(fd, 8, deadline, on_wait))
    if size < 0 or size > MAX_REPLY_BYTES:
        raise codec.CodecError(f"reply of {size} bytes refused")
    return _read_exact(fd, size, deadline, on_wait)


PROGRESS_NAME = ".progress"


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
    text, size = _read_child_file(path, limit_bytes, from_end=True)
    return (f"[… {size - limit_bytes} earlier bytes of output dropped …]\n" + text) if size > limit_bytes else text


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _death_message(exitcode: int | None, limits: Limits) -> tuple[str, str]:
    """(status, message) for a child that ended without a reply."""
    if exitcode is None:
        return "error", "the process ended without answering"
    if exitcode == -signal.SIGXCPU:
        return "timeout", f"CPU time limit exceeded ({limits.cpu_s:g} s of CPU)"
    if exitcode == -signal.SIGSEGV:
        return "error", "crashed with a segmentation fault (SIGSEGV)"
    if exitcode == -signal.SIGKILL:
        return "error", (f"was killed (SIGKILL), most likely for exceeding the memory limit "
                         f"({limits.memory_mb} MiB)")
    if exitcode == -signal.SIGABRT:
        return "error", "aborted (SIGABRT)"
    if exitcode < 0:
        return "error", f"was killed by signal {signal.Signals(-exitcode).name}"
    return "error", (f"ended the process (exit code {exitcode}) before answering: "
                     "sys.exit() or os._exit() in a submission ends the check")


def stage_files(source: Path, module_file: str, into: Path) -> None:
    """Copy a submission (folder or single .py) into a fresh working directory."""
    if source.is_file():
        shutil.copyfile(source, into / module_file)
    else:
        shutil.copytree(source, into, dirs_exist_ok=True, symlinks=True)


_warned: set[str] = set()


def _warn_isolation(missing: Any) -> None:
    """Say once per run, in the grader's log, what isolation this machine could not give."""
    for item in missing if isinstance(missing, list) else []:
        if isinstance(item, str) and item not in _warned:
            _warned.add(item)
            log.warning("sandbox: %s", item)


def run_probe(source: Path, module_file: str, probe: str, payload: dict[str, Any], limits: Limits,
              hide: list[Path] | None = None, on_progress: Any = None, gpu: bool = False) -> ProbeReply:
    """Run one probe on a submission in a fresh, limited, isolated child; return its raw value.

    ``hide``: folders the child must not see (the labs, the other hand-ins, the results);
    ``gpu``: the child may use CUDA, so its memory is bounded in a way CUDA can live with."""
    ctx = context()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"{_PROCESS_PREFIX}{os.getpid()}-"))
    proc = None
    group = PidsCgroup(limits.max_processes)
    if group.path is None:
        _warn_isolation(["no pids cgroup: a daemonised grandchild could outlive its check"])
    try:
        stage_files(source, module_file, workdir)
        env = dict(_CHILD_ENV, HOME=str(workdir), TMPDIR=str(workdir),
                   PROGRESS_FILE=str(workdir / PROGRESS_NAME))
        job = ChildJob(workdir=str(workdir), module_file=module_file, probe=probe, payload=payload,
                       memory_mb=limits.memory_mb, cpu_s=limits.cpu_s, threads=limits.threads,
                       max_processes=limits.max_processes, env=env,
                       isolation=isolation.plan([*(hide or []), Path(source).resolve().parent]),
                       cgroup=str(group.path) if group.path else None, gpu=gpu)
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=child_main, args=(job, writer), name=f"{_PROCESS_PREFIX}{probe}")
        proc.start()
        writer.close()
        deadline = started + limits.wall_s
        try:
            poll = _progress_reader(workdir / PROGRESS_NAME, on_progress) if on_progress else None
            raw = _read_reply(reader.fileno(), deadline, poll)
            if poll:
                poll()  # the last epoch, when it ended between two polls
        except TimeoutError:
            _kill_group(proc.pid)
            proc.join(5)
            raise ProbeFailure("timeout", f"did not finish within the {limits.wall_s:g} s wall-time limit",
                               log_tail=_tail(workdir / LOG_NAME, limits.output_kb * 1024)) from None
        except (EOFError, struct.error):
            proc.join(5)
            status, message = _death_message(proc.exitcode, limits)
            raise ProbeFailure(status, message, out_of_memory=proc.exitcode == -signal.SIGKILL,
                               log_tail=_tail(workdir / LOG_NAME, limits.output_kb * 1024)) from None
        finally:
            reader.close()
        try:
            reply = codec.decode(raw)
        except codec.CodecError as exc:
            raise ProbeFailure("error", f"sent back a reply the grader cannot read ({exc})") from None
        log_tail = _tail(workdir / LOG_NAME, limits.output_kb * 1024)
        if isinstance(reply, dict):
            _warn_isolation(reply.get("isolation_missing"))
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise ProbeFailure("error", "sent back a malformed reply", log_tail=log_tail)
        if not reply["ok"]:
            error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
            stage = "import" if reply.get("stage") == "import" else "probe"
            raise ProbeFailure("error", format_error(error), stage=stage, error=error, log_tail=log_tail,
                               out_of_memory=bool(error.get("out_of_memory")))
        return ProbeReply(value=reply.get("value"), duration_s=time.monotonic() - started, log_tail=log_tail)
    finally:
        if proc is not None:
            _kill_group(proc.pid)
        group.kill_all_and_remove()  # daemons that left the process group too
        if proc is not None:
            proc.join(5)
        shutil.rmtree(workdir, ignore_errors=True)


def format_error(error: dict[str, Any]) -> str:
    """``Type: message (file, line N, in f)`` from an exception description sent by a child."""
    kind = str(error.get("type", "Error"))
    message = str(error.get("message", "")).strip()
    where = error.get("where")
    text = f"{kind}: {message}" if message else kind
    if error.get("out_of_memory"):
        text = f"ran out of memory ({text})"
    return f"{text} ({where})" if where else text
