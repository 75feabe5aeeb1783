"""The child side of the sandbox: limit itself, import the student's module, run one probe.

This module is preloaded (with torch) in the forkserver, so a child costs a fork, not an
interpreter start. Everything here runs in the child; its only way back is ``codec.encode``
written to the reply pipe, and the grader decodes that strictly.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch  # noqa: F401  (preloaded so children never pay for it)
import torchvision  # noqa: F401

from grader.sandbox import cgroup, codec, isolation
from grader.sandbox.isolation import IsolationPlan
from grader.sandbox.probes import PROBES

LOG_NAME = "output.log"
_OOM_MARKERS = ("can't allocate memory", "DefaultCPUAllocator", "out of memory", "std::bad_alloc")


@dataclass
class ChildJob:
    """What the grader asks of one child. Travels grader → child, the trusted direction."""

    workdir: str
    module_file: str
    probe: str
    payload: dict[str, Any] = field(default_factory=dict)
    memory_mb: int = 2048
    cpu_s: float = 60.0
    threads: int = 1
    max_processes: int = 64
    file_mb: int = 256
    env: dict[str, str] = field(default_factory=dict)
    isolation: IsolationPlan | None = None
    cgroup: str | None = None
    gpu: bool = False  # the child may initialise CUDA: see _apply_limits


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


def memory_limit(gpu: bool) -> tuple[int, str]:
    """Which rlimit bounds the child's memory, and the /proc/self/status field it is measured by.

    Address space is the tightest, but CUDA reserves address space the size of host and device
    memory together when it initialises (unified addressing), far past any limit a student's code
    should get, and fails under it. A child that may use the GPU gets RLIMIT_DATA instead: it counts
    the heap and private writable mappings, which is where host tensors live, and not the
    inaccessible reservations. GPU memory itself is not an rlimit's to bound."""
    return (resource.RLIMIT_DATA, "VmData") if gpu else (resource.RLIMIT_AS, "VmSize")


def _apply_limits(job: ChildJob) -> None:
    # Set relative to the size at fork: torch alone maps ~3 GB before any tensor.
    which, field = memory_limit(job.gpu)
    limit = _status_bytes(field) + job.memory_mb * 1024 * 1024
    resource.setrlimit(which, (limit, limit))
    cpu = max(1, int(job.cpu_s + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    file_bytes = job.file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Writes past the file limit fail with EFBIG instead of killing the child silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _redirect_output(workdir: str) -> None:
    fd = os.open(os.path.join(workdir, LOG_NAME), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)


def describe_exception(exc: BaseException, student_file: str) -> dict[str, Any]:
    """What went wrong, located in the student's own file where possible."""
    where = None
    if isinstance(exc, SyntaxError):
        where = f"{Path(exc.filename or student_file).name}, line {exc.lineno}"
        message = f"{exc.msg}" + (f": {exc.text.strip()}" if exc.text else "")
    else:
        message = str(exc)
        frames = traceback.extract_tb(exc.__traceback__, limit=-50)  # a deep recursion has 10⁵ frames
        student = Path(student_file).name
        mine = [f for f in frames if Path(f.filename).name == student]
        if mine:
            f = mine[-1]
            where = f"{student}, line {f.lineno}, in {f.name}"
    text = message.lower()
    oom = isinstance(exc, MemoryError) or any(m.lower() in text for m in _OOM_MARKERS)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-6))
    return {
        "type": type(exc).__name__,
        "message": message[:2000],
        "where": where,
        "out_of_memory": bool(oom),
        "traceback": tb[-4000:],
    }


def _import_student(path: str) -> Any:
    name = Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {Path(path).name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _send(conn: Any, reply: dict[str, Any]) -> None:
    try:
        data = codec.encode(reply)
    except (TypeError, ValueError) as exc:
        data = codec.encode({"stage": reply.get("stage"), "ok": False, "error": {
            "type": "TypeError", "message": f"the value returned cannot be graded: {exc}",
            "where": None, "out_of_memory": False, "traceback": ""}})
    conn.send_bytes(data)


def child_main(job: ChildJob, conn: Any) -> None:
    """Entry point of a sandboxed child (runs after the forkserver forks it)."""
    isolation.die_with_parent()  # a grader killed outright takes its forkserver, then this child, along
    os.setsid()  # own process group and session: the grader kills them whole
    cgroup.join(job.cgroup)  # first: every process this child makes is counted and reaped
    _redirect_output(job.workdir)
    os.environ.clear()
    os.environ.update(job.env)
    missing = (isolation.apply(job.isolation, job.workdir, job.max_processes) if job.isolation
               else ["isolation disabled"])
    os.chdir(job.workdir)
    _apply_limits(job)
    torch.set_num_threads(job.threads)
    sys.path.insert(0, job.workdir)
    student_file = os.path.join(job.workdir, job.module_file)
    try:
        module = _import_student(student_file)
    except BaseException as exc:  # noqa: BLE001  (SystemExit and KeyboardInterrupt are student faults too)
        _send(conn, {"stage": "import", "ok": False, "error": describe_exception(exc, student_file),
                     "isolation_missing": missing})
        _exit()
    try:
        value = PROBES[job.probe](module, **job.payload)
        reply = {"stage": "probe", "ok": True, "value": value}
    except BaseException as exc:  # noqa: BLE001
        reply = {"stage": "probe", "ok": False, "error": describe_exception(exc, student_file)}
    reply["isolation_missing"] = missing
    _send(conn, reply)
    _exit()


def _exit() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


np.seterr(all="ignore")
