"""Tests touch only what they started (issue 26): a process of another suite, with a child's uid
or a Ray worker's title, is neither counted nor killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from tests.own_processes import descends_from


def _stranger(title: str) -> int:
    """A process with ``title`` as its command line that is not a descendant of this one (a
    double fork: it is re-parented away from us)."""
    out = subprocess.run(["bash", "-c", f'(exec -a "{title}" sleep 30 </dev/null >/dev/null 2>&1 &) ; '
                                        f'sleep 0.2; pgrep -n -f "^{title}"'],
                         capture_output=True, text=True, check=True, start_new_session=True)
    return int(out.stdout.split()[-1])


def test_a_descendant_is_ours_and_a_stranger_is_not():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    stranger = _stranger("gradelab-test-stranger")
    try:
        assert descends_from(child.pid, os.getpid())
        assert not descends_from(stranger, os.getpid()) and not descends_from(1, os.getpid())
    finally:
        child.kill()
        child.wait()
        os.kill(stranger, signal.SIGKILL)


def test_the_ray_worker_killer_leaves_another_suites_worker_alone():
    from tests.test_parallel import _kill_one_ray_worker_running_a_task

    stranger = _stranger("ray::gradelab-grade")
    stop, killed = threading.Event(), []
    thread = threading.Thread(target=_kill_one_ray_worker_running_a_task, args=(stop, killed))
    try:
        thread.start()
        time.sleep(1.5)
        stop.set()
        thread.join(5)
        assert killed == [] and os.path.exists(f"/proc/{stranger}")
    finally:
        stop.set()
        try:
            os.kill(stranger, signal.SIGKILL)
        except ProcessLookupError:
            pass
