"""The three signals joined: one score per pair, a ranked list, a one-line reason for each.

A pair's score is ``1 − (1 − code)(1 − answers)(1 − written)``: any one strong signal lists the
pair, and weaker ones add up. Only pairs that share something rare are scored at all (each
signal's inverted index names them), so a class of 500 is not 124 750 comparisons. A pair from
two earlier classes (``--against``) is never compared: those years were looked at then.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from pydantic import BaseModel, Field

from grader.lab.manifest import SimilaritySettings
from grader.similarity.answers import AnswerIndex, SharedValue, flatten
from grader.similarity.fingerprints import CodeIndex, common_count
from grader.similarity.handins import Work
from grader.similarity.written import SharedPhrases, WrittenIndex

SIMILARITY_SCHEMA_VERSION = 1
LOOK_TOGETHER = "similar: look at these together"


class Pair(BaseModel):
    a: str
    b: str
    student_a: str
    student_b: str
    group_b: str = Field("class", description="``class``, or the earlier class ``b`` is from.")
    score: float
    code: float = 0.0
    answers: float = 0.0
    written: float = 0.0
    shared_fingerprints: int = 0
    code_share: float = Field(0.0, description="The share of the smaller hand-in's code fingerprints in the other.")
    shared_values: list[SharedValue] = Field(default_factory=list)
    shared_phrases: list[SharedPhrases] = Field(default_factory=list)
    similar: bool = False
    reason: str = ""
    spans_a: list[tuple[int, int]] = Field(default_factory=list, description="Matched code of ``a`` (offsets).")
    spans_b: list[tuple[int, int]] = Field(default_factory=list)


class SimilarityReport(BaseModel):
    """What ``gradelab similarity`` found: for instructors only (never in a student's report)."""

    schema_version: int = SIMILARITY_SCHEMA_VERSION
    lab: str
    lab_title: str
    settings: SimilaritySettings
    compared: int = Field(description="Hand-ins of this class compared.")
    against: int = Field(0, description="Hand-ins of earlier classes compared with them.")
    pairs: list[Pair] = Field(default_factory=list, description="Ranked; those at half the threshold or more.")
    notes: list[str] = Field(default_factory=list, description="What was left out of the comparison, and why.")
    sources: dict[str, str] = Field(default_factory=dict, description="The code of each hand-in of a listed pair.")
    seconds: float = 0.0

    @property
    def similar(self) -> list[Pair]:
        return [p for p in self.pairs if p.similar]


def _reason(pair: Pair, settings: SimilaritySettings) -> str:
    parts = []
    if pair.code >= settings.threshold / 2:
        parts.append(f"{pair.code_share:.0%} of the smaller hand-in's code beyond the template matches the "
                     f"other's ({pair.shared_fingerprints} fingerprints)")
    rare = [v for v in pair.shared_values if v.holders < common_count(v.answered, settings)]
    if rare and pair.answers >= settings.threshold / 4:
        wrong = [v for v in rare if v.wrong]
        shown = ", ".join(f"{v.field} = {v.value}" for v in (wrong or rare)[:3])
        parts.append(f"{len(rare)} answer(s) few others gave"
                     + (f", {len(wrong)} of them wrong ({shown})" if wrong else f" ({shown})"))
    for s in pair.shared_phrases:
        if s.share >= settings.threshold / 2 and s.phrases:
            longest = max(s.phrases, key=len)
            parts.append(f"shared wording in {s.question}: \u201c{longest[:80]}\u201d")
    head = LOOK_TOGETHER if pair.similar else "some overlap"
    return f"{head}: {'; '.join(parts)}" if parts else head


def compare(works: list[Work], settings: SimilaritySettings, *, lab: str, lab_title: str,
            reference_answers: dict[str, Any] | None = None, template: Work | None = None,
            boilerplate: tuple[str, ...] | list[str] = (), questions: dict[str, str] | None = None) -> SimilarityReport:
    """Rank the pairs of ``works`` (``group`` ``class``, and earlier classes against them)."""
    started = time.perf_counter()
    template = template or Work(name="template", student="template")
    code = CodeIndex([w.code for w in works], settings, [template.code, *boilerplate])
    sheets = AnswerIndex([w.answers for w in works], flatten(reference_answers or {}), settings)
    written = WrittenIndex([w.written for w in works], questions or {}, settings,
                           template_text=" ".join(template.written.values()))

    def comparable(i: int, j: int) -> bool:
        return works[i].group == "class" or works[j].group == "class"

    shared_code = code.shared_counts()
    candidates = set(shared_code)
    limit = common_count(len(works), settings)
    for docs in sheets.postings.values():
        if 1 < len(docs) < limit:
            candidates.update(itertools.combinations(docs, 2))
    candidates |= written.candidates()

    pairs = []
    for i, j in candidates:
        if not comparable(i, j):
            continue
        if works[i].group != "class":
            i, j = j, i
        key = (min(i, j), max(i, j))
        values, phrases = sheets.shared(i, j), written.shared(i, j)
        c = code.score(i, j, shared_code.get(key, 0))
        a, w = sheets.score(values), written.score(phrases)
        score = 1 - (1 - c) * (1 - a) * (1 - w)
        if score < settings.threshold / 2:
            continue
        pair = Pair(a=works[i].name, b=works[j].name, student_a=works[i].student, student_b=works[j].student,
                    group_b=works[j].group, score=round(score, 4), code=round(c, 4), answers=round(a, 4),
                    written=round(w, 4), shared_fingerprints=shared_code.get(key, 0),
                    code_share=round(code.share(i, j, shared_code.get(key, 0)), 4), shared_values=values,
                    shared_phrases=phrases, similar=score >= settings.threshold)
        pair.reason = _reason(pair, settings)
        if pair.similar and c >= settings.threshold / 4:  # a few stray matches are not worth highlighting
            pair.spans_a, pair.spans_b = code.matched(i, j)
        pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    by_name = {w.name: w for w in works}
    listed = {n for p in pairs if p.similar for n in (p.a, p.b)}
    notes = [f"{w.student} ({w.name}): {note}" for w in works for note in w.notes]
    return SimilarityReport(lab=lab, lab_title=lab_title, settings=settings,
                            compared=sum(w.group == "class" for w in works),
                            against=sum(w.group != "class" for w in works), pairs=pairs, notes=notes,
                            sources={n: by_name[n].code for n in sorted(listed)},
                            seconds=round(time.perf_counter() - started, 3))
