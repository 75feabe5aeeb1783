"""`make lint` (part of `make test`) fails on a new finding: a finding planted in a scratch copy of
the package is reported by ruff and by mypy, each on its own, under the project's configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def scratch_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "grader", tmp_path / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    """One cache for this module's mypy runs: each run after the first checks only what changed."""
    return tmp_path_factory.mktemp("mypy-cache")


def run(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_ruff_fails_on_an_unused_import_planted_in_a_copy(tmp_path):
    copy = scratch_copy(tmp_path)
    assert run("ruff", "check", "grader", cwd=copy).returncode == 0  # the copy is clean as it is
    module = copy / "grader" / "results.py"
    module.write_text(module.read_text() + "\n\ndef planted() -> None:\n    import json\n")
    found = run("ruff", "check", "--output-format", "concise", "grader", cwd=copy)
    assert found.returncode == 1
    assert "grader/results.py" in found.stdout and "F401 [*] `json` imported but unused" in found.stdout


def test_mypy_fails_on_a_type_error_planted_in_a_copy(tmp_path, mypy_cache):
    copy = scratch_copy(tmp_path)
    module = copy / "grader" / "options.py"
    module.write_text(module.read_text() + '\n\nPLANTED: int = "not a number"\n')
    found = run("mypy", "--cache-dir", str(mypy_cache), cwd=copy)
    assert found.returncode == 1, found.stdout
    assert 'grader/options.py' in found.stdout
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in found.stdout
    assert "Found 1 error in 1 file" in found.stdout  # the planted one, and nothing else


def test_mypy_refuses_an_untyped_function_at_the_seams(tmp_path, mypy_cache):
    """api, options, results, grading and serve are checked strictly: a function without types fails."""
    copy = scratch_copy(tmp_path)
    module = copy / "grader" / "grading" / "scoring.py"
    module.write_text(module.read_text() + "\n\ndef planted(x):\n    return x\n")
    found = run("mypy", "--cache-dir", str(mypy_cache), cwd=copy)
    assert found.returncode == 1
    assert "grader/grading/scoring.py" in found.stdout and "Function is missing a type annotation" in found.stdout
