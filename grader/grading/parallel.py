"""Grade several hand-ins at once on one machine: worker processes, each with a run of its own.

Why processes and not threads: the grader computes expected values with torch in its own
process (references seeded through torch's global generator), so two hand-ins graded by two
threads of one process could draw each other's numbers; a worker process per slot keeps every
result identical to a serial run. Each worker opens one ``Run`` (its own fork server) when it
starts and grades job after job in it; the batch process writes each result as it arrives, so a
killed batch resumes exactly as a serial one does.

Resources are split, not shared out blindly: each worker's children keep the lab's per-check
limits; a worker gets its share of the CPU threads, and, on a GPU machine, its GPU (or its
fraction of one, where the lab's ``gpu_share`` says the model is small).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Iterable, Iterator

from grader.checks.registry import BoundLab
from grader.grading.executor import Job, grade_job
from grader.grading.run import Run
from grader.options import Device, RunOptions
from grader.results import SubmissionResult

log = logging.getLogger(__name__)
MIN_JOBS_PER_WORKER = 8   # below this a worker's start-up (torch, its fork server) costs more than it saves
WORKER_MEMORY_MB = 1500   # a worker's own grader process, beside its children's limit


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (not Linux)
        return os.cpu_count() or 1


def _available_memory_mb() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 4096


def gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_jobs(lab: BoundLab, options: RunOptions, device: Device, hand_ins: int) -> int:
    """How many hand-ins at once this machine and the lab's budget allow: a worker per
    ``threads`` cores, per (grader + child memory limit) of available memory, per GPU share when
    training on the GPU — and no more than one per ``MIN_JOBS_PER_WORKER`` hand-ins."""
    limits = lab.manifest.limits.merged(options.limits)
    by_cpu = cpu_count() // max(1, limits.threads)
    by_memory = _available_memory_mb() // (WORKER_MEMORY_MB + limits.memory_mb)
    bounds = [by_cpu, by_memory, hand_ins // MIN_JOBS_PER_WORKER]
    if device == Device.cuda and options.trains:
        bounds.append(gpu_count() * max(1, int(1 / limits.gpu_share)))
    return max(1, min(bounds))


# --- worker side -----------------------------------------------------------------------------

_WORKER: Run | None = None


def _start_worker(lab_folder: str, options_json: str, hide: list[str], events: Any, slots: Any,
                  gpus: int, threads: int) -> None:
    """Runs once in each worker process: its slot (which GPU), its share of threads, its run."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle: it stops the workers
    signal.signal(signal.SIGTERM, _stopped)
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    import torch

    from grader.lab.loader import load_lab

    torch.set_num_threads(threads)
    _WORKER = Run(load_lab(lab_folder), RunOptions.model_validate_json(options_json), on_event=events.put,
                  hide=tuple(Path(h) for h in hide))
    _WORKER.__enter__()


def _stopped(signum: int, _frame: object) -> None:
    """The batch stopped this worker: its fork server ends (and with it any child still running,
    by its parent-death signal); what a killed child leaves is reaped at the next start."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not re-enter this handler
    if _WORKER is not None:
        _WORKER.sandbox.server.kill()  # no lock, no wait: this may interrupt the server's own calls
    os._exit(128 + signum)


def _grade(job: Job) -> str:
    assert _WORKER is not None
    return grade_job(_WORKER, job).model_dump_json()


# --- the batch's side --------------------------------------------------------------------------

class ParallelExecutor:
    """``jobs`` worker processes grading hand-ins at once (``gradelab grade --jobs N``)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)

    def map(self, run: Run, jobs: Iterable[Job]) -> Iterator[tuple[Job, SubmissionResult]]:
        todo = list(jobs)
        if not todo:
            return
        ctx = mp.get_context("spawn")  # a fresh interpreter: nothing of this process's threads or state
        events, slots = ctx.Queue(), ctx.Queue()
        workers = min(self.jobs, len(todo))
        for slot in range(workers):
            slots.put(slot)
        gpus = gpu_count() if run.device == Device.cuda else 0
        threads = max(1, cpu_count() // workers)
        relay = threading.Thread(target=_relay, args=(events, run), name="gradelab-events", daemon=True)
        relay.start()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                                   initargs=(str(run.lab.folder), run.options.model_dump_json(),
                                             [str(h) for h in run.hide], events, slots, gpus, threads))
        finished = False
        try:
            pending: dict[Future, Job] = {pool.submit(_grade, job): job for job in todo}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    yield job, SubmissionResult.model_validate_json(future.result())
            finished = True
        finally:
            if not finished:
                _stop(pool)
            pool.shutdown(wait=True, cancel_futures=True)
            events.put(None)
            relay.join(5)


def _relay(events: Any, run: Run) -> None:
    """Workers' events, to the batch's sink (the CLI's progress display), from one thread."""
    while True:
        try:
            event = events.get(timeout=1)
        except queue.Empty:
            continue
        except (EOFError, OSError):
            return
        if event is None:
            return
        try:
            run.emit(event)
        except Exception:  # noqa: BLE001  (a display that fails must not stop the grading)
            log.exception("event sink failed")


def _stop(pool: ProcessPoolExecutor) -> None:
    """An interrupted batch: the workers stop now (their fork servers and children go with them)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        try:
            process.terminate()
        except (OSError, AttributeError):
            pass
