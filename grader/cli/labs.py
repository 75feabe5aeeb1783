"""``gradelab labs``: what can be graded, check by check."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from grader import api
from grader.checks.registry import registered_kinds
from grader.cli.common import console, user_errors
from grader.lab.manifest import LabManifest


def labs(
    kinds: Annotated[bool, typer.Option("--kinds", help="List the check kinds a manifest may use.")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="Print the manifest's JSON Schema.")] = False,
) -> None:
    """List the labs with their checks, points and visibility."""
    with user_errors():
        if schema:
            typer.echo(json.dumps(LabManifest.model_json_schema(), indent=2))
            return
        if kinds:
            table = Table(title="Check kinds")
            table.add_column("kind")
            table.add_column("what it checks")
            for name, kind in registered_kinds().items():
                table.add_row(name, kind.summary)
            console.print(table)
            return
        for lab in api.labs():
            m = lab.manifest
            table = Table(title=f"{m.id} — {m.title} (v{m.version})", title_justify="left")
            table.add_column("check")
            table.add_column("kind")
            table.add_column("points", justify="right")
            table.add_column("visibility")
            for c in m.checks:
                table.add_row(f"{c.id}\n[dim]{c.title}[/dim]", c.kind, f"{c.points:g}", c.visibility.value)
            table.caption = f"{len(m.checks)} checks, {m.max_score:g} points"
            console.print(table)


def register(app: typer.Typer) -> None:
    app.command("labs")(labs)
