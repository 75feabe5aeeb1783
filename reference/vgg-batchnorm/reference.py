"""Reference of the vgg-batchnorm lab: VGG-A with and without BatchNorm, the course's training
helpers, the loss band across learning rates, and the gradient-predictiveness measures of
Santurkar et al. (2018). Runs in the grader's process (and, staged as a hand-in, through
`gradelab calibrate`).

Besides the right answers: models and functions that make a real hand-in's mistakes on purpose
(the grader diagnoses a mistake by reproducing the student's numbers or layers with them),
models that are equally right (accepted alternatives), the inputs the grader draws
(``*_cases``), and the data set.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

STAGES = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def _init_weights(model: nn.Module) -> None:
    """The course's initialisation: Xavier-normal weights, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _features(norm=None, after_relu=False, conv_bias=True, norm_stages=None) -> nn.Sequential:
    """VGG-A's eight 3×3 convs in five stages; ``norm`` (a BatchNorm class) after each conv
    (before its ReLU unless ``after_relu``), in the stages listed in ``norm_stages`` (all if None)."""
    layers, c_in, stage = [], 3, 1
    for v in STAGES:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            stage += 1
            continue
        block = [nn.Conv2d(c_in, v, kernel_size=3, padding=1, bias=conv_bias), nn.ReLU(inplace=True)]
        if norm is not None and (norm_stages is None or stage in norm_stages):
            block.insert(2 if after_relu else 1, norm(v))
        layers += block
        c_in = v
    return nn.Sequential(*layers)


def _classifier(norm1d=False, classes=10) -> nn.Sequential:
    def hidden():
        return [nn.Linear(512, 512), *([nn.BatchNorm1d(512)] if norm1d else []), nn.ReLU(inplace=True)]
    return nn.Sequential(*hidden(), *hidden(), nn.Linear(512, classes))


class _VGG(nn.Module):
    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier
        _init_weights(self)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class VGG_A(_VGG):  # noqa: N801  (the course's name)
    """64 | M | 128 | M | 256, 256 | M | 512, 512 | M | 512, 512 | M, then 512 → 512 → 512 → 10."""

    def __init__(self):
        super().__init__(_features(), _classifier())


class VGG_A_BatchNorm(_VGG):  # noqa: N801
    """VGG-A with a BatchNorm2d after each of the eight convs, before the ReLU."""

    def __init__(self):
        super().__init__(_features(nn.BatchNorm2d), _classifier())


# --- equally right: accepted alternatives ------------------------------------------------------

class VGG_A_BatchNormNoConvBias(_VGG):  # noqa: N801
    """Convs without bias: BatchNorm subtracts the mean and adds its own shift, so a conv bias is redundant."""

    def __init__(self):
        super().__init__(_features(nn.BatchNorm2d, conv_bias=False), _classifier())


class VGG_A_BatchNorm1dClassifier(_VGG):  # noqa: N801
    """BatchNorm1d after the two hidden Linear layers as well (more than the lab asks)."""

    def __init__(self):
        super().__init__(_features(nn.BatchNorm2d), _classifier(norm1d=True))


# --- real hand-ins' mistakes, made on purpose ---------------------------------------------------

class VGG_A_BatchNormAfterReLU(_VGG):  # noqa: N801
    def __init__(self):
        super().__init__(_features(nn.BatchNorm2d, after_relu=True), _classifier())


class VGG_A_BatchNormFirstStage(_VGG):  # noqa: N801
    def __init__(self):
        super().__init__(_features(nn.BatchNorm2d, norm_stages={1}), _classifier())


class VGG_A_BatchNorm1dOnMaps(_VGG):  # noqa: N801
    def __init__(self):
        super().__init__(_features(nn.BatchNorm1d), _classifier())


# --- accuracy -----------------------------------------------------------------------------------

