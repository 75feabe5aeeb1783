"""``training``: the student's code trained by the lab's own loop, judged on held-out data.

The loop (a function in the lab's harness) runs in the sandbox with the student's module and the
training data; it gets the test inputs but never their labels. It returns per-epoch curves and
test scores (and, where the lab says so, the trained parameters, which the grader then runs
through its reference ``predict``). Test accuracy is computed here, in the grader's process.

The loop is trusted code, but it runs after the student's import, in the student's process: the
student's code can rewrite it (twice the epochs, a made-up loss curve). So nothing it returns is
taken on trust: the reply must fit the budget (one curve point and one set of test scores per
epoch of the budget, accuracies between 0 and 1, scores of shape test examples × classes), or the
check is zero; the verdict is the accuracy of the returned scores (or parameters) on labels the
child never saw, computed here. What that certifies, and what it cannot, is in docs/security.md.

Students see their accuracy, their curves and the threshold (public: it is what they aim for).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field, field_validator

from grader.checks.forbidden import OPERATOR_RECORD_PRELOAD, forbidden_use
from grader.checks.registry import CheckKind, KindParams, LocalCheck, register_check
from grader.checks.values import as_array
from grader.errors import LabError
from grader.lab.manifest import Reveal
from grader.options import Budget as BudgetName
from grader.results import Disclosure, Feedback, Outcome
from grader.sandbox.replies import CallReply, ProbeFailure, ProbeStatus, Stage

if TYPE_CHECKING:
    import numpy as np


class Budget(KindParams):
    """How much training one budget allows (e.g. "cpu", "gpu", "smoke"): overrides of the harness's
    arguments and of the data set's, and the threshold calibrated for it."""
    args: dict[str, Any] = Field(default_factory=dict)
    dataset_args: dict[str, Any] = Field(default_factory=dict)
    threshold: float | None = Field(None, ge=0, le=1)


class EarlyStop(KindParams):
    """When the lab's loop may stop before the budget's end: a sequential decision on a split of
    training data held out of training (labelled, so the loop can score it; the verdict is still the
    test accuracy the grader computes). A pass needs the held-out accuracy to clear the threshold by
    ``margin`` at ``confirm`` evaluations in a row, never one lucky batch; a non-finite loss stops at
    once; a network still near chance at as many evaluations in a row after ``stuck_after`` of the
    budget stops too.
    ``gradelab calibrate`` measures how often stopping early changes a verdict."""
    eval_every: int = Field(ge=1, description="Training steps between two evaluations on the held-out split.")
    held_out: int = Field(ge=10, description="Training examples loaded beyond the budget's n_train and held out "
                                             "of training to evaluate on.")
    margin: float = Field(0.05, ge=0, le=1, description="How far above the threshold the held-out accuracy must be.")
    confirm: int = Field(2, ge=1, description="Evaluations in a row that must clear it.")
    stuck_after: float = Field(0.5, gt=0, le=1, description="Share of the budget's steps after which a held-out "
                                                            "accuracy within stuck_margin of chance stops the run.")
    stuck_margin: float = Field(0.05, ge=0, le=1)
    train_gap: float | None = Field(None, gt=0, le=1, description=(
        "Skip an evaluation while the accuracy on the training batches since the last one is more than "
        "this below the pass mark (a network on its plateau: scoring the held-out split would cost "
        "steps and say no). A skipped evaluation counts as one that does not clear it; from stuck_after "
        "on, none is skipped. None: every evaluation runs."))


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
    forbid_autograd: bool = Field(False, description="The whole training run may not use autograd (a hand-written "
                                  "backward): a backward pass run or a graph built anywhere in it zeroes the check.")
    forbid_ops: list[str] = Field(default_factory=list, description="Operators the whole training run may not run "
                                  "(glob patterns of dispatcher names).")
    early_stop: EarlyStop | None = Field(None, description="Stop as soon as the verdict is certain (the harness "
                                         "takes `val_x`, `val_y` and `early_stop`); None: always the whole budget.")
    test_twice: str | None = Field(None, description="Ask the harness (`test_twice=True`) to score the test images a "
                                   "second time after training (`test_scores_again`): a trained network answers the "
                                   "same twice, so scores that differ fail the check with this message (what is "
                                   "random at test time in this lab's models); None: asked once.")

    @field_validator("budgets")
    @classmethod
    def _known_budget_names(cls, v: dict[str, Budget]) -> dict[str, Budget]:
        return known_budget_names(v)


