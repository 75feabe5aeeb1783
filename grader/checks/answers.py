"""``answer``: fields of the answer sheet against the reference answer sheet.

Declared alternatives earn partial credit (a parameter count without biases, say); declared
mistakes earn nothing but name what went wrong. Both are lab data, in the manifest. Each field
is scored on its own: a missing or mistyped field costs its share, not the whole check.

Students see their own answers and the named mistakes, never the reference answers (those are in
``expected``, which the reveal policy keeps for instructors).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from grader.checks.answer_slips import likely_slip
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.checks.values import show, values_match
from grader.intake.sheet_numbers import problem_diagnosis
from grader.lab.manifest import Need, Reveal
from grader.results import Disclosure, Feedback, Outcome


class Alternative(KindParams):
    value: Any
    credit: float = Field(gt=0, le=1, description="1: an equally right answer, accepted with its message as a note.")
    message: str


class Mistake(KindParams):
    value: Any
    message: str
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Diagnosis id, counted in class summaries.")


class FieldRule(KindParams):
    path: str
    alternatives: list[Alternative] = Field(default_factory=list)
    mistakes: list[Mistake] = Field(default_factory=list)


class AnswerParams(KindParams):
    fields: list[FieldRule] = Field(min_length=1, description="Answer fields; a bare string is a path.")
    rel_tol: float = Field(0.0, ge=0)
    abs_tol: float = Field(0.0, ge=0)

    @field_validator("fields", mode="before")
    @classmethod
    def _paths_as_rules(cls, v: Any) -> Any:
        return [{"path": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v


@register_check("answer")
class AnswerCheck(CheckKind):
    Params = AnswerParams
    summary = "Answer-sheet fields against the reference answers, with partial credit and named mistakes."
    disclosure = Disclosure(shows=[Reveal.got], details={"answers": [Reveal.got]})

    def refers_to(self, params: AnswerParams) -> list[Need]:
        return [Need.field(f.path) for f in params.fields]

    def run(self, ctx, params: AnswerParams) -> Outcome:
        problems = {f.path: p for f in params.fields if (p := ctx.submission.answer_problems.get(f.path))}
        if len(problems) == len(params.fields):  # nothing to grade: no sheet, or none of these fields
            return Outcome.error(Feedback("; ".join(dict.fromkeys(problems.values()))))
        credits, notes, expected, got, diagnoses, sheet = [], Feedback(), {}, {}, [], []
        for rule in params.fields:
            if rule.path in problems:
                credits.append(0.0)
                notes.say(problems[rule.path] + ".")
                if named := problem_diagnosis(problems[rule.path]):
                    diagnoses.append(named)
                sheet.append({"field": rule.path, "answer": None, "credit": 0.0})
                continue
            answer, truth = ctx.answer(rule.path), ctx.reference_answer(rule.path)
            sheet.append({"field": rule.path, "answer": answer})
            if values_match(answer, truth, params.rel_tol, params.abs_tol):
                credits.append(1.0)
                sheet[-1]["credit"] = 1.0
                continue
            expected[rule.path], got[rule.path] = truth, answer
            alt = next((a for a in rule.alternatives if values_match(answer, a.value)), None)
            mistake = next((m for m in rule.mistakes if values_match(answer, m.value)), None)
            notes.say(f"`{rule.path}`").add(f" = {show(answer)}", Reveal.got)
            if alt:
                credits.append(alt.credit)
                share = "" if alt.credit == 1 else f" for {alt.credit:.0%}"
                notes.add(f": accepted{share} — {alt.message}")
            elif mistake:
                credits.append(0.0)
                diagnoses.append(mistake.name)
                notes.add(f": wrong — {mistake.message}")
            elif slip := likely_slip(rule.path, answer, truth):
                credits.append(0.0)
                diagnoses.append(slip[0])
                notes.add(f": wrong — {slip[1]}")
            else:
                credits.append(0.0)
                notes.add(": wrong").add(f" (expected {show(truth)})", Reveal.expected).add(".")
            sheet[-1]["credit"] = credits[-1]
        fraction = sum(credits) / len(credits)
        right = sum(1 for c in credits if c == 1.0)
        if fraction == 1:
            message = Feedback("The answer is right." if right == 1 else f"All {right} answers are right.")
        else:
            message = Feedback(f"{right} of {len(credits)} answers right.")
        return Outcome.graded(fraction, message.extend(notes), expected=expected or None,
                              got=got or None, diagnoses=list(dict.fromkeys(diagnoses)),
                              details={"answers": sheet})
