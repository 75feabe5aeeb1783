"""Prints its environment, looking for secrets (tokens, keys, the grader's paths). Expected: a
handful of neutral variables only (PATH, LANG, HOME and TMPDIR pointing at its own folder)."""
import os

print(sorted(os.environ.items()))


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1
