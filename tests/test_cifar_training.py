"""The cifar-training lab: structural checks name each improvement done wrong (no training needed),
and the training checks run the grader's loop in the sandbox, on a tiny budget here (the full CPU
budget is measured in `python -m bench`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torchvision

from tests.conftest import ROOT, check_only, cli, variant
from tests.conftest import checks_by_id as checks

SUBMISSIONS = ROOT / "submissions" / "cifar-training"
TRAINING = {"train-baseline", "train-normalized", "train-augmented", "train-momentum", "train-dropout",
            "train-batchnorm"}


@pytest.fixture(scope="module")
def structural(tmp_path_factory):
    """Every bundled hand-in, all checks but training (`grade --no-train`)."""
    out = tmp_path_factory.mktemp("cifar-training")
    result = cli("grade", str(SUBMISSIONS), "--lab", "cifar-training", "--out", str(out), "--no-pdf", "--no-train")
    assert result.exit_code == 0, result.output
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def test_the_correct_hand_in_passes_every_structural_check(structural):
    result = structural["correct"]
    assert {c["id"]: c["status"] for c in result["checks"] if c["status"] != "passed"} == \
        {t: "skipped" for t in TRAINING}
    # one scale: the training checks not run are pending, their points in the maximum
    assert (result["score"], result["max_score"], result["pending_points"]) == (13, 25, 12)


@pytest.mark.parametrize("name, check, diagnosis, words", [
    ("dropout-after-fc5", "dropout-placement", None, "layer 12: expected Dropout(p=0.5), found Linear(1000→10)"),
    ("stats-from-test-set", "stats-from-train", "stats-from-test-set", "test set's statistics"),
    ("augment-at-test-time", "test-transform", "augmentation-at-test-time", "two different results for the same input"),
    ("no-nonlinearity", "activations", "no-nonlinearity", "applies 0 activation functions"),
    ("stuck-in-eval", "dropout-behaviour", "stuck-in-eval", "dropout is not active during training"),
    ("stuck-in-eval", "batchnorm-behaviour", "stuck-in-eval", "not normalising with batch statistics"),
    ("dropout-always-on", "dropout-behaviour", "dropout-active-in-eval", "F.dropout(x, p, training=self.training)"),
    ("layers-in-a-list", "param-count", "unregistered-modules",
     "keeps modules in a plain list or dict (self.blocks): PyTorch does not register them"),
    ("layers-in-a-list", "batchnorm-behaviour", "unregistered-modules", "model.train() and model.eval() do not reach them"),
    ("bn-after-relu", "batchnorm-placement", "batchnorm-after-relu",
     "layer 2: expected BatchNorm2d(32), found ReLU(). Your BatchNorm comes after the ReLU"),
    ("dropout-p-0.2", "dropout-placement", None, "layer 12: expected Dropout(p=0.5), found Dropout(p=0.2)"),
    ("augment-per-batch", "train-transform", "augmentation-per-batch",
     "every image of a batch of 64 copies of one image the same crop and flip"),
    ("softmax-output", "activations", "softmax-output",
     "The forward pass returns probabilities (each row is positive and sums to 1): nn.CrossEntropyLoss applies "
     "log-softmax itself"),
])
def test_each_improvement_done_wrong_fails_the_check_that_names_it(structural, name, check, diagnosis, words):
    result = checks(structural[name])[check]
    assert result["status"] == "failed", result["message"]
    assert result["diagnosis"] == diagnosis
    assert words in result["message"]


@pytest.mark.parametrize("name, lost", [
    ("dropout-after-fc5", {"dropout-placement"}),
    ("stats-from-test-set", {"stats-from-train"}),
    ("augment-at-test-time", {"test-transform"}),
    # ReLU is typed by the structure checks (issue 28): without it the network differs from the lab's there too
    ("no-nonlinearity", {"activations", "dropout-placement", "batchnorm-placement"}),
    ("stuck-in-eval", {"dropout-behaviour", "batchnorm-behaviour"}),
    ("dropout-always-on", {"dropout-behaviour"}),  # a functional dropout between fc4 and fc5 is in its place
    ("layers-in-a-list", {"param-count", "batchnorm-behaviour"}),  # the layers are right, and run in order
    ("nan-loss", set()),
    ("bn-after-relu", {"batchnorm-placement"}),
    ("dropout-p-0.2", {"dropout-placement"}),
    ("stacked-improvements", set()),
    ("softmax-output", {"activations"}),
    ("augment-per-batch", {"train-transform"}),  # the BatchNorm model keeps its dropout, as real reports do
    ("missing-momentum", {"optimizer"}),
    ("scheduler-per-batch", {"training-loop"}),
])
def test_structural_checks_lose_only_what_the_mistake_breaks(structural, name, lost):
    assert {c["id"] for c in structural[name]["checks"] if c["status"] not in ("passed", "skipped")} == lost


def test_stacked_improvements_pass_batchnorms_checks_with_a_note_in_the_students_words(structural):
    from grader.results import SubmissionResult
    from grader.reveal import student_result

    shown = {c.id: c for c in student_result(SubmissionResult.model_validate(structural["stacked-improvements"])).checks}
    assert shown["batchnorm-placement"].status.value == "passed"
    assert shown["batchnorm-placement"].message == (
        "All 15 layers match (the BatchNorm model keeps the dropout of the previous step: the improvements stacked, "
        "as the lab allows).")
    assert shown["batchnorm-behaviour"].status.value == "passed"


def test_the_labs_own_model_with_every_improvement_uses_batch_statistics_in_training():
    """ConvNet(dropout=True, batchnorm=True): dropout does not hide BatchNorm from the probe."""
    from grader.lab.loader import load_lab
    from grader.sandbox.probes import mode_behaviour_of

    reference = load_lab("cifar-training").reference
    torch.manual_seed(0)
    seen = mode_behaviour_of(reference.ConvNet(dropout=True, batchnorm=True), torch.randn(8, 3, 32, 32))
    assert seen["train_batch_dependent"] is True and seen["train_repeat_differs"] is True
    assert seen["eval_batch_dependent"] is False and seen["random_with_dropout_off"] is None


def test_a_students_check_skips_training_unless_asked(tmp_path):
    quick = json.loads(cli("check", str(SUBMISSIONS / "correct"), "--lab", "cifar-training", "--only", "train-baseline",
                           "--format", "json").output)
    assert checks(quick)["train-baseline"]["status"] == "skipped"
    assert (quick["score"], quick["max_score"], quick["pending_points"]) == (0, 2, 2)
    assert "--train" in checks(quick)["train-baseline"]["message"]


def test_training_runs_in_the_sandbox_and_records_budget_device_and_curves(probe_spy):
    from grader.api import load_lab
    from grader.grading.engine import grade_one
    from grader.options import RunOptions

    sent = probe_spy
    result = grade_one(load_lab("cifar-training"), SUBMISSIONS / "correct",
                       RunOptions(only=("train-momentum",), train=True, budget="smoke", device="cpu"))
    check = result.checks[0]
    assert check.status.value == "passed", check.message
    assert result.device == "cpu" and check.details["device"] == "cpu" and check.details["budget"] == "smoke"
    assert "(smoke budget)" in check.message
    assert len(check.details["curves"]["loss"]["train"]) == check.details["epochs"] == 1
    args = next(p for n, p in sent if n == "harness")["args"]
    assert {"train_x", "train_y", "test_x"} <= set(args) and "test_y" not in args
    assert args["momentum"] == 0.9 and args["gamma"] == 0.95 and args["device"] == "cpu"
    assert args["train_x"].dtype == np.uint8 and args["train_x"].shape[1:] == (3, 32, 32)


def test_a_rerun_trains_the_same_network_to_the_same_verdict():
    """Seeds are fixed and recorded: the same hand-in, budget and seed give the same curves and accuracy."""
    def run(seed):
        result = json.loads(cli("check", str(SUBMISSIONS / "correct"), "--lab", "cifar-training", "--train",
                                "--budget", "smoke", "--device", "cpu", "--only", "train-augmented",
                                "--seed", str(seed), "--format", "json").output)
        check = checks(result)["train-augmented"]
        assert result["seed"] == check["details"]["seed"] == seed  # the seed recorded is the one trained with
        return check

    first, second, other = run(0), run(0), run(1)
    assert first["details"]["test_accuracy"] == second["details"]["test_accuracy"]
    assert first["details"]["curves"] == second["details"]["curves"]
    assert first["status"] == second["status"] and first["message"] == second["message"]
    # and the seed reaches the loop: another one draws other weights, batches and crops
    assert other["details"]["curves"]["loss"] != first["details"]["curves"]["loss"]


def test_a_nan_loss_is_reported_as_diverged():
    result = json.loads(cli("check", str(SUBMISSIONS / "nan-loss"), "--lab", "cifar-training", "--train",
                            "--budget", "smoke", "--only", "train-baseline", "--format", "json",
                            "--full-budget").output)
    check = checks(result)["train-baseline"]
    assert check["status"] == "failed" and check["diagnosis"] == "diverged"
    assert "the training loss became nan after epoch 1" in check["message"]


def test_a_nan_loss_stops_training_at_the_step_it_appears():
    result = json.loads(cli("check", str(SUBMISSIONS / "nan-loss"), "--lab", "cifar-training", "--train",
                            "--budget", "smoke", "--only", "train-baseline", "--format", "json").output)
    check = checks(result)["train-baseline"]
    assert check["status"] == "failed" and check["diagnosis"] == "diverged"
    assert check["details"]["decided_at"] == {"step": 1, "of": 13, "reason": "diverged"}
    assert "the training loss became nan at step 1 of 13" in check["message"]
    assert check["message"].endswith("Training stopped there.")


def test_an_unknown_budget_or_a_missing_gpu_is_one_clear_error():
    result = cli("check", str(SUBMISSIONS / "correct"), "--lab", "cifar-training", "--train", "--budget", "huge",
                 "--only", "train-baseline")
    assert result.exit_code == 2 and "--budget 'huge' is not accepted: use cpu, gpu, smoke" in result.output
    if not torch.cuda.is_available():
        result = cli("check", str(SUBMISSIONS / "correct"), "--lab", "cifar-training", "--device", "cuda")
        assert result.exit_code == 2 and "torch sees no CUDA GPU" in result.output


def test_synthetic_cifar10_is_written_in_cifar10s_own_files(tmp_path):
    result = cli("data", "synth-cifar10", str(tmp_path), "--train", "50", "--test", "20")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta", "GRADELAB_SYNTHETIC"])
    from grader.data.synth_cifar import load_cifar10

    train, test = load_cifar10(tmp_path, True), load_cifar10(tmp_path, False)
    assert isinstance(train, torchvision.datasets.CIFAR10)  # torchvision's own parsing
    assert train.data.shape == (50, 32, 32, 3) and test.data.shape == (20, 32, 32, 3)
    assert train.classes[:2] == ["airplane", "automobile"] and set(train.targets) == set(range(10))
    # The official class checks the md5 sums of the real archive, which generated files cannot match.
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        torchvision.datasets.CIFAR10(str(tmp_path), train=True, download=False)


def test_the_synthetic_classes_survive_the_labs_augmentation():
    """A horizontal flip (the lab's augmentation) must not turn an image into another class."""
    from grader.data.synth_cifar import images

    x, y = images(200, seed=3)
    flipped = x[..., ::-1].astype(np.float32)
    x = x.astype(np.float32)

    def spectrum(batch):  # orientation energy is what defines a class: compare power spectra
        return np.abs(np.fft.fft2(batch.mean(1) - batch.mean(axis=(1, 2, 3))[:, None, None]))

    s, f = spectrum(x), spectrum(flipped)
    for label in range(10):
        a, b = s[y == label].mean(0), f[y == label].mean(0)
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9, label


def test_calibrate_writes_thresholds_the_training_checks_then_use(tmp_path):
    lab = tmp_path / "cifar-training"
    shutil.copytree(ROOT / "reference" / "cifar-training", lab)
    (lab / "calibration.yaml").unlink(missing_ok=True)
    result = cli("calibrate", str(lab), "--budget", "smoke", "--margin", "0.05")
    assert result.exit_code == 0, result.output
    import yaml

    data = yaml.safe_load((lab / "calibration.yaml").read_text())
    assert set(data) == TRAINING
    entry = data["train-baseline"]["smoke"]
    assert entry["threshold"] == round(max(0.0, entry["reference_accuracy"] - 0.05), 2)
    assert entry["seed"] == 0 and entry["device"] in ("cpu", "cuda") and entry["train_size"] == 400
    check = json.loads(cli("check", str(SUBMISSIONS / "correct"), "--lab", str(lab), "--train", "--budget", "smoke",
                           "--only", "train-baseline", "--format", "json").output)["checks"][0]
    assert check["details"]["threshold"] == entry["threshold"]


def test_calibrate_against_broken_hand_ins_says_which_thresholds_let_them_through(tmp_path):
    lab = tmp_path / "cifar-training"
    shutil.copytree(ROOT / "reference" / "cifar-training", lab)
    # A margin of 1 puts the threshold at 0: a hand-in that trains at all gets through; one whose
    # loss goes NaN does not train to an accuracy and is rejected whatever the threshold.
    # dropout-always-on's ConvNet is the reference's: on the baseline it trains exactly as the
    # reference does, which is no let-through (its flaw is in ConvNetDropout).
    result = cli("calibrate", str(lab), "--budget", "smoke", "--margin", "1", "--only", "train-baseline",
                 "--against", str(SUBMISSIONS / "nan-loss"), "--against", str(SUBMISSIONS / "layers-in-a-list"),
                 "--against", str(SUBMISSIONS / "dropout-always-on"))
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "did not train" in output and "rejected" in output
    assert "trains as the reference (its flaw is in another network)" in output
    assert "1 of 2 pass where their flaw is: on this data and budget, those thresholds alone do not catch" in output
    assert "nan-loss: caught by train-baseline (smoke)" in output
    # What no threshold sees, the checks without training name (each hand-in graded once without it).
    assert "layers-in-a-list: caught by no training check; without training by param-count" in output
    assert "dropout-always-on: trains as the reference on every check calibrated; without training by " \
           "dropout-behaviour" in output
    assert "Caught by no check" not in output
    import yaml

    data = yaml.safe_load((lab / "calibration.yaml").read_text())
    checked = data["train-baseline"]["smoke"]["checked_against"]
    assert checked["nan-loss"] == {"accuracy": None, "let_through": False}
    assert checked["layers-in-a-list"]["let_through"] is True and 0 <= checked["layers-in-a-list"]["accuracy"] <= 1
    assert checked["layers-in-a-list"]["caught_without_training"][0] == "param-count"
    assert "train-baseline" not in checked["layers-in-a-list"]["caught_without_training"]
    assert checked["dropout-always-on"]["unaffected"] is True and checked["dropout-always-on"]["let_through"] is False
    # --only leaves the other checks' thresholds as they were
    before = yaml.safe_load((ROOT / "reference" / "cifar-training" / "calibration.yaml").read_text())
    assert data["train-dropout"] == before["train-dropout"]


def test_calibrate_names_an_unknown_check_or_hand_in(tmp_path):
    result = cli("calibrate", "cifar-training", "--only", "train-everything")
    assert result.exit_code != 0 and "not a training check of cifar-training: train-everything" in result.output
    result = cli("calibrate", "cifar-training", "--only", "train-baseline", "--against", str(tmp_path / "nowhere"))
    assert result.exit_code != 0 and "no such hand-in" in result.output


@pytest.mark.gpu
def test_on_a_gpu_the_correct_hand_in_passes_the_gpu_budget():
    result = json.loads(cli("check", str(SUBMISSIONS / "correct"), "--lab", "cifar-training", "--train",
                            "--device", "cuda", "--only", "train-baseline", "--format", "json").output)
    check = checks(result)["train-baseline"]
    assert result["device"] == "cuda" and check["details"]["budget"] == "gpu"
    assert check["status"] == "passed", check["message"]


def test_training_reports_each_epoch_for_the_progress_bar():
    from grader.api import load_lab
    from grader.grading.engine import grade_one
    from grader.options import RunOptions, TrainingProgress

    seen = []
    grade_one(load_lab("cifar-training"), SUBMISSIONS / "correct",
              RunOptions(only=("train-dropout",), train=True, budget="smoke", device="cpu"),
              on_event=lambda e: seen.append((e.check, e.epoch, e.epochs, e.loss)) if isinstance(e, TrainingProgress) else None)
    assert [(title, epoch, epochs) for title, epoch, epochs, _ in seen] == [("Training: dropout", 1, 1)]
    assert 0 < seen[0][3] < 10  # the epoch's mean training loss


FUNCTIONAL_STYLE = '''

from torch.nn.functional import dropout, max_pool2d, relu


class ConvNetDropout(nn.Module):
    """Every way of writing a ReLU, and dropout as a function that follows the mode."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(3, 32, 5, padding=2), nn.Conv2d(32, 64, 5, padding=2),
                                    nn.Conv2d(64, 64, 5, padding=2)])
        self.fc4, self.fc5 = nn.Linear(1024, 1000), nn.Linear(1000, 10)

    def forward(self, x):
        x = max_pool2d(relu(self.convs[0](x)), 2)
        x = max_pool2d(torch.relu(self.convs[1](x)), 2)
        x = max_pool2d(self.convs[2](x).relu(), 2)
        x = relu(self.fc4(x.flatten(1)), inplace=True)
        return self.fc5(dropout(x, 0.5, training=self.training))


ConvNet = ConvNetDropout
'''


def test_activations_and_dropout_written_as_functions_are_counted_once(tmp_path):
    """nn.ReLU calls F.relu, which calls torch.relu: each ReLU counts once however it is written,
    and F.dropout(…, training=self.training) is a dropout in its place."""
    end = "    return batch[:, :, 2:30, 2:30]\n"
    hand_in = variant(SUBMISSIONS / "correct", tmp_path / "functional", (end, end + FUNCTIONAL_STYLE))
    result = check_only(hand_in, "cifar-training", "activations", "dropout-placement", "dropout-behaviour")
    assert {k: c["status"] for k, c in result.items()} == \
        {"activations": "passed", "dropout-placement": "passed", "dropout-behaviour": "passed"}, result


def test_the_population_std_is_as_right_as_the_sample_std(tmp_path):
    """numpy's std (divisor N) where torch's default divides by N − 1: both are the statistics."""
    hand_in = variant(SUBMISSIONS / "correct", tmp_path / "numpy-stats", (
        "return train_images.mean(dim=(0, 2, 3)), train_images.std(dim=(0, 2, 3))",
        "x = train_images.numpy()\n    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))"))
    result = check_only(hand_in, "cifar-training", "stats-from-train")
    assert result["stats-from-train"]["status"] == "passed", result["stats-from-train"]["message"]


def test_the_colour_axes_data_has_no_class_a_linear_model_can_find():
    """cifar-training's bundled data: every class's mean image is the same grey, so the best linear
    classifier on the pixels (least squares, fitted on the test images themselves) is at chance,
    while the class is plain to a model that takes |colour · axis|."""
    from grader.data.synth_cifar import CHROMA, images

    x, y = images(2000, seed=5, style="colour-axes")
    pixels = x.reshape(len(x), -1).astype(np.float64) / 255
    mean = pixels.mean(0)
    design = pixels - mean
    # ridge regression onto the one-hot classes (the closed form through the 2000 × 2000 Gram matrix)
    weights = design.T @ np.linalg.solve(design @ design.T + 10.0 * np.eye(len(x)), np.eye(10)[y] - 0.1)
    held_x, held_y = images(1000, seed=6, style="colour-axes")
    held = held_x.reshape(1000, -1).astype(np.float64) / 255 - mean
    assert float(((held @ weights).argmax(1) == held_y).mean()) < 0.15  # chance is 0.10
    # The same images through one non-linearity: the centre's colour, its chroma, the axis as an angle.
    centre = x[:, :, 12:20, 12:20].astype(np.float64).mean(axis=(2, 3)) / 255 - 0.5
    chroma = centre @ CHROMA.T
    angle = np.degrees(np.arctan2(chroma[:, 1], chroma[:, 0])) % 180  # the sign folded: a non-linear step
    nearest = np.round(angle / 18).astype(int) % 10
    assert float((nearest == y).mean()) > 0.9


def test_the_colour_axes_classes_survive_the_labs_augmentation():
    """A flip or a crop leaves every image's colour axis as it was: the class is not in the layout."""
    from grader.data.synth_cifar import CHROMA, images

    x, _ = images(200, seed=3, style="colour-axes")
    def axis(batch):
        centre = batch[:, :, 10:18, 10:22].astype(np.float64).mean(axis=(2, 3)) / 255 - 0.5
        c = centre @ CHROMA.T
        return np.degrees(np.arctan2(c[:, 1], c[:, 0])) % 180

    flipped = x[..., ::-1]
    difference = np.abs(axis(x) - axis(flipped))
    assert np.median(np.minimum(difference, 180 - difference)) < 3


def test_dropout_left_on_at_test_time_fails_the_dropout_training_check_whatever_its_accuracy():
    """Dropout left on at test time learns as well as the reference (58.6 % against a 48 %
    threshold on the cpu budget): the trained network, asked twice for the same test scores,
    answers differently, and that fails the check; the correct hand-in answers the same twice."""
    def train_dropout(name: str) -> dict:
        result = json.loads(cli("check", str(SUBMISSIONS / name), "--lab", "cifar-training", "--train", "--budget",
                                "smoke", "--only", "train-dropout", "--format", "json").output)
        return checks(result)["train-dropout"]

    broken = train_dropout("dropout-always-on")
    assert broken["status"] == "failed" and broken["diagnosis"] == "random-at-test-time"
    assert "Asked twice for its scores on the same test images after training, your network answered differently" \
        in broken["message"]
    assert "F.dropout(x, p) is not unless you pass training=self.training" in broken["message"]
    correct = train_dropout("correct")
    assert correct["status"] == "passed" and "random_at_test_time" not in correct["details"]
