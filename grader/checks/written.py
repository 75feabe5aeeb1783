"""``written``: a question answered in a sentence or a paragraph, graded by a person with a rubric.

The grader cannot judge "Why do we use spatial pooling?", so the check only takes the answer
(from the answer sheet's text field, or from a notebook's markdown cell tagged with the
question's id), caps it, and leaves it "awaiting review": its points are in the total as pending, not yet
earned. A person grades it question by question in the grading pages (``grader.serve.review``);
the grades live beside the results (``grader.review.store``) and are merged into every result read
(``grader.review.merge``), so regrading the automatic part never loses them.

A blank or missing answer awaits review too, shown as "no answer" (all blanks are one group on the
grading page: one key grades them): grading it 0 without a person would change the total of every
hand-in made before the lab had the question. Rubric items carry points (a
positive item adds from 0, a negative one takes away from full marks, as ``scoring`` says) and a
comment the student reads; an answer stores the *ids* of the items applied, so an item edited
once rescores every answer it is on.

The answer is the student's own text: shown to them (``got``), escaped wherever it is shown,
never interpreted.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Literal

from pydantic import Field, field_validator

from grader.checks.registry import CheckKind, KindParams, register_check
from grader.lab.manifest import Need, Reveal
from grader.results import Disclosure, Feedback, Outcome, Status

AWAITING = "Awaiting review: your instructor grades this answer."
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # not text: UTF-8 cannot encode one (the digest, the files)


class RubricItem(KindParams):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40,
                    description="Stable id: grades store it, so editing the item rescores every answer it is on.")
    points: float = Field(ge=-100, le=100, description="Added to the answer's score (negative: taken away).")
    comment: str = Field(min_length=1, max_length=500, description="What the student reads when the item is applied.")


class WrittenParams(KindParams):
    question: str = Field(min_length=1, max_length=2000, description="The question, as students read it.")
    field: str | None = Field(None, description="The answer sheet's text field (type str) holding the answer.")
    cell: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$",
                             description="The tag of the notebook markdown cell holding the answer "
                                         "(default: the check's id).")
    scoring: Literal["positive", "negative"] = Field(
        "positive", description="positive: an answer starts at 0 and items add; negative: it starts at full "
                                "points and items take away. Either way the score stays within [0, points].")
    max_chars: int = Field(4000, ge=50, le=20000, description="Characters of the answer kept (the rest is cut, "
                                                               "and the grader says so).")
    model_answer: str = Field("", max_length=4000, description="For graders only: what a good answer says.")
    rubric: list[RubricItem] = Field(min_length=1, max_length=9,
                                     description="At most 9 items: keys 1–9 apply them on the grading page.")

    @field_validator("rubric")
    @classmethod
    def _unique_ids(cls, items: list[RubricItem]) -> list[RubricItem]:
        ids = [i.id for i in items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rubric item ids must be unique: {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
        return items


def written_score(points: float, scoring: str, applied: list[float], adjust: float = 0.0) -> float:
    """An answer's score from the points of the items applied to it, within [0, points]."""
    start = points if scoring == "negative" else 0.0
    return round(min(max(start + sum(applied) + adjust, 0.0), points), 2)


def clean_answer(text: str, max_chars: int) -> tuple[str, bool]:
    """The answer as stored: control characters dropped, lone surrogates (a notebook's JSON may
    hold ``"\\ud800"``) replaced by U+FFFD, Unicode composed, blank lines at the ends trimmed, cut
    at ``max_chars`` (and whether it was)."""
    text = _SURROGATE.sub("\ufffd", text)
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()
    return (text[:max_chars], True) if len(text) > max_chars else (text, False)


def answer_digest(text: str) -> str:
    """Which answer a grade was given to: a grade whose answer has changed (a new hand-in) no
    longer applies."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@register_check("written")
class WrittenCheck(CheckKind):
    Params = WrittenParams
    summary = "A written answer (answer-sheet text or a tagged notebook cell) graded by a person with a rubric."
    disclosure = Disclosure(shows=[Reveal.got], details={"question": [], "answer": [Reveal.got], "review": []})

    def refers_to(self, params: WrittenParams) -> list[Need]:
        return [Need.field(params.field)] if params.field else []

    def run(self, ctx, params: WrittenParams) -> Outcome:
        sub = ctx.submission
        tag = params.cell or ctx.check_id
        raw = sub.written.get(tag)
        if raw is None and params.field and params.field in sub.answers:
            raw = sub.answers[params.field]
        text, truncated = clean_answer(raw if isinstance(raw, str) else "", params.max_chars)
        details = {"question": params.question, "answer": text, "answer_sha": answer_digest(text),
                   "truncated": truncated}
        message = Feedback(AWAITING)
        if not text:
            where = [f"`{params.field}` in the answer sheet"] if params.field else []
            where.append(f"a markdown cell of your notebook tagged `{tag}`")
            problem = sub.answer_problems.get(params.field or "", "")
            why = f": {problem}" if problem and "is missing" not in problem else ""
            message = Feedback(f"No answer found{why} (write it in {' or '.join(where)}).")
        if truncated:
            message.say(f"Only its first {params.max_chars} characters were kept.")
        return Outcome(status=Status.awaiting_review, fraction=0.0, message=message.text(), parts=message.parts,
                       details=details)