def get_accuracy(model, loader):
    """Fraction of the loader's examples the model classifies right, in eval mode."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def accuracy_batch_mean(model, loader):
    model.eval()
    with torch.no_grad():
        per_batch = [float((model(x).argmax(1) == y).double().mean()) for x, y in loader]
    return sum(per_batch) / len(per_batch)


def accuracy_in_train_mode(model, loader):
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def accuracy_as_percentage(model, loader):
    return 100 * get_accuracy(model, loader)


# --- the training loop --------------------------------------------------------------------------

def _last_linear(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def train(model, optimizer, criterion, train_loader, epochs):
    """The loss of every step (as a number) and the last Linear layer's weight gradient at every step."""
    losses, grads = [], []
    last = _last_linear(model)
    model.train()
    for _ in range(epochs):
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            losses.append(loss.item())
            grads.append(last.weight.grad.detach().clone())
            optimizer.step()
    return losses, grads


def train_keeps_loss_tensor(model, optimizer, criterion, train_loader, epochs):
    losses, grads = [], []
    last = _last_linear(model)
    model.train()
    for _ in range(epochs):
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            losses.append(loss)
            grads.append(last.weight.grad.detach().clone())
            optimizer.step()
    return losses, grads


def train_without_zero_grad(model, optimizer, criterion, train_loader, epochs):
    losses, grads = [], []
    last = _last_linear(model)
    model.train()
    for _ in range(epochs):
        for x, y in train_loader:
            loss = criterion(model(x), y)
            loss.backward()
            losses.append(loss.item())
            grads.append(last.weight.grad.detach().clone())
            optimizer.step()
    return losses, grads


def train_without_model_train(model, optimizer, criterion, train_loader, epochs):
    losses, grads = [], []
    last = _last_linear(model)
    for _ in range(epochs):
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            losses.append(loss.item())
            grads.append(last.weight.grad.detach().clone())
            optimizer.step()
    return losses, grads


# --- the loss band ------------------------------------------------------------------------------

def loss_band(runs):
    """Per-step minimum and maximum across runs (one run per learning rate). Runs may differ in
    length: the band covers the longest, each step over the runs that reached it."""
    steps = max(len(r) for r in runs)
    low = [min(float(r[t]) for r in runs if t < len(r)) for t in range(steps)]
    high = [max(float(r[t]) for r in runs if t < len(r)) for t in range(steps)]
    return low, high


def band_along_steps(runs):
    return [min(map(float, r)) for r in runs], [max(map(float, r)) for r in runs]


def band_to_shortest_run(runs):
    steps = min(len(r) for r in runs)
    return loss_band([r[:steps] for r in runs])


# --- gradient predictiveness and β-smoothness (bonus) ---------------------------------------------

def _gradient(model, criterion, x, y):
    model.zero_grad()
    criterion(model(x), y).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.requires_grad]).detach().clone()


