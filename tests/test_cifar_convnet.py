"""The cifar-convnet lab's static checks: every bundled hand-in gets the verdict it deserves."""

from __future__ import annotations

import pytest
import torch

from grader.results import Status
from tests.conftest import CIFAR_SUBMISSIONS, check_only, variant


def checks(result):
    return {c.id: c for c in result.checks}


def not_passed(result):
    """Checks not passed, written answers aside: they await a person (tests/test_review.py)."""
    return {c.id: c.status.value for c in result.checks if c.status not in (Status.passed, Status.awaiting_review)}


def test_the_written_question_awaits_review_and_its_points_are_pending_in_the_total(cifar_class):
    correct = cifar_class["correct"]
    pooling = next(c for c in correct.checks if c.id == "why-pooling")
    assert pooling.status == Status.awaiting_review and "invariance" in pooling.details["answer"]
    assert (correct.score, correct.max_score, correct.pending_points) == (17, 20, 3)


def test_the_reference_answer_sheet_agrees_with_the_reference_model(cifar_lab):
    """answers.yaml is data; this recomputes it from reference.py so the two cannot drift."""
    model = cifar_lab.reference.ConvNet()
    answers = cifar_lab.reference_answers
    shapes = []
    for layer in [*model.features, *model.classifier]:
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.Linear)):
            shapes.append(layer)
    x = torch.zeros(1, 3, 32, 32)
    names = ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "fc4", "fc5"]
    seen = []
    for layer in [*model.features, *model.classifier]:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.Linear)):
            seen.append((x.shape, sum(p.numel() for p in layer.parameters())))
    for name, (shape, params) in zip(names, seen):
        expected_shape = [shape[2], shape[3], shape[1]] if len(shape) == 4 else [shape[1]]
        assert answers["layers"][name] == {"output": expected_shape, "params": params}, name
    assert answers["total_params"] == sum(p.numel() for p in model.parameters()) == 1_191_170


def test_the_correct_hand_in_gets_full_marks(cifar_class):
    result = cifar_class["correct"]
    assert not_passed(result) == {}
    assert (result.score, result.max_score, result.pending_points) == (17, 20, 3)  # the written answer pending


def test_a_single_py_file_is_a_submission_and_its_missing_answers_are_named(cifar_class):
    result = cifar_class["solo"]
    assert all(c.status == Status.passed for c in result.checks if c.kind not in ("answer", "written"))
    assert all("no answers.yaml" in c.message for c in result.checks if c.kind == "answer")


@pytest.mark.parametrize("name, check, status, diagnosis, words", [
    ("in-channels-confusion", "layer-params", "partial", "in-channels-as-out-channels", "conv1 sees the 3 RGB channels"),
    ("spatial-as-kernel", "layer-params", "partial", "spatial-size-as-kernel", "uses the 32×32 image size as the kernel"),
    ("missing-plus-one", "conv-output-size", "failed", "missing-plus-one", "without the +1"),
    ("missing-plus-one", "layer-shapes", "partial", "missing-plus-one", "without the +1"),
    ("missing-floor", "conv-output-size", "failed", "missing-floor", "without the floor"),
    ("wrong-receptive-field", "receptive-field", "partial", "receptive-field-ignores-pool", "ignores pool1"),
])
def test_a_real_mistake_is_named_on_the_check_it_affects(cifar_class, name, check, status, diagnosis, words):
    c = checks(cifar_class[name])[check]
    assert c.status.value == status
    assert c.diagnosis == diagnosis
    assert words in c.message
    assert c.hint  # the lab's hint is shown when a check does not pass


def test_counts_without_biases_earn_the_declared_partial_credit(cifar_class):
    result = cifar_class["biases-forgotten"]
    assert not_passed(result) == {"layer-params": "partial", "total-params": "partial"}
    params = checks(result)["layer-params"]
    # 3 pool layers right, 5 layers at 50 %: (3 + 2.5) / 8 of 3 points.
    assert params.score == pytest.approx(3 * 5.5 / 8, abs=0.01)
    assert "accepted for 50%" in params.message and "not the biases (one per filter)" in params.message
    assert checks(result)["total-params"].score == 0.5


def test_a_wrong_answer_shows_expected_and_got(cifar_class):
    c = checks(cifar_class["in-channels-confusion"])["total-params"]
    assert c.status == Status.failed
    assert c.expected == {"total_params": 1191170} and c.got == {"total_params": 1265474}


@pytest.mark.parametrize("name, status, words", [
    ("syntax-error", Status.error, "your module could not be imported: SyntaxError: expected ':'"),
    ("infinite-loop-import", Status.timeout, "wall-time limit (an infinite loop at import time?)"),
    ("missing-class", Status.error, "`ConvNet` is missing from convnet.py"),
])
def test_a_broken_module_fails_only_the_checks_that_need_it(cifar_class, name, status, words):
    result = cifar_class[name]
    by_kind = {c.id: c for c in result.checks}
    needs_model = {"model-output-shape", "model-structure", "model-param-count", "model-finite"}
    for check_id in needs_model:
        assert by_kind[check_id].status == status and words in by_kind[check_id].message
    answer_checks = [c for c in result.checks if c.kind == "answer"]
    assert answer_checks and all(c.status == Status.passed for c in answer_checks)


