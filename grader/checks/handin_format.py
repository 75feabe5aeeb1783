"""``handin_format``: what a lab's student edition runs in place of a check that needs the lab's
solutions (the reference implementation of what students write, or the reference answers).

It checks the form of the hand-in only — the sheet parses, each field it grades is there with its
type, the module imports, each symbol it calls exists and takes its parameters — and says that
the check itself is graded on hand-in. Its status (``deferred``) is not scored: a format that is
right earns nothing yet, and a student is not told "passed" about values nobody checked.
"""

from __future__ import annotations

from pydantic import Field

from grader.checks.registry import CheckKind, KindParams, register_check
from grader.lab.manifest import Need
from grader.results import Disclosure, Outcome, Status


class HandinFormatParams(KindParams):
    of: str = Field(description="The kind of the check graded on hand-in (for the message).")
    symbols: list[str] = Field(default_factory=list, description="Symbols the check calls (declared).")
    fields: list[str] = Field(default_factory=list, description="Answer-sheet fields it grades (declared).")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


@register_check("handin_format")
class HandinFormatCheck(CheckKind):
    Params = HandinFormatParams
    summary = "A student edition's stand-in for a check that needs the solutions: the hand-in's format only."
    disclosure = Disclosure(plain_message=True)

    def needs(self, params: HandinFormatParams) -> list[Need]:
        return [*map(Need, params.symbols), *map(Need.field, params.fields)]

    def run(self, ctx, params: HandinFormatParams) -> Outcome:
        checked = []
        if params.symbols:
            interface = ctx.lab.manifest.interface
            checked.append(_join([f"`{s}({', '.join(interface.symbol(s).params)})`" for s in params.symbols])
                           + (" is there" if len(params.symbols) == 1 else " are there"))
        if params.fields:
            n = len(params.fields)
            checked.append(f"{'the' if n > 1 else 'its'} {n} answer{'s' * (n > 1)} {'are' if n > 1 else 'is'} "
                           "filled in with the right type")
        here = f" Format checked here: {_join(checked)}." if checked else ""
        return Outcome(status=Status.deferred, message=f"Graded on hand-in: this check needs the lab's solutions.{here}")
