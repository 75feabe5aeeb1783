"""Errors a student's code raised, said once per bug: the same exception at the same line is one
mistake however many inputs hit it (the message differs only by the batch size it quotes)."""

from __future__ import annotations

from collections.abc import Sequence

from grader.lab.manifest import Reveal
from grader.results import Feedback
from grader.sandbox.replies import CallReply


def said_once(raised: Sequence[tuple[str, CallReply]]) -> list[tuple[str, list[str]]]:
    """``(input, reply)`` pairs grouped by exception type and place: ``[(error text of the first,
    [every input it hit])]``, in the order first seen."""
    groups: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for label, reply in raised:
        error = reply.error
        key = (error.type, error.where or error.message) if error else ("", reply.error_text)
        groups.setdefault(key, (reply.error_text, []))[1].append(label)
    return list(groups.values())


def raised_feedback(subject: str, raised: Sequence[tuple[str, CallReply]], total: int, *,
                    examples: int = 3, noun: str = "input", nouns: str | None = None) -> Feedback:
    """``subject raised X on all 7 inputs (e.g. f(1), f(2))``: one sentence per distinct error; the
    inputs are a part of their own (``Reveal.inputs``)."""
    out = Feedback()
    for text, labels in said_once(raised):
        n = len(labels)
        where = (f"every {noun} tried" if n == total and n > 1 else f"{n} of {total} {nouns or noun + 's'}" if n > 1
                 else f"its one {noun}" if total == 1 else f"one {noun}")
        out.say(f"{subject} raised {text} on {where}")
        shown = labels[:examples]
        more = ", …" if n > len(shown) else ""
        out.add(f" ({'e.g. ' if more else ''}{', '.join(shown)}{more})", Reveal.inputs).add(".")
    return out