def _along_gradient(model, criterion, x, y, distances, sign=-1.0, restore=True):
    """(‖g‖, [gradient at w + sign·d·g for each d]) with g the gradient at w; weights restored."""
    params = [p for p in model.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    g0 = _gradient(model, criterion, x, y)
    out = []
    for d in distances:
        with torch.no_grad():
            offset = 0
            for p, w in zip(params, start):
                n = p.numel()
                p.copy_(w + sign * float(d) * g0[offset:offset + n].view_as(p))
                offset += n
        out.append(_gradient(model, criterion, x, y))
    if restore:
        with torch.no_grad():
            for p, w in zip(params, start):
                p.copy_(w)
    model.zero_grad()
    return g0, out


def gradient_predictiveness(model, criterion, x, y, distances):
    """‖∇L(w − d·g) − ∇L(w)‖₂ for each distance d, g = ∇L(w); the model's weights are left as they were."""
    g0, grads = _along_gradient(model, criterion, x, y, distances)
    return [float((g - g0).norm()) for g in grads]


def beta_smoothness(model, criterion, x, y, distances):
    """max over d of ‖∇L(w − d·g) − ∇L(w)‖ / ‖d·g‖: the effective β-smoothness along the gradient."""
    g0, grads = _along_gradient(model, criterion, x, y, distances)
    return max(float((g - g0).norm() / (float(d) * g0.norm())) for g, d in zip(grads, distances))


def predictiveness_uphill(model, criterion, x, y, distances):
    g0, grads = _along_gradient(model, criterion, x, y, distances, sign=1.0)
    return [float((g - g0).norm()) for g in grads]


def predictiveness_not_restored(model, criterion, x, y, distances):
    g0, grads = _along_gradient(model, criterion, x, y, distances, restore=False)
    return [float((g - g0).norm()) for g in grads]


def beta_over_distance(model, criterion, x, y, distances):
    g0, grads = _along_gradient(model, criterion, x, y, distances)
    return max(float((g - g0).norm() / float(d)) for g, d in zip(grads, distances))


def _per_layer_norm(model, v):
    """Σ over parameter tensors of the norm of v's slice for it: a real hand-in's measure."""
    sizes = [p.numel() for p in model.parameters() if p.requires_grad]
    return float(sum(chunk.norm() for chunk in torch.split(v, sizes)))


def predictiveness_per_layer_norms(model, criterion, x, y, distances):
    g0, grads = _along_gradient(model, criterion, x, y, distances)
    return [_per_layer_norm(model, g - g0) for g in grads]


def predictiveness_squared_norm(model, criterion, x, y, distances):
    g0, grads = _along_gradient(model, criterion, x, y, distances)
    return [float((g - g0).norm() ** 2) for g in grads]


def beta_per_layer_norms(model, criterion, x, y, distances):
    g0, grads = _along_gradient(model, criterion, x, y, distances)
    return max(_per_layer_norm(model, g - g0) / (float(d) * _per_layer_norm(model, g0)) for g, d in zip(grads, distances))


def beta_squared_norms(model, criterion, x, y, distances):
    g0, grads = _along_gradient(model, criterion, x, y, distances)
    return max(float((g - g0).norm() ** 2 / (float(d) * g0.norm()) ** 2) for g, d in zip(grads, distances))


# --- inputs the grader draws ------------------------------------------------------------------------

def band_cases(rng):
    """Per-step losses of runs at several learning rates: equal lengths, then one run stopped early."""
    def run(steps, start, rate):
        t = np.arange(steps)
        return (start * np.exp(-rate * t) + 0.1 + rng.uniform(0, 0.3, steps)).round(4).tolist()

    equal = [run(30, rng.uniform(1.5, 2.5), rng.uniform(0.01, 0.1)) for _ in range(4)]
    unequal = [run(n, rng.uniform(1.5, 2.5), rng.uniform(0.01, 0.1)) for n in (24, 24, 15, 24)]
    return [{"label": "4 runs of 30 steps", "args": [equal]},
            {"label": "4 runs, one stopped after 15 of 24 steps", "args": [unequal]}]


def _seed(rng) -> int:
    return int(rng.integers(2**31))


def accuracy_cases(rng):
    """Loaders the harness builds: each ends with a partial batch."""
    return [{"label": "50 images in batches of 16 (the last holds 2)",
             "args": {"seed": _seed(rng), "n": 50, "batch_size": 16}},
            {"label": "37 images in batches of 10 (the last holds 7)",
             "args": {"seed": _seed(rng), "n": 37, "batch_size": 10}}]


def train_cases(rng):
    return [{"label": "a small network, SGD, 24 images in batches of 8, 2 epochs",
             "args": {"seed": _seed(rng), "n": 24, "batch_size": 8, "epochs": 2, "batchnorm": False}},
            {"label": "a small network with BatchNorm handed over in eval mode, SGD, 30 images in batches of 10, 2 epochs",
             "args": {"seed": _seed(rng), "n": 30, "batch_size": 10, "epochs": 2, "batchnorm": True}}]


def predictiveness_cases(rng):
    return [{"label": f"a small float64 network{' with BatchNorm' if bn else ''}, distances 0.5 to 4 × 0.01",
             "args": {"seed": _seed(rng), "batchnorm": bn, "distances": [0.005, 0.01, 0.02, 0.04]}}
            for bn in (False, True)]


# --- data -----------------------------------------------------------------------------------------

def cifar10(data_root=None, n_train=None, n_test=None):
    """CIFAR-10 through torchvision's loader: the real set when ``data_root`` holds it, else the
    synthetic set gradelab writes in CIFAR-10's format. uint8 images (N, 3, 32, 32)."""
    from grader.data.synth_cifar import cifar10_arrays

    return cifar10_arrays(data_root, n_train, n_test, style="gratings")


cifar10.generator = "gratings/1"  # the bundled set's generator and version (grader.data.synth_cifar.STYLES)
