"""The IDX format of MNIST (big-endian header, then raw bytes), as ``torchvision`` reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.atomic import write_atomic

_TYPE_CODES = {np.dtype(np.uint8): 0x08}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as an IDX file: magic 0x00 0x00 <type> <ndim>, dims as int32 BE."""
    array = np.ascontiguousarray(array)
    code = _TYPE_CODES.get(array.dtype)
    if code is None:
        raise ValueError(f"IDX writing supports uint8 only, got {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return write_atomic(path, header + array.tobytes())
