"""``gradelab similarity``: pairs of hand-ins of a graded class to look at together."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from grader.cli.common import console, err_console, user_errors

if TYPE_CHECKING:
    from grader.similarity.ranking import SimilarityReport


def show(report: SimilarityReport, out: Path) -> None:
    """The ranked pairs as a table, and where the evidence is."""
    from rich.table import Table
    from rich.text import Text

    from grader.similarity.view import FOLDER, HTML_FILE

    table = Table(title=f"{report.lab_title}: hand-ins to look at together (instructors only)")
    table.add_column("#", justify="right")
    table.add_column("hand-ins")
    table.add_column("score", justify="right")
    table.add_column("code", justify="right")
    table.add_column("answers", justify="right")
    table.add_column("written", justify="right")
    table.add_column("why")
    for rank, p in enumerate(report.similar, 1):
        other = p.student_b + (f" ({p.group_b})" if p.group_b != "class" else "")
        table.add_row(str(rank), Text(f"{p.student_a}\n{other}"), f"{p.score:.2f}", f"{p.code:.2f}",
                      f"{p.answers:.2f}", f"{p.written:.2f}", Text(p.reason))
    console.print(table)
    console.print(f"{len(report.similar)} pair(s) at or above {report.settings.threshold:.2f} among "
                  f"{report.compared} hand-ins" + (f" and {report.against} of earlier classes" if report.against else "")
                  + f" ({report.seconds:.1f} s). Side by side: {out / FOLDER / HTML_FILE}", soft_wrap=True)
    for note in report.notes:
        err_console.print(Text(f"Note: {note}", style="yellow"), soft_wrap=True)


def similarity(
    out: Annotated[Path, typer.Argument(help="The results folder of `gradelab grade` (its --out).")],
    lab: Annotated[str | None, typer.Option("--lab", "-l", help="The lab (default: the results' own).")] = None,
    root: Annotated[Path | None, typer.Option(
        "--class", help="The class that was graded (default: where the results say its hand-ins were).")] = None,
    boilerplate: Annotated[list[Path] | None, typer.Option(
        "--boilerplate", help="A folder of code handed out besides the template (repeat for several): "
                              "subtracted like the template.")] = None,
    against: Annotated[list[Path] | None, typer.Option(
        "--against", help="An earlier year's class (a folder or LMS download; repeat for several): its "
                          "hand-ins are compared with this class's.")] = None,
    layout: Annotated[str, typer.Option("--layout", help="How --class and --against are laid out "
                                                         "(auto, moodle, canvas, folders).")] = "auto",
) -> None:
    """List pairs of hand-ins that are similar beyond the template: code, answer sheet, written answers.

    Writes OUT/similarity/ (similarity.csv, ranked; similarity.json; similarity.html, with the
    matched code side by side) and adds a page to the class summary PDF. Nothing a student sees
    mentions it."""
    from grader import api

    with user_errors():
        report = api.similarity(out, lab, root=root, layout=layout, boilerplate=tuple(boilerplate or ()),
                                against=tuple(against or ()))
    show(report, out)


def register(app: typer.Typer) -> None:
    app.command("similarity")(similarity)
