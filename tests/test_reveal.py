"""What a student sees teaches without giving the answers away; instructors see everything.

The sweep below grades, in check mode, every bundled hand-in of every lab, plus the lab's template
(what a student runs `check` on first) and the template with every mistake the lab declares
written on its sheet, and reads everything a student gets back: the table `check` prints, its
JSON, the HTML and the PDF report. What counts as a secret, and how it is found whatever its
formatting, is written in ``tests/leaks.py``.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from tests.conftest import FAST_LIMITS, ROOT, cli
from tests.leaks import (
    Secrets,
    answer_secrets,
    expected_secrets,
    hidden_sayings,
    own_text,
    public_text,
    student_json,
)
from tests.test_report import pdf_text

LABS = ["cifar-convnet", "mlp-backprop", "layers-from-scratch", "cifar-training", "vgg-batchnorm"]
# Labs whose reference values a student may not see. The other two compare with torch's own ops
# and with counts and shapes their handout states: nothing there is secret.
WITH_SECRETS = {"cifar-convnet", "mlp-backprop", "vgg-batchnorm"}


def _nested(paths: dict[str, object]) -> dict:
    out: dict = {}
    for path, value in paths.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def extra_hand_ins(lab, folder: Path) -> list[Path]:
    """The template as it is handed out, and (for a lab with a sheet) the template with the value
    of every declared mistake, or else partial answer, on its sheet: the messages that used to
    print the right number."""
    template = folder / "template"
    shutil.copytree(lab.folder / lab.manifest.template, template)
    made = [template]
    wrong = {}
    for check in lab.checks:
        for rule in getattr(check.params, "fields", []) if check.spec.kind == "answer" else []:
            choice = (rule.mistakes or rule.alternatives or [None])[0]
            if choice is not None:
                wrong[rule.path] = choice.value
    if wrong:
        mistakes = folder / "sheet-mistakes"
        shutil.copytree(template, mistakes)
        (mistakes / lab.manifest.interface.answers_file).write_text(yaml.safe_dump(_nested(wrong)))
        made.append(mistakes)
    return made


def table_text(result) -> str:
    """What `check` prints, on a terminal wide enough that no number is wrapped."""
    from grader.cli.feedback import student_report

    console = Console(width=400, record=True, file=io.StringIO())
    console.print(student_report(result))
    return console.export_text()


@pytest.mark.parametrize("lab_id", LABS)
def test_no_student_output_gives_an_answer_away(lab_id, tmp_path, renderer):
    from grader import api
    from grader.lab.manifest import LimitsOverride
    from grader.options import Mode, RunOptions
    from grader.reveal import student_result
    from grader.submission import discover_submissions

    lab = api.load_lab(lab_id)
    paths = discover_submissions(ROOT / "submissions" / lab_id) + extra_hand_ins(lab, tmp_path / "extra")
    limits = LimitsOverride(**FAST_LIMITS)
    checked = api.grade(paths[0].parent, lab, tmp_path / "check", RunOptions(mode=Mode.check, limits=limits,
                                                                              reports=False), paths=paths)
    hidden = [c.spec.id for c in lab.checks if c.spec.visibility.value == "hidden"]
    instructor = {}
    if hidden:  # what the hidden checks say to an instructor
        graded = api.grade(paths[0].parent, lab, tmp_path / "grade", RunOptions(only=tuple(hidden), limits=limits,
                                                                                 reports=False), paths=paths)
        instructor = {r.submission: r for r in graded.results}
    by_name = {r.submission: r for r in checked.results}
    assert len(by_name) == len(paths)

    public, answers = public_text(lab), answer_secrets(lab)
    leaks, found_any, instructor_sees = [], False, False
    for path in paths:
        raw = by_name[path.stem if path.is_file() else path.name]
        secrets = (answers | expected_secrets(raw)).without(public).without(own_text(path))
        sayings = hidden_sayings(instructor[raw.submission], raw) if raw.submission in instructor else set()
        found_any |= bool(secrets) or bool(sayings)
        instructor_sees |= bool(secrets.found_in(raw.to_json()))
        shown = student_result(raw)
        outputs = {
            "table": table_text(shown),
            "json": student_json(shown),
            "html": renderer.submission_html(raw, "student"),
            "pdf": pdf_text(renderer.write(raw, tmp_path / "pdf" / f"{raw.submission}.pdf", "student")),
        }
        for where, text in outputs.items():
            flat = " ".join(text.split()).lower()
            for leak in secrets.found_in(text) + [repr(s) for s in sorted(sayings) if s in flat]:
                leaks.append(f"{raw.submission} ({where}): {leak}")
    assert found_any == (lab_id in WITH_SECRETS)
    # The detector is not blind: the instructor's JSON of the same results shows what students do not see.
    assert instructor_sees == (lab_id in WITH_SECRETS)
    assert leaks == []


def test_the_untouched_template_through_the_cli_prints_no_expected_value(tmp_path):
    """The report that opened the issue: `check` on the cifar-convnet template printed every
    field's expected value. Through the real command, table, JSON, PDF and HTML alike."""
    from grader.api import load_lab

    lab = load_lab("cifar-convnet")
    template = ROOT / "reference" / "cifar-convnet" / "template"
    secrets: Secrets = answer_secrets(lab).without(public_text(lab))
    assert {2432, 51264, 1191170} <= secrets.numbers and [32, 32, 32] in secrets.lists

    table = cli("check", str(template), "--lab", "cifar-convnet", "--wall-time", "4")
    assert table.exit_code == 1 and "layer-shapes" in table.output
    as_json = cli("check", str(template), "--lab", "cifar-convnet", "--wall-time", "4", "--format", "json",
                  "--pdf", str(tmp_path / "me.pdf"), "--html")
    texts = {"table": table.output, "json": as_json.stdout, "pdf": pdf_text(tmp_path / "me.pdf"),
             "html": (tmp_path / "me.html").read_text(encoding="utf-8")}
    assert {where: secrets.found_in(text) for where, text in texts.items()} == {w: [] for w in texts}
    assert "`layers.conv1.output` = []: wrong — `layers.conv1.output` is empty" in " ".join(table.output.split())


