"""``gradelab serve --ray``: the server's queue handed to a Ray cluster (issue 31). Every upload is
graded once, a Ray worker killed mid-claim costs a retry (one try counted), a task past the
claim's deadline is cancelled and its late answer never written, and a server stopped mid-queue
leaves every attempt either done or back in the queue, graded once after the next start.

The cluster is this module's: ``num_cpus=2`` on this machine, started once; a test kills only Ray
workers that descend from this process."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.own_processes import descends_from
from tests.serve_kit import hand_in, login, make_class, upload, wait_graded, zipped

pytestmark = pytest.mark.own_sandbox

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local cluster of two CPUs for the module (the servers below connect to it: ``--ray local``
    in a process already connected keeps its connection)."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from grader.grading.cluster import _PACKAGE_ROOT
    from tests.ray_bodies import MARKERS

    markers = tmp_path_factory.mktemp("ray-markers")
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": _PACKAGE_ROOT, MARKERS: str(markers)}})
    try:
        yield markers
    finally:
        ray.shutdown()


def _ray_workers_grading() -> list[int]:
    """This test's own Ray workers running a server's task (their title names it)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::gradelab-serve") and descends_from(int(pid), os.getpid()):
            found.append(int(pid))
    return found


def _kill_one_worker_mid_claim(stop: threading.Event, killed: list[int], claimed: Path) -> None:
    """SIGKILL the first of this test's Ray workers seen running a task while the server holds a
    claim (its title says so once the task started; a second later it is grading)."""
    while not stop.is_set() and not killed:
        pids = _ray_workers_grading()
        if pids and any(claimed.iterdir()):
            time.sleep(1.0)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(pid)
                return
        time.sleep(0.05)


def _tickets(class_root: Path) -> dict[str, dict]:
    """Each attempt's ticket as the queue keeps it, by state folder."""
    import json

    queue = class_root / ".gradelab" / "queue"
    return {f"{sub}/{p.name}": json.loads(p.read_text()) for sub in ("pending", "claimed", "done")
            for p in sorted((queue / sub).glob("*.json"))}


def _upload_class(client, served, uploads: list[tuple[str, list[tuple[str, bytes]]]]) -> list[tuple[str, int]]:
    attempts = []
    for sid, files in uploads:
        client.cookies.clear()
        assert login(client, served.tokens[sid]).status_code == 200
        reply = upload(client, files)
        assert reply.status_code == 200, reply.text
        attempts.append((sid, int(reply.url.path.rsplit("/", 1)[1])))
    return attempts


UPLOADS = [("alice", hand_in("correct")), ("bob", hand_in("missing-floor")),
           ("carol", [zipped(hand_in("syntax-error"))]), ("alice", hand_in("missing-floor"))]
EXPECTED = {("alice", 1): 17, ("bob", 1): 15, ("carol", 1): 9, ("alice", 2): 15}  # as `gradelab grade` scores them


