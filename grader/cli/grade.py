"""``gradelab check`` (a student's self-check), ``gradelab grade`` (a class), ``gradelab demo``.

The grading machinery (and torch, through it) is imported in the commands' bodies: ``--help``
answers at once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from grader.cli.common import (
    BudgetOpt,
    CheckLabOpt,
    CpuOpt,
    DataRootOpt,
    DeviceOpt,
    FullBudgetOpt,
    LabOpt,
    MemOpt,
    SeedOpt,
    WallOpt,
    console,
    err_console,
    run_options,
    user_errors,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from grader.checks.registry import BoundLab
    from grader.grading.batch import BatchResult
    from grader.options import RunOptions, TrainingProgress

UNGRADABLE_EXIT = 3
LayoutOpt = Annotated[str, typer.Option(
    "--layout", help="How ROOT is laid out: auto (recognise Moodle's and Canvas's downloads, else folders), "
                     "moodle, canvas, or folders (one sub-folder, .py file, notebook or archive per student).")]


def check(
    path: Annotated[Path, typer.Argument(help="Your submission: a folder, a .py file, a notebook (.ipynb) or an "
                                              "archive (.zip, .tar, .tar.gz).")],
    lab: CheckLabOpt,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Also write your feedback report to this PDF file.")] = None,
    html: Annotated[bool, typer.Option("--html", help="With --pdf, also write the report as HTML beside it.")] = False,
    seed: SeedOpt = 0,
    wall: WallOpt = None, cpu: CpuOpt = None, memory: MemOpt = None,
    data_root: DataRootOpt = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Run only this check (repeat for several); ids as in `gradelab labs`.")] = None,
    train: Annotated[bool, typer.Option("--train/--no-train", help="Also run the training checks (minutes).")] = False,
    device: DeviceOpt = "auto", budget: BudgetOpt = None, full_budget: FullBudgetOpt = False,
) -> None:
    """Self-check a submission against the lab's **public** checks.

    You see each check's verdict, the mistake it recognised and the hint, your own values and the
    input a check failed on; never the reference answers. Exit status 0 only if every public check
    passes and every written question has an answer; 2 when --only names only checks your
    instructor grades (nothing to run).
    """
    if output_format not in ("table", "json"):
        raise typer.BadParameter("use 'table' or 'json'", param_hint="--format")
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
    )

    from grader import api
    from grader.cli.feedback import student_report
    from grader.grading.selection import hidden_requested, selected_checks
    from grader.options import CheckFinished, Event, Mode, TrainingProgress
    from grader.reveal import HIDDEN, Audience, student_result

    with user_errors():
        options = run_options(mode=Mode.check, seed=seed, wall=wall, cpu=cpu, memory=memory, data_root=data_root,
                              only=tuple(only or ()), train=train, device=device, budget=budget,
                              early_stop=not full_budget)
        lab_obj = api.load_lab(lab)
        total = len(selected_checks(lab_obj, options))
        hidden = hidden_requested(lab_obj, options)
        if options.only and not total and hidden:
            said = " and ".join(f"`{h}`" for h in hidden)
            are = HIDDEN if len(hidden) == 1 else "are hidden checks, graded by your instructor"
            err_console.print(Text(f"{said} {are}: nothing to run in a self-check."), soft_wrap=True)
            raise typer.Exit(2)
        quiet = output_format == "json"
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=err_console, transient=True, disable=quiet) as progress:
            task = progress.add_task("checking", total=total)
            epochs = EpochBar(progress)

            def show(event: Event) -> None:
                if isinstance(event, CheckFinished):
                    progress.update(task, advance=1, description=event.result.title)
                    epochs.done()
                elif isinstance(event, TrainingProgress):
                    epochs.update(event)

            result = api.check(path, lab_obj, options, on_event=show)
        if pdf is not None:
            written = api.write_report(result, pdf, audience=Audience.student, html=html)
            err_console.print(f"Report: {written}")
    shown = student_result(result)  # the table and the JSON are the student's view, as the report is
    if quiet:
        typer.echo(shown.to_json())
    else:
        console.print(student_report(shown, console.width))
    raise typer.Exit(0 if shown.all_passed and not shown.unanswered else 1)


class EpochBar:
    """A second bar under the main one while a training check runs: epoch k of n, with the loss."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def update(self, event: TrainingProgress) -> None:
        description = f"  {event.check}: epoch {event.epoch}/{event.epochs}, loss {event.loss:.3f}"
        if self.task is None:
            self.task = self.progress.add_task(description, total=event.epochs)
        self.progress.update(self.task, completed=event.epoch, total=event.epochs, description=description)

    def done(self) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None


