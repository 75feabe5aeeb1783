"""A student's hand-in as the grader sees it: where its module is, and what its answer sheet says.

Nothing here runs student code, and nothing here opens a hand-in's paths: the intake readers
(``grader.intake``) have read its files into memory, unpacked its archives, found the folder
holding the work and, for a notebook, built the module from its cells with a line map back to
them. The answer sheet is YAML read with a loader that refuses aliases (a 625-byte "billion
laughs" would otherwise expand to gigabytes), validated field by field with pydantic, so one
malformed answer fails only the checks that need it.
A key the lab does not know (``Conv2:`` for ``conv2:``, ``total_parms``) is named, with the
closest known one, in the hand-in's notes and beside the field it leaves missing.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import StrictBool, StrictStr, TypeAdapter, ValidationError
from yaml.constructor import SafeConstructor

from grader.errors import SubmissionError
from grader.intake.archives import is_archive
from grader.intake.layouts import locate
from grader.intake.notebooks import LineMap, notebook_module
from grader.intake.reader import (
    HandIn,
    file_safe,
    handin_digest,
    printable,
    read_hand_in,
)
from grader.intake.sheet_numbers import (
    is_separated,
    rejoin_separated_numbers,
    separated_problem,
)
from grader.intake.sources import HandInSource, open_hand_in
from grader.lab.manifest import AnswerFieldSpec, IntakeLimits, InterfaceSpec
from grader.results import Student

_TYPES: dict[str, Any] = {
    "int": int, "float": float, "str": StrictStr, "bool": StrictBool,
    "list[int]": list[int], "list[float]": list[float], "choice": StrictStr,
}
_ADAPTERS = {name: TypeAdapter(tp) for name, tp in _TYPES.items()}
_MISSING = object()


@dataclass
class Submission:
    name: str
    path: Path
    handin: HandIn
    module_file: str | None = None    # the module's path inside the hand-in, as staged for a child
    module_problem: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    answer_problems: dict[str, str] = field(default_factory=dict)
    root: str = ""                      # the folder inside the hand-in that holds the work ("lab2/")
    notebook: str | None = None         # the notebook the module was built from, if any
    line_map: LineMap | None = None     # the generated module's lines → the notebook's cells
    sheet_notes: list[str] = field(default_factory=list)  # keys of the sheet the lab does not know
    written: dict[str, str] = field(default_factory=dict)  # a notebook's markdown cells by tag (written answers)
    handin_sha: str | None = None       # digest of the files as read (grading.resume)

    @property
    def module_path(self) -> Path | None:
        """Where the module was found, for messages (never opened again: see ``module_source``)."""
        if self.module_file is None:
            return None
        if self.handin.single_file:
            return self.path
        return self.path.joinpath(*(self.root + (self.notebook or self.module_file)).split("/"))

    @property
    def module_label(self) -> str | None:
        """The module as the student knows it: their file, or their notebook."""
        return self.line_map.notebook if self.line_map else self.module_file

    def locate(self, text: str) -> str:
        """``text`` with every line of a generated module put back as the notebook's cell and line."""
        return self.line_map.translate(text) if self.line_map and text else text

    @property
    def notes(self) -> list[str]:
        return [*self.handin.notes, *self.sheet_notes]

    @property
    def module_source(self) -> str | None:
        """The module's text (for static reading), from the bytes the reader took."""
        data = self.handin.read(self.module_file) if self.module_file else None
        return data.decode("utf-8", errors="replace") if data is not None else None

    def answer(self, path: str) -> Any:
        return self.answers[path]


def safe_name(name: str) -> str:
    """A submission name usable as a file name (students choose folder names)."""
    return file_safe(name)


def display_name(path: Path) -> str:
    """A hand-in's name as its folder (or file) is called, without the extension of a module, a
    notebook or an archive: ``.`` is the folder it stands for."""
    return HandInSource(path=Path(os.path.abspath(path))).stem  # no link is resolved: only the path's text


def student_from_path(path: Path) -> Student:
    """A plain class folder knows a student only by the name of their folder (or file)."""
    path = Path(path)
    name = printable(display_name(path)).strip() or "submission"
    return Student(id=name, name=name, source=printable(str(path)))