def test_serve_on_a_ray_cluster_grades_every_upload_once_though_a_worker_is_killed_mid_claim(tmp_path, cluster):
    from starlette.testclient import TestClient

    from grader.serve.queue import GradingQueue

    served = make_class(tmp_path)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_worker_mid_claim,
                              args=(stop, killed, served.root / ".gradelab" / "queue" / "claimed"), daemon=True)
    try:
        with TestClient(served.app(ray="local", workers=2)) as client:
            pool = client.app.state.classroom.pool
            assert type(pool).__name__ == "RayPool" and pool.resources.slots == 2  # 2 CPUs, 1 thread a task
            killer.start()
            attempts = _upload_class(client, served, UPLOADS)
            for sid, number in attempts:
                client.cookies.clear()
                login(client, served.tokens[sid])
                assert wait_graded(client, number, timeout_s=240)["state"] == "done"
    finally:
        stop.set()
        killer.join(5)
    assert killed, "a Ray worker was killed while it held a claim"
    journal = GradingQueue(served.root / ".gradelab").journal
    assert journal.count("graded") == dict.fromkeys(EXPECTED, 1)  # every attempt graded exactly once
    assert journal.count("duplicate") == {}
    (requeued,) = [e for e in journal.read() if e["event"] == "requeued"]  # the killed worker's claim, once
    lost = (requeued["student"], requeued["attempt"])
    tickets = _tickets(served.root)
    assert len(tickets) == 4 and all(name.startswith("done/") for name in tickets)
    tries = {(t["student"], t["attempt"]): (t["tries"], t["fault"]) for t in tickets.values()}
    assert tries.pop(lost) == (1, "the cluster worker grading it was lost (WorkerCrashedError)")
    assert set(tries.values()) == {(0, "")}

    from grader.serve.store import ClassStore

    store = ClassStore(served.root)
    for (sid, number), score in EXPECTED.items():
        result = store.result(sid, number)
        assert (result.score, result.max_score) == (score, 20), (sid, number)
        assert result.path == f"{sid}/attempts/{number}/upload"
        assert store.read(sid, number, "feedback.pdf").startswith(b"%PDF")
        assert store.read(sid, number, "report.pdf").startswith(b"%PDF")

    # a restart finds every ticket done and grades nothing again
    with TestClient(served.app(ray="local", workers=2)) as client:
        time.sleep(2.0)
        assert client.app.state.classroom.queue.counts() == {"pending": 0, "claimed": 0, "done": 4}
    assert journal.count("graded") == dict.fromkeys(EXPECTED, 1)


