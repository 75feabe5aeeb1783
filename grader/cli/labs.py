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
    app.command("calibrate")(calibrate)


def calibrate(
    lab: Annotated[str, typer.Argument(help="Lab name or folder.")],
    budget: Annotated[list[str], typer.Option("--budget", help="Budget(s) to calibrate (repeat); default: the device's (gpu or cpu).")] = [],  # noqa: B006
    margin: Annotated[float, typer.Option("--margin", help="How far below the reference's accuracy the threshold sits.")] = 0.2,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Train the lab's reference under each budget and write the thresholds to its calibration.yaml."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from grader.calibrate import calibrate as run
    from grader.cli.common import err_console
    from grader.grading.engine import resolve_device

    with user_errors():
        lab_obj = api.load_lab(lab)
        budgets = budget or ["gpu" if resolve_device(device) == "cuda" else "cpu"]
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err_console, transient=True) as progress:
            task = progress.add_task("training the reference", total=None)
            rows = run(lab_obj, budgets, margin=margin, device=device, seed=seed,
                       on_check=lambda what: progress.update(task, description=f"trained {what}"))
    table = Table(title=f"{lab_obj.id}: calibrated thresholds ({lab_obj.folder / 'calibration.yaml'})")
    for col in ("check", "budget", "reference accuracy", "threshold", "tells learning from chance"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.check, r.budget, f"{r.reference_accuracy:.1%}", f"{r.threshold:.0%}",
                      "yes" if r.discriminates else "[yellow]no: a smoke budget, or too small[/yellow]")
    console.print(table)
