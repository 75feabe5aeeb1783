"""``gradelab serve`` (the hand-in server) and ``gradelab roster tokens`` (who may log in).

The server's stack (Starlette, uvicorn) is imported when the command runs, never by ``--help``."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from grader.cli.common import (
    BudgetOpt,
    CpuOpt,
    DataRootOpt,
    DeviceOpt,
    LabOpt,
    MemOpt,
    SeedOpt,
    WallOpt,
    console,
    err_console,
    run_options,
    user_errors,
)

ClassOpt = Annotated[Path, typer.Option(
    "--class", "-c", help="The class folder: one folder per student with their attempts (made if missing).")]
RosterArg = Annotated[Path, typer.Argument(help="The roster: a CSV with id,name,email (and an optional extension).")]

roster_app = typer.Typer(help="The class roster: tokens for students and the instructor.", no_args_is_help=True,
                         rich_markup_mode="markdown")


def serve(
    lab: LabOpt,
    class_dir: ClassOpt,
    roster: Annotated[Path, typer.Option("--roster", "-r", help="The roster CSV (id,name,email[,extension]).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on; put a TLS proxy in front.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Grading worker processes (default: one per core; 0: queue uploads, grade later).")] = None,
    upload_mb: Annotated[float, typer.Option("--upload-mb", help="Largest upload, in MB.")] = 20.0,
    per_hour: Annotated[int, typer.Option("--attempts-per-hour", help="Uploads a student may make per hour.")] = 10,
    due: Annotated[str | None, typer.Option(
        "--due", help="Uploads close then (ISO date-time, e.g. 2026-03-10T23:59+01:00; without a zone, this "
                      "machine's). A roster's extension column moves it per student.")] = None,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", help="The address students use (https://… behind a proxy: cookies are then Secure).")] = None,
    counts: Annotated[str, typer.Option(
        "--counts", help="Which graded attempt counts: last (the newest) or best (the highest score); "
                         "said on the student's page.")] = "last",
    seed: SeedOpt = 0,
    wall: WallOpt = None, cpu: CpuOpt = None, memory: MemOpt = None,
    data_root: DataRootOpt = None,
    train: Annotated[bool, typer.Option("--train/--no-train", help="Run the lab's training checks.")] = True,
    device: DeviceOpt = "auto", budget: BudgetOpt = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", help="Grade on a Ray cluster at this address (e.g. ray://head:10001), or 'local' to start one on "
                      "this machine: each attempt is a task asking for the lab's threads and GPU share. The queue "
                      "stays here; a lost node costs a retry. Needs `pip install gradelab[ray]`.")] = None,
) -> None:
    """Serve a class: students log in with their token, upload a hand-in and read their feedback
    (the public checks, as the lab lets them see them) and its PDF; you see every check, every
    attempt, the class table and the exports at /instructor.

    Grading runs in worker processes, in the sandbox, with the lab's full reference; the reference
    never leaves this machine (with `--ray`, the nodes of your cluster get it: they grade)."""
    from grader import api
    from grader.errors import UsageError
    from grader.serve.settings import ServeSettings

    with user_errors():
        try:
            due_at = datetime.fromisoformat(due) if due else None
        except ValueError:
            raise UsageError(f"--due {due!r} is not accepted: use an ISO date-time, e.g. 2026-03-10T23:59+01:00") \
                from None
        options = run_options(seed=seed, wall=wall, cpu=cpu, memory=memory, data_root=data_root, train=train,
                              device=device, budget=budget, reports=False, ray=ray)
        settings = ServeSettings.from_user(class_dir=class_dir, roster=roster, host=host, port=port, workers=workers,
                                           upload_mb=upload_mb, attempts_per_hour=per_hour, due=due_at,
                                           public_url=public_url, counts=counts)
        lab_obj = api.load_lab(lab)
        on_cluster = f" Grading on the Ray cluster {ray}." if ray and settings.workers != 0 else ""
        console.print(f"Serving [bold]{lab_obj.manifest.title}[/bold] for the class in {settings.class_dir} "
                      f"on http://{settings.host}:{settings.port} (instructor pages: /instructor).{on_cluster} "
                      "Ctrl-C stops.", soft_wrap=True)
        api.serve(lab_obj, options, settings)


def tokens(
    roster: RosterArg,
    class_dir: ClassOpt,
    reissue: Annotated[list[str] | None, typer.Option(
        "--reissue", help="Make a new token for this student id (a lost token); repeat for several.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Make new tokens for every student.")] = False,
    instructor: Annotated[bool, typer.Option("--instructor", help="Make a new instructor token.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the CSV here instead of printing it.")] = None,
) -> None:
    """Give each student of the roster a token, and print a CSV to mail-merge: id, name, email,
    token.

    Only the tokens' hashes are kept (in the class folder), so a token is shown once: students who
    already have one are not printed again (`--reissue ID` makes a new one; the old one and its
    sessions stop working). The instructor's token is printed on the first run (and with
    `--instructor`)."""
    from grader import api
    from grader.atomic import write_atomic

    with user_errors():
        issued = api.roster_tokens(roster, class_dir, reissue=tuple(reissue or ()), every=every, instructor=instructor)
        if out is not None:
            old = os.umask(0o077)  # the tokens' file is the user's only
            try:
                write_atomic(out, issued.csv())
            finally:
                os.umask(old)
    if out is None:
        typer.echo(issued.csv(), nl=False)
    else:
        err_console.print(f"Wrote {len(issued.rows)} token(s) to {out}", soft_wrap=True)
    if issued.kept:
        err_console.print(f"{len(issued.kept)} student(s) already had a token (not shown again; --reissue ID for a "
                          "new one)", soft_wrap=True)
    if issued.dropped:
        err_console.print(f"Removed the tokens of {len(issued.dropped)} id(s) no longer on the roster: "
                          f"{', '.join(issued.dropped[:5])}", soft_wrap=True)
    if issued.instructor_token:
        err_console.print(Text(f"Instructor token (shown once, keep it): {issued.instructor_token}", style="bold"),
                          soft_wrap=True)


def review(
    out: Annotated[Path, typer.Argument(help="The batch's output folder (`gradelab grade … --out OUT`).")],
    lab: Annotated[str | None, typer.Option("--lab", "-l", help="The lab (default: the one its results name).")] = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8010,
) -> None:
    """Grade the written answers of a batch graded from the command line: serves the grading pages
    on 127.0.0.1 and prints a one-time login link. Grades are kept in OUT/review/ and merged into
    every report and export made from OUT; regrading the automatic part keeps them."""
    from grader import api
    from grader.errors import UsageError
    from grader.serve.review_app import run_review

    with user_errors():
        results = api.read_results(out)
        if not results:
            raise UsageError(f"{out}: no gradelab results here (run `gradelab grade … --out {out}` first)")
        lab_obj = api.load_lab(lab or results[0].lab)

        def ready(url: str) -> None:
            console.print(f"Grading the written answers of [bold]{lab_obj.manifest.title}[/bold] in {out}. "
                          "Open this link (it works once); Ctrl-C stops:", soft_wrap=True)
            typer.echo(url)

        run_review(lab_obj, out, port, ready)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("review")(review)
    roster_app.command("tokens")(tokens)
    app.add_typer(roster_app, name="roster")
