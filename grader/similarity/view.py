"""What ``gradelab similarity`` writes for the instructor, under ``OUT/similarity/`` (never under
``reports/``, whose PDFs go to students): the ranked pairs as CSV and JSON, and an HTML page with
each listed pair's matched code side by side, highlighted, its shared answers and phrases.

Everything shown comes from hand-ins: names, code and phrases are escaped by the templates'
autoescape, and every CSV cell goes through ``export.cells.inert``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from markupsafe import Markup, escape

from grader.atomic import write_atomic
from grader.export.cells import inert
from grader.similarity.ranking import Pair, SimilarityReport

FOLDER = "similarity"
CSV_FILE, JSON_FILE, HTML_FILE = "similarity.csv", "similarity.json", "similarity.html"
HOW_TO_READ = (
    "Every student starts from the same template, so most hand-ins share much of their code: the template's "
    "own lines, and what nearly everyone writes, are subtracted before anything is counted. What is left is "
    "compared three ways: code (identifiers, comments, layout and order do not matter), the answer sheet "
    "(a value few others gave counts more, a wrong one most: two people rarely make the same rare mistake "
    "on their own), and written answers (shared wording beyond the question's words). A listed pair is a "
    "reason to look at the two hand-ins together, not a finding: students who worked together as allowed, "
    "or who followed the same tutorial, are listed too.")


def csv_text(report: SimilarityReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "a", "student_a", "b", "student_b", "b_from", "score", "code", "answers", "written",
                     "similar", "reason"])
    for rank, p in enumerate(report.pairs, 1):
        writer.writerow([rank, *map(inert, (p.a, p.student_a, p.b, p.student_b, p.group_b)),
                         f"{p.score:.3f}", f"{p.code:.3f}", f"{p.answers:.3f}", f"{p.written:.3f}",
                         "yes" if p.similar else "no", inert(p.reason)])
    return out.getvalue()


def highlighted(code: str, spans: list[tuple[int, int]]) -> Markup:
    """The code, escaped, with each matched span in ``<mark>``."""
    parts, at = [], 0
    for start, end in sorted(spans):
        start, end = max(start, at), min(end, len(code))
        if end <= start:
            continue
        parts.append(escape(code[at:start]))
        parts.append(Markup("<mark>") + escape(code[start:end]) + Markup("</mark>"))
        at = end
    parts.append(escape(code[at:]))
    return Markup("").join(parts)


def pair_context(report: SimilarityReport, pair: Pair) -> dict[str, object]:
    return {"pair": pair, "code_a": highlighted(report.sources.get(pair.a, ""), pair.spans_a),
            "code_b": highlighted(report.sources.get(pair.b, ""), pair.spans_b)}


def context(report: SimilarityReport) -> dict[str, object]:
    return {"report": report, "listed": [pair_context(report, p) for p in report.similar],
            "others": [p for p in report.pairs if not p.similar], "how_to_read": HOW_TO_READ}


def html(report: SimilarityReport) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    from grader.report.render import TEMPLATES

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("similarity.html.j2").render(**context(report))


def write(report: SimilarityReport, out: Path) -> Path:
    """``out/similarity/`` with the CSV, the JSON and the HTML page; returns the folder."""
    folder = Path(out) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / CSV_FILE, csv_text(report))
    write_atomic(folder / JSON_FILE, report.model_dump_json(indent=1))
    write_atomic(folder / HTML_FILE, html(report))
    return folder


def read(out: Path) -> SimilarityReport | None:
    """The report written in ``out`` earlier, if any (and readable)."""
    try:
        return SimilarityReport.model_validate_json((Path(out) / FOLDER / JSON_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
