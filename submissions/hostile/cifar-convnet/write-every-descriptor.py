"""At import, writes bytes to every descriptor it may hold (0 to 1023: a fork server's pipe, a
resource tracker's, the grader's socket would take them), then tries to kill its parent, pid 1
and every process it may (kill -1). A child used to inherit the fork server's "alive" pipe: one
byte killed the server, and the next honest hand-in lost 8 points to a timeout. Expected: it holds
nothing but its output and its reply pipe, kills nothing, and the next hand-in keeps its exact
score; its own reply is garbled, so its check fails."""
import os
import signal

written = []
for fd in range(1024):
    try:
        os.write(fd, b"J\x00\x00\x00\x00\x00\x00\x00\x08garbage!")
        written.append(fd)
    except OSError:
        pass
for target in (os.getppid(), 1, -1):
    try:
        os.kill(target, signal.SIGKILL)
    except OSError:
        pass
print("wrote to descriptors", written)


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
