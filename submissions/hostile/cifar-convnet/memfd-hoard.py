"""Holds 3 GiB in memfds, files in memory that address-space limits do not count (24 of 128 MiB:
the file-size limit caps each, not their number), and sleeps on them. Expected: killed at the
memory limit and reported as out of memory on every check that needed the module (its memory
cgroup counts the memfds' pages)."""
import os
import time

chunk = b"\x01" * (64 << 20)
hoard = []
for _ in range(24):  # 3 GiB, 64 MiB at a time: pages really held
    fd = os.memfd_create("hoard")
    os.write(fd, chunk)
    os.write(fd, chunk)
    hoard.append(fd)
print("held 3 GiB in memfds")
time.sleep(60)


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
