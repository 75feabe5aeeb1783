"""Who an LTI launch or the course's membership (NRPS) names, on the class's roster.

A platform's user id (``sub``) is opaque and may be anything, so it never names a folder: a member
gets the roster id of the CSV row whose id is their LIS ``person_sourcedid`` (the institution's
student number) or, failing that, whose email is theirs, if no other platform user holds that row
already; else ``lti-`` and 12 hex of the SHA-256 of the issuer and ``sub``. The mapping is kept in ``.gradelab/lti/members.json``
and never changes once made (ids stay stable across launches, NRPS reads and restarts). Members
are merged into the served roster; rows of the CSV keep their id and extension.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from grader.atomic import write_atomic
from grader.serve.lti.config import lti_dir
from grader.serve.roster import Roster, RosterEntry, valid_id

log = logging.getLogger(__name__)
MEMBERS_FILE = "members.json"
INSTRUCTOR_ROLES = ("#Instructor", "#Administrator", "#ContentDeveloper", "#TeachingAssistant",
                    "/membership/Instructor", "/membership#Instructor")
Role = Literal["student", "instructor"]


def role_of(roles: list[Any]) -> Role:
    """An instructor by an LTI context or institution role that teaches; everyone else a student."""
    texts = [r for r in roles if isinstance(r, str)]
    return "instructor" if any(r.endswith(INSTRUCTOR_ROLES) or "Instructor" in r.rsplit("/", 1)[-1]
                               for r in texts) else "student"


class Member(BaseModel):
    id: str
    name: str = ""
    email: str = ""
    role: Role = "student"
    stamp: str = Field(description="What a session opened by this member's launch carries.")


class Context(BaseModel):
    """The course's service endpoints, from the newest launch that named them."""

    context_id: str = ""
    memberships_url: str | None = None
    lineitems_url: str | None = None
    lineitem_url: str | None = None
    scopes: list[str] = Field(default_factory=list)


class MemberFile(BaseModel):
    members: dict[str, Member] = Field(default_factory=dict)  # by "issuer sub"
    context: Context = Field(default_factory=Context)


class Members:
    """The members file, read once and written after each change (the web process only)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = lti_dir(state_dir) / MEMBERS_FILE
        self._lock = threading.Lock()
        try:
            self.data = MemberFile.model_validate_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.data = MemberFile()

    def save(self) -> None:
        # 0600 from mkstemp; no os.umask, which would reach every thread of the process
        write_atomic(self.path, self.data.model_dump_json(indent=2))

    def by_id(self, sid: str) -> Member | None:
        return next((m for m in self.data.members.values() if m.id == sid and m.role == "student"), None)

    def sub_of(self, sid: str) -> str | None:
        return next((k.split(" ", 1)[1] for k, m in self.data.members.items() if m.id == sid), None)

    def by_stamp(self, stamp: str) -> Member | None:
        return next((m for m in self.data.members.values() if m.stamp == stamp), None)

    def add(self, issuer: str, sub: str, name: str, email: str, role: Role, roster: Roster,
            sourcedid: str = "") -> Member:
        """The member for this user, made once (their id never changes), and on the roster: the CSV
        row whose id is their institution's student number (LIS ``person_sourcedid``), else the row
        with their email, else a new id."""
        key = f"{issuer} {sub}"
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            found = self.data.members.get(key)
            if found is None:
                bound = {m.id for m in self.data.members.values()}
                row = roster.get(sourcedid) if sourcedid else None
                if row is None and email:
                    row = next((r for r in roster if r.email.lower() == email.lower()), None)
                # a row already bound to another platform user is not given to a second one (an
                # email a student could edit in the LMS must not hand them a classmate's work)
                sid = row.id if row is not None and row.id not in bound else f"lti-{digest[:12]}"
                found = Member(id=sid, role=role, stamp=f"lti:{digest[:16]}", name=name[:200], email=email[:200])
            else:
                found = found.model_copy(update={"role": role, "name": name[:200] or found.name,
                                                 "email": email[:200] or found.email})
            self.data.members[key] = found
            self.save()
        merge_into(roster, [found])
        return found

    def set_context(self, context: Context) -> None:
        with self._lock:
            self.data.context = context
            self.save()


def merge_into(roster: Roster, members: list[Member]) -> None:
    """Students among ``members`` join the served roster; a CSV row stays as the CSV says."""
    for m in members:
        if m.role != "student" or not valid_id(m.id) or m.id in roster.students:
            continue
        roster.students[m.id] = RosterEntry(id=m.id, name=m.name or m.id, email=m.email, extension="")


def members_of_nrps(doc: dict[str, Any]) -> list[tuple[str, str, str, Role, str]]:
    """(sub, name, email, role, LIS sourcedid) of each active member of an NRPS membership container."""
    found = []
    for m in doc.get("members", []) if isinstance(doc, dict) else []:
        if not isinstance(m, dict) or not isinstance(m.get("user_id"), str):
            continue
        if m.get("status", "Active") != "Active":
            continue
        name, email, sourcedid = m.get("name"), m.get("email"), m.get("lis_person_sourcedid")
        found.append((str(m["user_id"]), name if isinstance(name, str) else "", email if isinstance(email, str) else "",
                      role_of(m.get("roles") or []), sourcedid if isinstance(sourcedid, str) else ""))
    return found
