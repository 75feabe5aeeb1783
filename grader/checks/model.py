"""Checks on a student's ``torch.nn.Module``: output shapes, finite outputs, parameter count,
layer structure. Expected values come from the lab's reference model, run in the grader through
the very probe functions the child runs, so both sides are measured the same way."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from grader.checks.compare import show
from grader.lab.manifest import Need
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.results import Outcome, Status
from grader.sandbox.probes import PROBES
from grader.sandbox.replies import ErrorInfo, format_error


class ModelParams(KindParams):
    cls: str = Field(description="The student's model class (a declared symbol).")
    reference: str | None = Field(None, description="Reference class; defaults to the same name.")
    init_args: list[Any] = Field(default_factory=list)
    input_shape: list[int] = Field(min_length=1, description="Shape of one sample, e.g. [3, 32, 32].")


def unregistered_message(cls: str, attributes: list[str], consequence: str) -> str:
    """Modules held where PyTorch does not look (``self.blocks = [...]``), and what that breaks."""
    held = ", ".join(f"self.{n}" for n in attributes)
    return (f"{cls} keeps modules in a plain list or dict ({held}): {consequence}. "
            "Use nn.ModuleList, nn.ModuleDict or nn.Sequential.")


class _ModelKind(CheckKind):
    def needs(self, params: ModelParams) -> list[Need]:
        return [Need(params.cls)]

    @staticmethod
    def reference_trace(ctx, params: ModelParams, x: np.ndarray, cls: str | None = None) -> dict[str, Any]:
        """The trace of a reference class (the check's, or ``cls``: an alternative, a mistake) on
        ``x``, computed once per run."""
        name = cls or params.reference or params.cls
        return ctx.reference_value("model_trace", [name, x, params.init_args, ctx.seed], lambda: PROBES["model_trace"](
            ctx.reference, name, x, init_args=params.init_args, seed=ctx.seed))

    def traces(self, ctx, params: ModelParams) -> tuple[dict[str, Any], dict[str, Any]]:
        """The reference's and the student's trace of the same one-sample input."""
        x = self.inputs(ctx, params, 1)
        student = ctx.probe("model_trace", cls=params.cls, input=x, init_args=params.init_args, seed=ctx.seed)
        return self.reference_trace(ctx, params, x), student

    @staticmethod
    def unregistered(params: ModelParams, trace: dict[str, Any]) -> str:
        """Why the parameters or layers are missing, when they are kept where PyTorch does not look."""
        names = trace.get("unregistered") or []
        return " " + unregistered_message(params.cls, names, "PyTorch does not register them, so model.parameters() "
                                          "misses them and the optimizer never trains them") if names else ""

    @staticmethod
    def inputs(ctx, params: ModelParams, batch: int, scale: float = 1.0) -> np.ndarray:
        return (ctx.rng().standard_normal((batch, *params.input_shape)) * scale).astype(np.float32)


class OutputShapeParams(ModelParams):
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 4], min_length=1)


@register_check("model_output_shape")
class OutputShapeCheck(_ModelKind):
    Params = OutputShapeParams
    summary = "The model builds with the declared arguments and maps each batch to the reference's output shape."

    def run(self, ctx, params: OutputShapeParams) -> Outcome:
        xs = [self.inputs(ctx, params, n) for n in params.batch_sizes]
        cls = params.reference or params.cls
        ref = ctx.reference_value("model_forward", [cls, xs, params.init_args, ctx.seed], lambda: PROBES["model_forward"](
            ctx.reference, cls, xs, init_args=params.init_args, seed=ctx.seed))
        got = ctx.outcomes("model_forward", len(xs), cls=params.cls, inputs=xs, init_args=params.init_args,
                           seed=ctx.seed)
        raised: dict[str, list[str]] = {}
        wrong = []
        for x, r, g in zip(xs, ref, got):
            want, shape = list(r["value"].shape), str(tuple(x.shape))
            if not g.ok:
                raised.setdefault(g.error_text, []).append(shape)
            elif not isinstance(g.value, np.ndarray):
                wrong.append(f"a batch of shape {shape} returned {type(g.value).__name__}, not a tensor")
            elif list(g.value.shape) != want:
                wrong.append(f"a batch of shape {shape} gave an output of shape "
                             f"{tuple(g.value.shape)}, expected {tuple(want)}")
        expected = [list(r["value"].shape) for r in ref]
        if raised:
            errors = [f"forward on {' and '.join(shapes)} raised {err}" for err, shapes in raised.items()]
            return Outcome.error(f"{params.cls}: " + "; ".join(errors + wrong) + ".", expected=expected)
        if wrong:
            return Outcome.failed(f"{params.cls}: " + "; ".join(wrong) + ".", expected=expected)
        return Outcome.passed(f"{params.cls}() maps batches of {params.batch_sizes} samples to the right shape.")


class FiniteParams(ModelParams):
    batch_size: int = Field(4, ge=1)
    scales: list[float] = Field(default_factory=lambda: [1.0, 100.0], min_length=1,
                                description="Input magnitudes tried: large ones expose unstable code.")


@register_check("finite_outputs")
class FiniteOutputsCheck(_ModelKind):
    Params = FiniteParams
    summary = "Outputs contain no NaN or infinity, also on large inputs."

    def run(self, ctx, params: FiniteParams) -> Outcome:
        xs = [self.inputs(ctx, params, params.batch_size, s) for s in params.scales]
        got = ctx.outcomes("model_forward", len(xs), cls=params.cls, inputs=xs, init_args=params.init_args,
                           seed=ctx.seed)
        for scale, g in zip(params.scales, got):
            if not g.ok:
                return Outcome.error(f"forward on inputs of scale {scale:g} raised {g.error_text}")
            value = g.value
            if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.number):
                return Outcome.failed(f"forward returned {type(value).__name__}, not a tensor of numbers")
            bad = int(np.size(value) - np.isfinite(value).sum())
            if bad:
                return Outcome.failed(f"{bad} of {value.size} outputs are NaN or infinite on inputs of scale {scale:g}.",
                                      diagnosis="non-finite-output")
        return Outcome.passed("All outputs are finite.")


class ModelVariant(KindParams):
    """Another reference class: a model that is equally right (an alternative) or one that makes a
    real hand-in's mistake on purpose. The student's model is compared with it the way it is
    compared with the reference, so a verdict is computed, never guessed."""
    reference: str = Field(description="A class in the lab's reference module.")
    message: str
    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Diagnosis id (mistakes).")
    credit: float = Field(1.0, ge=0, le=1, description="Credit when the student's model matches it (alternatives).")


class ParamCountParams(ModelParams):
    trainable_only: bool = True
    running_stats: bool = Field(False, description="Count BatchNorm running means and variances (buffers) instead.")
    alternatives: list[ModelVariant] = Field(default_factory=list, description=(
        "Reference classes whose count is accepted too (convs without bias before BatchNorm), with the "
        "credit given and the message shown as a note."))


_RUNNING = ("running_mean", "running_var")


def _count(trace: dict[str, Any], trainable_only: bool, running_stats: bool = False) -> int:
    if running_stats:
        return int(sum(int(np.prod(b["shape"])) for b in trace["buffers"] if b["name"].endswith(_RUNNING)))
    return int(sum(int(np.prod(p["shape"])) for p in trace["parameters"] if p["trainable"] or not trainable_only))


@register_check("param_count")
class ParamCountCheck(_ModelKind):
    Params = ParamCountParams
    summary = "The model has exactly as many (learnable) parameters as the reference."

    def run(self, ctx, params: ParamCountParams) -> Outcome:
        reference, trace = self.traces(ctx, params)
        want = _count(reference, params.trainable_only, params.running_stats)
        have = _count(trace, params.trainable_only, params.running_stats)
        what = ("running statistics" if params.running_stats
                else "learnable parameters" if params.trainable_only else "parameters")
        if have == want:
            return Outcome.passed(f"{params.cls} has {have:,} {what}, as expected.")
        x = self.inputs(ctx, params, 1)
        for alt in params.alternatives:
            other = self.reference_trace(ctx, params, x, alt.reference)
            if _count(other, params.trainable_only, params.running_stats) == have:
                return Outcome.graded(alt.credit, f"{params.cls} has {have:,} {what}: {alt.message}",
                                      expected=want, got=have)
        why = self.unregistered(params, trace)
        # The count itself is an answer of the lab's answer sheet: say which way it is off, not by how much.
        return Outcome.failed(f"{params.cls} has {have:,} {what}, {'fewer' if have < want else 'more'} than the "
                              f"lab's model.{why}", expected=want, got=have,
                              diagnosis="unregistered-modules" if why else None,
                              details={"parameters": trace["parameters"]})


class StructureParams(ModelParams):
    layer_types: list[str] = Field(default_factory=lambda: ["Conv2d", "Linear", "MaxPool2d", "AvgPool2d"])
    attributes: list[str] = Field(default_factory=lambda: [
        "in_channels", "out_channels", "kernel_size", "stride", "padding", "in_features", "out_features"])
    mistakes: list[ModelVariant] = Field(default_factory=list, description=(
        "Reference classes built wrong on purpose: a student's model whose forward pass calls the same "
        "layers (and stops with the same error, if it does) is diagnosed with its name and message."))


_PAIRS = ("kernel_size", "stride", "padding", "dilation")


def _norm(name: str, value: Any) -> Any:
    """Conv2d says kernel (5, 5), MaxPool2d says 2: compare both as pairs."""
    if name in _PAIRS:
        return list(value) if isinstance(value, (list, tuple)) else [value, value]
    return value


def _side(value: Any) -> str:
    return str(value[0]) if isinstance(value, list) and len(set(map(str, value))) == 1 else show(value)


def _error_kind(trace: dict[str, Any]) -> tuple[str, str] | None:
    """The exception a traced forward pass stopped with (type and message), or None."""
    error = trace.get("error")
    return (str(error.get("type")), str(error.get("message"))) if isinstance(error, dict) else None


def _trace_error(trace: dict[str, Any]) -> str:
    error = trace.get("error")
    return format_error(ErrorInfo.model_validate(error) if isinstance(error, dict) else ErrorInfo())


def _describe(layer: dict[str, Any]) -> str:
    """Compact notation: Conv2d(3→32, k5, s1, p2), Linear(1024→1000), MaxPool2d(k2, s2)."""
    a = layer["attrs"]
    parts = []
    if "in_channels" in a:
        parts.append(f"{a['in_channels']}→{a['out_channels']}")
    if "in_features" in a:
        parts.append(f"{a['in_features']}→{a['out_features']}")
    if "num_features" in a:
        parts.append(str(a["num_features"]))
    for key, short in (("kernel_size", "k"), ("stride", "s"), ("padding", "p")):
        if key in a:
            parts.append(f"{short}{_side(a[key])}")
    return f"{layer['type']}({', '.join(parts)})"


@register_check("layer_structure")
class LayerStructureCheck(_ModelKind):
    Params = StructureParams
    summary = "The layers a forward pass calls, in order, match the reference's types and sizes."

    def run(self, ctx, params: StructureParams) -> Outcome:
        reference, trace = self.traces(ctx, params)
        outcome = self._compare(params, reference, trace)
        if outcome.status == Status.passed or not params.mistakes:
            return outcome
        x = self.inputs(ctx, params, 1)
        for mistake in params.mistakes:
            made = self.reference_trace(ctx, params, x, mistake.reference)
            if self._layers(params, made) == self._layers(params, trace) and _error_kind(made) == _error_kind(trace):
                return outcome.model_copy(update={
                    "message": f"{outcome.message} {mistake.message}",
                    "diagnoses": [*outcome.diagnoses, *([mistake.name] if mistake.name else [])]})
        return outcome

    @staticmethod
    def _layers(params: StructureParams, trace: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for call in trace["calls"]:
            if call.get("type") in params.layer_types:
                attrs = {k: _norm(k, v) for k, v in call.get("attrs", {}).items() if k in params.attributes}
                out.append({"type": call["type"], "attrs": attrs})
        return out

    def _compare(self, params: StructureParams, reference: dict[str, Any], trace: dict[str, Any]) -> Outcome:
        want, have = self._layers(params, reference), self._layers(params, trace)
        crash = f" (forward stopped early: {_trace_error(trace)})" if trace.get("error") else ""
        why = self.unregistered(params, trace)  # their layers run, but outside the model: not traced
        diagnosis = "unregistered-modules" if why else None
        for i, (w, h) in enumerate(zip(want, have), start=1):
            if w != h:
                return Outcome.failed(f"layer {i}: expected {_describe(w)}, found {_describe(h)}{crash}.{why}",
                                      expected=_describe(w), got=_describe(h), diagnosis=diagnosis)
        if trace.get("error") and len(have) < len(want):
            return Outcome.error(f"the forward pass stopped after {len(have)} of the {len(want)} expected layers: "
                                 f"{_trace_error(trace)}")
        if len(have) != len(want):
            names = lambda ls: ", ".join(_describe(l) for l in ls)  # noqa: E731
            extra = (f"missing after layer {len(have)}: {names(want[len(have):])}" if len(have) < len(want)
                     else f"unexpected extra layers: {names(have[len(want):])}")
            return Outcome.failed(f"expected {len(want)} layers, the forward pass used {len(have)}; "
                                  f"{extra}{crash}.{why}", expected=len(want), got=len(have), diagnosis=diagnosis)
        return Outcome.passed(f"All {len(want)} layers match: " + ", ".join(_describe(w) for w in want) + ".")


class Expectation(KindParams):
    property: Literal["train_repeat_differs", "eval_repeat_differs", "train_batch_dependent",
                      "eval_batch_dependent", "activation_calls"]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Diagnosis when the student's model differs.")
    message: str


class ModeParams(KindParams):
    cls: str
    reference: str | None = None
    input_shape: list[int] = Field(min_length=1)
    batch: int = Field(8, ge=2)
    expect: list[Expectation] = Field(min_length=1)


@register_check("mode_behaviour")
class ModeBehaviourCheck(CheckKind):
    """Dropout and BatchNorm as they must behave: the student's model in train and eval mode,
    against the reference model on the same batch (computed in the grader)."""

    Params = ModeParams
    summary = "Train/eval behaviour (dropout active only in training, BatchNorm batch statistics only in training, activations) against the reference."

    def needs(self, params: ModeParams) -> list[Need]:
        return [Need(params.cls)]

    def run(self, ctx, params: ModeParams) -> Outcome:
        import torch

        from grader.sandbox.probes import mode_behaviour_of

        x = ctx.rng().normal(0, 1, (params.batch, *params.input_shape)).astype(np.float32)

        def reference() -> dict[str, Any]:
            with torch.random.fork_rng(devices=[]):  # the grader's own generator is left as it was
                torch.manual_seed(0)
                return mode_behaviour_of(getattr(ctx.reference, params.reference or params.cls)(), torch.from_numpy(x))

        want = ctx.reference_value("mode_behaviour", [params.reference or params.cls, x], reference)
        have = ctx.probe("mode_behaviour", cls=params.cls, input=x, seed=0)
        problems, names = [], []
        for e in params.expect:
            w, h = want[e.property], have.get(e.property) if isinstance(have, dict) else None
            wrong = (h is None or h < w) if e.property == "activation_calls" else h != w
            if wrong:
                problems.append(e.message.format(got=h, expected=w))
                names.append(e.name)
        if problems and isinstance(have, dict) and have.get("modules_in_eval_after_train"):
            problems.append(f"After model.train(), {', '.join(have['modules_in_eval_after_train'][:3])} "
                            "still report training = False: does the model override train() or call eval() itself?")
            names.insert(0, "stuck-in-eval")
        if problems and isinstance(have, dict) and have.get("unregistered"):
            problems.append(unregistered_message(params.cls, have["unregistered"], "model.train() and model.eval() "
                                                 "do not reach them (nor does the optimizer)"))
            names.insert(0, "unregistered-modules")
        if not problems:
            return Outcome.passed(f"{params.cls} behaves like the reference in train and eval mode.")
        return Outcome.failed(" ".join(problems), diagnoses=list(dict.fromkeys(names)) or ["stuck-in-eval"],
                              details={"behaviour": have, "reference": want})
