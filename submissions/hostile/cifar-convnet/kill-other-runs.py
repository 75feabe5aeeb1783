"""For three seconds, kills every process it can name: kill(-1), every pid up to pid_max, and
every pid listed in another run's cgroups (world-readable). When every child ran as nobody, this
killed the children of another gradelab run on the machine, whose honest hand-ins then scored
9/17. Expected: it kills nothing of anyone else's (a pid namespace, and a uid of its own per
child), says so, and answers correctly."""
import glob
import os
import signal
import time

me = os.getpid()
killed = set()
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    try:
        os.kill(-1, signal.SIGKILL)  # everything this uid may signal but itself
    except OSError:
        pass
    targets = set(range(2, 4096))
    for procs in glob.glob("/sys/fs/cgroup/*/gradelab-*/cgroup.procs") + glob.glob("/sys/fs/cgroup/gradelab-*/cgroup.procs"):
        try:
            targets |= {int(p) for p in open(procs).read().split()}
        except (OSError, ValueError):
            pass
    for pid in targets - {me}:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        except OSError:
            pass
    time.sleep(0.05)
print("uid", os.getuid(), "killed:", sorted(killed))


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
