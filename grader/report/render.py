"""Render results to HTML and PDF with Jinja2 + WeasyPrint.

A ``ReportRenderer`` is made by whoever renders (a batch's report writer, one ``gradelab
report``) and reused for every report it writes: the Jinja environment, the font configuration and
the parsed stylesheet are built once, which is most of what makes a report cheap.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

import grader
from grader.atomic import replacing
from grader.errors import ReportError
from grader.results import Kind, Status, SubmissionResult
from grader.reveal import Audience, hidden_points, student_result

if TYPE_CHECKING:
    from grader.similarity.ranking import SimilarityReport

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def show_value(value: Any) -> str:
    """A value as reports and pages print it: floats to six significant digits, lists and mappings
    item by item."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {show_value(v)}" for k, v in value.items())
    return "—" if value is None else str(value)


_MD_CODE = re.compile(r"`([^`\n]+)`")
_MD_STRONG = re.compile(r"\*\*([^*\n]+)\*\*")


def inline_markdown(value: Any) -> Markup:
    """A message's inline Markdown (`code`, **bold**) as HTML, everything else escaped: messages
    are written in Markdown for the terminal and Gradescope, and print their backticks raw on a
    page or in a PDF otherwise. Escaped first, so a student's text inside a message stays text."""
    text = str(escape("" if value is None else value))
    text = _MD_CODE.sub(r"<code>\1</code>", text)
    return Markup(_MD_STRONG.sub(r"<strong>\1</strong>", text))


