"""The safe reader: a hand-in is read without following what it points at, within caps, and each
thing left out is named on the hand-in, never an exception through the batch."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from grader.errors import SubmissionError
from grader.intake.reader import read_hand_in
from grader.lab.manifest import AnswerFieldSpec, IntakeLimits, InterfaceSpec
from grader.submission import load_submission
from tests.conftest import CIFAR_SUBMISSIONS, ROOT, cli

REFERENCE_ANSWERS = ROOT / "reference" / "cifar-convnet" / "answers.yaml"
IFACE = InterfaceSpec(module="convnet.py", answers=[AnswerFieldSpec(path="n", type="int")])


def hand_in(tmp_path: Path, name: str = "h") -> Path:
    folder = tmp_path / name
    shutil.copytree(CIFAR_SUBMISSIONS / "correct", folder)
    return folder


def test_a_linked_answer_sheet_is_not_followed_and_is_named(tmp_path):
    folder = hand_in(tmp_path)
    (folder / "answers.yaml").unlink()
    (folder / "answers.yaml").symlink_to(REFERENCE_ANSWERS)
    sub = load_submission(folder, IFACE)
    assert "answers.yaml was not read: symbolic links are not followed" in sub.answer_problems["n"]
    assert any("answers.yaml" in n and "symbolic links" in n for n in sub.notes)


@pytest.mark.parametrize("special", ["fifo", "dev-zero"])
def test_a_special_file_neither_blocks_nor_floods_the_grader(tmp_path, special):
    folder = hand_in(tmp_path)
    (folder / "answers.yaml").unlink()
    if special == "fifo":
        os.mkfifo(folder / "answers.yaml")
    else:
        (folder / "answers.yaml").symlink_to("/dev/zero")
    sub = load_submission(folder, IFACE)  # returns at once: no open() blocks, nothing is read unbounded
    assert "answers.yaml was not read" in sub.answer_problems["n"]


def test_a_module_linked_to_the_reference_is_not_graded_as_the_students(tmp_path):
    folder = hand_in(tmp_path)
    (folder / "convnet.py").unlink()
    (folder / "convnet.py").symlink_to(ROOT / "reference" / "cifar-convnet" / "reference.py")
    sub = load_submission(folder, IFACE)
    assert sub.module_file is None and "symbolic links are not followed" in sub.module_problem


@pytest.mark.parametrize("target", ["file", "folder"])
def test_a_hand_in_that_is_itself_a_link_is_refused(tmp_path, target):
    link = tmp_path / ("x.py" if target == "file" else "x")
    link.symlink_to(ROOT / "reference" / "cifar-convnet" / ("reference.py" if target == "file" else ""))
    with pytest.raises(SubmissionError, match="symbolic link"):
        read_hand_in(link)


def test_deep_nesting_many_files_and_a_sparse_file_are_capped(tmp_path):
    folder = hand_in(tmp_path)
    deep = folder
    for _ in range(30):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("x")
    with open(folder / "0-sparse.bin", "wb") as fh:
        fh.truncate(2 << 30)  # 2 GiB, no blocks on disk
    many = folder / "many"
    many.mkdir()
    for i in range(300):
        (many / f"{i}.txt").write_text("x")
    handin = read_hand_in(folder, IntakeLimits(max_depth=8, max_entries=200, max_file_mb=1))
    assert "convnet.py" in handin.files and "0-sparse.bin" not in handin.files
    assert handin.total_bytes < 1 << 20
    text = " ".join(handin.notes)
    assert "0-sparse.bin" in text and "files over 1 MB" in text
    assert "more than 200 files and folders" in text or "deeper than 8 levels" in text


def test_a_billion_laughs_answer_sheet_is_refused_in_a_moment(tmp_path):
    folder = hand_in(tmp_path)
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8))
    assert len(bomb) < 700
    (folder / "answers.yaml").write_text(bomb)
    sub = load_submission(folder, IFACE)
    assert "aliases (*name) are not accepted" in sub.answer_problems["n"]


def test_names_that_are_escape_sequences_are_printed_harmlessly(tmp_path):
    folder = hand_in(tmp_path)
    os.symlink("/etc/passwd", folder / "evil\x1b]0;pwned\x07")
    handin = read_hand_in(folder)
    assert not any("\x1b" in n or "\x07" in n for n in handin.notes)
    assert any("\\x1b]0;pwned\\x07" in n for n in handin.notes)


def test_the_grader_stages_only_what_it_read(tmp_path):
    """A link in the hand-in never reaches the child's folder: the child sees the bytes read."""
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "convnet.py").write_text(
        "import os\ndef conv_output_size(x, k, p, s):\n    return sorted(os.listdir('.'))\n")
    (folder / "stolen.yaml").symlink_to(REFERENCE_ANSWERS)
    result = json.loads(cli("check", str(folder), "--lab", "cifar-convnet", "--only", "conv-output-size",
                            "--format", "json").output)
    assert "stolen.yaml" not in result["checks"][0]["message"]
    assert any("stolen.yaml" in n and "symbolic links are not followed" in n for n in result["notes"])