class Planned(Protocol):
    """What ``TrainingCheck.plan`` reads of a check's params (a training check's, a comparison's)."""

    @property
    def args(self) -> dict[str, Any]: ...
    @property
    def dataset(self) -> str: ...
    @property
    def dataset_args(self) -> dict[str, Any]: ...
    @property
    def threshold(self) -> float: ...
    @property
    def budgets(self) -> Mapping[str, Budget]: ...
    @property
    def device_arg(self) -> bool: ...
    @property
    def seed_arg(self) -> bool: ...


def known_budget_names(budgets: dict[str, Any]) -> dict[str, Any]:
    """A manifest's budgets, refused when one is not a budget a run can ask for."""
    known = [b.value for b in BudgetName]
    unknown = [name for name in budgets if name not in known]
    if unknown:
        raise ValueError(f"unknown budget {', '.join(map(repr, unknown))}: budgets are named {', '.join(known)}")
    return budgets


def accuracy(scores: Any, labels: np.ndarray) -> float | None:
    """Share of rows whose highest score is the label; ``None`` if scores are unusable."""
    import numpy as np

    arr = as_array(scores)
    if arr is None or arr.ndim != 2 or arr.shape[0] != len(labels) or not np.isfinite(arr).all():
        return None
    return float((arr.argmax(1) == labels).mean())


STOP_REASONS = ("passed", "diverged", "stuck")


def stop_of(reply: Any) -> dict[str, Any] | None:
    """Where and why the loop stopped before the budget's end (``{"step", "of", "reason"}``), or
    ``None`` when it ran the whole budget."""
    stopped = reply.get("stopped") if isinstance(reply, dict) else None
    if not isinstance(stopped, dict) or stopped.get("reason") not in STOP_REASONS:
        return None
    step, of = stopped.get("step"), stopped.get("of")
    if not (isinstance(step, int) and isinstance(of, int)) or isinstance(step, bool) or isinstance(of, bool):
        return None
    if not 0 < step <= of:
        return None
    return {"step": step, "of": of, "reason": stopped["reason"]}


def budget_problem(reply: Any, epochs: Any) -> str | None:
    """Why a harness reply cannot have come from the lab's loop under this budget; ``None`` when
    it could. The loop appends one loss, one training accuracy and one set of test scores per
    epoch, whatever the student's code does (fewer where it stopped early: then it says where);
    only code that rewrote the loop returns otherwise. A loop made to stop early gains nothing:
    the verdict is the test accuracy of the scores it returns. Scores of the wrong shape are the
    student's model's doing, and judged as unusable, not here."""
    if not isinstance(reply, dict) or not isinstance(reply.get("curves"), dict):
        return "it returned no curves"
    curves, scores = reply["curves"], reply.get("test_scores")
    if not isinstance(scores, list) or not all(isinstance(c, list) for c in curves.values()):
        return "its curves or test scores are not lists"
    lengths = {name: len(values) for name, values in curves.items()} | {"test scores": len(scores)}
    if isinstance(epochs, int) and not isinstance(epochs, bool):
        early = stop_of(reply) is not None
        wrong = {name: n for name, n in lengths.items() if (not 0 < n <= epochs if early else n != epochs)}
        if early and not wrong and len(set(lengths.values())) > 1:
            return f"its curves and test scores cover different numbers of epochs ({lengths})"
        if wrong:
            name, n = next(iter(wrong.items()))
            return f"it reports {n} epochs of {name} where the budget runs {epochs}"
    elif len(set(lengths.values())) > 1:
        return f"its curves and test scores cover different numbers of epochs ({lengths})"
    for name in ("train_accuracy",):
        values = curves.get(name, [])
        if any(not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0 for v in values):
            return f"its {name.replace('_', ' ')} leaves [0, 1]"
    return None


def _shape_problem(scores: Any, n_test: int, n_classes: int) -> str | None:
    """Why the final test scores cannot be scored: one row per test example, one column per class."""
    arr = as_array(scores)
    if arr is None or arr.shape != (n_test, n_classes):
        got = "not numbers" if arr is None else f"of shape {tuple(arr.shape)}"
        return f"they were {got}, expected ({n_test}, {n_classes}): one score per class for each test example"
    return None


