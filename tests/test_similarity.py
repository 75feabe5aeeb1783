"""Similarity across a class (``grader.similarity``): copies found whatever their disguise,
independent work left alone, the template and handed-out code subtracted, earlier classes
compared, and a hostile hand-in a note rather than the end of the run.

The corpus under ``submissions/similarity/<lab>/`` is written for these tests: independent
solutions in clearly different styles, and copies of them, each disguised one way."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli

CORPUS = ROOT / "submissions" / "similarity"
# Who each hand-in's work comes from: a pair shares an origin exactly when one copied the other.
ORIGINS = {
    "mlp-backprop": {
        "ana": {"ana"}, "bruno": {"bruno"}, "chen": {"chen"}, "dara": {"dara"},
        "eli": {"ana"},               # identifiers renamed
        "fay": {"bruno"},             # functions reordered, comments and formatting rewritten
        "gus": {"chen"},              # loops rewritten (comprehensions, while)
        "hana": {"dara"},             # dead code added
        "ivo": {"ana", "bruno"},      # two sources merged
    },
    "cifar-convnet": {
        "kim": {"kim"}, "lea": {"lea"}, "max": {"max"}, "noor": {"noor"},
        "olga": {"lea"},              # the answer sheet only, with its rare wrong values
        "pia": {"max"},               # the written answer only, lightly reworded
    },
}


def _similarity(lab: str, root: Path, tmp_path: Path, **kw):
    from grader import api

    return api.similarity(tmp_path / "out", lab, root=root, write=False, **kw)


def _pairs(report) -> dict[frozenset[str], object]:
    return {frozenset((p.a, p.b)): p for p in report.pairs}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    from grader import api

    tmp = tmp_path_factory.mktemp("similarity")
    return {lab: api.similarity(tmp / lab, lab, root=CORPUS / lab, write=False) for lab in ORIGINS}


@pytest.mark.parametrize("lab", sorted(ORIGINS))
def test_every_copy_ranks_above_every_independent_pair_and_no_independent_pair_is_listed(reports, lab):
    report, origins = reports[lab], ORIGINS[lab]
    assert set(origins) <= {w for p in report.pairs for w in (p.a, p.b)} | set(origins)
    scores = {frozenset(p): 0.0 for p in itertools.combinations(origins, 2)}
    scores.update({k: v.score for k, v in _pairs(report).items()})
    copies = {k: s for k, s in scores.items() if set.intersection(*(origins[n] for n in k))}
    independent = {k: s for k, s in scores.items() if k not in copies}
    assert len(copies) == (8 if lab == "mlp-backprop" else 2)
    assert min(copies.values()) > max(independent.values()), (copies, independent)
    threshold = report.settings.threshold
    assert all(s >= threshold for s in copies.values()), copies
    assert not [k for k, s in independent.items() if s >= threshold]
    assert {frozenset((p.a, p.b)) for p in report.similar} == set(copies)


def test_each_copy_is_found_by_the_signal_its_disguise_leaves_and_said_so(reports):
    mlp, cifar = _pairs(reports["mlp-backprop"]), _pairs(reports["cifar-convnet"])
    for pair in (("ana", "eli"), ("bruno", "fay"), ("chen", "gus"), ("dara", "hana"), ("ana", "ivo"), ("bruno", "ivo")):
        found = mlp[frozenset(pair)]
        assert found.code >= 0.5 and found.spans_a and found.spans_b, pair
        assert found.reason.startswith("similar: look at these together: ")
        assert "of the smaller hand-in's code beyond the template matches the other's" in found.reason
    sheet = cifar[frozenset(("lea", "olga"))]
    assert sheet.code < 0.25 and sheet.written == 0 and sheet.answers >= 0.5
    assert {(v.field, v.value) for v in sheet.shared_values if v.wrong} == {
        ("receptive_field.conv2", "12"), ("total_params", "1191160")}
    assert "2 answer(s) few others gave, 2 of them wrong (receptive_field.conv2 = 12, total_params = 1191160)" \
        in sheet.reason
    words = cifar[frozenset(("max", "pia"))]
    assert words.code < 0.25 and words.answers < 0.1 and words.written >= 0.5
    assert words.shared_phrases[0].question == "why-pooling"
    assert "the flattened vector fed to the classifier stays manageable" in " ".join(words.shared_phrases[0].phrases)


def test_a_right_answer_everyone_gave_is_no_evidence_but_a_shared_rare_wrong_one_is(reports):
    from grader.lab.manifest import SimilaritySettings
    from grader.similarity.answers import AnswerIndex

    sheets = [{"a": 1, "b": 7}] * 8 + [{"a": 1, "b": 9}, {"a": 1, "b": 9}]
    index = AnswerIndex(sheets, {"a": 1, "b": 7}, SimilaritySettings())
    assert index.shared(0, 1) == []  # everyone's right answers
    rare = index.shared(8, 9)
    assert [(v.field, v.value, v.wrong, v.holders, v.answered) for v in rare] == [("b", "9", True, 2, 10)]
    right_rare = AnswerIndex([{"b": 7}] * 2 + [{"b": 5}] * 28, {"b": 7}, SimilaritySettings())
    assert 0 < right_rare.shared(0, 1)[0].weight < rare[0].weight / 5  # rare and right weighs far less
    small = AnswerIndex([{"a": 1, "b": 9}, {"a": 1, "b": 9}, {"a": 1, "b": 7}], {"a": 1, "b": 7}, SimilaritySettings())
    assert [(v.field, v.wrong) for v in small.shared(0, 1)] == [("b", True)]  # a class of 3: the right one says nothing


def test_two_untouched_templates_are_not_similar_because_the_template_is_subtracted(tmp_path):
    from grader import api
    from grader.similarity.ranking import compare

    lab = api.load_lab("mlp-backprop")
    root = tmp_path / "class"
    for name in ("tom", "uma"):
        shutil.copytree(lab.folder / "template", root / name)
    shutil.copytree(CORPUS / "mlp-backprop" / "ana", root / "ana")
    assert _similarity("mlp-backprop", root, tmp_path).pairs == []
    # Without the subtraction the two templates are the same code: the test can fail.
    from grader.similarity.handins import read_class

    bare = compare(read_class(lab, root), lab.manifest.similarity, lab=lab.id, lab_title="t")
    assert frozenset(("tom", "uma")) in {frozenset((p.a, p.b)) for p in bare.similar}


def test_handed_out_code_given_as_boilerplate_is_subtracted_like_the_template(tmp_path):
    helper = (CORPUS / "mlp-backprop" / "bruno" / "mlp.py").read_text()
    root = tmp_path / "class"
    for name in ("chen", "dara"):
        shutil.copytree(CORPUS / "mlp-backprop" / name, root / name)
        (root / name / "helpers.py").write_text(helper)
    (tmp_path / "given").mkdir()
    (tmp_path / "given" / "helpers.py").write_text(helper)
    listed = _similarity("mlp-backprop", root, tmp_path)
    assert [(p.a, p.b) for p in listed.similar] == [("chen", "dara")]
    assert _similarity("mlp-backprop", root, tmp_path, boilerplate=(tmp_path / "given",)).similar == []


def test_against_compares_this_class_with_an_earlier_one_but_not_the_earlier_one_with_itself(tmp_path):
    mlp = CORPUS / "mlp-backprop"
    this_year, last_year = tmp_path / "2026", tmp_path / "2025"
    for name in ("fay", "chen"):
        shutil.copytree(mlp / name, this_year / name)
    for name in ("bruno", "ana", "eli"):  # ana and eli copied each other last year: not this year's business
        shutil.copytree(mlp / name, last_year / name)
    report = _similarity("mlp-backprop", this_year, tmp_path, against=(last_year,))
    assert report.compared == 2 and report.against == 3
    assert [(p.a, p.b, p.group_b) for p in report.similar] == [("fay", "2025/bruno", "2025")]
    assert all(p.group_b == "2025" or p.b in ("fay", "chen") for p in report.pairs)


def test_a_notebook_and_an_archive_are_compared_as_grading_reads_them(tmp_path):
    from grader.intake.notebooks import template_notebook

    mlp = CORPUS / "mlp-backprop"
    root = tmp_path / "class"
    for name in ("ana", "bruno", "chen"):
        shutil.copytree(mlp / name, root / name)
    # eli hands in a notebook (the module is built from its cells), fay a zip of a folder
    notebook = template_notebook("Lab 1", "mlp.py", (mlp / "eli" / "mlp.py").read_text(),
                                 (mlp / "eli" / "answers.yaml").read_text(), "mlp-backprop")
    (root / "eli.ipynb").write_bytes(notebook)
    with zipfile.ZipFile(root / "fay.zip", "w") as zf:
        for f in ("mlp.py", "answers.yaml"):
            zf.write(mlp / "fay" / f, f"lab1/{f}")
    report = _similarity("mlp-backprop", root, tmp_path)
    assert {frozenset((p.a, p.b)) for p in report.similar} == {frozenset(("ana", "eli")), frozenset(("bruno", "fay"))}
    assert report.notes == []


def test_a_hostile_hand_in_is_left_out_with_a_note_and_the_run_goes_on(tmp_path):
    mlp = CORPUS / "mlp-backprop"
    root = tmp_path / "class"
    for name in ("ana", "eli"):
        shutil.copytree(mlp / name, root / name)
    huge = root / "huge"
    huge.mkdir()
    (huge / "mlp.py").write_text("x = 1\n" * 60000)  # 360 kB of source
    binary = root / "binary"
    binary.mkdir()
    (binary / "mlp.py").write_bytes(b"import torch\n\x00\x01\x02" * 100)
    (binary / "extra.py").write_bytes(b"\xff\xfe not utf-8 \xc3\x28")
    odd = root / "odd\x1b[31mname\nline"
    shutil.copytree(mlp / "chen", odd)
    linked = root / "linked"
    linked.mkdir()
    os.symlink("/etc/passwd", linked / "mlp.py")
    (root / "garbage.ipynb").write_bytes(b"{not json" * 1000)
    (root / "bomb.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    report = _similarity("mlp-backprop", root, tmp_path)
    assert [(p.a, p.b) for p in report.similar] == [("ana", "eli")]
    notes = "\n".join(report.notes)
    assert "huge (huge): mlp.py: larger than 256 KiB" in notes
    assert "binary (binary): mlp.py: binary, not source code: left out of the comparison" in notes
    assert "binary (binary): extra.py: not UTF-8 text: left out of the comparison" in notes
    assert "garbage (garbage): code not compared: garbage.ipynb" in notes
    assert "bomb (bomb): not compared:" in notes
    assert "\x1b" not in notes and "root:" not in notes  # nothing printed raw, no link followed


def test_the_manifest_sets_the_thresholds_and_refuses_a_mistyped_one():
    from pydantic import ValidationError

    from grader.lab.manifest import SimilaritySettings

    assert SimilaritySettings().threshold == 0.5
    assert SimilaritySettings.model_validate({"threshold": 0.7}).threshold == 0.7
    with pytest.raises(ValidationError, match="treshold"):
        SimilaritySettings.model_validate({"treshold": 0.7})


def test_a_higher_threshold_from_the_lab_lists_fewer_pairs(tmp_path):
    from grader import api
    from grader.similarity.handins import read_class

    lab = api.load_lab("cifar-convnet")
    strict = lab.manifest.similarity.model_copy(update={"threshold": 0.9})
    lab.manifest = lab.manifest.model_copy(update={"similarity": strict})
    from grader.similarity.lab import compare_works

    report = compare_works(lab, read_class(lab, CORPUS / "cifar-convnet"))
    assert report.similar == [] and report.settings.threshold == 0.9


def test_the_command_writes_a_ranked_csv_json_and_a_side_by_side_page_with_hostile_names_escaped(tmp_path):
    mlp = CORPUS / "mlp-backprop"
    root = tmp_path / "class"
    shutil.copytree(mlp / "ana", root / "=HYPERLINK(1)")
    shutil.copytree(mlp / "eli", root / "<img src=x onerror=alert(1)>")
    shutil.copytree(mlp / "chen", root / "chen")
    out = tmp_path / "out"
    result = cli("similarity", str(out), "--lab", "mlp-backprop", "--class", str(root))
    assert result.exit_code == 0, result.output
    assert "hand-ins to look at together (instructors only)" in result.output
    assert "similar: look at these together" in result.output
    assert "1 pair(s) at or above 0.50 among 3 hand-ins" in result.output
    rows = list(csv.DictReader((out / "similarity" / "similarity.csv").open(encoding="utf-8")))
    assert rows[0]["similar"] == "yes" and rows[0]["rank"] == "1"
    assert sorted(n.split("-")[0] for n in (rows[0]["a"], rows[0]["b"])) == ["HYPERLINK_1", "img_src_x_onerror_alert_1"]
    assert "'=HYPERLINK(1)" in {rows[0]["student_a"], rows[0]["student_b"]}  # a spreadsheet shows it as text
    page = (out / "similarity" / "similarity.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    marked = re.findall(r"<mark>(.*?)</mark>", page, re.S)
    assert len(marked) >= 2 and sum(map(len, marked)) > 2000  # the matched code (most of it), highlighted
    data = json.loads((out / "similarity" / "similarity.json").read_text())
    assert data["schema_version"] == 1 and data["compared"] == 3


def test_the_command_refuses_an_empty_results_folder_in_one_line(tmp_path):
    result = cli("similarity", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.strip() == (f"UsageError: {tmp_path}: no gradelab results here (run `gradelab grade … "
                                     f"--out {tmp_path}` first, or name the class with --class)")


def test_grade_with_similarity_adds_a_page_to_the_class_summary_and_nothing_a_student_sees(tmp_path):
    from pypdf import PdfReader

    root = tmp_path / "class"
    for name in ("kim", "lea", "olga"):
        shutil.copytree(CORPUS / "cifar-convnet" / name, root / name)
    out = tmp_path / "out"
    result = cli("grade", str(root), "--lab", "cifar-convnet", "--out", str(out), "--similarity", "--wall-time", "8")
    assert result.exit_code == 0, result.output
    assert "similar: look at these together" in result.output
    summary = "\n".join(page.extract_text() for page in PdfReader(out / "reports" / "class-summary.pdf").pages)
    assert "Hand-ins to look at together" in summary and "lea" in summary.split("Hand-ins to look at together")[1]
    reports = list((out / "reports").rglob("*.pdf"))
    assert len(reports) > 3  # the class summary and each hand-in's reports
    for report in reports:
        if report.name != "class-summary.pdf":
            text = " ".join(page.extract_text() for page in PdfReader(report).pages).lower()
            assert "similar" not in text and "look at these together" not in text, report.name
    for path in out.glob("*.json"):
        assert "look at these together" not in path.read_text() and "shared_fingerprints" not in path.read_text()
    assert sorted(p.name for p in (out / "similarity").iterdir()) == ["similarity.csv", "similarity.html",
                                                                      "similarity.json"]
    # Run again on its own, after grading: the same pairs, found from where the results say the class is.
    again = cli("similarity", str(out))
    assert again.exit_code == 0, again.output
    assert "1 pair(s) at or above 0.50 among 3 hand-ins" in again.output


def test_the_instructor_pages_show_similar_latest_attempts_and_students_cannot_reach_them(tmp_path):
    from starlette.testclient import TestClient

    from tests.serve_kit import login, make_class, upload, wait_graded

    def files(name: str) -> list[tuple[str, bytes]]:
        folder = CORPUS / "cifar-convnet" / name
        return [(f, (folder / f).read_bytes()) for f in ("convnet.py", "answers.yaml")]

    served = make_class(tmp_path)
    with TestClient(served.app(workers=1)) as alice:
        bob, carol, teacher = (TestClient(alice.app) for _ in range(3))
        for client, who, name in ((alice, "alice", "lea"), (bob, "bob", "olga"), (carol, "carol", "kim")):
            login(client, served.tokens[who])
            assert upload(client, files(name)).status_code in (200, 303)
        for client in (alice, bob, carol):
            wait_graded(client, 1)
        login(teacher, served.tokens["instructor"])
        assert 'href="/instructor/similarity"' in teacher.get("/instructor").text
        page = teacher.get("/instructor/similarity")
        assert page.status_code == 200
        assert "Hand-ins to look at together" in page.text and "Students never see this page." in page.text
        assert "Alice Martin" in page.text and "Bob Chen" in page.text
        assert "similar: look at these together: 2 answer(s) few others gave, 2 of them wrong" in page.text
        for student in (alice, bob):
            denied = student.get("/instructor/similarity", follow_redirects=False)
            assert denied.status_code in (303, 403, 404) and "look at these together" not in denied.text
            assert "similar" not in student.get("/attempts/1").text.lower()


def test_the_same_class_gives_the_same_scores_in_every_process(tmp_path):
    """Winnowing keeps the smallest hash of each window: with Python's per-process string hash the
    fingerprints, and so the scores, would change from run to run."""
    import subprocess
    import sys

    code = ("import json, sys; from pathlib import Path; from grader import api; "
            "r = api.similarity(Path(sys.argv[1]), 'mlp-backprop', root=Path(sys.argv[2]), write=False); "
            "print(json.dumps([(p.a, p.b, p.code, p.shared_fingerprints) for p in r.pairs]))")
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path), str(CORPUS / "mlp-backprop")],
                           capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}, check=True,
                           cwd=ROOT).stdout
            for seed in ("1", "2")]
    assert runs[0] == runs[1] and json.loads(runs[0])
