"""The grading pages through Starlette's test client: the instructor only, a one-time login link,
CSRF on every POST, answers escaped, a stale grade refused with 409, an edited item rescoring."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from grader import api
from grader.options import RunOptions
from grader.serve.review_app import create_review_app

ESSAY = Path(__file__).parent / "labs" / "essay"
Q = "why-pooling"


@pytest.fixture(scope="module")
def graded_once(tmp_path_factory):
    """A class of three graded once (the batch costs seconds): its output folder."""
    base = tmp_path_factory.mktemp("review-pages")
    root, out = base / "class", base / "out"
    answers = {"ada": "Pooling gives invariance to small shifts.", "bob": "pooling gives invariance to small shifts!",
               "eve": "<script>alert(1)</script> pooling learns features"}
    for name, text in answers.items():
        (root / name).mkdir(parents=True)
        (root / name / "answers.yaml").write_text(yaml.safe_dump({"n": 3, "written": {"pooling": text, "lr": "x"}}))
    api.grade(root, api.load_lab(ESSAY), out, RunOptions(reports=False))
    return out


@pytest.fixture
def pages(tmp_path, graded_once):
    """The grading pages of a fresh copy of that batch, through the test client."""
    out = tmp_path / "out"
    shutil.copytree(graded_once, out)
    app, link = create_review_app(api.load_lab(ESSAY), out)
    with TestClient(app, base_url="http://127.0.0.1:8010") as client:
        yield client, link, out


def login(client, link) -> str:
    assert client.get(f"/login?key={link.key}", follow_redirects=False).status_code == 303
    page = client.get(f"/review/{Q}")
    assert page.status_code == 200
    return re.search(r'data-csrf="([^"]+)"', page.text).group(1)


def test_nobody_grades_without_the_login_link_and_the_link_works_once(pages):
    client, link, _ = pages
    assert client.get("/review").status_code == 401
    assert client.get("/login?key=wrong", follow_redirects=False).status_code == 403
    login(client, link)
    client.cookies.clear()
    assert client.get(f"/login?key={link.key}", follow_redirects=False).status_code == 403
    assert client.get("/review").status_code == 401


def test_the_question_page_groups_alike_answers_and_escapes_them(pages):
    client, link, _ = pages
    login(client, link)
    page = client.get(f"/review/{Q}")
    assert "2 answers, graded together" in page.text  # ada and bob differ in case and punctuation only
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "0 / 3" in re.sub(r"<[^>]+>", "", page.text)  # progress
    assert client.get("/review/no-such-question").status_code == 404


def test_every_post_needs_the_sessions_csrf_token(pages):
    client, link, _ = pages
    csrf = login(client, link)
    form = {"key": ["ada", "bob"], "version": ["0", "0"], "item": "invariance", "comment": "ok"}
    assert client.post(f"/review/{Q}/grade", data=form).status_code == 403
    assert client.post(f"/review/{Q}/grade", data={**form, "csrf": "forged"}).status_code == 403
    assert client.post(f"/review/{Q}/rubric", data={"id": "invariance", "points": "1", "comment": "x"}).status_code == 403
    assert client.post("/review/reports", data={}).status_code == 403
    saved = client.post(f"/review/{Q}/grade", data={**form, "csrf": csrf}, headers={"accept": "application/json"})
    assert saved.status_code == 200 and saved.json()["graded"] == 2 and saved.json()["score"] == 2


def test_the_pages_of_a_batch_say_it_was_graded_on_this_machine(pages):
    client, link, _ = pages
    login(client, link)
    page = client.get("/review").text
    assert "Graded by <code>gradelab grade</code> on this machine" in page and "course's server" not in page


def test_a_grade_sent_from_a_stale_page_gets_409_and_changes_nothing(pages):
    client, link, out = pages
    csrf = login(client, link)
    form = {"csrf": csrf, "key": "eve", "version": "0", "item": "learns", "comment": "first"}
    json_ = {"accept": "application/json"}
    assert client.post(f"/review/{Q}/grade", data=form, headers=json_).json()["versions"] == {"eve": 1}
    stale = client.post(f"/review/{Q}/grade", data={**form, "comment": "second"}, headers=json_)
    assert stale.status_code == 409 and stale.json()["keys"] == ["eve"]
    assert '"comment": "first"' in (out / "review" / f"{Q}.json").read_text()


def test_editing_a_rubric_item_on_the_page_rescores_the_answers_it_is_on(pages):
    client, link, out = pages
    csrf = login(client, link)
    client.post(f"/review/{Q}/grade", data={"csrf": csrf, "key": ["ada", "bob"], "version": ["0", "0"],
                                            "item": "invariance"}, headers={"accept": "application/json"})
    edited = client.post(f"/review/{Q}/rubric", data={"csrf": csrf, "id": "invariance", "points": "1.5",
                                                      "comment": "Invariance to shifts."}, follow_redirects=False)
    assert edited.status_code == 303
    results = {r.submission: r for r in api.read_results(out, ESSAY)}
    assert [next(c for c in results[n].checks if c.id == Q).score for n in ("ada", "bob")] == [1.5, 1.5]
    assert client.post(f"/review/{Q}/rubric", data={"csrf": csrf, "id": "Bad Id", "points": "1",
                                                    "comment": "x"}).status_code == 400


def test_a_students_report_is_rendered_with_the_grades_so_far(pages):
    import io

    from pypdf import PdfReader

    client, link, _ = pages
    csrf = login(client, link)
    client.post(f"/review/{Q}/grade", data={"csrf": csrf, "key": "eve", "version": "0", "item": "learns",
                                            "comment": "Reread the pooling slides."}, headers={"accept": "application/json"})
    pdf = client.get("/review/students/eve/report.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Reread the pooling slides." in text and "Pooling has no learnable parameters." in text
    assert client.get("/review/students/nobody/report.pdf").status_code == 404


def test_in_a_served_class_the_grading_pages_are_the_instructors_only(tmp_path):
    from grader.lab.manifest import LimitsOverride
    from grader.serve.app import create_app
    from grader.serve.roster import Roster, issue
    from grader.serve.settings import ServeSettings

    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\nalice,Alice Martin,alice@example.org\n", encoding="utf-8")
    issued = issue(Roster.read(roster), tmp_path / "class")
    tokens = {student.id: token for student, token in issued.rows} | {"instructor": issued.instructor_token}
    app = create_app(api.load_lab("cifar-convnet"), RunOptions(limits=LimitsOverride(wall_s=5), reports=False),
                     ServeSettings(class_dir=tmp_path / "class", roster=roster, workers=0))

    def log_in(client, token):
        form = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        assert client.post("/login", data={"token": token, "csrf": csrf}).status_code == 303

    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/review").status_code == 303  # to the login page
        log_in(client, tokens["alice"])
        assert client.get("/review").status_code == 403
        assert client.get(f"/review/{Q}").status_code == 403
    with TestClient(app, follow_redirects=False) as client:
        log_in(client, tokens["instructor"])
        index = client.get("/review")
        assert index.status_code == 200 and "Why spatial pooling?" in index.text
        assert 'href="/review"' in client.get("/instructor").text  # the roster links to the grading pages
        assert client.post(f"/review/{Q}/grade", data={"key": "alice", "version": "0"}).status_code == 403


def test_write_reports_renders_the_batchs_pdfs_again_with_the_grades(pages):
    from pypdf import PdfReader

    client, link, out = pages
    csrf = login(client, link)
    client.post(f"/review/{Q}/grade", data={"csrf": csrf, "key": ["ada", "bob"], "version": ["0", "0"],
                                            "item": "smaller", "comment": "One reason of two."},
                headers={"accept": "application/json"})
    done = client.post("/review/reports", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert "Reports written again" in client.get(done.headers["location"]).text
    text = " ".join(p.extract_text() for p in PdfReader(out / "reports" / "students" / "bob.pdf").pages)
    assert "One reason of two." in text
    summary = " ".join(" ".join(p.extract_text() for p in PdfReader(out / "reports" / "class-summary.pdf").pages).split())
    assert "Written answers" in summary and "Smaller maps, less computation: right. ×2" in summary, summary


def test_class_csv_has_a_written_answers_points_as_soon_as_they_are_given_and_after_a_rubric_edit(pages):
    """The batch's class.csv says what the reports and exports say: it kept the batch's scores,
    written answers blank, until the class was graded again."""
    import csv

    client, link, out = pages

    def table() -> dict[str, dict[str, str]]:
        return {row["submission"]: row for row in csv.DictReader((out / "class.csv").open())}

    before = table()
    assert before["ada"][Q] == "" and before["bob"][Q] == ""
    csrf = login(client, link)
    client.post(f"/review/{Q}/grade", data={"csrf": csrf, "key": ["ada", "bob"], "version": ["0", "0"],
                                            "item": "invariance"}, headers={"accept": "application/json"})
    graded = {r.submission: r for r in api.read_results(out, ESSAY)}
    now = table()
    for name in ("ada", "bob"):
        assert now[name][Q] == f"{next(c for c in graded[name].checks if c.id == Q).score:g}" != ""
        assert now[name]["score"] == f"{graded[name].score:g}" != before[name]["score"]
    assert now["eve"] == before["eve"]  # not graded: still pending
    client.post(f"/review/{Q}/rubric", data={"csrf": csrf, "id": "invariance", "points": "1.5",
                                             "comment": "Invariance to shifts."}, follow_redirects=False)
    assert table()["ada"][Q] == "1.5" and table()["bob"][Q] == "1.5"
