"""Checks on a student's ``torch.nn.Module``: output shapes, finite outputs, parameter count,
layer structure. Expected values come from the lab's reference model, run in the grader through
the very probe functions the child runs, so both sides are measured the same way.

What students see: shapes and the layers of the architecture the handout states (public); their
own counts; never the reference's parameter count unless the lab marks it public (it is often an
answer on the sheet: the total, a layer's count). A wrong count names the first layer whose
count differs, which points at the fix without giving the number.

torch is imported only when a check runs: listing labs and kinds stays fast."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from grader.checks.compare import show
from grader.checks.raised import raised_feedback
from grader.lab.manifest import Need, Reveal
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.results import Disclosure, Feedback, Outcome, Status
from grader.sandbox.replies import ErrorInfo, format_error

G, I, E = Reveal.got, Reveal.inputs, Reveal.expected


def _probe(name: str) -> Any:
    """A probe run in the grader's process on the reference (imports torch: at run time only)."""
    from grader.sandbox.probes import PROBES

    return PROBES[name]


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
        return ctx.reference_value("model_trace", [name, x, params.init_args, ctx.seed], lambda: _probe("model_trace")(
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
        import numpy as np

        return (ctx.rng().standard_normal((batch, *params.input_shape)) * scale).astype(np.float32)


class OutputShapeParams(ModelParams):
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 4], min_length=1)


@register_check("model_output_shape")
class OutputShapeCheck(_ModelKind):
    Params = OutputShapeParams
    summary = "The model builds with the declared arguments and maps each batch to the reference's output shape."
    disclosure = Disclosure(shows=[G, I, E])

    def run(self, ctx, params: OutputShapeParams) -> Outcome:
        import numpy as np

        xs = [self.inputs(ctx, params, n) for n in params.batch_sizes]
        cls = params.reference or params.cls
        ref = ctx.reference_value("model_forward", [cls, xs, params.init_args, ctx.seed], lambda: _probe("model_forward")(
            ctx.reference, cls, xs, init_args=params.init_args, seed=ctx.seed))
        got = ctx.outcomes("model_forward", len(xs), cls=params.cls, inputs=xs, init_args=params.init_args,
                           seed=ctx.seed)
        raised, wrong = [], Feedback()
        for x, r, g in zip(xs, ref, got):
            want, shape = list(r["value"].shape), str(tuple(x.shape))
            if not g.ok:
                raised.append((shape, g))
            elif not isinstance(g.value, np.ndarray):
                wrong.say(f"A batch of shape {shape} returned {type(g.value).__name__}, not a tensor.", I, G)
            elif list(g.value.shape) != want:
                wrong.say(f"A batch of shape {shape} gave an output of shape {tuple(g.value.shape)}", I, G)
                wrong.add(f", expected {tuple(want)}", I, E).add(".", I, G)
        expected = [list(r["value"].shape) for r in ref]
        if raised:
            message = raised_feedback(f"{params.cls}'s forward", raised, len(xs), noun="batch", nouns="batches")
            return Outcome.error(message.extend(wrong), expected=expected)
        if wrong:
            return Outcome.failed(Feedback(f"{params.cls}: wrong output shape.").extend(wrong), expected=expected)
        return Outcome.passed(f"{params.cls}() maps batches of {params.batch_sizes} samples to the right shape.")


class FiniteParams(ModelParams):
    batch_size: int = Field(4, ge=1)
    scales: list[float] = Field(default_factory=lambda: [1.0, 100.0], min_length=1,
                                description="Input magnitudes tried: large ones expose unstable code.")


@register_check("finite_outputs")
class FiniteOutputsCheck(_ModelKind):
    Params = FiniteParams
    summary = "Outputs contain no NaN or infinity, also on large inputs."
    disclosure = Disclosure(shows=[G, I], plain_message=True)

    def run(self, ctx, params: FiniteParams) -> Outcome:
        import numpy as np

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


def _counted(trace: dict[str, Any], trainable_only: bool, running_stats: bool = False) -> list[dict[str, Any]]:
    """The parameters (or running statistics) a count adds up, in the model's own order."""
    if running_stats:
        return [b for b in trace["buffers"] if b["name"].endswith(_RUNNING)]
    return [p for p in trace["parameters"] if p["trainable"] or not trainable_only]


def _count(trace: dict[str, Any], trainable_only: bool, running_stats: bool = False) -> int:
    import numpy as np

    return int(sum(int(np.prod(p["shape"])) for p in _counted(trace, trainable_only, running_stats)))


