"""Every parser of hand-in content that runs in the grader's own process, before any sandbox,
gives a result in bounded time on hostile input: an answer sheet (YAML), an archive's index (zip,
tar), the key a hand-in's name folds to, the similarity tokeniser. A result is a value or the
hand-in's own fault with its message, never another exception (issue 26; the notebook's parsers
are in test_intake_hostile_parsers.py)."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
import warnings
import zipfile

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from grader.intake.archives import ArchiveRefused, unpack_archive
from grader.intake.identity import MAX_NAME, digest8, key_for
from grader.lab.manifest import IntakeLimits, InterfaceSpec, SimilaritySettings
from grader.similarity.fingerprints import CodeIndex
from grader.similarity.written import words
from grader.submission import parse_answer_sheet

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INTERFACE = InterfaceSpec.model_validate({"module": "lab.py", "answers": [
    {"path": "q1", "type": "int"}, {"path": "layers.conv1", "type": "list[float]"}, {"path": "why", "type": "str"},
    {"path": "pick", "type": "choice", "choices": ["sgd", "adam"]}, {"path": "ok", "type": "bool"}]})
FIELDS = {"q1", "layers.conv1", "why", "pick", "ok"}


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


# --- answer sheets (YAML) -------------------------------------------------------------------

def test_a_base60_number_of_many_parts_is_a_problem_on_the_sheet_not_a_value_error():
    """`why: 1:59:59:…` built an integer of 10⁴ digits; printing it in the field's message raised
    ValueError out of the parser (and, for an int field, out of writing results.json)."""
    (values, problems), took = timed(parse_answer_sheet, b"why: 1" + b":59" * 20_000 + b"\nq1: 3\n", INTERFACE)
    assert took < 3
    assert values == {} and problems["why"] == (
        "answers.yaml is not valid YAML at line 1: a base-60 number (1:30:00) of more than 5 parts")


def test_a_short_base60_number_is_still_read_as_yaml_reads_it():
    values, problems = parse_answer_sheet(b"q1: 1:30\n", INTERFACE)
    assert values == {"q1": 90} and "q1" not in problems


def test_a_hexadecimal_integer_of_a_thousand_digits_is_refused_with_the_reason():
    values, problems = parse_answer_sheet(b"why: !!int 0x" + b"f" * 1000 + b"\n", INTERFACE)
    assert values == {}
    assert set(problems.values()) == {"answers.yaml holds a number of more than 256 bits: no answer is that large"}


@pytest.mark.parametrize(("sheet", "problem"), [
    (b"q1: " + b"[" * 20_000 + b"]" * 20_000, "answers.yaml is nested too deeply"),
    (b"a: &x [1, 2]\nq1: *x\n", "answers.yaml is not valid YAML at line 2: aliases (*name) are not accepted in an answer sheet"),
    (b"q1: !!python/object/apply:os.system [ls]\n", "answers.yaml is not valid YAML at line 1: could not determine a "
                                                    "constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    (b"q1: " + b"9" * 5000 + b"\n", "answers.yaml holds a value that cannot be read as a number"),
    (b"? [1, 2]\n: 3\n", "answers.yaml is not valid YAML at line 1: found unhashable key"),
    (b"x" * (257 * 1024), "answers.yaml is larger than 256 KiB"),
    # PyYAML reads the first character of an empty !!float or !!int and raised IndexError (found by
    # the property test below)
    (b"!!float ", "answers.yaml is not valid YAML at line 1: a number tag (!!int, !!float) with no number after it"),
    (b"q1: !!int _\n", "answers.yaml is not valid YAML at line 1: a number tag (!!int, !!float) with no number after it"),
])
def test_each_hostile_sheet_is_that_hand_ins_problem_with_its_reason(sheet, problem):
    (values, problems), took = timed(parse_answer_sheet, sheet, INTERFACE)
    assert took < 5
    assert values == {} and problems == dict.fromkeys(FIELDS, problem)


YAML_PIECES = st.sampled_from([
    "[", "]", "{", "}", "- ", "? ", ": ", ",", "\n", "  ", "\t", "&a ", "*a ", "!!python/object ", "!!binary ",
    "!!int ", "!!float ", "!!set ", "!!timestamp ", "<<: ", "q1", "why", "layers", ".conv1", "1", ":59", "0x", "f",
    "9", ".inf", ".nan", "'", '"', "\\", "#", "|", ">", "%YAML 1.1\n", "---\n", "...\n", "\ufeff", "\x00", "é",
    "\ud800", "\u202e", "2001-12-14t21:59:43.10-05:00", "yes", "~"])


@PROPERTY
@given(st.lists(st.tuples(YAML_PIECES, st.integers(1, 2000)), min_size=1, max_size=6))
def test_any_sheet_gives_each_field_a_value_or_a_problem_in_bounded_time(pieces):
    """Generated sheets (deep nesting, aliases, odd tags, huge scalars and numbers): every field
    gets a value or a printable problem within seconds, and the values can be written as JSON."""
    data = "".join(piece * count for piece, count in pieces).encode("utf-8", "surrogatepass")
    (values, problems), took = timed(parse_answer_sheet, data, INTERFACE)
    assert took < 5
    assert set(values) | set(problems) == FIELDS and not set(values) & set(problems)
    assert all(isinstance(p, str) and p.isprintable() for p in problems.values())
    json.dumps(values)  # a result file holds them


# --- archive indexes (zip, tar) -------------------------------------------------------------

def make_zip(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": duplicates are among the hostile inputs
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def make_tar(entries: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def refusal(data: bytes, label: str) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(ArchiveRefused) as refused:
        unpack_archive(data, label, IntakeLimits())
    return str(refused.value), time.monotonic() - started


def test_a_member_thirty_thousand_folders_deep_is_refused_at_once():
    """Judging the folders of one such member took 13 s (each folder prefix joined afresh)."""
    message, took = refusal(make_zip([("a/" * 30_000 + "x.py", b"1")]), "deep.zip")
    assert took < 2
    assert message == "deep.zip was not unpacked: it holds a name longer than 1024 characters (" + "a/" * 20 + "…)"


def test_a_tar_member_of_a_pax_path_three_thousand_folders_deep_is_refused_at_once():
    message, took = refusal(make_tar([("a/" * 3000 + "x.py", b"1")]), "deep.tar")
    assert took < 2 and message.startswith("deep.tar was not unpacked: it holds a name longer than 1024 characters")


def test_a_pax_header_of_digits_is_refused_before_tarfile_searches_it():
    """Python 3.11.7's tarfile searches a pax header with a regex in quadratic time
    (CVE-2024-6232): 32 kB of digits took 3 s, 20 MB would take days."""
    payload = b"1" * 64 * 1024
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(payload)
    member = tarfile.TarInfo("x.py")
    member.size = 1
    data = (header.tobuf(format=tarfile.USTAR_FORMAT) + payload + b"\0" * (-len(payload) % 512)
            + member.tobuf(format=tarfile.USTAR_FORMAT) + b"1" + b"\0" * 511 + b"\0" * 1024)
    message, took = refusal(data, "pax.tar")
    assert took < 2
    assert message == ("pax.tar was not unpacked: an extended header holds a number of more than 64 digits (no "
                       "length, time or size needs one)")


def test_a_pax_header_of_a_megabyte_of_short_numbers_is_read_at_once():
    """Runs of 64 digits at most: the quadratic search costs little (macOS keeps files'
    extended attributes in pax headers, tens of kB of them, which must still unpack)."""
    record = b"90 LIBARCHIVE.xattr.user.a=" + b"1" * 62 + b"\n"
    assert len(record) == 90
    payload = record * (1000 * 1024 // 90)
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(payload)
    member = tarfile.TarInfo("lab.py")
    member.size = 1
    data = (header.tobuf(format=tarfile.USTAR_FORMAT) + payload + b"\0" * (-len(payload) % 512)
            + member.tobuf(format=tarfile.USTAR_FORMAT) + b"1" + b"\0" * 511 + b"\0" * 1024)
    handin, took = timed(unpack_archive, data, "xattrs.tar", IntakeLimits())
    assert took < 3 and handin.files == {"lab.py": b"1"}


def test_a_zip_of_a_hundred_thousand_empty_files_is_refused_from_its_index():
    message, took = refusal(make_zip([(f"{i}", b"") for i in range(100_000)]), "many.zip")
    assert took < 3
    assert message == "many.zip was not unpacked: it holds 100000 files, more than the 2000 a hand-in may hold"


def test_a_tar_of_ten_thousand_files_is_refused_from_its_headers():
    message, took = refusal(make_tar([(f"{i}", b"") for i in range(10_000)], fmt=tarfile.USTAR_FORMAT), "many.tar")
    assert took < 2
    assert message == ("many.tar was not unpacked: it holds more than 4100 entries, more than the 2000 files a "
                       "hand-in may hold")


def test_a_file_name_longer_than_a_file_system_allows_is_refused():
    message, _ = refusal(make_zip([("work/" + "é" * 200 + ".py", b"1")]), "long.zip")
    assert message == "long.zip was not unpacked: it holds a file or folder name longer than 255 bytes (work/" + \
        "é" * 35 + "…)"


def test_two_entries_over_one_member_are_refused_or_read_once():
    """An overlapping zip (two index entries over one local member, the kernel of a zip bomb)."""
    data = bytearray(make_zip([("a.py", b"x = 1\n" * 100), ("b.py", b"y = 2\n")]))
    second = data.rindex(b"PK\x01\x02")
    data[second + 42:second + 46] = (0).to_bytes(4, "little")  # b.py's entry now points at a.py's member
    try:
        handin = unpack_archive(bytes(data), "overlap.zip", IntakeLimits())
    except ArchiveRefused as exc:
        assert str(exc).startswith("overlap.zip was not unpacked: it is damaged")
    else:
        assert sum(len(d) for d in handin.files.values()) <= 2 * 600


NAME_PIECES = st.sampled_from(["a/", "../", "/", "\\", "./", "é", "\u0301", "\u202e", "\u200b", "__MACOSX/", "._",
                               ".", "x" * 100, "C:", "~", " ", "\n", "\x1b[2J", "😀", "lab.py", "answers.yaml"])


@PROPERTY
@given(st.lists(st.lists(st.tuples(NAME_PIECES, st.integers(1, 400)), min_size=1, max_size=4), min_size=1, max_size=30),
       st.sampled_from(["zip", "tar", "tar.gz"]))
def test_any_archive_index_is_unpacked_or_refused_with_its_reason_in_bounded_time(members, kind):
    names = ["".join(piece * count for piece, count in member) for member in members]
    entries = [(name, name.encode("utf-8")[:64]) for name in names]
    try:
        if kind == "zip":
            data = make_zip(entries)
        else:
            data = make_tar(entries)
            if kind == "tar.gz":
                import gzip
                data = gzip.compress(data)
    except (ValueError, UnicodeError, OverflowError):  # a name the writing library itself cannot store
        assume(False)
    label = f"hand-in.{kind}"
    started = time.monotonic()
    try:
        handin = unpack_archive(data, label, IntakeLimits())
    except ArchiveRefused as exc:
        assert str(exc).startswith(f"{label} was not unpacked: ") and str(exc).isprintable()
    else:
        assert all(not name.startswith("/") and ".." not in name.split("/") for name in handin.files)
    assert time.monotonic() - started < 3


# --- the key a hand-in's name folds to ------------------------------------------------------

def test_a_name_holding_a_lone_surrogate_gets_a_key():
    """A lone surrogate (a JSON "\\ud800" in an LMS export) raised UnicodeEncodeError in digest8."""
    assert key_for("\ud800") == f"hand-in-{digest8(chr(0xD800))}" and re.fullmatch(r"hand-in-[0-9a-f]{8}", key_for("\ud800"))
    assert key_for("Ana\ud800", lms_id="\udfff12").startswith("Ana_12-")


def test_a_name_read_from_disk_keeps_the_key_it_had():
    """Undecodable bytes (surrogate escapes) hash as before: a key does not change between runs."""
    assert digest8("a\udcff") == "8dd06b5a"


KEY = re.compile(r"[A-Za-z0-9._-]+")


@PROPERTY
@given(st.text(alphabet=st.characters(codec=None), max_size=50), st.integers(1, 20_000),
       st.one_of(st.none(), st.text(max_size=30)))
def test_any_name_folds_to_a_safe_short_key_in_bounded_time(piece, repeat, lms_id):
    """Long names, combining marks, right-to-left and zero-width marks, surrogates: a key of
    file-name letters, short, the same every time."""
    name = piece * repeat
    started = time.monotonic()
    key = key_for(name, lms_id)
    assert time.monotonic() - started < 2
    assert KEY.fullmatch(key) and key == key_for(name, lms_id)
    if lms_id is None:
        assert len(key) <= MAX_NAME + 9


# --- the similarity tokeniser (Pygments, in the grader's process) ---------------------------

PLAIN = "".join(f"def f{i}(x, y):\n    total = x * {i} + y\n    return [total for _ in range(y)]\n\n" for i in range(20))


@pytest.mark.parametrize("code", [
    "(" * 32_000, '"""' * 10_000, "'" * 32_000, "\\\n" * 16_000, 'f"{' * 10_000, "@d\n" * 10_000,
    "\x01\x02\x7f" * 10_000, "\ud800" * 1000, "x" * 32_000 + "\n" + "é" * 32_000,
])
def test_the_tokeniser_fingerprints_hostile_code_in_bounded_time(code):
    started = time.monotonic()
    index = CodeIndex([code, PLAIN], SimilaritySettings(), [])
    assert time.monotonic() - started < 5
    assert len(index.docs) == 2 and index.docs[1].hashes


