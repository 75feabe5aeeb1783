"""Ctrl-C and SIGTERM stop the grader from any wait, even when Python would have dropped or
delayed the stop (``grader.interrupts``). Each case runs in a process of its own: the signal
handlers and the wakeup descriptor are a process's."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from tests.conftest import ROOT

WAIT_S = 30


def run_script(body: str) -> tuple[int, float, str]:
    script = textwrap.dedent('''
        import os, signal, sys, time
        from grader import interrupts
        from grader.sandbox.runner import _read_exact
        interrupts.install()
        never_r, never_w = os.pipe()   # a child that never answers

        def wait_for_reply():
            _read_exact(never_r, 8, time.monotonic() + {WAIT_S})
            print("the wait ran to its deadline", flush=True)
    '''.replace("{WAIT_S}", str(WAIT_S))) + textwrap.dedent(body)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=WAIT_S + 30)
    return proc.returncode, time.monotonic() - start, proc.stdout + proc.stderr


def test_sigterm_whose_handler_ran_inside_a_finaliser_still_ends_the_next_wait():
    """A handler that runs inside ``__del__`` (the garbage collector freeing a finished hand-in's
    objects) raises into the void: Python prints the SystemExit and goes on. The stop is kept
    all the same, and the next wait for a child ends at once with it."""
    code, seconds, output = run_script('''
        class Finished:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(100):   # the handler runs here, and its SystemExit is dropped
                    pass

        Finished()
        print("went on after the finaliser", flush=True)
        wait_for_reply()
    ''')
    assert "went on after the finaliser" in output  # the situation the test is about
    assert "ran to its deadline" not in output
    assert code == 128 + 15 and seconds < WAIT_S / 2, output


def test_ctrl_c_in_a_finaliser_ends_the_next_wait_as_a_keyboard_interrupt():
    code, seconds, output = run_script('''
        class Finished:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(100):
                    pass

        Finished()
        try:
            wait_for_reply()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
    ''')
    assert "interrupted" in output and code == 3 and seconds < WAIT_S / 2, output


def test_without_a_signal_the_wait_runs_to_its_deadline_and_a_forked_child_keeps_none_of_it():
    """The wake-up is only for signals: a quiet wait still times out; and a process forked from
    the grader starts with no stop and no wake-up descriptor of the grader's."""
    code, _, output = run_script('''
        pid = os.fork()
        if pid == 0:
            os._exit(0 if interrupts.wakeup_fd() is None and signal.set_wakeup_fd(-1) == -1 else 1)
        assert os.waitpid(pid, 0)[1] == 0, "the child kept the wakeup descriptor"
        try:
            _read_exact(never_r, 8, time.monotonic() + 0.5)
        except TimeoutError:
            print("timed out", flush=True)
    ''')
    assert code == 0 and "timed out" in output, output


def test_a_workers_own_handler_runs_at_once_though_another_thread_took_the_signal():
    """A worker keeps its own SIGTERM handler (it kills its fork server and exits) and only
    watches. The kernel gives the signal to another thread when the main thread blocks it (as
    it does for an instant while starting a thread): the main thread's wait is not interrupted,
    and Python ran the handler only when the wait ended. Now the wait ends at once and the
    handler runs."""
    code, seconds, output = run_script('''
        import threading
        signal.signal(signal.SIGTERM, lambda *_: os._exit(77))
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        interrupts._forget()      # the worker has not installed the grader's stop, only watches
        interrupts.watch()
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])   # only the other thread takes it
        threading.Thread(target=lambda: (time.sleep(0.3), os.kill(os.getpid(), signal.SIGTERM))).start()
        wait_for_reply()
    ''')
    assert "ran to its deadline" not in output
    assert code == 77 and seconds < WAIT_S / 2, output
