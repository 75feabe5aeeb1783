"""Dereferences a null pointer with ctypes inside the graded function. Expected: "crashed with a
segmentation fault" on that check; the others still run."""
import ctypes


def conv_output_size(x, k, p, s):
    return ctypes.string_at(0)
