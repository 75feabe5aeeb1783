"""The one place a ``SubmissionResult`` is built, for a graded hand-in and for one that could not
be read alike; its score comes from ``results.tally``, the one function reports use too."""

from __future__ import annotations

from pathlib import Path

import grader
from grader.grading.resume import graded_with
from grader.lab.loader import Lab
from grader.options import Device, RunOptions
from grader.results import CheckResult, Kind, Student, SubmissionResult, tally


def letter(lab: Lab, score: float, max_score: float, pending: float) -> str:
    """The lab's letter for a total; none while points are pending (a partial total has no letter)."""
    if pending:
        return ""
    return lab.manifest.letter_grade(100 * score / max_score if max_score else 0.0)


def build_result(lab: Lab, options: RunOptions, *, name: str, path: Path, student: Student,
                 checks: list[CheckResult], device: Device = Device.cpu, log_tail: str = "",
                 duration_s: float = 0.0, notes: list[str] | None = None,
                 handin_sha: str | None = None) -> SubmissionResult:
    score, max_score, pending = tally(checks)
    if checks and all(c.kind == Kind.submission for c in checks):  # nothing could be graded
        max_score = lab.manifest.max_score
    return SubmissionResult(
        submission=name, path=str(path), student=student, lab=lab.id, lab_title=lab.manifest.title,
        lab_version=lab.manifest.version, grader_version=grader.__version__, mode=options.mode,
        seed=options.seed, device=device, limits=lab.manifest.limits.merged(options.limits),
        score=score, max_score=max_score, pending_points=pending,
        grade=letter(lab, score, max_score, pending),
        checks=checks, notes=list(notes or []), log_tail=log_tail, duration_s=round(duration_s, 3),
        handin_sha=handin_sha, graded_with=graded_with(lab, options, device),
    )
