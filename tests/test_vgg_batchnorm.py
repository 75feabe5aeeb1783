"""The vgg-batchnorm lab: each example hand-in gets its verdict and the message that names its
mistake; the helpers are checked on objects the grader builds; both models train across learning
rates under the smoke budget, and the loss-band verdict compares the student's bands with what
the reference shows under the same budget (the cpu budget's verdicts are a `slow` test and the
benchmark)."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from tests.conftest import ROOT, check_only, cli, variant
from tests.conftest import checks_by_id as checks

LAB = ROOT / "reference" / "vgg-batchnorm"
SUBMISSIONS = ROOT / "submissions" / "vgg-batchnorm"
CORRECT = SUBMISSIONS / "correct"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every bundled hand-in, every check but training (`grade --no-train`)."""
    out = tmp_path_factory.mktemp("vgg-batchnorm")
    result = cli("grade", str(SUBMISSIONS), "--lab", "vgg-batchnorm", "--out", str(out), "--no-pdf", "--no-train")
    assert result.exit_code == 0, result.output
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def not_passed(result: dict) -> dict[str, str]:
    """Checks not passed, written answers aside: they await a person (tests/test_review.py)."""
    return {c["id"]: c["status"] for c in result["checks"] if c["status"] not in ("passed", "skipped", "awaiting review")}


def test_the_correct_hand_in_passes_every_check_but_training_which_grade_runs_by_default(graded):
    result = graded["correct"]
    assert not_passed(result) == {}
    bands = checks(result)["read-the-bands"]  # the written question waits for the instructor, answer kept
    assert bands["status"] == "awaiting review" and "smoother" in bands["details"]["answer"]
    assert checks(result)["train-landscape"]["status"] == "skipped"
    # + 1 for a-structure (VGG_A's own structure, issue 28)
    assert (result["score"], result["max_score"], result["pending_points"]) == (17, 24, 7)  # written, training


@pytest.mark.parametrize("name, check, status, diagnosis, words", [
    ("bn-after-relu", "bn-structure", "failed", "batchnorm-after-relu",
     ["layer 2: expected BatchNorm2d(64), found ReLU()", "Put it between the conv and its ReLU"]),
    # aligned layer lists (issue 28): the missing BatchNorm is named where it is missing
    ("bn-first-stage-only", "bn-structure", "failed", "batchnorm-first-stage-only",
     ["missing between layer 5 (Conv2d(64→128, k3, s1, p1)) and layer 6 (ReLU()): BatchNorm2d(128)",
      "Only the first stage is normalised"]),
    ("dropout-in-classifier", "bn-structure", "failed", None,
     ["unexpected layer after layer 31 (ReLU()): Dropout() (the lab's network has no Dropout)"]),
    ("missing-one-conv", "bn-structure", "failed", None,
     ["missing between layer 25 (ReLU()) and layer 26 (MaxPool2d(k2, s2, p0)): "
      "Conv2d(512→512, k3, s1, p1), BatchNorm2d(512), ReLU()"]),
    # a stub earns nothing: the weights afterwards count only alongside right values (issue 28)
    ("stub-bonus", "bonus-predictiveness", "failed", None,
     ["The weights afterwards: counted only alongside right values of the gradient distances (a function that never "
      "touches the model leaves them right too)."]),
    ("stub-bonus", "bonus-beta", "failed", None, ["The weights afterwards: counted only alongside right values of β"]),
    ("per-layer-norms", "bonus-predictiveness", "failed", "per-layer-norms-summed",
     ["the gradient distances: you add up one norm per layer (or per parameter tensor); the distance is the ℓ2 norm "
      "of the whole gradient difference"]),
    ("missing-one-conv", "bn-param-count", "failed", None,
     ["The lab's network has 2 more layer(s) with learnable parameters between `features.23` and `classifier.0`"]),
    ("bn-first-stage-only", "bn-param-count", "failed", None, ["9,751,050 learnable parameters; expected 9,756,426"]),
    ("batchnorm1d-on-conv-maps", "bn-structure", "error", "batchnorm1d-on-conv-maps",
     ["expected 2D or 3D input (got 4D input)", "BatchNorm2d normalises over the batch and both spatial"]),
    ("batchnorm1d-on-conv-maps", "bn-output-shape", "error", None, ["raised ValueError: expected 2D or 3D input"]),
    ("band-along-steps", "loss-band", "failed", "band-along-steps",
     ["the lower curve has shape (4,), expected shape (30,)", "one number per step"]),
    ("accuracy-batch-mean", "get-accuracy", "failed", "accuracy-batch-mean",
     ["the accuracy differs from the reference", "the last batch is smaller"]),
    ("accuracy-in-train-mode", "get-accuracy", "failed", "accuracy-in-train-mode",
     ["still in train mode", "Call model.eval() first"]),
    ("loss-tensor-kept", "train-loop", "partial", "loss-tensor-kept",
     ["each recorded loss is 'a tensor that keeps its graph', expected 'a number'", "memory grows with every step"]),
    ("stuck-in-eval", "bn-behaviour", "failed", "stuck-in-eval",
     ["not normalising with batch statistics", "does the model override train()"]),
])
def test_each_mistake_gets_its_verdict_and_the_message_that_names_it(graded, name, check, status, diagnosis, words):
    result = checks(graded[name])[check]
    assert result["status"] == status, result["message"]
    assert result["diagnosis"] == diagnosis
    for word in words:
        assert word in result["message"]


