"""`make lint` (part of `make test`) fails on a new finding: a finding planted in a scratch copy of
the package (for mypy, of one module, read in its place) is reported by ruff and by mypy, each on
its own, under the project's configuration."""

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
    """One cache for this module's mypy runs, seeded from the checkout's own when there is one
    (`make test` runs `make lint` first): each run then checks only what its planted finding
    touches, not the whole package and torch's stubs from cold (minutes on two cores)."""
    cache = tmp_path_factory.mktemp("mypy") / "cache"
    if (ROOT / ".mypy_cache").is_dir():
        shutil.copytree(ROOT / ".mypy_cache", cache)
    return cache


def planted_mypy(relative: str, addition: str, tmp_path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """mypy over the checkout under its own configuration, with ``addition`` appended to one
    module: mypy reads that module from a scratch copy (``--shadow-file``), so the checkout is
    never written and its paths (hence the cache) are the ones `make lint` sees."""
    shadow = tmp_path / Path(relative).name
    shadow.write_text((ROOT / relative).read_text() + addition)
    return run("mypy", "--cache-dir", str(cache), "--shadow-file", relative, str(shadow), cwd=ROOT)


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
    found = planted_mypy("grader/options.py", '\n\nPLANTED: int = "not a number"\n', tmp_path, mypy_cache)
    assert found.returncode == 1, found.stdout
    assert 'grader/options.py' in found.stdout
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in found.stdout
    assert "Found 1 error in 1 file" in found.stdout  # the planted one, and nothing else


def test_mypy_refuses_an_untyped_function_at_the_seams(tmp_path, mypy_cache):
    """api, options, results, grading and serve are checked strictly: a function without types fails."""
    found = planted_mypy("grader/grading/scoring.py", "\n\ndef planted(x):\n    return x\n", tmp_path, mypy_cache)
    assert found.returncode == 1
    assert "grader/grading/scoring.py" in found.stdout and "Function is missing a type annotation" in found.stdout


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of each ``from grader… import name`` in a file, at any depth."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module and node.module.startswith("grader") for alias in node.names]


def test_no_module_imports_a_private_name_from_another_package():
    crossing = []
    for path in sorted((ROOT / "grader").rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:2])
        for module, name in _imports(path):
            if name.startswith("_") and not module.startswith(package):
                crossing.append(f"{path.relative_to(ROOT)}: {module}.{name}")
    assert crossing == []


def test_the_sandbox_imports_nothing_from_intake():
    """Intake reads hand-ins; the sandbox takes any hand-in with a source and files (staging.Staged)."""
    found = [f"{path.name}: {module}" for path in sorted((ROOT / "grader" / "sandbox").rglob("*.py"))
             for module, _ in _imports(path) if module.startswith("grader.intake")]
    assert found == []
