"""Labs are data: manifests validate, bad ones are rejected with file, field and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grader.api import labs as find_labs
from grader.api import load_lab
from grader.errors import LabError
from grader.grading.engine import grade_one
from grader.options import RunOptions
from tests.conftest import TINY_LAB


def write_lab(tmp_path: Path, edit) -> Path:
    """A copy of the tiny lab with its manifest changed by ``edit(dict)``."""
    folder = tmp_path / "lab"
    folder.mkdir()
    for f in TINY_LAB.glob("*.*"):
        (folder / f.name).write_bytes(f.read_bytes())
    data = yaml.safe_load((TINY_LAB / "lab.yaml").read_text())
    edit(data)
    (folder / "lab.yaml").write_text(yaml.safe_dump(data))
    return folder


def test_bundled_labs_load_and_declare_points():
    labs = {lab.id: lab for lab in find_labs()}
    assert "cifar-convnet" in labs
    assert labs["cifar-convnet"].manifest.max_score == 20  # 17 auto-graded, 3 for the written "why pooling?"


def test_a_lab_that_exists_only_under_tests_grades_without_grader_changes():
    lab = load_lab(TINY_LAB)
    good = grade_one(lab, TINY_LAB / "subs" / "good")
    assert good.score == good.max_score == 5
    bad = grade_one(lab, TINY_LAB / "subs" / "bad")
    by_id = {c.id: c for c in bad.checks}
    assert by_id["square"].status == "failed" and by_id["square"].diagnosis == "doubled"
    assert "You doubled x" in by_id["square"].message
    assert by_id["arithmetic"].status == "failed"
    assert by_id["activation"].status == "error" and "must be one of relu, tanh, sigmoid" in by_id["activation"].message
    assert by_id["lin-params"].status == "failed" and by_id["lin-params"].got == 6 and by_id["lin-params"].expected == 8


def test_self_check_mode_runs_only_public_checks():
    result = grade_one(load_lab(TINY_LAB), TINY_LAB / "subs" / "good", RunOptions(mode="check"))
    assert [c.id for c in result.checks] == ["square", "arithmetic", "lin-params"]


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.pop("title"), ["lab.yaml", "title", "Field required"]),
    (lambda d: d["checks"][1].update(points="lots"), ["checks[1].points", "valid number", "'lots'"]),
    (lambda d: d["checks"][0].update(kind="telepathy"), ["checks[0].kind", "unknown check kind 'telepathy'", "function_table"]),
    (lambda d: d["checks"][0]["params"].update(rel_tol="tight"), ["checks[0].params.rel_tol", "'tight'"]),
    (lambda d: d["checks"][0]["params"].update(colour="red"), ["checks[0].params.colour", "Extra inputs"]),
    (lambda d: d.update(schema_version=9), ["schema_version", "newer than this gradelab reads"]),
    (lambda d: d["checks"][3]["params"].update(cls="Missing"), ["uses 'Missing'", "does not declare"]),
    (lambda d: d["checks"].append(dict(d["checks"][0])), ["check id 'square' appears twice"]),
    (lambda d: d.update(colour="red"), ["colour", "Extra inputs are not permitted"]),
])
def test_a_bad_manifest_is_rejected_naming_file_field_and_expectation(tmp_path, edit, words):
    folder = write_lab(tmp_path, edit)
    with pytest.raises(LabError) as info:
        load_lab(folder)
    for word in words:
        assert word in str(info.value)


def test_invalid_yaml_names_the_line(tmp_path):
    folder = write_lab(tmp_path, lambda d: None)
    (folder / "lab.yaml").write_text("id: tiny\nchecks: [\n")
    with pytest.raises(LabError, match=r"lab.yaml: line \d+: not valid YAML"):
        load_lab(folder)


def test_unknown_lab_lists_the_known_ones():
    with pytest.raises(LabError, match="no lab 'nope'.*cifar-convnet"):
        load_lab("nope")


def test_registering_a_kind_twice_is_refused():
    from grader.checks.registry import CheckKind, register_check

    with pytest.raises(ValueError, match="already registered"):
        @register_check("answer")
        class Again(CheckKind):
            def run(self, ctx, params):  # pragma: no cover
                raise AssertionError


@pytest.mark.parametrize("lab", ["cifar-convnet", "mlp-backprop", "vgg-batchnorm"])
def test_a_templates_sheet_names_the_exact_tags_the_notebook_reader_looks_for(lab):
    """A student moving the sheet or a written answer into a notebook needs the tag's id, not a
    description of it: `answers` for the sheet, the written check's id (or its `cell`) for the answer."""
    from grader.intake.notebooks import ANSWERS_TAG

    loaded = load_lab(lab)
    text = (loaded.folder / loaded.manifest.template / loaded.manifest.interface.answers_file).read_text()
    assert f"a raw cell with the tag `{ANSWERS_TAG}`" in text
    written = [c for c in loaded.manifest.checks if c.kind == "written"]
    assert written
    for check in written:
        tag = check.params.get("cell") or check.id
        assert f"a markdown cell with the tag `{tag}`, this question's id" in text
    assert "tagged with the question's id" not in text