@pytest.mark.parametrize("name, lost", [
    ("bn-after-relu", {"bn-structure"}),  # as many parameters, and BatchNorm still uses batch statistics
    ("bn-first-stage-only", {"bn-structure", "bn-param-count"}),
    ("batchnorm1d-on-conv-maps", {"bn-structure", "bn-output-shape", "bn-behaviour"}),
    ("band-along-steps", {"loss-band"}),
    ("accuracy-batch-mean", {"get-accuracy"}),
    ("accuracy-in-train-mode", {"get-accuracy"}),
    ("loss-tensor-kept", {"train-loop"}),
    ("stuck-in-eval", {"bn-behaviour"}),
    ("dropout-in-classifier", {"bn-structure"}),  # BatchNorm still normalises with batch statistics
    ("missing-one-conv", {"bn-structure", "bn-param-count"}),
    ("stub-bonus", {"bonus-predictiveness", "bonus-beta"}),
    ("per-layer-norms", {"bonus-predictiveness"}),
])
def test_each_hand_in_loses_only_what_its_mistake_breaks(graded, name, lost):
    assert set(not_passed(graded[name])) == lost


def test_a_bonus_returning_tensors_that_keep_their_graph_is_diagnosed_not_detached(tmp_path):
    """Right values, still attached to autograd's graph: named, and that part alone costs its share."""
    hand_in = variant(SUBMISSIONS / "correct", tmp_path / "attached", (
        "    return [torch.norm(h - g).item() for h in moved]\n",
        "    anchor = 0 * sum(p.sum() for p in model.parameters())\n"
        "    return [torch.norm(h - g) + anchor for h in moved]\n"))
    result = check_only(hand_in, "vgg-batchnorm", "bonus-predictiveness", "bonus-beta")
    said = result["bonus-predictiveness"]
    assert (said["status"], said["diagnosis"], said["score"]) == ("partial", "not-detached", 0.67), said["message"]
    assert said["message"] == (
        "what it returns is 'tensors that keep their graph' on a small float64 network, distances 0.5 to 4 × 0.01. "
        "what it returns: you return tensors still attached to the autograd graph (requires_grad): each keeps the "
        "whole computation of its gradients alive. Return numbers (.item()), or detach them.")
    assert result["bonus-beta"]["status"] == "passed"


def test_a_random_layer_beside_batchnorm_is_not_read_as_batchnorm_not_normalising(graded):
    """Dropout in the classifier: the behaviour probe measures BatchNorm with dropout off, and the
    student hears about the dropout from the structure check, never that BatchNorm is broken."""
    from grader.results import SubmissionResult
    from grader.reveal import student_result

    shown = {c.id: c for c in student_result(SubmissionResult.model_validate(graded["dropout-in-classifier"])).checks}
    assert shown["bn-behaviour"].status.value == "passed"
    assert "Dropout()" in shown["bn-structure"].message and "no Dropout" in shown["bn-structure"].message
    assert "not normalising" not in " ".join(c.message for c in shown.values())


