"""What a student reads about a result outside gradelab's own reports: LMS feedback comments and
Gradescope's output. The one place that decides it, through the reveal policy.

A public check reads as the student's view of it (``reveal.student_check``: the verdict, the
named mistake and what the check may show, never a reference answer) with the lab's hint; a
hidden check as its title, status and points only (its message and its hint may point at an
answer). Notes on the hand-in (files left out, a notebook's cells not run) are the student's own
business and are kept.
"""

from __future__ import annotations

import re
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


_CODE = re.compile(r"`([^`\n]+)`")
_STRONG = re.compile(r"\*\*([^*\n]+)\*\*")
CUT_MARK = " […] (cut here: the PDF report has the rest)"


def plain(text: str) -> str:
    """A message's inline Markdown (`code`, **bold**) as plain text, for a comment box that shows
    what it is given: the backticks and stars would print as they are."""
    return _STRONG.sub(r"\1", _CODE.sub(r"\1", text))


def sentence(text: str) -> str:
    """``text`` ending with one full stop (not ``clearly put..``)."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?…" else text + "."


def trim(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word, its cut marked (``CUT_MARK``)."""
    if len(text) <= limit:
        return text
    room = max(0, limit - len(CUT_MARK))
    cut = text[:room]
    space = cut.rfind(" ")
    if space > room // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + CUT_MARK


def _said_once(lines: list[FeedbackLine]) -> list[str]:
    """Checks not passed, those with the same message (a syntax error that stopped four checks)
    joined under it, said once."""
    order: dict[str, list[FeedbackLine]] = {}
    for f in lines:
        order.setdefault(f.message or f"\0{f.title}", []).append(f)
    parts = []
    for message, group in order.items():
        heads = ", ".join(f"{f.title} ({_points(f.score, f.max_score)}, {f.status.value})" for f in group)
        hints = "; ".join(dict.fromkeys(f.hint for f in group if f.hint))
        text = heads + (f": {plain(message)}" if not message.startswith("\0") else "")
        parts.append(text.rstrip(".") + (f" — hint: {plain(hints).rstrip('.')}" if hints else ""))
    return parts


def summary_text(result: SubmissionResult, *, limit: int = 1000) -> str:
    """A short plain-text comment: the total, then the checks not passed with their hints (a
    message shared by several checks said once), then the notes; Markdown made plain, cut at a
    word within ``limit`` characters with the cut marked (LMS comment boxes are small)."""
    reason = ungradable_reason(result)
    part = f" (so far: {result.pending_points:g} points pending)" if result.pending_points else ""
    lines = [f"gradelab {result.lab}: {_points(result.score, result.max_score)} ({result.percent:.0f} %){part}."]
    if reason:
        lines.append(f"Nothing was graded: {reason}")
    feedback = student_feedback(result)
    written = [f for f in feedback if f.written and not f.hidden and f.status != Status.awaiting_review]
    if written:
        lines.append(sentence("Written answers: " + "; ".join(
            f"{f.title} ({_points(f.score, f.max_score)})" + (f": {plain(f.message).rstrip('.')}" if f.message else "")
            for f in written)))
    missed = [f for f in feedback if f.status not in (Status.passed, Status.skipped, Status.awaiting_review)
              and f not in written]
    if missed:
        lines.append(sentence("Not passed: " + "; ".join(_said_once(missed))))
    elif not reason:
        lines.append("Every check graded so far passed." if result.pending_points else "Every check passed.")
    lines += [sentence(f"Note: {plain(n)}") for n in dict.fromkeys(result.notes[:5])]
    return trim(" ".join(lines), limit)


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
