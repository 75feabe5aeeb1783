"""The server's claims graded on a Ray cluster (``gradelab serve --ray ADDRESS``, or ``--ray
local`` to start one here), for a class that uploads more training hand-ins before a deadline
than one machine grades in time.

The queue stays the server's (``grader.serve.queue``), on its disk, with its exactly-once
tickets; only the grading moves. A ``RayPool`` in the web process claims tickets in the server's
own name, as many as the cluster has room for (its CPUs per the lab's ``threads``, its GPUs per
the lab's ``gpu_share``: a ticket waiting for room stays ``queued``, with its place), and sends
each as one Ray task. The task's body is the batch's (``grader.grading.cluster.grade_on_node``:
the lab's files and the hand-in as the server's safe reader read it travel as data, a fresh
``Run`` per Ray worker grades it) followed by the two reports, rendered on the node; the result
comes back as JSON and is written here, once (``write_result_once``), and the ticket finished.

What a local worker's death is, a lost task is: Ray does not retry it (``max_retries=0``); the
server puts the claim back in the queue with one try counted and the reason (the worker or node
was lost, the task failed), and after ``MAX_TRIES`` the attempt gets the "could not be graded"
result, written here. A task still running past the claim's deadline (``claim_deadline``: its age
counts from the claim) is cancelled (its worker killed), its claim requeued with a try counted,
and whatever it returns later is never read: only a task the pool still holds for a claim writes
a result, and a result is linked into place once, so a late answer cannot grade an attempt twice.
After a lost task the pool waits before claiming again (doubling, up to a minute, reset by the
next success), so a cluster that is down for a while costs each attempt a try, not all three.
When the server stops, the tasks in flight are cancelled and their claims go back uncounted
(counted when past their deadline), as local workers' do; a local cluster this pool started ends
with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from grader.checks.registry import BoundLab
from grader.errors import SubmissionError, UsageError
from grader.grading.cluster import connect, grade_on_node, lab_folder_files
from grader.grading.executor import Job, unreadable_in
from grader.intake.sources import HandInSource, open_hand_in
from grader.options import Device, RunOptions
from grader.results import SubmissionResult
from grader.serve.queue import MAX_TRIES, Claim, GradingQueue
from grader.serve.store import INSTRUCTOR_PDF, RESULT, STUDENT_PDF, UPLOAD, ClassStore
from grader.serve.workers import REPORTS, fault_result, record, report_bytes, student_of

log = logging.getLogger(__name__)
TASK_NAME = "gradelab-serve"  # a Ray worker running one shows ``ray::gradelab-serve`` as its title
RESOURCES_EVERY_S = 30.0  # how often the cluster's size is read again (nodes join and leave)
MAX_PAUSE_S = 60.0


class TaskResources(BaseModel):
    """What one attempt's task asks of the cluster, and how many the cluster runs at once."""

    cpus: int = Field(ge=1, description="The lab's threads per hand-in.")
    gpus: float = Field(ge=0, le=1, description="A share of one GPU (the lab's gpu_share), 0 when the checks that "
                                                "run do not train or the cluster has no GPU.")
    slots: int = Field(ge=1, description="Tasks at once: the cluster's CPUs and GPUs over the above.")


