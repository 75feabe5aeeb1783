"""Grading a class fast: worker processes on one machine (--jobs) and a Ray cluster (--ray) give
the very results a serial run gives, a killed batch resumes, and a lost cluster worker is retried."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import CIFAR_SUBMISSIONS, ROOT, cli
from tests.own_processes import descends_from

# Production's lifecycle: each run here starts and ends its own fork server (tests/conftest.py).
pytestmark = pytest.mark.own_sandbox

HOSTILE = ROOT / "submissions" / "hostile"
FAST = ["--wall-time", "4", "--cpu-time", "8", "--memory-mb", "1024"]
HONEST = ["correct", "missing-floor", "in-channels-confusion", "syntax-error", "missing-class", "wrong-padding",
          "biases-forgotten", "solo.py"]
ATTACKS = ["sleep-forever.py", "fork-bomb.py", "segfault.py", "tensor-bomb.py"]


def make_class(root: Path, honest=HONEST, attacks=()) -> Path:
    root.mkdir(parents=True)
    for name in honest:
        src = CIFAR_SUBMISSIONS / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    for name in attacks:
        shutil.copy(HOSTILE / name, root / f"hostile-{name}")
    return root


def comparable(out: Path) -> dict[str, dict]:
    """Each result JSON without what differs between two runs of the same grading: when and how long."""
    results = {}
    for path in sorted(out.glob("*.json")):
        data = json.loads(path.read_text())
        data.pop("graded_at")
        data.pop("duration_s")
        for check in data["checks"]:
            check.pop("duration_s")
        results[path.name] = data
    return results


def grade_with(root: Path, out: Path, executor) -> None:
    from grader import api
    from grader.options import LimitsOverride, RunOptions

    options = RunOptions(reports=False, limits=LimitsOverride(wall_s=4, cpu_s=8, memory_mb=1024))
    api.grade(root, "cifar-convnet", out, options, executor=executor)


def test_two_workers_give_the_results_of_one(tmp_path):
    from grader.grading.parallel import ParallelExecutor

    root = make_class(tmp_path / "class", attacks=["segfault.py", "tensor-bomb.py"])
    one = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(tmp_path / "one"), "--no-pdf", "--jobs", "1", *FAST)
    assert one.exit_code == 0, one.output
    two = ParallelExecutor(2, start_after_s=0)  # a worker at once, whatever the hand-ins cost
    grade_with(root, tmp_path / "two", two)
    assert two.workers_started == 1
    serial, parallel = comparable(tmp_path / "one"), comparable(tmp_path / "two")
    assert len(serial) == 10 and parallel == serial
    assert (tmp_path / "one" / "class.csv").read_text() == (tmp_path / "two" / "class.csv").read_text()


def test_the_default_grades_a_small_class_in_this_process(tmp_path):
    """Worker start-ups (torch, a fork server each) cost more than they save on a few hand-ins."""
    from grader.api import load_lab
    from grader.grading.batch import choose_executor
    from grader.grading.executor import SerialExecutor
    from grader.grading.parallel import ParallelExecutor
    from grader.grading.run import Run
    from grader.options import RunOptions

    lab = load_lab("cifar-convnet")
    run = Run(lab, RunOptions(device="cpu"))
    assert isinstance(choose_executor(run, 3), SerialExecutor)
    assert isinstance(choose_executor(Run(lab, RunOptions(device="cpu", jobs=2)), 3), ParallelExecutor)


def test_more_jobs_start_no_worker_for_quick_hand_ins(tmp_path):
    """A worker's start-up (torch, its fork server) costs more than a few static hand-ins: asking
    for two jobs then grades them all in this process, so it is never slower than one."""
    from grader.grading.parallel import ParallelExecutor

    root = make_class(tmp_path / "class", honest=HONEST[:4])
    executor = ParallelExecutor(2)
    grade_with(root, tmp_path / "out", executor)
    assert executor.workers_started == 0 and len(comparable(tmp_path / "out")) == 4


def test_more_jobs_start_workers_once_the_hand_ins_are_slow(tmp_path):
    """Hand-ins that take seconds each (here: code that sleeps until its wall-time limit) are worth
    a worker: it starts while this process grades, and every hand-in is graded exactly once."""
    from grader.grading.parallel import ParallelExecutor

    root = make_class(tmp_path / "class", honest=["correct"],
                      attacks=["sleep-forever.py"])
    for i in range(3):
        shutil.copy(HOSTILE / "sleep-forever.py", root / f"sleeper-{i}.py")
    executor = ParallelExecutor(2, start_after_s=3)
    grade_with(root, tmp_path / "out", executor)
    results = comparable(tmp_path / "out")
    assert executor.workers_started == 1
    assert sorted(results) == ["correct.json", "hostile-sleep-forever.json", "sleeper-0.json", "sleeper-1.json",
                               "sleeper-2.json"]
    assert results["correct.json"]["score"] == 17


def test_hand_ins_side_by_side_never_need_more_cores_than_there_are(tmp_path, monkeypatch):
    """cifar-training's training checks use two threads each: on two cores a second training at
    once only slows both, so two jobs grade one hand-in at a time, whatever they cost."""
    from grader import api
    from grader.api import load_lab
    from grader.grading import parallel
    from grader.grading.run import Run
    from grader.options import Budget, RunOptions

    lab = load_lab("cifar-training")
    assert parallel.threads_per_hand_in(Run(lab, RunOptions(train=True))) == 2
    assert parallel.threads_per_hand_in(Run(lab, RunOptions(train=False))) == 1
    monkeypatch.setattr(parallel, "cpu_count", lambda: 2)
    root = tmp_path / "class"
    root.mkdir()
    for name in ("correct", "nan-loss"):
        shutil.copytree(ROOT / "submissions" / "cifar-training" / name, root / name)
    executor = parallel.ParallelExecutor(2, start_after_s=0)
    options = RunOptions(reports=False, train=True, budget=Budget.smoke, only=("train-baseline",))
    api.grade(root, lab, tmp_path / "out", options, executor=executor)
    assert executor.workers_started == 0 and len(list((tmp_path / "out").glob("*.json"))) == 2


def test_a_killed_parallel_batch_resumes_and_finishes_with_every_result(tmp_path):
    root = make_class(tmp_path / "class", attacks=["sleep-forever.py"])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(root), "--lab", "cifar-convnet",
                             "--out", str(out), "--no-pdf", "--jobs", "2", "--wall-time", "30"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
    try:
        for _ in range(900):
            if len(list(out.glob("*.json"))) >= 2:
                break
            assert proc.poll() is None
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    first = set(comparable(out))
    assert 2 <= len(first) < 9, "the batch was stopped partway"
    rerun = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--no-pdf", "--jobs", "2", *FAST)
    assert rerun.exit_code == 0 and f"{len(first)} already graded, skipped" in rerun.output, rerun.output
    results = comparable(out)
    assert len(results) == 9 and results["correct.json"]["score"] == 17
    assert results["hostile-sleep-forever.json"]["checks"][0]["status"] == "timeout"


ray = pytest.importorskip("ray", reason="the ray extra is not installed")


def _kill_one_ray_worker_running_a_task(stop: threading.Event, killed: list[int]) -> None:
    """Kill -9 the first Ray worker of this test's own cluster seen grading a hand-in (its process
    title names the task; another suite's Ray workers on the machine are not ours to kill)."""
    while not stop.is_set() and not killed:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::gradelab-grade") and descends_from(int(pid), os.getpid()):
                time.sleep(1.0)  # mid-task: its fork server is up, a hand-in is being graded
                try:
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                except ProcessLookupError:
                    continue
                return
        time.sleep(0.05)


