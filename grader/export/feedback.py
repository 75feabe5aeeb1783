"""What a student reads about a result outside gradelab's own reports: LMS feedback comments and
Gradescope's output. The one place that decides it, through the reveal policy.

A public check reads as the student's view of it (``reveal.student_check``: the verdict, the
named mistake and what the check may show, never a reference answer) with the lab's hint; a
hidden check as its title, status and points only (its message and its hint may point at an
answer). Notes on the hand-in (files left out, a notebook's cells not run) are the student's own
business and are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.export.cells import markdown
from grader.lab.manifest import Visibility
from grader.results import NOT_SCORED, Kind, Status, SubmissionResult
from grader.reveal import student_check


@dataclass(frozen=True)
class FeedbackLine:
    """One check, as a student may read it in an export."""

    title: str
    status: Status
    score: float
    max_score: float
    hint: str
    hidden: bool
    message: str = ""
    written: bool = False  # a written answer: its message is its grader's comments


def ungradable_reason(result: SubmissionResult) -> str | None:
    """Why nothing was graded (nothing to grade, an archive refused): about the hand-in, never an answer."""
    if result.checks and all(c.kind == Kind.submission for c in result.checks):
        return result.checks[0].message
    return None


def student_feedback(result: SubmissionResult) -> list[FeedbackLine]:
    """Each graded check as a student may see it (see the module's docstring)."""
    lines = []
    for c in result.checks:
        if c.kind == Kind.submission:
            continue
        hidden = c.visibility == Visibility.hidden
        missed = c.status not in (Status.passed, Status.skipped)
        # A written answer's message is its grader's comments (or that it awaits review): said even when full marks.
        said = missed or c.kind == Kind.written
        lines.append(FeedbackLine(title=c.title, status=c.status, score=c.score, max_score=c.max_score,
                                  hint=c.hint if missed and not hidden else "", hidden=hidden,
                                  message="" if hidden or not said else student_check(c).message,
                                  written=c.kind == Kind.written))
    return lines


def _points(score: float, max_score: float) -> str:
    return f"{score:g}/{max_score:g}"


def summary_text(result: SubmissionResult, *, limit: int = 1000) -> str:
    """A short plain-text comment: the total, then each check not passed with its hint, then the
    notes; cut at ``limit`` characters (LMS comment boxes are small)."""
    reason = ungradable_reason(result)
    part = f" (so far: {result.pending_points:g} points pending)" if result.pending_points else ""
    lines = [f"gradelab {result.lab}: {_points(result.score, result.max_score)} ({result.percent:.0f} %){part}."]
    if reason:
        lines.append(f"Nothing was graded: {reason}")
    feedback = student_feedback(result)
    written = [f for f in feedback if f.written and not f.hidden and f.status != Status.awaiting_review]
    if written:
        lines.append("Written answers: " + "; ".join(
            f"{f.title} ({_points(f.score, f.max_score)})" + (f": {f.message}" if f.message else "") for f in written)
            + ".")
    missed = [f for f in feedback if f.status not in (Status.passed, Status.skipped, Status.awaiting_review)
              and f not in written]
    if missed:
        lines.append("Not passed: " + "; ".join(
            f"{f.title} ({_points(f.score, f.max_score)}, {f.status.value})" + (f": {f.message}" if f.message else "")
            + (f" — hint: {f.hint}" if f.hint else "") for f in missed) + ".")
    elif not reason:
        lines.append("Every check passed.")
    lines += [f"Note: {n}" for n in result.notes[:5]]
    text = " ".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown_text(result: SubmissionResult) -> str:
    """The same, as Markdown (Gradescope's output): one line per check."""
    reason = ungradable_reason(result)
    part = f" — so far: {result.pending_points:g} points pending" if result.pending_points else ""
    out = [f"**{result.lab_title}**: {_points(result.score, result.max_score)} ({result.percent:.0f} %){part}", ""]
    if reason:
        out += [f"Nothing was graded: {markdown(reason)}", ""]
    for f in student_feedback(result):
        mark = "✓" if f.status == Status.passed else "–" if f.status in NOT_SCORED else "✗"
        out.append(f"- {mark} {markdown(f.title)}: {_points(f.score, f.max_score)} ({f.status.value})"
                   + (f" — {markdown(f.message)}" if f.message else "")
                   + (f" — hint: {markdown(f.hint)}" if f.hint else ""))
    if result.notes:
        out += ["", *(f"> {markdown(n)}" for n in result.notes[:10])]
    return "\n".join(out).strip() + "\n"


def check_text(line: FeedbackLine) -> str:
    """One check's output (a Gradescope test's ``output``)."""
    text = f"{line.status.value}: {_points(line.score, line.max_score)}"
    return text + (f"\n{line.message}" if line.message else "") + (f"\nHint: {line.hint}" if line.hint else "")
