"""A run loads what its checks will wait for while the fork server starts: the training checks'
data sets (with the held-out examples early stopping scores on), once, in a thread of the grader;
a self-check without training loads none; and what fails there is still said by the check."""

from __future__ import annotations

import json

from grader.api import load_lab
from grader.grading.run import Run
from grader.options import Budget, Mode, RunOptions
from tests.conftest import ROOT, cli


def loaded(run: Run) -> set[tuple[str, int]]:
    return {(function, json.loads(args).get("n_train")) for function, args, _ in run._datasets}


def test_a_training_run_loads_each_budgets_data_set_and_its_held_out_examples_ahead_once(monkeypatch):
    lab = load_lab("cifar-training")
    calls = []
    original = lab.reference.cifar10

    def counted(**args):
        calls.append(args["n_train"])
        return original(**args)

    monkeypatch.setattr(lab.reference, "cifar10", counted)
    options = RunOptions(mode=Mode.check, train=True, budget=Budget.smoke, device="cpu")
    with Run(lab, options) as run:
        run.prepare().join(60)
        # smoke: 400 training images; early stopping holds out 200 more (lab.yaml's x-early-stop)
        assert loaded(run) == {("cifar10", 400), ("cifar10", 600)}
        assert len(run.dataset("cifar10", {"n_train": 400, "n_test": 200})["train_y"]) == 400
        assert sorted(calls) == [400, 600]  # once each: a second prepare and the check find them loaded


def test_the_whole_budget_needs_no_held_out_examples():
    options = RunOptions(mode=Mode.check, train=True, budget=Budget.smoke, device="cpu", early_stop=False)
    with Run(load_lab("cifar-training"), options) as run:
        run.prepare().join(60)
        assert loaded(run) == {("cifar10", 400)}


def test_a_self_check_without_training_loads_no_data_set():
    with Run(load_lab("cifar-training"), RunOptions(mode=Mode.check, device="cpu")) as run:
        run.prepare().join(60)
        assert loaded(run) == set()


def test_a_data_set_that_cannot_be_loaded_is_still_said_by_the_check(tmp_path):
    missing = tmp_path / "no-such-cifar"
    result = cli("check", str(ROOT / "submissions" / "cifar-training" / "correct"), "--lab", "cifar-training",
                 "--train", "--budget", "smoke", "--only", "train-baseline", "--data-root", str(missing),
                 "--format", "json")
    assert result.exit_code != 0
    assert f"data set 'cifar10' could not be loaded from {missing}" in result.output
