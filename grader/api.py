"""What the CLI calls. Each function here is one user-visible action; the CLI only formats.

Every action takes one ``RunOptions`` (made by the caller, validated there) and one event sink;
nothing is re-declared here. The grading machinery is imported by the actions that grade: loading
and listing labs stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from grader.checks.registry import BoundLab, bind
from grader.errors import ReportError
from grader.lab import loader
from grader.options import EventSink, Mode, RunOptions, ignore
from grader.results import CheckResult, SubmissionResult  # noqa: F401

if TYPE_CHECKING:
    from grader.edition import Edition
    from grader.grading.batch import BatchResult
    from grader.grading.executor import Executor

__all__ = ["BoundLab", "check", "grade", "labs", "load_lab", "pack", "report", "write_report"]


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
    from grader.grading.engine import grade_submission
    from grader.grading.run import Run

    lab = lab if isinstance(lab, BoundLab) else load_lab(lab)
    with Run(lab, options.model_copy(update={"mode": Mode.check}), on_event=on_event) as run:
        return grade_submission(run, Path(path))


def grade(root: Path, lab: str | Path | BoundLab, out: Path, options: RunOptions = RunOptions(), *,
          on_event: EventSink = ignore, paths: list[Path] | None = None,
          executor: "Executor | None" = None) -> "BatchResult":
    """An instructor's batch: every check on every submission under ``root``, with a PDF report
    per submission and a class summary (rendered while grading goes on). The results and the
    class folder are hidden from every child."""
    from grader.grading.batch import grade_batch
    from grader.grading.run import Run

    lab = lab if isinstance(lab, BoundLab) else load_lab(lab)
    with Run(lab, options, on_event=on_event, hide=(Path(out), Path(root))) as run:
        return grade_batch(run, Path(root), Path(out), paths=paths, executor=executor)


def pack(lab: str | Path | BoundLab, folder: Path) -> "Edition":
    """The lab's student edition, written into ``folder``: what students self-check with."""
    from grader.edition import pack as write

    return write(lab if isinstance(lab, BoundLab) else load_lab(lab), Path(folder))


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
