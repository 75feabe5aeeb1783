"""One truth on every page of the hand-in server: which uploads are stored, which attempt counts,
and the score shown for it (written grades merged, over the lab's full points, pending said as
pending) on the student's page, the attempts table, the roster, the instructor's pages, class.csv
and the exports.

A server without workers, and results written into its store as a worker writes them (crafted
from the lab's checks), so no test here waits for a grading.
"""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from tests.serve_kit import csrf_of, hand_in, login, make_class, upload, zipped

FULL = 20  # cifar-convnet: 14 public points, 3 hidden, 3 for the written answer
ANSWER = "Pooling makes the features invariant to small shifts and the maps smaller."


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def crafted(sid: str, *, lost: dict[str, float] | None = None, answer: str = ANSWER):
    """A result of cifar-convnet as a worker stores it: every check passed but those in ``lost``
    (check id → points lost), the written answer awaiting review."""
    from grader.api import load_lab
    from grader.checks.written import WrittenCheck, answer_digest
    from grader.lab.manifest import Limits
    from grader.results import CheckResult, Status, Student, SubmissionResult, tally

    lost = lost or {}
    checks = []
    for spec in load_lab("cifar-convnet").manifest.checks:
        if spec.kind == "written":
            checks.append(CheckResult(id=spec.id, title=spec.title, kind=spec.kind, visibility=spec.visibility,
                                      status=Status.awaiting_review, score=0, max_score=spec.points,
                                      details={"answer": answer, "answer_sha": answer_digest(answer),
                                               "question": spec.params["question"]},
                                      disclosure=WrittenCheck.disclosure))
            continue
        score = spec.points - lost.get(spec.id, 0)
        status = Status.passed if score == spec.points else Status.partial if score > 0 else Status.failed
        checks.append(CheckResult(id=spec.id, title=spec.title, kind=spec.kind, visibility=spec.visibility,
                                  status=status, score=score, max_score=spec.points,
                                  message="" if status == Status.passed else "Not quite."))
    score, max_score, pending = tally(checks)
    return SubmissionResult(submission=sid, path=sid, student=Student(id=sid, name=sid), lab="cifar-convnet",
                            lab_title="CIFAR-10 ConvNet", lab_version="1", grader_version="test", mode="grade",
                            limits=Limits(), score=score, max_score=max_score, pending_points=pending, checks=checks)


@pytest.fixture
def served(tmp_path):
    return make_class(tmp_path)


def graded_attempt(client, served, result, sid: str = "alice") -> int:
    """An upload of the correct hand-in, then ``result`` written as its grade, as a worker does
    (it claims the ticket, writes the result, finishes the ticket)."""
    import os

    room = client.app.state.classroom
    response = upload(client, hand_in("correct"))
    assert response.status_code == 303, response.text
    number = int(response.headers["location"].rsplit("/", 1)[1])
    claim = room.queue.claim(os.getpid())
    assert claim is not None and (claim.ticket.student, claim.ticket.attempt) == (sid, number)
    assert room.store.write_result_once(sid, number, result)
    room.queue.finish(claim)
    return number


def grade_written(teacher, items: list[str], comment: str, key: str = "alice"):
    page = teacher.get("/review/why-pooling")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    response = teacher.post("/review/why-pooling/grade", headers={"accept": "application/json"}, data={
        "csrf": csrf_of(page.text), "key": key, "version": version.group(1) if version else "0",
        "item": items, "comment": comment})
    assert response.status_code == 200, response.text
    return response


# --- what is stored ---------------------------------------------------------------------------

@pytest.mark.parametrize("files, said", [
    ([zipped({})], "handin.zip is empty: no convnet.py, no answers.yaml and no notebook"),
    ([zipped({"notes/readme.txt": b"hello"})], "handin.zip holds nothing to grade: no convnet.py"),
    ([zipped({"convnet.py": b"", "answers.yaml": b"  \n"})], "handin.zip holds nothing to grade"),
    ([("helpers.py", b"x = 1\n")], "this upload holds nothing to grade"),
    ([("empty.ipynb", b"")], "empty.ipynb holds nothing to grade"),
])
def test_an_upload_with_nothing_to_grade_is_refused_and_the_earlier_grade_kept(served, files, said):
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        graded_attempt(client, served, crafted("alice"))
        refused = upload(client, files)
        assert refused.status_code == 422
        assert said in text_of(refused.text)
        assert "Your earlier attempts and their grade are kept." in text_of(refused.text)
        teacher = TestClient(client.app)
        login(teacher, served.tokens["instructor"])
        roster = text_of(teacher.get("/instructor").text)
        assert f"17 / {FULL}" in roster  # the written answer (3) pending, nothing lost
        assert [line.split(",")[0] for line in teacher.get("/instructor/class.csv").text.splitlines()[1:]] == ["alice"]
    assert sorted(p.name for p in (served.root / "alice" / "attempts").iterdir()) == ["1"]


