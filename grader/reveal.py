"""The reveal policy: what a student sees of a result, decided here and applied at the edges
(``check``'s table and ``--format json``, the student report, later a server page). Instructors
(``grade``, instructor reports) see every result whole.

Why one module, applied at the edges: a check computes everything once, for the instructor; what
a student may see is a property of the check (its kind, narrowed or widened by the lab), not a
flag threaded through every check. A student always sees the verdict, the score, the named
mistakes and the lab's hint; the student's own values, the input a check failed on and reference
values only where the check's ``Disclosure`` allows, part by part (``results.Part``). A result
that carries no disclosure (a kind that declares none, a result from an older gradelab) shows
the verdict alone: safe by default.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from grader.checks.registry import BoundCheck
from grader.lab.manifest import Reveal, Visibility
from grader.results import (
    NOT_SCORED,
    CheckResult,
    Disclosure,
    Status,
    SubmissionResult,
    render,
    shown,
)

HIDDEN = "is a hidden check, graded by your instructor"


class Audience(str, Enum):
    """Who reads an output. Only the instructor's view is whole; anything else reads what the lab
    reveals (``Audience.of``): a misspelt or unexpected audience never shows the answers."""

    instructor = "instructor"
    student = "student"

    @classmethod
    def of(cls, value: object) -> Audience:
        return cls.instructor if value == cls.instructor.value else cls.student


def disclosure_for(check: BoundCheck) -> Disclosure:
    """The kind's declaration, with the manifest's ``reveal:`` (when set) in place of what it shows."""
    declared = check.kind.disclosure
    if check.spec.reveal is None:
        return declared
    return declared.model_copy(update={"shows": [r for r in Reveal if r in check.spec.reveal]})


def _generic(check: CheckResult) -> str:
    """What a student reads when nothing of the message may be shown."""
    if check.status == Status.passed:
        return "Passed."
    named = f" (recognised mistake: {', '.join(check.diagnoses)})" if check.diagnoses else ""
    return f"Not passed{named}; the details are for your instructor." + (" See the hint." if check.hint else "")


def student_check(check: CheckResult) -> CheckResult:
    """One check as a student may see it. Idempotent: a student's view of a student's view is itself."""
    disclosure = check.disclosure or Disclosure()
    allowed = set(disclosure.shows)
    # What is left is the student's own message: its stand-in wording no longer stands in for anything.
    parts = [p.model_copy(update={"unless": []}) for p in shown(check.parts, allowed)]
    if check.parts:
        message = render(parts)
    else:
        message = check.message if disclosure.plain_message else ""
    if not message and check.status not in NOT_SCORED:
        message = _generic(check)
    details: dict[str, Any] = {k: v for k, v in check.details.items()
                               if k in disclosure.details and set(disclosure.details[k]) <= allowed}
    return check.model_copy(update={
        "message": message, "parts": parts, "details": details,
        "got": check.got if Reveal.got in allowed else None,
        "expected": check.expected if Reveal.expected in allowed else None,
    })


def student_result(result: SubmissionResult) -> SubmissionResult:
    """A result as its student may see it: public checks only, each through ``student_check``.
    The total stays the result's own, hidden checks included: one grade on one scale wherever
    it is shown, the student's report and page as the gradebook (which hidden checks cost what is
    not said, only that the total counts them: ``hidden_points``)."""
    visible = [student_check(c) for c in result.checks if c.visibility == Visibility.public]
    return result.model_copy(update={"checks": visible})


def hidden_points(result: SubmissionResult) -> tuple[int, float, float]:
    """How many checks a student's view leaves out, the points they gave and their maximum (in
    the total all the same: saying only the maximum read as if all of it had been earned)."""
    hidden = [c for c in result.checks if c.visibility != Visibility.public]
    return len(hidden), sum(c.score for c in hidden), sum(c.max_score for c in hidden)


def hidden_note(check_id: str) -> str:
    """What ``check --only`` says for a check students cannot run."""
    return f"`{check_id}` {HIDDEN}."
