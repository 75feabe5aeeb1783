"""cifar-convnet: your ConvNet for 32×32 RGB images and 10 classes.

Check yourself before handing in:  gradelab check . --lab cifar-convnet
"""

import torch
from torch import nn


def conv_output_size(x, k, p, s):
    """Output size of a convolution (or pooling) with input size x, kernel k, padding p, stride s."""
    raise NotImplementedError


class ConvNet(nn.Module):
    """conv1 32 5×5 filters, pool1 2×2 max, conv2 64 5×5, pool2, conv3 64 5×5, pool3,
    fc4 1000 units, fc5 10 units (the softmax lives in the loss). ReLU after each conv and fc4."""

    def __init__(self):
        super().__init__()
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError
