"""Results: what grading a submission produces, with a stable JSON form.

``Outcome`` is what a check kind returns (a verdict and a credit fraction); the engine turns it
into a ``CheckResult`` by adding the manifest's points, title and hint. A student's fault is an
outcome, never an exception.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, field_validator

from grader.lab.manifest import Limits, Visibility

RESULT_SCHEMA_VERSION = 1


class Status(str, Enum):
    passed = "passed"
    partial = "partial"   # accepted with partial credit (a declared alternative answer)
    failed = "failed"
    error = "error"       # the student's code raised, crashed, or a prerequisite was missing
    timeout = "timeout"
    skipped = "skipped"   # not run in this mode (e.g. training in a quick self-check)


def jsonable(value: Any) -> Any:
    """Make a value safe for JSON: numpy scalars and arrays become lists, NaN/inf strings."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None and isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if np is not None and isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class Outcome(BaseModel):
    status: Status
    fraction: float = Field(0.0, ge=0.0, le=1.0)
    message: str = ""
    expected: Any = None
    got: Any = None
    diagnosis: str | None = Field(None, description="Name of a recognised mistake, counted in class summaries.")
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("expected", "got", "details")
    @classmethod
    def _json_safe(cls, v: Any) -> Any:
        return jsonable(v)

    @classmethod
    def passed(cls, message: str = "", **kw: Any) -> "Outcome":
        return cls(status=Status.passed, fraction=1.0, message=message, **kw)

    @classmethod
    def failed(cls, message: str, **kw: Any) -> "Outcome":
        return cls(status=Status.failed, fraction=0.0, message=message, **kw)

    @classmethod
    def error(cls, message: str, **kw: Any) -> "Outcome":
        return cls(status=Status.error, fraction=0.0, message=message, **kw)

    @classmethod
    def graded(cls, fraction: float, message: str, **kw: Any) -> "Outcome":
        """Passed, partial or failed according to the credit earned."""
        status = Status.passed if fraction >= 1.0 else Status.partial if fraction > 0 else Status.failed
        return cls(status=status, fraction=min(max(fraction, 0.0), 1.0), message=message, **kw)


class CheckResult(BaseModel):
    id: str
    title: str
    kind: str
    visibility: Visibility
    status: Status
    score: float
    max_score: float
    message: str = ""
    hint: str = ""
    expected: Any = None
    got: Any = None
    diagnosis: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == Status.passed


class SubmissionResult(BaseModel):
    schema_version: int = RESULT_SCHEMA_VERSION
    submission: str
    path: str
    lab: str
    lab_title: str
    lab_version: str
    grader_version: str
    mode: str = Field(description="'grade' (every check) or 'check' (public checks only).")
    graded_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    seed: int = 0
    device: str = "cpu"
    limits: Limits
    score: float = 0.0
    max_score: float = 0.0
    grade: str = ""
    checks: list[CheckResult] = Field(default_factory=list)
    log_tail: str = Field("", description="The last lines the student's code printed, capped.")
    duration_s: float = 0.0

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0

    @property
    def all_passed(self) -> bool:
        return all(c.status in (Status.passed, Status.skipped) for c in self.checks)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)
