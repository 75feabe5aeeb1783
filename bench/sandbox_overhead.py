"""Per-submission cost of the sandbox against a fresh-interpreter baseline, in one run.

Baseline: what a naive grader pays, a new Python that imports torch and the student module.
gradelab: a child forked from the warm forkserver that already imported torch, running the
``describe`` probe (import the student module, inspect it, reply).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
SUBMISSION = ROOT / "submissions" / "cifar-convnet" / "correct"


def _time(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main(repeat_fresh: int = 5, repeat_fork: int = 30) -> Table:
    from grader.api import load_lab
    from grader.grading.engine import grade_submission
    from grader.grading.run import Run
    from grader.intake.reader import read_hand_in

    lab = load_lab("cifar-convnet")
    code = f"import sys, torch; sys.path.insert(0, {str(SUBMISSION)!r}); import convnet"
    fresh = _time(lambda: subprocess.run([sys.executable, "-c", code], check=True), repeat_fresh)
    run = Run(lab)
    started = time.perf_counter()
    run.sandbox.start()
    handin = read_hand_in(SUBMISSION)
    probe = lambda: run.sandbox.run_probe(handin, "convnet.py", "describe", {"symbols": ["ConvNet"]},
                                          lab.manifest.limits)
    probe()  # waits for the fork server's imports
    server_start = time.perf_counter() - started
    forked = _time(probe, repeat_fork)
    whole = _time(lambda: grade_submission(run, SUBMISSION), 3)
    run.close()

    table = Table(title="Sandbox overhead per submission (cifar-convnet, correct hand-in)")
    table.add_column("what")
    table.add_column("runs", justify="right")
    table.add_column("median s", justify="right")
    table.add_column("min s", justify="right")
    table.add_row("fresh interpreter: python -c 'import torch; import convnet'", str(repeat_fresh),
                  f"{statistics.median(fresh):.3f}", f"{min(fresh):.3f}")
    table.add_row("fork server start and first child (once per grading run)", "1", f"{server_start:.3f}",
                  f"{server_start:.3f}")
    table.add_row("sandboxed child from the fork server (describe probe)", str(repeat_fork),
                  f"{statistics.median(forked):.3f}", f"{min(forked):.3f}")
    table.add_row("all 11 checks of the lab on one hand-in", "3", f"{statistics.median(whole):.3f}", f"{min(whole):.3f}")
    table.caption = f"speed-up per child: {statistics.median(fresh) / statistics.median(forked):.0f}×"
    return table


if __name__ == "__main__":
    Console().print(main())
