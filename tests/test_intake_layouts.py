"""Hand-ins whose files sit one or two folders deep, in an archive inside a folder, or nowhere:
the work is found, two candidates are named rather than guessed between, and a hand-in with
nothing to grade says so."""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest

from grader.errors import NothingToGrade, SubmissionError
from grader.lab.manifest import AnswerFieldSpec, InterfaceSpec
from grader.submission import load_submission
from tests.conftest import CIFAR_SUBMISSIONS, cli

IFACE = InterfaceSpec(module="convnet.py", answers=[AnswerFieldSpec(path="total_params", type="int")])


def put(folder, *names):
    for name in names:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CIFAR_SUBMISSIONS / "correct" / name.rsplit("/", 1)[-1], target)


@pytest.mark.parametrize("prefix", ["lab2/", "Kim Park/lab2/"])
def test_files_one_or_two_folders_deep_are_found(tmp_path, prefix):
    put(tmp_path / "h", f"{prefix}convnet.py", f"{prefix}answers.yaml")
    (tmp_path / "h" / "__MACOSX" / "lab2").mkdir(parents=True)
    (tmp_path / "h" / "__MACOSX" / "lab2" / "._convnet.py").write_bytes(b"\x00")
    (tmp_path / "h" / ".DS_Store").write_bytes(b"Bud1")
    sub = load_submission(tmp_path / "h", IFACE)
    assert sub.module_file == "convnet.py" and sub.answers["total_params"] == 1191170
    assert f"your work was found in {prefix}" in sub.notes


def test_a_folder_holding_the_zipped_hand_in_is_unpacked(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in ("convnet.py", "answers.yaml"):
            zf.write(CIFAR_SUBMISSIONS / "correct" / name, f"lab2/{name}")
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "lab2.zip").write_bytes(buffer.getvalue())
    sub = load_submission(tmp_path / "h", IFACE)
    assert sub.module_source and "class ConvNet" in sub.module_source and not sub.answer_problems
    assert "lab2.zip was unpacked (2 files)" in sub.notes


def test_two_candidates_are_listed_not_guessed_between(tmp_path):
    put(tmp_path / "h", "v1/convnet.py", "v2/convnet.py")
    with pytest.raises(SubmissionError, match="two candidate hand-ins, each holding convnet.py: v1/, v2/"):
        load_submission(tmp_path / "h", IFACE)


def test_the_answer_sheet_above_the_module_is_read(tmp_path):
    put(tmp_path / "h", "answers.yaml", "code/convnet.py")
    sub = load_submission(tmp_path / "h", IFACE)
    assert sub.module_file == "convnet.py" and sub.answers["total_params"] == 1191170


def test_a_hand_in_with_nothing_to_grade_says_what_it_holds(tmp_path):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "report.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(NothingToGrade, match=r"nothing to grade: no convnet.py, no notebook \(.ipynb\) and no answers.yaml "
                                             r"in the hand-in \(found: report.pdf\)"):
        load_submission(tmp_path / "h", IFACE)


def test_a_batch_with_an_empty_hand_in_warns_and_exits_three(class_copy, tmp_path):
    root = class_copy("correct")
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("nothing yet")
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(tmp_path / "out"), "--no-pdf")
    assert result.exit_code == 3, result.output
    assert "Warning: empty (empty): nothing to grade" in result.output
    assert "1 submission(s) had nothing to grade (exit status 3)" in result.output
    rows = (tmp_path / "out" / "class.csv").read_text().splitlines()
    assert any(r.startswith("empty,") and ",no," in r for r in rows) and any(",yes," in r for r in rows)
