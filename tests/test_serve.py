"""The hand-in server with grading: a class whose uploads are queued by one server, which then
stops mid-queue (a worker's claim left behind, an upload cut short), and are graded by the next
server with one worker. Every test here reads that class: what a student sees of their attempts,
what they cannot reach of another's, what the instructor sees, the queue's journal (each attempt
graded exactly once) and ``gradelab grade`` on the folder the server keeps.

Three gradings in all (the cifar-convnet lab, static checks, short limits), one worker start.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from datetime import UTC

import pytest
from pypdf import PdfReader
from starlette.testclient import TestClient

from tests.conftest import CIFAR_SUBMISSIONS
from tests.leaks import answer_secrets, expected_secrets, own_text, public_text
from tests.serve_kit import csrf_of, hand_in, login, make_class, upload, wait_graded

# Production's lifecycle: each run here starts and ends its own fork server (tests/conftest.py).
pytestmark = pytest.mark.own_sandbox

HIDDEN_TITLES = ("Total learnable parameters", "Receptive fields of conv1 and conv2",
                 "ConvNet gives finite outputs, also on large inputs")
DEAD_PID = 2 ** 22 + 12345  # above any pid this machine hands out (pid_max is at most 2**22)


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """alice hands in twice (correct, then in-channels-confusion), bob once (wrong-padding) to a
    server without workers; it stops with alice's first attempt claimed by a worker that is gone and
    an upload of carol's cut short; the next server, with one worker, grades what is pending.
    Yields that live server's clients (alice, bob, the instructor) and what was seen before."""
    from grader.serve.queue import GradingQueue
    from grader.serve.store import ClassStore

    served = make_class(tmp_path_factory.mktemp("served"))
    seen = {}
    first = served.app(workers=0)
    with TestClient(first) as alice:
        bob = TestClient(first)
        login(alice, served.tokens["alice"])
        login(bob, served.tokens["bob"])
        seen["upload"] = upload(alice, hand_in("correct"))
        upload(alice, hand_in("in-channels-confusion"))
        upload(bob, hand_in("wrong-padding"))
        seen["queued"] = [alice.get("/attempts/1/status").json(), alice.get("/attempts/2/status").json(),
                          bob.get("/attempts/1/status").json()]
        seen["waiting_page"] = alice.get("/attempts/2").text
    # The stopped server left: alice's first attempt claimed by a worker that died with it...
    grading_queue = GradingQueue(ClassStore(served.root).state)
    seen["claimed"] = grading_queue.claim(DEAD_PID).ticket
    # ...and carol's upload cut short, never renamed into place.
    partial = served.root / "carol" / "attempts" / ".incoming-0123456789abcdef" / "upload"
    partial.mkdir(parents=True)
    (partial / "convnet.py").write_text("import torch\n")

    second = served.app(workers=1)
    with TestClient(second) as alice:
        bob, teacher = TestClient(second), TestClient(second)
        login(alice, served.tokens["alice"])
        login(bob, served.tokens["bob"])
        login(teacher, served.tokens["instructor"])
        for number in (1, 2):
            wait_graded(alice, number)
        wait_graded(bob, 1)
        yield {"class": served, "alice": alice, "bob": bob, "teacher": teacher, "seen": seen,
               "store": ClassStore(served.root), "queue": grading_queue}


# --- the student ------------------------------------------------------------------------------

def test_an_upload_is_a_new_attempt_that_waits_in_the_queue_with_its_position(served):
    seen = served["seen"]
    assert seen["upload"].status_code == 200 and seen["upload"].url.path == "/attempts/1"
    assert [(s["attempt"], s["state"], s["position"]) for s in seen["queued"]] == [
        (1, "queued", 1), (2, "queued", 2), (1, "queued", 3)]
    page = seen["waiting_page"]
    assert "In the queue" in page and "Position 2 in the queue." in page
    assert '<script src="/static/attempt.js"' in page  # the page updates itself, from a static file


