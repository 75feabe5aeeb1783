"""gradelab as an LTI 1.3 tool, against a platform this project did not write (``lti1p3platform``
from PyPI, served on 127.0.0.1 by ``tests/lti_platform.py``): the OIDC launch, its refusals, the
course's members through NRPS, and grades passed back through AGS (PendingManual, then
FullyGraded; a platform down twice loses nothing and gets the score once).

The tool runs as ``gradelab serve`` runs it (the app under uvicorn, on loopback), because the
platform calls it back (its keyset). Grading is not the subject here: an attempt's result is
written into the class folder as a grading worker writes it, followed by the same call the worker
makes (``grader.serve.lti.scores.note``).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import uvicorn
import yaml

from grader import api
from grader.options import RunOptions
from grader.serve.lti import scores
from grader.serve.lti.config import Platform as Registration
from grader.serve.lti.config import save_platform
from tests.lti_platform import Platform, free_port, new_pem
from tests.serve_kit import make_class

ESSAY = Path(__file__).parent / "labs" / "essay"
_FIELD = re.compile(r'name="(\w+)" value="([^"]*)"')
_ACTION = re.compile(r'action="([^"]+)"')


class Tool:
    """``gradelab serve`` of one class, in a thread, and the platform it is registered with."""

    def __init__(self, tmp: Path, lab: str | Path = "cifar-convnet") -> None:
        from grader.serve.app import create_app
        from grader.serve.settings import ServeSettings

        self.served = make_class(tmp)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.platform = Platform(self.url).__enter__()
        save_platform(self.served.root / ".gradelab", Registration(**self.platform.registration()))
        settings = ServeSettings(class_dir=self.served.root, roster=self.served.roster, workers=0,
                                 public_url=self.url, port=self.port)
        self.app = create_app(api.load_lab(lab), RunOptions(reports=False, train=False), settings)
        self.app.state.lti.poll_s, self.app.state.lti.backoff_s = 0.1, 0.2
        self.room = self.app.state.classroom
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        threading.Thread(target=self.server.run, daemon=True).start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "the tool did not start"
            time.sleep(0.05)

    @property
    def lti(self) -> Any:
        return self.app.state.lti

    def close(self) -> None:
        self.server.should_exit = True
        self.platform.__exit__()
        deadline = time.monotonic() + 15
        while self.server.started and not getattr(self.server, "shutdown_done", True) and time.monotonic() < deadline:
            time.sleep(0.05)

    def preflight(self, user: str) -> tuple[requests.Session, str, dict[str, str]]:
        """Login initiation through the platform's authorization: the launch form, not sent yet."""
        s = requests.Session()
        page = s.get(f"{self.platform.url}/launch", params={"user": user}, timeout=10)
        assert page.status_code == 200, page.text
        return s, _ACTION.search(page.text).group(1), dict(_FIELD.findall(page.text))

    def launch(self, user: str) -> requests.Session:
        s, action, form = self.preflight(user)
        answer = s.post(action, data=form, timeout=10)
        assert answer.status_code == 200, answer.text
        return s


@pytest.fixture
def tool(tmp_path):
    made = Tool(tmp_path)
    yield made
    made.close()


def refused(tool: Tool, user: str, change) -> requests.Response:
    """A launch whose id_token was replaced by ``change(claims of the real one)`` → a token."""
    s, action, form = tool.preflight(user)
    claims = jwt.decode(form["id_token"], options={"verify_signature": False})
    return s.post(action, data={**form, "id_token": change(claims)}, timeout=10)


def test_a_student_launch_lands_on_their_page_with_a_session_and_an_id_kept_from_the_roster(tool):
    s = tool.launch("u-alice")
    home = s.get(f"{tool.url}/", timeout=10)
    assert home.status_code == 200 and "Alice Martin" in home.text
    assert s.get(f"{tool.url}/instructor", timeout=10, allow_redirects=False).status_code == 403
    member = tool.lti.members.by_id("alice")  # the roster's row with her email: its id kept
    assert member is not None and member.stamp.startswith("lti:")


