"""Text that leaves gradelab in a file an instructor opens: every CSV cell and every Markdown
string made from what a student controls goes through one function here, never written ad hoc.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula: a folder named ``=HYPERLINK("http://…","click")`` would reach
the instructor's class.csv, grades.csv and LMS worksheet as a live link. ``inert`` prefixes such a
cell with ``'``, as OWASP advises, which every spreadsheet shows as text. Numbers gradelab writes
itself (a score, ``-1.5``) are kept as numbers. Markdown (Gradescope's output) is escaped so that a
student's text renders as the text it is: no image, link, heading or HTML of theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from grader.results import PENDING, SubmissionResult

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MARKDOWN = re.compile(r"([\\`*_\[\]()#!<>|])")  # what makes a link, an image, code, emphasis, a heading, HTML


def inert(cell: object) -> str:
    """A cell a spreadsheet shows as text: a leading formula character neutralised with ``'``."""
    text = "" if cell is None else str(cell)
    if text.startswith(_FORMULA) and text not in ("-", "+") and not _NUMBER.match(text):
        return "'" + text
    return text


def inert_row(cells: Iterable[object]) -> list[str]:
    return [inert(c) for c in cells]


def markdown(text: str) -> str:
    """Text shown as itself in Markdown: every character Markdown gives a meaning escaped."""
    return _MARKDOWN.sub(r"\\\1", text)


def pending_text(result: SubmissionResult) -> str:
    """What a partial total leaves out, for a row of an export ("" when nothing is pending)."""
    pending = [c for c in result.checks if c.status in PENDING]
    if not pending:
        return ""
    return f"{result.pending_points:g} points pending: " + ", ".join(
        f"{c.id} ({c.status.value if c.status.value != 'skipped' else 'not run'})" for c in pending)
