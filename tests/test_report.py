"""Feedback reports: what a student reads must hold the right scores, statuses and expectations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pypdf import PdfReader
from typer.testing import CliRunner

from grader.cli import app
from grader.results import CheckResult, Status
from tests.conftest import CIFAR_SUBMISSIONS

GOLDENS = Path(__file__).parent / "goldens"
FIXED = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def fixed(result):
    return result.model_copy(update={"graded_at": FIXED, "grader_version": "test", "duration_s": 0})


def test_a_flawed_hand_in_report_holds_scores_statuses_and_expected_values(cifar_class, tmp_path, renderer):
    path = renderer.write(fixed(cifar_class["in-channels-confusion"]), tmp_path / "r.pdf")
    text = pdf_text(path)
    assert "15.25 / 20" in text and "76.2 %" in text and "so far: 3 points pending" in text
    assert "Submission: in-channels-confusion" in text
    assert "partial" in text and "failed" in text and "passed" in text
    assert "25 600 = 32·5·5·32 takes 32 input channels" in text
    assert "layers.conv1.params 25600 2432 0 %" in text  # the answer sheet: answer, expected, credit
    assert "Hint: A conv layer has (k·k·z + 1)·n parameters" in text
    assert "(hidden)" in text  # instructors see which checks students do not


def test_the_student_report_leaves_hidden_checks_out(cifar_class, tmp_path, renderer):
    path = renderer.write(fixed(cifar_class["wrong-receptive-field"]), tmp_path / "r.pdf", audience="student")
    text = pdf_text(path)
    assert "Receptive fields" not in text and "receptive_field.conv2" not in text
    assert "3 hidden check(s) are not shown" in text
    # What they gave, not only their maximum: the visible rows and this add up to the total.
    hidden = [c for c in cifar_class["wrong-receptive-field"].checks if c.visibility.value != "public"]
    earned, most = sum(c.score for c in hidden), sum(c.max_score for c in hidden)
    assert earned < most
    assert f"they gave {earned:g} of their {most:g} points, included in the total" in " ".join(text.split())


def test_a_hand_in_that_crashed_at_import_still_gets_a_clear_report(cifar_class, tmp_path, renderer):
    text = pdf_text(renderer.write(fixed(cifar_class["syntax-error"]), tmp_path / "r.pdf"))
    assert "9 / 20" in text
    assert "your module could not be imported: SyntaxError: expected ':': def forward(self, x) (convnet.py, line 21)" in text


def test_curves_and_comparisons_from_any_check_get_their_sections(cifar_class, tmp_path, renderer):
    """Reports must show what future check kinds put in ``details`` without template changes."""
    extra = CheckResult(
        id="train", title="Training (baseline)", kind="training", visibility="public", status=Status.passed,
        score=3, max_score=3, details={
            "curves": {"loss": {"train": [2.3, 1.7, 1.2], "reference": [2.2, 1.6, 1.1]},
                       "accuracy": {"train": [0.2, 0.5, 0.7], "test": [0.2, 0.45, 0.6], "threshold": 0.5}},
            "comparisons": [{"name": "grad Wh", "rel_error": 3.1e-9, "tolerance": 1e-6},
                            {"name": "grad by", "rel_error": 0.5, "tolerance": 1e-6}]})
    result = fixed(cifar_class["correct"])
    result = result.model_copy(update={"checks": [*result.checks, extra]})
    html = renderer.submission_html(result)
    assert html.count('<img src="data:image/png;base64,') == 1
    text = pdf_text(renderer.write(result, tmp_path / "r.pdf"))
    assert "Comparisons with the reference" in text and "grad Wh 3.10e-09 1e-06 within" in text
    assert "grad by 5.00e-01 1e-06 above" in text
    assert "Training" in text


def test_a_diverged_run_and_a_wrong_shape_render_as_words_not_a_crash(cifar_class, tmp_path, renderer):
    """Results carry inf and NaN as strings ("inf"); the report must still render them."""
    extra = CheckResult(
        id="train", title="Training that diverged", kind="training", visibility="public", status=Status.failed,
        score=0, max_score=2, details={
            "curves": {"loss": {"train": [0.7, 5.0, "inf", "nan"]}, "accuracy": {"test": [0.5, 0.5, None, None]}},
            "comparisons": [{"name": "grad Wy", "rel_error": "inf", "tolerance": 1e-6}]})
    result = fixed(cifar_class["correct"])
    result = result.model_copy(update={"checks": [*result.checks, extra]})
    text = pdf_text(renderer.write(result, tmp_path / "r.pdf"))
    assert "grad Wy ∞ 1e-06 above" in text


def test_the_html_report_matches_its_golden_file(cifar_class, update_goldens, renderer):
    html = renderer.submission_html(fixed(cifar_class["missing-plus-one"]))
    golden = GOLDENS / "missing-plus-one.html"
    if update_goldens or not golden.exists():
        golden.write_text(html, encoding="utf-8")
    assert html == golden.read_text(encoding="utf-8"), "run pytest --update-goldens if the change is intended"


def test_the_class_summary_counts_passes_and_diagnoses(cifar_class, tmp_path, renderer):
    results = [fixed(r) for r in cifar_class.values()]
    path = renderer.write_class(results, results[0].lab_title, tmp_path / "class.pdf")
    text = pdf_text(path)
    assert f"{len(results)} submissions" in text
    assert "Output-size rule of a convolution (conv-output-size) 12 / 16 75 %" in text
    assert "missing-plus-one 2" in text  # diagnosed on two checks of one hand-in
    assert "correct 17 / 20 85" in text


def test_grade_writes_one_pdf_per_submission_and_the_class_summary(class_copy, tmp_path):
    root = class_copy("correct", "syntax-error")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["grade", str(root), "--lab", "cifar-convnet", "--out", str(out),
                                      "--wall-time", "4", "--html"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    reports = out / "reports"
    assert sorted(p.name for p in reports.glob("*.pdf")) == ["class-summary.pdf"]
    for reader in ("students", "instructor"):
        assert sorted(p.name for p in (reports / reader).glob("*.pdf")) == ["correct.pdf", "syntax-error.pdf"]
    assert (reports / "instructor" / "correct.html").exists()
    words = " ".join(result.output.split())
    assert f"Reports: {reports.resolve()}/ — students/ (send each student theirs), instructor/ (yours: everything)" \
        in words
    assert "17 / 20" in pdf_text(reports / "instructor" / "correct.pdf")  # 3 points of a written answer pending
    assert "instructor report" in pdf_text(reports / "instructor" / "correct.pdf")
    assert "student report" in pdf_text(reports / "students" / "correct.pdf")


def test_self_check_writes_a_student_report(tmp_path):
    target = tmp_path / "me.pdf"
    result = CliRunner().invoke(app, ["check", str(CIFAR_SUBMISSIONS / "missing-floor"), "--lab", "cifar-convnet",
                                      "--pdf", str(target), "--wall-time", "4"])
    assert result.exit_code == 1
    text = pdf_text(target)
    assert "self-check (public checks)" in text and "12 / 17" in text and "without the floor" in text


def test_report_renders_from_a_result_file_and_refuses_other_files(cifar_class, tmp_path):
    source = tmp_path / "r.json"
    source.write_text(cifar_class["correct"].to_json())
    runner = CliRunner()
    ok = runner.invoke(app, ["report", str(source), "--out", str(tmp_path / "r.pdf"), "--student"])
    assert ok.exit_code == 0 and (tmp_path / "r.pdf").exists()
    bad = runner.invoke(app, ["report", str(tmp_path / "r.pdf"), "--out", str(tmp_path / "x.pdf")])
    assert bad.exit_code == 2 and "ReportError" in bad.output and "not a gradelab result" in bad.output


def test_a_figure_asked_for_again_is_drawn_once_and_other_data_draws_anew(monkeypatch):
    """A report's HTML and its PDF, the student's report and the instructor's, show the same
    curves: drawn once (a third of a second each), never mixed up with another's."""
    from grader.report import plots

    drawn = []
    real = plots._data_uri
    monkeypatch.setattr(plots, "_data_uri", lambda fig: drawn.append(fig) or real(fig))
    panels = {"loss": {"train": [2.3, 1.2, float("nan")], "threshold": 1.0}}
    first = plots.curves_png("a title no other test uses", panels)
    assert plots.curves_png("a title no other test uses", panels) == first and len(drawn) == 1
    other = plots.curves_png("a title no other test uses", {"loss": {"train": [2.3, 1.1, 0.9], "threshold": 1.0}})
    assert other != first and len(drawn) == 2
    assert plots.bands_png("a title no other test uses", {"yours": {"m": {"low": [1, 2], "high": [2, 3]}}}) != first
    assert len(drawn) == 3
