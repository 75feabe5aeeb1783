"""Comparing a student's values with the expected ones, shared by the check kinds: numbers within a
tolerance, lists elementwise, arrays by relative error, and the wording of what is wrong with a
value (which part a student may see goes through ``Reveal``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from grader.lab.manifest import Reveal
from grader.results import Feedback

if TYPE_CHECKING:
    import numpy as np


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


def relative_error(got: np.ndarray, expected: np.ndarray, equal_nan: bool = False) -> float:
    """‖got − expected‖ / max(‖got‖, ‖expected‖); 0 when both are zero, inf when a NaN or inf
    appears where the other has a number (or anywhere, unless ``equal_nan`` and both agree)."""
    import numpy as np

    g_bad, e_bad = ~np.isfinite(got), ~np.isfinite(expected)
    if g_bad.any() or e_bad.any():
        if not (equal_nan and np.array_equal(g_bad, e_bad)):
            return float("inf")
        got, expected = np.where(g_bad, 0.0, got), np.where(e_bad, 0.0, expected)
    scale = max(float(np.linalg.norm(got)), float(np.linalg.norm(expected)))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(got - expected)) / scale


def pick(value: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path through lists (by index) and dicts (by key)."""
    for part in path.split(".") if path else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def as_array(value: Any) -> np.ndarray | None:
    """A number, numeric list or array as a float array; ``None`` for anything else."""
    import numpy as np

    if isinstance(value, bool) or value is None:
        return None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if arr.dtype.kind not in "fiub":
        return None
    return arr.astype(float)


def fit_shape(got: np.ndarray, expected: np.ndarray) -> np.ndarray | None:
    """The student's array in the reference's shape, forgiving only size-1 axes ((1, n) for (n,))."""
    import numpy as np

    if got.shape == expected.shape:
        return got
    if got.size == expected.size and np.squeeze(got).shape == np.squeeze(expected).shape:
        return got.reshape(expected.shape)
    return None


def shape_words(a: np.ndarray) -> str:
    # Python's own spelling, as torch prints it: (4,) is one axis of 4, never "(4)", which reads as a number
    return "a scalar" if a.ndim == 0 else f"shape {tuple(int(n) for n in a.shape)}"


def value_feedback(got: Any, expected: Any, rel_tol: float, equal_nan: bool = False,
                   against: str = "the reference") -> tuple[Feedback | None, float]:
    """Why ``got`` is not ``expected`` (``None`` when it is), as parts that each start with a space
    (" has shape (4, 3)", ", expected shape (3, 4)"), and the relative error."""
    import numpy as np

    G, E = Reveal.got, Reveal.expected
    e, g = as_array(expected), as_array(got)
    if e is None:
        if got == expected:
            return None, 0.0
        return Feedback().add(f" is {got!r}", G).instead(" is wrong", G).add(f", expected {expected!r}", E), float("inf")
    if g is None:
        return Feedback().add(f" is {type(got).__name__ if got is not None else 'None'}, not numbers"), float("inf")
    fitted = fit_shape(g, e)
    if fitted is None:
        return (Feedback().add(f" has {shape_words(g)}", G).instead(" has the wrong shape", G)
                .add(f", expected {shape_words(e)}", E)), float("inf")
    err = relative_error(fitted, e, equal_nan)
    if err <= rel_tol:
        return None, err
    if not np.isfinite(fitted).all() and np.isfinite(e).all():
        return Feedback().add(f" contains NaN or inf where {against} is finite"), err
    return Feedback().add(f" differs from {against} (relative error {err:.2e}, tolerance {rel_tol:.0e})"), err


def value_problem(got: Any, expected: Any, rel_tol: float, equal_nan: bool = False,
                  against: str = "the reference") -> tuple[str | None, float]:
    """Why ``got`` is not ``expected`` (or ``None``), as the instructor reads it, and the relative error."""
    problem, err = value_feedback(got, expected, rel_tol, equal_nan, against)
    return (problem.text() if problem is not None else None), err


def percent_ratio(got: Any, expected: Any, rel_tol: float) -> str | None:
    """"×100" when the student's values are the reference's times 100 (a percentage where a
    fraction is asked for), "÷100" the other way round; ``None`` otherwise."""
    import numpy as np

    g, e = as_array(got), as_array(expected)
    if g is None or e is None or g.size != e.size or not np.isfinite(g).all() or not np.isfinite(e).all():
        return None
    g, e = g.reshape(-1), e.reshape(-1)
    if not np.any(e):
        return None
    tolerance = max(rel_tol, 1e-6) * 10
    for factor, name in ((100.0, "×100"), (0.01, "÷100")):
        if relative_error(g, factor * e) <= tolerance:
            return name
    return None
