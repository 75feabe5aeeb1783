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
try counted) or that holds a claim past its deadline (the lab's time limits, summed, doubled: it
is killed, and its claim counts a try too), and stops them all when the server stops (what they
held is graded at the next start). After ``MAX_TRIES`` an attempt gets a "could not be graded"
result saying why, which the instructor sees; a report that cannot render, for any reason, is
logged and the ticket finished with its result kept. A worker dies with the web process (a parent-death signal), so a killed server leaves no
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

from grader import interrupts
from grader.grading.executor import Job, unreadable_in
from grader.lab.loader import Lab
from grader.options import Device, RunOptions
from grader.results import Student, SubmissionResult
from grader.reveal import Audience
from grader.serve.lti import scores as lti_scores
from grader.serve.queue import MAX_TRIES, Claim, GradingQueue, Ticket
from grader.serve.store import INSTRUCTOR_PDF, STUDENT_PDF, UPLOAD, ClassStore

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
STARTUP_S = 30.0  # a worker that dies sooner than this after its start is not restarted at once
DEFAULT_DEADLINE_S = 3600.0  # a pool not told its lab's deadline (``claim_deadline``)
DEADLINE_MARGIN_S = 300.0  # added to a claim's deadline: the import, the reports, a busy machine
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
    interrupts.watch()  # the stop ends a wait on a child at once (see grader.interrupts)
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
    if store.has_result(sid, number) and ticket.tries >= MAX_TRIES:
        # graded, but its worker died or hung this many times after: rendering its reports is
        # what kills it, so they are not tried again (the result stands; the pages say so)
        log.error("%s attempt %d: reports not rendered after %d tries (%s)", sid, number, ticket.tries,
                  ticket.fault or "the worker died")
        grading_queue.finish(claim)
        return
    if not store.has_result(sid, number) and ticket.tries >= MAX_TRIES:
        # its worker died or hung this many times while grading it (the pool requeued it each time)
        result = _fault(run, store, sid, number, RuntimeError(ticket.fault or "the grading worker died while "
                                                                             "grading it"))
        record(store, grading_queue, ticket, result, given_up=True)
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
        record(store, grading_queue, ticket, result)
    stored = store.result(sid, number)
    if stored is not None:
        render_reports(renderer, store, sid, number, stored)
    grading_queue.finish(claim)


def record(store: ClassStore, grading_queue: GradingQueue, ticket: Ticket, result: SubmissionResult, *,
           given_up: bool = False) -> bool:
    """The attempt's result, written once (False: one was there, nothing changed), journalled as
    ``graded`` or ``duplicate``; a graded one is noted for an LTI course's gradebook, a given-up
    one is not (no score to post). Local workers and the cluster's runner alike."""
    sid, number = ticket.student, ticket.attempt
    written = store.write_result_once(sid, number, result)
    extra = {"given_up": True} if given_up else {}
    grading_queue.journal.write("graded" if written else "duplicate", ticket, score=result.score,
                                max_score=result.max_score, **extra)
    if written and not given_up:  # an LTI course gets the score (grader.serve.lti.scores' outbox)
        lti_scores.note(store.state, sid, "graded")
    return written


def student_of(store: ClassStore, sid: str, number: int) -> Student:
    meta = store.meta(sid, number)
    return Student(id=sid, name=(meta.name if meta else "") or sid, email=(meta.email or None) if meta else None,
                   source=f"{sid}/attempts/{number}")


def grade_attempt(run: Any, store: ClassStore, sid: str, number: int) -> SubmissionResult:
    """Every check of the lab on the attempt's upload, as ``gradelab grade`` grades a hand-in."""
    from grader.grading.executor import grade_job

    job = Job(path=store.attempt_path(sid, number) / UPLOAD, name=sid, student=student_of(store, sid, number))
    result = grade_job(run, job)
    return result.model_copy(update={"path": f"{sid}/attempts/{number}/{UPLOAD}"})


def _fault(run: Any, store: ClassStore, sid: str, number: int, exc: Exception) -> SubmissionResult:
    return fault_result(run.lab, run.options, store, sid, number, exc, run.device)


def fault_result(lab: Lab, options: RunOptions, store: ClassStore, sid: str, number: int, exc: Exception,
                 device: Device = Device.cpu) -> SubmissionResult:
    """The "could not be graded" result of an attempt given up after ``MAX_TRIES``, naming why
    for the instructor."""
    job = Job(path=store.attempt_path(sid, number) / UPLOAD, name=sid, student=student_of(store, sid, number))
    result = unreadable_in(lab, options, job, GRADER_FAULT, device)
    return result.model_copy(update={"path": f"{sid}/attempts/{number}/{UPLOAD}",
                                     "notes": [f"grader fault, {MAX_TRIES} tries: {type(exc).__name__}: {exc}"]})


