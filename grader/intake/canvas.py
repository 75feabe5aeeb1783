"""Canvas's "Download Submissions": every student's files side by side, each renamed
``<sortable name>[_LATE]_<user id>_<attachment id>_<file name>`` (the sortable name lower-cased
and squeezed: "Park, Kim" → ``parkkim``), a resubmitted file numbered before its extension
(``convnet-1.py``). Files of one user id are one hand-in, under their own names again; a LATE
mark is kept on the student. The user id is the ``ID`` column of Canvas's gradebook.
"""

from __future__ import annotations

import re
from typing import Any

from grader.intake.identity import key_for
from grader.intake.listing import ClassEntry, ClassListing
from grader.intake.reader import printable
from grader.results import Student

ENTRY = re.compile(r"^(?P<name>.+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<attachment>\d+)_(?P<file>.+)$", re.S)
TEXT_ENTRY = re.compile(r"^(?P<name>.+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<file>text\.html)$", re.S)
_RESUBMITTED = re.compile(r"^(?P<stem>.+)-\d+(?P<ext>\.[^.]+)?$")


def _match(name: str) -> re.Match[str] | None:
    return ENTRY.match(name) or TEXT_ENTRY.match(name)


def is_entry(name: str, is_dir: bool) -> bool:
    """A top-level name as Canvas's "Download Submissions" writes it (files only)."""
    return not is_dir and _match(name) is not None


def original_name(file: str, expected: set[str]) -> str:
    """The name the student gave: Canvas's ``-1`` of a resubmission removed where that gives a
    name the lab expects (``convnet-1.py`` → ``convnet.py``); other names are kept."""
    match = _RESUBMITTED.match(file)
    if match and f"{match['stem']}{match['ext'] or ''}" in expected:
        return f"{match['stem']}{match['ext'] or ''}"
    return file


def entries(listing: ClassListing, expected: set[str]) -> tuple[list[ClassEntry], list[str]]:
    groups: dict[str, dict[str, Any]] = {}
    warnings = []
    for top in listing.top:
        match = _match(top)
        if not match:
            warnings.append(f"{printable(top)}: not a Canvas submission file name (left out)")
            continue
        group = groups.setdefault(match["user"], {"name": match["name"], "late": False, "pairs": []})
        group["late"] = bool(group["late"]) or bool(match["late"])
        attachment = int(match["attachment"]) if "attachment" in match.groupdict() else 0
        group["pairs"].append((top, original_name(match["file"], expected), attachment))
    found = []
    for user, group in groups.items():
        # A file uploaded again has a newer attachment id (a number: 101 after 100, whatever the text
        # sorts as): the newest of each name is graded, and an earlier one is a note on the result.
        pairs: list[tuple[str, str, int]] = sorted(group["pairs"], key=lambda p: (p[1], -p[2], p[0]))
        kept: dict[str, tuple[str, int]] = {}
        unique, notes = [], []
        for t, i, attachment in pairs:
            if i not in kept:
                kept[i] = (t, attachment)
                unique.append((t, i))
            else:
                notes.append(f"an earlier upload of {printable(i)} (Canvas attachment {attachment}) was left out: the "
                             f"newest (attachment {kept[i][1]}) is graded")
        name = str(group["name"])
        student = Student(id=user, name=name, source=printable(str(listing.root / unique[0][0])), lms="canvas",
                          late=bool(group["late"]))
        found.append(ClassEntry(student=student, source=listing.group(unique, tuple(notes)), name=key_for(name, user)))
    return found, warnings
