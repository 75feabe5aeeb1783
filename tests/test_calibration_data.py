"""Thresholds are tied to the data they were measured on: a run on other data (``--data-root``)
reads the calibration measured on that data, or is refused with the command that makes one."""

from __future__ import annotations

import shutil

import pytest
import yaml

from grader.data.synth_cifar import write_synth_cifar10
from grader.errors import LabError
from grader.lab.calibration import BUNDLED, digest, entry_for, store
from tests.conftest import ROOT, cli

CALIBRATED = {"train": {"cpu": {"threshold": 0.57, "data": "bundled",
                                "other_data": {"sha256:00aa": {"threshold": 0.3, "data": "sha256:00aa"}}}}}


def entry(data: str, calibration: dict = CALIBRATED, budget: str = "cpu") -> dict:
    return entry_for(calibration, lab="a-lab", check="train", budget=budget, data=data, data_root="/data")


def test_the_bundled_data_reads_the_budgets_own_entry():
    assert entry(BUNDLED) == {"threshold": 0.57, "data": "bundled"}


def test_other_data_reads_the_entry_measured_on_it():
    assert entry("sha256:00aa")["threshold"] == 0.3


def test_other_data_no_calibration_was_measured_on_is_refused_with_the_command_that_calibrates_it():
    with pytest.raises(LabError) as refused:
        entry("sha256:ffff")
    message = str(refused.value)
    assert "calibrated on the lab's bundled data and on sha256:00aa" in message
    assert "this run trains on other data (sha256:ffff, from --data-root /data)" in message
    assert message.endswith("gradelab calibrate a-lab --budget cpu --data-root /data")


def test_a_budget_never_calibrated_keeps_the_manifests_thresholds_on_any_data():
    assert entry("sha256:ffff", budget="gpu") == {}


def test_calibrating_the_bundled_data_again_keeps_what_was_measured_on_other_data():
    data = yaml.safe_load(yaml.safe_dump(CALIBRATED))
    store(data, "train", "cpu", BUNDLED, {"threshold": 0.6})
    assert data["train"]["cpu"]["threshold"] == 0.6
    assert data["train"]["cpu"]["other_data"]["sha256:00aa"]["threshold"] == 0.3
    store(data, "train", "cpu", "sha256:bbbb", {"threshold": 0.2})
    assert data["train"]["cpu"]["threshold"] == 0.6
    assert set(data["train"]["cpu"]["other_data"]) == {"sha256:00aa", "sha256:bbbb"}


def test_the_digest_follows_the_arrays_not_their_container():
    import numpy as np

    a = {"train_x": np.zeros((2, 3), np.uint8), "train_y": np.arange(2), "test_x": np.ones((1, 3), np.uint8),
         "test_y": np.arange(1)}
    b = {k: v.copy() for k, v in a.items()}
    assert digest(a) == digest(b) and digest(a).startswith("sha256:")
    b["test_y"] = np.array([1])
    assert digest(a) != digest(b)


def test_grading_on_other_data_than_the_calibrations_is_refused_before_any_training(tmp_path):
    write_synth_cifar10(tmp_path / "data", n_train=500, n_test=200, seed=7)
    result = cli("check", str(ROOT / "submissions" / "cifar-training" / "correct"), "--lab", "cifar-training",
                 "--train", "--budget", "smoke", "--only", "train-baseline", "--data-root", str(tmp_path / "data"))
    assert result.exit_code == 2, result.output
    words = " ".join(result.output.split())
    assert "thresholds of the smoke budget were calibrated on the lab's bundled data" in words
    assert f"gradelab calibrate cifar-training --budget smoke --data-root {tmp_path / 'data'}" in words
    assert "Traceback" not in result.output


def test_a_data_root_holding_the_bundled_set_is_the_bundled_data(tmp_path):
    from grader.api import load_lab
    from grader.grading.run import Run
    from grader.options import RunOptions

    write_synth_cifar10(tmp_path / "data", style="colour-axes")  # the generator's defaults: cifar-training's bundled set
    lab = load_lab("cifar-training")
    with Run(lab, RunOptions(data_root=tmp_path / "data")) as run:
        assert run.data_identity("cifar10", {"n_train": 400, "n_test": 200}) == BUNDLED


