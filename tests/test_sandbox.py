"""The sandbox: limits hold, every way student code can fail is named, nothing is unpickled."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from grader.intake.reader import read_hand_in
from grader.lab.manifest import Limits
from grader.sandbox import cgroup
from grader.sandbox.replies import ProbeFailure
from grader.sandbox.runner import LOAD_GRACE, Sandbox

LIMITS = Limits(wall_s=3, cpu_s=10, memory_mb=512)


def student(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "student.py"
    path.write_text(textwrap.dedent(source))
    return path


_SANDBOX = Sandbox()


@pytest.fixture(scope="module", autouse=True)
def _sandbox():
    """One sandbox (one fork server) for the module's tests, closed at the end."""
    with _SANDBOX:
        yield


def call(path: Path, function: str = "f", limits: Limits = LIMITS, cases=((1,),), gpu: bool = False):
    return _SANDBOX.run_probe(read_hand_in(path, module_name="student.py"), "student.py", "call", {"function": function, "cases": [list(c) for c in cases]},
                              limits, gpu=gpu)


def test_a_function_call_returns_raw_values(tmp_path):
    reply = call(student(tmp_path, "def f(x):\n    return [x, x * 2.5, 'ok']\n"), cases=[(2,)])
    assert reply.value == [{"ok": True, "value": [2, 5.0, "ok"]}]


def test_an_infinite_loop_is_killed_at_the_wall_time_limit(tmp_path):
    path = student(tmp_path, "def f(x):\n    while True:\n        pass\n")
    started = time.monotonic()
    with pytest.raises(ProbeFailure) as info:
        call(path, limits=Limits(wall_s=1.5, cpu_s=30))
    assert info.value.status == "timeout"
    assert "1.5 s wall-time limit" in info.value.message
    # On a loaded machine the time the loop waited for a CPU is added, up to LOAD_GRACE × 1.5 s (issue 26)
    assert time.monotonic() - started < 4 + LOAD_GRACE * 1.5


def test_the_cpu_time_limit_stops_a_busy_child(tmp_path):
    path = student(tmp_path, "def f(x):\n    while True:\n        pass\n")
    with pytest.raises(ProbeFailure) as info:
        call(path, limits=Limits(wall_s=20, cpu_s=1))
    assert info.value.status == "timeout"
    assert "CPU time limit" in info.value.message


MEMORY_CGROUP = os.geteuid() == 0 and cgroup.base("memory") is not None
needs_memory_cgroup = pytest.mark.skipif(not MEMORY_CGROUP, reason="needs root and a memory cgroup")


@pytest.fixture
def no_memory_cgroup(monkeypatch):
    """The fallback, as on a machine without a memory cgroup: rlimits bound the memory."""
    monkeypatch.setitem(cgroup._bases, "memory", None)


HOARD = """
    def f(x):
        hoard = []
        while True:
            hoard.append(bytearray(50_000_000))
"""
MEMFD = """
    import os
    def f(x):
        held = []
        while True:  # pages of a file in memory: counted by no rlimit
            fd = os.memfd_create("held")
            os.write(fd, b"x" * (32 << 20))
            held.append(fd)
"""


# gpu=True: a child that may use CUDA is bounded by RLIMIT_DATA, not address space (CUDA reserves
# more address space than any limit at initialisation); host memory must stay bounded all the same.
# Under a memory cgroup too, an ordinary allocation meets RLIMIT_DATA first: a MemoryError the probe
# reports, not a kill that would lose the other inputs' answers.
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "may-use-cuda"])
@pytest.mark.parametrize("memory_cgroup", [True, False], ids=["memory-cgroup", "rlimit-only"])
def test_a_memory_bomb_is_stopped_and_reported_as_out_of_memory(tmp_path, gpu, memory_cgroup, monkeypatch):
    if memory_cgroup and not MEMORY_CGROUP:
        pytest.skip("needs root and a memory cgroup")
    if not memory_cgroup:
        monkeypatch.setitem(cgroup._bases, "memory", None)
    reply = call(student(tmp_path, HOARD), limits=Limits(wall_s=20, memory_mb=300), gpu=gpu)
    (case,) = reply.value
    assert case["ok"] is False and case["error"]["out_of_memory"] is True
    assert case["error"]["type"] == "MemoryError"


@needs_memory_cgroup
@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "may-use-cuda"])
def test_memory_no_rlimit_counts_is_killed_by_the_memory_cgroup_and_reported_as_out_of_memory(tmp_path, gpu):
    with pytest.raises(ProbeFailure) as info:
        call(student(tmp_path, MEMFD), limits=Limits(wall_s=20, memory_mb=300), gpu=gpu)
    assert info.value.out_of_memory and info.value.message == "ran out of memory: killed at the memory limit (300 MiB)"


