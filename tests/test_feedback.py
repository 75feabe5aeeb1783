"""Messages that point at the fix, each read through `gradelab check` with the words a student sees."""

from __future__ import annotations

import ast
import json
import shutil

import pytest

from tests.conftest import CIFAR_SUBMISSIONS, ROOT, checks_by_id, cli, variant

FAST = ["--wall-time", "4"]
MLP = ROOT / "submissions" / "mlp-backprop"


def words(text: str) -> str:
    """The output with its table borders and line breaks gone, so a sentence reads as one line."""
    return " ".join(text.replace("│", " ").split())


def table(*args: str) -> str:
    """What `gradelab check ARGS` prints, on a terminal wide enough that a message is one line."""
    return words(cli("check", *args, env={"COLUMNS": "3000"}).output)


def test_an_accuracy_in_percent_is_called_a_percentage_with_both_values(tmp_path):
    hand_in = variant(MLP / "correct", tmp_path / "percent",
                      ("acc = torch.sum(indsY == indsYhat).item() / Y.shape[0]",
                       "acc = 100 * torch.sum(indsY == indsYhat).item() / Y.shape[0]"))
    result = cli("check", str(hand_in), "--lab", "mlp-backprop", "--only", "loss-accuracy", "--format", "json")
    check = checks_by_id(json.loads(result.stdout))["loss-accuracy"]
    assert check["status"] == "partial" and check["diagnosis"] == "percentage-not-fraction"
    assert "accuracy is the reference's ×100 — a percentage? Return a fraction between 0 and 1." in check["message"]
    # Got against expected, on the first input where they differ (the lab shows this check's reference values).
    assert "On a batch of 6, accuracy is 50 where the reference gives 0.5." in check["message"]


def test_a_percentage_the_lab_names_as_a_mistake_is_explained_once(tmp_path):
    """vgg-batchnorm declares the percentage as get_accuracy's mistake: its words, not the generic ones too."""
    hand_in = variant(ROOT / "submissions" / "vgg-batchnorm" / "correct", tmp_path / "percent",
                      ("    return correct / total\n", "    return 100 * correct / total\n"))
    result = cli("check", str(hand_in), "--lab", "vgg-batchnorm", "--only", "get-accuracy", "--format", "json")
    check = checks_by_id(json.loads(result.stdout))["get-accuracy"]
    assert check["diagnosis"] == "accuracy-as-percentage"
    assert check["message"].endswith("the accuracy: that is a percentage: get_accuracy returns a fraction between 0 "
                                     "and 1.")
    assert check["message"].count("percentage") == 1 and "fraction between 0 and 1" in check["message"]


def test_a_wrong_parameter_count_names_the_layer_and_one_error_is_said_once_with_its_inputs(tmp_path):
    """fc4 sized for 5×5 maps: 576 000 parameters too many, and forward fails on every batch size
    with a message that differs only by the batch size."""
    hand_in = variant(CIFAR_SUBMISSIONS / "correct", tmp_path / "fc4-too-wide",
                      ("nn.Linear(64 * 4 * 4, 1000)", "nn.Linear(64 * 5 * 5, 1000)"))
    text = table(str(hand_in), "--lab", "cifar-convnet", "--only", "model-param-count", "--only", "model-output-shape",
                 *FAST)
    assert ("ConvNet does not have the lab's number of learnable parameters; it has more than the lab's model. "
            "The count first differs at `fc4` "
            "(layer 4 with learnable parameters).") in text
    assert "1,767,170" not in text and "1,191,170" not in text and "576,000" not in text  # no count: that is the sheet's total
    assert text.count("RuntimeError") == 1
    assert "on every batch tried ((1, 3, 32, 32), (2, 3, 32, 32), (7, 3, 32, 32))" in text


