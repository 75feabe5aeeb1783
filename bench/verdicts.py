"""Seconds to a verdict on the training labs, and what early stopping costs in verdicts.

For cifar-training and vgg-batchnorm, under one budget and device (``--budget``, ``--device``):

1. the correct hand-in through ``gradelab check --train`` as a student runs it (a fresh process:
   the CLI, the fork server, the data, every check), with early stopping and with
   ``--full-budget``, beside the calibration's measured verdict-change rate for that budget
   (``early_stop`` in the lab's calibration.yaml: runs and verdicts changed, over the reference's
   seeds and the named broken hand-ins);
2. every bundled hand-in of the lab graded (``grade``, training included, early stopping on):
   its score, the checks it loses and their diagnoses, and its seconds.

    python -m bench.verdicts                      # cpu budget, on this machine
    python -m bench.verdicts --budget gpu --device cuda     # from bench/gpu.sh
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
LABS = ("cifar-training", "vgg-batchnorm")


def _check(lab: str, budget: str, device: str, *extra: str) -> tuple[float, dict]:
    command = [sys.executable, "-m", "grader", "check", str(ROOT / "submissions" / lab / "correct"), "--lab", lab,
               "--train", "--budget", budget, "--device", device, "--format", "json", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "NO_COLOR": "1"})
    seconds = time.perf_counter() - started
    try:
        return seconds, json.loads(done.stdout)
    except json.JSONDecodeError:
        return seconds, {"error": (done.stderr or done.stdout)[-400:]}


def _changes(lab: str, budget: str) -> str:
    """The calibration's early-stopping record for ``budget``: verdicts changed over runs."""
    from grader.api import load_lab

    runs = changed = 0
    checks = 0
    for entry in load_lab(lab).calibration.values():
        early = (entry.get(budget) or {}).get("early_stop") if isinstance(entry, dict) else None
        if isinstance(early, dict):
            runs += int(early.get("runs", 0))
            changed += int(early.get("verdict_changes", 0))
            checks += 1
    if not checks:
        return "no early stopping calibrated on this budget"
    return f"{changed} of {runs} verdicts changed ({changed / runs:.1%}) over {checks} checks"


def correct_hand_ins(budget: str, device: str) -> Table:
    table = Table(title=f"The correct hand-in's verdict: gradelab check --train, {budget} budget, {device}")
    for col in ("lab", "stopping early", "whole budget", "score", "decided at", "calibrated verdict changes"):
        table.add_column(col, overflow="fold")
    for lab in LABS:
        early_s, early = _check(lab, budget, device)
        full_s, full = _check(lab, budget, device, "--full-budget")
        if "error" in early or "error" in full:
            table.add_row(lab, f"{early_s:.1f} s", f"{full_s:.1f} s", "did not run", (early.get("error") or full.get("error") or ""), "")
            continue
        decided = [f"{c['id'].removeprefix('train-')} {c['details']['decided_at']['step']}/{c['details']['decided_at']['of']}"
                   for c in early["checks"] if isinstance(c.get("details"), dict) and c["details"].get("decided_at")]
        table.add_row(lab, f"[bold]{early_s:.1f} s[/bold]", f"{full_s:.1f} s",
                      f"{early['score']:g}/{early['max_score']:g} (whole budget {full['score']:g})",
                      ", ".join(decided) or "—", _changes(lab, budget))
    return table


def bundled_hand_ins(lab: str, budget: str, device: str) -> Table:
    from grader.api import load_lab
    from grader.grading.engine import grade_submission
    from grader.grading.run import Run
    from grader.options import Mode, RunOptions

    table = Table(title=f"{lab}: every bundled hand-in graded with training, {budget} budget, {device}, stopping early")
    for col in ("hand-in", "score", "checks it loses (diagnosis)", "s"):
        table.add_column(col, overflow="fold")
    options = RunOptions(mode=Mode.grade, train=True, budget=budget, device=device, reports=False)
    with Run(load_lab(lab), options) as run:
        for path in sorted((ROOT / "submissions" / lab).iterdir()):
            if not path.is_dir():
                continue
            started = time.perf_counter()
            result = grade_submission(run, path)
            seconds = time.perf_counter() - started
            lost = [f"{c.id}" + (f" ({', '.join(c.diagnoses)})" if c.diagnoses else "") for c in result.checks
                    if c.score < c.max_score and c.status.value not in ("skipped", "awaiting review")]
            table.add_row(path.name, f"{result.score:g}/{result.max_score:g}", "; ".join(lost) or "—", f"{seconds:.1f}")
    return table


def main(budget: str = "cpu", device: str = "cpu"):
    yield correct_hand_ins(budget, device)
    for lab in LABS:
        yield bundled_hand_ins(lab, budget, device)


if __name__ == "__main__":
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only-correct", action="store_true", help="the first table only")
    args = parser.parse_args()
    console = Console(width=160)
    for table in main(args.budget, args.device):
        console.print(table)
        if args.only_correct:
            break
