"""Text a child sent is untrusted: it is made harmless once, where it enters the grader.

A student's exception message, the ``where`` of a fault, a type name, the module names a trace
reports, what their code printed: each can hold terminal escape sequences (clear the screen, set
the window title, an OSC 8 ``file://`` hyperlink dressed as anything), a carriage return that
overwrites what the instructor reads, or a newline that forges a line of the grader's log. Once a
reply is decoded, every string in it goes through ``clean_tree``, and the printed output through
``clean_text``; everything downstream (messages, log lines, JSON, reports) can then print it as is.

What is escaped: the C0 and C1 control characters (ESC, BEL, CSI …) and DEL, and the Unicode
format characters that reorder or hide text (bidirectional overrides, zero-width joiners).
They are shown as ``\\x1b``, ``\\u202e``: what the student wrote stays readable, nothing reaches a
terminal as a command. A line of text (a message, a name) keeps no line break; printed output
keeps its newlines and tabs.
"""

from __future__ import annotations

import unicodedata
from typing import Any

_KEPT_IN_TEXT = {"\n", "\t"}


def _escaped(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _harmful(ch: str) -> bool:
    # Cc: C0, DEL and C1 controls; Cf: bidi overrides, zero-width and other invisible formatting;
    # Cs: a lone surrogate (JSON can carry one) cannot even be written out as UTF-8.
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs") or ch in "\u2028\u2029"


def clean_line(text: str) -> str:
    """One line of untrusted text, fit for a terminal, a log line, JSON or a PDF: every control
    and format character escaped, line breaks included."""
    if text.isprintable():
        return text
    return "".join(_escaped(ch) if _harmful(ch) else ch for ch in text)


def clean_text(text: str) -> str:
    """Untrusted text of several lines (a program's output, a traceback): newlines and tabs kept,
    every other control or format character escaped (a carriage return included: it would let a
    line overwrite the one before it on a terminal)."""
    if text.isprintable():
        return text
    return "".join(ch if ch in _KEPT_IN_TEXT or not _harmful(ch) else _escaped(ch) for ch in text)


def clean_tree(value: Any) -> Any:
    """A decoded reply with every string in it (dictionary keys too) made harmless; numbers and
    arrays untouched. Strings keep their newlines (a traceback has several lines): fields that
    must be one line are flattened by ``clean_line`` where they are modelled (``replies``)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_tree(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_tree(v) for k, v in value.items()}
    return value
