"""How fast a class is graded: a student's single self-check end to end, static hand-ins per
second, one job against two on a static class and on a training class, the Ray path's overhead,
and a projection for a 500-student class.

Everything is measured in this one run, on this machine; the projection multiplies measured
per-hand-in times and says which ones it used. ``python -m bench.scale`` (also part of
``make bench``); the training projection uses the seconds per hand-in measured on
a GPU (``bench/gpu.sh`` writes them to ``bench/gpu-times.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
CORRECT = ROOT / "submissions" / "cifar-convnet" / "correct"
GRADELAB = [sys.executable, "-m", "grader"]


def _seconds(command: list[str], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        out.append(time.perf_counter() - started)
    return out


def _class(root: Path, copies: int) -> Path:
    """A static class of ``copies`` honest hand-ins (the correct one and a flawed one, alternately):
    the timings measure grading, not the wall-time limit of a hand-in that hangs."""
    root.mkdir(parents=True)
    flawed = ROOT / "submissions" / "cifar-convnet" / "in-channels-confusion"
    for i in range(copies):
        shutil.copytree(CORRECT if i % 2 == 0 else flawed, root / f"student-{i:03d}")
    return root


def _grade(root: Path, out: Path, *args: str, lab: str = "cifar-convnet") -> float:
    started = time.perf_counter()
    subprocess.run([*GRADELAB, "grade", str(root), "--lab", lab, "--out", str(out), "--no-pdf",
                    "--force", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def self_check(repeat: int = 5) -> Table:
    table = Table(title="A student's self-check, end to end (median of runs)")
    for col in ("command", "runs", "median s", "min s"):
        table.add_column(col, justify="right" if col != "command" else "left")
    rows = [("python -c 'import torch'", [sys.executable, "-c", "import torch"]),
            ("gradelab check --only model-output-shape (cifar-convnet)",
             [*GRADELAB, "check", str(CORRECT), "--lab", "cifar-convnet", "--only", "model-output-shape"]),
            ("gradelab check (every public check, cifar-convnet)",
             [*GRADELAB, "check", str(CORRECT), "--lab", "cifar-convnet"])]
    for label, command in rows:
        times = _seconds(command, repeat)
        table.add_row(label, str(repeat), f"{statistics.median(times):.2f}", f"{min(times):.2f}")
    return table


def children(copies: int = 12) -> Table:
    """Static hand-ins per second in one process, a child per probe (gradelab before) against a
    child per hand-in (now), the fork server already warm: what the sharing of a child saves."""
    from grader.api import load_lab
    from grader.grading.engine import grade_submission
    from grader.grading.run import Run, sandbox_preload
    from grader.options import RunOptions
    from grader.sandbox.runner import Sandbox

    lab = load_lab("cifar-convnet")
    table = Table(title=f"cifar-convnet, {copies} static hand-ins in one process, the fork server warm")
    for col in ("children", "s per hand-in (median)", "hand-ins/s", "children started"):
        table.add_column(col, justify="right" if col != "children" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        root = _class(Path(tmp) / "class", copies)
        for label, per_probe in (("one per probe (before)", True), ("one per hand-in (now)", False)):
            with Sandbox(sandbox_preload(lab), child_per_probe=per_probe) as sandbox:
                sandbox.warm()
                run = Run(lab, RunOptions(reports=False, device="cpu"), sandbox=sandbox)
                grade_submission(run, CORRECT)  # the reference imported, its traces warm
                spawned = sandbox.server.spawned
                times = []
                for hand_in in sorted(root.iterdir()):
                    started = time.perf_counter()
                    grade_submission(run, hand_in)
                    times.append(time.perf_counter() - started)
                median = statistics.median(times)
                table.add_row(label, f"{median:.3f}", f"{1 / median:.1f}", str(sandbox.server.spawned - spawned))
    return table


def batches(copies: int = 24) -> tuple[Table, dict[str, float]]:
    """Static hand-ins per second with one worker and with two, and through a local Ray cluster."""
    measured: dict[str, float] = {}
    table = Table(title=f"A static class of {copies} cifar-convnet hand-ins (every check, no reports)")
    for col in ("how", "wall s", "hand-ins/s", "s per hand-in"):
        table.add_column(col, justify="right" if col != "how" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        root = _class(Path(tmp) / "class", copies)
        runs = [("--jobs 1 (serial, in the batch's process)", ["--jobs", "1"]),
                ("--jobs 2 (this process; a worker once worth its start)", ["--jobs", "2"])]
        try:
            import ray  # noqa: F401  (only whether Ray is installed)

            runs.append(("--ray local (a Ray cluster on this machine)", ["--ray", "local"]))
        except ImportError:
            table.caption = "Ray not installed: pip install 'gradelab[ray]' for its row"
        for label, args in runs:
            seconds = _grade(root, Path(tmp) / "out", *args)
            measured[args[-1]] = seconds / copies
            table.add_row(label, f"{seconds:.1f}", f"{copies / seconds:.2f}", f"{seconds / copies:.3f}")
    if "local" in measured:
        overhead = measured["local"] - measured["1"]
        table.caption = (f"Ray's overhead per hand-in on this machine: {overhead:+.3f} s against serial "
                         f"({measured['local'] / measured['2']:.2f}× the time of --jobs 2 with the same 2 cores)")
    return table, measured


def training_batches(copies: int = 4, budget: str = "smoke") -> Table:
    """A class that trains (cifar-training, every check), with one job and with two: a worker
    starts once a hand-in's cost outweighs its start-up, so two jobs are never slower than one."""
    table = Table(title=f"A training class of {copies} cifar-training hand-ins ({budget} budget, every check, no reports)")
    for col in ("how", "wall s", "s per hand-in"):
        table.add_column(col, justify="right" if col != "how" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "class"
        root.mkdir()
        for i in range(copies):
            shutil.copytree(ROOT / "submissions" / "cifar-training" / "correct", root / f"student-{i:03d}")
        for label, jobs in (("--jobs 1", "1"), ("--jobs 2", "2")):
            seconds = _grade(root, Path(tmp) / "out", "--jobs", jobs, "--budget", budget, lab="cifar-training")
            table.add_row(label, f"{seconds:.1f}", f"{seconds / copies:.1f}")
    return table


def projection(gpu_seconds: dict[str, float], students: int = 500) -> Table:
    """Hours for a class from seconds per hand-in measured on one GPU: with one hand-in per GPU,
    G GPUs take ceil(students / G) rounds."""
    table = Table(title=f"Projection: a class of {students} students, one hand-in per GPU at a time")
    for col in ("lab, budget", "s per hand-in (measured on a GPU)", "1 GPU", "4 GPUs", "16 GPUs"):
        table.add_column(col, justify="right" if col != "lab, budget" else "left")
    for label, seconds in gpu_seconds.items():
        table.add_row(label, f"{seconds:.1f}", *[f"{math.ceil(students / g) * seconds / 3600:.2f} h" for g in (1, 4, 16)])
    if not gpu_seconds:
        table.caption = ("no GPU measurement: bench/gpu.sh, on a GPU machine, writes one; pass it with "
                         "--gpu-times FILE")
    return table


def main(gpu_times: Path | None = None) -> list[Table]:
    tables = [self_check(), children()]
    table, _ = batches()
    tables += [table, training_batches()]
    measured = json.loads(gpu_times.read_text()) if gpu_times and gpu_times.exists() else {}
    tables.append(projection(measured))
    return tables


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu-times", type=Path, default=ROOT / "bench" / "gpu-times.json",
                        help="seconds per hand-in on the gpu budget, per lab, measured by bench/gpu.sh")
    args = parser.parse_args()
    console = Console(width=140)
    for t in main(args.gpu_times):
        console.print(t)
