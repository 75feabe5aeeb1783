"""The export targets by name, and the one dispatch from results to a target's files: what
``gradelab export`` and the server's instructor pages both call."""

from __future__ import annotations

from enum import Enum

from grader.errors import UsageError
from grader.results import SubmissionResult


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
                   assignment: str | None = None) -> tuple[dict[str, bytes], list[str]]:
    """The files ``to`` imports (name → bytes) and warnings; ``template``: the worksheet or
    gradebook downloaded from the LMS (Moodle and Canvas only)."""
    from grader.export import canvas, csv, gradescope, moodle

    to = export_target(to)
    if to == ExportTarget.moodle:
        return moodle.export(results, template)
    if to == ExportTarget.canvas:
        return canvas.export(results, template, assignment=assignment)
    if template is not None:
        raise UsageError(f"--template is for moodle and canvas exports, not {to.value}")
    return (gradescope.export(results) if to == ExportTarget.gradescope else csv.export(results)), []
