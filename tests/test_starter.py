"""`gradelab init`: a lab's template for a student, as files or as a notebook the grader reads
back the same way."""

from __future__ import annotations

import ast
import json

import nbformat

from tests.conftest import ROOT, cli


def test_init_writes_the_labs_template_files(tmp_path):
    result = cli("init", "cifar-convnet", str(tmp_path / "me"))
    assert result.exit_code == 0, result.output
    for name in ("convnet.py", "answers.yaml"):
        assert (tmp_path / "me" / name).read_text() == (ROOT / "reference/cifar-convnet/template" / name).read_text()
    again = cli("init", "cifar-convnet", str(tmp_path / "me"))
    assert again.exit_code == 2 and "answers.yaml, convnet.py already there; choose an empty folder" in again.output


def test_the_notebook_template_is_graded_like_the_folder_template(tmp_path):
    assert cli("init", "cifar-convnet", str(tmp_path / "files")).exit_code == 0
    assert cli("init", "cifar-convnet", str(tmp_path / "nb"), "--notebook").exit_code == 0
    nb = nbformat.read(tmp_path / "nb" / "cifar-convnet.ipynb", as_version=4)
    nbformat.validate(nb)
    answers = [c for c in nb.cells if "answers" in c.metadata.get("tags", [])]
    assert len(answers) == 1 and answers[0].cell_type == "raw" and "total_params: null" in answers[0].source
    assert any(c.cell_type == "code" and c.source.startswith("class ConvNet") for c in nb.cells)
    outcomes, messages = [], []
    for folder in ("files", "nb"):
        result = json.loads(cli("check", str(tmp_path / folder), "--lab", "cifar-convnet", "--format", "json").output)
        outcomes.append([(c["id"], c["status"], c["score"]) for c in result["checks"]])
        messages.append(next(c["message"] for c in result["checks"] if c["id"] == "conv-output-size"))
    assert outcomes[0] == outcomes[1]
    assert all("NotImplementedError" in m for m in messages)  # the template's stub, not "missing"
    assert "cifar-convnet.ipynb, cell" in messages[1] and "convnet.py" not in messages[1]


def test_a_lab_without_a_template_gets_stubs_of_its_interface(tmp_path):
    from grader.api import load_lab

    assert cli("init", "layers-from-scratch", str(tmp_path / "me")).exit_code == 0
    source = (tmp_path / "me" / "layers.py").read_text()
    tree = ast.parse(source)
    defined = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for symbol in load_lab("layers-from-scratch").manifest.interface.symbols:
        node = defined[symbol.name]
        if symbol.kind == "function":
            assert [a.arg for a in node.args.args] == symbol.params
        else:
            init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
            assert [a.arg for a in init.args.args] == ["self", *symbol.params]
