"""Léa — ConvNet for CIFAR-10, written as two nn.Sequential blocks."""

import math

import torch
from torch import nn


def conv_output_size(x, k, p, s):
    """floor((x + 2p - k) / s) + 1"""
    return math.floor((x + 2 * p - k) / s) + 1


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels=3, out_channels=32, kernel_size=5, stride=1, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(in_channels=32, out_channels=64, kernel_size=5, stride=1, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(in_channels=64, out_channels=64, kernel_size=5, stride=1, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features=1024, out_features=1000),
            nn.ReLU(inplace=True),
            nn.Linear(in_features=1000, out_features=10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
