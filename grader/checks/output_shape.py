"""``model_output_shape``: the model builds and maps each batch to the reference's output shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from grader.checks.model_probe import (
    E,
    G,
    I,
    ModelParams,
    _ModelKind,
    _probe,
)
from grader.checks.raised import raised_feedback
from grader.checks.registry import LocalCheck, register_check
from grader.results import Disclosure, Feedback, Outcome

if TYPE_CHECKING:
    import numpy as np


class OutputShapeParams(ModelParams):
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 4], min_length=1)
    output_shape: list[int] | None = Field(None, description=(
        "One sample's output shape as the handout states it (e.g. [10]): the check then needs no reference "
        "model, and runs in a student edition too. Default: the reference model's."))


@register_check("model_output_shape")
class OutputShapeCheck(_ModelKind):
    Params = OutputShapeParams
    summary = "The model builds with the declared arguments and maps each batch to the reference's output shape."
    disclosure = Disclosure(shows=[G, I, E])

    def student_edition(self, params: OutputShapeParams) -> LocalCheck | None:
        """With the shape the handout states, nothing of the reference is needed: the edition runs it."""
        if params.output_shape is None:
            return None
        return LocalCheck(params=params.model_dump(exclude={"reference"}, exclude_defaults=True))

    def expected_shapes(self, ctx, params: OutputShapeParams, xs: list[np.ndarray]) -> list[list[int]]:
        if params.output_shape is not None:
            return [[len(x), *params.output_shape] for x in xs]
        cls = params.reference or params.cls
        ref = ctx.reference_value("model_forward", [cls, xs, params.init_args, ctx.seed], lambda: _probe("model_forward")(
            ctx.reference, cls, xs, init_args=params.init_args, seed=ctx.seed))
        return [list(r["value"].shape) for r in ref]

    def run(self, ctx, params: OutputShapeParams) -> Outcome:
        import numpy as np

        xs = [self.inputs(ctx, params, n) for n in params.batch_sizes]
        expected = self.expected_shapes(ctx, params, xs)
        got = ctx.outcomes("model_forward", len(xs), cls=params.cls, inputs=xs, init_args=params.init_args,
                           seed=ctx.seed)
        raised, wrong = [], Feedback()
        for x, want, g in zip(xs, expected, got):
            shape = str(tuple(x.shape))
            if not g.ok:
                raised.append((shape, g))
            elif not isinstance(g.value, np.ndarray):
                wrong.say(f"A batch of shape {shape} returned {type(g.value).__name__}, not a tensor.", I, G)
            elif list(g.value.shape) != want:
                wrong.say(f"A batch of shape {shape} gave an output of shape {tuple(g.value.shape)}", I, G)
                wrong.add(f", expected {tuple(want)}", I, E).add(".", I, G)
        if raised:
            message = raised_feedback(f"{params.cls}'s forward", raised, len(xs), noun="batch", nouns="batches")
            return Outcome.error(message.extend(wrong), expected=expected)
        if wrong:
            return Outcome.failed(Feedback(f"{params.cls}: wrong output shape.").extend(wrong), expected=expected)
        return Outcome.passed(f"{params.cls}() maps batches of {params.batch_sizes} samples to the right shape.")
