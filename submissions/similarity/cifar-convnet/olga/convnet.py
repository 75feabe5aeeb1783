"""Olga. One pooling layer per stage, flattened with view."""
import torch
from torch import nn
from torch.nn import functional


def conv_output_size(x, k, p, s):
    return (x - k + p + p) // s + 1


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.p1 = nn.Conv2d(3, 32, (5, 5), 1, 2), nn.MaxPool2d(2, stride=2)
        self.c2, self.p2 = nn.Conv2d(32, 64, (5, 5), 1, 2), nn.MaxPool2d(2, stride=2)
        self.c3, self.p3 = nn.Conv2d(64, 64, (5, 5), 1, 2), nn.MaxPool2d(2, stride=2)
        self.f4 = nn.Linear(1024, 1000)
        self.f5 = nn.Linear(1000, 10)

    def forward(self, images):
        out = self.p1(functional.relu(self.c1(images)))
        out = self.p2(functional.relu(self.c2(out)))
        out = self.p3(functional.relu(self.c3(out)))
        out = out.view(out.size(0), 1024)
        out = functional.relu(self.f4(out))
        out = self.f5(out)
        return out
