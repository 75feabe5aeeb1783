"""Every hand-in of a class is graded under a key of its own, kept from one run to the next, and a
rerun keeps an earlier result only when it was graded on the same hand-in under the same settings."""

from __future__ import annotations

import json
import shutil

from grader import api
from grader.intake.identity import key_for
from grader.options import RunOptions
from tests.conftest import CIFAR_SUBMISSIONS, ROOT, cli

CORRECT = CIFAR_SUBMISSIONS / "correct"
STATIC = RunOptions(reports=False, only=("conv-output-size", "model-output-shape"))


def students(out) -> dict[str, str]:
    """Each result file's student id, by file name."""
    return {p.name: json.loads(p.read_text())["student"]["id"] for p in sorted(out.glob("*.json"))}


def test_a_name_is_its_own_key_and_a_folding_that_loses_anything_adds_a_digest_of_the_name():
    assert key_for("alice") == "alice"
    assert key_for("王伟").startswith("hand-in-") and key_for("王伟") != key_for("李娜") != key_for("!!!")
    assert key_for("Émile").startswith("Emile-") and key_for("Émile") != key_for("Emile") == "Emile"
    assert key_for("a" * 80) != key_for("a" * 81)  # a name cut short keeps what tells it apart


def test_an_lms_name_of_any_length_keeps_its_id_whole():
    key = key_for("Maria " * 30, "333333")
    assert key.endswith("_333333") and len(key) < 100
    assert key_for("Émile Noël", "654321") == "Emile_Noel_654321"


def test_a_student_who_arrives_between_two_runs_is_graded_and_nobody_is_counted_twice(tmp_path):
    root, out = tmp_path / "class", tmp_path / "out"
    for name in ("王伟", "李娜"):
        shutil.copytree(CORRECT, root / name)
    api.grade(root, "cifar-convnet", out, STATIC)
    first = students(out)
    shutil.copytree(CIFAR_SUBMISSIONS / "missing-floor", root / "张三")
    batch = api.grade(root, "cifar-convnet", out, STATIC)
    assert sorted(batch.skipped) == sorted(n.removesuffix(".json") for n in first)  # the two kept, as they were
    assert batch.graded == [n.removesuffix(".json") for n, s in students(out).items() if s == "张三"]
    assert sorted(students(out).values()) == ["张三", "李娜", "王伟"]
    csv = (out / "class.csv").read_text().splitlines()
    assert len(csv) == 4 and sorted(line.split(",")[1] for line in csv[1:]) == ["张三", "李娜", "王伟"]


def test_a_folder_and_a_file_of_one_name_are_two_hand_ins(tmp_path):
    root, out = tmp_path / "class", tmp_path / "out"
    shutil.copytree(CORRECT, root / "alice")
    shutil.copy(CIFAR_SUBMISSIONS / "solo.py", root / "alice.py")
    api.grade(root, "cifar-convnet", out, STATIC)
    assert len(students(out)) == 2 and all(n.startswith("alice-") for n in students(out))


def test_a_changed_hand_in_is_graded_again_and_said_so(tmp_path):
    root, out = tmp_path / "class", tmp_path / "out"
    shutil.copytree(CORRECT, root / "alice")
    shutil.copytree(CORRECT, root / "bob")
    api.grade(root, "cifar-convnet", out, STATIC)
    (root / "bob" / "convnet.py").write_text((root / "bob" / "convnet.py").read_text() + "\n# one more line\n")
    batch = api.grade(root, "cifar-convnet", out, STATIC)
    assert batch.skipped == ["alice"] and batch.regraded == {"bob": "the hand-in changed since"}


def test_a_result_graded_with_another_seed_or_selection_is_not_reused(tmp_path):
    root, out = tmp_path / "class", tmp_path / "out"
    shutil.copytree(CORRECT, root / "alice")
    api.grade(root, "cifar-convnet", out, STATIC)
    batch = api.grade(root, "cifar-convnet", out, STATIC.model_copy(update={"seed": 3}))
    assert batch.regraded == {"alice": "graded with other settings (seed: 0 → 3)"}
    batch = api.grade(root, "cifar-convnet", out, STATIC.model_copy(update={"seed": 3, "only": ()}))
    assert batch.regraded == {"alice": "graded with other settings (only: conv-output-size, model-output-shape → "
                                       "every check)"}


def test_grading_without_training_then_with_it_trains_and_says_how_many_were_kept(tmp_path):
    """`grade --no-train` then `grade`: the skipped training checks are graded now, not kept."""
    root, out = tmp_path / "class", tmp_path / "out"
    shutil.copytree(ROOT / "submissions" / "cifar-training" / "correct", root / "alice")
    shutil.copytree(ROOT / "submissions" / "cifar-training" / "nan-loss", root / "bob")
    args = ["grade", str(root), "--lab", "cifar-training", "--out", str(out), "--no-pdf", "--budget", "smoke"]
    assert cli(*args, "--no-train").exit_code == 0
    skipped = [c["status"] for c in json.loads((out / "alice.json").read_text())["checks"]].count("skipped")
    assert skipped == 6
    rerun = cli(*args)
    assert rerun.exit_code == 0, rerun.output
    words = " ".join(rerun.output.split())
    assert ("Graded again 2 hand-in(s) whose earlier result could not stand: 2 graded with other settings "
            "(train: no → yes, budget: none → smoke, device: none → cpu, early_stop: none → yes)") in words
    trained = json.loads((out / "alice.json").read_text())["checks"]
    assert "skipped" not in [c["status"] for c in trained]
    assert cli(*args).output.count("already graded, skipped") == 1  # a third run keeps both


def test_one_entry_named_like_moodles_does_not_turn_a_class_of_folders_into_a_download(tmp_path):
    root = tmp_path / "class"
    for name in ("alice", "bob"):
        shutil.copytree(CORRECT, root / name)
    shutil.copytree(CORRECT, root / "Mallory_999_assignsubmission_file")
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(tmp_path / "out"), "--no-pdf")
    assert result.exit_code == 2, result.output
    words = " ".join(result.output.split())
    assert "1 of its 3 entries are named as a Moodle download names them and 2 are not" in words
    assert "these are Moodle's: Mallory_999_assignsubmission_file" in words
    assert "--layout moodle (the others left out, each named) or --layout folders" in words
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


def test_one_loose_file_named_like_canvass_does_not_turn_student_folders_into_a_download(tmp_path):
    root = tmp_path / "class"
    for name in ("alice", "bob"):
        shutil.copytree(CORRECT, root / name)
    shutil.copy(CIFAR_SUBMISSIONS / "solo.py", root / "lab_2_3_final.py")
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(tmp_path / "out"), "--no-pdf")
    assert result.exit_code == 2, result.output
    assert "named as a Canvas download names them" in " ".join(result.output.split())
    folders = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(tmp_path / "out"), "--no-pdf",
                  "--layout", "folders")
    assert folders.exit_code == 0, folders.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.json")) == ["alice.json", "bob.json",
                                                                         "lab_2_3_final.json"]


def test_every_entry_a_layout_leaves_out_is_named_and_the_exit_status_says_so(tmp_path):
    root = tmp_path / "class"
    shutil.copytree(CORRECT, root / "Ada Lovelace_111_assignsubmission_file")
    shutil.copytree(CORRECT, root / "bob")
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(tmp_path / "out"), "--no-pdf",
                 "--layout", "moodle")
    assert result.exit_code == 3, result.output
    words = " ".join(result.output.split())
    assert "Warning: bob: not a Moodle submission entry (left out)" in words
    assert "1 entry of the class left out (exit status 3)" in words
