"""Grade a whole class: plan (which hand-ins, whose, which are already graded), execute (an
executor grades each), collect (each result is written atomically as soon as it is known, with
its report). An interrupted batch keeps what it finished and a rerun skips it (unless forced);
``class.csv`` is written once, from the results, at the end or at the interruption.

Planning reads the class as it arrived (``intake.classes``: a plain folder per student, a Moodle
or Canvas download, zipped or not), so a job can be a folder, a file, a notebook, an archive, a
group of files or members of a class zip. A hand-in with nothing to grade is a result like the
others, and is listed in ``BatchResult.ungradable`` for the summary and the exit status.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from grader import interrupts
from grader.atomic import write_atomic
from grader.checks.registry import BoundLab
from grader.errors import SubmissionError
from grader.export.cells import inert_row
from grader.grading.executor import Executor, Job, SerialExecutor
from grader.grading.resume import current_digest, graded_with, why_regrade
from grader.grading.run import Run
from grader.intake.classes import ClassPlan, plan_class
from grader.intake.identity import disambiguate, key_for
from grader.intake.listing import ClassEntry
from grader.intake.sources import HandInSource
from grader.options import Layout, ReportsFor, RunOptions, SubmissionFinished
from grader.results import PENDING, Kind, SubmissionResult
from grader.reveal import Audience
from grader.review.merge import load_books, merge_result, written_checks
from grader.review.store import ReviewStore
from grader.submission import student_from_path

log = logging.getLogger(__name__)
CLASS_CSV = "class.csv"
REPORTS_DIR = "reports"


def plan_paths(paths: list[Path]) -> ClassPlan:
    """A plan from hand-ins named one by one (each its own student, named after its folder)."""
    plan = ClassPlan(Layout.folders)
    for p in paths:
        source = HandInSource(path=Path(p))
        plan.entries.append(ClassEntry(student=student_from_path(p), source=source, name=key_for(source.stem)))
    return plan


def plan_jobs(plan: ClassPlan) -> list[Job]:
    """One job per hand-in, under its key (``intake.identity``): unique, and made from the entry's
    own name alone, so that a hand-in keeps its key whatever else arrives in the class. Entries
    whose keys coincide (``alice/`` beside ``alice.py``) are each named by their whole entry name."""
    shared = Counter(entry.name for entry in plan.entries)
    jobs, used = [], set()
    for entry in plan.entries:
        name = entry.name if shared[entry.name] == 1 else disambiguate(entry.name, entry.source.label)
        if name in used:  # the same entry name twice (two LMS groups of one id): refuse to guess
            raise SubmissionError(f"two hand-ins of the class would be kept as {name!r} "
                                  f"({entry.source.label}); rename one of them")
        used.add(name)
        src = entry.source
        path = src.path if src.kind == "path" else src.path / src.files[0][0] if src.kind == "files" and src.files \
            else src.path
        jobs.append(Job(path=path, name=name, student=entry.student, source=None if src.kind == "path" else src))
    return jobs


def class_plan(run: Run, root: Path, layout: Layout = Layout.auto) -> ClassPlan:
    """The hand-ins of the class at ``root`` for this run's lab."""
    iface = run.lab.manifest.interface
    return plan_class(Path(root), layout, expected={iface.module, iface.answers_file})


def ungradable(result: SubmissionResult) -> bool:
    """A hand-in that could not be graded at all: nothing to grade, or refused (an archive)."""
    return bool(result.checks) and all(c.kind == Kind.submission for c in result.checks)


def choose_executor(run: Run, todo: int) -> Executor:
    """A Ray cluster when asked for; else as many worker processes as ``--jobs`` (or the machine
    and the lab) allow; one hand-in at a time, in this process, when that is one."""
    if run.options.ray:
        from grader.grading.cluster import RayExecutor

        return RayExecutor(run.options.ray)
    from grader.grading.parallel import ParallelExecutor, default_jobs

    jobs = run.options.jobs or default_jobs(run.lab, run.options, run.device, todo)
    return ParallelExecutor(jobs) if min(jobs, todo) > 1 else SerialExecutor()


