"""Time per check of each lab on its correct hand-in (the forkserver already warm).

Targets the issues set: mlp-backprop's gradient checks well under a second and the whole lab,
training included, under 30 s per hand-in; layers-from-scratch under 10 s per hand-in.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
LABS = ("mlp-backprop", "layers-from-scratch")


def main(repeat: int = 3) -> list[Table]:
    from grader.api import load_lab
    from grader.grading.engine import grade_submission
    from grader.grading.run import Run

    tables = []
    for name in LABS:
        submission = ROOT / "submissions" / name / "correct"
        if not submission.is_dir():
            continue
        run = Run(load_lab(name)).__enter__()  # the fork server's start is measured by sandbox_overhead
        grade_submission(run, submission)  # warm: data sets generated and cached, reference imported
        per_check: dict[str, list[float]] = {}
        totals = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = grade_submission(run, submission)
            totals.append(time.perf_counter() - started)
            for c in result.checks:
                per_check.setdefault(f"{c.id} ({c.kind})", []).append(c.duration_s)
        table = Table(title=f"{name}: seconds per check, correct hand-in, {repeat} runs")
        table.add_column("check")
        table.add_column("median s", justify="right")
        table.add_column("max s", justify="right")
        for check, times in per_check.items():
            table.add_row(check, f"{statistics.median(times):.3f}", f"{max(times):.3f}")
        table.add_row("[bold]whole lab, correct hand-in[/bold]", f"[bold]{statistics.median(totals):.2f}[/bold]",
                      f"{max(totals):.2f}")
        # Flawed hand-ins cost more (shrinking counterexamples, diagnosing): time each bundled one once.
        others = {}
        for path in sorted(p for p in submission.parent.iterdir() if p.is_dir() and p.name != "correct"):
            started = time.perf_counter()
            grade_submission(run, path)
            others[path.name] = time.perf_counter() - started
        run.close()
        if others:
            slowest = max(others, key=others.get)
            table.add_row(f"whole lab, each of {len(others)} flawed hand-ins (slowest: {slowest})",
                          f"{statistics.median(others.values()):.2f}", f"{others[slowest]:.2f}")
        tables.append(table)
    return tables
