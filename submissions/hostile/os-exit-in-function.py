"""Ends the process with os._exit(0) from inside the graded function. Expected: the check
that calls it gets an error ("ended the process … before answering"), never a pass."""
import os


def conv_output_size(x, k, p, s):
    os._exit(0)
