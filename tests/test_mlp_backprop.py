"""The mlp-backprop lab: hand-written forward and backward passes checked against autograd,
the student's code trained by the grader's loop. Every bundled hand-in is graded once, through
the CLI, and each gets the verdict (and the named diagnosis) its mistake deserves."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torchvision

from grader.checks.values import relative_error, value_problem
from grader.data.digits import write_digits
from tests.conftest import ROOT, cli
from tests.conftest import checks_by_id as checks

SUBMISSIONS = ROOT / "submissions" / "mlp-backprop"



@pytest.fixture(scope="module")
def mlp_class(mlp_graded):
    """`gradelab grade submissions/mlp-backprop` (the session's ``mlp_graded``): {name: result dict}."""
    return {p.stem: json.loads(p.read_text()) for p in mlp_graded.glob("*.json")}



def not_passed(result):
    """Checks not passed, written answers aside: they await a person (tests/test_review.py)."""
    return {c["id"]: c["status"] for c in result["checks"] if c["status"] not in ("passed", "awaiting review")}


def test_every_bundled_hand_in_is_graded(mlp_class):
    assert set(mlp_class) == {p.name for p in SUBMISSIONS.iterdir() if p.is_dir()}


def test_the_correct_hand_in_gets_full_marks(mlp_class):
    result = mlp_class["correct"]
    assert not_passed(result) == {}
    assert (result["score"], result["max_score"], result["pending_points"]) == (19, 22, 3)  # written: pending


@pytest.mark.parametrize("name, check, status, diagnosis, words", [
    ("gradient-summed", "backward", "failed", "gradient-summed-not-averaged", "exactly N times autograd's"),
    ("dtanh-of-htilde", "backward", "partial", "dtanh-of-htilde", "(1 − h̃²) in place of (1 − h²)"),
    ("transposed-gradient", "backward", "partial", "gradient-transposed", "transpose of autograd's gradient"),
    ("dtanh-missing", "backward", "partial", "dtanh-missing",
     "∇Wh and ∇bh: these match the gradient without tanh′: δh = (δy·Wy) ⊙ (1 − h²)"),
    ("missing-bias-gradient", "backward", "partial", "bias-gradient-missing", "bias gradients are zero"),
    ("unstable-softmax", "softmax-stable", "failed", "unstable-softmax", "without subtracting the maximum"),
    ("training-diverges", "sgd", "failed", "sgd-uphill", "climbs the loss"),
    ("training-diverges", "train-circles", "failed", "diverged", "Training diverged"),
])
def test_a_real_mistake_is_named_on_the_check_it_affects(mlp_class, name, check, status, diagnosis, words):
    result = checks(mlp_class[name])[check]
    assert result["status"] == status, result["message"]
    assert result["diagnosis"] == diagnosis
    assert words in result["message"]


@pytest.mark.parametrize("name, lost", [
    ("gradient-summed", {"backward"}),
    ("dtanh-of-htilde", {"backward", "train-circles", "train-digits"}),
    ("missing-bias-gradient", {"backward", "train-circles"}),
    ("unstable-softmax", {"softmax-stable"}),
])
def test_a_flawed_hand_in_loses_exactly_the_checks_its_mistake_breaks(mlp_class, name, lost):
    assert set(not_passed(mlp_class[name])) == lost


def test_partial_credit_counts_the_gradients_that_are_right(mlp_class):
    assert checks(mlp_class["dtanh-of-htilde"])["backward"]["score"] == 2.0      # ∇Wy, ∇by right
    assert checks(mlp_class["transposed-gradient"])["backward"]["score"] == 3.0  # only ∇Wy wrong
    assert "∇Wh and ∇bh" in checks(mlp_class["dtanh-of-htilde"])["backward"]["message"]


def test_autograd_of_a_wrong_forward_does_not_pass_for_the_right_gradient(mlp_class):
    """The hand-in's backward differentiates its own (ReLU) forward with autograd: the sandbox
    sees autograd at work in it (a graph built, a backward pass run), which a hand-written
    backward may not use; its forward fails on its own."""
    result = checks(mlp_class["autograd-in-backward"])
    assert result["forward"]["status"] == "partial"          # h̃ is right, h, ỹ, ŷ are not
    assert "h̃" not in result["forward"]["message"].split(" differ")[0]
    assert result["backward"]["status"] == "failed" and result["backward"]["score"] == 0
    assert result["backward"]["diagnosis"] == "autograd-used"
    assert result["backward"]["message"].startswith("backward uses autograd (")


def test_a_transposed_gradient_stops_training_with_the_line_that_raised(mlp_class):
    result = checks(mlp_class["transposed-gradient"])["train-circles"]
    assert result["status"] == "error"
    assert result["message"].startswith("Training stopped: your code raised RuntimeError")
    assert "in sgd" in result["message"] and "mlp.py" in result["message"]


def test_training_results_carry_curves_for_the_report(mlp_class):
    details = checks(mlp_class["correct"])["train-circles"]["details"]
    assert len(details["curves"]["loss"]["train"]) == details["epochs"] == 150
    assert len(details["curves"]["accuracy"]["test"]) == 150
    assert details["test_accuracy"] >= details["threshold"] == 0.80
    assert details["curves"]["loss"]["train"][-1] < details["curves"]["loss"]["train"][0]


def test_backward_comparisons_land_in_the_result_for_the_report(mlp_class):
    rows = checks(mlp_class["dtanh-of-htilde"])["backward"]["details"]["comparisons"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["∇Wy"]["rel_error"] < 1e-12 < 1e-6 < by_name["∇Wh"]["rel_error"]


def test_the_reference_implementation_passes_every_code_check_under_the_same_budget(tmp_path):
    """Calibration: the lab's own reference, staged as a hand-in, reaches every training threshold."""
    result = cli("check", str(ROOT / "reference" / "mlp-backprop" / "reference.py"), "--lab", "mlp-backprop",
                 "--format", "json")
    data = json.loads(result.output)
    code = [c for c in data["checks"] if c["kind"] not in ("answer", "written")]
    assert [c["id"] for c in code if c["status"] != "passed"] == []
    for c in code:
        if c["kind"] == "training":
            assert c["details"]["test_accuracy"] >= c["details"]["threshold"] + 0.05, c["id"]


def test_test_labels_never_reach_the_child(probe_spy):
    """What the training check sends to the sandbox holds the test inputs, never their labels."""
    from grader.api import load_lab
    from grader.grading.engine import grade_one

    sent = probe_spy
    lab = load_lab("mlp-backprop")
    grade_one(lab, SUBMISSIONS / "correct")
    harness_calls = [p for n, p in sent if n == "harness"]
    assert len(harness_calls) == 5
    for payload in harness_calls:
        assert set(payload["args"]) >= {"train_x", "train_y", "test_x"}
        assert not any("test_y" in key or "label" in key for key in payload["args"])
    test_y = lab.reference.circles()["test_y"]
    assert not any(isinstance(v, np.ndarray) and v.shape == test_y.shape and np.array_equal(v, test_y)
                   for p in harness_calls for v in p["args"].values())


def test_the_digits_are_written_in_mnist_layout_and_read_by_torchvision(tmp_path):
    write_digits(tmp_path)
    train = torchvision.datasets.MNIST(str(tmp_path), train=True, download=False)
    test = torchvision.datasets.MNIST(str(tmp_path), train=False, download=False)
    assert tuple(train.data.shape) == (1500, 28, 28) and tuple(test.data.shape) == (297, 28, 28)
    assert set(train.targets.tolist()) == set(range(10)) == set(test.targets.tolist())
    assert train.data.dtype == torch.uint8 and int(train.data.max()) > 200
    assert int(train.data[:, :3, :].max()) == 0  # MNIST's blank frame around the digit


def test_an_instructor_points_the_lab_at_their_own_mnist(tmp_path):
    """--data-root is read by torchvision's MNIST loader; here a folder in MNIST's layout with 40 training images."""
    root = tmp_path / "data"
    write_digits(root)
    raw = root / "MNIST" / "raw"
    images = torchvision.datasets.mnist.read_image_file(str(raw / "train-images-idx3-ubyte"))
    labels = torchvision.datasets.mnist.read_label_file(str(raw / "train-labels-idx1-ubyte"))
    from grader.data.idx import write_idx

    write_idx(raw / "train-images-idx3-ubyte", images[:40].numpy())
    write_idx(raw / "train-labels-idx1-ubyte", labels[:40].numpy().astype(np.uint8))
    result = cli("check", str(SUBMISSIONS / "correct"), "--lab", "mlp-backprop", "--data-root", str(root),
                 "--only", "train-digits", "--format", "json")
    digits = checks(json.loads(result.output))["train-digits"]
    assert digits["details"]["train_size"] == 40
    assert "40 training examples" in digits["message"]


def test_a_data_root_without_the_data_set_is_one_clear_error(tmp_path):
    result = cli("check", str(SUBMISSIONS / "correct"), "--lab", "mlp-backprop", "--data-root", str(tmp_path),
                 "--only", "train-digits")
    assert result.exit_code == 2
    assert "data set 'digits' could not be loaded from" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("got, expected, problem", [
    (np.ones((1, 4)), np.ones(4), None),                       # a (1, n) bias for an (n,) one
    (np.ones((4, 3)), np.ones((3, 4)), "has shape (4, 3), expected shape (3, 4)"),
    (np.array([np.nan, 1.0]), np.array([0.5, 0.5]), "contains NaN or inf where the reference is finite"),
    (np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), None),
    (np.array([1.0, 2.5]), np.array([1.0, 2.0]), "differs from the reference"),
    ("text", np.ones(2), "is str, not numbers"),
])
def test_value_problems_are_named(got, expected, problem):
    found, _ = value_problem(got, expected, rel_tol=1e-6)
    assert (found is None) if problem is None else (problem in found)


def test_relative_error_is_scale_free_and_nan_aware():
    assert relative_error(np.array([2e-9]), np.array([1e-9])) == pytest.approx(0.5)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([np.nan]), np.array([1.0])) == float("inf")
    assert relative_error(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), equal_nan=True) == 0.0


