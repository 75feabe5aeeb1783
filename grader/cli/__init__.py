"""The ``gradelab`` command: a thin layer over ``grader.api``; one command group per module."""

from __future__ import annotations

import logging
import signal

import typer

app = typer.Typer(
    name="gradelab",
    help="Grade deep-learning lab hand-ins and explain what is wrong.\n\n"
         "Students: `gradelab check PATH --lab LAB` before handing in. "
         "Instructors: `gradelab grade DIR --lab LAB --out OUT` for a whole class (a folder, or a Moodle or "
         "Canvas download), `gradelab export OUT --to moodle|canvas|gradescope|csv` for the LMS.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode="markdown",
)

from grader.cli import data as _data, grade as _grade, labs as _labs, lms as _lms, report as _report  # noqa: E402

_labs.register(app)
_grade.register(app)
_report.register(app)
_data.register(app)
_lms.register(app)


def _terminate(signum: int, _frame: object) -> None:
    # Unwind like Ctrl-C: the running check's child, cgroup and working directory are cleaned up,
    # and every result already written stays (`grade` resumes where it stopped).
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # WeasyPrint repeats its font-subsetting advice for every face of every PDF; the README says it once.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    app()
