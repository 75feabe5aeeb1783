"""Every bundled flawed hand-in of every lab, graded once per lab (no training) and read in the
student's view: its message names its own mistake, in the words of the diagnosis, and never the
words of another hand-in's mistake. A new flawed hand-in without an entry here fails the sweep,
so each one says what it is for."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

# lab → hand-in → [(check id, words the student must read there)]. Training-only mistakes
# (nan-loss, training-diverges' circles) are named by training checks, not run here: their entry
# lists what the structural checks say, or nothing.
SWEEP: dict[str, dict[str, list[tuple[str, str]]]] = {
    "vgg-batchnorm": {
        "accuracy-batch-mean": [("get-accuracy", "you average the batches' accuracies")],
        "accuracy-in-train-mode": [("get-accuracy", "Call model.eval() first")],
        "band-along-steps": [("loss-band", "you take each run's minimum and maximum over its steps")],
        "batchnorm1d-on-conv-maps": [("bn-structure", "BatchNorm1d normalises (N, C) or (N, C, L) inputs")],
        "bn-after-relu": [("bn-structure", "Your BatchNorm comes after the ReLU")],
        "bn-first-stage-only": [("bn-structure", "Only the first stage is normalised")],
        "dropout-in-classifier": [("bn-structure", "the lab's network has no Dropout")],
        "loss-tensor-kept": [("train-loop", "you store the loss tensor itself")],
        "missing-one-conv": [("bn-structure", "missing between layer 25 (ReLU()) and layer 26"),
                             ("bn-param-count", "2 more layer(s) with learnable parameters between `features.23`")],
        "per-layer-norms": [("bonus-predictiveness", "you add up one norm per layer")],
        "stub-bonus": [("bonus-beta", "The weights afterwards: counted only alongside right values of β")],
        "stuck-in-eval": [("bn-behaviour", "does the model override train()")],
    },
    "cifar-training": {
        "augment-at-test-time": [("test-transform", "two different results for the same input")],
        "augment-per-batch": [("train-transform", "one draw for the whole batch")],
        "bn-after-relu": [("batchnorm-placement", "Your BatchNorm comes after the ReLU")],
        "dropout-after-fc5": [("dropout-placement", "expected Dropout(p=0.5), found Linear(1000→10)")],
        "dropout-always-on": [("dropout-behaviour", "F.dropout(x, p, training=self.training)")],
        "dropout-p-0.2": [("dropout-placement", "found Dropout(p=0.2)")],
        "layers-in-a-list": [("param-count", "keeps modules in a plain list or dict (self.blocks)")],
        "missing-momentum": [("optimizer", "the momentum is left out")],
        "nan-loss": [],
        "no-nonlinearity": [("activations", "applies 0 activation functions")],
        "scheduler-per-batch": [("training-loop", "the scheduler is stepped after every batch")],
        "softmax-output": [("activations", "The forward pass returns probabilities")],
        "stats-from-test-set": [("stats-from-train", "test set's statistics")],
        "stuck-in-eval": [("dropout-behaviour", "does the model override train()"),
                          ("batchnorm-behaviour", "does the model override train()")],
    },
    "mlp-backprop": {
        "autograd-in-backward": [("backward", "autograd")],
        "dtanh-of-htilde": [("backward", "(1 − h̃²) in place of (1 − h²)")],
        "dtanh-missing": [("backward", "these match the gradient without tanh′")],
        "gradient-summed": [("backward", "exactly N times autograd's")],
        "missing-bias-gradient": [("backward", "bias gradients are zero")],
        # two mistakes at once (its README): both are its own
        "training-diverges": [("sgd", "climbs the loss"), ("softmax-stable", "without subtracting the maximum")],
        "transposed-gradient": [("backward", "transpose of autograd's gradient")],
        "unstable-softmax": [("softmax-stable", "without subtracting the maximum")],
    },
    "cifar-convnet": {
        "bad-answer-sheet": [],
        "biases-forgotten": [("layer-params", "not the biases (one per filter)")],
        "in-channels-confusion": [("layer-params", "conv1 sees the 3 RGB channels")],
        "infinite-loop-import": [("model-structure", "wall-time limit (an infinite loop at import time?)")],
        "memory-blowup": [],
        "missing-class": [("model-structure", "`ConvNet` is missing from convnet.py")],
        "missing-floor": [("conv-output-size", "without the floor")],
        "missing-plus-one": [("conv-output-size", "without the +1")],
        "spatial-as-kernel": [("layer-params", "uses the 32×32 image size as the kernel")],
        "syntax-error": [("model-structure", "your module could not be imported: SyntaxError")],
        "wrong-padding": [],
        "wrong-receptive-field": [],  # its mistake is on a hidden check: a student is told nothing of it
        "wrong-types": [],
    },
    "layers-from-scratch": {
        "batchnorm-biased-running-var": [("batchnorm", "")],
        "ce-without-log-sum-exp": [("cross-entropy", "")],
        "conv-calls-torch": [("conv2d", "")],
        "conv-stride-off-by-one": [("conv2d", "")],
        "transpose-padding-added": [("conv-transpose2d", "")],
    },
}
# Right in another way (the sweep checks they pass every check it runs).
RIGHT = {"correct", "stacked-improvements", "functional-style"}


def _student_view(lab: str, tmp_path, request) -> dict[str, dict[str, str]]:
    """hand-in → check id → the message a student reads (diagnosis and hint included). The
    cifar-convnet, mlp-backprop and layers-from-scratch hand-ins are the session's gradings
    (``cifar_class``: every check, that lab trains nothing; ``mlp_graded``, ``layers_graded``:
    training included, so the sweep reads those messages too); the other labs' are graded here,
    without training."""
    from grader import api
    from grader.options import RunOptions
    from grader.reveal import student_result

    if lab == "cifar-convnet":
        results = list(request.getfixturevalue("cifar_class").values())
    elif lab in ("mlp-backprop", "layers-from-scratch"):  # graded once for the session, training included
        fixture = {"mlp-backprop": "mlp_graded", "layers-from-scratch": "layers_graded"}[lab]
        results = api.stored_results(request.getfixturevalue(fixture))
    else:
        results = api.grade(ROOT / "submissions" / lab, lab, tmp_path / "out", RunOptions(train=False, reports=False)).results
    views = {}
    for result in results:
        shown = student_result(result)
        views[result.submission] = {c.id: c.message for c in shown.checks}
        views[result.submission]["_passed"] = str(shown.all_passed)
    return views


@pytest.mark.parametrize("lab", sorted(SWEEP))
def test_every_flawed_hand_in_names_its_own_mistake_and_never_anothers(lab, tmp_path, request):
    bundled = {p.name for p in (ROOT / "submissions" / lab).iterdir() if p.is_dir()}
    assert bundled - RIGHT == set(SWEEP[lab]), "each bundled flawed hand-in needs its entry in the sweep"
    views = _student_view(lab, tmp_path, request)
    for right in bundled & RIGHT:
        assert views[right]["_passed"] == "True", (right, views[right])
    for name, expected in SWEEP[lab].items():
        said = views[name]
        for check, words in expected:
            assert words in said[check], (name, check, said[check])
        everything = " ".join(v for k, v in said.items() if k != "_passed")
        own = {w for _, w in expected}
        for other, theirs in SWEEP[lab].items():
            for _check, words in theirs:
                if other != name and words and words not in own and len(words) > 12:
                    assert words not in everything, f"{name} is told {other}'s mistake: {words!r}"