def audiences_for(options: RunOptions) -> tuple[Audience, ...]:
    """The readers ``--reports`` names."""
    return {ReportsFor.students: (Audience.student,), ReportsFor.instructor: (Audience.instructor,)}.get(
        options.reports_for, (Audience.student, Audience.instructor))


def class_csv(lab: BoundLab, results: list[SubmissionResult]) -> str:
    check_ids = [c.spec.id for c in lab.checks]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["submission", "student_id", "name", "score", "max_score", "percent", "graded", *check_ids])
    for r in sorted(results, key=lambda r: r.submission):
        by_id = {c.id: c for c in r.checks}
        writer.writerow(inert_row([r.submission, r.student.id, r.student.name, f"{r.score:g}", f"{r.max_score:g}",
                                   f"{r.percent:.1f}", "no" if ungradable(r) else "yes",
                                   *[f"{by_id[i].score:g}" if i in by_id and by_id[i].status not in PENDING else ""
                                     for i in check_ids]]))
    return out.getvalue()


@dataclass
class BatchResult:
    out: Path
    results: list[SubmissionResult] = field(default_factory=list)
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    regraded: dict[str, str] = field(default_factory=dict)  # an earlier result not kept, and why (grading.resume)
    class_summary: Path | None = None
    report_errors: list[str] = field(default_factory=list)
    layout: Layout = Layout.folders
    warnings: list[str] = field(default_factory=list)  # what the class held that is not a hand-in

    @property
    def ungradable(self) -> list[SubmissionResult]:
        """Hand-ins with nothing to grade (or refused): a warning in the summary, and the exit status."""
        return [r for r in self.results if ungradable(r)]

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
                executor: Executor | None = None, plan: ClassPlan | None = None) -> BatchResult:
    """Grade every hand-in of the class at ``root`` (or the ``plan`` made of it, or the ``paths``
    given) in ``run``; with ``run.options.reports``, PDFs are rendered alongside, in
    ``out/reports``, while grading goes on."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if plan is None:
        plan = plan_paths(paths) if paths is not None else class_plan(run, Path(root), run.options.layout)
    jobs = plan_jobs(plan)
    batch = BatchResult(out=out, layout=plan.layout, warnings=list(plan.warnings))
    writer = None
    if run.options.reports:
        from grader.report.writer import ReportWriter

        writer = ReportWriter(out / REPORTS_DIR, html=run.options.html, audiences=audiences_for(run.options))

    # Grades given by hand (written answers) are kept beside the results, never in them: a regrade
    # rewrites the results and keeps the grades; reports and class.csv show both.
    store = ReviewStore.beside(out)
    books = load_books(run.lab, store) if written_checks(run.lab) and store.folder.is_dir() else {}

    def with_grades(result: SubmissionResult) -> SubmissionResult:
        return merge_result(result, run.lab, books) if books else result

    todo = []
    now = graded_with(run.lab, run.options, run.device)
    for job in jobs:
        earlier = None if run.options.force else _earlier(out / f"{job.name}.json", job.name)
        if earlier is None:
            todo.append(job)
            continue
        why = why_regrade(earlier, now, current_digest(run.lab, job.path, job.source))
        if why is not None:
            batch.regraded[job.name] = why
            todo.append(job)
            continue
        batch.skipped.append(job.name)
        graded = with_grades(earlier)
        batch.results.append(graded)
        if writer:  # a written answer graded since: its reports are rendered again, with the grade
            writer.submit(graded, job.name, only_if_missing=graded is earlier)
        run.emit(SubmissionFinished(earlier, skipped=True))

    finished = False
    try:
        for job, result in (executor or choose_executor(run, len(todo))).map(run, todo):
            write_atomic(out / f"{job.name}.json", result.to_json())
            result = with_grades(result)
            batch.graded.append(job.name)
            batch.results.append(result)
            if writer:
                writer.submit(result, job.name)
            run.emit(SubmissionFinished(result, skipped=False))
            interrupts.check()  # a stop Python dropped (see grader.interrupts): not one more hand-in
        finished = True
    finally:
        write_atomic(out / CLASS_CSV, class_csv(run.lab, batch.results))
        if writer and finished:
            batch.class_summary = writer.finish(batch.results, run.lab.manifest.title)
            batch.report_errors = writer.errors
        elif writer:
            writer.abandon()
    return batch
