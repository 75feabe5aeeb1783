"""How the jobs of a batch are run. The batch plans (what to grade), an executor executes, and the
batch collects (writes each result as it arrives). Grading in parallel, on a cluster or from a
server's queue is another executor, not another branch in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

from grader.intake.sources import HandInSource
from grader.results import Student, SubmissionResult


@dataclass(frozen=True)
class Job:
    """One hand-in to grade: where it is, the name its result is written under, and whose it is.
    ``source``: where its bytes are when that is not ``path`` itself (a group of files, members of
    a class zip); plain data, so that a job can travel to another process."""

    path: Path
    name: str
    student: Student
    source: HandInSource | None = None


Grade = Callable[[Job], SubmissionResult]


class Executor(Protocol):
    def map(self, jobs: Iterable[Job], grade: Grade) -> Iterator[tuple[Job, SubmissionResult]]:
        """Grade each job, yielding results as they are finished (in any order)."""
        ...


class SerialExecutor:
    """One hand-in after the other, in this process."""

    def map(self, jobs: Iterable[Job], grade: Grade) -> Iterator[tuple[Job, SubmissionResult]]:
        for job in jobs:
            yield job, grade(job)
