"""How the jobs of a batch are run. The batch plans (what to grade), an executor executes, and the
batch collects (writes each result as it arrives). Grading in parallel on one machine
(``grading.parallel``), on a Ray cluster (``grading.cluster``) or from a server's queue is another
executor, not another branch in the batch.

Every executor grades a job the same way, ``grade_job``, in a ``Run`` made from the batch's run
(the same lab, options and hidden folders): in this process for ``SerialExecutor``, in worker
processes or on other nodes for the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from grader.errors import GradelabError, LabError
from grader.grading.engine import grade_submission
from grader.grading.run import Run
from grader.grading.scoring import build_result
from grader.intake.sources import HandInSource
from grader.options import SubmissionStarted
from grader.results import CheckResult, Kind, Part, Status, Student, SubmissionResult


@dataclass(frozen=True)
class Job:
    """One hand-in to grade: where it is, the name its result is written under, and whose it is.
    ``source``: where its bytes are when that is not ``path`` itself (a group of files, members of
    a class zip); plain data, so that a job can travel to another process."""

    path: Path
    name: str
    student: Student
    source: HandInSource | None = None


def unreadable(run: Run, job: Job, error: Exception | str) -> SubmissionResult:
    """The result of a hand-in that could not be graded at all: one error, every point lost."""
    check = CheckResult(id=Kind.submission.value, title="Submission can be read", kind=Kind.submission.value,
                        visibility="public", status=Status.error, score=0, max_score=0, message=str(error),
                        parts=[Part(text=str(error))])  # about the hand-in itself: a student may read it
    return build_result(run.lab, run.options, name=job.name, path=job.path, student=job.student, checks=[check],
                        device=run.device)


def grade_job(run: Run, job: Job) -> SubmissionResult:
    """One job, as every executor grades it: a hand-in that cannot be read is its own result; a
    broken lab (or data set) stops the batch (``LabError``), said once."""
    run.emit(SubmissionStarted(job.name))
    try:
        return grade_submission(run, job.path, name=job.name, student=job.student, source=job.source)
    except LabError:
        raise
    except GradelabError as exc:
        return unreadable(run, job, exc)


class Executor(Protocol):
    def map(self, run: Run, jobs: Iterable[Job]) -> Iterator[tuple[Job, SubmissionResult]]:
        """Grade each job, yielding results as they are finished (in any order)."""
        ...


class SerialExecutor:
    """One hand-in after the other, in this process, in the batch's own run."""

    def map(self, run: Run, jobs: Iterable[Job]) -> Iterator[tuple[Job, SubmissionResult]]:
        for job in jobs:
            yield job, grade_job(run, job)