def test_a_second_platform_user_with_a_classmates_email_does_not_get_her_id(tool):
    tool.launch("u-alice")
    s, action, form = tool.preflight("u-zoe")
    claims = jwt.decode(form["id_token"], options={"verify_signature": False})
    forged = tool.platform.sign({**claims, "email": "alice@example.org"})  # Zoé set Alice's email in the LMS
    assert s.post(action, data={**form, "id_token": forged}, timeout=10).status_code == 200
    home = s.get(f"{tool.url}/", timeout=10).text
    assert "Zoé Nguyen" in home and "Alice Martin" not in home
    assert tool.lti.members.by_id("alice").name == "Alice Martin"


def test_a_student_of_the_course_not_in_the_roster_gets_a_stable_id(tool):
    s = tool.launch("u-zoe")
    assert "Zoé Nguyen" in s.get(f"{tool.url}/", timeout=10).text
    ids = [m.id for m in tool.lti.members.data.members.values() if m.name == "Zoé Nguyen"]
    tool.launch("u-zoe")
    assert [m.id for m in tool.lti.members.data.members.values() if m.name == "Zoé Nguyen"] == ids
    assert re.fullmatch(r"lti-[0-9a-f]{12}", ids[0])


def test_an_instructor_launch_lands_on_the_instructor_pages(tool):
    s = tool.launch("u-teacher")
    page = s.get(f"{tool.url}/instructor", timeout=10)
    assert page.status_code == 200 and "Alice Martin" in page.text


def test_the_course_members_are_read_through_nrps_and_merged_with_the_roster(tool):
    tool.launch("u-teacher")  # names the membership service; the read runs after it, and again here
    assert tool.lti.read_roster() == 5
    roster = tool.room.roster
    assert {"alice", "bob", "carol"} <= set(roster.students)  # the CSV's rows stay
    carl = [s for s in roster if s.name == "Carl Old"]
    assert len(carl) == 1 and carl[0].id.startswith("lti-")
    assert tool.lti.read_roster() == 5 and len([s for s in tool.room.roster if s.name == "Carl Old"]) == 1
    assert tool.lti.members.by_id("bob") is not None  # matched by student number: the CSV's id and row kept
    assert roster.get("bob").name == "Bob Chen"
    assert not any(s.name == "Prof. Ada" for s in roster)  # an instructor is not a student


def test_the_tool_publishes_its_keyset_and_a_rotated_key_joins_it(tool):
    first = requests.get(f"{tool.url}/lti/jwks.json", timeout=10).json()["keys"]
    assert len(first) == 1 and first[0]["kty"] == "RSA" and "d" not in first[0]
    tool.lti.keys.rotate()
    second = requests.get(f"{tool.url}/lti/jwks.json", timeout=10).json()["keys"]
    assert len(second) == 2 and first[0]["kid"] in {k["kid"] for k in second}
    tool.launch("u-teacher")
    assert tool.lti.read_roster() == 5  # the platform verifies an assertion signed by the new key


# --- refusals ---------------------------------------------------------------------------------

def test_a_token_signed_by_another_key_with_the_platforms_kid_is_refused(tool):
    other, _ = new_pem()
    kid = tool.platform.conf().get_registration().get_kid()
    answer = refused(tool, "u-alice", lambda c: jwt.encode(c, other, algorithm="RS256", headers={"kid": kid}))
    assert answer.status_code == 403 and "signature does not verify" in answer.text, re.sub(r"<[^>]+>", "", answer.text)


def test_a_token_with_an_unknown_key_id_is_refused(tool):
    other, _ = new_pem()
    answer = refused(tool, "u-alice", lambda c: jwt.encode(c, other, algorithm="RS256", headers={"kid": "nope"}))
    assert answer.status_code == 403 and "a key the platform does not publish" in answer.text


def test_an_expired_token_is_refused_beyond_the_skew(tool):
    def expired(c: dict) -> str:
        return tool.platform.sign({**c, "iat": int(time.time()) - 900, "exp": int(time.time()) - 120}, expiration=0)
    answer = refused(tool, "u-alice", expired)
    assert answer.status_code == 403 and "the token has expired" in answer.text


def test_a_token_a_little_past_its_expiry_passes_within_the_skew(tool):
    def late(c: dict) -> str:
        return tool.platform.sign({**c, "iat": int(time.time()) - 300, "exp": int(time.time()) - 20}, expiration=0)
    assert refused(tool, "u-alice", late).status_code == 200


