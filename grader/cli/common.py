"""Pieces shared by the command modules: error handling, option declarations, consoles.

Kept light on purpose: every command module imports it when the CLI starts, so it imports
typer and rich only; whatever a command needs to do its work is imported in the command's body
(``--help``, ``labs`` and ``pack`` answer without importing torch).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from grader.errors import GradelabError

if TYPE_CHECKING:
    from grader.options import RunOptions

console = Console()
err_console = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """A GradelabError is one line on stderr and an exit code, never a traceback."""
    try:
        yield
    except GradelabError as exc:
        err_console.print(Text(exc.one_line(), style="red"), soft_wrap=True)  # one line, however long
        raise typer.Exit(exc.exit_code) from None


WallOpt = Annotated[float | None, typer.Option("--wall-time", help="Wall-clock seconds per check (overrides the lab).")]
CpuOpt = Annotated[float | None, typer.Option("--cpu-time", help="CPU seconds per check (overrides the lab).")]
MemOpt = Annotated[int | None, typer.Option("--memory-mb", help="Memory per check, MiB (overrides the lab).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for every random draw; recorded in the result.")]
DataRootOpt = Annotated[Path | None, typer.Option(
    "--data-root", help="Folder holding the real data sets in torchvision's layout (e.g. MNIST/raw, "
                        "cifar-10-batches-py). Without it, labs use the data gradelab ships or generates.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Where training checks run: auto (the GPU if torch sees one), cpu or cuda.")]
BudgetOpt = Annotated[str | None, typer.Option(
    "--budget", help="Training budget declared by the lab: cpu, gpu or smoke; default: gpu on a GPU, else cpu.")]
LabOpt = Annotated[str, typer.Option(
    "--lab", "-l", help="Lab name (see `gradelab labs`) or path to a lab folder: the course's own, with its "
                        "reference (a student edition made by `gradelab pack` cannot grade).")]
CheckLabOpt = Annotated[str, typer.Option(
    "--lab", "-l", help="Lab name (see `gradelab labs`) or path to a lab folder (the student edition you were "
                        "given too).")]
FullBudgetOpt = Annotated[bool, typer.Option(
    "--full-budget", help="Train each training check for its whole budget, even once its verdict is certain "
                          "(by default a check stops as soon as the lab's early-stopping rule decides).")]


def run_options(*, wall: float | None = None, cpu: float | None = None, memory: int | None = None,
                **values: object) -> RunOptions:
    """The run's options from the command line, validated at once: a value that is not accepted is
    one line naming the option (``UsageError``, exit status 2), before anything is graded."""
    from grader.options import RunOptions

    limits = {k: v for k, v in {"wall_s": wall, "cpu_s": cpu, "memory_mb": memory}.items() if v is not None}
    return RunOptions.from_user(limits=limits or None, **values)
