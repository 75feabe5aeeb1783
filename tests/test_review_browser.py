"""The grading pages in a real browser (Debian's Chromium, driven by Playwright): an instructor
grades "Why spatial pooling?" across a class of six with the keyboard alone, edits a rubric item,
and finds the comment and the points in a student's PDF.

The class is six of cifar-convnet's example hand-ins, graded on the written question only
(``only``: no sandbox, no training), so the test takes seconds. ``GRADELAB_SCREENSHOT=docs/review.png``
writes the picture of the page in docs/written-answers.md.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from grader import api
from grader.options import RunOptions
from grader.serve.review_app import create_review_app

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
CLASS = ["correct", "wrong-padding", "in-channels-confusion", "biases-forgotten", "functional-style", "spatial-as-kernel"]
Q = "why-pooling"
COMMENT = "Name the invariance too"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import uvicorn

    base = tmp_path_factory.mktemp("review-browser")
    for name in CLASS:
        shutil.copytree(ROOT / "submissions" / "cifar-convnet" / name, base / "class" / name)
    lab = api.load_lab("cifar-convnet")
    api.grade(base / "class", lab, base / "out", RunOptions(reports=False, only=(Q,)))
    app, link = create_review_app(lab, base / "out")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}", link, base / "out"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        # A fresh profile, given as Playwright asks (launch_persistent_context), with these flags.
        context = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            viewport={"width": 1280, "height": 900}, accept_downloads=False)
        yield context
        context.close()


def test_an_instructor_grades_a_question_across_the_class_with_the_keyboard(served, browser):
    from pypdf import PdfReader

    url, link, out = served
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{url}/login?key={link.key}")
    assert page.url.endswith("/review")
    page.goto(f"{url}/review/{Q}")
    groups = page.locator(".answer-group")
    count = groups.count()
    assert 2 <= count < len(CLASS)  # alike answers were grouped (correct and wrong-padding differ by a word)
    assert page.locator(".answer-group.selected").count() == 1

    def saved(key: str) -> None:
        with page.expect_response(lambda r: r.url.endswith("/grade") and r.status == 200):
            page.keyboard.press(key)

    for i in range(count):  # keyboard only: items by number, a comment, the next answer
        text = groups.nth(i).locator(".answer, .blank").first.inner_text().lower()
        if "learn" in text:
            saved("4")  # "pooling learns": the misconception item (−1)
        else:
            for key, words in (("1", ("invarian", "shift")), ("2", ("size", "divides", "cheaper")),
                               ("3", ("receptive",))):
                if any(w in text for w in words):
                    saved(key)
            if "invarian" not in text:
                page.keyboard.press("c")
                page.keyboard.type(COMMENT)
                with page.expect_response(lambda r: r.url.endswith("/grade") and r.status == 200):
                    page.keyboard.press("Escape")
        page.keyboard.press("j")
    assert page.locator("[data-graded]").first.inner_text() == str(len(CLASS))
    assert page.locator(".answer-group.graded").count() == count
    if os.environ.get("GRADELAB_SCREENSHOT"):
        for _ in range(count - 2):
            page.keyboard.press("k")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.environ["GRADELAB_SCREENSHOT"], full_page=False)

    # Edit item 2 ("smaller maps", +1) once: every answer it is on is rescored.
    item = page.locator(".rubric-item").nth(1)
    item.locator("summary").click()
    item.locator("[data-edit-points]").fill("1.5")
    with page.expect_navigation():
        item.locator("button[type=submit]").click()
    assert "+1.5" in page.locator(".rubric-item").nth(1).inner_text()

    # The student's PDF: the comment under the question, and the points after the edit.
    results = {r.submission: r for r in api.read_results(out, "cifar-convnet")}
    spatial = next(c for c in results["spatial-as-kernel"].checks if c.id == Q)
    assert spatial.details["review"]["comment"] == COMMENT and spatial.score == 1.5
    response = page.request.get(f"{url}/review/students/spatial-as-kernel/report.pdf")
    assert response.ok and response.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert COMMENT in text and "1.5 / 3" in text and "+1.5" in text
    assert errors == []
    page.close()
