"""What one run of the grader is asked to do: one frozen value, made at the edge (the CLI, a test,
the server) and passed whole through api, engine, batch and calibrate.

Why one value: every setting used to be re-declared at each hop, with defaults that disagreed
from one hop to the next, and a free-form string (``--device gpu``) travelled all the way into
the engine before anything refused it, by which point a whole class had been recorded as
"unreadable". Here each setting has one type, one default and one description, and an invalid
value is refused before anything is graded.

Events: a run reports what it does through one callback taking an ``Event``; the CLI draws
progress bars from them, the server (later) its queue page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.errors import UsageError
from grader.lab.manifest import LimitsOverride

if TYPE_CHECKING:
    from grader.results import CheckResult, SubmissionResult


class Mode(str, Enum):
    """``grade``: every check, hidden ones included (instructors). ``check``: the public checks
    (a student's self-check)."""

    grade = "grade"
    check = "check"


class Device(str, Enum):
    """Where training runs: ``auto`` is the GPU when torch sees one, else the CPU."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Budget(str, Enum):
    """Training budgets a lab may declare for its training checks."""

    cpu = "cpu"
    gpu = "gpu"
    smoke = "smoke"


class ReportsFor(str, Enum):
    """Whose PDF reports a batch writes: each student's (the student's view), the instructor's, or both."""

    students = "students"
    instructor = "instructor"
    both = "both"


class Layout(str, Enum):
    """How a class folder is laid out: recognised (``auto``) or named."""

    auto = "auto"
    moodle = "moodle"
    canvas = "canvas"
    folders = "folders"


class RunOptions(BaseModel):
    """Every setting of a grading run. Frozen: nothing downstream changes what was asked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = Field(Mode.grade, description="grade: every check; check: the public ones.")
    seed: int = Field(0, description="Seed of every random draw; recorded in each result.")
    limits: LimitsOverride | None = Field(None, description="Command-line limits, over the lab's and the check's.")
    data_root: Path | None = Field(None, description="The real data sets in torchvision's layout; None: bundled.")
    train: bool | None = Field(None, description="Run training checks; None: yes when grading, no in a self-check.")
    device: Device = Device.auto
    budget: Budget | None = Field(None, description="Training budget by name; None: gpu on a GPU, else cpu.")
    only: tuple[str, ...] = Field((), description="Run only these checks (ids).")
    layout: Layout = Field(Layout.auto, description="How the class folder is laid out (a batch's).")
    early_stop: bool = Field(True, description="A training check may stop as soon as its verdict is certain (the "
                                               "lab's rule, `early_stop`); False: always the whole budget.")
    reports: bool = Field(True, description="Render a PDF report per submission and a class summary.")
    reports_for: ReportsFor = Field(ReportsFor.both, description="Whose reports: students/ and instructor/ folders.")
    html: bool = Field(False, description="Also write each report as HTML.")
    force: bool = Field(False, description="Regrade submissions already graded in the output folder.")
    jobs: int | None = Field(None, ge=1, description="Hand-ins graded at once; None: what the machine and the lab allow.")
    ray: str | None = Field(None, description="Grade on a Ray cluster at this address ('local': start one here).")

    @property
    def trains(self) -> bool:
        """Whether training checks run: students opt in (training takes minutes)."""
        return self.mode == Mode.grade if self.train is None else self.train

    @classmethod
    def from_user(cls, **values: object) -> RunOptions:
        """Options typed by a person: a value of the wrong kind is one line naming the option and
        what it accepts (``UsageError``, exit status 2), never a traceback."""
        try:
            return cls.model_validate({k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            last = str(err["loc"][-1]) if err["loc"] else "options"
            name = _FLAGS.get(last, "--" + last.replace("_", "-"))
            field = cls.model_fields.get(str(err["loc"][0])) if err["loc"] else None
            choices = _choices(field.annotation) if field else None
            accepted = f": use {', '.join(choices)}" if choices else f": {err['msg']}"
            raise UsageError(f"{name} {err.get('input')!r} is not accepted{accepted}") from None


_FLAGS = {"wall_s": "--wall-time", "cpu_s": "--cpu-time", "memory_mb": "--memory-mb"}


def _choices(annotation: object) -> list[str] | None:
    for candidate in getattr(annotation, "__args__", None) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return [m.value for m in candidate]
    return None


# --- events ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubmissionStarted:
    name: str


@dataclass(frozen=True)
class CheckFinished:
    submission: str
    result: CheckResult


@dataclass(frozen=True)
class TrainingProgress:
    submission: str
    check: str       # the check's title
    epoch: int
    epochs: int
    loss: float


@dataclass(frozen=True)
class SubmissionFinished:
    result: SubmissionResult
    skipped: bool    # graded by an earlier run and kept


Event = SubmissionStarted | CheckFinished | TrainingProgress | SubmissionFinished
EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The sink of a run nobody watches."""
