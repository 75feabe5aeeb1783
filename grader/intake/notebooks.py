"""Jupyter notebooks handed in: the student's module is built from the code cells, without running
the notebook top to bottom (a deep-learning notebook trains for hours at top level).

By default (a lab's ``notebook: definitions``) the module keeps what a module is for — imports,
function and class definitions, and constant assignments (a value built from literals, arithmetic
and names already kept) — and drops every other top-level statement (training loops, plots,
prints, a model built and trained at top level), IPython magics (``%matplotlib``, ``%%time``) and
shell escapes (``!pip install``). Each dropped thing is reported once per cell in the result
("cell 12: top-level code not run by the grader"). A lab may choose ``notebook: run-all``: every
code cell is kept (magics and shell escapes still cannot run, and are said so).

A cell is numbered as the student sees it: the n-th cell from the top, markdown cells included.
The generated module keeps a line map, and everything the grader shows (messages, tracebacks, the
forbidden-call lines) is translated back to "lab2.ipynb, cell 7, line 3", never a generated file.
The answer sheet may live in the notebook: a raw or markdown cell tagged ``answers`` holding the
YAML sheet (fenced or not).

A cell that does not parse (a scratch cell, ``print(x.shape``) is set aside like other top-level
code, with its note: the cell is read again one top-level statement at a time, and only the parts
that do not parse are left out. A definition that does not parse is said once ("def train does
not parse"); the checks that need it find it missing, the others run.

What still runs at import in a kept definition (a decorator, a default argument or annotation that
calls something, a class body's statements, a metaclass) is said per cell: definitions-only means
no top-level statement runs, not that a definition runs nothing.

Everything here runs in the grader's own process, before any sandbox, on what a student wrote: each
walk is bounded (cell size, cell count) and linear or iterative; an AST too deep for Python to
build is a cell that does not parse, never an exception through the batch.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from grader.errors import SubmissionError
from grader.intake.reader import printable

ANSWERS_TAG = "answers"
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
_OPENING = re.compile(r"```[a-zA-Z]*")
MAX_CELLS = 5000
MAX_CODE_CELL_CHARS = 256 * 1024  # a code cell larger than this is data, not a definition: set aside
_SALVAGE_MERGES = 8  # how many following top-level chunks a chunk that does not parse may be read with
_CONTINUATION = re.compile(r"(else|elif|except|finally)\b|[)\]}]")
_DEFINITION = re.compile(r"(?:async\s+def|def|class)\s+([A-Za-z_]\w*)")


@dataclass(frozen=True)
class LineMap:
    """Line n of the generated module (``lines[n-1]``) → (cell number, line in that cell)."""

    notebook: str
    module: str
    lines: tuple[tuple[int, int], ...]

    def where(self, line: int) -> str | None:
        if 1 <= line <= len(self.lines):
            cell, inner = self.lines[line - 1]
            return f"cell {cell}, line {inner}"
        return None

    def _file_line(self, match: re.Match[str]) -> str:
        """``File "…/convnet.py", line 12`` → ``File "lab.ipynb", cell 3, line 2``; the path is
        matched up to its closing quote only (no backtracking over a long line of quotes)."""
        path = match.group("path")
        if path == self.module or path.endswith("/" + self.module):
            where = self.where(int(match.group("line")))
            if where:
                return f'File "{self.notebook}", {where}'
        return match.group(0)

    def translate(self, text: str) -> str:
        """Every mention of the generated module's lines, as the notebook's cells and lines."""
        if not text or (self.module not in text and "line " not in text):
            return text
        module = re.escape(self.module)

        def cell_of(match: re.Match[str], template: str) -> str:
            where = self.where(int(match.group("line")))
            return template.format(where=where) if where else match.group(0)

        text = re.sub(r'File "(?P<path>[^"\n]*)", line (?P<line>\d+)', self._file_line, text)
        text = re.sub(rf"(?<![\w/.-]){module}, line (?P<line>\d+)",
                      lambda m: cell_of(m, f"{self.notebook}, {{where}}"), text)
        text = re.sub(r"\(line (?P<line>\d+), in ", lambda m: cell_of(m, "({where}, in "), text)
        return re.sub(rf"(?<![\w/.-]){module}(?![\w])", self.notebook, text)


@dataclass
class NotebookModule:
    """What the grader made of a notebook: the module's source, where each of its lines came
    from, what was left out (one note per cell and kind), and the answer sheet it holds, if any."""

    source: str
    line_map: LineMap
    notes: list[str] = field(default_factory=list)
    answers: bytes | None = None
    written: dict[str, str] = field(default_factory=dict)  # tag → the first markdown cell carrying it (a written answer)


def _cells(data: bytes, name: str) -> list[dict[str, Any]]:
    """The notebook's cells as plain dicts, read with nbformat (any version, converted to 4)."""
    import nbformat

    try:
        text = data.decode("utf-8")
        nb = nbformat.reader.reads(text)
        nb = nbformat.convert(nb, 4)
    except RecursionError:
        raise SubmissionError(f"{printable(name)} is not a notebook the grader can read: nested too deeply") from None
    except Exception as exc:  # nbformat raises many kinds (NotJSONError, KeyError, ValidationError …)
        raise SubmissionError(f"{printable(name)} is not a Jupyter notebook the grader can read "
                              f"({type(exc).__name__})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise SubmissionError(f"{printable(name)} is not a Jupyter notebook the grader can read (no cells)")
    out = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        metadata = cell.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        tags = metadata.get("tags")
        tags = tags if isinstance(tags, list) else []
        out.append({"type": str(cell.get("cell_type", "")), "source": _text(source) if isinstance(source, str) else "",
                    "tags": [_text(t) for t in tags if isinstance(t, str)]})
    return out


def _fenced(source: str) -> str | None:
    """The text between the first fence line (```` ```yaml ````) and the next line that is only
    ```` ``` ````; one pass over the lines (a regex here backtracked quadratically on a cell of
    many opening fences)."""
    lines = source.split("\n")
    opening = next((i for i, line in enumerate(lines) if _OPENING.fullmatch(line.rstrip())), None)
    if opening is None:
        return None
    closing = next((j for j in range(opening + 1, len(lines)) if lines[j].rstrip() == "```"), None)
    return None if closing is None else "\n".join(lines[opening + 1:closing])


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    """A cell's text as UTF-8 can hold it: JSON may escape a lone surrogate (``\\ud800``), which
    no encoder downstream accepts; it becomes U+FFFD here, once."""
    return _SURROGATE.sub("\ufffd", value)


def _strip_magics(lines: list[str]) -> tuple[list[str], list[str]]:
    """Line magics and shell escapes replaced (a blank line, or ``pass`` inside a block, so the
    cell still parses); returns the lines and what was dropped."""
    dropped = []
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) or re.match(r"^[\w.]+\s*=\s*[!%]", stripped) \
                or re.fullmatch(r"\?{1,2}[\w.]+|[\w.]+\?{1,2}", stripped.rstrip()):
            dropped.append(stripped.rstrip())
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}pass" if indent else "")
        else:
            out.append(line)
    return out, dropped