def test_a_token_for_another_tool_is_refused(tool):
    answer = refused(tool, "u-alice", lambda c: tool.platform.sign({**c, "aud": "another-tool", "azp": "another-tool"}))
    assert answer.status_code == 403 and "the token is for another tool (aud)" in answer.text


def test_a_token_from_an_unknown_deployment_is_refused(tool):
    key = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
    answer = refused(tool, "u-alice", lambda c: tool.platform.sign({**c, key: "deployment-2"}))
    assert answer.status_code == 403 and "the deployment is not registered" in answer.text


def test_a_replayed_launch_is_refused_its_state_used_once(tool):
    s, action, form = tool.preflight("u-alice")
    assert s.post(action, data=form, timeout=10).status_code == 200
    again = s.post(action, data=form, timeout=10)
    assert again.status_code == 403


def test_a_replayed_nonce_under_a_fresh_state_is_refused(tool):
    s, action, old = tool.preflight("u-alice")
    assert s.post(action, data=old, timeout=10).status_code == 200
    s2, _, fresh = tool.preflight("u-alice")
    answer = s2.post(action, data={**fresh, "id_token": old["id_token"]}, timeout=10)
    assert answer.status_code == 403 and "nonce is not the one issued" in answer.text


def test_a_launch_without_the_browsers_state_cookie_is_refused(tool):
    _, action, form = tool.preflight("u-alice")
    answer = requests.post(action, data=form, timeout=10)
    assert answer.status_code == 403 and "did not start in this browser" in answer.text


def test_a_launch_naming_a_score_service_off_the_platform_is_refused(tool):
    key = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"

    def elsewhere(c: dict) -> str:
        return tool.platform.sign({**c, key: {**c[key], "lineitem": "http://127.0.0.2:9/lineitems/other-student"}})
    answer = refused(tool, "u-alice", elsewhere)
    assert answer.status_code == 403 and "a service URL is not on the platform" in answer.text


def test_token_login_still_works_beside_lti(tool):
    from tests.serve_kit import csrf_of

    s = requests.Session()
    page = s.get(f"{tool.url}/login", timeout=10)
    home = s.post(f"{tool.url}/login", data={"token": tool.served.tokens["bob"], "csrf": csrf_of(page.text)},
                  headers={"Origin": tool.url}, timeout=10)
    assert home.status_code == 200 and "Bob Chen" in home.text


# --- grades -----------------------------------------------------------------------------------

@pytest.fixture
def essay_tool(tmp_path):
    made = Tool(tmp_path, ESSAY)
    yield made
    made.close()


def graded_attempt(tool: Tool, tmp: Path, sid: str) -> None:
    """Attempt 1 of ``sid`` with its result, as a grading worker leaves it, and the worker's note."""
    hand_in = tmp / "hand-in" / sid
    hand_in.mkdir(parents=True)
    text = yaml.safe_dump({"n": 3, "written": {"pooling": "Invariance to small shifts.", "lr": "step size"}})
    (hand_in / "answers.yaml").write_text(text)
    result = api.grade(hand_in.parent, api.load_lab(ESSAY), tmp / "out", RunOptions(reports=False)).results[0]
    store = tool.room.store
    meta = store.create_attempt(sid, {"answers.yaml": text.encode()}, {
        "uploaded_at": result.graded_at if hasattr(result, "graded_at") else __import__("datetime").datetime.now(
            __import__("datetime").timezone.utc), "kind": "files", "files": ["answers.yaml"], "bytes": len(text),
        "name": sid, "email": ""})
    assert store.write_result_once(sid, meta.number, result)
    scores.note(store.state, sid, "graded")


def wait_for(condition, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)


