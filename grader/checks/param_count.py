"""``param_count``: as many (learnable) parameters as the reference's model.

The reference's count is often an answer of the sheet: a student who may not see it learns which
way theirs is off, and the first layer whose count differs, never the number."""

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
from grader.results import Disclosure, Feedback, Outcome


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
    """Layers are aligned by the shapes of their tensors (names differ from hand-in to hand-in), so
    a missing layer is named where it is missing, not as a shift of every layer after it."""
    key = lambda layer: tuple(s.split(" ", 1)[1] for s in layer[2])
    gap = first_gap([key(w) for w in want], [key(h) for h in have])
    if gap is None:
        return Feedback()
    if gap.kind == "changed":
        (_, w, _), (name, h, shapes) = want[gap.i], have[gap.k]
        out = Feedback(f"The count first differs at `{name}` (layer {gap.k + 1} with {what})")
        out.add(f": {', '.join(shapes)}, {h:,} in all", G).add(f"; the lab's network has {w:,} there", G, E)
        return out.add(".")
    if gap.kind == "missing":
        n = gap.j - gap.i
        where = (f"between `{have[gap.k - 1][0]}` and `{have[gap.k][0]}`" if 0 < gap.k < len(have)
                 else f"after `{have[gap.k - 1][0]}`" if gap.k else f"before `{have[0][0]}`" if have else "at all")
        out = Feedback(f"The lab's network has {n} more layer(s) with {what} {where}")
        shapes = [s.split(" ", 1)[1] for layer in want[gap.i:gap.j] for s in layer[2]]
        return out.add(f": {', '.join(shapes)}", E).add(".")
    after = f" after `{have[gap.k - 1][0]}`" if gap.k else ""
    return Feedback(f"`{have[gap.k][0]}`{after} is a layer with {what} the lab's network does not have there"
                    f"{'' if gap.l - gap.k == 1 else f' (and {gap.l - gap.k - 1} more after it)'}.")


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
            layers = lambda t: _by_layer(_counted(t, params.trainable_only, params.running_stats))
            message.extend(_first_difference(layers(reference), layers(trace), what))
        return Outcome.failed(message, expected=want, got=have, diagnosis="unregistered-modules" if why else None,
                              details={"parameters": trace["parameters"]})
