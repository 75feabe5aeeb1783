"""Render reports while the batch is still grading: one background thread takes each result as
it is finished (grading mostly waits on sandboxed children, so the two overlap well).

Each reader gets a folder of their own, so that what goes to students is never the instructor's
copy: ``students/`` holds each student's report (the student's view: no expected values, no
hidden check), ``instructor/`` the instructor's (everything), and the class summary, which is the
instructor's, sits beside them."""

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
FOLDERS = {Audience.student: "students", Audience.instructor: "instructor"}


class ReportWriter:
    def __init__(self, folder: Path, *, html: bool = False,
                 audiences: tuple[Audience, ...] = (Audience.student, Audience.instructor)) -> None:
        self.folder = Path(folder)
        self.html = html
        self.audiences = tuple(dict.fromkeys(Audience.of(a) for a in audiences))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradelab-report")
        self._jobs: list[tuple[str, Future]] = []
        self.errors: list[str] = []
        self._renderer = self._pool.submit(ReportRenderer)  # fonts and CSS load while the first hand-in grades

    def path(self, name: str, audience: Audience) -> Path:
        """Where ``name``'s report for ``audience`` goes."""
        return self.folder / FOLDERS[audience] / f"{name}.pdf"

    def submit(self, result: SubmissionResult, name: str, *, only_if_missing: bool = False) -> None:
        for audience in self.audiences:
            path = self.path(name, audience)
            if only_if_missing and path.exists():
                continue
            self._jobs.append((f"{FOLDERS[audience]}/{path.name}", self._pool.submit(self._write, result, path,
                                                                                     audience)))

    def _write(self, result: SubmissionResult, path: Path, audience: Audience) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return self._renderer.result().write(result, path, audience, self.html)

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
