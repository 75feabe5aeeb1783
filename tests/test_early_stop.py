"""A training check stops as soon as its verdict is certain (the lab's ``early_stop`` rule): a pass
once held-out accuracy clears the threshold by the margin at evaluations in a row, a fail once the
network is still near chance past a share of the budget; the verdict stays the test accuracy the
grader computes, and the report says at which step it came and why."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from grader.checks.training import budget_problem, stop_of
from tests.conftest import ROOT, checks_by_id, cli

SUBMISSIONS = ROOT / "submissions" / "cifar-training"


def lab_with(tmp_path, threshold: float, **rule: object):
    """cifar-training with the smoke budget's train-baseline threshold set, and its rule changed."""
    lab = tmp_path / "cifar-training"
    shutil.copytree(ROOT / "reference" / "cifar-training", lab)
    manifest = (lab / "lab.yaml").read_text()
    old = ("{eval_every: 8, held_out: 200, margin: 0.05, confirm: 2, stuck_after: 0.75, stuck_margin: 0.05, "
           "train_gap: 0.25}")
    assert old in manifest
    # The rule's own numbers unless the test says otherwise; no evaluation skipped unless it asks.
    new = {"eval_every": 8, "held_out": 200, "margin": 0.05, "confirm": 2, "stuck_after": 0.75, "stuck_margin": 0.05,
           **rule}
    (lab / "lab.yaml").write_text(manifest.replace(old, json.dumps(new)))
    calibration = yaml.safe_load((lab / "calibration.yaml").read_text())
    calibration["train-baseline"]["smoke"]["threshold"] = threshold
    (lab / "calibration.yaml").write_text(yaml.safe_dump(calibration))
    return lab


def train_baseline(lab, hand_in: str = "correct", *extra: str) -> dict:
    result = cli("check", str(SUBMISSIONS / hand_in), "--lab", str(lab), "--train", "--budget", "smoke",
                 "--only", "train-baseline", "--format", "json", *extra)
    return checks_by_id(json.loads(result.output))["train-baseline"]


def test_a_hand_in_clearing_the_threshold_stops_early_and_says_at_which_step(tmp_path):
    lab = lab_with(tmp_path, threshold=0.0, eval_every=2)  # held-out accuracy ≥ 5% from the first evaluation
    check = train_baseline(lab)
    assert check["status"] == "passed"
    assert check["details"]["decided_at"] == {"step": 4, "of": 13, "reason": "passed"}
    assert check["details"]["held_out"]["steps"] == [2, 4]
    assert ("Decided at step 4 of 13: the accuracy on held-out training examples reached 5% at 2 evaluations in "
            "a row, so the rest of the budget was not needed.") in check["message"]
    assert "after 4 of the budget's 13 steps" in check["message"]


def test_a_network_still_at_chance_past_the_share_of_the_budget_stops_and_fails(tmp_path):
    lab = lab_with(tmp_path, threshold=0.9, eval_every=2, stuck_after=0.5, stuck_margin=0.5)  # "chance": < 60%
    check = train_baseline(lab)
    assert check["status"] == "failed"
    # 8 is the first evaluation past half of the 13 steps; 10 the second in a row below 60 %
    assert check["details"]["decided_at"] == {"step": 10, "of": 13, "reason": "stuck"}
    assert check["details"]["held_out"]["steps"] == [2, 4, 6, 8, 10]
    assert ("after 50% of the budget, the accuracy on held-out training examples was still below 60%, close to "
            "chance, at 2 evaluations in a row") in check["message"]


def test_a_dip_past_the_share_of_the_budget_is_no_plateau(tmp_path):
    """One evaluation near chance after ``stuck_after`` does not stop a run: a network that is
    learning swings (the reference at 12 % on step 96 of 189, 68 % at the end); as many in a row as
    a pass needs do."""
    lab = lab_with(tmp_path, threshold=0.9, eval_every=2, stuck_after=0.5, stuck_margin=0.5, confirm=3)
    check = train_baseline(lab)
    assert check["details"]["decided_at"] == {"step": 12, "of": 13, "reason": "stuck"}  # 8, 10 and 12


def test_evaluations_are_skipped_while_the_training_batches_are_far_below_the_pass_mark(tmp_path):
    """On its plateau a network answers its training batches near chance: scoring the held-out
    split then costs steps and says no. With ``train_gap`` the evaluation is skipped (counted as one
    that does not pass) until the batches come within the gap of the mark; past ``stuck_after``
    every evaluation runs, so a stuck network is still stopped."""
    lab = lab_with(tmp_path, threshold=0.9, eval_every=2, stuck_after=0.5, stuck_margin=0.5, train_gap=0.2)
    check = train_baseline(lab)  # pass mark 95 %: the smoke budget's batches are far below 75 %
    assert check["details"]["held_out"]["skipped"] == [2, 4, 6]
    assert check["details"]["held_out"]["steps"] == [8, 10]
    assert check["details"]["decided_at"] == {"step": 10, "of": 13, "reason": "stuck"}
    near = train_baseline(lab_with(tmp_path / "b", threshold=0.0, eval_every=2, train_gap=0.2))  # mark 5 %
    assert "skipped" not in near["details"]["held_out"] and near["details"]["decided_at"]["step"] == 4


