"""Grade on a Ray cluster when one machine is not enough (``gradelab grade --ray ADDRESS``, or
``--ray local`` to start one here). Ray is an optional extra: ``pip install gradelab[ray]``.

Each hand-in is one Ray task. What travels is data, never a path: the lab folder's files (a few
kB) and the hand-in as the safe reader read it on the batch's machine (so a link or a FIFO in it
never reaches a node), with the run's options as JSON; the result comes back as JSON and is
written by the batch, as for every executor. On the node the task re-creates the hand-in in a
private folder and grades it in a ``Run`` of its own, kept for the next tasks of that worker.

Ray's guidance is not to fork inside tasks: the sandbox's fork server is not a fork of the Ray
worker but a fresh interpreter it executes (``subprocess``, then ``exec``), which imports torch
itself; the children are forked from that server. A lost worker or node is retried by Ray
(``max_retries``); a hand-in whose task keeps killing its worker gets an error result of its
own and the batch goes on. Every node needs what a grading machine needs: gradelab with the
pinned torch, root for the sandbox's namespaces and cgroups, and the data under ``--data-root``
if the lab trains on real data.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from grader.errors import GradelabError, LabError, SubmissionError, UsageError
from grader.grading.executor import Job, grade_job, unreadable
from grader.grading.run import Run
from grader.intake.sources import HandInSource, open_hand_in
from grader.options import Device, RunOptions
from grader.results import SubmissionResult

MAX_RETRIES = 3
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'gradelab[ray]'") from None
    return ray


def lab_folder_files(folder: Path) -> dict[str, bytes]:
    """The lab folder as data (manifest, reference, answers, harness, calibration, template)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


# --- on a node ---------------------------------------------------------------------------------

_RUNS: dict[str, Run] = {}   # one run per lab and options, per Ray worker process


def _node_run(lab_files: dict[str, bytes], options_json: str, hide: tuple[str, ...] = ()) -> Run:
    from grader.lab.loader import load_lab

    key = hashlib.sha256(repr(sorted(lab_files.items())).encode() + options_json.encode()
                         + repr(hide).encode()).hexdigest()
    if key not in _RUNS:
        folder = Path(tempfile.mkdtemp(prefix="gradelab-lab-"))
        for relative, data in lab_files.items():
            target = folder.joinpath(*relative.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _RUNS[key] = Run(load_lab(folder), RunOptions.model_validate_json(options_json),
                         hide=tuple(Path(h) for h in hide)).__enter__()
    return _RUNS[key]


def grade_on_node(lab_files: dict[str, bytes], options_json: str, job: Job, files: dict[str, bytes],
                  single_file: bool, notes: list[str], hide: tuple[str, ...] = ()) -> str:
    """The body of a Ray task: one hand-in, graded in this node's run for the lab; JSON back.
    ``notes``: what reading it on the batch's machine left out (unpacking an archive, say);
    ``hide``: the folders the batch's run hides from children (its results, a served class), hidden
    on the node too where they exist there (a cluster on the batch's own machine, ``local``)."""
    run = _node_run(lab_files, options_json, hide)
    with tempfile.TemporaryDirectory(prefix="gradelab-handin-") as tmp:
        path = Path(tmp) / (job.path.name if single_file else job.name)
        if single_file:
            (content,) = files.values()
            path.write_bytes(content)
        else:
            path.mkdir()
            for relative, data in files.items():
                target = path.joinpath(*relative.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        result = grade_job(run, Job(path=path, name=job.name, student=job.student))
    merged = list(dict.fromkeys([*notes, *result.notes]))
    return result.model_copy(update={"path": str(job.path), "notes": merged}).model_dump_json()


# --- on the batch's machine --------------------------------------------------------------------

def connect(address: str) -> tuple[Any, bool]:
    """Ray, connected to the cluster at ``address`` (``local``: one started here, on this
    machine's cores), and whether this call started it (then its caller shuts it down). A process
    already connected (a test's cluster, say) keeps its connection. Every worker finds gradelab
    on its path. An address that cannot be reached is one line, not Ray's traceback."""
    ray = _ray()
    if ray.is_initialized():
        return ray, False
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join([_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")])}}
    try:
        if address == "local":
            from grader.grading.parallel import cpu_count

            # "local", not None: with no address Ray joins a cluster named by RAY_ADDRESS or started
            # by `ray start` on this machine (another course's, another run's) instead of its own
            ray.init(address="local", num_cpus=cpu_count(), include_dashboard=False, runtime_env=env,
                     log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, runtime_env=env, log_to_driver=False, configure_logging=False)
    except (ConnectionError, ValueError, TimeoutError) as exc:
        raise UsageError(f"--ray {address}: no Ray cluster could be reached there ({type(exc).__name__}: {exc})") \
            from None
    return ray, address == "local"


class RayExecutor:
    """Each hand-in a Ray task on the cluster at ``address`` (``local``: a cluster started here)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._started = False  # a local cluster this executor started ends with its batch

    def _connect(self) -> Any:
        ray, started = connect(self.address)
        self._started = self._started or started
        return ray

    def map(self, run: Run, jobs: Iterable[Job]) -> Iterator[tuple[Job, SubmissionResult]]:
        todo = list(jobs)
        if not todo:
            return
        ray = self._connect()
        limits = run.lab.manifest.limits.merged(run.options.limits)
        gpus = limits.gpu_share if run.device == Device.cuda and run.options.trains else 0
        task = ray.remote(grade_on_node).options(num_cpus=limits.threads, num_gpus=gpus, max_retries=MAX_RETRIES,
                                                 name="gradelab-grade")
        lab_ref = ray.put(lab_folder_files(run.lab.folder))
        options_json = run.options.model_copy(update={"ray": None, "jobs": 1}).model_dump_json()
        try:
            yield from self._run_tasks(ray, run, task, lab_ref, options_json, todo)
        finally:
            if self._started:
                ray.shutdown()
                self._started = False

    def _run_tasks(self, ray: Any, run: Run, task: Any, lab_ref: Any, options_json: str,
                   todo: list[Job]) -> Iterator[tuple[Job, SubmissionResult]]:
        pending: dict[Any, Job] = {}
        for job in todo:
            try:
                handin = open_hand_in(job.source or HandInSource(path=job.path), run.lab.manifest.intake,
                                      run.lab.manifest.interface.module)
            except SubmissionError as exc:  # refused here: it never travels
                yield job, unreadable(run, job, exc)
                continue
            ref = task.remote(lab_ref, options_json, job, handin.files, handin.single_file, handin.notes,
                              tuple(str(h) for h in run.hide))
            pending[ref] = job
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                yield job, self._result(ray, run, job, ref)

    @staticmethod
    def _result(ray: Any, run: Run, job: Job, ref: Any) -> SubmissionResult:
        try:
            return SubmissionResult.model_validate_json(ray.get(ref))
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, LabError):
                raise cause from None  # the lab (or its data) is broken: every hand-in would fail alike
            if isinstance(cause, GradelabError):
                return unreadable(run, job, cause)
            raise
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.RaySystemError) as exc:
            return unreadable(run, job, f"grading this hand-in stopped its cluster worker {MAX_RETRIES + 1} times "
                                        f"({type(exc).__name__}); grade it alone to see why")
