"""gradelab inside Gradescope: the bundle holds what Gradescope runs, and its run_autograder,
run against a fake /autograder tree, writes a results.json that follows Gradescope's schema."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import zipfile

import jsonschema

from tests.conftest import CIFAR_SUBMISSIONS, ROOT, cli

SCHEMA = json.loads((ROOT / "tests" / "schemas" / "gradescope-results.schema.json").read_text())


def test_the_bundle_holds_setup_run_autograder_gradelab_and_only_its_lab(tmp_path):
    result = cli("gradescope", "cifar-convnet", "--out", str(tmp_path / "autograder.zip"))
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "autograder.zip") as zf:
        names = set(zf.namelist())
        setup = zf.read("setup.sh").decode()
        run = zf.read("run_autograder").decode()
        mode = zf.getinfo("run_autograder").external_attr >> 16
    assert {"setup.sh", "run_autograder", "gradelab/pyproject.toml", "gradelab/constraints.txt",
            "gradelab/grader/cli/__init__.py", "gradelab/templates/report.css",
            "gradelab/reference/cifar-convnet/lab.yaml"} <= names
    assert not any(n.startswith("gradelab/reference/mlp-backprop") for n in names)
    assert not any("__pycache__" in n for n in names)
    assert mode & 0o111, "run_autograder must be executable"
    assert "-c constraints.txt torch==2.14.1 torchvision==0.29.1" in setup
    assert "autograde --lab cifar-convnet" in run
    assert cli("gradescope", "cifar-convnet", "--out", str(tmp_path / "again.zip")).exit_code == 0
    assert (tmp_path / "again.zip").read_bytes() == (tmp_path / "autograder.zip").read_bytes()


def fake_autograder(tmp_path, hand_in):
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    assert cli("gradescope", "cifar-convnet", "--out", str(tmp_path / "autograder.zip")).exit_code == 0
    with zipfile.ZipFile(tmp_path / "autograder.zip") as zf:
        zf.extractall(root / "source")  # our own bundle, as Gradescope unpacks it
    shutil.copytree(hand_in, root / "submission")
    (root / "submission_metadata.json").write_text(json.dumps({
        "id": 123456, "assignment": {"id": 25828, "title": "Lab 2", "total_points": "17.0"},
        "users": [{"email": "emile@example.org", "id": 654321, "name": "Émile Noël"}]}))
    return root


def run_autograder(root):
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADELAB_PYTHON": sys.executable}
    env.pop("GRADELAB_LABS", None)
    return subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True,
                          text=True, timeout=300)


def test_run_autograder_grades_the_submission_and_writes_results_json(tmp_path):
    root = fake_autograder(tmp_path, CIFAR_SUBMISSIONS / "missing-floor")
    done = run_autograder(root)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 15 and sum(t["max_score"] for t in results["tests"]) == 20  # the written one too
    assert results["extra_data"]["student_id"] == "654321"
    hidden = {t["name"]: t["visibility"] for t in results["tests"]}
    assert hidden["Total learnable parameters"] == "after_published"
    assert hidden["Output-size rule of a convolution"] == "visible"
    failed = next(t for t in results["tests"] if t["name"] == "Output-size rule of a convolution")
    from grader.api import load_lab
    from tests.leaks import answer_secrets, public_text

    lab = load_lab("cifar-convnet")
    hint = next(c.hint for c in lab.manifest.checks if c.id == "conv-output-size")
    assert failed["status"] == "failed" and f"Hint: {hint}"[:50] in failed["output"]
    # what the tests say is the student's view: no reference answer (the lab's public text aside)
    secrets = answer_secrets(lab).without(public_text(lab))
    assert secrets and secrets.found_in(json.dumps(results["tests"], ensure_ascii=False)) == []
    link = results["output"].split("(data:application/pdf;base64,", 1)[1].split(")", 1)[0]
    assert base64.b64decode(link).startswith(b"%PDF")
    assert (root / "results" / "report.pdf").read_bytes() == base64.b64decode(link)


def test_a_submission_with_nothing_to_grade_gets_a_zero_and_the_reason(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "report.pdf").write_bytes(b"%PDF-1.4")
    root = fake_autograder(tmp_path, empty)
    done = run_autograder(root)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 0 and results["tests"] == []
    assert "Nothing was graded: nothing to grade: no convnet.py" in results["output"]
