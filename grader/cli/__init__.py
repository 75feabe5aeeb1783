"""The ``gradelab`` command: a thin layer over ``grader.api``; one command group per module.

Command modules import typer and rich only; each command imports what it needs when it runs, so
that ``--help`` and ``labs`` answer in a fraction of a second (``bench.startup`` measures it)."""

from __future__ import annotations

import logging

import typer

from grader import interrupts

app = typer.Typer(
    name="gradelab",
    help="Grade deep-learning lab hand-ins and explain what is wrong.\n\n"
         "Students: `gradelab check PATH --lab LAB` before handing in. "
         "Instructors: `gradelab grade DIR --lab LAB --out OUT` for a whole class (a folder, or a Moodle or "
         "Canvas download), `gradelab export OUT --to moodle|canvas|gradescope|csv` for the LMS, "
         "`gradelab pack LAB --students DIR` for what students receive, "
         "`gradelab serve --lab LAB --class DIR --roster roster.csv` for a hand-in server.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode="markdown",
)

from grader.cli import data as _data
from grader.cli import grade as _grade
from grader.cli import labs as _labs
from grader.cli import lms as _lms
from grader.cli import lti as _lti
from grader.cli import pack as _pack
from grader.cli import report as _report
from grader.cli import serve as _serve
from grader.cli import similarity as _similarity

_labs.register(app)
_grade.register(app)
_pack.register(app)
_report.register(app)
_data.register(app)
_lms.register(app)
_serve.register(app)
_lti.register_commands(app)
_similarity.register(app)


def main() -> None:
    interrupts.install()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # WeasyPrint repeats its font-subsetting advice for every face of every PDF; docs/instructors.md says it once.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    app()
