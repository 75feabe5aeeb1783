"""Likely slips on answer-sheet values, the same for every lab: each named with the field it is
about, never with the right value."""

from __future__ import annotations

import pytest

from grader.checks.answer_slips import likely_slip
from tests.conftest import CIFAR_SUBMISSIONS, check_only, variant


@pytest.mark.parametrize("answer, truth, diagnosis", [
    ([], [8, 8, 64], "empty-answer"),
    ("  ", "VGG_A", "empty-answer"),
    ([64, 8, 8], [8, 8, 64], "order-of-axes"),
    (62.0, 0.62, "percentage-not-fraction"),
    (0.62, 62.0, "fraction-not-percentage"),
    ([8, 8, 32], [8, 8, 64], None),
    (True, 1, None),
])
def test_each_slip_is_recognised_from_the_value_and_the_truth(answer, truth, diagnosis):
    slip = likely_slip("layers.pool2.output", answer, truth)
    assert (slip[0] if slip else None) == diagnosis
    if slip:
        assert slip[1].startswith("`layers.pool2.output`") and "64" not in slip[1]


def test_channels_first_and_an_empty_list_are_named_in_the_students_words(tmp_path):
    hand_in = variant(CIFAR_SUBMISSIONS / "correct", tmp_path / "slips")
    sheet = hand_in / "answers.yaml"
    text = sheet.read_text()
    for old, new in (("pool2: {output: [8, 8, 64]", "pool2: {output: [64, 8, 8]"),
                     ("conv3: {output: [8, 8, 64]", "conv3: {output: []")):
        assert old in text
        text = text.replace(old, new)
    sheet.write_text(text)
    result = check_only(hand_in, "cifar-convnet", "layer-shapes")["layer-shapes"]
    assert "`layers.pool2.output` = [64, 8, 8]: wrong — `layers.pool2.output` has the right numbers in another order: " \
           "channels first where the lab asks for them last" in result["message"]
    assert "`layers.conv3.output` is empty: an empty value is no answer" in result["message"]
    assert set(result["diagnoses"]) == {"order-of-axes", "empty-answer"}, result


@pytest.mark.parametrize("written", ["fc4: {output: [1000], params: 1,025,000}",  # flow: YAML splits it into keys
                                     "fc4:\n    output: [1000]\n    params: 1,025,000",  # block: a string
                                     "fc4: {output: [1000], params: 1 025 000}"])
def test_a_thousands_separator_is_named_on_its_field_never_as_a_wrong_value_or_stray_keys(tmp_path, written):
    import json

    from tests.conftest import cli

    hand_in = variant(CIFAR_SUBMISSIONS / "correct", tmp_path / "separators")
    sheet = hand_in / "answers.yaml"
    old = "fc4: {output: [1000], params: 1025000}"
    assert old in sheet.read_text()
    sheet.write_text(sheet.read_text().replace(old, written))
    result = json.loads(cli("check", str(hand_in), "--lab", "cifar-convnet", "--only", "layer-params",
                            "--only", "layer-shapes", "--format", "json").output)
    checks = {c["id"]: c for c in result["checks"]}
    shown = written.split("params: ")[1].rstrip("}")
    assert checks["layer-params"]["message"] == (
        f"7 of 8 answers right. answers: `layers.fc4.params` is written with thousands separators ({shown}), which "
        "YAML does not read as one number: write it without them (1025000).")
    assert checks["layer-params"]["diagnoses"] == ["thousands-separator"]
    assert checks["layer-shapes"]["status"] == "passed"  # the field beside it is still read
    everything = json.dumps(result)
    assert "is not a field" not in everything and "= 1: wrong" not in everything


def test_commas_between_a_lists_numbers_stay_a_list():
    """[1,025,000] is a list in YAML, and [64,128,256] must stay one: only a mapping's value is mended."""
    from grader.lab.manifest import InterfaceSpec
    from grader.submission import parse_answer_sheet

    interface = InterfaceSpec.model_validate({"module": "m.py", "answers": [
        {"path": "shape", "type": "list[int]"}, {"path": "n", "type": "int"}]})
    values, problems = parse_answer_sheet(b"{shape: [64,128,256], n: 12}", interface)
    assert values == {"shape": [64, 128, 256], "n": 12} and problems == {}
