"""Notebooks: the module is built from the code cells without running the notebook top to bottom;
what is left out is said once per cell; errors point at the notebook's cells, never at a
generated file; a notebook hand-in scores what the same code scores as a folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from grader.intake.notebooks import notebook_module, template_notebook
from tests.conftest import ROOT, cli

SUBMISSIONS = ROOT / "submissions"


def cell(source: str, kind: str = "code", tags: list[str] | None = None) -> dict:
    out = {"cell_type": kind, "id": f"c{abs(hash(source)) % 10**8}", "metadata": {"tags": tags or []}, "source": source}
    if kind == "code":
        out.update(execution_count=None, outputs=[])
    return out


def write_notebook(path: Path, *cells: dict) -> Path:
    nb = {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_definitions_are_kept_and_top_level_code_is_dropped_once_per_cell():
    nb = {"cells": [
        cell("# Lab 2", "markdown"),
        cell("%matplotlib inline\nimport torch\n!pip install tqdm\nfrom torch import nn"),
        cell("HIDDEN = 10\nSIZES = (HIDDEN, 2 * HIDDEN)\nDTYPE = torch.float32\ndata = torch.randn(5)"),
        cell("def f(x):\n    %time y = x\n    return x + HIDDEN\n\nprint(f(1))\nfor i in range(10**9):\n    pass"),
        cell("%%time\nclass Net(nn.Module):\n    pass"),
        cell("%%bash\nrm -rf /"),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    built = notebook_module(json.dumps(nb).encode(), "lab2.ipynb", "convnet.py")
    namespace: dict = {}
    exec(compile(built.source, "convnet.py", "exec"), namespace)  # the module imports at once: no loop ran
    assert namespace["f"](1) == 11 and namespace["SIZES"] == (10, 20) and "data" not in namespace
    assert "Net" in namespace and "rm -rf" not in built.source
    assert built.notes == [
        "cell 2: !pip install tqdm not run by the grader (shell command)",
        "cell 2: %matplotlib inline not run by the grader (IPython magic)",
        "cell 3: top-level code not run by the grader (line 4: data = torch.randn(5))",
        "cell 4: %time y = x not run by the grader (IPython magic)",
        "cell 4: top-level code not run by the grader (line 5: print(f(1)))",
        "cell 5: %%time ignored (IPython magic); the cell's code was read",
        "cell 6: a %%bash cell is not run by the grader (IPython magic)",
    ]


def test_run_all_keeps_every_code_cell():
    nb = {"cells": [cell("import math\nx = math.sqrt(4)\nprint(x)")], "metadata": {}, "nbformat": 4,
          "nbformat_minor": 5}
    built = notebook_module(json.dumps(nb).encode(), "lab2.ipynb", "convnet.py", run_all=True)
    assert "x = math.sqrt(4)" in built.source and not built.notes


def test_an_error_points_at_the_notebooks_cell_and_line(tmp_path):
    """A traceback and the error's place name the notebook's cell and line, never the module the
    grader generated from it."""
    template = json.loads(template_notebook("t", "convnet.py",
                                            (SUBMISSIONS / "cifar-convnet/correct/convnet.py").read_text(),
                                            (SUBMISSIONS / "cifar-convnet/correct/answers.yaml").read_text(),
                                            "cifar-convnet"))
    cells = template["cells"]
    index = next(i for i, c in enumerate(cells) if "def conv_output_size" in "".join(c["source"]))
    cells[index]["source"] = "def conv_output_size(x, k, p, s):\n    y = x + 1\n    return y / 0\n"
    write_notebook(tmp_path / "h" / "lab2.ipynb", *cells)
    result = json.loads(cli("check", str(tmp_path / "h"), "--lab", "cifar-convnet", "--format", "json").output)
    message = next(c for c in result["checks"] if c["id"] == "conv-output-size")["message"]
    assert f"lab2.ipynb, cell {index + 1}, line 3, in conv_output_size" in message
    assert "convnet.py" not in json.dumps(result["checks"])


def test_a_definition_that_does_not_parse_is_said_once_and_the_rest_of_its_cell_is_kept(tmp_path):
    """Changed on purpose (issue 25/26): a cell that does not parse is no longer kept as written (its
    SyntaxError failed every check); its broken definition is said once, the rest is read."""
    write_notebook(tmp_path / "h" / "lab2.ipynb", cell("import torch"), cell("# note", "markdown"),
                   cell("def conv_output_size(x, k, p, s):\n    return (x +\n\nclass ConvNet: pass"))
    result = json.loads(cli("check", str(tmp_path / "h"), "--lab", "cifar-convnet", "--format", "json").output)
    assert [n for n in result["notes"] if "does not parse" in n] == [
        "cell 3: def conv_output_size(x, k, p, s): does not parse (line 2: '(' was never closed); "
        "conv_output_size is not defined and the checks that need it cannot run"]
    message = next(c for c in result["checks"] if c["id"] == "model-output-shape")["message"]
    assert "SyntaxError" not in message and "ConvNet" in message  # the class in the same cell was read


def test_a_scratch_cell_that_does_not_parse_is_set_aside_and_costs_nothing(tmp_path):
    """Issue 25: one top-level `print(x.shape` cell took a correct notebook from full marks to 2
    points, the SyntaxError repeated in every code check."""
    from grader import api
    from grader.options import RunOptions

    folder = CORRECT["cifar-convnet"]
    template = json.loads(template_notebook("t", "convnet.py", (folder / "convnet.py").read_text(),
                                            (folder / "answers.yaml").read_text(), "cifar-convnet"))
    write_notebook(tmp_path / "scratch" / "lab2.ipynb", *template["cells"][:3], cell("print(x.shape"),
                   *template["cells"][3:])
    write_notebook(tmp_path / "clean" / "lab2.ipynb", *template["cells"])
    batch = api.grade(tmp_path, "cifar-convnet", tmp_path / "out", RunOptions(reports=False),
                      paths=[tmp_path / "scratch", tmp_path / "clean"])
    result, clean = (next(r for r in batch.results if r.submission == n) for n in ("scratch", "clean"))
    assert [(c.id, c.score) for c in result.checks] == [(c.id, c.score) for c in clean.checks]
    assert clean.score > 0
    assert "cell 4: code that does not parse, not run by the grader (line 1: print(x.shape — " \
           "'(' was never closed)" in result.notes
    assert not any("SyntaxError" in c.message for c in result.checks)


def test_answers_come_from_the_cell_tagged_answers_or_the_sheet_beside_the_notebook(tmp_path):
    sheet = (SUBMISSIONS / "cifar-convnet/correct/answers.yaml").read_text()
    module = (SUBMISSIONS / "cifar-convnet/correct/convnet.py").read_text()
    write_notebook(tmp_path / "a" / "lab.ipynb", cell(module), cell(f"```yaml\n{sheet}\n```", "markdown", ["answers"]))
    write_notebook(tmp_path / "b" / "lab.ipynb", cell(module))
    (tmp_path / "b" / "answers.yaml").write_text(sheet)
    for folder in ("a", "b"):
        result = json.loads(cli("check", str(tmp_path / folder), "--lab", "cifar-convnet", "--format", "json").output)
        assert result["score"] == result["max_score"] - result["pending_points"] and all(
            c["status"] in ("passed", "awaiting review") for c in result["checks"]), folder  # a written answer awaits a person


CORRECT = {
    "cifar-convnet": SUBMISSIONS / "cifar-convnet/correct",
    "cifar-training": SUBMISSIONS / "cifar-training/correct",
    "layers-from-scratch": SUBMISSIONS / "layers-from-scratch/correct",
    "mlp-backprop": SUBMISSIONS / "mlp-backprop/correct",
}


@pytest.mark.parametrize("lab", sorted(CORRECT))
def test_a_notebook_of_each_labs_correct_hand_in_scores_what_the_folder_scores(lab, tmp_path):
    from grader import api
    from grader.options import Budget, RunOptions

    folder = CORRECT[lab]
    module = next(p for p in folder.glob("*.py"))
    sheet = folder / "answers.yaml"
    nb = tmp_path / "nb" / f"{lab}.ipynb"
    nb.parent.mkdir()
    nb.write_bytes(template_notebook(lab, module.name, module.read_text(),
                                     sheet.read_text() if sheet.exists() else None, lab))
    options = RunOptions(reports=False, train=lab != "cifar-training", budget=Budget.smoke if lab == "mlp-backprop" else None)
    batch = api.grade(tmp_path, lab, tmp_path / "out", options, paths=[folder, nb.parent])
    as_folder, as_notebook = (next(r for r in batch.results if r.submission == n) for n in ("correct", "nb"))
    assert as_folder.score == as_folder.max_score - as_folder.pending_points
    assert [(c.id, c.score) for c in as_notebook.checks] == [(c.id, c.score) for c in as_folder.checks]


def test_a_training_loop_at_top_level_is_not_run(tmp_path):
    """The same notebook with and without an hour of training at top level is graded alike, and in
    far less time than one epoch of that loop (which would also time every check out)."""
    from grader import api
    from grader.options import RunOptions

    moodle = SUBMISSIONS / "lms/moodle-cifar-convnet/Ana María López_111111_assignsubmission_file/lab2.ipynb"
    nb = json.loads(moodle.read_text(encoding="utf-8"))
    assert any("time.sleep(60)" in "".join(c["source"]) for c in nb["cells"])
    quiet = dict(nb, cells=[c for c in nb["cells"] if "time.sleep(60)" not in "".join(c["source"])])
    write_notebook(tmp_path / "quiet" / "lab2.ipynb", *quiet["cells"])
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "lab2.ipynb").write_text(moodle.read_text(encoding="utf-8"), encoding="utf-8")
    started = time.monotonic()
    batch = api.grade(tmp_path, "cifar-convnet", tmp_path / "out", RunOptions(reports=False),
                      paths=[tmp_path / "loop", tmp_path / "quiet"])
    elapsed = time.monotonic() - started
    loop, quiet_result = (next(r for r in batch.results if r.submission == n) for n in ("loop", "quiet"))
    assert loop.score == quiet_result.score == 17
    assert elapsed < 60  # one epoch of the loop alone is 60 s
    assert any("top-level code not run by the grader (line 2: model = ConvNet())" in n for n in loop.notes)


def test_what_a_kept_definition_runs_at_import_is_said_per_cell():
    """Definitions only means no top-level statement runs; a decorator, a metaclass, a class body,
    an annotation or a default argument that calls something still runs at import, and the notes
    say where (issue 26)."""
    nb = {"cells": [
        cell("import torch"),
        cell("@register\ndef f(x):\n    return x"),
        cell("class A(metaclass=Meta):\n    pass"),
        cell("class B:\n    table = load()\n    def g(self):\n        return 1"),
        cell("def h(x: annotate()) -> int:\n    return 1"),
        cell("def k(x=torch.zeros(3)):\n    return x"),
        cell("class C:\n    SIZE = 3\n    def g(self, n=SIZE):\n        return n"),
        cell("def plain(x, y=2):\n    return x"),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    built = notebook_module(json.dumps(nb).encode(), "lab2.ipynb", "convnet.py")
    assert built.notes == [
        "cell 2: runs when the grader imports the module (line 1: @register)",
        "cell 3: runs when the grader imports the module (line 1: class A(metaclass=Meta):)",
        "cell 4: runs when the grader imports the module (line 2: table = load())",
        "cell 5: runs when the grader imports the module (line 1: def h(x: annotate()) -> int:)",
        "cell 6: runs when the grader imports the module (line 1: def k(x=torch.zeros(3)):)",
    ]