def test_a_missing_conv_is_named_where_it_is_missing_and_the_student_never_sees_the_count(graded):
    from grader.results import SubmissionResult
    from grader.reveal import student_result

    shown = {c.id: c for c in student_result(SubmissionResult.model_validate(graded["missing-one-conv"])).checks}
    assert shown["bn-param-count"].message == (
        "VGG_A_BatchNorm has 7,395,594 learnable parameters; it has fewer than the lab's model. "
        "The lab's network has 2 more layer(s) with learnable parameters between `features.23` and `classifier.0`.")
    assert "Conv2d(512→512, k3, s1, p1)" in shown["bn-structure"].message  # the architecture is the handout's


def test_a_wrong_parameter_count_says_which_way_without_giving_the_count(graded):
    """The count is the answer sheet's answer: the student hears 'fewer', never the number."""
    from grader.results import SubmissionResult
    from grader.reveal import student_result

    raw = SubmissionResult.model_validate(graded["bn-first-stage-only"])
    structure = next(c for c in student_result(raw).checks if c.id == "bn-structure")
    assert "Only the first stage is normalised" in structure.message  # the named mistake's explanation
    shown = next(c for c in student_result(raw).checks if c.id == "bn-param-count")
    assert "it has fewer than the lab's model" in shown.message
    said = shown.model_dump_json()
    assert "9,756,426" not in said and "9756426" not in said and "5,376" not in said
    result = checks(graded["bn-first-stage-only"])["bn-param-count"]
    assert result["expected"] == 9_756_426 and result["got"] == 9_751_050  # instructors still see both


NO_CONV_BIAS = ("nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.BatchNorm2d(v)",
                "nn.Conv2d(channels, v, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(v)")
BN1D_CLASSIFIER = ("""            nn.Linear(512 * 1 * 1, 512), nn.ReLU(True),
            nn.Linear(512, 512), nn.ReLU(True),
            nn.Linear(512, num_classes))
        init_weights_(self)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(-1, 512 * 1 * 1))


def get_accuracy""", """            nn.Linear(512 * 1 * 1, 512), nn.BatchNorm1d(512), nn.ReLU(True),
            nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(True),
            nn.Linear(512, num_classes))
        init_weights_(self)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(-1, 512 * 1 * 1))


def get_accuracy""")
NUMPY_BAND = ("""    steps = max(len(run) for run in runs)
    min_curve, max_curve = [], []
    for t in range(steps):
        at_t = [run[t] for run in runs if len(run) > t]
        min_curve.append(min(at_t))
        max_curve.append(max(at_t))
    return min_curve, max_curve""", """    import numpy as np
    runs = np.array(runs)
    return runs.min(axis=0), runs.max(axis=0)""")
NO_ZERO_GRAD = ("            optimizer.zero_grad()\n", "")
SHEET = "params: {vgg_a: 9747136, vgg_a_batchnorm: 9753674}\nband: {lower: VGG_A_BatchNorm, narrower: VGG_A}\n"


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """Other ways a student could write the correct hand-in, right or wrong, graded in one batch
    on the checks they concern."""
    from grader import api
    from grader.options import RunOptions

    root = tmp_path_factory.mktemp("variants") / "class"
    root.mkdir()
    variant(CORRECT, root / "no-conv-bias", NO_CONV_BIAS)
    variant(CORRECT, root / "bn1d-classifier", BN1D_CLASSIFIER)
    variant(CORRECT, root / "numpy-band", NUMPY_BAND)
    variant(CORRECT, root / "no-zero-grad", NO_ZERO_GRAD)
    (variant(CORRECT, root / "sheet") / "answers.yaml").write_text(SHEET)
    only = ("bn-structure", "bn-param-count", "bn-behaviour", "train-loop", "loss-band", "answers-params", "answers-band")
    batch = api.grade(root, "vgg-batchnorm", root.parent / "out", RunOptions(only=only, train=False, reports=False))
    return {r.submission: {c.id: c for c in r.checks} for r in batch.results}


@pytest.mark.parametrize("name, words", [
    ("no-conv-bias", "9,753,674 learnable parameters: convs without bias before BatchNorm: equally right"),
    ("bn1d-classifier", "9,758,474 learnable parameters: accepted with a note: BatchNorm1d after the two hidden"),
])
def test_equally_right_models_earn_full_credit_with_a_note(variants, name, words):
    result = variants[name]
    assert {k: result[k].status.value for k in ("bn-param-count", "bn-structure", "bn-behaviour")} == \
        {"bn-param-count": "passed", "bn-structure": "passed", "bn-behaviour": "passed"}
    assert words in result["bn-param-count"].message


