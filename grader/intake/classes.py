"""A class folder (or an LMS download kept zipped) as the hand-ins it holds, each with its
student: ``plan_class(root, layout)``.

Layouts: ``moodle`` and ``canvas`` (their bulk downloads, see ``intake.moodle`` and
``intake.canvas``), ``folders`` (one sub-folder, ``.py`` file, notebook or archive per student,
named after the student), and ``auto``, which recognises the first two by their names and falls
back to folders. What does not fit the layout is a warning, never a crash. A folder kept by
``gradelab serve`` is folders too, each student's ``attempts/`` left out: their latest upload is
what is graded.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import UsageError
from grader.intake import canvas, moodle
from grader.intake.archives import is_archive
from grader.intake.identity import key_for
from grader.intake.listing import ClassEntry, ClassListing
from grader.intake.reader import printable
from grader.intake.sources import HandInSource
from grader.options import Layout
from grader.results import Student


@dataclass
class ClassPlan:
    layout: Layout
    entries: list[ClassEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _gradable_file(name: str) -> bool:
    return name.endswith((".py", ".ipynb")) or is_archive(name)


SERVED_MARK = (".gradelab", "class.json")  # written by `gradelab serve` in its class folder
SERVED_ATTEMPTS = "attempts"


def served(listing: ClassListing) -> bool:
    """A class folder kept by ``gradelab serve``: each student's folder holds a copy of their
    latest upload beside ``attempts/``, every attempt they made."""
    if listing.zipped:
        return False
    try:
        return stat.S_ISREG(os.lstat(listing.root.joinpath(*SERVED_MARK)).st_mode)
    except OSError:
        return False


def _latest_only(listing: ClassListing, name: str) -> HandInSource:
    """A served student's folder without its ``attempts/``: their latest upload, read entry by
    entry (each with the safe reader, links refused as anywhere else)."""
    folder = listing.root / name
    try:
        entries = sorted(e for e in os.listdir(folder) if e != SERVED_ATTEMPTS)
    except OSError:
        return listing.whole(name)  # unreadable: the reader says why
    return HandInSource(kind="files", path=listing.root, files=tuple((f"{name}/{e}", e) for e in entries))


def _folders(listing: ClassListing) -> ClassPlan:
    plan = ClassPlan(Layout.folders)
    latest_only = served(listing)
    for name, is_dir in listing.top.items():
        if name.startswith(("_", ".")):
            continue
        if not (is_dir or _gradable_file(name) or not listing.zipped and (listing.root / name).is_symlink()):
            plan.warnings.append(f"{printable(name)}: not a hand-in (a folder, .py file, notebook or archive): left out")
            continue
        source = _latest_only(listing, name) if latest_only and is_dir else listing.whole(name)
        if latest_only and is_dir and source.kind == "files" and not source.files:
            plan.warnings.append(f"{printable(name)}: no upload yet (a folder of the server's, without an attempt): "
                                 "left out")
            continue
        stem = HandInSource(path=Path(name)).stem if not is_dir else name
        label = printable(stem).strip() or "submission"
        plan.entries.append(ClassEntry(student=Student(id=label, name=label, source=printable(str(listing.root / name))),
                                       source=source, name=key_for(stem)))
    return plan


def recognised(listing: ClassListing) -> Layout:
    """The layout every entry of the class agrees on (dot- and underscore-names, the litter of
    archivers, aside): Moodle's when every entry is named as Moodle names them, Canvas's likewise,
    folders when none is. A class where some are and some are not is refused, with the entries
    that disagree: one file named like an LMS's must not turn a class of folders into a download
    (every real student left out), nor one loose file a download into folders."""
    names = {n: d for n, d in listing.top.items() if not n.startswith(("_", "."))}
    for layout, fits in ((Layout.moodle, lambda n, d: moodle.is_entry(n)),
                         (Layout.canvas, lambda n, d: canvas.is_entry(n, d))):
        yes = [n for n, d in names.items() if fits(n, d)]
        if yes and len(yes) == len(names):
            return layout
        if yes:
            odd = [n for n in names if n not in yes]
            shown = ", ".join(printable(n) for n in (odd if len(odd) <= len(yes) else yes)[:5])
            which = "are not" if len(odd) <= len(yes) else "are"
            raise UsageError(
                f"{printable(str(listing.root))}: {len(yes)} of its {len(names)} entries are named as a "
                f"{layout.value.capitalize()} download names them and {len(odd)} are not, so its layout is not "
                f"clear; these {which} {layout.value.capitalize()}'s: {shown}. Say which it is: --layout "
                f"{layout.value} (the others left out, each named) or --layout folders (one hand-in per entry)")
    return Layout.folders


def plan_class(root: Path, layout: Layout = Layout.auto, *, expected: Set[str] = frozenset()) -> ClassPlan:
    """The hand-ins of a class, each with its student. ``expected``: the file names the lab
    expects (its module, its answer sheet), to undo an LMS's renaming of resubmitted files."""
    listing = ClassListing.read(Path(root))
    layout = Layout(layout)
    if layout == Layout.auto:
        layout = recognised(listing)
    if layout == Layout.moodle:
        found, warnings = moodle.entries(listing)
    elif layout == Layout.canvas:
        found, warnings = canvas.entries(listing, set(expected))
    else:
        return _folders(listing)
    return ClassPlan(layout, sorted(found, key=lambda e: (e.student.name, e.student.id)), warnings)
