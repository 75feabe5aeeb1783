"""Grading workers: processes that take attempts from the queue and grade them, never the web
process (a hand-in that takes minutes must not hold up a page, and the web process never imports
torch).

Each worker is a fresh interpreter (``spawn``, as ``grading.parallel`` does for the same reasons)
with a ``Run`` of its own (the lab in grade mode, every check; its own fork server, warmed before
the first hand-in) and a report renderer. It claims the oldest pending ticket, grades the
attempt through ``grade_job`` (the batch's own path: the safe reader, the archive rules, the
sandbox) unless it already has a result, writes the result once, renders the student's and the
instructor's PDFs, and marks the ticket done. The class folder is hidden from every child.

The web process keeps a ``WorkerPool``: it starts the workers from a supervising thread, wakes one
when an upload is queued, replaces a worker that died (its claims go back to the queue with one
try counted) and stops them all when the server stops (what they held is graded at the next
start). A worker dies with the web process (a parent-death signal), so a killed server leaves no
worker grading behind its back.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import queue as queue_module
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from grader.grading.executor import Job, unreadable
from grader.options import RunOptions
from grader.results import Student, SubmissionResult
from grader.reveal import Audience
from grader.serve.lti import scores as lti_scores
from grader.serve.queue import MAX_TRIES, Claim, GradingQueue
from grader.serve.store import INSTRUCTOR_PDF, STUDENT_PDF, UPLOAD, ClassStore

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
STARTUP_S = 30.0  # a worker that dies sooner than this after its start is not restarted at once
_RUN: Any = None
GRADER_FAULT = ("The grader could not grade this hand-in (a fault of the grader, not of your work); "
                "your instructor can see what happened. You may upload it again.")


# --- worker side -----------------------------------------------------------------------------

def _die_with(parent: int) -> None:
    """SIGKILL this worker when the web process dies (its fork server sees the end of its socket
    and goes too, and the children with it)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover  (not Linux)
        pass
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)


def _stopped(signum: int, _frame: object) -> None:
    """The pool stops this worker: its fork server ends now (and any child, by its parent-death
    signal); the attempt it held is graded at the next start."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _RUN is not None:
        _RUN.sandbox.server.kill()
    os._exit(128 + signum)


def worker_main(lab_folder: str, options_json: str, class_dir: str, wake: Any, parent: int, threads: int) -> None:
    """A worker's life: its run, then claim, grade, repeat, until the web process stops it."""
    global _RUN
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's: it stops its workers
    signal.signal(signal.SIGTERM, _stopped)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    import torch

    from grader.grading.run import Run
    from grader.lab.loader import load_lab
    from grader.report import ReportRenderer

    torch.set_num_threads(threads)
    store = ClassStore(Path(class_dir))
    grading_queue = GradingQueue(store.state)
    _RUN = run = Run(load_lab(lab_folder), RunOptions.model_validate_json(options_json), hide=(store.root,))
    run.__enter__()
    try:
        run.sandbox.warm()
        renderer = ReportRenderer()
        while os.getppid() == parent:
            claim = grading_queue.claim(os.getpid())
            if claim is None:
                try:
                    wake.get(timeout=1.0)
                except queue_module.Empty:
                    pass
                continue
            grade_claim(run, renderer, store, grading_queue, claim)
    finally:
        run.close()


def grade_claim(run: Any, renderer: Any, store: ClassStore, grading_queue: GradingQueue, claim: Claim) -> None:
    """One claimed attempt: graded unless it has a result, its reports rendered, marked done. A
    fault of the grader (not of the hand-in, which is a result) sends it back to the queue; after
    ``MAX_TRIES`` it gets an error result saying so."""
    ticket = claim.ticket
    sid, number = ticket.student, ticket.attempt
    if not store.has_result(sid, number) and ticket.tries >= MAX_TRIES:
        # its worker died this many times while grading it (the pool requeued it each time)
        result = _fault(run, store, sid, number, RuntimeError("the grading worker died while grading it"))
        written = store.write_result_once(sid, number, result)
        grading_queue.journal.write("graded" if written else "duplicate", ticket, score=result.score,
                                    max_score=result.max_score, given_up=True)
    elif not store.has_result(sid, number):
        grading_queue.journal.write("started", ticket)
        try:
            result = grade_attempt(run, store, sid, number)
        except Exception as exc:
            log.exception("grading %s attempt %d failed", sid, number)
            if ticket.tries + 1 < MAX_TRIES:
                grading_queue.release(claim, count=True)
                time.sleep(2.0)  # a sandbox that cannot start now may start in a moment
                return
            result = _fault(run, store, sid, number, exc)
        written = store.write_result_once(sid, number, result)
        grading_queue.journal.write("graded" if written else "duplicate", ticket,
                                    score=result.score, max_score=result.max_score)
        if written:  # an LTI course gets the score (grader.serve.lti.scores' outbox)
            lti_scores.note(store.state, sid, "graded")
    stored = store.result(sid, number)
    if stored is not None:
        render_reports(renderer, store, sid, number, stored)
    grading_queue.finish(claim)