def test_a_task_past_its_deadline_counts_a_try_and_its_late_answer_is_never_written(tmp_path, cluster):
    """The server could not cancel it (a node it cannot reach): the task answers after its claim
    was given back and graded again; what it says is not read, and the attempt has one grade."""
    from grader.api import load_lab
    from grader.lab.manifest import LimitsOverride
    from grader.options import Mode, RunOptions
    from grader.serve.cluster import RayPool
    from grader.serve.queue import GradingQueue, Ticket
    from grader.serve.store import ClassStore
    from tests.conftest import FAST_LIMITS
    from tests.ray_bodies import LATE_NOTE, late_first

    store = ClassStore(tmp_path / "class")
    grading_queue = GradingQueue(store.state)
    meta = store.create_attempt("dora", dict(hand_in("correct")), {
        "uploaded_at": datetime.now(UTC), "kind": "files", "files": ["answers.yaml", "convnet.py"], "bytes": 1,
        "name": "Dora Lee", "email": ""})
    grading_queue.put(Ticket(student="dora", attempt=meta.number, queued_at=meta.uploaded_at))
    options = RunOptions(mode=Mode.grade, limits=LimitsOverride(**FAST_LIMITS), train=False, reports=False)
    pool = RayPool("local", load_lab("cifar-convnet"), options, store, grading_queue, deadline_s=2.0, body=late_first)
    cancelled = []
    pool._cancel = cancelled.append  # the node cannot be reached: the task runs on
    answered = cluster / f"dora-{meta.number}" / "answered"

    def step_until(done, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, grading_queue.journal.read()
            pool.step()

    pool.open()
    try:
        step_until(lambda: grading_queue.journal.count("requeued"), 60)
        assert len(cancelled) == 1 and pool.lost == 1
        pool.deadline_s = 600.0  # the retry has all the time it needs
        step_until(lambda: grading_queue.counts()["done"] == 1, 240)
        step_until(answered.exists, 120)  # the first task answered, late
        for _ in range(4):
            pool.step()
    finally:
        pool.stop()
    (ticket,) = [p for p in (store.state / "queue" / "done").iterdir()]
    done = Ticket.model_validate_json(ticket.read_text())
    assert (done.tries, done.fault) == (1, "not graded within 2 s: its cluster task was stopped")
    result = store.result("dora", meta.number)
    assert LATE_NOTE not in result.notes and result.score == 17
    assert (answered.parent / "hide").read_text() == str(store.root)  # the class folder, hidden from children
    assert grading_queue.journal.count("graded") == {("dora", 1): 1}
    assert grading_queue.journal.count("duplicate") == {}


def test_an_attempt_out_of_tries_gets_the_could_not_be_graded_result_and_is_not_sent_to_grade(tmp_path, cluster):
    """Its worker was lost three times: the server writes the result saying why (the node only
    renders its reports), as local workers give up after MAX_TRIES."""
    from grader.api import load_lab
    from grader.options import Mode, RunOptions
    from grader.serve.cluster import RayPool
    from grader.serve.queue import MAX_TRIES, GradingQueue, Ticket
    from grader.serve.store import ClassStore
    from grader.serve.workers import GRADER_FAULT

    store = ClassStore(tmp_path / "class")
    grading_queue = GradingQueue(store.state)
    meta = store.create_attempt("eve", dict(hand_in("correct")), {
        "uploaded_at": datetime.now(UTC), "kind": "files", "files": ["answers.yaml", "convnet.py"], "bytes": 1,
        "name": "Eve Park", "email": ""})
    grading_queue.put(Ticket(student="eve", attempt=meta.number, queued_at=meta.uploaded_at))
    lost = "the cluster worker grading it was lost (WorkerCrashedError)"
    for _ in range(MAX_TRIES):
        grading_queue.release(grading_queue.claim(os.getpid()), count=True, fault=lost)
    pool = RayPool("local", load_lab("cifar-convnet"), RunOptions(mode=Mode.grade, train=False, reports=False), store,
                   grading_queue, deadline_s=600)
    pool.open()
    try:
        deadline = time.monotonic() + 120
        while grading_queue.counts()["done"] == 0:
            assert time.monotonic() < deadline, grading_queue.journal.read()
            pool.step()
    finally:
        pool.stop()
    result = store.result("eve", meta.number)
    assert result.score == 0 and result.max_score == 20 and result.checks[0].message == GRADER_FAULT
    assert result.notes == [f"grader fault, {MAX_TRIES} tries: RuntimeError: {lost}"]
    events = [(e["event"], e.get("given_up")) for e in grading_queue.journal.read() if e["event"] != "requeued"]
    assert events == [("queued", None), ("graded", True)]  # never started on the cluster
    assert store.read("eve", meta.number, "report.pdf").startswith(b"%PDF")  # rendered on a node
    assert grading_queue.counts() == {"pending": 0, "claimed": 0, "done": 1}


def test_a_server_stopped_mid_queue_gives_its_claims_back_uncounted_and_the_next_grades_each_once(
        tmp_path, cluster, monkeypatch):
    import functools

    from starlette.testclient import TestClient

    from grader.serve import cluster as serve_cluster
    from grader.serve.queue import GradingQueue
    from tests.ray_bodies import carol_waits

    served = make_class(tmp_path)
    monkeypatch.setattr(serve_cluster, "RayPool", functools.partial(serve_cluster.RayPool, body=carol_waits))
    with TestClient(served.app(ray="local", workers=2)) as client:
        attempts = _upload_class(client, served, UPLOADS)
        client.cookies.clear()
        login(client, served.tokens["alice"])
        wait_graded(client, 1, timeout_s=240)
        room = client.app.state.classroom
        deadline = time.monotonic() + 30
        while room.status("carol", 1).state != "grading":  # claimed once a slot is free; its task runs a minute
            assert time.monotonic() < deadline, room.queue.counts()
            time.sleep(0.1)
        first = room.queue.counts()
    monkeypatch.undo()
    assert 1 <= first["done"] < 4
    tickets = _tickets(served.root)
    assert len(tickets) == 4 and not [n for n in tickets if n.startswith("claimed/")]
    assert {t["tries"] for t in tickets.values()} == {0}  # given back in time: no try spent
    journal = GradingQueue(served.root / ".gradelab").journal
    assert ("carol", 1) in journal.count("requeued") and ("carol", 1) not in journal.count("graded")
    with TestClient(served.app(workers=0)) as client:  # a server that grades nothing: the queue as it was left
        left = client.app.state.classroom.queue.counts()
    # An attempt on the other slot may finish while the server stops (it is kept, graded once);
    # carol's, stopped mid-claim, is pending again, and no claim is left behind.
    assert left["claimed"] == 0 and left["pending"] + left["done"] == 4
    assert first["done"] <= left["done"] < 4
    with TestClient(served.app(ray="local", workers=2)) as client:
        for sid, number in attempts:
            client.cookies.clear()
            login(client, served.tokens[sid])
            wait_graded(client, number, timeout_s=240)
    assert journal.count("graded") == dict.fromkeys(EXPECTED, 1)
    assert journal.count("duplicate") == {}


def test_a_task_asks_for_the_labs_gpu_share_only_where_the_cluster_has_gpus_and_the_attempt_trains():
    from grader.api import load_lab
    from grader.errors import UsageError
    from grader.lab.manifest import LimitsOverride
    from grader.options import Device, RunOptions
    from grader.serve.cluster import task_resources

    training, static = load_lab("cifar-training"), load_lab("cifar-convnet")
    grading = RunOptions(train=True)
    threads = training.manifest.limits.threads
    assert training.manifest.limits.gpu_share == 1.0  # the manifest's default: a GPU of its own
    on_gpus = task_resources(training, grading, {"CPU": 16.0, "GPU": 2.0})
    assert (on_gpus.cpus, on_gpus.gpus, on_gpus.slots) == (threads, 1.0, 2)
    halves = task_resources(training, grading.model_copy(update={"limits": LimitsOverride(gpu_share=0.5)}),
                            {"CPU": 16.0, "GPU": 2.0})
    assert (halves.gpus, halves.slots) == (0.5, 4)  # two attempts train on each GPU
    assert task_resources(training, grading, {"CPU": 2.0}).gpus == 0  # no GPU in the cluster: the CPU
    assert task_resources(training, RunOptions(train=False), {"CPU": 16.0, "GPU": 2.0}).gpus == 0  # nothing trains
    assert task_resources(static, grading, {"CPU": 16.0, "GPU": 2.0}).gpus == 0  # a lab with no training check
    assert task_resources(training, grading.model_copy(update={"device": Device.cpu}),
                          {"CPU": 16.0, "GPU": 2.0}).gpus == 0
    assert task_resources(static, RunOptions(device=Device.cuda), {"CPU": 4.0, "GPU": 1.0}).gpus == 1.0
    with pytest.raises(UsageError, match=r"^--device cuda: the Ray cluster has no GPU$"):
        task_resources(training, grading.model_copy(update={"device": Device.cuda}), {"CPU": 16.0})
    assert task_resources(static, grading, {"CPU": 16.0}).slots == 16 // static.manifest.limits.threads


def test_serve_help_names_ray_and_imports_neither_ray_nor_torch():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys; from typer.testing import CliRunner; from grader.cli import app; "
            "out = CliRunner().invoke(app, ['serve', '--help'], env={'COLUMNS': '300'}).output; "
            "print('--ray' in out, 'ray' in sys.modules, 'torch' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert shown.stdout.split() == ["True", "False", "False"], shown.stderr


def test_serve_ray_without_the_extra_says_how_to_install_it_before_serving(tmp_path, monkeypatch):
    import sys

    from grader.serve import app as serve_app
    from tests.conftest import cli

    def started(*args, **kwargs):
        raise AssertionError("the server started")

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as without the extra
    monkeypatch.setattr(serve_app, "run_server", started)
    served = make_class(tmp_path)
    result = cli("serve", "--lab", "cifar-convnet", "--class", str(served.root), "--roster", str(served.roster),
                 "--ray", "local")
    assert result.exit_code == 2, result.output
    assert "UsageError: --ray needs Ray: pip install 'gradelab[ray]'" in result.output
    assert "Traceback" not in result.output