def _lookup(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def validate_answer(spec: AnswerFieldSpec, raw: Any) -> tuple[Any, str | None]:
    """(value, None) or (None, problem) for one field of an answer sheet."""
    if raw is _MISSING or raw is None:
        return None, f"answers: `{spec.path}` is missing ({spec.type} expected)"
    if spec.type in ("int", "float") and is_separated(raw):
        return None, separated_problem("answers", spec.path, raw.strip())
    if spec.type in ("int", "float", "list[int]", "list[float]") and (
            isinstance(raw, bool) or (isinstance(raw, list) and any(isinstance(x, bool) for x in raw))):
        return None, f"answers: `{spec.path}` should be {spec.type}, got {raw!r}"
    try:
        value = _ADAPTERS[spec.type].validate_python(raw)
    except ValidationError:
        return None, f"answers: `{spec.path}` should be {spec.type}, got {str(raw)[:80]!r}"
    if spec.type == "choice" and value not in (spec.choices or []):
        return None, f"answers: `{spec.path}` must be one of {', '.join(spec.choices or [])}; got {value!r}"
    return value, None


MAX_ANSWER_BITS = 256


def _holds_huge_number(parsed: Any) -> bool:
    """Whether a key or value anywhere in the sheet is an integer past ``MAX_ANSWER_BITS``: YAML 1.1's
    base-60 integers (``1:59:59:…``) build one of millions of digits from a few kilobytes, which
    no answer needs and which Python refuses to print (``ValueError``) in every later message,
    result file and export. Walked without recursion (the loader bounds the depth already)."""
    stack = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > MAX_ANSWER_BITS:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple, set, frozenset)):
            stack.extend(node)
    return False


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: an answer sheet has no use for them, and aliases are how
    a few hundred bytes expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted in an answer sheet",
                                              event.start_mark)
        return super().compose_node(parent, index)

    def construct_base60(self, node: Any) -> Any:
        """YAML 1.1's base-60 numbers (``1:30`` is 90) kept to a few parts: each part multiplies a
        growing number, so 250 kB of ``:59`` took seconds to build an integer no answer needs."""
        value = self.construct_scalar(node)
        if isinstance(value, str) and value.count(":") > 4:
            raise yaml.constructor.ConstructorError(None, None, "a base-60 number (1:30:00) of more than 5 parts",
                                                    node.start_mark)
        constructor = SafeConstructor.construct_yaml_int if node.tag.endswith(":int") else \
            SafeConstructor.construct_yaml_float
        try:
            return constructor(self, node)
        except IndexError:  # `!!float ` or `!!int _`: PyYAML reads the first character of nothing
            raise yaml.constructor.ConstructorError(None, None, "a number tag (!!int, !!float) with no number after it",
                                                    node.start_mark) from None


_NoAliasLoader.add_constructor("tag:yaml.org,2002:int", _NoAliasLoader.construct_base60)
_NoAliasLoader.add_constructor("tag:yaml.org,2002:float", _NoAliasLoader.construct_base60)


def unknown_keys(parsed: dict[Any, Any], interface: InterfaceSpec) -> dict[str, str | None]:
    """Each key of the sheet that is no field (nor on the way to one), with the closest known key
    at the same place (same letters in another case first, then ``difflib``), or ``None``."""
    paths = [f.path for f in interface.answers]
    found: dict[str, str | None] = {}

    def walk(node: dict[Any, Any], prefix: str) -> None:
        known = list(dict.fromkeys(p[len(prefix):].split(".")[0] for p in paths if p.startswith(prefix)))
        for key, value in node.items():
            path = f"{prefix}{key}"
            if path in paths:
                continue
            if any(p.startswith(path + ".") for p in paths):
                if isinstance(value, dict):
                    walk(value, path + ".")
                continue
            text = str(key)
            same = [k for k in known if k.lower() == text.lower()]
            close = same or difflib.get_close_matches(text, known, n=1, cutoff=0.6)
            found[printable(path)[:100]] = f"{prefix}{close[0]}" if close else None

    walk(parsed, "")
    return found


def _unknown_notes(unknown: dict[str, str | None], sheet: str, shown: int = 10) -> list[str]:
    notes = [f"{sheet}: `{key}` is not a field of this lab's sheet" + (f" (did you mean `{close}`?)" if close else "")
             for key, close in list(unknown.items())[:shown]]
    if len(unknown) > shown:
        notes.append(f"{sheet}: {len(unknown) - shown} more keys that are not fields of this lab's sheet")
    return notes


