"""Archives are unpacked by the grader, in memory, after every member is judged: a hostile
archive is refused with its reason on that hand-in, and the rest of the batch is graded."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from grader.intake.archives import ArchiveRefused, unpack_archive
from grader.lab.manifest import IntakeLimits
from tests.conftest import CIFAR_SUBMISSIONS, cli

CORRECT = {p.name: p.read_bytes() for p in (CIFAR_SUBMISSIONS / "correct").iterdir() if p.suffix in (".py", ".yaml")}


def make_zip(entries: dict[str, bytes], *, links: dict[str, str] | None = None,
             compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def make_tar(entries: dict[str, bytes], *, special: list[tarfile.TarInfo] = (), gz: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in special:
            tf.addfile(info)
    return buffer.getvalue()


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 5
    return info


HOSTILE = {
    "zip-slip.zip": (lambda: make_zip({**CORRECT, "../../escaped.py": b"x = 1\n"}), "a path that leaves the archive"),
    "absolute.zip": (lambda: make_zip({**CORRECT, "/etc/cron.d/evil": b"* * * * * root sh\n"}), "an absolute path"),
    "symlink.zip": (lambda: make_zip(CORRECT, links={"answers2.yaml": "/work/reference/cifar-convnet/answers.yaml"}),
                    "is a symbolic link"),
    "symlink.tar.gz": (lambda: make_tar(CORRECT, special=[symlink("ref.py", "/etc/passwd")]), "is a link"),
    "device.tar": (lambda: make_tar(CORRECT, special=[device("zero")], gz=False), "device or special file"),
    "bomb.zip": (lambda: make_zip({**CORRECT, "zeros.bin": bytes(40 << 20)}), "expands"),
    "bomb.tar.gz": (lambda: make_tar({**CORRECT, "zeros.bin": bytes(120 << 20)}), "expands past 50 MB"),
    "many.zip": (lambda: make_zip({**CORRECT, **{f"f/{i}.txt": b"" for i in range(10_000)}}, compression=zipfile.ZIP_STORED),
                 "10002 files, more than the 2000"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_hostile_archive_is_refused_with_its_reason(name, tmp_path):
    make, reason = HOSTILE[name]
    with pytest.raises(ArchiveRefused, match=reason.replace("(", r"\(")) as refused:
        unpack_archive(make(), name, IntakeLimits())
    assert str(refused.value).startswith(f"{name} was not unpacked")
    assert not (tmp_path.parent / "escaped.py").exists() and not Path("/etc/cron.d/evil").exists()


def test_a_bomb_is_refused_from_its_index_without_decompressing_it():
    """A member declaring 2 GB compressed a thousand times is judged on its declared numbers."""
    data = make_zip({**CORRECT, "zeros.bin": bytes(8 << 20)})
    with pytest.raises(ArchiveRefused, match=r"zeros.bin expands \d+ times \(more than 200: a zip bomb\?\)"):
        unpack_archive(data, "h.zip", IntakeLimits(max_total_mb=50))


def test_a_well_formed_archive_becomes_the_hand_in_without_macos_litter():
    data = make_zip({**{f"lab2/{n}": d for n, d in CORRECT.items()}, "__MACOSX/lab2/._convnet.py": b"\x00",
                     "lab2/.DS_Store": b"Bud1"})
    handin = unpack_archive(data, "lab2.zip", IntakeLimits())
    assert set(handin.files) == {"lab2/convnet.py", "lab2/answers.yaml"}
    assert handin.files["lab2/convnet.py"] == CORRECT["convnet.py"]


def _zip_with_raw_name(placeholder: str, raw_name: bytes) -> bytes:
    """A zip whose second member's name is ``raw_name`` byte for byte (zipfile would encode it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("convnet.py", CORRECT["convnet.py"])
        zf.writestr(placeholder, b"x")
    encoded = placeholder.encode("utf-8")
    assert len(encoded) == len(raw_name)
    return buffer.getvalue().replace(encoded, raw_name)


def test_names_without_the_utf8_flag_are_read_as_tools_write_them():
    """Most tools write UTF-8 names without the zip's UTF-8 flag; others write a code page.
    Either is read, never an exception."""
    utf8 = unpack_archive(_zip_with_raw_name("notes-XX.txt", "notes-é.txt".encode()), "h.zip", IntakeLimits())
    assert set(utf8.files) == {"convnet.py", "notes-é.txt"}
    latin = unpack_archive(_zip_with_raw_name("notes-X.txt", b"notes-\xe9.txt"), "h.zip", IntakeLimits())
    assert "convnet.py" in latin.files and len(latin.files) == 2  # é in Latin-1 is read as cp437's Θ


def test_utf8_flagged_names_that_are_not_utf8_refuse_the_archive_with_a_message():
    data = _zip_with_raw_name("né.txt", b"n\xff\xfe.txt")  # "né" sets the flag; its bytes are then broken
    with pytest.raises(ArchiveRefused, match="declares UTF-8 file names that are not valid UTF-8"):
        unpack_archive(data, "h.zip", IntakeLimits())


def test_check_accepts_a_zip_and_a_tar_gz_hand_in(tmp_path):
    (tmp_path / "lab2.zip").write_bytes(make_zip({f"lab2/{n}": d for n, d in CORRECT.items()}))
    (tmp_path / "lab2.tar.gz").write_bytes(make_tar({f"a/b/{n}": d for n, d in CORRECT.items()}))
    for name in ("lab2.zip", "lab2.tar.gz"):
        result = cli("check", str(tmp_path / name), "--lab", "cifar-convnet", "--format", "json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["score"] == data["max_score"] - data["pending_points"] and data["submission"] == "lab2"


def test_hostile_archives_are_refused_while_the_rest_of_the_batch_is_graded(tmp_path):
    from grader import api
    from grader.options import RunOptions

    root = tmp_path / "class"
    root.mkdir()
    for name, (make, _) in HOSTILE.items():
        (root / name).write_bytes(make())
    (root / "honest.zip").write_bytes(make_zip(CORRECT))
    batch = api.grade(root, "cifar-convnet", tmp_path / "out", RunOptions(reports=False))
    by_name = {r.submission: r for r in batch.results}
    assert (by_name["honest"].score, by_name["honest"].max_score) == (17, 20)
    assert len(batch.ungradable) == len(HOSTILE)
    for name, (_, reason) in HOSTILE.items():
        result = next(r for r in batch.results if r.student.source.endswith(name))
        assert result.score == 0 and reason in result.checks[0].message, (name, result.checks[0].message)
