"""vgg-batchnorm: VGG-A with and without BatchNorm, and the loss landscape that shows why BatchNorm
helps (Santurkar et al., 2018).

Check yourself (fast, no training):     gradelab check . --lab vgg-batchnorm
With training (minutes on a CPU):       gradelab check . --lab vgg-batchnorm --train
"""

import torch
from torch import nn


def init_weights_(model):
    """Xavier-normal weights, zero biases: the course's initialisation."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class VGG_A(nn.Module):
    """VGG-A for 32×32 RGB images: eight 3×3 convs (padding 1, each followed by a ReLU) in five
    stages, 64 | M | 128 | M | 256, 256 | M | 512, 512 | M | 512, 512 | M (M: 2×2 max-pool), so the
    map is 1×1×512 at the end; then Linear(512, 512), ReLU, Linear(512, 512), ReLU, Linear(512, 10)."""

    def __init__(self, inp_ch=3, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            # stage 1
            nn.Conv2d(inp_ch, 64, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # stage 2
            nn.Conv2d(64, 128, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # stage 3
            nn.Conv2d(128, 256, kernel_size=3, padding=1), nn.ReLU(True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # stage 4
            nn.Conv2d(256, 512, kernel_size=3, padding=1), nn.ReLU(True),
            nn.Conv2d(512, 512, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # stage 5
            nn.Conv2d(512, 512, kernel_size=3, padding=1), nn.ReLU(True),
            nn.Conv2d(512, 512, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 1 * 1, 512), nn.ReLU(True),
            nn.Linear(512, 512), nn.ReLU(True),
            nn.Linear(512, num_classes))
        init_weights_(self)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(-1, 512 * 1 * 1))


class VGG_A_BatchNorm(nn.Module):
    """VGG_A with a BatchNorm2d after each of the eight convs, before its ReLU; the same classifier."""


def get_accuracy(model, loader):
    """The fraction (between 0 and 1) of the loader's examples that ``model`` classifies right."""
    raise NotImplementedError


def train(model, optimizer, criterion, train_loader, epochs):
    """Train for ``epochs`` passes over ``train_loader``. Returns ``(losses, grads)``: the loss of
    every step (as a number), and at every step a copy of the gradient of the last Linear layer's
    weight (``model.classifier[-1].weight.grad``), taken after ``backward()``."""
    raise NotImplementedError


def loss_band(runs):
    """``runs``: the per-step losses of several runs, one per learning rate (lists of numbers; a run
    stopped early is shorter). Returns ``(min_curve, max_curve)``: at each step, the lowest and the
    highest loss among the runs that reached it."""
    raise NotImplementedError


def gradient_predictiveness(model, criterion, x, y, distances):
    """Bonus. g = ∇L(w) at the model's weights w, on the batch (x, y). For each d in ``distances``:
    the ℓ2 distance between ∇L(w − d·g) and g (all learnable parameters as one vector). Returns the
    list of distances; the model's weights are left as they were, and its mode unchanged."""
    raise NotImplementedError


def beta_smoothness(model, criterion, x, y, distances):
    """Bonus. The effective β-smoothness along the gradient: the largest
    ‖∇L(w − d·g) − ∇L(w)‖ / ‖d·g‖ over ``distances``. The weights are left as they were."""
    raise NotImplementedError
