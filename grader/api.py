"""What the CLI calls. Each function here is one user-visible action; the CLI only formats.

Every action takes one ``RunOptions`` (made by the caller, validated there) and one event sink;
nothing is re-declared here.
"""

from __future__ import annotations

from pathlib import Path

from enum import Enum

from grader.checks.registry import BoundLab, bind
from grader.errors import ReportError, UsageError
from grader.grading.batch import BatchResult, class_plan, grade_batch
from grader.grading.engine import grade_submission
from grader.grading.executor import Executor
from grader.grading.run import Run
from grader.intake.classes import ClassPlan, Layout, plan_class
from grader.lab import loader
from grader.options import EventSink, Mode, RunOptions, ignore
from grader.results import CheckResult, SubmissionResult  # noqa: F401

__all__ = ["BoundLab", "ExportTarget", "Layout", "autograde", "check", "export", "grade", "gradescope_bundle",
           "init", "labs", "load_lab", "plan", "read_results", "report", "write_report"]


class ExportTarget(str, Enum):
    """Where grades go: Moodle's grading worksheet, Canvas's gradebook, Gradescope's
    results.json, or a plain CSV."""

    moodle = "moodle"
    canvas = "canvas"
    gradescope = "gradescope"
    csv = "csv"


def load_lab(name_or_path: str | Path) -> BoundLab:
    """A lab by name or folder, with every check bound to its kind (a broken manifest is a
    ``LabError`` here, before anything is graded)."""
    return bind(loader.load_lab(name_or_path))


def labs() -> list[BoundLab]:
    return [bind(lab) for lab in loader.find_labs()]


def check(path: Path, lab: str | Path | BoundLab, options: RunOptions = RunOptions(mode=Mode.check), *,
          on_event: EventSink = ignore) -> SubmissionResult:
    """A student's self-check: the public checks only (or the named ones among them); training
    checks only when ``options.train``."""
    lab = lab if isinstance(lab, BoundLab) else load_lab(lab)
    with Run(lab, options.model_copy(update={"mode": Mode.check}), on_event=on_event) as run:
        return grade_submission(run, Path(path))


def plan(root: Path, lab: str | Path | BoundLab, layout: Layout | str = Layout.auto) -> ClassPlan:
    """The hand-ins of a class (a folder, or an LMS download zipped or not), each with its student."""
    lab = lab if isinstance(lab, BoundLab) else load_lab(lab)
    try:
        layout = Layout(layout)
    except ValueError:
        raise UsageError(f"--layout {layout!r} is not accepted: use {', '.join(m.value for m in Layout)}") from None
    iface = lab.manifest.interface
    return plan_class(Path(root), layout, expected={iface.module, iface.answers_file})


def grade(root: Path, lab: str | Path | BoundLab, out: Path, options: RunOptions = RunOptions(), *,
          on_event: EventSink = ignore, paths: list[Path] | None = None,
          executor: Executor | None = None, plan: ClassPlan | None = None,
          layout: Layout = Layout.auto) -> BatchResult:
    """An instructor's batch: every check on every hand-in of the class at ``root`` (a folder, or
    an LMS download; see ``plan``), with a PDF report per submission and a class summary
    (rendered while grading goes on). The results and the class are hidden from every child."""
    lab = lab if isinstance(lab, BoundLab) else load_lab(lab)
    hide = (Path(out), Path(root) if Path(root).is_dir() else Path(root).parent)
    with Run(lab, options, on_event=on_event, hide=hide) as run:
        if plan is None and paths is None:
            plan = class_plan(run, Path(root), layout)
        return grade_batch(run, Path(root), Path(out), paths=paths, executor=executor, plan=plan)


def read_results(out: Path) -> list[SubmissionResult]:
    """The results a batch wrote in ``out`` (files that are not results are passed over)."""
    results = []
    for path in sorted(Path(out).glob("*.json")):
        try:
            results.append(SubmissionResult.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return results


def export(out: Path, to: ExportTarget | str, *, template: Path | None = None,
           assignment: str | None = None) -> tuple[dict[str, bytes], list[str]]:
    """The files an LMS imports (name → bytes), made from the results in ``out``, and warnings
    (students graded but not in the template)."""
    from grader.export import canvas, csv, gradescope, moodle

    try:
        to = ExportTarget(to)
    except ValueError:
        raise UsageError(f"--to {to!r} is not accepted: use {', '.join(m.value for m in ExportTarget)}") from None
    results = read_results(out)
    if not results:
        raise UsageError(f"{out}: no gradelab results here (run `gradelab grade … --out {out}` first)")
    try:
        data = Path(template).read_bytes() if template is not None else None
    except OSError as exc:
        raise UsageError(f"--template {template}: cannot be read ({exc.strerror})") from None
    if to == ExportTarget.moodle:
        return moodle.export(results, data)
    if to == ExportTarget.canvas:
        return canvas.export(results, data, assignment=assignment)
    if data is not None:
        raise UsageError(f"--template is for moodle and canvas exports, not {to.value}")
    return (gradescope.export(results) if to == ExportTarget.gradescope else csv.export(results)), []


def init(lab: str | Path | BoundLab, target: Path, *, notebook: bool = False) -> list[Path]:
    """Write a lab's template for a student into ``target`` (as a notebook with ``notebook``)."""
    from grader.starter import write_template

    lab = lab if isinstance(lab, BoundLab) else load_lab(lab)
    return write_template(lab, Path(target), notebook=notebook)


def gradescope_bundle(lab: str | Path | BoundLab) -> bytes:
    """The Gradescope autograder zip for a lab."""
    from grader.export.autograder import bundle

    return bundle(lab if isinstance(lab, BoundLab) else load_lab(lab))


def autograde(lab: str | Path | BoundLab, root: Path, options: RunOptions = RunOptions(reports=False)) -> Path:
    """Inside Gradescope: grade ``root/submission``, write ``root/results/results.json``."""
    from grader.export.autograder import autograde as run_autograder

    return run_autograder(lab if isinstance(lab, BoundLab) else load_lab(lab), Path(root), options)


def report(result_json: Path, out: Path, *, audience: str = "instructor", html: bool = False) -> Path:
    """Render a report from a result JSON written earlier."""
    try:
        result = SubmissionResult.model_validate_json(Path(result_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{result_json}: not a gradelab result ({type(exc).__name__})") from None
    return write_report(result, out, audience=audience, html=html)


def write_report(result: SubmissionResult, out: Path, *, audience: str = "student", html: bool = False) -> Path:
    from grader.report import ReportRenderer

    return ReportRenderer().write(result, Path(out), audience, html)
