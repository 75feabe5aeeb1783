"""Thresholds for training checks, measured: the lab's reference, staged as a hand-in, is trained
by the same harness, budget, seed and device as students' code, and each threshold is set a
margin below the accuracy it reaches. The result goes to ``calibration.yaml`` in the lab folder,
which the training checks read.

A threshold is only as good as what it rejects: hand-ins known to be broken (``against``) are
trained under the same budget, and each threshold records which of them it lets through. On one
data set and budget a broken model may learn well enough (a network without ReLU still learns
through its max-pools); the table says so instead of leaving it to be found in a class.

Every training check is calibrated the same way (its details carry ``test_accuracy``); a kind
that judges more than accuracy adds its own entries (``calibration_extras``: the band limits of
``training_comparison``) and says whether a result passes under them (``passes_calibrated``).

With several seeds, the reference is trained under each, and each threshold and limit is set from
the worst of them: a budget too short to show an effect under every seed does not get to judge it
(vgg-batchnorm's cpu budget shows BatchNorm's band lower under every seed, but not always
narrower, because in 64 steps VGG-A sometimes learns nothing at any rate)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml
from pydantic import BaseModel

import grader
from grader.atomic import write_atomic
from grader.checks.registry import BoundLab
from grader.errors import LabError
from grader.grading.engine import grade_submission
from grader.grading.run import Run, resolve_device, sandbox_preload
from grader.lab.loader import CALIBRATION_NAME
from grader.options import Budget, CheckFinished, Device, Mode, RunOptions
from grader.sandbox.runner import Sandbox

CHANCE_MARGIN = 0.15  # a threshold this far above chance (1 / classes) tells learning from guessing


class Calibrated(BaseModel):
    check: str
    budget: str
    reference_accuracy: float
    threshold: float
    discriminates: bool  # False: the budget is too small to tell a network that learns from one that guesses
    # Each broken hand-in's accuracy under the same budget (None: it did not train to an accuracy).
    against: dict[str, float | None] = {}
    let_through: list[str] = []  # the broken hand-ins this calibration would pass
    extras: dict[str, Any] = {}  # what the check's kind adds (band limits ...)


def _accuracy(check) -> float | None:
    """A training check's test accuracy (``None``: it did not train)."""
    accuracy = check.details.get("test_accuracy")
    trained = isinstance(accuracy, (int, float)) and check.diagnosis != "diverged"
    return float(accuracy) if trained else None


def _passes(kind: Any, details: dict[str, Any], accuracy: float | None, entry: dict[str, Any]) -> bool:
    """Whether a hand-in with these results passes under a calibration entry."""
    judge = getattr(kind, "passes_calibrated", None)
    if judge is not None:
        return accuracy is not None and bool(judge(details, entry))
    return accuracy is not None and accuracy >= entry["threshold"]


