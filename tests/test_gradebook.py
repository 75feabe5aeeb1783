"""Every grade that leaves gradelab is the student's, whole, and on one scale — or gradelab refuses
and says why: pending points, a self-check, an LMS file without the LMS's ids; and nothing a
student named reaches a spreadsheet as a formula or a Markdown page as markup."""

from __future__ import annotations

import csv
import io
import shutil

import pytest

from grader import api
from grader.errors import UsageError
from grader.options import Mode, RunOptions
from tests.conftest import CIFAR_SUBMISSIONS, ROOT, cli

FORMULA = '=HYPERLINK("evil.example","open me")'
FAST = RunOptions(reports=False)


@pytest.fixture(scope="module")
def folder_class(tmp_path_factory):
    """cifar-convnet's correct hand-in and a flawed one under a formula for a name, graded: its
    written answers await review."""
    base = tmp_path_factory.mktemp("gradebook")
    root, out = base / "class", base / "out"
    shutil.copytree(CIFAR_SUBMISSIONS / "correct", root / "alice")
    shutil.copytree(CIFAR_SUBMISSIONS / "missing-floor", root / FORMULA)
    api.grade(root, "cifar-convnet", out, FAST)
    return out


def cells(data: bytes | str) -> list[list[str]]:
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    return list(csv.reader(io.StringIO(text)))


def test_a_result_is_out_of_the_labs_full_points_with_what_is_pending_named(folder_class):
    alice = next(r for r in api.read_results(folder_class) if r.student.name == "alice")
    lab = api.load_lab("cifar-convnet")
    assert alice.max_score == lab.manifest.max_score == 20
    assert (alice.score, alice.pending_points, alice.grade) == (17, 3, "")  # no letter for a partial total
    row = next(r for r in cells((folder_class / "class.csv").read_text()) if r[0] == "alice")
    assert row[3:7] == ["17", "20", "85.0", "yes"]


@pytest.mark.parametrize("to, extra", [("moodle", {}), ("canvas", {"assignment": "Lab 2 (222)"}), ("csv", {}),
                                       ("gradescope", {})])
def test_an_export_while_written_answers_await_review_is_refused_unless_partial(folder_class, to, extra):
    with pytest.raises(UsageError, match=r"2 of 2 student\(s\) have points not graded yet \(2 written answer\(s\) "
                                         r"awaiting review; .*or export with --partial"):
        api.export(folder_class, to, **extra)
    with pytest.raises(UsageError) as refused:  # the command to run, with this class's folder in it
        api.export(folder_class, to, **extra)
    assert f"(written answers: `gradelab review {folder_class}`)" in str(refused.value)


def test_a_moodle_export_with_its_template_is_refused_too_while_answers_await_review(folder_class, tmp_path):
    template = tmp_path / "worksheet.csv"
    template.write_text("Identifier,Full name,Grade,Maximum Grade,Feedback comments\nParticipant 1,A,,20,\n")
    with pytest.raises(UsageError, match="points not graded yet"):
        api.export(folder_class, "moodle", template=template)


def test_a_moodle_worksheet_of_a_class_of_folders_is_refused_with_the_fix(folder_class):
    with pytest.raises(UsageError) as refused:
        api.export(folder_class, "moodle", partial=True)
    assert "a Moodle worksheet finds each student by Moodle's participant id" in str(refused.value)
    assert "came from a class of folders (no Moodle id): pass the worksheet Moodle gives" in str(refused.value)


def test_a_canvas_gradebook_of_a_class_of_folders_says_at_once_that_it_has_no_canvas_ids(folder_class):
    """Whatever the column is called: the first refusal is the one that stands (naming the column
    as told used to lead to a second refusal, about the ids)."""
    for assignment in (None, "Lab 2 (12345)"):
        with pytest.raises(UsageError) as refused:
            api.export(folder_class, "canvas", partial=True, assignment=assignment)
        assert "came from a class of folders (no Canvas id)" in str(refused.value)
        assert "--assignment" not in str(refused.value)


def test_a_canvas_gradebook_without_an_assignment_id_is_refused_with_the_fix(tmp_path):
    out = tmp_path / "out"
    cli("grade", str(ROOT / "submissions" / "lms" / "canvas-cifar-convnet"), "--lab", "cifar-convnet", "--out",
        str(out), "--no-pdf", "--wall-time", "4")
    for assignment in (None, "Lab 2"):
        with pytest.raises(UsageError, match=r"finds the assignment by its id, or makes a new one: .*"
                                             r"--assignment \"Lab 2 \(12345\)\""):
            api.export(out, "canvas", partial=True, assignment=assignment)
    files, warnings = api.export(out, "canvas", partial=True, assignment="Lab 2 (12345)")
    assert cells(files["canvas-gradebook.csv"])[0][-1] == "Lab 2 (12345)"
    assert warnings[0].startswith("partial export:")


def test_a_self_checks_result_is_no_grade(tmp_path):
    out = tmp_path / "out"
    api.grade(CIFAR_SUBMISSIONS / "correct", "cifar-convnet", out, RunOptions(mode=Mode.check, reports=False),
              paths=[CIFAR_SUBMISSIONS / "correct"])
    with pytest.raises(UsageError, match=r"correct: a self-check \(the public checks only, as a student runs them\), "
                                         "not a grade"):
        api.export(out, "csv", partial=True)


