"""Archives a student hands in (.zip, .tar, .tar.gz), unpacked by the grader into memory.

An archive is untrusted twice over: its member names are paths the student chose, and its sizes
are numbers the student wrote. So every member is judged from the archive's own index *before*
anything is decompressed, and the archive is refused whole, with the reason, if any member is
- a path that leaves the hand-in (absolute, a drive letter, a ``..`` part),
- a link (symbolic or hard) or a device, FIFO or socket,
- encrypted, or compressed by a method the standard library cannot read,
or if the archive holds more entries, or expands to more bytes, than the lab's ``intake:`` caps
allow, or compresses a large member more than ``max_ratio`` times (a zip bomb). A compressed tar
is decompressed with a cap, so a bomb costs the cap, never the memory it claims.

Nothing is written to disk (no ``extractall``): members become a ``HandIn``'s bytes, and the
sandbox stages a child's folder from those. Names that are not valid UTF-8 are decoded as the
tools students use do (UTF-8 when the bytes are UTF-8, else the zip standard's cp437) and only
printed through ``printable``. macOS metadata (``__MACOSX/``, ``._*``, ``.DS_Store``) is dropped.
"""

from __future__ import annotations

import gzip
import io
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

from grader.errors import SubmissionError
from grader.intake.reader import IGNORED, HandIn, printable
from grader.lab.manifest import IntakeLimits

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_RATIO_FLOOR = 1 << 20  # a member under 1 MiB cannot be a bomb worth the name: its ratio is not judged
_MB = 1024 * 1024
MAX_NAME = 1024      # characters of a member's path: past this it is no one's folder layout
MAX_PART = 255       # bytes of one part of it (a file system's own limit on a name)
MAX_EXTENDED = 1024 * 1024  # bytes of a tar's extended (pax or GNU long-name) header (macOS puts xattrs there)
MAX_DIGITS = 64  # digits in a row in a pax header: a length, a time, a size need fewer
_DIGIT_RUN = re.compile(rb"[0-9]{%d}" % (MAX_DIGITS + 1))


class ArchiveRefused(SubmissionError):
    """An archive the grader will not unpack; the message says why, for the student."""


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(name: str) -> str:
    """``lab2.tar.gz`` → ``lab2``."""
    lower = name.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class Member:
    """One entry of an archive's index, judged before anything is read."""

    name: str          # a relative POSIX path inside the hand-in
    size: int          # declared uncompressed size
    compressed: int    # declared compressed size (the whole archive's share for a tar)
    read: Callable[[], bytes]


def _ignored(parts: tuple[str, ...]) -> bool:
    return any(p in IGNORED or p.startswith("._") for p in parts)


def safe_member_name(raw: str, label: str) -> str | None:
    """The member's path inside the hand-in, or ``None`` for metadata to drop; refuses a path
    that would leave the hand-in."""
    if len(raw) > MAX_NAME:
        raise ArchiveRefused(f"{label} was not unpacked: it holds a name longer than {MAX_NAME} characters "
                             f"({printable(raw[:40])}…)")
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRefused(f"{label} was not unpacked: it holds an absolute path ({printable(raw)})")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise ArchiveRefused(f"{label} was not unpacked: it holds a path that leaves the archive "
                             f"({printable(raw)})")
    if not parts or _ignored(parts):
        return None
    if any("\x00" in p for p in parts):
        raise ArchiveRefused(f"{label} was not unpacked: a name holds a NUL byte")
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_PART for p in parts):
        raise ArchiveRefused(f"{label} was not unpacked: it holds a file or folder name longer than {MAX_PART} "
                             f"bytes ({printable(raw[:40])}…)")
    return "/".join(parts)


