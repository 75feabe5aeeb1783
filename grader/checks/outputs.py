"""``function_outputs``: what a student function returns, part by part, against the reference.

Made for numerical code (a forward pass and its intermediates, gradients, an update step, an
initialisation): the lab's reference module draws the inputs (``cases``, seeded by the grader)
and computes the expected values in the grader's own process. Each declared output (a path into
the returned value, such as ``1.htilde``) is compared by relative error. Where a part is wrong,
each declared mistake (a reference-module function that makes it on purpose) is tested on that
part: the diagnosis is computed from the student's numbers, never guessed.

Functions that take objects rather than arrays (a model, an optimizer, a ``DataLoader``) are
called through the lab's harness (``harness:``): a harness function builds those objects in the
sandbox and calls the student's function on them; the same harness function on the reference
module, in the grader, gives the expected values, and with a mistake's function put in the
reference's place, the values that mistake would give.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from grader.checks.functions import FunctionMistake
from grader.lab.manifest import Need
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.results import Outcome
from grader.sandbox.replies import CallReply, ProbeFailure, ProbeStatus, Stage

Compare = Literal["values", "shape", "dtype", "std"]


class OutputSpec(KindParams):
    path: str = Field("", description="Dotted path into the returned value: '0', '1.htilde', 'Wh'; '' for all of it.")
    label: str | None = Field(None, description="How the feedback names this part (defaults to the path).")
    compare: list[Compare] = Field(["values"], min_length=1,
                                   description="values: relative error; shape; dtype (its kind: float, int); "
                                               "std: spread within std_rel_tol of the reference's.")

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
    harness: str | None = Field(None, description=(
        "A function of the lab's harness, (module, **case args) → value, that builds what the student's function "
        "is called with (a model, an optimizer, a DataLoader) and calls it, inside the sandbox. The expected value "
        "is the same harness function on the reference module, in the grader; for a mistake, the mistake's "
        "function stands in for the reference's. A case's args are then keyword arguments."))

    @model_validator(mode="after")
    def _harness_calls_once(self) -> "FunctionOutputsParams":
        if self.harness and self.nondeterministic:
            raise ValueError("nondeterministic asks each input twice, which a harness case does not")
        return self


def relative_error(got: np.ndarray, expected: np.ndarray, equal_nan: bool = False) -> float:
    """‖got − expected‖ / max(‖got‖, ‖expected‖); 0 when both are zero, inf when a NaN or inf
    appears where the other has a number (or anywhere, unless ``equal_nan`` and both agree)."""
    g_bad, e_bad = ~np.isfinite(got), ~np.isfinite(expected)
    if g_bad.any() or e_bad.any():
        if not (equal_nan and np.array_equal(g_bad, e_bad)):
            return float("inf")
        got, expected = np.where(g_bad, 0.0, got), np.where(e_bad, 0.0, expected)
    scale = max(float(np.linalg.norm(got)), float(np.linalg.norm(expected)))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(got - expected)) / scale


def pick(value: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path through lists (by index) and dicts (by key)."""
    for part in path.split(".") if path else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def as_array(value: Any) -> np.ndarray | None:
    """A number, numeric list or array as a float array; ``None`` for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if arr.dtype.kind not in "fiub":
        return None
    return arr.astype(float)


def _fit(got: np.ndarray, expected: np.ndarray) -> np.ndarray | None:
    """The student's array in the reference's shape, forgiving only size-1 axes ((1, n) for (n,))."""
    if got.shape == expected.shape:
        return got
    if got.size == expected.size and np.squeeze(got).shape == np.squeeze(expected).shape:
        return got.reshape(expected.shape)
    return None


def _shape(a: np.ndarray) -> str:
    return "a scalar" if a.ndim == 0 else f"shape ({', '.join(map(str, a.shape))})"


def value_problem(got: Any, expected: Any, rel_tol: float, equal_nan: bool = False,
                  against: str = "the reference") -> tuple[str | None, float]:
    """Why ``got`` is not ``expected`` (or ``None``), and the relative error."""
    e, g = as_array(expected), as_array(got)
    if e is None:
        return (None, 0.0) if got == expected else (f"is {got!r}, expected {expected!r}", float("inf"))
    if g is None:
        return f"is {type(got).__name__ if got is not None else 'None'}, not numbers", float("inf")
    fitted = _fit(g, e)
    if fitted is None:
        return f"has {_shape(g)}, expected {_shape(e)}", float("inf")
    err = relative_error(fitted, e, equal_nan)
    if err <= rel_tol:
        return None, err
    if not np.isfinite(fitted).all() and np.isfinite(e).all():
        return f"contains NaN or inf where {against} is finite", err
    return f"differs from {against} (relative error {err:.2e}, tolerance {rel_tol:.0e})", err


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
    exec(compile(ctx.lab.harness_source, "harness.py", "exec"), namespace)  # noqa: S102  (the lab's code)
    with torch.random.fork_rng(devices=[]):  # the grader's own generator is left as it was
        return [to_raw(namespace[entry](module, **to_tensors(case))) for case in cases]


def _harness_replies(ctx, entry: str, cases: list[dict[str, Any]]) -> list[CallReply]:
    """The same harness function on the student's module in the sandbox: one child per case, so an
    exception is that case's outcome, as with a plain call."""
    replies = []
    for case in cases:
        try:
            replies.append(CallReply(ok=True, value=ctx.probe("harness", source=ctx.lab.harness_source, entry=entry,
                                                              args=case)))
        except ProbeFailure as failure:
            if failure.stage != Stage.probe or failure.status != ProbeStatus.error or failure.out_of_memory:
                raise  # import failures, timeouts and memory are worded by the engine
            replies.append(CallReply(ok=False, error=failure.error))
    return replies


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _sentences(problems: dict[str, tuple[str, str]], errors: dict[str, float],
               params: FunctionOutputsParams) -> list[str]:
    """One sentence for all the parts that merely differ, one per part for anything else."""
    differ = [n for n, (p, _) in problems.items() if p.startswith("differs")]
    out = [f"{n} {p} on {label}." for n, (p, label) in problems.items() if n not in differ]
    if differ:
        worst = max(errors.get(n, float("inf")) for n in differ)
        verb = "differs" if len(differ) == 1 else "differ"
        out.append(f"{_join(differ)} {verb} from {params.against} (relative error up to {worst:.1e}, "
                   f"tolerance {params.rel_tol:.0e}), first on {problems[differ[0]][1]}.")
    return out