def test_an_unknown_answer_sheet_key_is_named_with_the_closest_known_one(tmp_path):
    hand_in = tmp_path / "typos"
    shutil.copytree(CIFAR_SUBMISSIONS / "correct", hand_in)
    sheet = hand_in / "answers.yaml"
    text = sheet.read_text()
    assert "  conv2: {output:" in text and "total_params:" in text
    sheet.write_text(text.replace("  conv2: {output:", "  Conv2: {output:").replace("total_params:", "total_parms:"))
    out = table(str(hand_in), "--lab", "cifar-convnet", "--only", "layer-shapes", "--only", "layer-params", *FAST)
    assert "Note: answers.yaml: `layers.Conv2` is not a field of this lab's sheet (did you mean `layers.conv2`?)" in out
    assert "Note: answers.yaml: `total_parms` is not a field of this lab's sheet (did you mean `total_params`?)" in out
    assert ("answers: `layers.conv2.output` is missing (list[int] expected); answers.yaml has `layers.Conv2` "
            "instead: a typo?") in out


def test_a_missing_field_costs_its_share_not_the_whole_check(tmp_path):
    hand_in = tmp_path / "one-missing"
    shutil.copytree(CIFAR_SUBMISSIONS / "correct", hand_in)
    sheet = hand_in / "answers.yaml"
    text = sheet.read_text()
    assert "conv2: {output: [16, 16, 64], params: 51264}" in text
    sheet.write_text(text.replace("conv2: {output: [16, 16, 64], params: 51264}", "conv2: {output: [16, 16, 64]}"))
    result = cli("check", str(hand_in), "--lab", "cifar-convnet", "--only", "layer-params", "--format", "json", *FAST)
    check = checks_by_id(json.loads(result.stdout))["layer-params"]
    assert check["status"] == "partial" and check["score"] == pytest.approx(3 * 7 / 8, abs=0.01)
    assert check["message"].startswith("7 of 8 answers right. answers: `layers.conv2.params` is missing (int expected).")


def test_the_table_shows_each_checks_id_for_only(tmp_path):
    result = cli("check", str(CIFAR_SUBMISSIONS / "correct"), "--lab", "cifar-convnet", *FAST)
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    for check_id in ("conv-output-size", "keep-size", "layer-params", "model-output-shape", "model-param-count"):
        assert any(row.split("│")[1].strip() == check_id for row in rows), check_id
    assert "Output-size rule of a convolution" in result.output  # the title, under its id


def test_only_a_hidden_check_says_it_is_graded_by_the_instructor():
    result = cli("check", str(CIFAR_SUBMISSIONS / "correct"), "--lab", "cifar-convnet", "--only", "total-params",
                 "--only", "keep-size", *FAST)
    assert result.exit_code == 0
    assert "Note: `total-params` is a hidden check, graded by your instructor." in words(result.output)
    assert "keep-size" in result.output and "Total learnable parameters" not in result.output
    wrong = cli("check", str(CIFAR_SUBMISSIONS / "correct"), "--lab", "cifar-convnet", "--only", "total-param")
    assert wrong.exit_code == 2 and "no check 'total-param' in lab 'cifar-convnet' (did you mean 'total-params'?)" in wrong.output


def test_check_dot_names_the_folder(monkeypatch):
    monkeypatch.chdir(CIFAR_SUBMISSIONS / "correct")
    result = cli("check", ".", "--lab", "cifar-convnet", "--only", "keep-size", "--format", "json")
    data = json.loads(result.stdout)
    assert data["submission"] == "correct" and data["student"]["name"] == "correct"
    table = cli("check", ".", "--lab", "cifar-convnet", "--only", "keep-size")
    assert "CIFAR-10 ConvNet: architecture and sizes — correct" in table.output


