"""``gradelab report``: render a report from a result JSON written by ``grade`` or ``check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grader.cli.common import console, user_errors


def report(
    result: Annotated[Path, typer.Argument(help="A result JSON (from `gradelab grade` or `check --format json`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The PDF to write.")],
    student: Annotated[bool, typer.Option(
        "--student", help="As the student sees it: public checks only, no reference answers.")] = False,
    html: Annotated[bool, typer.Option("--html", help="Also write the report as HTML beside the PDF.")] = False,
) -> None:
    """Render the feedback report of one graded submission."""
    from grader import api
    from grader.reveal import Audience

    with user_errors():
        written = api.report(result, out, audience=Audience.student if student else Audience.instructor, html=html)
    console.print(f"Report: {written}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
