"""Whether a result an earlier run wrote can stand for this run's grade.

An interrupted batch resumes where it stopped, and a rerun keeps what is finished. A result is
kept only when it was graded on the same hand-in (a digest of its files as read) under the same
things that decide a grade: the lab (its version, and a digest of its manifest, reference,
answers, harness and calibration), the mode, the seed, whether training ran and on which budget
and device, early stopping, the checks selected and the data. (Limits are not: a rerun with a
longer ``--wall-time`` keeps what finished; ``--force`` regrades everything.) Otherwise the hand-in
is graded again, and the batch says how many results it kept and why it regraded the others:
``grade --no-train`` then ``grade`` trains; a student's new upload is graded.
"""

from __future__ import annotations

from typing import Any

from grader.errors import SubmissionError
from grader.intake.reader import handin_digest
from grader.intake.sources import HandInSource, open_hand_in
from grader.lab.loader import Lab
from grader.options import Device, RunOptions
from grader.results import SubmissionResult


def graded_with(lab: Lab, options: RunOptions, device: Device) -> dict[str, Any]:
    """What decides a grade besides the hand-in, as recorded on each result. How training runs
    (budget, device, early stopping) counts only where the lab trains and this run trains it."""
    trains = options.trains and any(c.training for c in lab.manifest.checks)
    return {
        "lab": lab.id, "lab_version": lab.manifest.version, "lab_digest": lab.digest,
        "mode": options.mode.value, "seed": options.seed, "train": trains,
        "budget": (options.budget.value if options.budget else None) if trains else None,
        "device": device.value if trains else None, "early_stop": options.early_stop if trains else None,
        "only": sorted(options.only),
        "data_root": str(options.data_root) if options.data_root else None,
    }


def current_digest(lab: Lab, path: Any, source: HandInSource | None) -> str | None:
    """The digest of a hand-in as it is now (``None``: it cannot be read at all)."""
    try:
        read = open_hand_in(source or HandInSource(path=path), lab.manifest.intake, lab.manifest.interface.module)
    except SubmissionError:
        return None
    return handin_digest(read)


def _word(key: str, value: Any) -> str:
    if key == "only" and not value:
        return "every check"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "yes" if value is True else "no" if value is False else "none" if value in (None, {}) else str(value)


def why_regrade(earlier: SubmissionResult, now: dict[str, Any], digest: str | None) -> str | None:
    """Why ``earlier`` cannot stand for this run (``None``: it can)."""
    if not earlier.graded_with:
        return "graded by an earlier gradelab, which did not record how"
    changed = [key for key in now if earlier.graded_with.get(key) != now[key]]
    if changed:
        return "graded with other settings (" + ", ".join(
            f"{key}: {_word(key, earlier.graded_with.get(key))} → {_word(key, now[key])}" for key in changed) + ")"
    if earlier.handin_sha != digest:
        return "the hand-in changed since"
    return None
