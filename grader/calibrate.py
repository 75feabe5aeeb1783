"""Thresholds for training checks, measured: the lab's reference, staged as a hand-in, is trained
by the same harness, budget, seed and device as students' code, and each threshold is set a
margin below the accuracy it reaches. The result goes to ``calibration.yaml`` in the lab folder,
which the training checks read."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import yaml
from pydantic import BaseModel

import grader
from grader.errors import LabError
from grader.grading.batch import write_atomic
from grader.grading.engine import grade_submission, resolve_device
from grader.lab.loader import CALIBRATION_NAME, Lab

CHANCE_MARGIN = 0.15  # a threshold this far above chance (1 / classes) tells learning from guessing


class Calibrated(BaseModel):
    check: str
    budget: str
    reference_accuracy: float
    threshold: float
    discriminates: bool  # False: the budget is too small to tell a network that learns from one that guesses


def calibrate(lab: Lab, budgets: list[str], *, margin: float = 0.2, device: str = "auto", seed: int = 0,
              classes: int = 10, on_check: Callable[[str], None] | None = None) -> list[Calibrated]:
    training = [c for c in lab.checks if c.spec.kind == "training"]
    if not training:
        raise LabError(f"lab {lab.id!r} has no training checks to calibrate")
    device = resolve_device(device)
    reference = lab.path(lab.manifest.reference.module)
    data = dict(lab.calibration)
    out = []
    for budget in budgets:
        result = grade_submission(lab, reference, mode="grade", seed=seed, only=[c.spec.id for c in training],
                                  train=True, device=device, budget=budget,
                                  on_check=(lambda r: on_check(f"{budget}: {r.id}")) if on_check else None)
        for check in result.checks:
            accuracy = check.details.get("test_accuracy")
            if not isinstance(accuracy, (int, float)):
                raise LabError(f"{check.id} ({budget}): the reference did not train: {check.message}")
            threshold = round(max(0.0, accuracy - margin), 2)  # the reference always passes its own
            discriminates = threshold >= 1 / classes + CHANCE_MARGIN
            data.setdefault(check.id, {})[budget] = {
                "threshold": threshold, "reference_accuracy": round(float(accuracy), 4), "margin": margin,
                "discriminates": discriminates,
                "seed": seed, "device": device, "epochs": check.details.get("epochs"),
                "train_size": check.details.get("train_size"), "gradelab": grader.__version__,
                "calibrated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            }
            out.append(Calibrated(check=check.id, budget=budget, reference_accuracy=accuracy, threshold=threshold,
                                  discriminates=discriminates))
    header = ("# Written by `gradelab calibrate`: thresholds of the training checks per budget, measured on the\n"
              "# lab's reference under the same harness, budget, seed and device. Rerun after changing a recipe.\n")
    write_atomic(lab.path(CALIBRATION_NAME), header + yaml.safe_dump(data, sort_keys=True))
    lab.__dict__.pop("calibration", None)  # the cached copy is stale now
    return out
