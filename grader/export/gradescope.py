"""Gradescope's ``results.json`` for a submission (the autograder specification: a top-level
score, execution_time, output, visibility and stdout_visibility, and ``tests`` each with a name,
number, score, max_score, status, output and visibility).

Public checks are ``visible``; hidden checks are ``after_published`` (shown once the instructor
publishes grades); what the student process printed stays ``hidden`` (stdout_visibility). The
texts come from ``feedback``: titles, statuses, points and hints, and a public check's message as
its student sees it (never a reference answer); a hidden check's message is left out.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.export.feedback import check_text, markdown_text, student_feedback
from grader.results import Kind, Status, SubmissionResult

Visibility = Literal["hidden", "after_due_date", "after_published", "visible"]


class GradescopeTest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    number: str
    score: float
    max_score: float
    status: Literal["passed", "failed"]
    output: str
    output_format: Literal["text", "md"] = "text"
    visibility: Visibility
    extra_data: dict[str, str] = Field(default_factory=dict)


class GradescopeResults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: float
    execution_time: int
    output: str
    output_format: Literal["text", "md", "html"] = "md"
    visibility: Visibility = "visible"
    stdout_visibility: Visibility = "hidden"
    tests: list[GradescopeTest]
    extra_data: dict[str, str] = Field(default_factory=dict)


def results_json(result: SubmissionResult, *, extra_output: str = "") -> GradescopeResults:
    tests = []
    lines = student_feedback(result)
    graded = [c for c in result.checks if c.kind != Kind.submission]
    for number, (check, line) in enumerate(zip(graded, lines), start=1):
        tests.append(GradescopeTest(
            name=line.title, number=str(number), score=line.score,
            max_score=line.max_score,
            status="passed" if line.status == Status.passed else "failed", output=check_text(line),
            visibility="after_published" if line.hidden else "visible",
            extra_data={"check": check.id, "status": line.status.value}))
    return GradescopeResults(
        score=result.score, execution_time=int(round(result.duration_s)),
        output=markdown_text(result) + (f"\n{extra_output}\n" if extra_output else ""), tests=tests,
        extra_data={"student_id": result.student.id, "lab": result.lab, "grade": result.grade})


def export(results: list[SubmissionResult]) -> dict[str, bytes]:
    """One ``<submission>/results.json`` per result."""
    return {f"{r.submission}/results.json": to_bytes(results_json(r)) for r in results}


def to_bytes(model: GradescopeResults) -> bytes:
    return (json.dumps(model.model_dump(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
