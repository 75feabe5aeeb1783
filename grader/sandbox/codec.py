"""The wire format from a child to the grader: tagged JSON and raw ``.npy`` arrays, no pickle.

Frame: ``GLB1`` | u32 header length | header JSON | u32 array count | (u64 length | npy bytes)*.
Arrays appear in the JSON as ``{"__array__": i}``. The decoder trusts nothing: lengths are
bounded, object dtypes are refused, ``np.load`` runs with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np

MAGIC = b"GLB1"
ARRAY_TAG = "__array__"
MAX_ARRAYS = 10_000


class CodecError(ValueError):
    """Bytes that are not a well-formed reply."""


def _to_tree(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays cannot be sent")
        arrays.append(np.ascontiguousarray(value))
        return {ARRAY_TAG: len(arrays) - 1}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_tree(v, arrays) for v in value]
    if isinstance(value, dict):
        if ARRAY_TAG in value:
            raise TypeError(f"{ARRAY_TAG!r} is a reserved key")
        return {str(k): _to_tree(v, arrays) for k, v in value.items()}
    raise TypeError(f"cannot send a value of type {type(value).__name__}")


def encode(value: Any) -> bytes:
    arrays: list[np.ndarray] = []
    header = json.dumps(_to_tree(value, arrays)).encode()
    out = io.BytesIO()
    out.write(MAGIC + struct.pack("<I", len(header)) + header + struct.pack("<I", len(arrays)))
    for arr in arrays:
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        out.write(struct.pack("<Q", buf.tell()) + buf.getvalue())
    return out.getvalue()


def _from_tree(node: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(node, list):
        return [_from_tree(v, arrays) for v in node]
    if isinstance(node, dict):
        if ARRAY_TAG in node:
            index = node[ARRAY_TAG]
            if len(node) != 1 or type(index) is not int or not 0 <= index < len(arrays):
                raise CodecError("bad array reference")
            return arrays[index]
        return {k: _from_tree(v, arrays) for k, v in node.items()}
    return node


def decode(data: bytes) -> Any:
    view = memoryview(data)
    try:
        if bytes(view[:4]) != MAGIC:
            raise CodecError("not a gradelab reply")
        (hlen,) = struct.unpack_from("<I", view, 4)
        pos = 8 + hlen
        if pos + 4 > len(view):
            raise CodecError("truncated header")
        tree = json.loads(bytes(view[8:pos]))
        (count,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if count > MAX_ARRAYS:
            raise CodecError("too many arrays")
        arrays = []
        for _ in range(count):
            (alen,) = struct.unpack_from("<Q", view, pos)
            pos += 8
            if pos + alen > len(view):
                raise CodecError("truncated array")
            arr = np.load(io.BytesIO(bytes(view[pos:pos + alen])), allow_pickle=False)
            if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
                raise CodecError("array of a forbidden type")
            arrays.append(arr)
            pos += alen
        if pos != len(view):
            raise CodecError("trailing bytes")
        return _from_tree(tree, arrays)
    except CodecError:
        raise
    except (struct.error, ValueError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise CodecError(f"malformed reply: {exc}") from None
