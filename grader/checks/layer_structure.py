"""``layer_structure``: the layers a forward pass calls, in order, against the reference's types and
sizes (the architecture is the handout's, so students see it)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from grader.checks.alignment import first_gap
from grader.checks.model_probe import (
    E,
    G,
    ModelParams,
    ModelVariant,
    _ModelKind,
)
from grader.checks.registry import register_check
from grader.checks.values import show
from grader.results import Disclosure, Feedback, Outcome, Status
from grader.sandbox.replies import ErrorInfo, format_error


class StructureParams(ModelParams):
    layer_types: list[str] = Field(default_factory=lambda: ["Conv2d", "Linear", "MaxPool2d", "AvgPool2d"])
    attributes: list[str] = Field(default_factory=lambda: [
        "in_channels", "out_channels", "kernel_size", "stride", "padding", "in_features", "out_features"])
    ignore_types: list[str] = Field(default_factory=lambda: ["Flatten", "Unflatten", "Identity"], description=(
        "torch layers that change nothing the check is about; any other torch layer the reference does "
        "not call (Dropout where the lab has none, Softmax after the last layer) is a difference, named."))
    alternatives: list[ModelVariant] = Field(default_factory=list, description=(
        "Reference classes whose structure is right too (the lab's model with the other improvements "
        "stacked): a student's model that matches one passes, with its message as a note."))
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
    if "p" in a:
        parts.append(f"p={a['p']}")
    return f"{layer['type']}({', '.join(parts)})"


@register_check("layer_structure")
class LayerStructureCheck(_ModelKind):
    Params = StructureParams
    summary = "The layers a forward pass calls, in order, match the reference's types and sizes."
    disclosure = Disclosure(shows=[G, E])  # the architecture is the handout's

    def run(self, ctx, params: StructureParams) -> Outcome:
        reference, trace = self.traces(ctx, params)
        outcome = self._compare(params, reference, trace)
        if outcome.status == Status.passed or not (params.mistakes or params.alternatives):
            return outcome
        x = self.inputs(ctx, params, 1)
        for alt in params.alternatives:
            other = self.reference_trace(ctx, params, x, alt.reference)
            if not trace.get("error") and self._layers(params, other) == self._layers(params, trace, other):
                layers = self._layers(params, other)
                return Outcome.graded(alt.credit, Feedback(f"All {len(layers)} layers match", G).add(
                    f" {alt.message}"))
        for mistake in params.mistakes:
            made = self.reference_trace(ctx, params, x, mistake.reference)
            if self._layers(params, made) == self._layers(params, trace, made) and _error_kind(made) == _error_kind(trace):
                # the mistake's explanation is the lab's own wording, for students too
                said = Feedback().add(f" {mistake.message}")
                return outcome.model_copy(update={
                    "message": f"{outcome.message} {mistake.message}", "parts": [*outcome.parts, *said.parts],
                    "diagnoses": [*outcome.diagnoses, *([mistake.name] if mistake.name else [])]})
        return outcome

    @staticmethod
    def _layers(params: StructureParams, trace: dict[str, Any],
                reference: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The layers the check compares: the lab's types, and on the student's side (``reference``
        given) any other torch layer the reference does not call, so that it is seen and named."""
        known = {c.get("type") for c in reference["calls"]} if reference else set()
        out = []
        for call in trace["calls"]:
            kind = call.get("type")
            unknown = (reference is not None and call.get("torch", True) and kind not in known
                       and kind not in params.ignore_types)
            if kind in params.layer_types or unknown:
                attrs = {k: _norm(k, v) for k, v in call.get("attrs", {}).items() if k in params.attributes}
                out.append({"type": kind, "attrs": attrs})
        return out

    def _compare(self, params: StructureParams, reference: dict[str, Any], trace: dict[str, Any]) -> Outcome:
        want, have = self._layers(params, reference), self._layers(params, trace, reference)
        crash = f" (forward stopped early: {_trace_error(trace)})" if trace.get("error") else ""
        why = self.unregistered(params, trace)  # their layers run, but outside the model: not traced
        diagnosis = "unregistered-modules" if why else None
        if trace.get("error") and len(have) < len(want) and want[:len(have)] == have:
            return Outcome.error(Feedback(f"the forward pass stopped after {len(have)} of the {len(want)} expected "
                                          f"layers: {_trace_error(trace)}"))
        gap = first_gap([_key(w) for w in want], [_key(h) for h in have])
        if gap is None:
            return Outcome.passed(Feedback(f"All {len(want)} layers match: " + ", ".join(_describe(w) for w in want)
                                           + ".", G).instead(f"All {len(want)} layers match the lab's network.", G))
        names = lambda ls: ", ".join(_describe(l) for l in ls)
        counts = f"expected {len(want)} layers, the forward pass used {len(have)}; " if len(have) != len(want) else ""
        if gap.kind == "changed" and gap.k < len(have):
            w, h = want[gap.i], have[gap.k]
            message = Feedback(f"{counts}layer {gap.k + 1}:").add(f" expected {_describe(w)}, found", E)
            message.add(f" {_describe(h)}", G).add(" something else", E, unless=(G,))
            message.instead(" differs from the lab's network", E)
            if w["type"] == h["type"]:  # which setting to look at, without its value
                differ = [k.replace("_", " ") for k in params.attributes if w["attrs"].get(k) != h["attrs"].get(k)]
                message.instead(f" (its {_and(differ)} {'differs' if len(differ) == 1 else 'differ'})", E)
            else:
                message.instead(" (another kind of layer)", E)
            message.add(f"{crash}.{why}")
            return Outcome.failed(message, expected=_describe(w), got=_describe(h), diagnosis=diagnosis)
        where = (f"between layer {gap.k} ({_describe(have[gap.k - 1])}) and layer {gap.k + 1} "
                 f"({_describe(have[gap.k])})" if 0 < gap.k < len(have)
                 else f"after layer {gap.k} ({_describe(have[gap.k - 1])})" if gap.k else "before layer 1")
        if gap.kind == "missing":
            message = Feedback(f"{counts}missing {where}:").add(f" {names(want[gap.i:gap.j])}", E).instead(
                f" {gap.j - gap.i} layer(s) of the lab's network", E)
            expected, got = len(want), len(have)
        else:
            before = f"after layer {gap.k} ({_describe(have[gap.k - 1])})" if gap.k else "before layer 1"
            message = Feedback(f"{counts}unexpected layer {before}:").add(f" {names(have[gap.k:gap.l])}", G)
            unknown = sorted({h["type"] for h in have[gap.k:gap.l]} - {c.get("type") for c in reference["calls"]})
            if unknown:
                message.add(f" (the lab's network has no {_and(unknown)})")
            expected, got = len(want), len(have)
        message.add(f"{crash}.{why}")
        return Outcome.failed(message, expected=expected, got=got, diagnosis=diagnosis)


def _key(layer: dict[str, Any]) -> str:
    import json

    return json.dumps(layer, sort_keys=True, default=str)
