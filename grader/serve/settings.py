"""The server's rules, one frozen value made at the edge (the CLI, a test, the benchmark) and
passed whole, as ``RunOptions`` is for grading.

Why a model and not keyword arguments: the rules are what a course announces (upload size,
attempts per hour, the due date) and each one is checked by the route that applies it; a value
that is not accepted is refused here, in one line, before the server starts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grader.errors import UsageError


class ServeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    class_dir: Path = Field(description="The class folder: one folder per student, each with its attempts.")
    roster: Path = Field(description="The roster CSV: id,name,email[,extension].")
    host: str = Field("127.0.0.1", description="Address to listen on (a reverse proxy in front for TLS).")
    port: int = Field(8000, ge=1, le=65535)
    workers: int | None = Field(None, ge=0, description="Grading worker processes; None: one per core; "
                                                        "0: accept and queue uploads, grade when a server with "
                                                        "workers starts.")
    upload_mb: float = Field(20.0, gt=0, description="Largest request body (an upload), in MB, enforced while "
                                                     "it streams in.")
    attempts_per_hour: int = Field(10, ge=1, description="Uploads a student may make in any hour.")
    due: datetime | None = Field(None, description="After this, uploads are refused (a student's extension in "
                                                   "the roster moves it for them).")
    public_url: str | None = Field(None, description="The address students use (https://… behind a proxy): "
                                                     "session cookies are marked Secure when it is https.")
    session_hours: float = Field(12.0, gt=0, description="How long a login lasts.")
    poll_seconds: float = Field(1.5, gt=0, description="How often a waiting page asks whether its result is in.")

    @field_validator("due")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A due date without a time zone is the server's local time (said on every page with its offset)."""
        return value.astimezone() if value is not None and value.tzinfo is None else value

    @property
    def upload_bytes(self) -> int:
        return int(self.upload_mb * 1_000_000)

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.lower().startswith("https://"))

    @classmethod
    def from_user(cls, **values: object) -> ServeSettings:
        """Settings typed by a person: a value not accepted is one line naming the option."""
        try:
            return cls.model_validate({k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            err = exc.errors()[0]
            name = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "settings"
            raise UsageError(f"{name} {err.get('input')!r} is not accepted: {err['msg']}") from None


def now() -> datetime:
    """The server's clock, aware (every time it stores and compares is UTC)."""
    return datetime.now(UTC)
