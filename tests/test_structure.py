"""The seams every feature crosses: one set of run options refused at the edge, diagnoses as a
list, a student on every result, no import circles, a fork server owned by its run."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from grader.intake.reader import read_hand_in
from tests.conftest import CIFAR_SUBMISSIONS, ROOT, cli

PACKAGE = ROOT / "grader"


def _imports(path: Path, module: str) -> set[str]:
    """The grader modules ``module`` imports, at any depth of its code, except under
    ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        # A module imports its parent packages implicitly: that is Python, not a circle of ours.
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = {m for m in _imports(path, name) if m in modules and m != name and m not in parents}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " → ".join(cycle)


def test_the_cycle_finder_finds_a_planted_circle():
    graph = import_graph()
    graph["grader.lab.loader"] = graph["grader.lab.loader"] | {"grader.checks.registry"}
    assert find_cycle(graph) is not None


def test_the_lab_layer_imports_no_check_kind():
    graph = import_graph()
    assert not any(m.startswith("grader.checks") for m in graph["grader.lab.loader"] | graph["grader.lab.manifest"])


@pytest.mark.parametrize("args, words", [
    (["--device", "gpu"], "--device 'gpu' is not accepted: use auto, cpu, cuda"),
    (["--budget", "huge"], "--budget 'huge' is not accepted: use cpu, gpu, smoke"),
    (["--wall-time", "-3"], "--wall-time -3.0 is not accepted"),
])
def test_a_mistyped_option_is_refused_before_anything_is_graded(class_copy, tmp_path, args, words):
    root = class_copy("correct", "solo.py")
    out = tmp_path / "out"
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf", *args)
    assert result.exit_code == 2
    assert f"UsageError: {words}" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not list(out.glob("*.json")), "nothing may be graded (nor recorded as unreadable)"


def test_a_rerun_after_a_refused_option_grades_everything(class_copy, tmp_path):
    root = class_copy("correct")
    out = tmp_path / "out"
    cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf", "--device", "gpu")
    rerun = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf", "--device", "cpu")
    assert rerun.exit_code == 0 and "already graded" not in rerun.output
    assert json.loads((out / "correct.json").read_text())["score"] == 17


def test_a_check_with_two_diagnoses_counts_as_two_in_the_class_summary(cifar_class):
    from grader.report.render import class_context
    from grader.results import CheckResult, Status

    result = cifar_class["correct"]
    two = CheckResult(id="layer-params", title="Learnable parameters", kind="answer", visibility="public",
                      status=Status.failed, score=0, max_score=3,
                      diagnoses=["in-channels-as-out-channels", "spatial-size-as-kernel"])
    one = two.model_copy(update={"diagnoses": ["spatial-size-as-kernel"]})
    results = [result.model_copy(update={"submission": "a", "checks": [two]}),
               result.model_copy(update={"submission": "b", "checks": [one]})]
    counts = dict(class_context(results, "lab")["diagnoses"])
    assert counts == {"spatial-size-as-kernel": 2, "in-channels-as-out-channels": 1}


def test_every_kind_reports_several_mistakes_as_a_list(cifar_class):
    """The answer kind joined names with ", " and function_outputs with ",": now both give a list."""
    for result in cifar_class.values():
        for c in result.checks:
            assert all("," not in d for d in c.diagnoses), (result.submission, c.id, c.diagnoses)


def test_a_result_of_schema_one_is_read_and_upgraded(cifar_class):
    from grader.results import RESULT_SCHEMA_VERSION, SubmissionResult
    from grader.reveal import student_check

    data = json.loads(cifar_class["in-channels-confusion"].to_json())
    data["schema_version"] = 1
    data.pop("student")
    for c in data["checks"]:
        c.pop("diagnoses")
        c.pop("parts")
        c.pop("disclosure")
        c["diagnosis"] = "in-channels-as-out-channels, spatial-size-as-kernel" if c["id"] == "layer-params" else None
    old = SubmissionResult.model_validate(data)
    assert old.schema_version == RESULT_SCHEMA_VERSION and old.student.name == "in-channels-confusion"
    params = next(c for c in old.checks if c.id == "layer-params")
    assert params.diagnoses == ["in-channels-as-out-channels", "spatial-size-as-kernel"]
    # Its messages quote reference values and carry no parts: a student's view of one shows the verdict only.
    total = next(c for c in old.checks if c.id == "total-params")
    shown = student_check(total)
    assert "1191170" in total.message and "1191170" not in shown.message and shown.expected is None


