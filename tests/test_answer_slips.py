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
