"""The child side of the sandbox: contain itself, import the student's module, run probes.

This module is preloaded (with torch) in the fork server, so a child costs a fork, not an
interpreter start. Everything here runs in the child; it reads its job, then one request per
probe, from descriptor 3 (the grader wrote them, the trusted direction) and its only way back is
``codec.encode`` written to descriptor 4, which the grader decodes strictly.

The first message back, sent before the student's module is imported, says what isolation could
not be applied (the grader trusts it: no student code has run yet). Then one reply per request —
or one import failure, after which the child ends. The replies the student's code could have
forged; the grader trusts them for nothing but raw values. A child answers requests until the
grader closes the pipe; a request that crashes it, hangs or runs out of memory ends it, and the
grader starts a fresh child for the next.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grader.sandbox import cgroup, codec, metrics, policy
from grader.sandbox.faults import describe_exception
from grader.sandbox.forkserver import JOB_FD, REPLY_FD, read_message
from grader.sandbox.job import ChildJob, Request
from grader.sandbox.probes import PROBES
from grader.sandbox.staging import stage as write_files

# Imported here, in the fork server, because a child imports nothing of gradelab's after it has
# contained itself: the labs' harnesses use it (it keeps an answer out of their student editions).
HARNESS_HELPERS = (metrics,)


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


def memory_limit(gpu: bool, cgroup: bool = False) -> tuple[int, str]:
    """Which rlimit bounds the child's memory, and the /proc/self/status field it is measured by.

    With a memory cgroup, the cgroup is the bound: it counts every page the child holds (a memfd's,
    a tmpfs file's), which no rlimit does. RLIMIT_DATA is kept beneath it all the same, so that an
    ordinary allocation past the limit (a list, a tensor) fails as a MemoryError the probe reports
    with the other inputs' answers, instead of a kill that loses them all.

    Without one, address space is the tightest rlimit, but CUDA reserves address space the size of
    host and device memory together when it initialises (unified addressing), far past any limit a
    student's code should get, and fails under it. A child that may use the GPU gets RLIMIT_DATA
    instead: it counts the heap and private writable mappings, which is where host tensors live,
    and not the inaccessible reservations. GPU memory itself is not an rlimit's to bound."""
    return (resource.RLIMIT_DATA, "VmData") if gpu or cgroup else (resource.RLIMIT_AS, "VmSize")


def _apply_limits(job: ChildJob) -> None:
    # Set relative to the size at fork: torch alone maps ~3 GB before any tensor.
    which, field = memory_limit(job.gpu, cgroup=bool(job.memory_cgroup))
    limit = _status_bytes(field) + job.memory_mb * 1024 * 1024
    resource.setrlimit(which, (limit, limit))
    file_bytes = job.file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Writes past the file limit fail with EFBIG instead of killing the child silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _redirect_output(log_file: str) -> None:
    """stdout and stderr to the grader's file, opened while still privileged: the student's code
    writes to it through descriptors 1 and 2 and cannot reach it by name."""
    fd = os.open(log_file, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)


def _stage(job: ChildJob):
    def stage(workdir: str) -> None:
        write_files(job.files, Path(workdir))
    return stage


def _import_student(path: str) -> Any:
    name = Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {Path(path).name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _send(reply: dict[str, Any]) -> None:
    try:
        data = codec.encode(reply)
    except (TypeError, ValueError) as exc:
        data = codec.encode({"stage": reply.get("stage"), "ok": False, "error": {
            "type": "TypeError", "message": f"the value returned cannot be graded: {exc}",
            "where": None, "out_of_memory": False, "traceback": ""}})
    view = memoryview(struct.pack("!Q", len(data)) + data)
    while view:
        view = view[os.write(REPLY_FD, view):]


def child_main() -> None:
    """Entry point of a sandboxed child (runs after the fork server forks it)."""
    policy.die_with_parent()  # a grader killed outright takes its fork server, then this child, along
    job = ChildJob.decode(read_message() or b"")
    os.setsid()  # own process group and session: the grader kills them whole
    cgroup.join(job.cgroups)  # first: every process this child makes is counted and reaped
    _redirect_output(job.log_file)
    os.environ.clear()
    os.environ.update(job.env)
    if job.isolation:
        try:
            missing = policy.contain(job.isolation, job.workdir, _stage(job), max_processes=job.max_processes,
                                     memory_cgroup=job.memory_cgroup, memory_mb=job.memory_mb,
                                     keep_fds=(REPLY_FD, JOB_FD))
        except policy.IsolationRefused as refused:  # fail closed: no student code runs
            _send({"isolation_missing": [], "isolation_refused": str(refused)})
            _exit()
    else:
        _stage(job)(job.workdir)
        missing = ["isolation disabled"]
    job.files.clear()
    os.chdir(job.workdir)
    _apply_limits(job)
    torch.set_num_threads(job.threads)
    _send({"isolation_missing": missing})  # before any student code: the one message the grader trusts
    student_file = os.path.join(job.workdir, job.module_file)
    sys.path.insert(0, os.path.dirname(student_file))  # the module's own folder: its helpers import
    try:
        module = _import_student(student_file)
    except BaseException as exc:
        _send({"stage": "import", "ok": False, "error": describe_exception(exc, student_file)})
        _exit()
    while (message := read_message()) is not None:
        request = Request.decode(message)
        _cpu_budget(request.cpu_s)
        try:
            value = PROBES[request.probe](module, **request.payload)
            reply = {"stage": "probe", "ok": True, "value": value}
        except BaseException as exc:
            reply = {"stage": "probe", "ok": False, "error": describe_exception(exc, student_file)}
        _send(reply)
        del reply, request, message
    _exit()


def _cpu_budget(seconds: float) -> None:
    """This request may use ``seconds`` of CPU (all threads) past what the child used so far; past
    it the kernel sends SIGXCPU, which ends the child unless its code catches it (the wall-time
    limit, enforced by the grader, ends it then)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    soft = max(1, int(used + seconds + 0.999))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)  # left unlimited: only the soft limit moves
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _exit() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(0)


np.seterr(all="ignore")
