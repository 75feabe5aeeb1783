"""A plain CSV of a class: one row per student (id, name, total, max, percent, letter), then one
column per check, in the lab's order; for a spreadsheet or an LMS without its own format."""

from __future__ import annotations

import csv
import io

from grader.results import Kind, Status, SubmissionResult

FILE = "grades.csv"


def export(results: list[SubmissionResult]) -> dict[str, bytes]:
    check_ids: list[str] = []
    for r in results:
        check_ids += [c.id for c in r.checks if c.kind != Kind.submission and c.id not in check_ids]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "total", "max", "percent", "letter", *check_ids])
    for r in sorted(results, key=lambda r: (r.student.name, r.student.id)):
        scores = {c.id: "" if c.status == Status.awaiting_review else f"{c.score:g}" for c in r.checks}
        writer.writerow([r.student.id, r.student.name, f"{r.score:g}", f"{r.max_score:g}", f"{r.percent:.1f}",
                         r.grade, *[scores.get(i, "") for i in check_ids]])
    return {FILE: out.getvalue().encode("utf-8")}
