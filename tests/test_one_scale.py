"""End to end, as an instructor works: a mixed class downloaded from Moodle is graded, its written
answers are graded by hand, and every place a grade is shown or sent — the terminal, class.csv,
each student's PDF and the instructor's, Moodle's worksheet, Canvas's gradebook, Gradescope's
results and the plain CSV — says the same score over the same maximum, the lab's full points."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from pypdf import PdfReader

from grader import api
from grader.review.store import ReviewStore
from tests.conftest import ROOT, cli

MOODLE = ROOT / "submissions" / "lms" / "moodle-cifar-convnet"
QUESTION = "why-pooling"


def pdf_text(path) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def table(data: bytes | str) -> list[dict[str, str]]:
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The class graded, every written answer graded by hand (two rubric items for some, none for
    others), and the class graded again: (output folder, the second run's terminal output)."""
    out = tmp_path_factory.mktemp("one-scale") / "out"
    first = cli("grade", str(MOODLE), "--lab", "cifar-convnet", "--out", str(out), "--wall-time", "4")
    assert first.exit_code == 3, first.output  # one student handed in nothing to grade
    store = ReviewStore.beside(out)
    for i, result in enumerate(r for r in api.read_results(out) if r.awaiting_review):
        answer = next(c for c in result.checks if c.id == QUESTION)
        store.grade(QUESTION, {result.submission: (answer.details["answer_sha"], 0)},
                    ["invariance", "smaller"] if i % 2 == 0 else [], "Graded by hand.")
    again = cli("grade", str(MOODLE), "--lab", "cifar-convnet", "--out", str(out), "--wall-time", "4")
    assert again.exit_code == 3, again.output
    return out, " ".join(again.output.split())


def test_every_place_shows_each_students_score_over_the_labs_full_points(course, tmp_path):
    out, terminal = course
    results = {r.student.id: r for r in api.read_results(out)}
    assert not any(r.pending_points for r in results.values())  # every written answer graded
    lab_points = api.load_lab("cifar-convnet").manifest.max_score
    expected = {sid: (f"{r.score:g}", f"{r.max_score:g}") for sid, r in results.items()}
    assert {m for _, m in expected.values()} == {f"{lab_points:g}"}

    rows = {r["student_id"]: r for r in table((out / "class.csv").read_text())}
    moodle = {r["Identifier"].split()[-1]: r for r in
              table(api.export(out, "moodle")[0]["moodle-grading-worksheet.csv"])}
    plain = {r["id"]: r for r in table(api.export(out, "csv")[0]["grades.csv"])}
    gradebook = tmp_path / "gradebook.csv"
    gradebook.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Lab 2 (222)\n"
                         f"    Points Possible,,,,,{lab_points:g}\n"
                         + "".join(f"\"{r.student.name}\",{sid},,,,\n" for sid, r in results.items()))
    canvas = {r["ID"]: r for r in table(api.export(out, "canvas", template=gradebook,
                                                  assignment="Lab 2")[0]["canvas-gradebook.csv"])}
    gradescope = {sid: json.loads(data) for name, data in api.export(out, "gradescope")[0].items()
                  for sid, r in results.items() if name == f"{r.submission}/results.json"}

    for sid, (score, maximum) in expected.items():
        r = results[sid]
        assert re.search(rf"{re.escape(r.submission)} .*? {re.escape(score)}/{re.escape(maximum)} ", terminal), sid
        assert (rows[sid]["score"], rows[sid]["max_score"]) == (score, maximum), sid
        assert (plain[sid]["total"], plain[sid]["max"], plain[sid]["pending"]) == (score, maximum, ""), sid
        assert (float(moodle[sid]["Grade"]), float(moodle[sid]["Maximum Grade"])) == (r.score, r.max_score), sid
        assert float(canvas[sid]["Lab 2 (222)"]) == r.score, sid  # out of Points Possible: the lab's points
        assert gradescope[sid]["score"] == r.score, sid
        if r.checks[0].kind != "submission":
            assert sum(t["max_score"] for t in gradescope[sid]["tests"]) == r.max_score, sid
        for reader in ("students", "instructor"):
            text = pdf_text(out / "reports" / reader / f"{r.submission}.pdf")
            assert f"{score} / {maximum}" in text and "pending" not in text, (sid, reader)
