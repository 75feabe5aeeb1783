"""A binary file where the lab expects text (the module, the answer sheet, a notebook's cell):
the student is told what is wrong with the file, never of a line that does not exist."""

from __future__ import annotations

import json

from tests.conftest import CIFAR_SUBMISSIONS, cli, variant

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4


def _check(hand_in, *only):
    args = ["check", str(hand_in), "--lab", "cifar-convnet", "--format", "json"]
    for check_id in only:
        args += ["--only", check_id]
    return {c["id"]: c for c in json.loads(cli(*args).output)["checks"]}


def test_a_binary_module_is_named_as_not_python_text_without_a_line(tmp_path):
    hand_in = variant(CIFAR_SUBMISSIONS / "correct", tmp_path / "binary-module")
    (hand_in / "convnet.py").write_bytes(ELF)
    said = _check(hand_in, "model-structure")["model-structure"]
    assert said["status"] == "error"
    assert said["message"] == (
        "your module could not be imported: SyntaxError: source code string cannot contain null bytes (it is not "
        "Python source text: a binary file, or text saved as UTF-16?) (convnet.py)")
    assert "line None" not in said["message"]


def test_a_binary_answer_sheet_names_the_character_it_stopped_at(tmp_path):
    hand_in = variant(CIFAR_SUBMISSIONS / "correct", tmp_path / "binary-sheet")
    (hand_in / "answers.yaml").write_bytes(ELF)
    said = _check(hand_in, "keep-size")["keep-size"]
    assert said["message"] == ("answers.yaml is not text YAML can read (character 1 is the control character U+007F: "
                               "a binary file?)")


def test_a_notebook_cell_with_a_nul_byte_is_a_cell_that_does_not_parse_without_a_line():
    # the parser's reason, as the notebook's notes quote it
    from grader.intake.notebooks import _parse

    assert _parse("x = 1\x00") == "source code string cannot contain null bytes"
    assert _parse("def f(:\n").startswith("line 1: ")