def _by_layer(tensors: list[dict[str, Any]]) -> list[tuple[str, int, list[str]]]:
    """(layer, count, ["fc4.weight (1000, 1024)", ...]) per module holding tensors, in order."""
    import numpy as np

    layers: dict[str, tuple[int, list[str]]] = {}
    for t in tensors:
        layer = t["name"].rsplit(".", 1)[0] if "." in t["name"] else t["name"]
        count, shapes = layers.get(layer, (0, []))
        layers[layer] = (count + int(np.prod(t["shape"])), [*shapes, f"{t['name']} {tuple(t['shape'])}"])
    return [(name, count, shapes) for name, (count, shapes) in layers.items()]


def _first_difference(want: list[tuple[str, int, list[str]]], have: list[tuple[str, int, list[str]]],
                      what: str) -> Feedback:
    """Layers are matched in order (names differ from hand-in to hand-in): the first whose count
    differs from the reference's layer at the same place is where to look."""
    for i, ((_, w, _), (name, h, shapes)) in enumerate(zip(want, have)):
        if w != h:
            out = Feedback(f"The count first differs at `{name}` (layer {i + 1} with {what})")
            out.add(f": {', '.join(shapes)}, {h:,} in all", G).add(f"; the lab's network has {w:,} there", G, E)
            return out.add(".")
    if len(have) < len(want):
        after = f"after `{have[-1][0]}`" if have else "at all"
        return Feedback(f"Every layer with {what} matches the lab's network, but it has "
                        f"{len(want) - len(have)} more such layer(s) {after}.")
    if len(have) > len(want):
        return Feedback(f"`{have[len(want)][0]}` and what follows it are layers with {what} the lab's network "
                        "does not have.")
    return Feedback()


