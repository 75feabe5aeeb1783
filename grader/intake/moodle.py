"""Moodle's "Download all submissions", as a folder or as the zip itself.

Moodle names each student's entry ``<Full name>_<participant id>_<plugin>`` (the plugin is
``assignsubmission_file`` for uploaded files, ``assignsubmission_onlinetext`` for online text),
with underscores in the name turned into spaces, so the name ends at the first underscore:
- as folders (Moodle ≥ 3.1's default): ``Kim Park_333333_assignsubmission_file/…`` holding the
  files as uploaded (sub-folders kept);
- flat (earlier Moodle, or "download as folders" unticked):
  ``Kim Park_333333_assignsubmission_file_convnet.py``, one entry per file.
The participant id is what Moodle's offline grading worksheet calls ``Participant 333333``; the
name is kept as Moodle wrote it (Unicode included). Entries of one participant are one hand-in.
"""

from __future__ import annotations

import re

from grader.intake.identity import key_for
from grader.intake.listing import ClassEntry, ClassListing
from grader.intake.reader import printable
from grader.results import Student

ENTRY = re.compile(r"^(?P<name>[^_]+)_(?P<id>\d+)_(?P<plugin>assign(?:submission|feedback)_[a-z]+)(?:_(?P<file>.+))?$",
                   re.S)


def is_entry(name: str) -> bool:
    """A top-level name as Moodle's "Download all submissions" writes it."""
    match = ENTRY.match(name)
    return match is not None and match["plugin"].startswith("assignsubmission_")


def entries(listing: ClassListing) -> tuple[list[ClassEntry], list[str]]:
    """One entry per participant, and a warning for each top-level name that is not Moodle's."""
    groups: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    warnings = []
    for top, is_dir in listing.top.items():
        match = ENTRY.match(top)
        if not match or not match["plugin"].startswith("assignsubmission_"):
            warnings.append(f"{printable(top)}: not a Moodle submission entry (left out)")
            continue
        name, pairs = groups.setdefault(match["id"], (match["name"].strip(), []))
        if is_dir and not match["file"]:
            pairs.append((top, ""))
        else:
            pairs.append((top, match["file"] or top))
    found = []
    for pid, (name, pairs) in groups.items():
        student = Student(id=pid, name=name, source=printable(str(listing.root / pairs[0][0])), lms="moodle")
        found.append(ClassEntry(student=student, source=listing.group(sorted(pairs)), name=key_for(name, pid)))
    return found, warnings