def _is_constant(node: ast.AST, known: set[str]) -> bool:
    """A value built from literals, arithmetic, containers, and names the module already has
    (``torch.float32``, ``2 * HIDDEN``); never a call, which could load data or train. Walked
    with a stack, not recursion: a chain of ten thousand ``+`` is a student's to write."""
    stack: list[ast.AST | None] = [node]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, ast.Constant):
            continue
        if isinstance(item, (ast.Tuple, ast.List, ast.Set)):
            stack.extend(item.elts)
        elif isinstance(item, ast.Dict):
            stack.extend(item.keys)
            stack.extend(item.values)
        elif isinstance(item, ast.BinOp):
            stack.extend((item.left, item.right))
        elif isinstance(item, ast.UnaryOp):
            stack.append(item.operand)
        elif isinstance(item, ast.Name):
            if item.id not in known:
                return False
        elif isinstance(item, ast.Attribute):
            stack.append(item.value)
        elif isinstance(item, ast.Subscript):
            stack.extend((item.value, item.slice))
        elif isinstance(item, ast.Slice):
            stack.extend((item.lower, item.upper, item.step))
        else:
            return False
    return True


def _targets(node: ast.AST) -> list[str] | None:
    """The plain names an assignment binds, or None if it binds anything else (``model.fc = …``)."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        names = [_targets(e) for e in node.elts]
        return None if any(n is None for n in names) else [x for n in names for x in n]  # type: ignore[union-attr]
    return None


def _bound(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [n for t in stmt.targets for n in (_targets(t) or [])]
    if isinstance(stmt, ast.AnnAssign):
        return _targets(stmt.target) or []
    if isinstance(stmt, ast.Try):
        return [n for s in stmt.body + [h for x in stmt.handlers for h in x.body] for n in _bound(s)]
    return []


def _kept(stmt: ast.stmt, known: set[str]) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
        return True  # a docstring or a bare string: harmless
    if isinstance(stmt, ast.Assign):
        return all(_targets(t) is not None for t in stmt.targets) and _is_constant(stmt.value, known)
    if isinstance(stmt, ast.AnnAssign):
        return _targets(stmt.target) is not None and (stmt.value is None or _is_constant(stmt.value, known))
    if isinstance(stmt, ast.Try):  # try: import x / except ImportError: …
        inner = stmt.body + [s for h in stmt.handlers for s in h.body] + stmt.orelse + stmt.finalbody
        return all(isinstance(s, (ast.Import, ast.ImportFrom, ast.Pass)) or _kept(s, known) for s in inner)
    return False


def _first_line(stmt: ast.stmt) -> int:
    decorators = getattr(stmt, "decorator_list", [])
    return min([stmt.lineno, *(d.lineno for d in decorators)])


def _snippet(line: str) -> str:
    line = line.strip()
    return printable(line if len(line) <= 60 else line[:57] + "…")


def _parse(text: str) -> ast.Module | str:
    """The module ``text`` is, or why it is not one (the parser's own words). An AST too deep for
    Python to build (``RecursionError``), too large (``MemoryError``) or holding a NUL byte is a
    cell that does not parse, like a syntax error."""
    try:
        return ast.parse(text)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}" if exc.lineno else exc.msg  # a NUL byte has no line
    except RecursionError:
        return "nested too deeply to read"
    except (MemoryError, ValueError, OverflowError) as exc:
        return f"cannot be read ({type(exc).__name__})"


def _chunks(lines: list[str]) -> list[tuple[int, int]]:
    """The cell's lines cut where a top-level statement seems to start (a line at column 0 that
    is not a continuation, nor the definition under a decorator), as ``(start, end)`` indices."""
    starts: list[int] = []
    previous = ""
    for i, line in enumerate(lines):
        if not line.strip() or line[0] in " \t#":
            continue
        if not starts or not (_CONTINUATION.match(line) or previous.startswith("@")):
            starts.append(i)
        previous = line
    if not starts:
        return []
    return [(a, b) for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]


@dataclass
class _CellCode:
    """A cell read as statements: those that parse (line numbers the cell's own), and the line
    ranges that do not parse, each with the parser's reason."""

    statements: list[ast.stmt]
    broken: list[tuple[int, int, str]]


def _cell_code(lines: list[str]) -> _CellCode:
    """The cell parsed whole, or, when it does not parse, one top-level chunk at a time: a chunk
    that does not parse alone is tried with up to a few of the chunks after it (a string or a call
    spanning lines at column 0), else set aside."""
    whole = _parse("\n".join(lines))
    if isinstance(whole, ast.Module):
        return _CellCode(whole.body, [])
    statements: list[ast.stmt] = []
    broken: list[tuple[int, int, str]] = []
    chunks = _chunks(lines)
    budget = 4 * sum(len(line) + 1 for line in lines) + 65536  # characters the salvage may parse, in all
    i = 0
    while i < len(chunks):
        a, b = chunks[i]
        reason = ""
        for j in range(i, min(len(chunks), i + 1 + _SALVAGE_MERGES)):
            b = chunks[j][1]
            text = "\n".join(lines[a:b])
            budget -= len(text)
            if budget < 0:
                broken.append((a + 1, len(lines), reason or "too much code that does not parse"))
                return _CellCode(statements, broken)
            tree = _parse(text)
            if isinstance(tree, ast.Module):
                for stmt in tree.body:
                    ast.increment_lineno(stmt, a)
                statements.extend(tree.body)
                i = j + 1
                break
            reason = reason or _shifted(tree, a)
        else:
            broken.append((a + 1, chunks[i][1], reason))
            i += 1
    return _CellCode(statements, broken)


def _shifted(reason: str, lines: int) -> str:
    """A parser's reason (``line 2: …``) with its line counted from the cell's first line."""
    head, sep, rest = reason.partition(": ")
    if sep and head.startswith("line ") and head[5:].isdigit():
        return f"line {int(head[5:]) + lines}: {rest}"
    return reason


def _runs_at_import(stmt: ast.stmt, known: set[str], lazy_annotations: bool) -> ast.AST | None:
    """The first thing in a kept definition that runs code when the module is imported: a
    decorator, a base or keyword (``metaclass=``) of a class that calls something, a default
    argument or an annotation that calls something, a class-body statement that is not itself a
    definition or a constant. ``None`` for a definition that only defines."""
    def calls(node: ast.AST | None) -> bool:
        return node is not None and any(isinstance(n, ast.Call) for n in ast.walk(node))

    pending: list[ast.stmt] = [stmt]
    while pending:
        item = pending.pop(0)
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if item.decorator_list:
                return item.decorator_list[0]
            args = item.args
            for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
                if calls(default):
                    return default
            if not lazy_annotations:
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                    if arg is not None and calls(arg.annotation):
                        return arg.annotation
                if calls(item.returns):
                    return item.returns
        elif isinstance(item, ast.ClassDef):
            if item.decorator_list:
                return item.decorator_list[0]
            if item.keywords:
                return item.keywords[0]
            for base in item.bases:
                if calls(base):
                    return base
            for inner in item.body:
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    pending.append(inner)
                elif isinstance(inner, ast.AnnAssign) and inner.value is None and \
                        (lazy_annotations or not calls(inner.annotation)):
                    continue
                elif not _kept(inner, known | {"__name__", "__qualname__"}) or \
                        isinstance(inner, (ast.Import, ast.ImportFrom, ast.Try)):
                    return inner
    return None


def notebook_module(data: bytes, name: str, module: str, *, run_all: bool = False) -> NotebookModule:
    """Build the student's module from a notebook's code cells (see the module's docstring).
    ``name``: the notebook's name in the hand-in (messages say it); ``module``: the file the
    module is staged as (``convnet.py``). Raises ``SubmissionError`` for a file that is not a
    notebook; a cell the grader cannot read is a note, never an exception."""
    label = printable(name.rsplit("/", 1)[-1])
    out: list[str] = []
    where: list[tuple[int, int]] = []
    notes: list[str] = []
    answers: bytes | None = None
    written: dict[str, str] = {}
    known: set[str] = set()
    lazy_annotations = False

    def emit(lines: list[str], cell: int, first: int) -> None:
        for offset, text in enumerate(lines):
            out.append(text)
            where.append((cell, first + offset))

    cells = _cells(data, name)
    if len(cells) > MAX_CELLS:
        raise SubmissionError(f"{printable(name)} has {len(cells)} cells; the grader reads notebooks of at most "
                              f"{MAX_CELLS}")
    for number, cell in enumerate(cells, start=1):
        source = cell["source"]
        if ANSWERS_TAG in cell["tags"] and cell["type"] in ("raw", "markdown") and answers is None:
            fenced = _fenced(source)
            answers = (fenced if fenced is not None else source).encode("utf-8")
            continue
        if cell["type"] == "markdown":
            for tag in cell["tags"]:
                written.setdefault(tag, source)
        if cell["type"] != "code" or not source.strip():
            continue
        if len(source) > MAX_CODE_CELL_CHARS:
            notes.append(f"cell {number}: not read by the grader ({len(source) // 1024} kB of code in one cell; "
                         f"at most {MAX_CODE_CELL_CHARS // 1024} kB)")
            continue
        lines = source.splitlines()
        first_code = next(i for i, line in enumerate(lines) if line.strip())
        head = lines[first_code].strip()
        if head.startswith("%%"):
            magic = head[2:].split()[0] if head[2:].split() else ""
            if magic not in _PYTHON_CELL_MAGICS:
                notes.append(f"cell {number}: a %%{printable(magic)} cell is not run by the grader (IPython magic)")
                continue
            notes.append(f"cell {number}: %%{printable(magic)} ignored (IPython magic); the cell's code was read")
            lines = [""] * (first_code + 1) + lines[first_code + 1:]
        lines, magics = _strip_magics(lines)
        if magics:
            shell = [m for m in magics if m.startswith("!") or "!" in m.split("=", 1)[-1][:2]]
            other = [m for m in magics if m not in shell]
            if shell:
                notes.append(f"cell {number}: {_snippet(shell[0])} not run by the grader (shell command)")
            if other:
                notes.append(f"cell {number}: {_snippet(other[0])} not run by the grader (IPython magic)")
        try:
            code = _cell_code(lines)
            for first, last, reason in code.broken:
                defined = [m.group(1) for line in lines[first - 1:last] if (m := _DEFINITION.match(line))]
                if defined:
                    notes.append(f"cell {number}: {_snippet(lines[first - 1])} does not parse ({reason}); "
                                 f"{printable(defined[0])} is not defined and the checks that need it cannot run")
                else:
                    notes.append(f"cell {number}: code that does not parse, not run by the grader "
                                 f"(line {first}: {_snippet(lines[first - 1])} — {reason.split(': ', 1)[-1]})")
            if run_all:
                kept_lines = list(lines)
                for first, last, _ in code.broken:
                    kept_lines[first - 1:last] = [""] * (last - first + 1)
                emit(kept_lines, number, 1)
                continue
            statements = code.statements
            dropped: ast.stmt | None = None
            runs: ast.AST | None = None
            for i, stmt in enumerate(statements):
                if not _kept(stmt, known):
                    dropped = dropped or stmt
                    continue
                if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__" and \
                        any(a.name == "annotations" for a in stmt.names):
                    lazy_annotations = True
                runs = runs or _runs_at_import(stmt, known, lazy_annotations)
                known.update(_bound(stmt))
                start, end = _first_line(stmt), stmt.end_lineno or stmt.lineno
                shares_line = any(other is not stmt and (other.lineno <= end and
                                                         (other.end_lineno or other.lineno) >= start)
                                  for other in statements[max(0, i - 1): i + 2])
                if shares_line:  # `a = 1; train()` on one line: only the kept statement
                    emit([ast.unparse(stmt)], number, start)
                else:
                    emit(lines[start - 1:end], number, start)
        except RecursionError:  # a definition nested deeper than a walk of it can go
            notes.append(f"cell {number}: not read by the grader (nested too deeply)")
            continue
        if dropped is not None:
            notes.append(f"cell {number}: top-level code not run by the grader "
                         f"(line {dropped.lineno}: {_snippet(lines[dropped.lineno - 1])})")
        if runs is not None:
            line = getattr(runs, "lineno", 1)
            notes.append(f"cell {number}: runs when the grader imports the module "
                         f"(line {line}: {_snippet(lines[line - 1])})")
    source = "\n".join(out) + "\n"
    return NotebookModule(source=source, line_map=LineMap(notebook=label, module=module, lines=tuple(where)),
                          notes=notes, answers=answers, written=written)


# --- writing notebooks (templates for students) ---------------------------------------------------

def _split_module(source: str) -> tuple[str | None, list[str]]:
    """A template module as (its docstring, its code in cells: the imports, then one cell per
    top-level definition with the comments just above it)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    doc = ast.get_docstring(tree)
    body = tree.body[1:] if doc is not None else tree.body
    previous_end = tree.body[0].end_lineno or 0 if doc is not None else 0
    imports: list[str] = []
    cells: list[str] = []
    for stmt in body:
        start, end = _first_line(stmt), stmt.end_lineno or stmt.lineno
        while start - 1 > previous_end and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        text = "\n".join(lines[start - 1:end])
        (imports if isinstance(stmt, (ast.Import, ast.ImportFrom)) else cells).append(text)
        previous_end = end
    return doc, (["\n".join(imports)] if imports else []) + cells


def template_notebook(title: str, module: str, module_source: str, answers: str | None, lab_id: str) -> bytes:
    """A lab's template as a notebook: the module's docstring as text, its code one definition
    per cell, the answer sheet in a raw cell tagged ``answers``; deterministic (cell ids are
    numbered) so that the same template always gives the same bytes."""
    import nbformat
    from nbformat import v4

    doc, code_cells = _split_module(module_source)
    cells = [v4.new_markdown_cell(
        f"# {title}\n\n" + (f"{doc}\n\n" if doc else "") +
        f"Write your code in the cells below. The grader reads this notebook's imports, functions, classes "
        f"and constants as your `{module}`; code at top level (a training loop, plots, prints) is yours to run "
        f"and is not run by the grader.\n\nCheck yourself before handing in: "
        f"`gradelab check {lab_id}.ipynb --lab {lab_id}`")]
    cells += [v4.new_code_cell(text) for text in code_cells]
    if answers is not None:
        cells.append(v4.new_markdown_cell("## Answer sheet\n\nReplace every `null` and every `[]` in the cell "
                                          "below (YAML, as in `answers.yaml`). The grader reads it."))
        cells.append(v4.new_raw_cell(answers.rstrip("\n"), metadata={"tags": [ANSWERS_TAG]}))
    for i, cell in enumerate(cells, start=1):
        cell["id"] = f"cell-{i}"
    nb = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return (json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
