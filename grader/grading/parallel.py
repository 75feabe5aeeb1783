"""Grade several hand-ins at once on one machine: this process and worker processes, each with a
run of its own; workers start only once the work left is worth their start-up (``ParallelExecutor``).

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
import multiprocessing.util as mp_util
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from grader import interrupts
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


def threads_per_hand_in(run: Run) -> int:
    """The most torch threads one hand-in's children use at once (the lab's limits, a check's own,
    the command line's): hand-ins graded side by side need that many cores each."""
    from grader.grading.selection import running_checks

    base = run.lab.manifest.limits.merged(run.options.limits)
    checks = running_checks(run.lab, run.options)
    return max([base.threads, *(base.merged(c.spec.limits).merged(run.options.limits).threads for c in checks)])


# --- worker side -----------------------------------------------------------------------------

_WORKER: Run | None = None


def _start_worker(lab_folder: str, options_json: str, hide: list[str], events: Any, slots: Any,
                  gpus: int, threads: int) -> None:
    """Runs once in each worker process: its slot (which GPU), its share of threads, its run."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle: it stops the workers
    signal.signal(signal.SIGTERM, _stopped)
    interrupts.watch()  # the stop ends a wait on a child at once (see grader.interrupts)
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    import torch

    from grader.lab.loader import load_lab

    torch.set_num_threads(threads)
    _WORKER = Run(load_lab(lab_folder), RunOptions.model_validate_json(options_json), on_event=events.put,
                  hide=tuple(Path(h) for h in hide))
    _WORKER.__enter__()
    # A worker leaves through multiprocessing's exit (os._exit, no atexit): close the run there, so
    # that its children are gone, and its uids and cgroups given back, before the batch returns.
    mp_util.Finalize(None, _WORKER.close, exitpriority=10)


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

# Starting a worker (a spawned interpreter importing torch, then its own fork server importing it
# again) took about 6 s of wall time on the 2-core machines here; a worker is worth starting only
# when the work it would take over is longer than that, twice over.
WORKER_START_S = 6.0


class ParallelExecutor:
    """Up to ``jobs`` hand-ins graded at once (``gradelab grade --jobs N``): this process grades
    from the start, in the batch's own run (its fork server is already up), and worker processes
    join only once the work left is worth their start-up — so asking for more jobs is never slower
    than one: a class of quick static hand-ins is graded here alone, a class that trains gets its
    workers within seconds.

    Never more hand-ins at once than the cores hold at the lab's threads per hand-in. The decision,
    checked a few times a second: while the first hand-in is graded (it pays for the
    reference's values, computed once per run), start when it alone has taken ``start_after_s``;
    afterwards, when the hand-ins left, at the pace of the last one (or the current one, if it is
    slower), would take this process ``start_after_s`` longer than sharing them."""

    def __init__(self, jobs: int, start_after_s: float = 2 * WORKER_START_S) -> None:
        self.jobs = max(1, jobs)
        self.start_after_s = start_after_s
        self.workers_started = 0  # how many worker processes the last ``map`` started (benchmarks, tests)

    def map(self, run: Run, jobs: Iterable[Job]) -> Iterator[tuple[Job, SubmissionResult]]:
        todo = deque(jobs)
        if not todo:
            return
        self.workers_started = 0
        # Hand-ins side by side, each with its threads: no more than the cores hold (two trainings
        # of two threads each on two cores take twice as long as one after the other, and more).
        slots = min(self.jobs, max(1, cpu_count() // threads_per_hand_in(run)))
        lock = threading.Lock()
        done: queue.Queue[tuple[Job, Future[str]]] = queue.Queue()
        started, last, graded = [time.monotonic()], [0.0], [0]  # this process's pace, shared with the watcher
        pool: list[ProcessPoolExecutor] = []
        in_flight = [0]
        stop = threading.Event()

        def take() -> Job | None:
            with lock:
                return todo.popleft() if todo else None

        def feed() -> None:
            """Hand the next job to a worker that is free (under ``lock``)."""
            if todo and pool:
                job = todo.popleft()
                future = pool[0].submit(_grade, job)
                in_flight[0] += 1
                future.add_done_callback(partial(finished, job))

        def finished(job: Job, future: Future[str]) -> None:
            done.put((job, future))
            with lock:
                in_flight[0] -= 1
                if not future.cancelled() and future.exception() is None:
                    feed()

        def worth_starting() -> bool:
            with lock:
                left = len(todo)
                if left == 0 or pool:
                    return False
                elapsed = time.monotonic() - started[0]
                if graded[0] == 0:
                    return elapsed >= self.start_after_s
                per_job = max(last[0], elapsed)
            return per_job * left * (1 - 1 / min(slots, left + 1)) >= self.start_after_s

        def start(workers: int) -> None:
            ctx = mp.get_context("spawn")  # a fresh interpreter: nothing of this process's threads or state
            events, slots = ctx.Queue(), ctx.Queue()
            for slot in range(workers):
                slots.put(slot)
            gpus = gpu_count() if run.device == Device.cuda else 0
            threads = max(1, cpu_count() // (workers + 1))
            relay = threading.Thread(target=_relay, args=(events, run), name="gradelab-events", daemon=True)
            relay.start()
            executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                                           initargs=(str(run.lab.folder), run.options.model_dump_json(),
                                                     [str(h) for h in run.hide], events, slots, gpus, threads))
            with lock:
                pool.append(executor)
                self.workers_started = workers
                for _ in range(workers):
                    feed()
            relays.append((relay, events))

        relays: list[tuple[threading.Thread, Any]] = []

        def watch() -> None:
            while not stop.wait(0.25):
                if worth_starting():
                    with lock:
                        workers = min(slots - 1, len(todo))
                    if workers >= 1:
                        start(workers)
                    return

        watcher = threading.Thread(target=watch, name="gradelab-workers", daemon=True) if slots > 1 else None
        if watcher is not None:
            watcher.start()
        finished_all = False
        try:
            while True:
                yield from _drained(done)
                job = take()
                if job is None:
                    break
                with lock:
                    started[0] = time.monotonic()
                result = grade_job(run, job)
                with lock:
                    last[0], graded[0] = time.monotonic() - started[0], graded[0] + 1
                yield job, result
            stop.set()
            while True:
                with lock:
                    waiting = in_flight[0] > 0 or (pool and todo)
                if not waiting and done.empty():
                    break
                try:
                    item = done.get(timeout=0.5)
                except queue.Empty:
                    continue
                yield _outcome(*item)
            finished_all = True
        finally:
            stop.set()
            if watcher is not None:
                watcher.join(5)
            for executor in pool:
                if not finished_all:
                    _stop(executor)
                executor.shutdown(wait=True, cancel_futures=True)
            for relay, events in relays:
                events.put(None)
                relay.join(5)


def _outcome(job: Job, future: Future[str]) -> tuple[Job, SubmissionResult]:
    return job, SubmissionResult.model_validate_json(future.result())


def _drained(done: queue.Queue[tuple[Job, Future[str]]]) -> Iterator[tuple[Job, SubmissionResult]]:
    """The results workers finished while this process graded its own."""
    while True:
        try:
            item = done.get_nowait()
        except queue.Empty:
            return
        yield _outcome(*item)


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
        except Exception:
            log.exception("event sink failed")


def _stop(pool: ProcessPoolExecutor) -> None:
    """An interrupted batch: the workers stop now (their fork servers and children go with them)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        try:
            process.terminate()
        except (OSError, AttributeError):
            pass
