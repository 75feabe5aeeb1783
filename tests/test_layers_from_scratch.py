"""The layers-from-scratch lab: each hand-written op against torch. A flawed hand-in loses exactly
the op it got wrong, with a counterexample small enough to read and exact enough to reproduce."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
import torchvision  # noqa: F401  (the reproduction code may name torchvision.ops)

from grader.checks.forbidden import forbidden_uses
from tests.conftest import ROOT, cli
from tests.conftest import checks_by_id as checks

SUBMISSIONS = ROOT / "submissions" / "layers-from-scratch"
OPS = {"maxpool2d", "avgpool2d", "conv2d", "conv2d-dilated", "conv-transpose2d", "flatten", "roi-pool",
       "sigmoid", "batchnorm", "cross-entropy", "mse-loss"}



@pytest.fixture(scope="module")
def layers_class(layers_graded):
    return {p.stem: json.loads(p.read_text()) for p in layers_graded.glob("*.json")}



def not_passed(result):
    return {c["id"] for c in result["checks"] if c["status"] != "passed"}


def test_the_lab_checks_eleven_ops_each_on_its_own_points():
    from grader.api import load_lab

    lab = load_lab("layers-from-scratch")
    assert {c.spec.id for c in lab.checks if c.spec.kind == "op_equivalence"} == OPS


def test_the_correct_hand_in_gets_full_marks_and_the_network_counts(layers_class):
    result = layers_class["correct"]
    assert not_passed(result) == set()
    assert result["score"] == result["max_score"] == 17
    by_id = checks(result)
    assert "294,810 learnable parameters" in by_id["allconv-params"]["message"]
    assert "295,770 learnable parameters" in by_id["allconv-bn-params"]["message"]
    assert "960 running statistics" in by_id["allconv-bn-running-stats"]["message"]


def test_the_expected_counts_come_from_the_reference_model():
    from grader.api import load_lab

    net = load_lab("layers-from-scratch").reference.AllConvNet
    count = lambda m: sum(p.numel() for p in m.parameters())
    bn = net(batchnorm=True)
    running = sum(b.numel() for n, b in bn.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert (count(net()), count(bn), running) == (294_810, 295_770, 960)


@pytest.mark.parametrize("name, op, diagnosis", [
    ("conv-stride-off-by-one", "conv2d", "output-size-off-by-one"),
    ("transpose-padding-added", "conv-transpose2d", "transpose-padding-added"),
    ("batchnorm-biased-running-var", "batchnorm", "biased-running-var"),
    ("ce-without-log-sum-exp", "cross-entropy", "no-log-sum-exp"),
    ("conv-calls-torch", "conv2d", "forbidden-call"),
])
def test_a_flawed_hand_in_loses_exactly_the_op_it_got_wrong(layers_class, name, op, diagnosis):
    result = layers_class[name]
    assert not_passed(result) == {op}
    check = checks(result)[op]
    assert check["score"] == 0 and check["diagnosis"] == diagnosis
    assert result["score"] == 17 - check["max_score"]


@pytest.mark.parametrize("name, op, function", [
    ("conv-stride-off-by-one", "conv2d", "conv2d"),
    ("transpose-padding-added", "conv-transpose2d", "conv_transpose2d"),
    ("batchnorm-biased-running-var", "batchnorm", "batchnorm"),
    ("ce-without-log-sum-exp", "cross-entropy", "cross_entropy"),
])
def test_the_counterexample_in_the_message_reproduces_the_disagreement(layers_class, name, op, function):
    """Run the code the student is told to paste: their function and torch must disagree on it."""
    check = checks(layers_class[name])[op]
    example = check["details"]["counterexample"]
    assert "To reproduce: " + example["code"] in check["message"]
    namespace = {"torch": torch}
    exec(example["code"], namespace)
    spec = importlib.util.spec_from_file_location("handin", SUBMISSIONS / name / "layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from grader.api import load_lab

    lab = load_lab("layers-from-scratch")
    names = lab.manifest.interface.symbol(function).params
    args = [namespace[n] for n in names]
    reference = getattr(lab.reference, next(c.params.reference for c in lab.checks if c.spec.id == op))
    got, want = getattr(module, function)(*args), reference(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
    got, want = (list(got), list(want)) if isinstance(want, tuple) else ([got], [want])
    assert any(g.shape != w.shape or not torch.allclose(g, w, atol=1e-4, rtol=1e-4, equal_nan=False)
               for g, w in zip(got, want))


def test_the_counterexample_is_shrunk_to_the_simplest_input_that_still_fails(layers_class):
    example = checks(layers_class["conv-stride-off-by-one"])["conv2d"]["details"]["counterexample"]
    # Only the stride needs to differ from the simplest value for the off-by-one to show.
    assert example["dims"] == {"N": 1, "C": 1, "H": 1, "W": 1, "O": 1, "k": 1, "s": 2, "p": 0, "scale": 1}
    assert example["ints"] is True
    assert "output shape (1, 1, 0, 0), torch gives (1, 1, 1, 1)" in example["problem"]
    bn = checks(layers_class["batchnorm-biased-running-var"])["batchnorm"]["details"]["counterexample"]
    assert bn["problem"].startswith("running_var:") and bn["dims"]["train"] == 1


def test_a_forbidden_call_hidden_in_a_helper_is_named_with_its_line(layers_class):
    message = checks(layers_class["conv-calls-torch"])["conv2d"]["message"]
    assert "uses torch.nn.functional.conv2d (line 33, in _correlate)" in message
    assert "The verdict for this op is zero" in message


def test_a_forbidden_call_the_source_hides_is_caught_at_run_time(tmp_path):
    source = (SUBMISSIONS / "correct" / "layers.py").read_text().replace(
        '''def sigmoid(x):
    return 1 / (1 + torch.exp(-x))''', '''def sigmoid(x):
    return getattr(torch, "sig" + "moid")(x)''')
    (tmp_path / "layers.py").write_text(source)
    result = cli("check", str(tmp_path / "layers.py"), "--lab", "layers-from-scratch", "--only", "sigmoid",
                 "--format", "json")
    check = checks(json.loads(result.output))["sigmoid"]
    assert check["status"] == "failed" and check["diagnosis"] == "forbidden-call"
    assert "torch.sigmoid (called at run time)" in check["message"]


SOURCE = '''
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.functional import conv2d as c2d


def helper(x, w):
    return c2d(x, w)


def conv2d(x, w, b, s, p):
    y = helper(x, w)
    return nn.Conv2d(1, 1, 3)(x) + F.conv2d(x, w)


def maxpool2d(x, k, s):
    return torch.nn.functional.max_pool2d(x, k, s)


def unrelated(x, w):
    return F.conv2d(x, w)
'''


def test_static_detection_follows_aliases_and_helpers_but_not_unrelated_functions():
    uses = forbidden_uses(SOURCE, "conv2d", ["torch.nn.functional.conv2d", "torch.nn.Conv2d"])
    assert [(u.name, u.line, u.function) for u in uses] == [
        ("torch.nn.functional.conv2d", 9, "helper"),
        ("torch.nn.Conv2d", 14, "conv2d"),
        ("torch.nn.functional.conv2d", 14, "conv2d"),
    ]
    assert forbidden_uses(SOURCE, "maxpool2d", ["torch.nn.functional.conv2d"]) == []
    assert [u.line for u in forbidden_uses(SOURCE, "maxpool2d", ["torch.nn.functional.max_pool2d"])] == [18]
    assert forbidden_uses("def broken(:\n", "conv2d", ["torch.conv2d"]) == []


def test_the_report_prints_the_counterexample_as_code_to_paste(layers_class, tmp_path, renderer):
    from pypdf import PdfReader

    from grader.results import SubmissionResult

    result = SubmissionResult.model_validate(layers_class["batchnorm-biased-running-var"])
    path = renderer.write(result, tmp_path / "r.pdf", audience="student")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())
    assert "Counterexamples to reproduce" in text
    assert "import torch x = torch.tensor(" in text
    assert "# compare batchnorm(x, gamma, beta, running_mean, running_var, training, momentum, eps) with" in text


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_the_static_reader_of_student_source_never_crashes(source):
    """The grader parses the student's source in its own process: any text gives a list."""
    assert isinstance(forbidden_uses(source, "conv2d", ["torch.nn.functional.conv2d"]), list)