def test_thresholds_calibrated_on_an_instructors_data_are_the_ones_grading_on_it_uses(tmp_path):
    """`gradelab calibrate --data-root` records them beside the bundled data's, and a check on that
    data reads them (and says which data it trained on)."""
    import json

    lab = tmp_path / "cifar-training"
    shutil.copytree(ROOT / "reference" / "cifar-training", lab)
    data = tmp_path / "data"
    write_synth_cifar10(data, n_train=500, n_test=200, seed=7)
    result = cli("calibrate", str(lab), "--budget", "smoke", "--only", "train-baseline", "--data-root", str(data))
    assert result.exit_code == 0, result.output
    written = yaml.safe_load((lab / "calibration.yaml").read_text())["train-baseline"]["smoke"]
    assert written["data"] == "bundled"  # the bundled data's entry is kept as it was
    ((identity, theirs),) = written["other_data"].items()
    assert identity.startswith("sha256:") and theirs["data"] == identity
    graded = cli("check", str(ROOT / "submissions" / "cifar-training" / "correct"), "--lab", str(lab), "--train",
                 "--budget", "smoke", "--only", "train-baseline", "--data-root", str(data), "--format", "json")
    assert graded.exit_code in (0, 1), graded.output
    (check,) = [c for c in json.loads(graded.output)["checks"] if c["id"] == "train-baseline"]
    assert check["details"]["data"] == identity
    assert check["details"]["threshold"] == theirs["threshold"]


# --- the bundled data's generator: a new version makes old thresholds stale ----------------------

def bundled(calibration: dict, generator: str | None) -> dict:
    return entry_for(calibration, lab="a-lab", check="train", budget="cpu", data=BUNDLED, data_root=None,
                     generator=generator)


def test_thresholds_measured_on_another_version_of_the_generated_data_are_refused_with_the_command():
    calibration = {"train": {"cpu": {"threshold": 0.57, "data": "bundled", "generator": "colour-axes/1"}}}
    assert bundled(calibration, "colour-axes/1")["threshold"] == 0.57
    with pytest.raises(LabError) as refused:
        bundled(calibration, "colour-axes/2")
    message = str(refused.value)
    assert "calibrated on the bundled data of generator colour-axes/1, and the lab now generates colour-axes/2" in message
    assert message.endswith("gradelab calibrate a-lab --budget cpu")


def test_an_entry_from_before_generators_were_recorded_was_measured_on_the_first_generator():
    assert bundled(CALIBRATED, "gratings/1")["threshold"] == 0.57
    with pytest.raises(LabError, match="generator gratings/1, and the lab now generates colour-axes/1"):
        bundled(CALIBRATED, "colour-axes/1")
    assert bundled(CALIBRATED, None)["threshold"] == 0.57  # shipped data (no generator): nothing to compare


@pytest.mark.parametrize("lab, style", [("cifar-training", "colour-axes"), ("vgg-batchnorm", "gratings")])
def test_each_lab_declares_the_generator_it_uses_and_its_calibration_was_measured_on_it(lab, style):
    from grader import api
    from grader.data.synth_cifar import version_of
    from grader.lab.calibration import generator_of

    bound = api.load_lab(lab)
    assert generator_of(bound.reference, "cifar10") == version_of(style)
    for check, budgets in bound.calibration.items():
        for budget, entry_ in budgets.items():
            if isinstance(entry_, dict) and "threshold" in entry_:
                assert entry_.get("generator", "gratings/1") == version_of(style), (check, budget)


# The bundled hand-ins that are right: the correct one, and cifar-training's improvements stacked
# (BatchNorm keeping the dropout), which the lab accepts.
RIGHT = {"cifar-training": {"correct", "stacked-improvements"}, "vgg-batchnorm": {"correct"}}