def calibrate(lab: BoundLab, budgets: list[Budget], *, margin: float = 0.2, device: Device = Device.auto,
              seeds: Sequence[int] = (0,), classes: int = 10, against: Sequence[Path] = (), only: Sequence[str] = (),
              on_check: Callable[[str], None] | None = None, options: RunOptions | None = None) -> list[Calibrated]:
    """Each training check's threshold under each budget (see the module's docstring). ``options``:
    the run options grading will use (``--data-root``, limits …), so that the reference trains on
    the same data and under the same limits as the class; the mode, seed, checks, device and
    budget are calibration's own."""
    training = [c for c in lab.checks if c.spec.training]
    if not training:
        raise LabError(f"lab {lab.id!r} has no training checks to calibrate")
    unknown = sorted(set(only) - {c.spec.id for c in training})
    if unknown:
        raise LabError(f"not a training check of {lab.id}: {', '.join(unknown)} "
                       f"(its training checks: {', '.join(c.spec.id for c in training)})")
    training = [c for c in training if not only or c.spec.id in only]
    against = [Path(p) for p in against]
    for path in against:
        if not path.exists():
            raise LabError(f"--against {path}: no such hand-in")
    device = resolve_device(device)
    reference = lab.path(lab.manifest.reference.module)
    ids = tuple(c.spec.id for c in training)
    data = dict(lab.calibration)
    out = []
    label = [""]  # which hand-in is training, for the progress line

    def progress(event: object) -> None:
        if on_check and isinstance(event, CheckFinished):
            on_check(f"{label[0]}{event.result.id}")

    seeds = list(dict.fromkeys(seeds)) or [0]
    with Sandbox(preload=sandbox_preload(lab)) as sandbox:
        for budget in map(Budget, budgets):
            results, run = [], None
            for seed in seeds:
                run_options = (options or RunOptions()).model_copy(update={
                    "mode": Mode.grade, "seed": seed, "only": ids, "train": True, "device": device, "budget": budget,
                    "reports": False, "jobs": None, "ray": None})
                run = Run(lab, run_options, sandbox=sandbox, on_event=progress)
                label[0] = f"{budget.value}, seed {seed}: "
                results.append(grade_submission(run, reference))  # the reference, staged as a hand-in
            broken = {}
            for path in against:  # under the first seed
                label[0] = f"{budget.value}: {path.name}: "
                run = Run(lab, run.options.model_copy(update={"seed": seeds[0]}), sandbox=sandbox, on_event=progress)
                broken[path.name] = {c.id: c for c in grade_submission(run, path).checks}
            out += _record(data, lab, results, broken, budget.value, margin, seeds, device.value, classes, bool(against))
    header = ("# Written by `gradelab calibrate`: thresholds of the training checks per budget, measured on the\n"
              "# lab's reference under the same harness, budget, seed and device. Rerun after changing a recipe.\n")
    write_atomic(lab.path(CALIBRATION_NAME), header + yaml.safe_dump(data, sort_keys=True))
    lab.__dict__.pop("calibration", None)  # the cached copy is stale now
    return out


def _record(data: dict, lab: BoundLab, results: list, broken: dict[str, dict[str, Any]], budget: str, margin: float,
            seeds: list[int], device: str, classes: int, against: bool) -> list[Calibrated]:
    """Each training check's threshold under one budget, from the reference's results under each
    seed, written into ``data``; one row each."""
    out = []
    bound = {c.spec.id: c for c in lab.checks}
    for i, check in enumerate(results[0].checks):
        runs = [r.checks[i] for r in results]
        accuracies = []
        for seed, run in zip(seeds, runs):
            accuracy = run.details.get("test_accuracy")
            if not isinstance(accuracy, (int, float)):
                raise LabError(f"{check.id} ({budget}, seed {seed}): the reference did not train: {run.message}")
            accuracies.append(float(accuracy))
        accuracy = min(accuracies)
        threshold = round(max(0.0, accuracy - margin), 2)  # the reference always passes its own, under every seed
        discriminates = threshold >= 1 / classes + CHANCE_MARGIN
        data.setdefault(check.id, {})[budget] = {
            "threshold": threshold, "reference_accuracy": round(float(accuracy), 4), "margin": margin,
            "discriminates": discriminates,
            "seed": seeds[0], "device": device, "epochs": check.details.get("epochs"),
            "train_size": check.details.get("train_size"), "gradelab": grader.__version__,
            "calibrated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }
        entry = data[check.id][budget]
        if len(seeds) > 1:
            entry["seeds"] = seeds
            entry["reference_accuracies"] = [round(a, 4) for a in accuracies]
        kind, params = bound[check.id].kind, bound[check.id].params
        extras = (kind.calibration_extras(params, [r.details for r in runs], margin)
                  if hasattr(kind, "calibration_extras") else {})
        entry.update(extras)
        theirs = {name: checks[check.id] for name, checks in broken.items() if check.id in checks}
        accuracies = {name: _accuracy(c) for name, c in theirs.items()}
        row = Calibrated(check=check.id, budget=budget, reference_accuracy=accuracy, threshold=threshold,
                         discriminates=discriminates, against=accuracies, extras=extras,
                         let_through=[n for n, c in theirs.items() if _passes(kind, c.details, accuracies[n], entry)])
        if against:
            data[check.id][budget]["checked_against"] = {
                name: {"accuracy": None if acc is None else round(acc, 4), "let_through": name in row.let_through}
                for name, acc in row.against.items()}
        out.append(row)
    return out
