"""Shared fixtures. Grading the bundled class once per session keeps the suite fast."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_LAB = ROOT / "tests" / "labs" / "tiny"
CIFAR_SUBMISSIONS = ROOT / "submissions" / "cifar-convnet"
# Short limits: the infinite loop and the memory bomb must not dominate the suite's time.
FAST_LIMITS = {"wall_s": 4.0, "cpu_s": 8.0, "memory_mb": 1024}

os.environ.setdefault("GRADELAB_LABS", str(ROOT / "reference"))


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", help="Rewrite tests/goldens/ from the current output.")


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")


def pytest_collection_modifyitems(config, items):
    try:
        import torch
        has_gpu = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_gpu = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none here")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip)


# --- one fork server per preload set for the session --------------------------------------------
#
# Every run in production starts its own fork server (seconds: it imports torch and the lab's
# modules), and a batch shares it between its hand-ins. The suite makes well over a hundred runs
# in this process; starting a server for each was most of its time. So a test's runs are handed
# the session's server for their preload set, through the sandbox's own seam
# (``grader.sandbox.runner.sharing``, nothing patched): closing a run settles its children (their
# uids, cgroups and folders are given back, as the leftover tests check) and leaves the server up
# for the next test. Tests marked ``own_sandbox`` (the CLI's, the batch's, the server's modules,
# and tests that watch a server's life) run as production does: each run starts and ends its own.

def pytest_configure(config):
    config.addinivalue_line("markers", "own_sandbox: runs in this test start their own fork servers, as in production")


@pytest.fixture(scope="session")
def session_sandboxes():
    """The session's warm sandboxes, one per preload set, closed at the end."""
    from grader.sandbox.runner import Sandbox

    shared: dict[tuple[str, ...], Sandbox] = {}

    def provide(preload: tuple[str, ...]) -> Sandbox:
        if preload not in shared:
            shared[preload] = Sandbox(preload)
        return shared[preload]

    yield provide
    for sandbox in shared.values():
        sandbox.close()


@pytest.fixture(autouse=True)
def _shared_sandbox(request, session_sandboxes):
    if request.node.get_closest_marker("own_sandbox") is not None:
        yield
        return
    from grader.sandbox.runner import sharing

    with sharing(session_sandboxes):
        yield


@pytest.fixture(scope="session")
def cifar_lab():
    from grader.api import load_lab

    return load_lab("cifar-convnet")


@pytest.fixture(scope="session")
def cifar_class(tmp_path_factory, cifar_lab):
    """Every bundled cifar-convnet hand-in graded once, all checks: {name: SubmissionResult}."""
    from grader import api
    from grader.lab.manifest import LimitsOverride
    from grader.options import RunOptions

    out = tmp_path_factory.mktemp("cifar-class")
    batch = api.grade(CIFAR_SUBMISSIONS, cifar_lab, out, RunOptions(limits=LimitsOverride(**FAST_LIMITS), reports=False))
    return {r.submission: r for r in batch.results}


@pytest.fixture(scope="session")
def renderer():
    """One report renderer for the session (fonts and stylesheet load once)."""
    from grader.report import ReportRenderer

    return ReportRenderer()


@pytest.fixture
def class_copy(tmp_path):
    """A writable copy of a few bundled hand-ins."""
    def make(*names: str) -> Path:
        root = tmp_path / "class"
        root.mkdir(exist_ok=True)
        for name in names:
            src = CIFAR_SUBMISSIONS / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
        return root
    return make


def cli(*args: str, env: dict[str, str] | None = None):
    """`gradelab ARGS` through Typer's CliRunner, on a wide terminal so that table cells do not
    wrap the words tests look for."""
    from typer.testing import CliRunner

    from grader.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "250", **(env or {})})


def checks_by_id(result: dict) -> dict[str, dict]:
    """A result's JSON checks, by id."""
    return {c["id"]: c for c in result["checks"]}


def variant(hand_in: Path, dest: Path, *edits: tuple[str, str]) -> Path:
    """A copy of a bundled hand-in with its module edited (old text → new): another way a student
    could write it. Each old text must be there, so a changed hand-in cannot silently void a test."""
    shutil.copytree(hand_in, dest)
    (module,) = [p for p in dest.glob("*.py")]
    text = module.read_text()
    for old, new in edits:
        assert old in text, f"{old!r} is not in {hand_in.name}/{module.name}"
        text = text.replace(old, new)
    module.write_text(text)
    return dest


def check_only(hand_in: Path, lab: str, *only: str) -> dict[str, dict]:
    """`gradelab check HAND_IN --lab LAB --only …` (no training), its checks by id."""
    import json

    args = ["check", str(hand_in), "--lab", lab, "--format", "json"]
    for check_id in only:
        args += ["--only", check_id]
    return checks_by_id(json.loads(cli(*args).output))


@pytest.fixture
def probe_spy(monkeypatch):
    """Every (probe name, payload) the grader sends to a sandboxed child during the test."""
    from grader.grading.context import SubmissionSession

    sent: list[tuple[str, dict]] = []
    real = SubmissionSession.probe

    def spy(self, name, payload, limits):
        sent.append((name, payload))
        return real(self, name, payload, limits)

    monkeypatch.setattr(SubmissionSession, "probe", spy)
    return sent


@pytest.fixture(scope="session")
def moodle_graded(tmp_path_factory):
    """The bundled Moodle download (submissions/lms), graded once through the CLI: (its output
    folder, the command's result, results by student id)."""
    import json

    out = tmp_path_factory.mktemp("moodle-graded")
    result = cli("grade", str(ROOT / "submissions" / "lms" / "moodle-cifar-convnet"), "--lab", "cifar-convnet",
                 "--out", str(out), "--no-pdf", "--wall-time", str(FAST_LIMITS["wall_s"]))
    results = {}
    for path in out.glob("*.json"):
        data = json.loads(path.read_text())
        results[data["student"]["id"]] = data
    return out, result, results


@pytest.fixture(scope="session")
def mlp_graded(tmp_path_factory) -> Path:
    """`gradelab grade submissions/mlp-backprop`, training included, once for the session (the
    lab's tests and the sweep read it): its output folder."""
    out = tmp_path_factory.mktemp("mlp-class")
    result = cli("grade", str(ROOT / "submissions" / "mlp-backprop"), "--lab", "mlp-backprop", "--out", str(out), "--no-pdf")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def layers_graded(tmp_path_factory) -> Path:
    """`gradelab grade submissions/layers-from-scratch`, once for the session (the lab's tests and
    the sweep read it): its output folder."""
    out = tmp_path_factory.mktemp("layers-class")
    result = cli("grade", str(ROOT / "submissions" / "layers-from-scratch"), "--lab", "layers-from-scratch",
                 "--out", str(out), "--no-pdf")
    assert result.exit_code == 0, result.output
    return out
