"""``gradelab pack LAB --students DIR``: the lab as students receive it, without its solutions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grader.cli.common import console, user_errors


def pack(
    lab: Annotated[str, typer.Argument(help="Lab name (see `gradelab labs`) or lab folder.")],
    students: Annotated[Path, typer.Option(
        "--students", help="A new (or empty) folder to write the student edition into.")],
) -> None:
    """Write the lab's **student edition**: template, manifest, and what the public checks need that
    is not a solution (no reference answers, no reference implementation of what students write).

    Students run `gradelab check HAND_IN --lab DIR` on it. Checks that need a solution check the
    format of the hand-in there and are graded on hand-in; hidden checks are only named."""
    from grader import api

    with user_errors():
        edition = api.pack(lab, students)
    console.print(f"Student edition of {lab} in {edition.folder}/ ({len(edition.files)} files)", soft_wrap=True)
    console.print(f"  run as for you: {', '.join(edition.local) or 'none'}", soft_wrap=True)
    console.print(f"  format only, graded on hand-in: {', '.join(edition.on_hand_in) or 'none'}", soft_wrap=True)
    if edition.hidden:
        console.print(f"  hidden, named only: {', '.join(edition.hidden)}", soft_wrap=True)
    console.print(f"Students check with: gradelab check HAND_IN --lab {edition.folder}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("pack")(pack)
