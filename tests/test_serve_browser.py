"""The hand-in server end to end, in a real browser: Debian's Chromium driven by Playwright.

``gradelab serve`` runs as the instructor runs it (a process of its own, 127.0.0.1 only, one
grading worker). A student logs in with their token, uploads a flawed hand-in (in-channels-
confusion: conv1's weights counted with 32 input channels) through the page's file input, waits on
the page that updates itself, reads the named mistake, downloads the PDF; then the instructor logs
in and finds the score in the roster. Screenshots of both pages are kept with the test's files
(and copied to ``$GRADELAB_SCREENSHOTS`` when set).

Not skipped: ``make test`` installs Chromium when it is missing (the Makefile's ``browser``
target); without it this test fails and says how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CIFAR_SUBMISSIONS, ROOT
from tests.serve_kit import make_class

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """``gradelab serve`` on a free loopback port, stopped (Ctrl-C, as a person stops it) after."""
    served = make_class(tmp_path)
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", "from grader.cli import main; main()", "serve", "--lab", "cifar-convnet",
         "--class", str(served.root), "--roster", str(served.roster), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--wall-time", "4", "--no-train"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/login", timeout=1).read()
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the server did not answer within 30 s"
            time.sleep(0.2)
    try:
        yield url, served
    finally:
        process.send_signal(2)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait()
        log.close()


def keep(shot: Path) -> None:
    where = os.environ.get("GRADELAB_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(where) / shot.name)


def test_a_student_uploads_a_flawed_hand_in_reads_the_mistake_and_the_instructor_sees_the_score(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.exists(), "Chromium is missing: `make browser` (or apt-get install -y chromium) installs it"
    url, served = server
    flawed = CIFAR_SUBMISSIONS / "in-channels-confusion"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            accept_downloads=True, viewport={"width": 1200, "height": 900})
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            page.goto(f"{url}/login")
            page.fill("#token", served.tokens["alice"])
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_contain_text("CIFAR-10 ConvNet")
            page.set_input_files("#files", [str(flawed / "convnet.py"), str(flawed / "answers.yaml")])
            page.click("text=Upload and grade")
            page.wait_for_url(re.compile(r".*/attempts/1$"))
            # the waiting page updates itself (a static script polling the status) until the feedback is in
            page.wait_for_selector(".scorebox", timeout=90_000)
            mistake = page.locator("li.check", has_text="Learnable parameters of each layer")
            expect(mistake).to_have_class(re.compile(r"\bpartial\b"))
            # the named mistake: conv1's weights counted with 32 input channels instead of the 3 RGB ones
            expect(mistake).to_contain_text("takes 32 input channels; conv1 sees the 3 RGB channels")
            assert "Receptive fields of conv1 and conv2" not in page.content()  # a hidden check
            shot = tmp_path / "serve-student-feedback.png"
            page.screenshot(path=str(shot), full_page=True)
            keep(shot)

            with page.expect_download() as download:
                page.click("text=Download the PDF report")
            pdf = tmp_path / "feedback.pdf"
            download.value.save_as(pdf)
            assert pdf.read_bytes().startswith(b"%PDF")
            assert download.value.suggested_filename == "cifar-convnet-attempt-1-feedback.pdf"
            score = page.locator(".scorebox .score").inner_text().split("/")[0].strip()

            page.click("text=Log out")
            page.wait_for_url(re.compile(r".*/login$"))
            page.fill("#token", served.tokens["instructor"])
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/instructor$"))
            row = page.locator("table.roster tr", has_text="alice")
            expect(row).to_contain_text("Alice Martin")
            latest = row.locator(".score-cell").inner_text()
            shot = tmp_path / "serve-instructor-roster.png"
            page.screenshot(path=str(shot), full_page=True)
            keep(shot)
            assert errors == []  # no script error, no resource refused by the Content-Security-Policy
        finally:
            browser.close()
    from grader.results import SubmissionResult
    from grader.reveal import student_result

    result = SubmissionResult.model_validate_json((served.root / "alice" / "attempts" / "1" / "result.json").read_text())
    assert latest.split("/")[0].strip() == f"{result.score:g}"            # the instructor's: every check
    assert float(score) == student_result(result).score == result.score   # the student sees the same grade