def test_a_local_ray_cluster_grades_a_mixed_batch_and_survives_a_lost_worker(tmp_path):
    from grader import api
    from grader.grading.cluster import RayExecutor
    from grader.options import RunOptions

    root = make_class(tmp_path / "class", attacks=ATTACKS)
    assert len(list(root.iterdir())) == 12
    serial = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(tmp_path / "serial"), "--no-pdf", "--jobs", "1",
                 *FAST)
    assert serial.exit_code == 0
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_ray_worker_running_a_task, args=(stop, killed), daemon=True)
    killer.start()
    options = RunOptions(limits={"wall_s": 4, "cpu_s": 8, "memory_mb": 1024}, reports=False)
    try:
        api.grade(root, "cifar-convnet", tmp_path / "ray", options, executor=RayExecutor("local"))
    finally:
        stop.set()
        killer.join(5)
    assert killed, "a worker was killed mid-task"
    assert not ray.is_initialized(), "the local cluster the batch started ended with it"
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "serial")


def test_the_fork_server_in_a_ray_task_is_a_fresh_interpreter_not_a_fork_of_the_worker(tmp_path):
    """Ray's guidance: no fork inside tasks. The sandbox's server is exec'd, so it holds none of
    Ray's state (no _raylet library mapped), and children are forked from it."""
    from grader.grading.cluster import _PACKAGE_ROOT

    ray.init(address="local", num_cpus=1, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": _PACKAGE_ROOT}})
    try:
        @ray.remote
        def server_maps() -> tuple[str, str]:
            from grader.sandbox.runner import Sandbox

            with Sandbox() as sandbox:
                sandbox.warm()
                pid = sandbox.server._proc.pid
                return Path(f"/proc/{pid}/cmdline").read_text(), Path(f"/proc/{pid}/maps").read_text()

        cmdline, maps = ray.get(server_maps.remote())
    finally:
        ray.shutdown()
    assert "grader.sandbox.forkserver" in cmdline
    assert "_raylet" not in maps


def test_a_hand_in_is_graded_in_one_child(monkeypatch):
    """Every probe of a static hand-in runs in the same child: its module is imported once."""
    from grader.api import load_lab
    from grader.grading.engine import grade_one
    from grader.sandbox.forkserver import ForkServer

    spawned = []
    real = ForkServer.spawn
    monkeypatch.setattr(ForkServer, "spawn", lambda self, job: (spawned.append(1), real(self, job))[1])
    result = grade_one(load_lab("cifar-convnet"), CIFAR_SUBMISSIONS / "correct")
    assert (result.score, result.max_score) == (17, 20)
    assert len(spawned) == 1


def test_a_probe_that_crashes_its_child_costs_only_its_own_checks(tmp_path, monkeypatch):
    """The child dies in the first probe that calls the student's code; the next probes get a
    fresh child, and every other check is graded as if nothing had happened."""
    from grader.api import load_lab
    from grader.grading.engine import grade_one
    from grader.sandbox.forkserver import ForkServer
    from tests.conftest import variant

    spawned = []
    real = ForkServer.spawn
    monkeypatch.setattr(ForkServer, "spawn", lambda self, job: (spawned.append(1), real(self, job))[1])
    hand_in = variant(CIFAR_SUBMISSIONS / "correct", tmp_path / "h",
                      ("def conv_output_size(x, k, p, s):\n",
                       "def conv_output_size(x, k, p, s):\n    import ctypes; ctypes.string_at(0)\n"))
    result = grade_one(load_lab("cifar-convnet"), hand_in)
    by_id = {c.id: c for c in result.checks}
    assert by_id["conv-output-size"].status == "error" and "segmentation fault" in by_id["conv-output-size"].message
    assert all(c.status == "passed" for i, c in by_id.items() if i not in ("conv-output-size", "why-pooling")), \
        {i: c.message for i, c in by_id.items() if c.status != "passed"}
    assert by_id["why-pooling"].status == "awaiting review"  # a written answer awaits a person
    assert result.score == 17 - by_id["conv-output-size"].max_score
    assert len(spawned) == 2, "one child crashed; one more for the probes after it"
