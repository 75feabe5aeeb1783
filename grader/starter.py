"""What a student starts from: a lab's template, as files or as a notebook
(``gradelab init LAB DIR [--notebook]``).

A lab's ``template/`` folder is copied as it is. A lab without one still has a template: stubs of
every symbol its interface declares (``raise NotImplementedError``), and an answer sheet with a
``null`` for every field, so adding a lab needs no template written by hand. The notebook version
is generated from the same files (``intake.notebooks.template_notebook``): one definition per
cell, the answer sheet in a raw cell tagged ``answers``, which the grader reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from grader.errors import UsageError
from grader.intake.notebooks import template_notebook
from grader.lab.loader import Lab
from grader.lab.manifest import InterfaceSpec


def _stub_module(lab: Lab) -> str:
    iface = lab.manifest.interface
    out = [f'"""{lab.manifest.title}.\n\nCheck yourself before handing in:  gradelab check . --lab {lab.id}\n"""',
           "", "import torch", "from torch import nn", ""]
    for symbol in iface.symbols:
        params = ", ".join(symbol.params)
        doc = f'    """{symbol.description}"""\n' if symbol.description else ""
        if symbol.kind == "class":
            out += ["", f"class {symbol.name}(nn.Module):", doc.rstrip("\n") or '    """Your model."""',
                    "", f"    def __init__(self{', ' if params else ''}{params}):", "        super().__init__()",
                    "        raise NotImplementedError", "", "    def forward(self, x):",
                    "        raise NotImplementedError", ""]
        else:
            out += ["", f"def {symbol.name}({params}):", *([doc.rstrip("\n")] if doc else []),
                    "    raise NotImplementedError", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _stub_answers(iface: InterfaceSpec) -> str | None:
    if not iface.answers:
        return None
    tree: dict[str, Any] = {}
    for spec in iface.answers:
        node = tree
        *parents, leaf = spec.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = [] if spec.type.startswith("list") else None
    head = f"# Your answers for {iface.answers_file}. Replace every null and every [] with your answer.\n"
    return head + yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


def template_files(lab: Lab) -> dict[str, str]:
    """The lab's starting files by name: its template folder, or stubs from its interface."""
    iface = lab.manifest.interface
    folder = lab.path(lab.manifest.template)
    if folder.is_dir():
        files = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
                 for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}
        if iface.module in files:
            return files
    files = {iface.module: _stub_module(lab)}
    answers = _stub_answers(iface)
    if answers is not None:
        files[iface.answers_file] = answers
    return files


def write_template(lab: Lab, target: Path, *, notebook: bool = False) -> list[Path]:
    """Write the template into ``target`` (created; an existing file is never overwritten)."""
    target = Path(target)
    files = template_files(lab)
    iface = lab.manifest.interface
    if notebook:
        data = template_notebook(lab.manifest.title, iface.module, files[iface.module],
                                 files.get(iface.answers_file), lab.id)
        out = {f"{lab.id}.ipynb": data}
        out.update({n: t.encode("utf-8") for n, t in files.items() if n not in (iface.module, iface.answers_file)})
    else:
        out = {n: t.encode("utf-8") for n, t in files.items()}
    clashes = [n for n in out if (target / n).exists()]
    if clashes:
        raise UsageError(f"{target}: {', '.join(clashes)} already there; choose an empty folder")
    written = []
    for name, data in out.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written