def test_the_student_sees_the_named_mistake_and_no_answer_or_hidden_check(served):
    """The in-channels-confusion hand-in counts conv1's weights with 32 input channels: the page
    names the check that failed and the value the student gave, never the reference's."""
    alice, store = served["alice"], served["store"]
    page = alice.get("/attempts/2")
    assert page.status_code == 200
    shown = text_of(page.text)
    result = store.result("alice", 2)
    failed = [c for c in result.checks if c.visibility.value == "public" and c.status.value != "passed"]
    assert failed, "the flawed hand-in must fail a public check"
    for check in failed:
        assert check.title in shown
    assert f"{result.score:g} / {result.max_score:g}" not in shown  # the instructor's total includes hidden checks
    for title in HIDDEN_TITLES:
        assert title not in shown
    assert "hidden check(s) are graded by your instructor" in shown

    lab = served["class"].app().state.classroom.lab
    secrets = (answer_secrets(lab) | expected_secrets(result)).without(public_text(lab)).without(
        own_text(CIFAR_SUBMISSIONS / "in-channels-confusion"))
    assert secrets, "the detector must have something to look for"
    assert secrets.found_in(shown) == []


def test_the_student_downloads_their_pdf_report_which_is_the_student_edition(served):
    response = served["alice"].get("/attempts/2/feedback.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="cifar-convnet-attempt-2-feedback.pdf"'
    text = pdf_text(response.content)
    assert "Learnable parameters of each layer" in text
    for title in HIDDEN_TITLES:
        assert title not in text


def test_the_home_page_lists_the_attempts_with_their_feedback(served):
    page = served["alice"].get("/")
    assert page.status_code == 200
    assert page.text.count('href="/attempts/') >= 2 and "feedback" in page.text
    assert "2 of 10 uploads" in text_of(page.text)


# --- another student's work -------------------------------------------------------------------

def test_a_student_can_never_read_another_students_attempt_or_report(served):
    """bob has one attempt; alice has two. bob's attempt 1 is his; attempt 2 is alice's number, not
    his; no student route takes a student id; the instructor's routes refuse him."""
    bob = served["bob"]
    own = bob.get("/attempts/1")
    assert own.status_code == 200 and "Bob Chen" in own.text and "Alice Martin" not in own.text
    for path in ("/attempts/2", "/attempts/2/feedback.pdf"):
        refused = bob.get(path)
        assert refused.status_code == 404 and b"%PDF" not in refused.content
    assert bob.get("/attempts/2/status").status_code == 404
    for path in ("/instructor", "/instructor/students/alice", "/instructor/students/alice/attempts/2",
                 "/instructor/students/alice/attempts/2/report.pdf",
                 "/instructor/students/alice/attempts/2/feedback.pdf",
                 "/instructor/students/alice/attempts/2/upload.zip", "/instructor/class.csv"):
        refused = bob.get(path)
        assert refused.status_code == 403, path
        assert b"%PDF" not in refused.content and not refused.content.startswith(b"PK")
    assert bob.get("/alice/attempts/2/feedback.pdf").status_code == 404


def test_a_link_planted_in_the_class_folder_is_never_followed(served, tmp_path):
    """The server runs as root: a report replaced by a link (to a file outside, or another
    student's) is refused, not served."""
    store, bob = served["store"], served["bob"]
    target = served["class"].root / "bob" / "attempts" / "1" / "feedback.pdf"
    kept = tmp_path / "kept.pdf"
    shutil.copy(target, kept)
    secret = tmp_path / "secret.txt"
    secret.write_text("root's secret")
    try:
        target.unlink()
        os.symlink(secret, target)
        response = bob.get("/attempts/1/feedback.pdf")
        assert response.status_code == 404 and b"root's secret" not in response.content
    finally:
        target.unlink()
        shutil.copy(kept, target)
    assert store.read("bob", 1, "feedback.pdf") == kept.read_bytes()


# --- the instructor ---------------------------------------------------------------------------

def test_the_roster_shows_each_students_latest_score_attempts_and_last_upload(served):
    teacher, store = served["teacher"], served["store"]
    page = teacher.get("/instructor")
    assert page.status_code == 200
    rows = {m.group(1): text_of(m.group(0)) for m in re.finditer(
        r'<tr>\s*<td><a href="/instructor/students/([a-z]+)">.*?</tr>', page.text, re.S)}
    assert set(rows) == {"alice", "bob", "carol"}
    latest = store.result("alice", 2)
    assert f"{latest.score:g} / {latest.max_score:g}" in rows["alice"]
    assert re.search(r"Alice Martin alice@example.org 2 ", rows["alice"])
    assert f"{store.result('bob', 1).score:g} / {store.result('bob', 1).max_score:g}" in rows["bob"]
    assert "extension +2d" in rows["carol"] and " 0 " in rows["carol"]  # no attempt (the cut-short one is gone)


def test_the_instructor_sees_every_check_both_reports_and_the_upload(served):
    teacher = served["teacher"]
    student = teacher.get("/instructor/students/alice")
    assert student.status_code == 200 and "/instructor/students/alice/attempts/1" in student.text
    page = teacher.get("/instructor/students/alice/attempts/2")
    assert page.status_code == 200
    for title in HIDDEN_TITLES:
        assert title in page.text
    report = teacher.get("/instructor/students/alice/attempts/2/report.pdf")
    assert report.status_code == 200 and "Receptive fields of conv1 and conv2" in pdf_text(report.content)
    feedback = teacher.get("/instructor/students/alice/attempts/2/feedback.pdf")
    assert feedback.status_code == 200 and "Receptive fields of conv1 and conv2" not in pdf_text(feedback.content)
    files = teacher.get("/instructor/students/alice/attempts/2/upload.zip")
    with zipfile.ZipFile(io.BytesIO(files.content)) as zf:
        assert zf.read("convnet.py") == (CIFAR_SUBMISSIONS / "in-channels-confusion" / "convnet.py").read_bytes()
    assert teacher.get("/instructor/students/alice/attempts/2/secret.key").status_code == 404
    assert teacher.get("/instructor/students/alice/attempts/9").status_code == 404
    assert teacher.get("/instructor/students/mallory").status_code == 404


def test_the_class_csv_and_the_exports_hold_each_students_latest_graded_attempt(served):
    teacher, store = served["teacher"], served["store"]
    table = teacher.get("/instructor/class.csv")
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    lines = {line.split(",")[0]: line.split(",") for line in table.text.splitlines()[1:]}
    assert set(lines) == {"alice", "bob"}
    assert float(lines["alice"][3]) == store.result("alice", 2).score
    page = teacher.get("/instructor")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    exported = teacher.post("/instructor/export", data={"csrf": token, "to": "csv"})
    assert exported.status_code == 200, exported.text
    assert "alice" in exported.text and "bob" in exported.text
    assert teacher.post("/instructor/export", data={"to": "csv"}).status_code == 403  # no CSRF token


# --- the queue --------------------------------------------------------------------------------

def test_a_restart_regrades_what_was_not_finished_and_never_grades_one_twice(served):
    """The first server stopped with alice's attempt 1 claimed and carol's upload half-written."""
    journal = served["queue"].journal
    attempts = {("alice", 1), ("alice", 2), ("bob", 1)}
    assert served["seen"]["claimed"].attempt == 1 and served["seen"]["claimed"].student == "alice"
    assert journal.count("queued") == {a: 1 for a in attempts}
    assert journal.count("requeued") == {("alice", 1): 1}   # the dead worker's claim, back at start
    assert journal.count("started") == {a: 1 for a in attempts}
    assert journal.count("graded") == {a: 1 for a in attempts}
    assert journal.count("duplicate") == {}
    assert served["queue"].counts() == {"pending": 0, "claimed": 0, "done": 3}
    carol = served["class"].root / "carol" / "attempts"
    assert os.listdir(carol) == []  # the upload cut short is no attempt
    for sid, number in attempts:
        folder = served["class"].root / sid / "attempts" / str(number)
        assert sorted(os.listdir(folder)) == ["attempt.json", "feedback.pdf", "report.pdf", "result.json", "upload"]


def test_a_ticket_whose_result_was_written_before_a_crash_is_finished_without_grading(served):
    """A worker that died after writing the result, before marking its ticket done: the ticket is
    claimed again, and the attempt is not graded a second time."""
    from grader.serve.workers import grade_claim

    grading_queue, store = served["queue"], served["store"]
    done = next(p for p in (grading_queue.root / "done").iterdir() if p.name.endswith("-bob-1.json"))
    ticket_name = done.name[:-5]
    claimed = grading_queue.root / "claimed" / f"{ticket_name}.{DEAD_PID}.json"
    os.rename(done, claimed)
    result = store.result("bob", 1)
    (claim,) = grading_queue.claims(DEAD_PID)
    grade_claim(None, None, store, grading_queue, claim)  # no run: grading it would fail
    assert grading_queue.state(ticket_name) == ("done", None)
    assert grading_queue.journal.count("started")[("bob", 1)] == 1
    assert json.loads(store.read("bob", 1, "result.json")) == json.loads(result.to_json())
    assert store.write_result_once("bob", 1, result) is False  # a result is written once


def test_gradelab_grade_on_the_servers_class_folder_grades_each_students_latest_attempt(served, tmp_path):
    from grader import api
    from grader.lab.manifest import LimitsOverride
    from grader.options import RunOptions
    from tests.conftest import FAST_LIMITS

    store = served["store"]
    lab = served["class"].app().state.classroom.lab
    batch = api.grade(served["class"].root, lab, tmp_path / "out",
                      RunOptions(limits=LimitsOverride(**FAST_LIMITS), train=False, reports=False))
    graded = {r.submission: r for r in batch.results}
    assert set(graded) == {"alice", "bob"}  # carol never handed in; .gradelab is not a student
    for sid, latest in (("alice", 2), ("bob", 1)):
        assert graded[sid].score == store.result(sid, latest).score
        assert ([c.status for c in graded[sid].checks]
                == [c.status for c in store.result(sid, latest).checks])
    assert graded["alice"].score != store.result("alice", 1).score  # not the first (correct) attempt


def test_an_attempt_whose_worker_died_every_try_gets_a_result_saying_so(served, renderer):
    """A hand-in that took its grading worker down ``MAX_TRIES`` times is not tried again: it gets
    an error result (a fault of the grader, the student may upload again) and is done."""
    from datetime import datetime

    from grader.grading.run import Run
    from grader.options import Mode, RunOptions
    from grader.serve.queue import MAX_TRIES, Ticket
    from grader.serve.workers import GRADER_FAULT, grade_claim

    store, grading_queue = served["store"], served["queue"]
    meta = store.create_attempt("carol", dict(hand_in("correct")), {
        "uploaded_at": datetime.now(UTC), "kind": "files", "files": ["answers.yaml", "convnet.py"],
        "bytes": 1, "name": "Carol Diaz", "email": ""})
    ticket = Ticket(student="carol", attempt=meta.number, queued_at=meta.uploaded_at, tries=MAX_TRIES)
    path = grading_queue.root / "claimed" / f"{ticket.name}.{DEAD_PID}.json"
    path.write_text(ticket.model_dump_json())  # claimed, so the live worker does not take it
    run = Run(served["class"].app().state.classroom.lab, RunOptions(mode=Mode.grade))
    (claim,) = [c for c in grading_queue.claims(DEAD_PID) if c.ticket.student == "carol"]
    grade_claim(run, renderer, store, grading_queue, claim)
    result = store.result("carol", meta.number)
    assert result.score == 0 and result.checks[0].message == GRADER_FAULT
    assert grading_queue.state(ticket.name) == ("done", None)
    assert ("carol", meta.number) not in grading_queue.journal.count("started")
    assert grading_queue.journal.count("graded")[("carol", meta.number)] == 1
    assert store.read("carol", meta.number, "feedback.pdf").startswith(b"%PDF")


def test_a_students_pdf_carries_the_grade_of_a_written_answer_once_it_is_given(served):
    """The PDF stored at grading time says the written answer awaits review; once the instructor
    grades it in the grading pages, the student's download has the points and the comment."""
    alice, teacher = served["alice"], served["teacher"]
    before = pdf_text(alice.get("/attempts/2/feedback.pdf").content)
    assert "awaiting review" in before.lower() and "Mind the order of the words" not in before
    page = teacher.get("/review/why-pooling")
    assert page.status_code == 200
    graded = teacher.post("/review/why-pooling/grade", headers={"accept": "application/json"}, data={
        "csrf": csrf_of(page.text), "key": "alice", "version": "0", "item": "pooling-learns",
        "comment": "Mind the order of the words: pooling keeps, it does not learn."})
    assert graded.status_code == 200, graded.text
    after = pdf_text(alice.get("/attempts/2/feedback.pdf").content)
    assert "Mind the order of the words" in after and "no learnable parameters" in after
    instructors = pdf_text(teacher.get("/instructor/students/alice/attempts/2/report.pdf").content)
    assert "Mind the order of the words" in instructors  # the instructor's copy too
    # bob's answer was not graded: his PDF is the one stored when his attempt was graded
    assert "Mind the order" not in pdf_text(served["bob"].get("/attempts/1/feedback.pdf").content)
