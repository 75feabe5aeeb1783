"""A lab's student edition: what students receive to self-check, without the solutions.

``gradelab pack LAB --students DIR`` writes the lab's template, a manifest, and only what the
checks that can run without solutions need: the names they use from the reference module (torch
op wrappers, input builders, data set loaders: never the reference implementation of something
students write, never a mistake made on purpose, which is a near-solution), the harness and the
calibrated thresholds when a training check runs. The reference answers are never written.

Each kind says how it runs there (``CheckKind.student_edition``). A check that needs a solution
becomes a ``handin_format`` check: the format of what it grades, and "graded on hand-in". A
hidden check keeps its id, title and points, nothing else (its hint may point at the answer).
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import grader
from grader.checks.registry import BoundCheck, BoundLab, LocalCheck
from grader.errors import UsageError
from grader.lab.loader import CALIBRATION_NAME, MANIFEST_NAME
from grader.lab.manifest import CheckSpec, Visibility

README_NAME = "README.md"


@dataclass
class Edition:
    """What ``pack`` wrote: where, which checks run as they do for instructors, which are graded
    on hand-in, and the reference names shipped."""

    folder: Path
    local: list[str] = field(default_factory=list)
    on_hand_in: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    reference_names: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _format_spec(check: BoundCheck) -> CheckSpec:
    """The stand-in for a check that needs the solutions: the symbols and fields it uses."""
    needs = [*check.needs, *check.kind.refers_to(check.params)]
    params = {"of": check.spec.kind,
              "symbols": list(dict.fromkeys(n.name for n in needs if not n.answer)),
              "fields": list(dict.fromkeys(n.name for n in needs if n.answer))}
    return check.spec.model_copy(update={"kind": "handin_format", "params": params, "training": False,
                                         "reveal": None, "limits": None, "needs": []})


def _hidden_spec(check: BoundCheck) -> CheckSpec:
    return CheckSpec(id=check.spec.id, title=check.spec.title, kind="handin_format", points=check.spec.points,
                     visibility=Visibility.hidden, params={"of": check.spec.kind})


def plan(lab: BoundLab) -> tuple[list[CheckSpec], dict[str, LocalCheck]]:
    """The student edition's checks, in the lab's order, and how each public one runs locally."""
    specs, local = [], {}
    for check in lab.checks:
        if check.spec.visibility == Visibility.hidden:
            specs.append(_hidden_spec(check))
            continue
        how = check.kind.student_edition(check.params)
        if how is None:
            specs.append(_format_spec(check))
        else:
            local[check.spec.id] = how
            specs.append(check.spec.model_copy(update={"params": how.params}))
    return specs, local


def _top_level_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def public_source(source: str, names: list[str], origin: str) -> str:
    """The reference module cut down to ``names`` and what they use (top-level functions, classes
    and constants, found by reading the code, never running it), with every import kept."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    defined = {name: node for node in tree.body for name in _top_level_names(node)}
    missing = [n for n in names if n not in defined]
    if missing:
        raise UsageError(f"{origin}: the lab's checks use {', '.join(missing)}, which it does not define")
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo += [n.id for n in ast.walk(defined[name]) if isinstance(n, ast.Name) and n.id in defined]
    out = [f'"""Public part of {origin} for the student edition (written by gradelab {grader.__version__}):\n'
           "the functions the self-check runs that are not solutions."
           '"""\n\n']
    for node in tree.body:
        keep = isinstance(node, (ast.Import, ast.ImportFrom)) or bool(_top_level_names(node) & wanted)
        if keep:
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            out.append("\n\n" if not isinstance(node, (ast.Import, ast.ImportFrom)) else "")
            out.append("".join(lines[start - 1:node.end_lineno]))
    return "".join(out).rstrip() + "\n"


# What a threshold is judged with besides its value (``grader.lab.calibration``).
THRESHOLD_CONTEXT = ("generator", "seed", "seeds", "discriminates")


