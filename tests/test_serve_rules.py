"""The hand-in server's rules, each through the ASGI test client, with no grading worker (uploads
are queued, never graded: these rules are about what is accepted and who may see what).

Who may log in and with what (tokens, signed cookies, CSRF on every form), the headers on every
answer, what an upload may hold (names, archives with traversal, links or bombs, its size while it
streams in), how often (the rate limit) and until when (the due date and a student's extension),
and that no path built from what a request says leaves the class folder.
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from itsdangerous import URLSafeTimedSerializer
from starlette.testclient import TestClient

from tests.serve_kit import ROSTER, csrf_of, hand_in, login, make_class, upload, zipped


@pytest.fixture
def served(tmp_path):
    return make_class(tmp_path)


@pytest.fixture
def client(served):
    with TestClient(served.app(), follow_redirects=False) as client:
        yield client


def stored(served, sid: str = "alice") -> list[int]:
    from grader.serve.store import ClassStore

    return ClassStore(served.root).numbers(sid)


def as_student(client, served, sid: str = "alice"):
    response = login(client, served.tokens[sid])
    assert response.status_code == 303 and response.headers["location"] == "/"
    return client


# --- logging in -------------------------------------------------------------------------------

def test_no_page_and_no_upload_without_a_login(client, served):
    for path in ("/", "/attempts/1", "/attempts/1/feedback.pdf", "/instructor", "/instructor/class.csv",
                 "/instructor/students/alice/attempts/1/report.pdf"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login", path
    status = client.get("/attempts/1/status")
    assert status.status_code == 401 and status.json() == {"error": "log in first"}
    sent = client.post("/upload", files=[("files", ("convnet.py", b"x = 1\n"))])
    assert sent.status_code == 303 and sent.headers["location"] == "/login"
    assert stored(served) == []


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 300, "INSTRUCTOR"])
def test_a_wrong_or_missing_token_is_refused_and_opens_no_session(client, served, token):
    response = login(client, token)
    assert response.status_code == 401
    assert "This is not a token of this class" in response.text
    assert "gradelab_session" not in response.headers.get("set-cookie", "")
    assert client.get("/").headers["location"] == "/login"


def test_a_token_one_character_off_is_refused(client, served):
    token = served.tokens["alice"]
    assert login(client, token[:-1] + ("A" if token[-1] != "A" else "B")).status_code == 401


def test_tokens_are_stored_hashed_only(served):
    stored_text = (served.root / ".gradelab" / "tokens.json").read_text()
    assert (served.root / ".gradelab" / "tokens.json").stat().st_mode & 0o077 == 0
    for token in served.tokens.values():
        assert token not in stored_text
    assert len(json.loads(stored_text)["students"]) == 3


def test_the_session_is_a_signed_httponly_samesite_cookie(client, served):
    response = login(client, served.tokens["alice"])
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "gradelab_session=" in v)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.get("/").status_code == 200


def test_a_forged_cookie_is_no_session(client, served):
    """A cookie naming the instructor, signed with any key but the class's, opens nothing."""
    forged = URLSafeTimedSerializer(b"k" * 32, salt="gradelab-session").dumps(
        {"role": "instructor", "student": "", "csrf": "x", "tv": "0" * 16})
    client.cookies.set("gradelab_session", forged)
    assert client.get("/instructor").headers["location"] == "/login"


def test_a_reissued_token_ends_the_old_tokens_sessions(client, served):
    from grader.serve.roster import Roster, issue

    as_student(client, served)
    issued = issue(Roster.read(served.roster), served.root, reissue=("alice",))
    assert client.get("/").headers["location"] == "/login"
    assert login(client, served.tokens["alice"]).status_code == 401
    (row,) = issued.rows
    assert login(client, row[1]).status_code == 303


def test_the_instructor_and_a_student_each_see_only_their_pages(client, served):
    assert login(client, served.tokens["instructor"]).headers["location"] == "/instructor"
    assert client.get("/").headers["location"] == "/instructor"
    assert client.get("/attempts/1").status_code == 403
    assert client.get("/instructor").status_code == 200
    other = TestClient(client.app, follow_redirects=False)
    as_student(other, served, "bob")
    assert other.get("/instructor").status_code == 403


