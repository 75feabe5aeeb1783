"""Find and load lab folders: ``reference/<lab>/lab.yaml`` plus its reference code and answers.

Everything a lab needs is read from its own folder, never from a submission, so a student
cannot ship their own "reference". This module returns data: joining each check to its kind
(and validating the kind's params) is the registry's job (``grader.checks.registry.bind``), so
the bottom layer never imports the kinds above it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import ValidationError

from grader.errors import LabError
from grader.lab.manifest import LabManifest

MANIFEST_NAME = "lab.yaml"
CALIBRATION_NAME = "calibration.yaml"


def labs_root() -> Path:
    """Where the bundled labs live; ``GRADELAB_LABS`` points elsewhere (an instructor's own labs)."""
    env = os.environ.get("GRADELAB_LABS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "reference"


def format_validation_error(source: Path, exc: ValidationError) -> str:
    """One line per problem: ``file: field.path: what was expected (got ...)``."""
    lines = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        got = err.get("input")
        got_s = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"
        lines.append(f"{source}: {loc or '<top>'}: {err['msg']}{got_s}")
    return "\n".join(lines)


# libyaml's loader where PyYAML has it: the same safe subset of YAML, ten times faster (listing the
# labs reads every manifest, and must answer at once).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise LabError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


@dataclass(eq=False)
class Lab:
    """A lab folder, validated: its manifest, and its reference code and answers on demand."""

    manifest: LabManifest
    folder: Path

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def source(self) -> Path:
        """The manifest file, as error messages name it."""
        return self.folder / MANIFEST_NAME

    def path(self, relative: str) -> Path:
        return self.folder / relative

    @cached_property
    def digest(self) -> str:
        """A digest of what decides a grade in this lab folder: the manifest, the reference
        module and answers, the harness and the calibrated thresholds (a result graded under
        other ones is graded again on resume)."""
        h = hashlib.sha256()
        ref = self.manifest.reference
        for name in [MANIFEST_NAME, ref.module, ref.answers, ref.harness, CALIBRATION_NAME]:
            if not name:
                continue
            path = self.path(name)
            h.update(f"{name}\0".encode())
            h.update(path.read_bytes() if path.is_file() else b"-")
        return f"sha256:{h.hexdigest()[:16]}"

    @cached_property
    def reference(self) -> ModuleType:
        """The reference implementation, imported in the grader's own (trusted) process."""
        path = self.path(self.manifest.reference.module)
        name = f"gradelab_reference_{self.id.replace('-', '_')}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None or not path.exists():
            raise LabError(f"{path}: reference implementation not found")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a broken reference is the lab author's problem, said in one line
            raise LabError(f"{path}: reference implementation failed to import: {type(exc).__name__}: {exc}") from exc
        return module

    @cached_property
    def harness_source(self) -> str:
        """The lab's harness as text: what a ``harness`` probe runs inside the sandbox."""
        if not self.manifest.reference.harness:
            raise LabError(f"{self.folder / MANIFEST_NAME}: a check needs a harness, but reference.harness is not set")
        path = self.path(self.manifest.reference.harness)
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LabError(f"{path}: cannot read the lab's harness: {exc.strerror}") from None

    @cached_property
    def calibration(self) -> dict[str, Any]:
        """Thresholds written by `gradelab calibrate` (``calibration.yaml``): {check: {budget: {...}}}."""
        path = self.path(CALIBRATION_NAME)
        if not path.exists():
            return {}
        data = read_yaml(path, "calibration")
        if not isinstance(data, dict):
            raise LabError(f"{path}: calibration must be a mapping of check id → budget → values")
        return data

    @cached_property
    def reference_answers(self) -> dict[str, Any]:
        path = self.path(self.manifest.reference.answers)
        data = read_yaml(path, "reference answers")
        if not isinstance(data, dict):
            raise LabError(f"{path}: reference answers must be a mapping")
        return data


def load_manifest_file(source: Path) -> LabManifest:
    raw = read_yaml(source, "lab manifest")
    if not isinstance(raw, dict):
        raise LabError(f"{source}: a lab manifest must be a mapping of fields, got {type(raw).__name__}")
    # Top-level "x-" keys hold YAML anchors shared by checks (recipes, budgets), as in Compose files.
    raw = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        return LabManifest.model_validate(raw)
    except ValidationError as exc:
        raise LabError(format_validation_error(source, exc)) from None


def load_lab(name_or_path: str | Path) -> Lab:
    """Load a lab by name (a folder under ``labs_root()``) or by the path of its folder."""
    candidate = Path(name_or_path)
    folder = candidate if (candidate / MANIFEST_NAME).exists() else labs_root() / str(name_or_path)
    source = folder / MANIFEST_NAME
    if not source.exists():
        known = ", ".join(p.parent.name for p in sorted(labs_root().glob(f"*/{MANIFEST_NAME}")))
        raise LabError(f"no lab {str(name_or_path)!r} (looked for {source}); known labs: {known or 'none'}")
    return Lab(manifest=load_manifest_file(source), folder=folder.resolve())


def find_labs(root: Path | None = None) -> list[Lab]:
    root = root or labs_root()
    return [load_lab(p.parent) for p in sorted(root.glob(f"*/{MANIFEST_NAME}"))]
