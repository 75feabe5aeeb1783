"""``gradelab labs``: what can be graded, check by check; ``gradelab calibrate``.

Labs are read as data (manifests, bound to their kinds): listing them imports neither torch nor
the grading machinery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from grader.cli.common import CpuOpt, DataRootOpt, MemOpt, WallOpt, console, user_errors

if TYPE_CHECKING:
    from rich.table import Table

    from grader.checks.registry import BoundLab


def _lab_table(lab: BoundLab) -> Table:
    """Each check: id and title, kind, points, visibility, and what students see of it besides its
    verdict, named mistakes and hint."""
    from rich.table import Table

    from grader.reveal import disclosure_for

    m = lab.manifest
    edition = " — student edition" if m.edition == "students" else ""
    table = Table(title=f"{m.id} — {m.title} (v{m.version}){edition}", title_justify="left")
    table.add_column("check", overflow="fold")
    table.add_column("kind", overflow="fold")
    table.add_column("points", justify="right")
    table.add_column("visibility")
    table.add_column("students see", style="dim")
    for c in lab.checks:
        shows = ", ".join(r.value for r in disclosure_for(c).shows) or "no values"
        table.add_row(f"{c.spec.id}\n[dim]{c.spec.title}[/dim]", c.spec.kind, f"{c.spec.points:g}",
                      c.spec.visibility.value, shows if c.spec.visibility.value == "public" else "—")
    table.caption = f"{len(m.checks)} checks, {m.max_score:g} points"
    return table


def _hand_in(lab: BoundLab) -> str:
    """What a student hands in, and where to start from."""
    interface = lab.manifest.interface
    symbols = ", ".join(f"{s.name}({', '.join(s.params)})" for s in interface.symbols)
    sheet = f" and {interface.answers_file} ({len(interface.answers)} answers)" if interface.answers else ""
    template = lab.folder / lab.manifest.template
    start = f"; start from {template}/" if template.is_dir() else ""
    return f"Hand in {interface.module} ({symbols}){sheet}{start}"


def labs(
    lab: Annotated[str | None, typer.Argument(help="Show this lab only (a name or a lab folder).")] = None,
    kinds: Annotated[bool, typer.Option("--kinds", help="List the check kinds a manifest may use.")] = False,
    schema: Annotated[bool, typer.Option("--schema", help="Print the manifest's JSON Schema.")] = False,
) -> None:
    """List the labs with their checks, points, visibility and what students see of each."""
    from grader import api

    with user_errors():
        if schema:
            from grader.lab.manifest import LabManifest

            typer.echo(json.dumps(LabManifest.model_json_schema(), indent=2))
            return
        if kinds:
            from rich.table import Table

            from grader.checks.registry import registered_kinds

            table = Table(title="Check kinds")
            table.add_column("kind")
            table.add_column("what it checks")
            table.add_column("students see by default", style="dim")
            for name, kind in registered_kinds().items():
                table.add_row(name, kind.summary, ", ".join(r.value for r in kind.disclosure.shows) or "no values")
            console.print(table)
            return
        for bound in [api.load_lab(lab)] if lab else api.labs():
            console.print(_lab_table(bound))
            if lab:
                console.print(_hand_in(bound), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("labs")(labs)
    app.command("calibrate")(calibrate)


def calibrate(
    lab: Annotated[str, typer.Argument(help="Lab name or folder.")],
    budget: Annotated[list[str], typer.Option("--budget", help="Budget(s) to calibrate (repeat); default: the device's (gpu or cpu).")] = [],  # noqa: B006  (Typer reads the default list; nothing mutates it)
    margin: Annotated[float, typer.Option("--margin", help="How far below the reference's accuracy the threshold sits.")] = 0.2,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[list[int], typer.Option(
        "--seed", help="Seed(s) the reference trains with (repeat): each threshold and limit is set from the worst "
                       "of them.")] = [0],  # noqa: B006  (Typer reads the default list; nothing mutates it)
    only: Annotated[list[str], typer.Option(
        "--only", help="Calibrate only this training check (repeat); the others keep their thresholds.")] = [],  # noqa: B006  (Typer reads the default list; nothing mutates it)
    against: Annotated[list[Path], typer.Option(
        "--against", help="A hand-in known to be broken (repeat): trained under the same budget, and each "
                          "threshold says whether it would let it through.")] = [],  # noqa: B006  (Typer reads the default list; nothing mutates it)
    wall: WallOpt = None, cpu: CpuOpt = None, memory: MemOpt = None,
    data_root: DataRootOpt = None,
) -> None:
    """Train the lab's reference under each budget asked for (--budget; default: this machine's,
    gpu or cpu) and write the thresholds to its calibration.yaml.

    With --against, also train known-broken hand-ins (frozen layers, no ReLU, ...) and show which
    thresholds reject them: a threshold that lets one through needs a bigger budget, other data or
    a structural check.

    With --data-root, the reference trains on that data (real CIFAR-10, say) and the thresholds are
    recorded for it beside the bundled data's: grading with the same --data-root then uses them."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from grader import api
    from grader.calibrate import calibrate as run
    from grader.cli.common import err_console, run_options
    from grader.grading.run import resolve_device
    from grader.options import Budget, Device

    with user_errors():
        asked: list[str | None] = [*budget] or [None]
        options = [run_options(device=device, seed=seed[0], wall=wall, cpu=cpu, memory=memory, data_root=data_root,
                               budget=b)  # the options `gradelab grade` takes for the same run
                   for b in asked]
        lab_obj = api.load_lab(lab)
        device_ = options[0].device
        budgets = [o.budget for o in options if o.budget] or [
            Budget.gpu if resolve_device(device_) == Device.cuda else Budget.cpu]
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err_console, transient=True) as progress:
            task = progress.add_task("training the reference", total=None)
            rows = run(lab_obj, budgets, margin=margin, device=device_, seeds=seed, against=against, only=only,
                       data_root=data_root, options=options[0],
                       on_check=lambda what: progress.update(task, description=f"trained {what}"))
    table = Table(title=f"{lab_obj.id}: calibrated thresholds ({lab_obj.folder / 'calibration.yaml'})")
    early = any(r.early_stop for r in rows)
    for col in ("check", "budget", "data", "reference accuracy", "threshold", "tells learning from chance",
                *(["stopping early"] if early else [])):
        table.add_column(col)
    for r in rows:
        table.add_row(r.check, r.budget, r.data, f"{r.reference_accuracy:.1%}", f"{r.threshold:.0%}",
                      "yes" if r.discriminates else "[yellow]no: a smoke budget, or too small[/yellow]",
                      *([_early_cell(r.early_stop)] if early else []))
    console.print(table)
    banded = [r for r in rows if "max_level_ratio" in r.extras]
    if banded:
        console.print(_band_table(banded))
    if against:
        console.print(_against_table(rows))


