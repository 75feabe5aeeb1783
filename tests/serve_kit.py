"""Driving the hand-in server from tests: a class (roster, tokens, folder), its app, and what a
browser does (log in with the form's CSRF token, upload, wait for the feedback).

Grading in these tests uses the cifar-convnet lab (static checks, no training) with short limits;
a server started with ``workers=0`` queues uploads and grades nothing, which is what most rules
need (they are about what is accepted, not about what is graded).
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import CIFAR_SUBMISSIONS, FAST_LIMITS

ROSTER = ("id,name,email,extension\n"
          "alice,Alice Martin,alice@example.org,\n"
          "bob,Bob Chen,bob@example.org,\n"
          "carol,Carol Diaz,carol@example.org,+2d\n")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class ServedClass:
    root: Path       # the class folder
    roster: Path
    tokens: dict[str, str]  # id → token, and "instructor"

    def app(self, ray: str | None = None, **settings):
        """The server's app for this class (its lifespan starts when a client enters it); ``ray``:
        grade on the Ray cluster at this address (``local``: the one this process is connected to,
        else one started here)."""
        from grader.api import load_lab
        from grader.lab.manifest import LimitsOverride
        from grader.options import RunOptions
        from grader.serve.app import create_app
        from grader.serve.settings import ServeSettings

        options = RunOptions(limits=LimitsOverride(**FAST_LIMITS), train=False, reports=False, ray=ray)
        settings = ServeSettings(class_dir=self.root, roster=self.roster, **{"workers": 0, **settings})
        return create_app(load_lab("cifar-convnet"), options, settings)


def make_class(tmp: Path, roster: str = ROSTER) -> ServedClass:
    """A roster, its tokens issued as ``gradelab roster tokens`` issues them, an empty class folder."""
    from grader.serve.roster import Roster, issue

    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "roster.csv"
    path.write_text(roster, encoding="utf-8")
    issued = issue(Roster.read(path), tmp / "class")
    tokens = {student.id: token for student, token in issued.rows}
    tokens["instructor"] = issued.instructor_token
    return ServedClass(tmp / "class", path, tokens)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def login(client, token: str):
    """The login form as a browser sends it: its page first (which sets the form's cookie)."""
    page = client.get("/login")
    return client.post("/login", data={"token": token, "csrf": csrf_of(page.text)})


def upload(client, files: list[tuple[str, bytes]], **headers: str):
    """The home page's upload form, with the CSRF token of the page."""
    token = csrf_of(client.get("/").text)
    return client.post("/upload", data={"csrf": token}, headers=headers,
                       files=[("files", (name, data, "application/octet-stream")) for name, data in files])


def hand_in(name: str) -> list[tuple[str, bytes]]:
    """A bundled cifar-convnet hand-in as its two files, one by one."""
    folder = CIFAR_SUBMISSIONS / name
    return [(f, (folder / f).read_bytes()) for f in ("convnet.py", "answers.yaml")]


def zipped(files: list[tuple[str, bytes]] | dict[str, bytes], name: str = "handin.zip") -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in (files.items() if isinstance(files, dict) else files):
            zf.writestr(member, data)
    return name, buffer.getvalue()


def wait_graded(client, number: int, timeout_s: float = 90.0) -> dict:
    """Polls the attempt's status as the waiting page does, until its feedback is in."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(f"/attempts/{number}/status").json()
        if status.get("state") == "done":
            return status
        assert time.monotonic() < deadline, f"attempt {number} not graded after {timeout_s:.0f} s: {status}"
        time.sleep(0.2)