def test_missing_class_still_grades_the_function(cifar_class):
    assert checks(cifar_class["missing-class"])["conv-output-size"].status == Status.passed


def test_wrong_padding_is_a_shape_error_inside_forward(cifar_class):
    result = checks(cifar_class["wrong-padding"])
    assert result["model-output-shape"].status == Status.error
    assert "Output size is too small (convnet.py, line 24, in forward)" in result["model-output-shape"].message
    assert "layer 1: expected Conv2d(3→32, k5, s1, p2), found Conv2d(3→32, k5, s1, p0)" in result["model-structure"].message
    assert result["model-param-count"].status == Status.passed


def test_a_memory_blowup_is_stopped_and_named(cifar_class):
    result = checks(cifar_class["memory-blowup"])
    for check_id in ("model-output-shape", "model-finite", "model-structure"):
        assert result[check_id].status == Status.error
        assert "ran out of memory" in result[check_id].message
    # Parameters are counted on the built module, so a forward pass that blows up does not cost them.
    assert result["model-param-count"].status == Status.passed


def test_a_malformed_answer_sheet_fails_only_the_answer_checks(cifar_class):
    result = cifar_class["bad-answer-sheet"]
    for c in result.checks:
        if c.kind == "answer":
            assert c.status == Status.error and "answers.yaml is not valid YAML at line 3" in c.message
        elif c.kind == "written":  # no answer could be read: it awaits review, and says why
            assert c.status == Status.awaiting_review and "not valid YAML at line 3" in c.message
        else:
            assert c.status == Status.passed


def test_an_answer_of_the_wrong_type_costs_its_own_share_only(cifar_class):
    """A one-field check with a mistyped answer is an error; in a two-field check it costs half."""
    assert not_passed(cifar_class["wrong-types"]) == {"total-params": "error", "receptive-field": "partial"}
    field = checks(cifar_class["wrong-types"])["receptive-field"]
    assert field.score == 0.5 and "1 of 2 answers right" in field.message
    assert "`receptive_field.conv2` should be int, got 'fourteen'" in field.message


def test_layers_called_as_functions_count_as_the_modules_they_stand_for(cifar_class):
    """`max_pool2d(relu(conv(x)), 2)`, imported by name, is the lab's network as much as modules are."""
    result = cifar_class["functional-style"]
    assert not_passed(result) == {}
    assert "MaxPool2d(k2, s2, p0)" in checks(result)["model-structure"].message


def test_a_functional_layer_of_the_wrong_kind_is_named(tmp_path):
    hand_in = variant(CIFAR_SUBMISSIONS / "functional-style", tmp_path / "avg-pool",
                      ("max_pool2d(relu(conv(x)), kernel_size=2)", "torch.nn.functional.avg_pool2d(relu(conv(x)), 2)"),
                      ("from torch import nn", "import torch\nfrom torch import nn"))
    check = check_only(hand_in, "cifar-convnet", "model-structure")["model-structure"]
    assert check["status"] == "failed"
    # The student sees their layer; the lab's (a max-pool's stride and padding) answers the sheet.
    assert "layer 2: AvgPool2d(k2, s2, p0) differs from the lab's network (another kind of layer)." in check["message"]


def test_a_list_that_only_refers_to_registered_layers_is_not_taken_for_unregistered_ones(tmp_path):
    """`self.layers = [self.conv1, …]` next to the attributes: the layers are registered, and traced once."""
    hand_in = variant(CIFAR_SUBMISSIONS / "correct", tmp_path / "view-list", (
        "        self.fc5 = nn.Linear(1000, 10)\n",
        "        self.fc5 = nn.Linear(1000, 10)\n        self.all_layers = [self.conv1, self.conv2, self.conv3, self.pool, self.fc4, self.fc5]\n"))
    result = check_only(hand_in, "cifar-convnet", "model-structure", "model-param-count")
    assert {k: c["status"] for k, c in result.items()} == {"model-structure": "passed", "model-param-count": "passed"}


def test_a_students_own_module_wrapping_a_functional_layer_is_that_layer(tmp_path):
    hand_in = variant(CIFAR_SUBMISSIONS / "correct", tmp_path / "wrapper",
                      ("class ConvNet(nn.Module):", "class Pool(nn.Module):\n    def forward(self, x):\n"
                       "        return F.max_pool2d(x, 2)\n\n\nclass ConvNet(nn.Module):"),
                      ("self.pool = nn.MaxPool2d(2, 2)", "self.pool = Pool()"))
    result = check_only(hand_in, "cifar-convnet", "model-structure")
    assert result["model-structure"]["status"] == "passed", result["model-structure"]["message"]
