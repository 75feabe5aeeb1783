"""Pia — each stage is conv → ReLU → pool, made by one helper."""

import torch
from torch import nn


def conv_output_size(x, k, p, s):
    if s <= 0:
        raise ValueError("stride must be positive")
    return (x + 2 * p - k) // s + 1


def stage(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2, 2))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage1 = stage(3, 32)
        self.stage2 = stage(32, 64)
        self.stage3 = stage(64, 64)
        self.head = nn.Sequential(nn.Linear(64 * 16, 1000), nn.ReLU(), nn.Linear(1000, 10))

    def forward(self, x):
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.head(torch.flatten(x, start_dim=1))
