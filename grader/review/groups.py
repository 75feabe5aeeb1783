"""Identical and near-identical answers, grouped so that a grader grades a group at once.

"Near" is measured on normalised text (case folded, accents and punctuation dropped, whitespace
collapsed): two answers are near when the Jaccard similarity of their sets of word pairs
(consecutive words; single words for a one-word answer) is at least ``THRESHOLD`` (0.8) — the same
sentence with a word changed or added in a long answer, not a different answer that shares a
topic. Identical after normalising is similarity 1. A reworded sentence also joins
(``WORDS_THRESHOLD``): nearly the same words (Jaccard of the sets of words at least 0.9) and at
least ``PAIRS_FLOOR`` (0.55) of the word pairs. Tuned on the vgg-batchnorm class's "BatchNorm
reduces (the) internal covariate shift" answers (words 0.95, pairs 0.60: one group) against a
negation ("does not reduce": words 0.83) and two words swapped ("lower, not higher" / "higher,
not lower": words 1.0, pairs 0.50), which stay apart. The page shows both measures. Groups form greedily in the order answers come
(each answer joins the first group whose first answer is near it), so they are deterministic,
cost one comparison per answer and group, and a group never drifts away from its first answer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

THRESHOLD = 0.8
WORDS_THRESHOLD = 0.9
PAIRS_FLOOR = 0.55
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


def word_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the sets of words of two answers, after ``normalise``."""
    wa, wb = set(normalise(a).split()), set(normalise(b).split())
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def alike(pairs: float, words: float, threshold: float = THRESHOLD) -> bool:
    """Whether two answers are graded together, from their word-pair and word similarities."""
    return pairs >= threshold or (words >= WORDS_THRESHOLD and pairs >= PAIRS_FLOOR)


@dataclass
class Group:
    keys: list[str] = field(default_factory=list)
    text: str = ""          # the first answer's text: what the group is shown as
    similarity: list[float] = field(default_factory=list)  # each member's to the first (word pairs)
    words: list[float] = field(default_factory=list)       # each member's to the first (words)


def group_answers(answers: dict[str, str], threshold: float = THRESHOLD) -> list[Group]:
    """Groups of ``answers`` (key → text), in the order of their first members."""
    groups: list[Group] = []
    seen: list[tuple[str, frozenset[str], frozenset[str]]] = []
    for key, text in answers.items():
        norm = normalise(text)
        sh, ws = shingles(norm), frozenset(norm.split())
        for group, (first_norm, first_sh, first_ws) in zip(groups, seen):
            same = norm == first_norm
            score = 1.0 if same else (len(sh & first_sh) / len(sh | first_sh) if sh and first_sh else 0.0)
            words = 1.0 if same else (len(ws & first_ws) / len(ws | first_ws) if ws and first_ws else 0.0)
            if alike(score, words, threshold):
                group.keys.append(key)
                group.similarity.append(round(score, 2))
                group.words.append(round(words, 2))
                break
        else:
            groups.append(Group(keys=[key], text=text, similarity=[1.0], words=[1.0]))
            seen.append((norm, sh, ws))
    return groups
