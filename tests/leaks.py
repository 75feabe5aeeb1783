"""What a student must never read, and a detector that finds it in any text (a table, JSON, HTML,
the text of a PDF, the files of a packed lab).

What is secret:
1. every leaf of the lab's reference answer sheet;
2. for one hand-in, the expected value of each public check it did not pass whose disclosure keeps
   reference values from students (the model's parameter count: the sheet's total). A passed
   check shows the student's own value, which is then the reference's: that is theirs;
3. the message and the hint of every hidden check, as an instructor grades it.

How it is matched (robust to formatting, blind to tiny numbers):
- numbers are read out of the text whatever their formatting (51264, 51,264, 51 264 with a plain,
  thin or no-break space) and compared as numbers. A number counts from 100 up: smaller ones
  (kernel sizes, strides, channels, batch sizes, 0, 1, 2) are in every message as sizes of the
  lab's own inputs and architecture, and cannot be told from answers;
- a list counts as its numbers in a row, whatever brackets or separators (``[32, 32, 32]``,
  ``32×32×32``), when it has three or more;
- a string counts from four characters, compared without case;
- a hidden check's message counts unless a public check of the same hand-in says the very same
  thing (an import error, "All 2 answers are right.").

What is not secret, whatever the above says:
- what the lab states publicly: titles and hints of its public checks, its description, its
  interface (descriptions, choices), its template's files. The lab chose to show those;
- what the hand-in itself holds (the text of its files): a student reads back what they wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NUMBER = re.compile(r"(?<![\d.])\d{1,3}(?:[,\u00a0\u202f\u2009 ]\d{3})+(?![\d.])|(?<![\d.])\d+(?:\.\d+)?")
MIN_NUMBER = 100
MIN_LIST = 3
MIN_TEXT = 4


def numbers(text: str) -> list[float]:
    """Every number in ``text``, in order, thousands separators understood."""
    return [float(re.sub(r"[,\u00a0\u202f\u2009 ]", "", m.group())) for m in NUMBER.finditer(text)]


def _runs(seq: list[float], run: list[float]) -> bool:
    n = len(run)
    return any(seq[i:i + n] == run for i in range(len(seq) - n + 1))


def _number(n: float) -> str:
    return str(int(n)) if n.is_integer() else f"{n:g}"


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


@dataclass
class Secrets:
    numbers: set[float] = field(default_factory=set)
    lists: list[list[float]] = field(default_factory=list)
    texts: set[str] = field(default_factory=set)

    def add(self, value: Any) -> None:
        """A reference value, as far as it can be told apart from what every message holds."""
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            if abs(value) >= MIN_NUMBER:
                self.numbers.add(float(value))
        elif isinstance(value, str):
            if len(value.strip()) >= MIN_TEXT:
                self.texts.add(_flat(value))
        elif isinstance(value, (list, tuple)):
            if len(value) >= MIN_LIST and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                if list(map(float, value)) not in self.lists:
                    self.lists.append(list(map(float, value)))
            for v in value:
                if not isinstance(v, (int, float)):
                    self.add(v)
        elif isinstance(value, dict):
            for v in value.values():
                self.add(v)

    def without(self, public: str) -> Secrets:
        """These secrets less what ``public`` (the lab's public text, a hand-in's files) states."""
        seen, flat = numbers(public), _flat(public)
        return Secrets(numbers={n for n in self.numbers if n not in seen},
                       lists=[run for run in self.lists if not _runs(seen, run)],
                       texts={t for t in self.texts if t not in flat})

    def __or__(self, other: Secrets) -> Secrets:
        return Secrets(self.numbers | other.numbers, self.lists + [r for r in other.lists if r not in self.lists],
                       self.texts | other.texts)

    def __bool__(self) -> bool:
        return bool(self.numbers or self.lists or self.texts)

    def found_in(self, text: str) -> list[str]:
        """Each secret ``text`` holds, said so that a failing test names it."""
        seen, flat = numbers(text), _flat(text)
        return ([_number(n) for n in sorted(self.numbers) if n in seen]
                + [f"[{', '.join(map(_number, run))}]" for run in self.lists if _runs(seen, run)]
                + [repr(t) for t in sorted(self.texts) if t in flat])


def leaves(node: Any) -> Iterable[Any]:
    if isinstance(node, dict):
        for v in node.values():
            yield from leaves(v)
    else:
        yield node


def answer_secrets(lab) -> Secrets:
    """Rule 1: the reference answer sheet's leaves (a lab without answers has none)."""
    secrets = Secrets()
    if lab.manifest.interface.answers:
        for value in leaves(lab.reference_answers):
            secrets.add(value)
    return secrets


def public_text(lab) -> str:
    """What the lab itself shows students: public checks' titles and hints, its description,
    interface and template."""
    m = lab.manifest
    parts = [m.title, m.description]
    parts += [f"{c.title} {c.hint}" for c in m.checks if c.visibility.value == "public"]
    parts += [f"{s.name} {' '.join(s.params)} {s.description}" for s in m.interface.symbols]
    parts += [f"{a.path} {a.description} {' '.join(a.choices or [])}" for a in m.interface.answers]
    template = lab.folder / m.template
    if template.is_dir():
        parts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(template.rglob("*")) if p.is_file()]
    return "\n".join(parts)


def own_text(hand_in: Path) -> str:
    """The text of every file of a hand-in."""
    files = [hand_in] if hand_in.is_file() else sorted(p for p in hand_in.rglob("*") if p.is_file())
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


def expected_secrets(result) -> Secrets:
    """Rule 2, for one (instructor's, complete) result."""
    secrets = Secrets()
    for c in result.checks:
        hidden_expected = c.disclosure is None or "expected" not in {r.value for r in c.disclosure.shows}
        if c.visibility.value == "public" and c.status.value != "passed" and hidden_expected:
            secrets.add(c.expected)
    return secrets


def hidden_sayings(instructor, student) -> set[str]:
    """Rule 3, for one hand-in: what its hidden checks say to an instructor (``instructor``, a
    result holding them), less what a public check of it says word for word (``student``, its
    self-check), and their hints."""
    public = {_flat(c.message) for c in student.checks if c.visibility.value == "public"}
    said = set()
    for c in instructor.checks:
        if c.visibility.value == "hidden":
            said |= {_flat(t) for t in (c.message, c.hint) if t.strip() and _flat(t) not in public}
    return said


def student_json(result) -> str:
    """A student's JSON less what the machine adds (paths, time stamps): numbers in a temporary
    folder's name must not pass for answers."""
    data = json.loads(result.to_json())
    for key in ("path", "graded_at", "duration_s"):
        data.pop(key, None)
    data.get("student", {}).pop("source", None)
    return json.dumps(data, ensure_ascii=False)