def render_reports(renderer: Any, store: ClassStore, sid: str, number: int, result: SubmissionResult) -> None:
    """The student's report (the reveal policy applied) and the instructor's, each written
    atomically into the attempt; a report that cannot be rendered, whatever the error (a
    ``ReportError``, or one raised while building its HTML), is logged, the result stays and the
    ticket is finished: a report never sends an attempt back to the queue."""
    missing = tuple(name for name in REPORTS if store.read(sid, number, name) is None)
    for name, data in report_bytes(renderer, result, missing, f"{sid} attempt {number}").items():
        store.write_report(sid, number, name, data)


REPORTS = {STUDENT_PDF: Audience.student, INSTRUCTOR_PDF: Audience.instructor}


def report_bytes(renderer: Any, result: SubmissionResult, names: tuple[str, ...], label: str) -> dict[str, bytes]:
    """The reports named (of ``REPORTS``) as PDF bytes; one that cannot be rendered, whatever the
    error, is logged and left out. A grading worker writes them into the attempt, a cluster task
    sends them back to the server."""
    out = {}
    for name in names:
        audience = REPORTS[name]
        with tempfile.TemporaryDirectory(prefix="gradelab-serve-report-") as tmp:
            path = Path(tmp) / name
            try:
                renderer.write(result, path, audience)
                out[name] = path.read_bytes()
            except Exception:
                log.exception("%s: the %s report could not be rendered", label, audience.value)
    return out


# --- the web process's side ------------------------------------------------------------------

def claim_deadline(manifest: Any, options: RunOptions) -> float:
    """How long a worker may hold a claim: every check's wall time (the lab's limits, the
    check's, the server's options, in that precedence) summed, doubled, plus a margin. Past it the
    worker is stopped: a hang in the worker's own process (not a student's child, which has its
    own deadline) must not hold a worker for hours."""
    total = 0.0
    for check in manifest.checks:
        total += manifest.limits.merged(check.limits).merged(options.limits).wall_s
    return 2 * total + DEADLINE_MARGIN_S


def overdue(grading_queue: GradingQueue, pids: list[int], deadline_s: float) -> list[tuple[int, Claim]]:
    """The claims of these workers held longer than ``deadline_s``."""
    return [(pid, claim) for pid in pids for claim in grading_queue.claims(pid)
            if grading_queue.age(claim) > deadline_s]


def default_workers(threads: int) -> int:
    """One per core (per the lab's ``threads`` cores), at least one."""
    from grader.grading.parallel import cpu_count

    return max(1, cpu_count() // max(1, threads))


class WorkerPool:
    def __init__(self, lab_folder: Path, options: RunOptions, store: ClassStore, grading_queue: GradingQueue,
                 count: int, threads: int = 1, deadline_s: float | None = None) -> None:
        self.lab_folder = str(lab_folder)
        self.deadline_s = DEFAULT_DEADLINE_S if deadline_s is None else deadline_s
        self._faults: dict[int, str] = {}  # pid → why the pool stopped it
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
            self._stop_overdue()
            for slot, process in list(self._processes.items()):
                if process.is_alive():
                    continue
                back = self._reap(process)
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
                late = self.queue.age(claim) > self.deadline_s or process.pid in self._faults
                self.queue.release(claim, count=late, fault=self._faults.get(process.pid, self._late()))
                # not its fault when the server stopped it in time; a claim past its deadline is

    def _reap(self, process: Any) -> list[Any]:
        """A worker that ended: its claims back in the queue, one try counted, with why (it died,
        or the pool stopped it past the deadline)."""
        fault = self._faults.pop(process.pid, f"the grading worker died (exit {process.exitcode})")
        return [self.queue.release(claim, count=True, fault=fault) for claim in self.queue.claims(process.pid)]

    def _late(self) -> str:
        return f"not graded within {self.deadline_s:.0f} s: the grading worker was stopped"

    def _stop_overdue(self) -> None:
        """Kill the workers holding a claim past the deadline; their claims go back, counted, when
        the loop sees them dead."""
        for pid, claim in overdue(self.queue, self.pids(), self.deadline_s):
            if pid in self._faults:
                continue
            log.error("grading worker %s held %s attempt %d past %.0f s: stopping it", pid, claim.ticket.student,
                      claim.ticket.attempt, self.deadline_s)
            self._faults[pid] = self._late()
            try:
                os.kill(pid, signal.SIGKILL)  # its fork server and children follow (parent-death signals)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30)
        self._wake.close()
        self._wake.join_thread()
