"""What went wrong in a child, described in the child for the grader: the exception's type and
message, where in the student's file it happened, and whether memory ran out.

Shared by the worker (import failures) and the probes (failures of one call); it lives apart
from both so that neither imports the other for it.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

_OOM_MARKERS = ("can't allocate memory", "DefaultCPUAllocator", "out of memory", "std::bad_alloc")


def describe_exception(exc: BaseException, student_file: str) -> dict[str, Any]:
    """What went wrong, located in the student's own file where possible."""
    where = None
    if isinstance(exc, SyntaxError):
        # A file that is not text (a NUL byte: a binary, or text saved as UTF-16) has no line to name.
        name = Path(exc.filename or student_file).name
        where = f"{name}, line {exc.lineno}" if exc.lineno else name
        message = f"{exc.msg}" + (f": {exc.text.strip()}" if exc.text else "")
        if "null bytes" in exc.msg:
            message += " (it is not Python source text: a binary file, or text saved as UTF-16?)"
    else:
        message = str(exc)
        frames = traceback.extract_tb(exc.__traceback__, limit=-50)  # a deep recursion has 10⁵ frames
        student = Path(student_file).name
        mine = [f for f in frames if Path(f.filename).name == student]
        if mine:
            f = mine[-1]
            where = f"{student}, line {f.lineno}, in {f.name}"
    text = message.lower()
    oom = isinstance(exc, MemoryError) or any(m.lower() in text for m in _OOM_MARKERS)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-6))
    return {
        "type": type(exc).__name__,
        "message": message[:2000],
        "where": where,
        "out_of_memory": bool(oom),
        "traceback": tb[-4000:],
    }
