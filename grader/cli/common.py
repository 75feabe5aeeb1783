"""Pieces shared by the command modules: error handling, limit options, result tables."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.errors import GradelabError
from grader.lab.manifest import LimitsOverride
from grader.options import RunOptions
from grader.results import Status, SubmissionResult

console = Console()
err_console = Console(stderr=True)

STATUS_STYLE = {
    Status.passed: "green", Status.partial: "yellow", Status.failed: "red",
    Status.error: "bold red", Status.timeout: "magenta", Status.skipped: "dim",
}


@contextmanager
def user_errors() -> Iterator[None]:
    """A GradelabError is one line on stderr and an exit code, never a traceback."""
    try:
        yield
    except GradelabError as exc:
        err_console.print(Text(exc.one_line(), style="red"), soft_wrap=True)  # one line, however long
        raise typer.Exit(exc.exit_code) from None


WallOpt = Annotated[Optional[float], typer.Option("--wall-time", help="Wall-clock seconds per check (overrides the lab).")]
CpuOpt = Annotated[Optional[float], typer.Option("--cpu-time", help="CPU seconds per check (overrides the lab).")]
MemOpt = Annotated[Optional[int], typer.Option("--memory-mb", help="Memory per check, MiB (overrides the lab).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for every random draw; recorded in the result.")]
DataRootOpt = Annotated[Optional[Path], typer.Option(
    "--data-root", help="Folder holding the real data sets in torchvision's layout (e.g. MNIST/raw, "
                        "cifar-10-batches-py). Without it, labs use the data gradelab ships or generates.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Where training checks run: auto (the GPU if torch sees one), cpu or cuda.")]
BudgetOpt = Annotated[Optional[str], typer.Option(
    "--budget", help="Training budget declared by the lab: cpu, gpu or smoke; default: gpu on a GPU, else cpu.")]
LabOpt = Annotated[str, typer.Option("--lab", "-l", help="Lab name (see `gradelab labs`) or path to a lab folder.")]


def limits_override(wall: float | None, cpu: float | None, memory: int | None) -> LimitsOverride | None:
    if wall is None and cpu is None and memory is None:
        return None
    return LimitsOverride(wall_s=wall, cpu_s=cpu, memory_mb=memory)


def run_options(*, wall: float | None = None, cpu: float | None = None, memory: int | None = None,
                **values: object) -> RunOptions:
    """The run's options from the command line, validated at once: a value that is not accepted is
    one line naming the option (``UsageError``, exit status 2), before anything is graded."""
    limits = {k: v for k, v in {"wall_s": wall, "cpu_s": cpu, "memory_mb": memory}.items() if v is not None}
    return RunOptions.from_user(limits=limits or None, **values)


def status_text(status: Status) -> Text:
    return Text(status.value, style=STATUS_STYLE[status])


def result_table(result: SubmissionResult) -> Table:
    table = Table(title=f"{result.lab_title} — {result.submission}", show_lines=True, expand=True)
    table.add_column("Check", ratio=3)
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Message", ratio=6)
    for c in result.checks:
        message = Text(c.message)
        if c.hint:
            message.append(f"\nHint: {c.hint}", style="italic cyan")
        table.add_row(c.title, f"{c.score:g}/{c.max_score:g}", status_text(c.status), message)
    return table


def total_line(result: SubmissionResult) -> Text:
    style = "green" if result.score == result.max_score else "yellow" if result.score else "red"
    return Text(f"Total: {result.score:g} / {result.max_score:g} ({result.percent:.0f} %)", style=f"bold {style}")