def _early_cell(early: dict | None) -> str:
    """How often stopping early changed a verdict, and how much of the budget the runs used."""
    if not early:
        return "no rule"
    changed = early["verdict_changes"]
    colour = "green" if changed == 0 else "yellow"
    from rich.markup import escape

    which = f" ({escape('; '.join(early['changed']))})" if early.get("changed") else ""
    return (f"[{colour}]{changed} of {early['runs']} verdicts changed{which}[/{colour}]; "
            f"{early['mean_share_of_budget']:.0%} of the budget used")


def _band_table(rows) -> Table:
    """The loss-band limits of training_comparison checks: the reference's ratios and what passes."""
    from rich.table import Table

    table = Table(title="Loss bands across learning rates: improved model / baseline (the reference's ratio, "
                        "and the limit a hand-in must stay under)")
    for col in ("check", "budget", "level ratio", "level limit", "width ratio", "width limit"):
        table.add_column(col)

    def cell(x: dict, key: str, value: str) -> str:
        return value if x.get(f"judge_{key}", True) else f"[yellow]{value} (not judged)[/yellow]"

    for r in rows:
        x = r.extras
        table.add_row(r.check, r.budget, f"{x['reference_level_ratio']:.2f}", cell(x, "level", f"{x['max_level_ratio']:.2f}"),
                      f"{x['reference_width_ratio']:.2f}", cell(x, "width", f"{x['max_width_ratio']:.2f}"))
    if not all(r.extras.get("shows_comparison") for r in rows):
        table.caption = ("not judged: under that budget the reference's own band is not lower (narrower) under every "
                         "seed, so a hand-in is not asked for it")
    return table


def _against_table(rows) -> Table:
    """One row per threshold and broken hand-in: its accuracy, and whether the threshold rejects it."""
    from rich.table import Table

    table = Table(title="Known-broken hand-ins against the thresholds (test accuracy under the same budget)")
    for col in ("check", "budget", "threshold", "hand-in", "accuracy", "verdict"):
        table.add_column(col, overflow="fold")  # a name cut short with … cannot be found again
    passing = total = 0
    caught: dict[str, list[str]] = {}
    passed: dict[str, list[str]] = {}
    # per hand-in, the same on every row (each is graded once without training)
    without = {name: ids for r in rows for name, ids in r.caught_without_training.items()}
    for r in rows:
        for i, (name, acc) in enumerate(r.against.items()):
            passes, same = name in r.let_through, name in r.unaffected
            caught.setdefault(name, [])
            passed.setdefault(name, [])
            where = f"{r.check} ({r.budget})"
            if passes:
                passed[name].append(where)
            elif not same:
                caught[name].append(where)
            total += not same
            passing += passes
            verdict = ("trains as the reference (its flaw is in another network)" if same
                       else "[yellow]passes[/yellow]" if passes else "[green]rejected[/green]")
            table.add_row(r.check if i == 0 else "", r.budget if i == 0 else "", f"{r.threshold:.0%}" if i == 0 else "",
                          name, "did not train" if acc is None else f"{acc:.1%}", verdict,
                          end_section=i == len(r.against) - 1)

    def said(name: str) -> str:
        also = f"; without training by {', '.join(without[name])}" if without.get(name) else ""
        if caught[name]:
            return f"{name}: caught by {', '.join(caught[name])}{also}"
        if passed[name]:
            return f"{name}: caught by no training check{also}"
        return f"{name}: trains as the reference on every check calibrated{also}"

    missed = [name for name in caught if not caught[name] and passed[name] and not without.get(name)]
    summary = "; ".join(said(name) for name in caught)
    table.caption = (f"{passing} of {total} pass where their flaw is: on this data and budget, those thresholds alone "
                     "do not catch the hand-in; a structural check must." if passing
                     else "every threshold rejects every broken hand-in whose flaw is in its network.") + (
                     f" {summary}." if summary else "") + (f" Caught by no check: {', '.join(missed)}." if missed else "")
    return table
