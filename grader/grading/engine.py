"""Run a lab's checks, in manifest order, on one submission. Student faults become results.

Nothing a submission does stops the other checks: a missing prerequisite, an exception, a
timeout or a crash is recorded on the check it affects and grading moves on.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Literal

import grader
from grader.grading.context import CheckContext, SubmissionSession, import_message
from grader.errors import GradelabError, LabError
from grader.lab.loader import BoundCheck, Lab
from grader.lab.manifest import LimitsOverride, Visibility
from grader.results import CheckResult, Outcome, Status, SubmissionResult
from grader.sandbox.runner import ProbeFailure
from grader.submission import load_submission

log = logging.getLogger(__name__)

Mode = Literal["grade", "check"]


def selected_checks(lab: Lab, mode: Mode, only: list[str] | None = None) -> list[BoundCheck]:
    """Instructors grade every check; a student's self-check sees the public ones only.
    ``only`` narrows to the named checks (a student working on one part)."""
    visible = [c for c in lab.checks if mode == "grade" or c.spec.visibility == Visibility.public]
    if not only:
        return visible
    known = {c.spec.id for c in visible}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise LabError(f"no check {', '.join(map(repr, unknown))} in lab {lab.id!r} here; "
                       f"its checks: {', '.join(c.spec.id for c in visible)}")
    return [c for c in visible if c.spec.id in only]


def _failure_message(failure: ProbeFailure, session: SubmissionSession) -> str:
    if failure.stage == "import" or session.import_failure is failure:
        return import_message(failure)
    return f"your code {failure.message}" if not failure.message[:1].isupper() else failure.message


def _failure_outcome(failure: ProbeFailure, message: str) -> Outcome:
    """The student's code gave no answer: its status (error or timeout), and whether memory ran out."""
    return Outcome(status=Status(failure.status), message=message,
                   diagnosis="out-of-memory" if failure.out_of_memory else None)


def resolve_device(device: str = "auto") -> str:
    """"auto": the GPU when torch sees one, else the CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise GradelabError(f"unknown device {device!r}: use auto, cpu or cuda")
    if device == "cpu":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise GradelabError("--device cuda: torch sees no CUDA GPU on this machine")
    return "cpu"


def run_check(check: BoundCheck, session: SubmissionSession, seed: int,
              cli_limits: LimitsOverride | None, train: bool = True) -> CheckResult:
    spec = check.spec
    started = time.monotonic()
    if spec.training and not train:
        return CheckResult(id=spec.id, title=spec.title, kind=spec.kind, visibility=spec.visibility,
                           status=Status.skipped, score=0, max_score=spec.points,
                           message="Training check not run (quick mode); run with --train to include it.")
    # Precedence: the lab's limits, then the check's, then the command line's.
    limits = session.lab.manifest.limits.merged(spec.limits).merged(cli_limits)
    unmet = session.unmet(check.needs)
    failure = session.import_failure
    if unmet and failure is not None and import_message(failure) in unmet:
        # The module never loaded: each check that needs it says why, with the same status
        # (a hang at import is a timeout on every such check, not an error on all but the first).
        outcome = _failure_outcome(failure, "; ".join(unmet))
    elif unmet:
        outcome = Outcome.error("; ".join(unmet))
    else:
        ctx = CheckContext(lab=session.lab, session=session, check_id=spec.id, limits=limits, seed=seed)
        try:
            outcome = check.kind.run(ctx, check.params)
        except LabError:
            raise  # the lab or its data is broken: every submission would fail the same way
        except ProbeFailure as failure:
            outcome = _failure_outcome(failure, _failure_message(failure, session))
        except Exception as exc:  # a bug in the grader must not cost the student the other checks
            log.exception("check %s crashed", spec.id)
            outcome = Outcome.error(f"internal grader error in this check ({type(exc).__name__}: {exc}); "
                                    "please report it to the course staff")
    return CheckResult(
        id=spec.id, title=spec.title, kind=spec.kind, visibility=spec.visibility,
        status=outcome.status, score=round(spec.points * outcome.fraction, 2), max_score=spec.points,
        message=outcome.message, hint=spec.hint if outcome.status != Status.passed else "",
        expected=outcome.expected, got=outcome.got, diagnosis=outcome.diagnosis,
        details=outcome.details, duration_s=round(time.monotonic() - started, 4),
    )


def grade_submission(lab: Lab, path: Path, *, mode: Mode = "grade", seed: int = 0,
                     limits: LimitsOverride | None = None, data_root: Path | None = None,
                     only: list[str] | None = None, hide: list[Path] | None = None,
                     train: bool | None = None, device: str = "auto", budget: str | None = None,
                     on_progress: Callable[[str, int, int, float], None] | None = None, on_check: Callable[[CheckResult], None] | None = None) -> SubmissionResult:
    started = time.monotonic()
    submission = load_submission(Path(path), lab.manifest.interface)
    effective = lab.manifest.limits.merged(limits)
    device = resolve_device(device)
    session = SubmissionSession(lab=lab, submission=submission, limits=effective, data_root=data_root,
                                device=device, budget=budget, hide=list(hide or []))
    train = (mode == "grade") if train is None else train  # students opt in: training takes minutes
    results = []
    for check in selected_checks(lab, mode, only):
        if on_progress:
            session.on_progress = lambda e, n, loss, title=check.spec.title: on_progress(title, e, n, loss)
        result = run_check(check, session, seed, limits, train)
        results.append(result)
        if on_check:
            on_check(result)
    counted = [r for r in results if r.status != Status.skipped]  # a skipped check is not a lost one
    score, max_score = round(sum(r.score for r in counted), 2), sum(r.max_score for r in counted)
    return SubmissionResult(
        submission=submission.name, path=str(path), lab=lab.id, lab_title=lab.manifest.title,
        lab_version=lab.manifest.version, grader_version=grader.__version__, mode=mode, seed=seed,
        limits=effective, score=score, max_score=max_score, device=device,
        grade=lab.manifest.letter_grade(100 * score / max_score if max_score else 0.0),
        checks=results, log_tail=session.log_tail, duration_s=round(time.monotonic() - started, 3),
    )
