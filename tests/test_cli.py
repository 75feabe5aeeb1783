"""The command line, as students and instructors use it (Typer's CliRunner, real subprocesses
where a process must be killed)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from grader.cli import app
from tests.conftest import CIFAR_SUBMISSIONS, ROOT

# Production's lifecycle: each run here starts and ends its own fork server (tests/conftest.py).
pytestmark = pytest.mark.own_sandbox

runner = CliRunner()
FAST = ["--wall-time", "4", "--cpu-time", "8"]


def run(*args: str):
    # A wide terminal, so that table cells do not wrap the words the tests look for.
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "250"})


def test_labs_lists_each_lab_with_its_checks_and_points():
    result = run("labs")
    assert result.exit_code == 0
    assert "cifar-convnet" in result.output and "conv-output-size" in result.output
    assert "17 points" in result.output


def test_labs_kinds_lists_the_registry():
    result = run("labs", "--kinds")
    assert "function_table" in result.output and "layer_structure" in result.output


def test_self_check_of_a_correct_hand_in_exits_zero_with_public_checks_only():
    result = run("check", str(CIFAR_SUBMISSIONS / "correct"), "--lab", "cifar-convnet", *FAST)
    assert result.exit_code == 0, result.output
    # The written "why pooling?" awaits the instructor: its 3 points are in the total, not yet earned.
    assert "Total so far: 14 / 17 (82 %)" in result.output
    assert "Receptive fields" not in result.output  # hidden from students


def test_self_check_of_a_flawed_hand_in_exits_one_and_says_what_to_fix():
    result = run("check", str(CIFAR_SUBMISSIONS / "missing-floor"), "--lab", "cifar-convnet", *FAST)
    assert result.exit_code == 1
    assert "Your results match (x + 2p − k) / s + 1 without the floor" in result.output
    assert "Hint:" in result.output


def test_self_check_as_json_is_a_submission_result():
    result = run("check", str(CIFAR_SUBMISSIONS / "syntax-error"), "--lab", "cifar-convnet", "--format", "json", *FAST)
    data = json.loads(result.stdout)
    assert data["mode"] == "check" and data["lab"] == "cifar-convnet"
    assert {c["visibility"] for c in data["checks"]} == {"public"}
    statuses = {c["id"]: c["status"] for c in data["checks"]}
    assert statuses["model-output-shape"] == "error" and statuses["keep-size"] == "passed"
    assert data["grader_version"] and data["lab_version"] == "1.0.0"


def test_an_unknown_lab_is_one_line_and_exit_code_two():
    result = runner.invoke(app, ["check", str(CIFAR_SUBMISSIONS / "correct"), "--lab", "nope"])
    assert result.exit_code == 2
    assert "LabError: no lab 'nope'" in result.output
    assert "Traceback" not in result.output


def test_grade_writes_a_result_per_submission_and_a_class_csv_then_skips_done_work(class_copy, tmp_path):
    root = class_copy("correct", "missing-class", "solo.py")
    out = tmp_path / "out"
    first = run("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), *FAST)
    assert first.exit_code == 0, first.output
    assert sorted(p.name for p in out.glob("*.json")) == ["correct.json", "missing-class.json", "solo.json"]
    rows = {r["submission"]: r for r in csv.DictReader((out / "class.csv").open())}
    assert (rows["correct"]["score"], rows["correct"]["max_score"], rows["correct"]["percent"]) == ("17", "20", "85.0")
    assert rows["missing-class"]["model-output-shape"] == "0"
    correct = json.loads((out / "correct.json").read_text())
    assert correct["mode"] == "grade" and len(correct["checks"]) == 12  # 11 auto-graded, the written "why pooling?"

    stamp = (out / "correct.json").stat().st_mtime_ns
    again = run("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), *FAST)
    assert "3 already graded, skipped" in again.output
    assert (out / "correct.json").stat().st_mtime_ns == stamp

    forced = run("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--force", *FAST)
    assert "Graded 3 submission(s)" in forced.output
    assert (out / "correct.json").stat().st_mtime_ns != stamp


def test_an_infinite_loop_is_killed_and_the_rest_of_the_batch_is_graded(class_copy, tmp_path):
    root = class_copy("infinite-loop-import", "correct")
    out = tmp_path / "out"
    result = run("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--wall-time", "2")
    assert result.exit_code == 0
    loop = json.loads((out / "infinite-loop-import.json").read_text())
    assert any("2 s wall-time limit" in c["message"] for c in loop["checks"])
    assert json.loads((out / "correct.json").read_text())["score"] == 17


def test_a_killed_batch_keeps_what_it_finished_and_resumes(class_copy, tmp_path):
    """SIGKILL the real command mid-batch; the rerun grades only what is missing."""
    root = class_copy("correct", "infinite-loop-import", "missing-floor")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "grader", "grade", str(root), "--lab", "cifar-convnet", "--out", str(out),
           "--wall-time", "30"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "correct.json").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # while the infinite loop is being waited on
    proc.wait()
    assert (out / "correct.json").exists()
    assert not (out / "missing-floor.json").exists()
    assert not list(out.glob(".*.tmp"))  # no half-written result left behind

    resumed = run("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--wall-time", "2")
    assert "1 already graded, skipped" in resumed.output
    assert sorted(p.stem for p in out.glob("*.json")) == ["correct", "infinite-loop-import", "missing-floor"]


def test_only_runs_the_named_checks_and_names_the_known_ones_when_wrong():
    result = run("check", str(CIFAR_SUBMISSIONS / "correct"), "--lab", "cifar-convnet", "--only", "keep-size",
                 "--only", "halve-size", "--format", "json")
    assert [c["id"] for c in json.loads(result.output)["checks"]] == ["keep-size", "halve-size"]
    result = run("check", str(CIFAR_SUBMISSIONS / "correct"), "--lab", "cifar-convnet", "--only", "nope")
    assert result.exit_code == 2
    assert "no check 'nope'" in result.output and "conv-output-size" in result.output


def test_help_and_listing_labs_import_neither_torch_nor_the_grading_machinery(tmp_path):
    """What answers at once (`bench.startup` times it): every --help, `labs`, `labs LAB`, `pack`.
    Torch is imported by the commands that grade, and only when they grade."""
    commands = [["--help"], ["labs"], ["labs", "cifar-convnet"], ["labs", "--kinds"], ["pack", "layers-from-scratch",
                "--students", str(tmp_path / "packed")]]
    commands += [[name, "--help"] for name in ("check", "grade", "demo", "labs", "calibrate", "pack", "report", "data", "similarity")]
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from grader.cli import app\n"
        f"for args in {commands!r}:\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
        "heavy = ('torch', 'weasyprint', 'matplotlib', 'grader.grading.run', 'grader.sandbox.runner')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert (tmp_path / "packed" / "lab.yaml").exists()


def test_labs_lab_shows_one_lab_what_students_see_and_what_to_hand_in():
    result = run("labs", "cifar-convnet")
    assert result.exit_code == 0
    assert "mlp-backprop" not in result.output and "model-param-count" in result.output
    assert "Hand in convnet.py (conv_output_size(x, k, p, s), ConvNet()) and answers.yaml (24 answers)" in result.output
    assert "no values" in result.output  # model-param-count: students are told which layer, never a count