# --- CSRF and headers -------------------------------------------------------------------------

def test_every_form_needs_its_csrf_token(client, served):
    page = client.get("/login")
    assert client.post("/login", data={"token": served.tokens["alice"]}).status_code == 403
    assert client.post("/login", data={"token": served.tokens["alice"], "csrf": "guess"}).status_code == 403
    assert client.post("/login", data={"token": served.tokens["alice"], "csrf": csrf_of(page.text)},
                       headers={"origin": "https://evil.example"}).status_code == 403
    as_student(client, served)
    files = [("files", (name, data)) for name, data in hand_in("correct")]
    assert client.post("/upload", files=files).status_code == 403
    assert client.post("/upload", data={"csrf": csrf_of(page.text)}, files=files).status_code == 403  # the login form's
    refused = upload(client, hand_in("correct"), origin="https://evil.example")
    assert refused.status_code == 403 and "another site" in refused.text
    assert client.post("/logout").status_code == 403
    assert client.get("/").status_code == 200  # still logged in
    assert stored(served) == []
    assert upload(client, hand_in("correct")).status_code == 303  # the page's own token passes
    assert client.post("/logout", data={"csrf": csrf_of(client.get("/").text)}).headers["location"] == "/login"
    assert client.get("/").headers["location"] == "/login"


def test_every_answer_carries_the_security_headers(client, served):
    as_student(client, served)
    for path in ("/login", "/", "/static/serve.css", "/static/attempt.js", "/attempts/7", "/attempts/7/status",
                 "/nowhere"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    assert client.get("/").headers["cache-control"] == "no-store"


def test_no_page_holds_an_inline_script_or_style(client, served):
    pages = [client.get("/login").text]
    as_student(client, served)
    upload(client, hand_in("correct"))
    pages += [client.get("/").text, client.get("/attempts/1").text]
    for html in pages:
        assert "<script>" not in html and "<style" not in html and " style=" not in html and "onclick" not in html


# --- what an upload may hold ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../convnet.py", "..", "sub/convnet.py", "..\\convnet.py", ".bashrc",
                                  "notes.exe"])
def test_a_file_name_that_is_not_a_plain_name_of_the_lab_is_refused(client, served, name):
    as_student(client, served)
    response = upload(client, [(name, b"import os\n"), ("answers.yaml", b"a: 1\n")])
    assert response.status_code == 400 and "Not stored" in response.text
    assert stored(served) == []


