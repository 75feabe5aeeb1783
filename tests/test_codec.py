"""The child→grader wire format: round-trips data, refuses anything executable or malformed."""

from __future__ import annotations

import io
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.sandbox import codec


def test_values_and_arrays_round_trip():
    value = {"a": [1, 2.5, None, True, "x"], "arr": np.arange(6, dtype=np.float32).reshape(2, 3),
             "nested": [{"b": np.array([1, 2], dtype=np.int64)}]}
    back = codec.decode(codec.encode(value))
    assert back["a"] == [1, 2.5, None, True, "x"]
    np.testing.assert_array_equal(back["arr"], value["arr"])
    assert back["arr"].dtype == np.float32
    np.testing.assert_array_equal(back["nested"][0]["b"], [1, 2])


def test_objects_cannot_be_sent():
    with pytest.raises(TypeError):
        codec.encode({"x": object()})
    with pytest.raises(TypeError):
        codec.encode(np.array([object()], dtype=object))


def _frame_with_array_bytes(array_bytes: bytes) -> bytes:
    header = b'{"__array__": 0}'
    return (codec.MAGIC + struct.pack("<I", len(header)) + header + struct.pack("<I", 1)
            + struct.pack("<Q", len(array_bytes)) + array_bytes)


def test_a_pickled_object_array_is_refused_not_unpickled():
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(codec.CodecError):
        codec.decode(_frame_with_array_bytes(buf.getvalue()))


def test_a_raw_pickle_is_not_a_reply():
    with pytest.raises(codec.CodecError, match="not a gradelab reply"):
        codec.decode(pickle.dumps({"ok": True, "value": 42}))


@pytest.mark.parametrize("mangle", [
    lambda b: b[:-3],                       # truncated
    lambda b: b + b"junk",                   # trailing bytes
    lambda b: b.replace(b'{"__array__": 0}', b'{"__array__": 7}'),  # dangling reference
])
def test_malformed_frames_are_refused(mangle):
    good = codec.encode([np.zeros(3)])
    with pytest.raises(codec.CodecError):
        codec.decode(mangle(good))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_decode_to_a_value_or_a_codec_error(data):
    try:
        codec.decode(codec.MAGIC + data)
    except codec.CodecError:
        pass
