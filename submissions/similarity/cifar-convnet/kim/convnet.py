"""cifar-convnet hand-in (Kim)."""
import torch
import torch.nn.functional as F
from torch import nn


def conv_output_size(x, k, p, s):
    return (x + 2 * p - k) // s + 1


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.conv3 = nn.Conv2d(64, 64, 5, padding=2)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc4 = nn.Linear(64 * 4 * 4, 1000)
        self.fc5 = nn.Linear(1000, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.pool(F.relu(self.conv3(x)))
        x = x.flatten(1)
        x = F.relu(self.fc4(x))
        return self.fc5(x)