def test_written_answers_are_split_into_words_in_linear_time():
    text = ("a'" * 200_000) + ("é" * 200_000) + ("_'" * 200_000)
    found, took = timed(words, text)
    assert took < 2 and found[:2] == ["a'a", "a'a"]


# --- LMS download names (Canvas, Moodle): the file part is the student's ---------------------

LMS_PIECES = st.sampled_from(["_", "1", "9" * 50, "_LATE", "x", "-", "-1", ".py", ".", "é", "\n", "assignsubmission_file",
                              "_assignsubmission_", "text.html", " ", "\x00", "/"])


@PROPERTY
@given(st.lists(st.tuples(LMS_PIECES, st.integers(1, 3000)), min_size=1, max_size=8))
def test_any_lms_entry_name_is_matched_or_left_out_in_bounded_time(pieces):
    from grader.intake import canvas, moodle
    from grader.intake.reader import printable

    name = "".join(piece * count for piece, count in pieces)[:65_535]  # a zip name's most
    started = time.monotonic()
    match = canvas.ENTRY.match(name) or canvas.TEXT_ENTRY.match(name)
    if match:
        assert match["user"].isdigit()
        canvas.original_name(match["file"], {"convnet.py", "answers.yaml"})
    moodle.is_entry(name)
    assert printable(name).isprintable()
    assert time.monotonic() - started < 2
