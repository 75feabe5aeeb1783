"""The export targets by name, and the one dispatch from results to a target's files: what
``gradelab export`` and the server's instructor pages both call."""

from __future__ import annotations

import re
import shlex
from enum import Enum
from pathlib import Path

from grader.errors import UsageError
from grader.options import Mode
from grader.results import Status, SubmissionResult


class ExportTarget(str, Enum):
    """Where grades go: Moodle's grading worksheet, Canvas's gradebook, Gradescope's
    results.json, or a plain CSV."""

    moodle = "moodle"
    canvas = "canvas"
    gradescope = "gradescope"
    csv = "csv"


def export_target(to: ExportTarget | str) -> ExportTarget:
    try:
        return ExportTarget(to)
    except ValueError:
        raise UsageError(f"--to {to!r} is not accepted: use {', '.join(m.value for m in ExportTarget)}") from None


def export_results(results: list[SubmissionResult], to: ExportTarget | str, *, template: bytes | None = None,
                   assignment: str | None = None, partial: bool = False,
                   out: Path | None = None) -> tuple[dict[str, bytes], list[str]]:
    """The files ``to`` imports (name → bytes) and warnings; ``template``: the worksheet or
    gradebook downloaded from the LMS (Moodle and Canvas only); ``out``: the results' folder, for
    the command a refusal gives.

    A grade that leaves gradelab is the student's, whole, on the lab's scale, or nothing leaves:
    a self-check's result is no grade; points still pending (written answers awaiting review,
    checks not run) are refused unless ``partial`` (each row then says what is pending); an
    LMS file needs the LMS's own ids (``refusal``)."""
    to = export_target(to)
    checks = [r for r in results if r.mode != Mode.grade]
    if checks:
        raise UsageError(f"{_names(checks)}: {'a self-check' if len(checks) == 1 else 'self-checks'} (the public "
                         "checks only, as a student runs them), not a grade: grade the class with `gradelab grade`")
    pending = [r for r in results if r.pending_points]
    if pending and not partial:
        raise UsageError(
            f"{len(pending)} of {len(results)} student(s) have points not graded yet "
            f"({_pending_words(pending)}; {_names(pending)}): grade them first (written answers: `gradelab review "
            f"{shlex.quote(str(out)) if out is not None else 'OUT'}`), or export with --partial, where each row "
            "says what is pending")
    problem = refusal(results, to, template, assignment)
    if problem:
        raise UsageError(problem)
    warnings = [f"partial export: {len(pending)} student(s)' totals count {_pending_words(pending)} as not yet "
                "earned"] if pending else []
    files, said = _files(results, to, template, assignment)
    return files, warnings + said


def _names(results: list[SubmissionResult], most: int = 3) -> str:
    names = [r.student.name for r in results]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _pending_words(results: list[SubmissionResult]) -> str:
    waiting = sum(len(r.awaiting_review) for r in results)
    not_run = sum(1 for r in results for c in r.checks if c.status == Status.skipped)
    words = ([f"{waiting} written answer(s) awaiting review"] if waiting else []) + \
        ([f"{not_run} check(s) not run"] if not_run else [])
    return " and ".join(words) or "points pending"


def refusal(results: list[SubmissionResult], to: ExportTarget, template: bytes | None,
            assignment: str | None) -> str | None:
    """Why an LMS file cannot be made from these results, with the one-line fix (``None``: it can)."""
    if to == ExportTarget.moodle and template is None:
        strangers = [r for r in results if r.student.lms != "moodle"]
        if strangers:
            return (f"a Moodle worksheet finds each student by Moodle's participant id, and {_names(strangers)} "
                    f"came from {_origin(strangers)} (no Moodle id): pass the worksheet Moodle gives "
                    "(--template \"Grades-Lab 2.csv\"), or grade the class as Moodle's download")
    if to == ExportTarget.canvas and template is None:
        # Who the students are first: no column name helps a class that has no Canvas ids.
        strangers = [r for r in results if r.student.lms != "canvas"]
        if not strangers and (assignment is None or not canvas_assignment_id(assignment)):
            return ("a Canvas gradebook import finds the assignment by its id, or makes a new one: pass the "
                    "gradebook Canvas exports (--template gradebook.csv), or name the column with its id "
                    "(--assignment \"Lab 2 (12345)\")")
        if strangers:
            return (f"a Canvas gradebook finds each student by Canvas's user id, and {_names(strangers)} came from "
                    f"{_origin(strangers)} (no Canvas id): grade the class as Canvas's download, or pass its gradebook "
                    "(--template gradebook.csv) and keep the rows it matches")
    return None


def _origin(results: list[SubmissionResult]) -> str:
    lms = {r.student.lms or "" for r in results}
    return f"{lms.pop().capitalize()}'s download" if len(lms) == 1 and "" not in lms else "a class of folders"


def canvas_assignment_id(assignment: str) -> bool:
    return bool(re.fullmatch(r".+?\s*\(\d+\)|\d+", assignment.strip()))


def _files(results: list[SubmissionResult], to: ExportTarget, template: bytes | None,
           assignment: str | None) -> tuple[dict[str, bytes], list[str]]:
    from grader.export import canvas, csv, gradescope, moodle

    if to == ExportTarget.moodle:
        return moodle.export(results, template)
    if to == ExportTarget.canvas:
        return canvas.export(results, template, assignment=assignment)
    if template is not None:
        raise UsageError(f"--template is for moodle and canvas exports, not {to.value}")
    return (gradescope.export(results) if to == ExportTarget.gradescope else csv.export(results)), []
