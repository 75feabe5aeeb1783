"""The code signal: winnowed fingerprints of normalised Pygments tokens (copydetect).

copydetect tokenises with Pygments and replaces every identifier by one letter, strings by
another, drops comments and whitespace (so renaming, re-commenting and reformatting change
nothing), then keeps one hash of every ``k`` characters per window (winnowing, Schleimer et al.
2003). A fingerprint is a set member, so reordered functions still match; dead code added to a
copy and two sources merged into one still contain the original's fingerprints, so a pair's
score is the share of the *smaller* hand-in's fingerprints found in the other (or, for a block
pasted into a longer hand-in, the shared fingerprints over ``code_enough``).

We use copydetect's fingerprinting and its comparison of two documents (for the matched spans
to highlight), not its ``CopyDetector``, which reads files from disk and compares every pair;
here the sources are in memory (a notebook's module exists nowhere else) and the pairs come from
an inverted index (fingerprint → hand-ins), so the work grows with the fingerprints, not with
the square of the class. Subtracted before counting: the template's fingerprints (every
k-gram of it, as copydetect does with boilerplate), any ``--boilerplate`` code, and fingerprints
found in a large share of the class (``common_share``): what everybody writes is not evidence.
"""

from __future__ import annotations

import io
import itertools
import logging
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from grader.lab.manifest import SimilaritySettings

log = logging.getLogger(__name__)


@dataclass
class Fingerprinted:
    """One hand-in's code, fingerprinted: ``print`` is copydetect's ``CodeFingerprint``."""

    index: int
    hashes: set[int] = field(default_factory=set)
    print: object | None = None


def stable_kgrams(string: str, k: int) -> np.ndarray:
    """copydetect's ``hashed_kgrams`` with a hash that is the same in every process: Python's
    ``hash`` of a string changes from run to run, and winnowing keeps the smallest hash of each
    window, so the same class would give (slightly) different scores each time."""
    data = string.encode("utf-8", "surrogatepass")
    if len(string) < k:
        return np.array([], dtype=np.int64)
    if len(data) != len(string):  # not ASCII: hash characters, not bytes
        grams = [string[i:i + k].encode("utf-8", "surrogatepass") for i in range(len(string) - k + 1)]
    else:
        grams = [data[i:i + k] for i in range(len(data) - k + 1)]
    crc, adler = zlib.crc32, zlib.adler32  # two 32-bit checksums in C: one 64-bit hash, fast
    return np.array([((crc(g) << 31) ^ adler(g)) for g in grams], dtype=np.int64)


def _fingerprint(code: str, k: int, window: int, boilerplate: np.ndarray | None = None) -> object:
    import copydetect.utils
    from copydetect import CodeFingerprint

    copydetect.utils.hashed_kgrams = stable_kgrams  # see stable_kgrams

    return CodeFingerprint("handin.py", k, window, boilerplate=boilerplate if boilerplate is not None else [],
                           fp=io.StringIO(code))


def boilerplate_hashes(texts: list[str], k: int) -> np.ndarray:
    """Every k-gram hash of the template and the boilerplate (window 1: nothing of it may slip)."""
    hashes: set[int] = set()
    for text in texts:
        if text.strip():
            hashes |= set(_fingerprint(text, k, 1).hashes)  # type: ignore[attr-defined]
    return np.array(sorted(hashes), dtype=np.int64)


def common_count(n: int, settings: SimilaritySettings) -> int:
    """In how many hand-ins a fingerprint (value, phrase) must be to be common knowledge."""
    return max(settings.common_floor, int(np.ceil(settings.common_share * n)))


class CodeIndex:
    """The class's code fingerprints and the pairs that share some."""

    def __init__(self, codes: list[str], settings: SimilaritySettings, boilerplate: list[str]) -> None:
        self.settings = settings
        bp = boilerplate_hashes(boilerplate, settings.code_k)
        self.docs: list[Fingerprinted] = []
        for i, code in enumerate(codes):
            doc = Fingerprinted(i)
            if code.strip():
                try:
                    doc.print = _fingerprint(code, settings.code_k, settings.code_window, bp)
                    doc.hashes = set(doc.print.hashes)  # type: ignore[attr-defined]
                except Exception as exc:
                    log.info("similarity: code of hand-in %d not fingerprinted: %s", i, exc)
            self.docs.append(doc)
        frequency = Counter(h for d in self.docs for h in d.hashes)
        self.common = {h for h, n in frequency.items() if n >= common_count(len(codes), settings)}
        for d in self.docs:
            d.hashes -= self.common
        self.postings: dict[int, list[int]] = {}
        for d in self.docs:
            for h in d.hashes:
                self.postings.setdefault(h, []).append(d.index)

    def shared_counts(self, comparable: set[tuple[int, int]] | None = None) -> Counter[tuple[int, int]]:
        """Fingerprints shared by each pair that shares any (``comparable``: the pairs allowed)."""
        shared: Counter[tuple[int, int]] = Counter()
        for docs in self.postings.values():
            if len(docs) > 1:
                shared.update(itertools.combinations(docs, 2))
        if comparable is not None:
            return Counter({p: n for p, n in shared.items() if p in comparable})
        return shared

    def share(self, i: int, j: int, shared: int) -> float:
        """The share of the smaller hand-in's fingerprints found in the other."""
        smaller = min(len(self.docs[i].hashes), len(self.docs[j].hashes))
        return min(1.0, shared / max(smaller, self.settings.code_min_fingerprints))

    def score(self, i: int, j: int, shared: int) -> float:
        """The share of the smaller hand-in's fingerprints found in the other, or of ``code_enough``
        (a long block pasted into a larger hand-in, half of another merged with other code)."""
        return min(1.0, max(self.share(i, j, shared), shared / self.settings.code_enough))

    def matched(self, i: int, j: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The spans of each hand-in's code that the other shares (character offsets), to highlight."""
        from copydetect import compare_files

        a, b = self.docs[i].print, self.docs[j].print
        if a is None or b is None:
            return [], []
        for doc in (a, b):  # the common fingerprints are not evidence: not highlighted either
            doc.hash_idx = {h: v for h, v in doc.hash_idx.items() if h not in self.common}  # type: ignore[attr-defined]
            doc.hashes = set(doc.hash_idx)  # type: ignore[attr-defined]
        _overlap, _similarities, (slices_a, slices_b) = compare_files(a, b)
        return _spans(slices_a), _spans(slices_b)


def _spans(slices: np.ndarray) -> list[tuple[int, int]]:
    if len(slices) == 0 or len(slices[0]) == 0:
        return []
    return [(int(s), int(e)) for s, e in zip(slices[0], slices[1], strict=True)]
