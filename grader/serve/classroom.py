"""What the routes call: one class being served — its lab, roster, tokens, store, queue and
workers, and the rules an upload meets (the due date, the attempts per hour, the upload's
contents). Routes parse the request, call one method here and render what it returns, as the
CLI does over ``grader.api``; nothing here knows about HTTP but the status a refusal carries.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from starlette.concurrency import run_in_threadpool

from grader.checks.registry import BoundLab
from grader.errors import UsageError
from grader.options import Mode, RunOptions
from grader.results import SubmissionResult
from grader.reveal import student_result
from grader.serve.checker import UploadChecker
from grader.serve.queue import GradingQueue, Ticket
from grader.serve.roster import (
    INSTRUCTOR,
    Roster,
    RosterEntry,
    TokenFile,
    identify,
    load_tokens,
    tokens_path,
)
from grader.serve.scores import Score, counting, graded, score_of
from grader.serve.security import load_secret
from grader.serve.settings import ServeSettings, now
from grader.serve.store import AttemptMeta, ClassStore
from grader.serve.uploads import UploadRefused
from grader.serve.workers import WorkerPool, claim_deadline, default_workers

if TYPE_CHECKING:
    from grader.serve.cluster import RayPool

log = logging.getLogger(__name__)
LOCK_FILE = "server.lock"


class Refused(Exception):
    """A rule said no; ``status`` and ``message`` are what the student is told."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass(frozen=True)
class Who:
    """Who a session belongs to: a student on the roster, or the instructor."""

    role: Literal["student", "instructor"]
    student: RosterEntry | None = None


@dataclass(frozen=True)
class AttemptStatus:
    meta: AttemptMeta
    state: Literal["queued", "grading", "done"]
    position: int | None = None  # in the queue, from 1


@dataclass(frozen=True)
class RosterRow:
    student: RosterEntry
    attempts: list[AttemptMeta]
    latest: SubmissionResult | None        # the result of the attempt that counts, whole, grades merged
    latest_number: int | None
    newest_state: str | None               # of the newest attempt
    score: Score | None = None             # ``latest``'s score over the lab's full points


def upload_label(meta: AttemptMeta) -> str:
    return {"archive": "archive", "notebook": "notebook", "files": "files"}[meta.kind]


