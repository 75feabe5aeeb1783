"""What the CLI calls. Each function here is one user-visible action; the CLI only formats.

Every action takes one ``RunOptions`` (made by the caller, validated there) and one event sink;
nothing is re-declared here. The grading machinery is imported by the actions that grade: loading
and listing labs stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from grader.checks.registry import BoundLab, bind
from grader.errors import ReportError, UsageError
from grader.export.targets import ExportTarget, export_results, export_target
from grader.lab import loader
from grader.options import EventSink, Layout, Mode, RunOptions, ignore
from grader.results import CheckResult, SubmissionResult  # noqa: F401  (re-exported for callers of the API)
from grader.reveal import Audience

if TYPE_CHECKING:
    from grader.edition import Edition
    from grader.grading.batch import BatchResult
    from grader.grading.executor import Executor
    from grader.intake.classes import ClassPlan
    from grader.serve.roster import Issued
    from grader.serve.settings import ServeSettings

__all__ = ["BoundLab", "ExportTarget", "Layout", "autograde", "check", "export", "export_results", "grade",
           "gradescope_bundle", "init", "labs", "load_lab", "pack", "plan", "read_results", "report", "roster_tokens",
           "serve", "write_report"]


def load_lab(name_or_path: str | Path) -> BoundLab:
    """A lab by name or folder, with every check bound to its kind (a broken manifest is a
    ``LabError`` here, before anything is graded)."""
    return bind(loader.load_lab(name_or_path))


def labs() -> list[BoundLab]:
    return [bind(lab) for lab in loader.find_labs()]


def bound(lab: str | Path | BoundLab) -> BoundLab:
    """A lab as every function here takes it: bound already, or loaded by name or folder."""
    return lab if isinstance(lab, BoundLab) else load_lab(lab)


def check(path: Path, lab: str | Path | BoundLab, options: RunOptions = RunOptions(mode=Mode.check), *,
          on_event: EventSink = ignore) -> SubmissionResult:
    """A student's self-check: the public checks only (or the named ones among them); training
    checks only when ``options.train``."""
    from grader.grading.run import Run, sandbox_preload
    from grader.sandbox.runner import opened

    lab = bound(lab)
    # The fork server imports torch on another core while this process imports it (and the lab's
    # reference): a self-check pays for one import of torch, not two in a row.
    with opened(sandbox_preload(lab)) as sandbox:
        sandbox.start()
        from grader.grading.engine import grade_submission

        with Run(lab, options.model_copy(update={"mode": Mode.check}), on_event=on_event, sandbox=sandbox) as run:
            return grade_submission(run, Path(path))


def plan(root: Path, lab: str | Path | BoundLab, layout: Layout | str = Layout.auto) -> ClassPlan:
    """The hand-ins of a class (a folder, or an LMS download zipped or not), each with its student."""
    from grader.intake.classes import plan_class

    lab = bound(lab)
    try:
        layout = Layout(layout)
    except ValueError:
        raise UsageError(f"--layout {layout!r} is not accepted: use {', '.join(m.value for m in Layout)}") from None
    iface = lab.manifest.interface
    return plan_class(Path(root), layout, expected={iface.module, iface.answers_file})


def grade(root: Path, lab: str | Path | BoundLab, out: Path, options: RunOptions = RunOptions(), *,
          on_event: EventSink = ignore, paths: list[Path] | None = None,
          executor: Executor | None = None, plan: ClassPlan | None = None) -> BatchResult:
    """An instructor's batch: every check on every hand-in of the class at ``root`` (a folder, or
    an LMS download laid out as ``options.layout`` says; see ``plan``), with a PDF report per
    submission and a class summary (rendered while grading goes on). The results and the class
    are hidden from every child. What to grade may be given instead of found: ``paths`` (these
    hand-ins) or ``plan`` (a class already read); ``executor``: how, where the options' choice
    (``jobs``, ``ray``) is not wanted (tests, a server's workers)."""
    from grader.grading.batch import class_plan, grade_batch
    from grader.grading.run import Run

    lab = bound(lab)
    hide = (Path(out), Path(root) if Path(root).is_dir() else Path(root).parent)
    with Run(lab, options, on_event=on_event, hide=hide) as run:
        if plan is None and paths is None:
            plan = class_plan(run, Path(root), options.layout)
        return grade_batch(run, Path(root), Path(out), paths=paths, executor=executor, plan=plan)


def read_results(out: Path, lab: str | Path | BoundLab | None = None) -> list[SubmissionResult]:
    """The results a batch wrote in ``out`` (files that are not results are passed over), with the
    grades given by hand to written answers merged in (``grader.review``); ``lab``: default, the
    results' own, when it can be found."""
    from grader.errors import LabError
    from grader.review.merge import merged

    results = []
    for path in sorted(Path(out).glob("*.json")):
        try:
            results.append(SubmissionResult.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    if not results:
        return results
    try:
        the_lab = bound(lab if lab is not None else results[0].lab)
    except LabError:
        return results  # a lab no longer here: its results as they are
    return merged(results, the_lab, Path(out))


def export(out: Path, to: ExportTarget | str, *, template: Path | None = None, assignment: str | None = None,
           lab: str | Path | BoundLab | None = None, partial: bool = False) -> tuple[dict[str, bytes], list[str]]:
    """The files an LMS imports (name → bytes), made from the results in ``out`` (with the grades
    given by hand, see ``read_results``), and warnings (students graded but not in the template)."""
    to = export_target(to)
    results = read_results(out, lab)
    if not results:
        raise UsageError(f"{out}: no gradelab results here (run `gradelab grade … --out {out}` first)")
    try:
        data = Path(template).read_bytes() if template is not None else None
    except OSError as exc:
        raise UsageError(f"--template {template}: cannot be read ({exc.strerror})") from None
    return export_results(results, to, template=data, assignment=assignment, partial=partial)


def init(lab: str | Path | BoundLab, target: Path, *, notebook: bool = False) -> list[Path]:
    """Write a lab's template for a student into ``target`` (as a notebook with ``notebook``)."""
    from grader.starter import write_template

    lab = bound(lab)
    return write_template(lab, Path(target), notebook=notebook)


def gradescope_bundle(lab: str | Path | BoundLab) -> bytes:
    """The Gradescope autograder zip for a lab."""
    from grader.export.autograder import bundle

    return bundle(bound(lab))


def autograde(lab: str | Path | BoundLab, root: Path, options: RunOptions = RunOptions(reports=False)) -> Path:
    """Inside Gradescope: grade ``root/submission``, write ``root/results/results.json``."""
    from grader.export.autograder import autograde as run_autograder

    return run_autograder(bound(lab), Path(root), options)


def pack(lab: str | Path | BoundLab, folder: Path) -> Edition:
    """The lab's student edition, written into ``folder``: what students self-check with."""
    from grader.edition import pack as write

    return write(bound(lab), Path(folder))


def report(result_json: Path, out: Path, *, audience: Audience = Audience.instructor, html: bool = False) -> Path:
    """Render a report from a result JSON written earlier."""
    try:
        result = SubmissionResult.model_validate_json(Path(result_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{result_json}: not a gradelab result ({type(exc).__name__})") from None
    result = with_manual_grades(result, Path(result_json).parent)
    return write_report(result, out, audience=audience, html=html)


def with_manual_grades(result: SubmissionResult, out: Path) -> SubmissionResult:
    """One result with the grades given by hand in its batch folder ``out``, if any."""
    from grader.errors import LabError
    from grader.review.merge import merged

    try:
        return merged([result], load_lab(result.lab), Path(out))[0]
    except LabError:
        return result


def write_report(result: SubmissionResult, out: Path, *, audience: Audience = Audience.student,
                 html: bool = False) -> Path:
    from grader.report import ReportRenderer

    return ReportRenderer().write(result, Path(out), audience, html)


def roster_tokens(roster: Path, class_dir: Path, *, reissue: tuple[str, ...] = (), every: bool = False,
                  instructor: bool = False) -> Issued:
    """Tokens for the roster's students who have none (or those named), their hashes kept in the
    class folder; the tokens themselves are returned once, to be mailed."""
    from grader.serve.roster import Roster, issue

    return issue(Roster.read(Path(roster)), Path(class_dir), reissue=tuple(reissue), every=every,
                 instructor=instructor)


def serve(lab: str | Path | BoundLab, options: RunOptions, settings: ServeSettings) -> None:
    """Serve a class until stopped: students upload and read their feedback, the instructor reads
    everything (``grader.serve``)."""
    from grader.serve.app import run_server

    run_server(bound(lab), options, settings)
