"""``function_outputs``: what a student function returns, part by part, against the reference.

Made for numerical code (a forward pass and its intermediates, gradients, an update step, an
initialisation): the lab's reference module draws the inputs (``cases``, seeded by the grader)
and computes the expected values in the grader's own process. Each declared output (a path into
the returned value, such as ``1.htilde``) is compared by relative error. Where a part is wrong,
each declared mistake (a reference-module function that makes it on purpose) is tested on that
part: the diagnosis is computed from the student's numbers, never guessed.

Students see which parts are wrong, on which input, by how much (relative error), their own
values and, where a part is one number, how it compares with the reference (a value 100 times
the reference's is a percentage where a fraction is asked for). The reference's values
themselves only where the lab marks them public (``reveal: [got, inputs, expected]``): the
reference is a solution.

Functions that take objects rather than arrays (a model, an optimizer, a ``DataLoader``) are
called through the lab's harness (``harness:``): a harness function builds those objects in the
sandbox and calls the student's function on them; the same harness function on the reference
module, in the grader, gives the expected values, and with a mistake's function put in the
reference's place, the values that mistake would give.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from grader.checks.forbidden import OPERATOR_RECORD_PRELOAD, forbidden_use
from grader.checks.functions import FunctionMistake
from grader.checks.raised import raised_feedback
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.checks.values import (
    as_array,
    fit_shape,
    percent_ratio,
    pick,
    shape_words,
    value_feedback,
    value_problem,
)
from grader.lab.manifest import Need, Reveal
from grader.results import Disclosure, Feedback, Outcome
from grader.sandbox.replies import CallReply, ProbeFailure, ProbeStatus, Stage

Compare = Literal["values", "shape", "dtype", "std"]


class OutputSpec(KindParams):
    path: str = Field("", description="Dotted path into the returned value: '0', '1.htilde', 'Wh'; '' for all of it.")
    label: str | None = Field(None, description="How the feedback names this part (defaults to the path).")
    compare: list[Compare] = Field(["values"], min_length=1,
                                   description="values: relative error; shape; dtype (its kind: float, int); "
                                               "std: spread within std_rel_tol of the reference's.")
    requires: list[str] = Field(default_factory=list, description=(
        "Paths of other outputs this part earns with only when they are right: 'the weights afterwards' "
        "of a function that never touches the model are right for a stub too."))

    @property
    def name(self) -> str:
        return self.label or self.path or "the result"


class FunctionOutputsParams(KindParams):
    function: str = Field(description="The student's function (a declared symbol).")
    reference: str | None = Field(None, description="Reference function; defaults to the same name.")
    cases: str = Field(description="Reference-module function (rng) → list of cases; a case is an argument "
                                   "list or {label, args}.")
    tensors: bool = Field(True, description="Hand arrays to the student as torch tensors.")
    outputs: list[OutputSpec] = Field(default_factory=lambda: [OutputSpec()], min_length=1)
    rel_tol: float = Field(1e-6, ge=0, description="Largest accepted ‖got − expected‖ / max(‖got‖, ‖expected‖).")
    std_rel_tol: float = Field(0.2, ge=0)
    against: str = Field("the reference", description="How feedback names the expected values ('autograd').")
    nondeterministic: FunctionMistake | None = Field(
        None, description="Ask each input twice; different answers fail the check with this diagnosis "
                          "(a test-time transform must not be random). Its `reference` is not used.")
    mistakes: list[FunctionMistake] = Field(default_factory=list)
    forbid_autograd: bool = Field(False, description="The function must compute by hand what autograd would: a "
                                  "backward pass run, a graph built or forward-mode AD used in it zeroes the check.")
    forbid_ops: list[str] = Field(default_factory=list, description="Operators the function may not run (glob "
                                  "patterns of dispatcher names, e.g. 'aten::convolution').")
    harness: str | None = Field(None, description=(
        "A function of the lab's harness, (module, **case args) → value, that builds what the student's function "
        "is called with (a model, an optimizer, a DataLoader) and calls it, inside the sandbox. The expected value "
        "is the same harness function on the reference module, in the grader; for a mistake, the mistake's "
        "function stands in for the reference's. A case's args are then keyword arguments."))

    @model_validator(mode="after")
    def _harness_calls_once(self) -> FunctionOutputsParams:
        if self.harness and self.nondeterministic:
            raise ValueError("nondeterministic asks each input twice, which a harness case does not")
        return self



def _reference_values(fn: Any, args: list[list[Any]], tensors: bool, seed: int) -> list[Any]:
    """Raw values of a reference function on each case: fresh tensors each time (it may update
    them in place) and torch seeded as in the child, so random initialisations are comparable."""
    import torch

    from grader.sandbox.probes import to_raw, to_tensors

    out = []
    with torch.random.fork_rng(devices=[]):
        for a in args:
            torch.manual_seed(seed)
            out.append(to_raw(fn(*(to_tensors(a) if tensors else a))))
    return out


class _WithMistake:
    """The reference module with one function replaced by a mistake's: what a harness calls to
    reproduce a hand-in that made that mistake."""

    def __init__(self, module: Any, name: str, function: Any) -> None:
        self._module, self._name, self._function = module, name, function

    def __getattr__(self, attr: str) -> Any:
        return self._function if attr == self._name else getattr(self._module, attr)


def _harness_values(ctx, entry: str, module: Any, cases: list[dict[str, Any]]) -> list[Any]:
    """A harness function run in the grader (the lab's trusted code) on a module, once per case."""
    import torch

    from grader.sandbox.probes import to_raw, to_tensors

    namespace: dict[str, Any] = {"__name__": "gradelab_harness"}
    exec(compile(ctx.lab.harness_source, "harness.py", "exec"), namespace)
    with torch.random.fork_rng(devices=[]):  # the grader's own generator is left as it was
        return [to_raw(namespace[entry](module, **to_tensors(case))) for case in cases]


def _harness_replies(ctx, entry: str, cases: list[dict[str, Any]]) -> list[CallReply]:
    """The same harness function on the student's module in the sandbox: one child per case, so an
    exception is that case's outcome, as with a plain call."""
    replies = []
    for case in cases:
        try:
            reply = ctx.probe("harness", source=ctx.lab.harness_source, entry=entry, args=case)
            # The harness probe answers {"result": raw values} (and what it recorded, when asked to)
            replies.append(CallReply(ok=True, value=reply.get("result") if isinstance(reply, dict) else None))
        except ProbeFailure as failure:
            if failure.stage != Stage.probe or failure.status != ProbeStatus.error or failure.out_of_memory:
                raise  # import failures, timeouts and memory are worded by the engine
            replies.append(CallReply(ok=False, error=failure.error))
    return replies


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class _Problem:
    """The first thing wrong with one output part: what, on which input, and the values there."""

    def __init__(self, feedback: Feedback, label: str, got: Any = None, want: Any = None) -> None:
        self.feedback, self.label, self.got, self.want = feedback, label, got, want

    @property
    def differs(self) -> bool:
        return self.feedback.text().startswith("differs")


def _scalar(value: Any) -> float | None:
    arr = as_array(value)
    return float(arr.reshape(-1)[0]) if arr is not None and arr.size == 1 else None


def _sentences(problems: dict[str, _Problem], errors: dict[str, float], params: FunctionOutputsParams,
               ratios: dict[str, str]) -> Feedback:
    """One sentence for all the parts that merely differ, one per part for anything else; then,
    for each part that is one number, the student's value against the reference's."""
    out = Feedback()
    differ = [n for n, p in problems.items() if p.differs]
    for name, problem in problems.items():
        if name not in differ:
            out.say(name)
            for part in problem.feedback.parts:
                out.add(part.text, *part.shows) if not part.unless else out.instead(part.text, *part.unless)
            out.add(f" on {problem.label}.")
    if differ:
        worst = max(errors.get(n, float("inf")) for n in differ)
        verb = "differs" if len(differ) == 1 else "differ"
        out.say(f"{_join(differ)} {verb} from {params.against} (relative error up to {worst:.1e}, "
                f"tolerance {params.rel_tol:.0e}), first on {problems[differ[0]].label}.")
    G, E = Reveal.got, Reveal.expected
    for name in differ:
        problem = problems[name]
        g, w = _scalar(problem.got), _scalar(problem.want)
        if g is not None and w is not None:
            out.say(f"On {problem.label}, {name} is {g:.6g}", G).add(f" where {params.against} gives {w:.6g}", G, E)
            out.add(".", G)
        if name in ratios:
            what = ("a percentage? Return a fraction between 0 and 1." if ratios[name] == "×100"
                    else "a fraction? A percentage is asked for here.")
            out.say(f"{name} is {params.against}'s {ratios[name]} — {what}")
    return out



@register_check("function_outputs")
class FunctionOutputsCheck(CheckKind):
    Params = FunctionOutputsParams
    summary = "A student function's outputs, part by part, against the reference (relative error); mistakes diagnosed."
    disclosure = Disclosure(shows=[Reveal.got, Reveal.inputs], details={"comparisons": [], "cases": []})

    def preload(self, params) -> list[str]:
        return OPERATOR_RECORD_PRELOAD if params.forbid_ops or params.forbid_autograd else []

    def needs(self, params: FunctionOutputsParams) -> list[Need]:
        return [Need(params.function)]

    def run(self, ctx, params: FunctionOutputsParams) -> Outcome:
        ref_module = ctx.reference
        reference = getattr(ref_module, params.reference or params.function)
        cases = [c if isinstance(c, dict) else {"args": c} for c in getattr(ref_module, params.cases)(ctx.rng())]
        labels = [c.get("label") or f"case {i + 1}" for i, c in enumerate(cases)]
        args: list[Any] = [dict(c["args"]) if params.harness else list(c["args"]) for c in cases]

        seed = int(ctx.rng().integers(2**31))
        expected = ctx.reference_value("expected", [args, seed], lambda: (
            _harness_values(ctx, params.harness, ref_module, args) if params.harness
            else _reference_values(reference, args, params.tensors, seed)))
        if params.nondeterministic:
            twice = ctx.call(params.function, args + args, tensors=params.tensors)
            for label, first, second in zip(labels, twice[:len(args)], twice[len(args):]):
                if first.ok and second.ok and value_problem(second.value, first.value, 0.0, equal_nan=True)[0]:
                    return Outcome.failed(Feedback(f"{params.function} gave two different results for the same "
                                                   f"input ({label}).").say(params.nondeterministic.message),
                                          diagnosis=params.nondeterministic.name)
        if params.harness:
            replies = _harness_replies(ctx, params.harness, args)
        else:
            watch = {"forbid_ops": params.forbid_ops, "forbid_autograd": True} if params.forbid_autograd else \
                {"forbid_ops": params.forbid_ops} if params.forbid_ops else {}
            replies = ctx.call(params.function, args, tensors=params.tensors, seed=seed, **watch)
        name = params.function
        forbidden = forbidden_use(name, replies)
        if forbidden is not None:
            return forbidden
        raised = [(label, reply) for label, reply in zip(labels, replies) if not reply.ok]
        if raised:
            return Outcome.error(raised_feedback(name, raised, len(cases), noun="input"))

        problems: dict[str, _Problem] = {}   # output name → its first problem
        errors: dict[str, float] = {}        # output name → largest relative error (values only)
        got_parts: dict[str, list[Any]] = {}
        for label, exp, reply in zip(labels, expected, replies):
            for out in params.outputs:
                found, got = pick(reply.value, out.path)
                _, want = pick(exp, out.path)
                got_parts.setdefault(out.name, []).append(got if found else None)
                problem: Feedback | None
                if not found:
                    problem = Feedback().add(f" is missing from what {name} returned (expected at `{out.path}`)")
                elif "values" in out.compare:
                    problem, error = value_feedback(got, want, params.rel_tol, against=params.against)
                    if as_array(want) is not None:  # a relative error means something for numbers only
                        errors[out.name] = max(errors.get(out.name, 0.0), error)
                else:
                    problem = self._problem(out, got, want, params)
                if problem and out.name not in problems:
                    problems[out.name] = _Problem(problem, label, got, want)

        comparisons = [{"name": n, "rel_error": e, "tolerance": params.rel_tol} for n, e in errors.items()]
        if not problems:
            verb = "agrees" if len(params.outputs) == 1 else "agree"
            inputs = "its input" if len(cases) == 1 else f"all {len(cases)} inputs"
            return Outcome.passed(f"{name}: {', '.join(o.name for o in params.outputs)} {verb} with {params.against} "
                                  f"on {inputs}.", details={"comparisons": comparisons})
        ratios = {n: r for n, p in problems.items() if p.differs and (r := self._ratio(got_parts[n], expected, n, params))}
        diagnoses = self._diagnose(ctx, params, args, got_parts, list(problems), seed)
        # a declared mistake that is the percentage says so in the lab's words: the generic sentence once, or not at all
        parts = _sentences(problems, errors, params, {n: r for n, r in ratios.items() if n not in diagnoses})
        diagnoses.update({n: ("percentage-not-fraction" if r == "×100" else "fraction-not-percentage", "")
                          for n, r in ratios.items() if n not in diagnoses})
        by_mistake: dict[tuple[str, str], list[str]] = {}
        for part, mistake in diagnoses.items():
            if mistake[1]:
                by_mistake.setdefault(mistake, []).append(part)
        for (_, message), named in by_mistake.items():
            parts.say(f"{_join(named)}: {message}")
        names = sorted({n for n, _ in diagnoses.values()})
        by_path = {o.path: o.name for o in params.outputs}
        unearned = [o for o in params.outputs if o.name not in problems
                    and any(by_path.get(r, r) in problems for r in o.requires)]
        for out in unearned:
            wrong = _join([by_path.get(r, r) for r in out.requires if by_path.get(r, r) in problems])
            parts.say(f"{out.name[0].upper()}{out.name[1:]}: counted only alongside right values of {wrong} "
                      "(a function that never touches the model leaves them right too).")
        fraction = 1 - (len(problems) + len(unearned)) / len(params.outputs)
        return Outcome.graded(fraction if len(params.outputs) > 1 else 0.0, parts,
                              diagnoses=names if names and len(diagnoses) == len(problems) else [],
                              details={"comparisons": comparisons, "cases": len(cases)})

    @staticmethod
    def _ratio(got: list[Any], expected: list[Any], name: str, params: FunctionOutputsParams) -> str | None:
        """×100 or ÷100 when every case on which the part differs says so (where both are 0 they agree)."""
        spec = next(o for o in params.outputs if o.name == name)
        pairs = [(g, pick(e, spec.path)[1]) for g, e in zip(got, expected)]
        found = {percent_ratio(g, e, params.rel_tol) for g, e in pairs
                 if g is not None and value_problem(g, e, params.rel_tol)[0] is not None}
        return found.pop() if len(found) == 1 and None not in found else None

    @staticmethod
    def _problem(out: OutputSpec, got: Any, want: Any, params: FunctionOutputsParams) -> Feedback | None:
        """Shape, dtype and spread comparisons (``values`` are compared by ``value_feedback``)."""
        import numpy as np

        G, E = Reveal.got, Reveal.expected
        g, e = as_array(got), as_array(want)
        if g is None or e is None:
            return Feedback().add(f" is {type(got).__name__}, not an array") if g is None else None
        if "shape" in out.compare and fit_shape(g, e) is None:
            return Feedback().add(f" has {shape_words(g)}", G).instead(" has the wrong shape", G).add(f", expected {shape_words(e)}", E)
        if "dtype" in out.compare:
            got_kind = np.asarray(got).dtype.kind
            if got_kind != np.asarray(want).dtype.kind:
                return (Feedback().add(f" has dtype {np.asarray(got).dtype}", G).instead(" has the wrong dtype", G)
                        .add(f", expected {np.asarray(want).dtype}", E))
        if "std" in out.compare:
            gs, es = float(np.std(g)), float(np.std(e))
            if not np.isfinite(gs) or abs(gs - es) > params.std_rel_tol * es:
                return (Feedback().add(f" has standard deviation {gs:.3g}", G).instead(" has the wrong spread", G)
                        .add(f", expected about {es:.3g}", E))
        return None

    @staticmethod
    def _diagnose(ctx, params: FunctionOutputsParams, args: list[Any], got_parts: dict[str, list[Any]],
                  wrong: list[str], seed: int) -> dict[str, tuple[str, str]]:
        """For each wrong part, the first declared mistake that reproduces the student's values on
        every case (NaN where they have NaN): ``{part: (mistake name, message)}``."""
        ref_module = ctx.reference
        found: dict[str, tuple[str, str]] = {}
        for mistake in params.mistakes:
            fn = getattr(ref_module, mistake.reference)
            try:
                values = ctx.reference_value(f"mistake {mistake.reference}", [args, seed], lambda fn=fn: (
                    _harness_values(ctx, params.harness, _WithMistake(ref_module, params.function, fn), args)
                    if params.harness else _reference_values(fn, args, params.tensors, seed)))
            except Exception:
                continue
            for out in params.outputs:
                if out.name not in wrong or out.name in found:
                    continue
                picked = [pick(v, out.path) for v in values]
                if all(ok for ok, _ in picked) and all(
                        g is not None and value_problem(g, m, params.rel_tol, equal_nan=True)[0] is None
                        for g, (_, m) in zip(got_parts[out.name], picked)):
                    found[out.name] = (mistake.name, mistake.message)
        return found
