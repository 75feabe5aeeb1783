"""Raises the recursion limit and recurses without end. Expected: a clear message (a
RecursionError, or a crash when the C stack runs out), never a hang."""
import sys

sys.setrecursionlimit(10 ** 5)


def conv_output_size(x, k, p, s):
    return conv_output_size(x, k, p, s) + 1
