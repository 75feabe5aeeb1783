"""Which of a lab's checks a run grades: every check for an instructor, the public ones in a
student's self-check, narrowed by ``--only``. Its own module: the run reads it before grading
(``Run.prepare``), the engine while grading, the CLI to count."""

from __future__ import annotations

import difflib

from grader.checks.registry import BoundCheck, BoundLab
from grader.errors import LabError
from grader.lab.manifest import Visibility
from grader.options import Mode, RunOptions


def selected_checks(lab: BoundLab, options: RunOptions) -> list[BoundCheck]:
    """Instructors grade every check; a student's self-check sees the public ones only.
    ``options.only`` narrows to the named checks (a student working on one part); a hidden one
    named there is not an error (``hidden_requested`` says it is graded by the instructor)."""
    visible = [c for c in lab.checks if options.mode == Mode.grade or c.spec.visibility == Visibility.public]
    if not options.only:
        return visible
    every = [c.spec.id for c in lab.checks]
    unknown = [name for name in options.only if name not in every]
    if unknown:
        close = [m for name in unknown for m in difflib.get_close_matches(name, every, n=1)]
        guess = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise LabError(f"no check {', '.join(map(repr, unknown))} in lab {lab.id!r}{guess}; "
                       f"its checks: {', '.join(c.spec.id for c in visible)}")
    return [c for c in visible if c.spec.id in options.only]


def hidden_requested(lab: BoundLab, options: RunOptions) -> list[str]:
    """The hidden checks a self-check was asked for by id: said, not run."""
    if options.mode == Mode.grade:
        return []
    return [c.spec.id for c in lab.checks if c.spec.visibility == Visibility.hidden and c.spec.id in options.only]


def running_checks(lab: BoundLab, options: RunOptions) -> list[BoundCheck]:
    """The selected checks whose code runs: training ones only when the run trains (the engine
    reports the others as not run). What a run prepares for and what its cores must hold."""
    return [c for c in selected_checks(lab, options) if options.trains or not c.spec.training]
