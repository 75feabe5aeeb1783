"""cifar-training grades what students write for training: their optimizer, LR scheduler and epoch
run inside the grader's loop, and each is checked for its own behaviour without training."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import ROOT, check_only, variant

LAB = ROOT / "reference" / "cifar-training"
CORRECT = ROOT / "submissions" / "cifar-training" / "correct"


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def harness():
    return _module(LAB / "harness.py", "cifar_training_harness")


@pytest.fixture(scope="module")
def reference():
    return _module(LAB / "reference.py", "cifar_training_reference")


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _student(reference, **overrides):
    """The reference's three training functions, each call recorded, on a tiny model."""
    calls: dict[str, list] = {"make_optimizer": [], "make_scheduler": [], "train_one_epoch": []}

    def make_optimizer(model, lr, momentum, weight_decay):
        calls["make_optimizer"].append((lr, momentum, weight_decay))
        return reference.make_optimizer(model, lr, momentum, weight_decay)

    def make_scheduler(optimizer, gamma):
        calls["make_scheduler"].append(gamma)
        return reference.make_scheduler(optimizer, gamma)

    def train_one_epoch(model, batches, optimizer, scheduler, loss_fn):
        calls["train_one_epoch"].append({"batches": len(batches), "lr": optimizer.param_groups[0]["lr"], "seen": 0})
        counted = ({"x": x, "y": y} for x, y in batches)

        def counting():
            for b in counted:
                calls["train_one_epoch"][-1]["seen"] += 1
                yield b["x"], b["y"]

        return overrides.get("epoch", reference.train_one_epoch)(model, counting(), optimizer, scheduler, loss_fn)

    return SimpleNamespace(ConvNet=Tiny, make_optimizer=make_optimizer, make_scheduler=make_scheduler,
                           train_one_epoch=train_one_epoch), calls


def _data(n=64):
    gen = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8),
            torch.randint(0, 10, (n,), generator=gen), torch.randint(0, 256, (8, 3, 32, 32), generator=gen, dtype=torch.uint8))


def test_the_grader_trains_with_the_students_optimizer_scheduler_and_epoch(harness, reference):
    student, calls = _student(reference)
    train_x, train_y, test_x = _data()
    out = harness.train_classifier(student, train_x, train_y, test_x, model="ConvNet", epochs=2, batch_size=16,
                                   lr=0.04, momentum=0.9, gamma=0.5)
    assert calls["make_optimizer"] == [(0.04, 0.9, 0.0)] and calls["make_scheduler"] == [0.5]
    # one call a epoch, four batches each, the rate decayed once between them
    assert [(c["batches"], c["seen"]) for c in calls["train_one_epoch"]] == [(4, 4), (4, 4)]
    assert [c["lr"] for c in calls["train_one_epoch"]] == [0.04, 0.02]
    assert len(out["curves"]["loss"]) == len(out["test_scores"]) == 2 and out["test_scores"][0].shape == (8, 10)
    assert 0 < out["curves"]["loss"][0] < 10 and 0 <= out["curves"]["train_accuracy"][0] <= 1


def test_a_recipe_without_decay_hands_the_scheduler_a_constant_rate(harness, reference):
    student, calls = _student(reference)
    harness.train_classifier(student, *_data(), model="ConvNet", epochs=2, batch_size=32, lr=0.05)
    assert calls["make_optimizer"] == [(0.05, 0.0, 0.0)] and calls["make_scheduler"] == [1.0]
    assert [c["lr"] for c in calls["train_one_epoch"]] == [0.05, 0.05]


def _swallows_everything(model, batches, optimizer, scheduler, loss_fn):
    model.train()
    for x, y in batches:
        try:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
        except Exception:  # a student's loop that carries on through errors
            continue
    scheduler.step()


@pytest.mark.parametrize("epoch", [None, _swallows_everything], ids=["reference", "except-exception"])
def test_the_referee_stops_the_students_epoch_at_the_step_it_decides(harness, reference, epoch):
    """The referee evaluates after each optimizer step (a hook), so the student's loop ends at the
    step it decides, even one that catches every Exception."""
    student, calls = _student(reference, **({"epoch": epoch} if epoch else {}))
    train_x, train_y, test_x = _data()
    rule = {"eval_every": 3, "pass_at": 0.0, "confirm": 1, "stuck_below": 0.0, "stuck_after": 0.5}
    out = harness.train_classifier(student, train_x, train_y, test_x, model="ConvNet", epochs=2, batch_size=8,
                                   lr=0.05, val_x=train_x[:16], val_y=train_y[:16], early_stop=rule)
    assert out["stopped"] == {"step": 3, "of": 16, "reason": "passed"}
    assert [c["seen"] for c in calls["train_one_epoch"]] == [3]
    assert out["held_out"]["steps"] == [3] and len(out["test_scores"]) == 1


