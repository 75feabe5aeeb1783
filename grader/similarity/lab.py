"""The lab's side of a comparison: its template and reference answers, its written questions and
its thresholds, applied to hand-ins read by ``handins``. ``grader.api.similarity`` (a graded
class) and the server's instructor page (each student's latest attempt) both come here."""

from __future__ import annotations

from pathlib import Path

from grader.checks.registry import BoundLab
from grader.errors import LabError
from grader.similarity.handins import Work, read_work, template_work, written_questions
from grader.similarity.ranking import SimilarityReport, compare


def compare_works(lab: BoundLab, works: list[Work], boilerplate: list[str] | None = None) -> SimilarityReport:
    try:
        reference = lab.reference_answers
    except LabError:  # a student edition has none: no value is known to be wrong
        reference = {}
    return compare(works, lab.manifest.similarity, lab=lab.id, lab_title=lab.manifest.title,
                   reference_answers=reference, template=template_work(lab), boilerplate=boilerplate or [],
                   questions={q: text for q, (_f, _c, text) in written_questions(lab).items()})


def compare_hand_ins(lab: BoundLab, hand_ins: list[tuple[Path, str, str]]) -> SimilarityReport:
    """Hand-ins given one by one, each as (path, name, student)."""
    return compare_works(lab, [read_work(lab, Path(p), name, student) for p, name, student in hand_ins])
