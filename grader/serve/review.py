"""The grading pages: one written question across the whole class at a time.

A ``ReviewDesk`` says where the answers and the grades are: a batch graded from the command line
(``gradelab review OUT``: results in ``OUT``, grades in ``OUT/review``), or a served class. The
routes here only read it, through ``desk(request)`` and ``grader(request)`` that the app puts in
its state, so the same pages serve both; every route starts with the instructor check, every
POST checks the CSRF token (``deps.form``-like, against the caller's session).

Answers are grouped (``grader.review.groups``): a group is graded at once, every member getting
the same rubric items and comment. A grade is sent with the versions the page was rendered with;
one that someone else changed meanwhile answers 409, and the page reloads that answer; so does one
sent with the digest of an answer the student has since replaced (the page sends the digest of each
answer it shows).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from grader.checks.registry import BoundCheck, BoundLab
from grader.checks.written import RubricItem
from grader.errors import GradelabError
from grader.results import Status, SubmissionResult
from grader.reveal import Audience

if TYPE_CHECKING:
    from starlette.routing import BaseRoute
from grader.review.groups import THRESHOLD, group_answers
from grader.review.merge import (
    load_books,
    merge_result,
    points_of,
    rubric_of,
    written_checks,
)
from grader.review.store import COMMENT_MAX, ReviewStore, StaleGrade
from grader.serve.lti.scores import note as lti_note
from grader.serve.security import same_origin, same_token


@dataclass
class ReviewDesk:
    """What the grading pages grade: a lab, where its grades are kept, and the answers (each
    graded result by its key in the grades: a batch's result name, a served student's id)."""

    lab: BoundLab
    store: ReviewStore
    results: Callable[[], dict[str, SubmissionResult]]
    out: Path | None = None  # a batch folder: its reports can be written again with the grades
    notes: list[str] = field(default_factory=list)
    _table: threading.Lock = field(default_factory=threading.Lock)  # the last writer reads the latest grades

    def question(self, qid: str) -> BoundCheck:
        found = next((c for c in written_checks(self.lab) if c.spec.id == qid), None)
        if found is None:
            raise HTTPException(404, "No such written question in this lab.")
        return found

    def merged(self) -> dict[str, SubmissionResult]:
        books = load_books(self.lab, self.store)
        return {key: merge_result(r, self.lab, books, key) for key, r in self.results().items()}

    def write_table(self) -> None:
        """A batch's ``class.csv`` again, with the grades given so far: a written answer's points
        are in it as soon as they are given, as they are in the reports and the exports (it kept
        the batch's scores until the class was graded again)."""
        if self.out is None:
            return
        from grader.atomic import write_atomic
        from grader.grading.batch import CLASS_CSV, class_csv

        with self._table:
            write_atomic(self.out / CLASS_CSV, class_csv(self.lab, list(self.merged().values())))


def classroom_desk(room: Any) -> ReviewDesk:
    """The desk of a served class: each student's attempt that counts (``--counts``), as stored,
    by student id; grades in the server's state folder."""
    def load() -> dict[str, SubmissionResult]:
        found = {}
        for s in room.roster:
            counted = room.counted(s.id)
            stored = room.store.result(s.id, counted[0].number) if counted is not None else None
            if stored is not None:
                found[s.id] = stored
        return found
    return ReviewDesk(lab=room.lab, store=ReviewStore(room.store.state / "review"), results=load)


def desk(request: Request) -> ReviewDesk:
    held: ReviewDesk = request.app.state.review_desk
    return held


def grader(request: Request) -> Any:
    """The instructor's session (403 for a student, a login page for nobody): the app's own check."""
    return request.app.state.review_auth(request)


async def _form(request: Request, who: Any) -> Any:
    if not same_origin(request):
        raise HTTPException(403, "This form was sent from another site: refused.")
    data = await request.form(max_files=0, max_fields=200, max_part_size=16 * 1024)
    if not same_token(who.session.csrf, data.get("csrf")):
        raise HTTPException(403, "This form has expired (or was not sent from this site): reload the page and "
                                 "send it again.")
    return data


def _page(request: Request, name: str, who: Any, context: dict[str, Any], status: int = 200) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    d = desk(request)
    base = {"lab": d.lab.manifest, "caller": who, "csrf": who.session.csrf, "graded_here": d.out is not None}
    return templates.TemplateResponse(request, f"serve/review/{name}", {**base, **context}, status_code=status)


def _answers(results: dict[str, SubmissionResult], qid: str) -> dict[str, tuple[SubmissionResult, Any]]:
    """The answers to grade: each result's answer to the question (a blank one too: it is graded, with the others)."""
    found = {}
    for key, r in sorted(results.items()):
        c = next((c for c in r.checks if c.id == qid), None)
        if c is not None and c.status == Status.awaiting_review and "answer_sha" in c.details:
            found[key] = (r, c)
    return found


def progress(d: ReviewDesk) -> list[dict[str, Any]]:
    results = d.results()
    rows = []
    for check in written_checks(d.lab):
        answers = _answers(results, check.spec.id)
        book = d.store.book(check.spec.id)
        graded = sum(1 for key, (_, c) in answers.items()
                     if (g := book.grades.get(key)) is not None and g.answer_sha == c.details.get("answer_sha"))
        rows.append({"id": check.spec.id, "title": check.spec.title, "points": check.spec.points,
                     "answers": len(answers), "graded": graded,
                     "blank": sum(1 for _, c in answers.values() if not str(c.details.get("answer", "")).strip())})
    return rows


async def index(request: Request) -> Response:
    who = grader(request)
    d = desk(request)
    return _page(request, "index.html.j2", who, {"questions": progress(d), "can_write_reports": d.out is not None,
                                                "students": sorted(d.results()), "notes": d.notes,
                                                "written": request.query_params.get("written") == "1",
                                                "reports": d.out / "reports" if d.out else None})


def question_context(d: ReviewDesk, qid: str) -> dict[str, Any]:
    check = d.question(qid)
    book = d.store.book(qid)
    rubric = rubric_of(check, book)
    answers = _answers(d.results(), qid)
    groups = []
    for group in group_answers({key: c.details["answer"] for key, (_, c) in answers.items()}):
        members = []
        for key, sim, words in zip(group.keys, group.similarity, group.words):
            r, c = answers[key]
            grade = book.grades.get(key)
            current = grade if grade is not None and grade.answer_sha == c.details.get("answer_sha") else None
            members.append({"key": key, "name": r.student.name, "sha": c.details["answer_sha"],
                            "version": grade.version if grade else 0, "grade": current, "similarity": sim, "words": words,
                            "text": c.details["answer"], "truncated": c.details.get("truncated", False)})
        graded = [m["grade"] for m in members if m["grade"] is not None]
        first = graded[0] if graded else None
        same = first is not None and len(graded) == len(members) and all(
            g.items == first.items and g.comment == first.comment for g in graded)
        score = points_of(check, rubric, first)[0] if first is not None else None
        groups.append({"members": members, "text": group.text, "graded": len(graded) == len(members),
                       "mixed": bool(graded) and not same, "items": first.items if first else [],
                       "comment": first.comment if first else "", "score": score})
    graded_count = sum(1 for g in groups for m in g["members"] if m["grade"] is not None)
    return {"check": check, "params": check.params, "rubric": rubric, "groups": groups, "graded": graded_count,
            "total": len(answers), "threshold": THRESHOLD, "edited": book.rubric is not None,
            "questions": progress(d), "comment_max": COMMENT_MAX}


async def question(request: Request) -> Response:
    who = grader(request)
    return _page(request, "question.html.j2", who, question_context(desk(request), request.path_params["qid"]))


async def grade(request: Request) -> Response:
    """Grade a group: the rubric items and comment sent go to every member, if none of them was
    graded meanwhile by someone else (409 then, and nothing is written)."""
    who = grader(request)
    d = desk(request)
    qid = request.path_params["qid"]
    check = d.question(qid)
    data = await _form(request, who)
    keys, versions = data.getlist("key"), data.getlist("version")
    items = [str(i) for i in data.getlist("item")]
    comment = str(data.get("comment") or "")
    if not keys or len(keys) != len(versions) or len(comment) > COMMENT_MAX:
        raise HTTPException(400, "A grade names its answers and the version of each.")
    answers = _answers(d.results(), qid)
    known = {r.id for r in rubric_of(check, d.store.book(qid))}
    if any(k not in answers for k in keys) or any(i not in known for i in items):
        raise HTTPException(400, "No such answer or rubric item.")
    try:
        sent = {str(k): (answers[str(k)][1].details["answer_sha"], int(v)) for k, v in zip(keys, versions)}
    except ValueError:
        raise HTTPException(400, "A version is a number.") from None
    # The answers as the page showed them (their digests): one handed in again since is not the
    # one the grader read, and gets no grade from this page.
    shas = [str(s) for s in data.getlist("sha")]
    if shas and len(shas) != len(keys):
        raise HTTPException(400, "A grade names the digest of each answer it grades, or of none.")
    changed = [str(k) for k, s in zip(keys, shas) if sent[str(k)][0] != s]
    if changed:
        return JSONResponse({"error": "This answer was handed in again since the page was shown: it was reloaded.",
                             "keys": changed}, status_code=409)
    try:
        book = d.store.grade(qid, sent, items, comment, by=getattr(who, "name", "instructor"))
    except StaleGrade as exc:
        return JSONResponse({"error": "Someone else graded this answer meanwhile: it was reloaded with their grade.",
                             "keys": exc.keys}, status_code=409)
    for key in keys:  # an LTI course gets the new score (grader.serve.lti.scores' outbox)
        lti_note(d.store.folder.parent, str(key), "written answer graded")
    await run_in_threadpool(d.write_table)
    rubric = rubric_of(check, book)
    grade = book.grades[str(keys[0])]
    score = points_of(check, rubric, grade)[0]
    if "application/json" not in request.headers.get("accept", ""):
        return RedirectResponse(f"/review/{qid}", 303)
    graded = sum(1 for key, (_, c) in answers.items()
                 if (g := book.grades.get(key)) is not None and g.answer_sha == c.details.get("answer_sha"))
    return JSONResponse({"versions": {k: book.grades[str(k)].version for k in keys}, "score": score,
                         "points": check.spec.points, "graded": graded, "total": len(answers)})


async def edit_rubric(request: Request) -> Response:
    """Change a rubric item (or add one): every answer it is on is rescored, since grades keep ids."""
    who = grader(request)
    d = desk(request)
    qid = request.path_params["qid"]
    check = d.question(qid)
    data = await _form(request, who)
    try:
        item = RubricItem(id=str(data.get("id", "")), points=float(str(data.get("points", ""))),
                          comment=str(data.get("comment", "")).strip())
        d.store.edit_item(qid, check.params.rubric, item)
    except (ValidationError, ValueError) as exc:
        raise HTTPException(400, f"Not a rubric item: {str(exc).splitlines()[0]}") from None
    except GradelabError as exc:
        raise HTTPException(400, str(exc)) from None
    await run_in_threadpool(d.write_table)  # every answer the item is on has a new score
    return RedirectResponse(f"/review/{qid}", 303)


async def student_report(request: Request) -> Response:
    """A student's report with the grades given so far, rendered now (``audience``: student or instructor)."""
    grader(request)
    d = desk(request)
    key = request.path_params["key"]
    result = d.merged().get(key)
    if result is None:
        raise HTTPException(404, "No such submission.")
    audience = Audience.of(request.query_params.get("audience"))
    data = await run_in_threadpool(render_pdf, request, result, audience)  # seconds of layout: not on the event loop
    return Response(data, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="{key}-{audience.value}.pdf"'})


async def stored_or_graded_pdf(request: Request, room: Any, sid: str, number: int, stored: bytes,
                               audience: Audience) -> bytes:
    """An attempt's report as stored when it was graded, or, once its written answers have been
    graded in these pages, rendered again with their points and comments."""
    whole = room.store.result(sid, number)
    graded = room.with_grades(sid, whole)
    if whole is None or graded is None or [c.status for c in graded.checks] == [c.status for c in whole.checks]:
        return stored
    return await run_in_threadpool(render_pdf, request, graded, audience)


def render_pdf(request: Request, result: SubmissionResult, audience: Audience) -> bytes:
    """One report's PDF, with a renderer made once per app (fonts and stylesheet are most of its cost)."""
    import tempfile

    from grader.report.render import ReportRenderer

    renderer = getattr(request.app.state, "review_renderer", None)
    if renderer is None:
        renderer = request.app.state.review_renderer = ReportRenderer()
    with tempfile.TemporaryDirectory(prefix="gradelab-review-") as tmp:
        return renderer.pdf(renderer.submission_html(result, audience, standalone=False), Path(tmp) / "r.pdf").read_bytes()


async def write_reports(request: Request) -> Response:
    """Render the batch's reports and class summary again, with the grades given so far."""
    who = grader(request)
    d = desk(request)
    await _form(request, who)
    out = d.out
    if out is None:
        raise HTTPException(404, "This class's reports are rendered by its server.")
    from grader.report.writer import ReportWriter

    def write() -> None:
        writer = ReportWriter(out / "reports")  # both readers' folders, as `gradelab grade` writes them
        merged = d.merged()
        for key, result in merged.items():
            writer.submit(result, key)
        writer.finish(list(merged.values()), d.lab.manifest.title)
        d.notes[:] = writer.errors
        d.write_table()

    await run_in_threadpool(write)
    return RedirectResponse("/review?written=1", 303)


def routes() -> list[BaseRoute]:
    """The grading pages' routes, for an app's route list."""
    from starlette.routing import Route

    return [
        Route("/review", index, name="review"),
        Route("/review/reports", write_reports, methods=["POST"], name="review_reports"),
        Route("/review/students/{key:str}/report.pdf", student_report, name="review_report"),
        Route("/review/{qid:str}", question, name="review_question"),
        Route("/review/{qid:str}/grade", grade, methods=["POST"], name="review_grade"),
        Route("/review/{qid:str}/rubric", edit_rubric, methods=["POST"], name="review_rubric"),
    ]
