"""What a student reads about a result outside gradelab's own reports: LMS feedback comments and
Gradescope's output. The one place that decides it, so that a reveal policy plugs in here.

Until that policy exists this stays on the safe side: each check's title, status and points,
and the lab's hint for a check not passed; never a check's message, expected value or what the
student's code returned (those can give an answer away). Notes on the hand-in (files left out, a
notebook's cells not run) are the student's own business and are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.lab.manifest import Visibility
from grader.results import Status, SubmissionResult


@dataclass(frozen=True)
class FeedbackLine:
    """One check, as a student may read it in an export."""

    title: str
    status: Status
    score: float
    max_score: float
    hint: str
    hidden: bool


def ungradable_reason(result: SubmissionResult) -> str | None:
    """Why nothing was graded (nothing to grade, an archive refused): about the hand-in, never an answer."""
    if result.checks and all(c.kind == "submission" for c in result.checks):
        return result.checks[0].message
    return None


def student_feedback(result: SubmissionResult) -> list[FeedbackLine]:
    """Each graded check as a student may see it (see the module's docstring)."""
    return [FeedbackLine(title=c.title, status=c.status, score=c.score, max_score=c.max_score,
                         hint=c.hint if c.status not in (Status.passed, Status.skipped) else "",
                         hidden=c.visibility == Visibility.hidden)
            for c in result.checks if c.kind != "submission"]


def _points(score: float, max_score: float) -> str:
    return f"{score:g}/{max_score:g}"


def summary_text(result: SubmissionResult, *, limit: int = 1000) -> str:
    """A short plain-text comment: the total, then each check not passed with its hint, then the
    notes; cut at ``limit`` characters (LMS comment boxes are small)."""
    reason = ungradable_reason(result)
    lines = [f"gradelab {result.lab}: {_points(result.score, result.max_score)} ({result.percent:.0f} %)."]
    if reason:
        lines.append(f"Nothing was graded: {reason}")
    missed = [f for f in student_feedback(result) if f.status not in (Status.passed, Status.skipped)]
    if missed:
        lines.append("Not passed: " + "; ".join(
            f"{f.title} ({_points(f.score, f.max_score)}, {f.status.value})" + (f" — hint: {f.hint}" if f.hint else "")
            for f in missed) + ".")
    elif not reason:
        lines.append("Every check passed.")
    lines += [f"Note: {n}" for n in result.notes[:5]]
    text = " ".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown_text(result: SubmissionResult) -> str:
    """The same, as Markdown (Gradescope's output): one line per check."""
    reason = ungradable_reason(result)
    out = [f"**{result.lab_title}**: {_points(result.score, result.max_score)} ({result.percent:.0f} %)", ""]
    if reason:
        out += [f"Nothing was graded: {reason}", ""]
    for f in student_feedback(result):
        mark = "✓" if f.status == Status.passed else "✗" if f.status != Status.skipped else "–"
        out.append(f"- {mark} {f.title}: {_points(f.score, f.max_score)} ({f.status.value})"
                   + (f" — hint: {f.hint}" if f.hint else ""))
    if result.notes:
        out += ["", *(f"> {n}" for n in result.notes[:10])]
    return "\n".join(out).strip() + "\n"


def check_text(line: FeedbackLine) -> str:
    """One check's output (a Gradescope test's ``output``)."""
    text = f"{line.status.value}: {_points(line.score, line.max_score)}"
    return text + (f"\nHint: {line.hint}" if line.hint else "")