class Classroom:
    def __init__(self, lab: BoundLab, options: RunOptions, settings: ServeSettings) -> None:
        self.lab = lab
        # Who owns a session an LMS launch opened: set by the app when LTI is on (grader.serve.lti),
        # handed in so that this module imports nothing of LTI's
        self.lti_who: Callable[..., Who | None] | None = None
        self.options = options.model_copy(update={"mode": Mode.grade, "reports": False})
        self.settings = settings
        self.roster = Roster.read(settings.roster)
        self.store = ClassStore(settings.class_dir)
        self.queue: GradingQueue | None = None
        self.pool: WorkerPool | RayPool | None = None
        self.secret = b""
        self._lock_fd: int | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._tokens: tuple[int, TokenFile] | None = None
        self._refused: dict[str, list[datetime]] = {}
        self.export_warnings: tuple[str, list[str]] | None = None
        self.checker = UploadChecker()  # archives are unpacked in a process of its own  # the last export's target and warnings  # student → when an upload of theirs was refused

    # --- life ------------------------------------------------------------------------------

    def open(self) -> Classroom:
        """Take the class folder (one server at a time), repair what a crash left, start grading."""
        self.store.open(self.lab.id)
        self._lock_fd = os.open(self.store.state / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise UsageError(f"{self.store.root}: another gradelab serve is using this class folder") from None
        self.secret = load_secret(self.store.state)
        self.queue = GradingQueue(self.store.state)
        for leftover in self.store.remove_incomplete():
            log.warning("removed an upload cut short: %s", leftover)
        for ticket in self.queue.recover():
            log.warning("%s attempt %d was not finished: back in the queue", ticket.student, ticket.attempt)
        self._queue_forgotten()
        for sid in self.store.students():
            self.store.sync_latest(sid)
        missing = [s.id for s in self.roster if s.id not in self.tokens().students]
        if missing:
            log.warning("%d student(s) of the roster have no token (e.g. %s): run `gradelab roster tokens`",
                        len(missing), missing[0])
        workers = self.settings.workers
        if workers is None:
            workers = default_workers(self.lab.manifest.limits.merged(self.options.limits).threads)
        if workers and self.options.ray:  # graded on a Ray cluster (grader.serve.cluster)
            from grader.serve.cluster import RayPool

            self.checker.warm()
            pool = RayPool(self.options.ray, self.lab, self.options, self.store, self.queue,
                           deadline_s=claim_deadline(self.lab.manifest, self.options))
            try:
                pool.start()
            except BaseException:  # no cluster there: the class folder is let go, the error said once
                self.close()
                raise
            self.pool = pool
        elif workers:
            self.checker.warm()  # a server that grades: its checking process starts with it
            from grader.grading.parallel import cpu_count

            self.pool = WorkerPool(self.lab.folder, self.options, self.store, self.queue, workers,
                                   threads=max(1, cpu_count() // workers),
                                   deadline_s=claim_deadline(self.lab.manifest, self.options))
            self.pool.start()
        return self

    def _queue_forgotten(self) -> None:
        """An attempt stored but never queued (a crash between the two) is queued now."""
        assert self.queue is not None
        for sid in self.store.students():
            for meta in self.store.attempts(sid):
                ticket = ticket_of(meta)
                if not self.store.has_result(sid, meta.number) and not self.queue.known(ticket.name):
                    self.queue.put(ticket)

    def close(self) -> None:
        self.checker.close()
        if self.pool is not None:
            self.pool.stop()
            self.pool = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- who is asking ---------------------------------------------------------------------

    def tokens(self) -> TokenFile:
        """The stored token hashes, read again when ``gradelab roster tokens`` rewrote them."""
        path = tokens_path(self.store.root)
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        if self._tokens is None or self._tokens[0] != stamp:
            self._tokens = (stamp, load_tokens(self.store.root))
        return self._tokens[1]

    def login(self, token: str) -> tuple[Who, str] | None:
        """Who holds this token, and the stamp of its record (sessions end when it changes)."""
        tokens = self.tokens()
        found = identify(tokens, token)
        if found is None:
            return None
        role, sid = found
        if role == INSTRUCTOR:
            assert tokens.instructor is not None
            return Who("instructor"), tokens.instructor.sha256[:16]
        student = self.roster.get(sid)
        if student is None:
            return None
        return Who("student", student), tokens.students[sid].sha256[:16]

    def who(self, role: str, sid: str, stamp: str) -> Who | None:
        """A session's owner, if its token is still the one it was opened with."""
        if stamp.startswith("lti:"):  # opened by an LTI launch (grader.serve.lti)
            return self.lti_who(self, role, sid, stamp, Who) if self.lti_who is not None else None
        record = self.tokens().record(role, sid)  # type: ignore[arg-type]
        if record is None or record.sha256[:16] != stamp:
            return None
        if role == INSTRUCTOR:
            return Who("instructor")
        student = self.roster.get(sid)
        return Who("student", student) if student is not None else None

    # --- the rules -------------------------------------------------------------------------

    def due_for(self, student: RosterEntry) -> datetime | None:
        return student.due(self.settings.due)

    def recent(self, student: RosterEntry, at: datetime) -> list[datetime]:
        """When the student uploaded in the hour before ``at``: stored attempts and uploads refused
        for what they held (each was sent, and unpacked, so each costs one of the hour's uploads:
        else refused uploads are a free way to make the server unpack 50 MB at a time)."""
        since = at - timedelta(hours=1)
        refused = self._refused.get(student.id, [])
        refused[:] = [t for t in refused if t > since]
        stored = [m.uploaded_at for m in self.store.attempts(student.id) if m.uploaded_at > since]
        return sorted(stored + refused)

    def next_upload_at(self, student: RosterEntry, at: datetime) -> datetime | None:
        """When the rate limit lets this student upload again (None: now)."""
        recent = self.recent(student, at)
        limit = self.settings.attempts_per_hour
        if len(recent) < limit:
            return None
        return recent[len(recent) - limit] + timedelta(hours=1)

    async def submit(self, student: RosterEntry, sent: list[tuple[str, bytes]]) -> AttemptMeta:
        """A new attempt, stored and queued, or ``Refused`` with the rule that said no."""
        at = now()
        due = self.due_for(student)
        if due is not None and at > due:
            raise Refused(403, f"The due date ({when(due)}) has passed: uploads are closed. Your attempts and their "
                               "feedback stay here.")
        lock = self._locks.setdefault(student.id, asyncio.Lock())
        async with lock:
            again = self.next_upload_at(student, at)
            if again is not None:
                wait = max(1, int((again - at).total_seconds()) + 1)
                raise Refused(429, f"You have uploaded {self.settings.attempts_per_hour} times in the last hour, "
                                   f"the most this course allows (uploads refused for what they held count too). You can upload again at {when(again)} "
                                   f"(in {max(1, round(wait / 60))} min).", retry_after=wait)
            try:
                upload = await self.checker.check(sent, self.lab.manifest.interface, self.lab.manifest.intake)
            except UploadRefused as exc:
                self._refused.setdefault(student.id, []).append(at)
                raise Refused(exc.status, f"Not stored: {exc}") from None
            meta = await run_in_threadpool(self._store, student, upload.kind, upload.files, at)
        if self.pool is not None:
            self.pool.wake()
        return meta

    def _store(self, student: RosterEntry, kind: str, files: dict[str, bytes], at: datetime) -> AttemptMeta:
        assert self.queue is not None
        meta = self.store.create_attempt(student.id, files, {
            "uploaded_at": at, "kind": kind, "files": sorted(files), "bytes": sum(len(d) for d in files.values()),
            "name": student.name, "email": student.email})
        self.queue.put(ticket_of(meta))
        self.store.sync_latest(student.id)
        return meta

    # --- what pages show ---------------------------------------------------------------------

    def status(self, sid: str, number: int) -> AttemptStatus | None:
        assert self.queue is not None
        meta = self.store.meta(sid, number)
        if meta is None:
            return None
        state, position = self.queue.state(ticket_of(meta).name)
        if state == "done" or state == "unknown" and self.store.has_result(sid, number):
            return AttemptStatus(meta, "done")
        if state == "grading":
            return AttemptStatus(meta, "grading")
        return AttemptStatus(meta, "queued", position)

    def attempts(self, sid: str) -> list[AttemptStatus]:
        return [s for m in self.store.attempts(sid) if (s := self.status(sid, m.number)) is not None]

    def student_view(self, sid: str, number: int) -> SubmissionResult | None:
        """What a student may see of their attempt's result (the reveal policy), with the grades
        given to its written answers (``with_grades``)."""
        result = self.with_grades(sid, self.store.result(sid, number))
        return student_result(result) if result is not None else None

    def with_grades(self, sid: str, result: SubmissionResult | None) -> SubmissionResult | None:
        """A result of student ``sid`` as every page shows it (``grader.serve.scores.graded``)."""
        return graded(self.lab, self.store.state, sid, result) if result is not None else None

    def score(self, result: SubmissionResult) -> Score:
        return score_of(self.lab, result)

    def graded_attempts(self, sid: str) -> list[tuple[AttemptMeta, SubmissionResult]]:
        """The student's graded attempts, oldest first, each result with its written grades."""
        found = []
        for meta in self.store.attempts(sid):
            result = self.store.result(sid, meta.number)
            if result is not None:
                found.append((meta, graded(self.lab, self.store.state, sid, result)))
        return found

    def counted(self, sid: str) -> tuple[AttemptMeta, SubmissionResult] | None:
        """The attempt that counts (``--counts``: the last graded, or the best), grades merged."""
        return counting(self.graded_attempts(sid), self.settings.counts)

    def roster_rows(self) -> list[RosterRow]:
        rows = []
        for student in self.roster:
            statuses = self.attempts(student.id)
            found = self.counted(student.id)
            rows.append(RosterRow(student=student, attempts=[s.meta for s in statuses],
                                  latest=found[1] if found else None, latest_number=found[0].number if found else None,
                                  newest_state=statuses[-1].state if statuses else None,
                                  score=score_of(self.lab, found[1]) if found else None))
        return rows

    def latest_results(self) -> list[SubmissionResult]:
        """Each student's result that counts, as the exports and class.csv read them, with the
        grades given to written answers in the grading pages."""
        return [found[1] for s in self.roster if (found := self.counted(s.id)) is not None]


def ticket_of(meta: AttemptMeta) -> Ticket:
    return Ticket(student=meta.student, attempt=meta.number, queued_at=meta.uploaded_at)


def when(moment: datetime) -> str:
    """A moment as the pages say it: in the zone it was given in, with its offset."""
    return moment.strftime("%a %d %b %Y, %H:%M") + (f" {moment.strftime('%Z') or moment.strftime('%z')}")


def class_folder_is_served(path: Path) -> bool:
    from grader.serve.store import CLASS_MARK

    return (Path(path) / ".gradelab" / CLASS_MARK).is_file()
