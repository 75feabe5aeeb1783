"""One CSV cell made from what a student controls (a name, an answer, a phrase they wrote).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return
before one) as a formula: such a cell is written with a leading apostrophe, which spreadsheets
show as text. Control characters are dropped; the ``csv`` module does the quoting."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    text = _CONTROL.sub("", str(value))
    return "'" + text if text.startswith(_FORMULA) else text
