"""Reference implementation of the cifar-convnet lab. Runs in the grader's process only.

The ``conv_output_size_*`` functions make, on purpose, the mistakes real hand-ins make; the
manifest names them so the grader can test each hypothesis against a student's outputs.
"""

import math

import torch
from torch import nn


def conv_output_size(x, k, p, s):
    """Output size of a convolution or pooling: floor((x + 2p - k) / s) + 1."""
    if s < 1 or x + 2 * p < k:
        raise ValueError("no valid output for these sizes")
    return (x + 2 * p - k) // s + 1


def conv_output_size_no_plus_one(x, k, p, s):
    return (x + 2 * p - k) // s


def conv_output_size_no_floor(x, k, p, s):
    return (x + 2 * p - k) / s + 1


def conv_output_size_ceil(x, k, p, s):
    return math.ceil((x + 2 * p - k) / s) + 1


def conv_output_size_no_padding(x, k, p, s):
    return (x - k) // s + 1


class ConvNet(nn.Module):
    """conv1 32×5×5 | pool | conv2 64×5×5 | pool | conv3 64×5×5 | pool | fc4 1000 | fc5 10."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=5, stride=1, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(32, 64, kernel_size=5, stride=1, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(64, 64, kernel_size=5, stride=1, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 4 * 4, 1000), nn.ReLU(), nn.Linear(1000, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


if __name__ == "__main__":
    print(sum(p.numel() for p in ConvNet().parameters()), ConvNet()(torch.zeros(2, 3, 32, 32)).shape)
