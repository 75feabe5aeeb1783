"""What the sandbox takes of a hand-in, and how a child writes it into its own folder.

The sandbox depends on no reader: it takes any hand-in that says where it came from (``source``,
whose folder the child must not see) and what its files are (relative POSIX path → bytes). The
intake's safe reader (``grader.intake.reader.HandIn``) is one; tests stage files of their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Protocol


class Staged(Protocol):
    """A hand-in as the sandbox takes it."""

    @property
    def source(self) -> Path: ...
    @property
    def files(self) -> Mapping[str, bytes]: ...


def stage(files: Mapping[str, bytes], into: Path) -> None:
    """Write the files under ``into`` (a fresh folder the child owns): the only copy of a hand-in a
    child ever sees. Created, never opened: no name can point the write anywhere else."""
    for relative, data in files.items():
        target = into.joinpath(*PurePosixPath(relative).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
