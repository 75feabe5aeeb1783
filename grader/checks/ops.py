"""``op_equivalence``: a hand-written op against the torch op it re-implements.

Inputs are drawn from declared dimensions (each a list of allowed values, simplest first), plus
the edge cases the lab lists. When the op disagrees with torch, the smallest failing input is
shrunk, hypothesis-style: one dimension at a time moves towards its simplest value, then the
values become small integers, as long as the disagreement remains. The student gets that input
as code to paste, with where the outputs differ. Using the very torch op one was asked to write
is detected in the source (``forbidden``, with the line), at run time by name (the sandbox's
tripwire) and by operator (``forbid_ops``: whatever name or alias reached it, the torch op ran),
and zeroes the check with that reason.

The expected values are torch's own: public, so students see them beside their own values and
the input, unless a lab narrows that with ``reveal:``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from grader.checks.forbidden import OPERATOR_RECORD_PRELOAD, forbidden_uses
from grader.checks.functions import FunctionMistake
from grader.checks.registry import CheckKind, KindParams, LocalCheck, register_check
from grader.checks.values import as_array
from grader.lab.manifest import Need, Reveal
from grader.results import Disclosure, Feedback, Outcome

PRINTABLE = 150  # elements: larger tensors are described, not printed
# torch's private ways to run operators past the sandbox's record of them (``sandbox.watch``):
# named in a source that must not run a forbidden operator, they count as a forbidden use.
RECORD_SWITCHES = ["torch.utils._python_dispatch", "torch._C._DisableTorchDispatch", "torch._C._pop_torch_dispatch_mode",
                   "torch._C._unset_dispatch_mode", "torch._C._DisablePythonDispatcher", "torch._C._ExcludeDispatchKeyGuard"]


class OpParams(KindParams):
    function: str = Field(description="The student's function (a declared symbol).")
    reference: str = Field(description="Reference-module function calling the torch op.")
    torch_name: str = Field(description="The torch op, as feedback names it.")
    builder: str = Field(description="Reference-module function (rng, ints, **dims) → argument list; "
                                     "raises ValueError for dimensions that make no valid input.")
    dims: dict[str, list[Any]] = Field(description="Each dimension's allowed values, simplest first.")
    examples: list[dict[str, Any]] = Field(default_factory=list, description="Edge cases always tried.")
    samples: int = Field(30, ge=1, le=500)
    rtol: float = Field(1e-4, ge=0)
    atol: float = Field(1e-4, ge=0)
    parts: list[str] = Field(default_factory=list, description="Names of the parts of a tuple result.")
    forbid: list[str] = Field(default_factory=list, description="Dotted names the student may not use (found in the "
                                                               "source, with their line, and at run time).")
    forbid_ops: list[str] = Field(default_factory=list, description="Operators the student's function may not run, "
                                  "however it reaches them: glob patterns of dispatcher names, e.g. 'aten::*max_pool*', "
                                  "'aten::convolution' (recorded by a TorchDispatchMode in the sandbox).")
    mistakes: list[FunctionMistake] = Field(default_factory=list)
    shrink_rounds: int = Field(8, ge=0, le=50)


class Case:
    def __init__(self, dims: dict[str, Any], seed: int, ints: bool, args: list[Any], expected: Any) -> None:
        self.dims, self.seed, self.ints, self.args, self.expected = dims, seed, ints, args, expected

    @property
    def size(self) -> int:
        import numpy as np

        return sum(int(np.size(a)) for a in self.args if isinstance(a, np.ndarray))

    def key(self) -> tuple[Any, ...]:
        return (tuple(sorted(self.dims.items())), self.seed, self.ints)


def _disagreement(got: Any, expected: Any, params: OpParams, part: str = "") -> str | None:
    """Why ``got`` is not torch's ``expected``; ``None`` when they agree within tolerance."""
    import numpy as np

    where = f"{part}: " if part else ""
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return f"{where}returned {_kind(got)}, torch gives {len(expected)} values ({', '.join(params.parts)})"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = _disagreement(g, e, params, params.parts[i] if i < len(params.parts) else f"[{i}]")
            if problem:
                return problem
        return None
    e, g = as_array(expected), as_array(got)
    if g is None:
        return f"{where}returned {_kind(got)}, torch gives an array of shape {tuple(np.shape(expected))}"
    if e is None:
        return None if got == expected else f"{where}returned {got!r}, torch gives {expected!r}"
    if np.squeeze(g).shape != np.squeeze(e).shape:
        return f"{where}output shape {tuple(g.shape)}, torch gives {tuple(e.shape)}"
    g = g.reshape(e.shape)
    bad_g = ~np.isfinite(g) & np.isfinite(e)
    if bad_g.any():
        idx = tuple(int(i) for i in np.argwhere(bad_g)[0])
        return f"{where}{_at(idx)}you return {g[idx]}, torch gives {e[idx]:.6g} (overflow?)"
    if np.allclose(g, e, rtol=params.rtol, atol=params.atol, equal_nan=True):
        return None
    diff = np.where(np.isfinite(e), np.abs(g - e), 0.0)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), e.shape)) if e.ndim else ()
    return (f"{where}{_at(idx)}you return {g[idx]:.6g}, torch gives {e[idx]:.6g} "
            f"(largest difference, {float(diff[idx]):.2g})")