def test_a_zip_with_the_module_in_a_folder_is_stored(served):
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        assert upload(client, [zipped({f"lab3/{n}": d for n, d in hand_in("correct")})]).status_code == 303


def test_refused_uploads_count_toward_the_hour_and_the_form_closes_at_the_limit(served):
    with TestClient(served.app(attempts_per_hour=3), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        assert upload(client, [zipped({})]).status_code == 422
        assert upload(client, [("notes.txt", b"hi")]).status_code == 400
        assert upload(client, hand_in("correct")).status_code == 303
        home = client.get("/")
        assert "3 of 3 uploads" in text_of(home.text)
        assert 'action="/upload"' not in home.text  # no form to fill in only to learn it from a 429
        assert "You have used the 3 uploads of this hour: you can upload again at" in text_of(home.text)
        refused = upload_anyway(client, hand_in("correct"))
        assert refused.status_code == 429
        assert "uploads refused for what they held count too" in refused.text


def upload_anyway(client, files):
    """An upload sent without the home page's form (a script, or a tab opened before the limit)."""
    token = csrf_of(client.get("/").text)  # the session's token, from the page's log-out form
    return client.post("/upload", data={"csrf": token},
                       files=[("files", (name, data, "application/octet-stream")) for name, data in files])


# --- which attempt counts, and its score -----------------------------------------------------

@pytest.mark.parametrize("counts, counted, score", [("last", 2, 7), ("best", 1, 14)])
def test_the_attempt_that_counts_is_a_class_setting_said_on_the_students_page(served, counts, counted, score):
    with TestClient(served.app(counts=counts), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        graded_attempt(client, served, crafted("alice"))
        graded_attempt(client, served, crafted("alice", lost={"layer-params": 3, "layer-shapes": 2,
                                                              "conv-output-size": 2}))
        home = text_of(client.get("/").text)
        said = "Your best graded attempt counts." if counts == "best" else "Your last graded attempt counts."
        assert said in home
        rows = re.findall(r"<tr>.*?</tr>", client.get("/").text, re.S)[1:]
        by_number = {int(re.search(r"/attempts/(\d+)", r).group(1)): text_of(r) for r in rows}
        assert f"17 / {FULL}" in by_number[1] and f"10 / {FULL}" in by_number[2]  # hidden points in the total
        assert "3 pending review" in by_number[1] and "incl. 3 hidden" in by_number[1]
        assert "counts" in by_number[counted] and "counts" not in by_number[3 - counted]
        page = text_of(client.get(f"/attempts/{counted}").text)
        assert "This attempt counts" in page
        teacher = TestClient(client.app)
        login(teacher, served.tokens["instructor"])
        roster = text_of(teacher.get("/instructor").text)
        assert f"{score + 3} / {FULL}" in roster  # the hidden 3 points, all earned, on the instructor's side
        table = teacher.get("/instructor/class.csv").text.splitlines()
        assert float(table[1].split(",")[3]) == score + 3


# --- written grades, the same number everywhere ------------------------------------------------

def test_a_written_grade_reaches_the_students_page_the_roster_the_class_csv_and_the_export(served):
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        number = graded_attempt(client, served, crafted("alice"))
        before = text_of(client.get(f"/attempts/{number}").text)
        assert f"17 / {FULL}" in before and "3 points pending review" in before
        assert "Public checks, graded on upload 14 / 14" in before
        assert "Written answers, graded by your instructor pending review / 3" in before
        teacher = TestClient(client.app, follow_redirects=False)
        login(teacher, served.tokens["instructor"])
        assert "3 pending review" in text_of(teacher.get("/instructor").text)
        grade_written(teacher, ["invariance", "smaller-maps"], "Clearly put.")

        after = text_of(client.get(f"/attempts/{number}").text)
        assert f"19 / {FULL}" in after and "pending review" not in after
        assert "Written answers, graded by your instructor 2 / 3" in after and "Clearly put." in after
        assert f"19 / {FULL}" in text_of(client.get("/").text)  # the attempts table
        roster = text_of(teacher.get("/instructor").text)
        assert f"19 / {FULL}" in roster and "(95 %)" in roster  # the same number as alice reads
        assert "pending review" not in roster
        assert f"19 / {FULL}" in text_of(teacher.get(f"/instructor/students/alice/attempts/{number}").text)
        assert f"19 / {FULL}" in text_of(teacher.get("/instructor/students/alice").text)
        table = teacher.get("/instructor/class.csv").text.splitlines()
        assert float(table[1].split(",")[3]) == 19
        exported = teacher.post("/instructor/export", data={"csrf": csrf_of(teacher.get("/instructor").text),
                                                            "to": "csv"})
        assert exported.status_code == 200 and "19" in exported.text


def test_the_same_grade_survives_a_restart(served):
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        number = graded_attempt(client, served, crafted("alice"))
        teacher = TestClient(client.app, follow_redirects=False)
        login(teacher, served.tokens["instructor"])
        grade_written(teacher, ["invariance"], "")
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        assert f"18 / {FULL}" in text_of(client.get(f"/attempts/{number}").text)


# --- the grading pages ------------------------------------------------------------------------

def test_the_review_index_counts_blank_answers_and_loads_its_progress_script(served):
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        graded_attempt(client, served, crafted("alice", answer=""))
        bob = TestClient(client.app, follow_redirects=False)
        login(bob, served.tokens["bob"])
        graded_attempt(bob, served, crafted("bob"), "bob")
        teacher = TestClient(client.app, follow_redirects=False)
        login(teacher, served.tokens["instructor"])
        index = teacher.get("/review").text
        row = text_of(re.search(r"<tr>\s*<td><a href=\"/review/why-pooling\">.*?</tr>", index, re.S).group(0))
        assert row.endswith("0 / 2 graded 1")  # 2 answers, none graded, 1 blank
        assert '<script src="/static/review.js" defer></script>' in index
        page = teacher.get("/review/why-pooling").text
        assert "<kbd>g</kbd> mark graded as is" in page and "<kbd>Enter</kbd> mark graded" not in page
        assert 'aria-pressed="false"' in page


def test_the_grading_script_leaves_enter_and_space_to_the_focused_control():
    """The page's script: Enter and Space are never a grading key, a 409 keeps the grader's input."""
    from grader.report.render import TEMPLATES

    script = (TEMPLATES / "serve" / "static" / "review.js").read_text()
    assert 'if (e.key === "Enter" || e.key === " ") { return; }' in script
    assert 'e.key === "Enter") { e.preventDefault(); save(group); }' not in script
    assert "sessionStorage.setItem(STASH" in script


# --- sessions and logins --------------------------------------------------------------------

def session_cookie(client) -> tuple[str, str]:
    (name, value), = [(k, v) for k, v in client.cookies.items() if k.startswith("gradelab_session_")]
    return name, value


@pytest.mark.parametrize("who", ["alice", "instructor"])
def test_logging_out_ends_the_session_a_copied_cookie_too(served, who):
    with TestClient(served.app(), follow_redirects=False) as client:
        assert login(client, served.tokens[who]).status_code == 303
        name, value = session_cookie(client)
        page = "/instructor" if who == "instructor" else "/"
        copy = TestClient(client.app, follow_redirects=False)
        copy.cookies.set(name, value)
        assert copy.get(page).status_code == 200  # the copy works while the session lives
        assert client.post("/logout", data={"csrf": csrf_of(client.get(page).text)}).status_code == 303
        assert copy.get(page).headers["location"] == "/login"
    with TestClient(served.app(), follow_redirects=False) as restarted:
        restarted.cookies.set(name, value)
        assert restarted.get(page).headers["location"] == "/login"  # nor after a restart


def test_a_session_outlives_a_restart_and_is_kept_hashed(served):
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        name, value = session_cookie(client)
    book = served.root / ".gradelab" / "sessions.json"
    assert book.stat().st_mode & 0o077 == 0 and value not in book.read_text()
    with TestClient(served.app(), follow_redirects=False) as again:
        again.cookies.set(name, value)
        assert again.get("/").status_code == 200


def test_logins_are_rate_limited_per_address_and_per_token(served):
    with TestClient(served.app(), follow_redirects=False) as client:
        answers = [login(client, f"guess-{i}").status_code for i in range(22)]
        assert answers[:20] == [401] * 20 and answers[20:] == [429, 429]  # not 200 guesses a second
        late = login(client, served.tokens["alice"])  # the right token, past the limit: refused unread
        assert late.status_code == 429 and "Too many login attempts" in late.text
        assert 0 < int(late.headers["retry-after"]) <= 601
        codes = [login(TestClient(client.app, follow_redirects=False, client=("10.0.0.2", 50000)),
                       served.tokens["bob"]).status_code for _ in range(21)]
        assert codes[:20] == [303] * 20 and codes[20] == 429  # one token, logged in over and over


def test_serve_and_review_on_one_host_keep_cookies_of_their_own(served):
    from grader.serve.security import cookie_names

    assert len({*cookie_names("serve", 8000), *cookie_names("review", 8001), *cookie_names("serve", 8002)}) == 6
    with TestClient(served.app(port=8123), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        assert session_cookie(client)[0] == "gradelab_session_serve_8123"


def test_the_written_answer_is_on_the_students_and_the_instructors_attempt_page(served):
    answer = "Pooling <b>keeps</b> the strongest response & halves the map."
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        number = graded_attempt(client, served, crafted("alice", answer=answer))
        escaped = "Pooling &lt;b&gt;keeps&lt;/b&gt; the strongest response &amp; halves the map."
        assert escaped in client.get(f"/attempts/{number}").text
        teacher = TestClient(client.app, follow_redirects=False)
        login(teacher, served.tokens["instructor"])
        assert escaped in teacher.get(f"/instructor/students/alice/attempts/{number}").text


# --- what an LMS comment says -------------------------------------------------------------------

def test_a_syntax_error_shared_by_four_checks_is_said_once_in_the_lms_comment():
    from grader.export.feedback import summary_text
    from grader.results import Part, Status

    said = "Your `convnet.py` does not run: SyntaxError on line 12 (a parenthesis is not closed)."
    result = crafted("alice")
    checks = [c.model_copy(update={"status": Status.error, "score": 0, "message": said, "parts": [Part(text=said)]})
              if c.id in ("model-output-shape", "model-structure", "model-param-count", "layer-shapes") else c
              for c in result.checks]
    text = summary_text(result.model_copy(update={"checks": checks}))
    assert text.count("SyntaxError on line 12") == 1
    assert "Your convnet.py does not run" in text and "`" not in text  # Markdown made plain
    assert ".." not in text


def test_a_comment_too_long_is_cut_at_a_word_and_says_so():
    from grader.export.feedback import CUT_MARK, trim

    text = " ".join(["pooling"] * 300)
    cut = trim(text, 1000)
    assert len(cut) <= 1000 and cut.endswith(CUT_MARK)
    assert cut[: -len(CUT_MARK)].endswith("pooling")  # a whole word, not "pool"
    assert trim("short.", 1000) == "short."


def test_a_graded_written_comment_ends_with_one_full_stop_in_the_lms_comment(served):
    from grader.export.feedback import summary_text

    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        graded_attempt(client, served, crafted("alice"))
        teacher = TestClient(client.app, follow_redirects=False)
        login(teacher, served.tokens["instructor"])
        grade_written(teacher, ["invariance"], "Clearly put.")
        (result,) = client.app.state.classroom.latest_results()
    text = summary_text(result)
    assert "Clearly put. " in text or text.endswith("Clearly put.")
    assert ".." not in text


# --- pages and PDFs -----------------------------------------------------------------------------

def test_messages_markdown_is_rendered_on_the_page_and_in_the_pdf_with_the_student_text_escaped(served):
    from grader.report.render import inline_markdown

    assert str(inline_markdown("Define `ConvNet` in **convnet.py**; <b>x</b>")) == \
        "Define <code>ConvNet</code> in <strong>convnet.py</strong>; &lt;b&gt;x&lt;/b&gt;"
    from grader.results import Part, Status

    said = "Your `convnet.py` has no class `ConvNet`."
    result = crafted("alice")
    checks = [c.model_copy(update={"status": Status.failed, "score": 0, "message": said, "parts": [Part(text=said)]})
              if c.id == "model-structure" else c for c in result.checks]
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        number = graded_attempt(client, served, result.model_copy(update={"checks": checks}))
        page = client.get(f"/attempts/{number}").text
    assert "Your <code>convnet.py</code> has no class <code>ConvNet</code>." in page and "`" not in page


def test_the_awaiting_review_pill_fits_its_column_in_the_pdf():
    """Laid out by WeasyPrint as the PDF is: every status pill ends inside its own cell, so it
    never overlaps the feedback beside it."""
    from weasyprint import HTML

    from grader.report.render import ReportRenderer

    renderer = ReportRenderer()
    for audience in ("student", "instructor"):
        html = renderer.submission_html(crafted("alice"), audience, standalone=False)
        document = HTML(string=html, base_url=str(renderer.templates)).render(
            stylesheets=[renderer.css], font_config=renderer.font_config)
        pills = []

        def inner(box):
            yield box
            for child in getattr(box, "children", None) or []:
                yield from inner(child)

        for page in document.pages:
            for row in inner(page._page_box):
                if getattr(row, "element_tag", "") != "tr":
                    continue
                cells = [c for c in row.children if getattr(c, "element_tag", "") == "td"]
                for i, cell in enumerate(cells[:-1]):
                    for box in inner(cell):
                        element = getattr(box, "element", None)
                        if (type(box).__name__ in ("InlineBox", "InlineBlockBox") and element is not None
                                and "status" in (element.get("class") or "").split()):
                            pills.append((element.text, box.position_x + box.margin_width(),
                                          cells[i + 1].content_box_x()))
        assert any(text == "awaiting review" for text, _, _ in pills)
        for text, right, cell_right in pills:
            assert right <= cell_right, f"{text!r} ends at {right:.1f}, the feedback beside it starts at {cell_right:.1f}"


def test_the_servers_export_keeps_its_warnings_on_the_roster(served):
    worksheet = b"Identifier,Full name,Grade,Maximum Grade,Feedback comments\nParticipant 999,Zed,,20,\n"
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        graded_attempt(client, served, crafted("alice"))
        teacher = TestClient(client.app, follow_redirects=False)
        login(teacher, served.tokens["instructor"])
        exported = teacher.post("/instructor/export", data={"csrf": csrf_of(teacher.get("/instructor").text),
                                                            "to": "moodle", "partial": "1"},
                                files={"template": ("worksheet.csv", worksheet, "text/csv")})
        assert exported.status_code == 200 and exported.headers["x-gradelab-warnings"] == "2"  # partial, and alice not in it
        roster = text_of(teacher.get("/instructor").text)
        assert "The last export (moodle) said:" in roster and "alice (Participant alice) is not in the worksheet: not exported" in roster


def test_an_archive_is_unpacked_in_a_process_other_than_the_web_process(served, monkeypatch):
    import os

    from grader.serve import uploads

    seen = []
    real = uploads.unpack_archive

    def spy(*args, **kwargs):
        seen.append(os.getpid())
        return real(*args, **kwargs)

    monkeypatch.setattr(uploads, "unpack_archive", spy)  # the web process's copy: never called
    with TestClient(served.app(), follow_redirects=False) as client:
        login(client, served.tokens["alice"])
        assert upload(client, [zipped(hand_in("correct"))]).status_code == 303
        assert upload(client, [zipped({})]).status_code == 422
    assert seen == []


def test_reworded_answers_on_one_misconception_group_but_a_negation_or_a_swap_does_not():
    from grader.review.groups import group_answers

    first = ("BatchNorm reduces internal covariate shift, so each layer sees inputs with the same distribution "
             "during training and the network learns faster.")
    reworded = ("BatchNorm reduces the internal covariate shift: each layer sees inputs with the same distribution "
                "during training, so the network learns faster.")
    negated = first.replace("reduces", "does not reduce")
    lower, higher = ("With BatchNorm the loss is lower, not higher, and the band is narrower.",
                     "With BatchNorm the loss is higher, not lower, and the band is narrower.")
    groups = group_answers({"a": first, "b": reworded, "c": negated, "d": lower, "e": higher})
    assert [g.keys for g in groups] == [["a", "b"], ["c"], ["d"], ["e"]]
    assert groups[0].similarity == [1.0, 0.6] and groups[0].words == [1.0, 0.95]  # the measure, shown on the page
