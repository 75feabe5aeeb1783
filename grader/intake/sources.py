"""Where one hand-in's bytes are, as data a job can carry, and how they are read into memory.

A hand-in is a path (a folder, a ``.py`` file, a notebook, an archive), a group of files in a
class folder (Canvas and Moodle's flat layout put every student's files side by side), or members
of a class zip (Moodle's "Download all submissions" itself). Each is read through the safe reader
or the archive reader, with the lab's caps, into a ``HandIn``; nothing downstream opens these
paths again.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from grader.errors import SubmissionError
from grader.intake.archives import (
    archive_stem,
    is_archive,
    read_zip_members,
    unpack_archive,
)
from grader.intake.reader import HandIn, printable, read_hand_in
from grader.lab.manifest import IntakeLimits


class HandInSource(BaseModel):
    """``path``: the hand-in itself (kind ``path``), the class folder holding ``files`` (kind
    ``files``), or the class zip holding them (kind ``zip``); ``files``: (name in the class folder
    or zip, name in the hand-in) pairs."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["path", "files", "zip"] = "path"
    path: Path
    files: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()  # what the class's layout left out of this hand-in, for its result

    @property
    def label(self) -> str:
        """How messages name the hand-in."""
        if self.kind == "path":
            return printable(self.path.name)
        first = self.files[0][0] if self.files else ""
        return printable(first.split("/", 1)[0] if self.kind == "zip" else first)

    @property
    def stem(self) -> str:
        """The hand-in's own name, as a submission name."""
        name = self.path.name
        if self.kind != "path":
            return self.label
        if is_archive(name):
            return archive_stem(name)
        return Path(name).stem if name.endswith((".py", ".ipynb")) and not self.path.is_dir() else name


def open_hand_in(source: HandInSource, limits: IntakeLimits, module_name: str) -> HandIn:
    """The hand-in's files, read into memory (see the module's docstring), with what the class's
    layout left out of it among its notes. ``module_name``: what a lone ``.py`` file is staged as."""
    handin = _open(source, limits, module_name)
    handin.notes[:0] = list(source.notes)
    return handin


def _open(source: HandInSource, limits: IntakeLimits, module_name: str) -> HandIn:
    """The hand-in's files, read into memory (see the module's docstring). ``module_name``: what a
    lone ``.py`` file is staged as."""
    if source.kind == "zip":
        return read_zip_members(source.path, source.files, limits, source.label)
    if source.kind == "files":
        return _group(source, limits, module_name)
    path = source.path
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return read_hand_in(path, limits)  # says "no such file" (or why it cannot be read)
    if not stat.S_ISREG(mode):
        return read_hand_in(path, limits)  # a folder, or refused with what it is (link, FIFO …)
    name = path.name
    if name.endswith(".py"):
        return read_hand_in(path, limits, module_name=module_name)
    if name.endswith(".ipynb"):
        return read_hand_in(path, limits)
    if is_archive(name):
        packed = read_hand_in(path, limits)
        handin = unpack_archive(packed.files[name], printable(name), limits)
        handin.source = path
        handin.notes = packed.notes + handin.notes
        return handin
    raise SubmissionError(f"{printable(name)}: a submission is a folder or a single .py file, a notebook "
                          "(.ipynb) or an archive (.zip, .tar, .tar.gz)")


def _group(source: HandInSource, limits: IntakeLimits, module_name: str) -> HandIn:
    """Files of one student lying side by side in a class folder, each read safely under the
    name it has in the hand-in (``parkkim_333_901_convnet.py`` → ``convnet.py``)."""
    root = source.path
    first = root / source.files[0][0] if source.files else root
    handin = HandIn(source=first)
    total = 0
    for outer, inner in source.files:
        try:
            part = read_hand_in(root / outer, limits, module_name=inner)
        except SubmissionError as exc:
            handin.notes.append(f"left out of your hand-in: {exc}")
            continue
        prefix = "" if part.single_file or not inner else inner.rstrip("/") + "/"
        for name, data in part.files.items():
            total += len(data)
            if total > limits.max_total_mb * 1024 * 1024:
                handin.notes.append(f"left out of your hand-in: {printable(prefix + name)} (past "
                                    f"{limits.max_total_mb:g} MB in all, files are not read)")
                continue
            handin.files.setdefault(prefix + name, data)
        handin.notes += part.notes
    return handin
