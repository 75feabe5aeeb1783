"""``training``: the student's code trained by the lab's own loop, judged on held-out data.

The loop (a function in the lab's harness) runs in the sandbox with the student's module and the
training data; it gets the test inputs but never their labels. It returns per-epoch curves and
test scores (and, where the lab says so, the trained parameters, which the grader then runs
through its reference ``predict``). Test accuracy is computed here, in the grader's process.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from grader.checks.outputs import as_array
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.errors import LabError
from grader.options import Budget as BudgetName
from grader.results import Outcome
from grader.sandbox.replies import ProbeFailure, ProbeStatus, Stage


class Budget(KindParams):
    """How much training one budget allows (e.g. "cpu", "gpu", "smoke"): overrides of the harness's
    arguments and of the data set's, and the threshold calibrated for it."""
    args: dict[str, Any] = Field(default_factory=dict)
    dataset_args: dict[str, Any] = Field(default_factory=dict)
    threshold: float | None = Field(None, ge=0, le=1)


class TrainingParams(KindParams):
    harness: str = Field(description="Function in the lab's harness: (student, train_x, train_y, test_x, **args).")
    dataset: str = Field(description="Reference-module function (data_root, **dataset_args) → "
                                     "{train_x, train_y, test_x, test_y}.")
    dataset_args: dict[str, Any] = Field(default_factory=dict)
    args: dict[str, Any] = Field(default_factory=dict, description="Hyper-parameters passed to the harness.")
    threshold: float = Field(ge=0, le=1, description="Test accuracy needed to pass.")
    predict: str | None = Field(None, description="Reference function (params, X) → scores; when set, the "
                                                  "final test accuracy is computed from the returned parameters.")
    budgets: dict[str, Budget] = Field(default_factory=dict, description="Named budgets; the run picks one "
                                       "(--budget, else gpu or cpu by device). calibration.yaml may set their thresholds.")
    device_arg: bool = Field(False, description="Pass the run's device ('cuda' or 'cpu') to the harness as `device`.")
    seed_arg: bool = Field(False, description="Pass the run's seed (--seed, recorded in the result) to the harness "
                                              "as `seed`: the same seed trains the same network.")

    @field_validator("budgets")
    @classmethod
    def _known_budget_names(cls, v: dict[str, Budget]) -> dict[str, Budget]:
        return known_budget_names(v)


def known_budget_names(budgets: dict[str, Any]) -> dict[str, Any]:
    """A manifest's budgets, refused when one is not a budget a run can ask for."""
    known = [b.value for b in BudgetName]
    unknown = [name for name in budgets if name not in known]
    if unknown:
        raise ValueError(f"unknown budget {', '.join(map(repr, unknown))}: budgets are named {', '.join(known)}")
    return budgets


def accuracy(scores: Any, labels: np.ndarray) -> float | None:
    """Share of rows whose highest score is the label; ``None`` if scores are unusable."""
    arr = as_array(scores)
    if arr is None or arr.ndim != 2 or arr.shape[0] != len(labels) or not np.isfinite(arr).all():
        return None
    return float((arr.argmax(1) == labels).mean())


def _first_bad(values: list[Any]) -> int | None:
    for i, v in enumerate(values):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return i
    return None


@register_check("training")
class TrainingCheck(CheckKind):
    Params = TrainingParams
    summary = "Trains the student's code with the lab's loop in the sandbox; test accuracy computed by the grader."

    @staticmethod
    def plan(ctx, params: TrainingParams) -> tuple[str | None, dict[str, Any], dict[str, Any], float]:
        """(budget name, harness args, data set args, threshold) for this run."""
        args, dataset_args, threshold, name = dict(params.args), dict(params.dataset_args), params.threshold, None
        if params.budgets:
            name = ctx.budget if ctx.budget in params.budgets else None
            if name is None:
                if ctx.budget_named:  # asked for by name on the command line
                    raise LabError(f"check {ctx.check_id!r} has no budget {ctx.budget!r}; "
                                   f"its budgets: {', '.join(params.budgets)}")
                name = "cpu" if "cpu" in params.budgets else next(iter(params.budgets))
            budget = params.budgets[name]
            args.update(budget.args)
            dataset_args.update(budget.dataset_args)
            threshold = budget.threshold if budget.threshold is not None else threshold
        calibrated = ctx.lab.calibration.get(ctx.check_id, {}).get(name or "default", {})
        if isinstance(calibrated.get("threshold"), (int, float)):
            threshold = float(calibrated["threshold"])
        if params.device_arg:
            args["device"] = ctx.device
        if params.seed_arg:
            args["seed"] = ctx.seed
        return name, args, dataset_args, threshold

    def run(self, ctx, params: TrainingParams) -> Outcome:
        budget, args, dataset_args, threshold = self.plan(ctx, params)
        data = ctx.dataset(params.dataset, dataset_args)
        test_y = np.asarray(data["test_y"])
        try:
            reply = ctx.probe("harness", source=ctx.lab.harness_source, entry=params.harness,
                              args={"train_x": data["train_x"], "train_y": data["train_y"],
                                    "test_x": data["test_x"], **args})
        except ProbeFailure as failure:
            if failure.stage != Stage.probe or failure.status != ProbeStatus.error or failure.out_of_memory:
                raise  # import failures, timeouts and memory are worded by the engine
            return Outcome.error(f"Training stopped: your code raised {failure.message}.")
        if not isinstance(reply, dict):
            return Outcome.error("the training loop returned nothing usable.")
        curves = {k: list(v) if isinstance(v, list) else [] for k, v in (reply.get("curves") or {}).items()}
        epoch_scores = reply.get("test_scores") or []
        test_curve = [accuracy(s, test_y) for s in epoch_scores]
        final = test_curve[-1] if test_curve else None
        if params.predict and isinstance(reply.get("params"), dict):
            try:
                final = accuracy(getattr(ctx.reference, params.predict)(reply["params"], data["test_x"]), test_y)
            except Exception:  # noqa: BLE001  (parameters of the wrong shape: not a usable network)
                final = None
        loss = curves.get("loss", [])
        panels = {"loss": {"train": loss},
                  "accuracy": {"train": curves.get("train_accuracy", []),
                               "test": [a if a is not None else float("nan") for a in test_curve],
                               "threshold": threshold}}
        details = {"curves": panels, "test_accuracy": final, "threshold": threshold, "budget": budget,
                   "device": ctx.device, "seed": args.get("seed"),
                   "epochs": len(loss), "dataset": params.dataset, "train_size": len(data["train_y"]),
                   "test_size": len(test_y)}
        bad = _first_bad(loss)
        if bad is not None:
            return Outcome.failed(f"Training diverged: the training loss became {loss[bad]} after epoch {bad + 1}, "
                                  f"so the network learned nothing usable (test accuracy "
                                  f"{'not computable' if final is None else f'{final:.1%}'}).",
                                  diagnosis="diverged", details=details)
        if final is None:
            return Outcome.failed("After training, the network's test scores were not usable (wrong shape, "
                                  "NaN or inf).", details=details)
        verdict = (f"Test accuracy {final:.1%} after {len(loss)} epoch{'s' * (len(loss) != 1)} on {params.dataset} "
                   f"({len(data['train_y'])} training examples, {len(test_y)} test examples); "
                   f"{threshold:.0%} needed{f' ({budget} budget)' if budget else ''}.")
        if final >= threshold:
            return Outcome.passed(verdict, got=final, expected=threshold, details=details)
        return Outcome.failed(verdict, got=final, expected=threshold, details=details)
