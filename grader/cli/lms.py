"""``gradelab init`` (a lab's template for a student), ``gradelab export`` (grades in the form an
LMS imports), ``gradelab gradescope`` (an autograder bundle) and ``gradelab autograde`` (what the
bundle runs inside Gradescope)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from grader import api
from grader.atomic import write_atomic
from grader.cli.common import LabOpt, console, err_console, user_errors


def init(
    lab: Annotated[str, typer.Argument(help="Lab name (see `gradelab labs`) or path to a lab folder.")],
    target: Annotated[Path, typer.Argument(help="Folder to write the template into (created).")],
    notebook: Annotated[bool, typer.Option("--notebook", help="Write the template as one Jupyter notebook.")] = False,
) -> None:
    """Write a lab's starting files for a student (its module and answer sheet, or a notebook)."""
    with user_errors():
        written = api.init(lab, target, notebook=notebook)
    for path in written:
        console.print(f"Wrote {path}", soft_wrap=True)


def export(
    out: Annotated[Path, typer.Argument(help="The results folder of `gradelab grade` (its --out).")],
    to: Annotated[str, typer.Option("--to", help="moodle (grading worksheet), canvas (gradebook import), "
                                                 "gradescope (results.json per submission) or csv.")],
    template: Annotated[Path | None, typer.Option(
        "--template", help="The worksheet (Moodle) or gradebook (Canvas) downloaded from the LMS: its columns "
                           "and rows are kept, grades and comments filled in.")] = None,
    assignment: Annotated[str | None, typer.Option(
        "--assignment", help="Canvas: the gradebook column to fill, by title or id (or, without --template, the "
                             "column's header, e.g. 'Lab 2 (12345)').")] = None,
    dest: Annotated[Path | None, typer.Option(
        "--file", help="Where to write (default: OUT/export/…). For gradescope, a folder.")] = None,
    lab: Annotated[str | None, typer.Option(
        "--lab", help="The lab, by name or folder, when the results' own cannot be found (a lab of your own).")] = None,
    partial: Annotated[bool, typer.Option(
        "--partial", help="Export although points are pending (written answers awaiting review, checks not run): "
                          "they count as not yet earned, and each row says so. Without it, such a class is refused.")
    ] = False,
) -> None:
    """Write the grades of a graded class in the form an LMS imports.

    Feedback comments name each check not passed, its points and the lab's hint, never an
    expected value."""
    with user_errors():
        files, warnings = api.export(out, to, template=template, assignment=assignment, partial=partial, lab=lab)
        written = []
        for name, data in files.items():
            if dest is None:
                path = out / "export" / name
            elif len(files) == 1:
                path = dest
            else:
                path = dest / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
            written.append(path)
    for warning in warnings:
        err_console.print(Text(f"Warning: {warning}", style="yellow"), soft_wrap=True)
    shown = written[0] if len(written) == 1 else f"{len(written)} files under {(dest or out / 'export')}"
    console.print(f"Exported {to}: {shown}", soft_wrap=True)


def gradescope(
    lab: Annotated[str, typer.Argument(help="Lab name (see `gradelab labs`) or path to a lab folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The autograder zip to write.")] = Path("autograder.zip"),
) -> None:
    """Write a Gradescope autograder bundle (setup.sh, run_autograder, gradelab and the lab)."""
    with user_errors():
        data = api.gradescope_bundle(lab)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, data)
    console.print(f"Autograder: {out} ({len(data) / 1024:.0f} KiB): upload it as the assignment's autograder",
                  soft_wrap=True)


def autograde(
    lab: LabOpt,
    root: Annotated[Path, typer.Option("--root", help="Gradescope's folder (submission/ in, results/ out).")] = Path(
        "/autograder"),
) -> None:
    """Grade a Gradescope submission (what the bundle's run_autograder runs)."""
    with user_errors():
        written = api.autograde(lab, root)
    console.print(f"Results: {written}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("export")(export)
    app.command("gradescope")(gradescope)
    app.command("autograde", hidden=True)(autograde)
