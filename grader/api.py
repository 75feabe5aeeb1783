"""What the CLI calls. Each function here is one user-visible action; the CLI only formats.

Every action takes one ``RunOptions`` (made by the caller, validated there) and one event sink;
nothing is re-declared here. The grading machinery is imported by the actions that grade: loading
and listing labs stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from grader.checks.registry import BoundLab, bind
from grader.errors import GradelabError, LabError, ReportError, UsageError
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
    from grader.similarity.ranking import SimilarityReport

__all__ = ["BoundLab", "ExportTarget", "Layout", "autograde", "check", "export", "export_results", "grade",
           "gradescope_bundle", "init", "labs", "load_lab", "pack", "plan", "read_results", "report", "roster_tokens",
           "serve", "similarity", "similarity_of", "write_report"]


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


def stored_results(out: Path) -> list[SubmissionResult]:
    """The results a batch wrote in ``out``, as written (files that are not results passed over)."""
    results = []
    for path in sorted(Path(out).glob("*.json")):
        try:
            results.append(SubmissionResult.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return results


def read_results(out: Path, lab: str | Path | BoundLab | None = None) -> list[SubmissionResult]:
    """The results a batch wrote in ``out`` (files that are not results are passed over), with the
    grades given by hand to written answers merged in (``grader.review``); ``lab``: default, the
    results' own, when it can be found."""
    from grader.review.merge import merged

    results = stored_results(out)
    if not results:
        return results
    try:
        the_lab = bound(lab if lab is not None else results[0].lab)
    except LabError as exc:
        from grader.review.store import ReviewStore

        if ReviewStore.beside(Path(out)).folder.is_dir():  # grades given by hand that cannot be read without it
            raise UsageError(f"{out}: written answers were graded by hand here, and their rubric is the lab's, which "
                             f"cannot be loaded ({exc}): name the lab with --lab") from None
        return results  # a lab no longer here, and nothing graded by hand: its results as they are
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
    return export_results(results, to, template=data, assignment=assignment, partial=partial, out=Path(out))


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

    if options.ray and settings.workers != 0:
        from grader.grading.cluster import connect

        connect(options.ray)  # here, not in the server's start-up: a cluster not there is one line, no traceback
    run_server(bound(lab), options, settings)


def similarity(out: Path, lab: str | Path | BoundLab | None = None, *, root: Path | None = None,
               layout: Layout | str = Layout.auto, boilerplate: tuple[Path, ...] = (),
               against: tuple[Path, ...] = (), write: bool = True) -> SimilarityReport:
    """Pairs of hand-ins of the class graded into ``out`` to look at together (``grader.similarity``),
    written to ``out/similarity/`` (CSV, JSON, HTML) and as a page of the class summary PDF. The
    hand-ins are read again as grading read them, from ``root`` (default: where the results say
    they were); ``against``: earlier classes, compared with this one."""
    from grader.similarity.handins import boilerplate_code, read_class
    from grader.similarity.lab import compare_works
    from grader.similarity.view import write as write_view

    results = stored_results(out)
    if not results and root is None:
        raise UsageError(f"{out}: no gradelab results here (run `gradelab grade … --out {out}` first, or name "
                         "the class with --class)")
    lab_obj = bound(lab if lab is not None else results[0].lab)
    root = Path(root) if root is not None else _class_root(results)
    if not root.exists():
        raise UsageError(f"{root}: the class graded into {out} is no longer there (name it with --class)")
    for folder in (*boilerplate, *against):
        if not Path(folder).is_dir() and not Path(folder).is_file():
            raise UsageError(f"{folder}: not a folder")
    try:
        layout = Layout(layout)
    except ValueError:
        raise UsageError(f"--layout {layout!r} is not accepted: use {', '.join(m.value for m in Layout)}") from None
    works = read_class(lab_obj, root, layout=layout.value,
                       names={r.submission for r in results} if results else None)
    for i, folder in enumerate(against):
        label = f"{Path(folder).name or 'earlier'}" + (f"-{i + 1}" if i else "")
        works += read_class(lab_obj, Path(folder), group=label)
    try:
        extra = boilerplate_code(list(boilerplate), lab_obj.manifest.intake)
    except GradelabError as exc:
        raise UsageError(f"--boilerplate: {exc}") from None
    report = compare_works(lab_obj, works, extra)
    if write:
        write_view(report, Path(out))
        _summary_with_similarity(Path(out), lab_obj, report)
    return report


def _class_root(results: list[SubmissionResult]) -> Path:
    """Where a batch's hand-ins were: the class zip every result names, else their common folder."""
    from collections import Counter

    paths = [Path(r.path) for r in results]
    if len(results) > 1 and len(set(paths)) == 1:
        return paths[0]
    return Counter(p.parent for p in paths).most_common(1)[0][0]


def _summary_with_similarity(out: Path, lab: BoundLab, report: SimilarityReport) -> None:
    """The class summary PDF, written again with its similarity page (when the batch wrote one)."""
    from grader.grading.batch import REPORTS_DIR
    from grader.report import ReportRenderer
    from grader.report.writer import CLASS_SUMMARY

    path = out / REPORTS_DIR / CLASS_SUMMARY
    if path.exists():
        ReportRenderer().write_class(read_results(out, lab), lab.manifest.title, path,
                                     html=path.with_suffix(".html").exists(), similarity=report)


def similarity_of(lab: str | Path | BoundLab, hand_ins: list[tuple[Path, str, str]]) -> SimilarityReport:
    """The similarity of hand-ins given one by one, each as (path, name, student), e.g. a
    server's latest attempts. Nothing is written."""
    from grader.similarity.lab import compare_hand_ins

    return compare_hand_ins(bound(lab), hand_ins)
