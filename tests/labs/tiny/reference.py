from torch import nn


def square(x):
    return x * x


def double(x):
    return 2 * x


class Lin(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)