def test_an_initialisation_without_the_0_3_scale_is_caught_by_its_spread(tmp_path):
    source = (SUBMISSIONS / "correct" / "mlp.py").read_text().replace("torch.randn(ny, nh) * 0.3", "torch.randn(ny, nh)")
    (tmp_path / "mlp.py").write_text(source)
    result = cli("check", str(tmp_path / "mlp.py"), "--lab", "mlp-backprop", "--only", "init", "--format", "json")
    init = checks(json.loads(result.output))["init"]
    assert init["status"] == "partial" and init["score"] == 0.75
    assert re.search(r"Wy has standard deviation (0\.9|1\.0)\d*, expected about 0\.(29|30)", init["message"])


def test_a_transposed_hidden_gradient_is_told_the_hidden_layers_shape(tmp_path):
    """The transpose diagnosis on ∇Wh cites ∇Wh's own shape, not only ∇Wy's formula."""
    from tests.conftest import check_only, variant

    hand_in = variant(SUBMISSIONS / "correct", tmp_path / "wh-transposed",
                      ('grads["Wh"] = torch.mm(delta_h.t(), outputs["X"])', 'grads["Wh"] = torch.mm(outputs["X"].t(), delta_h)'))
    result = check_only(hand_in, "mlp-backprop", "backward")["backward"]
    assert result["diagnosis"] == "gradient-transposed"
    assert "∇Wh: these are the transpose of autograd's gradient" in result["message"]
    assert "∇Wh = δhᵀ·x is (n_h, n_x)" in result["message"]
