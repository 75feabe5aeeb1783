"""How a result reads in the terminal: the table of checks a student (or an instructor) sees.

A student's table is drawn from the student's view of the result (``reveal.student_result``),
the same view their JSON and report are made from; nothing here decides what may be shown.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from grader.results import Status, SubmissionResult

STATUS_STYLE = {
    Status.passed: "green", Status.partial: "yellow", Status.failed: "red",
    Status.error: "bold red", Status.timeout: "magenta", Status.skipped: "dim", Status.deferred: "cyan",
    Status.awaiting_review: "blue",
}
STATUS_LABEL = {Status.deferred: "on hand-in"}
UNSCORED = (Status.deferred, Status.awaiting_review)


def status_text(status: Status) -> Text:
    return Text(STATUS_LABEL.get(status, status.value), style=STATUS_STYLE[status])


def result_table(result: SubmissionResult, width: int | None = None) -> Table:
    """One row per check: its id (what ``--only`` takes) above its title, points, status, message, hint.
    ``width``: the terminal's, so that the titles give way to the messages on a narrow one."""
    table = Table(title=f"{result.lab_title} — {result.submission}", show_lines=True, expand=True)
    # the id is what --only takes: never cut, however narrow the terminal (a ratio column ignores
    # min_width in rich, so this one is sized by its content, ids never broken, titles wrapped);
    # at most a third of the terminal, or at 80 columns a long title leaves the message 4 ("Pas…")
    widest = max((len(c.id) for c in result.checks), default=5) + 2  # + padding
    table.add_column("Check", min_width=widest, max_width=max(min(50, (width or 150) // 3), widest))
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Message", ratio=6)
    for c in result.checks:
        message = Text(c.message)
        if c.hint:
            message.append(f"\nHint: {c.hint}", style="italic cyan")
        check = Text(c.id, style="bold")
        check.append(f"\n{c.title}", style="dim")
        points = f"–/{c.max_score:g}" if c.status in UNSCORED else f"{c.score:g}/{c.max_score:g}"
        table.add_row(check, points, status_text(c.status), message)
    return table


def total_line(result: SubmissionResult) -> Text:
    deferred = [c for c in result.checks if c.status == Status.deferred]
    later = f"{len(deferred)} check(s), {sum(c.max_score for c in deferred):g} points, graded on hand-in"
    if deferred and not result.max_score:
        return Text(f"Nothing here is scored: {later}.", style="bold cyan")
    style = "green" if result.score == result.max_score else "yellow" if result.score else "red"
    waiting, not_run = result.awaiting_review, [c for c in result.checks if c.status == Status.skipped]
    label = "Total so far" if result.pending_points else "Total"
    text = Text(f"{label}: {result.score:g} / {result.max_score:g} ({result.percent:.0f} %)", style=f"bold {style}")
    if deferred:
        text.append(f"; {later}", style="cyan")
    if waiting:
        text.append(f"; {len(waiting)} written answer(s), {sum(c.max_score for c in waiting):g} points, awaiting "
                    "review by your instructor", style="blue")
    if not_run:
        text.append(f"; {len(not_run)} check(s), {sum(c.max_score for c in not_run):g} points, not run "
                    f"({not_run[0].message.rstrip('.')})", style="blue")
    return text


def student_report(result: SubmissionResult, width: int | None = None) -> Group:
    """What ``check`` prints: the table, the notes, the total, and what the code printed."""
    parts: list = [result_table(result, width)]
    parts += [Text(f"Note: {note}", style="yellow") for note in result.notes]
    parts.append(total_line(result))
    if result.log_tail.strip():
        parts.append(Text("Your code printed (last lines):", style="dim"))
        parts.append(Text(result.log_tail[-1500:]))
    return Group(*parts)
