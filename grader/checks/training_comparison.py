"""``training_comparison``: two of the student's models trained by the lab's loop at several
learning rates, judged on what the comparison must show.

For each model, the band of per-step training losses across the learning rates (per step, the
lowest and the highest loss among the runs) is what Santurkar et al. (2018) and the courses that
follow them draw to show why BatchNorm helps: the better-conditioned model's band is lower and
narrower. A band is summed up by its level (the mean of its middle over the steps) and its width
(the mean of max − min), from the step the lab says (at the start every run sits at the initial
loss); the improved model's level and width are divided by the baseline's.
How small those ratios must be is not a guess: ``gradelab calibrate`` trains the lab's reference
under the same harness, budget, seed and device and writes, for each budget, the reference's
ratios, the limits (the reference's ratio plus a margin, and never 1 or more when the reference
shows the effect at all) and the reference's own bands, which the report draws beside the
student's.

A part the reference does not show under every calibrated seed is not judged under that budget,
and the message says so.

Each (model, learning rate) run is one sandboxed child, with the check's limits; the child gets
the test inputs but never their labels, and returns per-step losses and test logits, from which
the grader computes test accuracy. The verdict has three equal parts: the improved model's test
accuracy at the lab's main learning rate against its calibrated threshold, its band lower, and
its band narrower.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator, model_validator

from grader.checks.registry import CheckKind, KindParams, register_check
from grader.checks.training import (
    OPTIMIZER_PRELOAD,
    Budget,
    TrainingCheck,
    accuracy,
    budget_datasets,
    known_budget_names,
)
from grader.lab.manifest import Need, Reveal
from grader.results import Disclosure, Outcome
from grader.sandbox.replies import ProbeFailure, ProbeStatus, Stage

OURS = "your models"
REFERENCE = "reference, same budget"


class Contender(KindParams):
    cls: str = Field(description="The student's model class (a declared symbol).")
    label: str = Field(description="How feedback and figures name it.")


class ComparisonBudget(Budget):
    learning_rates: list[float] | None = Field(None, min_length=2, description="The rates under this budget.")


class ComparisonParams(KindParams):
    harness: str = Field(description="Function in the lab's harness: (student, train_x, train_y, test_x, model, lr, "
                                     "evals, **args) → {losses: per step, test_scores: logits at each evaluation, "
                                     "eval_steps}.")
    dataset: str = Field(description="Reference-module function (data_root, **dataset_args) → "
                                     "{train_x, train_y, test_x, test_y}.")
    dataset_args: dict[str, Any] = Field(default_factory=dict)
    args: dict[str, Any] = Field(default_factory=dict, description="Hyper-parameters passed to the harness.")
    baseline: Contender
    improved: Contender = Field(description="The model whose band must be lower and narrower.")
    learning_rates: list[float] = Field(min_length=2)
    accuracy_lr: float | None = Field(None, description="The run whose test accuracy is judged (and drawn); "
                                                        "default: the first learning rate.")
    evals: int = Field(4, ge=1, description="Test-set evaluations in the runs at accuracy_lr (1 in the others); "
                                            "a budget's args may set `evals` too.")
    threshold: float = Field(ge=0, le=1, description="Test accuracy the improved model needs (calibrated per budget).")
    max_level_ratio: float = Field(1.0, gt=0, description="Uncalibrated limit of improved level / baseline level.")
    max_width_ratio: float = Field(1.0, gt=0, description="Uncalibrated limit of improved width / baseline width.")
    band_margin: float = Field(0.15, ge=0, description="What calibrate adds to the reference's ratios for the limits.")
    smooth: int = Field(1, ge=1, description="Trailing mean over this many steps before the band (1: raw losses).")
    summary_from: float = Field(0.0, ge=0, lt=1, description=(
        "Share of the first steps left out of level and width (the figure draws them all): at the start every "
        "run sits at the initial loss, and a short budget's bands only say something once training moves."))
    budgets: dict[str, ComparisonBudget] = Field(default_factory=dict)
    device_arg: bool = False
    seed_arg: bool = False

    @field_validator("budgets")
    @classmethod
    def _known_budget_names(cls, v: dict[str, ComparisonBudget]) -> dict[str, ComparisonBudget]:
        return known_budget_names(v)

    @model_validator(mode="after")
    def _two_models(self) -> ComparisonParams:
        if self.baseline.cls == self.improved.cls:
            raise ValueError("baseline and improved must be different classes")
        return self


def _numbers(values: Any) -> list[float]:
    """Per-step losses as floats; anything that is not a finite number reads as NaN."""
    out = []
    for v in values if isinstance(values, list) else []:
        f = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        out.append(f if math.isfinite(f) else math.nan)
    return out


def _smoothed(values: list[float], window: int) -> list[float]:
    import numpy as np

    if window <= 1 or not values:
        return values
    arr = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(arr, 0, 0.0))
    idx = np.arange(1, len(arr) + 1)
    lo = np.maximum(idx - window, 0)
    return ((sums[idx] - sums[lo]) / (idx - lo)).tolist()


def loss_band(runs: list[list[float]]) -> tuple[list[float], list[float]]:
    """Per step, the lowest and highest loss over the runs that reached it; NaN (a run that stopped
    being finite) makes that step's band unbounded."""
    steps = max((len(r) for r in runs), default=0)
    low, high = [], []
    for t in range(steps):
        values = [r[t] for r in runs if t < len(r)]
        if any(math.isnan(v) for v in values):
            low.append(math.nan)
            high.append(math.nan)
        else:
            low.append(min(values))
            high.append(max(values))
    return low, high