def _at(idx: tuple[int, ...]) -> str:
    return f"at index {idx} " if idx else ""


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return f"a sequence of {len(value)}"
    return "None" if value is None else type(value).__name__


def _literal(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.size > PRINTABLE:
            return f"torch.randn{tuple(value.shape)}  # {value.size} values, too many to print"
        text = np.array2string(value, separator=", ", threshold=PRINTABLE + 1, max_line_width=100,
                               formatter={"float_kind": lambda v: f"{v:.6g}" if v != int(v) else f"{int(v)}."})
        dtype = "" if value.dtype.kind == "f" else f", dtype=torch.{value.dtype}"
        return f"torch.tensor({' '.join(text.split())}{dtype})"
    return repr(value)


@register_check("op_equivalence")
class OpEquivalenceCheck(CheckKind):
    Params = OpParams
    summary = "A hand-written op against the torch op on drawn inputs; the smallest failing input is shrunk and shown."
    _ALL = [Reveal.got, Reveal.inputs, Reveal.expected]
    disclosure = Disclosure(shows=_ALL, details={"counterexample": _ALL, "forbidden": [], "failing": [], "inputs": []})

    def preload(self, params) -> list[str]:
        return OPERATOR_RECORD_PRELOAD if params.forbid_ops else []

    def needs(self, params: OpParams) -> list[Need]:
        return [Need(params.function)]

    def student_edition(self, params: OpParams) -> LocalCheck:
        """The torch op and the input builder are public; the declared mistakes are hand-written
        variants of the op (near-solutions), so a student edition runs without them."""
        local = params.model_dump(exclude={"mistakes"}, exclude_defaults=True)
        return LocalCheck(params=local, reference=(params.reference, params.builder))

    def run(self, ctx, params: OpParams) -> Outcome:
        import numpy as np

        from grader.sandbox.probes import to_raw, to_tensors

        ref = ctx.reference
        builder, reference = getattr(ref, params.builder), getattr(ref, params.reference)

        def make(dims: dict[str, Any], seed: int, ints: bool) -> Case | None:
            try:
                args = builder(np.random.default_rng(seed), ints, **dims)
                expected = to_raw(reference(*to_tensors(list(args))))
            except (ValueError, RuntimeError):
                return None  # no valid input for these dimensions
            return Case(dims, seed, ints, list(args), expected)

        def ask(cases: list[Case]) -> list[tuple[Case, str | None, list[str]]]:
            replies = ctx.call(params.function, [c.args for c in cases], tensors=True, forbid=params.forbid,
                               forbid_ops=params.forbid_ops)
            out = []
            for case, reply in zip(cases, replies):
                problem = _disagreement(reply.value, case.expected, params) if reply.ok else f"raised {reply.error_text}"
                out.append((case, problem, reply.forbidden + [f"{op} (operator)" for op in reply.operators]))
            return out

        rng = ctx.rng()
        drawn = [dict(d) for d in params.examples] + [
            {k: v[int(rng.integers(len(v)))] for k, v in params.dims.items()} for _ in range(params.samples)]
        cases = [c for c in (make(d, int(rng.integers(2**31)), False) for d in drawn) if c is not None]
        if not cases:
            raise ValueError(f"{params.builder} made no valid input from the declared dims")
        verdicts = ask(cases)

        static = []
        source = ctx.submission.module_source
        if source is not None:
            static = forbidden_uses(source, params.function, params.forbid + (RECORD_SWITCHES if params.forbid_ops else []))
        runtime = list(dict.fromkeys(name for _, _, seen in verdicts for name in seen))
        operators = [n.removesuffix(" (operator)") for n in runtime if n.endswith(" (operator)")]
        called = [n for n in runtime if not n.endswith(" (operator)")]
        if static or runtime:
            found = [str(u) for u in static] + [f"{n} (called at run time)" for n in called
                                                if n not in {u.name for u in static}]
            ran = (f"{'runs' if found else 'ran'} the operator{'s' * (len(operators) > 1)} {', '.join(operators)}"
                   if operators else "")
            what = "; ".join(part for part in (f"uses {', '.join(found)}" if found else "", ran) if part)
            return Outcome.failed(Feedback(f"{params.function} {what}: this op must be written by hand, "
                                           f"without {params.torch_name} or another torch op that does its work. "
                                           "The verdict for this op is zero."),
                                  diagnosis="forbidden-call", details={"forbidden": found, "operators": operators})

        failing = [(c, p) for c, p, _ in verdicts if p]
        sizes = sorted(c.size for c in cases)
        if not failing:
            return Outcome.passed(f"{params.function} agrees with {params.torch_name} on all {len(cases)} inputs "
                                  f"({sizes[0]} to {sizes[-1]} input values).")
        smallest, problem = self._shrink(min(failing, key=lambda cp: cp[0].size), params, make, ask)
        names = ctx.lab.manifest.interface.symbol(params.function).params
        call = ", ".join(names[:len(smallest.args)]) if len(names) >= len(smallest.args) else \
            ", ".join(f"arg{i}" for i in range(len(smallest.args)))
        statements = [f"{n} = {_literal(a)}" for n, a in zip(call.split(", "), smallest.args)]
        repro = "; ".join(statements)
        I, everything = Reveal.inputs, self._ALL
        message = Feedback(f"{params.function} disagrees with {params.torch_name} on {len(failing)} of {len(cases)} "
                           "inputs.")
        message.say(f"Smallest failing input found ({', '.join(f'{k}={v}' for k, v in smallest.dims.items())})", I)
        message.add(f": {problem}", *everything).add(".", I)
        message.say(f"To reproduce: {repro}; then compare {params.function}({call}) with {params.torch_name}.", I)
        diagnosis = self._diagnose(ref, params, [c for c, _, _ in verdicts], ctx)
        if diagnosis:
            message.say(diagnosis.message)
        return Outcome.failed(message, diagnosis=diagnosis.name if diagnosis else None,
                              details={"counterexample": {"dims": smallest.dims, "ints": smallest.ints,
                                                          "problem": problem, "code": repro,
                                                          "statements": statements,
                                                          "compare": [f"{params.function}({call})", params.torch_name]},
                                       "failing": len(failing), "inputs": len(cases)})

    @staticmethod
    def _shrink(start: tuple[Case, str], params: OpParams, make, ask) -> tuple[Case, str]:
        """Greedy shrinking: each round asks the child about every one-step simplification of the
        current counterexample and keeps the smallest that still fails."""
        best, problem = start
        seen = {best.key()}
        for _ in range(params.shrink_rounds):
            candidates = []
            for dim, values in params.dims.items():
                current = best.dims.get(dim)
                index = values.index(current) if current in values else len(values)
                for j in sorted({0, index - 1}):
                    if 0 <= j < index:
                        candidates.append(({**best.dims, dim: values[j]}, best.ints))
            if not best.ints:
                candidates.append((best.dims, True))
            made = [c for c in (make(d, best.seed, ints) for d, ints in candidates) if c is not None and c.key() not in seen]
            seen.update(c.key() for c in made)
            still = [(c, p) for c, p, _ in ask(made)] if made else []
            still = [(c, p) for c, p in still if p]
            if not still:
                break
            best, problem = min(still, key=lambda cp: (cp[0].size, not cp[0].ints))
        return best, problem

    @staticmethod
    def _diagnose(ref: Any, params: OpParams, cases: list[Case], ctx) -> FunctionMistake | None:
        """The first declared mistake that reproduces the student's outputs on every input."""
        if not params.mistakes:
            return None
        from grader.sandbox.probes import to_raw, to_tensors

        replies = ctx.call(params.function, [c.args for c in cases], tensors=True, forbid=params.forbid,
                           forbid_ops=params.forbid_ops)
        for mistake in params.mistakes:
            fn = getattr(ref, mistake.reference)
            agrees = True
            for case, reply in zip(cases, replies):
                try:
                    wrong = to_raw(fn(*to_tensors(list(case.args))))
                except Exception:
                    agrees = False
                    break
                if not reply.ok or _disagreement(reply.value, wrong, params) is not None:
                    agrees = False
                    break
            if agrees:
                return mistake
        return None