def _thresholds(calibration: dict[str, Any], checks: list[str]) -> dict[str, Any]:
    """Only the thresholds (per check and budget), the generator of the data they were measured on
    and the seeds they were measured under (so a stale generator, or a seed they never saw, is
    refused there as here: ``grader.lab.calibration.entry_for``): what students aim for, and nothing
    of the reference's own runs."""
    out = {}
    for check_id in checks:
        budgets = calibration.get(check_id)
        if isinstance(budgets, dict):
            kept = {b: {"threshold": v["threshold"], **{k: v[k] for k in THRESHOLD_CONTEXT if k in v}}
                    for b, v in budgets.items() if isinstance(v, dict) and "threshold" in v}
            if kept:
                out[check_id] = kept
    return out


def _readme(lab: BoundLab, edition: Edition) -> str:
    m = lab.manifest
    lines = [f"# {m.title} — student edition", "",
             f"Start from `{m.template}/`; hand in `{m.interface.module}`"
             + (f" and `{m.interface.answers_file}`" if m.interface.answers else "") + ".", "",
             "Check your work before handing it in:", "", "```bash",
             f"gradelab check path/to/your-hand-in --lab path/to/{edition.folder.name}", "```", "",
             f"(`{edition.folder.name}` is this folder.)", ""]
    if edition.on_hand_in:
        lines += [f"These checks need the lab's solutions and are graded when you hand in; here they check the "
                  f"format of your hand-in only: {', '.join(edition.on_hand_in)}.", ""]
    if edition.hidden:
        lines += [f"Graded by your instructor only: {', '.join(edition.hidden)}.", ""]
    return "\n".join(lines)


def pack(lab: BoundLab, folder: Path) -> Edition:
    """Write ``lab``'s student edition into ``folder`` (which must not hold anything yet)."""
    if lab.manifest.edition == "students":
        raise UsageError(f"{lab.folder} is already a student edition")
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{folder} is not an empty folder: pack writes a student edition into a new one")
    specs, local = plan(lab)
    edition = Edition(folder=folder, local=list(local),
                      on_hand_in=[s.id for s in specs if s.kind == "handin_format" and s.visibility == Visibility.public],
                      hidden=[s.id for s in specs if s.visibility == Visibility.hidden])
    names = list(dict.fromkeys(n for how in local.values() for n in how.reference))
    harness = any(how.harness for how in local.values())
    reference = lab.manifest.reference.model_copy(update={
        "harness": lab.manifest.reference.harness if harness else None})
    manifest = lab.manifest.model_copy(update={"checks": specs, "edition": "students", "reference": reference})
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, text: str) -> None:
        path = folder / name
        path.write_text(text, encoding="utf-8")
        edition.files.append(path)

    write(MANIFEST_NAME, f"# {lab.id}: student edition, written by `gradelab pack` (gradelab {grader.__version__}).\n"
                         + yaml.safe_dump(manifest.model_dump(mode="json", exclude_defaults=True),
                                          sort_keys=False, allow_unicode=True, width=110, default_flow_style=None))
    if names:
        source_path = lab.path(lab.manifest.reference.module)
        write(lab.manifest.reference.module, public_source(source_path.read_text(encoding="utf-8"), names,
                                                           source_path.name))
        edition.reference_names = names
    if harness and lab.manifest.reference.harness:
        write(lab.manifest.reference.harness, lab.harness_source)
    calibrated = [i for i, how in local.items() if how.calibration]
    thresholds = _thresholds(lab.calibration, calibrated) if calibrated else {}
    if thresholds:
        write(CALIBRATION_NAME, "# Thresholds of the training checks (from the lab's calibration).\n"
                                + yaml.safe_dump(thresholds, sort_keys=False))
    template = lab.path(lab.manifest.template)
    if template.is_dir():
        shutil.copytree(template, folder / lab.manifest.template,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        edition.files += sorted(p for p in (folder / lab.manifest.template).rglob("*") if p.is_file())
    write(README_NAME, _readme(lab, edition))
    return edition