def test_a_loss_the_student_never_hands_back_leaves_no_made_up_curve(harness, reference):
    def own_loss(model, batches, optimizer, scheduler, loss_fn):
        reference.train_one_epoch(model, batches, optimizer, scheduler, torch.nn.CrossEntropyLoss())

    student, _ = _student(reference, epoch=own_loss)
    out = harness.train_classifier(student, *_data(), model="ConvNet", epochs=1, batch_size=32, lr=0.05)
    assert out["curves"]["loss"][0] != out["curves"]["loss"][0]  # NaN: nothing recorded
    assert len(out["test_scores"]) == 1


@pytest.mark.parametrize("name, check, score, words", [
    ("missing-momentum", "optimizer", 0.33,
     "On lr 0.1, momentum 0.9, weight decay 0, 4 steps, the momentum its steps show is 0. the momentum its steps "
     "show and the weights after each step: your optimizer takes plain gradient steps: the momentum is left out."),
    ("scheduler-per-batch", "training-loop", 0.5,
     "the learning rate after the epoch is 0.0125. the learning rate after the epoch and the weights after the "
     "epoch: the scheduler is stepped after every batch"),
])
def test_the_bundled_training_mistakes_are_named_and_cost_what_they_break(name, check, score, words):
    """Missing momentum keeps the weight decay's share; a per-batch scheduler keeps the steps and the mode."""
    result = check_only(ROOT / "submissions" / "cifar-training" / name, "cifar-training", check)[check]
    assert (result["status"], result["diagnosis"], result["score"]) == ("partial", name, score), result["message"]
    assert words in result["message"]


LOOP = ("        optimizer.zero_grad()\n        loss = loss_fn(model(inputs), labels)\n        loss.backward()\n"
        "        optimizer.step()\n")


@pytest.mark.parametrize("name, edit, check, diagnosis, words", [
    ("wd-ignored", ("lr=lr, momentum=momentum, weight_decay=weight_decay)", "lr=lr, momentum=momentum)"),
     "optimizer", "weight-decay-ignored",
     "On lr 0.05, momentum 0.5, weight decay 0.01, 4 steps, the weight decay its steps show is 0. the weight decay its "
     "steps show and the weights after each step: the weight decay is not passed on to the optimizer"),
    ("nesterov", ("weight_decay=weight_decay)\n", "weight_decay=weight_decay, nesterov=True)\n"),
     "optimizer", "nesterov-momentum", "that is Nesterov's momentum (nesterov=True)"),
    ("gamma-hard-coded", ("ExponentialLR(optimizer, gamma=gamma)", "ExponentialLR(optimizer, gamma=0.95)"),
     "scheduler", "gamma-hard-coded",
     "first on lr 0.2, gamma 0.6, 3 epochs. the learning rate after each epoch: your scheduler decays by 0.95 "
     "whatever gamma it is given: pass gamma on."),
    ("no-zero-grad", ("        optimizer.zero_grad()\n", ""), "training-loop", "gradients-accumulate",
     "the weights after the epoch differs from the reference"),
    ("no-model-train", ("    model.train()\n    running = 0.0\n", "    running = 0.0\n"), "training-loop",
     "trains-in-eval-mode", "Call model.train() at the start of the epoch"),
    ("scheduler-never-stepped", ("    scheduler.step()\n    return", "    return"), "training-loop",
     "scheduler-never-stepped", "the scheduler is never stepped, so the rate never decays"),
])
def test_each_training_function_done_wrong_is_named_in_the_students_words(tmp_path, name, edit, check, diagnosis,
                                                                           words):
    result = check_only(variant(CORRECT, tmp_path / name, edit), "cifar-training", check)[check]
    assert result["status"] in ("failed", "partial"), result["message"]
    assert result["diagnosis"] == diagnosis, result["message"]
    assert words in result["message"]


def test_an_epoch_that_only_steps_the_scheduler_earns_nothing(tmp_path):
    """A stub that decays the rate gets the rate right, and nothing for it: the rate counts only
    alongside the optimizer steps."""
    body = "    model.train()\n    running = 0.0\n    for inputs, labels in batches:\n" + LOOP + \
        "        running += loss.item()\n    scheduler.step()\n    return running / len(batches)\n"
    hand_in = variant(CORRECT, tmp_path / "stub-epoch", (body, "    scheduler.step()\n"))
    result = check_only(hand_in, "cifar-training", "training-loop")["training-loop"]
    assert (result["status"], result["score"]) == ("failed", 0), result["message"]
    assert ("The learning rate after the epoch: counted only alongside right values of the optimizer steps taken"
            in result["message"])


def test_a_missing_training_function_is_named_by_its_check_and_by_every_training_check(tmp_path):
    import json

    from tests.conftest import checks_by_id, cli

    hand_in = variant(CORRECT, tmp_path / "no-epoch", ("def train_one_epoch(", "def train_an_epoch("))
    out = cli("check", str(hand_in), "--lab", "cifar-training", "--only", "training-loop", "--only", "train-baseline",
              "--train", "--budget", "smoke", "--format", "json").output
    said = "`train_one_epoch` is missing from convnet.py (expected a function train_one_epoch(model, batches, optimizer, " \
        "scheduler, loss_fn))"
    assert {k: (c["status"], c["message"]) for k, c in checks_by_id(json.loads(out)).items()} == \
        {"training-loop": ("error", said), "train-baseline": ("error", said)}
