"""A student's hand-in as the grader sees it: where its module is, and what its answer sheet says.

Nothing here runs student code. The answer sheet is YAML read with ``safe_load`` and validated
field by field with pydantic, so one malformed answer fails only the checks that need it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import StrictBool, StrictStr, TypeAdapter, ValidationError

from grader.errors import SubmissionError
from grader.lab.manifest import AnswerFieldSpec, InterfaceSpec

MAX_SHEET_BYTES = 256 * 1024
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
    module_path: Path | None = None
    module_problem: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    answer_problems: dict[str, str] = field(default_factory=dict)

    def answer(self, path: str) -> Any:
        return self.answers[path]


def safe_name(name: str) -> str:
    """A submission name usable as a file name (students choose folder names)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"
    return cleaned[:100]


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


def read_answer_sheet(path: Path, interface: InterfaceSpec) -> tuple[dict[str, Any], dict[str, str]]:
    fields = interface.answers
    if not fields:
        return {}, {}
    sheet = interface.answers_file

    def all_fail(problem: str) -> tuple[dict[str, Any], dict[str, str]]:
        return {}, {f.path: problem for f in fields}

    if not path.exists():
        return all_fail(f"no {sheet} in the submission")
    if path.stat().st_size > MAX_SHEET_BYTES:
        return all_fail(f"{sheet} is larger than {MAX_SHEET_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        return all_fail(f"{sheet} is not valid YAML{where}: {getattr(exc, 'problem', None) or 'syntax error'}")
    except RecursionError:
        return all_fail(f"{sheet} is nested too deeply")
    if not isinstance(data, dict):
        return all_fail(f"{sheet} must be a mapping of answers (field: value), not {type(data).__name__}")
    values, problems = {}, {}
    for spec in fields:
        value, problem = validate_answer(spec, _lookup(data, spec.path))
        if problem:
            problems[spec.path] = problem
        else:
            values[spec.path] = value
    return values, problems


def load_submission(path: Path, interface: InterfaceSpec) -> Submission:
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix != ".py":
            raise SubmissionError(f"{path}: a submission is a folder or a single .py file")
        sub = Submission(name=path.stem, path=path, module_path=path)
        sub.answers, sub.answer_problems = read_answer_sheet(path.with_name("__no_sheet__"), interface)
        return sub
    sub = Submission(name=path.name, path=path)
    module = path / interface.module
    if module.is_file():
        sub.module_path = module
    else:
        candidates = sorted(p.name for p in path.glob("*.py"))
        if len(candidates) == 1:
            sub.module_path = path / candidates[0]
        else:
            found = f" (found: {', '.join(candidates)})" if candidates else " (no .py file found)"
            sub.module_problem = f"no {interface.module} in the submission{found}"
    sub.answers, sub.answer_problems = read_answer_sheet(path / interface.answers_file, interface)
    return sub


def discover_submissions(root: Path) -> list[Path]:
    """The submissions in a class folder: each sub-folder and each top-level .py file."""
    root = Path(root)
    if not root.is_dir():
        raise SubmissionError(f"{root}: not a folder of submissions")
    return sorted(p for p in root.iterdir()
                  if not p.name.startswith((".", "_")) and (p.is_dir() or p.suffix == ".py"))
