"""Results: what grading a submission produces, with a stable JSON form.

``Outcome`` is what a check kind returns (a verdict and a credit fraction); the engine turns it
into a ``CheckResult`` by adding the manifest's points, title and hint. A student's fault is an
outcome, never an exception.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable, NamedTuple

from pydantic import BaseModel, Field, computed_field, field_validator, model_validator

from grader.lab.manifest import Limits, Visibility

# 2: diagnoses as a list, the student's identity. Results of schema 1 are read and upgraded, so a
# batch graded by an earlier gradelab resumes.
RESULT_SCHEMA_VERSION = 2


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


class _Diagnosed(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _one_diagnosis_as_list(cls, data: Any) -> Any:
        """``diagnosis="x"`` (one named mistake, the common case) is ``diagnoses=["x"]``; a
        schema-1 result joined several with commas."""
        if isinstance(data, dict) and "diagnosis" in data and "diagnoses" not in data:
            data = dict(data)
            one = data.pop("diagnosis")
            data["diagnoses"] = [d.strip() for d in one.split(",") if d.strip()] if isinstance(one, str) else []
        elif isinstance(data, dict) and "diagnosis" in data:
            data = {k: v for k, v in data.items() if k != "diagnosis"}  # derived, written for readers
        return data


class Outcome(_Diagnosed):
    status: Status
    fraction: float = Field(0.0, ge=0.0, le=1.0)
    message: str = ""
    expected: Any = None
    got: Any = None
    diagnoses: list[str] = Field(default_factory=list,
                                 description="Names of recognised mistakes, each counted in class summaries.")
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


class CheckResult(_Diagnosed):
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
    diagnoses: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    duration_s: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def diagnosis(self) -> str | None:
        """The first named mistake (most checks name at most one); all of them are in ``diagnoses``."""
        return self.diagnoses[0] if self.diagnoses else None

    @property
    def ok(self) -> bool:
        return self.status == Status.passed


class Student(BaseModel):
    """Who handed a submission in. From a plain class folder: the folder's name, as typed (Unicode
    kept); from an LMS download, the name and id the LMS gave. Only file names are sanitised."""

    id: str = Field(description="Stable identifier: the LMS id, else the folder's name.")
    name: str = Field(description="Display name, as the student or the LMS wrote it.")
    source: str = Field("", description="Where the hand-in was found (path in the class folder).")
    email: str | None = None
    late: bool = Field(False, description="The LMS marked the hand-in late (Canvas's _LATE).")


class SubmissionResult(BaseModel):
    schema_version: int = RESULT_SCHEMA_VERSION
    submission: str = Field(description="The result's file-safe name, unique in its batch.")
    path: str
    student: Student
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
    notes: list[str] = Field(default_factory=list,
                             description="What the grader did with the hand-in that the student should know "
                                         "(files left out and why).")
    log_tail: str = Field("", description="The last lines the student's code printed, capped.")
    duration_s: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """A schema-1 result (no student): the submission's name is the student's."""
        if isinstance(data, dict) and "student" not in data and "submission" in data:
            data = {**data, "student": {"id": data["submission"], "name": data["submission"],
                                        "source": data.get("path", "")}}
        if isinstance(data, dict) and data.get("schema_version", RESULT_SCHEMA_VERSION) < RESULT_SCHEMA_VERSION:
            data = {**data, "schema_version": RESULT_SCHEMA_VERSION}
        return data

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0

    @property
    def all_passed(self) -> bool:
        return all(c.status in (Status.passed, Status.skipped) for c in self.checks)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


class Tally(NamedTuple):
    """A score: the same pure function for the engine and for each report's audience."""

    score: float
    max_score: float

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0


def tally(checks: Iterable[CheckResult]) -> Tally:
    """Points earned and points at stake; a skipped check (training in a quick self-check) is
    not a lost one."""
    counted = [c for c in checks if c.status != Status.skipped]
    return Tally(round(sum(c.score for c in counted), 2), sum(c.max_score for c in counted))
