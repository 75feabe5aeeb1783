"""Exports: each LMS's file, checked field by field, from a class graded once; what students read
in them names checks, points and hints, never a check's message or an expected value."""

from __future__ import annotations

import csv
import io
import json

import jsonschema
import pytest

from grader.errors import UsageError
from tests.conftest import ROOT, cli

SCHEMA = json.loads((ROOT / "tests" / "schemas" / "gradescope-results.schema.json").read_text())


@pytest.fixture(scope="module")
def graded(moodle_graded):
    """The bundled Moodle download, graded once: its results folder and results by student id."""
    from grader import api

    out = moodle_graded[0]
    return out, {r.student.id: r for r in api.read_results(out)}


def rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def leaked(text: str, results) -> list[str]:
    """Instructor-only messages found in a student-facing text: a check's whole message where the
    reveal policy shows a student less of it (it holds an expected value), or any message of a
    hidden check."""
    from grader.reveal import student_check

    return [c.message for r in results for c in r.checks if c.message and c.kind != "submission"
            and (c.visibility == "hidden" or student_check(c).message != c.message) and c.message in text]


def test_moodle_worksheet_has_moodles_columns_and_one_row_per_participant(graded):
    from grader import api
    from grader.export.moodle import HEADER

    out, by_id = graded
    files, warnings = api.export(out, "moodle", partial=True)
    table = rows(files["moodle-grading-worksheet.csv"])
    assert table[0] == HEADER and warnings == ["partial export: 5 student(s)' totals count 5 written answer(s) "
                                              "awaiting review as not yet earned"]
    body = {row[0]: dict(zip(HEADER, row)) for row in table[1:]}
    assert set(body) == {f"Participant {i}" for i in by_id}
    emile = body["Participant 654321"]
    assert emile["Full name"] == "Émile Noël" and emile["Grade"] == "15.00" and emile["Maximum Grade"] == "20.00"
    assert emile["Last modified (grade)"] == "-"
    assert "Output-size rule of a convolution (0/2, failed)" in emile["Feedback comments"]
    hint = next(c.hint for c in by_id["654321"].checks if c.id == "conv-output-size")
    assert f"hint: {hint}"[:60] in emile["Feedback comments"]
    assert body["Participant 333333"]["Feedback comments"].endswith("Every check graded so far passed. Note: your work was found in lab2/.")
    assert "Nothing was graded: nothing to grade" in body["Participant 555555"]["Feedback comments"]
    assert not leaked(files["moodle-grading-worksheet.csv"].decode(), by_id.values())


def test_moodle_worksheet_from_the_instructors_template_keeps_it_and_scales_grades(graded, tmp_path):
    from grader import api

    out, _ = graded
    header = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
              "Last modified (submission)", "Online text", "Last modified (grade)", "Feedback comments"]
    template = io.StringIO()
    writer = csv.writer(template)
    writer.writerow(header)
    writer.writerow(["Participant 654321", "Émile Noël", "emile@example.org", "Submitted for grading", "", "100.00",
                     "Yes", "Friday, 1 March 2024, 9:00 AM", "", "-", ""])
    writer.writerow(["Participant 999999", "Not Graded", "n@example.org", "No submission", "", "100.00", "Yes",
                     "-", "", "-", ""])
    path = tmp_path / "worksheet.csv"
    path.write_bytes(("\ufeff" + template.getvalue()).encode("utf-8"))
    files, warnings = api.export(out, "moodle", partial=True, template=path)
    data = files["moodle-grading-worksheet.csv"]
    assert data.startswith("\ufeff".encode())  # Moodle's own encoding kept
    table = rows(data)
    assert table[0] == header
    emile, other = (dict(zip(header, r)) for r in table[1:])
    assert emile["Grade"] == "75.00" and emile["Email address"] == "emile@example.org"  # 15/20 of 100
    assert emile["Last modified (submission)"] == "Friday, 1 March 2024, 9:00 AM" and emile["Feedback comments"]
    assert other["Grade"] == "" and other["Feedback comments"] == ""
    assert sorted(w.split(" (")[0] for w in warnings if not w.startswith("partial export")) == \
        sorted(["Kim Park", "Ana María López", "Chen Wei", "Lee Jordan", "Zoë Adams"])


