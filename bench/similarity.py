"""Similarity of a class of 500 hand-ins (``gradelab similarity``): hand-ins per second, pairs reported.

The class is generated: each hand-in of mlp-backprop takes each function from one of the four
independent solutions of ``submissions/similarity`` (so a quarter of the class shares any one
function: the common code a real class has), renames its variables, adds a helper and constants
of its own, and fills the answer sheet with some mistakes and a written answer in words of its
own. Ten hand-ins are planted copies of others (identifiers renamed, functions reordered); the
table says how many of them were listed, and how many pairs in all.
"""

from __future__ import annotations

import ast
import random
import re
import tempfile
import time
from pathlib import Path

from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "submissions" / "similarity" / "mlp-backprop"
STYLES = ("ana", "bruno", "chen", "dara")
WORDS = ("rate batch noise step gradient loss converge slow fast diverge oscillate epoch update estimate "
         "variance precise cheap memory minimum overshoot stable smooth curve sample average descent weight "
         "learning size small large many few every training model error value better worse because while "
         "although therefore however thus since until unless then first second finally also often").split()


def _functions(source: str) -> tuple[list[str], dict[str, str]]:
    """The module's top of file (imports, constants) and each top-level def/class by name."""
    tree = ast.parse(source)
    lines = source.splitlines()
    head, bodies = [], {}
    for node in tree.body:
        text = "\n".join(lines[node.lineno - 1 - len(getattr(node, "decorator_list", [])):node.end_lineno])
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bodies[node.name] = text
        else:
            head.append(text)
    return head, bodies


def _rename(code: str, rng: random.Random) -> str:
    """Local-looking names (short lowercase ones) renamed: fingerprints do not see names."""
    names = sorted(set(re.findall(r"\b([a-z][a-z_]{1,8})\s*=", code)) - {"dim", "keepdim", "lr", "alpha", "size"})
    for name in names:
        code = re.sub(rf"\b{name}\b", f"{name}_{rng.randrange(100)}", code)
    return code


def handin(rng: random.Random, styles: dict[str, tuple[list[str], dict[str, str]]]) -> tuple[str, str]:
    heads, parts = set(), []
    for name in styles["ana"][1]:
        style = rng.choice(STYLES)
        head, bodies = styles[style]
        heads.update(head)
        parts.append(bodies.get(name) or styles["ana"][1][name])
        for helper, text in bodies.items():  # the helpers the chosen function may call
            if helper.startswith("_") or helper in ("softmax", "TwoLayer", "NAMES"):
                parts.append(text)
    for _ in range(3):  # code of its own: a plotting helper, a training loop, a check
        lines = [f"    v{i} = x * {rng.random():.4f} + {rng.randrange(1000)}" for i in range(rng.randrange(4, 9))]
        parts.append(f"def _own_{rng.randrange(10 ** 6)}(x):\n" + "\n".join(lines) + "\n    return v0\n")
    code = "\n".join(sorted(heads)) + "\n\n" + "\n\n".join(dict.fromkeys(parts))
    n_h = 10 if rng.random() < 0.8 else rng.randrange(5, 60)
    d_h = 30 if rng.random() < 0.8 else rng.randrange(5, 200)
    grad = rng.choice(["yhat - y"] * 6 + ["y - yhat", "-y / yhat"])
    text = " ".join(rng.choice(WORDS) for _ in range(40))
    sheet = (f"circles: {{n_x: 2, n_h: {n_h}, n_y: 2}}\ndigits: {{n_x: 784, n_h: {d_h}, n_y: 10}}\n"
             f"grad_ytilde: \"{grad}\"\nwritten:\n  lr_batch: >\n    {text}\n")
    return _rename(code, rng), sheet


def make_class(root: Path, n: int, copies: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    styles = {s: _functions((CORPUS / s / "mlp.py").read_text(encoding="utf-8")) for s in STYLES}
    made, planted = [], []
    for i in range(n - copies):
        code, sheet = handin(rng, styles)
        made.append((f"s{i:03d}", code, sheet))
    for j in range(copies):
        name, code, sheet = made[rng.randrange(len(made))]
        head, bodies = _functions(code)
        order = list(bodies.values())
        rng.shuffle(order)
        copy = _rename("\n".join(head) + "\n\n" + "\n\n".join(order), rng)
        made.append((f"c{j:02d}", copy, sheet.replace("lr_batch: >\n", "lr_batch: >\n    in my words ")))
        planted.append((name, f"c{j:02d}"))
    for name, code, sheet in made:
        (root / name).mkdir(parents=True)
        (root / name / "mlp.py").write_text(code, encoding="utf-8")
        (root / name / "answers.yaml").write_text(sheet, encoding="utf-8")
    return planted


def main(n: int = 500, copies: int = 10) -> Table:
    from grader import api

    table = Table(title=f"Similarity: {n} hand-ins of mlp-backprop, read from disk and compared (one process)")
    for column in ("hand-ins", "seconds", "CPU s", "hand-ins/s", "pairs reported", "planted copies listed"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "class"
        planted = make_class(root, n, copies)
        api.load_lab("mlp-backprop")
        started, cpu = time.perf_counter(), time.process_time()
        report = api.similarity(Path(tmp) / "out", "mlp-backprop", root=root)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    listed = {frozenset((p.a, p.b)) for p in report.similar}
    found = sum(frozenset(p) in listed for p in planted)
    table.add_row(str(report.compared), f"{seconds:.1f}", f"{cpu:.1f}", f"{report.compared / seconds:.0f}",
                  str(len(listed)),
                  f"{found} of {len(planted)}")
    table.caption = (f"of which comparing (fingerprints, index, scores) {report.seconds:.1f} s; the rest is reading "
                     "and writing the CSV, JSON and HTML; one core (the comparison runs in one process)")
    return table


if __name__ == "__main__":
    from rich.console import Console

    Console().print(main())
