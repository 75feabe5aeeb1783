"""Value comparison shared by check kinds: numbers within tolerance, lists elementwise."""

from __future__ import annotations

import math
from typing import Any


def values_match(got: Any, expected: Any, rel_tol: float = 0.0, abs_tol: float = 0.0) -> bool:
    import numpy as np

    if isinstance(got, np.ndarray) or isinstance(expected, np.ndarray):
        try:
            g, e = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
        except (TypeError, ValueError):
            return False
        return g.shape == e.shape and bool(np.allclose(g, e, rtol=rel_tol, atol=abs_tol, equal_nan=False))
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if not (math.isfinite(got) and math.isfinite(expected)):
            return False
        return math.isclose(got, expected, rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(got) == len(expected) and all(
            values_match(g, e, rel_tol, abs_tol) for g, e in zip(got, expected))
    if isinstance(expected, str) and isinstance(got, str):
        return got.strip().lower() == expected.strip().lower()
    return got == expected


def show(value: Any) -> str:
    """A short rendering of a value for messages."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return f"array of shape {tuple(value.shape)}"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "…"
