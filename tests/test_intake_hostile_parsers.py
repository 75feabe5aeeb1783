"""What runs before the sandbox, on what a student wrote, is bounded: a notebook's cells, the
answer-sheet fence, the AST walks and the traceback translation finish in bounded time on hostile
input, and a cell Python cannot build an AST for is a note, never an exception (issue 26)."""

from __future__ import annotations

import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.intake.notebooks import LineMap, notebook_module


def notebook(*cells: dict) -> bytes:
    return json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def code(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "execution_count": None, "outputs": []}


def sheet(source: str) -> dict:
    return {"cell_type": "raw", "metadata": {"tags": ["answers"]}, "source": source}


def test_a_long_chain_of_plus_is_a_note_not_a_recursion_error():
    """A 7 kB cell of `x = 1+1+…` raised RecursionError out of notebook_module and ended the batch."""
    built = notebook_module(notebook(code("import math"), code("x = 1" + "+1" * 3500), code("def f():\n    return 1")),
                            "lab.ipynb", "m.py")
    assert "def f():" in built.source and "import math" in built.source
    assert built.notes == ["cell 2: code that does not parse, not run by the grader "
                           "(line 1: x = " + "1+" * 26 + "1… — nested too deeply to read)"]


def test_a_chain_python_can_build_is_walked_without_recursion():
    built = notebook_module(notebook(code("HIDDEN = 2"), code("X = HIDDEN" + " + HIDDEN" * 900)), "lab.ipynb", "m.py")
    namespace: dict = {}
    exec(compile(built.source, "m.py", "exec"), namespace)
    assert namespace["X"] == 1802 and not built.notes


def test_a_sheet_of_opening_fences_is_read_in_linear_time():
    """240 kB of "```a" lines took 99 s in the old fence regex."""
    started = time.monotonic()
    built = notebook_module(notebook(sheet("```a\n" * 60_000)), "lab.ipynb", "m.py")
    assert time.monotonic() - started < 2
    assert built.answers == ("```a\n" * 60_000).encode()


def test_a_fenced_sheet_is_read_between_its_fences():
    built = notebook_module(notebook(sheet("Here:\n```yaml\nq1: 3\n```\nthanks")), "lab.ipynb", "m.py")
    assert built.answers == b"q1: 3"


def test_a_traceback_line_of_many_quotes_is_translated_in_linear_time():
    line_map = LineMap(notebook="lab.ipynb", module="m.py", lines=((2, 1),))
    hostile = 'File "' * 100_000
    started = time.monotonic()
    assert line_map.translate(hostile + '\nFile "/x/m.py", line 1, in f') == hostile + '\nFile "lab.ipynb", cell 2, line 1, in f'
    assert time.monotonic() - started < 2


def test_a_code_cell_larger_than_the_bound_is_not_read():
    built = notebook_module(notebook(code("X = [" + "1," * 200_000 + "]")), "lab.ipynb", "m.py")
    assert built.source.strip() == "" and built.notes == [
        "cell 1: not read by the grader (390 kB of code in one cell; at most 256 kB)"]


def test_deeply_nested_json_is_a_submission_error():
    from grader.errors import SubmissionError

    try:
        notebook_module(b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "lab.ipynb", "m.py")
    except SubmissionError as exc:
        assert "lab.ipynb" in str(exc)
    else:
        raise AssertionError("a notebook nested 100 000 deep was read")


HOSTILE_PIECES = st.sampled_from([
    "(", ")", "[", "]", "+1", "x", "def f(a=g()):\n", "@d\n", "class A(metaclass=M):\n", "    ", "\n", "```",
    "```a\n", "'''", '"', "lambda: ", "not ", "-", "**", ":", "print(x.shape", "%time ", "!ls\n", "\\\n", "\t",
    "if 1:\n", "else:\n", "async ", "yield ", "\x00", "é", "\ud800"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(HOSTILE_PIECES, st.integers(1, 3000)), min_size=1, max_size=6))
def test_any_cell_gives_a_module_and_notes_in_bounded_time(pieces):
    """Generated hostile cells (deep nesting, long chains, pathological fences, huge lines): a
    result, never an exception, within a second or so each."""
    source = "".join(piece * count for piece, count in pieces)
    started = time.monotonic()
    built = notebook_module(notebook(code(source), sheet(source), code("def kept():\n    return 1")), "lab.ipynb", "m.py")
    assert time.monotonic() - started < 3
    assert "def kept():" in built.source
    compile(built.source, "m.py", "exec")  # what the grader builds always parses
    built.source.encode("utf-8")  # and can be staged as a file
    assert all(note.isprintable() for note in built.notes)
