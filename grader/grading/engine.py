"""Run a lab's checks, in manifest order, on one submission. Student faults become results.

Nothing a submission does stops the other checks: a missing prerequisite, an exception, a
timeout or a crash is recorded on the check it affects and grading moves on.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from grader.checks.registry import BoundCheck
from grader.errors import LabError
from grader.grading.context import CheckContext, SubmissionSession, import_message
from grader.grading.run import Run
from grader.grading.scoring import build_result
from grader.grading.selection import hidden_requested, selected_checks
from grader.intake.sources import HandInSource
from grader.lab.loader import Lab
from grader.lab.manifest import Reveal
from grader.options import CheckFinished, EventSink, RunOptions, ignore
from grader.results import (
    CheckResult,
    Feedback,
    Outcome,
    Part,
    Status,
    Student,
    SubmissionResult,
)
from grader.reveal import disclosure_for, hidden_note
from grader.sandbox.replies import ProbeFailure, Stage
from grader.submission import Submission, load_submission, student_from_path

log = logging.getLogger(__name__)


def _failure_message(failure: ProbeFailure, session: SubmissionSession) -> str:
    if failure.stage == Stage.import_ or session.import_failure is failure:
        return import_message(failure)
    return f"your code {failure.message}" if not failure.message[:1].isupper() else failure.message


def _failure_outcome(failure: ProbeFailure, message: str) -> Outcome:
    """The student's code gave no answer: its status (error or timeout), and whether memory ran out."""
    return Outcome(status=Status(failure.status.value), message=message, parts=[Part(text=message)],
                   diagnoses=["out-of-memory"] if failure.out_of_memory else [])


def _skipped(check: BoundCheck) -> CheckResult:
    spec = check.spec
    message = "Training check not run (quick mode); run with --train to include it."
    return CheckResult(id=spec.id, title=spec.title, kind=spec.kind, visibility=spec.visibility,
                       status=Status.skipped, score=0, max_score=spec.points, message=message,
                       parts=[Part(text=message)], disclosure=disclosure_for(check))


def run_check(check: BoundCheck, session: SubmissionSession) -> CheckResult:
    spec = check.spec
    options = session.run.options
    if spec.training and not options.trains:
        return _skipped(check)
    started = time.monotonic()
    # Precedence: the lab's limits, then the check's, then the command line's.
    limits = session.lab.manifest.limits.merged(spec.limits).merged(options.limits)
    unmet = session.unmet(check.needs)
    failure = session.import_failure
    if unmet and failure is not None and import_message(failure) in unmet:
        # The module never loaded: each check that needs it says why, with the same status
        # (a hang at import is a timeout on every such check, not an error on all but the first).
        outcome = _failure_outcome(failure, "; ".join(unmet))
    elif unmet:
        outcome = Outcome.error(Feedback("; ".join(unmet)))  # about the hand-in itself: safe to show
    else:
        ctx = CheckContext(session=session, check=check, limits=limits)
        try:
            outcome = check.kind.run(ctx, check.params)
        except LabError:
            raise  # the lab or its data is broken: every submission would fail the same way
        except ProbeFailure as failure:
            outcome = _failure_outcome(failure, _failure_message(failure, session))
        except Exception as exc:  # a bug in the grader must not cost the student the other checks
            log.exception("check %s crashed", spec.id)
            # The exception may quote reference values: its text is for the course staff.
            outcome = Outcome.error(Feedback("internal grader error in this check")
                                    .add(f" ({type(exc).__name__}: {exc})", *Reveal)
                                    .add("; please report it to the course staff"))
    return CheckResult(
        id=spec.id, title=spec.title, kind=spec.kind, visibility=spec.visibility,
        status=outcome.status, score=round(spec.points * outcome.fraction, 2), max_score=spec.points,
        message=outcome.message, parts=outcome.parts,
        hint=spec.hint if outcome.status not in (Status.passed, Status.deferred) else "",
        expected=outcome.expected, got=outcome.got, diagnoses=outcome.diagnoses,
        details=outcome.details, disclosure=disclosure_for(check), duration_s=round(time.monotonic() - started, 4),
    )


def _located(value: object, submission: Submission) -> object:
    """Strings of a check's result with the generated module's lines put back as the notebook's
    cells and lines (a no-op for a hand-in that is not a notebook)."""
    if isinstance(value, str):
        return submission.locate(value)
    if isinstance(value, dict):
        return {k: _located(v, submission) for k, v in value.items()}
    if isinstance(value, list):
        return [_located(v, submission) for v in value]
    return value


def grade_submission(run: Run, path: Path, *, name: str | None = None, student: Student | None = None,
                     source: HandInSource | None = None) -> SubmissionResult:
    """Every selected check of the run's lab on one hand-in (at ``path``, or where ``source``
    says: a group of files, members of a class zip). Raises ``SubmissionError`` only when it
    cannot be graded at all (the batch records that as a result)."""
    started = time.monotonic()
    path = Path(path)
    manifest = run.lab.manifest
    submission = load_submission(path, manifest.interface, manifest.intake, notebook=manifest.notebook, source=source)
    student = student or student_from_path(path)
    session = SubmissionSession(run=run, submission=submission, name=name or submission.name)
    results = []
    try:
        for check in selected_checks(run.lab, run.options):
            session.current_check = check.spec.title
            result = run_check(check, session)
            if submission.line_map is not None:
                result = result.model_copy(update={
                    "message": submission.locate(result.message), "details": _located(result.details, submission),
                    "parts": [p.model_copy(update={"text": submission.locate(p.text)}) for p in result.parts]})
            results.append(result)
            run.emit(CheckFinished(session.name, result))
    finally:
        session.close()  # the hand-in's children: every probe of it ran in them
    notes = [*submission.notes, *map(hidden_note, hidden_requested(run.lab, run.options))]
    return build_result(run.lab, run.options, name=session.name, path=path, student=student, checks=results,
                        device=run.device, log_tail=submission.locate(session.log_tail),
                        duration_s=time.monotonic() - started, notes=notes, handin_sha=submission.handin_sha)


def grade_one(lab: Lab, path: Path, options: RunOptions = RunOptions(), *,
              on_event: EventSink = ignore) -> SubmissionResult:
    """One hand-in in a run of its own (a self-check, a test): the run's sandbox is closed after."""
    with Run(lab, options, on_event=on_event) as run:
        return grade_submission(run, path)
