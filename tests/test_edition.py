"""A lab's student edition (`gradelab pack LAB --students DIR`): what students receive to self-check,
without the solutions."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli
from tests.leaks import answer_secrets, public_text

LABS = ["cifar-convnet", "mlp-backprop", "layers-from-scratch", "cifar-training"]


def packed_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


def solutions(lab) -> dict[str, str]:
    """The reference module's bodies of what students write (their interface's symbols), and of the
    mistakes the lab makes on purpose (near-solutions): {name: source of the body}."""
    source = lab.path(lab.manifest.reference.module).read_text(encoding="utf-8")
    tree = ast.parse(source)
    wanted = {s.name for s in lab.manifest.interface.symbols}
    for check in lab.checks:
        wanted |= {m.reference for m in getattr(check.params, "mistakes", [])}
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in wanted:
            functions = [node] if isinstance(node, ast.FunctionDef) else [
                f for f in node.body if isinstance(f, ast.FunctionDef)]
            for fn in functions:  # each function, each method, without its docstring
                statements = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                if statements:
                    name = node.name if fn is node else f"{node.name}.{fn.name}"
                    out[name] = "\n".join(ast.get_source_segment(source, s) for s in statements)
    return out


@pytest.mark.parametrize("lab_id", LABS)
def test_a_packed_lab_holds_no_answer_and_no_solution_and_checks_the_correct_hand_in(lab_id, tmp_path):
    from grader.api import load_lab

    lab = load_lab(lab_id)
    folder = tmp_path / f"{lab_id}-students"
    packed = cli("pack", lab_id, "--students", str(folder))
    assert packed.exit_code == 0, packed.output

    text = packed_text(folder)
    assert not (folder / lab.manifest.reference.answers).exists()
    secrets = answer_secrets(lab).without(public_text(lab))
    assert secrets.found_in(text) == []
    bodies = solutions(lab)
    assert bodies
    for name, body in bodies.items():
        assert body not in text, f"the body of {name} is in the student edition"
    edition = load_lab(folder)
    assert edition.manifest.edition == "students"
    hidden = {c.spec.id for c in lab.checks if c.spec.visibility.value == "hidden"}
    for check in edition.checks:  # a hidden check keeps its id, title and points, nothing else
        if check.spec.id in hidden:
            assert check.spec.kind == "handin_format" and check.spec.hint == "" and check.params.symbols == []

    # `check` from the packed folder: full marks on every check that runs there, the others deferred.
    args = ["check", str(ROOT / "submissions" / lab_id / "correct"), "--lab", str(folder), "--format", "json"]
    if lab_id == "cifar-training":  # one training check too, on the smallest budget: the harness and data run
        args += ["--train", "--budget", "smoke", "--only", "train-baseline", "--only", "param-count"]
    result = json.loads(cli(*args).stdout)
    by_id = {c["id"]: c for c in result["checks"]}
    local = {c.spec.id for c in edition.checks if c.spec.kind != "handin_format"}
    assert {i: c["status"] for i, c in by_id.items() if i in local} == {i: "passed" for i in by_id if i in local}
    assert all(c["score"] == c["max_score"] for i, c in by_id.items() if i in local)
    deferred = {i: c for i, c in by_id.items() if i not in local}
    assert all(c["status"] == "deferred" and "Graded on hand-in" in c["message"] for c in deferred.values())
    assert result["score"] == result["max_score"] == sum(by_id[i]["max_score"] for i in by_id if i in local)


def test_what_runs_where_students_have_no_solutions():
    """Ops against torch and training run as for instructors; anything compared with the lab's own
    implementation or answers is graded on hand-in."""
    from grader.api import load_lab
    from grader.edition import plan

    kinds = {}
    for lab_id in LABS:
        specs, local = plan(load_lab(lab_id))
        for spec in specs:
            kinds.setdefault(spec.kind, set()).add(spec.id in local)
    assert kinds.pop("op_equivalence") == {True} and kinds.pop("training") == {True}
    assert kinds.pop("model_output_shape") == {True}  # where the lab states the shape its handout gives
    assert kinds == {"handin_format": {False}}


def test_a_student_edition_cannot_grade_and_pack_refuses_a_folder_in_use(tmp_path):
    folder = tmp_path / "students"
    assert cli("pack", "cifar-convnet", "--students", str(folder)).exit_code == 0
    graded = cli("grade", str(ROOT / "submissions" / "cifar-convnet"), "--lab", str(folder), "--out", str(tmp_path / "o"))
    assert graded.exit_code == 2 and "is a student edition of 'cifar-convnet': it holds no solutions" in graded.output
    again = cli("pack", "cifar-convnet", "--students", str(folder))
    assert again.exit_code == 2 and "is not an empty folder" in again.output


def test_the_public_part_of_a_reference_module_keeps_what_it_uses():
    from grader.edition import public_source

    source = ("import math\n\nK = 3\n\n\ndef helper(x):\n    return x * K\n\n\ndef used(x):\n    return helper(x)\n\n\n"
              "def solution(x):\n    return math.floor(x)\n")
    cut = public_source(source, ["used"], "reference.py")
    namespace: dict = {}
    exec(compile(cut, "reference.py", "exec"), namespace)
    assert namespace["used"](2) == 6 and "solution" not in namespace and "import math" in cut


def test_the_mlp_edition_computes_no_loss_or_accuracy_a_student_must_write(tmp_path):
    """loss_accuracy (mean cross-entropy and accuracy) is the students' to write: the harness the
    edition ships takes the training curves' metrics from gradelab, and holds no log-likelihood."""
    folder = tmp_path / "mlp"
    assert cli("pack", "mlp-backprop", "--students", str(folder)).exit_code == 0
    shipped = {p.name: p.read_text() for p in folder.rglob("*.py")}
    assert "harness.py" in shipped
    assert not [name for name, text in shipped.items() if "torch.log(" in text or ".log()" in text]
    assert "probability_metrics" in shipped["harness.py"]


def test_the_cifar_edition_catches_a_model_that_crashes_on_every_input(tmp_path):
    """The output shape the handout states, (N, 10), needs no solution: the edition checks it."""
    folder = tmp_path / "cifar"
    assert cli("pack", "cifar-convnet", "--students", str(folder)).exit_code == 0
    hand_in = tmp_path / "mine"
    shutil.copytree(ROOT / "submissions" / "cifar-convnet" / "correct", hand_in)
    module = hand_in / "convnet.py"
    module.write_text(module.read_text().replace("    def forward(self, x):\n",
                                                 "    def forward(self, x):\n        raise ValueError('not yet')\n", 1))
    result = cli("check", str(hand_in), "--lab", str(folder), "--format", "json")
    assert result.exit_code == 1
    shape = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "model-output-shape")
    assert shape["status"] == "error" and "ValueError: not yet" in shape["message"]
    correct = json.loads(cli("check", str(ROOT / "submissions" / "cifar-convnet" / "correct"), "--lab", str(folder),
                             "--format", "json").stdout)
    assert next(c for c in correct["checks"] if c["id"] == "model-output-shape")["status"] == "passed"
