"""A class as it arrives: the top-level names of a class folder or of a class zip (an LMS
download kept zipped), and how a group of them becomes one hand-in's source.

Names are listed as they are, never followed: a link at the top of a class folder is listed
(and refused, with its reason, when its hand-in is read).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import SubmissionError
from grader.intake.archives import zip_index
from grader.intake.reader import printable
from grader.intake.sources import HandInSource
from grader.results import Student


@dataclass(frozen=True)
class ClassEntry:
    """One student's hand-in in a class: who, where its bytes are, and a name for its result."""

    student: Student
    source: HandInSource
    name: str


@dataclass
class ClassListing:
    """The top of a class: ``top`` maps each top-level name to whether it is a folder."""

    root: Path
    zipped: bool
    top: dict[str, bool] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # zip: top-level folder → its members

    @classmethod
    def read(cls, root: Path) -> ClassListing:
        root = Path(root)
        if root.is_file() and root.suffix.lower() == ".zip":
            listing = cls(root=root, zipped=True)
            for member in zip_index(root):
                name = member.replace("\\", "/").lstrip("/")
                head, _, rest = name.partition("/")
                if not head or head.startswith("__MACOSX") or head == ".DS_Store":
                    continue
                listing.top[head] = listing.top.get(head, False) or bool(rest)
                listing.members.setdefault(head, []).append(member)
            return listing
        if not root.is_dir():
            raise SubmissionError(f"{printable(str(root))}: not a folder of submissions, nor a class zip")
        listing = cls(root=root, zipped=False)
        for name in sorted(os.listdir(root)):
            if name.startswith((".", "__MACOSX")):
                continue
            try:
                mode = os.lstat(root / name).st_mode
            except OSError:
                continue
            listing.top[name] = stat.S_ISDIR(mode)
        return listing

    def whole(self, name: str) -> HandInSource:
        """One top-level entry as a whole hand-in (a student's folder, file or archive)."""
        if not self.zipped:
            return HandInSource(path=self.root / name)
        members = self.members.get(name, [])
        if self.top.get(name):
            return HandInSource(kind="zip", path=self.root,
                                files=tuple((m, m.replace("\\", "/").lstrip("/").partition("/")[2]) for m in members))
        return HandInSource(kind="zip", path=self.root, files=tuple((m, name) for m in members))

    def group(self, pairs: list[tuple[str, str]], notes: tuple[str, ...] = ()) -> HandInSource:
        """Several top-level entries as one hand-in: (top-level name, name in the hand-in); a
        folder's files keep their paths below it ("" puts them at the hand-in's top). ``notes``:
        what the layout left out of it (an earlier upload)."""
        if not self.zipped:
            if len(pairs) == 1 and self.top.get(pairs[0][0]) and not pairs[0][1]:
                return HandInSource(path=self.root / pairs[0][0], notes=notes)
            return HandInSource(kind="files", path=self.root, files=tuple(pairs), notes=notes)
        files = []
        for top, inner in pairs:
            for member in self.members.get(top, []):
                below = member.replace("\\", "/").lstrip("/").partition("/")[2]
                files.append((member, "/".join(p for p in (inner, below) if p) if self.top.get(top) else inner))
        return HandInSource(kind="zip", path=self.root, files=tuple(files), notes=notes)
