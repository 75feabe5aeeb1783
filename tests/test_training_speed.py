"""The harnesses' cheaper steps (``grader.sandbox.training_speed``) never change what a student's
network may be: a forward pass that ``view``s its maps, which channels_last breaks, still trains,
in the default layout; bfloat16 is used only where the device computes it natively."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from grader.sandbox.training_speed import (
    autocast_forward,
    bfloat16_native,
    channels_last_if_accepted,
)
from tests.conftest import ROOT


class Viewing(nn.Module):
    """The classic tutorial's flatten: ``x.view(x.size(0), -1)`` needs a contiguous map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16 * 16, 10)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(self.drop(x.view(x.size(0), -1)))


class Flattening(Viewing):
    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(self.drop(x.flatten(1)))


CPU = torch.device("cpu")


def test_a_forward_pass_that_views_its_maps_stays_in_the_default_layout():
    net = Viewing().train()
    assert channels_last_if_accepted(net, lambda: torch.randn(2, 3, 32, 32), CPU) is False
    assert net.conv.weight.is_contiguous()
    assert net.training  # the mode it was handed over in
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_a_forward_pass_that_flattens_goes_channels_last_and_the_probe_draws_nothing():
    net = Flattening().train()
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    assert channels_last_if_accepted(net, lambda: torch.randn(2, 3, 32, 32), CPU) is True
    assert torch.equal(torch.rand(4), expected)  # the random state is put back
    assert net.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert net.training


def test_bfloat16_only_where_the_device_computes_it():
    assert bfloat16_native(torch.device("cuda")) is True
    expected = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert bfloat16_native(CPU) is bool(expected)
    assert bfloat16_native(torch.device("meta")) is False


def test_autocast_reaches_a_forward_pass_called_from_anywhere():
    net = Flattening()
    autocast_forward(net, CPU)
    seen = []
    net.fc.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    net(torch.randn(2, 3, 32, 32))
    assert seen == [torch.bfloat16]


@pytest.mark.parametrize("lab, entry, extra", [
    ("cifar-training", "train_classifier", {"epochs": 1, "batch_size": 8, "lr": 0.05}),
    ("vgg-batchnorm", "train_run", {"epochs": 1, "batch_size": 8, "lr": 1e-3, "evals": 1}),
])
def test_a_network_that_views_its_maps_trains_in_each_training_harness(lab, entry, extra, monkeypatch):
    """Under the fast path (bfloat16 and, where the harness uses it, channels_last), taken here even
    on a CPU without native bfloat16."""
    def load(name):
        spec = importlib.util.spec_from_file_location(f"{lab}_{name}", ROOT / "reference" / lab / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    harness, student = load("harness"), load("reference")
    monkeypatch.setattr(harness, "bfloat16_native", lambda dev: True)
    student.Viewing = Viewing
    gen = torch.Generator().manual_seed(0)
    train_x = torch.randint(0, 256, (32, 3, 32, 32), generator=gen, dtype=torch.uint8)
    train_y = torch.randint(0, 10, (32,), generator=gen)
    test_x = train_x[:8]
    out = getattr(harness, entry)(student, train_x, train_y, test_x, model="Viewing", **extra)
    scores = out["test_scores"][-1]
    assert scores.shape == (8, 10) and torch.isfinite(scores).all()
