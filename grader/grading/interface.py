"""Does the student's module offer what the manifest declares? Decided here, from raw data.

The child only reports what it sees (``describe`` probe); the report is validated with pydantic
as untrusted input, and the judgement about signatures is made in the grader.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from grader.lab.manifest import SymbolSpec


class ParamReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: str
    default: bool


class SymbolReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exists: bool
    kind: str | None = None
    params: list[ParamReport] | None = None


def _signature(params: list[ParamReport]) -> str:
    parts = []
    for p in params:
        prefix = "*" if p.kind == "VAR_POSITIONAL" else "**" if p.kind == "VAR_KEYWORD" else ""
        parts.append(f"{prefix}{p.name}{'=…' if p.default else ''}")
    return f"({', '.join(parts)})"


def symbol_problem(spec: SymbolSpec, report: SymbolReport, module_name: str) -> str | None:
    """None when the symbol can be used as declared, else a sentence naming what is wrong."""
    wanted = f"({', '.join(spec.params)})"
    if not report.exists:
        return f"`{spec.name}` is missing from {module_name} (expected a {spec.kind} {spec.name}{wanted})"
    if report.kind != spec.kind:
        return f"`{spec.name}` in {module_name} should be a {spec.kind}, but it is a {report.kind}"
    if report.params is None:
        return None
    n = len(spec.params)
    positional = [p for p in report.params if p.kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    required = [p for p in positional if not p.default]
    varargs = any(p.kind == "VAR_POSITIONAL" for p in report.params)
    kw_required = [p for p in report.params if p.kind == "KEYWORD_ONLY" and not p.default]
    if len(required) > n or (len(positional) < n and not varargs) or kw_required:
        what = "its constructor" if spec.kind == "class" else f"`{spec.name}`"
        return (f"{what} must accept {n} argument{'s' if n != 1 else ''} {wanted}; "
                f"the signature in {module_name} is {_signature(report.params)}")
    return None
