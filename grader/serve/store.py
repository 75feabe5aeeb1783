"""The class folder the server keeps: one folder per student, each attempt in a folder of its own.

    DIR/.gradelab/            the server's state: class.json, tokens.json, secret.key, queue/, journal
    DIR/<id>/                 a copy of the student's latest upload: what ``gradelab grade DIR`` grades
    DIR/<id>/attempts/<N>/    attempt N: upload/ (the files as uploaded), attempt.json, result.json
                              (written once), feedback.pdf (the student's report), report.pdf (yours)

Why this shape: the class folder stays a plain folder per student, so ``gradelab grade DIR``
grades it as it grades any class (``intake.classes`` leaves each student's ``attempts/`` out when
``.gradelab/class.json`` marks the folder as a server's), and every attempt is kept.

Atomic: an attempt is written in a hidden folder beside the others and renamed into place when
complete, so a crash mid-upload leaves no half-written attempt (the leftover hidden folder is
removed at the next start) and never touches an earlier one. A result is written once (linked
into place: a second writer fails). The copy at the top of a student's folder is rebuilt from the
newest attempt after each upload and at every start, so it is repaired if a crash cut it short.

Every path is built from a roster id checked by ``roster.valid_id`` and an attempt number, and
opened component by component relative to the class folder with ``O_NOFOLLOW``: a link planted
anywhere in the class folder is refused, never followed (the server runs as root).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from grader.atomic import write_atomic
from grader.results import SubmissionResult
from grader.serve.roster import STATE_DIR, valid_id

ATTEMPTS = "attempts"
UPLOAD = "upload"
META = "attempt.json"
RESULT = "result.json"
STUDENT_PDF = "feedback.pdf"
INSTRUCTOR_PDF = "report.pdf"
CLASS_MARK = "class.json"
_INCOMING = ".incoming-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafePath(Exception):
    """A path that is not the store's: an id or number out of pattern, or a link in the way."""


class AttemptMeta(BaseModel):
    """What the server knows of an upload, written with it (``attempt.json``)."""

    student: str
    number: int = Field(ge=1)
    uploaded_at: datetime
    kind: Literal["archive", "notebook", "files"]
    files: list[str]
    bytes: int
    name: str = Field("", description="The student's name on the roster when they uploaded.")
    email: str = ""


class ClassStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._results: dict[tuple[str, int], SubmissionResult] = {}

    # --- paths -------------------------------------------------------------------------------

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    def open(self, lab_id: str) -> None:
        """Make (or take back) the class folder for this lab: a folder marked as a server's. A
        folder marked for another lab is refused (its attempts would be graded by the wrong lab)."""
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.state, 0o700)
        mark = self.state / CLASS_MARK
        if mark.exists():
            try:
                lab = json.loads(mark.read_text(encoding="utf-8")).get("lab")
            except (OSError, ValueError):
                lab = None
            if lab and lab != lab_id:
                from grader.errors import UsageError

                raise UsageError(f"{self.root} is the class folder of lab {lab!r}, not {lab_id!r}: "
                                 "use another --class folder")
        else:
            write_atomic(mark, json.dumps({"lab": lab_id, "layout": "gradelab-serve"}, indent=2))

    def _dir_fd(self, parts: tuple[str, ...], *, create: bool = False) -> int:
        """A descriptor on ``root/parts…``, each component opened relative to the last with
        ``O_NOFOLLOW`` (made, mode 0755, when ``create``)."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafePath(f"{'/'.join(parts)}: not a folder of the store") from None
                    raise
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def _parts(student_id: str, number: int | None = None) -> tuple[str, ...]:
        if not valid_id(student_id):
            raise UnsafePath(f"{student_id!r} is not a student id")
        if number is None:
            return (student_id,)
        if not isinstance(number, int) or number < 1:
            raise UnsafePath(f"{number!r} is not an attempt number")
        return (student_id, ATTEMPTS, str(number))

    def attempt_path(self, student_id: str, number: int) -> Path:
        """Where attempt N lies (for a grading worker, which reads it with the safe reader)."""
        return self.root.joinpath(*self._parts(student_id, number))

    def read(self, student_id: str, number: int, name: str) -> bytes | None:
        """A file of an attempt (its result, a report), or None when it is not (yet) there."""
        if name not in (META, RESULT, STUDENT_PDF, INSTRUCTOR_PDF):
            raise UnsafePath(name)
        try:
            fd = self._dir_fd(self._parts(student_id, number))
        except FileNotFoundError:
            return None
        try:
            try:
                file_fd = os.open(name, _FILE_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafePath(name) from None
                raise
            with os.fdopen(file_fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise UnsafePath(name)
                return fh.read()
        finally:
            os.close(fd)

    def upload_files(self, student_id: str, number: int) -> dict[str, bytes]:
        """The files of an attempt's upload, as stored (for the instructor to download)."""
        try:
            fd = self._dir_fd((*self._parts(student_id, number), UPLOAD))
        except FileNotFoundError:
            return {}
        try:
            files = {name: _read_regular(fd, name) for name in sorted(os.listdir(fd))}
            return {name: data for name, data in files.items() if data is not None}
        finally:
            os.close(fd)

    # --- attempts ----------------------------------------------------------------------------

    def numbers(self, student_id: str) -> list[int]:
        try:
            fd = self._dir_fd((*self._parts(student_id), ATTEMPTS))
        except FileNotFoundError:
            return []
        try:
            return sorted(int(n) for n in os.listdir(fd) if n.isdigit() and not n.startswith("0"))
        finally:
            os.close(fd)

    def meta(self, student_id: str, number: int) -> AttemptMeta | None:
        data = self.read(student_id, number, META)
        return AttemptMeta.model_validate_json(data) if data is not None else None

    def attempts(self, student_id: str) -> list[AttemptMeta]:
        return [m for n in self.numbers(student_id) if (m := self.meta(student_id, n)) is not None]

    def students(self) -> list[str]:
        """Ids that have a folder here (a roster id or not: what the folder holds)."""
        return sorted(n for n in os.listdir(self.root) if valid_id(n) and (self.root / n).is_dir()
                      and not (self.root / n).is_symlink())

    def create_attempt(self, student_id: str, files: dict[str, bytes], meta: dict[str, Any]) -> AttemptMeta:
        """Attempt N+1 of this student, written whole in a hidden folder and renamed into place.
        ``files``: names already checked (``uploads``), each written with ``O_EXCL | O_NOFOLLOW``.
        The caller holds the student's lock (one upload of a student at a time)."""
        attempts_fd = self._dir_fd((*self._parts(student_id), ATTEMPTS), create=True)
        incoming = f"{_INCOMING}{secrets.token_hex(8)}"
        try:
            number = max(self.numbers(student_id), default=0) + 1
            record = AttemptMeta(student=student_id, number=number, **meta)
            os.mkdir(incoming, 0o755, dir_fd=attempts_fd)
            fd = os.open(incoming, _DIR_FLAGS, dir_fd=attempts_fd)
            try:
                os.mkdir(UPLOAD, 0o755, dir_fd=fd)
                up = os.open(UPLOAD, _DIR_FLAGS, dir_fd=fd)
                try:
                    for name, data in files.items():
                        _write_new(up, name, data)
                    os.fsync(up)
                finally:
                    os.close(up)
                _write_new(fd, META, record.model_dump_json(indent=2).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(incoming, str(number), src_dir_fd=attempts_fd, dst_dir_fd=attempts_fd)
            os.fsync(attempts_fd)
            return record
        except BaseException:
            shutil.rmtree(incoming, dir_fd=attempts_fd, ignore_errors=True)
            raise
        finally:
            os.close(attempts_fd)

    def remove_incomplete(self) -> list[str]:
        """Hidden folders of uploads a crash cut short: never attempts, removed at start."""
        removed = []
        for sid in self.students():
            try:
                fd = self._dir_fd((sid, ATTEMPTS))
            except (FileNotFoundError, UnsafePath):
                continue
            try:
                for name in os.listdir(fd):
                    if name.startswith(_INCOMING):
                        shutil.rmtree(name, dir_fd=fd, ignore_errors=True)
                        removed.append(f"{sid}/{ATTEMPTS}/{name}")
            finally:
                os.close(fd)
        return removed

    # --- results -----------------------------------------------------------------------------

    def result(self, student_id: str, number: int) -> SubmissionResult | None:
        key = (student_id, number)
        if key not in self._results:
            data = self.read(student_id, number, RESULT)
            if data is None:
                return None
            self._results[key] = SubmissionResult.model_validate_json(data)  # written once: cached for good
        return self._results[key]

    def has_result(self, student_id: str, number: int) -> bool:
        try:
            fd = self._dir_fd(self._parts(student_id, number))
        except (FileNotFoundError, UnsafePath):
            return False
        try:
            os.stat(RESULT, dir_fd=fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(fd)

    def write_result_once(self, student_id: str, number: int, result: SubmissionResult) -> bool:
        """The attempt's result, linked into place: False (and nothing changed) when one is there."""
        fd = self._dir_fd(self._parts(student_id, number))
        try:
            with _staged(fd, RESULT, result.to_json().encode()) as tmp:
                try:
                    os.link(tmp, RESULT, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    return False
                os.fsync(fd)
                return True
        finally:
            os.close(fd)

    def write_report(self, student_id: str, number: int, name: str, data: bytes) -> None:
        if name not in (STUDENT_PDF, INSTRUCTOR_PDF):
            raise UnsafePath(name)
        fd = self._dir_fd(self._parts(student_id, number))
        try:
            with _staged(fd, name, data) as tmp:
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        finally:
            os.close(fd)

    def latest_result(self, student_id: str) -> tuple[AttemptMeta, SubmissionResult] | None:
        """The newest attempt that has a result (an attempt still in the queue has none yet)."""
        for number in reversed(self.numbers(student_id)):
            result = self.result(student_id, number)
            meta = self.meta(student_id, number) if result is not None else None
            if result is not None and meta is not None:
                return meta, result
        return None

    # --- the latest copy ---------------------------------------------------------------------

    def sync_latest(self, student_id: str) -> None:
        """Make the top of the student's folder hold exactly the newest attempt's files (what
        ``gradelab grade DIR`` grades): files written atomically, anything else removed."""
        numbers = self.numbers(student_id)
        if not numbers:
            return
        top = self._dir_fd(self._parts(student_id))
        try:
            up = self._dir_fd((*self._parts(student_id, numbers[-1]), UPLOAD))
            try:
                wanted = {name: _read_regular(up, name) for name in os.listdir(up)}
            finally:
                os.close(up)
            for name, data in wanted.items():
                try:
                    if stat.S_ISDIR(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
                        shutil.rmtree(name, dir_fd=top, ignore_errors=True)
                except FileNotFoundError:
                    pass
                if data is not None and _read_regular(top, name, missing_ok=True) != data:
                    tmp = f".{name}.{secrets.token_hex(6)}"
                    _write_new(top, tmp, data)
                    os.rename(tmp, name, src_dir_fd=top, dst_dir_fd=top)
            for name in os.listdir(top):
                if name == ATTEMPTS or name in wanted:
                    continue
                if stat.S_ISDIR(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
                    shutil.rmtree(name, dir_fd=top, ignore_errors=True)
                else:
                    os.unlink(name, dir_fd=top)
            os.fsync(top)
        finally:
            os.close(top)


@contextlib.contextmanager
def _staged(fd: int, name: str, data: bytes) -> Iterator[str]:
    """``data`` in a fresh hidden file beside ``name`` in the folder ``fd``, for the caller to put in
    place (a link: written once; a rename: replaced whole); whatever is left of it is removed."""
    tmp = f".{name}.{secrets.token_hex(6)}"
    try:
        _write_new(fd, tmp, data)
        yield tmp
    finally:
        try:
            os.unlink(tmp, dir_fd=fd)
        except FileNotFoundError:
            pass


def _write_new(dir_fd: int, name: str, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _read_regular(dir_fd: int, name: str, *, missing_ok: bool = False) -> bytes | None:
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None  # a link is not ours: the sync replaces it
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        return fh.read()
