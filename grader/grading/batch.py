"""Grade a whole class folder. Each result is written atomically as soon as it is known, so an
interrupted batch keeps what it finished and a rerun skips it (unless forced)."""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from grader.errors import GradelabError, LabError
from grader.grading.engine import Mode, grade_submission
from grader.lab.loader import Lab
from grader.lab.manifest import LimitsOverride
from grader.results import CheckResult, Status, SubmissionResult
import grader
from grader.submission import discover_submissions, safe_name

log = logging.getLogger(__name__)
CLASS_CSV = "class.csv"
REPORTS_DIR = "reports"


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def _unreadable(lab: Lab, path: Path, name: str, mode: Mode, error: GradelabError) -> SubmissionResult:
    check = CheckResult(id="submission", title="Submission can be read", kind="submission",
                        visibility="public", status=Status.error, score=0, max_score=0,
                        message=str(error))
    return SubmissionResult(submission=name, path=str(path), lab=lab.id, lab_title=lab.manifest.title,
                            lab_version=lab.manifest.version, grader_version=grader.__version__,
                            mode=mode, limits=lab.manifest.limits, checks=[check],
                            max_score=lab.manifest.max_score)


def class_csv(lab: Lab, results: list[SubmissionResult]) -> str:
    check_ids = [c.spec.id for c in lab.checks]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["submission", "score", "max_score", "percent", *check_ids])
    for r in sorted(results, key=lambda r: r.submission):
        by_id = {c.id: c for c in r.checks}
        writer.writerow([r.submission, f"{r.score:g}", f"{r.max_score:g}", f"{r.percent:.1f}",
                         *[f"{by_id[i].score:g}" if i in by_id else "" for i in check_ids]])
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


def grade_batch(lab: Lab, root: Path, out: Path, *, force: bool = False, mode: Mode = "grade",
                seed: int = 0, limits: LimitsOverride | None = None, data_root: Path | None = None,
                train: bool | None = None, device: str = "auto", budget: str | None = None,
                on_start: Callable[[str], None] | None = None,
                on_done: Callable[[SubmissionResult, bool], None] | None = None,
                paths: list[Path] | None = None, reports: bool = False, html: bool = False,
                on_progress: Callable[[str, int, int, float], None] | None = None) -> BatchResult:
    """Grade every submission; with ``reports``, PDFs are rendered alongside, in ``out/reports``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = paths if paths is not None else discover_submissions(Path(root))
    batch = BatchResult(out=out)
    writer = None
    if reports:
        from grader.report.writer import ReportWriter

        writer = ReportWriter(out / REPORTS_DIR, html=html)
    for path, name in result_names(paths).items():
        target = out / f"{name}.json"
        result = None
        if target.exists() and not force:
            try:
                result = SubmissionResult.model_validate_json(target.read_text(encoding="utf-8"))
            except (ValidationError, OSError):
                log.warning("%s is unreadable; grading %s again", target, name)
        skipped = result is not None
        if result is None:
            if on_start:
                on_start(name)
            try:
                result = grade_submission(lab, path, mode=mode, seed=seed, limits=limits, data_root=data_root,
                                          train=train, device=device, budget=budget, on_progress=on_progress,
                                          hide=[out, Path(root)])  # results and the class stay out of sight
            except LabError:
                raise  # the lab (or its data) is broken: say so once, not once per submission
            except GradelabError as exc:
                result = _unreadable(lab, path, name, mode, exc)
            result.submission = name
            write_atomic(target, result.to_json())
            batch.graded.append(name)
        else:
            batch.skipped.append(name)
        batch.results.append(result)
        write_atomic(out / CLASS_CSV, class_csv(lab, batch.results))
        if writer:
            writer.submit(result, name, only_if_missing=skipped)
        if on_done:
            on_done(result, skipped)
    if writer:
        batch.class_summary = writer.finish(batch.results, lab.manifest.title)
        batch.report_errors = writer.errors
    return batch
