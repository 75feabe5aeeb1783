"""Grades passed back through LTI AGS, from an outbox kept on disk like the grading queue.

When an attempt is graded (the grading worker, ``note``) or a written answer is graded (the
grading pages, ``note``), a small request file is written to ``.gradelab/lti/outbox/``: "this
student's score changed". The web process's ``ScoreSender`` thread sends, for each student named
there, the score as it stands *when sent* (their newest graded attempt, with the written grades so
far): a platform that was down gets the newest grade, not a stale one, and several requests for
one student make one post. A failed post stays in the outbox with its tries counted and waits
``backoff · 2^tries`` (at most ``MAX_WAIT_S``); a restart finds the outbox and resumes. Every
event is a line of ``.gradelab/lti/scores.jsonl`` (queued, sent, failed), as the grading queue's
journal.

``scoreGiven`` is over the lab's full points (every check's, written ones included), so the LMS
shows the same fraction as the pages; ``gradingProgress`` is ``PendingManual`` while a written
answer awaits review and ``FullyGraded`` after.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

from grader.atomic import write_atomic
from grader.results import Status, SubmissionResult
from grader.serve.lti.config import LTI_DIR, PLATFORM_FILE, lti_dir
from grader.serve.lti.services import ServiceError, Services

log = logging.getLogger(__name__)
OUTBOX = "outbox"
JOURNAL = "scores.jsonl"
LINEITEM_FILE = "lineitem.json"
MAX_WAIT_S = 600.0
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"


class Request(BaseModel):
    student: str
    reason: str
    tries: int = 0
    next_at: float = 0.0


def _journal(state_dir: Path, event: str, student: str, **fields: Any) -> None:
    line = json.dumps({"at": datetime.now(UTC).isoformat(), "event": event, "student": student, **fields})
    fd = os.open(Path(state_dir) / LTI_DIR / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def journal(state_dir: Path) -> list[dict[str, Any]]:
    try:
        text = (Path(state_dir) / LTI_DIR / JOURNAL).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def note(state_dir: Path, student: str, reason: str) -> None:
    """This student's score changed: queue a post (nothing when the class is not an LTI course).
    Called where a result or a written grade is saved; cheap, no network."""
    state_dir = Path(state_dir)
    if not (state_dir / LTI_DIR / PLATFORM_FILE).is_file():
        return
    box = lti_dir(state_dir) / OUTBOX
    box.mkdir(exist_ok=True, mode=0o700)
    name = f"{time.time_ns():020d}-{os.getpid()}-{student}.json"
    write_atomic(box / name, Request(student=student, reason=reason).model_dump_json())
    _journal(state_dir, "queued", student, reason=reason)


def progress_of(result: SubmissionResult) -> str:
    return "PendingManual" if any(c.status == Status.awaiting_review for c in result.checks) else "FullyGraded"


def score_doc(user_id: str, result: SubmissionResult, full_points: float) -> dict[str, Any]:
    pending = progress_of(result) == "PendingManual"
    waiting = sum(1 for c in result.checks if c.status == Status.awaiting_review)
    comment = (f"{result.score:g} of {full_points:g} points so far; {waiting} written answer(s) await review."
               if pending else f"{result.score:g} of {full_points:g} points.")
    return {"userId": user_id, "scoreGiven": result.score, "scoreMaximum": full_points,
            "activityProgress": "Submitted" if pending else "Completed", "gradingProgress": progress_of(result),
            "timestamp": datetime.now(UTC).isoformat(), "comment": comment}


def scores_url(lineitem: str) -> str:
    parts = urlsplit(lineitem)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


class ScoreSender:
    """The web process's thread that empties the outbox."""

    def __init__(self, state_dir: Path, services: Callable[[], Services | None],
                 score_of: Callable[[str], tuple[str, SubmissionResult] | None],
                 lineitem: Callable[[Services], str], full_points: float,
                 *, poll_s: float = 2.0, backoff_s: float = 5.0) -> None:
        self.state_dir = Path(state_dir)
        self.box = lti_dir(self.state_dir) / OUTBOX
        self.box.mkdir(exist_ok=True, mode=0o700)
        self.services, self.score_of, self.lineitem = services, score_of, lineitem
        self.full_points, self.poll_s, self.backoff_s = full_points, poll_s, backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gradelab-lti-scores", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.send_due()
            except Exception:
                log.exception("sending LTI scores failed")

    def pending(self) -> dict[str, list[tuple[Path, Request]]]:
        found: dict[str, list[tuple[Path, Request]]] = {}
        for path in sorted(self.box.glob("*.json")):
            if path.name.startswith(".") or path.is_symlink():
                continue
            try:
                req = Request.model_validate_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found.setdefault(req.student, []).append((path, req))
        return found

    def send_due(self) -> int:
        """One pass: each student with a due request gets one post of their current score."""
        sent = 0
        for student, entries in self.pending().items():
            if max(r.next_at for _, r in entries) > time.time():
                continue
            try:
                self._send(student)
            except ServiceError as exc:
                tries = max(r.tries for _, r in entries) + 1
                wait = min(MAX_WAIT_S, self.backoff_s * 2 ** (tries - 1))
                first, req = entries[0]
                write_atomic(first, req.model_copy(update={"tries": tries, "next_at": time.time() + wait})
                             .model_dump_json())
                for path, _ in entries[1:]:
                    path.unlink(missing_ok=True)
                _journal(self.state_dir, "failed", student, tries=tries, wait_s=wait, error=str(exc))
                log.warning("LTI score for %s not sent (%s); trying again in %.0f s", student, exc, wait)
                continue
            for path, _ in entries:
                path.unlink(missing_ok=True)
            sent += 1
        return sent

    def _send(self, student: str) -> None:
        services = self.services()
        found = self.score_of(student)
        if services is None or found is None:
            _journal(self.state_dir, "skipped", student)
            return
        user_id, result = found
        doc = score_doc(user_id, result, self.full_points)
        services.post(scores_url(self.lineitem(services)), [SCORE_SCOPE], doc, SCORE_TYPE)
        _journal(self.state_dir, "sent", student, scoreGiven=doc["scoreGiven"], scoreMaximum=doc["scoreMaximum"],
                 gradingProgress=doc["gradingProgress"])