def task_resources(lab: BoundLab, options: RunOptions, cluster: dict[str, float]) -> TaskResources:
    """A task's CPUs are the lab's ``threads``; its GPU share is the lab's ``gpu_share`` (1 unless
    the manifest allows less) when the cluster has GPUs and the attempt trains (or ``--device
    cuda`` asks for one), else none: Ray then hides every GPU from the task, which grades on the
    CPU. ``--device cuda`` on a cluster without a GPU is refused before anything is graded."""
    limits = lab.manifest.limits.merged(options.limits)
    cluster_gpus = float(cluster.get("GPU", 0.0))
    if options.device == Device.cuda and cluster_gpus <= 0:
        raise UsageError("--device cuda: the Ray cluster has no GPU")
    trains = options.trains and any(c.spec.training for c in lab.checks)
    wants_gpu = options.device == Device.cuda or (options.device == Device.auto and trains)
    gpus = limits.gpu_share if wants_gpu and cluster_gpus > 0 else 0.0
    slots = int(float(cluster.get("CPU", 0.0)) // limits.threads)
    if gpus:
        slots = min(slots, int(cluster_gpus / gpus + 1e-9))
    if slots < 1:
        log.warning("the Ray cluster has no room yet for one task (%s CPU(s) and %s GPU(s) each; it has %s): "
                    "claims wait for a node", limits.threads, gpus, dict(cluster))
    return TaskResources(cpus=limits.threads, gpus=gpus, slots=max(1, slots))


# --- on a node ---------------------------------------------------------------------------------

_RENDERER: Any = None  # one per Ray worker process, kept for its next tasks


def serve_on_node(lab_files: dict[str, bytes], options_json: str, job: Job, files: dict[str, bytes],
                  single_file: bool, notes: list[str], graded_json: str | None,
                  hide: tuple[str, ...] = ()) -> tuple[str, dict[str, bytes]]:
    """The body of a server's Ray task: the attempt graded as the batch grades a hand-in on a node
    (unless the server has its result already, ``graded_json``: then only its reports), and both
    reports rendered here, so the web process neither grades nor renders. A report that cannot be
    rendered is left out (the server logs it and keeps the result). ``hide``: the class folder,
    hidden from the children where the node has it (``--ray local``), as local workers hide it."""
    global _RENDERER
    result_json = graded_json if graded_json is not None else grade_on_node(lab_files, options_json, job, files,
                                                                            single_file, notes, hide)
    if _RENDERER is None:
        from grader.report import ReportRenderer

        _RENDERER = ReportRenderer()
    result = SubmissionResult.model_validate_json(result_json)
    return result_json, report_bytes(_RENDERER, result, (STUDENT_PDF, INSTRUCTOR_PDF), job.name)


# --- the web process's side ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Task:
    claim: Claim
    graded: bool  # the server wrote its result already: the task renders the reports only


class RayPool:
    """Claims of the server's queue, each graded by one Ray task (see the module's docstring).
    ``body``: the task's function (``serve_on_node``; a test's stand-in takes the same
    arguments)."""

    def __init__(self, address: str, lab: BoundLab, options: RunOptions, store: ClassStore,
                 grading_queue: GradingQueue, deadline_s: float,
                 body: Callable[..., tuple[str, dict[str, bytes]]] = serve_on_node) -> None:
        self.address, self.lab, self.options = address, lab, options
        self.store, self.queue = store, grading_queue
        self.deadline_s = deadline_s
        self.body = body
        self.owner = os.getpid()  # claims are the server's own: ``claimed/<name>.<server pid>.json``
        self.resources: TaskResources | None = None
        self.lost = 0  # tasks lost (worker or node gone, task failed, past the deadline): each a counted try
        self._inflight: dict[Any, _Task] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ray: Any = None
        self._started = False
        self._task: Any = None
        self._lab_ref: Any = None
        self._options_json = options.model_copy(update={"ray": None, "jobs": 1}).model_dump_json()
        self._sized_at = 0.0
        self._failures = 0
        self._pause_until = 0.0

    # --- life ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, then claim from a thread of the web process."""
        self.open()
        self._thread = threading.Thread(target=self._supervise, name="gradelab-ray", daemon=True)
        self._thread.start()

    def open(self) -> None:
        """Connect (an address that cannot be reached stops the server's start, in one line) and
        size the tasks; ``step`` then claims, collects and enforces deadlines once."""
        self._ray, self._started = connect(self.address)
        try:
            self._size()
            assert self.resources is not None
            self._task = self._ray.remote(self.body).options(
                num_cpus=self.resources.cpus, num_gpus=self.resources.gpus, max_retries=0, name=TASK_NAME)
            self._lab_ref = self._ray.put(lab_folder_files(self.lab.folder))
        except BaseException:
            self._shutdown()
            raise
        log.info("grading on the Ray cluster %s: %d task(s) at once, %d CPU(s) and %s GPU(s) each", self.address,
                 self.resources.slots, self.resources.cpus, self.resources.gpus)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Cancel what is in flight; its claims go back uncounted (counted past their deadline),
        to be graded at the next start; a local cluster this pool started is shut down."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(60)
        for ref, task in list(self._inflight.items()):
            self._cancel(ref)
            late = self.queue.age(task.claim) > self.deadline_s
            self.queue.release(task.claim, count=late, fault=self._late() if late else "")
        self._inflight.clear()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
            self._started = False

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                self.step()
            except Exception:  # the runner must outlive anything: the server keeps accepting uploads
                log.exception("the Ray claim runner failed; trying again in 5 s")
                self._stopping.wait(5.0)

    def step(self) -> None:
        if time.monotonic() - self._sized_at > RESOURCES_EVERY_S:
            self._size()
        self._fill()
        self._stop_overdue()
        if not self._inflight:
            self._wake.wait(1.0)
            self._wake.clear()
            return
        ready, _ = self._ray.wait(list(self._inflight), num_returns=len(self._inflight), timeout=0.5)
        for ref in ready:
            self._collect(ref)

    def _size(self) -> None:
        self.resources = task_resources(self.lab, self.options, self._ray.cluster_resources())
        self._sized_at = time.monotonic()

    # --- claims out ------------------------------------------------------------------------------

    def _fill(self) -> None:
        assert self.resources is not None
        while len(self._inflight) < self.resources.slots and time.monotonic() >= self._pause_until \
                and not self._stopping.is_set():
            claim = self.queue.claim(self.owner)
            if claim is None:
                return
            try:
                self._begin(claim)
            except BaseException:  # a fault here, not the attempt's: it goes back, uncounted
                if all(t.claim.path != claim.path for t in self._inflight.values()):
                    self.queue.release(claim, count=False)
                raise

    def _begin(self, claim: Claim) -> None:
        """As ``grade_claim`` begins: given up after ``MAX_TRIES`` (reports too, if it was graded
        and only they kept failing), else graded unless it has a result, its reports rendered."""
        ticket = claim.ticket
        sid, number = ticket.student, ticket.attempt
        if self.store.has_result(sid, number):
            if all(self.store.read(sid, number, name) is not None for name in REPORTS):
                self.queue.finish(claim)  # a crash came between its last report and its ticket
                return
            if ticket.tries >= MAX_TRIES:
                log.error("%s attempt %d: reports not rendered after %d tries (%s)", sid, number, ticket.tries,
                          ticket.fault or "its cluster task was lost")
                self.queue.finish(claim)
                return
            self._submit(claim, graded=True)
            return
        if ticket.tries >= MAX_TRIES:
            why = RuntimeError(ticket.fault or "its cluster task was lost")
            record(self.store, self.queue, ticket, fault_result(self.lab, self.options, self.store, sid, number, why),
                   given_up=True)
            self._submit(claim, graded=True)
            return
        self._submit(claim, graded=False)

    def _job(self, sid: str, number: int) -> Job:
        return Job(path=Path(sid, "attempts", str(number), UPLOAD), name=sid, student=student_of(self.store, sid, number))

    def _submit(self, claim: Claim, *, graded: bool) -> None:
        """One task for the claim: the hand-in as the safe reader reads it here (a hand-in it
        refuses is its own result, written here, and only the reports travel)."""
        ticket = claim.ticket
        sid, number = ticket.student, ticket.attempt
        job = self._job(sid, number)
        files: dict[str, bytes] = {}
        single, notes = False, []
        if not graded:
            manifest = self.lab.manifest
            try:
                handin = open_hand_in(HandInSource(path=self.store.attempt_path(sid, number) / UPLOAD), manifest.intake,
                                      manifest.interface.module)
                files, single, notes = handin.files, handin.single_file, handin.notes
            except SubmissionError as exc:  # the student's: a result, and it never travels
                record(self.store, self.queue, ticket, unreadable_in(self.lab, self.options, job, exc))
                graded = True
        graded_json = None
        if graded:
            data = self.store.read(sid, number, RESULT)
            graded_json = data.decode() if data is not None else None
            if graded_json is None:  # pragma: no cover  (a result is never removed)
                self.queue.release(claim, count=False)
                return
        else:
            self.queue.journal.write("started", ticket, cluster=self.address)
        try:
            ref = self._task.remote(self._lab_ref, self._options_json, job, files, single, notes, graded_json,
                                    (str(self.store.root),))
        except Exception as exc:  # the cluster refused the task: not the attempt's fault
            log.warning("%s attempt %d: the Ray cluster refused its task (%s); back in the queue", sid, number, exc)
            self.queue.release(claim, count=False)
            self._pause()
            return
        self._inflight[ref] = _Task(claim, graded)

    # --- results in ------------------------------------------------------------------------------

    def _collect(self, ref: Any) -> None:
        """A task that ended. Its result is written once and its reports kept, or, when it was lost
        or failed, its claim goes back with one try counted and why."""
        task = self._inflight.pop(ref, None)
        if task is None:  # cancelled past its deadline: what it says now is not read
            return
        ray = self._ray
        claim = task.claim
        ticket = claim.ticket
        sid, number = ticket.student, ticket.attempt
        try:
            result_json, reports = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None) or exc
            log.error("%s attempt %d: its cluster task failed: %s: %s", sid, number, type(cause).__name__, cause)
            self._lost(claim, f"its cluster task failed ({type(cause).__name__}: {cause})")
            return
        except Exception as exc:  # a worker or node lost (WorkerCrashedError, NodeDiedError, ...)
            log.warning("%s attempt %d: its cluster worker was lost (%s); back in the queue, one try counted", sid,
                        number, type(exc).__name__)
            self._lost(claim, f"the cluster worker grading it was lost ({type(exc).__name__})")
            return
        try:
            result = SubmissionResult.model_validate_json(result_json)
        except ValueError as exc:  # the node's grader is not this one (another version): not a result here
            log.error("%s attempt %d: its cluster task answered no result this server reads: %s", sid, number, exc)
            self._lost(claim, "its cluster task answered no result this server reads (another gradelab version?)")
            return
        self._failures = 0
        if not task.graded and not record(self.store, self.queue, ticket, result):
            log.error("%s attempt %d had a result already: the cluster's, and its reports, are dropped", sid, number)
            reports = dict.fromkeys(reports, b"")
        for name in REPORTS:
            if name not in reports:
                log.error("%s attempt %d: the %s report could not be rendered on the cluster (its result is kept)",
                          sid, number, REPORTS[name].value)
            elif reports[name] and self.store.read(sid, number, name) is None:
                self.store.write_report(sid, number, name, reports[name])
        self.queue.finish(claim)

    def _lost(self, claim: Claim, fault: str) -> None:
        self.lost += 1
        self.queue.release(claim, count=True, fault=fault)
        self._pause()

    def _pause(self) -> None:
        """Claim nothing for a while after a loss: a cluster down for a minute must not spend
        every attempt's tries at once."""
        self._failures += 1
        self._pause_until = time.monotonic() + min(MAX_PAUSE_S, 2.0 ** (self._failures - 1))

    def _cancel(self, ref: Any) -> None:
        try:
            self._ray.cancel(ref, force=True)
        except Exception as exc:  # already finished, or its node is gone
            log.debug("cancelling a cluster task: %s", exc)

    def _late(self) -> str:
        return f"not graded within {self.deadline_s:.0f} s: its cluster task was stopped"

    def _stop_overdue(self) -> None:
        """Tasks held past the claim's deadline: cancelled (their worker killed), their claims
        requeued with a try counted; a late answer from them is never read."""
        for ref, task in list(self._inflight.items()):
            if self.queue.age(task.claim) <= self.deadline_s:
                continue
            del self._inflight[ref]
            log.error("%s attempt %d: its cluster task ran past %.0f s: cancelled", task.claim.ticket.student,
                      task.claim.ticket.attempt, self.deadline_s)
            self._cancel(ref)
            self.lost += 1
            self.queue.release(task.claim, count=True, fault=self._late())