def test_answer_sheet_alternatives_and_named_mistakes(variants):
    params, band = variants["sheet"]["answers-params"], variants["sheet"]["answers-band"]
    assert params.status.value == "partial" and params.score == 1.0 and params.diagnoses == ["biases-forgotten"]
    assert "`params.vgg_a_batchnorm` = 9753674: accepted — right for convs without bias" in params.message
    assert band.status.value == "partial" and band.score == 0.5


def test_a_band_that_cannot_take_runs_of_unequal_length_is_an_error_on_that_case(variants):
    result = variants["numpy-band"]["loss-band"]
    assert result.status.value == "error"
    assert "raised ValueError" in result.message and "one stopped after 15 of 24 steps" in result.message


def test_train_without_zero_grad_is_named_from_the_numbers(variants):
    result = variants["no-zero-grad"]["train-loop"]
    assert result.status.value == "partial" and result.diagnosis == "gradients-accumulate", result.message
    assert "Call optimizer.zero_grad() before each backward()" in result.message


# --- the loss bands -----------------------------------------------------------------------------------

def test_the_graders_band_spans_the_longest_run_and_a_nan_leaves_it_unbounded():
    from grader.checks.training_comparison import band_summary, loss_band

    low, high = loss_band([[3.0, 2.0, 1.0], [2.0, 2.5], [4.0, 1.0, 0.5]])
    assert (low, high) == ([2.0, 1.0, 0.5], [4.0, 2.5, 1.0])
    assert band_summary(low, high) == pytest.approx(((3.0 + 1.75 + 0.75) / 3, (2.0 + 1.5 + 0.5) / 3))
    low, high = loss_band([[2.0, math.nan], [2.0, 1.0]])
    assert math.isnan(high[1]) and band_summary(low, high) == (math.inf, math.inf)


def _landscape_params():
    from grader.api import load_lab

    return next(c.params for c in load_lab("vgg-batchnorm").checks if c.spec.id == "train-landscape")


def _details(level_ratio: float, width_ratio: float, accuracy: float = 0.5) -> dict:
    return {"accuracy_lr": 1e-3, "steps": 64, "test_accuracy": accuracy, "learning_rates": [1e-3, 1e-4],
            "bands": {"panels": {"your models": {}}},
            "band_metrics": {"level": {"VGG-A": 2.0, "VGG-A + BatchNorm": 2.0 * level_ratio},
                             "width": {"VGG-A": 0.5, "VGG-A + BatchNorm": 0.5 * width_ratio},
                             "level_ratio": level_ratio, "width_ratio": width_ratio,
                             "max_level_ratio": 0.8, "max_width_ratio": 0.6,
                             "reference_level_ratio": 0.65, "reference_width_ratio": 0.45}}


@pytest.mark.parametrize("level, width, status, diagnoses, words", [
    (0.6, 0.4, "passed", [], "Its loss band is lower (level 1.200 against 2.000 for VGG-A: a ratio of 0.60"),
    (0.6, 0.95, "partial", ["band-not-narrower"], "not narrower by what BatchNorm should give (width 0.475 against "
                                                  "0.500 for VGG-A: a ratio of 0.95, below 0.60 needed; the "
                                                  "reference's is 0.45 under this budget)"),
    (1.02, 1.0, "partial", ["band-not-lower", "band-not-narrower"], "check that the normalisation runs in train mode"),
])
def test_the_band_verdict_compares_ratios_with_the_calibrated_limits(level, width, status, diagnoses, words):
    from grader.checks.training_comparison import TrainingComparisonCheck

    params = _landscape_params()
    outcome = TrainingComparisonCheck.verdict(params, _details(level, width), 0.5, 0.3, "cpu")
    assert outcome.status.value == status and outcome.diagnoses == diagnoses
    assert words in outcome.message
    assert outcome.fraction == pytest.approx((3 - len(diagnoses)) / 3)


