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
claimed ticket goes back to ``pending``: those are the attempts a stopped server had not
finished. When a worker process dies, its claims go back the same way, with ``tries`` counted,
so a hand-in that keeps killing its worker is given up after ``MAX_TRIES`` (an error result).

The journal (``.gradelab/journal.jsonl``, one line per event, appended) records what happened to
each attempt: queued, started, graded, requeued. The load benchmark and the tests read it to
check that every attempt was graded exactly once.
"""

from __future__ import annotations

import json
import os
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
    tries: int = Field(0, description="Times a worker died holding it.")

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
            return Claim(Ticket.model_validate_json(target.read_text(encoding="utf-8")), target)
        return None

    def finish(self, claim: Claim) -> None:
        os.rename(claim.path, self._dir(DONE) / f"{claim.ticket.name}.json")

    def release(self, claim: Claim, *, count: bool) -> Ticket:
        """Back to pending (``count``: its worker died: one more try spent)."""
        ticket = claim.ticket.model_copy(update={"tries": claim.ticket.tries + (1 if count else 0)})
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
            back.append(self.release(claim, count=False))
        return back

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
