"""Ctrl-C and SIGTERM stop the grader now, whatever its threads are doing.

Python runs a signal's handler in the main thread, at a moment of its choosing: when the main
thread is next between two bytecodes and notices the signal. Two things the grader does make
that moment late or lose it. The main thread waits on a child's reply in ``select`` for up to a
check's wall time (minutes, when training); a signal the kernel gives to another of the grader's
threads (the one being started when the signal came, say, or the thread that loads data sets)
does not interrupt that wait, so the stop came only when the child answered or timed out, and
the grade of a hand-in the instructor had asked to stop was written. And a handler that runs
inside a finaliser (``__del__``, met while the garbage collector frees a finished hand-in's
objects) has its exception printed and dropped: the stop was lost altogether.

So ``install`` keeps both: the signal's number is written to a pipe the moment it arrives (the
interpreter's wakeup fd, written from whichever thread received it), and the handler records
that a stop was asked for before it raises. A wait of the main thread watches the pipe
(``wakeup_fd``) and, when it is readable, calls ``check``: it runs a handler still pending and
raises the stop again if an earlier raise was dropped. A process that forks forgets all of it
(its signals are its own).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from types import FrameType

_read_fd: int | None = None
_write_fd: int | None = None
_stopped: int | None = None  # the signal that asked this process to stop, once one did


def _stop(signum: int) -> BaseException:
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    # Unwind like Ctrl-C: the running check's child, cgroup and working directory are cleaned up,
    # and every result already written stays (`grade` resumes where it stopped).
    return SystemExit(128 + signum)


def _handler(signum: int, _frame: FrameType | None) -> None:
    global _stopped
    _stopped = signum
    raise _stop(signum)


def install() -> None:
    """Make Ctrl-C and SIGTERM stop this process from any wait (call once, from the main
    thread, before starting threads: the CLI does)."""
    watch()
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)


def watch() -> None:
    """Let a wait of the main thread run whatever handlers this process set (a worker's own
    SIGTERM handler, which ends it) as soon as a signal comes, not when the wait ends."""
    global _read_fd, _write_fd
    if _read_fd is None:
        _read_fd, _write_fd = os.pipe()
        os.set_blocking(_read_fd, False)
        os.set_blocking(_write_fd, False)
        signal.set_wakeup_fd(_write_fd, warn_on_full_buffer=False)


def wakeup_fd() -> int | None:
    """The descriptor a wait of the main thread adds to what it selects on (readable once a
    signal arrived); ``None`` when nothing was installed or in another thread, which cannot run
    handlers and must not take the main thread's wake-ups."""
    if _read_fd is None or threading.current_thread() is not threading.main_thread():
        return None
    return _read_fd


def check() -> None:
    """In the main thread: raise the stop a signal asked for, if one did (a handler still
    pending runs now; a stop whose first raise was dropped is raised again)."""
    if wakeup_fd() is None:
        return
    assert _read_fd is not None
    try:
        while os.read(_read_fd, 512):
            pass
    except BlockingIOError:
        pass
    # The handler may still be pending: nothing has made the main thread look since the signal
    # came. This is the interpreter's own call for that, run here; an exception the handler
    # raises comes back through ctypes.
    ctypes.pythonapi.PyErr_CheckSignals()
    if _stopped is not None:
        raise _stop(_stopped)


def _forget() -> None:
    global _read_fd, _write_fd, _stopped
    if _read_fd is None:
        return
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # pragma: no cover  (a child of fork is single-threaded: its thread is main)
        pass
    for fd in (_read_fd, _write_fd):
        if fd is not None:
            os.close(fd)
    _read_fd = _write_fd = _stopped = None


os.register_at_fork(after_in_child=_forget)
