"""Writes 1 GiB in 1 MiB files in its working folder, then 100 000 empty files, then 1 GiB in /tmp:
RLIMIT_FSIZE caps each file, not their number, and the working folder used to be on the
machine's disk. Expected: its folders are tmpfs of their own, capped in size and in files
(disk_mb, 256 MiB by default): the writes stop there with "No space left", nothing reaches the
disk, and it answers correctly."""
import errno
import os


def fill(folder, files, size):
    written = made = 0
    block = b"\x01" * size
    for i in range(files):
        try:
            with open(os.path.join(folder, f"filler-{i}"), "wb") as fh:
                made += 1
                if size:
                    fh.write(block)
                    fh.flush()
                    written += size
        except OSError as exc:
            return written, made, errno.errorcode.get(exc.errno, str(exc.errno))
    return written, made, "all written"


work = os.path.join(os.getcwd(), "fill")
os.mkdir(work)
w, _, why = fill(work, 1024, 1 << 20)
print(f"working folder: {w >> 20} MiB written of 1024 ({why})")
for name in os.listdir(work):
    os.unlink(os.path.join(work, name))
_, made, why = fill(work, 100_000, 0)
print(f"working folder: {made} files made of 100000 ({why})")
w, _, why = fill("/tmp", 1024, 1 << 20)
print(f"/tmp: {w >> 20} MiB written of 1024 ({why})")


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