def test_the_full_budget_runs_when_asked_and_when_nothing_decides_early(tmp_path):
    lab = lab_with(tmp_path, threshold=0.0, eval_every=2)
    whole = train_baseline(lab, "correct", "--full-budget")
    assert "decided_at" not in whole["details"] and whole["details"]["epochs"] == 1
    assert "after 1 epoch on cifar10" in whole["message"]
    undecided = train_baseline(lab_with(tmp_path / "b", threshold=0.9, eval_every=100, stuck_after=1.0))
    assert undecided["details"]["decided_at"] is None  # ran to the end: the verdict is the whole budget's


def test_stopping_early_trains_on_the_same_examples_as_the_whole_budget(tmp_path):
    """The held-out split comes beyond the budget's own examples: the first epoch's curve is the same."""
    lab = lab_with(tmp_path, threshold=0.9, eval_every=100, stuck_after=1.0)
    early, whole = train_baseline(lab), train_baseline(lab, "correct", "--full-budget")
    assert early["details"]["train_size"] == whole["details"]["train_size"] == 400
    assert early["details"]["curves"]["loss"] == whole["details"]["curves"]["loss"]
    assert early["details"]["test_accuracy"] == whole["details"]["test_accuracy"]


REPLY = {"curves": {"loss": [1.0], "train_accuracy": [0.5]}, "test_scores": [[[0.0]]]}


@pytest.mark.parametrize("reply, problem", [
    ({**REPLY, "stopped": {"step": 4, "of": 39, "reason": "passed"}}, None),
    (REPLY, "it reports 1 epochs of loss where the budget runs 3"),
    ({**REPLY, "stopped": {"step": 4, "of": 39, "reason": "bored"}}, "it reports 1 epochs of loss where the budget runs 3"),
    ({**REPLY, "stopped": {"step": 40, "of": 39, "reason": "passed"}}, "it reports 1 epochs of loss where the budget runs 3"),
    ({**REPLY, "curves": {"loss": [1.0, 1.0], "train_accuracy": [0.5]}, "stopped": {"step": 4, "of": 39, "reason": "passed"}},
     "its curves and test scores cover different numbers of epochs ({'loss': 2, 'train_accuracy': 1, 'test scores': 1})"),
])
def test_a_reply_that_stopped_early_must_say_where_and_still_fit_the_budget(reply, problem):
    assert budget_problem(reply, 3) == problem


def test_a_stop_is_only_taken_as_the_loop_reports_it():
    assert stop_of({"stopped": {"step": 3, "of": 13, "reason": "stuck"}}) == {"step": 3, "of": 13, "reason": "stuck"}
    for forged in ({"step": True, "of": 13, "reason": "stuck"}, {"step": 0, "of": 13, "reason": "passed"},
                   {"step": "3", "of": 13, "reason": "passed"}, "passed"):
        assert stop_of({"stopped": forged}) is None


def test_calibrate_measures_how_often_stopping_early_changes_a_verdict(tmp_path):
    lab = lab_with(tmp_path, threshold=0.0, eval_every=2)
    result = cli("calibrate", str(lab), "--budget", "smoke", "--only", "train-baseline", "--seed", "0", "--seed", "1",
                 "--against", str(SUBMISSIONS / "nan-loss"))
    assert result.exit_code == 0, result.output
    assert "0 of 3 verdicts changed" in result.output
    early = yaml.safe_load((lab / "calibration.yaml").read_text())["train-baseline"]["smoke"]["early_stop"]
    assert early["runs"] == 3 and early["verdict_changes"] == 0 and early["changed"] == []
    reference_0, reference_1, nan_loss = early["decided_at"]
    assert reference_0["reason"] == reference_1["reason"] == "passed" and reference_0["step"] < 13
    assert nan_loss == {"step": 1, "of": 13, "reason": "diverged"}
    assert 0 < early["mean_share_of_budget"] < 1