def test_canvas_gradebook_fills_the_chosen_assignment_scaled_to_its_points(graded, tmp_path):
    from grader import api

    out, _ = graded
    path = tmp_path / "gradebook.csv"
    path.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Lab 1 (111),Lab 2 (222)\n"
                    "    Points Possible,,,,,10,50\n"
                    "\"Park, Kim\",333333,S1,kpark,CS101,9,\n"
                    "\"Noël, Émile\",654321,S2,enoel,CS101,7,\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"name the gradebook's column to fill .*Lab 1 \(111\), Lab 2 \(222\)"):
        api.export(out, "canvas", partial=True, template=path)
    files, warnings = api.export(out, "canvas", partial=True, template=path, assignment="Lab 2")
    table = rows(files["canvas-gradebook.csv"])
    assert table[1] == ["    Points Possible", "", "", "", "", "10", "50"]
    assert table[2] == ["Park, Kim", "333333", "S1", "kpark", "CS101", "9", "42.5"]  # 17/20 of 50
    assert table[3] == ["Noël, Émile", "654321", "S2", "enoel", "CS101", "7", "37.5"]  # 15/20 of 50
    assert len(warnings) == 5  # 4 students not in the gradebook, and the partial export


def test_a_canvas_gradebook_without_its_template_is_refused_for_students_canvas_did_not_name(graded):
    """Moodle's participant ids are not Canvas's user ids: such a file would grade strangers."""
    from grader import api

    out, _ = graded
    with pytest.raises(UsageError, match="a Canvas gradebook finds each student by Canvas's user id, and Ana María "
                                         r"López, Chen Wei, Émile Noël and 3 more came from Moodle's download"):
        api.export(out, "canvas", partial=True, assignment="Lab 2 (222)")


def test_gradescope_results_follow_gradescopes_schema_and_hide_hidden_checks_until_published(graded):
    from grader import api

    out, by_id = graded
    files, _ = api.export(out, "gradescope", partial=True)
    assert len(files) == len(by_id)
    for name, data in files.items():
        payload = json.loads(data)
        jsonschema.validate(payload, SCHEMA)
        result = next(r for r in by_id.values() if name == f"{r.submission}/results.json")
        assert payload["score"] == result.score and payload["stdout_visibility"] == "hidden"
        graded_checks = [c for c in result.checks if c.kind != "submission"]
        assert [t["name"] for t in payload["tests"]] == [c.title for c in graded_checks]
        for test, check in zip(payload["tests"], graded_checks):
            # One scale: a written answer awaiting review is at stake (0 of its points so far), as in the total.
            assert test["score"] == check.score and test["max_score"] == check.max_score
            assert test["visibility"] == ("after_published" if check.visibility.value == "hidden" else "visible")
            assert test["status"] == ("passed" if check.status.value == "passed" else "failed")
        assert not leaked(data.decode(), [result])


def test_plain_csv_has_one_row_per_student_and_a_column_per_check(graded):
    from grader import api

    out, by_id = graded
    files, _ = api.export(out, "csv", partial=True)
    table = rows(files["grades.csv"])
    checks = [c.id for c in by_id["333333"].checks]
    assert table[0] == ["id", "name", "total", "max", "percent", "letter", "pending", *checks]
    emile = dict(zip(table[0], next(r for r in table if r[0] == "654321")))
    assert (emile["name"], emile["total"], emile["max"], emile["percent"], emile["letter"], emile["pending"]) == \
        ("Émile Noël", "15", "20", "75.0", "", "3 points pending: why-pooling (awaiting review)")
    assert emile["conv-output-size"] == "0" and emile["layer-params"] == "3"


def test_export_command_writes_the_file_and_refuses_an_unknown_target(graded, tmp_path):
    out, _ = graded
    result = cli("export", str(out), "--to", "moodle", "--file", str(tmp_path / "w.csv"), "--partial")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w.csv").read_text(encoding="utf-8").startswith("Identifier,Full name")
    bad = cli("export", str(out), "--to", "blackboard")
    assert bad.exit_code == 2 and "--to 'blackboard' is not accepted: use moodle, canvas, gradescope, csv" in bad.output


def test_reports_name_the_student_as_the_lms_wrote_it(graded, renderer):
    _, by_id = graded
    emile = by_id["654321"]
    assert "<strong>Student:</strong> Émile Noël (id 654321)" in renderer.submission_html(emile, "student")
    summary = renderer.class_html(list(by_id.values()), emile.lab_title)
    assert "Emile_Noel_654321<br><span class=\"muted\">Émile Noël (654321)</span>" in summary