@pytest.mark.parametrize("lab_id", ["cifar-convnet", "mlp-backprop", "layers-from-scratch", "cifar-training"])
def test_every_lab_has_a_template_with_each_symbol_and_its_parameters(lab_id):
    """What the README tells students to start from: the module with every declared symbol, taking
    the declared parameters, and the answer sheet with every field when the lab has one."""
    from grader.api import load_lab

    lab = load_lab(lab_id)
    interface = lab.manifest.interface
    template = lab.folder / lab.manifest.template
    tree = ast.parse((template / interface.module).read_text(encoding="utf-8"))
    defined = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for symbol in interface.symbols:
        node = defined.get(symbol.name)
        assert node is not None, f"{symbol.name} is not in {lab_id}'s template"
        assert isinstance(node, ast.ClassDef) == (symbol.kind == "class"), symbol.name
        if isinstance(node, ast.ClassDef):
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            params = [a.arg for a in init.args.args[1:]] if init else []
        else:
            params = [a.arg for a in node.args.args]
        assert params == symbol.params, symbol.name
    if interface.answers:
        import yaml

        from grader.submission import unknown_keys

        sheet = yaml.safe_load((template / interface.answers_file).read_text(encoding="utf-8"))
        assert unknown_keys(sheet, interface) == {}
        for field in interface.answers:  # every field has its place, left empty
            node = sheet
            for part in field.path.split("."):
                assert isinstance(node, dict) and part in node, field.path
                node = node[part]
            assert node in (None, []), field.path


def test_only_hidden_checks_is_one_line_and_exit_status_2():
    """`--only` a hidden id alone: nothing would run, so no empty table and no "0 / 0"."""
    result = cli("check", str(CIFAR_SUBMISSIONS / "correct"), "--lab", "cifar-convnet", "--only", "total-params")
    assert result.exit_code == 2
    assert result.output.strip() == ("`total-params` is a hidden check, graded by your instructor: nothing to run in "
                                     "a self-check.")


def test_at_80_columns_the_table_never_cuts_the_ids_only_takes():
    from tests.conftest import ROOT as root

    result = cli("check", str(root / "submissions" / "cifar-training" / "correct"), "--lab", "cifar-training",
                 "--only", "batchnorm-behaviour", "--only", "dropout-placement", env={"COLUMNS": "80"})
    cells = [line.split("│")[1].strip() for line in result.output.splitlines() if line.startswith("│")]
    assert "batchnorm-behaviour" in cells and "dropout-placement" in cells, result.output


def test_at_80_columns_long_titles_give_way_and_every_message_is_read_whole():
    """The titles wrap within a third of the terminal: the message column keeps room for words
    (with the Check column at 50, the messages were 4 characters wide: "Pas…")."""
    from tests.conftest import ROOT as root

    result = cli("check", str(root / "submissions" / "cifar-training" / "correct"), "--lab", "cifar-training",
                 "--only", "param-count", "--only", "training-loop", env={"COLUMNS": "80"})
    rows = [line.split("│") for line in result.output.splitlines() if line.startswith("│")]
    messages = " ".join(" ".join(row[4].split()) for row in rows if len(row) > 4)
    assert "ConvNet has 1,191,170 learnable parameters, as expected." in messages, result.output
    assert "training-loop" in [row[1].strip() for row in rows]
    assert "…" not in result.output


def test_a_missing_written_answer_makes_check_exit_non_zero(tmp_path):
    hand_in = tmp_path / "no-written"
    shutil.copytree(ROOT / "submissions" / "vgg-batchnorm" / "correct", hand_in)
    sheet = (hand_in / "answers.yaml").read_text()
    (hand_in / "answers.yaml").write_text(sheet[:sheet.index("written:")])
    result = cli("check", str(hand_in), "--lab", "vgg-batchnorm", "--only", "read-the-bands", "--only", "answers-band")
    assert result.exit_code == 1, result.output
    assert "No answer found" in words(result.output)
    answered = cli("check", str(ROOT / "submissions" / "vgg-batchnorm" / "correct"), "--lab", "vgg-batchnorm",
                   "--only", "read-the-bands", "--only", "answers-band")
    assert answered.exit_code == 0, answered.output  # an answer awaiting review is not a failure
