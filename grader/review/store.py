"""Manual grades, kept beside the results they complete: ``<out>/review/<question>.json``.

Why beside and not inside the result JSON: a regrade of the automatic part rewrites every result,
and must not lose an hour of a person's grading; the grades are merged into each result when it is
read (``grader.review.merge``). One file per question, because graders work question by question:
two graders on two questions never touch the same file.

Each answer's grade stores the *ids* of the rubric items applied (their points live in the
rubric, so an item edited once rescores every answer it is on), the grader's comment, which answer
it was given to (a digest: a changed answer is awaiting review again), and a version. Writes are
read-modify-write under an exclusive ``flock`` on the question's lock file and land with
``write_atomic``; a write names the versions it was based on, and one based on a stale version is
refused (``StaleGrade``: the page reloads that answer) — two graders at once never overwrite each
other silently.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from grader.atomic import write_atomic
from grader.checks.written import RubricItem
from grader.errors import GradelabError

REVIEW_SCHEMA_VERSION = 1
REVIEW_DIR = "review"
COMMENT_MAX = 2000


class StaleGrade(GradelabError):
    """A grade was written from a version someone else has since replaced."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"graded meanwhile by someone else: {', '.join(keys)}")
        self.keys = keys


class AnswerGrade(BaseModel):
    items: list[str] = Field(default_factory=list, description="Ids of the rubric items applied.")
    comment: str = Field("", max_length=COMMENT_MAX, description="The grader's own words to the student.")
    answer_sha: str = Field(description="The answer graded (``written.answer_digest``).")
    version: int = Field(1, ge=1, description="Bumped by every write: what a grader's next write must name.")
    graded_by: str = ""
    graded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class QuestionBook(BaseModel):
    """Every grade given to one question, and its rubric as edited in the grading pages."""

    schema_version: int = REVIEW_SCHEMA_VERSION
    question: str
    rubric: list[RubricItem] | None = Field(None, description="The rubric as edited; None: the lab's, unedited.")
    grades: dict[str, AnswerGrade] = Field(default_factory=dict, description="By submission (the result's name).")

    @field_validator("schema_version")
    @classmethod
    def _known(cls, v: int) -> int:
        if v > REVIEW_SCHEMA_VERSION:
            raise ValueError(f"grades of schema {v}, newer than this gradelab reads ({REVIEW_SCHEMA_VERSION})")
        return v

    def version_of(self, key: str) -> int:
        grade = self.grades.get(key)
        return grade.version if grade else 0


class ReviewStore:
    """The grades of one batch (or one served class)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def beside(cls, out: Path) -> ReviewStore:
        """The store of the batch whose results are in ``out``."""
        return cls(Path(out) / REVIEW_DIR)

    def _path(self, question: str) -> Path:
        if not question or "/" in question or question.startswith("."):
            raise ValueError(f"not a question id: {question!r}")  # ids are slugs: never a path
        return self.folder / f"{question}.json"

    def book(self, question: str) -> QuestionBook:
        path = self._path(question)
        try:
            return QuestionBook.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return QuestionBook(question=question)
        except (OSError, ValidationError) as exc:
            raise GradelabError(f"{path}: the grades cannot be read ({type(exc).__name__}); restore it from a "
                                "backup, or remove it to grade that question again") from None

    @contextmanager
    def _locked(self, question: str) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / f".{question}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def update(self, question: str, change: Callable[[QuestionBook], None]) -> QuestionBook:
        """Read, change, write: under the question's lock, so no change is lost between two."""
        with self._locked(question):
            book = self.book(question)
            change(book)
            write_atomic(self._path(question), book.model_dump_json(indent=2))
            return book

    def grade(self, question: str, answers: dict[str, tuple[str, int]], items: list[str], comment: str,
              by: str = "") -> QuestionBook:
        """Grade answers at once (a group): ``answers`` maps a submission to (the answer's digest,
        the version the grader saw; 0: ungraded). Either all are written or, if one was graded
        meanwhile, none (``StaleGrade``)."""
        def change(book: QuestionBook) -> None:
            stale = [key for key, (_, seen) in answers.items() if book.version_of(key) != seen]
            if stale:
                raise StaleGrade(stale)
            now = datetime.now(UTC)
            for key, (sha, seen) in answers.items():
                book.grades[key] = AnswerGrade(items=list(dict.fromkeys(items)), comment=comment[:COMMENT_MAX],
                                               answer_sha=sha, version=seen + 1, graded_by=by, graded_at=now)
        return self.update(question, change)

    def edit_item(self, question: str, lab_rubric: list[RubricItem], item: RubricItem) -> QuestionBook:
        """Change one rubric item (or add one): every answer it is on is rescored when read."""
        def change(book: QuestionBook) -> None:
            rubric = list(book.rubric or lab_rubric)
            at = next((i for i, r in enumerate(rubric) if r.id == item.id), None)
            if at is None:
                if len(rubric) >= 9:
                    raise GradelabError("a rubric has at most 9 items (keys 1–9)")
                rubric.append(item)
            else:
                rubric[at] = item
            book.rubric = rubric
        return self.update(question, change)
