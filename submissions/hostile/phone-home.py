"""Tries the network (DNS, an outside address, the local machine). Expected: every attempt
fails (the child has its own empty network namespace); the checks themselves run normally."""
import socket

for target in [("example.com", 80), ("1.1.1.1", 53), ("127.0.0.1", 22)]:
    try:
        socket.create_connection(target, timeout=1).close()
        print("connected to", target)
    except OSError as exc:
        print("no network to", target, type(exc).__name__)


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