def band_summary(low: list[float], high: list[float]) -> tuple[float, float]:
    """(level, width): the mean of the band's middle and of its width over the steps; infinite if a
    step is unbounded."""
    import numpy as np

    lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if not len(lo) or not np.isfinite(lo).all() or not np.isfinite(hi).all():
        return math.inf, math.inf
    return float(((lo + hi) / 2).mean()), float((hi - lo).mean())


def _ratio(improved: float, baseline: float) -> float:
    if not math.isfinite(improved):
        return math.inf
    if not math.isfinite(baseline):
        return 0.0
    return improved / baseline if baseline > 0 else (1.0 if improved == 0 else math.inf)


def _rate(lr: float) -> str:
    return f"{lr:g}"


@register_check("training_comparison")
class TrainingComparisonCheck(CheckKind):
    Params = ComparisonParams
    summary = ("Two models trained by the lab's loop at several learning rates: the improved model's test accuracy, "
               "and its loss band across the rates lower and narrower by what the reference shows (calibrated).")

    # Everything here is the student's own training measured against calibrated limits: the
    # reference's band and ratios are how a working recipe behaves, not a solution to copy. The
    # message is written from those numbers only, so it is shown as it is.
    disclosure = Disclosure(shows=[Reveal.got, Reveal.expected], plain_message=True, details={
        "bands": [Reveal.got, Reveal.expected], "curves": [Reveal.got], "band_metrics": [Reveal.got, Reveal.expected],
        "runs": [Reveal.got], "test_accuracy": [Reveal.got], "threshold": [], "budget": [], "device": [], "seed": [],
        "epochs": [], "steps": [], "dataset": [], "data": [], "train_size": [], "test_size": [], "learning_rates": [],
        "accuracy_lr": []})

    def needs(self, params: ComparisonParams) -> list[Need]:
        return [Need(params.baseline.cls), Need(params.improved.cls)]

    def preload(self, params: ComparisonParams) -> list[str]:
        return list(OPTIMIZER_PRELOAD)

    def datasets(self, params: ComparisonParams, budget: str, named: bool, early_stop: bool) -> list[tuple[str, dict[str, Any]]]:
        return budget_datasets(params, budget, named, early_stop)

    @staticmethod
    def limits(ctx, params: ComparisonParams, budget: str | None, dataset_args: dict[str, Any]) -> dict[str, Any]:
        """The band limits and the reference's bands for this budget, from calibration.yaml (the
        entry measured on this run's data)."""
        calibrated = ctx.calibration(params.dataset, dataset_args, budget, seeded=params.seed_arg)
        return {"max_level_ratio": float(calibrated.get("max_level_ratio", params.max_level_ratio)),
                "max_width_ratio": float(calibrated.get("max_width_ratio", params.max_width_ratio)),
                "judge_level": bool(calibrated.get("judge_level", True)),
                "judge_width": bool(calibrated.get("judge_width", True)),
                "reference_level_ratio": calibrated.get("reference_level_ratio"),
                "reference_width_ratio": calibrated.get("reference_width_ratio"),
                "reference_bands": calibrated.get("reference_bands")}

    def run(self, ctx, params: ComparisonParams) -> Outcome:
        import numpy as np

        budget, args, dataset_args, threshold = TrainingCheck.plan(ctx, params)
        chosen = params.budgets.get(budget) if budget else None
        rates = (chosen.learning_rates if chosen and chosen.learning_rates else None) or params.learning_rates
        main = params.accuracy_lr if params.accuracy_lr in rates else rates[0]
        evals = int(args.pop("evals", params.evals))
        limits = self.limits(ctx, params, budget, dataset_args)
        data = ctx.dataset(params.dataset, dataset_args)
        test_y = np.asarray(data["test_y"])

        runs: dict[str, dict[float, dict[str, Any]]] = {}
        for model in (params.baseline, params.improved):
            for lr in rates:
                try:
                    reply = ctx.probe("harness", source=ctx.lab.harness_source, entry=params.harness,
                                      args={"train_x": data["train_x"], "train_y": data["train_y"],
                                            "test_x": data["test_x"], **args, "model": model.cls, "lr": lr,
                                            "evals": evals if lr == main else 1})
                except ProbeFailure as failure:
                    if failure.stage != Stage.probe or failure.status != ProbeStatus.error or failure.out_of_memory:
                        raise  # import failures, timeouts and memory are worded by the engine
                    return Outcome.error(f"Training {model.cls} at learning rate {_rate(lr)} stopped: your code raised "
                                         f"{failure.message}.")
                reply = reply.get("result") if isinstance(reply, dict) else None  # the probe's {"result": ...}
                reply = reply if isinstance(reply, dict) else {}
                scores = reply.get("test_scores")
                scores = scores if isinstance(scores, list) else []
                runs.setdefault(model.label, {})[lr] = {
                    "losses": _numbers(reply.get("losses")),
                    "test_accuracy": [accuracy(s, test_y) for s in scores],
                    "eval_steps": [int(s) for s in reply.get("eval_steps") or [] if isinstance(s, int)]}

        bands, summary = {}, {}
        for label, by_rate in runs.items():
            low, high = loss_band([_smoothed(r["losses"], params.smooth) for r in by_rate.values()])
            bands[label] = {"low": [round(v, 4) for v in low], "high": [round(v, 4) for v in high]}
            first = int(params.summary_from * len(low))
            summary[label] = band_summary(low[first:], high[first:])
        base, better = params.baseline.label, params.improved.label
        level_ratio = _ratio(summary[better][0], summary[base][0])
        width_ratio = _ratio(summary[better][1], summary[base][1])
        improved_main = runs[better][main]
        final = improved_main["test_accuracy"][-1] if improved_main["test_accuracy"] else None
        steps = len(improved_main["losses"])

        metrics = {"level": {k: v[0] for k, v in summary.items()}, "width": {k: v[1] for k, v in summary.items()},
                   "from_step": int(params.summary_from * steps) + 1,
                   "level_ratio": level_ratio, "width_ratio": width_ratio,
                   **{k: v for k, v in limits.items() if k != "reference_bands"}}
        panels = {OURS: bands}
        if isinstance(limits["reference_bands"], dict):
            panels[REFERENCE] = limits["reference_bands"]
        accuracy_panel: dict[str, Any] = {label: [a if a is not None else math.nan for a in r[main]["test_accuracy"]]
                                          for label, r in runs.items()}
        details = {
            "test_accuracy": final, "threshold": threshold, "budget": budget, "device": ctx.device,
            "seed": args.get("seed"), "epochs": args.get("epochs"), "steps": steps, "dataset": params.dataset,
            "data": ctx.data_identity(params.dataset, dataset_args), "train_size": len(data["train_y"]), "test_size": len(test_y),
            "learning_rates": rates, "accuracy_lr": main, "band_metrics": metrics,
            "runs": {label: {_rate(lr): {"final_loss": r["losses"][-1] if r["losses"] else None,
                                         "test_accuracy": r["test_accuracy"][-1] if r["test_accuracy"] else None}
                             for lr, r in by_rate.items()} for label, by_rate in runs.items()},
            "bands": {"title": f"Loss band across learning rates {', '.join(map(_rate, rates))} "
                               f"(per step: min and max over the rates)", "xlabel": "step", "panels": panels},
            "curves": {f"test accuracy, lr {_rate(main)}": {**accuracy_panel, "threshold": threshold,
                                                             "steps": improved_main["eval_steps"]}},
        }
        return self.verdict(params, details, final, threshold, budget)

    @staticmethod
    def verdict(params: ComparisonParams, details: dict[str, Any], final: float | None, threshold: float,
                budget: str | None) -> Outcome:
        m = details["band_metrics"]
        base, better = params.baseline.label, params.improved.label
        where = f", {budget} budget" if budget else ""
        if final is None or math.isinf(m["level"][better]):
            what = ("its training loss stopped being finite" if math.isinf(m["level"][better])
                    else "its test scores were not usable (wrong shape, NaN or inf)")
            return Outcome.failed(f"{better} did not train: {what}, so there is no band to compare.",
                                  diagnosis="diverged", details=details)
        parts, diagnoses, credit, judged = [], [], 0, 1
        reached = final >= threshold
        credit += reached
        parts.append(f"{better} reached {final:.1%} test accuracy at learning rate {_rate(details['accuracy_lr'])} "
                     f"after {details['steps']} steps ({threshold:.0%} needed{where}).")
        for key, word, name in (("level", "lower", "band-not-lower"), ("width", "narrower", "band-not-narrower")):
            ratio, limit = m[f"{key}_ratio"], m[f"max_{key}_ratio"]
            ref = m.get(f"reference_{key}_ratio")
            if not m.get(f"judge_{key}", True):
                parts.append(f"Whether its band is {word} is not judged under this budget: the reference's own band "
                             f"is not {word} under every calibrated seed (up to {float(ref):.2f} of {base}'s); a longer "
                             f"budget judges it (yours: {ratio:.2f}).")
                continue
            judged += 1
            shown = f"the reference's is {ref:.2f} under this budget" if isinstance(ref, (int, float)) else \
                "no reference calibrated for this budget"
            span = f" from step {m['from_step']}" if m.get("from_step", 1) > 1 else ""
            numbers = (f"{key} {m[key][better]:.3f} against {m[key][base]:.3f} for {base}{span}: "
                       f"a ratio of {ratio:.2f}, below {limit:.2f} needed; {shown}")
            if ratio < limit:
                credit += 1
                parts.append(f"Its loss band is {word} ({numbers}).")
            else:
                diagnoses.append(name)
                parts.append(f"Its loss band is not {word} by what BatchNorm should give ({numbers}).")
        if diagnoses:
            parts.append("Normalising each layer's inputs with the batch's statistics during training is what makes "
                         "the loss less sensitive to the learning rate: check that the normalisation runs in train "
                         "mode and sits where the lab puts it.")
        return Outcome.graded(credit / judged, " ".join(parts), got=final, expected=threshold, diagnoses=diagnoses,
                              details=details)

    # --- calibration (gradelab calibrate) ---------------------------------------------------------

    @staticmethod
    def calibration_extras(params: ComparisonParams, details: list[dict[str, Any]], margin: float) -> dict[str, Any]:
        """The band limits for one budget, from the reference's runs under each calibrated seed: the
        worst ratio plus the lab's band margin, held below 1 whenever the reference's band is lower
        (narrower) under every seed, so a budget that shows the effect always asks for it. A part
        the reference does not show under every seed is not judged under that budget (a smoke
        budget; VGG-A's band in a few dozen steps, narrow when it learns nothing at any rate).
        The figure's reference bands are the first seed's."""
        out: dict[str, Any] = {"band_margin": params.band_margin, "learning_rates": details[0]["learning_rates"]}
        for key in ("level", "width"):
            ratios = [_finite(d["band_metrics"][f"{key}_ratio"]) for d in details]
            worst = max(ratios)
            judged = worst < 1
            out[f"reference_{key}_ratio"] = round(worst, 4)
            if len(ratios) > 1:
                out[f"reference_{key}_ratios"] = [round(r, 4) for r in ratios]
            out[f"max_{key}_ratio"] = round(min(worst + params.band_margin, 1.0) if judged else worst + params.band_margin, 3)
            out[f"judge_{key}"] = judged
        out["shows_comparison"] = out["judge_level"] and out["judge_width"]
        out["reference_bands"] = details[0]["bands"]["panels"][OURS]
        return out

    @staticmethod
    def passes_calibrated(details: dict[str, Any], entry: dict[str, Any]) -> bool:
        """Whether a result with these details passes every judged part under a calibration entry."""
        m = details.get("band_metrics") or {}
        acc = details.get("test_accuracy")
        return (isinstance(acc, (int, float)) and acc >= entry["threshold"]
                and all(_finite(m.get(f"{key}_ratio")) < entry[f"max_{key}_ratio"]
                        for key in ("level", "width") if entry.get(f"judge_{key}", True)))


def _finite(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.inf
