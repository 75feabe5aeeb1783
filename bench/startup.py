"""How fast the CLI answers: ``gradelab --help``, ``labs``, ``labs LAB`` and ``check --help``,
each a fresh process (as a user types it), beside ``python -c 'import torch'`` in the same run.

Only commands that grade import torch; the rest must answer in under half a second
(``python -m bench.startup``; median of 5 runs each, after one warm-up run that fills the OS cache).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5
COMMANDS = [
    ("gradelab --help", [sys.executable, "-m", "grader", "--help"]),
    ("gradelab labs", [sys.executable, "-m", "grader", "labs"]),
    ("gradelab labs cifar-convnet", [sys.executable, "-m", "grader", "labs", "cifar-convnet"]),
    ("gradelab check --help", [sys.executable, "-m", "grader", "check", "--help"]),
    ("gradelab grade --help", [sys.executable, "-m", "grader", "grade", "--help"]),
    ("gradelab pack --help", [sys.executable, "-m", "grader", "pack", "--help"]),
    ("python -c 'import torch' (for scale)", [sys.executable, "-c", "import torch"]),
]


def _seconds(argv: list[str], repeat: int) -> list[float]:
    env = {**os.environ, "COLUMNS": "120"}
    subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)  # warm-up
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
        out.append(time.perf_counter() - started)
    return out


def main(repeat: int = 5) -> Table:
    table = Table(title=f"CLI start: fresh process, median of {repeat} (min–max); target under {TARGET_S} s")
    for col in ("command", "median s", "min–max s", "verdict"):
        table.add_column(col, justify="left" if col in ("command", "verdict") else "right")
    for name, argv in COMMANDS:
        times = _seconds(argv, repeat)
        median = statistics.median(times)
        verdict = "—" if "torch" in name else "[green]under[/green]" if median < TARGET_S else "[red]over[/red]"
        table.add_row(name, f"{median:.3f}", f"{min(times):.3f}–{max(times):.3f}", verdict)
    return table


if __name__ == "__main__":
    Console().print(main())
