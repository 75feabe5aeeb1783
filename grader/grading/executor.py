"""How the jobs of a batch are run. The batch plans (what to grade), an executor executes, and the
batch collects (writes each result as it arrives). Grading in parallel on one machine
(``grading.parallel``), on a Ray cluster (``grading.cluster``) or from a server's queue is another
executor, not another branch in the batch.

Every executor grades a job the same way, ``grade_job``, in a ``Run`` made from the batch's run
(the same lab, options and hidden folders): in this process for ``SerialExecutor``, in worker
processes or on other nodes for the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from grader.errors import GradelabError, LabError
from grader.grading.engine import grade_submission
from grader.grading.run import Run
from grader.grading.scoring import build_result
from grader.intake.sources import HandInSource
from grader.lab.loader import Lab
from grader.options import Device, RunOptions, SubmissionStarted
from grader.results import CheckResult, Kind, Part, Status, Student, SubmissionResult

log = logging.getLogger(__name__)


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
    return unreadable_in(run.lab, run.options, job, error, run.device)


def unreadable_in(lab: Lab, options: RunOptions, job: Job, error: Exception | str,
                  device: Device = Device.cpu) -> SubmissionResult:
    """``unreadable`` without a ``Run``: for a process that grades nothing itself (the server
    when its hand-ins are graded on a cluster)."""
    check = CheckResult(id=Kind.submission.value, title="Submission can be read", kind=Kind.submission.value,
                        visibility="public", status=Status.error, score=0, max_score=0, message=str(error),
                        parts=[Part(text=str(error))])  # about the hand-in itself: a student may read it
    return build_result(lab, options, name=job.name, path=job.path, student=job.student, checks=[check],
                        device=device)


def grade_job(run: Run, job: Job) -> SubmissionResult:
    """One job, as every executor grades it: a hand-in that cannot be read is its own result; a
    broken lab (or data set) stops the batch (``LabError``), said once. Any other exception while
    reading or grading one hand-in (a parser's ``RecursionError``, ``MemoryError``, a bug met by
    this hand-in only) is that hand-in's result too, logged for the staff: the batch, ``--jobs``,
    Ray and the server never end because of one hand-in."""
    run.emit(SubmissionStarted(job.name))
    try:
        return grade_submission(run, job.path, name=job.name, student=job.student, source=job.source)
    except LabError:
        raise
    except GradelabError as exc:
        return unreadable(run, job, exc)
    except Exception as exc:
        log.exception("hand-in %s could not be graded", job.name)
        return unreadable(run, job, f"the grader could not read this hand-in ({type(exc).__name__}); "
                                    f"the course staff can see why in the grader's log")


class Executor(Protocol):
    def map(self, run: Run, jobs: Iterable[Job]) -> Iterator[tuple[Job, SubmissionResult]]:
        """Grade each job, yielding results as they are finished (in any order)."""
        ...


class SerialExecutor:
    """One hand-in after the other, in this process, in the batch's own run."""

    def map(self, run: Run, jobs: Iterable[Job]) -> Iterator[tuple[Job, SubmissionResult]]:
        for job in jobs:
            yield job, grade_job(run, job)