def parse_answer_sheet(data: bytes | None, interface: InterfaceSpec, problem: str | None = None,
                       max_kb: int = IntakeLimits().max_sheet_kb) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed answers and a problem per field that has none, from the sheet's bytes (``None``: no
    sheet; ``problem``: why it could not be read)."""
    values, problems, _ = _parse_sheet(data, interface, problem, max_kb)
    return values, problems


def _parse_sheet(data: bytes | None, interface: InterfaceSpec, problem: str | None = None,
                 max_kb: int = IntakeLimits().max_sheet_kb) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """``parse_answer_sheet``, and notes naming the keys the lab does not know."""
    fields = interface.answers
    if not fields:
        return {}, {}, []
    sheet = interface.answers_file

    def all_fail(problem: str) -> tuple[dict[str, Any], dict[str, str], list[str]]:
        return {}, {f.path: problem for f in fields}, []

    if problem:
        return all_fail(problem)
    if data is None:
        return all_fail(f"no {sheet} in the submission")
    if len(data) > max_kb * 1024:
        return all_fail(f"{sheet} is larger than {max_kb} KiB")
    try:
        loader = _NoAliasLoader(data.decode("utf-8", errors="replace"))
        try:
            node = loader.get_single_node()
            rejoin_separated_numbers(node)
            parsed = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:  # a NUL or another control character: no line to name
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        return all_fail(f"{sheet} is not text YAML can read (character {exc.position + 1} is the control character "
                        f"U+{code:04X}: a binary file?)")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        return all_fail(f"{sheet} is not valid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}")
    except RecursionError:
        return all_fail(f"{sheet} is nested too deeply")
    except ValueError:  # a number of 10⁵ digits, say: int() refuses it
        return all_fail(f"{sheet} holds a value that cannot be read as a number")
    if _holds_huge_number(parsed):
        return all_fail(f"{sheet} holds a number of more than {MAX_ANSWER_BITS} bits: no answer is that large")
    if not isinstance(parsed, dict):
        return all_fail(f"{sheet} must be a mapping of answers (field: value), not {type(parsed).__name__}")
    unknown = unknown_keys(parsed, interface)
    values, problems = {}, {}
    for spec in fields:
        raw = _lookup(parsed, spec.path)
        value, problem = validate_answer(spec, raw)
        if problem:
            typo = next((key for key, close in unknown.items()
                         if raw is _MISSING and close and (spec.path == close or spec.path.startswith(close + "."))), None)
            problems[spec.path] = problem + (f"; {sheet} has `{typo}` instead: a typo?" if typo else "")
        else:
            values[spec.path] = value
    return values, problems, _unknown_notes(unknown, sheet)


def read_answer_sheet(path: Path, interface: InterfaceSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """The answer sheet at ``path``, read as the safe reader reads a hand-in (no link followed)."""
    try:
        handin = read_hand_in(path, IntakeLimits(max_file_mb=IntakeLimits().max_sheet_kb / 1024 + 1))
    except SubmissionError:
        return parse_answer_sheet(None, interface)
    data = handin.read(Path(path).name)
    return parse_answer_sheet(data, interface, None if data is not None else _sheet_problem(handin, interface))


def _sheet_problem(handin: HandIn, interface: InterfaceSpec) -> str | None:
    """Why the sheet is not among the files read (a link, a FIFO, too large), if the reader said."""
    sheet = interface.answers_file
    for note in handin.notes:
        if sheet in note:
            return f"{sheet} was not read: {note.split('(', 1)[-1].rstrip(')')}"
    return None


def load_submission(path: Path, interface: InterfaceSpec, limits: IntakeLimits = IntakeLimits(), *,
                    notebook: str = "definitions", source: HandInSource | None = None) -> Submission:
    """Read a hand-in (safely), find the folder holding the work, and its module and answer sheet.
    ``source``: where its bytes are when it is not the path itself (a group of files, members of a
    class zip); ``notebook``: the lab's choice for notebooks (``definitions`` or ``run-all``).
    Raises ``SubmissionError`` (``NothingToGrade`` for a hand-in with no gradable content)."""
    path = Path(path)
    source = source or HandInSource(path=path)
    read = open_hand_in(source, limits, interface.module)
    digest = handin_digest(read)
    located = locate(read, interface, limits)
    handin = located.handin
    handin.notes[:] = list(dict.fromkeys(read.notes + located.notes))
    sub = Submission(name=display_name(path) if source.kind == "path" else source.stem, path=path, handin=handin,
                     root=located.root, handin_sha=digest)
    sheet, sheet_problem = located.sheet_data, None
    if located.module:
        sub.module_file = located.module
    elif located.notebook:
        try:
            built = notebook_module(handin.files[located.notebook], located.notebook, interface.module,
                                    run_all=notebook == "run-all")
        except SubmissionError as exc:
            sub.module_problem = str(exc)
        except (RecursionError, MemoryError) as exc:  # a bound missed: still this hand-in's fault only
            sub.module_problem = f"{printable(located.notebook)} could not be read ({type(exc).__name__})"
        else:
            handin.files.pop(located.notebook)  # the child gets the module built from it, not the JSON
            handin.files[interface.module] = built.source.encode("utf-8")
            sub.module_file, sub.notebook, sub.line_map = interface.module, located.notebook, built.line_map
            sub.written = built.written
            handin.notes += built.notes
            if sheet is None and built.answers is not None:
                sheet = built.answers
                handin.notes.append(f"answers read from the cell of {printable(located.notebook)} tagged "
                                    f"'answers'")
    else:
        problem = _sheet_problem(handin, interface.model_copy(update={"answers_file": interface.module}))
        sub.module_problem = problem or located.problem
    if sheet is None:
        sheet_problem = _sheet_problem(handin, interface)
    sub.answers, sub.answer_problems, sub.sheet_notes = _parse_sheet(sheet, interface, sheet_problem,
                                                                     limits.max_sheet_kb)
    return sub


def discover_submissions(root: Path) -> list[Path]:
    """The submissions in a plain class folder: each sub-folder, and each top-level .py file,
    notebook or archive. Entries are judged by what they are, not by what they point at: a link
    is listed (and refused, with its reason, when read), never followed."""
    root = Path(root)
    if not root.is_dir():
        raise SubmissionError(f"{root}: not a folder of submissions")
    found = []
    for p in root.iterdir():
        if p.name.startswith((".", "_")):
            continue
        try:
            mode = p.lstat().st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode) or stat.S_ISLNK(mode) or p.suffix in (".py", ".ipynb") or is_archive(p.name):
            found.append(p)
    return sorted(found)