def test_calibration_sets_limits_from_the_worst_seed_and_judges_only_what_every_seed_shows():
    from grader.checks.training_comparison import TrainingComparisonCheck

    params = _landscape_params()
    one = TrainingComparisonCheck.calibration_extras(params, [_details(0.5, 0.9)], margin=0.2)
    assert one["max_level_ratio"] == 0.65 and one["max_width_ratio"] == 1.0  # held below 1: it is shown
    assert one["judge_level"] and one["judge_width"] and one["shows_comparison"]
    two = TrainingComparisonCheck.calibration_extras(params, [_details(0.5, 0.9), _details(0.55, 1.3)], margin=0.2)
    assert two["reference_level_ratios"] == [0.5, 0.55] and two["max_level_ratio"] == 0.7 and two["judge_level"]
    assert two["max_width_ratio"] == 1.45 and not two["judge_width"] and not two["shows_comparison"]


def test_a_part_the_budget_cannot_show_is_not_judged_and_says_so():
    from grader.checks.training_comparison import TrainingComparisonCheck

    details = _details(0.6, 1.9)
    details["band_metrics"].update(judge_width=False, reference_width_ratio=1.89)
    outcome = TrainingComparisonCheck.verdict(_landscape_params(), details, 0.5, 0.3, "cpu")
    assert outcome.status.value == "passed" and outcome.fraction == 1.0 and outcome.diagnoses == []
    assert "Whether its band is narrower is not judged under this budget" in outcome.message
    assert "(up to 1.89 of VGG-A's)" in outcome.message and "(yours: 1.90)" in outcome.message
    outcome = TrainingComparisonCheck.verdict(_landscape_params(), _details(1.1, 1.9) | {"band_metrics": {
        **_details(1.1, 1.9)["band_metrics"], "judge_width": False}}, 0.5, 0.3, "cpu")
    assert outcome.status.value == "partial" and outcome.fraction == 0.5 and outcome.diagnoses == ["band-not-lower"]


# --- training, smoke budget -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke():
    """The correct hand-in trained under the smoke budget and seed 0, with every probe the grader
    sends recorded; and the lab's smoke calibration (`gradelab calibrate vgg-batchnorm --budget
    smoke --seed 0 --seed 1 --seed 2`), whose first seed is 0."""
    from grader.api import load_lab
    from grader.grading.context import SubmissionSession
    from grader.grading.engine import grade_one
    from grader.options import RunOptions

    sent: list[tuple[str, dict]] = []
    real = SubmissionSession.probe
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SubmissionSession, "probe",
                      lambda self, name, payload, limits: sent.append((name, payload)) or real(self, name, payload, limits))
        result = grade_one(load_lab("vgg-batchnorm"), CORRECT, RunOptions(only=("train-landscape",), train=True,
                                                                          budget="smoke", device="cpu", seed=0))
    entry = yaml.safe_load((LAB / "calibration.yaml").read_text())["train-landscape"]["smoke"]
    return {"entry": entry, "check": json.loads(result.checks[0].model_dump_json()), "sent": sent, "result": result}


def test_the_calibration_records_each_seeds_ratios_the_limits_and_the_references_bands(smoke):
    entry = smoke["entry"]
    assert entry["seeds"] == [0, 1, 2] and entry["seed"] == 0 and entry["learning_rates"] == [1e-4, 5e-4]
    assert set(entry["reference_bands"]) == {"VGG-A", "VGG-A + BatchNorm"}
    assert all(len(band["low"]) == len(band["high"]) == 6 for band in entry["reference_bands"].values())
    for key in ("level", "width"):
        worst = max(entry[f"reference_{key}_ratios"])
        assert entry[f"reference_{key}_ratio"] == worst and entry[f"judge_{key}"] == (worst < 1)
        assert entry[f"max_{key}_ratio"] == pytest.approx(min(worst + 0.15, 1.0) if worst < 1 else worst + 0.15,
                                                          abs=1e-3)


def test_the_correct_hand_in_trains_as_the_reference_does_and_passes(smoke):
    """Same seed, same layers built in the same order: the student's runs are the reference's under
    seed 0, so its ratios and bands are the ones calibrate recorded for that seed (a changed loop
    or data set that was not recalibrated fails here)."""
    entry, check = smoke["entry"], smoke["check"]
    assert check["status"] == "passed", check["message"]
    m = check["details"]["band_metrics"]
    assert m["level_ratio"] == pytest.approx(entry["reference_level_ratios"][0], abs=1e-3)
    assert m["width_ratio"] == pytest.approx(entry["reference_width_ratios"][0], abs=1e-3)
    assert m["max_level_ratio"] == entry["max_level_ratio"] and check["details"]["budget"] == "smoke"
    assert "is not judged under this budget" in check["message"]  # smoke shows neither part under every seed
    panels = check["details"]["bands"]["panels"]
    assert list(panels) == ["your models", "reference, same budget"]  # the student's bands beside the reference's
    for model, band in panels["your models"].items():
        assert band["low"] == pytest.approx(entry["reference_bands"][model]["low"], abs=1e-3)
    curve = check["details"]["curves"]["test accuracy, lr 0.0001"]
    assert len(curve["VGG-A"]) == len(curve["VGG-A + BatchNorm"]) == len(curve["steps"]) == 2