def _decided(stopped: dict[str, Any], rule: dict[str, Any]) -> str:
    """Why the loop stopped before the budget's end, as the report says it."""
    if stopped["reason"] == "passed":
        return (f"Decided at step {stopped['step']} of {stopped['of']}: the accuracy on held-out training examples "
                f"reached {rule['pass_at']:.0%} at {rule['confirm']} evaluation{'s' * (rule['confirm'] > 1)} in a row, "
                "so the rest of the budget was not needed.")
    return (f"Decided at step {stopped['step']} of {stopped['of']}: after {rule['stuck_after']:.0%} of the budget, the "
            f"accuracy on held-out training examples was still below {rule['stuck_below']:.0%}, close to chance, at "
            f"{rule['confirm']} evaluation{'s' * (rule['confirm'] > 1)} in a row, so the network was not learning.")


def _first_bad(values: list[Any]) -> int | None:
    for i, v in enumerate(values):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return i
    return None


# A torch optimizer's constructor imports torch._dynamo (~1.8 s, torch's ``_disable_dynamo``
# decorator): every kind that trains has it imported once in the fork server, not in each child.
OPTIMIZER_PRELOAD = ["torch._dynamo"]


def budget_datasets(params: Planned, budget: str, named: bool, early_stop: bool) -> list[tuple[str, dict[str, Any]]]:
    """The data sets a training check loads under ``budget``: the budget's, and with early
    stopping the same with the held-out examples after it (``TrainingCheck.early_args``)."""
    try:
        name = TrainingCheck.budget_of(params, budget, named)
    except LabError:
        return []  # said by the check itself, when it runs
    dataset_args = {**params.dataset_args, **(params.budgets[name].dataset_args if name else {})}
    wider = held_out_args(dataset_args, getattr(params, "early_stop", None)) if early_stop else None
    return [(params.dataset, dataset_args), *([(params.dataset, wider)] if wider else [])]


def held_out_args(dataset_args: dict[str, Any], rule: EarlyStop | None) -> dict[str, Any] | None:
    """The data set's arguments that also load the examples early stopping holds out, after the
    budget's own; ``None`` when there is no rule or the budget names no ``n_train``."""
    n_train = dataset_args.get("n_train")
    if rule is None or not isinstance(n_train, int):
        return None
    return {**dataset_args, "n_train": n_train + rule.held_out}