@pytest.mark.parametrize("lab", sorted(RIGHT))
def test_the_cpu_calibration_shows_every_named_flawed_hand_in_caught(lab):
    """`calibrate --budget cpu --against` every flawed hand-in the lab bundles: each is rejected by a
    training check or caught by a check without training (recorded beside it), and a hand-in
    added to submissions/ without calibrating again is found here."""
    calibration = yaml.safe_load((ROOT / "reference" / lab / "calibration.yaml").read_text())
    flawed = {p.name for p in (ROOT / "submissions" / lab).iterdir() if p.is_dir()} - RIGHT[lab]
    for check, budgets in calibration.items():
        against = budgets["cpu"]["checked_against"]
        assert set(against) == flawed, check
    for name in sorted(flawed):
        rows = [budgets["cpu"]["checked_against"][name] for budgets in calibration.values()]
        by_training = [r for r in rows if not r["let_through"] and not r.get("unaffected")]
        without = {c for r in rows for c in r.get("caught_without_training", [])}
        assert by_training or without, f"{name}: caught by no check on the cpu budget"


SEED_0 = {"threshold": 0.39, "seed": 0, "discriminates": True, "generator": "colour-axes/1"}


def test_a_threshold_measured_under_one_seed_judges_only_that_seed():
    """On cifar-training's cpu budget the reference reaches 59 % under seed 0 and 33 % under seed 2:
    seed 0's threshold would fail a correct hand-in trained under seed 2."""
    calibration = {"train-baseline": {"cpu": SEED_0}}
    kwargs = {"lab": "cifar-training", "check": "train-baseline", "budget": "cpu", "data": BUNDLED, "data_root": None,
              "generator": "colour-axes/1"}
    assert entry_for(calibration, **kwargs, seed=0)["threshold"] == 0.39
    assert entry_for(calibration, **kwargs, seed=None)["threshold"] == 0.39  # a check that takes no seed
    with pytest.raises(LabError) as refused:
        entry_for(calibration, **kwargs, seed=2)
    assert "calibrated under seed 0 only, and this run trains under seed 2" in str(refused.value)
    assert str(refused.value).endswith("Grade with --seed 0, or calibrate under both first: "
                                       "gradelab calibrate cifar-training --budget cpu --seed 0 --seed 2")
    several = {"train-baseline": {"cpu": {**SEED_0, "seeds": [0, 1, 2]}}}  # the worst of three draws judges any
    assert entry_for(several, **kwargs, seed=7)["threshold"] == 0.39
    chance = {"train-baseline": {"cpu": {**SEED_0, "threshold": 0.0, "discriminates": False}}}  # fails no one
    assert entry_for(chance, **kwargs, seed=7)["threshold"] == 0.0


def test_grading_under_a_seed_the_threshold_was_not_measured_under_is_refused_with_both_ways_out():
    result = cli("check", str(ROOT / "submissions" / "cifar-training" / "correct"), "--lab", "cifar-training",
                 "--train", "--budget", "cpu", "--only", "train-baseline", "--seed", "2")
    assert result.exit_code == 2, result.output
    words = " ".join(result.output.split())
    assert "calibrated under seed 0 only, and this run trains under seed 2" in words
    assert "gradelab calibrate cifar-training --budget cpu --seed 0 --seed 2" in words
    assert "Traceback" not in result.output


def test_the_student_edition_refuses_a_seed_its_thresholds_were_not_measured_under(tmp_path):
    """The edition carries each threshold's seeds (and nothing of the reference's runs), so a
    student's self-check under another seed is refused there as in the full lab."""
    folder = tmp_path / "students"
    assert cli("pack", "cifar-training", "--students", str(folder)).exit_code == 0
    entry = yaml.safe_load((folder / "calibration.yaml").read_text())["train-baseline"]["cpu"]
    assert entry["seed"] == 0 and entry["discriminates"] is True and "reference_accuracy" not in entry
    result = cli("check", str(ROOT / "submissions" / "cifar-training" / "correct"), "--lab", str(folder),
                 "--train", "--budget", "cpu", "--only", "train-baseline", "--seed", "2")
    assert result.exit_code == 2, result.output
    assert "calibrated under seed 0 only, and this run trains under seed 2" in " ".join(result.output.split())
