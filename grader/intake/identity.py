"""Which key a hand-in's result is kept under: stable, unique, and never a guess.

A result is a file named by its key (``<key>.json``) and a row of ``class.csv`` and of every
export, so two hand-ins must never share a key, and a hand-in must keep its key from one run to
the next whatever else arrives in the class. Folding a name to a file name loses information
(``王伟``, ``李娜`` and ``!!!`` all fold to nothing, ``Émile`` and ``Emile`` to the same), so:

- a hand-in the LMS names carries the LMS's id, kept whole after a shortened name
  (``Emile_Noel_654321``): the id is unique in the course;
- any other hand-in is its name folded, and where the folding lost anything (a letter that is
  not ASCII, a space, punctuation, a name cut short, nothing left), a short digest of the name
  as it was (``hand-in-3f2a9c1e``, ``Emile-8d41c0aa``): two names that differ never share a key,
  and a key depends on nothing but its own name, not on listing order or on the other entries.

Two entries of one class can still fold to one key only when their names differ in nothing the
folding keeps (``alice/`` beside ``alice.py``): the batch then names both by their whole entry
names (``identity.disambiguate``), again from their own names alone.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_NAME = 60  # characters of a folded name in a key; an LMS id is kept whole after it
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def digest8(text: str) -> str:
    """Eight hex digits of ``text``: names read from disk carry undecodable bytes as
    ``surrogateescape`` code points; a lone surrogate from elsewhere (a JSON ``\\ud800``) is
    hashed as it stands rather than raising."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:8]


def fold(name: str) -> str:
    """``name`` as ASCII letters, digits, ``.``, ``_`` and ``-`` (accents folded, anything else
    ``_``), without leading or trailing dots and underscores; may be empty."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE.sub("_", folded).strip("._")


def key_for(name: str, lms_id: str | None = None) -> str:
    """The key of a hand-in named ``name`` (by the LMS, with ``lms_id``; or by its folder or file)."""
    folded = fold(name)
    if lms_id is not None:
        ident = fold(lms_id) or digest8(lms_id)
        if ident != lms_id:
            ident = f"{ident}-{digest8(lms_id)}"
        return f"{folded[:MAX_NAME] or 'student'}_{ident}"
    if folded and folded == name and len(folded) <= MAX_NAME:
        return folded
    return f"{folded[:MAX_NAME] or 'hand-in'}-{digest8(name)}"


def disambiguate(key: str, entry_name: str) -> str:
    """The key of an entry whose key another entry of the class shares: its own, with a digest of
    its whole entry name (``alice.py`` is not ``alice/``)."""
    return f"{key}-{digest8(entry_name)}"
