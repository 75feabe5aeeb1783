"""Written answers graded by people: the ``written`` kind, the grades kept beside the results, and
their merge into results, reports, the class summary and exports (``grader.review``)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from pathlib import Path

import nbformat
import pytest
import yaml

from grader import api
from grader.errors import LabError
from grader.export.feedback import summary_text
from grader.options import RunOptions
from grader.results import Status
from grader.review.groups import group_answers, normalise, similarity
from grader.review.merge import rubric_of, written_checks
from grader.review.store import ReviewStore, StaleGrade

ESSAY = Path(__file__).parent / "labs" / "essay"
POOLING = "why-pooling"


def hand_in(root: Path, name: str, pooling: str | None, *, n: int = 3, lr: str = "It sets the step size.") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    written = {"lr": lr} | ({"pooling": pooling} if pooling is not None else {})
    (folder / "answers.yaml").write_text(yaml.safe_dump({"n": n, "written": written}), encoding="utf-8")
    return folder


@pytest.fixture
def essay_lab():
    return api.load_lab(ESSAY)


@pytest.fixture(scope="module")
def graded_once(tmp_path_factory):
    """A class of four graded by the batch once: (class folder, output folder)."""
    base = tmp_path_factory.mktemp("essay-class")
    root, out = base / "class", base / "out"
    hand_in(root, "ada", "Pooling gives invariance to small translations and smaller maps.")
    hand_in(root, "bob", "pooling gives invariance to small translations, and smaller maps!")
    hand_in(root, "cy", "Pooling learns which features matter.", n=4)
    hand_in(root, "dee", None)
    api.grade(root, api.load_lab(ESSAY), out, RunOptions(reports=False))
    return root, out


@pytest.fixture
def graded(tmp_path, graded_once):
    """A copy of that class and its results, for one test to grade and regrade."""
    root, out = tmp_path / "class", tmp_path / "out"
    shutil.copytree(graded_once[0], root)
    shutil.copytree(graded_once[1], out)
    return root, out


def by_name(out: Path) -> dict:
    return {r.submission: r for r in api.read_results(out, ESSAY)}


def check(result, check_id: str):
    return next(c for c in result.checks if c.id == check_id)


def grade(store: ReviewStore, result, question: str, items: list[str], comment: str = "", seen: int = 0):
    c = check(result, question)
    return store.grade(question, {result.submission: (c.details["answer_sha"], seen)}, items, comment)


# --- the kind -----------------------------------------------------------------------------------

def test_an_answer_awaits_review_and_its_points_are_pending_in_the_total(graded):
    ada = by_name(graded[1])["ada"]
    pooling = check(ada, POOLING)
    assert pooling.status == Status.awaiting_review and pooling.details["answer"].startswith("Pooling gives")
    assert pooling.details["question"] == "Why do we use spatial pooling?"
    assert (ada.score, ada.max_score, ada.pending_points) == (2, 7, 5)  # 5 written points await review
    assert len(ada.awaiting_review) == 2


def test_a_blank_answer_awaits_review_too_and_says_where_answers_go(graded):
    dee = by_name(graded[1])["dee"]
    pooling = check(dee, POOLING)
    assert pooling.status == Status.awaiting_review and pooling.details["answer"] == ""
    assert "No answer found" in pooling.message and "`written.pooling`" in pooling.message
    assert (dee.score, dee.max_score, dee.pending_points) == (2, 7, 5)  # a blank answer is pending too


def test_an_answer_in_a_notebook_cell_tagged_with_the_question_id(tmp_path, essay_lab):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_markdown_cell("Max-pooling is <b>invariant</b> to shifts.",
                                              metadata={"tags": [POOLING]}),
                nbformat.v4.new_raw_cell("n: 3\nwritten: {lr: fast}", metadata={"tags": ["answers"]})]
    path = tmp_path / "nb" / "essay.ipynb"
    path.parent.mkdir()
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    result = api.check(path.parent, essay_lab, RunOptions())
    pooling = check(result, POOLING)
    assert pooling.status == Status.awaiting_review
    assert pooling.details["answer"] == "Max-pooling is <b>invariant</b> to shifts."  # kept as text, never markup


def test_a_long_answer_is_cut_and_the_student_is_told(tmp_path, essay_lab):
    folder = hand_in(tmp_path, "long", "word " * 500)
    pooling = check(api.check(folder, essay_lab, RunOptions()), POOLING)
    assert len(pooling.details["answer"]) == 400 and pooling.details["truncated"]
    assert "first 400 characters" in pooling.message


def test_a_rubric_with_two_items_of_one_id_is_refused(tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    text = (ESSAY / "lab.yaml").read_text().replace("id: smaller,", "id: invariance,")
    (lab / "lab.yaml").write_text(text)
    for name in ("answers.yaml", "reference.py"):
        (lab / name).write_text((ESSAY / name).read_text())
    with pytest.raises(LabError, match="unique"):
        api.load_lab(lab)


def test_a_student_sees_their_answer_and_the_comments_not_the_model_answer(graded, essay_lab):
    from grader.reveal import student_check

    out = graded[1]
    grade(ReviewStore.beside(out), by_name(out)["ada"], POOLING, ["invariance"], "Good.")
    seen = student_check(check(by_name(out)["ada"], POOLING))
    assert seen.details["answer"].startswith("Pooling gives") and seen.details["review"]["comment"] == "Good."
    assert "Invariance to small translations" in seen.message
    assert "model" not in json.dumps(seen.model_dump())


# --- storage and merge ----------------------------------------------------------------------------

def test_a_grade_scores_the_answer_from_its_rubric_items(graded):
    out = graded[1]
    grade(ReviewStore.beside(out), by_name(out)["ada"], POOLING, ["invariance", "smaller"], "Both reasons.")
    ada = by_name(out)["ada"]
    pooling = check(ada, POOLING)
    assert (pooling.status, pooling.score) == (Status.passed, 3)
    assert [i["id"] for i in pooling.details["review"]["items"]] == ["invariance", "smaller"]
    assert (ada.score, ada.max_score, ada.pending_points) == (5, 7, 2)  # the lr answer still awaits review
    assert json.loads((out / "review" / f"{POOLING}.json").read_text())["schema_version"] == 1


def test_negative_scoring_starts_at_full_marks(graded):
    out = graded[1]
    grade(ReviewStore.beside(out), by_name(out)["ada"], "lr", ["no-divergence"])
    assert check(by_name(out)["ada"], "lr").score == 1  # 2 − 1


def test_a_regrade_of_the_automatic_part_keeps_the_manual_grades(graded, essay_lab):
    root, out = graded
    grade(ReviewStore.beside(out), by_name(out)["cy"], POOLING, ["learns"], "See the lecture on pooling.")
    (root / "cy" / "answers.yaml").write_text(
        (root / "cy" / "answers.yaml").read_text().replace("n: 4", "n: 3"))  # the instructor fixed a key
    batch = api.grade(root, essay_lab, out, RunOptions(reports=False, force=True))
    assert "cy" in batch.graded
    cy = by_name(out)["cy"]
    assert check(cy, "n").score == 2  # regraded
    assert check(cy, POOLING).details["review"]["comment"] == "See the lecture on pooling."  # kept
    assert check(cy, POOLING).score == 0 and check(cy, POOLING).status == Status.failed
    in_batch = {r.submission: r for r in batch.results}["cy"]
    assert check(in_batch, POOLING).details["review"]["comment"] == "See the lecture on pooling."


def test_an_edited_rubric_item_rescores_every_answer_it_is_on(graded, essay_lab):
    out = graded[1]
    store = ReviewStore.beside(out)
    results = by_name(out)
    for name in ("ada", "bob"):
        grade(store, results[name], POOLING, ["invariance"])
    grade(store, results["cy"], POOLING, ["smaller"])
    question = next(c for c in written_checks(essay_lab) if c.spec.id == POOLING)
    item = next(i for i in rubric_of(question, None) if i.id == "invariance")
    store.edit_item(POOLING, question.params.rubric, item.model_copy(update={"points": 1.5, "comment": "Shifts."}))
    after = by_name(out)
    assert [check(after[n], POOLING).score for n in ("ada", "bob", "cy")] == [1.5, 1.5, 1]
    assert check(after["ada"], POOLING).details["review"]["items"][0]["comment"] == "Shifts."


def test_a_grade_given_to_another_answer_does_not_apply(graded, essay_lab):
    root, out = graded
    grade(ReviewStore.beside(out), by_name(out)["ada"], POOLING, ["invariance"])
    (root / "ada" / "answers.yaml").write_text(yaml.safe_dump({"n": 3, "written": {"pooling": "A new answer."}}))
    api.grade(root, essay_lab, out, RunOptions(reports=False, force=True))
    assert check(by_name(out)["ada"], POOLING).status == Status.awaiting_review


def test_two_graders_at_once_one_wins_the_other_gets_a_conflict(graded):
    out = graded[1]
    store = ReviewStore.beside(out)
    ada = by_name(out)["ada"]
    grade(store, ada, POOLING, ["invariance"], "first", seen=0)
    with pytest.raises(StaleGrade) as stale:
        grade(store, ada, POOLING, ["smaller"], "second, from a page that saw no grade", seen=0)
    assert stale.value.keys == ["ada"]
    assert store.book(POOLING).grades["ada"].comment == "first"
    grade(store, ada, POOLING, ["smaller"], "second, after reloading", seen=1)
    assert store.book(POOLING).grades["ada"].version == 2


def test_concurrent_writers_from_one_version_exactly_one_is_written(graded):
    out = graded[1]
    store = ReviewStore.beside(out)
    ada = by_name(out)["ada"]
    outcomes: list[str] = []

    def write(i: int) -> None:
        try:
            grade(ReviewStore.beside(out), ada, POOLING, ["smaller"], f"writer {i}", seen=0)
            outcomes.append("written")
        except StaleGrade:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["written"]
    assert store.book(POOLING).grades["ada"].version == 1


# --- grouping ----------------------------------------------------------------------------------

def test_answers_equal_but_for_case_punctuation_and_spacing_are_one_group():
    assert normalise("  Pooling: gives  INVARIANCE, to shifts! ") == "pooling gives invariance to shifts"
    groups = group_answers({"a": "Pooling gives invariance.", "b": "pooling gives   invariance", "c": "It learns."})
    assert [g.keys for g in groups] == [["a", "b"], ["c"]]


def test_near_identical_answers_group_and_a_different_one_does_not():
    base = ("max pooling keeps the strongest response of each window so the output hardly changes when the "
            "object moves by a pixel and it divides the map by four which means less computation")
    near = base.replace("a pixel", "one pixel")
    other = "pooling reduces overfitting because it learns which features are important"
    assert similarity(base, near) >= 0.8 > similarity(base, other)
    assert [g.keys for g in group_answers({"a": base, "b": near, "c": other})] == [["a", "b"], ["c"]]


# --- reports, class summary, exports ------------------------------------------------------------

def test_reports_show_the_items_applied_and_the_comment_under_the_question(graded, renderer):
    out = graded[1]
    grade(ReviewStore.beside(out), by_name(out)["ada"], POOLING, ["invariance"], "Name a second reason too.")
    results = by_name(out)
    html = renderer.submission_html(results["ada"], "student")
    assert "Why do we use spatial pooling?" in html and "Invariance to small translations: right." in html
    assert "Name a second reason too." in html and "+2" in html
    waiting = renderer.submission_html(results["bob"], "student")
    assert "points pending" in waiting and "await review" in waiting
    summary = renderer.class_html(list(results.values()), "Essay")
    assert "Written answers" in summary and "1 / 4" in summary  # graded of answers (dee's blank one too)
    assert "Invariance to small translations: right. ×1" in summary


def test_exports_carry_the_manual_grades(graded):
    out = graded[1]
    grade(ReviewStore.beside(out), by_name(out)["ada"], POOLING, ["invariance", "smaller"], "Well argued.")
    files, _ = api.export(out, "csv", lab=ESSAY, partial=True)
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(files["grades.csv"].decode()))}
    assert (rows["ada"][POOLING], rows["ada"]["total"], rows["ada"]["max"]) == ("3", "5", "7")
    assert rows["bob"][POOLING] == ""  # awaiting review: no score yet
    assert rows["bob"]["pending"].startswith("5 points pending: ")
    comments = {r.student.id: summary_text(r) for r in api.read_results(out, ESSAY)}  # Moodle's feedback column
    assert "Well argued." in comments["ada"]
    assert "(so far: 5 points pending)" in comments["bob"]
    gradescope, _ = api.export(out, "gradescope", lab=ESSAY, partial=True)
    output = json.loads(gradescope["ada/results.json"])
    test = next(t for t in output["tests"] if t["extra_data"]["check"] == POOLING)
    assert test["score"] == 3 and "Well argued." in test["output"]


def test_check_says_the_total_is_so_far_while_answers_await_review(tmp_path):
    from tests.conftest import cli

    folder = hand_in(tmp_path, "ada", "Pooling gives invariance.")
    result = cli("check", str(folder), "--lab", str(ESSAY))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "awaiting review" in text and "Total so far: 2 / 7 (29 %)" in text
    assert "2 written answer(s), 5 points, awaiting review by your instructor" in text
