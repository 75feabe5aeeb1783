"""The one way the server turns a stored result into the score it shows.

Every page and download of the server (the student's attempt page and attempts table, the
roster, the instructor's student and attempt pages, class.csv, the exports, the PDFs) reads a
result through ``graded``: the stored result with the grades given in the grading pages merged
(``grader.review.merge``), so a written grade, once given, is the same number everywhere. The
number is said over the lab's full points (``Score``), with the points still awaiting review
said as pending, never as lost or as absent from the maximum. Which attempt counts (``counts``:
the last graded one, or the best) is decided here too, on the merged scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from grader.checks.registry import BoundLab
from grader.lab.manifest import Visibility
from grader.results import NOT_SCORED, Status, SubmissionResult

Counts = Literal["last", "best"]
T = TypeVar("T")


class Score(BaseModel):
    """A result's score as the server says it: ``score`` over the lab's ``full`` points, of which
    ``pending`` await a person's review (written answers not graded yet)."""

    model_config = ConfigDict(frozen=True)

    score: float
    full: float
    pending: float = 0.0
    hidden: float = 0.0  # points of checks its reader may not see (a student's view), in ``score`` all the same

    @property
    def percent(self) -> float:
        return 100 * self.score / self.full if self.full else 0.0


def graded(lab: BoundLab, state_dir: Path, key: str, result: SubmissionResult) -> SubmissionResult:
    """``result`` with the grades given to its written answers in the grading pages of the class
    whose state folder is ``state_dir`` (``key``: the student's id, under which grades are kept;
    a grade applies to every attempt with the answer it was given to)."""
    from grader.review.merge import load_books, merge_result, written_checks
    from grader.review.store import ReviewStore

    if not written_checks(lab):
        return result
    return merge_result(result, lab, load_books(lab, ReviewStore(state_dir / "review")), key)


def full_points(lab: BoundLab, *, public_only: bool = False) -> float:
    """The lab's full points: every check's (or only the public checks')."""
    if not public_only:
        return round(lab.manifest.max_score, 2)
    return round(sum(c.points for c in lab.manifest.checks if c.visibility == Visibility.public), 2)


def score_of(lab: BoundLab, result: SubmissionResult) -> Score:
    """A (merged) result's score over the lab's full points, with what awaits review."""
    pending = sum(c.max_score for c in result.checks if c.status == Status.awaiting_review)
    return Score(score=result.score, full=result.max_score or full_points(lab), pending=round(pending, 2))


def student_score(lab: BoundLab, merged: SubmissionResult) -> Score:
    """What a student sees of a merged result's score: the total on the one scale (hidden checks
    included, as in the gradebook: ``reveal.student_result``), over the lab's full points; the
    hidden checks' points named, never which of them cost what."""
    from grader.reveal import student_result

    seen = student_result(merged)
    pending = sum(c.max_score for c in seen.checks if c.status == Status.awaiting_review)
    full = merged.max_score or full_points(lab)
    return Score(score=seen.score, full=full, pending=round(pending, 2),
                 hidden=round(full - full_points(lab, public_only=True), 2))


class Part(BaseModel):
    """One part of a student's attempt page: the public checks graded on upload, or the written
    answers graded by the instructor."""

    model_config = ConfigDict(frozen=True)

    title: str
    score: float
    points: float
    pending: float = 0.0


def student_parts(lab: BoundLab, seen: SubmissionResult) -> list[Part]:
    """The student's view split as the page shows it: what the upload's checks gave (the public
    part), and the written answers the instructor grades (pending until then)."""
    written = {c.id for c in lab.manifest.checks if c.kind == "written"}
    auto = [c for c in seen.checks if c.id not in written and c.status not in NOT_SCORED]
    mine = [c for c in seen.checks if c.id in written]
    parts = [Part(title="Public checks, graded on upload", score=round(sum(c.score for c in auto), 2),
                  points=round(sum(c.max_score for c in auto), 2))]
    if mine:
        waiting = [c for c in mine if c.status == Status.awaiting_review]
        parts.append(Part(title="Written answers, graded by your instructor",
                          score=round(sum(c.score for c in mine if c.status != Status.awaiting_review), 2),
                          points=round(sum(c.max_score for c in mine), 2),
                          pending=round(sum(c.max_score for c in waiting), 2)))
    return parts


def counting(results: Sequence[tuple[T, SubmissionResult]], counts: Counts) -> tuple[T, SubmissionResult] | None:
    """Which graded attempt counts, from (attempt, merged result) pairs oldest first: the last,
    or the best score (the earliest of equal best)."""
    if not results:
        return None
    if counts == "last":
        return results[-1]
    best = max(r.score for _, r in results)
    return next(pair for pair in results if pair[1].score == best)