def test_a_graded_attempt_is_posted_pending_manual_then_fully_graded_after_its_written_answers(essay_tool, tmp_path):
    tool = essay_tool
    tool.launch("u-alice")  # names the course's line items and Alice's LTI user id
    graded_attempt(tool, tmp_path, "alice")
    wait_for(lambda: len(tool.platform.scores) == 1, "the first score")
    first = tool.platform.scores[0]
    assert first["userId"] == "u-alice" and first["gradingProgress"] == "PendingManual"
    assert first["scoreGiven"] == 2 and first["scoreMaximum"] == 7  # n (2) of 2 + 3 + 2 points
    assert first["activityProgress"] == "Submitted" and "2 written answer(s) await review" in first["comment"]
    item = tool.platform.items[first["lineitem"]]
    assert item["resourceId"] == "essay" and item["scoreMaximum"] == 7

    teacher = tool.launch("u-teacher")
    page = teacher.get(f"{tool.url}/review/why-pooling", timeout=10).text
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
    for qid, item_id in (("why-pooling", "invariance"), ("lr", None)):
        form = {"csrf": csrf, "key": "alice", "version": "0", "comment": "ok", **({"item": item_id} if item_id else {})}
        saved = teacher.post(f"{tool.url}/review/{qid}/grade", data=form, headers={"accept": "application/json",
                             "Origin": tool.url}, timeout=10)
        assert saved.status_code == 200, saved.text
    wait_for(lambda: tool.platform.scores[-1]["gradingProgress"] == "FullyGraded", "the graded score")
    last = tool.platform.scores[-1]
    assert last["scoreGiven"] == 2 + 2 + 2 and last["scoreMaximum"] == 7 and last["activityProgress"] == "Completed"
    assert {s["userId"] for s in tool.platform.scores} == {"u-alice"}


def test_a_platform_down_twice_gets_the_score_once_after_backoff(essay_tool, tmp_path):
    tool = essay_tool
    tool.launch("u-alice")
    tool.platform.fail_scores = 2
    graded_attempt(tool, tmp_path, "alice")
    wait_for(lambda: len(tool.platform.scores) == 1, "the score after two failures")
    time.sleep(1.0)  # nothing more arrives
    assert len(tool.platform.scores) == 1 and tool.platform.score_calls == 3
    events = [e["event"] for e in scores.journal(tool.room.store.state)]
    assert events == ["queued", "failed", "failed", "sent"]


def test_a_score_left_in_the_outbox_by_a_stopped_server_is_sent_at_the_next_start(tmp_path):
    tool = Tool(tmp_path, ESSAY)
    try:
        tool.launch("u-alice")
        tool.lti.sender.stop()  # the server stops before it could send
        tool.platform.fail_scores = 0
        graded_attempt(tool, tmp_path, "alice")
        time.sleep(0.3)
        assert tool.platform.scores == []
        again = scores.ScoreSender(tool.room.store.state, lambda: tool.lti._services, tool.lti.score_of,
                                   tool.lti.lineitem, tool.lti.full_points(), poll_s=0.1)
        assert again.send_due() == 1  # what the next start's sender does first
        assert len(tool.platform.scores) == 1 and again.send_due() == 0
    finally:
        tool.close()


# --- registration -----------------------------------------------------------------------------

