"""Likely slips on an answer-sheet value, tried when an answer matches neither the truth nor a
mistake the lab declares: the same for every lab, so each gets a diagnosis that names the field
it is about, without giving the right value away.

Each slip is a (name, test, message): an empty list where a value is asked for, the same numbers
in another order (channels first where the lab writes them last), a percentage for a fraction or
the reverse. A slip is recognised from the student's value and the truth, never guessed."""

from __future__ import annotations

from typing import Any


def _numbers(value: Any) -> list[float] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          for v in value):
        return [float(v) for v in value]
    return None


def likely_slip(path: str, answer: Any, truth: Any) -> tuple[str, str] | None:
    """(diagnosis, sentence about ``path``) for a recognised slip, or None."""
    if answer in ([], {}, "") or (isinstance(answer, str) and not answer.strip()):
        return "empty-answer", (f"`{path}` is empty: an empty value is no answer; write the value itself "
                                "(left out, it would read as missing).")
    got, want = _numbers(answer), _numbers(truth)
    if got is None or want is None:
        return None
    if len(got) == len(want) > 1 and sorted(got) == sorted(want):
        return "order-of-axes", (f"`{path}` has the right numbers in another order: channels first where the lab "
                                 "asks for them last (or the reverse)? Check the order the question gives.")
    if len(got) == len(want) == 1 and want[0]:
        ratio = got[0] / want[0]
        if abs(ratio - 100) < 1e-6 * 100:
            return "percentage-not-fraction", f"`{path}` looks like a percentage: a fraction between 0 and 1 is asked for."
        if abs(ratio - 0.01) < 1e-8:
            return "fraction-not-percentage", f"`{path}` looks like a fraction: a percentage is asked for."
    return None