def _cp437_or_utf8(info: zipfile.ZipInfo) -> str:
    """Zip names without the UTF-8 flag are cp437 by the standard, but most tools write UTF-8
    without saying so: take UTF-8 when the bytes are valid UTF-8."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _zip_members(zf: zipfile.ZipFile, label: str, select: Callable[[str], str | None]) -> list[Member]:
    members = []
    for info in zf.infolist():
        raw = _cp437_or_utf8(info)
        mode = info.external_attr >> 16
        if info.is_dir() or stat.S_ISDIR(mode):
            continue
        inner = select(raw)
        name = safe_member_name(inner, label) if inner is not None else None
        if name is None:
            continue
        if stat.S_ISLNK(mode):
            raise ArchiveRefused(f"{label} was not unpacked: {printable(raw)} is a symbolic link "
                                 "(links are not followed)")
        if mode and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            raise ArchiveRefused(f"{label} was not unpacked: {printable(raw)} is a device or special file")
        if info.flag_bits & 0x1:
            raise ArchiveRefused(f"{label} was not unpacked: {printable(raw)} is password-protected")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                      zipfile.ZIP_LZMA):
            raise ArchiveRefused(f"{label} was not unpacked: {printable(raw)} is compressed with a method "
                                 f"the grader cannot read (method {info.compress_type})")
        members.append(Member(name, info.file_size, info.compress_size, partial(_read_zip_member, zf, info, label)))
    return members


def _read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    try:
        with zf.open(info) as fh:
            return fh.read(info.file_size + 1)  # never past what the index declared
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise ArchiveRefused(f"{label} was not unpacked: it is damaged ({type(exc).__name__})") from None


def _index_cap(limits: IntakeLimits) -> int:
    """Entries of a tar's index read at most: twice the files a hand-in may hold, as macOS adds a
    ``._`` twin to each file (dropped later), and folders have entries of their own."""
    return 2 * limits.max_entries + 100


def _count_zip_index(data: bytes, label: str, limits: IntakeLimits) -> None:
    """Refuse a zip that holds more files than a hand-in may, walking the central directory's
    fixed-size records before ``zipfile`` builds an object for each (a 20 MB zip of empty names
    holds 250 000 of them: seconds in ``zipfile``, a fraction of one here). Counted as ``_judge``
    counts: files, not folders nor macOS metadata. An index this walk cannot follow is left to
    ``zipfile``, which refuses it as damaged."""
    try:
        endrec = zipfile._EndRecData(io.BytesIO(data))  # type: ignore[attr-defined]  # stable since 2.6
    except (OSError, struct.error):
        return
    if not endrec:
        return
    size_cd, location = endrec[5], endrec[9]
    start = location - size_cd
    if endrec[0] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
        start -= 56 + 20  # the zip64 end record and its locator sit between the directory and the end record
    if start < 0:
        return
    end, pos, count = min(start + size_cd, len(data)), start, 0
    while pos + 46 <= end:
        if data[pos:pos + 4] != b"PK\x01\x02":
            return
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        name = data[pos + 46:pos + 46 + name_len].replace(b"\\", b"/")
        if not name.endswith(b"/") and not _ignored(tuple(name.decode("cp437").split("/"))):
            count += 1
        pos += 46 + name_len + extra_len + comment_len
    if count > limits.max_entries:
        raise ArchiveRefused(f"{label} was not unpacked: it holds {count} files, more than the "
                             f"{limits.max_entries} a hand-in may hold")


def _count_tar_index(plain: bytes, label: str, limits: IntakeLimits) -> None:
    """Refuse a tar with more entries than a hand-in may hold, or an extended header that is
    larger than 1 MiB or holds a run of more than ``MAX_DIGITS`` digits, by walking its 512-byte
    headers before ``tarfile`` parses them: Python's ``tarfile`` (before 3.11.10, CVE-2024-6232)
    searches a pax header with a regex that is quadratic in a run of digits, 3 s for 32 kB of
    them and days for the 20 MB a hand-in may be; with runs of 64 at most, 1 MiB is read at once."""
    pos, count = 0, 0
    while pos + 512 <= len(plain):
        header = plain[pos:pos + 512]
        if header.count(0) == 512:
            return
        try:
            size = tarfile.nti(header[124:136])  # type: ignore[attr-defined]
        except (tarfile.HeaderError, ValueError):
            return  # tarfile says what is wrong with it
        kind = header[156:157]
        if kind in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                    tarfile.GNUTYPE_LONGLINK):
            if size > MAX_EXTENDED:
                raise ArchiveRefused(f"{label} was not unpacked: it holds an extended header of {size // 1024} kB "
                                     f"(at most {MAX_EXTENDED // 1024} kB)")
            if kind != tarfile.GNUTYPE_LONGNAME and kind != tarfile.GNUTYPE_LONGLINK and \
                    _DIGIT_RUN.search(plain, pos + 512, pos + 512 + size):
                raise ArchiveRefused(f"{label} was not unpacked: an extended header holds a number of more than "
                                     f"{MAX_DIGITS} digits (no length, time or size needs one)")
        else:
            count += 1
            if count > _index_cap(limits):
                raise ArchiveRefused(f"{label} was not unpacked: it holds more than {_index_cap(limits)} entries, "
                                     f"more than the {limits.max_entries} files a hand-in may hold")
        if size < 0:
            return
        pos += 512 + -(-size // 512) * 512


def _tar_members(tf: tarfile.TarFile, label: str, compressed_total: int,
                 select: Callable[[str], str | None]) -> list[Member]:
    entries = tf.getmembers()
    total = sum(m.size for m in entries if m.isreg()) or 1
    members = []
    for info in entries:
        if info.isdir():
            continue
        inner = select(info.name)
        name = safe_member_name(inner, label) if inner is not None else None
        if name is None:
            continue
        if info.issym() or info.islnk():
            raise ArchiveRefused(f"{label} was not unpacked: {printable(info.name)} is a link "
                                 "(links are not followed)")
        if not info.isreg():
            raise ArchiveRefused(f"{label} was not unpacked: {printable(info.name)} is a device or special file")
        share = max(1, compressed_total * info.size // total)
        members.append(Member(name, info.size, share, partial(_read_tar_member, tf, info, label)))
    return members


def _read_tar_member(tf: tarfile.TarFile, info: tarfile.TarInfo, label: str) -> bytes:
    try:
        fh = tf.extractfile(info)
        return fh.read(info.size + 1) if fh else b""
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveRefused(f"{label} was not unpacked: it is damaged ({type(exc).__name__})") from None


def _judge(members: list[Member], label: str, limits: IntakeLimits) -> None:
    """Caps on the index, before anything is decompressed."""
    if len(members) > limits.max_entries:
        raise ArchiveRefused(f"{label} was not unpacked: it holds {len(members)} files, more than the "
                             f"{limits.max_entries} a hand-in may hold")
    total = sum(m.size for m in members)
    if total > limits.max_total_mb * _MB:
        raise ArchiveRefused(f"{label} was not unpacked: it expands to {total / _MB:.0f} MB, more than the "
                             f"{limits.max_total_mb:g} MB a hand-in may hold")
    for m in members:
        if m.size >= _RATIO_FLOOR and m.size > limits.max_ratio * max(m.compressed, 1):
            raise ArchiveRefused(f"{label} was not unpacked: {printable(m.name)} expands "
                                 f"{m.size / max(m.compressed, 1):.0f} times (more than {limits.max_ratio:g}: "
                                 "a zip bomb?)")
    seen: dict[str, str] = {}
    for m in members:
        folders = [m.name[:i] for i, c in enumerate(m.name) if c == "/"]  # names are at most MAX_NAME long
        for folder in folders:
            if seen.get(folder) == "file":
                raise ArchiveRefused(f"{label} was not unpacked: {printable(folder)} is both a file and a folder")
            seen[folder] = "folder"
        if m.name in seen:
            raise ArchiveRefused(f"{label} was not unpacked: {printable(m.name)} appears twice")
        seen[m.name] = "file"


def _unpack(members: list[Member], label: str, limits: IntakeLimits, into: HandIn, prefix: str = "") -> None:
    _judge(members, label, limits)
    skipped = []
    for m in members:
        if m.size > limits.max_file_mb * _MB:
            skipped.append(printable(m.name))
            continue
        data = m.read()
        if len(data) > m.size:  # the index lied: the stream holds more than it declared
            raise ArchiveRefused(f"{label} was not unpacked: {printable(m.name)} is larger than its archive says")
        into.files[prefix + m.name] = data
    if skipped:
        into.notes.append(f"left out of {label}: {', '.join(skipped[:5])} (files over {limits.max_file_mb:g} MB "
                          "are not read)")


def _kind(data: bytes, name: str) -> str:
    lower = name.lower()
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data[:2] == b"\x1f\x8b":
        return "tar.gz"
    if len(data) >= 262 and data[257:262] == b"ustar":
        return "tar"
    if lower.endswith(".zip"):
        return "not a zip archive"
    return "not a tar archive"


def unpack_archive(data: bytes, label: str, limits: IntakeLimits, *, into: HandIn | None = None,
                   prefix: str = "") -> HandIn:
    """The archive's regular files as a ``HandIn`` (or added to ``into`` under ``prefix``).
    ``label``: how messages name the archive. Raises ``ArchiveRefused`` with the reason."""
    handin = into if into is not None else HandIn(source=Path(label))
    kind = _kind(data, label)
    keep: Callable[[str], str | None] = lambda name: name
    try:
        if kind == "zip":
            _count_zip_index(data, label, limits)
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                _unpack(_zip_members(zf, label, keep), label, limits, handin, prefix)
        elif kind in ("tar", "tar.gz"):
            plain = data
            if kind == "tar.gz":
                cap = int(limits.max_total_mb * _MB) + limits.max_entries * 1024 + 10 * 1024
                try:
                    plain = gzip.GzipFile(fileobj=io.BytesIO(data)).read(cap + 1)
                except (OSError, EOFError, zlib.error) as exc:
                    raise ArchiveRefused(f"{label} was not unpacked: it is damaged ({type(exc).__name__})") from None
                if len(plain) > cap:
                    raise ArchiveRefused(f"{label} was not unpacked: it expands past {limits.max_total_mb:g} MB, "
                                         "the most a hand-in may hold")
                if len(plain) >= _RATIO_FLOOR and len(plain) > limits.max_ratio * len(data):
                    raise ArchiveRefused(f"{label} was not unpacked: it expands {len(plain) / len(data):.0f} times "
                                         f"(more than {limits.max_ratio:g}: a zip bomb?)")
            _count_tar_index(plain, label, limits)
            with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tf:
                _unpack(_tar_members(tf, label, len(data), keep), label, limits, handin, prefix)
        else:
            raise ArchiveRefused(f"{label} was not unpacked: {kind}")
    except ArchiveRefused:
        raise
    except UnicodeDecodeError:
        raise ArchiveRefused(f"{label} was not unpacked: it declares UTF-8 file names that are not valid UTF-8") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise ArchiveRefused(f"{label} was not unpacked: it is damaged or not a {kind} archive "
                             f"({type(exc).__name__})") from None
    return handin


def read_zip_members(path: Path, pairs: Iterable[tuple[str, str]], limits: IntakeLimits, label: str) -> HandIn:
    """Some members of a class zip (an LMS download), each under the name it has in the hand-in:
    ``pairs`` maps a member's name in the zip to its name in the hand-in. The zip is read from its
    index; only these members are decompressed, with the hand-in's caps."""
    wanted = dict(pairs)
    handin = HandIn(source=Path(path))
    try:
        with zipfile.ZipFile(path) as zf:
            _unpack(_zip_members(zf, label, wanted.get), label, limits, handin)
    except ArchiveRefused:
        raise
    except UnicodeDecodeError:
        raise ArchiveRefused(f"{label} was not unpacked: it declares UTF-8 file names that are not valid UTF-8") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ArchiveRefused(f"{label}: the class archive could not be read ({type(exc).__name__})") from None
    return handin


def zip_index(path: Path) -> list[str]:
    """The member names of a class zip (an LMS download), files only, as the grader reads them
    (unchecked: each is judged when the hand-in holding it is read)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [_cp437_or_utf8(i) for i in zf.infolist() if not i.is_dir()]
    except UnicodeDecodeError:
        raise SubmissionError(f"{printable(str(path))}: the archive declares UTF-8 file names that are not "
                              "valid UTF-8") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{printable(str(path))}: not a zip archive the grader can read "
                              f"({type(exc).__name__})") from None
