"""Results: what grading a submission produces, with a stable JSON form.

``Outcome`` is what a check kind returns (a verdict and a credit fraction); the engine turns it
into a ``CheckResult`` by adding the manifest's points, title and hint. A student's fault is an
outcome, never an exception.

A message is made of ``Part``s, each saying what it shows besides the verdict (the student's own
values, the input a check failed on, a reference value): an instructor reads every part, a
student the parts the check's ``Disclosure`` allows (``grader.reveal``). Reference values live in
parts and fields the policy can drop, never only inside free text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NamedTuple

from pydantic import BaseModel, Field, computed_field, field_validator, model_validator

from grader.lab.manifest import Limits, Reveal, Visibility
from grader.options import Device, Mode

# 2: diagnoses as a list, the student's identity. 3: messages in parts, and what a student may see
# of each check. Results of earlier schemas are read and upgraded, so a batch graded by an earlier
# gradelab resumes (their messages, without parts, are shown to instructors only). 4: written answers, "awaiting
# review" until a person grades them (their grades live beside the results: ``grader.review``).
# 5: one scale: the maximum holds every point at stake, the pending ones named (``pending_points``);
# an earlier result is rescored from its checks when read.
RESULT_SCHEMA_VERSION = 5


class Status(str, Enum):
    passed = "passed"
    partial = "partial"   # accepted with partial credit (a declared alternative answer)
    failed = "failed"
    error = "error"       # the student's code raised, crashed, or a prerequisite was missing
    timeout = "timeout"
    skipped = "skipped"   # not run in this mode (e.g. training in a quick self-check)
    deferred = "deferred"  # a student edition checked the format only: the check is graded on hand-in
    awaiting_review = "awaiting review"  # a written answer no person has graded yet (``grader.review``)


class Kind(str, Enum):
    """The kinds a grader compares by name: ``submission`` is no check of the lab but the hand-in
    itself, when it could not be read at all; ``written`` is a written answer, graded by a person."""

    submission = "submission"
    written = "written"


# One scale: a total is out of every point at stake, graded or not. A check not graded yet (a
# written answer awaiting review, a training check not run) scores nothing so far and is pending:
# its points are in the maximum and named as pending, never dropped from it (which would show
# 17/17 where 17/20 is owed). Only a student edition's format check, which the edition cannot
# grade at all, is not at stake there.
PENDING = (Status.skipped, Status.awaiting_review)
NOT_AT_STAKE = (Status.deferred,)
NOT_SCORED = (*PENDING, *NOT_AT_STAKE)


class Part(BaseModel):
    """One piece of a message, and what it shows besides the verdict. ``text`` carries its own
    leading space or punctuation, so that the parts a student may see join into a sentence."""

    text: str
    shows: list[Reveal] = Field(default_factory=list)
    unless: list[Reveal] = Field(default_factory=list,
                                 description="Wording that stands in for these when one of them may not be shown.")


def shown(parts: Iterable[Part], allowed: Iterable[Reveal] | None = None) -> list[Part]:
    """The parts whose every ``shows`` is allowed (``None``: all of them, the instructor's view),
    with the stand-in wording where something was left out."""
    keep = set(Reveal) if allowed is None else set(allowed)
    return [p for p in parts if set(p.shows) <= keep and not (p.unless and set(p.unless) <= keep)]


def render(parts: Iterable[Part], allowed: Iterable[Reveal] | None = None) -> str:
    """The message a reader allowed ``allowed`` reads (see ``shown``)."""
    return "".join(p.text for p in shown(parts, allowed)).strip()


class Feedback:
    """A message built part by part: ``say`` starts a new sentence or clause (a space before
    it), ``add`` continues the last one (no space). Each part names what it shows."""

    def __init__(self, text: str = "", *shows: Reveal) -> None:
        self.parts: list[Part] = []
        if text:
            self.say(text, *shows)

    def say(self, text: str, *shows: Reveal) -> Feedback:
        self.parts.append(Part(text=(" " if self.parts else "") + text, shows=list(shows)))
        return self

    def add(self, text: str, *shows: Reveal, unless: tuple[Reveal, ...] = ()) -> Feedback:
        self.parts.append(Part(text=text, shows=list(shows), unless=list(unless)))
        return self

    def instead(self, text: str, *of: Reveal) -> Feedback:
        """Wording shown only where the last parts, which show ``of``, are left out (no space added)."""
        return self.add(text, unless=of)

    def extend(self, other: Feedback) -> Feedback:
        """Another message's sentences after this one's."""
        for i, part in enumerate(other.parts):
            space = " " if i == 0 and self.parts and not part.text.startswith(" ") else ""
            self.parts.append(part.model_copy(update={"text": space + part.text}))
        return self

    def __bool__(self) -> bool:
        return bool(self.parts)

    def text(self, allowed: Iterable[Reveal] | None = None) -> str:
        return render(self.parts, allowed)


class Disclosure(BaseModel):
    """What a student may see of one check's result besides its verdict, named mistakes and hint.
    A kind declares it (safe by default: nothing); a manifest may set ``shows`` per check. It is
    stored with each result, so a student's view is computed from the result alone."""

    shows: list[Reveal] = Field(default_factory=list, description="Parts and fields a student may see.")
    details: dict[str, list[Reveal]] = Field(
        default_factory=dict, description="Keys of ``details`` a student may see, each with what it shows; "
                                          "keys not listed are for instructors only.")
    plain_message: bool = Field(False, description="A message given without parts is safe for students as it is.")


def jsonable(value: Any) -> Any:
    """Make a value safe for JSON: numpy scalars and arrays become lists, NaN/inf strings."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
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


def _message(message: str | Feedback) -> dict[str, Any]:
    if isinstance(message, Feedback):
        return {"message": message.text(), "parts": message.parts}
    return {"message": message}


class Outcome(_Diagnosed):
    status: Status
    fraction: float = Field(0.0, ge=0.0, le=1.0)
    message: str = ""
    parts: list[Part] = Field(default_factory=list, description="The message, part by part (see ``Part``).")
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
    def passed(cls, message: str | Feedback = "", **kw: Any) -> Outcome:
        return cls(status=Status.passed, fraction=1.0, **_message(message), **kw)

    @classmethod
    def failed(cls, message: str | Feedback, **kw: Any) -> Outcome:
        return cls(status=Status.failed, fraction=0.0, **_message(message), **kw)

    @classmethod
    def error(cls, message: str | Feedback, **kw: Any) -> Outcome:
        return cls(status=Status.error, fraction=0.0, **_message(message), **kw)

    @classmethod
    def graded(cls, fraction: float, message: str | Feedback, **kw: Any) -> Outcome:
        """Passed, partial or failed according to the credit earned."""
        status = Status.passed if fraction >= 1.0 else Status.partial if fraction > 0 else Status.failed
        return cls(status=status, fraction=min(max(fraction, 0.0), 1.0), **_message(message), **kw)


class CheckResult(_Diagnosed):
    id: str
    title: str
    kind: str
    visibility: Visibility
    status: Status
    score: float
    max_score: float
    message: str = ""
    parts: list[Part] = Field(default_factory=list)
    hint: str = ""
    expected: Any = None
    got: Any = None
    diagnoses: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    disclosure: Disclosure | None = Field(None, description="What a student may see; None (an older result): "
                                                            "the verdict, named mistakes and hint only.")
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
    lms: str | None = Field(None, description="The LMS whose download named the student (its id is that LMS's): "
                                             "'moodle', 'canvas'; None for a folder's name.")


class SubmissionResult(BaseModel):
    schema_version: int = RESULT_SCHEMA_VERSION
    submission: str = Field(description="The result's file-safe name, unique in its batch.")
    path: str
    student: Student
    lab: str
    lab_title: str
    lab_version: str
    grader_version: str
    mode: Mode = Field(description="'grade' (every check) or 'check' (public checks only).")
    graded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    seed: int = 0
    device: Device = Device.cpu
    limits: Limits
    score: float = 0.0
    max_score: float = Field(0.0, description="Every point at stake, graded or pending: the lab's full points.")
    pending_points: float = Field(0.0, description="Of max_score, the points not graded yet (written answers "
                                                   "awaiting review, checks not run): the score is partial.")
    grade: str = ""
    checks: list[CheckResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list,
                             description="What the grader did with the hand-in that the student should know "
                                         "(files left out and why).")
    log_tail: str = Field("", description="The last lines the student's code printed, capped.")
    duration_s: float = 0.0
    handin_sha: str | None = Field(None, description="Digest of the hand-in's files as read (None: unreadable).")
    graded_with: dict[str, Any] = Field(default_factory=dict, description=(
        "What decided the grade besides the hand-in (lab and its digest, mode, seed, training, budget, device, "
        "checks, data): a rerun keeps this result only when all of it is the same (grading.resume)."))

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """A schema-1 result (no student): the submission's name is the student's."""
        if isinstance(data, dict) and "student" not in data and "submission" in data:
            data = {**data, "student": {"id": data["submission"], "name": data["submission"],
                                        "source": data.get("path", "")}}
        if isinstance(data, dict) and data.get("schema_version", RESULT_SCHEMA_VERSION) < RESULT_SCHEMA_VERSION:
            data = {**data, "schema_version": RESULT_SCHEMA_VERSION, **_rescored(data.get("checks"))}
        return data

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0

    @property
    def all_passed(self) -> bool:
        return all(c.status in (Status.passed, *NOT_SCORED) for c in self.checks)

    @property
    def unanswered(self) -> list[CheckResult]:
        """Written questions with no answer found: awaiting review, yet nothing to review, so a
        self-check must not say all is well."""
        return [c for c in self.checks if c.status == Status.awaiting_review and not (c.details or {}).get("answer")]

    @property
    def awaiting_review(self) -> list[CheckResult]:
        """Written answers no person has graded yet: their points are pending in the total."""
        return [c for c in self.checks if c.status == Status.awaiting_review]

    @property
    def pending(self) -> list[CheckResult]:
        """The checks not graded yet: the total is partial while there are any (``pending_points``)."""
        return [c for c in self.checks if c.status in PENDING]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def _rescored(checks: Any) -> dict[str, float]:
    """An earlier schema's maximum left pending points out: the maximum and pending points of its
    checks as read (nothing, for a hand-in that could not be read: its maximum is the lab's)."""
    if not isinstance(checks, list) or not checks or not all(isinstance(c, dict) for c in checks) \
            or all(c.get("kind") == Kind.submission.value for c in checks):
        return {}
    at_stake = [c for c in checks if c.get("status") not in {s.value for s in NOT_AT_STAKE}]
    pending = [c for c in at_stake if c.get("status") in {s.value for s in PENDING}]
    return {"max_score": _points(at_stake), "pending_points": _points(pending)}


def _points(checks: list[dict[str, Any]]) -> float:
    return float(sum(float(c.get("max_score") or 0) for c in checks))


class Tally(NamedTuple):
    """A score: the same pure function for the engine and for each report's audience."""

    score: float
    max_score: float
    pending: float = 0.0

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0


def tally(checks: Iterable[CheckResult]) -> Tally:
    """Points earned, points at stake (every check's but a student edition's format checks), and
    of those the points still pending (written answers awaiting review, checks not run)."""
    at_stake = [c for c in checks if c.status not in NOT_AT_STAKE]
    pending = [c for c in at_stake if c.status in PENDING]
    return Tally(round(sum(c.score for c in at_stake if c.status not in PENDING), 2),
                 sum(c.max_score for c in at_stake), sum(c.max_score for c in pending))
