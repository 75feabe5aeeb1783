"""Seconds per hand-in on the ``gpu`` budget, per training lab: the correct hand-in, every check,
training included, through the sandbox, on the CUDA device. ``bench/gpu.sh`` runs it on a machine
with a GPU and writes ``bench/gpu-times.json``, which ``bench.scale`` turns into a projection for a
class (it cannot be measured without a GPU, so no figure is made up here when there is none).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
LABS = ("cifar-training", "vgg-batchnorm")  # the labs with a gpu budget


def time_hand_in(lab_id: str) -> tuple[float, str]:
    """Wall time of one correct hand-in, every check, gpu budget; the fork server's imports and the
    data set's first write are paid before the clock starts (a batch pays them once)."""
    from grader.api import load_lab
    from grader.grading.engine import grade_submission
    from grader.grading.run import Run
    from grader.options import RunOptions

    lab = load_lab(lab_id)
    with Run(lab, RunOptions(train=True, budget="gpu", device="cuda", reports=False)) as run:
        run.sandbox.warm()
        started = time.perf_counter()
        result = grade_submission(run, ROOT / "submissions" / lab_id / "correct")
        seconds = time.perf_counter() - started
    return seconds, f"{result.score:g}/{result.max_score:g}"


def main(out: Path) -> Table:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench.gpu_times: torch sees no CUDA device on this machine")
    table = Table(title=f"One correct hand-in, every check, gpu budget, on {torch.cuda.get_device_name(0)}")
    for col in ("lab", "score", "s per hand-in"):
        table.add_column(col)
    measured = {}
    for lab_id in LABS:
        seconds, score = time_hand_in(lab_id)
        measured[f"{lab_id}, gpu"] = round(seconds, 1)
        table.add_row(lab_id, score, f"{seconds:.1f}")
    out.write_text(json.dumps(measured, indent=2) + "\n")
    table.caption = f"written to {out}"
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "gpu-times.json")
    Console().print(main(parser.parse_args().out))
