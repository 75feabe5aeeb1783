"""``training``: the student's code trained by the lab's own loop, judged on held-out data.

The loop (a function in the lab's harness) runs in the sandbox with the student's module and the
training data; it gets the test inputs but never their labels. It returns per-epoch curves and
test scores (and, where the lab says so, the trained parameters, which the grader then runs
through its reference ``predict``). Test accuracy is computed here, in the grader's process.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import Field

from grader.checks.outputs import as_array
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.errors import LabError
from grader.results import Outcome
from grader.sandbox.runner import ProbeFailure


class TrainingParams(KindParams):
    harness: str = Field(description="Function in the lab's harness: (student, train_x, train_y, test_x, **args).")
    dataset: str = Field(description="Reference-module function (data_root, **dataset_args) → "
                                     "{train_x, train_y, test_x, test_y}.")
    dataset_args: dict[str, Any] = Field(default_factory=dict)
    args: dict[str, Any] = Field(default_factory=dict, description="Hyper-parameters passed to the harness.")
    threshold: float = Field(ge=0, le=1, description="Test accuracy needed to pass.")
    predict: str | None = Field(None, description="Reference function (params, X) → scores; when set, the "
                                                  "final test accuracy is computed from the returned parameters.")


@lru_cache(maxsize=8)
def _load(reference: Any, dataset: str, args_json: str, data_root: str | None) -> dict[str, Any]:
    try:
        return getattr(reference, dataset)(data_root=data_root, **json.loads(args_json))
    except Exception as exc:  # the data set is the instructor's set-up, not the student's fault
        raise LabError(f"data set {dataset!r} could not be loaded"
                       f"{f' from {data_root}' if data_root else ''}: {type(exc).__name__}: {exc}") from exc


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

    def run(self, ctx, params: TrainingParams) -> Outcome:
        data = _load(ctx.reference, params.dataset, json.dumps(params.dataset_args, sort_keys=True),
                     str(ctx.data_root) if ctx.data_root else None)
        test_y = np.asarray(data["test_y"])
        try:
            reply = ctx.probe("harness", source=ctx.lab.harness_source, entry=params.harness,
                              args={"train_x": data["train_x"], "train_y": data["train_y"],
                                    "test_x": data["test_x"], **params.args})
        except ProbeFailure as failure:
            if failure.stage != "probe" or failure.status != "error" or failure.out_of_memory:
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
                               "threshold": params.threshold}}
        details = {"curves": panels, "test_accuracy": final, "threshold": params.threshold,
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
        verdict = (f"Test accuracy {final:.1%} after {len(loss)} epochs on {params.dataset} "
                   f"({len(data['train_y'])} training examples, {len(test_y)} test examples); "
                   f"{params.threshold:.0%} needed.")
        if final >= params.threshold:
            return Outcome.passed(verdict, got=final, expected=params.threshold, details=details)
        return Outcome.failed(verdict, got=final, expected=params.threshold, details=details)
