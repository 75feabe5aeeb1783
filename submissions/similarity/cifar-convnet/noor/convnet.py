"""Noor's network: named layers in an OrderedDict."""
from collections import OrderedDict

import torch
import torch.nn as nn


def conv_output_size(x, k, p, s):
    out = int((x - k + 2 * p) / s)
    return out + 1


def _named_layers():
    return OrderedDict([
        ("conv1", nn.Conv2d(3, 32, kernel_size=(5, 5), padding=(2, 2))), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d((2, 2))),
        ("conv2", nn.Conv2d(32, 64, kernel_size=(5, 5), padding=(2, 2))), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d((2, 2))),
        ("conv3", nn.Conv2d(64, 64, kernel_size=(5, 5), padding=(2, 2))), ("relu3", nn.ReLU()),
        ("pool3", nn.MaxPool2d((2, 2))),
        ("flat", nn.Flatten(start_dim=1)),
        ("fc4", nn.Linear(4 * 4 * 64, 1000)), ("relu4", nn.ReLU()),
        ("fc5", nn.Linear(1000, 10)),
    ])


class ConvNet(nn.Module):
    def __init__(self):
        super(ConvNet, self).__init__()
        self.net = nn.Sequential(_named_layers())

    def forward(self, x):
        logits = self.net(x)
        return logits
