"""``finite_outputs``: no NaN or infinity in a model's outputs, also on large inputs."""

from __future__ import annotations

from pydantic import Field

from grader.checks.model_probe import (
    G,
    I,
    ModelParams,
    _ModelKind,
)
from grader.checks.registry import register_check
from grader.results import Disclosure, Outcome


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