def _summary(batch: BatchResult, title: str) -> Table:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("submission")
    table.add_column("student")
    table.add_column("score", justify="right")
    table.add_column("%", justify="right")
    table.add_column("not passed")
    for r in sorted(batch.results, key=lambda r: r.submission):
        bad = [c for c in r.checks if c.status.value not in ("passed", "skipped")]
        cells = ", ".join(f"{c.id} ({c.status.value})" for c in bad) or "—"
        who = r.student.name if r.student.id == r.student.name else f"{r.student.name} ({r.student.id})"
        table.add_row(r.submission, Text(who + (" LATE" if r.student.late else "")), f"{r.score:g}/{r.max_score:g}",
                      f"{r.percent:.0f}", cells)
    return table


def _warnings(batch: BatchResult) -> None:
    """What the class held that is not a hand-in, and each hand-in with nothing graded."""
    for warning in batch.warnings:
        err_console.print(Text(f"Warning: {warning}", style="yellow"), soft_wrap=True)
    for r in batch.ungradable:
        err_console.print(Text(f"Warning: {r.student.name} ({r.submission}): {r.checks[0].message}", style="yellow"),
                          soft_wrap=True)


def run_batch(root: Path, lab: str | Path | BoundLab, out: Path, options: RunOptions) -> BatchResult:
    """Grade a class with a progress bar; shared by ``grade`` and ``demo``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from grader import api
    from grader.options import (
        Event,
        SubmissionFinished,
        SubmissionStarted,
        TrainingProgress,
    )

    plan = api.plan(root, lab, options.layout)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err_console, transient=False) as progress:
            task = progress.add_task(f"grading {root} ({plan.layout.value})", total=len(plan.entries))
            epochs = EpochBar(progress)
            running: list[str] = []  # every hand-in being graded (several with --jobs)

            def show(event: Event) -> None:
                if isinstance(event, SubmissionStarted):
                    running.append(event.name)
                    progress.update(task, description=f"grading {', '.join(running)}")
                elif isinstance(event, TrainingProgress):
                    epochs.update(event)
                elif isinstance(event, SubmissionFinished):
                    epochs.done()
                    r = event.result
                    if r.submission in running:
                        running.remove(r.submission)
                    note = "skipped, already graded" if event.skipped else f"{r.score:g}/{r.max_score:g}"
                    progress.update(task, advance=1, description=f"{r.submission}: {note}"
                                    + (f" · grading {', '.join(running)}" if running else ""))

            return api.grade(root, lab, out, options, on_event=show, plan=plan)
    except (KeyboardInterrupt, SystemExit):
        # Ctrl-C or SIGTERM (grader.interrupts): say what was kept and how to go on, from what is
        # on disk (a result is written whole or not at all), not from events the stop may have
        # come between.
        from grader.errors import GradelabError
        from grader.grading.batch import plan_jobs

        try:
            done = sum((Path(out) / f"{job.name}.json").exists() for job in plan_jobs(plan))
        except GradelabError:
            done = 0
        again = "without --force to grade the rest and keep these" if options.force else "again to grade the rest"
        err_console.print(Text(f"Stopped: {done} of {len(plan.entries)} hand-in(s) have a result in {out}/ "
                               f"(class.csv lists them). Run the same command {again}.", style="bold yellow"),
                          soft_wrap=True)
        raise


def grade(
    root: Annotated[Path, typer.Argument(help="The class: a folder with one sub-folder (or .py file, notebook, archive) "
                                              "per student, or an LMS download (Moodle's or Canvas's, its folder or "
                                              "the zip itself).")],
    lab: LabOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where results go: one JSON per submission and class.csv.")],
    force: Annotated[bool, typer.Option("--force", help="Regrade submissions already graded in OUT.")] = False,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Write PDF reports and a class summary in OUT/reports.")] = True,
    reports: Annotated[str, typer.Option(
        "--reports", help="Whose PDF reports: students (OUT/reports/students/, the student's view: what to send each "
                          "student), instructor (OUT/reports/instructor/, everything), or both.")] = "both",
    html: Annotated[bool, typer.Option("--html", help="Also write each report as HTML.")] = False,
    seed: SeedOpt = 0,
    wall: WallOpt = None, cpu: CpuOpt = None, memory: MemOpt = None,
    data_root: DataRootOpt = None,
    train: Annotated[bool, typer.Option("--train/--no-train", help="Run the training checks (the default for grading).")] = True,
    device: DeviceOpt = "auto", budget: BudgetOpt = None, full_budget: FullBudgetOpt = False,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", help="Hand-ins graded at once, each in a worker process of its own. Default: what the "
                             "machine allows (cores per the lab's threads, memory, GPUs when training on them), "
                             "and one per 8 hand-ins at most, so a small class is not slowed by start-ups.")] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", help="Grade on a Ray cluster at this address (e.g. ray://head:10001), or 'local' to start one "
                      "on this machine. Needs `pip install gradelab[ray]`.")] = None,
    layout: LayoutOpt = "auto",
    similarity: Annotated[bool, typer.Option(
        "--similarity", help="Then list pairs of hand-ins to look at together (as `gradelab similarity OUT`).")] = False,
) -> None:
    """Grade every submission under ROOT with **all** checks (public and hidden).

    Results are written as each submission finishes; an interrupted run resumes where it stopped.
    Exit status: 0 when every entry of the class was a hand-in with something to grade; 3 when
    some had nothing to grade (no module, notebook or answer sheet, or an archive refused) or an
    entry was left out (not a hand-in, or not the LMS's): each is a warning under the summary;
    2 for an error in the command itself (a class whose layout is not clear, among others).
    """
    from grader.grading.batch import CLASS_CSV
    from grader.options import Mode

    with user_errors():
        options = run_options(mode=Mode.grade, force=force, reports=pdf, html=html, seed=seed, wall=wall, cpu=cpu,
                              memory=memory, data_root=data_root, train=train, device=device, budget=budget,
                              jobs=jobs, ray=ray, early_stop=not full_budget, layout=layout, reports_for=reports)
        batch = run_batch(root, lab, out, options)
    console.print(_summary(batch, f"{batch.results[0].lab_title if batch.results else lab}"))
    skipped = f" ({len(batch.skipped)} already graded, skipped)" if batch.skipped else ""
    if batch.regraded:
        reasons = Counter(batch.regraded.values())
        console.print(f"Graded again {len(batch.regraded)} hand-in(s) whose earlier result could not stand: "
                      + "; ".join(f"{n} {why}" for why, n in reasons.most_common()), soft_wrap=True)
    console.print(f"Graded {len(batch.graded)} submission(s){skipped} ({batch.layout.value} layout). "
                  f"Results: {out}/ (class: {out / CLASS_CSV})")
    _print_reports(batch)
    _warnings(batch)
    if similarity:
        from grader import api
        from grader.cli.similarity import show

        with user_errors():
            show(api.similarity(out, lab, root=root, layout=layout), out)
    if batch.ungradable or batch.warnings:
        said = [f"{len(batch.ungradable)} submission(s) had nothing to grade"] if batch.ungradable else []
        said += [f"{len(batch.warnings)} entr{'y' if len(batch.warnings) == 1 else 'ies'} of the class left out"] \
            if batch.warnings else []
        err_console.print(Text(f"{' and '.join(said)} (exit status {UNGRADABLE_EXIT}).", style="bold yellow"))
        raise typer.Exit(UNGRADABLE_EXIT)


def _print_reports(batch: BatchResult) -> None:
    for problem in batch.report_errors:
        err_console.print(f"[red]ReportError: {problem}[/red]")
    if batch.class_summary:
        folders = sorted(p.name for p in batch.reports.iterdir() if p.is_dir()) if batch.reports.is_dir() else []
        said = {"students": "students/ (send each student theirs)", "instructor": "instructor/ (yours: everything)"}
        console.print(f"Reports: {batch.reports.resolve()}/ — " + ", ".join(said[f] for f in said if f in folders)
                      + f", and {batch.class_summary.name}", soft_wrap=True)


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where the results land.")] = Path("results/demo"),
    force: Annotated[bool, typer.Option("--force", help="Regrade everything.")] = True,
    budget: Annotated[str, typer.Option("--budget", help="Training budget for labs that train (smoke: seconds; cpu: minutes per hand-in).")] = "smoke",
) -> None:
    """Grade the bundled example hand-ins of every lab (what `make demo` runs).

    Training checks use the small `smoke` budget by default, which shows the loop, the curves and
    the reports in seconds but does not tell learning from chance; `--budget cpu` grades as an
    instructor would (about 1.5 minutes per cifar-training hand-in on 2 cores)."""
    from grader import api
    from grader.errors import SubmissionError
    from grader.grading.batch import CLASS_CSV, REPORTS_DIR
    from grader.lab.loader import labs_root
    from grader.options import Mode, RunOptions

    with user_errors():
        demo_budget = run_options(budget=budget).budget
        root = labs_root().parent / "submissions"
        graded = []
        for lab in api.labs():
            folder = root / lab.id
            if not folder.is_dir():
                continue
            trains = any(c.spec.training for c in lab.checks)
            options = RunOptions(mode=Mode.grade, force=force, budget=demo_budget if trains else None)
            batch = run_batch(folder, lab, out / lab.id, options)
            console.print(_summary(batch, f"{lab.manifest.title}"))
            for problem in batch.report_errors:
                err_console.print(f"[red]ReportError: {problem}[/red]")
            graded.append(out / lab.id)
        if not graded:
            raise SubmissionError(f"no example submissions under {root}")
    console.print("\n[bold]Results landed in:[/bold]")
    for folder in graded:
        # soft_wrap: a path broken across lines cannot be pasted into the next command
        console.print(f"  {folder.resolve()}/  (one JSON per hand-in, {CLASS_CSV})", soft_wrap=True)
        console.print(f"  {(folder / REPORTS_DIR).resolve()}/  (students/: each student's PDF report, "
                      "instructor/: yours, class-summary.pdf)", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.command("grade")(grade)
    app.command("demo")(demo)
