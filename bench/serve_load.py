"""The hand-in server under a class's rush: N students (50 by default) upload at the same moment.

``gradelab serve`` runs as a course runs it (its own process, loopback only, grading workers one
per core unless ``--workers``), on the cifar-convnet lab (static checks) with the bundled hand-ins
dealt out in turn (all but the two that run into the time and memory limits, which would measure
the limits). Each simulated student is a thread with its own HTTP client: log in with their token,
wait for the others, upload, then poll their attempt's status as the waiting page does.

Printed: uploads accepted per second (all N uploads, from the moment they are let go to the last
one stored), the median and worst time from upload to feedback, the server's memory (the web
process's peak, the workers' together at the end) and a check that every attempt was graded
exactly once (the queue's journal) and stored (result and both reports in its folder).

Bounded: N students, one upload each, and a deadline (``--deadline``, 600 s) after which it stops
and says what was missing. Run: ``python -m bench.serve_load [--students 50] [--workers N]``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
HAND_INS = ROOT / "submissions" / "cifar-convnet"
SKIPPED = ("infinite-loop-import", "memory-blowup")  # they measure the limits, not the server
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Student:
    id: str
    token: str
    hand_in: Path
    uploaded_at: float = 0.0   # when the upload was sent
    accepted_at: float = 0.0   # when the server answered it was stored
    feedback_at: float = 0.0   # when its status said done
    error: str = ""
    polls: int = 0


@dataclass
class Outcome:
    students: list[Student]
    workers: int
    released_at: float
    web_peak_mb: float
    workers_mb: float
    graded: dict = field(default_factory=dict)
    stored: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _grading_workers(pid: int) -> list[int]:
    """The web process's children started by ``multiprocessing`` spawn: its grading workers (not
    the resource tracker, not the workers' own sandbox processes)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.append(child)
    return found


def _student(base: str, student: Student, go: threading.Barrier, deadline: float) -> None:
    import httpx2 as httpx

    try:
        with httpx.Client(base_url=base, timeout=120, follow_redirects=False) as client:
            page = client.get("/login")
            client.post("/login", data={"token": student.token, "csrf": _CSRF.search(page.text).group(1)})
            csrf = _CSRF.search(client.get("/").text).group(1)
            files = [("files", (name, (student.hand_in / name).read_bytes())) for name in ("convnet.py", "answers.yaml")]
            go.wait()
            student.uploaded_at = time.monotonic()
            sent = client.post("/upload", data={"csrf": csrf}, files=files)
            student.accepted_at = time.monotonic()
            if sent.status_code != 303:
                student.error = f"upload answered {sent.status_code}"
                return
            status_url = sent.headers["location"] + "/status"
            while time.monotonic() < deadline:
                student.polls += 1
                if client.get(status_url).json().get("state") == "done":
                    student.feedback_at = time.monotonic()
                    return
                time.sleep(0.25)
            student.error = "no feedback before the deadline"
    except Exception as exc:
        student.error = f"{type(exc).__name__}: {exc}"


