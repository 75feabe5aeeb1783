"""What an upload may hold, decided before anything is stored.

A student uploads one archive (``.zip``, ``.tar``, ``.tar.gz``), one notebook, or the lab's files
one by one. Every name comes from the student's browser, or from whatever sent the request, so
each is checked as it is, never cleaned up into something else: one path component (no ``/``,
``\\``, ``..``), no leading dot, no control character, at most 100 characters, and, for files
one by one, a name the lab declares (its module, its answer sheet) or a ``.py``, ``.ipynb`` or
``.yaml`` file. An archive is unpacked in memory with the batch's archive rules
(``intake.archives``: no absolute path, no ``..``, no link or device, caps on entries, size and
compression ratio) and refused whole with the reason; it is then stored as it came (the grader
unpacks it again, with the same rules, when it grades), under a name made from its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grader.intake.archives import (
    ArchiveRefused,
    archive_stem,
    is_archive,
    unpack_archive,
)
from grader.intake.reader import file_safe, printable
from grader.lab.manifest import IntakeLimits, InterfaceSpec

MAX_FILES = 20
MAX_NAME = 100
LOOSE_SUFFIXES = (".py", ".ipynb", ".yaml", ".yml")


class UploadRefused(Exception):
    """An upload not stored, and why (for the student): ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    kind: Literal["archive", "notebook", "files"]
    files: dict[str, bytes]  # stored name → bytes

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.files.values())


def check_name(name: str) -> str:
    """The name as sent, if it is one plain file name; else ``UploadRefused`` saying what is wrong."""
    shown = printable(name)
    if not name or not name.strip():
        raise UploadRefused("a file without a name was sent")
    if len(name) > MAX_NAME:
        raise UploadRefused(f"{shown[:40]}…: a file name is at most {MAX_NAME} characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise UploadRefused(f"{shown}: a file name, not a path, is expected (no '/', '\\' or '..')")
    if any(not ch.isprintable() for ch in name):
        raise UploadRefused(f"{shown}: a file name cannot hold control characters")
    if name.startswith("."):
        raise UploadRefused(f"{shown}: hidden files (names starting with '.') are not accepted")
    return name


def accept(sent: list[tuple[str, bytes]], interface: InterfaceSpec, intake: IntakeLimits) -> Upload:
    """The upload to store from the files sent (name, bytes), or ``UploadRefused``."""
    sent = [(name, data) for name, data in sent if name or data]  # a form's empty file input sends nothing
    if not sent:
        raise UploadRefused("choose a file to upload: a .zip of your folder, your notebook, or "
                            f"{interface.module} and {interface.answers_file}")
    if len(sent) > MAX_FILES:
        raise UploadRefused(f"{len(sent)} files were sent: at most {MAX_FILES} at once (or one archive)")
    names = [check_name(name) for name, _ in sent]
    if len(sent) == 1 and is_archive(names[0]):
        name, data = sent[0]
        label = printable(name)
        try:
            unpack_archive(data, label, intake)
        except ArchiveRefused as exc:
            raise UploadRefused(str(exc), status=422) from None
        suffix = name[len(archive_stem(name)):].lower()
        return Upload("archive", {file_safe(archive_stem(name)) + suffix: data})
    if len(sent) == 1 and names[0].lower().endswith(".ipynb"):
        return Upload("notebook", {names[0]: sent[0][1]})
    declared = {interface.module, interface.answers_file}
    files: dict[str, bytes] = {}
    for name, (_, data) in zip(names, sent):
        if is_archive(name):
            raise UploadRefused(f"{printable(name)}: upload an archive on its own, not with other files")
        if name not in declared and not name.lower().endswith(LOOSE_SUFFIXES):
            raise UploadRefused(f"{printable(name)}: not a file of this lab (expected {interface.module}, "
                                f"{interface.answers_file}, or .py, .ipynb and .yaml files)")
        if name in files:
            raise UploadRefused(f"{printable(name)} was sent twice")
        if len(data) > intake.max_file_mb * 1024 * 1024:
            raise UploadRefused(f"{printable(name)} is larger than {intake.max_file_mb:g} MB", status=413)
        files[name] = data
    return Upload("files", files)
