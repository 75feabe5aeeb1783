"""What the checks on a student's ``torch.nn.Module`` share (output shape, finite outputs, parameter
count, layer structure: a module each): the model's trace on an input, the student's and the
reference's. Expected values come from the lab's reference model, run in the grader through
the very probe functions the child runs, so both sides are measured the same way.

What students see: shapes and the layers of the architecture the handout states (public); their
own counts; never the reference's parameter count unless the lab marks it public (it is often an
answer on the sheet: the total, a layer's count). A wrong count names the first layer whose
count differs, which points at the fix without giving the number.

torch is imported only when a check runs: listing labs and kinds stays fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

if TYPE_CHECKING:
    import numpy as np

from grader.checks.registry import CheckKind, KindParams
from grader.lab.manifest import Need, Reveal

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


class ModelVariant(KindParams):
    """Another reference class: a model that is equally right (an alternative) or one that makes a
    real hand-in's mistake on purpose. The student's model is compared with it the way it is
    compared with the reference, so a verdict is computed, never guessed."""
    reference: str = Field(description="A class in the lab's reference module.")
    message: str
    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Diagnosis id (mistakes).")
    credit: float = Field(1.0, ge=0, le=1, description="Credit when the student's model matches it (alternatives).")
