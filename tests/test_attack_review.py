"""Attacks on the grading pages of written answers, each kept as the rule it established.

- A written answer is the student's own text, and may hold anything a notebook's JSON can carry,
  a lone UTF-16 surrogate (``"\\ud800"``) included: it is still an answer awaiting review (the
  character replaced), never an internal error that hides the answer from the grader.
- Every answer a group's grade reaches is on the page in its own words (the group's first answer
  alone hid a near-identical one that says the opposite).
- A grade names the answer it was given to, as the page showed it: if the student handed in
  another answer since the page was rendered, the grade is refused (409) rather than given to
  an answer nobody read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

from grader import api
from grader.options import RunOptions
from grader.results import Status
from tests.test_review_pages import Q, graded_once, login, pages  # noqa: F401  (fixtures: pytest injects them by name)

ESSAY = Path(__file__).parent / "labs" / "essay"


def test_an_answer_with_a_lone_surrogate_still_awaits_review(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Pooling SURROGATE gives invariance.", metadata={"tags": [Q]}),
                nbformat.v4.new_raw_cell("n: 3\nwritten: {lr: fast}", metadata={"tags": ["answers"]})]
    folder = tmp_path / "nb"
    folder.mkdir()
    # a notebook is JSON: "\ud800" is valid JSON there, and json.loads gives a lone surrogate
    (folder / "essay.ipynb").write_text(nbformat.writes(nb).replace("SURROGATE", "\\ud800"), encoding="utf-8")
    result = api.check(folder, api.load_lab(ESSAY), RunOptions())
    pooling = next(c for c in result.checks if c.id == Q)
    assert pooling.status == Status.awaiting_review, pooling.message
    assert pooling.details["answer"] == "Pooling \ufffd gives invariance."
    pooling.details["answer"].encode("utf-8")  # storable, hashable, renderable


def test_a_grade_for_an_answer_replaced_since_the_page_was_shown_is_refused(pages):  # noqa: F811  (the fixture)
    client, link, out = pages
    csrf = login(client, link)
    page = client.get(f"/review/{Q}").text
    shown = re.search(r'data-key="eve" data-version="0" data-sha="([0-9a-f]+)"', page)
    assert shown, "each answer on the page carries the digest of the text shown"
    # eve hands in again (the batch is regraded): her answer is another one now
    path = out / "eve.json"
    data = json.loads(path.read_text())
    check = next(c for c in data["checks"] if c["id"] == Q)
    check["details"].update(answer="Pooling gives invariance to shifts.", answer_sha="0123456789abcdef")
    path.write_text(json.dumps(data))
    sent = client.post(f"/review/{Q}/grade", headers={"accept": "application/json"},
                       data={"csrf": csrf, "key": "eve", "version": "0", "sha": shown.group(1), "item": "invariance"})
    assert sent.status_code == 409 and sent.json()["keys"] == ["eve"]
    assert not (out / "review" / f"{Q}.json").exists()  # nothing written
    # graded from the page that shows the new answer, it is taken
    fresh = re.search(r'data-key="eve" data-version="0" data-sha="([0-9a-f]+)"', client.get(f"/review/{Q}").text)
    assert fresh.group(1) == "0123456789abcdef"
    ok = client.post(f"/review/{Q}/grade", headers={"accept": "application/json"},
                     data={"csrf": csrf, "key": "eve", "version": "0", "sha": fresh.group(1), "item": "invariance"})
    assert ok.status_code == 200


def test_a_near_identical_answer_in_a_group_is_shown_in_its_own_words(tmp_path):
    """Grouped answers are graded at once, but a grader grades only what they read: an answer
    grouped with another whose text differs is shown too, in its own words, so a "not" slipped
    into a copied answer is seen before the group's grade reaches it."""
    import yaml
    from starlette.testclient import TestClient

    from grader.serve.review_app import create_review_app

    good = ("Spatial pooling summarises each neighbourhood of the feature map so the output barely changes "
            "when the input shifts by a pixel or two and the maps get smaller too")
    negated = good.replace("barely changes", "does not barely changes")
    root, out = tmp_path / "class", tmp_path / "out"
    for name, text in {"ada": good, "mal": negated}.items():
        (root / name).mkdir(parents=True)
        (root / name / "answers.yaml").write_text(yaml.safe_dump({"n": 3, "written": {"pooling": text, "lr": "x"}}))
    api.grade(root, api.load_lab(ESSAY), out, RunOptions(reports=False))
    app, link = create_review_app(api.load_lab(ESSAY), out)
    with TestClient(app, base_url="http://127.0.0.1:8010") as client:
        login(client, link)
        page = client.get(f"/review/{Q}").text
    assert "2 answers, graded together" in page  # the grouping holds: near answers are graded at once
    assert "does not barely changes" in page      # and the one that differs is on the page, in its words