def test_a_file_name_with_a_control_character_is_refused(client, served):
    """Sent as raw bytes: a client library would escape it, a hostile client does not."""
    as_student(client, served)
    token, boundary = csrf_of(client.get("/").text), "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"conv\x1b[2Jnet.py\"\r\n"
            f"Content-Type: text/x-python\r\n\r\nimport os\n\r\n--{boundary}--\r\n").encode()
    response = client.post("/upload", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 400 and "cannot hold control characters" in response.text
    assert "\x1b" not in response.text
    assert stored(served) == []


def test_an_archive_with_a_path_out_of_the_hand_in_is_refused_whole(client, served):
    as_student(client, served)
    response = upload(client, [zipped({"convnet.py": b"x = 1\n", "../../etc/cron.d/evil": b"* * * * * root sh\n"})])
    assert response.status_code == 422 and "Not stored" in response.text
    assert stored(served) == []


def test_a_zip_bomb_is_refused_before_it_is_stored(client, served):
    as_student(client, served)
    name, data = zipped({"convnet.py": b"x = 1\n", "data.bin": b"\0" * (60 * 1024 * 1024)})
    assert len(data) < 200_000
    response = upload(client, [(name, data)])
    assert response.status_code == 422 and "Not stored" in response.text
    assert stored(served) == []


def test_an_archive_holding_a_link_is_refused(client, served):
    as_student(client, served)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("answers.yaml")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    response = upload(client, [("handin.tar.gz", buffer.getvalue())])
    assert response.status_code == 422 and stored(served) == []


def test_a_zip_a_notebook_or_the_files_one_by_one_are_each_an_attempt(client, served):
    from grader.serve.store import ClassStore

    as_student(client, served)
    assert upload(client, [zipped(hand_in("correct"), "My Work.zip")]).status_code == 303
    notebook = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    assert upload(client, [("convnet.ipynb", notebook)]).status_code == 303
    assert upload(client, hand_in("correct")).status_code == 303
    store = ClassStore(served.root)
    assert [(m.number, m.kind) for m in store.attempts("alice")] == [(1, "archive"), (2, "notebook"), (3, "files")]
    assert store.upload_files("alice", 1) == {"My_Work.zip": zipped(hand_in("correct"), "My Work.zip")[1]}
    # the top of the student's folder holds the latest upload, what `gradelab grade DIR` reads
    assert sorted(p.name for p in (served.root / "alice").iterdir()) == ["answers.yaml", "attempts", "convnet.py"]


def test_an_upload_over_the_size_cap_is_refused(served):
    with TestClient(served.app(upload_mb=0.05), follow_redirects=False) as client:
        as_student(client, served)
        response = upload(client, [("convnet.py", b"#" * 60_000)])
        assert response.status_code == 413 and "larger than the 50 kB this course accepts" in response.text
    assert stored(served) == []


def test_the_size_cap_holds_while_the_body_streams_in(served):
    """A body sent without its length (chunked) is cut off once the cap is passed: the server
    stops reading there, it does not read the rest first."""
    app = served.app(upload_mb=0.2)
    with TestClient(app, follow_redirects=False) as client:
        as_student(client, served)
        token = csrf_of(client.get("/").text)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())

    boundary = "----gradelab"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"convnet.py\"\r\n"
            "Content-Type: text/x-python\r\n\r\n").encode()
    chunk, chunks = b"#" * 65_536, 200  # 13 MB in all
    read, answer = [], []

    async def receive():
        if not read:
            read.append(head)
            return {"type": "http.request", "body": head, "more_body": True}
        read.append(chunk)
        return {"type": "http.request", "body": chunk, "more_body": len(read) <= chunks}

    async def send(message):
        answer.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/upload", "raw_path": b"/upload", "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {},
             "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode()),
                         (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                         (b"transfer-encoding", b"chunked")]}
    with TestClient(app):  # the app's lifespan (sessions, queue) while it is called directly
        anyio.run(app, scope, receive, send)
    assert answer[0]["status"] == 413
    assert sum(len(part) for part in read) < 300_000  # 0.2 MB and the one chunk that passed it
    assert stored(served) == []


# --- how often and until when -----------------------------------------------------------------

def test_past_the_attempts_per_hour_an_upload_gets_429_and_says_when_to_come_back(served):
    with TestClient(served.app(attempts_per_hour=2), follow_redirects=False) as client:
        as_student(client, served)
        assert upload(client, hand_in("correct")).status_code == 303
        assert upload(client, hand_in("correct")).status_code == 303
        refused = upload(client, hand_in("correct"))
        assert refused.status_code == 429
        assert "You have uploaded 2 times in the last hour" in refused.text and "You can upload again at" in refused.text
        assert 3000 < int(refused.headers["retry-after"]) <= 3601
        other = TestClient(client.app, follow_redirects=False)
        as_student(other, served, "bob")  # the limit is per student
        assert upload(other, hand_in("correct")).status_code == 303
    assert stored(served) == [1, 2]


def test_after_the_due_date_uploads_are_refused_unless_the_student_has_an_extension(tmp_path):
    past = datetime.now(UTC) - timedelta(hours=1)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="minutes")
    served = make_class(tmp_path, ROSTER + f"dave,Dave Evans,dave@example.org,{later}\n")
    with TestClient(served.app(due=past), follow_redirects=False) as client:
        as_student(client, served)
        assert "Uploads are closed: the due date has passed." in client.get("/").text
        refused = upload(client, hand_in("correct"))
        assert refused.status_code == 403 and "The due date" in refused.text and "has passed" in refused.text
        for sid in ("carol", "dave"):  # +2d, and a date-time of their own
            other = TestClient(client.app, follow_redirects=False)
            as_student(other, served, sid)
            assert "your extension" in other.get("/").text
            assert upload(other, hand_in("correct")).status_code == 303, sid
    assert stored(served, "alice") == [] and stored(served, "carol") == [1] and stored(served, "dave") == [1]


