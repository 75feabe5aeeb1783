"""The lab manifest: everything that makes one lab differ from another, as validated data.

A manifest is YAML with a ``schema_version``; the models below are its schema (exported with
``gradelab labs --schema``). Check ``params`` are validated a second time, against the model of
the check kind they name, by the loader: the registry of kinds lives in ``grader.checks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1
_SLUG = r"^[a-z0-9][a-z0-9_-]*$"
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a manifest must not silently disable a setting."""

    model_config = ConfigDict(extra="forbid")


class Visibility(str, Enum):
    public = "public"
    hidden = "hidden"


class Reveal(str, Enum):
    """What a student may see of a check's result besides its verdict, its named mistakes and its
    hint (those, always). A check kind declares which of these it shows by default; a manifest
    may set them per check (``reveal:``). Instructors see everything."""

    got = "got"            # the student's own values: their answers, outputs, counts
    inputs = "inputs"      # the input a check failed on: a call, a counterexample to paste
    expected = "expected"  # reference values: only where public (torch's own ops, shapes the handout states)


class Limits(Strict):
    """Resource limits for one sandboxed process (one check's run of student code)."""

    wall_s: float = Field(20.0, gt=0, description="Wall-clock seconds before the process group is killed.")
    cpu_s: float = Field(60.0, gt=0, description="CPU seconds (all threads) before the kernel stops the process.")
    memory_mb: int = Field(2048, gt=0, description="Memory the student's code may add, in MiB (its memory cgroup; "
                                                  "address space where there is none).")
    disk_mb: int = Field(256, ge=16, description="Size of the child's working folder (a tmpfs), and of each of its "
                                                 "private /tmp folders, in MiB.")
    threads: int = Field(1, ge=1, le=64, description="torch intra-op threads inside the child.")
    max_processes: int = Field(64, ge=1, description="Processes and threads the child may hold at once.")
    output_kb: int = Field(64, ge=1, description="Bytes of stdout/stderr kept (the tail) for the report.")
    gpu_share: float = Field(1.0, gt=0, le=1, description="Share of one GPU a hand-in's training needs: "
                                                           "0.25 lets four hand-ins train on one GPU at once.")

    def merged(self, override: LimitsOverride | None) -> Limits:
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))


class LimitsOverride(Strict):
    """Per-check or command-line changes to the lab's limits; unset fields keep the lab's value."""

    wall_s: float | None = Field(None, gt=0)
    cpu_s: float | None = Field(None, gt=0)
    memory_mb: int | None = Field(None, gt=0)
    disk_mb: int | None = Field(None, ge=16)
    threads: int | None = Field(None, ge=1, le=64)
    max_processes: int | None = Field(None, ge=1)
    output_kb: int | None = Field(None, ge=1)
    gpu_share: float | None = Field(None, gt=0, le=1)


