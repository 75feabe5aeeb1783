"""The grading queue, kept on disk so that a restart loses nothing and grades nothing twice.

An attempt's place in the queue is one small state file (a ``Ticket``, written atomically) in
one of three folders of ``.gradelab/queue/``:

    pending/<name>.json           waiting, in the order of the names (the time it was queued)
    claimed/<name>.<pid>.json     taken by the worker process <pid>
    done/<name>.json              graded, its result and reports written

A worker claims a ticket by renaming it from ``pending`` to ``claimed``: a rename is atomic, so
of two workers reaching for the same ticket one gets it and the other finds it gone. A worker
grades an attempt only when it has no result yet, and a result is written once (``store``), so a
ticket claimed again after a crash is graded if it was not finished and never graded twice.

At start (the server holds the class folder's lock, so no worker of another server is alive) every
claimed ticket goes back to ``pending``, with one try counted: those are the attempts a crashed
server had not finished (a server that stops cleanly gives its claims back itself, uncounted, unless
they were past their deadline), and a hand-in that takes the server down with it must not be
claimed again forever. When a worker process dies, or is stopped because its claim ran past its
deadline, its claims go back the same way, with ``tries`` counted and the reason kept, so a
hand-in that keeps killing or hanging its worker is given up after ``MAX_TRIES`` (a "could not be
graded" result the instructor sees). A claim's file is touched when it is taken: its age is how
long it has been graded.

The journal (``.gradelab/journal.jsonl``, one line per event, appended) records what happened to
each attempt: queued, started, graded, requeued. The load benchmark and the tests read it to
check that every attempt was graded exactly once.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from grader.atomic import write_atomic

PENDING, CLAIMED, DONE = "pending", "claimed", "done"
MAX_TRIES = 3
JOURNAL = "journal.jsonl"


class Ticket(BaseModel):
    student: str
    attempt: int = Field(ge=1)
    queued_at: datetime
    tries: int = Field(0, description="Times a worker died, hung past the deadline or was lost in a crash "
                                      "holding it.")
    fault: str = Field("", description="Why it last went back to the queue with a try counted.")

    @property
    def name(self) -> str:
        micros = int(self.queued_at.timestamp() * 1_000_000)
        return f"{micros:017d}-{self.student}-{self.attempt}"


@dataclass(frozen=True)
class Claim:
    ticket: Ticket
    path: Path


State = Literal["queued", "grading", "done", "unknown"]


class GradingQueue:
    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "queue"
        self.journal = Journal(Path(state_dir) / JOURNAL)
        for sub in (PENDING, CLAIMED, DONE):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _dir(self, sub: str) -> Path:
        return self.root / sub

    def _names(self, sub: str) -> list[str]:
        return sorted(n for n in os.listdir(self._dir(sub)) if n.endswith(".json") and not n.startswith("."))

    def put(self, ticket: Ticket) -> str:
        write_atomic(self._dir(PENDING) / f"{ticket.name}.json", ticket.model_dump_json())
        self.journal.write("queued", ticket)
        return ticket.name

    def claim(self, owner: int) -> Claim | None:
        """The oldest pending ticket, now this owner's; None when there is none."""
        for entry in self._names(PENDING):
            target = self._dir(CLAIMED) / f"{entry[:-5]}.{owner}.json"
            try:
                os.rename(self._dir(PENDING) / entry, target)
            except FileNotFoundError:
                continue  # another worker took it first
            os.utime(target)  # the claim's age is from now, not from the upload
            return Claim(Ticket.model_validate_json(target.read_text(encoding="utf-8")), target)
        return None

    def finish(self, claim: Claim) -> None:
        os.rename(claim.path, self._dir(DONE) / f"{claim.ticket.name}.json")

    def release(self, claim: Claim, *, count: bool, fault: str = "") -> Ticket:
        """Back to pending (``count``: its worker died or hung: one more try spent, ``fault`` says
        how)."""
        update: dict[str, Any] = {"tries": claim.ticket.tries + (1 if count else 0)}
        if count and fault:
            update["fault"] = fault
        ticket = claim.ticket.model_copy(update=update)
        write_atomic(self._dir(PENDING) / f"{ticket.name}.json", ticket.model_dump_json())
        claim.path.unlink(missing_ok=True)
        self.journal.write("requeued", ticket)
        return ticket

    def claims(self, owner: int | None = None) -> list[Claim]:
        found = []
        for entry in self._names(CLAIMED):
            stem, _, pid = entry[:-5].rpartition(".")
            if owner is not None and pid != str(owner):
                continue
            path = self._dir(CLAIMED) / entry
            try:
                found.append(Claim(Ticket.model_validate_json(path.read_text(encoding="utf-8")), path))
            except (OSError, ValueError):
                continue
        return found

    def recover(self) -> list[Ticket]:
        """At start: what a stopped server's workers held goes back to pending (a ticket both
        pending and claimed, from a crash between the two steps of a release, keeps its pending)."""
        back = []
        for claim in self.claims():
            if (self._dir(PENDING) / f"{claim.ticket.name}.json").exists():
                claim.path.unlink(missing_ok=True)
                continue
            back.append(self.release(claim, count=True, fault="the server stopped while grading it"))
        return back

    def age(self, claim: Claim) -> float:
        """Seconds since the claim was taken (0 when its file is gone: it was just finished)."""
        try:
            return max(0.0, time.time() - claim.path.stat().st_mtime)
        except OSError:
            return 0.0

    def known(self, name: str) -> bool:
        return self.state(name)[0] != "unknown"

    def state(self, name: str) -> tuple[State, int | None]:
        """(``queued``, position from 1) | (``grading``, None) | (``done``, None) | (``unknown``, None)."""
        pending = self._names(PENDING)
        entry = f"{name}.json"
        if entry in pending:
            return "queued", pending.index(entry) + 1
        if any(n.startswith(f"{name}.") for n in self._names(CLAIMED)):
            return "grading", None
        if (self._dir(DONE) / entry).exists():
            return "done", None
        pending = self._names(PENDING)  # released back between the listings above
        if entry in pending:
            return "queued", pending.index(entry) + 1
        return "unknown", None

    def counts(self) -> dict[str, int]:
        return {sub: len(self._names(sub)) for sub in (PENDING, CLAIMED, DONE)}


class Journal:
    """One JSON line per event, appended with one write (``O_APPEND``): lines of concurrent
    writers do not interleave."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, event: str, ticket: Ticket, **fields: Any) -> None:
        line = json.dumps({"at": datetime.now(UTC).isoformat(), "event": event, "student": ticket.student,
                           "attempt": ticket.attempt, "pid": os.getpid(), **fields})
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def count(self, event: str) -> dict[tuple[str, int], int]:
        """How many times each attempt (student, number) had this event."""
        counts: dict[tuple[str, int], int] = {}
        for entry in self.read():
            if entry["event"] == event:
                key = (entry["student"], entry["attempt"])
                counts[key] = counts.get(key, 0) + 1
        return counts
