"""Workers that survive anything (issue 26): a claim that hangs past its deadline or whose worker
dies counts as a try, a crashed server's claims too; after the last try the attempt gets a result
saying why; a report that cannot render, for any reason, is logged and the ticket finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from grader.serve.queue import MAX_TRIES, GradingQueue, Ticket
from grader.serve.store import ClassStore
from tests.serve_kit import hand_in

DEAD_PID = 2 ** 22 + 54321  # above any pid this machine hands out


@pytest.fixture
def attempt(tmp_path):
    store = ClassStore(tmp_path / "class")
    grading_queue = GradingQueue(store.state)
    meta = store.create_attempt("carol", dict(hand_in("correct")), {
        "uploaded_at": datetime.now(UTC), "kind": "files", "files": ["answers.yaml", "convnet.py"],
        "bytes": 1, "name": "Carol Diaz", "email": ""})
    grading_queue.put(Ticket(student="carol", attempt=meta.number, queued_at=meta.uploaded_at))
    return store, grading_queue, meta


def _run():
    from grader.grading.run import Run
    from grader.lab.loader import load_lab
    from grader.options import Mode, RunOptions
    from tests.conftest import ROOT

    return Run(load_lab(ROOT / "reference/cifar-convnet"), RunOptions(mode=Mode.grade))


class _BrokenRenderer:
    """Fails while building the HTML, with an error that is not a ReportError."""

    def write(self, result, path, audience):
        raise KeyError("a template variable")


def test_a_claim_lost_in_a_server_crash_counts_a_try_and_the_last_try_gives_a_result_saying_why(attempt, caplog):
    from grader.serve.workers import GRADER_FAULT, grade_claim

    store, grading_queue, meta = attempt
    for _ in range(MAX_TRIES):  # the server crashed each time while grading it
        assert grading_queue.claim(DEAD_PID) is not None
        grading_queue.recover()
    (ticket,) = [c.ticket for c in [grading_queue.claim(os.getpid())] if c is not None]
    assert ticket.tries == MAX_TRIES and ticket.fault == "the server stopped while grading it"
    (claim,) = grading_queue.claims(os.getpid())
    grade_claim(_run(), _BrokenRenderer(), store, grading_queue, claim)  # its report cannot render either
    result = store.result("carol", meta.number)
    assert result.score == 0 and result.checks[0].message == GRADER_FAULT
    assert result.notes == [f"grader fault, {MAX_TRIES} tries: RuntimeError: the server stopped while grading it"]
    assert grading_queue.counts() == {"pending": 0, "claimed": 0, "done": 1}  # finished, not requeued
    assert store.read("carol", meta.number, "feedback.pdf") is None
    assert "the student report could not be rendered" in caplog.text


def test_a_report_that_cannot_render_finishes_the_ticket_and_keeps_the_result(attempt, caplog):
    """Before, an error outside ReportError escaped grade_claim: the ticket was never finished,
    went back to the queue, and killed the next worker too."""
    from grader.serve.workers import grade_claim

    store, grading_queue, meta = attempt
    claim = grading_queue.claim(os.getpid())
    grade_claim(_run(), _BrokenRenderer(), store, grading_queue, claim)
    result = store.result("carol", meta.number)
    assert result.score > 0 and result.checks[0].status == "passed"  # graded, and kept
    assert grading_queue.counts() == {"pending": 0, "claimed": 0, "done": 1}
    assert "carol attempt 1: the instructor report could not be rendered" in caplog.text


class _Worker:
    """A stand-in for a grading worker process: a process that hangs."""

    def __init__(self) -> None:
        self.popen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        self.pid = self.popen.pid

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()


def test_a_worker_holding_a_claim_past_its_deadline_is_stopped_and_the_claim_counts_a_try(attempt):
    from grader.options import RunOptions
    from grader.serve.workers import WorkerPool

    store, grading_queue, _ = attempt
    pool = WorkerPool(store.root, RunOptions(), store, grading_queue, count=1, deadline_s=60)
    worker = _Worker()
    try:
        pool._processes[0] = worker
        claim = grading_queue.claim(worker.pid)
        pool._stop_overdue()
        assert worker.is_alive()  # in time: left alone
        old = time.time() - 61
        os.utime(claim.path, (old, old))
        pool._stop_overdue()
        assert worker.popen.wait(10) == -signal.SIGKILL
        (back,) = pool._reap(worker)
    finally:
        if worker.is_alive():
            worker.popen.kill()
            worker.popen.wait()
    assert back.tries == 1 and back.fault == "not graded within 60 s: the grading worker was stopped"
    assert grading_queue.counts() == {"pending": 1, "claimed": 0, "done": 0}


def test_a_claims_deadline_is_the_labs_wall_times_doubled_plus_a_margin():
    from grader.lab.loader import load_lab
    from grader.options import RunOptions
    from grader.serve.workers import DEADLINE_MARGIN_S, claim_deadline
    from tests.conftest import ROOT

    manifest = load_lab(ROOT / "reference/cifar-convnet").manifest
    walls = sum(manifest.limits.merged(c.limits).wall_s for c in manifest.checks)
    assert claim_deadline(manifest, RunOptions()) == 2 * walls + DEADLINE_MARGIN_S
