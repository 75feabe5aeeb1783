"""Static detection of forbidden calls in a student's source: "write conv2d by hand" means no
``torch.nn.functional.conv2d``, however it is imported or aliased.

The source is parsed (never run) in the grader. Uses are looked for in the function under test
and in every module-level function it calls, directly or not, so a helper cannot hide one.
The sandbox's run-time tripwire (``probes.Tripwire``) catches what a static read cannot.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from grader.results import Feedback, Outcome

MAX_SOURCE = 1_000_000
# The sandbox records forbidden operators with a TorchDispatchMode (``sandbox.watch``); the first
# one entered in a process imports torch._dynamo (~2 s). A check that watches operators asks the
# fork server to import it once, so that no child pays for it.
OPERATOR_RECORD_PRELOAD = ["torch._dynamo"]


@dataclass(frozen=True)
class Use:
    name: str       # the forbidden dotted name
    line: int
    function: str   # the student's function it appears in

    def __str__(self) -> str:
        return f"{self.name} (line {self.line}, in {self.function})"


def _aliases(tree: ast.Module) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _calls(fn: ast.AST) -> set[str]:
    return {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def forbidden_uses(source: str, function: str, forbidden: list[str]) -> list[Use]:
    """Each use of a forbidden name reachable from ``function``; [] when the source does not parse
    (the import check reports a syntax error on its own)."""
    try:
        tree = ast.parse(source[:MAX_SOURCE])
    except (SyntaxError, ValueError):
        return []
    aliases = _aliases(tree)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = {
        n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        functions.setdefault(cls.name, cls)  # a class called as a helper is searched whole
    reachable, todo = [], [function]
    while todo:
        name = todo.pop()
        if name in functions and name not in reachable:
            reachable.append(name)
            todo.extend(_calls(functions[name]))
    banned = tuple(forbidden)
    uses: dict[tuple[str, int], Use] = {}
    for name in reachable:
        for node in ast.walk(functions[name]):
            if isinstance(node, (ast.Attribute, ast.Name)):
                dotted = _dotted(node, aliases)
                if dotted and (dotted in banned or dotted.startswith(tuple(b + "." for b in banned))):
                    hit = next(b for b in banned if dotted == b or dotted.startswith(b + "."))
                    uses.setdefault((hit, node.lineno), Use(hit, node.lineno, name))
    return sorted(uses.values(), key=lambda u: (u.line, u.name))


def forbidden_use(name: str, replies: list[Any]) -> Outcome | None:
    """A zero for a function that ran a forbidden operator or used autograd where it must not
    (the sandbox recorded it at the dispatcher, whatever name the code used to get there)."""
    autograd = list(dict.fromkeys(a for r in replies for a in r.autograd))
    operators = list(dict.fromkeys(o for r in replies for o in r.operators))
    if autograd:
        return Outcome.failed(Feedback(f"{name} uses autograd ({'; '.join(autograd)}). It must compute these values "
                                       "by hand, as the lab asks; the verdict for this check is zero."),
                              diagnosis="autograd-used", details={"autograd": autograd})
    if operators:
        return Outcome.failed(Feedback(f"{name} runs the operator{'s' * (len(operators) > 1)} {', '.join(operators)}, "
                                       "which the lab asks you to write by hand; the verdict for this check is zero."),
                              diagnosis="forbidden-call", details={"operators": operators})
    return None
