"""The written-answers signal: unusual phrasing two hand-ins share.

An answer is cut into overlapping phrases of ``phrase_words`` words (lower-cased, punctuation
dropped). Not evidence, and removed first: phrases of the question itself and of the template
(students quote the handout), and phrases common in the class. A pair's score for a question is
the share of the shorter answer's phrases found in the other; the shared phrases, joined back
into runs of words, are the evidence shown.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from pydantic import BaseModel

from grader.lab.manifest import SimilaritySettings
from grader.similarity.fingerprints import common_count

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def phrases(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


class SharedPhrases(BaseModel):
    question: str     # the check id
    phrases: list[str]
    share: float


class WrittenIndex:
    def __init__(self, answers: list[dict[str, str]], given: dict[str, str], settings: SimilaritySettings,
                 template_text: str = "") -> None:
        """``answers``: each hand-in's written answers by question; ``given``: each question's
        text (its phrases are no one's own); ``template_text``: the handout's wording."""
        n = settings.phrase_words
        self.settings = settings
        self.tokens = [{q: words(t) for q, t in a.items()} for a in answers]
        handout = phrases(words(template_text), n)
        self.sets: list[dict[str, set[tuple[str, ...]]]] = []
        for tokens in self.tokens:
            self.sets.append({q: phrases(t, n) - phrases(words(given.get(q, "")), n) - handout
                              for q, t in tokens.items()})
        frequency = Counter((q, p) for doc in self.sets for q, ps in doc.items() for p in ps)
        limit = common_count(len(answers), settings)
        self.common = {k for k, c in frequency.items() if c >= limit}
        for doc in self.sets:
            for q in doc:
                doc[q] = {p for p in doc[q] if (q, p) not in self.common}
        self.postings: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for i, doc in enumerate(self.sets):
            for q, ps in doc.items():
                for p in ps:
                    self.postings.setdefault((q, p), []).append(i)

    def candidates(self) -> set[tuple[int, int]]:
        found: set[tuple[int, int]] = set()
        for docs in self.postings.values():
            found.update((a, b) for k, a in enumerate(docs) for b in docs[k + 1:])
        return found

    def shared(self, i: int, j: int) -> list[SharedPhrases]:
        found = []
        for q in sorted(self.sets[i].keys() & self.sets[j].keys()):
            a, b = self.sets[i][q], self.sets[j][q]
            common = a & b
            if not common:
                continue
            share = len(common) / max(min(len(a), len(b)), self.settings.phrase_min)
            found.append(SharedPhrases(question=q, phrases=_runs(self.tokens[i][q], common,
                                                                 self.settings.phrase_words),
                                       share=round(min(share, 1.0), 3)))
        return found

    @staticmethod
    def score(shared: list[SharedPhrases]) -> float:
        return max((s.share for s in shared), default=0.0)


def _runs(tokens: list[str], common: set[tuple[str, ...]], n: int) -> list[str]:
    """The shared phrases as the runs of words they cover in one answer."""
    covered = [False] * len(tokens)
    for i in range(len(tokens) - n + 1):
        if tuple(tokens[i:i + n]) in common:
            covered[i:i + n] = [True] * n
    runs, current = [], []
    for word, hit in zip(tokens, covered, strict=True):
        if hit:
            current.append(word)
        elif current:
            runs.append(" ".join(current))
            current = []
    if current:
        runs.append(" ".join(current))
    return runs