@register_check("param_count")
class ParamCountCheck(_ModelKind):
    Params = ParamCountParams
    summary = "The model has exactly as many (learnable) parameters as the reference."
    disclosure = Disclosure(shows=[G], details={"parameters": [G]})

    def run(self, ctx, params: ParamCountParams) -> Outcome:
        reference, trace = self.traces(ctx, params)
        want = _count(reference, params.trainable_only, params.running_stats)
        have = _count(trace, params.trainable_only, params.running_stats)
        what = ("running statistics" if params.running_stats
                else "learnable parameters" if params.trainable_only else "parameters")
        if have == want:
            return Outcome.passed(Feedback(f"{params.cls} has {have:,} {what}, as expected.", G)
                                  .instead(f"{params.cls} has the expected number of {what}.", G))
        x = self.inputs(ctx, params, 1)
        for alt in params.alternatives:
            other = self.reference_trace(ctx, params, x, alt.reference)
            if _count(other, params.trainable_only, params.running_stats) == have:
                return Outcome.graded(alt.credit, Feedback(f"{params.cls} has {have:,} {what}:", G).instead(
                    f"{params.cls} does not have the lab's number of {what}:", G).say(alt.message),
                                      expected=want, got=have)
        message = Feedback(f"{params.cls} has {have:,} {what}", G).instead(
            f"{params.cls} does not have the lab's number of {what}", G)
        # The count is often an answer of the lab's answer sheet too: a student who may not see the
        # expected count learns which way theirs is off, not by how much.
        message.add(f"; expected {want:,} ({have - want:+,})", G, E).instead(
            f"; it has {'fewer' if have < want else 'more'} than the lab's model", G, E).add(".")
        why = self.unregistered(params, trace)
        if why:
            message.say(why.strip())
        else:
            layers = lambda t: _by_layer(_counted(t, params.trainable_only, params.running_stats))  # noqa: E731
            message.extend(_first_difference(layers(reference), layers(trace), what))
        return Outcome.failed(message, expected=want, got=have, diagnosis="unregistered-modules" if why else None,
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


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


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
    disclosure = Disclosure(shows=[G, E])  # the architecture is the handout's

    def run(self, ctx, params: StructureParams) -> Outcome:
        reference, trace = self.traces(ctx, params)
        outcome = self._compare(params, reference, trace)
        if outcome.status == Status.passed or not params.mistakes:
            return outcome
        x = self.inputs(ctx, params, 1)
        for mistake in params.mistakes:
            made = self.reference_trace(ctx, params, x, mistake.reference)
            if self._layers(params, made) == self._layers(params, trace) and _error_kind(made) == _error_kind(trace):
                # the mistake's explanation is the lab's own wording, for students too
                said = Feedback().add(f" {mistake.message}")
                return outcome.model_copy(update={
                    "message": f"{outcome.message} {mistake.message}", "parts": [*outcome.parts, *said.parts],
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
                message = Feedback(f"layer {i}:").add(f" expected {_describe(w)}, found", E)
                message.add(f" {_describe(h)}", G).add(" something else", E, unless=(G,))
                message.instead(" differs from the lab's network", E)
                if w["type"] == h["type"]:  # which setting to look at, without its value
                    differ = [k.replace("_", " ") for k in params.attributes if w["attrs"].get(k) != h["attrs"].get(k)]
                    message.instead(f" (its {_and(differ)} {'differs' if len(differ) == 1 else 'differ'})", E)
                else:
                    message.instead(" (another kind of layer)", E)
                message.add(f"{crash}.{why}")
                return Outcome.failed(message, expected=_describe(w), got=_describe(h), diagnosis=diagnosis)
        if trace.get("error") and len(have) < len(want):
            return Outcome.error(Feedback(f"the forward pass stopped after {len(have)} of the {len(want)} expected "
                                          f"layers: {_trace_error(trace)}"))
        if len(have) != len(want):
            names = lambda ls: ", ".join(_describe(l) for l in ls)  # noqa: E731
            message = Feedback(f"expected {len(want)} layers, the forward pass used {len(have)};")
            if len(have) < len(want):
                message.add(f" missing after layer {len(have)}:").add(f" {names(want[len(have):])}", E)
            else:
                message.add(" unexpected extra layers:").add(f" {names(have[len(want):])}", G)
            message.add(f"{crash}.{why}")
            return Outcome.failed(message, expected=len(want), got=len(have), diagnosis=diagnosis)
        return Outcome.passed(Feedback(f"All {len(want)} layers match: " + ", ".join(_describe(w) for w in want) + ".", G)
                              .instead(f"All {len(want)} layers match the lab's network.", G))


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
    # The behaviour a lab asks for (dropout inert at test time, a ReLU after each conv) is the handout's.
    disclosure = Disclosure(shows=[G, E], details={"behaviour": [G], "reference": [E]})

    def needs(self, params: ModeParams) -> list[Need]:
        return [Need(params.cls)]

    def run(self, ctx, params: ModeParams) -> Outcome:
        import numpy as np

        import torch

        from grader.sandbox.probes import mode_behaviour_of

        x = ctx.rng().normal(0, 1, (params.batch, *params.input_shape)).astype(np.float32)

        def reference() -> dict[str, Any]:
            with torch.random.fork_rng(devices=[]):  # the grader's own generator is left as it was
                torch.manual_seed(0)
                return mode_behaviour_of(getattr(ctx.reference, params.reference or params.cls)(), torch.from_numpy(x))

        want = ctx.reference_value("mode_behaviour", [params.reference or params.cls, x], reference)
        have = ctx.probe("mode_behaviour", cls=params.cls, input=x, seed=0)
        problems, names = Feedback(), []
        for e in params.expect:
            w, h = want[e.property], have.get(e.property) if isinstance(have, dict) else None
            wrong = (h is None or h < w) if e.property == "activation_calls" else h != w
            if wrong:
                # A lab's message may quote the student's value ({got}) and the reference's ({expected}).
                shows = [r for r, key in ((G, "{got}"), (E, "{expected}")) if key in e.message]
                problems.say(e.message.format(got=h, expected=w), *shows)
                if shows:
                    problems.instead(f"{params.cls} does not behave like the lab's network here ({e.name}).", *shows)
                names.append(e.name)
        if problems and isinstance(have, dict) and have.get("modules_in_eval_after_train"):
            problems.say(f"After model.train(), {', '.join(have['modules_in_eval_after_train'][:3])} "
                         "still report training = False: does the model override train() or call eval() itself?")
            names.insert(0, "stuck-in-eval")
        if problems and isinstance(have, dict) and have.get("unregistered"):
            problems.say(unregistered_message(params.cls, have["unregistered"], "model.train() and model.eval() "
                                              "do not reach them (nor does the optimizer)"))
            names.insert(0, "unregistered-modules")
        if not problems:
            return Outcome.passed(f"{params.cls} behaves like the reference in train and eval mode.")
        return Outcome.failed(problems, diagnoses=list(dict.fromkeys(names)) or ["stuck-in-eval"],
                              details={"behaviour": have, "reference": want})
