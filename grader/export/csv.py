"""A plain CSV of a class: one row per student (id, name, total, max, percent, letter, and what
is pending in a partial export), then one column per check, in the lab's order; for a
spreadsheet or an LMS without its own format. Every cell goes through ``cells.inert``."""

from __future__ import annotations

import csv
import io

from grader.export.cells import inert_row, pending_text
from grader.results import PENDING, Kind, SubmissionResult

FILE = "grades.csv"


def export(results: list[SubmissionResult]) -> dict[str, bytes]:
    check_ids: list[str] = []
    for r in results:
        check_ids += [c.id for c in r.checks if c.kind != Kind.submission and c.id not in check_ids]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "total", "max", "percent", "letter", "pending", *check_ids])
    for r in sorted(results, key=lambda r: (r.student.name, r.student.id)):
        scores = {c.id: "" if c.status in PENDING else f"{c.score:g}" for c in r.checks}
        writer.writerow(inert_row([r.student.id, r.student.name, f"{r.score:g}", f"{r.max_score:g}",
                                   f"{r.percent:.1f}", r.grade, pending_text(r), *[scores.get(i, "") for i in check_ids]]))
    return {FILE: out.getvalue().encode("utf-8")}
