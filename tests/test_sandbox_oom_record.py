"""Out-of-memory is the kernel's verdict, not the grader's race (issue 26): a child the memory
cgroup recorded as out of memory is called out-of-memory even when the wall-time limit is what the
grader saw fire first (under load, the list bomb was reported `timeout`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from grader.intake.reader import read_hand_in
from grader.lab.manifest import Limits
from grader.sandbox import cgroup, runner
from grader.sandbox.replies import ProbeFailure
from grader.sandbox.runner import Sandbox

V1_MEMORY = os.geteuid() == 0 and cgroup.base("memory") is not None and cgroup.base("memory") != Path("/sys/fs/cgroup")


class _OomStalls(cgroup.ChildCgroups):
    """The kernel keeps the child at its limit instead of killing it (v1 ``oom_kill_disable``): the
    wall time fires first, as it does when a loaded machine is slow to OOM-kill."""

    def __init__(self, max_processes: int, memory_mb: int) -> None:
        super().__init__(max_processes, memory_mb)
        if "memory" in self.paths:
            (self.paths["memory"] / "memory.oom_control").write_text("1")


@pytest.mark.skipif(not V1_MEMORY, reason="needs root and a v1 memory cgroup")
def test_a_child_stalled_at_its_memory_limit_is_out_of_memory_not_a_timeout(tmp_path, monkeypatch):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "student.py").write_text(  # shared pages: the cgroup counts them, RLIMIT_DATA does not
        "import mmap\ndef f(x):\n    kept = []\n    while True:\n        m = mmap.mmap(-1, 10_000_000)\n"
        "        m.write(b'x' * 10_000_000)\n        kept.append(m)\n")
    monkeypatch.setattr(runner, "ChildCgroups", _OomStalls)
    limits = Limits(wall_s=4, cpu_s=30, memory_mb=200)
    started = time.monotonic()
    with Sandbox() as sandbox, pytest.raises(ProbeFailure) as info:
        sandbox.run_probe(read_hand_in(tmp_path / "h", module_name="student.py"), "student.py", "call", {"function": "f", "cases": [[1]]}, limits)
    assert info.value.status == "error" and info.value.out_of_memory
    assert info.value.message == "ran out of memory: stopped at the memory limit (200 MiB)"
    assert time.monotonic() - started < 30


def test_the_kernels_record_is_read_from_the_memory_cgroup(tmp_path):
    folder = tmp_path / "memory" / "child"
    folder.mkdir(parents=True)
    groups = cgroup.ChildCgroups.__new__(cgroup.ChildCgroups)
    groups.paths, groups.missing = {"memory": folder}, []
    (folder / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not groups.out_of_memory() and not groups.oom_killed()
    (folder / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert groups.out_of_memory() and groups.oom_killed()
    (folder / "memory.oom_control").write_text("oom_kill_disable 1\nunder_oom 1\noom_kill 0\n")
    assert groups.out_of_memory() and not groups.oom_killed()


def test_a_child_that_reached_its_memory_limit_is_held_at_it(tmp_path):
    folder = tmp_path / "memory" / "child"
    folder.mkdir(parents=True)
    groups = cgroup.ChildCgroups.__new__(cgroup.ChildCgroups)
    groups.paths, groups.missing = {"memory": folder}, []
    (folder / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    (folder / "memory.failcnt").write_text("0\n")
    assert not groups.held_at_limit()
    (folder / "memory.failcnt").write_text("17\n")
    assert groups.held_at_limit() and not groups.out_of_memory()


def test_a_plain_timeout_is_still_a_timeout(tmp_path):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "student.py").write_text("def f(x):\n    while True:\n        pass\n")
    with Sandbox() as sandbox, pytest.raises(ProbeFailure) as info:
        sandbox.run_probe(read_hand_in(tmp_path / "h", module_name="student.py"), "student.py", "call", {"function": "f", "cases": [[1]]},
                          Limits(wall_s=1.5, cpu_s=30))
    assert info.value.status == "timeout" and not info.value.out_of_memory


def test_a_child_starved_of_cpu_by_the_machine_gets_the_time_it_waited(tmp_path):
    """The wall-time limit counts the time a child could run: two busy processes on the child's
    only CPU triple its wall time, which used to turn 0.6 s of work under a 1.5 s limit into a
    timeout (the list bomb was called `timeout` on a loaded machine)."""
    import subprocess
    import sys

    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "student.py").write_text(
        "import time\ndef f(x):\n    end = time.process_time() + 0.6\n    while time.process_time() < end:\n"
        "        pass\n    return x\n")
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        for proc in busy:
            os.sched_setaffinity(proc.pid, {cpu})
        os.sched_setaffinity(0, {cpu})  # the fork server and its children inherit it
        with Sandbox() as sandbox:
            reply = sandbox.run_probe(read_hand_in(tmp_path / "h", module_name="student.py"), "student.py", "call", {"function": "f", "cases": [[5]]},
                                      Limits(wall_s=1.5, cpu_s=30))
    finally:
        os.sched_setaffinity(0, before)
        for proc in busy:
            proc.kill()
            proc.wait()
    assert reply.value == [{"ok": True, "value": 5}]
