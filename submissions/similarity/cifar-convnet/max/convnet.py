import torch
from torch import nn

# Max: the three conv stages are built in a loop from a spec list.
SPEC = [(3, 32), (32, 64), (64, 64)]


def conv_output_size(x, k, p, s):
    size = x + 2 * p - k
    return size // s + 1


class ConvNet(nn.Module):
    def __init__(self, spec=SPEC, kernel=5):
        super().__init__()
        self.stages = nn.ModuleList()
        for cin, cout in spec:
            self.stages.append(nn.Conv2d(cin, cout, kernel, padding=kernel // 2))
        self.pool = nn.MaxPool2d(2)
        side = 32
        for _ in spec:
            side = conv_output_size(side, 2, 0, 2)
        self.fc4 = nn.Linear(spec[-1][1] * side * side, 1000)
        self.fc5 = nn.Linear(1000, 10)
        self.act = nn.ReLU()

    def forward(self, x):
        for conv in self.stages:
            x = self.pool(self.act(conv(x)))
        x = x.reshape(x.shape[0], -1)
        return self.fc5(self.act(self.fc4(x)))
