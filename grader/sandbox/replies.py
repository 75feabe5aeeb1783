"""What comes back from a child, as the grader reads it: validated models, never raw dicts.

A child's reply is untrusted input. It is decoded by ``codec`` (no pickle), its strings made
harmless by ``untrusted.clean_tree``, then validated here once; every check kind reads
``CallReply.ok`` / ``.value`` / ``.error`` instead of poking at dictionaries, and every way a
probe can fail is a ``ProbeFailure`` with a status and a stage. Fields that are one line by
nature (an exception's type, where it happened) lose any line break here, so no reply can start
a line of its own in a log or a table.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grader.sandbox import codec
from grader.sandbox.untrusted import clean_line, clean_tree

_TEXT_CAP = 4000


class ProbeStatus(str, Enum):
    """How a probe that gave no answer ended (the check's status follows)."""

    error = "error"
    timeout = "timeout"


class Stage(str, Enum):
    """Where the child was when it failed: importing the student's module, or running the probe."""

    import_ = "import"
    probe = "probe"


class ErrorInfo(BaseModel):
    """An exception in the child, described by the child (``faults.describe_exception``)."""

    model_config = ConfigDict(extra="ignore")
    type: str = "Error"
    message: str = ""
    where: str | None = None
    out_of_memory: bool = False
    traceback: str = ""

    @field_validator("type", "message", "where", "traceback", mode="before")
    @classmethod
    def _bounded_text(cls, v: Any) -> Any:
        return str(v)[:_TEXT_CAP] if v is not None else None

    @field_validator("type", "where")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        return clean_line(v) if v is not None else None


def format_error(error: ErrorInfo | None) -> str:
    """``Type: message (file, line N, in f)``."""
    if error is None:
        return "Error"
    message = error.message.strip()
    text = f"{error.type}: {message}" if message else error.type
    if error.out_of_memory:
        text = f"ran out of memory ({text})"
    return f"{text} ({error.where})" if error.where else text


class IsolationReport(BaseModel):
    """The child's first message, sent before the student's module is imported: what isolation
    this machine could not give. The only message the grader takes a child's word for, since no
    student code had run when it was written; each item is one line of the grader's log."""

    model_config = ConfigDict(extra="ignore")
    isolation_missing: list[str] = Field(default_factory=list)

    @field_validator("isolation_missing", mode="before")
    @classmethod
    def _lines(cls, v: Any) -> Any:
        return [clean_line(str(item))[:_TEXT_CAP] for item in v] if isinstance(v, list) else []

    @classmethod
    def parse(cls, raw: bytes) -> IsolationReport:
        try:
            return cls.model_validate(clean_tree(codec.decode(raw)))
        except (codec.CodecError, ValidationError):
            return cls(isolation_missing=["the child's isolation report could not be read"])


class ChildReply(BaseModel):
    """The message a child sends back with the probe's result (after the student's code ran:
    anything in it may be forged, so it carries raw values only)."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)
    stage: Stage = Stage.probe
    ok: bool
    value: Any = None
    error: ErrorInfo | None = None


class CallReply(BaseModel):
    """The outcome of one call of student code inside a probe (one input of many)."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)
    ok: bool
    value: Any = None
    error: ErrorInfo | None = None
    forbidden: list[str] = Field(default_factory=list)   # forbidden callables it called, by name
    operators: list[str] = Field(default_factory=list)   # forbidden aten operators it ran
    autograd: list[str] = Field(default_factory=list)    # how it used autograd, where that is forbidden

    @property
    def error_text(self) -> str:
        return format_error(self.error)

    @classmethod
    def parse(cls, raw: Any) -> CallReply:
        """One entry of a probe's list of outcomes; anything malformed is a failed call."""
        try:
            return cls.model_validate(raw)
        except ValidationError:
            return cls(ok=False, error=ErrorInfo(type="a malformed reply"))

    @classmethod
    def parse_list(cls, raw: Any, expected: int) -> list[CallReply]:
        """Exactly ``expected`` outcomes. A child stops early after running out of memory or
        recursion: the inputs it skipped get its last outcome."""
        replies = [cls.parse(r) for r in (raw if isinstance(raw, list) else [])][:expected]
        if len(replies) < expected:
            last = replies[-1] if replies else cls(ok=False, error=ErrorInfo(type="no reply"))
            replies += [last] * (expected - len(replies))
        return replies


class ProbeFailure(Exception):
    """Student code did not produce a reply."""

    def __init__(self, status: ProbeStatus, message: str, *, stage: Stage = Stage.probe,
                 error: ErrorInfo | None = None, log_tail: str = "", out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.status = ProbeStatus(status)
        self.message = message
        self.stage = Stage(stage)
        self.error = error
        self.log_tail = log_tail
        self.out_of_memory = out_of_memory
