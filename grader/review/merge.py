"""Manual grades joined to the automatic results, at read time.

A written check that a person graded becomes an ordinary scored check: its score from the rubric
as it is now (items by id, points from the rubric: an edited item rescores every answer it is on),
its status from that score, its message the comments of the items applied and the grader's own,
and ``details["review"]`` the same, for reports and the class summary. A grade given to another
answer than the one in the result (the student handed in again) does not apply: the answer awaits
review again. The result's total and letter then count the graded answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grader.checks.registry import BoundCheck, BoundLab
from grader.checks.written import RubricItem, WrittenParams, written_score
from grader.grading.scoring import letter
from grader.results import Feedback, Kind, Status, SubmissionResult, tally
from grader.review.store import AnswerGrade, QuestionBook, ReviewStore


def written_checks(lab: BoundLab) -> list[BoundCheck]:
    return [c for c in lab.checks if c.spec.kind == Kind.written]


def rubric_of(check: BoundCheck, book: QuestionBook | None) -> list[RubricItem]:
    """The rubric graders use now: as edited in the grading pages, else the lab's."""
    params: WrittenParams = check.params
    return list(book.rubric) if book is not None and book.rubric is not None else list(params.rubric)


def points_of(check: BoundCheck, rubric: list[RubricItem], grade: AnswerGrade) -> tuple[float, list[RubricItem]]:
    """An answer's score, and the items applied (those still in the rubric, in its order)."""
    applied = [r for r in rubric if r.id in grade.items]
    return written_score(check.spec.points, check.params.scoring, [r.points for r in applied]), applied


def _points(value: float) -> str:
    return f"{value:+g}"


def review_details(applied: list[RubricItem], grade: AnswerGrade) -> dict[str, Any]:
    return {"items": [{"id": r.id, "points": r.points, "comment": r.comment} for r in applied],
            "comment": grade.comment, "graded_by": grade.graded_by, "graded_at": grade.graded_at.isoformat()}


def merge_result(result: SubmissionResult, lab: BoundLab, books: dict[str, QuestionBook],
                 key: str | None = None) -> SubmissionResult:
    """``result`` with the manual grades of ``books`` (by question id) applied; ``key``: the
    submission's key in the books (default: the result's name)."""
    key = key or result.submission
    by_id = {c.spec.id: c for c in written_checks(lab)}
    checks, changed = [], False
    for c in result.checks:
        check, book = by_id.get(c.id), books.get(c.id)
        grade = book.grades.get(key) if book is not None else None
        if (check is None or grade is None or c.status != Status.awaiting_review
                or grade.answer_sha != c.details.get("answer_sha")):
            checks.append(c)
            continue
        score, applied = points_of(check, rubric_of(check, book), grade)
        message = Feedback()
        for item in applied:
            message.say(f"{item.comment} ({_points(item.points)}).")
        if grade.comment.strip():
            message.say(grade.comment.strip())
        if not message:
            message.say("Reviewed.")
        points = check.spec.points
        status = Status.passed if score >= points else Status.partial if score > 0 else Status.failed
        checks.append(c.model_copy(update={
            "status": status, "score": score, "message": message.text(), "parts": message.parts,
            "details": {**c.details, "review": review_details(applied, grade)}}))
        changed = True
    if not changed:
        return result
    score, max_score, pending = tally(checks)
    return result.model_copy(update={"checks": checks, "score": score, "max_score": max_score,
                                     "pending_points": pending, "grade": letter(lab, score, max_score, pending)})


def load_books(lab: BoundLab, store: ReviewStore) -> dict[str, QuestionBook]:
    return {c.spec.id: store.book(c.spec.id) for c in written_checks(lab)}


def merged(results: list[SubmissionResult], lab: BoundLab, out: Path) -> list[SubmissionResult]:
    """The results of the batch in ``out`` with its manual grades (a lab without written
    questions, or a batch nobody graded by hand: the results as they are)."""
    if not written_checks(lab):
        return results
    store = ReviewStore.beside(out)
    if not store.folder.is_dir():
        return results
    books = load_books(lab, store)
    return [merge_result(r, lab, books) for r in results]
