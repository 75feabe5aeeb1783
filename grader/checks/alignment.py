"""Sequence alignment of two layer lists (the reference's and the student's), so that a missing
or an extra layer is named where it is missing, not as a shift of every layer after it.

Layers are matched in order, by a key each list computes (type and sizes, or parameter shapes);
names are never compared, since hand-ins name their modules as they like."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from difflib import SequenceMatcher
from typing import Literal

from pydantic import BaseModel


class Gap(BaseModel):
    """The first place two layer lists part: ``missing`` reference layers ``want[i:j]`` the student
    lacks before their layer ``k``; ``extra`` student layers ``have[k:l]``; ``changed`` layers at
    ``want[i]`` and ``have[k]`` (equal lengths, or one layer for another)."""
    kind: Literal["missing", "extra", "changed"]
    i: int
    j: int
    k: int
    l: int


def first_gap(want: Sequence[Hashable], have: Sequence[Hashable]) -> Gap | None:
    """Where the two lists first differ, by their longest matching blocks; None if they are equal.
    Lists of equal length are compared place by place: one layer changed is then named as such,
    not as one missing and one extra."""
    if len(want) == len(have):
        for n, (w, h) in enumerate(zip(want, have)):
            if w != h:
                return Gap(kind="changed", i=n, j=n + 1, k=n, l=n + 1)
        return None
    for tag, i, j, k, l in SequenceMatcher(None, list(want), list(have), autojunk=False).get_opcodes():
        if tag == "delete":
            return Gap(kind="missing", i=i, j=j, k=k, l=l)
        if tag == "insert":
            return Gap(kind="extra", i=i, j=j, k=k, l=l)
        if tag == "replace":
            if j - i > l - k:  # more reference layers than theirs here: one is missing, or changed
                return Gap(kind="changed", i=i, j=i + 1, k=k, l=k + 1) if l > k else Gap(kind="missing", i=i, j=j, k=k, l=l)
            return Gap(kind="changed", i=i, j=i + 1, k=k, l=k + 1)
    return None
