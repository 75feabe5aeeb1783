"""``mode_behaviour``: dropout and BatchNorm as they must behave in train and eval mode, against the
reference model on the same batch."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from grader.checks.model_probe import (
    E,
    G,
    unregistered_message,
)
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.lab.manifest import Need
from grader.results import Disclosure, Feedback, Outcome


class Expectation(KindParams):
    property: Literal["train_repeat_differs", "eval_repeat_differs", "train_batch_dependent",
                      "eval_batch_dependent", "activation_calls", "returns_probabilities"]
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
            w, h = want.get(e.property), have.get(e.property) if isinstance(have, dict) else None
            wrong = (h is None or h < w) if e.property == "activation_calls" else h != w
            random = have.get("random_with_dropout_off") if isinstance(have, dict) else None
            if wrong and e.property == "train_batch_dependent" and random:
                # not BatchNorm's fault that cannot be told: say what hid it
                problems.say(f"In train mode, two passes over the same batch differ even with dropout off: "
                             f"{random} draws random numbers, so whether BatchNorm normalises with the batch's "
                             "statistics cannot be measured. Keep randomness in nn.Dropout (or F.dropout with "
                             "training=self.training).")
                names.append("random-module")
                continue
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