@register_check("training")
class TrainingCheck(CheckKind):
    Params = TrainingParams
    summary = "Trains the student's code with the lab's loop in the sandbox; test accuracy computed by the grader."
    disclosure = Disclosure(shows=[Reveal.got, Reveal.expected], details={
        "curves": [Reveal.got], "test_accuracy": [Reveal.got], "threshold": [], "budget": [], "device": [],
        "seed": [], "epochs": [], "dataset": [], "data": [], "decided_at": [], "held_out": [Reveal.got], "train_size": [], "test_size": [],
        "random_at_test_time": [Reveal.got]})

    @staticmethod
    def passes_calibrated(details: dict[str, Any], entry: dict[str, Any]) -> bool:
        """Whether a result with these details passes under a calibration entry: its accuracy, and a
        network that answered the same when asked twice (``test_twice``)."""
        acc = details.get("test_accuracy")
        return isinstance(acc, (int, float)) and acc >= entry["threshold"] and not details.get("random_at_test_time")

    def student_edition(self, params: TrainingParams) -> LocalCheck:
        """The data set loader, the harness and the calibrated thresholds are not solutions. The
        reference ``predict`` is (a forward pass): without it, the test accuracy is computed from
        the scores the student's own forward gives, which for a working hand-in is the same."""
        local = params.model_dump(exclude={"predict"}, exclude_defaults=True)
        return LocalCheck(params=local, reference=(params.dataset,), harness=True, calibration=True)

    def preload(self, params) -> list[str]:
        return list(dict.fromkeys([*OPTIMIZER_PRELOAD, *(OPERATOR_RECORD_PRELOAD if params.forbid_ops or
                                                         params.forbid_autograd else [])]))

    @staticmethod
    def budget_of(params: Planned, wanted: str, named: bool) -> str | None:
        """The budget a run trains under: ``wanted`` when the check has it; else its cpu budget (or
        its first), unless ``wanted`` was asked for by name (``None``: the check has no budgets)."""
        if not params.budgets:
            return None
        if wanted in params.budgets:
            return wanted
        if named:  # asked for by name on the command line
            raise LabError(f"no budget {wanted!r}; its budgets: {', '.join(params.budgets)}")
        return "cpu" if "cpu" in params.budgets else next(iter(params.budgets))

    def datasets(self, params: TrainingParams, budget: str, named: bool, early_stop: bool) -> list[tuple[str, dict[str, Any]]]:
        return budget_datasets(params, budget, named, early_stop)

    @classmethod
    def plan(cls, ctx, params: Planned) -> tuple[str | None, dict[str, Any], dict[str, Any], float]:
        """(budget name, harness args, data set args, threshold) for this run."""
        args, dataset_args, threshold = dict(params.args), dict(params.dataset_args), params.threshold
        try:
            name = cls.budget_of(params, ctx.budget, ctx.budget_named)
        except LabError as exc:
            raise LabError(f"check {ctx.check_id!r} has {exc}") from None
        if name is not None:
            budget = params.budgets[name]
            args.update(budget.args)
            dataset_args.update(budget.dataset_args)
            threshold = budget.threshold if budget.threshold is not None else threshold
        calibrated = ctx.calibration(params.dataset, dataset_args, name, seeded=params.seed_arg)
        if isinstance(calibrated.get("threshold"), (int, float)):
            threshold = float(calibrated["threshold"])
        if params.device_arg:
            args["device"] = ctx.device
        if params.seed_arg:
            args["seed"] = ctx.seed
        return name, args, dataset_args, threshold

    @staticmethod
    def early_args(ctx, params: TrainingParams, dataset_args: dict[str, Any], threshold: float,
                   n_classes: int) -> dict[str, Any]:
        """What the harness needs to stop early (the held-out split and the rule), or nothing: the
        lab declares no rule, the run asked for the whole budget, or the data has no examples
        beyond the budget's to hold out. The split comes after the budget's own training
        examples, so the network trains on exactly what it trains on without the rule."""
        rule = params.early_stop
        wider = held_out_args(dataset_args, rule) if ctx.options.early_stop else None
        if rule is None or wider is None:
            return {}
        n_train = dataset_args["n_train"]
        more = ctx.dataset(params.dataset, wider)
        if len(more["train_y"]) < wider["n_train"]:
            return {}
        return {"val_x": more["train_x"][n_train:], "val_y": more["train_y"][n_train:], "early_stop": {
            "eval_every": rule.eval_every, "pass_at": min(1.0, threshold + rule.margin), "confirm": rule.confirm,
            "stuck_after": rule.stuck_after, "stuck_below": 1 / n_classes + rule.stuck_margin,
            **({"train_gap": rule.train_gap} if rule.train_gap is not None else {})}}

    def run(self, ctx, params: TrainingParams) -> Outcome:
        import numpy as np

        budget, args, dataset_args, threshold = self.plan(ctx, params)
        data = ctx.dataset(params.dataset, dataset_args)
        test_y = np.asarray(data["test_y"])
        n_classes = int(max(np.max(np.asarray(data["train_y"])), np.max(test_y))) + 1
        watch = {"forbid_ops": params.forbid_ops, "forbid_autograd": True} if params.forbid_autograd else \
            {"forbid_ops": params.forbid_ops} if params.forbid_ops else {}
        early = self.early_args(ctx, params, dataset_args, threshold, n_classes)
        if params.test_twice:
            early = {**early, "test_twice": True}
        try:
            reply = ctx.probe("harness", source=ctx.lab.harness_source, entry=params.harness,
                              args={"train_x": data["train_x"], "train_y": data["train_y"],
                                    "test_x": data["test_x"], **args, **early}, **watch)
        except ProbeFailure as failure:
            if failure.stage != Stage.probe or failure.status != ProbeStatus.error or failure.out_of_memory:
                raise  # import failures, timeouts and memory are worded by the engine
            return Outcome.error(Feedback(f"Training stopped: your code raised {failure.message}."))
        if not isinstance(reply, dict) or not isinstance(reply.get("result"), dict):
            return Outcome.error(Feedback("the training loop returned nothing usable."))
        forbidden = forbidden_use("Your code, trained by the lab's loop,", [CallReply.parse({"ok": True, **{
            k: reply.get(k) or [] for k in ("operators", "autograd")}})])
        if forbidden is not None:
            return forbidden
        result = reply["result"]
        problem = budget_problem(result, args.get("epochs"))
        if problem is not None:
            return Outcome.failed(Feedback(f"The training loop's results do not fit its budget: {problem}. The loop runs "
                                           "in the same process as your code, so results it could not have produced "
                                           "are not graded; the verdict for this check is zero."),
                                  diagnosis="harness-tampered", details={"budget": budget, "epochs": args.get("epochs")})
        curves = {k: list(v) for k, v in result["curves"].items()}
        epoch_scores = result["test_scores"]
        unusable = _shape_problem(epoch_scores[-1], len(test_y), n_classes) if epoch_scores else None
        test_curve = [accuracy(s, test_y) for s in epoch_scores]
        final = test_curve[-1] if test_curve and unusable is None else None
        if params.predict and isinstance(result.get("params"), dict):
            try:
                final = accuracy(getattr(ctx.reference, params.predict)(result["params"], data["test_x"]), test_y)
            except Exception:
                final = None
        loss = curves.get("loss", [])
        panels = {"loss": {"train": loss},
                  "accuracy": {"train": curves.get("train_accuracy", []),
                               "test": [a if a is not None else float("nan") for a in test_curve],
                               "threshold": threshold}}
        details = {"curves": panels, "test_accuracy": final, "threshold": threshold, "budget": budget,
                   "device": ctx.device, "seed": args.get("seed"),
                   "epochs": len(loss), "dataset": params.dataset, "data": ctx.data_identity(params.dataset, dataset_args),
                   "train_size": len(data["train_y"]), "test_size": len(test_y)}
        stopped = stop_of(result) if early else None
        if early:
            details["decided_at"] = stopped  # None: the whole budget ran
            held_out = result.get("held_out")
            if isinstance(held_out, dict):
                details["held_out"] = {k: list(v) for k, v in held_out.items() if k in ("steps", "accuracy", "skipped")
                                       and isinstance(v, list)}
        bad = _first_bad(loss)
        if bad is not None:
            at = f" at step {stopped['step']} of {stopped['of']}" if stopped else f" after epoch {bad + 1}"
            return Outcome.failed(Feedback(
                f"Training diverged: the training loss became {loss[bad]}{at}, so the network "
                f"learned nothing usable (test accuracy {'not computable' if final is None else f'{final:.1%}'})."
                + (" Training stopped there." if stopped else "")), diagnosis="diverged", details=details)
        if final is None:
            why = f": {unusable}" if unusable else " (wrong shape, NaN or inf)"
            return Outcome.failed(Feedback(f"After training, the network's test scores were not usable{why}."),
                                  details=details)
        if params.test_twice:
            again = result.get("test_scores_again")
            same = again is not None and _shape_problem(again, len(test_y), n_classes) is None and bool(np.allclose(
                np.asarray(again, dtype=np.float64), np.asarray(epoch_scores[-1], dtype=np.float64), rtol=1e-4, atol=1e-5))
            if not same:
                details["random_at_test_time"] = True
                return Outcome.failed(Feedback(
                    f"Asked twice for its scores on the same test images after training, your network answered "
                    f"differently (test accuracy {final:.1%} the first time): {params.test_twice}"),
                    diagnosis="random-at-test-time", details=details)
        verdict = Feedback(f"Test accuracy {final:.1%}", Reveal.got).instead("Test accuracy", Reveal.got)
        trained = (f"{stopped['step']} of the budget's {stopped['of']} steps" if stopped
                   else f"{len(loss)} epoch{'s' * (len(loss) != 1)}")
        verdict.add(f" after {trained} on {params.dataset} "
                    f"({len(data['train_y'])} training examples, {len(test_y)} test examples); "
                    f"{threshold:.0%} needed{f' ({budget} budget)' if budget else ''}.")
        if stopped:
            verdict.say(_decided(stopped, early["early_stop"]))
        if final >= threshold:
            return Outcome.passed(verdict, got=final, expected=threshold, details=details)
        return Outcome.failed(verdict, got=final, expected=threshold, details=details)