def test_every_result_names_its_student_as_the_folder_says(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    shutil.copytree(CIFAR_SUBMISSIONS / "correct", root / "Émile Noël_654321")
    out = tmp_path / "out"
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf")
    assert result.exit_code == 0, result.output
    (path,) = out.glob("*.json")
    data = json.loads(path.read_text())
    assert data["student"]["name"] == "Émile Noël_654321" and data["submission"] == path.stem
    assert path.stem.isascii()  # only file names are sanitised
    rows = (out / "class.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("submission,student_id,name,score") and "Émile Noël_654321" in rows[1]


def test_class_csv_is_written_once_from_the_results(class_copy, tmp_path, monkeypatch):
    """Not rewritten after every hand-in (quadratic in class size): once, at the end."""
    import grader.grading.batch as batch

    root = class_copy("correct", "missing-floor", "solo.py")
    writes = []
    real = batch.write_atomic
    monkeypatch.setattr(batch, "write_atomic", lambda path, data: (writes.append(Path(path).name), real(path, data))[1])
    cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(tmp_path / "out"), "--no-pdf")
    assert writes.count("class.csv") == 1 and len(writes) == 4


def test_an_interrupted_batch_still_writes_class_csv_for_what_it_finished(class_copy, tmp_path, monkeypatch):
    from grader import api
    from grader.options import RunOptions, SubmissionFinished

    root = class_copy("correct", "missing-floor", "solo.py")
    out = tmp_path / "out"

    def interrupt(event):
        if isinstance(event, SubmissionFinished):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.grade(root, "cifar-convnet", out, RunOptions(reports=False), on_event=interrupt)
    rows = (out / "class.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("correct,")


@pytest.mark.own_sandbox
def test_the_fork_server_is_owned_by_its_run_and_replaced_when_it_dies(tmp_path):
    from grader.lab.manifest import Limits
    from grader.sandbox.runner import Sandbox

    (tmp_path / "student.py").write_text("def f(x):\n    return x + 1\n")
    call = {"function": "f", "cases": [[1]]}
    with Sandbox() as sandbox:
        sandbox.run_probe(read_hand_in(tmp_path / "student.py", module_name="student.py"), "student.py", "call", call, Limits(wall_s=5))
        server = sandbox.server._proc
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        reply = sandbox.run_probe(read_hand_in(tmp_path / "student.py", module_name="student.py"), "student.py", "call", call, Limits(wall_s=5))
        assert reply.value == [{"ok": True, "value": 2}] and sandbox.server.restarts == 1
        replacement = sandbox.server._proc
    assert replacement.poll() is not None, "closing the sandbox ends its fork server"


def test_a_child_inherits_no_descriptor_but_its_request_and_reply_pipes(tmp_path):
    from grader.lab.manifest import Limits
    from grader.sandbox.runner import Sandbox

    (tmp_path / "student.py").write_text(
        "import os\n"
        "def f(x):\n"
        "    fds = [int(n) for n in os.listdir('/proc/self/fd')]\n"
        "    return {str(n): os.readlink(f'/proc/self/fd/{n}') for n in fds if os.path.exists(f'/proc/self/fd/{n}')}\n")
    with Sandbox() as sandbox:
        reply = sandbox.run_probe(read_hand_in(tmp_path / "student.py", module_name="student.py"), "student.py", "call", {"function": "f", "cases": [[0]]},
                                  Limits(wall_s=5))
    (case,) = reply.value
    fds = case["value"]
    assert fds["0"] == "/dev/null" and fds["1"].endswith("output.log") and fds["2"].endswith("output.log")
    assert fds["3"].startswith("pipe:") and fds["4"].startswith("pipe:"), "the request and reply pipes"
    others = {n: target for n, target in fds.items() if n not in ("0", "1", "2", "3", "4")}
    # what is left is the listing's own descriptor: no socket, no other pipe (the fork server's, a tracker's)
    assert len(others) <= 1 and not any(t.startswith(("pipe:", "socket:")) for t in others.values()), fds


def test_grading_imports_no_torchvision_for_a_lab_that_does_not_preload_it():
    code = ("import sys; from grader.sandbox.runner import Sandbox; s = Sandbox().warm(); "
            "import subprocess; pid = s.server._proc.pid; "
            "maps = open(f'/proc/{pid}/maps').read(); print('torchvision' in maps); s.close()")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_a_fork_server_that_cannot_start_says_why_and_leaves_no_file(tmp_path):
    from grader.errors import SandboxError
    from grader.sandbox.forkserver import ForkServer

    before = set(Path("/tmp").glob("gradelab-forkserver-*"))
    server = ForkServer(preload=("no_such_module_for_gradelab",), ready_timeout=60)
    with pytest.raises(SandboxError, match="No module named 'no_such_module_for_gradelab'"):
        server.spawn(b"")
    server.close()
    assert set(Path("/tmp").glob("gradelab-forkserver-*")) <= before
