"""Render reports while the batch is still grading: one background thread takes each result as
it is finished (grading mostly waits on sandboxed children, so the two overlap well)."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from grader.errors import ReportError
from grader.report.render import ReportRenderer
from grader.results import SubmissionResult
from grader.reveal import Audience

log = logging.getLogger(__name__)
CLASS_SUMMARY = "class-summary.pdf"


class ReportWriter:
    def __init__(self, folder: Path, *, html: bool = False, audience: Audience = Audience.instructor) -> None:
        self.folder = Path(folder)
        self.html = html
        self.audience = Audience.of(audience)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradelab-report")
        self._jobs: list[tuple[str, Future]] = []
        self.errors: list[str] = []
        self._renderer = self._pool.submit(ReportRenderer)  # fonts and CSS load while the first hand-in grades

    def submit(self, result: SubmissionResult, name: str, *, only_if_missing: bool = False) -> None:
        path = self.folder / f"{name}.pdf"
        if only_if_missing and path.exists():
            return
        self._jobs.append((path.name, self._pool.submit(self._write, result, path)))

    def _write(self, result: SubmissionResult, path: Path) -> Path:
        return self._renderer.result().write(result, path, self.audience, self.html)

    def abandon(self) -> None:
        """The batch was interrupted: reports not yet started are dropped (a rerun renders them)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def finish(self, results: list[SubmissionResult], lab_title: str) -> Path | None:
        """Wait for every report, then write the class summary. Render errors are collected,
        not raised: a report that fails must not lose the grades."""
        for name, job in self._jobs:
            try:
                job.result()
            except ReportError as exc:
                self.errors.append(str(exc))
            except Exception as exc:
                log.exception("report %s failed", name)
                self.errors.append(f"{name}: the report could not be rendered ({type(exc).__name__}: {exc})")
        self._pool.shutdown(wait=True)
        if not results:
            return None
        try:
            return self._renderer.result().write_class(results, lab_title, self.folder / CLASS_SUMMARY, html=self.html)
        except ReportError as exc:
            self.errors.append(str(exc))
        except Exception as exc:
            log.exception("class summary failed")
            self.errors.append(f"{CLASS_SUMMARY}: could not be rendered ({type(exc).__name__}: {exc})")
        return None