def find_or_create_lineitem(services: Services, lineitems_url: str, lineitem_url: str | None, resource_id: str,
                            label: str, full_points: float, state_dir: Path) -> str:
    """The lab's line item: the one the launch named, or the one kept from before, or one found
    by its ``resourceId`` (the lab's id), or one made now."""
    if lineitem_url:
        return lineitem_url
    kept = lti_dir(state_dir) / LINEITEM_FILE
    try:
        doc = json.loads(kept.read_text(encoding="utf-8"))
        if doc.get("lineitems") == lineitems_url and isinstance(doc.get("id"), str):
            return str(doc["id"])
    except (FileNotFoundError, ValueError):
        pass
    parts = urlsplit(lineitems_url)
    query = "&".join(q for q in (parts.query, f"resource_id={resource_id}") if q)
    listed = services.get(urlunsplit(parts._replace(query=query)), [LINEITEM_SCOPE],
                          "application/vnd.ims.lis.v2.lineitemcontainer+json")
    items = listed if isinstance(listed, list) else (listed or {}).get("content", []) if isinstance(listed, dict) else []
    found = next((i["id"] for i in items if isinstance(i, dict) and i.get("resourceId") == resource_id
                  and isinstance(i.get("id"), str)), None)
    if found is None:
        made = services.post(lineitems_url, [LINEITEM_SCOPE], {"scoreMaximum": full_points, "label": label,
                                                               "resourceId": resource_id, "tag": "gradelab"},
                             LINEITEM_TYPE)
        if not isinstance(made, dict) or not isinstance(made.get("id"), str):
            raise ServiceError("the platform made no line item")
        found = made["id"]
    write_atomic(kept, json.dumps({"lineitems": lineitems_url, "id": found}))
    return str(found)
