"""Canvas's gradebook import CSV (Grades → Import): columns ``Student``, ``ID``, ``SIS User ID``,
``SIS Login ID``, ``Section``, then one column per assignment, headed ``<title> (<assignment id>)``.

Canvas matches rows by ``ID`` (the user id in its download's file names) and an assignment by the
id in parentheses; a header without an id makes a new assignment. Given the gradebook the
instructor exported (``template``), every column is kept and only the assignment's cells of the
students graded change, the score scaled to its ``Points Possible`` row when there is one;
``assignment`` picks the column (by title or id) when the gradebook has several.
"""

from __future__ import annotations

import csv
import io
import re

from grader.errors import UsageError
from grader.export.cells import inert_row
from grader.results import SubmissionResult

FILE = "canvas-gradebook.csv"
FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
_ASSIGNMENT = re.compile(r"^(?P<title>.+?)\s*\((?P<id>\d+)\)$")
_POINTS_POSSIBLE = "points possible"


def _score(result: SubmissionResult, out_of: float | None) -> str:
    if out_of is None:
        return f"{result.score:g}"
    value = result.score / result.max_score * out_of if result.max_score else 0.0
    return f"{round(value, 2):g}"


def _pick(header: list[str], assignment: str | None) -> int:
    candidates = [i for i, h in enumerate(header) if i >= len(FIXED) and _ASSIGNMENT.match(h.strip())]
    if assignment:
        wanted = assignment.strip()
        found = [i for i in range(len(header)) if header[i].strip() == wanted] or [
            i for i in candidates if wanted in (_ASSIGNMENT.match(header[i].strip())["title"],  # type: ignore[index]
                                                _ASSIGNMENT.match(header[i].strip())["id"])]  # type: ignore[index]
        if len(found) != 1:
            raise UsageError(f"--assignment {assignment!r}: {'no' if not found else 'several'} such column in the "
                             f"gradebook (assignments: {', '.join(header[i] for i in candidates) or 'none'})")
        return found[0]
    if len(candidates) != 1:
        raise UsageError("--assignment: name the gradebook's column to fill (by title or id); its assignments: "
                         f"{', '.join(header[i] for i in candidates) or 'none'}")
    return candidates[0]


def export(results: list[SubmissionResult], template: bytes | None = None, *,
           assignment: str | None = None, title: str = "") -> tuple[dict[str, bytes], list[str]]:
    """The gradebook's bytes, and a warning for each graded student it has no row for."""
    if template is None:
        column = assignment or title or (results[0].lab_title if results else "gradelab")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(inert_row([*FIXED, column]))
        for r in sorted(results, key=lambda r: (r.student.name, r.student.id)):
            writer.writerow(inert_row([r.student.name, r.student.id, "", "", "", _score(r, None)]))
        return {FILE: out.getvalue().encode("utf-8")}, []
    text = template.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [h.strip() for h in rows[0][:2]] != ["Student", "ID"]:
        raise UsageError("--template: not a Canvas gradebook export (its first columns must be Student, ID)")
    header = rows[0]
    target = _pick(header, assignment)
    out_of = None
    by_id = {r.student.id: r for r in results}
    seen = set()
    for row in rows[1:]:
        if row and row[0].strip().lower() == _POINTS_POSSIBLE:
            try:
                out_of = float(row[target])
            except (ValueError, IndexError):
                out_of = None
            continue
        result = by_id.get(row[1].strip()) if len(row) > 1 else None
        if result is None:
            continue
        seen.add(result.student.id)
        row += [""] * (target + 1 - len(row))
        row[target] = _score(result, out_of)
    warnings = [f"{r.student.name} (ID {r.student.id}) is not in the gradebook: not exported"
                for r in results if r.student.id not in seen]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(inert_row(row) for row in rows)
    return {FILE: out.getvalue().encode("utf-8")}, warnings
