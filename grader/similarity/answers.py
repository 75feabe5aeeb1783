"""The answer-sheet signal: values two hand-ins share, weighted by how rare each is in the class.

A right value that most of the class found says nothing; a value few found says more; a *wrong*
value few found (a parameter count off by the same bias, the same wrong receptive field) says the
most, because independent mistakes rarely agree: its weight is multiplied by ``wrong_weight``, a
right value's by ``right_weight``. Not counted: a mistake that many made (``common_share`` of the
class, and at least ``common_floor`` hand-ins), and a right value that a ``common_share`` of the
class gave (right answers agree by themselves, however small the class).
The weight of a value is its information, ``ln(answered / holding it)``, at most that of one in
``rarity_cap`` (a class of 500 holds many pairs that share some rare value by chance; a class
smaller than that counts as that many); a pair's score is
``1 − exp(−Σ weights / answers_scale)``, so one shared rare value is a hint and several are a
finding. Written answers (text fields) are the ``written`` signal's.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from pydantic import BaseModel

from grader.lab.manifest import SimilaritySettings
from grader.similarity.fingerprints import common_count


class SharedValue(BaseModel):
    field: str
    value: str
    wrong: bool
    holders: int      # hand-ins of the class that gave this value
    answered: int     # hand-ins of the class that answered this field
    weight: float


def normal(value: Any) -> str:
    """A value as compared: ``2432`` and ``2432.0`` alike, lists by their items."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(normal(v) for v in value) + "]"
    return " ".join(str(value).split()).lower()


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """The reference answer sheet by field path (``layers.conv1.params``)."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
    return flat


class AnswerIndex:
    def __init__(self, sheets: list[dict[str, Any]], reference: dict[str, Any], settings: SimilaritySettings) -> None:
        self.settings = settings
        self.sheets = [{k: normal(v) for k, v in s.items() if v is not None} for s in sheets]
        self.reference = {k: normal(v) for k, v in reference.items() if v is not None}
        self.holders: Counter[tuple[str, str]] = Counter(kv for s in self.sheets for kv in s.items())
        self.answered: Counter[str] = Counter(k for s in self.sheets for k in s)
        self.postings: dict[tuple[str, str], list[int]] = {}
        for i, sheet in enumerate(self.sheets):
            for kv in sheet.items():
                self.postings.setdefault(kv, []).append(i)

    def shared(self, i: int, j: int) -> list[SharedValue]:
        a, b = self.sheets[i], self.sheets[j]
        found = []
        for key in sorted(a.keys() & b.keys()):
            if a[key] != b[key]:
                continue
            holders, answered = self.holders[(key, a[key])], self.answered[key]
            wrong = key in self.reference and self.reference[key] != a[key]
            if wrong:
                if holders >= common_count(answered, self.settings):
                    continue  # a mistake many made is no one's own
                cap = self.settings.rarity_cap
                weight = min(math.log(max(answered, cap) / holders), math.log(cap)) * self.settings.wrong_weight
            else:
                if holders >= self.settings.common_share * answered:
                    continue  # right answers agree by themselves: only a rare one says anything
                weight = math.log(answered / holders) * self.settings.right_weight
            if weight > 0:
                found.append(SharedValue(field=key, value=a[key], wrong=wrong, holders=holders, answered=answered,
                                         weight=round(weight, 3)))
        return sorted(found, key=lambda v: -v.weight)

    def score(self, shared: list[SharedValue]) -> float:
        return 1.0 - math.exp(-sum(v.weight for v in shared) / self.settings.answers_scale)
