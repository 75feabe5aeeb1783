"""Hostile hand-ins: every attack in submissions/hostile/ is contained, reported clearly, and
leaves nothing behind; honest hand-ins graded in the same batch keep their exact scores."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from grader.sandbox import cgroup
from grader.sandbox.uids import FIRST_UID, LAST_UID
from tests.conftest import CIFAR_SUBMISSIONS, ROOT, cli
from tests.own_processes import own_child_uid_processes

HOSTILE = ROOT / "submissions" / "hostile"
HONEST = ["correct", "in-channels-confusion", "spatial-as-kernel", "missing-plus-one", "missing-floor",
          "biases-forgotten", "wrong-receptive-field", "syntax-error", "missing-class", "wrong-padding", "solo.py"]
LIMITS = ["--wall-time", "3", "--cpu-time", "6", "--memory-mb", "1024"]

ISOLATED = os.geteuid() == 0 and cgroup.available() is not None
needs_isolation = pytest.mark.skipif(not ISOLATED, reason="needs root and a writable pids cgroup (namespaces, privilege drop)")


def _child_processes() -> list[str]:
    """Processes running as a child's uid that this process's runs made (another suite's, or a
    real grading job's, on the same machine are not counted: ``own_processes``)."""
    return own_child_uid_processes()


def _sandbox_dirs() -> set[str]:
    """This process's sandbox folders (the batch runs in it): other engineers' runs may come and go."""
    return {p.name for p in Path("/tmp").glob(f"gradelab-{os.getpid()}-*")}


def _cgroups() -> set[str]:
    """This process's cgroups, of every controller."""
    roots = {cgroup.base("pids"), cgroup.base("memory")} - {None}
    return {str(p) for root in roots for p in root.glob(f"gradelab-{os.getpid()}-*")}


@pytest.fixture(scope="module")
def mixed_batch(tmp_path_factory):
    """30 hand-ins, 19 hostile and 11 honest, graded in one `gradelab grade` run, with a secret in
    the grader's environment; what the machine looked like before and after."""
    root = tmp_path_factory.mktemp("mixed") / "class"
    root.mkdir()
    for path in HOSTILE.glob("*.py"):
        shutil.copy(path, root / f"hostile-{path.name}")
    for name in HONEST:
        src = CIFAR_SUBMISSIONS / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    out = root.parent / "out"
    before = {"dirs": _sandbox_dirs(), "cgroups": _cgroups(), "children": _child_processes()}
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf", *LIMITS,
                 env={"GRADELAB_SECRET_TOKEN": "hunter2-do-not-leak"})
    after = {"dirs": _sandbox_dirs(), "cgroups": _cgroups(), "children": _child_processes()}
    results = {p.stem.removeprefix("hostile-"): json.loads(p.read_text()) for p in out.glob("*.json")}
    return {"cli": result, "results": results, "before": before, "after": after, "out": out, "root": root}


def check(batch, name, check_id="conv-output-size"):
    return next(c for c in batch["results"][name]["checks"] if c["id"] == check_id)


def test_the_batch_of_thirty_grades_completely(mixed_batch):
    assert mixed_batch["cli"].exit_code == 0, mixed_batch["cli"].output
    assert len(mixed_batch["results"]) == 30
    assert (mixed_batch["out"] / "class.csv").read_text().count("\n") == 31


def test_honest_hand_ins_keep_their_exact_scores_beside_hostile_ones(mixed_batch, cifar_class):
    for name in HONEST:
        key = name.removesuffix(".py")
        mixed = {c["id"]: (c["status"], c["score"]) for c in mixed_batch["results"][key]["checks"]}
        alone = {c.id: (c.status.value, c.score) for c in cifar_class[key].checks}
        assert mixed == alone, name


def test_the_machine_is_left_with_no_stray_processes_or_files(mixed_batch):
    before, after = mixed_batch["before"], mixed_batch["after"]
    assert after["dirs"] <= before["dirs"], "sandbox working directories left in /tmp"
    assert after["cgroups"] <= before["cgroups"], "cgroups left behind"
    assert after["children"] == before["children"] == [] or not ISOLATED
    assert not Path("/tmp/gradelab-hostile-daemon-alive").exists()
    leaked = [p for p in [*mixed_batch["out"].rglob("fake-result-lines.json"), *mixed_batch["root"].rglob("fake-*.json"),
                          *(ROOT / "results").rglob("fake-result-lines.json")]]
    assert leaked == []


@pytest.mark.parametrize("name", ["sleep-forever", "busy-threads", "ignores-sigterm", "fork-bomb"])
def test_hangs_are_killed_at_the_limit_and_reported_as_timeouts(mixed_batch, name):
    for c in mixed_batch["results"][name]["checks"]:
        if c["kind"] not in ("answer", "written"):  # about the sheet (a written answer awaits a person)
            assert c["status"] == "timeout", (name, c["id"], c["message"])
            assert "limit" in c["message"]
    assert all(c["duration_s"] < 10 for c in mixed_batch["results"][name]["checks"])


@pytest.mark.parametrize("name", ["list-bomb", "tensor-bomb"])
def test_memory_bombs_are_stopped_and_called_out_of_memory(mixed_batch, name):
    c = check(mixed_batch, name)
    assert c["status"] == "error" and c["diagnosis"] == "out-of-memory"
    assert "ran out of memory" in c["message"] and "Killed" not in c["message"]


@pytest.mark.parametrize("name, words", [
    ("segfault", "crashed with a segmentation fault"),
    ("deep-recursion", "RecursionError: maximum recursion depth exceeded"),
    ("keyboard-interrupt", "could not be imported: KeyboardInterrupt"),
    ("exit-zero-at-import", "could not be imported: SystemExit: 0"),
    ("os-exit-in-function", "ended the process (exit code 0) before answering"),
])
def test_crashes_and_early_exits_get_a_clear_message_never_a_pass(mixed_batch, name, words):
    c = check(mixed_batch, name)
    assert c["status"] in ("error", "failed") and c["score"] == 0
    assert words in c["message"]


@pytest.mark.parametrize("name", ["always-equal", "monkeypatch-compare", "fake-result-lines"])
def test_the_verdict_cannot_be_forged(mixed_batch, name):
    c = check(mixed_batch, name)
    assert c["status"] == "failed" and c["score"] == 0
    assert mixed_batch["results"][name]["score"] == 0


def test_printed_fake_results_stay_printed_text(mixed_batch):
    log = mixed_batch["results"]["fake-result-lines"]["log_tail"]
    assert '"status": "passed"' in log  # shown to the instructor as output, nothing more


def test_an_output_flood_is_truncated_to_its_tail(mixed_batch):
    result = mixed_batch["results"]["output-flood"]
    assert check(mixed_batch, "output-flood")["status"] == "passed"
    assert len(result["log_tail"]) < 70 * 1024
    assert "earlier bytes of output dropped" in result["log_tail"] and "END OF FLOOD" in result["log_tail"]


def test_a_daemon_does_not_outlive_its_check(mixed_batch):
    assert check(mixed_batch, "daemon")["status"] == "passed"
    assert not Path("/tmp/gradelab-hostile-daemon-alive").exists()


def test_the_environment_holds_no_secrets(mixed_batch):
    import ast

    log = mixed_batch["results"]["print-env"]["log_tail"]
    assert "hunter2" not in log
    printed = dict(ast.literal_eval(log.strip().splitlines()[-1]))
    assert set(printed) == {"PATH", "LANG", "HOME", "TMPDIR", "PYTHONHASHSEED", "OMP_NUM_THREADS",
                            "MKL_NUM_THREADS", "PROGRESS_FILE", "USER", "LOGNAME"}
    assert printed["USER"] == printed["LOGNAME"] == "gradelab-child"  # no name of the grader's
    # the progress line is the grader's file, beside the child's working folder, not in it
    assert printed["HOME"] == printed["TMPDIR"]
    assert Path(printed["PROGRESS_FILE"]).parent == Path(printed["HOME"]).parent


@needs_isolation
def test_the_child_cannot_read_the_lab_the_class_or_the_results(mixed_batch):
    c = check(mixed_batch, "steal-reference")
    assert c["status"] == "failed" and "returned 0" in c["message"]
    assert "found: []" in mixed_batch["results"]["steal-reference"]["log_tail"]


@needs_isolation
def test_the_child_runs_as_a_uid_of_its_own_without_network_and_cannot_write_outside(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    secret.chmod(0o600)
    (tmp_path / "hand-in").mkdir()
    (tmp_path / "hand-in" / "convnet.py").write_text(f'''
import os, socket
print("uid", os.getuid(), "gid", os.getgid(), "groups", os.getgroups())
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1); print("connected")
except OSError as exc:
    print("no connection:", type(exc).__name__)
for path in [{str(secret)!r}, "/etc/shadow"]:
    try:
        open(path).read(); print("read", path)
    except OSError as exc:
        print("cannot read", path, type(exc).__name__)
for path in ["/usr/gradelab-was-here", "{ROOT}/gradelab-was-here"]:
    try:
        open(path, "w").write("x"); print("wrote", path)
    except OSError as exc:
        print("cannot write", path, type(exc).__name__)
import json, decimal, sqlite3  # the standard library still imports as the child's uid
def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
''')
    result = cli("check", str(tmp_path / "hand-in"), "--lab", "cifar-convnet", "--only", "conv-output-size",
                 "--format", "json", *LIMITS)
    listener.close()
    data = json.loads(result.output)
    log = data["log_tail"]
    assert data["checks"][0]["status"] == "passed", data["checks"][0]["message"]
    uid = int(log.split("uid ")[1].split()[0])
    assert FIRST_UID <= uid <= LAST_UID and f"uid {uid} gid {uid} groups []" in log
    assert "no connection:" in log and "connected" not in log.replace("no connection", "")
    assert f"cannot read {secret}" in log and "cannot read /etc/shadow" in log
    assert "wrote" not in log
    assert not (ROOT / "gradelab-was-here").exists() and not Path("/usr/gradelab-was-here").exists()


def test_a_grader_killed_mid_batch_loses_nothing_and_the_rerun_finishes(tmp_path):
    """Interrupting `gradelab grade` while a hostile hand-in hangs keeps every finished result."""
    root = tmp_path / "class"
    root.mkdir()
    shutil.copytree(CIFAR_SUBMISSIONS / "correct", root / "a-correct")
    shutil.copy(HOSTILE / "sleep-forever.py", root / "b-sleep-forever.py")
    out = tmp_path / "out"
    said = tmp_path / "stderr.txt"
    with said.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(root), "--lab", "cifar-convnet",
                                 "--out", str(out), "--no-pdf", "--wall-time", "30"],
                                stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
    try:
        for _ in range(600):
            if (out / "a-correct.json").exists():
                break
            proc.poll()
            assert proc.returncode is None
            import time
            time.sleep(0.1)
        proc.terminate()
        proc.wait(30)
    finally:
        proc.kill()
    assert json.loads((out / "a-correct.json").read_text())["score"] == 17
    assert not (out / "b-sleep-forever.json").exists()
    assert proc.returncode == 128 + 15
    assert (f"Stopped: 1 of 2 hand-in(s) have a result in {out}/ (class.csv lists them). Run the same command "
            "again to grade the rest.") in " ".join(said.read_text().split())
    rerun = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf", *LIMITS)
    assert rerun.exit_code == 0 and "1 already graded, skipped" in rerun.output
    assert json.loads((out / "b-sleep-forever.json").read_text())["checks"][0]["status"] == "timeout"


@pytest.mark.parametrize("swap", ["symlink", "fifo"])
def test_a_child_cannot_make_the_grader_read_or_block_on_its_output_or_progress_file(tmp_path, swap):
    """The grader reads two files a child writes: what it printed and its progress line. Were
    they the child's to replace, a link to a file only the grader can read would land in the
    report and a FIFO would block the grader. Both sit in a folder of the grader's: the output
    file is reached only through descriptors 1 and 2, the progress file is bound in, and neither
    can be unlinked or replaced (a link or FIFO the child makes in its own folder is its own)."""
    secret = tmp_path / "grader-only.txt"
    secret.write_text("TOP-SECRET-GRADER-FILE")
    secret.chmod(0o600)
    make = f"os.symlink({str(secret)!r}, name)" if swap == "symlink" else "os.mkfifo(name)"
    (tmp_path / "hand-in").mkdir()
    (tmp_path / "hand-in" / "convnet.py").write_text(f'''
import os
progress = os.environ["PROGRESS_FILE"]
for name in [progress, os.path.join(os.path.dirname(progress), "output.log"), "/proc/self/fd/1", "output.log"]:
    try:
        os.unlink(name)
        print("unlinked", name)
    except OSError as exc:
        print("cannot unlink", name, type(exc).__name__)
    try:
        {make}
        print("made", name)
    except OSError as exc:
        print("cannot make", name, type(exc).__name__)
def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
''')
    result = cli("check", str(tmp_path / "hand-in"), "--lab", "cifar-convnet", "--only", "conv-output-size",
                 "--format", "json", *LIMITS)
    data = json.loads(result.output)
    log = data["log_tail"]
    assert data["checks"][0]["status"] == "passed"
    assert "TOP-SECRET" not in log
    if ISOLATED:
        grader_files = [line for line in log.splitlines() if "output.log" in line and "/" in line or ".progress" in line]
        assert grader_files and all(line.startswith("cannot") for line in grader_files), log