def test_instructors_see_every_value(cifar_class, renderer):
    """The same kind of result, read by an instructor: reference answers, hidden checks and all."""
    result = cifar_class["in-channels-confusion"]
    by_id = {c.id: c for c in result.checks}
    assert by_id["total-params"].expected == {"total_params": 1191170}
    assert "(expected 1191170)" in by_id["total-params"].message
    html = renderer.submission_html(result, "instructor")
    assert "Expected" in html and "1191170" in html and "(hidden)" in html


def test_a_kind_that_declares_nothing_shows_students_the_verdict_only():
    """Safe by default: a new kind's message may quote anything; without a disclosure, students
    see the verdict, its named mistake and the hint."""
    from grader.results import CheckResult, Disclosure, Status
    from grader.reveal import student_check

    check = CheckResult(id="new", title="A new kind", kind="new_kind", visibility="public", status=Status.failed,
                        score=0, max_score=1, message="you returned 3, the answer is 51264", expected=51264,
                        got=3, diagnoses=["off-by-one"], hint="Count again.", disclosure=Disclosure(),
                        details={"reference": [51264]})
    shown = student_check(check)
    assert "51264" not in shown.model_dump_json()
    assert shown.message == ("Not passed (recognised mistake: off-by-one); the details are for your instructor. "
                             "See the hint.")
    assert shown.hint == "Count again." and shown.status == Status.failed


def test_a_manifest_narrows_what_a_kind_shows(tmp_path):
    """cifar-convnet narrows its model checks: the structure shows the student's layers, not the
    reference's (their padding is a sheet answer), and the count shows no number at all."""
    from grader.api import load_lab
    from grader.reveal import disclosure_for

    lab = load_lab("cifar-convnet")
    shows = {c.spec.id: [r.value for r in disclosure_for(c).shows] for c in lab.checks}
    assert shows["model-structure"] == ["got"] and shows["model-param-count"] == []
    assert shows["model-output-shape"] == ["got", "inputs", "expected"]  # the kind's default: shapes are public
    assert shows["layer-shapes"] == ["got"]
