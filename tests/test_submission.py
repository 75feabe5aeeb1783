"""Reading a hand-in: module discovery and the answer sheet, validated field by field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.errors import SubmissionError
from grader.lab.manifest import AnswerFieldSpec, InterfaceSpec
from grader.submission import load_submission, read_answer_sheet, safe_name

IFACE = InterfaceSpec(module="net.py", answers=[
    AnswerFieldSpec(path="n", type="int"),
    AnswerFieldSpec(path="layers.conv1.output", type="list[int]"),
    AnswerFieldSpec(path="act", type="choice", choices=["relu", "tanh"]),
])


def sheet(tmp_path: Path, text: str) -> tuple[dict, dict]:
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    return read_answer_sheet(path, IFACE)


def test_a_well_formed_sheet_gives_typed_values(tmp_path):
    values, problems = sheet(tmp_path, "n: 3\nlayers: {conv1: {output: [32, 32, 3]}}\nact: relu\n")
    assert problems == {}
    assert values == {"n": 3, "layers.conv1.output": [32, 32, 3], "act": "relu"}


def test_each_bad_field_fails_alone_and_is_named(tmp_path):
    values, problems = sheet(tmp_path, "n: three\nlayers: {conv1: {output: [32, true]}}\n")
    assert "`n` should be int, got 'three'" in problems["n"]
    assert "layers.conv1.output" in problems["layers.conv1.output"]
    assert "`act` is missing" in problems["act"]
    assert values == {}


def test_a_choice_outside_the_list_is_named(tmp_path):
    _, problems = sheet(tmp_path, "n: 1\nlayers: {conv1: {output: [1]}}\nact: softmax\n")
    assert problems == {"act": "answers: `act` must be one of relu, tanh; got 'softmax'"}


@pytest.mark.parametrize("text, words", [
    ("n: [1, 2\n", "not valid YAML at line"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_an_unreadable_sheet_fails_every_field_with_one_reason(tmp_path, text, words):
    _, problems = sheet(tmp_path, text)
    assert set(problems) == {"n", "layers.conv1.output", "act"}
    assert all(words in p for p in problems.values())


def test_a_missing_sheet_is_named(tmp_path):
    _, problems = read_answer_sheet(tmp_path / "answers.yaml", IFACE)
    assert problems["n"] == "no answers.yaml in the submission"


def test_the_declared_module_is_found_or_the_only_py_file_used(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "mine.py").write_text("")
    assert load_submission(tmp_path / "a", IFACE).module_path.name == "mine.py"
    (tmp_path / "a" / "other.py").write_text("")
    sub = load_submission(tmp_path / "a", IFACE)
    assert sub.module_path is None and "no net.py in the submission (found: mine.py, other.py)" == sub.module_problem


def test_a_path_that_is_not_a_submission_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(SubmissionError, match="folder or a single .py"):
        load_submission(tmp_path / "notes.txt", IFACE)
    with pytest.raises(SubmissionError, match="no such file"):
        load_submission(tmp_path / "nothing", IFACE)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_sheet_text_gives_values_or_named_problems_never_a_traceback(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "answers.yaml"
    path.write_bytes(text.encode("utf-8", "replace"))
    values, problems = read_answer_sheet(path, IFACE)
    assert set(values) | set(problems) == {"n", "layers.conv1.output", "act"}


@given(st.text(min_size=1, max_size=80))
def test_any_folder_name_becomes_a_safe_file_name(name):
    cleaned = safe_name(name)
    assert cleaned and "/" not in cleaned and not cleaned.startswith(".")


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
_TREES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["n", "layers", "conv1", "output", "act", "x"]),
                                                 inner, max_size=4)), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(_TREES)
def test_any_well_formed_yaml_structure_gives_values_or_named_problems(tmp_path_factory, tree):
    """Valid YAML of any shape (a list where a mapping goes, a mapping where a number goes …)."""
    import yaml

    path = tmp_path_factory.mktemp("fuzz-tree") / "answers.yaml"
    path.write_text(yaml.safe_dump(tree))
    values, problems = read_answer_sheet(path, IFACE)
    assert set(values) | set(problems) == {"n", "layers.conv1.output", "act"}
    assert all(isinstance(p, str) and p for p in problems.values())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
                        min_size=1, max_size=30),
                min_size=1, max_size=5, unique=True))
def test_any_file_names_in_a_class_folder_are_discovered_or_skipped_never_a_crash(tmp_path_factory, names):
    from grader.submission import discover_submissions

    root = tmp_path_factory.mktemp("names")
    for name in names:
        if name in (".", ".."):
            continue
        try:
            (root / name).write_text("x = 1\n")
        except OSError:
            continue
    os.close(os.open(bytes(root) + b"/latin1-\xe9t\xe9.py", os.O_CREAT | os.O_WRONLY))  # not UTF-8
    found = discover_submissions(root)
    assert all(p.parent == root for p in found)
    assert all(safe_name(p.name) for p in found)
