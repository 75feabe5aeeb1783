"""``function_table``: a student function against the reference function on many inputs.

When it disagrees, each declared mistake (a function in the lab's reference module that makes
that mistake on purpose) is tested numerically against the student's outputs: a diagnosis is
computed, not guessed. Students see the inputs it failed on and what they returned; the
reference's values are a solution's, for instructors unless the lab marks them public.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import Field

from grader.checks.raised import raised_feedback
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.checks.values import show, values_match
from grader.lab.manifest import Need, Reveal
from grader.results import Disclosure, Feedback, Outcome


class FunctionMistake(KindParams):
    reference: str = Field(description="Function in the lab's reference module that makes the mistake.")
    message: str
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")


class FunctionTableParams(KindParams):
    function: str = Field(description="The student's function (a declared symbol).")
    reference: str | None = Field(None, description="Reference function; defaults to the same name.")
    cases: list[list[Any]] = Field(default_factory=list, description="Argument lists, called positionally.")
    grid: dict[str, list[Any]] = Field(default_factory=dict,
                                       description="Every combination of these argument values, in key order.")
    rel_tol: float = Field(0.0, ge=0)
    abs_tol: float = Field(0.0, ge=0)
    credit: Literal["all_or_nothing", "proportional"] = "all_or_nothing"
    mistakes: list[FunctionMistake] = Field(default_factory=list)
    examples: int = Field(3, ge=1, description="Failing cases quoted in the message.")


def _call(fn: Any, args: list[Any]) -> tuple[bool, Any]:
    try:
        return True, fn(*args)
    except Exception:
        return False, None


@register_check("function_table")
class FunctionTableCheck(CheckKind):
    Params = FunctionTableParams
    summary = "A student function against the reference on a table of inputs; mistakes diagnosed."
    disclosure = Disclosure(shows=[Reveal.got, Reveal.inputs],
                            details={"cases": [], "wrong": [], "raised": [], "input": [Reveal.inputs]})

    def needs(self, params: FunctionTableParams) -> list[Need]:
        return [Need(params.function)]

    def run(self, ctx, params: FunctionTableParams) -> Outcome:
        ref = getattr(ctx.reference, params.reference or params.function)
        candidates = [list(c) for c in params.cases] + [list(c) for c in itertools.product(*params.grid.values())]
        cases, expected = [], []
        for args in candidates:  # cases the reference rejects are not asked of the student
            ok, value = _call(ref, args)
            if ok:
                cases.append(args)
                expected.append(value)
        replies = ctx.call(params.function, cases)
        name = params.function
        wrong, raised = [], []
        got_values: list[Any] = []
        for args, exp, reply in zip(cases, expected, replies):
            if not reply.ok:
                raised.append((args, reply))
                got_values.append(None)
                continue
            got_values.append(reply.value)
            if not values_match(reply.value, exp, params.rel_tol, params.abs_tol):
                wrong.append((args, reply.value, exp))
        n_bad = len(wrong) + len(raised)
        if n_bad == 0:
            return Outcome.passed(f"{name} agrees with the reference on all {len(cases)} inputs.")
        call = lambda a: f"{name}({', '.join(map(show, a))})"
        parts = Feedback(f"{name} is wrong on {n_bad} of {len(cases)} inputs.")
        for args, value, exp in wrong[:params.examples]:
            parts.say(f"{call(args)} returned {show(value)}", Reveal.inputs, Reveal.got)
            parts.add(f", expected {show(exp)}", Reveal.inputs, Reveal.expected).add(".", Reveal.inputs, Reveal.got)
        parts.extend(raised_feedback(name, [(call(a), r) for a, r in raised], len(cases), examples=params.examples))
        diagnosis = None
        for mistake in params.mistakes:
            wrong_fn = getattr(ctx.reference, mistake.reference)
            if all(_call(wrong_fn, a)[0] and values_match(g, _call(wrong_fn, a)[1], params.rel_tol, params.abs_tol)
                   for a, g in zip(cases, got_values)):
                parts.say(mistake.message)
                diagnosis = mistake.name
                break
        fraction = 0.0 if params.credit == "all_or_nothing" else 1 - n_bad / len(cases)
        first = wrong[0] if wrong else None
        details: dict[str, Any] = {"cases": len(cases), "wrong": len(wrong), "raised": len(raised)}
        if first:
            details["input"] = call(first[0])  # what expected and got were computed on
        return Outcome.graded(fraction, parts, diagnosis=diagnosis, expected=first[2] if first else None,
                              got=first[1] if first else None, details=details)
