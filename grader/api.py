"""What the CLI calls. Each function here is one user-visible action; the CLI only formats."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from grader.grading.batch import BatchResult, grade_batch
from grader.grading.engine import Mode, grade_submission
from grader.lab.loader import Lab, find_labs, load_lab
from grader.lab.manifest import LimitsOverride
from grader.results import CheckResult, SubmissionResult  # noqa: F401

__all__ = ["Lab", "check", "grade", "labs", "load_lab"]


def labs() -> list[Lab]:
    return find_labs()


def check(path: Path, lab: str | Path, *, seed: int = 0, limits: LimitsOverride | None = None,
          data_root: Path | None = None, only: list[str] | None = None, train: bool = False,
          device: str = "auto", budget: str | None = None,
          on_check: Callable[[CheckResult], None] | None = None,
          on_progress: Callable[[str, int, int, float], None] | None = None) -> SubmissionResult:
    """A student's self-check: the public checks only (or the named ones among them); training
    checks only with ``train``."""
    return grade_submission(load_lab(lab), Path(path), mode="check", seed=seed, limits=limits,
                            data_root=data_root, only=only, train=train, device=device, budget=budget,
                            on_check=on_check, on_progress=on_progress)


def grade(root: Path, lab: str | Path, out: Path, *, force: bool = False, seed: int = 0,
          limits: LimitsOverride | None = None, mode: Mode = "grade", data_root: Path | None = None,
          train: bool | None = None, device: str = "auto", budget: str | None = None,
          on_start: Callable[[str], None] | None = None,
          on_done: Callable[[SubmissionResult, bool], None] | None = None,
          paths: list[Path] | None = None, reports: bool = True, html: bool = False,
          on_progress: Callable[[str, int, int, float], None] | None = None) -> BatchResult:
    """An instructor's batch: every check on every submission under ``root``, with a PDF report
    per submission and a class summary (rendered while grading goes on)."""
    return grade_batch(load_lab(lab), Path(root), Path(out), force=force, mode=mode, seed=seed,
                       limits=limits, data_root=data_root, train=train, device=device, budget=budget,
                       on_start=on_start, on_done=on_done, paths=paths,
                       reports=reports, html=html, on_progress=on_progress)


def report(result_json: Path, out: Path, *, audience: str = "instructor", html: bool = False) -> Path:
    """Render a report from a result JSON written earlier."""
    from grader.errors import ReportError
    from grader.report import renderer

    try:
        result = SubmissionResult.model_validate_json(Path(result_json).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{result_json}: not a gradelab result ({type(exc).__name__})") from None
    return renderer().write(result, Path(out), audience, html)


def write_report(result: SubmissionResult, out: Path, *, audience: str = "student", html: bool = False) -> Path:
    from grader.report import renderer

    return renderer().write(result, Path(out), audience, html)
