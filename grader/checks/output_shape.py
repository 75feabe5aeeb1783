"""``model_output_shape``: the model builds and maps each batch to the reference's output shape."""

from __future__ import annotations

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
from grader.checks.registry import register_check
from grader.results import Disclosure, Feedback, Outcome


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
