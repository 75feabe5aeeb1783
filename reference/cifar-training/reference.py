"""Reference of the cifar-training lab: the ConvNet of cifar-convnet and its improvements, as the
lab asks students to write them. Runs in the grader's process (and, staged as a hand-in, through
`gradelab calibrate`).

Besides the right answers: the inputs the grader draws for the structural checks (``*_cases``),
functions making a real hand-in's mistakes on purpose, and the data set (synthetic CIFAR-10 in
CIFAR-10's own files, or the real one under --data-root).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _features(batchnorm=False):
    layers, c_in = [], 3
    for c_out in (32, 64, 64):
        layers.append(nn.Conv2d(c_in, c_out, kernel_size=5, padding=2))
        if batchnorm:
            layers.append(nn.BatchNorm2d(c_out))
        layers += [nn.ReLU(), nn.MaxPool2d(2, 2)]
        c_in = c_out
    return nn.Sequential(*layers)


class ConvNet(nn.Module):
    """conv1 32×5×5 | pool | conv2 64×5×5 | pool | conv3 64×5×5 | pool | fc4 1000 | fc5 10."""

    def __init__(self, side=32, dropout=False, batchnorm=False):
        super().__init__()
        self.features = _features(batchnorm)
        flat = 64 * (side // 8) ** 2
        head = [nn.Flatten(), nn.Linear(flat, 1000), nn.ReLU()]
        head += [nn.Dropout(0.5)] if dropout else []
        self.classifier = nn.Sequential(*head, nn.Linear(1000, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class ConvNetCrop(ConvNet):
    """For 28×28 crops: 28 → 14 → 7 → 3, so fc4 sees 64·3·3 = 576 values."""

    def __init__(self):
        super().__init__(side=28)


class ConvNetDropout(ConvNet):
    def __init__(self):
        super().__init__(dropout=True)


class ConvNetBN(ConvNet):
    def __init__(self):
        super().__init__(batchnorm=True)


class ConvNetBNDropout(ConvNet):
    """The improvements stacked, as every real report does: the BatchNorm model keeps its dropout."""

    def __init__(self):
        super().__init__(dropout=True, batchnorm=True)


class ConvNetBNAfterReLU(ConvNet):
    """A real hand-in's mistake: conv → ReLU → BatchNorm, where the handout says immediately after
    each convolution."""

    def __init__(self):
        super().__init__(batchnorm=True)
        layers = list(self.features)
        for i in range(0, len(layers), 4):  # conv, bn, relu, pool → conv, relu, bn, pool
            layers[i + 1], layers[i + 2] = layers[i + 2], layers[i + 1]
        self.features = nn.Sequential(*layers)


def normalization_stats(train_images, test_images):
    """Per-channel mean and standard deviation of the training images (never the test images)."""
    return train_images.mean(dim=(0, 2, 3)), train_images.std(dim=(0, 2, 3))


def stats_from_test_set(train_images, test_images):
    return normalization_stats(test_images, train_images)


def test_transform(batch):
    """Centre crop 28, no flip: the same image gives the same crop."""
    return batch[:, :, 2:30, 2:30]


def train_transform(batch):
    """A random 28×28 crop and a random horizontal flip per image, on the whole batch at once."""
    n, c, dev = batch.shape[0], batch.shape[1], batch.device
    rows = torch.randint(0, 5, (n, 1), device=dev) + torch.arange(28, device=dev)
    cols = torch.randint(0, 5, (n, 1), device=dev) + torch.arange(28, device=dev)
    crops = batch[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
    flip = torch.rand(n, device=dev) < 0.5
    crops[flip] = crops[flip].flip(-1)
    return crops


# --- inputs for the structural checks ---------------------------------------------------------

def stats_cases(rng):
    """A training set and a test set with clearly different per-channel statistics."""
    cases = []
    for n in (6, 20):
        train = rng.uniform(0.2, 0.6, (n, 3, 8, 8)) * np.array([1.0, 0.8, 1.2]).reshape(1, 3, 1, 1)
        test = rng.uniform(0.4, 1.0, (n // 2 + 1, 3, 8, 8))
        cases.append({"label": f"{n} training images", "args": [train.astype(np.float32), test.astype(np.float32)]})
    return cases


def transform_cases(rng):
    return [{"label": f"a batch of {n}", "args": [rng.uniform(0, 1, (n, 3, 32, 32)).astype(np.float32)]}
            for n in (1, 5)]


# --- data -----------------------------------------------------------------------------------------

def cifar10(data_root=None, n_train=None, n_test=None):
    """CIFAR-10 through torchvision's loader: the real set when ``data_root`` holds it, else the
    synthetic set gradelab writes in CIFAR-10's format. uint8 images (N, 3, 32, 32)."""
    from grader.data.synth_cifar import cifar10_arrays

    return cifar10_arrays(data_root, n_train, n_test, style="colour-axes")


cifar10.generator = "colour-axes/1"  # the bundled set's generator and version (grader.data.synth_cifar.STYLES)
