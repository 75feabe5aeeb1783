"""Reads the command line of every process it can see in /proc: a grader started with a token on
its command line, another course's job, another run's hand-ins. Expected: it sees only its own
processes (a pid namespace with a private /proc), prints what it found, and answers correctly."""
import os

seen = {}
for name in os.listdir("/proc"):
    if name.isdigit():
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                seen[int(name)] = fh.read().replace(b"\0", b" ").decode(errors="replace")[:200]
        except OSError:
            pass
print("pids seen:", sorted(seen))
print("command lines:", seen)


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
