"""Leaves a daemon behind (double fork + setsid, out of the process group), which would
keep writing a file. Expected: the checks run normally; the daemon is killed with the check."""
import os
import time


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1


if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for i in range(10 ** 6):
            try:
                with open("/tmp/gradelab-hostile-daemon-alive", "w") as fh:
                    fh.write(str(i))
            except OSError:
                pass
            time.sleep(0.05)
    os._exit(0)