def test_a_partial_export_says_in_each_row_what_is_pending(folder_class):
    files, warnings = api.export(folder_class, "csv", partial=True)
    table = cells(files["grades.csv"])
    alice = dict(zip(table[0], next(r for r in table if r[1] == "alice")))
    assert (alice["total"], alice["max"], alice["pending"]) == ("17", "20", "3 points pending: why-pooling (awaiting review)")
    assert warnings == ["partial export: 2 student(s)' totals count 2 written answer(s) awaiting review as not yet earned"]


def test_no_cell_a_student_named_is_a_formula_in_any_spreadsheet(folder_class, tmp_path):
    class_csv = cells((folder_class / "class.csv").read_text())
    grades = cells(api.export(folder_class, "csv", partial=True)[0]["grades.csv"])
    template = tmp_path / "worksheet.csv"
    template.write_text(f'Identifier,Full name,Grade,Maximum Grade,Feedback comments\n"Participant 9","{FORMULA.replace(chr(34), chr(34) * 2)}",,20,\n')
    moodle = cells(api.export(folder_class, "moodle", partial=True, template=template)[0]["moodle-grading-worksheet.csv"])
    for table in (class_csv, grades, moodle):
        every = [cell for row in table for cell in row]
        assert "'" + FORMULA in every, table  # the name is there, as text
        assert not [cell for cell in every if cell.startswith(("=", "+", "@", "\t", "\r"))], table
    assert ["15", "20", "75.0"] == [r for r in grades if r[1] == FORMULA or r[1] == "'" + FORMULA][0][2:5]


def test_markdown_from_what_a_student_controls_is_shown_as_text():
    from grader.export.cells import markdown

    assert markdown("![x](http://evil.example/a.png) [click](http://e) # big") == \
        r"\!\[x\]\(http://evil.example/a.png\) \[click\]\(http://e\) \# big"


@pytest.mark.parametrize("audience", ["Student", "students", "", "INSTRUCTOR", None])
def test_any_audience_but_the_instructors_own_reads_the_students_report(renderer, folder_class, audience):
    result = next(r for r in api.read_results(folder_class) if r.student.name == "alice")
    hidden = [c.title for c in result.checks if c.visibility.value == "hidden"]
    html = renderer.submission_html(result, audience)
    assert hidden and not any(title in html for title in hidden)
    assert all(title in renderer.submission_html(result, "instructor") for title in hidden)


def test_a_canvas_re_upload_is_graded_and_the_earlier_upload_named(tmp_path):
    """Canvas names a resubmitted file with a higher attachment id and a ``-1``: the newest is graded,
    compared as a number (``_101_…-1`` after ``_100_``, whatever the text sorts as)."""
    root = tmp_path / "canvas"
    root.mkdir()
    shutil.copy(CIFAR_SUBMISSIONS / "missing-floor" / "convnet.py", root / "smithjane_4242_100_convnet.py")
    shutil.copy(CIFAR_SUBMISSIONS / "correct" / "convnet.py", root / "smithjane_4242_101_convnet-1.py")
    shutil.copy(CIFAR_SUBMISSIONS / "correct" / "answers.yaml", root / "smithjane_4242_99_answers.yaml")
    shutil.copy(CIFAR_SUBMISSIONS / "correct" / "convnet.py", root / "doejohn_777_98_convnet.py")
    batch = api.grade(root, "cifar-convnet", tmp_path / "out", FAST)
    jane = next(r for r in batch.results if r.student.id == "4242")
    assert next(c for c in jane.checks if c.id == "conv-output-size").status.value == "passed"  # the newest file
    assert ("an earlier upload of convnet.py (Canvas attachment 100) was left out: the newest (attachment 101) "
            "is graded") in jane.notes


def test_an_export_whose_lab_cannot_be_found_never_drops_the_grades_given_by_hand(tmp_path):
    """Results of a lab of the instructor's own, graded by hand: without the lab, the rubric's points
    cannot be read, so the export refuses and asks for --lab instead of exporting without them."""
    from grader.review.store import ReviewStore

    essay = ROOT / "tests" / "labs" / "essay"
    root, out = tmp_path / "class", tmp_path / "out"
    folder = root / "ada"
    folder.mkdir(parents=True)
    (folder / "answers.yaml").write_text("n: 3\nwritten:\n  pooling: Invariance.\n  lr: It sets the step size.\n")
    api.grade(root, api.load_lab(essay), out, FAST)
    (ada,) = api.read_results(out, essay)
    for check in ada.awaiting_review:
        ReviewStore.beside(out).grade(check.id, {ada.submission: (check.details["answer_sha"], 0)}, [], "Seen.")
    refused = cli("export", str(out), "--to", "csv", "--partial")
    assert refused.exit_code == 2 and "written answers were graded by hand here" in refused.output
    assert "name the lab with --lab" in " ".join(refused.output.split())
    named = cli("export", str(out), "--to", "csv", "--lab", str(essay))
    assert named.exit_code == 0, named.output