def _student(store: ClassStore, sid: str, number: int) -> Student:
    meta = store.meta(sid, number)
    return Student(id=sid, name=(meta.name if meta else "") or sid, email=(meta.email or None) if meta else None,
                   source=f"{sid}/attempts/{number}")


def grade_attempt(run: Any, store: ClassStore, sid: str, number: int) -> SubmissionResult:
    """Every check of the lab on the attempt's upload, as ``gradelab grade`` grades a hand-in."""
    from grader.grading.executor import grade_job

    job = Job(path=store.attempt_path(sid, number) / UPLOAD, name=sid, student=_student(store, sid, number))
    result = grade_job(run, job)
    return result.model_copy(update={"path": f"{sid}/attempts/{number}/{UPLOAD}"})


def _fault(run: Any, store: ClassStore, sid: str, number: int, exc: Exception) -> SubmissionResult:
    job = Job(path=store.attempt_path(sid, number) / UPLOAD, name=sid, student=_student(store, sid, number))
    result = unreadable(run, job, GRADER_FAULT)
    return result.model_copy(update={"path": f"{sid}/attempts/{number}/{UPLOAD}",
                                     "notes": [f"grader fault, {MAX_TRIES} tries: {type(exc).__name__}: {exc}"]})


def render_reports(renderer: Any, store: ClassStore, sid: str, number: int, result: SubmissionResult) -> None:
    """The student's report (the reveal policy applied) and the instructor's, each written
    atomically into the attempt; a report that cannot be rendered is logged, the result stays."""
    from grader.errors import ReportError

    for name, audience in ((STUDENT_PDF, Audience.student), (INSTRUCTOR_PDF, Audience.instructor)):
        if store.read(sid, number, name) is not None:
            continue
        with tempfile.TemporaryDirectory(prefix="gradelab-serve-report-") as tmp:
            path = Path(tmp) / name
            try:
                renderer.write(result, path, audience)
            except ReportError as exc:
                log.error("%s attempt %d: %s", sid, number, exc)
                continue
            store.write_report(sid, number, name, path.read_bytes())


# --- the web process's side ------------------------------------------------------------------

def default_workers(threads: int) -> int:
    """One per core (per the lab's ``threads`` cores), at least one."""
    from grader.grading.parallel import cpu_count

    return max(1, cpu_count() // max(1, threads))


class WorkerPool:
    def __init__(self, lab_folder: Path, options: RunOptions, store: ClassStore, grading_queue: GradingQueue,
                 count: int, threads: int = 1) -> None:
        self.lab_folder = str(lab_folder)
        self.options_json = options.model_dump_json()
        self.store, self.queue = store, grading_queue
        self.count = count
        self.threads = threads
        self._ctx = mp.get_context("spawn")
        self._wake = self._ctx.Queue()
        self._processes: dict[int, Any] = {}
        self._started: dict[int, float] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    def start(self) -> None:
        """Workers start from the supervising thread (a parent-death signal follows the thread
        that started a process: this one lives as long as the pool)."""
        self._thread = threading.Thread(target=self._supervise, name="gradelab-workers", daemon=True)
        self._thread.start()

    def pids(self) -> list[int]:
        return [p.pid for p in self._processes.values() if p.pid is not None]

    def wake(self) -> None:
        try:
            self._wake.put_nowait(1)
        except (ValueError, OSError):  # pragma: no cover  (the pool is closing)
            pass

    def _spawn(self, slot: int) -> None:
        process = self._ctx.Process(target=worker_main, name=f"gradelab-grader-{slot}", daemon=True,
                                    args=(self.lab_folder, self.options_json, str(self.store.root), self._wake,
                                          os.getpid(), self.threads))
        process.start()
        self._processes[slot] = process
        self._started[slot] = time.monotonic()

    def _supervise(self) -> None:
        for slot in range(self.count):
            self._spawn(slot)
        failures = 0
        while not self._stopping.wait(1.0):
            for slot, process in list(self._processes.items()):
                if process.is_alive():
                    continue
                back = [self.queue.release(claim, count=True) for claim in self.queue.claims(process.pid)]
                lived = time.monotonic() - self._started.get(slot, 0.0)
                failures = failures + 1 if lived < STARTUP_S else 0
                log.warning("grading worker %s ended (exit %s) after %.0f s; %d attempt(s) back in the queue; "
                            "starting another", process.pid, process.exitcode, lived, len(back))
                if failures and self._stopping.wait(min(60.0, 2.0 ** failures)):  # one that cannot start: back off
                    break
                self.restarts += 1
                self._spawn(slot)
                self.wake()
        for process in self._processes.values():
            if process.is_alive():
                process.terminate()
        for process in self._processes.values():
            process.join(10)
            if process.is_alive():  # pragma: no cover
                process.kill()
                process.join(5)
        for process in self._processes.values():
            for claim in self.queue.claims(process.pid):
                self.queue.release(claim, count=False)  # not its fault: the server stopped

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30)
        self._wake.close()
        self._wake.join_thread()
