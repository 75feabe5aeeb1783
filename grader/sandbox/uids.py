"""A user id of its own for each child, leased from a range no account uses.

When every child ran as ``nobody``, any child could signal every other — those of another
gradelab run on the same machine included (a hand-in killed them, and their honest hand-ins
scored 9/17 "killed, most likely memory"). A uid per child makes every other child's processes
another user's: no signal, no ``/proc/<pid>`` of theirs, no file they made.

Two live children must never share one, across concurrent runs too, and a grader killed
outright must not leak its leases: each uid is leased by an ``flock`` on a file of its own in a
root-only folder, held for as long as the child (and anything it left in its cgroups) lives. The
kernel drops the lock when the holder's descriptor closes, however its process ends, so a lease
outlives no grader.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import stat
from pathlib import Path

FIRST_UID, LAST_UID = 210_000, 219_999
LEASES = Path("/run/gradelab/uids")


class UidLease:
    """One uid, held until ``release``. ``uid`` is ``None`` where no lease can be taken (not root,
    no writable /run): the child then keeps the grader's uid, and the grader says so once."""

    def __init__(self, folder: Path = LEASES, first: int = FIRST_UID, last: int = LAST_UID) -> None:
        self.uid: int | None = None
        self._fd: int | None = None
        if os.geteuid() != 0:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            info = os.lstat(folder)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
                return  # a folder someone else could plant locks in is not ours to trust
        except OSError:
            return
        for uid in range(first, last + 1):
            if _has_account(uid):
                continue
            try:
                fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return

    def release(self) -> None:
        """Give the uid back (once nothing of the child is left)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> UidLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False