def run(students: int = 50, workers: int | None = None, deadline_s: float = 600.0) -> Outcome:
    sys.path.insert(0, str(ROOT))
    from grader.serve.queue import GradingQueue
    from grader.serve.roster import Roster, issue
    from grader.serve.store import ClassStore

    hand_ins = sorted(p for p in HAND_INS.iterdir() if p.is_dir() and p.name not in SKIPPED)
    with tempfile.TemporaryDirectory(prefix="gradelab-bench-serve-") as tmp:
        roster = Path(tmp) / "roster.csv"
        roster.write_text("id,name,email\n" + "".join(f"s{i:02d},Student {i},s{i:02d}@example.org\n"
                                                     for i in range(1, students + 1)))
        class_dir = Path(tmp) / "class"
        issued = issue(Roster.read(roster), class_dir)
        crowd = [Student(s.id, token, hand_ins[i % len(hand_ins)]) for i, (s, token) in enumerate(issued.rows)]
        port = _free_port()
        command = [sys.executable, "-c", "from grader.cli import main; main()", "serve", "--lab", "cifar-convnet",
                   "--class", str(class_dir), "--roster", str(roster), "--host", "127.0.0.1", "--port", str(port),
                   "--no-train", "--wall-time", "4", "--attempts-per-hour", "10"]
        if workers is not None:
            command += ["--workers", str(workers)]
        log = (Path(tmp) / "serve.log").open("w")
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for(base, server, Path(tmp) / "serve.log")
            time.sleep(3.0)  # the workers import torch and warm their sandbox: not the upload's time
            deadline = time.monotonic() + deadline_s
            go = threading.Barrier(students + 1)
            threads = [threading.Thread(target=_student, args=(base, s, go, deadline), daemon=True) for s in crowd]
            for t in threads:
                t.start()
            go.wait()
            released = time.monotonic()
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()) + 5)
            grading_workers = _grading_workers(server.pid)
            outcome = Outcome(crowd, len(grading_workers), released,
                              web_peak_mb=_rss_mb(server.pid, "VmHWM"),
                              workers_mb=sum(_rss_mb(p) for p in grading_workers))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
        store = ClassStore(class_dir)
        journal = GradingQueue(store.state).journal
        outcome.graded = journal.count("graded")
        outcome.stored = sum(1 for s in crowd if store.has_result(s.id, 1)
                             and store.read(s.id, 1, "feedback.pdf") and store.read(s.id, 1, "report.pdf")
                             and store.numbers(s.id) == [1])
        return outcome


def _wait_for(base: str, server: subprocess.Popen, log: Path) -> None:
    import urllib.request

    limit = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=1).read()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > limit:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.2)


def table(outcome: Outcome) -> Table:
    crowd = outcome.students
    accepted = [s for s in crowd if s.accepted_at and not s.error.startswith("upload")]
    done = [s for s in crowd if s.feedback_at]
    last_accept = max((s.accepted_at for s in accepted), default=outcome.released_at)
    feedback = [s.feedback_at - s.uploaded_at for s in done]
    once = all(outcome.graded.get((s.id, 1)) == 1 for s in crowd) and len(outcome.graded) == len(crowd)
    t = Table(title=f"gradelab serve under load: {len(crowd)} students upload at once "
                    f"(cifar-convnet, {outcome.workers} grading worker(s), {os.cpu_count()} cores, loopback)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("uploads accepted", f"{len(accepted)} / {len(crowd)}")
    t.add_row("uploads accepted per second", f"{len(accepted) / max(last_accept - outcome.released_at, 1e-9):.1f}")
    t.add_row("time to accept, median / worst", f"{statistics.median([s.accepted_at - s.uploaded_at for s in accepted]):.2f} s"
              f" / {max(s.accepted_at - s.uploaded_at for s in accepted):.2f} s" if accepted else "–")
    t.add_row("time to feedback, median", f"{statistics.median(feedback):.1f} s" if feedback else "–")
    t.add_row("time to feedback, worst", f"{max(feedback):.1f} s" if feedback else "–")
    t.add_row("server memory: web process (peak RSS)", f"{outcome.web_peak_mb:.0f} MB")
    t.add_row("server memory: grading workers (RSS, together)", f"{outcome.workers_mb:.0f} MB")
    t.add_row("graded exactly once (journal)", "yes" if once else f"NO: {outcome.graded}")
    t.add_row("stored (result, both reports, one attempt each)", f"{outcome.stored} / {len(crowd)}")
    errors = [f"{s.id}: {s.error}" for s in crowd if s.error]
    if errors:
        t.add_row("[red]errors[/red]", "; ".join(errors[:5]) + (" …" if len(errors) > 5 else ""))
    return t


def main(students: int = 50, workers: int | None = None, deadline_s: float = 600.0) -> Table:
    return table(run(students, workers, deadline_s))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds after the uploads before it stops")
    args = parser.parse_args()
    Console().print(main(args.students, args.workers, args.deadline))
