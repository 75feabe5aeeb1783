"""Grade a whole class folder: plan (which hand-ins, which are already graded), execute (an
executor grades each), collect (each result is written atomically as soon as it is known, with
its report). An interrupted batch keeps what it finished and a rerun skips it (unless forced);
``class.csv`` is written once, from the results, at the end or at the interruption.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from grader.atomic import write_atomic
from grader.checks.registry import BoundLab
from grader.errors import GradelabError, LabError
from grader.grading.engine import grade_submission
from grader.grading.executor import Executor, Job, SerialExecutor
from grader.grading.run import Run
from grader.grading.scoring import build_result
from grader.options import SubmissionFinished, SubmissionStarted
from grader.results import CheckResult, Part, Status, SubmissionResult
from grader.submission import discover_submissions, safe_name, student_from_path

log = logging.getLogger(__name__)
CLASS_CSV = "class.csv"
REPORTS_DIR = "reports"


def result_names(paths: list[Path]) -> dict[Path, str]:
    """File-safe, unique names: ``alice/`` and ``alice.py`` do not overwrite each other."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for p in paths:
        base = safe_name(p.name if p.is_dir() else p.stem)
        name, i = base, 2
        while name in used:
            name, i = f"{base}-{i}", i + 1
        used.add(name)
        names[p] = name
    return names


def plan_jobs(paths: list[Path]) -> list[Job]:
    return [Job(path=p, name=name, student=student_from_path(p)) for p, name in result_names(paths).items()]


def unreadable(run: Run, job: Job, error: GradelabError) -> SubmissionResult:
    """The result of a hand-in that could not be graded at all: one error, every point lost."""
    check = CheckResult(id="submission", title="Submission can be read", kind="submission",
                        visibility="public", status=Status.error, score=0, max_score=0, message=str(error),
                        parts=[Part(text=str(error))])  # about the hand-in itself: a student may read it
    return build_result(run.lab, run.options, name=job.name, path=job.path, student=job.student, checks=[check],
                        device=run.device.value)


def class_csv(lab: BoundLab, results: list[SubmissionResult]) -> str:
    check_ids = [c.spec.id for c in lab.checks]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["submission", "student_id", "name", "score", "max_score", "percent", *check_ids])
    for r in sorted(results, key=lambda r: r.submission):
        by_id = {c.id: c for c in r.checks}
        writer.writerow([r.submission, r.student.id, r.student.name, f"{r.score:g}", f"{r.max_score:g}",
                         f"{r.percent:.1f}", *[f"{by_id[i].score:g}" if i in by_id else "" for i in check_ids]])
    return out.getvalue()


@dataclass
class BatchResult:
    out: Path
    results: list[SubmissionResult] = field(default_factory=list)
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    class_summary: Path | None = None
    report_errors: list[str] = field(default_factory=list)

    @property
    def reports(self) -> Path:
        return self.out / REPORTS_DIR


def _earlier(target: Path, name: str) -> SubmissionResult | None:
    """A result written by an earlier run, if it can still be read."""
    if not target.exists():
        return None
    try:
        return SubmissionResult.model_validate_json(target.read_text(encoding="utf-8"))
    except (ValidationError, OSError):
        log.warning("%s is unreadable; grading %s again", target, name)
        return None


def grade_batch(run: Run, root: Path, out: Path, *, paths: list[Path] | None = None,
                executor: Executor | None = None) -> BatchResult:
    """Grade every submission under ``root`` in ``run``; with ``run.options.reports``, PDFs are
    rendered alongside, in ``out/reports``, while grading goes on."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(paths if paths is not None else discover_submissions(Path(root)))
    batch = BatchResult(out=out)
    writer = None
    if run.options.reports:
        from grader.report.writer import ReportWriter

        writer = ReportWriter(out / REPORTS_DIR, html=run.options.html)

    todo = []
    for job in jobs:
        earlier = None if run.options.force else _earlier(out / f"{job.name}.json", job.name)
        if earlier is None:
            todo.append(job)
            continue
        batch.skipped.append(job.name)
        batch.results.append(earlier)
        if writer:
            writer.submit(earlier, job.name, only_if_missing=True)
        run.emit(SubmissionFinished(earlier, skipped=True))

    def grade(job: Job) -> SubmissionResult:
        run.emit(SubmissionStarted(job.name))
        try:
            return grade_submission(run, job.path, name=job.name, student=job.student)
        except LabError:
            raise  # the lab (or its data) is broken: say so once, not once per submission
        except GradelabError as exc:
            return unreadable(run, job, exc)

    finished = False
    try:
        for job, result in (executor or SerialExecutor()).map(todo, grade):
            write_atomic(out / f"{job.name}.json", result.to_json())
            batch.graded.append(job.name)
            batch.results.append(result)
            if writer:
                writer.submit(result, job.name)
            run.emit(SubmissionFinished(result, skipped=False))
        finished = True
    finally:
        write_atomic(out / CLASS_CSV, class_csv(run.lab, batch.results))
        if writer and finished:
            batch.class_summary = writer.finish(batch.results, run.lab.manifest.title)
            batch.report_errors = writer.errors
        elif writer:
            writer.abandon()
    return batch