def test_the_bundled_set_holds_examples_to_hold_out_beyond_every_budget(monkeypatch):
    """The gpu budget trains on all 10 000 bundled images; the set holds more, drawn from their own
    seed and appended, so early stopping has examples to score there too, and the first 10 000
    (what the calibrations were measured on) are the images they always were."""
    import numpy as np

    from grader.api import load_lab
    from grader.data import synth_cifar

    for name in ("cifar-training",):
        for check in load_lab(name).checks:
            rule = getattr(check.params, "early_stop", None)
            for budget in (getattr(check.params, "budgets", None) or {}).values():
                if rule is not None:
                    assert budget.dataset_args["n_train"] + rule.held_out <= synth_cifar.BUNDLED_TRAIN + synth_cifar.HELD_OUT
    monkeypatch.setattr(synth_cifar, "BUNDLED_TRAIN", 30)
    x, y = synth_cifar.training_images(40, 0, "colour-axes")
    first, labels = synth_cifar.images(30, 0, "colour-axes")
    more, _ = synth_cifar.images(10, 2, "colour-axes")
    assert np.array_equal(x[:30], first) and np.array_equal(y[:30], labels) and np.array_equal(x[30:], more)
    assert np.array_equal(synth_cifar.training_images(20, 0, "colour-axes")[0], synth_cifar.images(20, 0, "colour-axes")[0])


@pytest.mark.parametrize("told, answers", [("perfect", "one_hot(labels, 10)"),
                                            ("wrong", "one_hot(labels, 10).roll(1, 1)")])
def test_a_loop_that_misreports_its_training_batches_changes_when_the_referee_looks_not_the_verdict(
        tmp_path, told, answers):
    """The referee skips evaluations from the batches the student's loop hands to the loss function.
    A loop that also hands it made-up answers (every one right, or every one wrong) only moves
    when the held-out split is looked at: the verdict is still the test accuracy of the network the
    loop trained, exactly an honest hand-in's."""
    # pass mark 95 %, skipped below 45 %: an honest network's batches on the smoke budget (about
    # 10 %) are skipped, half of them made up right (about 55 %) are not; nothing stops early
    lab = lab_with(tmp_path, threshold=0.9, eval_every=2, stuck_after=1.0, train_gap=0.5)
    hand_in = tmp_path / "hand-in"
    shutil.copytree(SUBMISSIONS / "correct", hand_in)
    source = (hand_in / "convnet.py").read_text()
    honest_line = "        loss = loss_fn(model(inputs), labels)\n"
    assert honest_line in source
    lie = f"        loss_fn(torch.nn.functional.{answers}.float() * 50, labels)\n"
    (hand_in / "convnet.py").write_text(source.replace(honest_line, honest_line + lie))
    result = cli("check", str(hand_in), "--lab", str(lab), "--train", "--budget", "smoke", "--only", "train-baseline",
                 "--format", "json")
    lied, honest = checks_by_id(json.loads(result.output))["train-baseline"], train_baseline(lab)
    assert honest["details"]["held_out"]["skipped"] == [2, 4, 6, 8, 10, 12]
    assert lied["details"]["test_accuracy"] == honest["details"]["test_accuracy"]
    assert (lied["score"], lied["status"], lied["details"]["decided_at"]) == \
        (honest["score"], honest["status"], honest["details"]["decided_at"])
    assert ("skipped" in lied["details"]["held_out"]) == (told == "wrong")


def test_calibrate_names_each_run_whose_verdict_stopping_early_changed():
    """Not only how many: which run (the reference under which seed, or which hand-in) and which
    way, so a change is traced without training everything again."""
    from types import SimpleNamespace

    from grader import api
    from grader.calibrate import Calibrated, _record_early

    lab = api.load_lab("cifar-training")

    def result(accuracy: float, step: int | None = None):
        decided = {"step": step, "of": 189, "reason": "passed"} if step else None
        check = SimpleNamespace(id="train-baseline", diagnosis=None,
                                details={"test_accuracy": accuracy, "decided_at": decided})
        return SimpleNamespace(checks=[check])

    data = {"train-baseline": {"cpu": {"threshold": 0.5}}}
    rows = [Calibrated(check="train-baseline", budget="cpu", reference_accuracy=0.6, threshold=0.5, discriminates=True)]
    whole = [result(0.6), result(0.62)]
    early = [result(0.6, step=120), result(0.45, step=96)]  # seed 1: stopped on a dip
    broken = {"dropout-after-fc5": result(0.45).checks, "nan-loss": result(0.1).checks}
    early_broken = {"dropout-after-fc5": result(0.55, step=168).checks, "nan-loss": result(0.1).checks}
    [row] = _record_early(data, lab, rows, whole, {k: {c.id: c for c in v} for k, v in broken.items()}, early,
                          {k: {c.id: c for c in v} for k, v in early_broken.items()}, "cpu", [0, 1])
    assert row.early_stop is not None and row.early_stop["runs"] == 4 and row.early_stop["verdict_changes"] == 2
    assert row.early_stop["changed"] == ["reference, seed 1 (passed on the whole budget)",
                                         "dropout-after-fc5 (failed on the whole budget)"]
    assert data["train-baseline"]["cpu"]["early_stop"] == row.early_stop  # what calibration.yaml keeps
    from grader.cli.labs import _early_cell

    assert "2 of 4 verdicts changed (reference, seed 1 (passed on the whole budget); dropout-after-fc5" \
        in _early_cell(row.early_stop)
