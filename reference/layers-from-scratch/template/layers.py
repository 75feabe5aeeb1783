"""layers-from-scratch: the forward pass of each layer and loss, written by hand.

Write each function with tensor operations only, without calling the torch op it re-implements
(torch.nn.functional.conv2d for conv2d, and so on): the grader compares your results with that
op on many inputs (odd sizes, padding at the edges, a batch of one, large values) and shows the
smallest input on which they differ, as code you can paste.

Check yourself before handing in:  gradelab check . --lab layers-from-scratch
"""

import torch
from torch import nn


def maxpool2d(x, kernel_size, stride):
    """x: (N, C, H, W). Max over each kernel_size × kernel_size window, windows stride apart, no padding."""
    raise NotImplementedError


def avgpool2d(x, kernel_size, stride):
    """As maxpool2d, with the mean of each window."""
    raise NotImplementedError


def conv2d(x, weight, bias, stride, padding):
    """x: (N, C, H, W); weight: (O, C, k, k); bias: (O,). Zero padding on each side, then a
    cross-correlation with windows stride apart. Returns (N, O, H_out, W_out)."""
    raise NotImplementedError


def conv2d_dilated(x, weight, bias, stride, padding, dilation):
    """conv2d whose kernel taps are dilation pixels apart."""
    raise NotImplementedError


def conv_transpose2d(x, weight, bias, stride, padding):
    """x: (N, C, H, W); weight: (C, O, k, k); bias: (O,). The transposed convolution (the gradient
    of conv2d with respect to its input), as torch.nn.functional.conv_transpose2d computes it."""
    raise NotImplementedError


def flatten(x):
    """(N, d1, d2, ...) → (N, d1·d2·...)."""
    raise NotImplementedError


def roi_pool(x, boxes, output_size, spatial_scale):
    """x: (N, C, H, W); boxes: (K, 5) rows (batch index, x1, y1, x2, y2) in input coordinates.
    Returns (K, C, output_size, output_size), as torchvision.ops.roi_pool does."""
    raise NotImplementedError


def sigmoid(x):
    """1 / (1 + exp(−x)), elementwise, without overflow for large |x|."""
    raise NotImplementedError


def batchnorm(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """x: (N, C, H, W); gamma, beta, running_mean, running_var: (C,). Returns (y, new running_mean,
    new running_var), as torch.nn.functional.batch_norm computes and updates them."""
    raise NotImplementedError


def cross_entropy(logits, targets):
    """logits: (N, K); targets: (N,) class indices. Mean over the batch of −log softmax(logits)[target]."""
    raise NotImplementedError


def mse_loss(pred, target):
    """Mean of the squared differences."""
    raise NotImplementedError


class AllConvNet(nn.Module):
    """3×3 convs (padding 1) 16, 16 | max-pool 2 | 32, 32 | max-pool 2 | 64, 64 | max-pool 2 | 128, 128 |
    global average pool | dense 10, a ReLU after each conv; with batchnorm=True, a BatchNorm2d
    after each conv, before its ReLU. torch.nn layers are allowed here."""

    def __init__(self, batchnorm=False):
        super().__init__()
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError
