"""The second review's attacks (submissions/hostile/<lab>/, and what git cannot hold built here:
links, FIFOs, sparse files, deep folders), each graded in a batch beside honest hand-ins: every
one contained and reported as what it is, the honest ones keep their exact scores, and nothing
is left behind."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import api
from grader.intake.reader import read_hand_in
from grader.lab.manifest import Limits, LimitsOverride
from grader.options import Budget, Mode, RunOptions
from grader.sandbox import cgroup
from grader.sandbox.replies import ProbeFailure
from grader.sandbox.runner import Sandbox
from grader.sandbox.uids import FIRST_UID, LAST_UID, UidLease
from grader.sandbox.untrusted import clean_line, clean_text
from tests.conftest import CIFAR_SUBMISSIONS, ROOT, checks_by_id, cli
from tests.own_processes import own_child_uid_processes

HOSTILE = ROOT / "submissions" / "hostile"
REFERENCE = ROOT / "reference" / "cifar-convnet"
LIMITS = ["--wall-time", "10", "--cpu-time", "20", "--memory-mb", "2048"]
HONEST = {"correct": "correct", "missing-floor": "missing-floor", "solo.py": "solo.py",
          "zz-correct-after-the-others": "correct"}  # graded last: after every hostile hand-in
SEPARATE = {"kill-other-runs.py"}  # graded in a test of its own, while another run's child is alive
ISOLATED = os.geteuid() == 0 and cgroup.available() is not None and cgroup.base("memory") is not None
needs_isolation = pytest.mark.skipif(not ISOLATED, reason="needs root, namespaces and pids and memory cgroups")
CONTROL = {chr(c) for c in [*range(0, 9), *range(11, 32), 127, *range(0x80, 0xA0)]} | {"\u202e"}


def _control_characters(value) -> set[str]:
    """Every control character in a result, walking its JSON (keys too); newlines and tabs allowed."""
    if isinstance(value, str):
        return {ch for ch in value if ch in CONTROL}
    if isinstance(value, list):
        return set().union(*map(_control_characters, value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_control_characters(k) | _control_characters(v) for k, v in value.items())) if value else set()
    return set()


def _leftovers() -> dict[str, object]:
    """What this process's runs could leave: sandbox folders, cgroups, processes of a child's uid."""
    roots = {cgroup.base("pids"), cgroup.base("memory")} - {None}
    return {"dirs": sorted(p.name for p in Path("/tmp").glob(f"gradelab-{os.getpid()}-*")),
            "cgroups": sorted(str(p) for r in roots for p in r.glob(f"gradelab-{os.getpid()}-*")),
            "leases": sorted(os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                             if os.path.exists(f"/proc/self/fd/{fd}")
                             and os.readlink(f"/proc/self/fd/{fd}").startswith("/run/gradelab/uids")),
            "children": own_child_uid_processes()}


def _reader_attacks(root: Path, secret: Path) -> None:
    """The safe reader's attacks, which git cannot hold: each becomes a hand-in of the class."""
    def correct(name: str) -> Path:
        return Path(shutil.copytree(CIFAR_SUBMISSIONS / "correct", root / name))

    (root / "class-entry-linked-to-reference.py").symlink_to(REFERENCE / "reference.py")
    (root / "class-entry-linked-to-lab").symlink_to(REFERENCE)
    for name, make in {"answers-linked-to-reference": lambda p: p.symlink_to(REFERENCE / "answers.yaml"),
                       "answers-linked-to-root-only-file": lambda p: p.symlink_to(secret),
                       "answers-fifo": lambda p: os.mkfifo(p),
                       "answers-linked-to-dev-zero": lambda p: p.symlink_to("/dev/zero")}.items():
        sheet = correct(name) / "answers.yaml"
        sheet.unlink()
        make(sheet)
    module = correct("module-linked-to-reference") / "convnet.py"
    module.unlink()
    module.symlink_to(REFERENCE / "reference.py")
    os.mkfifo(correct("fifo-inside") / "notes.txt")
    deep = correct("six-hundred-folders")
    for _ in range(600):
        deep = deep / "d"
    deep.mkdir(parents=True)
    with open(correct("sparse-two-gib") / "weights.bin", "wb") as fh:
        fh.truncate(2 << 30)
    many = correct("many-small-files") / "junk"
    many.mkdir()
    for i in range(5000):
        (many / f"{i}.txt").touch()
    laughs = correct("billion-laughs")
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f'{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},'
              f'*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]' for i in range(8)]
    (laughs / "answers.yaml").write_text("\n".join(lines) + "\n")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The second review's cifar-convnet hand-ins and the reader's attacks, graded in one
    `gradelab grade` run with honest hand-ins (one of them last), a secret in the grader's
    environment and its log recorded; and what the machine looked like before and after."""
    base = tmp_path_factory.mktemp("second-pass")
    root = base / "class"
    root.mkdir()
    secret = base / "root-only.txt"
    secret.write_text("ROOT-ONLY-SECRET-42")
    secret.chmod(0o600)
    for path in (HOSTILE / "cifar-convnet").glob("*.py"):
        if path.name not in SEPARATE:
            shutil.copy(path, root / path.name)
    for name, source in HONEST.items():
        src = CIFAR_SUBMISSIONS / source
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    _reader_attacks(root, secret)
    out = base / "out"
    records = _Records()
    logging.getLogger().addHandler(records)
    before = _leftovers()
    started = time.monotonic()
    try:
        result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf", *LIMITS,
                     env={"GRADELAB_SECRET_TOKEN": "hunter2-do-not-leak"})
    finally:
        logging.getLogger().removeHandler(records)
    elapsed = time.monotonic() - started
    after = _leftovers()
    results = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    return {"cli": result, "results": results, "before": before, "after": after, "log": records.lines,
            "elapsed": elapsed, "root": root, "secret": secret}


def conv(batch, name):
    return checks_by_id(batch["results"][name])["conv-output-size"]


def test_the_whole_batch_is_graded_and_fast(batch):
    # 3: the batch finished, and says that some hand-ins were refused (links) or had nothing to grade
    assert batch["cli"].exit_code == 3, batch["cli"].output
    assert "had nothing to grade" in batch["cli"].output
    expected = len(list((HOSTILE / "cifar-convnet").glob("*.py"))) - len(SEPARATE) + len(HONEST) + 12
    assert len(batch["results"]) == expected
    assert batch["elapsed"] < 240, "a FIFO, a sparse file or a deep folder must not hold the batch up"


def test_honest_hand_ins_keep_their_exact_scores_after_every_attack(batch, cifar_class):
    for name, source in HONEST.items():
        graded = {c["id"]: (c["status"], c["score"]) for c in batch["results"][name.removesuffix(".py")]["checks"]}
        alone = {c.id: (c.status.value, c.score) for c in cifar_class[source.removesuffix(".py")].checks}
        assert graded == alone, name


def test_nothing_is_left_behind(batch):
    assert batch["after"] == batch["before"] == {"dirs": [], "cgroups": [], "leases": [], "children": []} \
        or not ISOLATED


# --- the reader --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["class-entry-linked-to-reference", "class-entry-linked-to-lab"])
def test_a_class_entry_linked_to_the_lab_is_refused_not_graded_as_the_reference(batch, name):
    result = batch["results"][name]
    assert result["score"] == 0 and "links are not followed" in result["checks"][0]["message"]


@pytest.mark.parametrize("name", ["answers-linked-to-reference", "answers-linked-to-root-only-file", "answers-fifo",
                                  "answers-linked-to-dev-zero", "billion-laughs"])
def test_an_answer_sheet_that_is_not_a_plain_small_file_costs_only_the_answer_checks(batch, cifar_class, name):
    result = batch["results"][name]
    answers = [c for c in result["checks"] if c["kind"] == "answer"]
    assert answers and all(c["score"] == 0 for c in answers)
    assert "ROOT-ONLY-SECRET" not in json.dumps(result)
    module_checks = {c["id"]: c["score"] for c in result["checks"] if c["kind"] != "answer"}
    assert module_checks == {c.id: c.score for c in cifar_class["correct"].checks if c.kind != "answer"}


def test_a_module_linked_to_the_reference_is_not_graded_as_the_students(batch):
    result = batch["results"]["module-linked-to-reference"]
    assert all(c["score"] == 0 for c in result["checks"] if c["kind"] != "answer")
    assert "symbolic links are not followed" in conv(batch, "module-linked-to-reference")["message"]


@pytest.mark.parametrize("name, words", [("fifo-inside", "FIFO"), ("six-hundred-folders", "deeper than"),
                                         ("sparse-two-gib", "over"), ("many-small-files", "more than")])
def test_special_files_deep_folders_and_floods_are_left_out_and_named(batch, cifar_class, name, words):
    result = batch["results"][name]
    assert result["score"] == cifar_class["correct"].score
    assert any(words in note for note in result["notes"]), result["notes"]


# --- what a child sees and inherits ------------------------------------------------------------

@needs_isolation
def test_the_child_sees_no_other_process(batch):
    log = batch["results"]["read-cmdlines"]["log_tail"]
    assert "pids seen: [2]" in log  # its own process, pid 2 of its own namespace
    assert "pytest" not in log and "hunter2" not in log  # the grader's command line and environment
    assert conv(batch, "read-cmdlines")["status"] == "passed"


@needs_isolation
def test_memory_held_in_a_memfd_is_counted_and_the_child_killed_as_out_of_memory(batch):
    for check in batch["results"]["memfd-hoard"]["checks"]:
        if check["kind"] not in ("answer", "written"):  # about the sheet (a written answer awaits a person)
            assert check["status"] == "error" and check["diagnosis"] == "out-of-memory", check
            assert "ran out of memory: killed at the memory limit (2048 MiB)" in check["message"]


@needs_isolation
def test_the_working_folder_is_a_capped_tmpfs(batch):
    log = batch["results"]["disk-filler"]["log_tail"]
    written = {line.split(":")[0]: line for line in log.splitlines() if "written" in line}
    folder_mib = int(written["working folder"].split(": ")[1].split(" MiB")[0])
    assert folder_mib <= 256 and "(ENOSPC)" in written["working folder"]
    assert int(written["/tmp"].split(": ")[1].split(" MiB")[0]) <= 256
    made = next(line for line in log.splitlines() if "files made" in line)
    assert int(made.split(": ")[1].split(" files")[0]) <= 20_000 and "(ENOSPC)" in made
    assert conv(batch, "disk-filler")["status"] == "passed"


def test_a_hand_in_that_writes_to_every_descriptor_fails_alone(batch):
    c = conv(batch, "write-every-descriptor")
    assert c["status"] == "error" and c["score"] == 0
    assert "sent back a reply the grader cannot read" in c["message"]  # its own reply pipe, garbled


# --- untrusted text ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["escape-sequences", "forged-reply"])
def test_no_control_character_from_a_child_reaches_a_result(batch, name):
    result = batch["results"][name]
    assert _control_characters(result) == set()
    assert conv(batch, name)["score"] == 0


def test_what_a_child_prints_and_raises_is_shown_escaped(batch):
    result = batch["results"]["escape-sequences"]
    assert "\\x1b]0;gradelab: all passed\\x07" in result["log_tail"]
    assert "\\x1b]8;;file:///etc/shadow" in conv(batch, "escape-sequences")["message"]
    assert "\\x0d" in result["log_tail"] and "\\u202eevil" in result["log_tail"]
    forged = conv(batch, "forged-reply")["message"]
    assert "\\x1b[31m" in forged and "\n" not in forged  # a type and a place are one line each


def test_a_forged_reply_writes_nothing_in_the_graders_log(batch):
    log = "\n".join(batch["log"])
    assert "FAKE WARNING" not in log and "fake" not in log and "\x1b" not in log
    assert "\n" not in "".join(batch["log"])  # no record spans lines


def test_gradelab_check_prints_no_escape_sequence_to_the_terminal(tmp_path):
    result = cli("check", str(HOSTILE / "cifar-convnet" / "escape-sequences.py"), "--lab", "cifar-convnet",
                 "--pdf", str(tmp_path / "report.pdf"), "--html", *LIMITS)
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output and "\r" not in result.output
    assert "\\x1b" in result.output  # shown, escaped
    html = (tmp_path / "report.html").read_text()
    assert "\x1b" not in html and "\x07" not in html


def test_untrusted_text_keeps_what_is_readable():
    assert clean_line("conv2d: ok ✓ (étape 2)") == "conv2d: ok ✓ (étape 2)"
    assert clean_line("a\nb\r\x1b[2J") == "a\\x0ab\\x0d\\x1b[2J"
    assert clean_text("line 1\n\tline 2\r\x07") == "line 1\n\tline 2\\x0d\\x07"
    assert clean_text("\u202e\u200b\ud800") == "\\u202e\\u200b\\ud800"


# --- one run's children are not another's to kill ---------------------------------------------

def _wait_for_child_of(pid: int, timeout: float) -> bool:
    """Whether a sandboxed child of the grader ``pid`` is alive (its cgroup has members)."""
    root = cgroup.base("pids")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for group in root.glob(f"gradelab-{pid}-*"):
            if (group / "cgroup.procs").read_text().split():
                return True
        time.sleep(0.2)
    return False


@needs_isolation
def test_a_hand_in_cannot_kill_the_children_of_another_run(tmp_path):
    """Another gradelab run's honest child sleeps through the attack and answers; the attacker,
    with a uid of its own in a pid namespace of its own, kills nothing."""
    slow = tmp_path / "slow-honest"
    slow.mkdir()
    (slow / "convnet.py").write_text(
        "import os, time\nprint('uid', os.getuid())\nSLEPT = []\n"
        "def conv_output_size(x, k, p, s):\n"
        "    if not SLEPT:\n        time.sleep(15)\n        SLEPT.append(1)\n        print('woke up')\n"
        "    return (x + 2 * p - k) // s + 1\n")
    other_run = subprocess.Popen([sys.executable, "-m", "grader", "check", str(slow), "--lab", "cifar-convnet",
                                  "--only", "conv-output-size", "--format", "json", "--wall-time", "90"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, text=True)
    try:
        assert _wait_for_child_of(other_run.pid, 120), "the other run's child never started"
        root = tmp_path / "class"
        root.mkdir()
        shutil.copy(HOSTILE / "cifar-convnet" / "kill-other-runs.py", root)
        out = tmp_path / "out"
        assert cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf", *LIMITS).exit_code == 0
        assert _wait_for_child_of(other_run.pid, 0.1), "the other run's child died during the attack"
        output, _ = other_run.communicate(timeout=120)
    finally:
        other_run.kill()
    honest = json.loads(output)
    assert honest["checks"][0]["status"] == "passed" and honest["checks"][0]["score"] == 2
    assert "woke up" in honest["log_tail"]
    attacker = json.loads((out / "kill-other-runs.json").read_text())["log_tail"]
    assert "killed: []" in attacker
    uids = {int(honest["log_tail"].split("uid ")[1].split()[0]), int(attacker.split("uid ")[1].split()[0])}
    assert len(uids) == 2 and all(FIRST_UID <= u <= LAST_UID for u in uids)


@needs_isolation
def test_two_live_children_never_share_a_uid_and_a_released_one_is_reused(tmp_path):
    with UidLease(folder=tmp_path / "uids") as first, UidLease(folder=tmp_path / "uids") as second:
        assert first.uid == FIRST_UID and second.uid == FIRST_UID + 1
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from grader.sandbox.uids import UidLease; "
        f"lease = UidLease(folder=Path({str(tmp_path / 'uids')!r})); print(lease.uid, flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert int(holder.stdout.readline()) == FIRST_UID  # released above: free again
        with UidLease(folder=tmp_path / "uids") as mine:
            assert mine.uid == FIRST_UID + 1  # another process holds the first: a run of its own
    finally:
        holder.communicate("")
    with UidLease(folder=tmp_path / "uids") as again:
        assert again.uid == FIRST_UID  # its holder ended: the kernel dropped the lock


def test_a_lease_folder_others_could_write_to_is_not_trusted(tmp_path):
    folder = tmp_path / "uids"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    assert UidLease(folder=folder).uid is None


# --- the fork server ---------------------------------------------------------------------------

def _honest(tmp_path: Path) -> Path:
    path = tmp_path / "honest" / "student.py"
    path.parent.mkdir()
    path.write_text("def f(x):\n    return x + 1\n")
    return path


def test_the_next_honest_child_keeps_its_exact_answer_after_one_that_writes_to_every_descriptor(tmp_path):
    hostile = tmp_path / "hostile" / "student.py"
    hostile.parent.mkdir()
    hostile.write_text((HOSTILE / "cifar-convnet" / "write-every-descriptor.py").read_text()
                       + "\ndef f(x):\n    return x + 1\n")
    call = {"function": "f", "cases": [[1]]}
    with Sandbox() as sandbox:
        with pytest.raises(ProbeFailure, match="cannot read"):
            sandbox.run_probe(read_hand_in(hostile, module_name="student.py"), "student.py", "call", call, Limits(wall_s=10))
        reply = sandbox.run_probe(read_hand_in(_honest(tmp_path), module_name="student.py"), "student.py", "call", call, Limits(wall_s=10))
        assert reply.value == [{"ok": True, "value": 2}]
        assert sandbox.server.restarts == 0 and sandbox.server.alive()


@pytest.mark.own_sandbox
def test_a_fork_server_killed_between_two_hand_ins_costs_the_next_one_nothing(tmp_path, cifar_lab, cifar_class):
    import signal

    from grader.grading.engine import grade_submission
    from grader.grading.run import Run

    options = RunOptions(mode=Mode.grade, reports=False, limits=LimitsOverride(wall_s=10, cpu_s=20, memory_mb=1024))
    with Run(cifar_lab, options) as run:
        grade_submission(run, CIFAR_SUBMISSIONS / "missing-floor")
        server = run.sandbox.server._proc
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        result = grade_submission(run, CIFAR_SUBMISSIONS / "correct")
        assert run.sandbox.server.restarts == 1
    alone = cifar_class["correct"]
    assert [(c.id, c.status, c.score) for c in result.checks] == [(c.id, c.status, c.score) for c in alone.checks]


def test_a_signal_is_still_reported_through_the_processes_that_relay_it(tmp_path):
    path = tmp_path / "student.py"
    path.write_text("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGTERM)\n")
    with Sandbox() as sandbox:
        with pytest.raises(ProbeFailure, match="was killed by signal SIGTERM"):
            sandbox.run_probe(read_hand_in(path, module_name="student.py"), "student.py", "call", {"function": "f", "cases": [[1]]}, Limits(wall_s=10))


# --- cheating that is not a crash --------------------------------------------------------------

def _grade(tmp_path: Path, lab: str, hand_ins: dict[str, Path], **options) -> dict[str, dict[str, dict]]:
    root = tmp_path / "class"
    root.mkdir()
    for name, src in hand_ins.items():
        shutil.copytree(src, root / name)
    batch = api.grade(root, lab, tmp_path / "out", RunOptions(mode=Mode.grade, reports=False, **options))
    return {r.submission: {c.id: c.model_dump(mode="json") for c in r.checks} for r in batch.results}


@pytest.fixture(scope="module")
def mlp_batch(tmp_path_factory):
    """mlp-backprop's hostile hand-ins beside the correct one: the backward check and one check
    that trains by hand (the lab's loop calls backward there)."""
    return _grade(tmp_path_factory.mktemp("mlp"), "mlp-backprop", {
        "correct": ROOT / "submissions" / "mlp-backprop" / "correct",
        **{p.name: p for p in (HOSTILE / "mlp-backprop").iterdir() if p.is_dir()}},
        only=("backward", "train-circles"), train=True)


def test_mlp_backprop_autograd_is_forbidden_in_backward_and_wherever_the_loop_calls_it(mlp_batch):
    assert {k: (c["status"], c["score"]) for k, c in mlp_batch["correct"].items()} == {
        "backward": ("passed", 4.0), "train-circles": ("passed", 2.0)}
    recompute = mlp_batch["autograd-backward"]
    assert recompute["backward"]["score"] == 0 and recompute["backward"]["diagnoses"] == ["autograd-used"]
    assert recompute["train-circles"]["score"] == 0 and "uses autograd" in recompute["train-circles"]["message"]
    two_faced = mlp_batch["zeros-under-the-check"]
    assert two_faced["backward"]["score"] == 0
    assert two_faced["train-circles"]["score"] == 0 and two_faced["train-circles"]["diagnoses"] == ["autograd-used"]


def test_a_rewritten_training_loop_is_judged_by_the_budget_and_the_graders_own_accuracy(mlp_batch):
    doubled = mlp_batch["doubled-epochs"]["train-circles"]
    assert doubled["score"] == 0 and doubled["diagnoses"] == ["harness-tampered"]
    assert "it reports 300 epochs of loss where the budget runs 150" in doubled["message"]
    assert mlp_batch["doubled-epochs"]["backward"]["score"] == 4.0  # its functions are right
    made_up = mlp_batch["made-up-curve"]["train-circles"]
    assert made_up["score"] == 0 and made_up["status"] == "failed"
    assert made_up["details"]["curves"]["loss"]["train"][-1] < 0.02  # the made-up curve is shown, not graded
    assert made_up["got"] < 0.8  # the grader's accuracy: a network that never moved


def test_layers_from_scratch_forbids_operators_however_they_are_reached(tmp_path):
    graded = _grade(tmp_path, "layers-from-scratch", {
        "correct": ROOT / "submissions" / "layers-from-scratch" / "correct",
        "aliased-ops": HOSTILE / "layers-from-scratch" / "aliased-ops"},
        only=("maxpool2d", "conv2d", "sigmoid", "avgpool2d", "conv2d-dilated"))
    correct, aliased = graded["correct"], graded["aliased-ops"]
    assert all(c["status"] == "passed" for c in correct.values())
    for check, operator in {"maxpool2d": "aten::max_pool2d_with_indices", "conv2d": "aten::convolution",
                            "sigmoid": "aten::sigmoid"}.items():
        assert aliased[check]["score"] == 0 and aliased[check]["diagnoses"] == ["forbidden-call"]
        assert f"ran the operator {operator}" in aliased[check]["message"]
    others = {k: c["score"] for k, c in aliased.items() if k not in ("maxpool2d", "conv2d", "sigmoid")}
    assert others == {k: c["score"] for k, c in correct.items() if k in others}


@pytest.fixture
def world_readable_data_root():
    """A --data-root outside every folder the sandbox used to cover (/var is the system's), as
    course machines keep data sets: readable by everyone.

    Held under a machine-wide lock: the hostile hand-in searches the whole machine for CIFAR's
    test labels, and another suite's world-readable copy (two suites at once, seen: the thief
    scored 100 %) is not the folder this run hides."""
    import fcntl

    from grader.data.synth_cifar import write_synth_cifar10

    lock = open("/var/lock/gradelab-test-world-readable-data.lock", "a+")  # held until the test ends
    fcntl.flock(lock, fcntl.LOCK_EX)
    folder = Path("/var/lib") / f"gradelab-test-data-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        # the bundled set itself, so that the lab's calibration applies (``grader.lab.calibration``)
        write_synth_cifar10(folder, style="colour-axes")  # cifar-training's own set
        subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@needs_isolation
def test_the_data_root_is_covered_like_the_labs(tmp_path, world_readable_data_root):
    graded = _grade(tmp_path, "cifar-training", {
        "correct": ROOT / "submissions" / "cifar-training" / "correct",
        "reads-test-labels": HOSTILE / "cifar-training" / "reads-test-labels"},
        only=("train-baseline",), train=True, budget=Budget.smoke, data_root=world_readable_data_root)
    thief, honest = graded["reads-test-labels"]["train-baseline"], graded["correct"]["train-baseline"]
    assert thief["details"]["test_accuracy"] == honest["details"]["test_accuracy"] < 0.9  # what the network learned
    log = json.loads((tmp_path / "out" / "reads-test-labels.json").read_text())["log_tail"]
    assert "no test labels found" in log
