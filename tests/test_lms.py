"""LMS downloads: Moodle's (folders, the legacy flat names, the zip itself) and Canvas's (files
side by side, LATE, resubmitted) are graded as the students they hold, each hand-in scoring what
the same bundled hand-in scores as a plain folder, with its LMS id and its name as typed."""

from __future__ import annotations

import importlib.util
import json
import zipfile

import pytest

from tests.conftest import FAST_LIMITS, ROOT, cli

LMS = ROOT / "submissions" / "lms"
_spec = importlib.util.spec_from_file_location("lms_build", LMS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


def grade(root, out, *extra):
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf",
                 "--wall-time", str(FAST_LIMITS["wall_s"]), *extra)
    results = {json.loads(p.read_text())["student"]["id"]: json.loads(p.read_text()) for p in out.glob("*.json")}
    return result, results


def moodle_zip(tmp_path):
    path = tmp_path / "Lab 2-Download all submissions.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(build.MOODLE.rglob("*")):
            if file.is_file():
                zf.write(file, file.relative_to(build.MOODLE).as_posix())
    return path


@pytest.mark.parametrize("download", ["moodle-folder", "moodle-zip", "canvas-folder"])
def test_every_student_of_an_lms_download_is_graded_as_who_they_are(download, tmp_path, cifar_class, moodle_graded):
    lms = "canvas" if download.startswith("canvas") else "moodle"
    if download == "moodle-folder":
        out, result, by_id = moodle_graded
    else:
        out = tmp_path / "out"
        result, by_id = grade(moodle_zip(tmp_path) if download == "moodle-zip" else build.CANVAS, out)
    assert f"({lms} layout)" in result.output
    assert sorted(by_id) == sorted(uid for uid, *_ in build.STUDENTS[lms])
    for uid, name, hand_in, how in build.STUDENTS[lms]:
        graded = by_id[uid]
        assert graded["student"]["name"] == name, how
        assert graded["student"]["late"] == ("late" in how), how
        if hand_in is None:
            assert graded["score"] == 0 and graded["checks"][0]["message"].startswith("nothing to grade"), how
        else:
            assert graded["score"] == cifar_class[hand_in].score and graded["max_score"] == 20, (name, how)
    assert result.exit_code == 3  # one student handed in nothing to grade
    rows = (out / "class.csv").read_text(encoding="utf-8")
    assert "654321," + ("Émile Noël" if lms == "moodle" else "noëlémile") in rows


def test_the_notebook_hand_in_says_which_cells_were_not_run(moodle_graded):
    notes = moodle_graded[2]["111111"]["notes"]
    assert "cell 2: !pip install torchvision not run by the grader (shell command)" in notes
    assert any(n.startswith("cell 8: top-level code not run by the grader (line 2: model = ConvNet())") for n in notes)
    assert "answers read from the cell of lab2.ipynb tagged 'answers'" in notes


def test_a_forced_layout_reads_the_download_as_it_says():
    from grader import api

    plan = api.plan(build.MOODLE, "cifar-convnet", "folders")
    students = {e.student.id for e in plan.entries}
    assert plan.layout.value == "folders" and "Kim Park_333333_assignsubmission_file" in students
    assert any(w.startswith("Zoë Adams_777777_assignsubmission_file_answers.yaml: not a hand-in") for w in plan.warnings)
    assert {e.student.id for e in api.plan(build.MOODLE, "cifar-convnet").entries} == {
        uid for uid, *_ in build.STUDENTS["moodle"]}


def test_an_unknown_layout_is_one_line_and_exit_code_two(tmp_path):
    result = cli("grade", str(build.MOODLE), "--lab", "cifar-convnet", "--out", str(tmp_path), "--layout", "blackboard")
    assert result.exit_code == 2 and "--layout 'blackboard' is not accepted: use auto, moodle, canvas, folders" in result.output


def test_the_bundled_downloads_are_what_build_py_makes():
    assert build.main(check=True) == 0