@pytest.mark.parametrize("gpu", [False, True], ids=["address-space", "data-for-cuda"])
def test_a_huge_tensor_is_refused_at_the_memory_limit(tmp_path, gpu):
    path = student(tmp_path, "import torch\ndef f(x):\n    return torch.ones(10_000_000_000).sum()\n")
    (case,) = call(path, limits=Limits(wall_s=20, memory_mb=300), gpu=gpu).value
    assert case["error"]["out_of_memory"] is True


RESERVE = """
    import ctypes
    libc = ctypes.CDLL(None)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    def f(x):
        # 64 GiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        address = libc.mmap(None, 64 << 30, 0, 0x02 | 0x20 | 0x4000, -1, 0)
        return "reserved" if address not in (None, ctypes.c_void_p(-1).value) else "refused"
"""


@needs_memory_cgroup
def test_under_a_memory_cgroup_address_space_it_never_touches_is_free(tmp_path):
    """What CUDA's initialisation does, a large PROT_NONE reservation, costs no memory: the cgroup
    counts pages held, so neither a CPU nor a GPU child is refused it."""
    path = student(tmp_path, RESERVE)
    for gpu in (False, True):
        assert call(path, limits=Limits(wall_s=20, memory_mb=300), gpu=gpu).value == [{"ok": True, "value": "reserved"}]


def test_without_a_memory_cgroup_a_child_that_may_use_cuda_may_still_reserve_address_space(tmp_path, no_memory_cgroup):
    path = student(tmp_path, RESERVE)
    (on_gpu,) = call(path, limits=Limits(wall_s=20, memory_mb=300), gpu=True).value
    assert on_gpu == {"ok": True, "value": "reserved"}
    (on_cpu,) = call(path, limits=Limits(wall_s=20, memory_mb=300)).value
    assert on_cpu == {"ok": True, "value": "refused"}  # the address-space limit refuses it, as it would CUDA


def test_a_syntax_error_is_an_import_failure_with_its_line(tmp_path):
    with pytest.raises(ProbeFailure) as info:
        call(student(tmp_path, "x = 1\ndef f(x:\n    pass\n"))
    assert info.value.stage == "import"
    assert "SyntaxError" in info.value.message and "student.py, line 2" in info.value.message


def test_an_exception_names_the_students_line(tmp_path):
    (case,) = call(student(tmp_path, "def f(x):\n    y = 1\n    return x / 0\n")).value
    assert case["error"]["type"] == "ZeroDivisionError"
    assert case["error"]["where"] == "student.py, line 3, in f"


def test_exiting_early_with_code_zero_does_not_pass_for_success(tmp_path):
    path = student(tmp_path, "import os\ndef f(x):\n    os._exit(0)\n")
    with pytest.raises(ProbeFailure, match="exit code 0"):
        call(path)


def test_sys_exit_at_import_is_an_import_failure(tmp_path):
    with pytest.raises(ProbeFailure) as info:
        call(student(tmp_path, "import sys\nsys.exit(0)\n"))
    assert info.value.stage == "import" and "SystemExit" in info.value.message


def test_a_segfault_is_reported_as_a_crash(tmp_path):
    path = student(tmp_path, "import ctypes\ndef f(x):\n    ctypes.string_at(0)\n")
    with pytest.raises(ProbeFailure, match="segmentation fault"):
        call(path)


def test_output_is_captured_and_only_its_tail_kept(tmp_path):
    path = student(tmp_path, "def f(x):\n    for i in range(100_000):\n        print('line', i)\n    return 1\n")
    reply = call(path, limits=Limits(wall_s=10, output_kb=1))
    assert reply.value[0]["value"] == 1
    assert "line 99999" in reply.log_tail and "earlier bytes of output dropped" in reply.log_tail
    assert len(reply.log_tail) < 1200


def test_the_child_environment_holds_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADELAB_TEST_SECRET", "hunter2")
    path = student(tmp_path, "import os\ndef f(x):\n    return sorted(os.environ)\n")
    (case,) = call(path).value
    assert "GRADELAB_TEST_SECRET" not in case["value"]
    assert os.environ["GRADELAB_TEST_SECRET"] == "hunter2"


def test_a_child_under_a_uid_no_passwd_entry_names_still_has_a_user_name(tmp_path):
    """torch's CUDA code asks getpass.getuser() for a cache folder: seen on a GPU machine as the
    reference's own "KeyError: 'getpwuid(): uid not found: 210001'" before USER was set."""
    reply = call(student(tmp_path, "import getpass, os\ndef f(x):\n    return [getpass.getuser(), os.getuid()]\n"))
    (case,) = reply.value
    name, uid = case["value"]
    assert name == "gradelab-child"
    assert uid != 0 or os.getuid() != 0  # as root, the child runs under a uid of its own


def test_the_child_runs_in_a_fresh_directory_that_is_removed_afterwards(tmp_path):
    path = student(tmp_path, "import os\ndef f(x):\n    open('scratch.txt', 'w').write('x')\n    return os.getcwd()\n")
    (case,) = call(path).value
    assert case["value"] != str(tmp_path)
    assert not Path(case["value"]).exists()
    assert not (tmp_path / "scratch.txt").exists()
