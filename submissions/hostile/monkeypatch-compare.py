"""Patches numpy and torch comparisons (allclose, isclose, equal, array_equal) to always say
True. Expected: they are patched in its own process only; the verdict, computed in the grader,
is unaffected and conv-output-size fails."""
import math

import numpy
import torch

for module, names in [(numpy, ["allclose", "isclose", "array_equal"]), (torch, ["allclose", "equal", "isclose"]),
                      (math, ["isclose"])]:
    for name in names:
        setattr(module, name, lambda *a, **k: True)


def conv_output_size(x, k, p, s):
    return -1