def test_the_harness_never_gets_the_test_labels_and_trains_each_model_at_each_rate(smoke):
    runs = [payload["args"] for name, payload in smoke["sent"] if name == "harness"]
    assert sorted((a["model"], a["lr"]) for a in runs) == sorted(
        (m, lr) for m in ("VGG_A", "VGG_A_BatchNorm") for lr in (1e-4, 5e-4))
    assert all("test_y" not in a and a["seed"] == 0 and a["device"] == "cpu" for a in runs)
    assert all(a["evals"] == (2 if a["lr"] == 1e-4 else 1) for a in runs)  # accuracy curves at the main rate only


def test_the_report_draws_both_bands_beside_the_references(renderer, smoke):
    html = renderer.submission_html(smoke["result"], "student")
    assert 'alt="Training: VGG-A and VGG-A + BatchNorm across learning rates: loss bands"' in html
    assert html.count("data:image/png;base64,") == 2  # the bands, and the accuracy curves


@pytest.mark.slow
def test_on_the_cpu_budget_the_correct_hand_in_passes_and_a_model_stuck_in_eval_does_not(tmp_path):
    """Minutes: both hand-ins trained as an instructor would grade them."""
    def landscape(name):
        return json.loads(cli("check", str(SUBMISSIONS / name), "--lab", "vgg-batchnorm", "--train", "--budget", "cpu",
                              "--device", "cpu", "--only", "train-landscape", "--format", "json").output)["checks"][0]

    good, stuck = landscape("correct"), landscape("stuck-in-eval")
    assert good["status"] == "passed", good["message"]
    assert stuck["status"] != "passed", stuck["message"]
    assert stuck["details"]["test_accuracy"] < stuck["details"]["threshold"]  # BatchNorm that never normalises


NOISE = '''

class Noise(nn.Module):
    """Gaussian noise in training: random, but no dropout."""

    def forward(self, x):
        return x + 0.1 * torch.randn_like(x) if self.training else x
'''


def test_a_module_random_with_dropout_off_is_named_instead_of_blaming_batchnorm(tmp_path):
    hand_in = variant(CORRECT, tmp_path / "noise", (
        "            nn.Linear(512, 512), nn.ReLU(True),\n            nn.Linear(512, num_classes))\n        init_weights_(self)\n\n    def forward(self, x):\n        x = self.features(x)\n        return self.classifier(x.view(-1, 512 * 1 * 1))\n\n\ndef get_accuracy",
        "            nn.Linear(512, 512), nn.ReLU(True), Noise(),\n            nn.Linear(512, num_classes))\n        init_weights_(self)\n\n    def forward(self, x):\n        x = self.features(x)\n        return self.classifier(x.view(-1, 512 * 1 * 1))\n" + NOISE + "\n\ndef get_accuracy"))
    result = check_only(hand_in, "vgg-batchnorm", "bn-behaviour")["bn-behaviour"]
    assert result["status"] == "failed" and result["diagnosis"] == "random-module"
    assert ("In train mode, two passes over the same batch differ even with dropout off: classifier.4 (Noise) draws "
            "random numbers") in result["message"]
    assert "not normalising" not in result["message"]


def test_the_bands_rubric_has_the_misconception_students_write_and_a_partial_reading():
    from grader.api import load_lab

    lab = load_lab("vgg-batchnorm")
    rubric = {i.id: i for i in next(c for c in lab.checks if c.spec.id == "read-the-bands").params.rubric}
    assert rubric["reads-half-the-figure"].points == 0.5 and "but not that it is also narrower" in \
        rubric["reads-half-the-figure"].comment
    assert rubric["larger-gradient-change"].points == 0
    assert "BatchNorm makes the gradient change less, not more" in rubric["larger-gradient-change"].comment
