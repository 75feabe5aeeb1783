"""Identical and near-identical answers, grouped so that a grader grades a group at once.

"Near" is measured on normalised text (case folded, accents and punctuation dropped, whitespace
collapsed): two answers are near when the Jaccard similarity of their sets of word pairs
(consecutive words; single words for a one-word answer) is at least ``THRESHOLD`` (0.8) — the same
sentence with a word changed or added in a long answer, not a different answer that shares a
topic. Identical after normalising is similarity 1. Groups form greedily in the order answers come
(each answer joins the first group whose first answer is near it), so they are deterministic,
cost one comparison per answer and group, and a group never drifts away from its first answer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

THRESHOLD = 0.8
_NOT_WORD = re.compile(r"[^\w]+")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def shingles(normalised: str) -> frozenset[str]:
    words = normalised.split()
    if len(words) < 2:
        return frozenset(words)
    return frozenset(f"{a} {b}" for a, b in zip(words, words[1:]))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the word pairs of two answers, after ``normalise`` (1: identical)."""
    na, nb = normalise(a), normalise(b)
    if na == nb:
        return 1.0
    sa, sb = shingles(na), shingles(nb)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


@dataclass
class Group:
    keys: list[str] = field(default_factory=list)
    text: str = ""          # the first answer's text: what the group is shown as
    similarity: list[float] = field(default_factory=list)  # each member's to the first


def group_answers(answers: dict[str, str], threshold: float = THRESHOLD) -> list[Group]:
    """Groups of ``answers`` (key → text), in the order of their first members."""
    groups: list[Group] = []
    seen: list[tuple[str, frozenset[str]]] = []
    for key, text in answers.items():
        norm = normalise(text)
        sh = shingles(norm)
        for group, (first_norm, first_sh) in zip(groups, seen):
            score = 1.0 if norm == first_norm else (len(sh & first_sh) / len(sh | first_sh) if sh and first_sh else 0.0)
            if score >= threshold:
                group.keys.append(key)
                group.similarity.append(round(score, 2))
                break
        else:
            groups.append(Group(keys=[key], text=text, similarity=[1.0]))
            seen.append((norm, sh))
    return groups
