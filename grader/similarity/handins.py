"""The hand-ins compared, as intake built them for grading: the code (a notebook as the module the
grader built from it, an archive unpacked), the answer sheet's values, the written answers.

Everything is read through ``grader.submission.load_submission`` with the lab's intake caps, so a
link is never followed and an archive bomb is refused as it is when grading. What the comparison
cannot use (a file past ``MAX_FILE_KB``, bytes that are not text, a hand-in that cannot be read at
all) is left out with a note, never an exception through the run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from grader.checks.registry import BoundLab
from grader.intake.reader import printable, read_hand_in
from grader.lab.manifest import IntakeLimits
from grader.submission import Submission, load_submission

log = logging.getLogger(__name__)
MAX_FILE_KB = 256    # a source file larger than this is generated or pasted data, not someone's work
MAX_CODE_KB = 1024   # all the code of one hand-in compared


class Work(BaseModel):
    """One hand-in as compared. ``group``: ``class`` for this class, else the label of an earlier
    class (``--against``): earlier classes are compared with this one, not among themselves."""

    name: str
    student: str
    group: str = "class"
    code: str = ""
    files: list[str] = Field(default_factory=list, description="The source files in ``code``, in order.")
    answers: dict[str, Any] = Field(default_factory=dict, description="Answer-sheet values by field path.")
    written: dict[str, str] = Field(default_factory=dict, description="Written answers by check id.")
    notes: list[str] = Field(default_factory=list, description="What was left out of the comparison, and why.")


def written_questions(lab: BoundLab) -> dict[str, tuple[str | None, str, str]]:
    """Each written question's check id → (answer-sheet field, notebook cell tag, question text)."""
    found: dict[str, tuple[str | None, str, str]] = {}
    for check in lab.checks:
        if check.spec.kind == "written":
            params: Any = check.params
            found[check.spec.id] = (params.field, params.cell or check.spec.id, params.question)
    return found


def _code(sub: Submission, notes: list[str]) -> tuple[str, list[str]]:
    """The hand-in's Python, its module first (a notebook's module as built), joined."""
    prefix = sub.root
    names = [sub.module_file] if sub.module_file else []
    names += sorted(n for n in sub.handin.files
                    if n.endswith(".py") and n != sub.module_file and n.startswith(prefix))
    parts, used, total = [], [], 0
    for name in names:
        data = sub.handin.files.get(name) if name != sub.module_file else sub.handin.read(name)
        label = printable(name[len(prefix):] if name.startswith(prefix) and name != sub.module_file else name)
        if data is None:
            continue
        if len(data) > MAX_FILE_KB * 1024 or total + len(data) > MAX_CODE_KB * 1024:
            notes.append(f"{label}: larger than {MAX_FILE_KB} KiB (or past {MAX_CODE_KB} KiB in all): "
                         "left out of the comparison")
            continue
        if b"\x00" in data:
            notes.append(f"{label}: binary, not source code: left out of the comparison")
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            notes.append(f"{label}: not UTF-8 text: left out of the comparison")
            continue
        total += len(data)
        parts.append(text)
        used.append(label)
    return "\n\n".join(parts), used


def from_submission(sub: Submission, lab: BoundLab, name: str, student: str, group: str = "class") -> Work:
    questions = written_questions(lab)
    notes: list[str] = []
    code, files = _code(sub, notes)
    if sub.module_problem:
        notes.append(f"code not compared: {printable(sub.module_problem)[:300]}")
    fields = {q[0] for q in questions.values() if q[0]}
    written = {}
    for qid, (field, cell, _question) in questions.items():
        text = sub.answers.get(field) if field else None
        text = text if isinstance(text, str) and text.strip() else sub.written.get(cell)
        if isinstance(text, str) and text.strip():
            written[qid] = text[:20000]
    answers = {k: v for k, v in sub.answers.items() if k not in fields}
    return Work(name=name, student=student, group=group, code=code, files=files, answers=answers,
                written=written, notes=notes)


def read_work(lab: BoundLab, path: Path, name: str, student: str, *, group: str = "class",
              source: Any = None) -> Work:
    """One hand-in as compared; one that cannot be read is a ``Work`` with nothing but a note."""
    manifest = lab.manifest
    try:
        sub = load_submission(Path(path), manifest.interface, manifest.intake, notebook=manifest.notebook,
                              source=source)
    except Exception as exc:
        log.info("similarity: %s left out: %s", name, exc)
        return Work(name=name, student=student, group=group, notes=[f"not compared: {exc}"])
    return from_submission(sub, lab, name, student, group)


def read_class(lab: BoundLab, root: Path, *, layout: str = "auto", group: str = "class",
               names: set[str] | None = None) -> list[Work]:
    """Every hand-in of the class at ``root`` (a folder or an LMS download), under the names its
    results have (``names``: only those)."""
    from grader.grading.batch import plan_jobs
    from grader.intake.classes import plan_class
    from grader.options import Layout

    iface = lab.manifest.interface
    plan = plan_class(Path(root), Layout(layout), expected={iface.module, iface.answers_file})
    works = []
    for job in plan_jobs(plan):
        if names is not None and job.name not in names:
            continue
        name = job.name if group == "class" else f"{group}/{job.name}"
        works.append(read_work(lab, job.path, name, job.student.name, group=group, source=job.source))
    return works


def template_work(lab: BoundLab) -> Work:
    """The lab's template as a hand-in: what every student starts from."""
    folder = lab.folder / lab.manifest.template
    return read_work(lab, folder, "template", "template", group="template")


def boilerplate_code(folders: list[Path], limits: IntakeLimits | None = None) -> list[str]:
    """The Python files under each folder (code handed out, read safely), to be subtracted."""
    texts = []
    for folder in folders:
        handin = read_hand_in(Path(folder), limits or IntakeLimits())
        for name, data in sorted(handin.files.items()):
            if name.endswith(".py") and b"\x00" not in data and len(data) <= MAX_FILE_KB * 1024:
                texts.append(data.decode("utf-8", errors="replace"))
    return texts
