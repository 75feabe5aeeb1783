"""The safe reader: a hand-in read once, by the grader (as root), without following anything it
points at, into memory — what the grader and the sandbox use from then on.

Everything in a hand-in is untrusted: a name can be a symbolic link to the lab's reference
answers or to a file only root may read, a FIFO that blocks whoever opens it, ``/dev/zero``
behind a link, a 2 GiB sparse file, 600 nested folders, 100 000 small files. So the walk
- opens every folder and file relative to its parent's descriptor with ``O_NOFOLLOW`` (a link
  swapped in at any level is refused, not followed) and ``O_NONBLOCK`` (a FIFO never blocks);
- accepts regular files and folders only, and names each link or special file it skips;
- caps depth, entry count, each file's size and the total, reading at most the cap of each file
  (a sparse or endless file costs its cap, not its length).
A problem with one entry is a note on the hand-in; only a hand-in that is not a folder or a
regular file at all is refused (``SubmissionError``, recorded as that hand-in's result by the
batch). Nothing downstream opens the hand-in's paths again: the sandbox stages a child's working
folder from these bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import SubmissionError
from grader.lab.manifest import IntakeLimits

_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_OPEN_DIR = _OPEN_FILE | os.O_DIRECTORY
IGNORED = {"__MACOSX", ".DS_Store", "__pycache__", ".ipynb_checkpoints", ".git"}


def printable(name: str) -> str:
    """A name from a hand-in, fit to print: bytes that are not UTF-8 replaced, control
    characters (terminal escape sequences) shown escaped."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def handin_digest(handin: HandIn) -> str:
    """A digest of a hand-in's files as read (names and bytes), to tell a changed hand-in."""
    h = hashlib.sha256()
    for name in sorted(handin.files):
        data = handin.files[name]
        h.update(f"{name}\0{len(data)}\0".encode("utf-8", "surrogateescape"))
        h.update(data)
    return f"sha256:{h.hexdigest()[:16]}"


def file_safe(name: str) -> str:
    """A name fit for a result file: accents folded to ASCII (``Émile Noël`` → ``Emile_Noel``),
    anything else but letters, digits, ``.``, ``_`` and ``-`` replaced."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._") or "submission")[:100]


@dataclass
class HandIn:
    """A hand-in's regular files (relative POSIX path → bytes), and what was left out and why."""

    source: Path
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    single_file: bool = False

    def read(self, relative: str) -> bytes | None:
        return self.files.get(relative)

    @property
    def total_bytes(self) -> int:
        return sum(len(d) for d in self.files.values())


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


class _Walk:
    def __init__(self, handin: HandIn, limits: IntakeLimits) -> None:
        self.handin, self.limits = handin, limits
        self.entries = 0
        self.total = 0
        self.skipped: dict[str, list[str]] = {}  # reason → names (reported once per reason)
        self.stopped: str | None = None

    def skip(self, reason: str, relative: str) -> None:
        self.skipped.setdefault(reason, []).append(printable(relative))

    def read_file(self, dir_fd: int | None, name: str, relative: str) -> None:
        limits = self.limits
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
        except OSError as exc:
            self.skip("symbolic links are not followed" if exc.errno == errno.ELOOP else
                      f"could not be read ({exc.strerror})", relative)
            return
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self.skip(f"{_kind(info.st_mode)}s are not read", relative)
                return
            if info.st_size > limits.max_file_mb * 1024 * 1024:
                self.skip(f"files over {limits.max_file_mb:g} MB are not read", relative)
                return
            room = limits.max_total_mb * 1024 * 1024 - self.total
            data = _read_at_most(fd, int(min(info.st_size, limits.max_file_mb * 1024 * 1024)) + 1)
            if len(data) > limits.max_file_mb * 1024 * 1024:  # grew since fstat, or lied about its size
                self.skip(f"files over {limits.max_file_mb:g} MB are not read", relative)
                return
            if len(data) > room:
                self.skip(f"past {limits.max_total_mb:g} MB in all, files are not read", relative)
                return
            self.total += len(data)
            self.handin.files[relative] = data
        finally:
            os.close(fd)

    def walk(self, dir_fd: int, prefix: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(dir_fd), key=lambda e: e.name)
        except OSError as exc:
            self.skip(f"could not be listed ({exc.strerror})", prefix or ".")
            return
        for entry in entries:
            if self.stopped:
                return
            relative = f"{prefix}{entry.name}"
            if entry.name in IGNORED or entry.name.startswith("._"):
                continue
            self.entries += 1
            if self.entries > self.limits.max_entries:
                self.stopped = (f"the hand-in holds more than {self.limits.max_entries} files and folders: "
                                "only the first were read")
                return
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                if depth >= self.limits.max_depth:
                    self.skip(f"folders deeper than {self.limits.max_depth} levels are not read", relative + "/")
                    continue
                try:
                    sub = os.open(entry.name, _OPEN_DIR, dir_fd=dir_fd)
                except OSError:
                    self.skip("symbolic links are not followed", relative)
                    continue
                try:
                    self.walk(sub, relative + "/", depth + 1)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(mode):
                self.read_file(dir_fd, entry.name, relative)
            else:
                self.skip(f"{_kind(mode)}s are not read" if not stat.S_ISLNK(mode) else
                          "symbolic links are not followed", relative)

    def finish(self) -> None:
        for reason, names in self.skipped.items():
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            self.handin.notes.append(f"left out of your hand-in: {shown} ({reason})")
        if self.stopped:
            self.handin.notes.append(self.stopped)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, got = [], 0
    while got < limit:
        chunk = os.read(fd, min(limit - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_hand_in(path: Path, limits: IntakeLimits = IntakeLimits(), *, module_name: str | None = None) -> HandIn:
    """Read a hand-in (a folder, or one file) safely. ``module_name``: the name a single file is
    staged under (a lone ``my_net.py`` is the lab's ``convnet.py``)."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise SubmissionError(f"{printable(str(path))}: no such file or folder") from None
    except OSError as exc:
        raise SubmissionError(f"{printable(str(path))}: cannot be read ({exc.strerror})") from None
    handin = HandIn(source=path)
    walk = _Walk(handin, limits)
    if stat.S_ISDIR(info.st_mode):
        try:
            fd = os.open(path, _OPEN_DIR)
        except OSError as exc:
            raise SubmissionError(f"{printable(str(path))}: cannot be read ({exc.strerror})") from None
        try:
            walk.walk(fd, "", 0)
        finally:
            os.close(fd)
    elif stat.S_ISREG(info.st_mode):
        handin.single_file = True
        walk.read_file(None, str(path), module_name or path.name)
        if not handin.files:
            reason = next(iter(walk.skipped), "it could not be read")
            raise SubmissionError(f"{printable(path.name)}: not graded: {reason}")
    else:
        raise SubmissionError(f"{printable(path.name)} is {_kind(info.st_mode)}: a hand-in must be a folder "
                              "or a file, handed in as itself (links are not followed)")
    walk.finish()
    return handin