class IntakeLimits(Strict):
    """How much of a hand-in the grader reads. Past a cap, what is left out is named on the
    hand-in's result; a hand-in is never a reason for the grader to block or run out of memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # a default instance is shared by every reader

    max_depth: int = Field(8, ge=1, description="Folder levels read below the hand-in.")
    max_entries: int = Field(2000, ge=1, description="Files and folders read, in all.")
    max_file_mb: float = Field(20, gt=0, description="Largest file read, in MB.")
    max_total_mb: float = Field(50, gt=0, description="Bytes read in all, in MB.")
    max_sheet_kb: int = Field(256, ge=1, description="Largest answer sheet read, in kB.")
    max_ratio: float = Field(200, gt=1, description="Largest compression ratio of an archive member over "
                                                     "1 MiB (a zip bomb compresses thousands of times).")


class SymbolSpec(Strict):
    name: str = Field(pattern=_IDENT, description="Attribute of the student's module.")
    kind: Literal["class", "function"]
    params: list[str] = Field(
        default_factory=list,
        description="Positional arguments the grader calls it with (for a class: its constructor).",
    )
    description: str = ""


AnswerType = Literal["int", "float", "str", "bool", "list[int]", "list[float]", "choice"]


class AnswerFieldSpec(Strict):
    path: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$",
                      description="Dotted path in answers.yaml, e.g. layers.conv1.params")
    type: AnswerType
    choices: list[str] | None = Field(None, description="Allowed values when type is 'choice'.")
    description: str = ""

    @model_validator(mode="after")
    def _choices_match_type(self) -> AnswerFieldSpec:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("'choices' must be given exactly when type is 'choice'")
        return self


class InterfaceSpec(Strict):
    module: str = Field("submission.py", pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.py$",
                        description="File name of the student's module inside a submission folder.")
    answers_file: str = Field("answers.yaml", description="File name of the answer sheet.")
    symbols: list[SymbolSpec] = Field(default_factory=list)
    answers: list[AnswerFieldSpec] = Field(default_factory=list)

    def symbol(self, name: str) -> SymbolSpec | None:
        return next((s for s in self.symbols if s.name == name), None)

    def answer_field(self, path: str) -> AnswerFieldSpec | None:
        return next((a for a in self.answers if a.path == path), None)


@dataclass(frozen=True)
class Need:
    """A check's prerequisite: a symbol of the student's module (``Net``), or a field of the answer
    sheet (written ``answers.layers.conv1.params`` in a manifest). Parsed once, here."""

    ANSWERS = "answers."
    name: str
    answer: bool = False

    @classmethod
    def parse(cls, text: str) -> Need:
        return cls(text.removeprefix(cls.ANSWERS), answer=True) if text.startswith(cls.ANSWERS) else cls(text)

    @classmethod
    def field(cls, path: str) -> Need:
        return cls(path, answer=True)

    def __str__(self) -> str:
        return f"{self.ANSWERS}{self.name}" if self.answer else self.name


class CheckSpec(Strict):
    id: str = Field(pattern=_SLUG)
    title: str
    kind: str = Field(description="A registered check kind (see `gradelab labs --kinds`).")
    points: float = Field(ge=0)
    visibility: Visibility = Visibility.public
    hint: str = Field("", description="Shown to the student when the check does not pass.")
    needs: list[str] = Field(
        default_factory=list,
        description="Extra prerequisites: symbol names or 'answers.<path>'. The kind adds its own.",
    )
    limits: LimitsOverride | None = None
    training: bool = Field(False, description="Trains a network: run by `grade` by default, by `check` only with --train.")
    reveal: list[Reveal] | None = Field(
        None, description="What students see of this check besides its verdict, named mistakes and hint: any of "
                          "got (their own values), inputs (the input it failed on), expected (reference values: "
                          "mark them only where they are public and answer no other check). Default: what the "
                          "kind declares (`gradelab labs --kinds`); [] shows none of them.")
    params: dict[str, Any] = Field(default_factory=dict)


class ReferenceSpec(Strict):
    module: str = Field("reference.py", description="Reference implementation, run in the grader's process.")
    answers: str = Field("answers.yaml", description="The reference answer sheet.")
    harness: str | None = Field(
        None, description="Trusted code the grader runs inside the sandbox with the student's module "
                          "(training loops). It is sent as text and never sees answers or test labels.")


class SimilaritySettings(Strict):
    """How ``gradelab similarity`` compares a class's hand-ins (``grader.similarity``): what counts
    as noise, and from which score a pair is listed. The defaults were set on the corpus under
    ``submissions/similarity``; a lab whose template leaves little to write may raise them."""

    threshold: float = Field(0.5, gt=0, le=1, description="A pair whose combined score reaches this is listed "
                                                           "as similar (the ranked CSV keeps every pair above "
                                                           "half of it).")
    code_k: int = Field(20, ge=5, le=200, description="Characters of normalised code per fingerprint (the "
                                                       "noise threshold: shorter matches are ignored).")
    code_window: int = Field(4, ge=1, le=100, description="Winnowing window: one fingerprint is kept per "
                                                           "window of this many.")
    code_min_fingerprints: int = Field(40, ge=1, description="A hand-in with fewer fingerprints than this "
                                                              "counts as this many (a nearly empty hand-in "
                                                              "shares little by chance, not everything).")
    code_enough: int = Field(150, ge=1, description="Shared fingerprints that are evidence by themselves, whatever "
                                                     "the hand-ins' sizes (about 30 lines of code: a block "
                                                     "pasted into a longer hand-in).")
    common_share: float = Field(0.1, gt=0, le=1, description="A fingerprint, value or phrase found in at "
                                                             "least this share of the class is common knowledge, "
                                                             "not evidence …")
    common_floor: int = Field(5, ge=2, description="… and in at least this many hand-ins, whatever the class's size.")
    wrong_weight: float = Field(3.0, ge=1, description="How much more a shared wrong answer weighs than a "
                                                        "shared right one of the same rarity.")
    right_weight: float = Field(0.25, ge=0, le=1, description="How much a shared right answer weighs against its "
                                                              "rarity: right answers agree by themselves.")
    rarity_cap: int = Field(10, ge=2, description="A value's rarity counts up to one hand-in in this many, and "
                                                  "a smaller class counts as this many: in a large class many pairs "
                                                  "share some rare value by chance, so one shared value stays a "
                                                  "hint; in a small one, two sharing a wrong value still count.")
    answers_scale: float = Field(12.0, gt=0, description="Rarity-weighted shared answers (in nats) that make "
                                                         "the answer-sheet score 63 %.")
    phrase_words: int = Field(5, ge=2, le=20, description="Words per phrase compared in written answers.")
    phrase_min: int = Field(6, ge=1, description="A written answer with fewer phrases than this counts as this many.")


class LabManifest(Strict):
    schema_version: int
    id: str = Field(pattern=_SLUG)
    title: str
    version: str
    description: str = ""
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    template: str = Field("template", description="Folder with the student's starting files.")
    edition: Literal["full", "students"] = Field(
        "full", description="'students': written by `gradelab pack --students`, without the solutions; it "
                            "self-checks hand-ins but cannot grade them.")
    interface: InterfaceSpec
    limits: Limits = Field(default_factory=Limits)
    intake: IntakeLimits = Field(default_factory=IntakeLimits)
    preload: list[str] = Field(
        default_factory=list,
        description="Modules students' code imports that the sandbox imports once, before forking each child "
                    "(torch always is): e.g. torchvision, whose import costs seconds per child otherwise.")
    grade_bands: dict[str, float] = Field(
        default_factory=lambda: {"A": 90.0, "B": 80.0, "C": 70.0, "D": 60.0, "E": 50.0},
        description="Letter grade → lowest percentage earning it; below every band the grade is F.")
    notebook: Literal["definitions", "run-all"] = Field(
        "definitions",
        description="How a notebook hand-in becomes the student's module: 'definitions' keeps imports, "
                    "functions, classes and constant assignments (a training loop at top level is not run); "
                    "'run-all' runs every code cell, top to bottom.")
    similarity: SimilaritySettings = Field(default_factory=SimilaritySettings,
                                           description="Thresholds of `gradelab similarity` for this lab.")
    checks: list[CheckSpec] = Field(min_length=1)

    def letter_grade(self, percent: float) -> str:
        for letter, lowest in sorted(self.grade_bands.items(), key=lambda kv: -kv[1]):
            if percent >= lowest - 1e-9:
                return letter
        return "F"

    @field_validator("preload")
    @classmethod
    def _module_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"{name!r} is not a module name")
        return v

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v > SCHEMA_VERSION:
            raise ValueError(
                f"this manifest is schema {v}, newer than this gradelab reads ({SCHEMA_VERSION}); "
                "upgrade gradelab")
        if v < SCHEMA_VERSION:
            raise ValueError(f"schema {v} is too old; this gradelab reads schema {SCHEMA_VERSION}")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> LabManifest:
        seen: set[str] = set()
        for check in self.checks:
            if check.id in seen:
                raise ValueError(f"check id {check.id!r} appears twice")
            seen.add(check.id)
        return self

    def declares(self, need: Need) -> bool:
        """Whether the interface declares what a check needs (checked when checks are bound)."""
        found = self.interface.answer_field(need.name) if need.answer else self.interface.symbol(need.name)
        return found is not None

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)
