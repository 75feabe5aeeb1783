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

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

import grader
from grader.atomic import write_atomic
from grader.checks.registry import BoundLab
from grader.errors import LabError
from grader.grading.engine import grade_submission
from grader.grading.run import Run, resolve_device, sandbox_preload
from grader.lab.calibration import BUNDLED, generator_of, store, stored
from grader.lab.loader import CALIBRATION_NAME
from grader.options import Budget, CheckFinished, Device, Mode, RunOptions
from grader.results import Status, SubmissionResult
from grader.sandbox.runner import opened

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
    # Broken hand-ins that trained exactly as the reference did on this check (same seed, same
    # accuracy): their flaw is in another variant's network, so passing here is no let-through.
    unaffected: list[str] = []
    # For each broken hand-in, the checks without training that take points from it: a flaw no
    # threshold can see (BatchNorm after the ReLU trains as well) is still caught by the lab.
    caught_without_training: dict[str, list[str]] = {}
    extras: dict[str, Any] = {}  # what the check's kind adds (band limits ...)
    data: str = "bundled"  # what it was measured on (``grader.lab.calibration``)
    early_stop: dict[str, Any] | None = None  # how often stopping early changed a verdict (runs, verdict_changes)


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
              data_root: Path | None = None, on_check: Callable[[str], None] | None = None,
              options: RunOptions | None = None) -> list[Calibrated]:
    """Train the reference (and the ``against`` hand-ins) under each budget and write each training
    check's thresholds to the lab's calibration.yaml, as measured on the data it trained on: the
    bundled data, or ``data_root``'s (``grader.lab.calibration``). ``options``: the run options
    grading will use (limits …, as ``gradelab grade`` takes them), so that the reference trains
    under the same limits as the class; the mode, seed, checks, device, budget and data root are
    calibration's own."""
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
    ids = tuple(c.spec.id for c in training)
    data = dict(lab.calibration)
    label = [""]  # which hand-in is training, for the progress line

    def progress(event: object) -> None:
        if on_check and isinstance(event, CheckFinished):
            on_check(f"{label[0]}{event.result.id}")

    seeds = list(dict.fromkeys(seeds)) or [0]
    # While it measures, the lab has no thresholds: the reference trains on data that may have none
    # yet (``--data-root``), and what is measured is accuracy, not a verdict.
    lab.__dict__["calibration"] = {}
    try:
        out = _measure(lab, budgets, ids, seeds, against, data, margin, device, classes, data_root, progress, label,
                       options or RunOptions())
    finally:
        lab.__dict__.pop("calibration", None)  # read again from the file written below
    header = ("# Written by `gradelab calibrate`: thresholds of the training checks per budget, measured on the\n"
              "# lab's reference under the same harness, budget, seed and device, on the data named by `data`\n"
              "# (`bundled`, or a digest of --data-root's arrays under `other_data`). Rerun after changing a recipe.\n")
    write_atomic(lab.path(CALIBRATION_NAME), header + yaml.safe_dump(data, sort_keys=True))
    return out


def _measure(lab: BoundLab, budgets: list[Budget], ids: tuple[str, ...], seeds: list[int], against: list[Path],
             data: dict, margin: float, device: Device, classes: int, data_root: Path | None,
             progress: Callable[[object], None], label: list[str], options: RunOptions) -> list[Calibrated]:
    """Train the reference under each budget and seed (and each broken hand-in under the first
    seed), recording each check's entry into ``data``; one row per check and budget."""
    out: list[Calibrated] = []
    reference = lab.path(lab.manifest.reference.module)
    with opened(sandbox_preload(lab)) as sandbox:
        structural = {}
        for path in against:
            label[0] = f"{path.name}, without training: "
            run = Run(lab, options.model_copy(update={
                "mode": Mode.grade, "seed": seeds[0], "only": (), "train": False, "device": device, "budget": None,
                "reports": False, "data_root": data_root, "jobs": None, "ray": None}), sandbox=sandbox, on_event=progress)
            structural[path.name] = [c.id for c in grade_submission(run, path).checks  # training checks: skipped
                                     if c.status not in (Status.skipped, Status.awaiting_review) and c.score < c.max_score]

        def trained(budget: Budget, early: bool) -> tuple[list[SubmissionResult], dict[str, dict[str, Any]]]:
            """The reference under each seed, each broken hand-in under the first."""
            results = []
            for seed in seeds:
                run_options = options.model_copy(update={
                    "mode": Mode.grade, "seed": seed, "only": ids, "train": True, "device": device, "budget": budget,
                    "reports": False, "data_root": data_root, "early_stop": early, "jobs": None, "ray": None})
                label[0] = f"{budget.value}, seed {seed}{', stopping early' if early else ''}: "
                run = Run(lab, run_options, sandbox=sandbox, on_event=progress)
                results.append(grade_submission(run, reference))  # the reference, staged as a hand-in
            broken = {}
            for path in against:
                label[0] = f"{budget.value}: {path.name}{', stopping early' if early else ''}: "
                run = Run(lab, run_options.model_copy(update={"seed": seeds[0]}), sandbox=sandbox, on_event=progress)
                broken[path.name] = {c.id: c for c in grade_submission(run, path).checks}
            return results, broken

        for budget in map(Budget, budgets):
            # Thresholds come from the whole budget; then, under them, the same runs stopping early
            # say how often the rule changes a verdict.
            results, broken = trained(budget, early=False)
            rows = _record(data, lab, results, broken, budget.value, margin, seeds, device.value, classes,
                           bool(against), structural)
            if any(_stops_early(lab, r.check) for r in rows):
                lab.__dict__["calibration"] = data
                try:
                    early_results, early_broken = trained(budget, early=True)
                finally:
                    lab.__dict__["calibration"] = {}
                rows = _record_early(data, lab, rows, results, broken, early_results, early_broken, budget.value,
                                     seeds)
            out += rows
    return out


