"""Prints about 200 MB. Expected: the checks run; only the tail of the output is kept (a few
kB, marked as truncated), the file it goes to is capped, and the grader never reads it whole."""
import sys

line = "flood " * 100 + "\n"
for _ in range(330_000):
    sys.stdout.write(line)
print("END OF FLOOD")


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