# --- paths built from a request ---------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/instructor/students/../attempts/1", "/instructor/students/..%2F.gradelab/attempts/1",
    "/instructor/students/.gradelab", "/instructor/students/alice%2F..%2Fbob/attempts/1/report.pdf",
    "/instructor/students/alice/attempts/1/..%2F..%2F..%2F.gradelab%2Fsecret.key",
    "/instructor/students/alice/attempts/-1", "/instructor/students/alice/attempts/1/result.json",
    "/static/..%2F..%2F..%2Fgrader%2Fserve%2Fapp.py", "/attempts/1%2F..%2F..%2F.gradelab%2Fsecret.key",
])
def test_no_path_built_from_a_request_leaves_the_class_folder(client, served, path):
    as_student(client, served)
    upload(client, hand_in("correct"))
    teacher = TestClient(client.app, follow_redirects=False)
    login(teacher, served.tokens["instructor"])
    for who in (teacher, client):
        response = who.get(path)
        assert response.status_code in (403, 404), (path, response.status_code)
        assert (served.root / ".gradelab" / "secret.key").read_bytes() not in response.content
        assert b"Starlette" not in response.content and b"create_app" not in response.content


# --- the commands -----------------------------------------------------------------------------

def test_roster_tokens_prints_a_csv_to_mail_merge_once_per_token(tmp_path):
    import csv

    from grader.serve.roster import load_tokens
    from tests.conftest import cli

    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    first = cli("roster", "tokens", str(roster), "--class", str(tmp_path / "class"))
    assert first.exit_code == 0, first.output
    rows = list(csv.DictReader(io.StringIO(first.stdout)))
    assert [(r["id"], r["name"], r["email"]) for r in rows] == [
        ("alice", "Alice Martin", "alice@example.org"), ("bob", "Bob Chen", "bob@example.org"),
        ("carol", "Carol Diaz", "carol@example.org")]
    assert len({r["token"] for r in rows}) == 3 and all(len(r["token"]) >= 32 for r in rows)
    assert "Instructor token (shown once, keep it):" in first.stderr
    again = cli("roster", "tokens", str(roster), "--class", str(tmp_path / "class"))
    assert again.stdout == "id,name,email,token\n" and "3 student(s) already had a token" in again.stderr
    reissued = cli("roster", "tokens", str(roster), "--class", str(tmp_path / "class"), "--reissue", "bob")
    (bob,) = list(csv.DictReader(io.StringIO(reissued.stdout)))
    assert bob["id"] == "bob" and bob["token"] != rows[1]["token"]
    assert set(load_tokens(tmp_path / "class").students) == {"alice", "bob", "carol"}


@pytest.mark.parametrize("args, said", [
    (["--due", "next friday"], "--due 'next friday' is not accepted"),
    (["--upload-mb", "0"], "--upload-mb 0.0 is not accepted"),
])
def test_serve_refuses_a_rule_it_cannot_apply_in_one_line(tmp_path, args, said):
    from tests.conftest import cli

    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    result = cli("serve", "--lab", "cifar-convnet", "--class", str(tmp_path / "class"), "--roster", str(roster), *args)
    assert result.exit_code == 2 and said in result.output


def test_a_roster_with_an_unsafe_id_is_refused_before_anything_is_issued(tmp_path):
    from tests.conftest import cli

    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,email\n../../etc,Eve,eve@example.org\n")
    result = cli("roster", "tokens", str(roster), "--class", str(tmp_path / "class"))
    assert result.exit_code == 2 and "line 2: id '../../etc' is not accepted" in result.output
    assert not (tmp_path / "class" / ".gradelab" / "tokens.json").exists()