def _number(value: Any) -> float:
    """A number from a result's JSON, where inf and NaN travel as strings."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _sci(value: Any, digits: int = 2) -> str:
    number = _number(value)
    if math.isfinite(number):
        return f"{number:.{digits}e}"
    return "∞" if number > 0 else "—"


def submission_context(result: SubmissionResult, audience: Audience, *, figures: bool = True) -> dict[str, Any]:
    """Everything the per-submission template shows, derived from the result alone; a student's
    report from the student's view of it (``reveal``), as their table and JSON are. ``figures``:
    draw the training curves (matplotlib, imported only then; the server's pages do without)."""
    audience = Audience.of(audience)
    student = audience is Audience.student
    hidden_count, hidden_score, hidden_max = hidden_points(result) if student else (0, 0.0, 0.0)
    checks = student_result(result).checks if student else list(result.checks)
    answers, comparisons, drawn, counterexamples = [], [], [], []
    for c in checks:
        if isinstance(c.details.get("counterexample"), dict) and c.details["counterexample"].get("statements"):
            counterexamples.append({**c.details["counterexample"], "check": c.title})
        expected = c.expected if isinstance(c.expected, dict) else {}
        for row in c.details.get("answers", []):
            shown = {**row, "check": c.title}
            if row.get("field") in expected:  # a wrong answer, and a reader who may see the reference's
                shown["expected"] = expected[row["field"]]
            answers.append(shown)
        for row in c.details.get("comparisons", []):
            comparisons.append({**row, "check": c.title, "rel_error": _number(row.get("rel_error")),
                                "tolerance": _number(row.get("tolerance"))})
        if not figures:
            continue
        from grader.report.plots import bands_png, curves_png

        bands = c.details.get("bands")
        if isinstance(bands, dict) and isinstance(bands.get("panels"), dict):
            drawn.append({"title": f"{c.title}: loss bands",
                          "src": bands_png(str(bands.get("title") or c.title), bands["panels"],
                                           str(bands.get("xlabel") or "step"))})
        if c.details.get("curves"):
            drawn.append({"title": c.title, "src": curves_png(c.title, c.details["curves"])})
    score, max_score = result.score, result.max_score  # the grade, hidden checks included, for every reader
    written = [{"title": c.title, "question": c.details.get("question", ""), "answer": c.details.get("answer"),
                "status": c.status, "score": c.score, "max_score": c.max_score, "review": c.details.get("review"),
                "truncated": c.details.get("truncated", False)} for c in checks if c.kind == Kind.written]
    waiting = [c for c in checks if c.status == Status.awaiting_review]
    return {
        "written": written, "awaiting": len(waiting), "awaiting_points": sum(c.max_score for c in waiting),
        "r": result, "audience": audience, "checks": checks, "answers": answers,
        "comparisons": comparisons, "figures": drawn, "counterexamples": counterexamples, "score": score, "max_score": max_score,
        "percent": 100 * score / max_score if max_score else 0.0,
        "hidden_count": hidden_count, "hidden_score": hidden_score, "hidden_max": hidden_max, "expected_column": any("expected" in a for a in answers),
    }


def class_context(results: list[SubmissionResult], lab_title: str) -> dict[str, Any]:
    from grader.report.plots import histogram_png

    results = sorted(results, key=lambda r: r.submission)
    order: dict[str, str] = {}
    for r in results:
        for c in r.checks:
            order.setdefault(c.id, c.title)
    rates = []
    for check_id, title in order.items():
        outcomes = [c for r in results for c in r.checks if c.id == check_id]
        passed = sum(1 for c in outcomes if c.status == Status.passed)
        rates.append({"id": check_id, "title": title, "passed": passed, "total": len(outcomes),
                      "rate": 100 * passed / len(outcomes) if outcomes else 0.0})
    diagnoses: Counter[str] = Counter(d for r in results for c in r.checks for d in c.diagnoses)
    from grader.review.summary import written_summary
    percents = [r.percent for r in results]
    return {
        "lab_title": lab_title, "results": results, "rates": rates, "written": written_summary(results),
        "awaiting": sum(len(r.awaiting_review) for r in results),
        "diagnoses": diagnoses.most_common(10),
        "histogram": histogram_png(percents) if results else None,
        "mean": sum(percents) / len(percents) if percents else 0.0,
        "generated": datetime.now(UTC), "grader_version": grader.__version__,
    }


class ReportRenderer:
    def __init__(self, templates: Path = TEMPLATES) -> None:
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        self.templates = templates
        self.env = Environment(loader=FileSystemLoader(templates), autoescape=select_autoescape(["html", "j2"]),
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters["fmt"] = show_value
        self.env.filters["sci"] = _sci
        self.env.filters["md"] = inline_markdown
        self.font_config = FontConfiguration()
        self.css = CSS(filename=str(templates / "report.css"), font_config=self.font_config)
        self._lock = threading.Lock()  # WeasyPrint shares the font configuration: one layout at a time

    def submission_html(self, result: SubmissionResult, audience: Audience = Audience.instructor,
                        standalone: bool = True) -> str:
        """``standalone`` inlines the stylesheet (an HTML file to open); the PDF path passes the
        parsed stylesheet instead, so WeasyPrint does not parse it again for every report."""
        return self.env.get_template("report.html.j2").render(
            **submission_context(result, audience), inline_css=self._inline_css(standalone))

    def class_html(self, results: list[SubmissionResult], lab_title: str, standalone: bool = True,
                   similarity: SimilarityReport | None = None) -> str:
        """``similarity``: a page of pairs to look at together (``grader.similarity``), for the
        instructor's summary only."""
        return self.env.get_template("class_summary.html.j2").render(
            **class_context(results, lab_title), similarity=similarity, inline_css=self._inline_css(standalone))

    def _inline_css(self, standalone: bool) -> str:
        return (self.templates / "report.css").read_text(encoding="utf-8") if standalone else ""

    def pdf(self, html: str, path: Path) -> Path:
        from weasyprint import HTML

        try:
            with self._lock, replacing(path) as tmp:
                HTML(string=html, base_url=str(self.templates)).write_pdf(
                    tmp, stylesheets=[self.css], font_config=self.font_config)
        except Exception as exc:  # WeasyPrint, cairo, fonts: one line for the user
            raise ReportError(f"{path}: could not render the PDF: {type(exc).__name__}: {exc}") from exc
        return path

    def write(self, result: SubmissionResult, path: Path, audience: Audience = Audience.instructor,
              html: bool = False) -> Path:
        """The PDF at ``path``; with ``html``, the same report as HTML beside it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if html:
            path.with_suffix(".html").write_text(self.submission_html(result, audience), encoding="utf-8")
        return self.pdf(self.submission_html(result, audience, standalone=False), path)

    def write_class(self, results: list[SubmissionResult], lab_title: str, path: Path, html: bool = False,
                    similarity: SimilarityReport | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if html:
            path.with_suffix(".html").write_text(self.class_html(results, lab_title, similarity=similarity),
                                                 encoding="utf-8")
        return self.pdf(self.class_html(results, lab_title, standalone=False, similarity=similarity), path)
