"""The class roster and its tokens: who may log in, and how a token is checked.

The roster is the instructor's CSV (``id,name,email``, and an optional ``extension`` column);
there is no registration: a student is someone on it with a token. Tokens are made here, printed
once (``gradelab roster tokens``, a CSV to mail-merge) and stored only as their SHA-256 in the
class folder (``.gradelab/tokens.json``, mode 0600): whoever reads the class folder cannot log in
with what is there. A token is 192 random bits, so a fast hash is enough (a slow one protects
guessable passwords, which these are not). Checking a token compares its hash with every stored
hash, each in constant time and without stopping at a match, so the time a login takes says
nothing about which token, or how much of one, was right.

A student's id names their folder in the class folder, so it is checked here, once, against a
strict pattern (letters, digits, ``.``, ``_``, ``-``, ``@``; no ``/``, no leading dot).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from grader.atomic import write_atomic
from grader.errors import UsageError
from grader.export.cells import inert_row
from grader.serve.settings import now

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
STATE_DIR = ".gradelab"
TOKENS_FILE = "tokens.json"
INSTRUCTOR = "instructor"
_DURATION = re.compile(r"^\+?\s*(\d+(?:\.\d+)?)\s*([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def valid_id(student_id: str) -> bool:
    """An id that can name a folder of the class folder and nothing else (not ``..``, not ``a/b``)."""
    return bool(ID_PATTERN.match(student_id)) and ".." not in student_id


class RosterEntry(BaseModel):
    """One row of the roster."""

    id: str
    name: str
    email: str = ""
    extension: str = Field("", description="A duration added to the due date (36h, 2d) or a date-time that "
                                           "replaces it for this student.")

    def due(self, due: datetime | None) -> datetime | None:
        """This student's due date: the class's, moved by their extension."""
        if not self.extension:
            return due
        found = _DURATION.match(self.extension.strip().lower())
        if found:
            return due + timedelta(**{_UNITS[found.group(2)]: float(found.group(1))}) if due else None
        when = datetime.fromisoformat(self.extension.strip())
        return when.astimezone() if when.tzinfo is None else when


@dataclass
class Roster:
    students: dict[str, RosterEntry] = field(default_factory=dict)
    path: Path | None = None

    def get(self, student_id: str) -> RosterEntry | None:
        return self.students.get(student_id)

    def __iter__(self) -> Iterator[RosterEntry]:
        return iter(self.students.values())

    def __len__(self) -> int:
        return len(self.students)

    @classmethod
    def read(cls, path: Path) -> Roster:
        """The roster CSV, every row checked: a bad id, a duplicate or an unreadable extension is one
        line naming the row (``UsageError``), before anything is served or issued."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise UsageError(f"{path}: the roster cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path}: the roster is not UTF-8 text") from None
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "id" not in header or "name" not in header:
            raise UsageError(f"{path}: a roster has a header with at least id and name (id,name,email[,extension]); "
                             f"found {', '.join(header) or 'nothing'}")
        roster = cls(path=path)
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
            if not any(row.values()):
                continue
            sid = row.get("id", "")
            if not valid_id(sid):
                raise UsageError(f"{path}, line {line}: id {sid!r} is not accepted: letters, digits, '.', '_', '-' "
                                 "and '@', starting with a letter or digit, at most 64 characters")
            if sid in roster.students:
                raise UsageError(f"{path}, line {line}: id {sid!r} appears twice")
            student = RosterEntry(id=sid, name=row.get("name") or sid, email=row.get("email", ""),
                              extension=row.get("extension", ""))
            try:
                student.due(now())
            except ValueError:
                raise UsageError(f"{path}, line {line}: extension {student.extension!r} is not accepted: a duration "
                                 "(36h, 2d, 90m) or a date-time (2026-03-10T23:59+01:00)") from None
            roster.students[sid] = student
        if not roster.students:
            raise UsageError(f"{path}: the roster lists no student")
        return roster


# --- tokens ------------------------------------------------------------------------------------

class TokenRecord(BaseModel):
    sha256: str
    issued: datetime


class TokenFile(BaseModel):
    """What the class folder keeps of the tokens: their hashes, never the tokens."""

    students: dict[str, TokenRecord] = Field(default_factory=dict)
    instructor: TokenRecord | None = None

    def record(self, role: Literal["student", "instructor"], student_id: str = "") -> TokenRecord | None:
        return self.instructor if role == INSTRUCTOR else self.students.get(student_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def tokens_path(class_dir: Path) -> Path:
    return Path(class_dir) / STATE_DIR / TOKENS_FILE


def load_tokens(class_dir: Path) -> TokenFile:
    path = tokens_path(class_dir)
    try:
        return TokenFile.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return TokenFile()
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read ({type(exc).__name__}); reissue the tokens") from None


def save_tokens(class_dir: Path, tokens: TokenFile) -> None:
    path = tokens_path(class_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # write_atomic's temporary file is created 0600 (mkstemp), and so is the file it becomes; no
    # os.umask, which is the whole process's (a thread making a folder meanwhile would get it)
    write_atomic(path, tokens.model_dump_json(indent=2))


def identify(tokens: TokenFile, token: str) -> tuple[str, str] | None:
    """Whose token this is: (``"instructor"``, "") or (``"student"``, id), or None. Every stored
    hash is compared, in constant time, whatever matched first."""
    if not token or len(token) > 256:
        return None
    digest = hash_token(token.strip())
    found: tuple[str, str] | None = None
    candidates = [(("student", sid), rec) for sid, rec in tokens.students.items()]
    if tokens.instructor is not None:
        candidates.append(((INSTRUCTOR, ""), tokens.instructor))
    for who, record in candidates:
        if hmac.compare_digest(digest, record.sha256) and found is None:
            found = who
    return found


@dataclass
class Issued:
    """What ``gradelab roster tokens`` made: the rows to mail (each with its token, shown once),
    the students who already had one (not shown again), and a new instructor token if one was made."""

    rows: list[tuple[RosterEntry, str]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    instructor_token: str | None = None
    dropped: list[str] = field(default_factory=list)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(inert_row(["id", "name", "email", "token"]))
        for student, token in self.rows:
            writer.writerow(inert_row([student.id, student.name, student.email, token]))
        return out.getvalue()


def issue(roster: Roster, class_dir: Path, *, reissue: tuple[str, ...] = (), every: bool = False,
          instructor: bool = False) -> Issued:
    """Tokens for the students of ``roster`` who have none (and for those named in ``reissue``, or
    all with ``every``: their old token stops working, and so do its sessions); an instructor
    token on the first run or when asked. Students no longer on the roster lose theirs."""
    unknown = [sid for sid in reissue if roster.get(sid) is None]
    if unknown:
        raise UsageError(f"--reissue {unknown[0]!r}: no such id in {roster.path}")
    tokens = load_tokens(class_dir)
    issued = Issued()
    for sid in list(tokens.students):
        if roster.get(sid) is None:
            del tokens.students[sid]
            issued.dropped.append(sid)
    for student in roster:
        if student.id in tokens.students and not every and student.id not in reissue:
            issued.kept.append(student.id)
            continue
        token = new_token()
        tokens.students[student.id] = TokenRecord(sha256=hash_token(token), issued=now())
        issued.rows.append((student, token))
    if instructor or tokens.instructor is None:
        token = new_token()
        tokens.instructor = TokenRecord(sha256=hash_token(token), issued=now())
        issued.instructor_token = token
    save_tokens(class_dir, tokens)
    return issued
