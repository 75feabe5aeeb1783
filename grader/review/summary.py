"""What the class summary says of written questions, from merged results: how many answers are
graded, the distribution of their scores, and the rubric items applied most."""

from __future__ import annotations

from collections import Counter
from typing import Any

from grader.results import Kind, Status, SubmissionResult


def written_summary(results: list[SubmissionResult]) -> list[dict[str, Any]]:
    order: dict[str, tuple[str, float]] = {}
    for r in results:
        for c in r.checks:
            if c.kind == Kind.written:
                order.setdefault(c.id, (c.title, c.max_score))
    rows = []
    for check_id, (title, points) in order.items():
        checks = [c for r in results for c in r.checks if c.id == check_id]
        graded = [c for c in checks if "review" in c.details]
        waiting = sum(1 for c in checks if c.status == Status.awaiting_review)
        scores = Counter(c.score for c in graded)
        items: Counter[tuple[str, str, float]] = Counter(
            (i["id"], i["comment"], i["points"]) for c in graded for i in c.details["review"].get("items", []))
        rows.append({"id": check_id, "title": title, "points": points, "answers": len(graded) + waiting, "graded": len(graded),
                     "waiting": waiting, "blank": len(checks) - len(graded) - waiting,
                     "mean": sum(c.score for c in graded) / len(graded) if graded else None,
                     "distribution": sorted(scores.items()),
                     "items": [{"id": i, "comment": text, "points": p, "count": n}
                               for (i, text, p), n in items.most_common(5)]})
    return rows
