"""As root, isolation is all or nothing: a child that cannot drop root runs no student code; the
grader retries once with a fresh child, then names what failed (issue 26)."""

from __future__ import annotations

import os

import pytest

from grader.errors import SandboxError
from grader.intake.reader import read_hand_in
from grader.lab.manifest import Limits
from grader.sandbox import runner
from grader.sandbox.runner import Sandbox

AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop is root's")


class _UnusableUid:
    """A lease whose uid no kernel accepts (setgid/setuid fail with EINVAL), as a broken machine
    would give: before, the failure became a warning and the student's code ran as root."""

    uid = 4294967295

    def release(self) -> None:
        pass


@AS_ROOT
def test_a_child_that_cannot_drop_root_runs_no_student_code(tmp_path, monkeypatch):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "student.py").write_text("import os\ndef f(x):\n    return os.geteuid()\n")
    monkeypatch.setattr(runner, "UidLease", _UnusableUid)
    with Sandbox() as sandbox, sandbox.session(read_hand_in(tmp_path / "h", module_name="student.py"), "student.py", Limits(wall_s=20, cpu_s=20)) as child:
        with pytest.raises(SandboxError) as info:
            child.call("call", {"function": "f", "cases": [[1]]}, Limits(wall_s=20, cpu_s=20))
        assert child.children == 2  # retried once with a fresh child
        with pytest.raises(SandboxError):  # and said at once for the hand-in's next probe
            child.call("call", {"function": "f", "cases": [[1]]}, Limits(wall_s=20, cpu_s=20))
        assert child.children == 2
    # The working folder's tmpfs, mounted for that uid, fails first; before, that too was only a
    # warning, and the probe answered [0]: the student's code ran as root.
    assert str(info.value).startswith("the sandbox could not isolate this hand-in's code, so it was not run "
                                      "(tried twice): what the child must not see could not be covered (")


def _in_a_child(tmp_path, patch: str) -> str:
    """``drop_privileges`` run in a forked child with one of ``os``'s calls made to fail; what the
    child ended as, in words."""
    from grader.sandbox import policy

    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "convnet.py").write_text("x = 1\n")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            def fail(*args: object) -> None:
                raise PermissionError(1, "Operation not permitted")
            setattr(os, patch, fail)
            missing: list[str] = []
            try:
                policy.drop_privileges(str(tmp_path / "work"), 65534, missing)
                said = f"euid {os.geteuid()}; " + "; ".join(missing)
            except policy.IsolationRefused as refused:
                said = f"refused: {refused} (euid {os.geteuid()})"
            os.write(write, said.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        said = fh.read().decode()
    os.waitpid(pid, 0)
    return said


@AS_ROOT
def test_a_chown_that_fails_does_not_skip_the_privilege_drop(tmp_path):
    assert _in_a_child(tmp_path, "lchown") == (
        "euid 65534; the working folder could not be given to the child's uid (Operation not permitted)")


@AS_ROOT
def test_a_setuid_that_fails_refuses_to_go_on_as_root(tmp_path):
    assert _in_a_child(tmp_path, "setuid") == (
        "refused: could not drop privileges to uid 65534 (Operation not permitted) (euid 0)")