def test_lti_commands_print_what_moodle_and_canvas_ask_for_and_store_the_platforms_values(tmp_path):
    import json

    from typer.testing import CliRunner

    from grader.cli import app
    from grader.serve.lti.config import load_platform

    runner = CliRunner()
    shown = runner.invoke(app, ["lti", "tool", "--url", "https://grader.example.edu"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for words in ("Initiate login URL", "https://grader.example.edu/lti/login", "Redirection URI(s)",
                  "https://grader.example.edu/lti/launch", "Public keyset", "https://grader.example.edu/lti/jwks.json"):
        assert words in shown.output
    canvas = json.loads(runner.invoke(app, ["lti", "tool", "--url", "https://grader.example.edu", "--canvas"]).output)
    assert canvas["oidc_initiation_url"] == "https://grader.example.edu/lti/login"
    assert canvas["public_jwk_url"] == "https://grader.example.edu/lti/jwks.json"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in canvas["scopes"]

    args = ["lti", "register", "--class", str(tmp_path / "class"), "--issuer", "https://moodle.example.edu",
            "--client-id", "abc", "--deployment-id", "1", "--deployment-id", "2",
            "--auth-url", "https://moodle.example.edu/mod/lti/auth.php",
            "--jwks-url", "https://moodle.example.edu/mod/lti/certs.php",
            "--token-url", "https://moodle.example.edu/mod/lti/token.php"]
    stored = runner.invoke(app, args)
    assert stored.exit_code == 0, stored.output
    platform = load_platform(tmp_path / "class" / ".gradelab")
    assert platform is not None and platform.deployment_ids == ("1", "2") and platform.client_id == "abc"
    bad = runner.invoke(app, [*args[:-1], "ftp://moodle.example.edu/token"])
    assert bad.exit_code == 2 and "--token-url 'ftp://moodle.example.edu/token' is not accepted" in bad.output


# --- in a browser -----------------------------------------------------------------------------

def test_the_full_launch_in_chromium_for_a_student_and_an_instructor(tool, tmp_path):
    """The platform's launch link, its login initiation, the tool's redirect to the platform, the
    platform's auto-submitted form, the tool's session: as Chromium follows them."""
    from playwright.sync_api import expect, sync_playwright

    from tests.test_serve_browser import CHROMIUM, CHROMIUM_ARGS

    assert CHROMIUM.exists(), "Chromium is missing: `make browser` (or apt-get install -y chromium) installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            student = browser.new_context().new_page()
            student.set_default_timeout(15_000)
            student.goto(f"{tool.platform.url}/launch?user=u-alice")
            student.wait_for_url(f"{tool.url}/")
            expect(student.locator("h1")).to_contain_text("CIFAR-10 ConvNet")
            expect(student.locator("body")).to_contain_text("Alice Martin")
            refused_page = student.goto(f"{tool.url}/instructor")
            assert refused_page is not None and refused_page.status == 403

            teacher = browser.new_context().new_page()
            teacher.set_default_timeout(15_000)
            teacher.goto(f"{tool.platform.url}/launch?user=u-teacher")
            teacher.wait_for_url(f"{tool.url}/instructor")
            expect(teacher.locator("table.roster")).to_contain_text("Alice Martin")
            teacher.screenshot(path=str(tmp_path / "lti-instructor.png"), full_page=True)
        finally:
            browser.close()


def test_the_instructor_reads_the_course_members_on_demand_and_a_student_cannot(tool):
    from tests.serve_kit import csrf_of

    teacher = tool.launch("u-teacher")
    csrf = csrf_of(teacher.get(f"{tool.url}/instructor", timeout=10).text)
    tool.platform.members.append({"user_id": "u-new", "name": "New Comer", "email": "", "roles": [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"], "status": "Active"})
    read = teacher.post(f"{tool.url}/lti/roster", data={"csrf": csrf}, headers={"Origin": tool.url}, timeout=10)
    assert read.status_code == 200 and "New Comer" in read.text, re.sub(r"<[^>]+>", "", read.text)[-600:]  # back on the roster page, the member on it
    student = tool.launch("u-alice")
    assert student.post(f"{tool.url}/lti/roster", data={"csrf": csrf}, timeout=10).status_code == 403


# --- deep linking -----------------------------------------------------------------------------

def test_an_instructor_adds_the_lab_to_the_course_by_deep_linking_and_a_student_cannot(tool):
    s = requests.Session()
    page = s.get(f"{tool.platform.url}/launch", params={"user": "u-teacher", "dl": "1"}, timeout=10)
    chosen = s.post(_ACTION.search(page.text).group(1), data=dict(_FIELD.findall(page.text)), timeout=10)
    assert chosen.status_code == 200 and "Add CIFAR-10 ConvNet" in chosen.text
    assert f"form-action {tool.platform.url}/deep-link-return" in chosen.headers["content-security-policy"]
    form = dict(_FIELD.findall(chosen.text))
    added = s.post(_ACTION.search(chosen.text).group(1), data=form, timeout=10)
    assert added.status_code == 200, added.text
    (item,) = tool.platform.linked  # verified by the platform against the tool's keyset
    assert item["type"] == "ltiResourceLink" and item["url"] == f"{tool.url}/lti/launch"
    assert item["lineItem"]["resourceId"] == "cifar-convnet"
    assert jwt.decode(form["JWT"], options={"verify_signature": False})[
        "https://purl.imsglobal.org/spec/lti-dl/claim/data"] == {"data": "opaque-42"}  # as the platform sent it

    s2 = requests.Session()
    page = s2.get(f"{tool.platform.url}/launch", params={"user": "u-alice", "dl": "1"}, timeout=10)
    refused_ = s2.post(_ACTION.search(page.text).group(1), data=dict(_FIELD.findall(page.text)), timeout=10)
    assert refused_.status_code == 403 and "only an instructor adds a lab" in refused_.text