@register_check("function_outputs")
class FunctionOutputsCheck(CheckKind):
    Params = FunctionOutputsParams
    summary = "A student function's outputs, part by part, against the reference (relative error); mistakes diagnosed."

    def needs(self, params: FunctionOutputsParams) -> list[Need]:
        return [Need(params.function)]

    def run(self, ctx, params: FunctionOutputsParams) -> Outcome:
        ref_module = ctx.reference
        reference = getattr(ref_module, params.reference or params.function)
        cases = [c if isinstance(c, dict) else {"args": c} for c in getattr(ref_module, params.cases)(ctx.rng())]
        labels = [c.get("label") or f"case {i + 1}" for i, c in enumerate(cases)]
        args = [dict(c["args"]) if params.harness else list(c["args"]) for c in cases]

        seed = int(ctx.rng().integers(2**31))
        expected = ctx.reference_value("expected", [args, seed], lambda: (
            _harness_values(ctx, params.harness, ref_module, args) if params.harness
            else _reference_values(reference, args, params.tensors, seed)))
        if params.nondeterministic:
            twice = ctx.call(params.function, args + args, tensors=params.tensors)
            for label, first, second in zip(labels, twice[:len(args)], twice[len(args):]):
                if first.ok and second.ok and value_problem(second.value, first.value, 0.0, equal_nan=True)[0]:
                    return Outcome.failed(f"{params.function} gave two different results for the same input ({label}). "
                                          f"{params.nondeterministic.message}",
                                          diagnosis=params.nondeterministic.name)
        if params.harness:
            replies = _harness_replies(ctx, params.harness, args)
        else:
            replies = ctx.call(params.function, args, tensors=params.tensors, seed=seed)
        name = params.function

        problems: dict[str, tuple[str, str]] = {}  # output name → (first problem, the case it showed on)
        errors: dict[str, float] = {}        # output name → largest relative error (values only)
        got_parts: dict[str, list[Any]] = {}
        for label, exp, reply in zip(labels, expected, replies):
            if not reply.ok:
                return Outcome.error(f"{name} raised {reply.error_text} on {label}.")
            for out in params.outputs:
                found, got = pick(reply.value, out.path)
                _, want = pick(exp, out.path)
                got_parts.setdefault(out.name, []).append(got if found else None)
                if not found:
                    problem = f"is missing from what {name} returned (expected at `{out.path}`)"
                elif "values" in out.compare:
                    problem, error = value_problem(got, want, params.rel_tol, against=params.against)
                    if as_array(want) is not None:  # a relative error means something for numbers only
                        errors[out.name] = max(errors.get(out.name, 0.0), error)
                else:
                    problem = self._problem(out, got, want, params)
                if problem and out.name not in problems:
                    problems[out.name] = (problem, label)

        comparisons = [{"name": n, "rel_error": e, "tolerance": params.rel_tol} for n, e in errors.items()]
        if not problems:
            verb = "agrees" if len(params.outputs) == 1 else "agree"
            inputs = "its input" if len(cases) == 1 else f"all {len(cases)} inputs"
            return Outcome.passed(f"{name}: {', '.join(o.name for o in params.outputs)} {verb} with {params.against} "
                                  f"on {inputs}.", details={"comparisons": comparisons})
        parts = _sentences(problems, errors, params)
        diagnoses = self._diagnose(ctx, params, args, got_parts, list(problems), seed)
        by_mistake: dict[tuple[str, str], list[str]] = {}
        for part, mistake in diagnoses.items():
            by_mistake.setdefault(mistake, []).append(part)
        parts += [f"{_join(p)}: {message}" for (_, message), p in by_mistake.items()]
        names = sorted({n for n, _ in diagnoses.values()})
        fraction = 1 - len(problems) / len(params.outputs)
        return Outcome.graded(fraction if len(params.outputs) > 1 else 0.0, " ".join(parts),
                              diagnoses=names if names and len(diagnoses) == len(problems) else [],
                              details={"comparisons": comparisons, "cases": len(cases)})

    @staticmethod
    def _problem(out: OutputSpec, got: Any, want: Any, params: FunctionOutputsParams) -> str | None:
        """Shape, dtype and spread comparisons (``values`` are compared by ``value_problem``)."""
        g, e = as_array(got), as_array(want)
        if g is None or e is None:
            return f"is {type(got).__name__}, not an array" if g is None else None
        if "shape" in out.compare and _fit(g, e) is None:
            return f"has {_shape(g)}, expected {_shape(e)}"
        if "dtype" in out.compare:
            got_kind = np.asarray(got).dtype.kind
            if got_kind != np.asarray(want).dtype.kind:
                return f"has dtype {np.asarray(got).dtype}, expected {np.asarray(want).dtype}"
        if "std" in out.compare:
            gs, es = float(np.std(g)), float(np.std(e))
            if not np.isfinite(gs) or abs(gs - es) > params.std_rel_tol * es:
                return f"has standard deviation {gs:.3g}, expected about {es:.3g}"
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
                values = ctx.reference_value(f"mistake {mistake.reference}", [args, seed], lambda: (
                    _harness_values(ctx, params.harness, _WithMistake(ref_module, params.function, fn), args)
                    if params.harness else _reference_values(fn, args, params.tensors, seed)))
            except Exception:  # noqa: BLE001  (a mistake that does not apply to these inputs)
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