def _bound(lab: BoundLab, check: str) -> Any:
    return next(c for c in lab.checks if c.spec.id == check)


def _stops_early(lab: BoundLab, check: str) -> bool:
    return getattr(_bound(lab, check).params, "early_stop", None) is not None


def _record_early(data: dict, lab: BoundLab, rows: list[Calibrated], results: list[SubmissionResult],
                  broken: dict[str, dict[str, Any]], early_results: list[SubmissionResult],
                  early_broken: dict[str, dict[str, Any]], budget: str, seeds: list[int]) -> list[Calibrated]:
    """How often stopping early changed a verdict against the whole budget (the reference under
    each seed, each broken hand-in), and at which step each run was decided, per check."""
    out = []
    for row in rows:
        if not _stops_early(lab, row.check):
            out.append(row)
            continue
        entry = stored(data, row.check, budget, row.data)
        kind = _bound(lab, row.check).kind
        pairs = [(_by_id(whole)[row.check], _by_id(early)[row.check]) for whole, early in zip(results, early_results)]
        names = [f"reference, seed {seed}" for seed in seeds]
        for name in broken:
            if row.check in broken[name] and row.check in early_broken.get(name, {}):
                pairs.append((broken[name][row.check], early_broken[name][row.check]))
                names.append(name)
        verdicts = [(_passes(kind, w.details, _accuracy(w), entry), _passes(kind, e.details, _accuracy(e), entry))
                    for w, e in pairs]
        decided = [e.details.get("decided_at") for _, e in pairs]
        share = [d["step"] / d["of"] if isinstance(d, dict) else 1.0 for d in decided]
        # Which runs changed, not only how many: a change is traced to its hand-in without rerunning.
        changed = [f"{name} ({'passed' if whole else 'failed'} on the whole budget)"
                   for name, (whole, early) in zip(names, verdicts) if whole != early]
        entry["early_stop"] = {"runs": len(pairs), "verdict_changes": len(changed), "changed": changed,
                               "decided_at": decided, "mean_share_of_budget": round(sum(share) / len(share), 3)}
        out.append(row.model_copy(update={"early_stop": entry["early_stop"]}))
    return out


def _by_id(result: SubmissionResult) -> dict[str, Any]:
    return {c.id: c for c in result.checks}


def _record(data: dict, lab: BoundLab, results: list, broken: dict[str, dict[str, Any]], budget: str, margin: float,
            seeds: list[int], device: str, classes: int, against: bool,
            structural: dict[str, list[str]]) -> list[Calibrated]:
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
        identity = str(check.details.get("data") or BUNDLED)
        store(data, check.id, budget, identity, {
            "threshold": threshold, "reference_accuracy": round(float(accuracy), 4), "margin": margin,
            "discriminates": discriminates,
            "seed": seeds[0], "device": device, "epochs": check.details.get("epochs"),
            "train_size": check.details.get("train_size"), "gradelab": grader.__version__,
            "calibrated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        })
        entry = stored(data, check.id, budget, identity)
        generator = generator_of(lab.reference, str(getattr(bound[check.id].params, "dataset", "")))
        if identity == BUNDLED and generator:
            entry["generator"] = generator
        if len(seeds) > 1:
            entry["seeds"] = seeds
            entry["reference_accuracies"] = [round(a, 4) for a in accuracies]
        kind, params = bound[check.id].kind, bound[check.id].params
        extras = (kind.calibration_extras(params, [r.details for r in runs], margin)
                  if hasattr(kind, "calibration_extras") else {})
        entry.update(extras)
        theirs = {name: checks[check.id] for name, checks in broken.items() if check.id in checks}
        reached = {name: _accuracy(c) for name, c in theirs.items()}
        same = [n for n, acc in reached.items() if acc is not None and abs(acc - accuracies[0]) < 1e-9]
        row = Calibrated(check=check.id, budget=budget, reference_accuracy=accuracy, threshold=threshold,
                         discriminates=discriminates, against=reached, extras=extras, data=identity, unaffected=same,
                         let_through=[n for n, c in theirs.items()
                                      if n not in same and _passes(kind, c.details, reached[n], entry)],
                         caught_without_training={n: structural.get(n, []) for n in theirs})
        if against:
            entry["checked_against"] = {
                name: {"accuracy": None if acc is None else round(acc, 4), "let_through": name in row.let_through,
                       **({"unaffected": True} if name in same else {}),
                       **({"caught_without_training": row.caught_without_training[name]}
                          if row.caught_without_training.get(name) else {})}
                for name, acc in row.against.items()}
        out.append(row)
    return out
