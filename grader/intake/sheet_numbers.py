"""Numbers written with thousands separators on an answer sheet (``params: 1,025,000``).

YAML has no thousands separator: in a flow mapping (``{output: [1000], params: 1,025,000}``)
the commas split the number into ``params: 1`` and two more keys, ``025`` (read as octal: 21)
and ``000``, so the student would read "`params` = 1: wrong" and "`fc4.21` is not a field"; in
block style the value is the string ``'1,025,000'``. Both are the same slip, and the student is
told so on that field, before any value is judged: the composed YAML is mended here (the split
pieces joined back into the text the student wrote), and ``validate_answer`` names it."""

from __future__ import annotations

import re

import yaml

# 1,025,000 · 1 025 000 · 1'025'000 · 1.025.000 (a number with its digits in groups of three)
SEPARATED = re.compile(r"^-?\d{1,3}(?P<sep>[,'. \u00a0\u2009\u202f])\d{3}(?:(?P=sep)\d{3})*(?:[.,]\d+)?$")
DIAGNOSIS = "thousands-separator"
_PHRASE = "is written with thousands separators"
_NULL, _STR = "tag:yaml.org,2002:null", "tag:yaml.org,2002:str"


def separated_problem(sheet: str, path: str, text: str) -> str:
    """The sentence for a field whose number is written with separators (its own digits shown back)."""
    match = SEPARATED.match(text)
    digits = text.replace(match["sep"], "") if match else text
    return (f"{sheet}: `{path}` {_PHRASE} ({text}), which YAML does not read as one number: "
            f"write it without them ({digits})")


def is_separated(raw: object) -> bool:
    return isinstance(raw, str) and SEPARATED.match(raw.strip()) is not None


def problem_diagnosis(problem: str) -> str | None:
    """The diagnosis of a field the sheet gave no value for, where it is a recognised slip."""
    return DIAGNOSIS if _PHRASE in problem else None


def _is_plain(node: yaml.Node, pattern: str) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.style is None and re.fullmatch(pattern, node.value) is not None


def rejoin_separated_numbers(node: yaml.Node | None) -> None:
    """Mend, in place, each flow mapping's value that separators split into keys: the value's
    digits and the following three-digit keys without values, each right after a comma, become one
    string (the text written), which ``validate_answer`` then names as this slip."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            rejoin_separated_numbers(item)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    entries, i = node.value, 0
    while i < len(entries):
        key, value = entries[i]
        rejoin_separated_numbers(value)
        if node.flow_style and _is_plain(value, r"-?\d{1,3}"):
            end, j, text = value.end_mark, i + 1, value.value
            while j < len(entries):
                group, empty = entries[j]
                if not (_is_plain(group, r"\d{3}(?:\.\d+)?") and empty.tag == _NULL and empty.value == ""
                        and group.start_mark.index == end.index + 1):
                    break
                text, end, j = f"{text},{group.value}", group.end_mark, j + 1
            if j > i + 1:
                entries[i] = (key, yaml.ScalarNode(_STR, text, value.start_mark, end))
                del entries[i + 1:j]
        i += 1
