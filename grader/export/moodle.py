"""Moodle's offline grading worksheet (Assignment → "Download grading worksheet", then "Upload
grading worksheet"), filled with gradelab's grades.

Moodle's importer finds its columns by their header strings (``Identifier``, ``Grade``,
``Last modified (grade)`` and each feedback plugin's name, e.g. ``Feedback comments``) and the
student by the number after ``Participant `` in the identifier. Given the worksheet the instructor
downloaded (``template``), every column and header string is kept and only the Grade and the
Feedback comments of the students graded change; the grade is scaled to the worksheet's
``Maximum Grade`` when Moodle's assignment is out of another total. Without it, a worksheet with
Moodle's English columns is written; ``Last modified (grade)`` is ``-`` (Moodle's "never"), so a
grade already given in Moodle is not overwritten unless the upload is told to ignore that.
"""

from __future__ import annotations

import csv
import io
import re

from grader.errors import UsageError
from grader.export.cells import inert_row
from grader.export.feedback import summary_text
from grader.results import SubmissionResult

FILE = "moodle-grading-worksheet.csv"
HEADER = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
          "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
_PARTICIPANT = re.compile(r"(\d+)\s*$")


def identifier(result: SubmissionResult) -> str:
    return f"Participant {result.student.id}"


def _grade(result: SubmissionResult, out_of: float | None) -> str:
    total = out_of if out_of is not None else result.max_score
    value = result.score / result.max_score * total if result.max_score else 0.0
    return f"{value:.2f}"


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def export(results: list[SubmissionResult], template: bytes | None = None) -> tuple[dict[str, bytes], list[str]]:
    """The worksheet's bytes, and a warning for each graded student it has no row for."""
    if template is None:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for r in sorted(results, key=lambda r: (r.student.name, r.student.id)):
            writer.writerow(inert_row([identifier(r), r.student.name, r.student.email or "", "", _grade(r, None),
                                       f"{r.max_score:.2f}", "Yes", "", "-", summary_text(r)]))
        return {FILE: out.getvalue().encode("utf-8")}, []
    text = template.decode("utf-8-sig")
    bom = template.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise UsageError("--template: the worksheet is empty")
    header = rows[0]
    lower = [h.strip().lower() for h in header]

    def column(name: str, required: bool = True) -> int | None:
        if name.lower() in lower:
            return lower.index(name.lower())
        if required:
            raise UsageError(f"--template: the worksheet has no {name!r} column (its columns: {', '.join(header)}); "
                             "download it from Moodle in English, or rename that column")
        return None

    ident, grade, feedback = column("Identifier"), column("Grade"), column("Feedback comments", required=False)
    assert ident is not None and grade is not None  # required columns: column() raised otherwise
    maximum = column("Maximum Grade", required=False)
    by_id = {r.student.id: r for r in results}
    seen = set()
    for row in rows[1:]:
        if len(row) <= max(ident, grade):
            continue
        match = _PARTICIPANT.search(row[ident])
        result = by_id.get(match.group(1)) if match else None
        if result is None:
            continue
        seen.add(result.student.id)
        out_of = _number(row[maximum]) if maximum is not None and maximum < len(row) else None
        row[grade] = _grade(result, out_of)
        if feedback is not None:
            row += [""] * (feedback + 1 - len(row))
            row[feedback] = summary_text(result)
    warnings = [f"{r.student.name} (Participant {r.student.id}) is not in the worksheet: not exported"
                for r in results if r.student.id not in seen]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(inert_row(row) for row in rows)
    return {FILE: (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")}, warnings
